"""Per-patch category loss (the semantic head)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def patch_class_fractions(labels: torch.Tensor, classes: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fraction of each class among the known pixels of every patch.

    labels (B, F, H, W) int, -1 unknown. Returns (fractions (B, F, classes, h, w) summing to
    1 where known > 0, known (B, F, h, w): the fraction of the patch's pixels that are known).
    """
    b, nf, height, width = labels.shape
    flat = labels.reshape(b * nf, height, width)
    known = flat >= 0
    one_hot = F.one_hot(flat.clamp_min(0), classes).permute(0, 3, 1, 2).float() * known[:, None]
    counts = F.avg_pool2d(one_hot, patch)  # (BF, C, h, w)
    known_fraction = counts.sum(1)
    fractions = counts / known_fraction.clamp_min(1e-6)[:, None]
    hp, wp = counts.shape[-2:]
    return (fractions.reshape(b, nf, classes, hp, wp), known_fraction.reshape(b, nf, hp, wp))


def semantic_loss(logits: torch.Tensor, labels: torch.Tensor, patch: int,
                  min_known: float = 0.5) -> torch.Tensor:
    """Soft cross-entropy between per-patch logits (B, F, C, h, w) and the class fractions
    of the labels (B, F, H, W) in each patch; patches less than `min_known` known are left
    out. 0 when no patch qualifies."""
    fractions, known = patch_class_fractions(labels, logits.shape[2], patch)
    per_patch = -(fractions * F.log_softmax(logits, dim=2)).sum(2)  # (B, F, h, w)
    keep = (known >= min_known).to(per_patch.dtype)
    return (per_patch * keep).sum() / keep.sum().clamp_min(1.0)
