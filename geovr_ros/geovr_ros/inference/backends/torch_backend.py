"""PyTorch backend: runs a `torch.export` program (.pt2) written by `geovr-export onnx`.

torch is imported inside the methods, so importing this module needs no torch. The .pt2
carries an extra file `geovr_io.json` with the input/output names, shapes and dtypes
(written by the exporter), so this backend needs no model code.
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np

from geovr_ros.inference.backends.base import (
    Backend, BackendUnavailableError, ModelFileError, TensorSpec, check_model_file)

LOG = logging.getLogger(__name__)

IO_EXTRA_FILE = 'geovr_io.json'


def import_torch():
    """Import torch or raise BackendUnavailableError."""
    try:
        import torch
    except ImportError as error:
        raise BackendUnavailableError('torch', f'PyTorch is not installed ({error})')
    return torch


class TorchBackend(Backend):
    """Runs a saved `torch.export` ExportedProgram.

    Args:
        device: 'auto' (CUDA when available), 'cuda' or 'cpu'.
        fp16: run under CUDA autocast to float16 (CUDA only; outputs are cast back to
            float32).
        threads: torch intra-op threads on CPU (0 = leave torch's default).
    """

    name = 'torch'

    def __init__(self, device: str = 'auto', fp16: bool = False, threads: int = 0) -> None:
        super().__init__()
        if device not in ('auto', 'cuda', 'cpu'):
            raise ValueError(f"device must be 'auto', 'cuda' or 'cpu', got {device!r}")
        if not isinstance(threads, int) or threads < 0:
            raise ValueError(f'threads must be an int >= 0, got {threads!r}')
        self.requested_device = device
        self.fp16 = fp16
        self.threads = threads
        self._module = None
        self._torch_device = None
        #: the export metadata stored next to the program (same keys as the ONNX metadata).
        self.metadata: dict[str, str] = {}

    def load(self, path: str | os.PathLike) -> None:
        torch = import_torch()
        path = check_model_file(path, ('.pt2',))
        if self.requested_device == 'cuda' and not torch.cuda.is_available():
            raise BackendUnavailableError('torch', 'device=cuda asked for but '
                                          'torch.cuda.is_available() is False')
        use_cuda = self.requested_device != 'cpu' and torch.cuda.is_available()
        if self.fp16 and not use_cuda:
            raise BackendUnavailableError('torch', 'fp16 needs CUDA, which is not available')
        extra = {IO_EXTRA_FILE: ''}
        try:
            program = torch.export.load(str(path), extra_files=extra)
        except Exception as error:  # torch raises zipfile/RuntimeError/KeyError variants
            raise ModelFileError(path, f'torch.export.load cannot read it: {error}') from error
        try:
            io = json.loads(extra[IO_EXTRA_FILE])
            self._inputs = [TensorSpec(t['name'], tuple(t['shape']), np.dtype(t['dtype']))
                            for t in io['inputs']]
            self._outputs = [TensorSpec(t['name'], tuple(t['shape']), np.dtype(t['dtype']))
                             for t in io['outputs']]
            self.metadata = dict(io.get('metadata', {}))
        except (ValueError, KeyError, TypeError) as error:
            raise ModelFileError(path, f'its {IO_EXTRA_FILE} (names of inputs and outputs, '
                                       f'written by geovr-export) is missing or invalid: '
                                       f'{error!r}') from error
        if self.threads:
            torch.set_num_threads(self.threads)
        self._torch_device = torch.device('cuda' if use_cuda else 'cpu')
        self._module = program.module().to(self._torch_device)
        self.device = f'torch:{self._torch_device}' + (':fp16' if self.fp16 else '')
        self.model_path = path
        LOG.info('torch loaded %s on %s', path, self.device)

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = import_torch()
        args = [torch.from_numpy(inputs[s.name]).to(self._torch_device) for s in self._inputs]
        with torch.inference_mode():
            if self.fp16:
                with torch.autocast('cuda', dtype=torch.float16):
                    outputs = self._module(*args)
            else:
                outputs = self._module(*args)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        return {spec.name: out.detach().float().cpu().numpy()
                for spec, out in zip(self._outputs, outputs)}

    def max_memory_allocated(self) -> int | None:
        """Peak CUDA bytes allocated by torch on this device (None on CPU)."""
        if self._torch_device is None or self._torch_device.type != 'cuda':
            return None
        return int(import_torch().cuda.max_memory_allocated(self._torch_device))

    def close(self) -> None:
        self._module = None
        super().close()
