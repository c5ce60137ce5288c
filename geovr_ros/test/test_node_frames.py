"""Frames of a real geovr_node with `odom_child: base`: the camera mount from parameters
(published on /tf_static when asked) or looked up on /tf_static (a URDF's chain too, with the
floor's scale at the mount's height); map services."""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from ros_helpers import (  # noqa: F401 (probe_node is the `probe` fixture)
    Feeder, Process, call_trigger, node_args, probe_node, spin_until, tiny_model)

rclpy = pytest.importorskip('rclpy')
from nav_msgs.msg import Odometry  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from geovr_ros.geometry import T_BODY_OPTICAL, make_pose  # noqa: E402
from geovr_ros.ros.conversions import (  # noqa: E402
    pose_from_msg, sec_to_stamp, transform_from_msg, transform_stamped_msg)
from geovr_ros.ros.qos import LATCHED  # noqa: E402

W, H = 256, 192
MIN_CONFIDENCE = 0.57  # about the median confidence of the tiny untrained model's pixels


def collect_tf(probe):
    edges, static = defaultdict(list), {}
    probe.create_subscription(TFMessage, '/tf', lambda m: [
        edges[(t.header.frame_id, t.child_frame_id)].append(t) for t in m.transforms], 50)
    probe.create_subscription(TFMessage, '/tf_static', lambda m: static.update(
        {(t.header.frame_id, t.child_frame_id): t for t in m.transforms}), LATCHED)
    return edges, static


def collect_odometry_and_diagnostics(probe):
    """(odometry messages, diagnostics key -> value dicts) as the probe hears them."""
    from diagnostic_msgs.msg import DiagnosticArray
    odom, diagnostics = [], []
    probe.create_subscription(Odometry, '/odometry', odom.append, 10)
    probe.create_subscription(DiagnosticArray, '/diagnostics', lambda m: diagnostics.extend(
        {v.key: v.value for v in status.values} for status in m.status), 10)
    return odom, diagnostics


def test_base_frame_through_a_parameter_mount(probe, ros_env):
    """... and the mount's camera height given to floor_camera_height: the session's floor
    scale shows in /diagnostics."""
    model = tiny_model(ros_env)
    edges, static = collect_tf(probe)
    odom, diagnostics = collect_odometry_and_diagnostics(probe)
    node = Process('geovr_node', node_args(
        {'model': str(model), 'odom_child': 'base', 'camera_mount_source': 'parameters',
         'camera_mount_xyz': [0.2, 0.0, 1.0], 'camera_mount_rpy': [0.0, 0.0, 0.0],
         'publish_mount_tf': True, 'localization_enabled': False, 'floor_camera_height': 1.0},
        {'image': '/fr/image', 'camera_info': '/fr/camera_info'}), ros_env, 'mount_params')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/fr', W, H)
        assert feeder.good_frame_is_processed(15) and feeder.good_frame_is_processed()
        spin_until(probe, lambda: ('base_link', 'cam_optical') in static and len(odom) >= 2, 5)
        spin_until(probe, lambda: any('floor_scale' in values for values in diagnostics), 5)
    finally:
        node.stop()
    floor = next(values for values in diagnostics if 'floor_scale' in values)
    assert float(floor['floor_scale']) > 0 and int(floor['floor_frames']) >= 0
    assert float(floor['floor_camera_height']) == pytest.approx(1.0)
    mount = make_pose(np.eye(3), [0.2, 0.0, 1.0]) @ T_BODY_OPTICAL
    assert np.allclose(transform_from_msg(static[('base_link', 'cam_optical')]), mount)
    assert set(edges) == {('odom', 'base_link')}          # no map edge: localization is off
    assert odom[0].child_frame_id == 'base_link'
    assert np.allclose(pose_from_msg(odom[0].pose.pose), np.eye(4))  # odom = base at start


