"""ONNX Runtime backend: CUDA execution provider where present, else CPU."""
from __future__ import annotations

import logging
import os

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
    """

    name = 'onnxruntime'

    def __init__(self, device: str = 'auto', intra_op_threads: int = 0,
                 inter_op_threads: int = 0, optimization: str = 'all',
                 thread_spinning: bool = True) -> None:
        super().__init__()
        if device not in ('auto', 'cuda', 'cpu'):
            raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
        if optimization not in _OPT_LEVELS:
            raise ValueError(f'optimization must be one of {_OPT_LEVELS}, got {optimization!r}')
        for label, value in (('intra_op_threads', intra_op_threads),
                             ('inter_op_threads', inter_op_threads)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'{label} must be an int >= 0, got {value!r}')
        self.requested_device = device
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        self.optimization = optimization
        self.thread_spinning = bool(thread_spinning)
        self._session = None

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

    def load(self, path: str | os.PathLike) -> None:
        ort = import_onnxruntime()
        path = check_model_file(path, ('.onnx',))
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
        providers = self._providers(ort)
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidProtobuf
            raise ModelFileError(path, f'onnxruntime cannot load it: {error}') from error
        self._session = session
        self._inputs = [self._spec(a) for a in session.get_inputs()]
        self._outputs = [self._spec(a) for a in session.get_outputs()]
        self.device = session.get_providers()[0]
        self.model_path = path
        LOG.info('onnxruntime loaded %s on %s (intra_op_threads=%d, inter_op_threads=%d, '
                 'thread_spinning=%s, optimization=%s)', path, self.device,
                 self.intra_op_threads, self.inter_op_threads, self.thread_spinning,
                 self.optimization)

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
        return dict(zip(names, self._session.run(names, inputs)))

    def close(self) -> None:
        self._session = None
        super().close()
