"""Depth to 3D points and 3D points to pixels (pinhole, no distortion).

Depth is metres along the optical z axis; a depth value is valid when finite and > 0, and
invalid pixels give NaN points. Pixel coordinates follow the convention of
`geovr_ros.geometry.intrinsics`: pixel (row i, column j) has its centre at ``(u, v) = (j, i)``.
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_camera_matrix, as_float_array
from .errors import ShapeError
from .rays import _unnormalised_rays
from .transforms import invert_pose

__all__ = ['depth_to_points', 'transform_points', 'depth_to_world_points', 'project_points', 'reproject_depth']


def _depth(depth) -> np.ndarray:
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim < 2:
        raise ShapeError(f'depth must have shape (..., H, W), got {depth.shape}')
    return depth


def depth_to_points(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., H, W, 3) metres of depth (..., H, W) metres and K (..., 3, 3) pixels.

    ``p = depth * K^-1 [u, v, 1]`` (so ``p_z = depth``); NaN where depth is NaN, inf or <= 0.
    """
    depth = _depth(depth)
    height, width = depth.shape[-2:]
    rays = _unnormalised_rays(K, height, width)
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, np.nan)
    return rays * depth[..., None]


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``R p + t`` for points (..., 3) and T_a_b (4, 4), or a batch T (B..., 4, 4) with points (B..., *, 3).

    A batch of poses applies pose ``T[b]`` to every point of ``points[b]``; NaN points stay NaN.
    """
    T = as_float_array(T, 'T', (4, 4))
    points = as_float_array(points, 'points', (3,))
    batch = T.shape[:-2]
    extra = points.ndim - 1 - len(batch)
    if extra < 0 or points.shape[:len(batch)] != batch:
        raise ShapeError(f'points {points.shape} must start with the batch shape {batch} of T {T.shape}')
    expand = batch + (1,) * extra
    R = T[..., :3, :3].reshape(expand + (3, 3))
    t = T[..., :3, 3].reshape(expand + (3,))
    return np.einsum('...ij,...j->...i', R, points) + t


def depth_to_world_points(depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """World points (..., H, W, 3) metres of depth (..., H, W), K (..., 3, 3), T_world_cam (..., 4, 4)."""
    return transform_points(T_world_cam, depth_to_points(depth, K))


def project_points(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates uv (..., 2) and depth z (...) metres of camera-frame points (..., 3).

    `K` is (3, 3), or (B..., 3, 3) with points (B..., *, 3). Points with z <= 0 or non-finite
    give NaN uv (z is returned unchanged).
    """
    points = as_float_array(points_cam, 'points_cam', (3,))
    K = as_camera_matrix(K)
    batch = K.shape[:-2]
    extra = points.ndim - 1 - len(batch)
    if extra < 0 or points.shape[:len(batch)] != batch:
        raise ShapeError(f'points {points.shape} must start with the batch shape {batch} of K {K.shape}')
    K = K.reshape(batch + (1,) * extra + (3, 3))
    z = points[..., 2]
    in_front = np.isfinite(z) & (z > 0)
    safe_z = np.where(in_front, z, 1.0)
    homogeneous = np.einsum('...ij,...j->...i', K, points)
    uv = homogeneous[..., :2] / safe_z[..., None]
    uv = np.where(in_front[..., None], uv, np.nan)
    return uv, z.copy()


def reproject_depth(depth_src: np.ndarray, K_src: np.ndarray, T_world_src: np.ndarray,
                    K_dst: np.ndarray, T_world_dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each source pixel lands in a destination camera.

    `depth_src` (H, W) metres, `K_src`/`K_dst` (3, 3), `T_world_src`/`T_world_dst` (4, 4) camera-to-world.
    Returns uv (H, W, 2) destination pixel coordinates (NaN for invalid depth or points behind the
    destination camera) and z_in_dst (H, W) metres, the depth of each point in the destination camera
    (NaN for invalid source depth), to compare with the destination depth map.
    """
    points_world = depth_to_world_points(depth_src, K_src, T_world_src)
    points_dst = transform_points(invert_pose(T_world_dst), points_world)
    return project_points(points_dst, K_dst)


def depth_seen_from(depth_src: np.ndarray, K_src: np.ndarray, T_dst_src: np.ndarray, K_dst: np.ndarray,
                    size_dst: tuple[int, int]) -> np.ndarray:
    """The depth (H', W') float32 metres that another camera sees of a depth map's points:
    `depth_src` (H, W) metres with `K_src` (3, 3), lifted, moved by `T_dst_src` (4, 4) into the
    camera with `K_dst` (3, 3) and `size_dst` (W', H'), and splatted to the nearest pixel, the
    nearest point kept where several land (registering a depth sensor to a colour camera);
    NaN where none lands."""
    width, height = int(size_dst[0]), int(size_dst[1])
    uv, z = project_points(transform_points(T_dst_src, depth_to_points(depth_src, K_src)), K_dst)
    u, v = np.round(uv[..., 0]), np.round(uv[..., 1])
    inside = np.isfinite(z) & (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    nearest = np.full(height * width, np.inf)
    np.minimum.at(nearest, (v[inside] * width + u[inside]).astype(np.int64), z[inside])
    nearest[np.isinf(nearest)] = np.nan
    return nearest.reshape(height, width).astype(np.float32)