def test_the_wheeled_robot_params_of_the_docs_take_the_height_from_a_urdf_chain(probe, ros_env, tmp_path):
    """docs/ros.md "On a wheeled robot": its params file as written, and a robot_state_publisher's
    chain on /tf_static (base_footprint -> base_link -> camera_link -> optical): odometry is the
    base_footprint's and the floor's scale takes the camera's height above it (0.1 + 0.25 m)."""
    import yaml

    docs = (Path(__file__).resolve().parents[2] / 'docs' / 'ros.md').read_text()
    params = yaml.safe_load(docs.split('### On a wheeled robot')[1].split('```yaml')[1].split('```')[0])
    params_file = tmp_path / 'robot.yaml'
    params_file.write_text(yaml.safe_dump(params))
    model = tiny_model(ros_env)
    edges, _ = collect_tf(probe)
    odom, diagnostics = collect_odometry_and_diagnostics(probe)
    static_pub = probe.create_publisher(TFMessage, '/tf_static', LATCHED)
    chain = [('base_footprint', 'base_link', make_pose(np.eye(3), [0.0, 0.0, 0.1])),
             ('base_link', 'camera_link', make_pose(np.eye(3), [0.2, 0.0, 0.25])),
             ('camera_link', 'cam_optical', T_BODY_OPTICAL)]
    static_pub.publish(TFMessage(transforms=[transform_stamped_msg(T, parent, child, sec_to_stamp(0.0))
                                             for parent, child, T in chain]))
    args = node_args({'model': str(model), 'localization_enabled': False},
                     {'image': '/fw/image', 'camera_info': '/fw/camera_info'})
    node = Process('geovr_node', args[:1] + ['--params-file', str(params_file)] + args[1:], ros_env, 'wheeled')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/fw', W, H)
        assert feeder.good_frame_is_processed(15) and feeder.good_frame_is_processed()
        spin_until(probe, lambda: any('floor_camera_height' in values for values in diagnostics) and odom, 5)
    finally:
        node.stop()
    floor = next(values for values in diagnostics if 'floor_camera_height' in values)
    assert float(floor['floor_camera_height']) == pytest.approx(0.35)
    assert 'floor_height_from_mount: the camera stands 0.350 m above base_footprint' in node.output()
    assert odom[0].child_frame_id == 'base_footprint' and ('odom', 'base_footprint') in edges


def test_base_frame_through_a_mount_looked_up_on_tf_static(probe, ros_env):
    model = tiny_model(ros_env)
    edges, _ = collect_tf(probe)
    mount = make_pose(np.eye(3), [0.0, 0.1, 0.5]) @ T_BODY_OPTICAL
    static_pub = probe.create_publisher(TFMessage, '/tf_static', LATCHED)
    static_pub.publish(TFMessage(transforms=[
        transform_stamped_msg(mount, 'robot_base', 'cam_optical', sec_to_stamp(0.0))]))
    node = Process('geovr_node', node_args(
        {'model': str(model), 'odom_child': 'base', 'base_frame': 'robot_base',
         'camera_mount_source': 'tf', 'map_frame': 'world_map'},
        {'image': '/ft/image', 'camera_info': '/ft/camera_info'}), ros_env, 'mount_tf')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/ft', W, H)
        assert feeder.good_frame_is_processed(15)
        assert feeder.good_frame_is_processed()
        spin_until(probe, lambda: ('world_map', 'odom') in edges, 5)
        saved = call_trigger(probe, '/geovr_node/save_map')
    finally:
        node.stop()
    assert ('odom', 'robot_base') in edges and ('world_map', 'odom') in edges
    children = defaultdict(set)
    for parent, child in edges:
        children[child].add(parent)
    assert all(len(parents) == 1 for parents in children.values())
    first = transform_from_msg(edges[('odom', 'robot_base')][0])
    assert np.allclose(first, np.eye(4), atol=1e-9)
    assert not saved.success and 'map_file' in saved.message


