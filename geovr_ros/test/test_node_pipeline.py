"""Real processes: replay_node plays a generated sequence into geovr_node (tiny untrained
model exported by geovr-export); this test process listens and asks questions.

Checks topics, headers, encodings, units, frames and the question service. Accuracy
against ground truth needs a trained model: see test_node_accuracy.py.
"""
from __future__ import annotations

import subprocess
from collections import defaultdict

import numpy as np
import pytest

from ros_helpers import (Process, generated_dataset, node_args, spin_until, tiny_model, VENV_BIN,
                         wait_until_heard)

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from geovr_interfaces.srv import SpatialQuery  # noqa: E402
from nav_msgs.msg import Odometry, Path  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image, PointCloud2  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from geovr_ros.geometry import path_length  # noqa: E402
from geovr_ros.ros.conversions import stamp_to_sec  # noqa: E402
from geovr_ros.ros.qos import LATCHED  # noqa: E402
from geovr_ros.session import SessionConfig  # noqa: E402

FRAMES = 40


@pytest.fixture(scope='module')
def session(ros_env):
    model = tiny_model(ros_env)
    data = generated_dataset(ros_env, frames=FRAMES)
    rclpy.init()
    probe = rclpy.create_node('pipeline_probe')
    got = defaultdict(list)

    def keep(name):
        return lambda msg: got[name].append(msg)

    for topic, kind, name, qos in [
            ('/camera/image', Image, 'image', 50), ('/depth', Image, 'depth', 50),
            ('/depth/camera_info', CameraInfo, 'depth_info', 50),
            ('/odometry', Odometry, 'odometry', 50), ('/path', Path, 'path', 5),
            ('/points', PointCloud2, 'points', 5), ('/tf', TFMessage, 'tf', 200),
            ('/localization', PoseWithCovarianceStamped, 'localization', 50),
            ('/diagnostics', DiagnosticArray, 'diagnostics', 20), ('/clock', Clock, 'clock', 50),
            ('/tf_static', TFMessage, 'tf_static', LATCHED)]:
        probe.create_subscription(kind, topic, keep(name), qos)
    remaps = {'image': '/camera/image', 'camera_info': '/camera/camera_info'}
    node = Process('geovr_node', node_args({'model': str(model), 'backend': 'onnxruntime'},
                                           remaps), ros_env, 'geovr_node')
    replay = None
    try:
        assert node.wait_for_output('active:', 60), node.output()
        outputs = ['/depth', '/depth/camera_info', '/odometry', '/path', '/points', '/tf',
                   '/localization', '/diagnostics']
        assert wait_until_heard(probe, outputs, lambda: bool(got['diagnostics'])), \
            'the probe never connected to the node: ' + node.output()[-2000:]
        replay = Process('replay_node', node_args(
            {'source': str(data), 'rate': 1.0, 'start_delay': 0.5,
             'wait_for_subscribers': 2}, remaps), ros_env, 'replay')
        spin_until(probe, lambda: not replay.alive(), 40)
        spin_until(probe, lambda: len(got['depth']) >= FRAMES, 5)
        spin_until(probe, lambda: False, 1.5)  # diagnostics after the last frame
        yield {'got': got, 'probe': probe, 'node': node, 'replay': replay, 'model': model}
    finally:
        node.stop()
        if replay is not None:
            replay.stop()
        probe.destroy_node()
        rclpy.try_shutdown()


def ask(probe, question, frame='', timeout=5.0):
    client = probe.create_client(SpatialQuery, '/geovr_node/query')
    try:
        assert client.wait_for_service(timeout_sec=timeout)
        future = client.call_async(SpatialQuery.Request(question=question, target_frame=frame))
        rclpy.spin_until_future_complete(probe, future, timeout_sec=timeout)
        assert future.done(), f'no answer to {question!r}'
        return future.result()
    finally:
        probe.destroy_client(client)


def test_every_frame_gets_depth_with_the_image_header_in_metres(session):
    got = session['got']
    image_stamps = {stamp_to_sec(m.header.stamp) for m in got['image']}
    assert len(image_stamps) == FRAMES
    # Keep-last 1: a frame can be skipped under load (accounted for in the diagnostics test);
    # every processed frame is checked here. Speed is the benchmark's business, not a test's.
    assert len(got['depth']) >= 3, session['node'].output()[-2000:]
    for depth, info in zip(got['depth'], got['depth_info']):
        assert stamp_to_sec(depth.header.stamp) in image_stamps
        assert depth.header == info.header
        assert depth.header.frame_id == 'camera_optical_frame'
        assert depth.encoding == '32FC1' and depth.step == 4 * depth.width
        assert (info.width, info.height) == (depth.width, depth.height) == (256, 192)
        values = np.frombuffer(depth.data, np.float32)
        finite = values[np.isfinite(values)]
        assert finite.size > 0.5 * values.size and np.all(finite > 0)
        assert 0.05 < np.median(finite) < 100.0        # metres, not millimetres
        assert info.k[0] > 0 and info.k[8] == 1.0


