"""The table of exportable graphs (one entry per ONNX file), Ultralytics style.

Adding a graph is adding an entry to GRAPHS: a wrapper that returns exactly the contract
outputs in order, its I/O names, dynamic axes, example inputs, output units and parity
tolerances. Every GeoVR-S checkpoint provides all four: the perception graph (a clip of two
frames), the frame encoder and pair head it splits into, and the cell classifier; a fifth,
`imagenet_cells`, is not the checkpoint's: the pristine ImageNet EfficientNet-Lite0 of the
weights package (v2's backbone, fine-tuned for depth, lost its ImageNet classes), loaded at
export time, names every stride-32 cell of the frame encoder's input image. The question
graphs are exported by `geovr_training.qa.export`.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class GraphSpec:
    """How to export one graph.

    Attributes:
        name: file stem in the model directory (`<name>.onnx`, `<name>.pt2`).
        wrap: model -> nn.Module whose forward(*inputs) returns the outputs in order.
        input_names, output_names: ONNX tensor names (the runtime contract).
        dynamic_axes: {tensor name: {axis: symbolic name}} for torch.onnx.export.
        example_inputs: (batch, width, height) -> tuple of input tensors.
        outputs: {output name: {"unit": str, "dims": list}} written to geovr.outputs.
        tolerances: {output name: (atol, rtol)} for the torch-vs-ONNX-Runtime parity check,
            |onnx - torch| <= atol + rtol * |torch| elementwise.
        spatial: whether height/width are dynamic (profiles and FLOPs per size apply).
        torch_program: also save a torch.export program (`.pt2`).
        adapt: (model, spec) -> the spec for that model, where a model's optional head adds
            outputs (`spec_for`); None: the spec as written.
        metadata: () -> {`geovr.*` key: JSON-able value} written besides the common keys (where
            a graph's weights came from); None: none.
    The example inputs are made by `example_inputs(batch, width, height, wrapper)`.
    """

    name: str
    wrap: Callable[[nn.Module], nn.Module]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_axes: dict[str, dict[int, str]]
    example_inputs: Callable[[int, int, int], tuple[torch.Tensor, ...]]
    outputs: dict[str, dict]
    tolerances: dict[str, tuple[float, float]]
    spatial: bool = True
    torch_program: bool = True
    adapt: Callable[[nn.Module, 'GraphSpec'], 'GraphSpec'] | None = None
    metadata: Callable[[], dict] | None = None


def spec_for(spec: GraphSpec, model: nn.Module) -> GraphSpec:
    """The spec of `spec`'s graph for this model (its optional outputs included)."""
    return spec.adapt(model, spec) if spec.adapt is not None else spec


def _perception_wrap(model: nn.Module) -> nn.Module:
    from geovr_training.model import PerceptionGraph
    return PerceptionGraph(model).eval()


def _perception_inputs(batch: int, width: int, height: int, wrapper=None) -> tuple[torch.Tensor, ...]:
    from geovr_training.model import example_inputs
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(0)
    try:
        return example_inputs(batch, 2, height, width)
    finally:
        torch.random.set_rng_state(generator_state)


PERCEPTION = GraphSpec(
    name='perception',
    wrap=_perception_wrap,
    input_names=('images', 'intrinsics'),
    output_names=('depth', 'rel_pose', 'scale', 'tokens', 'token_xyz', 'descriptor', 'depth_confidence'),
    dynamic_axes={
        'images': {0: 'batch', 3: 'height', 4: 'width'}, 'intrinsics': {0: 'batch'},
        'depth': {0: 'batch', 2: 'height', 3: 'width'}, 'rel_pose': {0: 'batch'},
        'scale': {0: 'batch'}, 'tokens': {0: 'batch'}, 'token_xyz': {0: 'batch'},
        'descriptor': {0: 'batch'}, 'depth_confidence': {0: 'batch', 2: 'height', 3: 'width'},
    },
    example_inputs=_perception_inputs,
    outputs={
        'depth': {'unit': 'm', 'dims': ['batch', 2, 'height', 'width'],
                  'meaning': 'metric depth along optical z of (reference, current)'},
        'rel_pose': {'unit': 'm', 'dims': ['batch', 4, 4],
                     'meaning': 'T_ref_cur, current camera in the reference optical frame'},
        'scale': {'unit': 'm', 'dims': ['batch'], 'meaning': 'metric scale (median depth)'},
        'tokens': {'unit': '1', 'dims': ['batch', 2, 'N', 'C'], 'meaning': 'memory tokens'},
        'token_xyz': {'unit': 'm', 'dims': ['batch', 2, 'N', 3],
                      'meaning': 'token positions in each camera optical frame'},
        'descriptor': {'unit': '1', 'dims': ['batch', 2, 'D'],
                       'meaning': 'L2-normalised global place descriptor per frame'},
        'depth_confidence': {'unit': '1', 'dims': ['batch', 2, 'height', 'width'],
                             'meaning': "the depth decoder's confidence c as 1 - 1/c in [0, 1): the expected "
                                        'error of depth is about 0.2 (1 - confidence) of the scale'},
    },
    tolerances={
        'depth': (1e-3, 1e-3), 'rel_pose': (1e-4, 1e-3), 'scale': (1e-4, 1e-4),
        'tokens': (1e-3, 1e-3), 'token_xyz': (1e-3, 1e-3), 'descriptor': (1e-4, 1e-3),
        'depth_confidence': (1e-3, 1e-3),
    },
)

ENCODED = ('feat_s4', 'feat_s8', 'feat_s16', 'frame_tokens', 'rays_s8')  # a frame's encoding (pair head input)
_ENCODED_KEYS = ('s4', 's8', 's16', 'tokens', 'rays8')  # the same in GeoVRv2Model.encode_frames
FRAME_OUTPUTS = (*ENCODED, 'feat_s32')  # + the stride-32 map the cell classifier reads
GUIDE = 'guide_s4'  # + with a `depth_guidance`: the depth decoder's guide map (encode_frames' guide4)


def has_guide(model: nn.Module) -> bool:
    """Whether the model's depth decoder reads the image guide (a frame encoder output)."""
    return model.args.depth_guidance != 'none'


class FrameEncoderGraph(nn.Module):
    """image (B, 3, H, W) normalised, intrinsics (B, 3, 3) -> a frame's encoding (ENCODED) and
    its stride-32 backbone map: everything of GeoVR-S v2 that depends on one frame alone, run
    once per camera frame."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor, intrinsics: torch.Tensor) -> tuple[torch.Tensor, ...]:
        encoded = self.model.encode_frames(image, intrinsics)
        guide = (encoded['guide4'],) if has_guide(self.model) else ()
        return (*(encoded[k] for k in _ENCODED_KEYS), encoded['s32'], *guide)


def category_stride(model: nn.Module) -> int | None:
    """The cell size (pixels) of the model's category head (32, 16 or 8), None without one."""
    if getattr(model, 'category_head', None) is None:
        return None
    return int(getattr(model, 'category_stride', None) or 32)


class CellClassifierGraph(nn.Module):
    """feat_s32 (B, 320, h, w) -> ImageNet logits of every stride-32 cell (B, 1000, h, w): the
    backbone's own classifier applied per cell (class activation maps), run on keyframes only
    to name what the object map sees; with the model's category head also its logits
    (B, K + 1, h', w') (`model_args.cell_categories`, then background) on the head's cells:
    h', w' = h, w for a stride-32 head; for a stride-16 head (`category_stride` 16) the graph
    also takes feat_s16 (B, 112, 2h, 2w) and h', w' = 2h, 2w; a stride-8 head takes feat_s16 and
    feat_s8 (B, 40, 4h, 4w), h', w' = 4h, 4w."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, feat_s32: torch.Tensor, feat_s16: torch.Tensor | None = None,
                feat_s8: torch.Tensor | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        class_logits = self.model.backbone.classify_cells(feat_s32)
        if getattr(self.model, 'category_head', None) is None:
            return class_logits
        return class_logits, self.model.cell_category_logits(feat_s32, feat_s16, feat_s8)


class PairHeadGraph(nn.Module):
    """The encodings of a (reference, current) pair and their intrinsics (B, 2, 3, 3) -> the
    perception contract outputs for the current frame: equal to the single perception graph's
    on the two images, with the per-frame outputs (depth, tokens, token_xyz, descriptor) of
    the current frame only, shaped (B, 1, ...) (a stream has the reference's from the
    previous pair; decoding it again was half of the pair's cost). A model with the image
    guide takes the current frame's guide map last (`cur_guide_s4`; only the current frame is
    decoded)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from geovr_training.model.export import CONTRACT_OUTPUTS
        n = len(_ENCODED_KEYS)
        ref, cur, intrinsics = tensors[:n], tensors[n:2 * n], tensors[2 * n]
        encoded = {k: torch.stack([r, c], dim=1).flatten(0, 1) for k, r, c in zip(_ENCODED_KEYS, ref, cur)}
        if has_guide(self.model):  # the reference's place is filled by the current's: it is not decoded
            guide = tensors[2 * n + 1]
            encoded['guide4'] = torch.stack([guide, guide], dim=1).flatten(0, 1)
        out = self.model.clip_outputs(encoded, intrinsics, current_only=True)
        return tuple(out[name] for name in CONTRACT_OUTPUTS)


def _frame_inputs(batch: int, width: int, height: int, wrapper=None) -> tuple[torch.Tensor, ...]:
    images, intrinsics = _perception_inputs(batch, width, height)
    return images[:, 0].contiguous(), intrinsics[:, 0].contiguous()


def _cell_inputs(batch: int, width: int, height: int, wrapper=None, maps: tuple[str, ...] = ('s32',)
                 ) -> tuple[torch.Tensor, ...]:
    """The frame encoder's maps of those names (feat_s32, then a finer head's) for the cell classifier."""
    images, intrinsics = _perception_inputs(batch, width, height)
    with torch.no_grad():
        encoded = wrapper.model.encode_frames(images[:, 0].contiguous(), intrinsics[:, 0].contiguous())
    return tuple(encoded[name] for name in maps)


def _with_category_logits(model: nn.Module, spec: GraphSpec) -> GraphSpec:
    """The cell classifier of a model with a category head: + category_logits (B, K + 1, h, w)
    on the head's cells; a stride-16 head adds the input feat_s16 (the frame encoder's output
    of that name) and its logits are (B, K + 1, H/16, W/16); a stride-8 head adds feat_s16 and
    feat_s8, its logits (B, K + 1, H/8, W/8)."""
    stride = category_stride(model)
    if stride is None:
        return spec
    names = list(model.args.cell_categories)
    output = {'unit': '1', 'dims': ['batch', len(names) + 1, f'height/{stride}', f'width/{stride}'],
              'meaning': f'category head logits of every stride-{stride} cell: geovr.vocabularies.cell_categories, '
                         'then background',
              'categories': [*names, 'background'], 'stride': stride}
    spec = dataclasses.replace(spec, output_names=(*spec.output_names, 'category_logits'),
                               dynamic_axes={**spec.dynamic_axes, 'category_logits': _CELL_AXES[stride]},
                               outputs={**spec.outputs, 'category_logits': output},
                               tolerances={**spec.tolerances, 'category_logits': (1e-3, 1e-3)})
    finer = _FINER_MAPS[stride]   # the frame encoder's maps the head reads beside feat_s32
    if finer:
        spec = dataclasses.replace(spec, input_names=(*spec.input_names, *(f'feat_{m}' for m in finer)),
                                   dynamic_axes={**spec.dynamic_axes,
                                                 **{f'feat_{m}': _CELL_AXES[_MAP_STRIDES[m]] for m in finer}},
                                   example_inputs=functools.partial(_cell_inputs, maps=('s32', *finer)))
    return spec


def _pair_inputs(batch: int, width: int, height: int, wrapper=None) -> tuple[torch.Tensor, ...]:
    images, intrinsics = _perception_inputs(batch, width, height)
    with torch.no_grad():
        encoded = wrapper.model.encode_frames(images.flatten(0, 1), intrinsics.flatten(0, 1))
    pairs = [encoded[k].reshape(batch, 2, *encoded[k].shape[1:]) for k in _ENCODED_KEYS]
    guide = (encoded['guide4'].reshape(batch, 2, *encoded['guide4'].shape[1:])[:, 1].contiguous(),) \
        if has_guide(wrapper.model) else ()
    return (*(t[:, 0].contiguous() for t in pairs), *(t[:, 1].contiguous() for t in pairs), intrinsics, *guide)


_ENCODED_AXES = {'feat_s4': {0: 'batch', 2: 'height_4', 3: 'width_4'},
                 'feat_s8': {0: 'batch', 2: 'height_8', 3: 'width_8'},
                 'feat_s16': {0: 'batch', 2: 'height_16', 3: 'width_16'},
                 'frame_tokens': {0: 'batch', 1: 'cells'},
                 'rays_s8': {0: 'batch', 2: 'height_8', 3: 'width_8'}}
_S32_AXES = {0: 'batch', 2: 'height_32', 3: 'width_32'}
_S16_AXES = {0: 'batch', 2: 'height_16', 3: 'width_16'}
_CELL_AXES = {32: _S32_AXES, 16: _S16_AXES, 8: _ENCODED_AXES['feat_s8']}  # cell size -> the axes of a map of such cells
_MAP_STRIDES = {'s16': 16, 's8': 8}
_FINER_MAPS = {32: (), 16: ('s16',), 8: ('s16', 's8')}  # a category head's stride -> the finer maps it reads
_GUIDE_OUTPUT = {'unit': '1', 'dims': ['batch', 'G', 'height/4', 'width/4'],
                 'meaning': "the depth decoder's guide: the image's 4x4 pixels and the backbone's stride-2 "
                            'map of each stride-4 cell, projected'}


def _with_guide_output(model: nn.Module, spec: GraphSpec) -> GraphSpec:
    """The frame encoder of a model whose depth decoder reads the image guide: + guide_s4."""
    if not has_guide(model):
        return spec
    return dataclasses.replace(spec, output_names=(*spec.output_names, GUIDE),
                               dynamic_axes={**spec.dynamic_axes, GUIDE: _ENCODED_AXES['feat_s4']},
                               outputs={**spec.outputs, GUIDE: _GUIDE_OUTPUT},
                               tolerances={**spec.tolerances, GUIDE: (1e-3, 1e-3)})


def _with_guide_input(model: nn.Module, spec: GraphSpec) -> GraphSpec:
    """The pair head of a model whose depth decoder reads the image guide: + cur_guide_s4, last."""
    if not has_guide(model):
        return spec
    return dataclasses.replace(spec, input_names=(*spec.input_names, f'cur_{GUIDE}'),
                               dynamic_axes={**spec.dynamic_axes, f'cur_{GUIDE}': _ENCODED_AXES['feat_s4']})


def derived_profile(profile: dict, spec: GraphSpec) -> dict:
    """(min, opt, max) of the spec's derived dims from the image profile: height_N / width_N =
    height / N, width / N; cells = (height / 32) (width / 32)."""
    labels = {label for axes in spec.dynamic_axes.values() for label in axes.values()}
    out = {}
    for label in labels:
        if label.startswith(('height_', 'width_')):
            side, stride = label.split('_')
            out[label] = [v // int(stride) for v in profile[side]]
        elif label == 'cells':
            out[label] = [(h // 32) * (w // 32) for h, w in zip(profile['height'], profile['width'])]
    return out


FRAME_ENCODER = GraphSpec(
    name='frame_encoder',
    wrap=lambda model: FrameEncoderGraph(model).eval(),
    input_names=('image', 'intrinsics'),
    output_names=FRAME_OUTPUTS,
    dynamic_axes={'image': {0: 'batch', 2: 'height', 3: 'width'}, 'intrinsics': {0: 'batch'}, **_ENCODED_AXES,
                  'feat_s32': _S32_AXES},
    example_inputs=_frame_inputs,
    outputs={'feat_s4': {'unit': '1', 'dims': ['batch', 'C4', 'height/4', 'width/4'], 'meaning': 'backbone stride 4'},
             'feat_s8': {'unit': '1', 'dims': ['batch', 'C8', 'height/8', 'width/8'], 'meaning': 'backbone stride 8'},
             'feat_s16': {'unit': '1', 'dims': ['batch', 'C16', 'height/16', 'width/16'],
                          'meaning': 'backbone stride 16'},
             'frame_tokens': {'unit': '1', 'dims': ['batch', 'cells', 'C'],
                              'meaning': 'stride-32 cells with position and ray embeddings'},
             'rays_s8': {'unit': '1', 'dims': ['batch', 6, 'height/8', 'width/8'],
                         'meaning': 'Plücker rays of the camera, mean per 8x8 pixels'},
             'feat_s32': {'unit': '1', 'dims': ['batch', 320, 'height/32', 'width/32'],
                          'meaning': 'backbone stride 32 (the cell classifier input)'}},
    tolerances={name: (1e-3, 1e-3) for name in FRAME_OUTPUTS},
    torch_program=False,
    adapt=_with_guide_output,
)

PAIR_HEAD = GraphSpec(
    name='pair_head',
    wrap=lambda model: PairHeadGraph(model).eval(),
    input_names=(*(f'ref_{n}' for n in ENCODED), *(f'cur_{n}' for n in ENCODED), 'intrinsics'),
    output_names=PERCEPTION.output_names,
    dynamic_axes={**{f'{side}_{n}': axes for side in ('ref', 'cur') for n, axes in _ENCODED_AXES.items()},
                  'intrinsics': {0: 'batch'},
                  **{k: v for k, v in PERCEPTION.dynamic_axes.items() if k in PERCEPTION.output_names}},
    example_inputs=_pair_inputs,
    outputs={name: ({**spec, 'dims': [spec['dims'][0], 1, *spec['dims'][2:]],
                     'meaning': spec['meaning'] + ' (current frame only)'}
                    if len(spec['dims']) > 2 and spec['dims'][1] == 2 else spec)
             for name, spec in PERCEPTION.outputs.items()},
    tolerances=PERCEPTION.tolerances,
    torch_program=False,
    adapt=_with_guide_input,
)

CELL_CLASSIFIER = GraphSpec(
    name='cell_classifier',
    wrap=lambda model: CellClassifierGraph(model).eval(),
    input_names=('feat_s32',),
    output_names=('class_logits',),
    dynamic_axes={'feat_s32': _S32_AXES, 'class_logits': _S32_AXES},
    example_inputs=_cell_inputs,
    outputs={'class_logits': {'unit': '1', 'dims': ['batch', 1000, 'height/32', 'width/32'],
                              'meaning': 'ImageNet-1k logits of every stride-32 cell'}},
    tolerances={'class_logits': (1e-2, 1e-3)},
    torch_program=False,
    adapt=_with_category_logits,
)

class ImageNetCellsGraph(nn.Module):
    """image (B, 3, H, W) normalised as the frame encoder's input (the contract's ImageNet mean
    and std) -> ImageNet-1k logits of every stride-32 cell (B, 1000, H/32, W/32) of a plain
    EfficientNet-Lite0 (its classifier applied per cell, class activation maps); H, W
    multiples of 32. Exported with the pristine ImageNet weights (`pristine_imagenet`)."""

    def __init__(self, network: nn.Module):
        super().__init__()
        from geovr_training.model import IMAGE_MEAN, IMAGE_STD
        from geovr_training.model.efficientnet import INPUT_MEAN, INPUT_STD
        self.network = network
        # contract normalisation -> the network's [-1, 1], as GeoVRv2Model.input_scale/shift
        scale = torch.tensor(IMAGE_STD) / torch.tensor(INPUT_STD)
        shift = (torch.tensor(IMAGE_MEAN) - torch.tensor(INPUT_MEAN)) / torch.tensor(INPUT_STD)
        self.register_buffer('input_scale', scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('input_shift', shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.network.features(image * self.input_scale + self.input_shift)[32]  # (B, 320, h, w)
        return self.network.classify_cells(features)  # (B, 1000, h, w)


def pristine_imagenet() -> nn.Module:
    """EfficientNet-Lite0 with the ImageNet weights of the registry package (no download), eval
    mode. Raises geovr_training.model.efficientnet.WeightsError naming the package when it is
    not installed."""
    from geovr_training.model.efficientnet import EfficientNetLite0, load_pretrained
    return load_pretrained(EfficientNetLite0()).eval()


def imagenet_weights_source() -> dict:
    """{'geovr.weights': {...}}: the package, its version, the weights file and its SHA-256 of
    the pristine network in `imagenet_cells.onnx`."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    from geovr_training.model.efficientnet import WEIGHTS_PACKAGE, pretrained_weights_path
    path = pretrained_weights_path()
    try:
        package_version = version(WEIGHTS_PACKAGE)
    except PackageNotFoundError:  # importable but without distribution metadata
        package_version = 'unknown'
    return {'geovr.weights': {'network': 'EfficientNet-Lite0, ImageNet-1k classifier', 'package': WEIGHTS_PACKAGE,
                              'version': package_version, 'file': path.name,
                              'sha256': hashlib.sha256(path.read_bytes()).hexdigest()}}


def _image_inputs(batch: int, width: int, height: int, wrapper=None) -> tuple[torch.Tensor, ...]:
    images, _ = _perception_inputs(batch, width, height)
    return (images[:, 0].contiguous(),)


IMAGENET_CELLS = GraphSpec(
    name='imagenet_cells',
    wrap=lambda model: ImageNetCellsGraph(pristine_imagenet()).eval(),
    input_names=('image',),
    output_names=('class_logits',),
    dynamic_axes={'image': FRAME_ENCODER.dynamic_axes['image'], 'class_logits': _S32_AXES},
    example_inputs=_image_inputs,
    outputs={'class_logits': {'unit': '1', 'dims': ['batch', 1000, 'height/32', 'width/32'],
                              'meaning': 'ImageNet-1k logits of every stride-32 cell of the pristine '
                                         'EfficientNet-Lite0 (geovr.weights), on the frame encoder\'s image'}},
    tolerances={'class_logits': (1e-2, 1e-3)},
    torch_program=False,
    metadata=imagenet_weights_source,
)

GRAPHS: dict[str, GraphSpec] = {
    'perception': PERCEPTION,
    'frame_encoder': FRAME_ENCODER,  # a camera frame is encoded once ...
    'pair_head': PAIR_HEAD,          # ... and its encoding reused for the pairs it is part of
    'cell_classifier': CELL_CLASSIFIER,  # what each cell shows (ImageNet; + the category head), on keyframes
    'imagenet_cells': IMAGENET_CELLS,    # the pristine ImageNet network's names of the cells, on keyframes
}
