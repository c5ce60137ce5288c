"""Chains the model's relative poses into a continuous camera trajectory in `odom`.

The model predicts `T_ref_cur` between a reference frame and the current frame. The tracker
keeps one reference (an odometry keyframe) and composes `T_odom_cur = T_odom_ref @ T_ref_cur`;
the current frame becomes the new reference once it moved far enough from the old one, so
drift grows with the number of reference switches, not with the number of frames.

Poses are 4x4 float64 camera-to-odom matrices of the camera *optical* frame; stamps are
seconds; translations metres.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import relative_pose, rotation_angle, so3_log


class StampCheck(enum.Enum):
    """Verdict on the stamp of an incoming frame."""

    OK = 'ok'
    REPEATED = 'repeated stamp'
    OUT_OF_ORDER = 'stamp older than the previous frame'
    JUMP_BACK = 'time jumped backwards'
    JUMP_PENDING = 'stamp jumped by more than time_jump_threshold'
    JUMP_FORWARD = 'time jumped forwards'


class StampGate:
    """Trusts a stamp jump only when it is sustained.

    A frame whose stamp differs from the previous accepted frame's by more than
    `time_jump_threshold` seconds (backwards, or forwards: a stamp of 0, or one far in
    the future) is held as a candidate and dropped (JUMP_PENDING). Only when
    `confirm_frames` such frames arrive in a row on one consistent new timeline is the jump
    believed: JUMP_BACK (restart odometry) or JUMP_FORWARD (carry on). Any frame on the old
    timeline in between cancels the candidates, so one outlier frame never restarts or
    moves anything. The caller passes only frames that passed every other check.

    With the frames' arrival times (a monotonic receive clock, s), a forward jump that the
    receive clock also saw (the stamps advanced as much as the time since the last accepted
    frame, within the threshold) is a pause of the camera and is believed at once.
    Candidates are one timeline when each follows the one before by at most the threshold,
    or - with arrival times - by as much as it arrived later: without the latter, a sender
    slower than one frame per threshold (a client that sends the next frame only when the
    last one's depth arrived) could never confirm a jump.
    """

    def __init__(self, time_jump_threshold: float = 1.0, confirm_frames: int = 3):
        if not np.isfinite(time_jump_threshold) or time_jump_threshold <= 0:
            raise ValueError(f'time_jump_threshold must be a positive number, got '
                             f'{time_jump_threshold!r}')
        if int(confirm_frames) < 1:
            raise ValueError(f'confirm_frames must be >= 1, got {confirm_frames!r}')
        self.threshold = float(time_jump_threshold)
        self.confirm_frames = int(confirm_frames)
        self._candidates: list[tuple[float, float | None]] = []   # (stamp, arrival)
        self._accepted_arrival: float | None = None

    @property
    def pending(self) -> int:
        """Frames held so far on a candidate new timeline."""
        return len(self._candidates)

    def check(self, stamp: float, last_stamp: float | None, arrival: float | None = None) -> StampCheck:
        """Verdict on a validated frame's `stamp` (s) given the last accepted one (s), and the
        frame's arrival time on a monotonic receive clock (s; None: not known)."""
        verdict = self._verdict(float(stamp), last_stamp, arrival)
        if verdict in (StampCheck.OK, StampCheck.JUMP_BACK, StampCheck.JUMP_FORWARD):
            self._accepted_arrival = arrival
        return verdict

    def _consistent(self, a: tuple[float, float | None], b: tuple[float, float | None]) -> bool:
        """Does candidate b follow candidate a on one timeline?"""
        advance = b[0] - a[0]
        if advance <= 0:
            return False
        if advance <= self.threshold:      # close in time (a bag replayed at any rate)
            return True
        return a[1] is not None and b[1] is not None and abs(advance - (b[1] - a[1])) <= self.threshold

    def _verdict(self, stamp: float, last_stamp: float | None, arrival: float | None) -> StampCheck:
        if last_stamp is None:
            self._candidates.clear()
            return StampCheck.OK
        delta = stamp - last_stamp
        if abs(delta) <= self.threshold:
            self._candidates.clear()
            if delta > 0:
                return StampCheck.OK
            return StampCheck.REPEATED if delta == 0 else StampCheck.OUT_OF_ORDER
        if delta > 0 and arrival is not None and self._accepted_arrival is not None \
                and abs(delta - (arrival - self._accepted_arrival)) <= self.threshold:
            self._candidates.clear()      # the receive clock saw the same pause
            return StampCheck.JUMP_FORWARD
        run = self._candidates
        if run and stamp == run[-1][0]:   # the same candidate again (a resend): no evidence
            return StampCheck.JUMP_PENDING
        if run and not self._consistent(run[-1], (stamp, arrival)):
            run.clear()
        run.append((stamp, arrival))
        if len(run) < self.confirm_frames:
            return StampCheck.JUMP_PENDING
        run.clear()
        return StampCheck.JUMP_BACK if delta < 0 else StampCheck.JUMP_FORWARD


@dataclass(frozen=True)
class OdometryUpdate:
    """Result of one tracker step.

    T_odom_cam: (4, 4) optical camera to odom.
    linear_velocity, angular_velocity: (3,) m/s and rad/s in the camera frame (the
        Odometry message's child frame), zero on the first frame after a (re)start.
    new_reference: the caller must keep this frame as the next reference.
    """

    stamp: float
    T_odom_cam: np.ndarray
    linear_velocity: np.ndarray
    angular_velocity: np.ndarray
    new_reference: bool


class OdometryTracker:
    """Composes relative poses against an odometry keyframe.

    Args:
        reference_translation: metres from the reference after which the current frame
            becomes the new reference.
        reference_rotation: radians, likewise.
        max_reference_frames: frames after which the reference is renewed regardless.
        time_jump_threshold: seconds; a stamp older than the previous one by more than
            this is a time jump (bag loop, simulator reset) and restarts odometry; smaller
            backwards steps are out-of-order frames to drop.
    """

    def __init__(self, reference_translation: float = 0.3, reference_rotation: float = 0.35,
                 max_reference_frames: int = 30, time_jump_threshold: float = 1.0):
        for name, value in (('reference_translation', reference_translation),
                            ('reference_rotation', reference_rotation),
                            ('time_jump_threshold', time_jump_threshold)):
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        if max_reference_frames < 1:
            raise ValueError(f'max_reference_frames must be >= 1, got {max_reference_frames!r}')
        self.reference_translation = float(reference_translation)
        self.reference_rotation = float(reference_rotation)
        self.max_reference_frames = int(max_reference_frames)
        self.time_jump_threshold = float(time_jump_threshold)
        self.reset()

    def reset(self) -> None:
        """Forgets everything; the next frame starts odometry at the identity."""
        self._T_odom_ref: np.ndarray | None = None
        self._reference = None
        self._T_odom_last: np.ndarray | None = None
        self._last_stamp: float | None = None
        self._frames_since_reference = 0
        self.distance_travelled = 0.0

    @property
    def started(self) -> bool:
        """True once a reference frame exists."""
        return self._T_odom_ref is not None

    @property
    def reference(self):
        """What the caller passed with the reference frame (`start` / `update`'s `frame`,
        e.g. that frame's model input), or None: the one place the reference is kept."""
        return self._reference

    @property
    def last_stamp(self) -> float | None:
        return self._last_stamp

    @property
    def T_odom_cam(self) -> np.ndarray | None:
        """Latest camera pose in odom, or None before the first frame."""
        return None if self._T_odom_last is None else self._T_odom_last.copy()

    def check_stamp(self, stamp: float) -> StampCheck:
        """Classifies `stamp` (seconds) against the previous accepted frame."""
        if self._last_stamp is None or stamp > self._last_stamp:
            return StampCheck.OK
        if stamp == self._last_stamp:
            return StampCheck.REPEATED
        if self._last_stamp - stamp > self.time_jump_threshold:
            return StampCheck.JUMP_BACK
        return StampCheck.OUT_OF_ORDER

    def start(self, stamp: float, frame=None) -> OdometryUpdate:
        """Starts (or restarts) odometry at the identity with this frame as reference;
        `frame` is kept as `reference`."""
        self.reset()
        identity = np.eye(4)
        self._T_odom_ref = identity.copy()
        self._reference = frame
        self._T_odom_last = identity.copy()
        self._last_stamp = float(stamp)
        zero = np.zeros(3)
        return OdometryUpdate(float(stamp), identity, zero, zero.copy(), True)

    def update(self, stamp: float, T_ref_cur: np.ndarray, frame=None) -> OdometryUpdate:
        """Adds the model's `T_ref_cur` (4x4, metres) for the frame at `stamp` (seconds);
        when this frame becomes the new reference, `frame` replaces `reference`.

        Raises ValueError if the tracker has not started, the stamp is not newer than the
        previous one, or the pose is not a finite 4x4 rigid transform.
        """
        if not self.started:
            raise ValueError('update() before start(): no reference frame')
        T_ref_cur = np.asarray(T_ref_cur, dtype=np.float64)
        if T_ref_cur.shape != (4, 4) or not np.all(np.isfinite(T_ref_cur)):
            raise ValueError(f'T_ref_cur must be a finite 4x4 matrix, got shape '
                             f'{T_ref_cur.shape} with finite={np.all(np.isfinite(T_ref_cur))}')
        if self._last_stamp is not None and stamp <= self._last_stamp:
            raise ValueError(f'stamp {stamp} is not newer than the previous {self._last_stamp}')
        T_odom_cur = self._T_odom_ref @ T_ref_cur
        dt = stamp - self._last_stamp
        T_last_cur = relative_pose(self._T_odom_last, T_odom_cur)
        step = float(np.linalg.norm(T_last_cur[:3, 3]))
        linear = T_last_cur[:3, 3] / dt
        angular = so3_log(T_last_cur[:3, :3]) / dt
        self.distance_travelled += step
        self._T_odom_last = T_odom_cur
        self._last_stamp = float(stamp)
        self._frames_since_reference += 1
        new_reference = (
            float(np.linalg.norm(T_ref_cur[:3, 3])) > self.reference_translation
            or rotation_angle(T_ref_cur[:3, :3]) > self.reference_rotation
            or self._frames_since_reference >= self.max_reference_frames)
        if new_reference:
            self._T_odom_ref = T_odom_cur.copy()
            self._reference = frame
            self._frames_since_reference = 0
        return OdometryUpdate(float(stamp), T_odom_cur.copy(), linear, angular, new_reference)

