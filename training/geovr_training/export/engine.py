"""`geovr-export engine`: static TensorRT checks, then build (or reuse) a cached engine.

All TensorRT code lives in `geovr_ros.inference.backends.tensorrt_backend`; this module
only turns command-line shapes into profiles and calls it.
"""
from __future__ import annotations

import logging
from pathlib import Path

LOG = logging.getLogger(__name__)


def parse_profile_shapes(text: str) -> dict[str, tuple[int, int, int]]:
    """'128x96/256x192/640x480' (min/opt/max, W x H) -> {'width': (..), 'height': (..)}."""
    from geovr_training.export.metadata import parse_size

    parts = text.split('/')
    if len(parts) != 3:
        raise ValueError(f'--shapes must be min/opt/max like 128x96/256x192/640x480, got {text!r}')
    sizes = [parse_size(p) for p in parts]
    return {'width': tuple(s[0] for s in sizes), 'height': tuple(s[1] for s in sizes)}


def parse_triplet(text: str, name: str) -> tuple[int, int, int]:
    try:
        values = tuple(int(v) for v in text.split('/'))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise ValueError(f'{name} must be min/opt/max like 1/1/2, got {text!r}')
    return values


def engine_profiles(onnx_path: str | Path, shapes: str | None = None,
                    batch: str | None = None) -> tuple[list[dict], dict]:
    """The optimisation profile for `onnx_path`: its geovr.shapes profile, overridden by
    `shapes` ('minWxH/optWxH/maxWxH') and `batch` ('1/1/2'). Returns (profiles, sizes)."""
    import onnx

    from geovr_ros.inference.backends.tensorrt_backend import onnx_input_dims, profile_from_dims
    from geovr_ros.inference.metadata import MetadataError, read_metadata

    try:
        sizes = read_metadata(onnx_path).profile_sizes()
    except MetadataError as error:
        LOG.warning('%s; using only --shapes/--batch', error)
        sizes = {}
    if shapes:
        sizes.update(parse_profile_shapes(shapes))
    if batch:
        sizes['batch'] = parse_triplet(batch, '--batch')
    sizes.setdefault('batch', (1, 1, 1))
    dims = onnx_input_dims(onnx.load(str(onnx_path), load_external_data=False))
    return [profile_from_dims(dims, sizes)], sizes


def static_check(onnx_path: str | Path, profiles: list[dict]) -> list[str]:
    """TensorRT parser problems found without TensorRT (ops, opset, profile vs shapes)."""
    import onnx

    from geovr_ros.inference.backends.tensorrt_backend import tensorrt_problems
    from geovr_ros.inference.metadata import MetadataError, read_metadata

    model = onnx.load(str(onnx_path), load_external_data=False)
    declared = {}
    try:
        meta = read_metadata(onnx_path)
        names = [v.name for v in model.graph.input]
        if 'images' in names:
            declared['images'] = [[1, 2, 3, h, w] for w, h in meta.shapes.get('declared', [])]
    except MetadataError:
        pass
    return tensorrt_problems(model, profiles, declared)


def build_engine(onnx_path: str | Path, precision: str = 'fp16', workspace_mb: int = 1024,
                 shapes: str | None = None, batch: str | None = None,
                 cache_dir: str | Path | None = None, verbose: bool = False):
    """Static checks, then `build_or_load_engine`. Returns (engine, CacheOutcome).

    Raises:
        TensorRTCompatibilityError: the static checks failed (before touching TensorRT).
        BackendUnavailableError: TensorRT / pycuda / a GPU is missing.
    """
    from geovr_ros.inference.backends.tensorrt_backend import (
        TensorRTCompatibilityError, build_or_load_engine, default_cache_dir)

    profiles, _ = engine_profiles(onnx_path, shapes, batch)
    problems = static_check(onnx_path, profiles)
    if problems:
        raise TensorRTCompatibilityError(str(onnx_path), problems)
    LOG.info('static TensorRT checks passed for %s (profile %s)', onnx_path, profiles[0])
    return build_or_load_engine(onnx_path, cache_dir or default_cache_dir(), precision,
                                workspace_mb, profiles, verbose=verbose)
