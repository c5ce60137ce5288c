"""One small device-memory layer for the TensorRT backend: pycuda where it is installed,
else cuda-python (`cuda.bindings.runtime`, or the older `cuda.cudart`), as NVIDIA's
TensorRT samples moved from the first to the second. Both are imported lazily.

`import_device_memory()` returns a `DeviceMemory`: device facts (count, name, compute
capability), a current-device scope (`activate` / `deactivate`, `release` at the end),
streams, pinned host arrays, device allocations and async copies.
"""
from __future__ import annotations

import ctypes
import dataclasses
from typing import Any

import numpy as np

from geovr_ros.inference.backends.base import BackendUnavailableError


@dataclasses.dataclass(frozen=True)
class GpuIdentity:
    """What an engine is specific to: the GPU model and its compute capability."""

    name: str
    compute_capability: tuple[int, int]


class DeviceMemory:
    """The operations the TensorRT backend needs; `PycudaMemory` and `CudaRuntimeMemory`
    implement them. Device buffers are opaque handles; `address(handle)` is the int
    pointer TensorRT's `set_tensor_address` takes."""

    name = 'none'

    def device_count(self) -> int: raise NotImplementedError
    def gpu_identity(self, device_id: int = 0) -> GpuIdentity: raise NotImplementedError
    def activate(self, device_id: int = 0) -> None: raise NotImplementedError
    def deactivate(self) -> None: raise NotImplementedError
    def release(self) -> None: raise NotImplementedError
    def stream(self) -> Any: raise NotImplementedError
    def stream_handle(self, stream) -> int: raise NotImplementedError
    def synchronize(self, stream) -> None: raise NotImplementedError
    def host_empty(self, count: int, dtype) -> np.ndarray: raise NotImplementedError
    def device_alloc(self, nbytes: int) -> Any: raise NotImplementedError
    def address(self, handle) -> int: raise NotImplementedError
    def free(self, handle) -> None: raise NotImplementedError
    def free_host(self, array: np.ndarray) -> None: raise NotImplementedError
    def htod_async(self, handle, host: np.ndarray, stream) -> None: raise NotImplementedError
    def dtoh_async(self, host: np.ndarray, handle, stream) -> None: raise NotImplementedError


class PycudaMemory(DeviceMemory):
    """pycuda.driver: the device's primary context retained by `activate`, pushed while in
    use (`deactivate` pops it) and detached by `release`."""

    name = 'pycuda'

    def __init__(self, driver) -> None:
        self.cuda = driver
        self._context = None

    def device_count(self) -> int:
        return int(self.cuda.Device.count())

    def gpu_identity(self, device_id: int = 0) -> GpuIdentity:
        device = self.cuda.Device(device_id)
        return GpuIdentity(str(device.name()), tuple(int(c) for c in device.compute_capability()))

    def activate(self, device_id: int = 0) -> None:
        if self._context is None:
            self._context = self.cuda.Device(device_id).retain_primary_context()
        self._context.push()

    def deactivate(self) -> None:
        if self._context is not None:
            self._context.pop()

    def release(self) -> None:
        if self._context is not None:
            self._context.detach()
            self._context = None

    def stream(self):
        return self.cuda.Stream()

    def stream_handle(self, stream) -> int:
        return int(stream.handle)

    def synchronize(self, stream) -> None:
        stream.synchronize()

    def host_empty(self, count: int, dtype) -> np.ndarray:
        return self.cuda.pagelocked_empty(int(count), np.dtype(dtype))

    def device_alloc(self, nbytes: int):
        return self.cuda.mem_alloc(int(nbytes))

    def address(self, handle) -> int:
        return int(handle)

    def free(self, handle) -> None:
        handle.free()

    def free_host(self, array: np.ndarray) -> None:
        pass  # pagelocked arrays free their memory when garbage-collected

    def htod_async(self, handle, host: np.ndarray, stream) -> None:
        self.cuda.memcpy_htod_async(handle, host, stream)

    def dtoh_async(self, host: np.ndarray, handle, stream) -> None:
        self.cuda.memcpy_dtoh_async(host, handle, stream)