def test_odometry_path_and_points(session):
    got = session['got']
    odom = got['odometry']
    assert len(odom) == len(got['depth'])  # one odometry message per processed frame
    assert all(m.header.frame_id == 'odom' and m.child_frame_id == 'camera_optical_frame'
               for m in odom)
    stamps = [stamp_to_sec(m.header.stamp) for m in odom]
    assert np.all(np.diff(stamps) > 0)
    first = odom[0].pose.pose
    # odom is the camera's REP 103 body frame at start: optical z forward = body x forward.
    assert (first.position.x, first.position.y, first.position.z) == (0, 0, 0)
    q = np.array([first.orientation.x, first.orientation.y, first.orientation.z,
                  first.orientation.w])
    assert np.allclose(np.abs(q), [0.5, 0.5, 0.5, 0.5])
    path = got['path'][-1]
    assert path.header.frame_id == 'odom' and len(path.poses) == len(odom)
    cloud = got['points'][-1]
    assert cloud.header.frame_id == 'camera_optical_frame' and cloud.width > 1000


def test_tf_frames_have_the_right_single_parent(session):
    parents = defaultdict(set)
    for msg in session['got']['tf']:
        for t in msg.transforms:
            parents[t.child_frame_id].add(t.header.frame_id)
    assert parents['camera_optical_frame'] == {'odom'}
    assert parents['odom'] == {'map'}
    assert parents['gt_camera_optical_frame'] == {'gt_world'}
    assert all(len(p) == 1 for p in parents.values()), parents
    loc = session['got']['localization'][-1]
    assert loc.header.frame_id == 'map' and loc.pose.covariance[0] > 0


def test_clock_follows_the_recording(session):
    clock = [stamp_to_sec(m.clock) for m in session['got']['clock']]
    images = sorted(stamp_to_sec(m.header.stamp) for m in session['got']['image'])
    assert clock == images


def test_diagnostics_report_rate_latency_backend_and_drops(session):
    status = session['got']['diagnostics'][-1].status[0]
    values = {v.key: v.value for v in status.values}
    assert values['backend'] == 'onnxruntime'
    assert int(values['frames_processed']) == len(session['got']['depth'])
    assert float(values['latency_model_ms']) > 0 and float(values['latency_total_ms']) > 0
    assert float(values['metric_scale']) > 0
    # every frame received was processed, skipped for a newer one, or dropped with a reason
    dropped = sum(int(v) for k, v in values.items() if k.startswith('dropped_'))
    assert int(values['frames_received']) >= (int(values['frames_processed'])
                                              + int(values['frames_skipped_busy']) + dropped) - 1
    assert np.isfinite(float(values['latency_arrival_age_ms']))


def test_stamps_of_another_clock_are_named_once(session):
    """The replayed frames are stamped from 0 s and the node runs on wall time (no
    use_sim_time): one line says so and names the parameter, not one per frame."""
    output = session['node'].output()
    assert output.count('look like recorded or simulated time') == 1
    assert 'use_sim_time:=true' in output


