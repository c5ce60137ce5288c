"""Evaluate a GeoVR-S model on sequences, under the original camera and camera changes."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from geovr_training.evaluation.camera import DEFAULT_CHANGES, CameraChange, apply_camera_change
from geovr_training.evaluation.metrics import evaluate_sequence, floor_scales, mean_over_sequences
from geovr_training.evaluation.predict import model_input_size, predict_sequence
from geovr_training.model import GeoVRv2Model


def trained_input_size(state: dict | None) -> tuple[int, int] | None:
    """(W, H) the checkpoint was trained at, from its config."""
    try:
        width, height = state['config']['data']['resolution']
        return int(width), int(height)
    except (KeyError, TypeError, ValueError):
        return None


def evaluate_model(model: GeoVRv2Model, sequences: list, input_size: tuple[int, int] | None,
                   changes: tuple[CameraChange, ...] = DEFAULT_CHANGES, progress: bool = True,
                   backend: str = 'torch') -> tuple[dict, list[dict], dict[str, dict], dict]:
    """Returns (summary, per_sequence, robustness {condition: summary}, plot data).

    `backend`: 'torch' or 'onnxruntime' (the model exported to ONNX and run in ONNX Runtime).

    The summary and per-sequence rows are the original camera, fed as the runtime feeds it:
    cut to its aspect and resized to about the trained `input_size`'s pixel count at that
    aspect (`model_input_size`). Camera changes feed the changed images the same way, or at
    their own size (`native_size`: the raw network under another resolution); all but the
    aspect change apply to the frames as fed.
    """
    from geovr_training.evaluation.predict import clip_runner
    runner = clip_runner(model, backend, input_size)
    per_sequence, robustness, plots = [], {}, {}
    bar = tqdm(total=len(sequences) * (1 + len(changes)), desc='evaluate', disable=not progress)
    for seq in sequences:
        pred = predict_sequence(runner, seq.rgb, seq.K, input_size, progress=progress and len(seq.rgb) > 200)
        bar.update(1)
        floor = (None if seq.depth is None or seq.T_world_cam is None
                 else floor_scales(pred.depth, seq.K, seq.depth, seq.T_world_cam))
        row = evaluate_sequence(pred, seq.depth, seq.T_world_cam, floor=floor, segmentation=seq.segmentation)
        row['sequence'] = seq.name
        per_sequence.append(row)
        if not plots:
            if seq.T_world_cam is not None and np.isfinite(seq.T_world_cam).all():
                plots['trajectory'] = (pred.trajectory, seq.T_world_cam)
            if seq.depth is not None:
                plots['depth'] = (seq.rgb[0], seq.depth[0], pred.depth[0])
        if floor is not None and 'floor' not in plots:
            plots['floor'] = (seq.name, floor)
    summary = mean_over_sequences([{k: v for k, v in r.items() if k != 'sequence'} for r in per_sequence])
    for change in changes:
        rows = []
        for seq in sequences:
            rgb, depth, k = seq.rgb, seq.depth, seq.K
            size = input_size
            if change.kind != 'identity':
                fed = model_input_size(rgb.shape[2], rgb.shape[1], input_size, runner.patch_size)
                if change.kind != 'aspect' and input_size is not None and (rgb.shape[2], rgb.shape[1]) != fed:
                    from geovr_training.evaluation.camera import fit_frames
                    rgb, depth, k = fit_frames(rgb, depth, k, fed)
                rgb, depth, k = apply_camera_change(change, rgb, depth, k, runner.patch_size)
                size = None if change.native_size else input_size
            pred = predict_sequence(runner, rgb, k, size)
            rows.append(evaluate_sequence(pred, depth, seq.T_world_cam, k))
            bar.update(1)
        robustness[change.name] = mean_over_sequences(rows)
    bar.close()
    return summary, per_sequence, robustness, plots
