"""Per-pixel camera rays and Plücker ray maps.

Pixel convention (see `geovr_ros.geometry.intrinsics`): the centre of pixel (row i, column j) is
the continuous point ``(u, v) = (j, i)``, so the ray through that pixel's centre is
``K^-1 [j, i, 1]``. The notes' formula "pixel centres (u + 0.5, v + 0.5)" describes the same ray
in the corner convention (image spanning [0, W]), whose principal point is ours plus 0.5.

Plücker ray of a pixel: direction ``d = normalize(R_world_cam K^-1 [u, v, 1])`` and moment
``m = o x d`` with ``o`` the camera centre in the world (metres); ``(d, m)`` is 6-D, ``m . d = 0``,
and ``m`` does not change when ``o`` moves along the ray.
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_camera_matrix, as_float_array, positive_int
from .errors import InvalidIntrinsicsError

__all__ = ['pixel_centers', 'ray_directions', 'plucker_rays']


def pixel_centers(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float64: ``[i, j] -> (u, v) = (j, i)``, the continuous coordinates of each pixel centre."""
    height = positive_int(height, 'height')
    width = positive_int(width, 'width')
    v, u = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing='ij')
    return np.stack([u, v], axis=-1)


def _unnormalised_rays(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """(..., H, W, 3) ``K^-1 [u, v, 1]`` (z = 1) for K (..., 3, 3)."""
    K = as_camera_matrix(K)
    uv1 = np.concatenate([pixel_centers(height, width), np.ones((height, width, 1))], axis=-1)
    try:
        K_inv = np.linalg.inv(K)
    except np.linalg.LinAlgError:
        raise InvalidIntrinsicsError(f'K is singular (zero focal length?): {K.tolist()}') from None
    return np.einsum('...ij,hwj->...hwi', K_inv, uv1)


def ray_directions(K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Unit rays (..., H, W, 3) through each pixel centre in the camera optical frame, for K (..., 3, 3)."""
    rays = _unnormalised_rays(K, height, width)
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def plucker_rays(K: np.ndarray, height: int, width: int, T_world_cam: np.ndarray | None = None) -> np.ndarray:
    """Plücker ray map (..., H, W, 6) = (d, m) per pixel.

    `K` (..., 3, 3) pixels; `T_world_cam` (..., 4, 4) camera-to-world (leading dims broadcast with K's),
    or None for the camera optical frame itself (then ``m = 0``). ``d`` is unit, in the world frame;
    ``m = o x d`` in metres with ``o`` the camera centre in the world.
    """
    directions = ray_directions(K, height, width)
    if T_world_cam is None:
        return np.concatenate([directions, np.zeros_like(directions)], axis=-1)
    T = as_float_array(T_world_cam, 'T_world_cam', (4, 4), finite=True)
    R = T[..., None, None, :3, :3]
    d = np.einsum('...ij,...j->...i', R, directions)
    d = d / np.linalg.norm(d, axis=-1, keepdims=True)
    origin = np.broadcast_to(T[..., None, None, :3, 3], d.shape)
    m = np.cross(origin, d)
    return np.concatenate([d, m], axis=-1)
