"""Accuracy of the running node against ground truth, with the shipped trained model.

The model is models/geovr_s_v2/checkpoint.pt exported for the session (or the directory named
by $GEOVR_TRAINED_MODEL). What the node can promise is that it loses nothing of the model's
accuracy: its depth, through ROS messages, encodings, resizing and intrinsics handling, is
as close to ground truth as the same model run offline on the same frames. The model's own
accuracy is the model card's business (models/README.md).
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from ros_helpers import (Process, call_trigger, generated_dataset, node_args, shipped_model, spin_until,
                         wait_until_heard)

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from geovr_ros.geometry import absolute_trajectory_error, depth_metrics  # noqa: E402
from geovr_ros.replay import open_replay_source  # noqa: E402
from geovr_ros.ros.conversions import pose_from_msg, stamp_to_sec  # noqa: E402

# The offline run pairs frames as the node does; what is left is float noise and resizing.
ABS_REL_SLACK = 0.02        # node mean AbsRel <= offline mean AbsRel + this
ATE_BOUND_FRACTION = 0.25   # ATE rmse (SE(3) alignment) as a fraction of the path length


def ground_truth_depth(root: Path) -> list[np.ndarray]:
    shard = sorted(root.glob('*.geovr.npz'))[0]
    with zipfile.ZipFile(shard) as zf:
        names = sorted(n for n in zf.namelist() if n.startswith('depth/'))
        out = []
        for name in names:
            with zf.open(name) as f:
                out.append(np.lib.format.read_array(f, allow_pickle=False))
    return out


def offline_abs_rel(model: Path, frames, gt_depth: dict, processed: set[float]) -> float:
    """Mean AbsRel of the model run without ROS on the frames the node processed, each
    paired with the reference the node's odometry would pick (same OdometryTracker, same
    defaults), upsampled like the node."""
    import cv2
    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_PARAMS
    from geovr_ros.odometry import OdometryTracker
    p = {param.name: param.default for param in GEOVR_NODE_PARAMS}
    tracker = OdometryTracker(p['odometry_reference_translation'], p['odometry_reference_rotation'],
                              p['odometry_max_reference_frames'], p['time_jump_threshold'])
    pipeline = PerceptionPipeline(model, backend='onnxruntime')
    values, reference = [], None
    for frame in frames:
        stamp = round(frame.stamp, 6)
        if stamp not in processed:
            continue
        cur = pipeline.preprocess(frame.rgb, frame.K)
        first = reference is None or not tracker.started
        result = pipeline.run(cur if first else reference, cur)
        update = tracker.start(frame.stamp) if first else tracker.update(frame.stamp, result.rel_pose)
        if update.new_reference:
            reference = cur
        gt = gt_depth[stamp]
        pred = cv2.resize(result.depth, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
        values.append(depth_metrics(pred, gt)['abs_rel'])
    pipeline.close()
    return float(np.mean(values))


def test_depth_and_odometry_are_close_to_ground_truth(ros_env):
    model = shipped_model(ros_env)
    data = generated_dataset(ros_env)
    frames = list(open_replay_source(data))
    gt_depth = {round(f.stamp, 6): d for f, d in zip(frames, ground_truth_depth(data))}
    gt_pose = {round(f.stamp, 6): f.T_world_cam for f in frames}
    rclpy.init()
    probe = rclpy.create_node('accuracy_probe')
    depth, odom = [], []
    probe.create_subscription(Image, '/acc/depth', depth.append, 50)
    probe.create_subscription(Odometry, '/acc/odometry', odom.append, 50)
    diagnostics = []
    probe.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 5)
    remaps = {'image': '/acc/image', 'camera_info': '/acc/camera_info'}
    node = Process('geovr_node', node_args({'model': str(model), 'depth_upsample': True},
                                           {**remaps, '__ns': '/acc'}),
                   ros_env, 'accuracy_node')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        assert wait_until_heard(probe, ['/acc/depth', '/acc/odometry'], lambda: bool(diagnostics)), \
            'the probe never connected to the node: ' + node.output()[-2000:]
        replay = Process('replay_node', node_args({'source': str(data), 'rate': 0.5,
                                                   'wait_for_subscribers': 1}, remaps),
                         ros_env, 'accuracy_replay')
        spin_until(probe, lambda: not replay.alive(), 120)
        spin_until(probe, lambda: False, 2.0)
        replay.stop()
    finally:
        node.stop()
        probe.destroy_node()
        rclpy.try_shutdown()
    # keep-last 1: a loaded machine may skip frames; the comparison below is frame by frame
    assert len(depth) >= 3, 'too few frames processed to compare'
    abs_rel = []
    for msg in depth:
        pred = np.frombuffer(msg.data, np.float32).reshape(msg.height, msg.width)
        gt = gt_depth[round(stamp_to_sec(msg.header.stamp), 6)]
        assert pred.shape == gt.shape, 'depth_upsample gives the camera resolution'
        abs_rel.append(depth_metrics(pred, gt)['abs_rel'])
    offline = offline_abs_rel(model, frames, gt_depth,
                              {round(stamp_to_sec(m.header.stamp), 6) for m in depth})
    assert np.mean(abs_rel) <= offline + ABS_REL_SLACK, (
        f'node depth AbsRel {np.mean(abs_rel):.3f}, the same model offline {offline:.3f}')
    est = np.array([[m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z]
                    for m in odom])
    gt = np.array([gt_pose[round(stamp_to_sec(m.header.stamp), 6)][:3, 3] for m in odom])
    length = float(np.sum(np.linalg.norm(np.diff(gt, axis=0), axis=1)))
    ate = absolute_trajectory_error(est, gt, alignment='se3')['rmse']
    assert ate < ATE_BOUND_FRACTION * length, f'ATE {ate:.3f} m over a {length:.2f} m path'


def _replay_into_node(probe, params: dict, data: Path, ros_env, name: str, ns: str, on_node=None,
                      skip_frames: int = 0) -> str:
    """Starts geovr_node in namespace `ns` with `params`, replays `data` into it (rate 0.5,
    from frame `skip_frames`), calls `on_node(node)` while it still runs, and returns its
    output."""
    remaps = {'image': f'{ns}/image', 'camera_info': f'{ns}/camera_info'}
    node = Process('geovr_node', node_args(params, {**remaps, '__ns': ns}), ros_env, name)
    try:
        assert node.wait_for_output('active:', 60), node.output()
        assert wait_until_heard(probe, [f'{ns}/depth'], lambda: True), node.output()[-2000:]
        replay = Process('replay_node', node_args({'source': str(data), 'rate': 0.5, 'skip_frames': skip_frames,
                                                   'wait_for_subscribers': 1}, remaps),
                         ros_env, f'{name}_replay')
        spin_until(probe, lambda: not replay.alive(), 120)
        spin_until(probe, lambda: False, 2.0)
        replay.stop()
        if on_node is not None:
            on_node(node)
    finally:
        node.stop()
    return node.output()


def test_a_saved_map_is_found_again_by_a_new_node(ros_env, tmp_path):
    """A node maps a rendered walk and saves the map; a second node started with that map
    file sees the walk's second half from its own odometry origin (the camera switched on
    half-way) and localizes it by place recognition and PnP on the model's depth: its map poses
    agree with the first node's, with a covariance that is finite and states centimetres to
    decimetres (the shipped model; real processes)."""
    model = shipped_model(ros_env)
    data = generated_dataset(ros_env)
    map_file = tmp_path / 'walk.npz'
    rclpy.init()
    probe = rclpy.create_node('map_probe')
    located = {'/mapping': [], '/revisit': []}
    for ns, received in located.items():
        probe.create_subscription(PoseWithCovarianceStamped, f'{ns}/localization', received.append, 100)
    try:
        saved = []
        _replay_into_node(probe, {'model': str(model), 'map_file': str(map_file)}, data, ros_env,
                          'mapping_node', '/mapping',
                          lambda node: saved.append(call_trigger(probe, '/mapping/geovr_node/save_map', 10)))
        assert saved and saved[0].success, saved
        output = _replay_into_node(probe, {'model': str(model), 'map_file': str(map_file)}, data, ros_env,
                                   'revisit_node', '/revisit', skip_frames=20)
    finally:
        probe.destroy_node()
        rclpy.try_shutdown()
    assert 'mapping afresh' not in output, output[-2000:]
    first = {round(stamp_to_sec(m.header.stamp), 6): pose_from_msg(m.pose.pose) for m in located['/mapping']}
    again = [(round(stamp_to_sec(m.header.stamp), 6), pose_from_msg(m.pose.pose),
              np.asarray(m.pose.covariance).reshape(6, 6)) for m in located['/revisit']]
    assert len(first) >= 10 and len(again) >= 10, (len(first), len(again), output[-2000:])
    apart = [np.linalg.norm(T[:3, 3] - first[stamp][:3, 3]) for stamp, T, _ in again if stamp in first]
    assert len(apart) >= 10 and np.median(apart) < 0.25, np.round(apart, 3)
    # without localization the second half would sit at the first's origin: far from where it is
    from_origin = [np.linalg.norm(first[stamp][:3, 3]) for stamp, _, _ in again if stamp in first]
    assert np.median(from_origin) > 2 * np.median(apart), (np.round(from_origin, 2), np.round(apart, 3))
    for _, _, covariance in again:
        sigma = np.sqrt(np.diag(covariance)[:3])
        assert np.all(np.isfinite(covariance)) and np.all(sigma >= 0.01) and np.all(sigma < 1.0), sigma
