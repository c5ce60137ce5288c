"""The engine cache: keys, paths, and the metadata written beside every engine.

Engines are cached under `engine_cache_key(...)`: sha256 of the ONNX file, TensorRT
version, GPU name and compute capability, precision and optimisation profiles. Beside
each engine lies `<engine file>.json` (`write_engine_sidecar`): the facts behind the key,
the graph's `geovr.*` metadata, its I/O dims with their symbolic names and the profiles,
so that an engine file runs alone (`TensorRTBackend.load('x.engine')`).

The cache logic (`EngineCache.load_or_build`) takes the deserialize and build steps as
callables, so its hit / miss / rebuild branches are testable without TensorRT.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from geovr_ros.inference.tensorrt_common import (
    PRECISIONS, EngineDeserializeError, Profile, canonical_profiles)

LOG = logging.getLogger(__name__)

ENGINE_SUFFIXES = ('.engine', '.plan', '.trt')
SIDECAR_FORMAT = 'geovr-engine/1'


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def engine_cache_key(onnx_sha256: str, trt_version: str, gpu_name: str,
                     compute_capability: Sequence[int], precision: str,
                     profiles: Sequence[Profile]) -> str:
    """Hex sha256 naming an engine: equal keys mean an interchangeable engine.

    Args:
        onnx_sha256: hex sha256 of the ONNX file bytes (`sha256_file`).
        trt_version: `tensorrt.__version__`.
        gpu_name, compute_capability: `cuda_memory.gpu_identity()`.
        precision: a concrete precision, 'fp32', 'fp16' or 'onnx' (`resolve_precision`).
        profiles: optimisation profiles, each {input name: (min, opt, max) shapes}.
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    facts = {
        'onnx_sha256': onnx_sha256, 'tensorrt': str(trt_version), 'gpu': str(gpu_name),
        'compute_capability': [int(c) for c in compute_capability], 'precision': precision,
        'profiles': canonical_profiles(profiles),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


def engine_facts(onnx_path: str | os.PathLike, trt_version: str, gpu_name: str,
                 compute_capability: Sequence[int], precision: str,
                 profiles: Sequence[Profile], **extra) -> tuple[str, dict]:
    """(cache key, facts) of the engine for an ONNX file: the builder and the runtime
    compute the same key from the same facts."""
    onnx_sha = sha256_file(onnx_path)
    key = engine_cache_key(onnx_sha, trt_version, gpu_name, compute_capability, precision,
                           profiles)
    facts = {'onnx': str(onnx_path), 'onnx_sha256': onnx_sha, 'tensorrt': str(trt_version),
             'gpu': str(gpu_name), 'compute_capability': [int(c) for c in compute_capability],
             'precision': precision, 'profiles': canonical_profiles(profiles), **extra}
    return key, facts


def default_cache_dir() -> Path:
    """$GEOVR_ENGINE_CACHE, else ~/.cache/geovr_ros/engines."""
    return Path(os.environ.get('GEOVR_ENGINE_CACHE',
                               Path.home() / '.cache' / 'geovr_ros' / 'engines'))


def timing_cache_path(directory: str | os.PathLike, trt_version: str, gpu_name: str,
                      compute_capability: Sequence[int]) -> Path:
    """`<dir>/timing-trt<ver>-<gpu>-sm<cc>.cache`: one timing cache per TensorRT and GPU."""
    slug = str(gpu_name).replace(' ', '_').replace('/', '_')
    major, minor = (int(c) for c in compute_capability)
    return Path(directory) / f'timing-trt{trt_version}-{slug}-sm{major}{minor}.cache'


# ------------------------------------------------------------------ metadata beside an engine
def sidecar_path(engine_path: str | os.PathLike) -> Path:
    """`<engine file>.json`, e.g. perception.engine -> perception.engine.json."""
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + '.json')


