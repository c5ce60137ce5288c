"""`geovr-export engine`: static TensorRT checks, then build (or reuse) a cached engine.

The checks live in `geovr_ros.inference.tensorrt_checks`, the building in
`geovr_training.export.tensorrt_builder`; this module turns command-line shapes into
profiles and runs the checks exactly once before a build.
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
    """The optimisation profile for any exported graph: its `geovr.shapes.profile`,
    overridden by `shapes` ('minWxH/optWxH/maxWxH') and `batch` ('1/1/2').
    Returns (profiles, sizes)."""
    from geovr_ros.inference.metadata import MetadataError
    from geovr_ros.inference.tensorrt_checks import graph_profiles

    overrides = {}
    if shapes:
        overrides.update(parse_profile_shapes(shapes))
    if batch:
        overrides['batch'] = parse_triplet(batch, '--batch')
    try:
        return graph_profiles(onnx_path, overrides)
    except MetadataError as error:
        LOG.warning('%s; using only --shapes/--batch', error)
        overrides.setdefault('batch', (1, 1, 1))
        return graph_profiles(onnx_path, overrides)


def static_check(onnx_path: str | Path, profiles: list[dict]) -> list[str]:
    """TensorRT parser problems found without TensorRT (ops, opset, profile vs shapes)."""
    import onnx

    from geovr_ros.inference.tensorrt_checks import declared_shapes, tensorrt_problems

    model = onnx.load(str(onnx_path), load_external_data=False)
    return tensorrt_problems(model, profiles, declared_shapes(onnx_path))


def build_engine(onnx_path: str | Path, precision: str = 'auto', workspace_mb: int = 1024,
                 shapes: str | None = None, batch: str | None = None,
                 cache_dir: str | Path | None = None, verbose: bool = False,
                 profiles: list[dict] | None = None, checked: bool = False):
    """Static checks (unless `checked`: the caller ran them on these `profiles`), then
    `build_or_load_engine`. Returns (engine, CacheOutcome).

    Raises:
        TensorRTCompatibilityError: the static checks failed (before touching TensorRT).
        BackendUnavailableError: TensorRT / a CUDA binding / a GPU is missing.
        PrecisionUnsupportedError: 'fp16' asked of TensorRT 11.
    """
    from geovr_ros.inference.tensorrt_cache import default_cache_dir
    from geovr_ros.inference.tensorrt_common import TensorRTCompatibilityError
    from geovr_training.export.tensorrt_builder import build_or_load_engine

    if profiles is None:
        profiles, _ = engine_profiles(onnx_path, shapes, batch)
    if not checked:
        problems = static_check(onnx_path, profiles)
        if problems:
            raise TensorRTCompatibilityError(str(onnx_path), problems)
        LOG.info('static TensorRT checks passed for %s (profile %s)', onnx_path, profiles[0])
    return build_or_load_engine(onnx_path, cache_dir or default_cache_dir(), precision,
                                workspace_mb, profiles, verbose=verbose)
