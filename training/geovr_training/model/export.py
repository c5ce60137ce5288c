"""Export-ready wrappers: exactly the perception-graph contract outputs, in order.

`PerceptionGraph(model)(images, intrinsics)` -> (depth, rel_pose, scale, tokens,
token_xyz, descriptor, depth_confidence) as in docs/architecture.md. The distillation heads are not called,
so they are absent from any traced graph. `TeacherFeatures` exposes the named block
features of a GeoVR-S model used as a geometry teacher (feat_0..feat_{n-1}) plus its depth.
"""

from __future__ import annotations

import torch
from torch import nn

from geovr_training.model.layers import evenly_spaced_layers

CONTRACT_OUTPUTS = ('depth', 'rel_pose', 'scale', 'tokens', 'token_xyz', 'descriptor', 'depth_confidence')
CONTRACT_INPUTS = ('images', 'intrinsics')
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


class PerceptionGraph(nn.Module):
    """images (B, 2, 3, H, W) normalised, intrinsics (B, 2, 3, 3) -> contract tuple."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor, intrinsics: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images, intrinsics, with_distill=False)
        return tuple(out[name] for name in CONTRACT_OUTPUTS)


def export_forward(model: nn.Module, images: torch.Tensor, intrinsics: torch.Tensor) -> dict[str, torch.Tensor]:
    """The contract outputs as a dict in contract order (no training-only heads)."""
    return dict(zip(CONTRACT_OUTPUTS, PerceptionGraph(model)(images, intrinsics)))


class TeacherFeatures(nn.Module):
    """A geometry teacher for ONNX: (images, intrinsics) -> (depth, feat_0, ..., feat_{n-1}),
    each feat_i (B, 2, dim, H/32, W/32) the cell features of block `layers[i]` (default:
    `count` blocks evenly spaced over the model's)."""

    def __init__(self, model: nn.Module, layers: list[int] | None = None, count: int = 4):
        super().__init__()
        self.model = model
        self.layers = list(layers) if layers else evenly_spaced_layers(model.args.depth, count)

    @property
    def output_names(self) -> list[str]:
        return ['depth'] + [f'feat_{i}' for i in range(len(self.layers))]

    def forward(self, images: torch.Tensor, intrinsics: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(images, intrinsics, feature_layers=self.layers)
        return (out['depth'], *out['features'])


def export_onnx(module: nn.Module, path: str, output_names: list[str], height: int = 192,
                width: int = 256, opset: int = 17) -> str:
    """Trace `module` to ONNX with dynamic batch/H/W (TorchScript exporter, opset 17); H and W
    multiples of 32."""
    from geovr_training.model.flops import example_inputs

    images, intrinsics = example_inputs(1, 2, height, width)
    dynamic = {'images': {0: 'batch', 3: 'height', 4: 'width'}, 'intrinsics': {0: 'batch'}}
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, (images, intrinsics), path, input_names=list(CONTRACT_INPUTS),
                          output_names=output_names, dynamic_axes=dynamic, opset_version=opset,
                          dynamo=False)
    return path


def normalize_images(rgb01: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (..., 3, H, W) -> (rgb - mean) / std with the metadata's mean and std."""
    mean = torch.tensor(IMAGE_MEAN, dtype=rgb01.dtype, device=rgb01.device)[:, None, None]
    std = torch.tensor(IMAGE_STD, dtype=rgb01.dtype, device=rgb01.device)[:, None, None]
    return (rgb01 - mean) / std
