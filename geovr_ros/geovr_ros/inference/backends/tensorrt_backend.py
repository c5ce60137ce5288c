"""Everything TensorRT: static ONNX checks, engine building, the engine cache, the backend.

Targets the TensorRT 10 Python API (named I/O tensors, `execute_async_v3`). `tensorrt` and
`pycuda` are imported inside the functions that need them, so this module imports on a
machine without either. The cache logic (`EngineCache.load_or_build`) takes the
deserialize and build steps as callables, so its hit / miss / rebuild branches are
testable without TensorRT.

Engines are cached under `engine_cache_key(...)`: sha256 of the ONNX file, TensorRT
version, GPU name and compute capability, precision and optimisation profiles. A cached
engine that deserializes is never rebuilt; one that does not (corrupt, other TensorRT,
other GPU) is rebuilt and the log says why.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geovr_ros.inference.backends.base import (
    Backend, BackendUnavailableError, InferenceError, ModelFileError, TensorSpec,
    check_model_file)

LOG = logging.getLogger(__name__)

PRECISIONS = ('fp32', 'fp16')
MIN_OPSET = 17
ENGINE_SUFFIXES = ('.engine', '.plan', '.trt')

# A profile maps each input name to its (min, opt, max) shapes.
Profile = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]


class TensorRTCompatibilityError(InferenceError):
    """An ONNX graph cannot be parsed by the targeted TensorRT. `problems` lists why."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f'{path}: not buildable with TensorRT: ' + '; '.join(problems))


class EngineBuildError(InferenceError):
    """TensorRT could not parse the ONNX file or build an engine. `errors` lists why."""

    def __init__(self, path: str, errors: list[str]):
        self.path = path
        self.errors = errors
        super().__init__(f'building a TensorRT engine from {path} failed:\n  '
                         + '\n  '.join(errors))


class EngineDeserializeError(InferenceError):
    """A serialized engine could not be deserialized by this TensorRT on this GPU."""


# ---------------------------------------------------------------- lazy imports, device facts
def import_tensorrt():
    """Import tensorrt (10.x) or raise BackendUnavailableError saying why."""
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BackendUnavailableError('tensorrt', 'TensorRT is not installed on this machine '
                                                  f'({error})')
    major = int(trt.__version__.split('.')[0])
    if major < 10:
        raise BackendUnavailableError('tensorrt', f'TensorRT {trt.__version__} found, this '
                                                  'backend needs TensorRT >= 10')
    return trt


def import_pycuda():
    """Import and initialise pycuda.driver or raise BackendUnavailableError."""
    try:
        import pycuda.driver as cuda
    except ImportError as error:
        raise BackendUnavailableError('tensorrt', f'pycuda is not installed ({error})')
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as error:  # pycuda.driver.Error / RuntimeError without a driver
        raise BackendUnavailableError('tensorrt', f'CUDA driver unavailable ({error})')
    if count < 1:
        raise BackendUnavailableError('tensorrt', 'no CUDA GPU found')
    return cuda


@dataclasses.dataclass(frozen=True)
class GpuIdentity:
    """What an engine is specific to: the GPU model and its compute capability."""

    name: str
    compute_capability: tuple[int, int]


def gpu_identity(device_id: int = 0) -> GpuIdentity:
    """Name and compute capability of CUDA device `device_id` (needs pycuda and a GPU)."""
    cuda = import_pycuda()
    device = cuda.Device(device_id)
    return GpuIdentity(device.name(), tuple(device.compute_capability()))


# ---------------------------------------------------------------------- hashing and cache key
def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def canonical_profiles(profiles: Sequence[Profile]) -> list[dict[str, list[list[int]]]]:
    """Profiles as plain sorted lists, validated: min <= opt <= max, equal ranks, dims >= 1.

    Raises:
        ValueError: naming the input and the offending shapes.
    """
    result = []
    for profile in profiles:
        plain = {}
        for name in sorted(profile):
            shapes = profile[name]
            if len(shapes) != 3:
                raise ValueError(f'profile for {name!r} must be (min, opt, max), got {shapes!r}')
            low, opt, high = ([int(d) for d in s] for s in shapes)
            if not len(low) == len(opt) == len(high):
                raise ValueError(f'profile for {name!r} has shapes of different ranks: '
                                 f'{low}, {opt}, {high}')
            if any(d < 1 for d in low) or not all(a <= b <= c for a, b, c in zip(low, opt, high)):
                raise ValueError(f'profile for {name!r} must satisfy 1 <= min <= opt <= max '
                                 f'per dimension, got min={low} opt={opt} max={high}')
            plain[name] = [low, opt, high]
        result.append(plain)
    return result