def test_map_is_saved_and_loaded_through_the_services(probe, ros_env, tmp_path):
    model = tiny_model(ros_env)
    map_file = tmp_path / 'map.npz'
    node = Process('geovr_node', node_args(
        {'model': str(model), 'map_file': str(map_file)},
        {'image': '/fm/image', 'camera_info': '/fm/camera_info'}), ros_env, 'map_services')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        assert 'mapping afresh' in node.output()               # no map file yet
        feeder = Feeder(probe, '/fm', W, H)
        assert feeder.good_frame_is_processed(15)
        saved = call_trigger(probe, '/geovr_node/save_map')
        assert saved.success, saved.message
        assert map_file.is_file() and 'saved 1 keyframes' in saved.message
        loaded = call_trigger(probe, '/geovr_node/load_map')
        assert loaded.success and 'loaded 1 keyframes' in loaded.message
        assert call_trigger(probe, '/geovr_node/reset_map').success
        assert feeder.good_frame_is_processed()
        assert node.alive()
    finally:
        node.stop()


def test_upsampled_depth_and_compressed_input(probe, ros_env):
    import cv2
    from sensor_msgs.msg import CameraInfo, CompressedImage
    from std_msgs.msg import Header

    from ros_helpers import camera_frame, intrinsics, textured_image
    model = tiny_model(ros_env)
    infos, confidences = [], []
    probe.create_subscription(CameraInfo, '/depth/camera_info', infos.append, 10)
    probe.create_subscription(Image, '/depth/confidence', confidences.append, 10)
    node = Process('geovr_node', node_args(
        {'model': str(model), 'depth_upsample': True, 'subscribe_compressed': True,
         'depth_min_confidence': MIN_CONFIDENCE},
        {'image': '/fc/image', 'image/compressed': '/fc/image/compressed',
         'camera_info': '/fc/camera_info'}), ros_env, 'upsample')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/fc', 320, 240)
        assert feeder.good_frame_is_processed(15)
        depth = feeder.depth[-1]
        assert (depth.width, depth.height) == (320, 240)
        spin_until(probe, lambda: len(infos) > 0, 3)
        assert np.allclose(np.reshape(infos[-1].k, (3, 3)), intrinsics(320, 240))
        # depth/confidence: depth's header and size, in [0, 1); depth NaN exactly where it is
        # below depth_min_confidence
        spin_until(probe, lambda: any(c.header == depth.header for c in confidences), 3)
        confidence = next(c for c in confidences if c.header == depth.header)
        assert confidence.encoding == '32FC1' and (confidence.width, confidence.height) == (320, 240)
        conf = np.frombuffer(confidence.data, np.float32).reshape(240, 320)
        values = np.frombuffer(depth.data, np.float32).reshape(240, 320)
        assert np.all((conf >= 0) & (conf < 1))
        below = conf < MIN_CONFIDENCE
        assert 0 < below.mean() < 1, below.mean()
        assert np.all(np.isnan(values[below])) and np.all(np.isfinite(values[~below]))
        compressed_pub = probe.create_publisher(CompressedImage, '/fc/image/compressed', 5)
        stamp = feeder.next_stamp()
        _, info = camera_frame(textured_image(320, 240), intrinsics(320, 240), stamp)
        ok, jpeg = cv2.imencode('.jpg', textured_image(320, 240))
        message = CompressedImage(header=Header(stamp=sec_to_stamp(stamp),
                                                frame_id='cam_optical'), format='jpeg')
        message.data = jpeg.tobytes()
        spin_until(probe, lambda: compressed_pub.get_subscription_count() > 0, 5)

        def answered():
            return any(abs(d.header.stamp.sec + d.header.stamp.nanosec * 1e-9 - stamp) < 1e-6
                       for d in feeder.depth)
        deadline = time.monotonic() + 15
        while not answered() and time.monotonic() < deadline:   # resend: images are best effort
            feeder.info_pub.publish(info)
            compressed_pub.publish(message)
            spin_until(probe, answered, 1.0)
        assert answered()
    finally:
        node.stop()


