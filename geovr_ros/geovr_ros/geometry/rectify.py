"""Undistorting camera images from their camera_info, so the model always sees a pinhole
image (pure numpy + OpenCV, no rclpy).

plumb_bob / rational_polynomial: cv2.initUndistortRectifyMap; equidistant: cv2.fisheye.
The new intrinsics are P's left 3x3 (the rectified camera, as image_proc uses it) or K when
P is all zero. All-zero D means no distortion: no maps, no cost. Maps are cached per
camera model (a camera publishes the same camera_info every frame).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InvalidIntrinsicsError

DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')
UNDISTORT_MODES = ('auto', 'always', 'never')
_D_LENGTHS = {'plumb_bob': (5,), 'rational_polynomial': (8, 12, 14), 'equidistant': (4,)}


@dataclass(frozen=True)
class Rectification:
    """Remap tables of one camera model: `apply(rgb)` gives the pinhole image whose
    intrinsics are `K` (3, 3); map_x, map_y: (H, W) float32 source pixel coordinates."""

    K: np.ndarray
    map_x: np.ndarray
    map_y: np.ndarray

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 undistorted image of `rgb` (H, W, 3) uint8."""
        import cv2
        return cv2.remap(rgb, self.map_x, self.map_y, cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT)

    def apply_depth(self, depth: np.ndarray) -> np.ndarray:
        """(H, W) float32 metres of `depth` (H, W) registered to the distorted image, moved
        with the image's maps by nearest neighbour (depth must not be blended across edges);
        NaN where no source pixel or no depth was."""
        import cv2
        moved = cv2.remap(np.asarray(depth, np.float32), self.map_x, self.map_y, cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float('nan'))
        moved[~(moved > 0)] = np.nan
        return moved


class Rectifier:
    """Builds and caches the Rectification of each camera model seen (at most `cache`)."""

    def __init__(self, cache: int = 4):
        self._cache: dict[tuple, Rectification] = {}
        self._size = int(cache)

    def for_camera(self, model: str, D, K: np.ndarray, R, P, width: int, height: int
                   ) -> Rectification | None:
        """None when the image is already pinhole (D empty or all zero); else its
        Rectification. Raises InvalidIntrinsicsError for an unknown distortion model, a D of
        the wrong length, or non-finite D, R or P."""
        D = np.asarray(D, np.float64).reshape(-1)
        if D.size == 0 or not np.any(D):
            return None
        if not np.all(np.isfinite(D)):
            raise InvalidIntrinsicsError('distortion D must be finite')
        if model not in DISTORTION_MODELS:
            raise InvalidIntrinsicsError(
                f'unknown distortion model {str(model)[:40]!r} with non-zero D: cannot '
                f'undistort (known: {", ".join(DISTORTION_MODELS)})')
        if D.size not in _D_LENGTHS[model]:
            raise InvalidIntrinsicsError(f'distortion model {model} needs {_D_LENGTHS[model]} '
                                         f'coefficients, got {D.size}')
        R = np.asarray(R, np.float64).reshape(3, 3) if len(R) == 9 and np.any(R) else np.eye(3)
        P = np.asarray(P, np.float64).reshape(3, 4) if len(P) == 12 else np.zeros((3, 4))
        if not (np.all(np.isfinite(R)) and np.all(np.isfinite(P))):
            raise InvalidIntrinsicsError('R and P must be finite')
        K_new = P[:, :3].copy() if P[0, 0] > 0 and P[1, 1] > 0 else np.asarray(K, float).copy()
        key = (model, D.tobytes(), np.asarray(K, float).tobytes(), R.tobytes(),
               K_new.tobytes(), int(width), int(height))
        found = self._cache.get(key)
        if found is not None:
            return found
        import cv2
        size = (int(width), int(height))
        if model == 'equidistant':
            map_x, map_y = cv2.fisheye.initUndistortRectifyMap(
                np.asarray(K, float), D.reshape(4, 1), R, K_new, size, cv2.CV_32FC1)
        else:
            map_x, map_y = cv2.initUndistortRectifyMap(np.asarray(K, float), D, R, K_new,
                                                       size, cv2.CV_32FC1)
        rectification = Rectification(K_new, map_x, map_y)
        if len(self._cache) >= self._size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = rectification
        return rectification


def input_is_rectified(mode: str, image_topic: str) -> bool:
    """Whether images on `image_topic` are taken as rectified already, so that their
    camera_info's D is not applied again: `mode` 'never' (undistort never), 'always' (never
    rectified), or 'auto': the topic's last name starts with image_rect (image_proc's output,
    whose camera_info is still the raw camera's, D and all, by ROS convention)."""
    if mode not in UNDISTORT_MODES:
        raise ValueError(f'undistort mode must be one of {UNDISTORT_MODES}, got {mode!r}')
    if mode != 'auto':
        return mode == 'never'
    return str(image_topic).rstrip('/').rsplit('/', 1)[-1].startswith('image_rect')


def rectified_camera(K: np.ndarray, P) -> np.ndarray:
    """K (3, 3) of a rectified image: P's left 3x3 when P (12 values) has positive focal
    lengths, else `K` itself."""
    P = np.asarray(P, np.float64).reshape(-1)
    if P.size == 12 and np.all(np.isfinite(P)) and P[0] > 0 and P[5] > 0:
        return P.reshape(3, 4)[:, :3].copy()
    return np.asarray(K, np.float64).copy()
