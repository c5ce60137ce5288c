"""The soak command (python -m geovr_ros.nodes.soak), briefly: two real nodes, one under a hostile
peer; both stay alive and the attacked one keeps giving depth. The 10-minute figures are in
docs/benchmarks.md."""
import json
import subprocess
import sys

import pytest

from ros_helpers import tiny_model

pytest.importorskip('rclpy')


def test_short_soak_keeps_both_nodes_alive_and_producing(ros_env, tmp_path):
    model = tiny_model(ros_env)
    out = tmp_path / 'soak.json'
    run = subprocess.run([sys.executable, '-m', 'geovr_ros.nodes.soak', '--model', str(model), '--minutes', '0.4',
                          '--warmup', '6', '--hz', '6', '--attack-hz', '2', '--size', '160x128', '--sample', '3',
                          '--json', str(out)], env=ros_env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(out.read_text())
    assert result['clean']['alive'] and result['attacked']['alive']
    assert result['attacked']['depth_hz'] > 0.5 and result['clean']['depth_hz'] > 0.5
    assert set(result['attacks_sent']) == {'long_encoding', 'stamp_zero', 'stamp_future', 'nan_camera_info',
                                           'short_data', 'png_bomb_header'}