def test_an_image_rect_topic_is_not_undistorted_again(probe, ros_env):
    """image_proc's image_rect is published beside the raw camera's camera_info, d and all:
    the node takes P as the camera instead of undistorting a second time, and says so once."""
    from sensor_msgs.msg import CameraInfo

    from ros_helpers import camera_frame, intrinsics, textured_image
    model = tiny_model(ros_env)
    depth_infos = []
    probe.create_subscription(CameraInfo, '/depth/camera_info', depth_infos.append, 10)
    node = Process('geovr_node', node_args(
        {'model': str(model)}, {'image': '/rect/image_rect', 'camera_info': '/rect/camera_info'}),
        ros_env, 'rect_node')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/rect', W, H, image_name='image_rect')
        K = intrinsics(W, H)
        P_focal = 1.5 * K[0, 0]
        for _ in range(15):
            image, info = camera_frame(textured_image(W, H, 3), K, feeder.next_stamp())
            info.distortion_model, info.d = 'plumb_bob', [-0.2, 0.05, 0.0, 0.0, 0.0]
            info.p = [P_focal, 0.0, K[0, 2], 0.0, 0.0, P_focal, K[1, 2], 0.0, 0.0, 0.0, 1.0, 0.0]
            feeder.send(image, info)
            if spin_until(probe, lambda: bool(depth_infos), 1.0):
                break
        assert depth_infos, node.output()[-2000:]
        assert depth_infos[-1].k[0] == pytest.approx(P_focal * depth_infos[-1].width / W)
        lines = [line for line in node.output().splitlines() if 'distortion' in line]
        assert len(lines) == 1 and 'taken as rectified already' in lines[0], lines
    finally:
        node.stop()


def test_a_wheel_odometry_reaches_the_session_and_a_broken_message_is_only_logged(probe, ros_env):
    """scale_odometry_topic: the node subscribes to the robot's nav_msgs/Odometry (best effort
    matches its publisher), hands each pose times the mount to the session (/diagnostics shows
    the scale and its samples), and a message with a NaN position is refused with one log line
    while frames go on. With tracking_fallback reference the same odometry places the frames
    tracking fails on (/diagnostics counts them)."""
    model = tiny_model(ros_env)
    odom, diagnostics = collect_odometry_and_diagnostics(probe)
    node = Process('geovr_node', node_args(
        {'model': str(model), 'odom_child': 'base', 'camera_mount_source': 'parameters',
         'camera_mount_xyz': [0.2, 0.0, 0.5], 'camera_mount_rpy': [0.0, 0.0, 0.0],
         'localization_enabled': False, 'scale_odometry_topic': '/wheel/odom', 'tracking_fallback': 'reference'},
        {'image': '/wo/image', 'camera_info': '/wo/camera_info'}), ros_env, 'wheel_odometry')
    wheel = probe.create_publisher(Odometry, '/wheel/odom', 10)

    def drive(stamp: float, x: float) -> None:
        msg = Odometry()
        msg.header.stamp, msg.header.frame_id, msg.child_frame_id = sec_to_stamp(stamp), 'odom', 'base_link'
        msg.pose.pose.position.x, msg.pose.pose.orientation.w = x, 1.0
        wheel.publish(msg)
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/wo', W, H)
        assert feeder.good_frame_is_processed(15)
        for _ in range(3):
            drive(feeder.stamp, 0.05 * feeder.stamp)
            drive(feeder.stamp + 0.2, float('nan'))
            assert feeder.good_frame_is_processed()
        spin_until(probe, lambda: any('odometry_scale' in values for values in diagnostics), 5)
        assert node.wait_for_output('rejected', 5), node.output()
    finally:
        node.stop()
    scale = next(values for values in diagnostics if 'odometry_scale' in values)
    assert float(scale['odometry_scale']) > 0 and int(scale['odometry_scale_samples']) >= 0
    assert 0 <= int(scale['tracking_reference_fallbacks']) <= int(scale['tracking_failures'])
    out = node.output()
    assert "reference odometry on '/wheel/odom' rejected" in out and 'finite' in out
    assert out.count("reference odometry on '/wheel/odom' rejected") == 1   # throttled: once a period
