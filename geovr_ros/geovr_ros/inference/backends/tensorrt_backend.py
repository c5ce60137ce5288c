"""`TensorRTBackend`: loads a TensorRT 10 / 11 engine and runs it (named I/O tensors,
`execute_async_v3`, one stream, pinned host buffers, the optimisation profile that holds
each input shape). It only loads: engines are built by `geovr-export engine`
(`geovr_training.export.tensorrt_builder`) into the engine cache, or written as a file.

`tensorrt` and the CUDA binding (`cuda_memory`: pycuda or cuda-python) are imported inside
`load`, so this module imports on a machine without either. The names other code imported
from here before the split (checks, cache, errors) are re-exported below.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geovr_ros.inference.backends.base import (
    Backend, BackendUnavailableError, InferenceError, ModelFileError, TensorSpec,
    check_model_file)
from geovr_ros.inference.cuda_memory import GpuIdentity, gpu_identity  # noqa: F401 (re-export)
from geovr_ros.inference.tensorrt_cache import (  # noqa: F401 (re-exports)
    ENGINE_SUFFIXES, CacheOutcome, EngineCache, default_cache_dir, engine_cache_key,
    engine_facts, read_engine_sidecar, sha256_file)
from geovr_ros.inference.tensorrt_checks import (  # noqa: F401 (re-exports)
    MIN_OPSET, check_onnx_for_tensorrt, onnx_input_dims, onnx_op_types, profile_from_dims,
    tensorrt_problems)
from geovr_ros.inference.tensorrt_common import (  # noqa: F401 (re-exports)
    PRECISION_CHOICES, PRECISIONS, EngineBuildError, EngineDeserializeError, Profile,
    TensorRTCompatibilityError, canonical_profiles, import_tensorrt, profile_index,
    resolve_precision)

LOG = logging.getLogger(__name__)


def __getattr__(name: str):
    """EngineBuilder and build_or_load_engine moved to the exporter (lazy, needs
    geovr_training): `geovr_training.export.tensorrt_builder`."""
    if name in ('EngineBuilder', 'build_or_load_engine'):
        from geovr_training.export import tensorrt_builder
        return getattr(tensorrt_builder, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


def deserialize_engine(plan: bytes, trt=None, logger=None):
    """Deserialize a plan with this TensorRT; raise EngineDeserializeError on failure."""
    trt = trt or import_tensorrt()
    runtime = trt.Runtime(logger or trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineDeserializeError(f'TensorRT {trt.__version__} could not deserialize the '
                                     'engine (corrupt, or built by another TensorRT/GPU)')
    return engine


class TensorRTBackend(Backend):
    """Runs a TensorRT engine: pinned host buffers, one stream, async copies.

    `load(path)` takes an engine file (.engine/.plan/.trt, with its `<engine>.json` beside
    it for the metadata and symbolic dim names) or an ONNX file whose engine is in the
    cache (`geovr-export engine --onnx X` puts it there; the profile is `profiles`, or one
    from `sizes` / the graph's `geovr.shapes.profile`). A missing engine raises
    BackendUnavailableError saying which command builds it.

    Buffers are sized for the largest maximum shape over all optimisation profiles; each
    inference selects the profile whose [min, max] holds its input shapes.
    """

    name = 'tensorrt'

    def __init__(self, precision: str = 'auto', workspace_mb: int = 1024,
                 cache_dir: str | os.PathLike | None = None,
                 profiles: Sequence[Profile] | None = None,
                 sizes: Mapping[str, tuple[int, int, int]] | None = None,
                 device_id: int = 0, verbose: bool = False, memory=None) -> None:
        super().__init__()
        if precision not in PRECISION_CHOICES:
            raise ValueError(f'precision must be one of {PRECISION_CHOICES}, got {precision!r}')
        self.precision = precision
        self.workspace_mb = workspace_mb  # unused at run time; accepted for option dicts
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.profiles = profiles
        self.sizes = sizes
        self.device_id = device_id
        self.verbose = verbose
        self.cache_outcome: CacheOutcome | None = None
        #: the graph's `geovr.*` metadata_props {key: JSON text} ({} when unknown).
        self.metadata: dict[str, str] = {}
        self._memory = memory  # a cuda_memory.DeviceMemory; None: import_device_memory()
        self._active = False
        self._engine = None
        self._context = None
        self._stream = None
        self._profiles: list[dict[str, tuple]] = []
        self._profile = 0
        self._buffers: dict[str, tuple[np.ndarray, Any]] = {}  # name -> (host, device)

    # ------------------------------------------------------------------------------ load
    def load(self, path: str | os.PathLike) -> None:
        trt = import_tensorrt()
        if self._memory is None:
            from geovr_ros.inference.cuda_memory import import_device_memory
            self._memory = import_device_memory()
        path = check_model_file(path, ('.onnx',) + ENGINE_SUFFIXES)
        self.close()
        self._memory.activate(self.device_id)
        self._active = True
        try:
            plan, self.metadata, io_dims = self._find_plan(trt, path)
            try:
                engine = deserialize_engine(plan, trt)
            except EngineDeserializeError as error:
                raise ModelFileError(path, f'{error}; rebuild it with geovr-export engine') \
                    from error
            self._setup(trt, engine, io_dims)
            gpu = self._memory.gpu_identity(self.device_id)
        except BaseException:
            self._release()
            raise
        self._memory.deactivate()
        self.device = f'TensorRT {trt.__version__} {gpu.name} ({self._memory.name})'
        self.model_path = path

    def _find_plan(self, trt, path: Path) -> tuple[bytes, dict[str, str], dict]:
        """(serialized engine, geovr metadata, io dims) for an engine or ONNX file."""
        if path.suffix != '.onnx':
            try:
                sidecar = read_engine_sidecar(path)
            except ValueError as error:
                raise ModelFileError(path, str(error)) from error
            if sidecar is None:
                LOG.warning('%s has no %s.json beside it: no metadata, dynamic dims unnamed',
                            path, path.name)
                sidecar = {}
            return path.read_bytes(), dict(sidecar.get('metadata', {})), \
                dict(sidecar.get('io_dims', {}))
        import onnx

        from geovr_ros.inference.tensorrt_checks import graph_profiles, onnx_output_dims

        model = onnx.load(str(path), load_external_data=False)
        io_dims = {**onnx_input_dims(model), **onnx_output_dims(model)}
        profiles = self.profiles
        if profiles is None:
            profiles, _ = graph_profiles(path, self.sizes)
        precision = resolve_precision(trt, self.precision)
        gpu = self._memory.gpu_identity(self.device_id)
        key, _ = engine_facts(path, trt.__version__, gpu.name, gpu.compute_capability,
                              precision, profiles)
        engine_path = EngineCache(self.cache_dir).engine_path(key)
        if not engine_path.exists():
            raise BackendUnavailableError(
                'tensorrt', f'no {precision} engine for {path} with TensorRT '
                f'{trt.__version__} on {gpu.name} in {self.cache_dir}: build it with '
                f'`geovr-export engine --onnx {path} --precision {self.precision}'
                f' --cache-dir {self.cache_dir}` (the runtime does not build engines)')
        self.cache_outcome = CacheOutcome('hit', engine_path)
        props = {p.key: p.value for p in model.metadata_props if p.key.startswith('geovr.')}
        return engine_path.read_bytes(), props, io_dims

    def _setup(self, trt, engine, io_dims: Mapping[str, Sequence] | None = None) -> None:
        memory = self._memory
        self._engine = engine
        self._context = engine.create_execution_context()
        if self._context is None:
            raise InferenceError('TensorRT could not create an execution context (GPU memory?)')
        self._stream = memory.stream()
        io_dims = io_dims or {}
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        count = max(int(engine.num_optimization_profiles), 1)
        self._profiles = [{name: tuple(tuple(int(d) for d in s)
                                       for s in engine.get_tensor_profile_shape(name, k))
                           for name in inputs} for k in range(count)]
        # Largest element count of every tensor over all profiles (at their max shapes).
        counts = dict.fromkeys(names, 1)
        for k, profile in enumerate(self._profiles):
            self._select_profile(k)
            for name in inputs:
                if not self._context.set_input_shape(name, profile[name][2]):
                    raise InferenceError(f'profile {k}: max shape {profile[name][2]} of '
                                         f'{name!r} refused by the engine')
            for name in names:
                shape = tuple(self._context.get_tensor_shape(name))
                if any(d < 0 for d in shape):
                    raise InferenceError(f'tensor {name!r} has a data-dependent shape {shape}: '
                                         'this backend needs shapes known from the inputs')
                counts[name] = max(counts[name], int(np.prod(shape)))
        self._select_profile(0)
        self._inputs, self._outputs, self._buffers = [], [], {}
        for name in names:
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
            known = list(io_dims.get(name, []))
            shape = tuple(int(d) if d >= 0 else
                          (known[i] if i < len(known) and isinstance(known[i], str) else None)
                          for i, d in enumerate(engine.get_tensor_shape(name)))
            spec = TensorSpec(name, shape, dtype)
            (self._inputs if name in inputs else self._outputs).append(spec)
            host = memory.host_empty(counts[name], dtype)
            device = memory.device_alloc(max(host.nbytes, 1))
            self._buffers[name] = (host, device)
            self._context.set_tensor_address(name, memory.address(device))
        # Warm-up and example sizes: the opt shape of profile 0 (inside the profile).
        self.example_sizes = {}
        for spec in self._inputs:
            for dim, opt in zip(spec.shape, self._profiles[0][spec.name][1]):
                if isinstance(dim, str):
                    self.example_sizes.setdefault(dim, int(opt))

    def _select_profile(self, index: int) -> None:
        """Make optimisation profile `index` the context's (engines with several only)."""
        if self._engine.num_optimization_profiles > 1:
            ok = self._context.set_optimization_profile_async(
                index, self._memory.stream_handle(self._stream))
            if ok is False:
                raise InferenceError(f'TensorRT refused optimisation profile {index}')
            self._memory.synchronize(self._stream)
        self._profile = index

    # ----------------------------------------------------------------------------- infer
    def example_inputs(self, sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
        """Inputs at the opt shape of the first profile (named dims from `sizes` /
        `example_sizes` where given); integer inputs get small non-negative values."""
        rng = np.random.default_rng(0)
        sizes = {**self.example_sizes, **(sizes or {})}
        arrays = {}
        for spec in self.input_specs:
            opt = self._profiles[0][spec.name][1]
            shape = tuple(d if isinstance(d, int) else
                          int(sizes.get(d, o)) if isinstance(d, str) else int(o)
                          for d, o in zip(spec.shape, opt))
            if np.issubdtype(spec.dtype, np.integer):
                arrays[spec.name] = rng.integers(0, 100, shape).astype(spec.dtype)
            elif spec.dtype == np.bool_:
                arrays[spec.name] = np.ones(shape, np.bool_)
            else:
                arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        return arrays

    @property
    def optimization_profiles(self) -> list[dict[str, tuple]]:
        """Per profile: {input name: (min, opt, max) shapes} as the engine reports them."""
        return [dict(p) for p in self._profiles]

    def max_batch(self, name: str) -> int | None:
        """The largest first dimension of input `name` over the engine's profiles (their max
        shapes); None before `load` or for a name that is no input."""
        sizes = [profile[name][2][0] for profile in self._profiles if name in profile and profile[name][2]]
        return max(sizes) if sizes else None

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        memory = self._memory
        shapes = {name: tuple(array.shape) for name, array in inputs.items()}
        index = profile_index(self._profiles, shapes)
        if index is None:
            raise InferenceError(f'input shapes {shapes} lie outside every optimisation '
                                 f'profile of the engine: {self._profiles}')
        memory.activate(self.device_id)
        try:
            if index != self._profile:
                self._select_profile(index)
            for spec in self._inputs:
                array = inputs[spec.name]
                host, device = self._buffers[spec.name]
                if not self._context.set_input_shape(spec.name, array.shape):
                    raise InferenceError(f'input {spec.name!r} shape {array.shape} is outside '
                                         f'optimisation profile {index}')
                staged = host[:array.size]
                staged[:] = array.ravel()
                memory.htod_async(device, staged, self._stream)
            for name, (_, device) in self._buffers.items():
                self._context.set_tensor_address(name, memory.address(device))
            if not self._context.execute_async_v3(memory.stream_handle(self._stream)):
                raise InferenceError('TensorRT execute_async_v3 failed')
            out_shapes = {}
            for spec in self._outputs:
                host, device = self._buffers[spec.name]
                out_shapes[spec.name] = tuple(self._context.get_tensor_shape(spec.name))
                memory.dtoh_async(host[:int(np.prod(out_shapes[spec.name]))], device,
                                  self._stream)
            memory.synchronize(self._stream)
            return {name: np.array(self._buffers[name][0][:int(np.prod(shape))]).reshape(shape)
                    for name, shape in out_shapes.items()}
        finally:
            memory.deactivate()

    # ----------------------------------------------------------------------------- close
    def _release(self) -> None:
        """Free buffers, drop the engine and release the CUDA context (every path)."""
        memory = self._memory
        if memory is None or not self._active:
            return
        try:
            for host, device in self._buffers.values():
                try:
                    memory.free(device)
                finally:
                    memory.free_host(host)
        finally:
            self._buffers = {}
            self._context = None
            self._engine = None
            self._stream = None
            self._profiles = []
            self._profile = 0
            self._active = False
            try:
                memory.deactivate()
            finally:
                memory.release()

    def close(self) -> None:
        if self._active:
            self._memory.activate(self.device_id)
            self._release()
        super().close()
