"""What `Session.process` returns for one frame: a `ProcessedFrame` or a `FrameDrop`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from geovr_ros.inference.decode import PerceptionResult
from geovr_ros.mapping import LoopClosure
from geovr_ros.odometry import OdometryUpdate, StampCheck
from geovr_ros.tracking import TrackingStep

#: FrameDrop reasons (geovr_node's `dropped_<reason>` diagnostics keys).
DROP_REASONS = ('repeated', 'out_of_order', 'stamp_jump', 'bad_input')


@dataclass(frozen=True)
class FrameDrop:
    """A frame the session did not process. reason: one of DROP_REASONS; message: the
    one-line reason, with the offending values; stamp_check: JUMP_BACK when the frame
    confirmed a time jump backwards (odometry restarted) before it was refused, else OK."""

    reason: str
    message: str
    stamp_check: StampCheck = StampCheck.OK

    @property
    def dropped(self) -> bool:
        return True


@dataclass(frozen=True)
class ProcessedFrame:
    """One processed frame. Poses are (4, 4) float64, metres.

    stamp: seconds. perception: the model's outputs for the frame (depth (h, w) m and its K,
    scale, tokens, descriptor). odometry: what odometry publishes (geometric pose when
    tracking; velocities (3,) m/s and rad/s in the optical camera frame). learned: the
    learned pose head's chain for the same frame (`odometry` itself with
    odometry_method 'learned'); both in the first optical frame. T_odom_cam: the optical
    camera in odom (mount applied). covariance: (6, 6) of that pose in odom axes from
    tracking, or None (none measured: the caller's default). tracking: the geometric
    tracker's step, None with learned odometry. keyframe: a new tracking keyframe (learned
    odometry: a new odometry reference). loop_closure: the loop the pose graph closed with
    this frame, or None. T_map_odom: map <- odom, None while unknown or with localization
    off; map_covariance: (6, 6) of the camera's map pose with it, in map axes. stamp_check: OK, or JUMP_BACK /
    JUMP_FORWARD when this frame confirmed a time jump (JUMP_BACK: odometry restarted).
    timings_ms: preprocess_ms, model_ms (with the floor's scale when floor_camera_height is
    set: about 3 ms at 256x192), perception_callback_ms, tracking_ms, graph_ms,
    odometry_ms (everything from the model's output to the memory, tracking and graph
    included), localization_ms, objects_ms. objects_changed: the object map took new
    observations or moved with the pose graph (publish it again). twist_covariance: (6, 6)
    of the odometry's velocities, (m/s)^2 and (rad/s)^2 in the optical camera frame, from
    tracking (`GeometricStep.twist_covariance`), or None (none measured: the caller's default).
    """

    stamp: float
    perception: PerceptionResult
    odometry: OdometryUpdate
    learned: OdometryUpdate
    T_odom_cam: np.ndarray
    covariance: np.ndarray | None
    tracking: TrackingStep | None
    keyframe: bool
    loop_closure: LoopClosure | None
    T_map_odom: np.ndarray | None
    map_covariance: np.ndarray | None
    stamp_check: StampCheck = StampCheck.OK
    timings_ms: dict[str, float] = field(default_factory=dict)
    objects_changed: bool = False
    twist_covariance: np.ndarray | None = None

    @property
    def dropped(self) -> bool:
        return False

    @property
    def T_map_cam(self) -> np.ndarray | None:
        """The optical camera in map, or None while map -> odom is unknown."""
        return None if self.T_map_odom is None else self.T_map_odom @ self.T_odom_cam


FrameResult = Union[ProcessedFrame, FrameDrop]
