"""Camera rays computed inside the graph from K (traceable, exports to ONNX opset 17).

Torch twin of `geovr_ros.geometry.rays` for use inside the model; it is tested
numerically against the numpy reference so both sides keep one convention.
"""

from __future__ import annotations

import torch


def pixel_grid(height: int, width: int, like: torch.Tensor, offset: float = 0.0) -> torch.Tensor:
    """Homogeneous pixel coordinates (3, H*W): rows (u + offset, v + offset, 1), row-major."""
    v = torch.arange(height, dtype=like.dtype, device=like.device) + offset
    u = torch.arange(width, dtype=like.dtype, device=like.device) + offset
    vv, uu = torch.meshgrid(v, u, indexing='ij')  # (H, W)
    ones = torch.ones_like(uu)
    return torch.stack([uu, vv, ones], dim=0).reshape(3, -1)


def camera_rays(intrinsics: torch.Tensor, height: int, width: int, offset: float = 0.0) -> torch.Tensor:
    """Rays K^-1 [u, v, 1] with z = 1 in the camera optical frame.

    intrinsics: (B, 3, 3) in the image's pixel coordinates. Returns (B, 3, H, W);
    multiply by a depth map (metres along z) to get camera-frame points.
    """
    grid = pixel_grid(height, width, intrinsics, offset)  # (3, HW)
    # closed-form inverse of an upper-triangular K (ONNX opset 17 has no matrix inverse)
    fx, skew, cx = intrinsics[:, 0, 0:1], intrinsics[:, 0, 1:2], intrinsics[:, 0, 2:3]  # (B, 1)
    fy, cy = intrinsics[:, 1, 1:2], intrinsics[:, 1, 2:3]
    y = (grid[1:2] - cy) / fy  # (B, HW)
    x = (grid[0:1] - cx - skew * y) / fx
    rays = torch.stack([x, y, torch.ones_like(x)], dim=1)  # (B, 3, HW)
    return rays.reshape(intrinsics.shape[0], 3, height, width)


def plucker_rays(intrinsics: torch.Tensor, height: int, width: int,
                 t_world_cam: torch.Tensor | None = None, offset: float = 0.0) -> torch.Tensor:
    """Plücker rays (d, m = o x d) per pixel, (B, 6, H, W), like `geovr_ros.geometry.plucker_rays`.

    d = normalize(R_world_cam K^-1 [u, v, 1]) and o the camera centre for the camera-to-world
    `t_world_cam` (B, 4, 4); without it the rays are in the camera frame (o = 0, m = 0),
    which is what the model uses so that no pose is needed at inference.
    """
    rays = camera_rays(intrinsics, height, width, offset).flatten(2)  # (B, 3, HW)
    if t_world_cam is None:
        d = rays / torch.linalg.vector_norm(rays, dim=1, keepdim=True)
        m = torch.zeros_like(d)
    else:
        d = t_world_cam[:, :3, :3] @ rays
        d = d / torch.linalg.vector_norm(d, dim=1, keepdim=True)
        origin = t_world_cam[:, :3, 3:]  # (B, 3, 1)
        m = torch.cross(origin.expand_as(d), d, dim=1)
    return torch.cat([d, m], dim=1).reshape(intrinsics.shape[0], 6, height, width)
