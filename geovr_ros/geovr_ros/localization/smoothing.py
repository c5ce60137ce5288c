"""`map -> odom` from a sliding window of map measurements, aligned as a whole.

Each relocalization gives the camera pose twice: in `odom` (odometry) and in `map` (matched
keyframe pose composed with the model's relative pose). One measurement fixes
`T_map_odom = T_map_cam @ inv(T_odom_cam)` but carries that measurement's full noise. As in
Geo4D's alignment of overlapping windows, the estimate is instead the rigid transform that
best aligns the whole window of the last `window` measurements (each new window overlaps
the previous one in all but one measurement), so successive estimates change smoothly and a
single bad match is outvoted.

Alignment is Umeyama's closed-form least squares on, per measurement, the camera centre and
three points `axis_length` metres along its optical axes (so that rotations count too).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from geovr_ros.geometry import umeyama_alignment


class WindowedMapOdomEstimator:
    """Maintains `T_map_odom` (4x4) from (T_odom_cam, T_map_cam) measurement pairs."""

    def __init__(self, window: int = 10, axis_length: float = 0.5):
        if int(window) < 1:
            raise ValueError(f'window must be >= 1, got {window!r}')
        if not axis_length > 0:
            raise ValueError(f'axis_length must be positive, got {axis_length!r}')
        self.window = int(window)
        self.axis_length = float(axis_length)
        self._pairs: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.window)
        self.T_map_odom: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._pairs)

    def reset(self) -> None:
        self._pairs.clear()
        self.T_map_odom = None

    def add(self, T_odom_cam: np.ndarray, T_map_cam: np.ndarray) -> np.ndarray:
        """Adds one measurement; returns the new `T_map_odom`."""
        self._pairs.append((np.asarray(T_odom_cam, np.float64), np.asarray(T_map_cam, np.float64)))
        local = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float64) \
            * self.axis_length
        src = np.concatenate([local @ a[:3, :3].T + a[:3, 3] for a, _ in self._pairs])
        dst = np.concatenate([local @ b[:3, :3].T + b[:3, 3] for _, b in self._pairs])
        _, R, t = umeyama_alignment(src, dst, with_scale=False)
        T = np.eye(4)
        T[:3, :3] = R
        T[:3, 3] = t
        self.T_map_odom = T
        return T.copy()

    def residual(self) -> float:
        """RMS distance (m) between the window's map points and the aligned odom points."""
        if self.T_map_odom is None:
            return float('nan')
        errors = [np.linalg.norm((self.T_map_odom @ a)[:3, 3] - b[:3, 3]) for a, b in self._pairs]
        return float(np.sqrt(np.mean(np.square(errors))))
