"""`geovr-export int8`: an exported model directory with its per-frame graphs in int8.

The frame encoder and the pair head (what runs for every camera frame) are quantized
statically with ONNX Runtime's quantizer: weights int8 per output channel, activations uint8
with ranges calibrated on real frames, written as QDQ graphs (QuantizeLinear/DequantizeLinear
pairs around float operators, the format ONNX Runtime runs with int8 kernels and TensorRT
reads as explicit quantization). Everything else in the directory is copied unchanged (the
single 2-frame graph, the cell classifier, which reads the encoder's dequantized features,
and `imagenet_cells`, the pristine ImageNet network that names cells on keyframes only: it
stays float32, its names as exported).
Each quantized graph keeps the metadata of its float graph plus `geovr.quantization`.
The layers of FLOAT_LAYERS stay float, as int8 recipes keep a network's first and last layers:
the stem convolution that reads the image, and the heads that write depth, scale, pose and the
descriptor (on v2.1's real test splits they hold most of what int8 lost; model card "Speed").

Calibration frames come from real recordings or geovr-data datasets (`PATH[@split]`, the
split's frames evenly sampled), every one fed at the model's trained input size (cut to its
aspect, as the runtime cuts a camera), so that the histogram calibrators see one shape.
Activation ranges: 'percentile' (the default) clips each tensor's absolute values at their
99.99th percentile; 'minmax' takes the whole range, which a few extreme activations stretch
(measured on v2.1, model card "Speed"). A held-out check (`--check PATH[@split]`) runs the float and
the int8 directory through the runtime's `PerceptionPipeline` on the same frames and reports
depth AbsRel / delta1 against the recording's true depth for both, and how far int8's depth
and relative pose move from float's (`int8.json`).
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)

QUANTIZED_GRAPHS = ('frame_encoder', 'pair_head')
CALIBRATION_METHODS = ('percentile', 'minmax')
# Node name prefixes (the PyTorch module paths of network_v2) left in float.
FLOAT_LAYERS = ('/_conv_stem/', '/depth_decoder/head/', '/scale_head/', '/pose_head/', '/descriptor_head/',
                '/descriptor_proj/')
PERCENTILE = 99.99


class QuantizationError(ValueError):
    """A model directory or calibration source that cannot be quantized (names which)."""


@dataclass(frozen=True)
class FrameSource:
    """A recording or dataset folder and the split of it to read ('all' for a recording)."""

    path: Path
    split: str

    @classmethod
    def parse(cls, text: str, default_split: str) -> 'FrameSource':
        """'PATH' or 'PATH@SPLIT'."""
        path, _, split = str(text).partition('@')
        return cls(Path(path), split or default_split)

    def __str__(self) -> str:
        return f'{self.path}@{self.split}'


def read_sequences(sources: list[FrameSource], what: str) -> list:
    """Every sequence of the sources (geovr_training.data.types.Sequence); QuantizationError
    naming `what` and the source that cannot be read."""
    from geovr_training.evaluation.data import load_sequences
    sequences = []
    for source in sources:
        try:
            sequences += load_sequences(source.path, source.split)
        except (FileNotFoundError, ValueError) as error:
            raise QuantizationError(f'{what} {source}: {error}') from None
    return sequences


def sample_frames(sources: list[FrameSource], count: int) -> list[tuple]:
    """About `count` frames (rgb uint8 (H, W, 3), K (3, 3), depth (H, W) metres or None),
    evenly spread over the sources' sequences, consecutive pairs kept together: each entry is
    (frame i, frame i + 1) of one sequence, so that the pair head sees real motion."""
    usable = [s for s in read_sequences(sources, 'frames') if len(s) >= 2]
    if not usable:
        raise QuantizationError(f'no sequence of two frames or more in {", ".join(map(str, sources))}')
    per_sequence = max(1, int(np.ceil(count / len(usable))))
    pairs = []
    for seq in usable:
        depth = getattr(seq, 'depth', None)
        for i in np.unique(np.linspace(0, len(seq) - 2, per_sequence).round().astype(int)):
            pairs.append(tuple((seq.rgb[j], seq.K[j], None if depth is None else depth[j]) for j in (i, i + 1)))
    return pairs


def quantize_model(model_dir: str | Path, out_dir: str | Path, calibration: list[FrameSource],
                   frames: int = 80, method: str = 'percentile') -> dict:
    """Writes `out_dir`: `model_dir` with QUANTIZED_GRAPHS in int8 (module docstring), their
    activation ranges by `method` (CALIBRATION_METHODS). Returns {graph: {'bytes_float',
    'bytes_int8'}} plus the calibration description. Raises QuantizationError when the
    directory lacks the split graphs or the method is unknown."""
    import onnx

    from geovr_ros.inference import PerceptionPipeline
    from geovr_training.export.graph_passes import prune_unused
    from geovr_ros.inference.metadata import read_metadata
    if method not in CALIBRATION_METHODS:
        raise QuantizationError(f'calibration method must be one of {CALIBRATION_METHODS}, got {method!r}')
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    missing = [g for g in QUANTIZED_GRAPHS if not (model_dir / f'{g}.onnx').is_file()]
    if missing:
        raise QuantizationError(f'{model_dir} has no {", ".join(f"{g}.onnx" for g in missing)}: '
                                'export GeoVR-S v2 with `geovr-export onnx` first')
    if out_dir.resolve() == model_dir.resolve():
        raise QuantizationError(f'--out {out_dir} must differ from the float model directory')
    pairs = sample_frames(calibration, frames)
    trained_size = read_metadata(model_dir / 'frame_encoder.onnx').input_size
    pipeline = PerceptionPipeline(model_dir, backend='onnxruntime', input_size=trained_size)
    prepared = [tuple(pipeline.preprocess(rgb, K) for rgb, K, _ in pair) for pair in pairs]
    feeds = {
        'frame_encoder': [{'image': f.chw[None], 'intrinsics': f.K.astype(np.float32)[None]}
                          for pair in prepared for f in pair],
        'pair_head': [pipeline.pair_inputs(a, b) for a, b in prepared],
    }
    pipeline.close()
    out_dir.mkdir(parents=True, exist_ok=True)
    for item in model_dir.iterdir():
        if item.is_file():
            shutil.copy2(item, out_dir / item.name)
    description = {'format': 'QDQ', 'weights': 'int8, per output channel', 'activations': 'uint8',
                   'calibration': [str(s) for s in calibration], 'calibration_frames': len(pairs) * 2,
                   'calibration_size': list(trained_size),
                   'graphs': list(QUANTIZED_GRAPHS)}
    report = {'quantization': {**description, 'calibration_method': _method_name(method)}}
    for graph in QUANTIZED_GRAPHS:
        source, target = model_dir / f'{graph}.onnx', out_dir / f'{graph}.onnx'
        float_model = onnx.load(str(source))
        inputs = {i.name for i in float_model.graph.input}
        kept_float = [n.name for n in float_model.graph.node if n.name.startswith(FLOAT_LAYERS)]
        LOG.info('%s: calibrating on %d inputs (%s)', graph, len(feeds[graph]), _method_name(method))
        graph_method = method
        try:
            _quantize_graph(source, target, CalibrationFeeds(feeds[graph], inputs), graph_method, kept_float)
        except ValueError as error:   # numpy's histogram of a tensor whose range is next to nothing
            if graph_method == 'minmax':
                raise
            LOG.warning('%s: percentile calibration failed (%s); its whole ranges (minmax) instead', graph, error)
            graph_method = 'minmax'
            _quantize_graph(source, target, CalibrationFeeds(feeds[graph], inputs), graph_method, kept_float)
        quantized = onnx.load(str(target))
        before = len(quantized.graph.node) + len(quantized.graph.initializer)
        prune_unused(quantized)   # the bounds of the ReLU6 Clips the quantizer folded away (ONNX Runtime warned)
        LOG.info('%s: %d unused constants pruned after quantization', graph,
                 before - len(quantized.graph.node) - len(quantized.graph.initializer))
        del quantized.metadata_props[:]
        quantized.metadata_props.extend(float_model.metadata_props)
        quantized.metadata_props.add(key='geovr.quantization', value=json.dumps(
            {**description, 'calibration_method': _method_name(graph_method), 'float_nodes': kept_float}))
        onnx.save(quantized, str(target))
        report[graph] = {'bytes_float': source.stat().st_size, 'bytes_int8': target.stat().st_size,
                         'calibration_method': _method_name(graph_method), 'float_nodes': len(kept_float)}
    return report


class CalibrationFeeds:
    """One graph's calibration inputs as onnxruntime's quantizer reads them (its
    `CalibrationDataReader` takes any class with `get_next`): each item cut to the graph's
    `inputs`, then None."""

    def __init__(self, items: list[dict[str, np.ndarray]], inputs: set[str]):
        self._items = iter(items)
        self._inputs = inputs

    def get_next(self) -> dict[str, np.ndarray] | None:
        item = next(self._items, None)
        return None if item is None else {k: v for k, v in item.items() if k in self._inputs}


def _quantize_graph(source: Path, target: Path, feeds: CalibrationFeeds, method: str, kept_float: list[str]) -> None:
    """`source` -> `target` in QDQ int8 (weights per output channel, activations uint8), the
    activation ranges by `method` on `feeds`, the nodes `kept_float` left in float."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    ranges = ({'calibrate_method': CalibrationMethod.MinMax} if method == 'minmax' else
              {'calibrate_method': CalibrationMethod.Percentile, 'extra_options': {'CalibPercentile': PERCENTILE}})
    quantize_static(str(source), str(target), feeds, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=kept_float,
                    **ranges)