def write_engine_sidecar(engine_path: str | os.PathLike, *, facts: dict,
                         metadata: dict[str, str], io_dims: dict[str, list],
                         profiles: Sequence[Profile]) -> Path:
    """Write `<engine>.json`: what an engine needs to run without its ONNX file.

    Args:
        facts: the facts behind the cache key (`engine_facts`).
        metadata: the ONNX `metadata_props` {key: JSON text} of the graph (`geovr.*`).
        io_dims: {tensor name: dims} of the graph inputs and outputs (symbolic names kept).
        profiles: the optimisation profiles the engine was built with.
    """
    path = sidecar_path(engine_path)
    document = {'format': SIDECAR_FORMAT, 'facts': facts,
                'metadata': {k: v for k, v in metadata.items() if k.startswith('geovr.')},
                'io_dims': io_dims, 'profiles': canonical_profiles(profiles)}
    atomic_write(path, json.dumps(document, indent=2, sort_keys=True).encode())
    return path


def read_engine_sidecar(engine_path: str | os.PathLike) -> dict | None:
    """The `<engine>.json` document beside an engine, None when there is none.

    Raises:
        ValueError: the file exists but is not a geovr engine sidecar (names the path).
    """
    path = sidecar_path(engine_path)
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f'{path}: unreadable engine metadata ({error})') from error
    if not isinstance(document, dict) or document.get('format') != SIDECAR_FORMAT:
        raise ValueError(f'{path}: not a {SIDECAR_FORMAT} document (format '
                         f'{document.get("format") if isinstance(document, dict) else None!r})')
    return document


# -------------------------------------------------------------------------------- the cache
@dataclasses.dataclass
class CacheOutcome:
    """How `EngineCache.load_or_build` got its engine: 'hit', 'built' or 'rebuilt'."""

    status: str
    path: Path
    reason: str = ''
    seconds: float = 0.0


class EngineCache:
    """A directory of serialized engines named by `engine_cache_key`.

    Files: `<key>.engine` (the plan), `<key>.engine.json` (`write_engine_sidecar`), and
    TensorRT timing caches (`timing_cache_path`).
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory).expanduser()

    def engine_path(self, key: str) -> Path:
        return self.directory / f'{key}.engine'

    def load_or_build(self, key: str, deserialize: Callable[[bytes], Any],
                      build: Callable[[], bytes], facts: dict | None = None,
                      sidecar: Callable[[Path], Any] | None = None
                      ) -> tuple[Any, CacheOutcome]:
        """Return (engine, outcome): the cached engine if it deserializes, else a new one.

        Args:
            key: `engine_cache_key(...)`.
            deserialize: serialized bytes -> engine; raises or returns None on failure.
            build: () -> serialized engine bytes (slow: minutes on a Jetson).
            facts: written as {"format", "facts"} to `<key>.engine.json` when `sidecar`
                is not given.
            sidecar: engine path -> None, writes the metadata beside a new engine
                (`write_engine_sidecar`).
        Raises:
            EngineDeserializeError: a freshly built engine does not deserialize.
        """
        path = self.engine_path(key)
        reason = f'no cached engine {path}'
        status = 'built'
        if path.exists():
            try:
                engine = deserialize(path.read_bytes())
                if engine is None:
                    raise EngineDeserializeError('deserialize returned None')
                LOG.info('TensorRT engine cache hit: %s', path)
                return engine, CacheOutcome('hit', path)
            except Exception as error:  # corrupt file, other TensorRT or GPU
                status = 'rebuilt'
                reason = (f'cached engine {path} failed to deserialize ({error}); it is '
                          f'corrupt or was built by another TensorRT version or GPU')
                LOG.warning('%s: rebuilding it', reason)
        else:
            LOG.info('%s: building one (this can take minutes)', reason)
        start = time.perf_counter()
        plan = bytes(build())
        seconds = time.perf_counter() - start
        engine = deserialize(plan)
        if engine is None:
            raise EngineDeserializeError(f'a freshly built engine for key {key} does not '
                                         'deserialize')
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(path, plan)
        if sidecar is not None:
            sidecar(path)
        elif facts is not None:
            atomic_write(sidecar_path(path), json.dumps(
                {'format': SIDECAR_FORMAT, 'facts': facts}, indent=2, sort_keys=True).encode())
        LOG.info('TensorRT engine %s in %.1f s, cached at %s', status, seconds, path)
        return engine, CacheOutcome(status, path, reason, seconds)


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename (no torn files)."""
    path = Path(path)
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_bytes(data)
    os.replace(tmp, path)
