"""The device-memory layer picks pycuda where installed, else cuda-python (the new
`cuda.bindings.runtime` or the older `cuda.cudart`), and says why when neither works.
Stand-in modules replace the bindings; the cuda-python path copies real host memory
through ctypes pointers, so its pointer arithmetic is exercised. No GPU."""
from __future__ import annotations

import ctypes
import enum
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from geovr_ros.inference import BackendUnavailableError
from geovr_ros.inference.cuda_memory import (
    CudaRuntimeMemory, PycudaMemory, gpu_identity, import_device_memory)


def _fake_pycuda(count=1):
    driver = types.ModuleType('pycuda.driver')
    driver.calls = []

    class Context:
        def push(self):
            driver.calls.append('push')

        def pop(self):
            driver.calls.append('pop')

        def detach(self):
            driver.calls.append('detach')

    class Device:
        def __init__(self, index):
            self.index = index

        @staticmethod
        def count():
            return count

        def name(self):
            return 'Orin (pycuda)'

        def compute_capability(self):
            return (8, 7)

        def retain_primary_context(self):
            driver.calls.append('retain')
            return Context()

    driver.init = lambda: driver.calls.append('init')
    driver.Device = Device
    package = types.ModuleType('pycuda')
    package.driver = driver
    return package, driver


def _fake_cudart(count=1):
    """cuda-python's runtime surface: calls return (error, value); real host memory."""
    runtime = types.ModuleType('runtime')

    class cudaError_t(enum.IntEnum):
        cudaSuccess = 0
        cudaErrorNoDevice = 100

    class cudaMemcpyKind(enum.IntEnum):
        cudaMemcpyHostToDevice = 1
        cudaMemcpyDeviceToHost = 2

    ok = cudaError_t.cudaSuccess
    runtime.cudaError_t = cudaError_t
    runtime.cudaMemcpyKind = cudaMemcpyKind
    runtime.keep = {}
    runtime.calls = []

    def malloc(nbytes):
        buffer = ctypes.create_string_buffer(nbytes)
        runtime.keep[ctypes.addressof(buffer)] = buffer
        return ok, ctypes.addressof(buffer)

    def free(pointer):
        runtime.calls.append(('free', int(pointer)))
        del runtime.keep[int(pointer)]
        return (ok,)

    def memcpy(dst, src, nbytes, kind, stream):
        runtime.calls.append(('memcpy', kind))
        ctypes.memmove(dst, src, nbytes)
        return (ok,)

    runtime.cudaGetDeviceCount = lambda: ((ok, count) if count >= 0
                                          else (cudaError_t.cudaErrorNoDevice, 0))
    runtime.cudaGetDeviceProperties = lambda d: (ok, SimpleNamespace(
        name=b'NVIDIA H200\0\0junk', major=9, minor=0))
    runtime.cudaSetDevice = lambda d: (ok,)
    runtime.cudaStreamCreate = lambda: (ok, 5)
    runtime.cudaStreamSynchronize = lambda s: (ok,)
    runtime.cudaMalloc = malloc
    runtime.cudaMallocHost = malloc
    runtime.cudaFree = free
    runtime.cudaFreeHost = free
    runtime.cudaMemcpyAsync = memcpy
    return runtime


def _install(monkeypatch, pycuda=None, bindings=None, cudart=None):
    for name in ('pycuda', 'pycuda.driver', 'cuda', 'cuda.bindings', 'cuda.bindings.runtime',
                 'cuda.cudart'):
        monkeypatch.setitem(sys.modules, name, None)  # None: `import` raises ImportError
    if pycuda is not None:
        monkeypatch.setitem(sys.modules, 'pycuda', pycuda[0])
        monkeypatch.setitem(sys.modules, 'pycuda.driver', pycuda[1])
    cuda = types.ModuleType('cuda')
    if bindings is not None:
        package = types.ModuleType('cuda.bindings')
        package.runtime = bindings
        cuda.bindings = package
        monkeypatch.setitem(sys.modules, 'cuda.bindings', package)
        monkeypatch.setitem(sys.modules, 'cuda.bindings.runtime', bindings)
    if cudart is not None:
        cuda.cudart = cudart
        monkeypatch.setitem(sys.modules, 'cuda.cudart', cudart)
    if bindings is not None or cudart is not None:
        monkeypatch.setitem(sys.modules, 'cuda', cuda)


def test_pycuda_is_preferred_when_installed(monkeypatch):
    fake = _fake_pycuda()
    _install(monkeypatch, pycuda=fake, bindings=_fake_cudart())
    memory = import_device_memory()
    assert isinstance(memory, PycudaMemory) and memory.name == 'pycuda'
    assert gpu_identity().name == 'Orin (pycuda)'
    memory.activate(0)
    memory.deactivate()
    memory.activate(0)  # the retained context is reused
    memory.deactivate()
    memory.release()
    assert [c for c in fake[1].calls if c != 'init'] == ['retain', 'push', 'pop', 'push', 'pop',
                                                         'detach']
    assert isinstance(import_device_memory(prefer='cuda-python'), CudaRuntimeMemory)


@pytest.mark.parametrize('where', ['cuda.bindings.runtime', 'cuda.cudart'])
def test_cuda_python_is_used_without_pycuda(monkeypatch, where):
    runtime = _fake_cudart()
    _install(monkeypatch, **({'bindings': runtime} if where == 'cuda.bindings.runtime'
                             else {'cudart': runtime}))
    memory = import_device_memory()
    assert isinstance(memory, CudaRuntimeMemory) and memory.name == 'cuda-python'
    assert memory.gpu_identity(0).name == 'NVIDIA H200'
    assert memory.gpu_identity(0).compute_capability == (9, 0)
    stream = memory.stream()
    host = memory.host_empty(6, np.float16)
    host[:] = np.arange(6)
    device = memory.device_alloc(host.nbytes)
    memory.htod_async(device, host[:4], stream)
    back = memory.host_empty(6, np.float16)
    back[:] = -1
    memory.dtoh_async(back[:4], device, stream)
    memory.synchronize(stream)
    np.testing.assert_array_equal(back, [0, 1, 2, 3, -1, -1])
    memory.free(device)
    memory.free_host(host)
    memory.free_host(back)
    assert [c[0] for c in runtime.calls].count('free') == 3 and not runtime.keep


def test_neither_binding_names_both(monkeypatch):
    _install(monkeypatch)
    with pytest.raises(BackendUnavailableError) as info:
        import_device_memory()
    assert 'pycuda is not installed' in info.value.reason
    assert 'cuda-python is not installed' in info.value.reason


def test_no_driver_and_no_gpu_are_told_apart(monkeypatch):
    _install(monkeypatch, bindings=_fake_cudart(count=-1))
    with pytest.raises(BackendUnavailableError, match='CUDA driver unavailable through cuda-python'):
        import_device_memory()
    _install(monkeypatch, pycuda=_fake_pycuda(count=0))
    with pytest.raises(BackendUnavailableError, match='no CUDA GPU'):
        import_device_memory()


def test_a_failing_runtime_call_raises_naming_it(monkeypatch):
    runtime = _fake_cudart()
    runtime.cudaMalloc = lambda n: (runtime.cudaError_t.cudaErrorNoDevice, 0)
    _install(monkeypatch, bindings=runtime)
    with pytest.raises(RuntimeError, match='cudaMalloc'):
        import_device_memory().device_alloc(16)
