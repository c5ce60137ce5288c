"""Supervision of the cross-frame patch matching (`CrossFrameMotion`) from ground truth.

Each current-frame patch's mean valid depth is back-projected along its centre ray, moved
into the reference frame with T_ref_cur and projected with the reference K; the target is
that location on the reference patch grid, spread bilinearly over its four nearest patches
(so the soft-argmax can learn sub-patch positions). Patches that are less than half valid,
or that land behind the camera or outside the reference image, are left out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geovr_training.model.rays import camera_rays


def matching_targets(depth: torch.Tensor, valid: torch.Tensor, K: torch.Tensor, T_ref_cur: torch.Tensor,
                     grid: tuple[int, int], pixel_offset: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """depth (B, 2, H, W) metres, valid (B, 2, H, W), K (B, 2, 3, 3), T_ref_cur (B, 4, 4)
    metres, grid (h, w) patches -> (targets (B, h*w, h*w): a distribution over reference
    patches per current patch, usable (B, h*w) bool)."""
    b, _, height, width = depth.shape
    hp, wp = grid
    patch = height // hp
    good = (valid[:, 1] & torch.isfinite(depth[:, 1]) & (depth[:, 1] > 0)).float().unsqueeze(1)
    depth1 = torch.nan_to_num(depth[:, 1]).unsqueeze(1) * good
    known = F.avg_pool2d(good, patch)  # (B, 1, h, w)
    z = F.avg_pool2d(depth1, patch) / known.clamp_min(1e-6)
    rays = F.avg_pool2d(camera_rays(K[:, 1], height, width, pixel_offset), patch)  # (B, 3, h, w)
    points = (rays * z).flatten(2)  # (B, 3, P) current camera frame
    ref = T_ref_cur[:, :3, :3] @ points + T_ref_cur[:, :3, 3:]
    k0 = K[:, 0]
    in_front = ref[:, 2] > 1e-3
    zr = ref[:, 2].clamp_min(1e-3)
    u = k0[:, 0, 0:1] * ref[:, 0] / zr + k0[:, 0, 1:2] * ref[:, 1] / zr + k0[:, 0, 2:3]
    v = k0[:, 1, 1:2] * ref[:, 1] / zr + k0[:, 1, 2:3]
    gx = (u - pixel_offset - (patch - 1) / 2) / patch  # reference patch-grid coordinates
    gy = (v - pixel_offset - (patch - 1) / 2) / patch
    inside = (gx > -1e-3) & (gx < wp - 1 + 1e-3) & (gy > -1e-3) & (gy < hp - 1 + 1e-3)
    usable = (known.flatten(1) >= 0.5) & in_front & inside
    gx, gy = gx.clamp(0, wp - 1), gy.clamp(0, hp - 1)
    x0, y0 = gx.floor().clamp(max=wp - 2 if wp > 1 else 0), gy.floor().clamp(max=hp - 2 if hp > 1 else 0)
    fx, fy = gx - x0, gy - y0
    targets = torch.zeros(b, hp * wp, hp * wp, dtype=depth1.dtype, device=depth.device)
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        col = (x0 + dx).clamp(max=wp - 1)
        row = (y0 + dy).clamp(max=hp - 1)
        targets.scatter_add_(2, (row * wp + col).long().unsqueeze(-1), weight.unsqueeze(-1))
    return targets, usable


def matching_loss(logits: torch.Tensor, depth: torch.Tensor, valid: torch.Tensor, K: torch.Tensor,
                  T_ref_cur: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the match logits (B, h, w, h*w) against `matching_targets`, averaged
    over usable patches; 0 when none is usable."""
    b, hp, wp, _ = logits.shape
    targets, usable = matching_targets(depth, valid, K, T_ref_cur, (hp, wp))
    per_patch = -(targets * F.log_softmax(logits.reshape(b, hp * wp, -1), dim=-1)).sum(-1)
    keep = usable.to(per_patch.dtype)
    return (per_patch * keep).sum() / keep.sum().clamp_min(1.0)