def engine_cache_key(onnx_sha256: str, trt_version: str, gpu_name: str,
                     compute_capability: Sequence[int], precision: str,
                     profiles: Sequence[Profile]) -> str:
    """Hex sha256 naming an engine: equal keys mean an interchangeable engine.

    Args:
        onnx_sha256: hex sha256 of the ONNX file bytes (`sha256_file`).
        trt_version: `tensorrt.__version__`.
        gpu_name, compute_capability: `gpu_identity()`.
        precision: 'fp32' or 'fp16'.
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

    Files: `<key>.engine` (the plan), `<key>.json` (the facts behind the key, for people),
    and TensorRT timing caches written by `EngineBuilder`.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory).expanduser()

    def engine_path(self, key: str) -> Path:
        return self.directory / f'{key}.engine'

    def load_or_build(self, key: str, deserialize: Callable[[bytes], Any],
                      build: Callable[[], bytes], facts: dict | None = None
                      ) -> tuple[Any, CacheOutcome]:
        """Return (engine, outcome): the cached engine if it deserializes, else a new one.

        Args:
            key: `engine_cache_key(...)`.
            deserialize: serialized bytes -> engine; raises or returns None on failure.
            build: () -> serialized engine bytes (slow: minutes on a Jetson).
            facts: written next to the engine as `<key>.json`.
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
        _atomic_write(path, plan)
        if facts is not None:
            _atomic_write(path.with_suffix('.json'),
                          json.dumps(facts, indent=2, sort_keys=True).encode())
        LOG.info('TensorRT engine %s in %.1f s, cached at %s', status, seconds, path)
        return engine, CacheOutcome(status, path, reason, seconds)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- static ONNX compatibility
def onnx_op_types(model) -> set[str]:
    """Every op type in an onnx.ModelProto, sub-graphs (If/Loop/Scan bodies) included.

    Ops outside the default ONNX domain are returned as 'domain::OpType'.
    """
    found: set[str] = set()

    def visit(graph) -> None:
        for node in graph.node:
            found.add(node.op_type if node.domain in ('', 'ai.onnx')
                      else f'{node.domain}::{node.op_type}')
            for attribute in node.attribute:
                if attribute.g is not None and attribute.g.node:
                    visit(attribute.g)
                for sub in attribute.graphs:
                    visit(sub)
    visit(model.graph)
    return found


def onnx_input_dims(model) -> dict[str, list[int | str | None]]:
    """Input name -> dims (int, symbolic name or None) of an onnx.ModelProto."""
    initializers = {init.name for init in model.graph.initializer}
    dims = {}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        shape = value.type.tensor_type.shape
        dims[value.name] = [d.dim_value if d.HasField('dim_value')
                            else (d.dim_param or None) for d in shape.dim]
    return dims


def tensorrt_problems(model, profiles: Sequence[Profile] = (),
                      shapes: Mapping[str, Sequence[Sequence[int]]] | None = None) -> list[str]:
    """Reasons the TensorRT 10 ONNX parser would refuse `model` ([] when none are known).

    Checks, statically: every op type is in `tensorrt_ops.SUPPORTED_OPS` (ops from other
    domains are refused: they need plugins); the default-domain opset is within
    [MIN_OPSET, tensorrt_ops.MAX_OPSET]; each profile covers exactly the graph inputs, with
    the graph's rank and fixed dims; and each shape in `shapes` ({input: [shape, ...]}, the
    shapes the exporter declared) lies within some profile's [min, max].
    """
    from geovr_ros.inference import tensorrt_ops

    problems = []
    ops = onnx_op_types(model)
    unsupported = sorted(op for op in ops if op not in tensorrt_ops.SUPPORTED_OPS)
    if unsupported:
        problems.append(f'operators not supported by the TensorRT {tensorrt_ops.TENSORRT_VERSION} '
                        f'ONNX parser: {unsupported}')
    opsets = {o.domain or 'ai.onnx': o.version for o in model.opset_import}
    opset = opsets.get('ai.onnx')
    if opset is None or not MIN_OPSET <= opset <= tensorrt_ops.MAX_OPSET:
        problems.append(f'opset {opset} is outside [{MIN_OPSET}, {tensorrt_ops.MAX_OPSET}] '
                        f'(this project needs >= {MIN_OPSET}; TensorRT '
                        f'{tensorrt_ops.TENSORRT_VERSION} parses up to {tensorrt_ops.MAX_OPSET})')
    graph_dims = onnx_input_dims(model)
    try:
        plain_profiles = canonical_profiles(profiles)
    except ValueError as error:
        return problems + [str(error)]
    for index, profile in enumerate(plain_profiles):
        if set(profile) != set(graph_dims):
            problems.append(f'profile {index} names inputs {sorted(profile)}, the graph has '
                            f'{sorted(graph_dims)}')
            continue
        for name, (low, _, high) in profile.items():
            dims = graph_dims[name]
            if len(low) != len(dims):
                problems.append(f'profile {index}: {name!r} has rank {len(low)}, the graph '
                                f'input has rank {len(dims)}')
                continue
            for axis, (dim, a, b) in enumerate(zip(dims, low, high)):
                if isinstance(dim, int) and dim > 0 and not a == b == dim:
                    problems.append(f'profile {index}: {name!r} axis {axis} is fixed at {dim} '
                                    f'in the graph but the profile spans [{a}, {b}]')
    for name, shape_list in (shapes or {}).items():
        for shape in shape_list:
            fits = [p for p in plain_profiles if name in p and len(p[name][0]) == len(shape)
                    and all(a <= s <= b for a, s, b in zip(p[name][0], shape, p[name][2]))]
            if plain_profiles and not fits:
                problems.append(f'declared shape {list(shape)} of {name!r} lies outside every '
                                f'optimisation profile')
    return problems


