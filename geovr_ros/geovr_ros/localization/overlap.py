"""Geometric view overlap between the current frame and a keyframe."""
from __future__ import annotations

import numpy as np

from geovr_ros.geometry import depth_to_points, project_points, transform_points


def view_overlap(depth: np.ndarray, K: np.ndarray, T_kf_cur: np.ndarray, K_kf: np.ndarray,
                 keyframe_size: tuple[int, int], stride: int = 8) -> float:
    """Fraction of the current frame's valid depth pixels that land inside the keyframe.

    depth: (H, W) metres (NaN/<=0 invalid) with intrinsics K (3, 3); T_kf_cur: (4, 4)
    current optical camera in the keyframe's optical frame; K_kf: (3, 3) of the keyframe
    image of size keyframe_size (W, H). Every `stride`-th pixel is used. Returns 0..1
    (0 when no pixel is valid).
    """
    sub = np.asarray(depth, dtype=np.float64)[::stride, ::stride]
    # Pixel centres are at integer (u, v): pixel j*stride of the image is pixel j of the
    # subsample, so u_sub = u / stride.
    K_sub = np.array(K, dtype=np.float64)
    K_sub[:2] /= stride
    valid = np.isfinite(sub) & (sub > 0)
    if not valid.any():
        return 0.0
    points = depth_to_points(np.where(valid, sub, np.nan), K_sub)
    points = points.reshape(-1, 3)[valid.reshape(-1)]
    in_kf = transform_points(T_kf_cur, points)
    uv, _ = project_points(in_kf, K_kf)
    w, h = keyframe_size
    with np.errstate(invalid='ignore'):
        inside = (uv[:, 0] >= -0.5) & (uv[:, 0] < w - 0.5) & (uv[:, 1] >= -0.5) \
            & (uv[:, 1] < h - 0.5)
    return float(inside.mean())
