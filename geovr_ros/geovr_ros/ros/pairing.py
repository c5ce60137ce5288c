"""Pairs images with camera intrinsics by stamp, or caches the latest (no rclpy).

Replaces message_filters' exact/approximate synchronisers for the one pair the node needs,
and says why an image has no intrinsics instead of silently never firing.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

PAIRING_MODES = ('stamp', 'latest')


@dataclass(frozen=True)
class CameraIntrinsics:
    """K (3, 3) pixels of an image of size width x height, received at `stamp` seconds;
    `rectification` (geovr_ros.geometry.rectify.Rectification) undistorts the image to K, or
    None when the image is pinhole already."""

    stamp: float
    K: np.ndarray
    width: int
    height: int
    rectification: object | None = None


class IntrinsicsPairer:
    """Keeps recent camera_info and finds the one for an image.

    mode 'stamp': the camera_info whose stamp is nearest the image's, if within `tolerance`
    seconds (0 means exact); mode 'latest': the most recent camera_info whatever its stamp
    (for drivers whose camera_info is constant or stamped differently).
    """

    def __init__(self, mode: str = 'stamp', tolerance: float = 0.005, history: int = 30):
        if mode not in PAIRING_MODES:
            raise ValueError(f'pairing mode must be one of {PAIRING_MODES}, got {mode!r}')
        if not tolerance >= 0:
            raise ValueError(f'tolerance must be >= 0 seconds, got {tolerance!r}')
        self.mode = mode
        self.tolerance = float(tolerance)
        self._recent: deque[CameraIntrinsics] = deque(maxlen=max(1, int(history)))

    def clear(self) -> None:
        self._recent.clear()

    def add(self, intrinsics: CameraIntrinsics) -> None:
        self._recent.append(intrinsics)

    def match(self, stamp: float) -> tuple[CameraIntrinsics | None, str]:
        """(intrinsics, '') for an image at `stamp` seconds, or (None, reason)."""
        if not self._recent:
            return None, 'no camera_info received yet'
        if self.mode == 'latest':
            return self._recent[-1], ''
        best = min(self._recent, key=lambda c: abs(c.stamp - stamp))
        gap = abs(best.stamp - stamp)
        if gap <= self.tolerance:
            return best, ''
        return None, (f'no camera_info within {self.tolerance:.4f} s of the image stamp '
                      f'{stamp:.6f} (nearest is {gap:.4f} s away); raise pairing_tolerance or '
                      f'set pairing_mode to "latest"')
