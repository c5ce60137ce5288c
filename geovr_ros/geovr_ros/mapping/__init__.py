"""Localization as a pose graph (pure core: numpy, OpenCV, GTSAM; no rclpy).

Tracking keyframes become poses in a GTSAM factor graph: odometry factors between
consecutive keyframes (the tracker's relative pose and covariance), loop-closure factors
from places seen again and verified geometrically (PnP between the two keyframes), each
with a robust noise model so that one wrong match cannot bend the map; optimised
incrementally with iSAM2. `map -> odom` is the optimised pose of the newest keyframe
composed with the inverse of its odometry pose.

    from geovr_ros.mapping import KeyframeGraph
    graph = KeyframeGraph()
    graph.add_keyframe(keyframe)            # from geovr_ros.tracking.KeyframeTracker
    closure = graph.close_loops(keyframe)   # LoopClosure or None
    graph.T_map_odom                        # (4, 4)
"""
from geovr_ros.mapping.keyframe_graph import GraphConfig, KeyframeGraph, LoopClosure
from geovr_ros.mapping.pose_graph import PoseGraph, PoseGraphError

__all__ = ['GraphConfig', 'KeyframeGraph', 'LoopClosure', 'PoseGraph', 'PoseGraphError']
