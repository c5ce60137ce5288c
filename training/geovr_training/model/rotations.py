"""Quaternion helpers shared by the pose head (xyzw order, as ROS) and the rigid transform they build."""

from __future__ import annotations

import torch


def quaternion_to_matrix(quat_xyzw: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (..., 4) in (x, y, z, w) order -> rotation matrices (..., 3, 3)."""
    x, y, z, w = quat_xyzw.unbind(-1)
    rows = [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]
    return torch.stack(rows, dim=-1).reshape(quat_xyzw.shape[:-1] + (3, 3))


def canonical_quaternion(quat_xyzw: torch.Tensor) -> torch.Tensor:
    """Normalise and fix the sign so that w >= 0 (q and -q are the same rotation)."""
    quat = quat_xyzw / torch.linalg.vector_norm(quat_xyzw, dim=-1, keepdim=True).clamp_min(1e-8)
    return torch.where(quat[..., 3:4] < 0, -quat, quat)


def pose_matrix(quat: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(B, 4) xyzw quaternions and (B, 3) translations -> (B, 4, 4) rigid transforms."""
    top = torch.cat([quaternion_to_matrix(quat), translation.unsqueeze(-1)], dim=-1)
    bottom = torch.cat([torch.zeros_like(top[:, :1, :3]), torch.ones_like(top[:, :1, :1])], dim=-1)
    return torch.cat([top, bottom], dim=1)
