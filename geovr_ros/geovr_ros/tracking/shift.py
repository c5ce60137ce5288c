"""A camera turn from the global shift between two images (phase correlation).

When the camera turns faster than the motion model predicts (a rendered room's 160 deg/s
pan at 10 fps moves the image 60 px a frame at 256 px width), the keyframe's features are
followed and searched for in the wrong place and tracking fails. The whole image shifting by
(dx, dy) says which way it turned: the turn that carries the principal point's ray of the
previous frame to the pixel dx, dy away. That turn is a guess for the tracker to search from
(it ignores translation and roll; PnP still decides the pose), and the rotation of a frame
that fails all the same (`TrackerConfig.shift_fallback`).
"""
from __future__ import annotations

import numpy as np

from geovr_ros.geometry import so3_exp


MIN_CONTRAST = 1.0   # grey levels: a shrunk image whose standard deviation is less shows nothing to shift


def image_shift(previous: np.ndarray, current: np.ndarray, width: int = 128) -> tuple[float, float, float]:
    """(dx, dy, response): how far the content of `previous` moved in `current` (gray (H, W),
    the same shape), in pixels of the full images, by phase correlation of both shrunk to
    `width` pixels; response in [0, 1] is the correlation peak's share (near 0: no one shift
    explains the change). Either image without content (its shrunk copy's standard deviation
    under MIN_CONTRAST: a view of one flat colour, where phase correlation reports "no shift"
    with a peak near 1, or any shift against a textured one) gives (0, 0, 0): nothing measured."""
    import cv2
    if previous.shape != current.shape or previous.ndim != 2:
        raise ValueError(f'image_shift needs two gray images of one shape, got {previous.shape} and {current.shape}')
    h, w = current.shape
    size = (int(width), max(8, int(round(h * width / w))))
    a = cv2.resize(previous, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    b = cv2.resize(current, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    if a.std() < MIN_CONTRAST or b.std() < MIN_CONTRAST:
        return 0.0, 0.0, 0.0
    (dx, dy), response = cv2.phaseCorrelate(a, b, cv2.createHanningWindow(size, cv2.CV_32F))
    return dx * w / size[0], dy * h / size[1], float(response)


def turn_from_shift(dx: float, dy: float, K: np.ndarray) -> np.ndarray:
    """(4, 4) T_previous_current of a pure turn that moves the image content by (dx, dy) pixels
    at the principal point: the current camera's pose in the previous one's optical frame
    (the convention of the tracker's motion model)."""
    K = np.asarray(K, np.float64)
    ray = np.linalg.solve(K, np.array([K[0, 2] + dx, K[1, 2] + dy, 1.0]))
    ray /= np.linalg.norm(ray)
    axis = np.cross([0.0, 0.0, 1.0], ray)              # the previous optical axis, seen now at `ray`
    angle = float(np.arctan2(np.linalg.norm(axis), ray[2]))
    T = np.eye(4)
    if angle > 1e-12:
        T[:3, :3] = so3_exp(axis / np.linalg.norm(axis) * angle).T   # R_current_previous transposed
    return T
