"""The training package installs, and depends on the runtime only through its pure core."""
import importlib.metadata
import subprocess
import sys


def test_installed_version_matches_package():
    import geovr_training
    assert importlib.metadata.version('geovr_training') == geovr_training.__version__


def test_console_scripts_are_declared():
    scripts = {ep.name for ep in importlib.metadata.entry_points(group='console_scripts')
               if ep.dist is not None and ep.dist.name == 'geovr_training'}
    assert {'geovr-data', 'geovr-train', 'geovr-eval', 'geovr-export'} <= scripts


def test_importing_training_does_not_start_ros():
    code = 'import sys, geovr_training; assert "rclpy" not in sys.modules'
    subprocess.run([sys.executable, '-c', code], check=True)