def check_onnx_for_tensorrt(path: str | os.PathLike, profiles: Sequence[Profile] = (),
                            shapes: Mapping[str, Sequence[Sequence[int]]] | None = None) -> None:
    """Raise TensorRTCompatibilityError if `tensorrt_problems` finds any for the file."""
    import onnx

    path = check_model_file(path, ('.onnx',))
    model = onnx.load(str(path), load_external_data=False)
    problems = tensorrt_problems(model, profiles, shapes)
    if problems:
        raise TensorRTCompatibilityError(str(path), problems)


def profile_from_dims(input_dims: Mapping[str, Sequence[int | str | None]],
                      sizes: Mapping[str, tuple[int, int, int]]) -> dict:
    """One profile from the graph's input dims and (min, opt, max) per symbolic dim name.

    Example: dims {'images': ['batch', 2, 3, 'height', 'width']} with sizes
    {'batch': (1, 1, 1), 'height': (96, 192, 480), 'width': (128, 256, 640)}.

    Raises:
        ValueError: a dynamic dim has no entry in `sizes`.
    """
    profile = {}
    for name, dims in input_dims.items():
        shapes = ([], [], [])
        for axis, dim in enumerate(dims):
            if isinstance(dim, int) and dim > 0:
                for shape in shapes:
                    shape.append(dim)
                continue
            if dim not in sizes:
                raise ValueError(f'input {name!r} axis {axis} is dynamic ({dim!r}) and has no '
                                 f'(min, opt, max) in {sorted(sizes)}')
            for shape, value in zip(shapes, sizes[dim]):
                shape.append(int(value))
        profile[name] = tuple(tuple(s) for s in shapes)
    return profile


