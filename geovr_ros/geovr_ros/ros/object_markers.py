"""Object map -> visualization_msgs/MarkerArray (a pure function; no node).

One DELETEALL first (so instances merged away or forgotten vanish), then per instance a
CUBE (its box, turned to its footprint when the map's vertical axis is known, translucent) and a TEXT_VIEW_FACING label ("red chair 3 · 0.97 ·
named in 5 of 6 views · belief 0.91", the belief when the map has a verifier) above it, both in the namespace of its category. An instance the answers do not
count (under half as confident as its category's best: `objects.queries.credible_mask`) is
drawn fainter and its label ends "uncertain"; one the map's verifier doubts (kept only as its
category's best evidence, left out of the node's detections) is drawn as faint and its label
ends "doubted": what RViz shows agrees with what the node answers and detects. Ids are stable: the instance id
times two (cube) and plus one (label), so RViz updates a box in place as it is refined.
Colours are a fixed function of the category name. The room's floor outline, when given, is a
white rectangle on the floor with its area above it (namespace 'room').
"""
from __future__ import annotations

import colorsys
import zlib
from typing import Sequence

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, Vector3
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from geovr_ros.geometry import quat_xyzw_from_matrix
from geovr_ros.objects.colours import colour_name
from geovr_ros.objects.object_map import ObjectInstance
from geovr_ros.objects.queries import credible_mask
from geovr_ros.objects.room import FloorOutline

__all__ = ['category_colour', 'object_markers']


def category_colour(category: str, alpha: float = 1.0) -> ColorRGBA:
    """A saturated colour, the same for a category name on every run (hue from CRC-32)."""
    hue = (zlib.crc32(category.encode('utf-8')) % 360) / 360.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(alpha))


def object_markers(instances: Sequence[ObjectInstance], frame_id: str, stamp: Time,
                   up: Sequence[float] = (0.0, 0.0, 1.0), box_alpha: float = 0.35,
                   text_height: float = 0.15, min_side: float = 0.05,
                   floor: FloorOutline | None = None, uncertain_alpha: float = 0.1) -> MarkerArray:
    """MarkerArray of `instances` (boxes and centroids in `frame_id`) and, when given, the
    room's `floor` outline (`ObjectMap.room`, in `frame_id`: a closed LINE_STRIP on the floor and
    its area as a label, namespace 'room', ids 0 and 1; the outline a room-size answer gives).

    up: the frame's up direction (unit vector): labels are placed above the box along it
    (REP 103 frames are z up; an optical-aligned map would be -y). min_side: metres, the
    smallest drawn box side (a flat observation still shows). uncertain_alpha: the box alpha of
    an instance the answers do not count or the verifier doubts (its label's too, doubled).
    """
    header = Header(frame_id=frame_id, stamp=stamp)
    up = np.asarray(up, dtype=np.float64)
    up = up / np.linalg.norm(up)
    out = MarkerArray()
    out.markers.append(Marker(header=header, action=Marker.DELETEALL))
    identity = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)
    counted = credible_mask(instances)
    for inst, credible in zip(instances, counted):
        faint = inst.doubted or not credible
        box = inst.oriented_box
        centre = box.centre
        side = np.maximum(box.size, min_side)
        qx, qy, qz, qw = (float(v) for v in quat_xyzw_from_matrix(box.axes))
        cube = Marker(header=header, ns=inst.category, id=2 * int(inst.instance_id), type=Marker.CUBE,
                      action=Marker.ADD,
                      pose=Pose(position=Point(x=float(centre[0]), y=float(centre[1]), z=float(centre[2])),
                                orientation=Quaternion(x=qx, y=qy, z=qz, w=qw)),
                      scale=Vector3(x=float(side[0]), y=float(side[1]), z=float(side[2])),
                      color=category_colour(inst.category, uncertain_alpha if faint else box_alpha))
        top = centre + up * (float(np.abs(up @ box.axes) @ side) / 2 + text_height)
        label = Marker(header=header, ns=inst.category, id=2 * int(inst.instance_id) + 1,
                       type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                       pose=Pose(position=Point(x=float(top[0]), y=float(top[1]), z=float(top[2])),
                                 orientation=identity),
                       scale=Vector3(x=0.0, y=0.0, z=float(text_height)),
                       color=category_colour(inst.category, min(1.0, 2 * uncertain_alpha) if faint else 1.0),
                       text=f'{colour_name(inst.colour)} {inst.category} {inst.instance_id} · '.lstrip()
                            + f'{inst.confidence:.2f} · named in {inst.n_views}'
                            f' of {inst.n_views + inst.n_missed} views'
                            + ('' if inst.belief is None else f' · belief {inst.belief:.2f}')
                            + ('' if credible else ' · uncertain') + (' · doubted' if inst.doubted else ''))
        out.markers += [cube, label]
    if floor is not None:
        out.markers += _floor_markers(floor, header, up, text_height)
    return out


def _floor_markers(floor: FloorOutline, header: Header, up: np.ndarray, text_height: float) -> list[Marker]:
    identity = Quaternion(x=0.0, y=0.0, z=0.0, w=1.0)
    white = ColorRGBA(r=0.9, g=0.9, b=0.9, a=1.0)
    corners = [Point(x=float(c[0]), y=float(c[1]), z=float(c[2])) for c in floor.outline]
    line = Marker(header=header, ns='room', id=0, type=Marker.LINE_STRIP, action=Marker.ADD,
                  pose=Pose(orientation=identity), scale=Vector3(x=0.03, y=0.0, z=0.0), color=white,
                  points=corners + corners[:1])
    centre = floor.outline.mean(0) + up * text_height
    label = Marker(header=header, ns='room', id=1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD,
                   pose=Pose(position=Point(x=float(centre[0]), y=float(centre[1]), z=float(centre[2])),
                             orientation=identity),
                   scale=Vector3(x=0.0, y=0.0, z=float(2 * text_height)), color=white,
                   text=f'floor {floor.area_m2:.1f} m² ({floor.width_m:.1f} x {floor.depth_m:.1f} m)')
    return [line, label]
