"""A per-cell category head: the rendered rooms' object categories named on every stride-32
cell of GeoVR-S v2's frozen backbone (the ImageNet classes do not name the renders' furniture).

The head reads either the backbone classifier's own per-cell features (`head_features`,
1280 channels, what the ImageNet classifier reads) or the stride-32 map (`feat_s32`, 320
channels), standardises them with the training set's mean and standard deviation (buffers,
saved with the weights) and applies a convolution over each cell and its neighbours
(`kernel` 3: the 3 x 3 cells around it, zero-padded at the border; 1: the cell alone):
linear, or with one hidden ReLU layer followed by a 1x1 convolution. Dropout (training only)
on the input and hidden layer. Output: logits over K categories + background (last column). Trained by
`geovr_training.train.cell_categories` on cached features (docs/objects.md).
"""
from __future__ import annotations

import torch
from torch import nn

FEATURE_CHANNELS = {'head': 1280, 's32': 320}  # category_features -> channels per cell


class CellCategoryHead(nn.Module):
    """(B, C, h, w) features -> (B, num_classes, h, w) logits of every cell."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 0, kernel: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f'num_classes {num_classes} must be >= 2 (a category and background)')
        if hidden < 0:
            raise ValueError(f'hidden {hidden} must be >= 0 (0: linear)')
        if kernel not in (1, 3):
            raise ValueError(f'kernel {kernel} must be 1 or 3 (cells)')
        self.register_buffer('feature_mean', torch.zeros(in_channels))
        self.register_buffer('feature_std', torch.ones(in_channels))
        first = nn.Conv2d(in_channels, hidden or num_classes, kernel, padding=kernel // 2)
        layers = [nn.Dropout(dropout), first]
        if hidden:
            layers += [nn.ReLU(), nn.Dropout(dropout), nn.Conv2d(hidden, num_classes, 1)]
        self.classifier = nn.Sequential(*layers)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel mean and std (C,) of the training features (std floored at 1e-3)."""
        with torch.no_grad():
            self.feature_mean.copy_(mean)
            self.feature_std.copy_(std.clamp_min(1e-3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = (features - self.feature_mean[None, :, None, None]) / self.feature_std[None, :, None, None]
        return self.classifier(x)  # (B, K + 1, h, w)
