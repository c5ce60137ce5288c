"""Real processes on a real recording: replay_node plays the first frames of
`../shared/data/hololens_office` into geovr_node running the shipped GeoVR-S v2; the object
map arrives on the latched ~/objects (boxes and labels RViz shows) and ~/detections (the same
objects as vision_msgs), and the answers come from it, with the objects they used."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ros_helpers import REPO_ROOT, Process, node_args, shipped_model, spin_until

rclpy = pytest.importorskip('rclpy')
from geovr_interfaces.srv import SpatialQuery  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from vision_msgs.msg import Detection3DArray  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

from geovr_ros.inference.metadata import read_graph_metadata  # noqa: E402
from geovr_ros.objects import load_vocabulary  # noqa: E402
from geovr_ros.ros.qos import LATCHED  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

RECORDING = REPO_ROOT.parent / 'shared' / 'data' / 'hololens_office'
FRAMES = 90


def test_objects_of_a_real_walk_are_published_latched_and_answered(ros_env):
    if not (RECORDING / 'poses.txt').is_file():
        pytest.skip(f'no real recording at {RECORDING} (the shared data folder is absent)')
    model = shipped_model(ros_env)
    if not (Path(model) / 'cell_classifier.onnx').is_file():
        pytest.skip(f'{model} has no cell_classifier.onnx (not a GeoVR-S v2 export)')
    rclpy.init()
    probe = rclpy.create_node('objects_probe')
    remaps = {'image': '/obj/image', 'camera_info': '/obj/camera_info'}
    period = 2.0   # objects_publish_period, s
    node = Process('geovr_node', node_args({'model': str(model), 'backend': 'onnxruntime',
                                            'objects_publish_period': period},
                                           {**remaps, '__ns': '/obj'}), ros_env, 'objects_node')
    replay = None
    try:
        assert node.wait_for_output('active:', 90), node.output()
        sent: list[float] = []    # when each ~/objects message came while the walk played
        every = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        probe.create_subscription(MarkerArray, '/obj/geovr_node/objects', lambda _: sent.append(time.monotonic()), every)
        keyframes: list[int] = []
        probe.create_subscription(DiagnosticArray, '/diagnostics', lambda msg: keyframes.extend(
            int(v.value) for s in msg.status for v in s.values if v.key == 'tracking_keyframes'), 10)
        replay = Process('replay_node', node_args({'source': str(RECORDING), 'rate': 0.5,
                                                   'max_frames': FRAMES, 'wait_for_subscribers': 1},
                                                  remaps), ros_env, 'objects_replay')
        spin_until(probe, lambda: not replay.alive(), 240)
        spin_until(probe, lambda: False, period + 2.0)   # a change left waiting goes out with a diagnostics
        # views between keyframes are named too, but the map goes out on keyframes and at most
        # once a period between them, not at the camera's rate
        assert keyframes and sent, (sent, keyframes)
        assert len(sent) <= keyframes[-1] + (sent[-1] - sent[0]) / period + 2, (len(sent), keyframes,
                                                                                sent[-1] - sent[0])
        # a subscriber that comes late gets the newest map at once (latched)
        late: list[MarkerArray] = []
        probe.create_subscription(MarkerArray, '/obj/geovr_node/objects', late.append, LATCHED)
        spin_until(probe, lambda: bool(late), 10)
        assert late, 'no object map on the latched ~/objects: ' + node.output()[-2000:]
        markers = late[-1].markers
        assert markers[0].action == Marker.DELETEALL
        boxes = [m for m in markers[1:] if m.type == Marker.CUBE]
        labels = [m for m in markers[1:] if m.type == Marker.TEXT_VIEW_FACING and m.ns != 'room']
        assert boxes and len(boxes) == len(labels), 'one box and one label per object'
        room = sorted((m for m in markers if m.ns == 'room'), key=lambda m: m.id)   # the floor's outline
        assert [m.type for m in room] == [Marker.LINE_STRIP, Marker.TEXT_VIEW_FACING]
        assert len(room[0].points) == 5 and room[1].text.startswith('floor ')
        head = read_graph_metadata(Path(model) / 'cell_classifier.onnx').get('vocabularies', {})
        categories = {c.name for c in load_vocabulary().categories} | set(head.get('cell_categories', []))
        assert {b.ns for b in boxes} <= categories and all(b.header.frame_id == 'map' for b in boxes)
        # the same map for programs: one detection per object the answers count and the verifier
        # believes (labels neither 'uncertain' nor 'doubted')
        detections: list[Detection3DArray] = []
        probe.create_subscription(Detection3DArray, '/obj/geovr_node/detections', detections.append, LATCHED)
        spin_until(probe, lambda: bool(detections), 10)
        assert detections, 'no latched ~/detections: ' + node.output()[-2000:]
        counted = {(m.ns, m.id // 2) for m in labels if not m.text.endswith(('uncertain', 'doubted'))}
        found = detections[-1].detections
        assert {(d.results[0].hypothesis.class_id, int(d.id)) for d in found} == counted
        assert all(d.header.frame_id == 'map' and 0 < d.results[0].hypothesis.score <= 1 for d in found)
        client = probe.create_client(SpatialQuery, '/obj/geovr_node/query')
        assert client.wait_for_service(timeout_sec=10)
        future = client.call_async(SpatialQuery.Request(question='What objects have you seen?'))
        rclpy.spin_until_future_complete(probe, future, timeout_sec=10)
        answer = future.result()
        assert answer.success and answer.answer.startswith('I have seen'), answer.message
        assert len(answer.points) >= 1 and any(b.ns in answer.answer for b in boxes)
        # each point is an object of the published map, named by the id ~/objects and ~/detections carry
        assert len(answer.object_ids) == len(answer.points)
        assert set(answer.object_ids) <= {b.id // 2 for b in boxes}
    finally:
        node.stop()
        if replay is not None:
            replay.stop()
        probe.destroy_node()
        rclpy.try_shutdown()


def test_a_bad_vocabulary_file_fails_configure_with_one_line_naming_it(ros_env, tmp_path):
    """A user vocabulary that cannot be used fails the lifecycle configure transition: one
    error line names the file and the key, no traceback, and the node stays up unconfigured
    (a fixed file and `ros2 lifecycle set ... configure` bring it up without a restart)."""
    model = shipped_model(ros_env)
    if not (Path(model) / 'cell_classifier.onnx').is_file():
        pytest.skip(f'{model} has no cell_classifier.onnx (not a GeoVR-S v2 export)')
    bad = tmp_path / 'my_vocabulary.yaml'
    bad.write_text('categories:\n  chair:\n    colour: red\n')
    node = Process('geovr_node', node_args({'model': str(model), 'object_vocabulary': str(bad)},
                                           {'__ns': '/badvocab'}), ros_env, 'bad_vocabulary_node')
    try:
        assert node.wait_for_output('configure failed', 90), node.output()[-2000:]
        time.sleep(1.0)
        output = node.output()
        failed = [line for line in output.splitlines() if 'configure failed' in line]
        assert len(failed) == 1 and str(bad) in failed[0] and "'colour'" in failed[0], output[-2000:]
        assert 'Traceback' not in output and 'active:' not in output
        assert node.alive()
    finally:
        node.stop()


def test_without_vision_msgs_the_node_warns_once_and_keeps_its_markers(ros_env, tmp_path):
    """A ROS installation without vision_msgs (its import fails: a package of that name that
    raises ImportError stands first on PYTHONPATH) gets one warning naming it, and the node comes
    up with ~/objects and without ~/detections."""
    model = shipped_model(ros_env)
    if not (Path(model) / 'cell_classifier.onnx').is_file():
        pytest.skip(f'{model} has no cell_classifier.onnx (not a GeoVR-S v2 export)')
    blocker = tmp_path / 'vision_msgs'
    blocker.mkdir()
    (blocker / '__init__.py').write_text("raise ImportError('vision_msgs is absent in this test')\n")
    env = {**ros_env, 'PYTHONPATH': os.pathsep.join(p for p in (str(tmp_path), ros_env.get('PYTHONPATH')) if p)}
    node = Process('geovr_node', node_args({'model': str(model)}, {'__ns': '/novision'}), env, 'no_vision_msgs_node')
    rclpy.init()
    probe = rclpy.create_node('no_vision_probe')
    try:
        assert node.wait_for_output('active:', 90), node.output()[-2000:]
        output = node.output()
        warned = [line for line in output.splitlines() if 'vision_msgs is not installed' in line]
        assert len(warned) == 1 and 'absent in this test' in warned[0], output[-2000:]
        assert 'Traceback' not in output
        spin_until(probe, lambda: bool(probe.get_publishers_info_by_topic('/novision/geovr_node/objects')), 10)
        assert probe.get_publishers_info_by_topic('/novision/geovr_node/objects')
        assert not probe.get_publishers_info_by_topic('/novision/geovr_node/detections')
    finally:
        node.stop()
        probe.destroy_node()
        rclpy.try_shutdown()
