"""Object map -> visualization_msgs/MarkerArray, with the real message classes (no node)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

visualization_msgs = pytest.importorskip('visualization_msgs.msg', reason='visualization_msgs (ROS 2) not importable')
rclpy_serialization = pytest.importorskip('rclpy.serialization', reason='rclpy not importable')

from builtin_interfaces.msg import Time  # noqa: E402

from geovr_ros.objects import ObjectInstance  # noqa: E402
from geovr_ros.ros.object_markers import category_colour, object_markers  # noqa: E402

Marker, MarkerArray = visualization_msgs.Marker, visualization_msgs.MarkerArray


def inst(iid, category, centre, size):
    c, h = np.asarray(centre, float), np.asarray(size, float) / 2
    return ObjectInstance(iid, category, 0.75, c, c - h, c + h, 4, 1.0, 2.0, (0, 1))


def test_markers_of_instances():
    instances = [inst(3, 'chair', (1.0, 2.0, 0.45), (0.5, 0.4, 0.9)),
                 inst(7, 'table', (0.0, 0.0, 0.375), (1.2, 0.8, 0.0)),
                 inst(9, 'chair', (-1.0, 2.0, 0.45), (0.5, 0.4, 0.9))]
    stamp = Time(sec=12, nanosec=5)
    msg = object_markers(instances, 'map', stamp)
    assert isinstance(msg, MarkerArray) and len(msg.markers) == 1 + 2 * 3
    first = msg.markers[0]
    assert first.action == Marker.DELETEALL  # removed or merged instances vanish
    cubes = [m for m in msg.markers if m.type == Marker.CUBE]
    labels = [m for m in msg.markers if m.type == Marker.TEXT_VIEW_FACING]
    assert [(m.ns, m.id) for m in cubes] == [('chair', 6), ('table', 14), ('chair', 18)]  # stable: 2 * id
    assert [(m.ns, m.id) for m in labels] == [('chair', 7), ('table', 15), ('chair', 19)]
    assert all(m.header.frame_id == 'map' and m.header.stamp == stamp and m.action == Marker.ADD
               for m in msg.markers[1:])
    chair = cubes[0]
    assert (chair.pose.position.x, chair.pose.position.y, chair.pose.position.z) == (1.0, 2.0, 0.45)
    assert (chair.scale.x, chair.scale.y, chair.scale.z) == pytest.approx((0.5, 0.4, 0.9))
    assert cubes[1].scale.z == pytest.approx(0.05)  # a flat box still shows (min_side)
    assert chair.color == cubes[2].color and chair.color != cubes[1].color and 0 < chair.color.a < 1
    assert labels[0].text == 'chair 3 · 0.75 · named in 4 of 4 views'
    red = dataclasses.replace(inst(3, 'chair', (1.0, 2.0, 0.45), (0.5, 0.4, 0.9)), colour=np.array([0.7, 0.1, 0.1]))
    assert object_markers([red], 'map', stamp).markers[2].text.startswith('red chair 3 · ')   # the colour it looks
    believed = dataclasses.replace(instances[0], belief=0.912)   # a map with a verifier
    assert object_markers([believed], 'map', stamp).markers[2].text.endswith('of 4 views · belief 0.91')
    doubted = dataclasses.replace(instances[0], belief=0.05, doubted=True)   # kept as its category's best evidence
    cube, label = object_markers([doubted], 'map', stamp).markers[1:]
    assert label.text.endswith('belief 0.05 · doubted') and cube.color.a == pytest.approx(0.1)
    assert label.color.a == pytest.approx(0.2) and chair.color.a == pytest.approx(0.35)   # faint beside a believed one
    assert labels[0].pose.position.z == pytest.approx(0.45 + 0.45 + 0.15)  # above the box along z
    # a valid message: it serialises
    assert len(rclpy_serialization.serialize_message(msg)) > 0


def test_the_rooms_floor_is_drawn_when_given():
    from geovr_ros.objects.room import FloorOutline
    corners = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [4.0, 5.0, 0.0], [0.0, 5.0, 0.0]])
    floor = FloorOutline(20.0, corners, 4.0, 5.0, 17.5, 1000)
    msg = object_markers([inst(3, 'chair', (1.0, 2.0, 0.45), (0.5, 0.4, 0.9))], 'map', Time(), floor=floor)
    line, label = [m for m in msg.markers if m.ns == 'room']
    assert (line.type, line.id, label.type, label.id) == (Marker.LINE_STRIP, 0, Marker.TEXT_VIEW_FACING, 1)
    assert [(p.x, p.y, p.z) for p in line.points] == [tuple(c) for c in corners] + [tuple(corners[0])]   # closed
    assert label.text == 'floor 20.0 m² (4.0 x 5.0 m)' and label.pose.position.z > 0
    assert not [m for m in object_markers([], 'map', Time()).markers if m.ns == 'room']
    assert len(rclpy_serialization.serialize_message(msg)) > 0


def test_labels_follow_the_given_up_direction_and_colours_are_fixed():
    msg = object_markers([inst(1, 'lamp', (0.0, 0.0, 2.0), (0.4, 1.4, 0.4))], 'map', Time(), up=(0.0, -1.0, 0.0))
    label = msg.markers[2]
    assert (label.pose.position.x, label.pose.position.y, label.pose.position.z) == \
        pytest.approx((0.0, -(0.7 + 0.15), 2.0))
    assert category_colour('lamp') == category_colour('lamp', 1.0)
    assert category_colour('lamp') != category_colour('sofa')


def test_an_empty_map_only_clears():
    msg = object_markers([], 'map', Time())
    assert [m.action for m in msg.markers] == [Marker.DELETEALL]


def test_instances_the_answers_do_not_count_are_drawn_fainter():
    # chair 9 is under half as confident as chair 3: "how many chairs?" counts one, RViz shows it faint
    instances = [dataclasses.replace(inst(3, 'chair', (1.0, 2.0, 0.45), (0.5, 0.4, 0.9)), confidence=0.8),
                 dataclasses.replace(inst(9, 'chair', (-1.0, 2.0, 0.45), (0.5, 0.4, 0.9)), confidence=0.3),
                 dataclasses.replace(inst(7, 'table', (0.0, 0.0, 0.375), (1.2, 0.8, 0.75)), confidence=0.3)]
    msg = object_markers(instances, 'map', Time(), box_alpha=0.35, uncertain_alpha=0.1)
    cubes = {m.id // 2: m for m in msg.markers if m.type == Marker.CUBE}
    labels = {m.id // 2: m for m in msg.markers if m.type == Marker.TEXT_VIEW_FACING}
    assert cubes[3].color.a == pytest.approx(0.35) and cubes[9].color.a == pytest.approx(0.1)
    assert cubes[7].color.a == pytest.approx(0.35)        # the only table: its category's best
    assert labels[9].text.endswith(' · uncertain') and not labels[3].text.endswith('uncertain')
    assert labels[9].color.a == pytest.approx(0.2) and labels[3].color.a == pytest.approx(1.0)
