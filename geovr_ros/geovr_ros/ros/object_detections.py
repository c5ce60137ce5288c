"""Object map -> vision_msgs/Detection3DArray (a pure function; no node).

The map as robots consume detections (the markers of `object_markers` are for people): one
Detection3D per instance the answers count (`objects.queries.credible_mask`: each category's
at least half as confident as its best) and the map's verifier believes (an instance it doubts,
kept in `ObjectMap.instances()` only as its category's best evidence, is a candidate an answer
may mention with "uncertain", not a detection a robot should act on), in the map's frame:
- `id`: the instance id as a string, stable while the instance is refined, moved by the pose
  graph, or saved and loaded with the map (the markers' ids are 2 id and 2 id + 1);
- `bbox`: the object's own box (`ObjectInstance.oriented_box`: turned to its footprint about
  the map's vertical axis when that is known), centre, orientation and size in metres;
- `results`: one hypothesis, `class_id` the category (the vocabulary's name, e.g. 'chair',
  'coffee machine') and `score` the instance's naming confidence in [0, 1]; its pose the
  centroid the answers measure from (which need not be the box centre), turned as the box; the
  covariance is not estimated and left zero.
"""
from __future__ import annotations

from typing import Sequence

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, PoseWithCovariance, Quaternion, Vector3
from std_msgs.msg import Header
from vision_msgs.msg import BoundingBox3D, Detection3D, Detection3DArray, ObjectHypothesis, ObjectHypothesisWithPose

from geovr_ros.geometry import quat_xyzw_from_matrix
from geovr_ros.objects.object_map import ObjectInstance
from geovr_ros.objects.queries import credible_mask

__all__ = ['object_detections']


def object_detections(instances: Sequence[ObjectInstance], frame_id: str, stamp: Time) -> Detection3DArray:
    """Detection3DArray of the credible `instances` the verifier does not doubt (boxes and
    centroids in `frame_id`), in the order given; an empty map gives an empty array (so a
    reset map clears a consumer's)."""
    header = Header(frame_id=frame_id, stamp=stamp)
    out = Detection3DArray(header=header)
    for inst, credible in zip(instances, credible_mask(instances)):
        if not credible or inst.doubted:
            continue
        box = inst.oriented_box
        qx, qy, qz, qw = (float(v) for v in quat_xyzw_from_matrix(box.axes))
        turned = Quaternion(x=qx, y=qy, z=qz, w=qw)
        hypothesis = ObjectHypothesisWithPose(
            hypothesis=ObjectHypothesis(class_id=inst.category, score=float(inst.confidence)),
            pose=PoseWithCovariance(pose=Pose(position=_point(inst.centroid), orientation=turned)))
        out.detections.append(Detection3D(
            header=header, id=str(int(inst.instance_id)), results=[hypothesis],
            bbox=BoundingBox3D(center=Pose(position=_point(box.centre), orientation=turned),
                               size=Vector3(x=float(box.size[0]), y=float(box.size[1]), z=float(box.size[2])))))
    return out


def _point(p) -> Point:
    return Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
