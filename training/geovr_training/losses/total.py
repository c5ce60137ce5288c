"""Targets from a data batch and the weighted GeoVR multi-task loss."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from geovr_ros.geometry import quat_xyzw_from_matrix, relative_pose
from geovr_training.losses.depth import depth_loss, shape_loss
from geovr_training.losses.distill import distillation_loss
from geovr_training.losses.pose import descriptor_loss, pose_loss, scale_loss
from geovr_training.losses.semantic import semantic_loss


@dataclass
class LossConfig:
    """Weights of the multi-task loss (notes: total = 2.5 cam + 1 depth + 1 distill + 1 scale).

    A weight of 0 switches a target off (ablations). `descriptor` trains the place
    descriptor with InfoNCE across the frames of a clip (not in GeoVR; needed for
    relocalisation).
    """

    depth: float = 1.0
    pose: float = 2.5
    scale: float = 1.0
    distill: float = 1.0
    descriptor: float = 0.1
    pointmap: float = 0.0  # L1 on camera-frame point maps (depth_rel * K^-1 [u, v, 1]); the teacher's target
    semantic: float = 0.0  # soft cross-entropy of the per-patch category head (needs data.semantics)
    depth_alpha: float = 0.2
    depth_quantile: float = 0.98
    depth_grad_scales: int = 4
    depth_near_edge_weight: float = 1.0  # the near side of true depth edges weighs this much (`depth_loss`)
    depth_parts: dict[str, float] = field(default_factory=lambda: {'conf': 1.0, 'l1': 1.0, 'grad': 1.0, 'silog': 0.0})
    pose_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 0.5])
    descriptor_temperature: float = 0.1

    @classmethod
    def from_dict(cls, values: dict | None) -> 'LossConfig':
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'unknown loss settings {sorted(unknown)}')
        return cls(**values)


def clip_scale(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Ground-truth scale factor (B,): median valid depth over all frames of each clip, metres."""
    masked = torch.where(valid & torch.isfinite(depth) & (depth > 0), depth, torch.full_like(depth, float('nan')))
    scale = masked.flatten(1).nanmedian(dim=1).values
    return torch.nan_to_num(scale, nan=1.0)


def make_targets(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """From a batch (depth (B, F, H, W) NaN invalid, valid, T_world_cam (B, F, 4, 4)) build
    scale (B,), depth_rel (B, F, H, W) = depth / scale, trans_norm (B, 3) = t_ref_cur / scale,
    quat (B, 4) xyzw (w >= 0) of T_ref_cur, depth, K and valid; 'metric' (B,) bool from the
    batch's 'metric_depth' where it has one (False: the clip teaches depth's shape only)."""
    depth, valid = batch['depth'], batch['valid'].bool()
    valid = valid & torch.isfinite(depth) & (depth > 0)
    scale = clip_scale(depth, valid)
    poses = batch['T_world_cam'].double().cpu().numpy()
    t_ref_cur = relative_pose(poses[:, 0], poses[:, 1])  # (B, 4, 4)
    quat = torch.from_numpy(quat_xyzw_from_matrix(t_ref_cur[:, :3, :3])).float()
    trans = torch.from_numpy(np.ascontiguousarray(t_ref_cur[:, :3, 3])).float()
    device = depth.device
    targets = {'scale': scale, 'depth_rel': depth / scale[:, None, None, None], 'valid': valid,
               'trans_norm': trans.to(device) / scale[:, None], 'quat': quat.to(device),
               'depth': depth, 'K': batch['K']}
    if 'semantic' in batch:
        targets['semantic'] = batch['semantic']
    if 'metric_depth' in batch:
        targets['metric'] = batch['metric_depth'].bool().reshape(-1)
    return targets


def pointmap_l1(pred_rel: torch.Tensor, gt_rel: torch.Tensor, valid: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Mean over valid pixels of the L1 distance (summed over x, y, z) between camera-frame
    point maps d * K^-1 [u, v, 1] of (B, F, H, W) relative depths; K (B, F, 3, 3)."""
    from geovr_training.model.rays import camera_rays

    b, nf, height, width = pred_rel.shape
    rays = camera_rays(k.reshape(b * nf, 3, 3).to(pred_rel.dtype), height, width).reshape(b, nf, 3, height, width)
    gt = torch.where(valid, gt_rel, torch.zeros_like(pred_rel))
    error = ((pred_rel - gt).unsqueeze(2) * rays).abs().sum(dim=2)  # (B, F, H, W)
    weight = valid.to(error.dtype)
    return (error * weight).sum() / weight.sum().clamp_min(1.0)


def geovr_loss(outputs: dict, targets: dict, config: LossConfig,
               teacher_features: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of the enabled targets. Returns (total, {name: float} for logging).

    Clips whose `targets['metric']` is False (a data folder under `data.depth_supervision:
    shape`) train depth through `shape_loss` alone (scale- and shift-invariant disparity) and
    no metric scale; the depth terms are weighed by each kind's share of the batch."""
    logs: dict[str, float] = {}
    total = outputs['scale'].sum() * 0.0
    metric = targets.get('metric')  # (B,) bool, or None: every clip metric
    metric_share = 1.0 if metric is None else float(metric.float().mean())
    if config.depth:
        valid = targets['valid']
        if metric_share < 1:
            clip_is_metric = metric[:, None, None, None]
            shape = shape_loss(outputs['depth_rel'], targets['depth_rel'], valid & ~clip_is_metric,
                               grad_scales=config.depth_grad_scales)
            total = total + config.depth * (1.0 - metric_share) * shape['total']
            logs.update({f'depth/{k}': float(v.detach()) for k, v in shape.items() if k != 'total'})
            valid = valid & clip_is_metric
        if metric_share > 0:
            parts = depth_loss(outputs['depth_rel'], targets['depth_rel'], outputs['depth_conf'], valid,
                               config.depth_alpha, config.depth_quantile, config.depth_grad_scales,
                               config.depth_parts, config.depth_near_edge_weight)
            total = total + config.depth * metric_share * parts['total']
            logs.update({f'depth/{k}': float(v.detach()) for k, v in parts.items()})
    if config.pointmap:
        value = pointmap_l1(outputs['depth_rel'], targets['depth_rel'], targets['valid'], targets['K'])
        total = total + config.pointmap * value
        logs['pointmap'] = float(value.detach())
    if config.pose:
        parts = pose_loss(outputs['trans_norm'], outputs['quat'], targets['trans_norm'], targets['quat'],
                          weights=tuple(config.pose_weights))
        total = total + config.pose * parts['total']
        logs.update({f'pose/{k}': float(v.detach()) for k, v in parts.items()})
    if config.scale and metric_share > 0:
        keep = slice(None) if metric is None else metric
        value = scale_loss(outputs['scale'][keep], targets['scale'][keep])
        total = total + config.scale * value
        logs['scale'] = float(value.detach())
    if config.distill and teacher_features is not None and 'distill' in outputs:
        value = distillation_loss(outputs['distill'], teacher_features)
        total = total + config.distill * value
        logs['distill'] = float(value.detach())
    if config.semantic and 'semantic_logits' in outputs and 'semantic' in targets:
        logits = outputs['semantic_logits']
        patch = targets['semantic'].shape[-1] // logits.shape[-1]
        value = semantic_loss(logits, targets['semantic'], patch)
        total = total + config.semantic * value
        logs['semantic'] = float(value.detach())
    if config.descriptor:
        value = descriptor_loss(outputs['descriptor'], config.descriptor_temperature)
        total = total + config.descriptor * value
        logs['descriptor'] = float(value.detach())
    logs['total'] = float(total.detach())
    return total, logs
