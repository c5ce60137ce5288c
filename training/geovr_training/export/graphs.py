"""The table of exportable graphs (one entry per ONNX file), Ultralytics style.

Adding a graph is adding an entry to GRAPHS: a wrapper that returns exactly the contract
outputs in order, its I/O names, dynamic axes, example inputs, output units and parity
tolerances. Only the perception graph exists today; the question graph (encoded question
+ memory tokens -> answer heads) and the question encoder come with the language-model
issue and will be entries 'question' and 'question_encoder' here, exported by the same
code path.
"""
from __future__ import annotations

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


def _perception_wrap(model: nn.Module) -> nn.Module:
    from geovr_training.model import PerceptionGraph
    return PerceptionGraph(model).eval()


def _perception_inputs(batch: int, width: int, height: int) -> tuple[torch.Tensor, ...]:
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
    output_names=('depth', 'rel_pose', 'scale', 'tokens', 'token_xyz', 'descriptor'),
    dynamic_axes={
        'images': {0: 'batch', 3: 'height', 4: 'width'}, 'intrinsics': {0: 'batch'},
        'depth': {0: 'batch', 2: 'height', 3: 'width'}, 'rel_pose': {0: 'batch'},
        'scale': {0: 'batch'}, 'tokens': {0: 'batch'}, 'token_xyz': {0: 'batch'},
        'descriptor': {0: 'batch'},
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
    },
    tolerances={
        'depth': (1e-3, 1e-3), 'rel_pose': (1e-4, 1e-3), 'scale': (1e-4, 1e-4),
        'tokens': (1e-3, 1e-3), 'token_xyz': (1e-3, 1e-3), 'descriptor': (1e-4, 1e-3),
    },
)

GRAPHS: dict[str, GraphSpec] = {
    'perception': PERCEPTION,
    # 'question': ...,          encoded question + memory tokens -> answer heads (later issue)
    # 'question_encoder': ...,  question text tokens -> encoded question (later issue)
}
