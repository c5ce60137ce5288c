"""replay_node as a real process: what it publishes for a generated dataset, and how it
fails on a bad source."""
from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from ros_helpers import VENV_BIN, Process, generated_dataset, node_args, spin_until

rclpy = pytest.importorskip('rclpy')
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from geovr_ros.replay import open_replay_source  # noqa: E402
from geovr_ros.ros.conversions import stamp_to_sec, transform_from_msg  # noqa: E402


def test_plays_images_intrinsics_clock_and_ground_truth(ros_env):
    data = generated_dataset(ros_env)
    expected = list(open_replay_source(data))[3:11]     # skip_frames 3, then max_frames 8
    rclpy.init()
    probe = rclpy.create_node('replay_probe')
    got = {'image': [], 'info': [], 'clock': [], 'tf': []}
    probe.create_subscription(Image, '/r/image', got['image'].append, 20)
    probe.create_subscription(CameraInfo, '/r/camera_info', got['info'].append, 20)
    probe.create_subscription(Clock, '/clock', got['clock'].append, 20)
    probe.create_subscription(TFMessage, '/tf', got['tf'].append, 50)
    replay = Process('replay_node', node_args(
        {'source': str(data), 'rate': 0.0, 'max_frames': 8, 'skip_frames': 3, 'wait_for_subscribers': 1,
         'start_delay': 0.3, 'camera_frame': 'cam_optical', 'stamp_offset': 100.0},
        {'image': '/r/image', 'camera_info': '/r/camera_info'}), ros_env, 'replay_node')
    try:
        spin_until(probe, lambda: len(got['image']) >= 8 and len(got['tf']) >= 8, 20)
        assert replay.popen.wait(10) == 0
    finally:
        replay.stop()
        probe.destroy_node()
        rclpy.try_shutdown()
    assert 'replay finished: 8 frames published' in replay.output()
    assert len(got['image']) == 8
    for image, info, clock, frame in zip(got['image'], got['info'], got['clock'], expected):
        assert stamp_to_sec(image.header.stamp) == pytest.approx(frame.stamp + 100.0, abs=1e-6)
        assert image.header == info.header and image.header.frame_id == 'cam_optical'
        assert stamp_to_sec(clock.clock) == stamp_to_sec(image.header.stamp)
        assert image.encoding == 'rgb8'
        rgb = np.frombuffer(image.data, np.uint8).reshape(image.height, image.width, 3)
        assert np.array_equal(rgb, frame.rgb)
        assert np.allclose(np.reshape(info.k, (3, 3)), frame.K)
    gt = [t for m in got['tf'] for t in m.transforms]
    assert {(t.header.frame_id, t.child_frame_id) for t in gt} == {('gt_world', 'gt_cam_optical')}
    assert np.allclose(transform_from_msg(gt[0]), expected[0].T_world_cam, atol=1e-6)


def test_bad_source_exits_with_the_reason(ros_env, tmp_path):
    result = subprocess.run([str(VENV_BIN / 'replay_node'), '--ros-args', '-p',
                             f'source:={tmp_path / "nothing"}'], env=ros_env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert 'does not exist' in result.stdout + result.stderr
    (tmp_path / 'manifest.json').write_text(json.dumps({'sequences': []}))
    empty = subprocess.run([str(VENV_BIN / 'replay_node'), '--ros-args', '-p',
                            f'source:={tmp_path}'], env=ros_env, capture_output=True, text=True,
                           timeout=30)
    assert empty.returncode == 1 and 'no *.geovr.npz shard' in empty.stdout + empty.stderr
    offset = subprocess.run([str(VENV_BIN / 'replay_node'), '--ros-args', '-p', f'source:={tmp_path}',
                             '-p', 'truth_time_offset:=0.015'], env=ros_env, capture_output=True, text=True,
                            timeout=30)
    assert offset.returncode == 1 and "applies to a TUM recording" in offset.stdout + offset.stderr
    skip = subprocess.run([str(VENV_BIN / 'replay_node'), '--ros-args', '-p', f'source:={tmp_path}',
                           '-p', 'skip_frames:=-2'], env=ros_env, capture_output=True, text=True, timeout=30)
    assert skip.returncode == 1 and 'skip_frames must be >= 0, got -2' in skip.stdout + skip.stderr
