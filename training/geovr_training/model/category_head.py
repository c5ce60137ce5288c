"""A per-cell category head: the rendered rooms' object categories named on every cell of
GeoVR-S v2's frozen backbone (the ImageNet classes do not name the renders' furniture).

The head reads (`FEATURE_CHANNELS`, `FEATURE_STRIDE`) the backbone classifier's own per-cell
features (`head`: 1280 channels, what the ImageNet classifier reads, stride 32), the
stride-32 map (`s32`: `feat_s32`, 320 channels), the stride-16 map (`s16`: `feat_s16`, 112
channels), or the stride-16 map joined with the stride-32 map upsampled x2 (`s16+s32`: 432
channels on the stride-16 cells, `join_features`: the s16 map alone knows less of what a
thing is), standardises them with the training set's mean and standard deviation (buffers,
saved with the weights) and applies a convolution over each cell and its neighbours
(`kernel` 3: the 3 x 3 cells around it, zero-padded at the border; 5: the 5 x 5; 1: the cell alone):
linear, or with one hidden ReLU layer followed by a 1x1 convolution. Dropout (training only)
on the input and hidden layer. Output: logits over K categories + background (last column).

`s8+s16+s32` (`FineCellCategoryHead`) names the stride-8 cells: the hidden layer is computed
on the stride-16 cells from the `s16+s32` features as above (the context of what a thing is),
brought to the stride-8 cells (nearest, x2), added to a 1x1 projection of the stride-8 map
(`feat_s8`, 40 channels: where its edges are), and a 3x3 convolution over the stride-8 cells
gives the logits. Trained by `geovr_training.train.cell_categories` on cached features
(docs/objects.md).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# category_features -> channels the head reads (a fine head: the context's, then the stride-8 map's)
FEATURE_CHANNELS = {'head': 1280, 's32': 320, 's16': 112, 's16+s32': 432, 's8+s16+s32': 472}
FEATURE_STRIDE = {'head': 32, 's32': 32, 's16': 16, 's16+s32': 16, 's8+s16+s32': 8}  # -> cell size, pixels
FINE_CHANNELS = {'s8+s16+s32': 40}  # the fine heads' stride-8 map (feat_s8) channels
KERNELS = (1, 3, 5)  # cells a side the head's first convolution sees around each cell


def join_features(feat_s16: torch.Tensor, feat_s32: torch.Tensor) -> torch.Tensor:
    """The `s16+s32` features: feat_s16 (B, 112, 2h, 2w) and feat_s32 (B, 320, h, w) ->
    (B, 432, 2h, 2w), the stride-32 map upsampled x2 (nearest: each stride-32 cell's four
    stride-16 cells get its vector) after the stride-16 channels. Raises ValueError when the
    grids are not 2:1 (input sides multiples of 32)."""
    if feat_s16.shape[-2:] != (2 * feat_s32.shape[-2], 2 * feat_s32.shape[-1]) or feat_s16.shape[0] != feat_s32.shape[0]:
        raise ValueError(f'feat_s16 {tuple(feat_s16.shape)} must be batch and twice the cells of '
                         f'feat_s32 {tuple(feat_s32.shape)}')
    return torch.cat([feat_s16, F.interpolate(feat_s32, scale_factor=2.0, mode='nearest')], dim=1)


class _StandardisedHead(nn.Module):
    """What both heads share: the checks of their shape arguments and the per-channel mean and
    std of the training features they standardise their inputs with (buffers)."""

    def __init__(self, channels: int, num_classes: int, kernel: int):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f'num_classes {num_classes} must be >= 2 (a category and background)')
        if kernel not in KERNELS:
            raise ValueError(f'kernel {kernel} must be one of {KERNELS} (cells)')
        self.register_buffer('feature_mean', torch.zeros(channels))
        self.register_buffer('feature_std', torch.ones(channels))

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel mean and std (C,) of the training features, in the order the head reads
        them (std floored at 1e-3)."""
        with torch.no_grad():
            self.feature_mean.copy_(mean)
            self.feature_std.copy_(std.clamp_min(1e-3))

    def standardised(self, x: torch.Tensor, first: int = 0) -> torch.Tensor:
        """x (B, C', h, w) standardised with channels first .. first + C' of the buffers."""
        channels = slice(first, first + x.shape[1])
        return (x - self.feature_mean[None, channels, None, None]) / self.feature_std[None, channels, None, None]


class CellCategoryHead(_StandardisedHead):
    """(B, C, h, w) features -> (B, num_classes, h, w) logits of every cell."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 0, kernel: int = 1,
                 dropout: float = 0.0):
        super().__init__(in_channels, num_classes, kernel)
        if hidden < 0:
            raise ValueError(f'hidden {hidden} must be >= 0 (0: linear)')
        first = nn.Conv2d(in_channels, hidden or num_classes, kernel, padding=kernel // 2)
        layers = [nn.Dropout(dropout), first]
        if hidden:
            layers += [nn.ReLU(), nn.Dropout(dropout), nn.Conv2d(hidden, num_classes, 1)]
        self.classifier = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.standardised(features))  # (B, K + 1, h, w)


class FineCellCategoryHead(_StandardisedHead):
    """context (B, C, h, w) (the `s16+s32` features) and fine (B, F, 2h, 2w) (feat_s8) ->
    (B, num_classes, 2h, 2w) logits of every stride-8 cell (module docstring)."""

    def __init__(self, context_channels: int, fine_channels: int, num_classes: int, hidden: int = 128,
                 kernel: int = 3, dropout: float = 0.0):
        super().__init__(context_channels + fine_channels, num_classes, kernel)
        if hidden < 1:
            raise ValueError(f'hidden {hidden} must be >= 1: the fine head adds the stride-8 map to its hidden layer')
        self.context_channels = context_channels
        self.context = nn.Sequential(nn.Dropout(dropout),
                                     nn.Conv2d(context_channels, hidden, kernel, padding=kernel // 2))
        self.fine = nn.Conv2d(fine_channels, hidden, 1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(hidden, num_classes, 3, padding=1))

    def forward(self, context: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        if fine.shape[-2:] != (2 * context.shape[-2], 2 * context.shape[-1]):
            raise ValueError(f'fine {tuple(fine.shape)} must have twice the cells of context {tuple(context.shape)}')
        hidden = torch.relu(self.context(self.standardised(context)))
        x = F.interpolate(hidden, scale_factor=2.0, mode='nearest')
        x = x + self.fine(self.standardised(fine, self.context_channels))
        return self.classifier(torch.relu(x))  # (B, K + 1, 2h, 2w)
