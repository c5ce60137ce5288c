"""Relative rotation from cross-frame patch matching, solved geometrically inside the graph.

Every current-frame patch soft-matches the reference frame's patches (cosine of the
encoder's final patch features, a learned temperature). The rotation is the weighted
least-squares rotation taking the current patches' bearing vectors onto their matched
reference bearings (Horn's quaternion method), robustly reweighted. The only parameter is
the match temperature: the rotation follows from the encoder's features, correspondences
and geometry rather than being regressed (a pose loss trains the encoder through the
solve). A learned projection of the features, tried first, drifted towards matching every
patch to its own position (the features carry their position embedding). Only the
rotation: a few centimetres of translation between frames are below what 16-pixel patch
matches and this depth resolve (aligning the matched 3D points was worse than assuming no
motion), so translation stays with the regressed head. Everything is matrix products,
exportable to ONNX opset 17 and TensorRT (no SVD, no eigendecomposition: the top
eigenvector comes from repeated squaring).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from geovr_training.model.rotations import canonical_quaternion, quaternion_to_matrix


def horn_matrix(cross: torch.Tensor) -> torch.Tensor:
    """Horn's symmetric 4x4 matrix (B, 4, 4) of a cross-covariance (B, 3, 3), S_ij =
    sum_k w_k cur_k,i ref_k,j; its top eigenvector is the quaternion (w, x, y, z) of the
    rotation R minimising sum_k w_k |ref_k - R cur_k|^2."""
    sxx, sxy, sxz = cross[:, 0, 0], cross[:, 0, 1], cross[:, 0, 2]
    syx, syy, syz = cross[:, 1, 0], cross[:, 1, 1], cross[:, 1, 2]
    szx, szy, szz = cross[:, 2, 0], cross[:, 2, 1], cross[:, 2, 2]
    rows = [
        [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
        [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
        [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
        [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
    ]
    return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)


def weighted_rotation(ref: torch.Tensor, cur: torch.Tensor, weight: torch.Tensor,
                      squarings: int = 8) -> torch.Tensor:
    """Quaternion (B, 4) xyzw, w >= 0, of the rotation R minimising
    sum_k weight_k |ref_k - R cur_k|^2 for (B, P, 3) vectors and (B, P) weights >= 0.

    The top eigenvector of Horn's matrix by power iteration: shifted to be positive
    semi-definite (Gershgorin bound), squared `squarings` times (A^(2^squarings)) with
    renormalisation, applied to the identity quaternion. Assumes the rotation is not near
    180 degrees (the identity must not be orthogonal to the answer), true of video frames.
    """
    cross = (cur * weight.unsqueeze(-1)).transpose(1, 2) @ ref  # (B, 3, 3)
    horn = horn_matrix(cross)
    shift = horn.abs().sum(-1).amax(-1)  # >= the spectral radius
    a = horn + shift[:, None, None] * torch.eye(4, dtype=horn.dtype, device=horn.device)
    for _ in range(squarings):
        a = a @ a
        a = a / a.flatten(1).norm(dim=-1).clamp_min(1e-30)[:, None, None]
    q_wxyz = a[:, :, 0]
    return canonical_quaternion(torch.cat([q_wxyz[:, 1:], q_wxyz[:, :1]], dim=-1))


class CrossFrameMotion(nn.Module):
    """Relative rotation of T_ref_cur of a 2-frame clip from soft patch matching (see the module
    docstring). Frame 0 is the reference, frame 1 the current frame.

    Each current patch's match is the soft-argmax of the reference patch rays under its
    match distribution, weighted by the distribution's peak (confidence). The rotation is
    then refined by iteratively reweighted least squares with a Cauchy loss on the bearing
    residuals (`robust_iterations` times, scale `robust_scale` on unit bearings, about 1.1
    degrees), which discounts wrong matches (repeated texture, walls without texture).
    """

    def __init__(self, robust_iterations: int = 4, robust_scale: float = 0.02):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(math.log(20.0)))
        self.robust_iterations = robust_iterations
        self.robust_scale = robust_scale

    def forward(self, grid: torch.Tensor, patch_rays: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """grid (B, 2, C, h, w) final patch features; patch_rays (B, 2, 3, h, w) mean ray of
        each patch (z = 1). Returns (quaternion (B, 4) xyzw with w >= 0 of the rotation of
        T_ref_cur, match logits (B, h, w, h*w) over the reference patches)."""
        b, _, _, hp, wp = grid.shape
        feats = F.normalize(grid.flatten(3).transpose(2, 3), dim=-1)  # (B, 2, P, C)
        logits = feats[:, 1] @ feats[:, 0].transpose(1, 2) * self.logit_scale.clamp(0.0, 5.0).exp()
        prob = logits.softmax(dim=-1)  # (B, P1, P0)
        rays = patch_rays.flatten(3).transpose(2, 3)  # (B, 2, P, 3), z = 1
        ref = F.normalize(prob @ rays[:, 0], dim=-1)  # matched reference bearings (B, P1, 3)
        cur = F.normalize(rays[:, 1], dim=-1)
        confidence = prob.amax(dim=-1)  # (B, P1)
        weight = confidence / confidence.sum(-1, keepdim=True)
        quat = weighted_rotation(ref, cur, weight)
        for _ in range(self.robust_iterations):
            residual = (ref - cur @ quaternion_to_matrix(quat).transpose(1, 2)).norm(dim=-1)
            weight = confidence / (1.0 + (residual / self.robust_scale) ** 2)
            weight = weight / weight.sum(-1, keepdim=True).clamp_min(1e-12)
            quat = weighted_rotation(ref, cur, weight)
        return quat, logits.reshape(b, hp, wp, hp * wp)
