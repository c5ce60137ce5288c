"""`GeometricOdometry`: the geometric half of a frame's odometry, as geovr_node runs it.

Frame-to-keyframe tracking (`geovr_ros.tracking.KeyframeTracker`) with every tracking
keyframe put into the pose graph (`geovr_ros.mapping.KeyframeGraph`) when mapping, and the
velocities from the previous tracked pose. `Session` runs it on the model's depth;
`python -m geovr_ros.tracking.bench` runs it on a recording's true depth.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import relative_pose, rotate_covariance, so3_log
from geovr_ros.mapping import KeyframeGraph, LoopClosure
from geovr_ros.tracking import KeyframeTracker, TrackerConfig, TrackingStep


@dataclass(frozen=True)
class GeometricStep:
    """One tracked frame: the tracker's step; the loop the graph closed with its keyframe
    (None when none, or no graph); linear_velocity, angular_velocity (3,) m/s and rad/s in
    the optical camera frame from the previous tracked frame (zero on the first);
    tracking_ms, graph_ms: wall time of the tracker and of the graph update;
    twist_covariance (6, 6) of the velocities, (m/s)^2 and (rad/s)^2 in the same axes: the
    pose's covariance from its keyframe (`TrackingStep.covariance`, which holds the
    frame-to-frame errors too) turned into the camera's axes, over dt^2; None without a
    previous frame or without PnP."""

    step: TrackingStep
    loop_closure: LoopClosure | None
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    tracking_ms: float
    graph_ms: float
    twist_covariance: np.ndarray | None = None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class GeometricOdometry:
    """KeyframeTracker + KeyframeGraph (see the module docstring).

    Args:
        config: the tracker's knobs.
        mapping: keep the keyframes in a pose graph (needs gtsam; without it `graph` stays
            None and one warning says so).
        logger: gets the 'no pose graph' warning (anything with `.warning`).
    """

    def __init__(self, config: TrackerConfig | None = None, mapping: bool = True, logger=None):
        self.tracker = KeyframeTracker(config)
        self.mapping = mapping
        self.log = logger or logging.getLogger(__name__)
        self.graph = self._new_graph()
        self._last: tuple[float, np.ndarray] | None = None   # (stamp, T_odom_cam) tracked last
        self._step: TrackingStep | None = None
        self.graph_restarts = 0   # GTSAM failures the graph restarted after (logged)

    def _new_graph(self):
        if not self.mapping:
            return None
        try:
            return KeyframeGraph()   # gtsam is imported here
        except ImportError as error:
            self.log.warning(f'no pose graph ({error}); map -> odom from the keyframe map alignment')
            return None

    def reset(self) -> None:
        """Odometry restarts: no keyframe, an empty graph."""
        self.tracker.reset()
        self.graph = self._new_graph()
        self._last = None
        self._step = None

    def reset_graph(self) -> None:
        """A new, empty pose graph (the map is cleared); tracking carries on."""
        self.graph = self._new_graph()

    @property
    def last_step(self) -> TrackingStep | None:
        """The newest frame's TrackingStep (None before the first frame after a reset)."""
        return self._step

    def track(self, stamp: float, gray: np.ndarray, K: np.ndarray, depth: np.ndarray,
              depth_K: np.ndarray | None = None, fallback_T_prev_cur: np.ndarray | None = None
              ) -> GeometricStep:
        """One frame at `stamp` (s): gray uint8 (H, W) with K (3, 3); depth (h, w) metres of
        the same frame with its intrinsics depth_K (default K); fallback_T_prev_cur (4, 4) the
        learned relative pose from the previous frame (see `KeyframeTracker.track`)."""
        start = time.perf_counter()
        step = self.tracker.track(gray, K, depth, depth_K, fallback_T_prev_cur)
        tracked = time.perf_counter()
        closure = None
        if self.graph is not None and step.keyframe is not None:
            try:
                closure = self.graph.add_keyframe(step.keyframe)
            except RuntimeError as error:   # GTSAM: an ill-posed system; the graph cannot go on
                self.log.warning(f'pose graph restarted at keyframe {step.keyframe.id}: {_first_line(error)}')
                self.graph = self._new_graph()
                self.graph_restarts += 1
                try:
                    if self.graph is not None:
                        self.graph.add_keyframe(step.keyframe)
                except RuntimeError as again:   # the keyframe itself is ill-posed: the next one starts the graph
                    self.log.warning(f'keyframe {step.keyframe.id} left out of the pose graph: {_first_line(again)}')
                    self.graph = self._new_graph()
        done = time.perf_counter()
        linear, angular, twist_covariance = np.zeros(3), np.zeros(3), None
        if self._last is not None and stamp - self._last[0] > 0:
            dt = stamp - self._last[0]
            T_last_cur = relative_pose(self._last[1], step.T_odom_cam)
            linear, angular = T_last_cur[:3, 3] / dt, so3_log(T_last_cur[:3, :3]) / dt
            if step.covariance is not None:   # odom axes -> the last camera's, in which T_last_cur is
                twist_covariance = rotate_covariance(step.covariance, self._last[1][:3, :3].T) / dt ** 2
        self._last = (float(stamp), step.T_odom_cam)
        self._step = step
        return GeometricStep(step, closure, linear, angular, (tracked - start) * 1e3,
                             (done - tracked) * 1e3, twist_covariance)