class CudaRuntimeMemory(DeviceMemory):
    """cuda-python's runtime API (calls return (error, value...)); the runtime manages the
    primary context, `activate` is cudaSetDevice."""

    name = 'cuda-python'

    def __init__(self, cudart) -> None:
        self.cudart = cudart
        self._host: dict[int, int] = {}  # id(array) -> pinned pointer

    def _call(self, what: str, result):
        result = result if isinstance(result, tuple) else (result,)
        error, values = result[0], result[1:]
        if error != self.cudart.cudaError_t.cudaSuccess:
            raise RuntimeError(f'CUDA runtime {what} failed: {error}')
        return values[0] if len(values) == 1 else values

    def device_count(self) -> int:
        return int(self._call('cudaGetDeviceCount', self.cudart.cudaGetDeviceCount()))

    def gpu_identity(self, device_id: int = 0) -> GpuIdentity:
        props = self._call('cudaGetDeviceProperties', self.cudart.cudaGetDeviceProperties(device_id))
        name = props.name
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).split(b'\0', 1)[0].decode()
        return GpuIdentity(str(name), (int(props.major), int(props.minor)))

    def activate(self, device_id: int = 0) -> None:
        self._call('cudaSetDevice', self.cudart.cudaSetDevice(device_id))

    def deactivate(self) -> None:
        pass

    def release(self) -> None:
        pass

    def stream(self):
        return self._call('cudaStreamCreate', self.cudart.cudaStreamCreate())

    def stream_handle(self, stream) -> int:
        return int(stream)

    def synchronize(self, stream) -> None:
        self._call('cudaStreamSynchronize', self.cudart.cudaStreamSynchronize(stream))

    def host_empty(self, count: int, dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        nbytes = max(int(count), 1) * dtype.itemsize
        pointer = int(self._call('cudaMallocHost', self.cudart.cudaMallocHost(nbytes)))
        buffer = (ctypes.c_byte * nbytes).from_address(pointer)
        array = np.frombuffer(buffer, dtype=dtype, count=int(count))
        self._host[id(array)] = pointer
        return array

    def device_alloc(self, nbytes: int) -> int:
        return int(self._call('cudaMalloc', self.cudart.cudaMalloc(int(nbytes))))

    def address(self, handle) -> int:
        return int(handle)

    def free(self, handle) -> None:
        self._call('cudaFree', self.cudart.cudaFree(handle))

    def free_host(self, array: np.ndarray) -> None:
        pointer = self._host.pop(id(array), None)
        if pointer is not None:
            self._call('cudaFreeHost', self.cudart.cudaFreeHost(pointer))

    def htod_async(self, handle, host: np.ndarray, stream) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._call('cudaMemcpyAsync', self.cudart.cudaMemcpyAsync(
            int(handle), host.ctypes.data, host.nbytes, kind, stream))

    def dtoh_async(self, host: np.ndarray, handle, stream) -> None:
        kind = self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._call('cudaMemcpyAsync', self.cudart.cudaMemcpyAsync(
            host.ctypes.data, int(handle), host.nbytes, kind, stream))


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
        return cudart
    except ImportError:
        pass
    from cuda import cudart  # older cuda-python
    return cudart


def import_device_memory(prefer: str | None = None) -> DeviceMemory:
    """The device-memory layer: pycuda if importable (or `prefer='pycuda'`), else cuda-python.

    Checks that a CUDA driver answers and a GPU exists.
    Raises:
        BackendUnavailableError: neither library, no driver, or no GPU (says which).
    """
    if prefer not in (None, 'pycuda', 'cuda-python'):
        raise ValueError(f"prefer must be None, 'pycuda' or 'cuda-python', got {prefer!r}")
    reasons = []
    order = ['pycuda', 'cuda-python'] if prefer != 'cuda-python' else ['cuda-python', 'pycuda']
    for library in order:
        try:
            if library == 'pycuda':
                import pycuda.driver as driver
                memory: DeviceMemory = PycudaMemory(driver)
            else:
                memory = CudaRuntimeMemory(_import_cudart())
        except ImportError as error:
            reasons.append(f'{library} is not installed ({error})')
            continue
        try:
            if library == 'pycuda':
                memory.cuda.init()
            count = memory.device_count()
        except Exception as error:  # pycuda.driver.Error, RuntimeError without a driver
            raise BackendUnavailableError('tensorrt', f'CUDA driver unavailable through '
                                                      f'{library} ({error})')
        if count < 1:
            raise BackendUnavailableError('tensorrt', 'no CUDA GPU found')
        return memory
    raise BackendUnavailableError('tensorrt', 'no CUDA Python binding: ' + '; '.join(reasons))


def gpu_identity(device_id: int = 0) -> GpuIdentity:
    """Name and compute capability of CUDA device `device_id` (pycuda or cuda-python)."""
    return import_device_memory().gpu_identity(device_id)
