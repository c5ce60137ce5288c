"""ONNX Runtime backend: CUDA execution provider where present, else CPU.

Sessions fixed to the input sizes: the exported graphs keep their image sizes free, so the
torch exporter's shape arithmetic (Shape, Gather, Slice, Concat, Unsqueeze feeding Reshape and
Resize; 40 % of the pair head's nodes) runs on every call. For each new set of input sizes the
backend builds a second session with ONNX Runtime's free dimensions fixed to them
(`add_free_dimension_override_by_name`), whose optimiser then folds that arithmetic into
constants (the pair head 584 -> 306 nodes after optimisation). The session of free sizes
stays loaded and answers whatever a fixed one cannot. Opt-in (`fixed_shapes`): right for a
camera's graphs, whose sizes stay put; wrong for a question's, whose length changes per call.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict

import numpy as np

from geovr_ros.inference.backends.base import (
    Backend, BackendUnavailableError, ModelFileError, TensorSpec, check_model_file)

LOG = logging.getLogger(__name__)

_ORT_TYPES = {
    'tensor(float)': np.float32, 'tensor(float16)': np.float16, 'tensor(double)': np.float64,
    'tensor(int64)': np.int64, 'tensor(int32)': np.int32, 'tensor(uint8)': np.uint8,
    'tensor(bool)': np.bool_,
}
_OPT_LEVELS = ('disable', 'basic', 'extended', 'all')


def import_onnxruntime():
    """Import onnxruntime or raise BackendUnavailableError."""
    try:
        import onnxruntime
    except ImportError as error:
        raise BackendUnavailableError('onnxruntime', f'onnxruntime is not installed ({error})')
    return onnxruntime


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers on this machine ([] without onnxruntime)."""
    try:
        return list(import_onnxruntime().get_available_providers())
    except BackendUnavailableError:
        return []


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX file with ONNX Runtime.

    Args:
        device: 'auto' (CUDA if the CUDA execution provider exists, else CPU), 'cuda' or
            'cpu'.
        intra_op_threads: threads inside one operator (0 = ONNX Runtime's default, one per
            physical core).
        inter_op_threads: threads across operators (0 = default).
        optimization: graph optimisation level, one of 'disable', 'basic', 'extended', 'all'.
        thread_spinning: let idle intra-op threads busy-wait for the next operator (ONNX
            Runtime's default). Faster alone on a machine; where the threads share few cores
            with other work (a ROS node's executor and DDS threads), False gives those cores
            back between operators.
        spin_after_run: with thread_spinning, let the threads spin on after a run returns
            (ONNX Runtime's default). False stops them when it returns
            (`session.force_spinning_stop`): for graphs that run in turn, whose threads
            would otherwise spin against the next graph's (a split model's frame encoder and
            pair head, whose camera frame this makes 1.18-1.29x faster than no spinning at
            all: docs/model.md), and for frames that come tens of milliseconds apart, between
            which spinning only burns the cores.
        fixed_shapes: run each set of input sizes on a session built for those sizes (module
            docstring; PerceptionPipeline turns it on); False (default) runs everything on the
            one session of free sizes.
        max_fixed_sessions: the most sessions of fixed sizes kept (least recently used
            dropped), each with its own copy of the weights.
    """

    name = 'onnxruntime'

    def __init__(self, device: str = 'auto', intra_op_threads: int = 0,
                 inter_op_threads: int = 0, optimization: str = 'all',
                 thread_spinning: bool = True, fixed_shapes: bool = False,
                 max_fixed_sessions: int = 4, spin_after_run: bool = True) -> None:
        super().__init__()
        if device not in ('auto', 'cuda', 'cpu'):
            raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
        if optimization not in _OPT_LEVELS:
            raise ValueError(f'optimization must be one of {_OPT_LEVELS}, got {optimization!r}')
        for label, value in (('intra_op_threads', intra_op_threads),
                             ('inter_op_threads', inter_op_threads)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{label} must be an int >= 0, got {value!r}')
        if not isinstance(max_fixed_sessions, int) or max_fixed_sessions < 1:
            raise ValueError(f'max_fixed_sessions must be an int >= 1, got {max_fixed_sessions!r}')
        self.requested_device = device
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.optimization = optimization
        self.thread_spinning = bool(thread_spinning)
        self.spin_after_run = bool(spin_after_run)
        self.fixed_shapes = bool(fixed_shapes)
        self.max_fixed_sessions = max_fixed_sessions
        self._session = None
        self._free_dims: dict[str, tuple[str | None, ...]] = {}   # input -> each axis's dimension name (None: fixed)
        self._fixed_sessions: OrderedDict[tuple[tuple[str, int], ...], object] = OrderedDict()
        self._fixed_lock = threading.Lock()

    def _providers(self, ort) -> list[str]:
        available = ort.get_available_providers()
        has_cuda = 'CUDAExecutionProvider' in available
        if self.requested_device == 'cuda' and not has_cuda:
            raise BackendUnavailableError(
                'onnxruntime', f'device=cuda asked for but CUDAExecutionProvider is not among '
                f'the available providers {available} (install onnxruntime-gpu)')
        if has_cuda and self.requested_device != 'cpu':
            return ['CUDAExecutionProvider', 'CPUExecutionProvider']
        return ['CPUExecutionProvider']

    def _session_options(self, ort, fixed_sizes: dict[str, int] | None = None):
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = self.inter_op_threads
        options.graph_optimization_level = {
            'disable': ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            'basic': ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            'extended': ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            'all': ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        spinning = '1' if self.thread_spinning else '0'
        options.add_session_config_entry('session.intra_op.allow_spinning', spinning)
        options.add_session_config_entry('session.inter_op.allow_spinning', spinning)
        if self.thread_spinning and not self.spin_after_run:
            options.add_session_config_entry('session.force_spinning_stop', '1')
        for name, size in (fixed_sizes or {}).items():
            options.add_free_dimension_override_by_name(name, size)
        return options

    def load(self, path: str | os.PathLike) -> None:
        ort = import_onnxruntime()
        path = check_model_file(path, ('.onnx',))
        providers = self._providers(ort)
        try:
            session = ort.InferenceSession(str(path), self._session_options(ort), providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidProtobuf
            raise ModelFileError(path, f'onnxruntime cannot load it: {error}') from error
        self._session = session
        self._inputs = [self._spec(a) for a in session.get_inputs()]
        self._outputs = [self._spec(a) for a in session.get_outputs()]
        self._free_dims = {a.name: tuple(d if isinstance(d, str) and d else None for d in a.shape)
                           for a in session.get_inputs()}
        with self._fixed_lock:
            self._fixed_sessions.clear()
        self.device = session.get_providers()[0]
        self.model_path = path
        LOG.info('onnxruntime loaded %s on %s (intra_op_threads=%d, inter_op_threads=%d, '
                 'thread_spinning=%s, spin_after_run=%s, optimization=%s, fixed_shapes=%s)', path,
                 self.device, self.intra_op_threads, self.inter_op_threads, self.thread_spinning,
                 self.spin_after_run, self.optimization, self.fixed_shapes)

    def fixed_sizes(self, inputs: dict[str, np.ndarray]) -> dict[str, int]:
        """{dimension name: size} of the graph's free dimensions in `inputs`; {} when the graph
        has none or the inputs give one name two sizes (the session of free sizes then says
        what is wrong)."""
        sizes: dict[str, int] = {}
        for name, array in inputs.items():
            for dim, size in zip(self._free_dims.get(name, ()), np.shape(array)):
                if dim is not None and sizes.setdefault(dim, int(size)) != size:
                    return {}
        return sizes

    def _session_for(self, inputs: dict[str, np.ndarray]):
        """The session that runs `inputs`: the one fixed to their sizes (built on first use),
        or the session of free sizes."""
        sizes = self.fixed_sizes(inputs) if self.fixed_shapes else {}
        if not sizes:
            return self._session
        key = tuple(sorted(sizes.items()))
        with self._fixed_lock:
            session = self._fixed_sessions.get(key)
            if session is None:
                session = self._build_fixed_session(sizes)
                self._fixed_sessions[key] = session
                while len(self._fixed_sessions) > self.max_fixed_sessions:
                    self._fixed_sessions.popitem(last=False)
            else:
                self._fixed_sessions.move_to_end(key)
        return session

    def _build_fixed_session(self, sizes: dict[str, int]):
        ort = import_onnxruntime()
        start = time.perf_counter()
        try:
            session = ort.InferenceSession(str(self.model_path), self._session_options(ort, sizes),
                                           providers=self._session.get_providers())
        except Exception as error:  # noqa: BLE001 - onnxruntime's own error types; the free session still runs
            LOG.warning('onnxruntime: no session fixed to %s for %s (%s); the session of free sizes '
                        'runs them', sizes, self.model_path, error)
            return self._session
        LOG.info('onnxruntime: a session fixed to %s for %s in %.2f s', sizes, self.model_path.name,
                 time.perf_counter() - start)
        return session

    @staticmethod
    def _spec(arg) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)
        return TensorSpec(arg.name, shape, np.dtype(_ORT_TYPES.get(arg.type, np.float32)))

    @property
    def session(self):
        """The underlying onnxruntime.InferenceSession (None before load)."""
        return self._session

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [s.name for s in self._outputs]
        return dict(zip(names, self._session_for(inputs).run(names, inputs)))

    def close(self) -> None:
        self._session = None
        with self._fixed_lock:
            self._fixed_sessions.clear()
        super().close()
