"""`create_backend`: one call that picks, constructs and loads an inference backend.

`auto` tries, in order: TensorRT (tensorrt + pycuda or cuda-python importable, a CUDA GPU,
and an engine built for the graph), ONNX Runtime with the CUDA execution provider, ONNX
Runtime on CPU. It logs what it picked and why.
"""
from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from geovr_ros.inference.backends.base import Backend, BackendUnavailableError
from geovr_ros.inference.metadata import find_model_file

LOG = logging.getLogger(__name__)

KINDS = ('auto', 'tensorrt', 'onnxruntime', 'torch')


@dataclass(frozen=True)
class Probe:
    """Whether a backend can run here, and the reason either way."""

    available: bool
    reason: str


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def probe_tensorrt() -> Probe:
    """TensorRT >= 10, a CUDA binding (pycuda or cuda-python) and a CUDA GPU present."""
    if not _installed('tensorrt'):
        return Probe(False, 'TensorRT is not installed on this machine')
    if not (_installed('pycuda') or _installed('cuda.bindings') or _installed('cuda.cudart')):
        return Probe(False, 'neither pycuda nor cuda-python is installed')
    from geovr_ros.inference.cuda_memory import import_device_memory
    from geovr_ros.inference.tensorrt_common import import_tensorrt
    try:
        trt = import_tensorrt()
        memory = import_device_memory()
        gpu = memory.gpu_identity()
    except BackendUnavailableError as error:
        return Probe(False, error.reason)
    return Probe(True, f'TensorRT {trt.__version__} and GPU {gpu.name} '
                       f'(sm {gpu.compute_capability[0]}.{gpu.compute_capability[1]}, '
                       f'{memory.name})')


def probe_onnxruntime_cuda() -> Probe:
    from geovr_ros.inference.backends.onnxruntime_backend import available_providers
    providers = available_providers()
    if not providers:
        return Probe(False, 'onnxruntime is not installed')
    if 'CUDAExecutionProvider' in providers:
        return Probe(True, 'onnxruntime has the CUDAExecutionProvider')
    return Probe(False, f'onnxruntime has no CUDAExecutionProvider (providers: {providers})')


def probe_onnxruntime_cpu() -> Probe:
    from geovr_ros.inference.backends.onnxruntime_backend import available_providers
    if 'CPUExecutionProvider' in available_providers():
        return Probe(True, 'onnxruntime CPUExecutionProvider')
    return Probe(False, 'onnxruntime is not installed')


DEFAULT_PROBES: dict[str, Callable[[], Probe]] = {
    'tensorrt': probe_tensorrt,
    'onnxruntime-cuda': probe_onnxruntime_cuda,
    'onnxruntime-cpu': probe_onnxruntime_cpu,
}


def choose_backend(kind: str = 'auto',
                   probes: dict[str, Callable[[], Probe]] | None = None
                   ) -> tuple[str, dict, str]:
    """Decide which backend `create_backend(kind)` builds.

    Args:
        kind: 'auto', 'tensorrt', 'onnxruntime' or 'torch'.
        probes: override the availability probes (keys as in DEFAULT_PROBES).
    Returns:
        (backend kind, constructor options implied by the choice, reason).
    Raises:
        ValueError: unknown kind.
        BackendUnavailableError: `auto` found no backend at all.
    """
    if kind not in KINDS:
        raise ValueError(f'backend must be one of {KINDS}, got {kind!r}')
    if kind != 'auto':
        return kind, {}, f'asked for {kind!r}'
    probes = {**DEFAULT_PROBES, **(probes or {})}
    refused = []
    for candidate, backend, options in (('tensorrt', 'tensorrt', {}),
                                        ('onnxruntime-cuda', 'onnxruntime', {'device': 'cuda'}),
                                        ('onnxruntime-cpu', 'onnxruntime', {'device': 'cpu'})):
        probe = probes[candidate]()
        if probe.available:
            reason = probe.reason + (f' (not {"; not ".join(refused)})' if refused else '')
            return backend, options, reason
        refused.append(f'{candidate}: {probe.reason}')
    raise BackendUnavailableError('auto', 'no backend can run here: ' + '; '.join(refused))