def _method_name(method: str) -> str:
    return method if method == 'minmax' else f'percentile {PERCENTILE}'


def compare_models(float_dir: str | Path, int8_dir: str | Path, sources: list[FrameSource]) -> dict:
    """Both directories through `PerceptionPipeline.step` on every frame of `sources` (each
    sequence a stream): depth AbsRel / delta1 against the true depth (valid 0.1-10 m, model
    depth resized to it, nearest) per model, and int8's depth relative to float's (median
    |int8 / float - 1|) and rotation difference of the relative pose (degrees, median)."""
    import cv2

    from geovr_ros.geometry import depth_metrics, rotation_angle
    from geovr_ros.inference import PerceptionPipeline
    sequences = read_sequences(sources, 'check frames')
    pipelines = {'float': PerceptionPipeline(float_dir, backend='onnxruntime'),
                 'int8': PerceptionPipeline(int8_dir, backend='onnxruntime')}
    metrics = {name: [] for name in pipelines}
    depth_change, pose_change = [], []
    for seq in sequences:
        for pipeline in pipelines.values():
            pipeline.reset()
        for i in range(len(seq)):
            results = {name: p.step(seq.rgb[i], seq.K[i]) for name, p in pipelines.items()}
            gt = None if seq.depth is None else seq.depth[i]
            for name, result in results.items():
                if gt is None:
                    continue
                depth = cv2.resize(result.depth, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_NEAREST)
                valid = np.isfinite(gt) & (gt > 0.1) & (gt < 10.0)
                if valid.any():
                    metrics[name].append(depth_metrics(depth, gt, valid))
            a, b = results['float'], results['int8']
            depth_change.append(float(np.median(np.abs(b.depth / np.maximum(a.depth, 1e-6) - 1))))
            if i:
                pose_change.append(float(np.degrees(rotation_angle(a.rel_pose[:3, :3].T @ b.rel_pose[:3, :3]))))
    for pipeline in pipelines.values():
        pipeline.close()
    summary = {name: {k: float(np.mean([m[k] for m in rows])) for k in ('abs_rel', 'delta1')} if rows else {}
               for name, rows in metrics.items()}
    return {'frames': len(depth_change), 'sources': [str(s) for s in sources], **summary,
            'depth_change_median': float(np.median(depth_change)) if depth_change else float('nan'),
            'pose_rotation_change_deg_median': float(np.median(pose_change)) if pose_change else float('nan')}
