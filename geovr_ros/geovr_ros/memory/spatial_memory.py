"""Bounded, thread-safe spatial memory: keyframes with tokens and 3D positions, and the
camera trajectory.

Everything is kept in the `odom` frame (continuous, REP 105), poses as 4x4 float64
camera-to-odom matrices of the optical camera, positions in metres, stamps in seconds.
Answers are converted to the requested frame by the caller.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from geovr_ros.geometry import PathOdometer, moved_beyond, relative_pose, transform_points


@dataclass(frozen=True)
class MemoryEntry:
    """One remembered keyframe.

    tokens: (N, C) float16 model tokens; token_xyz: (N, 3) float32 token positions in odom.
    """

    keyframe_id: int
    stamp: float
    T_odom_cam: np.ndarray
    tokens: np.ndarray
    token_xyz: np.ndarray


@dataclass(frozen=True)
class MemorySnapshot:
    """Immutable view of the memory at one instant (safe to read without the lock).

    trajectory_stamps: (M,) seconds; trajectory_xyz: (M, 3) camera positions in
    `trajectory_frame` (odom unless moved by `trajectory_in`); trajectory_poses: (M, 4, 4);
    distance_travelled: metres along the whole trajectory, including the part no longer kept,
    counted at path_resolution (m; see SpatialMemory); start_stamp (s) and start_pose (4, 4, in
    `trajectory_frame`): the first pose recorded since the memory was cleared (None before
    any), kept when the trajectory drops it. The keyframe entries are always in odom;
    T_frame_odom: (4, 4) from odom to `trajectory_frame` (None: it is odom), for answerers that
    read the entries and answer in the trajectory's frame.
    """

    entries: tuple[MemoryEntry, ...]
    trajectory_stamps: np.ndarray
    trajectory_poses: np.ndarray
    distance_travelled: float
    keyframes_added: int
    keyframes_evicted: int
    path_resolution: float = 0.0
    start_stamp: float = float('nan')
    start_pose: np.ndarray | None = None
    trajectory_frame: str = 'odom'
    T_frame_odom: np.ndarray | None = None

    @property
    def trajectory_xyz(self) -> np.ndarray:
        return self.trajectory_poses[:, :3, 3]

    def trajectory_in(self, T_frame_odom: np.ndarray, frame: str) -> 'MemorySnapshot':
        """This snapshot with its trajectory and start in `frame` (T_frame_odom: (4, 4)), so
        that answers about the camera's own path are in the frame asked for."""
        T = np.asarray(T_frame_odom, np.float64)
        if self.T_frame_odom is not None:
            raise ValueError(f'this snapshot is already in {self.trajectory_frame!r}, not in odom')
        return replace(self, trajectory_poses=T @ self.trajectory_poses, trajectory_frame=frame, T_frame_odom=T,
                       start_pose=None if self.start_pose is None else T @ self.start_pose)


