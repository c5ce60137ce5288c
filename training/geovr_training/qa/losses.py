"""QA losses: one per answer kind, plus Loc3R's layout (BEV) and situation terms.

Total = w_category CE(category) + w_numeric L1(log value) + w_choice CE(choice)
      + w_point |point - gt|_2 + w_bev NLL_BEV + w_position NLL_pos + w_heading KL_heading
      + w_grounding CE(object slot pointer, instance-mask share of each memory token),
each term averaged over the items (or object roles) that carry it (a batch without such
items adds 0). Defaults follow the notes (Loc3R): L = CE + 0.05 BEV + 0.075 (pos + 3.5 ori).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEFAULT_LOSS_WEIGHTS = {'category': 1.0, 'numeric': 1.0, 'choice': 1.0, 'point': 1.0,
                        'bev': 0.05, 'position': 0.075, 'heading': 0.075 * 3.5, 'grounding': 0.5}


def gaussian_nll(pred: torch.Tensor, target: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """Per-element Gaussian negative log-likelihood (constant dropped):
    0.5 ((pred - target) / sigma)^2 + log sigma. Shapes broadcast; metres."""
    return 0.5 * ((pred - target) * torch.exp(-log_sigma)) ** 2 + log_sigma


def wrapped_gaussian_bins(angle: torch.Tensor, centres: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B,) angles radians, (NB,) bin centres -> (B, NB) target distribution: a Gaussian of
    `sigma` radians on the wrapped angular difference, normalised over the bins."""
    diff = torch.remainder(centres.unsqueeze(0) - angle.unsqueeze(1) + math.pi, 2 * math.pi) - math.pi
    logits = -0.5 * (diff / sigma) ** 2
    return logits.softmax(dim=-1)


def heading_kl(logits: torch.Tensor, angle: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B,) KL(target wrapped Gaussian || softmax(logits)) over the heading bins."""
    nb = logits.shape[-1]
    width = 2 * math.pi / nb
    centres = -math.pi + (torch.arange(nb, dtype=logits.dtype, device=logits.device) + 0.5) * width
    target = wrapped_gaussian_bins(angle, centres, sigma)
    log_p = logits.log_softmax(dim=-1)
    return (target * (target.clamp_min(1e-12).log() - log_p)).sum(-1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def qa_losses(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
              weights: dict[str, float] | None = None,
              heading_sigma_rad: float = math.radians(15.0)) -> dict[str, torch.Tensor]:
    """Weighted loss terms and their sum ('total').

    batch keys: category (B,) long; numeric_index (B,) long, -1 when not numeric;
    log_value (B,) log of the value in its canonical unit; choice_index (B,) long, -1 when
    not a choice; point (B, 3) world metres and has_point (B,); position (B, 3) metres,
    heading (B,) radians and has_pose (B,) (the heading bins are scored relative to
    out['heading_reference'] when the model gives one); bev_xy (B, M, 2) metres and bev_valid (B, M);
    optional grounding (B, S', M) target distribution over memory tokens per object slot
    (all 0 for an absent role; S' <= the model's slots).
    """
    w = dict(DEFAULT_LOSS_WEIGHTS)
    w.update(weights or {})
    terms: dict[str, torch.Tensor] = {}
    terms['category'] = F.cross_entropy(out['category_logits'], batch['category'])

    numeric = batch['numeric_index'] >= 0
    picked = out['log_values'].gather(1, batch['numeric_index'].clamp_min(0).unsqueeze(1)).squeeze(1)
    terms['numeric'] = _masked_mean((picked - batch['log_value']).abs(), numeric)

    choice = batch['choice_index'] >= 0
    ce = F.cross_entropy(out['choice_logits'], batch['choice_index'].clamp_min(0), reduction='none')
    terms['choice'] = _masked_mean(ce, choice)

    error = torch.sqrt(((out['point'] - batch['point']) ** 2).sum(-1) + 1e-6)
    terms['point'] = _masked_mean(error, batch['has_point'] > 0)

    nll = gaussian_nll(out['position'], batch['position'], out['position_log_sigma']).sum(-1)
    terms['position'] = _masked_mean(nll, batch['has_pose'] > 0)
    reference = out['heading_reference'].detach() if 'heading_reference' in out else 0.0
    terms['heading'] = _masked_mean(heading_kl(out['heading_logits'], batch['heading'] - reference,
                                               heading_sigma_rad), batch['has_pose'] > 0)

    bev = gaussian_nll(out['bev_xy'], batch['bev_xy'], out['bev_log_sigma'].unsqueeze(-1)).sum(-1)
    terms['bev'] = _masked_mean(bev, batch['bev_valid'] > 0)

    if 'grounding' in batch and 'object_weights' in out:
        target = batch['grounding']
        s = min(target.shape[1], out['object_weights'].shape[1])
        target, weights = target[:, :s], out['object_weights'][:, :s]
        ce = -(target * torch.log(weights + 1e-8)).sum(-1)  # (B, S')
        terms['grounding'] = _masked_mean(ce, target.sum(-1) > 0)

    total = sum(w[name] * value for name, value in terms.items())
    weighted = {name: value.detach() for name, value in terms.items()}
    weighted['total'] = total
    return weighted
