"""Parity check: the torch model and ONNX Runtime on the same real samples.

Samples come from any recording the one recording reader reads (`geovr_ros.recordings`:
7-Scenes-style frames with .png or .jpg colour, TUM, the HoloLens layout, bags), a geovr-data
dataset folder
(`manifest.json` + shards), or, when no data is given or found, from frames the data engine
renders on the spot (deterministic; the report names which).
Both run on identical preprocessed inputs (the runtime's `Preprocessor`); per output the
report gives the max absolute error, the max relative error (over elements whose torch
magnitude exceeds the output's atol) and whether every element satisfies
|onnx - torch| <= atol + rtol * |torch| (tolerances in `graphs.GraphSpec.tolerances`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from geovr_training.export.graphs import GRAPHS

LOG = logging.getLogger(__name__)

Sample = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # rgb_ref, K_ref, rgb_cur, K_cur


class ParityDataError(ValueError):
    """The parity data folder holds no usable samples; the message names it."""


@dataclass
class OutputParity:
    name: str
    max_abs: float
    max_rel: float
    atol: float
    rtol: float
    passed: bool


@dataclass
class ParityReport:
    onnx: str
    checkpoint: str
    data: str
    sizes: list[tuple[int, int]]
    samples: int
    outputs: list[OutputParity]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def to_json(self) -> dict:
        return {**asdict(self), 'passed': self.passed}

    def table(self) -> str:
        lines = [f'parity {self.onnx} vs {self.checkpoint}: {self.samples} sample(s) from '
                 f'{self.data} at {", ".join(f"{w}x{h}" for w, h in self.sizes)}',
                 f'{"output":<12}{"max abs":>12}{"max rel":>12}{"atol":>10}{"rtol":>10}  result']
        for o in self.outputs:
            lines.append(f'{o.name:<12}{o.max_abs:>12.3e}{o.max_rel:>12.3e}{o.atol:>10.0e}'
                         f'{o.rtol:>10.0e}  {"ok" if o.passed else "FAIL"}')
        lines.append('PASSED' if self.passed else 'FAILED')
        return '\n'.join(lines)


def default_parity_data() -> Path | None:
    """$GEOVR_PARITY_DATA, else the shared realsense_box frames next to the repository."""
    if os.environ.get('GEOVR_PARITY_DATA'):
        return Path(os.environ['GEOVR_PARITY_DATA'])
    import geovr_training
    candidate = Path(geovr_training.__file__).resolve().parents[2] / '..' / 'shared' / 'data' \
        / 'realsense_box'
    return candidate.resolve() if candidate.is_dir() else None


RENDERED = 'rendered by the data engine (seed 0, 320x240)'


def load_samples(data: str | Path, count: int = 4, gap: int = 2) -> list[Sample]:
    """Up to `count` (reference, current) pairs, `gap` frames apart, from a data folder.

    Raises:
        ParityDataError: naming the folder when the recording reader cannot read it.
    """
    data = Path(data)
    if not data.exists():
        raise ParityDataError(f'parity data {str(data)!r} does not exist')
    if (data / 'manifest.json').exists():
        from geovr_training.data.errors import DataFormatError
        from geovr_training.data.shards import read_shard
        samples = []
        for path in sorted(p for p in data.iterdir() if p.is_file() and p.suffix != '.json'):
            try:
                seq = read_shard(path, [0, gap])
            except (DataFormatError, IndexError, KeyError, ValueError):
                continue
            samples.append((seq.rgb[0], seq.K[0], seq.rgb[1], seq.K[1]))
            if len(samples) >= count:
                break
        if samples:
            return samples
        raise ParityDataError(f'{data}: no readable geovr-data shards')
    from geovr_ros.recordings import RecordingFormatError, open_recording
    try:
        recording = open_recording(data)
        picks = _pair_starts(len(recording), count, gap)
        wanted = set(picks) | {i + gap for i in picks}
        frames = {}
        for i, frame in enumerate(recording):
            if i in wanted:
                frames[i] = (frame.rgb, frame.K)
            if len(frames) == len(wanted):
                break
    except (RecordingFormatError, ParityDataError) as exc:
        raise ParityDataError(f'{data}: not a recording the recording reader reads ({exc})') from exc
    return [(*frames[i], *frames[i + gap]) for i in picks]


def _pair_starts(n: int, count: int, gap: int) -> list[int]:
    """First frames of up to `count` pairs (i, i + gap) spread over `n` frames."""
    if n <= gap:
        raise ParityDataError(f'{n} frames, fewer than the gap {gap} + 1')
    return list(range(0, n - gap, max(1, (n - gap) // count)))[:count]


def rendered_samples(count: int = 2, gap: int = 2) -> list[Sample]:
    """Pairs from a room the data engine renders now (pybullet, deterministic, ~1 s)."""
    from geovr_training.data.generate import GenerationConfig, render_sequence
    seq = render_sequence(GenerationConfig(seed=0, frames_per_scene=gap * count + 1, resolution=(320, 240),
                                           qa_per_scene=0), 0)
    return [(seq.rgb[i], seq.K[i], seq.rgb[i + gap], seq.K[i + gap]) for i in _pair_starts(len(seq), count, gap)]


def compare(name: str, reference: np.ndarray, candidate: np.ndarray, atol: float,
            rtol: float) -> OutputParity:
    """Max abs / rel error of `candidate` against `reference` and the tolerance verdict."""
    reference = np.asarray(reference, dtype=np.float64)
    diff = np.abs(np.asarray(candidate, dtype=np.float64) - reference)
    if reference.shape != np.shape(candidate) or not np.all(np.isfinite(diff)):
        return OutputParity(name, float('inf'), float('inf'), atol, rtol, False)
    magnitude = np.abs(reference)
    large = magnitude > atol
    max_rel = float((diff[large] / magnitude[large]).max()) if large.any() else 0.0
    return OutputParity(name, float(diff.max(initial=0.0)), max_rel, atol, rtol,
                        bool(np.all(diff <= atol + rtol * magnitude)))


def parity_check(checkpoint: str | Path, onnx_path: str | Path, data: str | Path | None = None,
                 sizes: list[tuple[int, int]] | None = None, count: int = 2,
                 graph: str = 'perception') -> ParityReport:
    """Run the torch model and ONNX Runtime (CPU) on real samples at each size in `sizes`
    (default: the training size and the largest declared size) and compare outputs.

    `graph`: a graph of GRAPHS that takes the clip ('perception': both frames) or one frame
    ('frame_encoder', 'imagenet_cells': the current frame of each pair); ValueError for others."""
    import torch

    from geovr_ros.inference import Preprocessor, clip_inputs, create_backend, read_metadata
    from geovr_training.model import load_checkpoint

    spec = GRAPHS[graph]
    clip = spec.input_names == ('images', 'intrinsics')
    if not clip and not set(spec.input_names) <= {'image', 'intrinsics'}:
        raise ValueError(f'parity of graph {graph!r}: its inputs {spec.input_names} are not camera frames')
    meta = read_metadata(onnx_path)
    declared = [tuple(s) for s in meta.shapes.get('declared', [])] or [meta.input_size]
    sizes = sizes or sorted({tuple(meta.input_size), max(declared, key=lambda s: s[0] * s[1])})
    data = Path(data) if data else default_parity_data()
    samples = load_samples(data, count) if data is not None else rendered_samples(count)
    model, _ = load_checkpoint(checkpoint)
    wrapper = spec.wrap(model).eval()
    backend = create_backend('onnxruntime', onnx_path, device='cpu')
    worst: dict[str, list[OutputParity]] = {name: [] for name in spec.output_names}
    try:
        for size in sizes:
            prepare = Preprocessor(size, meta.mean, meta.std)
            for rgb_ref, K_ref, rgb_cur, K_cur in samples:
                if clip:
                    inputs = clip_inputs(prepare(rgb_ref, K_ref), prepare(rgb_cur, K_cur))
                else:
                    frame = prepare(rgb_cur, K_cur)
                    inputs = {k: v for k, v in (('image', frame.chw[None]),
                                                ('intrinsics', frame.K.astype(np.float32)[None]))
                              if k in spec.input_names}
                ort_out = backend.infer(inputs)
                with torch.no_grad():
                    torch_out = wrapper(*(torch.from_numpy(inputs[n]) for n in spec.input_names))
                if isinstance(torch_out, torch.Tensor):  # a graph of one output
                    torch_out = (torch_out,)
                for name, value in zip(spec.output_names, torch_out):
                    atol, rtol = spec.tolerances[name]
                    worst[name].append(compare(name, value.numpy(), ort_out[name], atol, rtol))
    finally:
        backend.close()
    merged = [OutputParity(name, max(r.max_abs for r in runs), max(r.max_rel for r in runs),
                           runs[0].atol, runs[0].rtol, all(r.passed for r in runs))
              for name, runs in worst.items()]
    report = ParityReport(str(onnx_path), str(checkpoint), str(data) if data is not None else RENDERED,
                          list(sizes), len(samples), merged)
    LOG.info('parity %s: %s', onnx_path, 'passed' if report.passed else 'FAILED')
    return report