def backend_class(kind: str) -> type[Backend]:
    """The Backend class of `kind` (imported on demand)."""
    if kind == 'tensorrt':
        from geovr_ros.inference.backends.tensorrt_backend import TensorRTBackend
        return TensorRTBackend
    if kind == 'onnxruntime':
        from geovr_ros.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend
    if kind == 'torch':
        from geovr_ros.inference.backends.torch_backend import TorchBackend
        return TorchBackend
    raise ValueError(f'no backend class for {kind!r}; one of {KINDS[1:]}')


def model_file_for(kind: str, model_path: str | os.PathLike, graph: str = 'perception'):
    """The file a backend loads: `.pt2` for torch; for TensorRT a given engine file or
    `<dir>/<graph>.engine` when the model directory holds one; else .onnx.

    `model_path` may be a model directory written by `geovr-export onnx` or a file.
    """
    path = os.fspath(model_path)
    if kind == 'torch':
        return find_model_file(path, '.pt2', graph)
    if kind == 'tensorrt' and path.endswith(('.engine', '.plan', '.trt')):
        return find_model_file(path, os.path.splitext(path)[1], graph)
    if kind == 'tensorrt' and os.path.isfile(os.path.join(path, f'{graph}.engine')):
        return find_model_file(path, '.engine', graph)  # written by geovr-export engine --out
    return find_model_file(path, '.onnx', graph)


def create_backend(kind: str = 'auto', model_path: str | os.PathLike = '', *,
                   graph: str = 'perception',
                   probes: dict[str, Callable[[], Probe]] | None = None,
                   **options) -> Backend:
    """Construct and load a backend.

    Args:
        kind: 'auto' | 'tensorrt' | 'onnxruntime' | 'torch'.
        model_path: a model directory (`<dir>/<graph>.onnx`, `<dir>/<graph>.pt2`) or a file
            (.onnx, .pt2, .engine).
        graph: graph name inside a model directory.
        **options: passed to the backend constructor (e.g. intra_op_threads for
            onnxruntime, precision/cache_dir for tensorrt, device for torch/onnxruntime);
            options a backend does not take are dropped with a log line, so one options
            dict serves every backend.
    Raises:
        ModelFileError: naming the missing or unreadable model file.
        BackendUnavailableError: the backend asked for cannot run here.
    """
    chosen, implied, reason = choose_backend(kind, probes)
    try:
        return _create(chosen, implied, reason, model_path, graph, options)
    except BackendUnavailableError as error:
        if kind != 'auto' or chosen != 'tensorrt':
            raise
        # e.g. no engine built for this graph yet: the next backend in the order runs it
        why = error.reason
        LOG.warning('auto: tensorrt cannot load %s (%s); trying the next backend',
                    model_path, why)
        refused = {**(probes or {}), 'tensorrt': lambda: Probe(False, why)}
        chosen, implied, reason = choose_backend(kind, refused)
        return _create(chosen, implied, reason, model_path, graph, options)


def _create(chosen: str, implied: dict, reason: str, model_path, graph: str,
            options: dict) -> Backend:
    path = model_file_for(chosen, model_path, graph)
    cls = backend_class(chosen)
    import inspect
    accepted = set(inspect.signature(cls.__init__).parameters) - {'self'}
    dropped = sorted(set(options) - accepted)
    if dropped:
        LOG.info('%s backend ignores options %s', chosen, dropped)
    kwargs = {**{k: v for k, v in implied.items() if k in accepted},
              **{k: v for k, v in options.items() if k in accepted}}
    backend = cls(**kwargs)
    backend.load(path)
    LOG.info('inference backend: %s on %s for %s (%s)', chosen, backend.device, path, reason)
    backend.selection_reason = reason
    return backend
