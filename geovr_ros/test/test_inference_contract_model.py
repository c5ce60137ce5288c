"""A tiny torch module that follows the perception-graph contract, exported for the runtime
tests (the runtime tests never import geovr_training), plus checks of that helper."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip('torch', reason='torch is not installed (needed to build test graphs)')
onnx = pytest.importorskip('onnx', reason='onnx is not installed')

MEAN = (0.5, 0.4, 0.3)
STD = (0.25, 0.2, 0.15)
PATCH = 16


class TinyPerception(torch.nn.Module):
    """images (B, 2, 3, H, W), intrinsics (B, 2, 3, 3) -> the six contract outputs."""

    def __init__(self, channels: int = 8, tokens: tuple[int, int] = (2, 3)):
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Conv2d(3, channels, PATCH, stride=PATCH)
        self.depth_head = torch.nn.Conv2d(channels, 1, 1)
        self.pose_head = torch.nn.Linear(channels, 7)
        self.tokens = tokens

    def forward(self, images, intrinsics):
        b, f, _, h, w = images.shape
        x = torch.relu(self.embed(images.reshape(b * f, 3, h, w)))  # (BF, C, h/16, w/16)
        depth = torch.nn.functional.softplus(self.depth_head(x)) + 0.5
        depth = torch.nn.functional.interpolate(depth, size=(h, w), mode='bilinear',
                                                align_corners=False).reshape(b, f, h, w)
        pooled = x.mean(dim=(2, 3)).reshape(b, f, -1)
        pose = self.pose_head(pooled[:, 1] - pooled[:, 0])
        eye = torch.eye(4).expand(b, 4, 4)
        top = torch.cat([eye[:, :3, :3], pose[:, :3, None] * 0.01], dim=2)
        rel_pose = torch.cat([top, eye[:, 3:]], dim=1)
        scale = depth.mean(dim=(1, 2, 3)) * intrinsics[:, 0, 2, 2]
        grid = torch.nn.functional.interpolate(x, size=self.tokens, mode='bilinear',
                                               align_corners=False)
        tokens = grid.flatten(2).transpose(1, 2).reshape(b, f, -1, x.shape[1])
        token_xyz = tokens[..., :3] * 0 + depth.mean(dim=(2, 3))[:, :, None, None]
        descriptor = torch.nn.functional.normalize(pooled, dim=-1)
        return depth, rel_pose, scale, tokens, token_xyz, descriptor


OUTPUTS = ['depth', 'rel_pose', 'scale', 'tokens', 'token_xyz', 'descriptor']
DYNAMIC = {'images': {0: 'batch', 3: 'height', 4: 'width'}, 'intrinsics': {0: 'batch'},
           'depth': {0: 'batch', 2: 'height', 3: 'width'}, 'rel_pose': {0: 'batch'},
           'scale': {0: 'batch'}, 'tokens': {0: 'batch'}, 'token_xyz': {0: 'batch'},
           'descriptor': {0: 'batch'}}


def contract_metadata(input_size=(64, 48), flops=None) -> dict[str, str]:
    values = {
        'geovr.graph': 'perception', 'geovr.model_version': 'tiny-test-1',
        'geovr.config_sha256': 'ab' * 32, 'geovr.input_size': list(input_size),
        'geovr.normalization': {'mean': list(MEAN), 'std': list(STD)},
        'geovr.outputs': {n: {'unit': 'm'} for n in OUTPUTS},
        'geovr.shapes': {'dynamic_axes': {}, 'multiple_of': PATCH,
                         'profile': {'batch': [1, 1, 2], 'height': [32, 48, 96],
                                     'width': [32, 64, 128]},
                         'declared': [[64, 48], [128, 96]]},
        'geovr.patch_size': PATCH,
        'geovr.flops_per_clip': flops or {'64x48': 1000000},
        'geovr.vocabularies': {'categories': ['box', 'chair']},
    }
    return {k: json.dumps(v) for k, v in values.items()}


def example_inputs(batch=1, width=64, height=48):
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, 2, 3, height, width, generator=generator)
    K = torch.tensor([[50.0, 0, width / 2 - 0.5], [0, 50.0, height / 2 - 0.5], [0, 0, 1]])
    return images, K.expand(batch, 2, 3, 3).clone()


def make_contract_model(directory: Path, opset: int = 17, metadata: dict | None = None,
                        with_pt2: bool = False) -> Path:
    """Write `<directory>/perception.onnx` (and `.pt2` if asked); return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    module = TinyPerception().eval()
    path = directory / 'perception.onnx'
    with torch.no_grad():
        torch.onnx.export(module, example_inputs(), str(path), input_names=['images', 'intrinsics'],
                          output_names=OUTPUTS, dynamic_axes=DYNAMIC, opset_version=opset,
                          dynamo=False)
    model = onnx.load(str(path))
    for key, value in (contract_metadata() if metadata is None else metadata).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    if with_pt2:
        Dim = torch.export.Dim
        dims = {'images': {0: Dim('batch', min=1, max=8), 3: PATCH * Dim('hp', min=1, max=64),
                           4: PATCH * Dim('wp', min=1, max=64)},
                'intrinsics': {0: Dim('batch', min=1, max=8)}}
        program = torch.export.export(module, example_inputs(batch=2), dynamic_shapes=dims)
        io = {'inputs': [{'name': 'images', 'shape': ['batch', 2, 3, 'height', 'width'],
                          'dtype': 'float32'},
                         {'name': 'intrinsics', 'shape': ['batch', 2, 3, 3], 'dtype': 'float32'}],
              'outputs': [{'name': n, 'shape': [], 'dtype': 'float32'} for n in OUTPUTS],
              'metadata': contract_metadata()}
        torch.export.save(program, str(directory / 'perception.pt2'),
                          extra_files={'geovr_io.json': json.dumps(io)})
    return directory


def test_contract_model_has_the_contract_io_names(tmp_path):
    model = onnx.load(str(make_contract_model(tmp_path) / 'perception.onnx'))
    assert [i.name for i in model.graph.input] == ['images', 'intrinsics']
    assert [o.name for o in model.graph.output] == OUTPUTS
    onnx.checker.check_model(model, full_check=True)
    assert np.isclose(float(TinyPerception()(*example_inputs())[1][0, 3, 3]), 1.0)
