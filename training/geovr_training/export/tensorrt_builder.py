"""Builds TensorRT engines from exported ONNX graphs (`geovr-export engine`); the runtime
(`geovr_ros.inference.backends.tensorrt_backend`) only loads them.

Targets TensorRT 10 and 11. Precision (`precision_plan`): on 10, 'fp16' sets the weakly
typed `BuilderFlag.FP16` (deprecated in 10.12); on 11 weak typing is gone (no
`BuilderFlag.FP16`, no `platform_has_fast_fp16`), every network is strongly typed and
takes its precision from the ONNX graph, so 'fp16' is refused with what to do instead and
'auto' means 'onnx' (strongly typed). `tensorrt` is imported lazily (or passed in, which is
how the tests run this code against a fake TensorRT 10 and 11).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from geovr_ros.inference.backends.base import check_model_file
from geovr_ros.inference.tensorrt_cache import (
    EngineCache, atomic_write, engine_facts, sidecar_path, timing_cache_path,
    write_engine_sidecar)
from geovr_ros.inference.tensorrt_common import (
    PRECISION_CHOICES, EngineBuildError, EngineDeserializeError, Profile, canonical_profiles,
    import_tensorrt, resolve_precision, tensorrt_major)

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class PrecisionPlan:
    """How a precision is built with one TensorRT.

    Attributes:
        precision: concrete precision ('fp32' | 'fp16' | 'onnx'), part of the cache key.
        strongly_typed: create the network with NetworkDefinitionCreationFlag.STRONGLY_TYPED
            (required for 'onnx' on 10; every network is strongly typed on 11).
        builder_flags: names of `trt.BuilderFlag` members to set ('FP16' on 10 only).
    """

    precision: str
    strongly_typed: bool
    builder_flags: tuple[str, ...] = ()


def precision_plan(trt, precision: str) -> PrecisionPlan:
    """The PrecisionPlan of `precision` ('fp32' | 'fp16' | 'onnx' | 'auto') with `trt`.

    Raises:
        PrecisionUnsupportedError: 'fp16' on TensorRT >= 11 (the message says what to do).
        ValueError: unknown precision.
    """
    concrete = resolve_precision(trt, precision)
    eleven = tensorrt_major(trt) >= 11
    if concrete == 'onnx':
        return PrecisionPlan('onnx', True)
    if concrete == 'fp16':
        return PrecisionPlan('fp16', False, ('FP16',))
    return PrecisionPlan('fp32', eleven)  # 11: strongly typed, an fp32 ONNX gives fp32


class EngineBuilder:
    """Builds a serialized TensorRT 10 / 11 engine from an ONNX file.

    Args:
        precision: 'auto' | 'fp32' | 'fp16' | 'onnx' (`precision_plan`).
        workspace_mb: builder memory pool limit for scratch space, MiB.
        timing_cache: path of a persistent timing cache, loaded if present and saved after
            each build (speeds up rebuilds of similar graphs on the same GPU); one that does
            not fit this TensorRT / GPU is replaced by an empty one (logged).
        verbose: TensorRT logger at VERBOSE instead of WARNING.
        trt: the tensorrt module (default: imported).
    """

    def __init__(self, precision: str = 'auto', workspace_mb: int = 1024,
                 timing_cache: str | os.PathLike | None = None, verbose: bool = False,
                 trt=None) -> None:
        if precision not in PRECISION_CHOICES:
            raise ValueError(f'precision must be one of {PRECISION_CHOICES}, got {precision!r}')
        if workspace_mb < 1:
            raise ValueError(f'workspace_mb must be >= 1, got {workspace_mb!r}')
        self.precision = precision
        self.workspace_mb = workspace_mb
        self.timing_cache = Path(timing_cache) if timing_cache else None
        self.verbose = verbose
        self._trt = trt
        #: whether the last build used the timing cache file (False: mismatched or absent).
        self.timing_cache_reused = False

    @property
    def trt(self):
        if self._trt is None:
            self._trt = import_tensorrt()
        return self._trt

    def plan(self) -> PrecisionPlan:
        return precision_plan(self.trt, self.precision)

    def build(self, onnx_path: str | os.PathLike, profiles: Sequence[Profile]) -> bytes:
        """Parse `onnx_path` and build a serialized engine with `profiles`.

        Raises:
            BackendUnavailableError: TensorRT is not installed.
            PrecisionUnsupportedError: 'fp16' asked of TensorRT 11.
            EngineBuildError: listing every ONNX parser error, or the build failure.
        """
        trt = self.trt
        plan = self.plan()  # refuse an impossible precision before any work
        onnx_path = check_model_file(onnx_path, ('.onnx',))
        logger = trt.Logger(trt.Logger.VERBOSE if self.verbose else trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags = 0
        strongly = getattr(trt.NetworkDefinitionCreationFlag, 'STRONGLY_TYPED', None)
        if plan.strongly_typed and strongly is not None:
            flags |= 1 << int(strongly)
        network = builder.create_network(flags)  # explicit batch is the only mode since 10
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
            raise EngineBuildError(str(onnx_path), errors or ['ONNX parser failed'])
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_mb << 20)
        for flag in plan.builder_flags:
            if flag == 'FP16' and getattr(builder, 'platform_has_fast_fp16', True) is False:
                LOG.warning('this GPU has no fast fp16; building fp16 anyway')
            config.set_flag(getattr(trt.BuilderFlag, flag))
        plain_profiles = canonical_profiles(profiles)
        for plain in plain_profiles:
            profile = builder.create_optimization_profile()
            for name, (low, opt, high) in plain.items():
                profile.set_shape(name, low, opt, high)
            if config.add_optimization_profile(profile) < 0:
                raise EngineBuildError(str(onnx_path), [f'optimisation profile {plain} refused'])
        self._set_timing_cache(config)
        LOG.info('building %s TensorRT %s engine from %s (workspace %d MiB, %d profile(s)%s)',
                 plan.precision, trt.__version__, onnx_path, self.workspace_mb,
                 len(plain_profiles), ', strongly typed' if plan.strongly_typed else '')
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise EngineBuildError(str(onnx_path), ['build_serialized_network returned None '
                                                    '(see the TensorRT log above)'])
        if self.timing_cache:
            self.timing_cache.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.timing_cache, bytes(config.get_timing_cache().serialize()))
        return bytes(serialized)

    def _set_timing_cache(self, config) -> None:
        """Load the timing cache file into `config`; an unusable one is replaced by an
        empty cache (`set_timing_cache` returns False on a mismatch: checked)."""
        self.timing_cache_reused = False
        data = b''
        if self.timing_cache and self.timing_cache.exists():
            data = self.timing_cache.read_bytes()
        if data:
            try:
                cache = config.create_timing_cache(data)
                if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
                    self.timing_cache_reused = True
                    LOG.info('loaded TensorRT timing cache %s (%d bytes)', self.timing_cache,
                             len(data))
                    return
            except Exception as error:  # corrupt file: TensorRT raises
                LOG.warning('timing cache %s unreadable (%s)', self.timing_cache, error)
            LOG.warning('timing cache %s does not fit this TensorRT / GPU: starting an empty '
                        'one (it is overwritten after the build)', self.timing_cache)
        if not config.set_timing_cache(config.create_timing_cache(b''), ignore_mismatch=False):
            LOG.warning('TensorRT refused an empty timing cache: building without one')


def build_or_load_engine(onnx_path: str | os.PathLike, cache_dir: str | os.PathLike,
                         precision: str = 'auto', workspace_mb: int = 1024,
                         profiles: Sequence[Profile] = (), device_id: int = 0,
                         verbose: bool = False, trt=None, memory=None):
    """The cached engine for (ONNX file, TensorRT, GPU, precision, profiles), built if needed,
    with its metadata written beside it (`<key>.engine.json`).

    Returns:
        (engine: tensorrt.ICudaEngine, outcome: CacheOutcome).
    """
    import onnx

    from geovr_ros.inference.backends.tensorrt_backend import deserialize_engine
    from geovr_ros.inference.tensorrt_checks import onnx_input_dims, onnx_output_dims

    trt = trt or import_tensorrt()
    if memory is None:
        from geovr_ros.inference.cuda_memory import import_device_memory
        memory = import_device_memory()
    onnx_path = check_model_file(onnx_path, ('.onnx',))
    plan = precision_plan(trt, precision)
    gpu = memory.gpu_identity(device_id)
    key, facts = engine_facts(onnx_path, trt.__version__, gpu.name, gpu.compute_capability,
                              plan.precision, profiles, workspace_mb=workspace_mb,
                              strongly_typed=plan.strongly_typed)
    cache = EngineCache(cache_dir)
    builder = EngineBuilder(precision, workspace_mb, verbose=verbose, trt=trt,
                            timing_cache=timing_cache_path(cache.directory, trt.__version__,
                                                           gpu.name, gpu.compute_capability))
    model = onnx.load(str(onnx_path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    io_dims = {**onnx_input_dims(model), **onnx_output_dims(model)}

    def sidecar(path: Path) -> None:
        write_engine_sidecar(path, facts=facts, metadata=props, io_dims=io_dims,
                             profiles=profiles)

    engine, outcome = cache.load_or_build(
        key, lambda data: deserialize_engine(data, trt),
        lambda: builder.build(onnx_path, profiles), sidecar=sidecar)
    if not sidecar_path(outcome.path).exists():  # an engine cached before sidecars existed
        sidecar(outcome.path)
    return engine, outcome


def copy_engine(engine_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Copy a cached engine and its `<engine>.json` to `out` (e.g. model_dir/perception.engine),
    so the engine runs alone: `create_backend('tensorrt', out)`."""
    engine_path, out = Path(engine_path), Path(out)
    if out.suffix not in ('.engine', '.plan', '.trt'):
        raise ValueError(f'--out must end in .engine, .plan or .trt, got {out}')
    source = sidecar_path(engine_path)
    if not source.exists():
        raise EngineDeserializeError(f'{engine_path} has no {source.name} beside it')
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(engine_path, out)
    shutil.copyfile(source, sidecar_path(out))
    return out
