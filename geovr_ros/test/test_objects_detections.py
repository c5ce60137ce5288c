"""Object map -> vision_msgs/Detection3DArray, with the real message classes (no node)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

vision_msgs = pytest.importorskip('vision_msgs.msg', reason='vision_msgs (ROS 2) not importable')
rclpy_serialization = pytest.importorskip('rclpy.serialization', reason='rclpy not importable')

from builtin_interfaces.msg import Time  # noqa: E402

from geovr_ros.geometry import quat_xyzw_from_matrix  # noqa: E402
from geovr_ros.objects import ObjectInstance  # noqa: E402
from geovr_ros.objects.footprint import OrientedBox  # noqa: E402
from geovr_ros.ros.object_detections import object_detections  # noqa: E402

# vision_msgs 4.x (Humble to Rolling) as every ROS 2 installation since Iron hashes it; the same
# hash stands in other client libraries' generated code, so a stand-in with another one would
# not talk to a real subscriber
DETECTION3D_ARRAY_HASH = 'RIHS01_793f5eab9595ac1c0da07873cc859db42eae51f0ee76056db8562515d830e018'


def inst(iid, category, centre, size, confidence=0.75, footprint=None, doubted=False):
    c, h = np.asarray(centre, float), np.asarray(size, float) / 2
    return ObjectInstance(iid, category, confidence, c + [0.05, 0.0, 0.0], c - h, c + h, 4, 1.0, 2.0, (0, 1),
                          footprint_box=footprint, belief=0.05 if doubted else None, doubted=doubted)


def test_detections_of_the_instances_the_answers_count():
    yaw = np.radians(30.0)
    axes = np.array([[np.cos(yaw), -np.sin(yaw), 0.0], [np.sin(yaw), np.cos(yaw), 0.0], [0.0, 0.0, 1.0]])
    turned = OrientedBox(np.array([0.0, 0.0, 0.375]), axes, np.array([1.2, 0.8, 0.75]))
    instances = [inst(3, 'chair', (1.0, 2.0, 0.45), (0.5, 0.4, 0.9)),
                 inst(7, 'table', (0.0, 0.0, 0.375), (1.0, 1.0, 0.75), footprint=turned),
                 inst(9, 'chair', (-1.0, 2.0, 0.45), (0.5, 0.4, 0.9), confidence=0.2),   # under half the best chair's
                 inst(12, 'coffee machine', (3.0, 1.0, 1.0), (0.3, 0.4, 0.5), confidence=0.3),
                 inst(15, 'bed', (4.0, 0.0, 0.5), (2.0, 1.4, 1.0), doubted=True)]   # the verifier doubts it
    stamp = Time(sec=12, nanosec=5)
    msg = object_detections(instances, 'map', stamp)
    assert isinstance(msg, vision_msgs.Detection3DArray)
    assert msg.header.frame_id == 'map' and msg.header.stamp == stamp
    assert [d.id for d in msg.detections] == ['3', '7', '12']   # the doubtful second chair and the doubted bed left out
    assert all(d.header == msg.header and len(d.results) == 1 for d in msg.detections)
    chair, table, machine = msg.detections
    assert chair.results[0].hypothesis.class_id == 'chair' and chair.results[0].hypothesis.score == pytest.approx(0.75)
    assert machine.results[0].hypothesis.class_id == 'coffee machine'
    c = chair.bbox.center.position
    assert (c.x, c.y, c.z) == pytest.approx((1.0, 2.0, 0.45))
    assert (chair.bbox.size.x, chair.bbox.size.y, chair.bbox.size.z) == pytest.approx((0.5, 0.4, 0.9))
    p = chair.results[0].pose.pose.position    # the centroid the answers measure from, not the box centre
    assert (p.x, p.y, p.z) == pytest.approx((1.05, 2.0, 0.45))
    assert list(chair.results[0].pose.covariance) == [0.0] * 36
    q = table.bbox.center.orientation           # the footprint box, turned 30 deg about z
    assert (q.x, q.y, q.z, q.w) == pytest.approx(tuple(quat_xyzw_from_matrix(axes)))
    assert table.results[0].pose.pose.orientation == q
    assert (table.bbox.size.x, table.bbox.size.y, table.bbox.size.z) == pytest.approx((1.2, 0.8, 0.75))
    back = rclpy_serialization.deserialize_message(rclpy_serialization.serialize_message(msg),
                                                   vision_msgs.Detection3DArray)
    assert back == msg


def test_an_empty_map_gives_an_empty_array():
    msg = object_detections([], 'odom', Time(sec=1))
    assert msg.header.frame_id == 'odom' and list(msg.detections) == []


def test_the_installed_vision_msgs_is_wire_compatible():
    """The stand-in scripts/bootstrap.sh builds where no vision_msgs exists (or the real one)."""
    package = Path(vision_msgs.__file__).resolve().parent.parent
    descriptions = [parent / 'share' / 'vision_msgs' / 'msg' / 'Detection3DArray.json' for parent in package.parents]
    found = [d for d in descriptions if d.is_file()]
    if not found:
        pytest.skip('no type description of vision_msgs/msg/Detection3DArray (ROS 2 before Iron has none)')
    hashes = {h['type_name']: h['hash_string'] for h in json.loads(found[0].read_text())['type_hashes']}
    assert hashes['vision_msgs/msg/Detection3DArray'] == DETECTION3D_ARRAY_HASH
