"""FLOP and parameter counts of the model on a clip of a given size."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def example_inputs(batch: int = 1, frames: int = 2, height: int = 192, width: int = 256,
                   focal_px: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random normalised images (B, F, 3, H, W) and a centred pinhole K (B, F, 3, 3)."""
    focal = focal_px if focal_px is not None else 0.8 * width
    k = torch.tensor([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0.0, 0.0, 1.0]])
    return torch.randn(batch, frames, 3, height, width), k.expand(batch, frames, 3, 3).clone()


def count_flops(model: torch.nn.Module, height: int = 192, width: int = 256, batch: int = 1) -> int:
    """FLOPs (multiply-add = 2) of one inference forward on a (batch, 2, 3, H, W) clip,
    as counted by torch.utils.flop_counter (matmuls and convolutions)."""
    device = next(model.parameters()).device
    images, intrinsics = (t.to(device) for t in example_inputs(batch, 2, height, width))
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images, intrinsics)
    model.train(was_training)
    return int(counter.get_total_flops())


def count_parameters(model: torch.nn.Module, exported_only: bool = True) -> int:
    """Number of parameters; `exported_only` leaves out the training-only distillation heads."""
    total = sum(p.numel() for p in model.parameters())
    if exported_only and hasattr(model, 'distill_heads'):
        total -= sum(p.numel() for p in model.distill_heads.parameters())
    return total