# ------------------------------------------------------------------------------ the builder
class EngineBuilder:
    """Builds a serialized TensorRT 10 engine from an ONNX file.

    Args:
        precision: 'fp32' or 'fp16' (fp16 also keeps fp32 kernels where faster/needed).
        workspace_mb: builder memory pool limit for scratch space, MiB.
        timing_cache: path of a persistent timing cache, loaded if present and saved after
            each build (speeds up rebuilds of similar graphs on the same GPU).
        verbose: TensorRT logger at VERBOSE instead of WARNING.
    """

    def __init__(self, precision: str = 'fp16', workspace_mb: int = 1024,
                 timing_cache: str | os.PathLike | None = None, verbose: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        if workspace_mb < 1:
            raise ValueError(f'workspace_mb must be >= 1, got {workspace_mb!r}')
        self.precision = precision
        self.workspace_mb = workspace_mb
        self.timing_cache = Path(timing_cache) if timing_cache else None
        self.verbose = verbose

    def build(self, onnx_path: str | os.PathLike, profiles: Sequence[Profile]) -> bytes:
        """Parse `onnx_path` and build a serialized engine with `profiles`.

        Raises:
            BackendUnavailableError: TensorRT is not installed.
            EngineBuildError: listing every ONNX parser error, or the build failure.
        """
        trt = import_tensorrt()
        onnx_path = check_model_file(onnx_path, ('.onnx',))
        logger = trt.Logger(trt.Logger.VERBOSE if self.verbose else trt.Logger.WARNING)
        builder = trt.Builder(logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TRT 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise EngineBuildError(str(onnx_path), errors or ['ONNX parser failed'])
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_mb << 20)
        if self.precision == 'fp16':
            if not builder.platform_has_fast_fp16:
                LOG.warning('this GPU has no fast fp16; building fp16 anyway')
            config.set_flag(trt.BuilderFlag.FP16)
        for plain in canonical_profiles(profiles):
            profile = builder.create_optimization_profile()
            for name, (low, opt, high) in plain.items():
                profile.set_shape(name, low, opt, high)
            config.add_optimization_profile(profile)
        cache_bytes = b''
        if self.timing_cache and self.timing_cache.exists():
            cache_bytes = self.timing_cache.read_bytes()
            LOG.info('loaded TensorRT timing cache %s (%d bytes)', self.timing_cache,
                     len(cache_bytes))
        timing_cache = config.create_timing_cache(cache_bytes)
        config.set_timing_cache(timing_cache, ignore_mismatch=False)
        LOG.info('building %s TensorRT engine from %s (workspace %d MiB, %d profile(s))',
                 self.precision, onnx_path, self.workspace_mb, len(profiles))
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise EngineBuildError(str(onnx_path), ['build_serialized_network returned None '
                                                    '(see the TensorRT log above)'])
        if self.timing_cache:
            self.timing_cache.parent.mkdir(parents=True, exist_ok=True)
            _atomic_write(self.timing_cache, bytes(config.get_timing_cache().serialize()))
        return bytes(plan)


def deserialize_engine(plan: bytes, logger=None):
    """Deserialize a plan with this TensorRT; raise EngineDeserializeError on failure."""
    trt = import_tensorrt()
    runtime = trt.Runtime(logger or trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineDeserializeError(f'TensorRT {trt.__version__} could not deserialize the '
                                     'engine (corrupt, or built by another TensorRT/GPU)')
    return engine


def build_or_load_engine(onnx_path: str | os.PathLike, cache_dir: str | os.PathLike,
                         precision: str = 'fp16', workspace_mb: int = 1024,
                         profiles: Sequence[Profile] = (), device_id: int = 0,
                         verbose: bool = False):
    """The cached engine for (ONNX file, TensorRT, GPU, precision, profiles), built if needed.

    Returns:
        (engine: tensorrt.ICudaEngine, outcome: CacheOutcome).
    """
    trt = import_tensorrt()
    onnx_path = check_model_file(onnx_path, ('.onnx',))
    gpu = gpu_identity(device_id)
    facts = {'onnx': str(onnx_path), 'onnx_sha256': sha256_file(onnx_path),
             'tensorrt': trt.__version__, 'gpu': gpu.name,
             'compute_capability': list(gpu.compute_capability), 'precision': precision,
             'profiles': canonical_profiles(profiles), 'workspace_mb': workspace_mb}
    key = engine_cache_key(facts['onnx_sha256'], trt.__version__, gpu.name,
                           gpu.compute_capability, precision, profiles)
    cache = EngineCache(cache_dir)
    slug = gpu.name.replace(' ', '_')
    builder = EngineBuilder(precision, workspace_mb, verbose=verbose,
                            timing_cache=cache.directory / f'timing-trt{trt.__version__}-'
                                         f'{slug}-sm{gpu.compute_capability[0]}'
                                         f'{gpu.compute_capability[1]}.cache')
    return cache.load_or_build(key, deserialize_engine,
                               lambda: builder.build(onnx_path, profiles), facts)


def default_cache_dir() -> Path:
    """$GEOVR_ENGINE_CACHE, else ~/.cache/geovr_ros/engines."""
    return Path(os.environ.get('GEOVR_ENGINE_CACHE',
                               Path.home() / '.cache' / 'geovr_ros' / 'engines'))


# ------------------------------------------------------------------------------ the backend
class TensorRTBackend(Backend):
    """Runs a TensorRT 10 engine with pycuda: pinned host buffers, one stream, async copies.

    `load(path)` takes a serialized engine (.engine/.plan/.trt) or an ONNX file; an ONNX
    file goes through the engine cache (`build_or_load_engine`) with `profiles`, or with a
    profile from `sizes` (symbolic dim -> (min, opt, max)) when `profiles` is not given.
    Buffers are sized for the maximum shape of the first optimisation profile.
    """

    name = 'tensorrt'

    def __init__(self, precision: str = 'fp16', workspace_mb: int = 1024,
                 cache_dir: str | os.PathLike | None = None,
                 profiles: Sequence[Profile] | None = None,
                 sizes: Mapping[str, tuple[int, int, int]] | None = None,
                 device_id: int = 0, verbose: bool = False) -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
        self.precision = precision
        self.workspace_mb = workspace_mb
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.profiles = profiles
        self.sizes = sizes
        self.device_id = device_id
        self.verbose = verbose
        self.cache_outcome: CacheOutcome | None = None
        self._cuda_context = None
        self._engine = None
        self._context = None
        self._stream = None
        self._buffers: dict[str, tuple[Any, Any, np.dtype]] = {}  # name -> (host, device, dtype)

    def load(self, path: str | os.PathLike) -> None:
        trt = import_tensorrt()
        cuda = import_pycuda()
        path = check_model_file(path, ('.onnx',) + ENGINE_SUFFIXES)
        self._cuda_context = cuda.Device(self.device_id).retain_primary_context()
        self._cuda_context.push()
        try:
            if path.suffix == '.onnx':
                profiles = self.profiles
                if profiles is None:
                    import onnx
                    dims = onnx_input_dims(onnx.load(str(path), load_external_data=False))
                    profiles = [profile_from_dims(dims, self.sizes or _default_sizes(path))]
                engine, self.cache_outcome = build_or_load_engine(
                    path, self.cache_dir, self.precision, self.workspace_mb, profiles,
                    self.device_id, self.verbose)
            else:
                try:
                    engine = deserialize_engine(path.read_bytes())
                except EngineDeserializeError as error:
                    raise ModelFileError(path, str(error)) from error
            self._setup(trt, cuda, engine)
        finally:
            self._cuda_context.pop()
        self.device = f'TensorRT {trt.__version__} {gpu_identity(self.device_id).name}'
        self.model_path = path

    def _setup(self, trt, cuda, engine) -> None:
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream = cuda.Stream()
        self._inputs, self._outputs, self._buffers = [], [], {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        for name in names:  # set max input shapes first so output max shapes resolve
            if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                max_shape = tuple(engine.get_tensor_profile_shape(name, 0)[2])
                self._context.set_input_shape(name, max_shape)
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            shape = tuple(d if d >= 0 else None for d in engine.get_tensor_shape(name))
            spec = TensorSpec(name, shape, dtype)
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self._inputs if is_input else self._outputs).append(spec)
            max_count = int(np.prod(tuple(self._context.get_tensor_shape(name))))
            host = cuda.pagelocked_empty(max(max_count, 1), dtype)
            device = cuda.mem_alloc(host.nbytes)
            self._buffers[name] = (host, device, dtype)
            self._context.set_tensor_address(name, int(device))

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cuda = import_pycuda()
        self._cuda_context.push()
        try:
            for spec in self._inputs:
                array = inputs[spec.name]
                host, device, _ = self._buffers[spec.name]
                if array.size > host.size:
                    raise InferenceError(f'input {spec.name!r} shape {array.shape} exceeds the '
                                         'engine profile maximum')
                if not self._context.set_input_shape(spec.name, array.shape):
                    raise InferenceError(f'input {spec.name!r} shape {array.shape} is outside '
                                         'the engine optimisation profile')
                staged = host[:array.size]
                staged[:] = array.ravel()
                cuda.memcpy_htod_async(device, staged, self._stream)
            if not self._context.execute_async_v3(self._stream.handle):
                raise InferenceError('TensorRT execute_async_v3 failed')
            shapes = {}
            for spec in self._outputs:
                host, device, _ = self._buffers[spec.name]
                shapes[spec.name] = tuple(self._context.get_tensor_shape(spec.name))
                count = int(np.prod(shapes[spec.name]))
                cuda.memcpy_dtoh_async(host[:count], device, self._stream)
            self._stream.synchronize()
            return {spec.name: np.array(self._buffers[spec.name][0][:int(np.prod(shape))])
                    .reshape(shape) for spec, shape in
                    ((s, shapes[s.name]) for s in self._outputs)}
        finally:
            self._cuda_context.pop()

    def close(self) -> None:
        if self._cuda_context is not None:
            self._cuda_context.push()
            try:
                for _, device, _ in self._buffers.values():
                    device.free()
                self._buffers = {}
                self._context = None
                self._engine = None
                self._stream = None
            finally:
                self._cuda_context.pop()
                self._cuda_context.detach()
                self._cuda_context = None
        super().close()


def _default_sizes(onnx_path: Path) -> dict[str, tuple[int, int, int]]:
    """(min, opt, max) per symbolic dim from the model's geovr.shapes metadata."""
    from geovr_ros.inference.metadata import read_metadata

    return read_metadata(onnx_path).profile_sizes()