def test_geometric_odometry_reports_its_state_and_covariance(session):
    status = session['got']['diagnostics'][-1].status[0]
    values = {v.key: v.value for v in status.values}
    assert values['odometry_method'] == 'geometric'
    assert values['map_odom_source'] == 'pose graph'  # mapping afresh: map -> odom from the GTSAM graph
    assert int(values['pose_graph_keyframes']) == int(values['tracking_keyframes'])
    assert int(values['loop_closures']) >= 0
    assert values['tracking_status'] in ('tracking', 'fallback')
    assert int(values['tracking_keyframes']) >= 1
    failures = int(values['tracking_failures'])
    assert failures <= int(values['frames_processed']) - 1
    if values['tracking_status'] == 'fallback':
        assert values['tracking_failure_reason']
    constant = np.diag([0.01] * 3 + [0.01] * 3).ravel()
    tracked = [m for m in session['got']['odometry'][1:]
               if not np.allclose(np.asarray(m.pose.covariance), constant)]
    # frames that PnP tracked publish their inliers' covariance: symmetric, positive diagonal
    assert len(tracked) >= int(values['frames_processed']) - 1 - failures - 1
    for m in tracked:
        cov = np.asarray(m.pose.covariance).reshape(6, 6)
        np.testing.assert_allclose(cov, cov.T, atol=1e-12)
        assert np.all(np.diag(cov) > 0)
    # the twist's: the same covariance turned into the child frame over dt^2 ((m/s)^2, not m^2)
    odometry = session['got']['odometry']
    stamps = [m.header.stamp.sec + 1e-9 * m.header.stamp.nanosec for m in odometry]
    checked = 0
    for before, m, t0, t1 in zip(odometry, odometry[1:], stamps, stamps[1:]):
        if any(m is t for t in tracked) and t1 > t0:
            pose, twist = (np.asarray(c).reshape(6, 6) for c in (m.pose.covariance, m.twist.covariance))
            assert np.trace(twist[:3, :3]) == pytest.approx(np.trace(pose[:3, :3]) / (t1 - t0) ** 2, rel=1e-6)
            checked += 1
    assert checked >= len(tracked) - 1


def test_question_service_answers_what_the_memory_knows(session):
    probe, odom = session['probe'], session['got']['odometry']
    positions = np.array([[m.pose.pose.position.x, m.pose.pose.position.y,
                           m.pose.pose.position.z] for m in odom])
    travelled = path_length(positions, SessionConfig().path_resolution)   # the node's default, counted alike
    far = ask(probe, 'How far have I travelled?', 'odom')
    assert far.success and far.unit == 'm'
    assert far.pose.header.frame_id == '', 'an answer without a pose must not look like one at the origin'
    assert far.value == pytest.approx(travelled, rel=1e-4, abs=1e-5)
    where = ask(probe, 'where am I?', 'odom')
    assert where.success and where.pose.header.frame_id == 'odom'
    assert np.allclose([where.pose.pose.position.x, where.pose.pose.position.y,
                        where.pose.pose.position.z], positions[-1], atol=1e-5)
    in_map = ask(probe, 'where am I?')                      # empty frame: map
    assert in_map.success and in_map.points[0].header.frame_id == 'map'
    count = ask(probe, 'how many keyframes do you remember?')
    assert count.success and count.value >= 1
    weather = ask(probe, 'what is the weather like?')        # neither trajectory nor objects
    assert not weather.success and 'no question model loaded' in weather.message
    chair = ask(probe, 'how far is the chair?')              # the object map's question
    assert ('I have not seen a chair' in chair.answer) if not chair.success else \
        (chair.unit == 'm' and len(chair.points) >= 1 and 'chair' in chair.answer)
    empty = ask(probe, '   ')
    assert not empty.success and 'empty' in empty.message
    long = ask(probe, 'why ' * 300)
    assert not long.success and 'more than the limit' in long.message
    bad_frame = ask(probe, 'where am I?', 'nowhere')
    assert not bad_frame.success and 'unknown target_frame' in bad_frame.message


def test_ask_command_prints_the_answer_or_fails_with_the_reason(session, ros_env):
    ok = subprocess.run([str(VENV_BIN / 'ask'), 'how far have I travelled?', '--frame', 'odom'],
                        env=ros_env, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert 'm travelled' in ok.stdout
    declined = subprocess.run([str(VENV_BIN / 'ask'), 'what is the weather like?', '--timeout', '5'],
                              env=ros_env, capture_output=True, text=True, timeout=30)
    assert declined.returncode == 1 and 'no question model loaded' in declined.stderr
    missing = subprocess.run([str(VENV_BIN / 'ask'), 'where am I', '--node', '/nobody',
                              '--timeout', '1'], env=ros_env, capture_output=True, text=True,
                             timeout=30)
    assert missing.returncode == 1 and 'not available' in missing.stderr
    assert 'questions are served by: --node /geovr_node' in missing.stderr   # where to ask instead


def test_reset_service_restarts_odometry_with_a_log_line(session):
    from std_srvs.srv import Trigger
    probe = session['probe']
    client = probe.create_client(Trigger, '/geovr_node/reset')
    assert client.wait_for_service(timeout_sec=5)
    future = client.call_async(Trigger.Request())
    rclpy.spin_until_future_complete(probe, future, timeout_sec=5)
    assert future.result().success
    assert session['node'].wait_for_output('odometry reset by ~/reset', 5)
    after = ask(probe, 'how far have I travelled?', 'odom')
    assert not after.success and 'no frame processed yet' in after.message
    assert session['node'].alive()
