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


class TinyFrameEncoder(torch.nn.Module):
    """The frame half of TinyPerception, named as GeoVR-S v2's frame encoder: image (B, 3, H, W),
    intrinsics (B, 3, 3) -> feat_s16 (B, C, H/16, W/16) and feat_s32 (the same map, what the
    cell classifier reads)."""

    def __init__(self, perception: TinyPerception):
        super().__init__()
        self.embed = perception.embed

    def forward(self, image, intrinsics):
        x = torch.relu(self.embed(image))
        return x, x * 1.0


class TinyPairHead(torch.nn.Module):
    """ref/cur encodings + intrinsics (B, 2, 3, 3) -> TinyPerception's outputs for the current
    frame only, (B, 1, ...), as GeoVR-S v2's pair head."""

    def __init__(self, perception: TinyPerception):
        super().__init__()
        self.perception = perception

    def forward(self, ref_feat_s16, cur_feat_s16, intrinsics):
        p = self.perception
        x = torch.stack([ref_feat_s16, cur_feat_s16], dim=1)  # (B, 2, C, h, w)
        b, f, c, h, w = x.shape
        flat = x.reshape(b * f, c, h, w)
        depth = torch.nn.functional.softplus(p.depth_head(flat)) + 0.5
        depth = torch.nn.functional.interpolate(depth, size=(h * PATCH, w * PATCH), mode='bilinear',
                                                align_corners=False).reshape(b, f, h * PATCH, w * PATCH)
        pooled = flat.mean(dim=(2, 3)).reshape(b, f, -1)
        pose = p.pose_head(pooled[:, 1] - pooled[:, 0])
        eye = torch.eye(4).expand(b, 4, 4)
        top = torch.cat([eye[:, :3, :3], pose[:, :3, None] * 0.01], dim=2)
        rel_pose = torch.cat([top, eye[:, 3:]], dim=1)
        scale = depth.mean(dim=(1, 2, 3)) * intrinsics[:, 0, 2, 2]
        grid = torch.nn.functional.interpolate(flat, size=p.tokens, mode='bilinear', align_corners=False)
        tokens = grid.flatten(2).transpose(1, 2).reshape(b, f, -1, c)
        token_xyz = tokens[..., :3] * 0 + depth.mean(dim=(2, 3))[:, :, None, None]
        descriptor = torch.nn.functional.normalize(pooled, dim=-1)
        return (depth[:, 1:], rel_pose, scale, tokens[:, 1:], token_xyz[:, 1:], descriptor[:, 1:])


class TinyCellClassifier(torch.nn.Module):
    """feat_s32 (B, C, h, w) -> class_logits (B, 1000, h, w)."""

    def __init__(self, channels: int = 8):
        super().__init__()
        torch.manual_seed(1)
        self.fc = torch.nn.Conv2d(channels, 1000, 1)

    def forward(self, feat_s32):
        return self.fc(feat_s32)


class TinyImageNetCells(torch.nn.Module):
    """image (B, 3, H, W) -> class_logits (B, 1000, H/16, W/16): a network of its own on the
    frame encoder's input, as GeoVR-S v2's imagenet_cells graph (the pristine ImageNet
    network); its logits are far from TinyCellClassifier's (class 7 is +50 everywhere)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.embed = torch.nn.Conv2d(3, 4, PATCH, stride=PATCH)
        self.fc = torch.nn.Conv2d(4, 1000, 1)
        offset = torch.zeros(1, 1000, 1, 1)
        offset[:, 7] = 50.0
        self.register_buffer('offset', offset)

    def forward(self, image):
        return self.fc(torch.relu(self.embed(image))) + self.offset


def imagenet_cells_metadata(mean=MEAN, std=STD) -> dict[str, str]:
    """The keys the runtime reads from imagenet_cells.onnx: the image's normalisation (the
    frame encoder's) and where the weights came from."""
    return {'geovr.graph': json.dumps('imagenet_cells'),
            'geovr.normalization': json.dumps({'mean': list(mean), 'std': list(std)}),
            'geovr.weights': json.dumps({'package': 'tiny-test-weights', 'version': '0'})}


def write_imagenet_cells(directory: Path, metadata: dict[str, str] | None = None,
                         module: torch.nn.Module | None = None) -> Path:
    """`<directory>/imagenet_cells.onnx` from `module` (image -> class_logits at stride 16;
    default TinyImageNetCells) with `metadata` (default `imagenet_cells_metadata()`); returns
    its path."""
    path = directory / 'imagenet_cells.onnx'
    images, _ = example_inputs()
    with torch.no_grad():
        torch.onnx.export((module or TinyImageNetCells()).eval(), (images[:, 0],), str(path), input_names=['image'],
                          output_names=['class_logits'],
                          dynamic_axes={'image': {0: 'batch', 2: 'height', 3: 'width'},
                                        'class_logits': {0: 'batch', 2: 'height_16', 3: 'width_16'}},
                          opset_version=17, dynamo=False)
    model = onnx.load(str(path))
    for key, value in (imagenet_cells_metadata() if metadata is None else metadata).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def make_split_contract_model(directory: Path, with_classifier: bool = True, with_imagenet: bool = False) -> Path:
    """A GeoVR-S v2-style model directory: perception.onnx (with the metadata) plus
    frame_encoder.onnx, pair_head.onnx and (if asked) cell_classifier.onnx whose composition
    equals it, and (if asked) imagenet_cells.onnx (`write_imagenet_cells`). Returns the
    directory."""
    make_contract_model(directory)
    perception = TinyPerception().eval()
    images, K = example_inputs()
    spatial = {0: 'batch', 2: 'height_16', 3: 'width_16'}
    with torch.no_grad():
        encoder = TinyFrameEncoder(perception).eval()
        torch.onnx.export(encoder, (images[:, 0], K[:, 0]), str(directory / 'frame_encoder.onnx'),
                          input_names=['image', 'intrinsics'], output_names=['feat_s16', 'feat_s32'],
                          dynamic_axes={'image': {0: 'batch', 2: 'height', 3: 'width'},
                                        'intrinsics': {0: 'batch'}, 'feat_s16': spatial,
                                        'feat_s32': spatial}, opset_version=17, dynamo=False)
        feats = encoder(images[:, 0], K[:, 0])[0]
        torch.onnx.export(TinyPairHead(perception).eval(), (feats, feats, K),
                          str(directory / 'pair_head.onnx'),
                          input_names=['ref_feat_s16', 'cur_feat_s16', 'intrinsics'], output_names=OUTPUTS,
                          dynamic_axes={'ref_feat_s16': spatial, 'cur_feat_s16': spatial,
                                        'intrinsics': {0: 'batch'}, 'depth': {0: 'batch', 2: 'height', 3: 'width'}},
                          opset_version=17, dynamo=False)
        if with_classifier:
            torch.onnx.export(TinyCellClassifier().eval(), (feats,), str(directory / 'cell_classifier.onnx'),
                              input_names=['feat_s32'], output_names=['class_logits'],
                              dynamic_axes={'feat_s32': spatial, 'class_logits': spatial},
                              opset_version=17, dynamo=False)
    if with_imagenet:
        write_imagenet_cells(directory)
    return directory
