"""Metric scale from a reference odometry: a robot that measures how far it moves (wheel
odometry, a leg or visual-inertial odometry) can measure the scale of a depth map whose shape
is right and whose scale is not.

The geometric tracker places a frame from its tracking keyframe's 3D points, so the distance it
finds from a keyframe is in the units of those points: the map's, which its keyframe alignment
and sliding window carry from older keyframes. When the next keyframe is made, the tracker
measures them against that frame's own depth (`TrackingStep.map_depth_ratio`), which is the
model's times the factor this class applied. The distance the reference moved over the same
stamps, over the tracker's brought back to the model's units, is the factor the model's depth
needed; the running median of many such ratios is the scale, applied to the next frames'
depth. Each ratio is of displacements summed over keyframe intervals until the reference has
moved `min_motion` metres: displacements, not path lengths, so that a tracker's jitter of a
centimetre a frame does not read as motion. Because each sample undoes the factors that were
applied to it, the estimate does not chase its own corrections (no feedback loop), and the
tracker's map follows it at its keyframe alignment's pace (`TrackerConfig.scale_alignment`):
translation does not jump.

Only lengths are compared (of displacements, each summed in its own fixed frame), so the
reference may be in any frame (a wheel odometry's `odom`), but it must be the camera's motion:
a base's positions differ from its camera's by the mount's lever arm while it turns (give the
base pose times the mount). A camera turning in place teaches nothing: a sample needs
`min_motion` metres of reference motion.
"""
from __future__ import annotations

import bisect
import threading
from collections import deque

import numpy as np

from ._arrays import as_float_array
from .transforms import invert_pose, make_pose, non_rigid, so3_exp, so3_log


class ReferenceTrajectory:
    """Camera poses of a reference odometry by stamp (s): positions (3,) metres and, where
    given, orientations (3, 3); the last `history_s` seconds of them, interpolated between two
    stamps that bracket the asked one (positions linearly, orientations along the shortest
    rotation). Fed from one thread (an odometry subscription), read from another."""

    def __init__(self, history_s: float = 60.0):
        if not np.isfinite(history_s) or history_s <= 0:
            raise ValueError(f'history_s must be a positive number of seconds, got {history_s!r}')
        self.history_s = float(history_s)
        self._stamps: list[float] = []
        self._positions: list[np.ndarray] = []
        self._rotations: list[np.ndarray | None] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._stamps)

    def add(self, stamp: float, position, rotation=None) -> None:
        """The camera's position (3,) metres and orientation `rotation` (3, 3) (None: not
        known) at `stamp` (s). The newest stamp again replaces its pose (a publisher that
        sends a stamp twice); an older one starts a new history (a recording played again, a
        clock reset). Raises ValueError for a non-finite stamp, position or rotation, or a
        rotation that is not one."""
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise ValueError(f'a reference stamp must be finite, got {stamp!r}')
        position = as_float_array(position, 'position', (3,), finite=True).reshape(3)
        if rotation is not None:
            rotation = as_float_array(rotation, 'rotation', (3, 3), finite=True).reshape(3, 3)
            if non_rigid(make_pose(rotation, np.zeros(3)))[0]:
                raise ValueError(f'rotation is not a rotation matrix: {rotation.tolist()}')
        with self._lock:
            if self._stamps and stamp == self._stamps[-1]:
                self._positions[-1], self._rotations[-1] = position, rotation
                return
            if self._stamps and stamp < self._stamps[-1]:
                self._clear()
            self._stamps.append(stamp)
            self._positions.append(position)
            self._rotations.append(rotation)
            cut = bisect.bisect_left(self._stamps, stamp - self.history_s)
            if cut:
                del self._stamps[:cut], self._positions[:cut], self._rotations[:cut]

    def _bracket(self, stamp: float, extrapolate_s: float = 0.0) -> tuple[int, int, float] | None:
        """(i0, i1, w): the kept samples around `stamp` and its weight between them (i0 == i1 on
        a kept stamp; the last two and w > 1 for a stamp at most `extrapolate_s` after the
        newest); None outside the history. Under the lock."""
        i = bisect.bisect_left(self._stamps, stamp)
        if i < len(self._stamps) and self._stamps[i] == stamp:
            return i, i, 0.0
        n = len(self._stamps)
        if i == n and n >= 2 and stamp - self._stamps[-1] <= extrapolate_s:
            t0, t1 = self._stamps[-2], self._stamps[-1]
            return n - 2, n - 1, (stamp - t0) / (t1 - t0)
        if i == 0 or i == n:
            return None
        t0, t1 = self._stamps[i - 1], self._stamps[i]
        return i - 1, i, (stamp - t0) / (t1 - t0)

    def position_at(self, stamp: float) -> np.ndarray | None:
        """(3,) metres at `stamp`, interpolated; None outside the kept history."""
        with self._lock:
            found = self._bracket(stamp)
            if found is None:
                return None
            i0, i1, w = found
            return (1 - w) * self._positions[i0] + w * self._positions[i1]

    def pose_at(self, stamp: float, extrapolate_s: float = 0.0) -> np.ndarray | None:
        """The camera's pose (4, 4) at `stamp`, interpolated, or up to `extrapolate_s` seconds
        after the newest pose carried on at the last two poses' velocity (a reference that lags
        the camera); None outside that or where an orientation around it was not given."""
        with self._lock:
            found = self._bracket(stamp, extrapolate_s)
            if found is None:
                return None
            i0, i1, w = found
            R0, R1 = self._rotations[i0], self._rotations[i1]
            if R0 is None or R1 is None:
                return None
            position = (1 - w) * self._positions[i0] + w * self._positions[i1]
        return make_pose(R0 @ so3_exp(w * so3_log(R0.T @ R1)), position)

    def motion(self, stamp_from: float, stamp_to: float, extrapolate_s: float = 0.0) -> np.ndarray | None:
        """T_from_to (4, 4): the camera's motion from `stamp_from` to `stamp_to` in its own
        axes at `stamp_from` (metres); None where the history does not hold both poses (each
        extrapolated up to `extrapolate_s`, `pose_at`)."""
        start, end = self.pose_at(stamp_from, extrapolate_s), self.pose_at(stamp_to, extrapolate_s)
        return None if start is None or end is None else invert_pose(start) @ end

    def _clear(self) -> None:
        self._stamps.clear()
        self._positions.clear()
        self._rotations.clear()

    def clear(self) -> None:
        with self._lock:
            self._clear()


