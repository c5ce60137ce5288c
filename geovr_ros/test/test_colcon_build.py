"""The two ROS packages build with colcon, as in a real ROS 2 workspace.

The underlay is the ROS 2 of .venv (wheels); on a robot it is /opt/ros/<distro>.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip('colcon_core', reason='colcon is not installed (scripts/requirements.txt has it)')


def _colcon(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    prefix = sys.prefix
    env = dict(os.environ)
    env['PATH'] = f'{prefix}/bin:' + env.get('PATH', '')
    env['CMAKE_PREFIX_PATH'] = prefix
    env['AMENT_PREFIX_PATH'] = prefix
    return subprocess.run([sys.executable, '-m', 'colcon', *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_colcon_finds_and_builds_exactly_the_ros_packages(tmp_path):
    (tmp_path / 'src').mkdir()
    (tmp_path / 'src' / 'geovr').symlink_to(REPO_ROOT)

    listed = _colcon(['list', '--names-only'], tmp_path)
    assert listed.returncode == 0, listed.stderr
    # training/ and the tf2_msgs stand-in hold a COLCON_IGNORE.
    assert sorted(listed.stdout.split()) == ['geovr_interfaces', 'geovr_ros']

    built = _colcon(['build', '--cmake-args', '-DBUILD_TESTING=OFF',
                     f'-DPython3_EXECUTABLE={sys.executable}'], tmp_path)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    install = tmp_path / 'install'
    for exe in ('geovr_node', 'replay_node', 'ask'):
        assert (install / 'geovr_ros' / 'lib' / 'geovr_ros' / exe).is_file(), exe
    share = install / 'geovr_ros' / 'share' / 'geovr_ros'
    assert (share / 'package.xml').is_file()
    assert (share / 'config' / 'fastdds_loopback.xml').is_file()
    srv = install / 'geovr_interfaces' / 'share' / 'geovr_interfaces' / 'srv'
    assert (srv / 'SpatialQuery.srv').is_file()
