"""Pose, scale and descriptor losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pose_loss(pred_trans: torch.Tensor, pred_quat: torch.Tensor, gt_trans: torch.Tensor,
              gt_quat: torch.Tensor, pred_fov: torch.Tensor | None = None,
              gt_fov: torch.Tensor | None = None,
              weights: tuple[float, float, float] = (1.0, 1.0, 0.5)) -> dict[str, torch.Tensor]:
    """GeoVR camera loss: w_t mean|t^ - t| + w_q mean|q^ - q| (+ w_f mean|fov^ - fov|).

    trans (B, 3) in scale units, quat (B, 4) xyzw; both quaternions are sign-fixed to
    w >= 0 before the L1 (q and -q are one rotation). fov (B, 2) radians is optional:
    GeoVR-S is given K, so it does not predict the field of view.
    """
    fix = lambda q: torch.where(q[..., 3:4] < 0, -q, q)  # noqa: E731
    parts = {'trans': (pred_trans - gt_trans).abs().mean(),
             'quat': (fix(pred_quat) - fix(gt_quat)).abs().mean()}
    total = weights[0] * parts['trans'] + weights[1] * parts['quat']
    if pred_fov is not None and gt_fov is not None:
        parts['fov'] = (pred_fov - gt_fov).abs().mean()
        total = total + weights[2] * parts['fov']
    parts['total'] = total
    return parts


def scale_loss(pred_scale: torch.Tensor, gt_scale: torch.Tensor) -> torch.Tensor:
    """L1(log1p s^, log1p s) averaged over the batch; scales (B,) metres."""
    return (torch.log1p(pred_scale) - torch.log1p(gt_scale)).abs().mean()


def descriptor_loss(descriptor: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE between the two frames of each clip (positives) against other clips in
    the batch (negatives). descriptor (B, 2, D) unit norm. 0 when B < 2."""
    b = descriptor.shape[0]
    if b < 2:
        return descriptor.sum() * 0.0
    logits = descriptor[:, 0] @ descriptor[:, 1].T / temperature  # (B, B)
    labels = torch.arange(b, device=descriptor.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