_NO_DISPLACEMENT = (np.zeros(3), np.zeros(3))   # never changed in place: sums make new arrays


class OdometryScale:
    """The factor that puts the model's depth at a reference odometry's scale (see the module
    docstring). Each tracking keyframe closes the interval from the one before to the last
    frame tracked from it (or to itself, when none was): the reference's displacement over it,
    and the tracker's brought back to the model's units. Intervals are summed until the
    reference has moved `min_motion` metres, and log(|reference| / |model|) of the sums is one
    sample; the scale is the median of the last `window` samples, 1 until the first, and moves
    to a new median only when it differs by more than `tolerance` (a fraction): every change
    of scale bends the tracker's map a little while it follows, and a model whose scale is
    right would otherwise change it at every sample. A keyframe placed by a fallback (no PnP)
    breaks the chain. `update` from the camera stream's thread;
    `reference` may be fed from any thread; `scale` read from any."""

    def __init__(self, window: int = 30, min_motion: float = 0.15, history_s: float = 60.0,
                 tolerance: float = 0.05):
        if window < 1:
            raise ValueError(f'window must be >= 1, got {window!r}')
        if not np.isfinite(min_motion) or min_motion <= 0:
            raise ValueError(f'min_motion must be a positive number of metres, got {min_motion!r}')
        if not np.isfinite(tolerance) or tolerance < 0:
            raise ValueError(f'tolerance must be a non-negative fraction, got {tolerance!r}')
        self.min_motion = float(min_motion)
        self.tolerance = float(tolerance)
        self.reference = ReferenceTrajectory(history_s)
        self._log_ratios: deque[float] = deque(maxlen=int(window))
        self._keyframe: tuple[float, np.ndarray] | None = None       # (stamp, position in odom)
        self._last_tracked: tuple[float, np.ndarray] | None = None   # the last frame tracked from it, the same
        self._summed = _NO_DISPLACEMENT   # (reference m, model units) displacements not in a sample yet
        self.samples = 0
        self._scale = 1.0

    @property
    def scale(self) -> float:
        """The current factor (1.0 before the first sample)."""
        return self._scale

    def update(self, stamp: float, T_odom_cam: np.ndarray, tracked: bool, new_keyframe: bool,
               map_units: float = float('nan')) -> float:
        """One frame at `stamp` (s) that the tracker placed at T_odom_cam (4, 4): `tracked`
        when its pose came from its keyframe's points (PnP), not from a fallback;
        `new_keyframe` when it became the tracking keyframe. `map_units` (on a new keyframe):
        the tracker's units, in which it measured the motion from the old keyframe, per unit of
        the model's depth, measured at this frame (`TrackingStep.map_depth_ratio` times the
        factor applied to this frame's depth; NaN when unknown: no sample). Returns the factor
        for the next frame."""
        position = np.array(T_odom_cam[:3, 3], np.float64)
        if not new_keyframe:
            if tracked:
                self._last_tracked = (float(stamp), position)
            return self._scale
        if not tracked:
            self._summed = _NO_DISPLACEMENT
        else:
            interval = self._interval(map_units, (float(stamp), position))
            if interval is not None:
                self._summed = (self._summed[0] + interval[0], self._summed[1] + interval[1])
                reference_m, model_units = (float(np.linalg.norm(v)) for v in self._summed)
                if reference_m >= self.min_motion and model_units > 0:
                    self._log_ratios.append(float(np.log(reference_m / model_units)))
                    self.samples += 1
                    estimate = float(np.median(self._log_ratios))
                    if abs(estimate - np.log(self._scale)) > np.log1p(self.tolerance):
                        self._scale = float(np.exp(estimate))
                    self._summed = _NO_DISPLACEMENT
        self._keyframe, self._last_tracked = (float(stamp), position), None
        return self._scale

    def _interval(self, map_units: float, keyframe: tuple[float, np.ndarray]
                  ) -> tuple[np.ndarray, np.ndarray] | None:
        """(reference, model units) displacements (3,) from the current keyframe to the last
        frame tracked from it, or to the new `keyframe` (stamp, position) when none was (a new
        keyframe's own pose may come from the tracker's window adjustment); None without a
        keyframe, without map_units, or where the reference does not cover their stamps."""
        if self._keyframe is None or not (np.isfinite(map_units) and map_units > 0):
            return None
        (kf_stamp, kf_position), (stamp, position) = self._keyframe, self._last_tracked or keyframe
        start, end = self.reference.position_at(kf_stamp), self.reference.position_at(stamp)
        if start is None or end is None:
            return None
        return end - start, (position - kf_position) / map_units

    def restart(self) -> None:
        """Odometry restarted: no keyframe, no reference history (its stamps may be of an older
        clock); the scale learned so far stays (the camera and the model did not change)."""
        self._keyframe = self._last_tracked = None
        self._summed = _NO_DISPLACEMENT
        self.reference.clear()
