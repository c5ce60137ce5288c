"""Depth losses of GeoVR (notes: spatial-model.md). All take (B, F, H, W) maps, a boolean
valid mask of the same shape, and return a scalar; invalid pixels never contribute."""

from __future__ import annotations

import torch

EDGE_JUMP_LOG = 0.15  # a true log-depth step that makes a depth edge (16 % nearer or farther)
EDGE_RADIUS_PX = 4     # how far across the edge, in the true depth's pixels


def _masked_mean(values: torch.Tensor, valid: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    weight = valid.to(values.dtype) if weights is None else valid.to(values.dtype) * weights
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def _clean(target: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    valid = valid & torch.isfinite(target) & (target > 0)
    return torch.where(valid, target, torch.ones_like(target)), valid


def confidence_l1(pred: torch.Tensor, target: torch.Tensor, conf: torch.Tensor, valid: torch.Tensor,
                  alpha: float = 0.2, weights: torch.Tensor | None = None) -> torch.Tensor:
    """mean over valid pixels of c * |d^ - d| - alpha * log c (c >= 1 the predicted confidence),
    weighted per pixel by `weights` (B, F, H, W) when given."""
    target, valid = _clean(target, valid)
    per_pixel = conf * (pred - target).abs() - alpha * conf.clamp_min(1e-6).log()
    return _masked_mean(per_pixel, valid, weights)


def filtered_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                quantile: float = 0.98, weights: torch.Tensor | None = None) -> torch.Tensor:
    """L1 over valid pixels whose residual is at most the `quantile` of the valid residuals
    (the largest 2 % are treated as outliers and dropped), weighted per pixel by `weights`."""
    target, valid = _clean(target, valid)
    return _trimmed_mean((pred - target).abs(), valid, quantile, weights)


def _trimmed_mean(residual: torch.Tensor, valid: torch.Tensor, quantile: float,
                  weights: torch.Tensor | None = None) -> torch.Tensor:
    if not bool(valid.any()):
        return residual.sum() * 0.0
    threshold = torch.quantile(residual[valid].detach().float(), quantile)
    keep = valid & (residual <= threshold)
    return _masked_mean(residual, keep, weights)


def near_edge_mask(target: torch.Tensor, valid: torch.Tensor, jump_log: float = EDGE_JUMP_LOG,
                   radius_px: int = EDGE_RADIUS_PX) -> torch.Tensor:
    """Pixels on the near side of a true depth edge, (B, F, H, W) bool: the true log-depth
    `radius_px` pixels away (left, right, up or down; both valid) is more than `jump_log`
    farther, as `evaluation.metrics.depth_edge_summary` finds them: an object's rim against
    what lies behind it."""
    target, valid = _clean(target, valid)
    log_depth = target.log()
    near = torch.zeros_like(valid)
    r = radius_px
    for dim in (-1, -2):
        size = target.shape[dim]
        if size <= r:
            continue
        for here, there in ((slice(0, size - r), slice(r, size)), (slice(r, size), slice(0, size - r))):
            index_here = [slice(None)] * target.dim()
            index_there = [slice(None)] * target.dim()
            index_here[dim], index_there[dim] = here, there
            index_here, index_there = tuple(index_here), tuple(index_there)
            rise = log_depth[index_there] - log_depth[index_here]
            near[index_here] |= valid[index_here] & valid[index_there] & (rise > jump_log)
    return near


def gradient_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient L1: at strides 1, 2, 4, ... (`scales` levels, nearest
    subsampling) mean |dx(d^ - d)| + |dy(d^ - d)| over pixel pairs both valid; averaged
    over levels."""
    target, valid = _clean(target, valid)
    return _gradient_l1_of(pred - target, valid, scales)


def _gradient_l1_of(diff: torch.Tensor, valid: torch.Tensor, scales: int) -> torch.Tensor:
    total = diff.sum() * 0.0
    for level in range(scales):
        step = 2 ** level
        d = diff[..., ::step, ::step]
        m = valid[..., ::step, ::step]
        gx = (d[..., :, 1:] - d[..., :, :-1]).abs()
        mx = m[..., :, 1:] & m[..., :, :-1]
        gy = (d[..., 1:, :] - d[..., :-1, :]).abs()
        my = m[..., 1:, :] & m[..., :-1, :]
        count = (mx.sum() + my.sum()).clamp_min(1)
        total = total + ((gx * mx).sum() + (gy * my).sum()) / count
    return total / scales


def silog(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Scale-invariant log loss sqrt(mean g^2 - lam mean(g)^2), g = log d^ - log d."""
    target, valid = _clean(target, valid)
    g = pred.clamp_min(1e-6).log() - target.log()
    mean_g = _masked_mean(g, valid)
    mean_g2 = _masked_mean(g * g, valid)
    return (mean_g2 - lam * mean_g * mean_g).clamp_min(1e-12).sqrt()


def normalized_disparity(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Each frame's disparity 1 / d with its median over valid pixels taken off and divided by
    its mean absolute deviation from it (MiDaS's scale and shift normalisation): (B, F, H, W)
    depths -> (B, F, H, W), invalid pixels 0. Any positive scale and any shift of the disparity
    give the same map."""
    disparity = torch.where(valid, 1.0 / depth.clamp_min(1e-6), torch.full_like(depth, float('nan')))
    flat = disparity.flatten(2)
    shift = flat.nanmedian(dim=2).values.nan_to_num(0.0)[..., None, None]
    centred = torch.where(valid, disparity - shift, torch.zeros_like(depth))
    count = valid.flatten(2).sum(dim=2).clamp_min(1)[..., None, None]
    spread = (centred.abs().flatten(2).sum(dim=2)[..., None, None] / count).clamp_min(1e-6)
    return centred / spread


def shape_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, quantile: float = 0.8,
               grad_scales: int = 4) -> dict[str, torch.Tensor]:
    """Scale- and shift-invariant disparity loss (MiDaS, Ranftl et al. 2020) for depth whose
    scale and contrast should not be learned (renders of rooms whose sizes are not real ones):
    the trimmed L1 (`quantile` of each batch's residuals kept) between the normalised
    disparities of prediction and truth (`normalized_disparity`), plus their multi-scale
    gradient L1. (B, F, H, W) positive depths; returns 'ssi', 'ssi_grad' and 'total'."""
    target, valid = _clean(target, valid)
    diff = normalized_disparity(pred, valid) - normalized_disparity(target, valid)
    parts = {'ssi': _trimmed_mean(diff.abs(), valid, quantile),
             'ssi_grad': _gradient_l1_of(diff, valid, grad_scales)}
    parts['total'] = parts['ssi'] + parts['ssi_grad']
    return parts


def depth_loss(pred: torch.Tensor, target: torch.Tensor, conf: torch.Tensor, valid: torch.Tensor,
               alpha: float = 0.2, quantile: float = 0.98, grad_scales: int = 4,
               weights: dict[str, float] | None = None, near_edge_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """GeoVR depth loss = conf-L1 + filtered L1 + gradient L1 (+ optional SILog).

    `weights` may set 'conf', 'l1', 'grad', 'silog' (defaults 1, 1, 1, 0). `near_edge_weight`
    weighs the pixels on the near side of a true depth edge (`near_edge_mask`) in the conf-L1
    and the L1: where the decoder cannot tell an object's rim from the wall behind it, the L1's
    best guess is the side most pixels show, the wall, and the object reads too far; 1: off.
    Returns the components and their weighted sum under 'total'.
    """
    if not near_edge_weight >= 0:
        raise ValueError(f'near_edge_weight must be >= 0, got {near_edge_weight}')
    w = {'conf': 1.0, 'l1': 1.0, 'grad': 1.0, 'silog': 0.0}
    w.update(weights or {})
    pixel_weights = None
    if near_edge_weight != 1.0:
        pixel_weights = 1.0 + (near_edge_weight - 1.0) * near_edge_mask(target, valid).to(pred.dtype)
    parts = {'conf': confidence_l1(pred, target, conf, valid, alpha, pixel_weights),
             'l1': filtered_l1(pred, target, valid, quantile, pixel_weights),
             'grad': gradient_l1(pred, target, valid, grad_scales)}
    if w['silog']:
        parts['silog'] = silog(pred, target, valid)
    parts['total'] = sum(w[k] * v for k, v in parts.items())
    return parts