class SpatialMemory:
    """Keyframes (bounded, evicting the most redundant) and a bounded trajectory.

    Args:
        max_keyframes: entries kept; when full, the entry whose camera position is closest
            to another entry's is evicted (the older of the pair), so the memory keeps
            spatial coverage rather than only the most recent past.
        max_tokens: tokens kept per keyframe (evenly subsampled).
        max_trajectory: poses kept in the trajectory (the oldest are dropped; the travelled
            distance keeps counting).
        path_resolution: metres; the travelled distance counts the camera's path in chords of
            this length, so tracking jitter does not add up (`geovr_ros.geometry.PathOdometer`;
            0: every frame's step counts).
    """

    def __init__(self, max_keyframes: int = 64, max_tokens: int = 256,
                 max_trajectory: int = 20000, path_resolution: float = 0.25):
        for name, value in (('max_keyframes', max_keyframes), ('max_tokens', max_tokens),
                            ('max_trajectory', max_trajectory)):
            if int(value) < 1:
                raise ValueError(f'{name} must be >= 1, got {value!r}')
        self.max_keyframes = int(max_keyframes)
        self.max_tokens = int(max_tokens)
        self.max_trajectory = int(max_trajectory)
        self._odometer = PathOdometer(path_resolution)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Forgets everything (odometry restarted: old odom poses no longer apply)."""
        with self._lock:
            self._entries: list[MemoryEntry] = []
            self._stamps: deque[float] = deque(maxlen=self.max_trajectory)
            self._poses: deque[np.ndarray] = deque(maxlen=self.max_trajectory)
            self._odometer.reset()
            self._start: tuple[float, np.ndarray] | None = None
            self._added = 0
            self._evicted = 0
            self._next_id = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def record_pose(self, stamp: float, T_odom_cam: np.ndarray) -> None:
        """Appends a camera pose (4x4, odom) at `stamp` seconds to the trajectory."""
        T = np.array(T_odom_cam, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f'T_odom_cam must be a finite 4x4 matrix, got shape {T.shape}')
        with self._lock:
            self._odometer.add(T[:3, 3])
            self._stamps.append(float(stamp))
            self._poses.append(T)
            if self._start is None:
                self._start = (float(stamp), T)

    def is_new_view(self, T_odom_cam: np.ndarray, translation: float, rotation: float) -> bool:
        """True when the memory is empty or the camera (4x4, odom) moved more than
        `translation` metres or turned more than `rotation` radians from the newest entry."""
        with self._lock:
            if not self._entries:
                return True
            newest = self._entries[-1].T_odom_cam
        return moved_beyond(relative_pose(newest, np.asarray(T_odom_cam, np.float64)), translation, rotation)

    def add_keyframe(self, stamp: float, T_odom_cam: np.ndarray, tokens: np.ndarray,
                     token_xyz_cam: np.ndarray) -> int:
        """Stores a keyframe; returns its id.

        tokens: (N, C) float; token_xyz_cam: (N, 3) metres in the camera optical frame.
        """
        T = np.array(T_odom_cam, dtype=np.float64)
        tokens = np.asarray(tokens)
        token_xyz_cam = np.asarray(token_xyz_cam, dtype=np.float64)
        if tokens.ndim != 2 or token_xyz_cam.shape != (tokens.shape[0], 3):
            raise ValueError(f'tokens (N, C) and token_xyz_cam (N, 3) disagree: '
                             f'{tokens.shape} vs {token_xyz_cam.shape}')
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f'T_odom_cam must be a finite 4x4 matrix, got shape {T.shape}')
        if tokens.shape[0] > self.max_tokens:
            keep = np.linspace(0, tokens.shape[0] - 1, self.max_tokens).round().astype(int)
            tokens, token_xyz_cam = tokens[keep], token_xyz_cam[keep]
        xyz_odom = transform_points(T, token_xyz_cam).astype(np.float32)
        with self._lock:
            entry = MemoryEntry(self._next_id, float(stamp), T,
                                tokens.astype(np.float16), xyz_odom)
            self._next_id += 1
            self._added += 1
            self._entries.append(entry)
            if len(self._entries) > self.max_keyframes:
                self._entries.pop(self._most_redundant())
                self._evicted += 1
            return entry.keyframe_id

    def _most_redundant(self) -> int:
        xyz = np.stack([e.T_odom_cam[:3, 3] for e in self._entries])
        dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
        np.fill_diagonal(dist, np.inf)
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        return int(min(i, j))  # entries are in insertion order: the older one goes

    def snapshot(self) -> MemorySnapshot:
        """Copies the current state under the lock."""
        with self._lock:
            poses = np.stack(self._poses) if self._poses else np.zeros((0, 4, 4))
            start_stamp, start_pose = self._start or (float('nan'), None)
            return MemorySnapshot(tuple(self._entries), np.array(self._stamps, dtype=np.float64),
                                  poses, self._odometer.distance, self._added, self._evicted,
                                  self._odometer.resolution_m, start_stamp, start_pose)
