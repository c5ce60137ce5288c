"""`SessionConfig`: the per-frame knobs of a `Session`, read from geovr_node's parameters.

The parameters are declared once, in `geovr_ros/nodes/geovr_node_params.py` (and
config/geovr.yaml); the defaults here are the same values (a test checks that they agree),
so that the offline evaluation and the tests run what the node runs without ROS.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

ODOMETRY_METHODS = ('geometric', 'learned')
ODOM_CHILDREN = ('camera', 'base')


@dataclass(frozen=True)
class SessionConfig:
    """Every node parameter a `Session` reads (names, units and meaning as in docs/ros.md).

    odometry_method: 'geometric' (PnP on the model's depth; a failed frame takes the pose
    `tracking_fallback` names: 'motion' the constant-velocity prediction, the last tracked
    motion for `tracking_fallback_frames` failed frames in a row, 'learned' the learned
    relative pose, 'reference' the camera's motion since the previous frame in the reference
    odometry of `scale_odometry_topic`, carried on at its last velocity up to
    `session.REFERENCE_EXTRAPOLATION_S` past its newest pose (the motion model beyond; needs
    odom_child 'base', whose mount turns the base's motion into the camera's)) or 'learned'
    (the pose head alone). Frame names (odom_frame, map_frame, base_frame, odom_child) are
    those a question's target_frame may name.
    log_throttle_period: seconds between two 'geometric tracking failed' log lines.
    odom_level_from_depth: with odom_child 'camera', the first frame's up is the one its depth
    shows (`geometry.up_from_depth`; the tracking depth when given, else the model's) instead
    of its optical -y; a view without horizontal surfaces keeps -y.
    floor_camera_height: the optical centre's height above the floor, metres (0: off); when
    set, the model's depth is rescaled so that the floor it shows lies that far below the
    camera (`geovr_ros.geometry.floor`; up is odom's z with odom_child base, else the first
    frame's up, levelled by its depth with odom_level_from_depth).
    floor_height_from_mount: with odom_child 'base', floor_camera_height is the mount's: the
    optical centre's height above base_frame's origin, which then lies on the floor (REP 105's
    base_footprint); taken when the mount is set (`Session.set_mount`).
    scale_odometry_topic: a reference odometry (nav_msgs/Odometry: a robot's wheel odometry)
    whose travelled distance gives the model's depth its scale ('' off; the node subscribes to
    it, the session takes its camera poses through `Session.add_reference_pose`;
    `geovr_ros.geometry.odometry_scale`); scale_odometry_min_motion (m): the reference motion
    from a frame's tracking keyframe that makes a sample; scale_odometry_window: the samples
    whose median is the scale.
    objects_enabled: keep the object map (needs a model with a cell classifier and geometric
    odometry); object_vocabulary: a user vocabulary YAML merged over the shipped one ('' none);
    object_view_translation (m), object_view_rotation (rad): a tracked frame is named into the
    object map when the camera moved or turned this much since the last named frame (every new
    tracking keyframe is named).
    """

    odometry_method: str = 'geometric'
    tracking_max_features: int = 1000
    tracking_threshold_px: float = 3.0
    tracking_search_radius_px: float = 15.0
    tracking_min_inliers: int = 15
    tracking_fallback: str = 'motion'
    tracking_fallback_frames: int = 3
    tracking_scale_alignment: float = 0.7
    tracking_correspondences: str = 'flow'
    tracking_shift_recovery: bool = True
    tracking_shift_fallback: bool = True
    tracking_window_keyframes: int = 10
    tracking_window_depth_sigma: float = 0.1
    floor_camera_height: float = 0.0
    floor_height_from_mount: bool = False
    scale_odometry_topic: str = ''
    scale_odometry_min_motion: float = 0.15
    scale_odometry_window: int = 30
    odometry_reference_translation: float = 0.3
    odometry_reference_rotation: float = 0.35
    odometry_max_reference_frames: int = 1
    time_jump_threshold: float = 1.0
    localization_enabled: bool = True
    keyframe_translation: float = 0.5
    keyframe_rotation: float = 0.35
    keyframe_min_overlap: float = 0.6
    max_map_keyframes: int = 500
    match_threshold: float = 0.9
    match_candidates: int = 3
    match_min_overlap: float = 0.3
    relocalize_period: int = 10
    alignment_window: int = 1
    memory_max_keyframes: int = 64
    memory_max_tokens: int = 256
    path_resolution: float = 0.25
    max_question_chars: int = 1000
    odom_frame: str = 'odom'
    map_frame: str = 'map'
    base_frame: str = 'base_link'
    odom_child: str = 'camera'
    odom_level_from_depth: bool = True
    log_throttle_period: float = 10.0
    objects_enabled: bool = True
    object_vocabulary: str = ''
    object_view_translation: float = 0.05
    object_view_rotation: float = 0.05

    def __post_init__(self) -> None:
        if self.odometry_method not in ODOMETRY_METHODS:
            raise ValueError(f'odometry_method must be one of {ODOMETRY_METHODS}, got '
                             f'{self.odometry_method!r}')
        if self.odom_child not in ODOM_CHILDREN:
            raise ValueError(f'odom_child must be one of {ODOM_CHILDREN}, got {self.odom_child!r}')
        for name in ('relocalize_period', 'max_map_keyframes', 'memory_max_keyframes',
                     'memory_max_tokens', 'max_question_chars', 'alignment_window', 'match_candidates',
                     'scale_odometry_window'):
            if int(getattr(self, name)) < 1:
                raise ValueError(f'{name} must be >= 1, got {getattr(self, name)!r}')
        if not np.isfinite(self.floor_camera_height) or self.floor_camera_height < 0:
            raise ValueError(f'floor_camera_height must be >= 0 metres (0: off), got '
                             f'{self.floor_camera_height!r}')
        if self.floor_height_from_mount and self.odom_child != 'base':
            raise ValueError(f"floor_height_from_mount needs odom_child 'base' (a mount on a base that "
                             f"stands on the floor), got odom_child {self.odom_child!r}")
        if self.floor_height_from_mount and self.floor_camera_height > 0:
            raise ValueError(f'give the camera height once: floor_camera_height {self.floor_camera_height!r} '
                             f'or floor_height_from_mount, not both')
        if self.scale_odometry_topic and self.odometry_method != 'geometric':
            raise ValueError(f"scale_odometry_topic needs odometry_method 'geometric' (the scale compares "
                             f"tracked distances), got {self.odometry_method!r}")
        if self.scale_odometry_topic and (self.floor_camera_height > 0 or self.floor_height_from_mount):
            raise ValueError(f'give the depth one scale source: scale_odometry_topic '
                             f'{self.scale_odometry_topic!r} or the floor (floor_camera_height, '
                             f'floor_height_from_mount), not both')
        if self.tracking_fallback == 'reference' and not (self.scale_odometry_topic and self.odom_child == 'base'):
            raise ValueError(f"tracking_fallback 'reference' needs a reference odometry (scale_odometry_topic, "
                             f"got {self.scale_odometry_topic!r}) and odom_child 'base' (its mount turns the "
                             f"base's motion into the camera's; got {self.odom_child!r})")
        if not np.isfinite(self.scale_odometry_min_motion) or self.scale_odometry_min_motion <= 0:
            raise ValueError(f'scale_odometry_min_motion must be a positive number of metres, got '
                             f'{self.scale_odometry_min_motion!r}')
        for name in ('object_view_translation', 'object_view_rotation'):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f'{name} must be a non-negative number, got {getattr(self, name)!r}')
        if not np.isfinite(self.log_throttle_period) or self.log_throttle_period < 0:
            raise ValueError(f'log_throttle_period must be a non-negative number, got '
                             f'{self.log_throttle_period!r}')

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> SessionConfig:
        """The config from a node parameter dict (name -> value; other names ignored).
        Raises KeyError naming a missing parameter."""
        missing = [f.name for f in fields(cls) if f.name not in parameters]
        if missing:
            raise KeyError(f'parameters missing for the session: {", ".join(missing)}')
        return cls(**{f.name: parameters[f.name] for f in fields(cls)})
