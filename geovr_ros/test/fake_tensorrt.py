"""Stand-ins for the `tensorrt` module (a 10.x and an 11.x API surface) and for the CUDA
device-memory layer, small enough to read: the TensorRT code paths that differ by version,
profile selection, buffer sizing and clean-up run against them without TensorRT or a GPU.

What differs between the fakes is what NVIDIA's migration guide says differs: TensorRT 11
has no `BuilderFlag.FP16` and no `Builder.platform_has_fast_fp16` (strong typing only).
A plan is b'FAKEPLAN' + JSON of the profiles; `Runtime.deserialize_cuda_engine` turns it
into a `FakeEngine` whose one output `y` is 2 * its first input.
"""
from __future__ import annotations

import json
import sys
import types
from types import SimpleNamespace

import numpy as np

from geovr_ros.inference.cuda_memory import DeviceMemory, GpuIdentity

PLAN_MAGIC = b'FAKEPLAN'
NPTYPES = {'FLOAT': np.float32, 'HALF': np.float16, 'INT64': np.int64, 'INT32': np.int32}


# ------------------------------------------------------------------------ device memory
class FakeMemory(DeviceMemory):
    """numpy 'device' buffers keyed by fake addresses; counts context activations."""

    name = 'fake-cuda'

    def __init__(self, gpu: GpuIdentity = GpuIdentity('Fake Orin', (8, 7))) -> None:
        self.gpu = gpu
        self.buffers: dict[int, np.ndarray] = {}
        self._next = 0x10000
        self.depth = 0          # activate() - deactivate()
        self.retained = False   # primary context held (activate) until release()
        self.releases = 0
        self.freed: list[int] = []

    def device_count(self) -> int:
        return 1

    def gpu_identity(self, device_id: int = 0) -> GpuIdentity:
        return self.gpu

    def activate(self, device_id: int = 0) -> None:
        self.depth += 1
        self.retained = True

    def deactivate(self) -> None:
        self.depth -= 1

    def release(self) -> None:
        self.retained = False
        self.releases += 1

    def stream(self):
        return SimpleNamespace(handle=77)

    def stream_handle(self, stream) -> int:
        return stream.handle

    def synchronize(self, stream) -> None:
        pass

    def host_empty(self, count: int, dtype) -> np.ndarray:
        return np.zeros(int(count), np.dtype(dtype))

    def device_alloc(self, nbytes: int) -> int:
        address = self._next
        self._next += int(nbytes) + 4096
        self.buffers[address] = np.zeros(int(nbytes), np.uint8)
        return address

    def address(self, handle) -> int:
        return int(handle)

    def free(self, handle) -> None:
        del self.buffers[int(handle)]
        self.freed.append(int(handle))

    def free_host(self, array) -> None:
        pass

    def htod_async(self, handle, host, stream) -> None:
        raw = np.ascontiguousarray(host).view(np.uint8).ravel()
        self.buffers[int(handle)][:raw.size] = raw

    def dtoh_async(self, host, handle, stream) -> None:
        raw = host.view(np.uint8)
        raw[:] = self.buffers[int(handle)][:raw.size]

    def read(self, address: int, shape, dtype) -> np.ndarray:
        count = int(np.prod(shape))
        return self.buffers[address][:count * np.dtype(dtype).itemsize].view(dtype).reshape(shape)

    def write(self, address: int, array: np.ndarray) -> None:
        raw = np.ascontiguousarray(array).view(np.uint8).ravel()
        self.buffers[address][:raw.size] = raw


# ------------------------------------------------------------------------ engine / runtime
def fake_plan(profiles: list[dict], dtype: str = 'FLOAT') -> bytes:
    """A plan for `FakeEngine`: profiles [{input: (min, opt, max)}], the input dtype."""
    plain = [{name: [list(s) for s in shapes] for name, shapes in p.items()} for p in profiles]
    return PLAN_MAGIC + json.dumps({'profiles': plain, 'dtype': dtype}).encode()


class FakeEngine:
    """Inputs from the profiles (dims that vary across any profile are -1); output 'y'."""

    def __init__(self, trt, profiles: list[dict], dtype: str = 'FLOAT', memory=None) -> None:
        self.trt = trt
        self.profiles = [{n: tuple(tuple(int(d) for d in s) for s in shapes)
                          for n, shapes in p.items()} for p in profiles]
        self.inputs = list(self.profiles[0])
        self.dtype = dtype
        self.memory = memory
        self.num_io_tensors = len(self.inputs) + 1
        self.num_optimization_profiles = len(self.profiles)
        self.contexts: list[FakeContext] = []
        self.fail_context = False

    def get_tensor_name(self, index: int) -> str:
        return (self.inputs + ['y'])[index]

    def get_tensor_mode(self, name: str):
        modes = self.trt.TensorIOMode
        return modes.INPUT if name in self.inputs else modes.OUTPUT

    def get_tensor_dtype(self, name: str) -> str:
        return self.dtype

    def get_tensor_shape(self, name: str) -> tuple:
        source = self.inputs[0] if name == 'y' else name
        shapes = [s for p in self.profiles for s in (p[source][0], p[source][2])]
        return tuple(d if all(s[i] == d for s in shapes) else -1
                     for i, d in enumerate(shapes[0]))

    def get_tensor_profile_shape(self, name: str, index: int):
        return [list(s) for s in self.profiles[index][name]]

    def create_execution_context(self):
        if self.fail_context:
            return None
        context = FakeContext(self)
        self.contexts.append(context)
        return context


class FakeContext:
    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.profile = 0
        self.profile_calls: list[int] = []
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.executed_shapes: list[tuple] = []

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        if not 0 <= index < self.engine.num_optimization_profiles:
            return False
        self.profile = index
        self.profile_calls.append(index)
        self.shapes = {}
        return True

    def set_input_shape(self, name: str, shape) -> bool:
        low, _, high = self.engine.profiles[self.profile][name]
        shape = tuple(int(d) for d in shape)
        if len(shape) != len(low) or not all(a <= s <= b for a, s, b in zip(low, shape, high)):
            return False
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        source = self.engine.inputs[0] if name == 'y' else name
        return self.shapes.get(source, self.engine.get_tensor_shape(source))

    def set_tensor_address(self, name: str, address: int) -> None:
        self.addresses[name] = int(address)

    def execute_async_v3(self, stream: int) -> bool:
        memory = self.engine.memory
        name = self.engine.inputs[0]
        dtype = NPTYPES[self.engine.dtype]
        x = memory.read(self.addresses[name], self.shapes[name], dtype)
        memory.write(self.addresses['y'], (x * 2).astype(dtype))
        self.executed_shapes.append(self.shapes[name])
        return True


# ------------------------------------------------------------------------ builder side
class FakeTimingCache:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def serialize(self) -> bytes:
        return b'TIMING-ok'


class FakeConfig:
    def __init__(self, trt) -> None:
        self.trt = trt
        self.flags: list = []
        self.pools: dict = {}
        self.profiles: list = []
        self.timing_cache = None

    def set_memory_pool_limit(self, pool, size: int) -> None:
        self.pools[pool] = size

    def set_flag(self, flag) -> None:
        self.flags.append(flag)

    def add_optimization_profile(self, profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, data: bytes) -> FakeTimingCache:
        return FakeTimingCache(data)

    def set_timing_cache(self, cache: FakeTimingCache, ignore_mismatch: bool) -> bool:
        if cache.data and not cache.data.startswith(b'TIMING-'):  # another GPU's cache
            return False
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> FakeTimingCache:
        return self.timing_cache or FakeTimingCache(b'')


class FakeProfile:
    def __init__(self) -> None:
        self.shapes: dict = {}

    def set_shape(self, name, low, opt, high) -> None:
        self.shapes[name] = (tuple(low), tuple(opt), tuple(high))


class FakeNetwork:
    def __init__(self, flags: int) -> None:
        self.flags = flags


class FakeParser:
    def __init__(self, network, logger) -> None:
        self.errors: list[str] = []

    def parse_from_file(self, path: str) -> bool:
        if b'BAD' in open(path, 'rb').read():
            self.errors = ['node 3 (Unique): no importer', 'parse failed']
            return False
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]


def make_fake_tensorrt(version: str = '10.8.0', memory: FakeMemory | None = None,
                       fast_fp16: bool = True) -> types.ModuleType:
    """A `tensorrt` module stand-in with the API surface of `version` (10.x or 11.x).

    `trt.built` lists (network, config) of each build; `trt.memory` is the FakeMemory the
    engines execute against.
    """
    major = int(version.split('.')[0])
    trt = types.ModuleType('tensorrt')
    trt.__version__ = version
    trt.memory = memory or FakeMemory()
    trt.built = []

    class Logger:
        WARNING, VERBOSE = 'WARNING', 'VERBOSE'

        def __init__(self, level=None) -> None:
            self.level = level

    trt.Logger = Logger
    trt.TensorIOMode = SimpleNamespace(INPUT='INPUT', OUTPUT='OUTPUT')
    trt.nptype = lambda dtype: NPTYPES[dtype]
    trt.MemoryPoolType = SimpleNamespace(WORKSPACE='WORKSPACE')
    trt.NetworkDefinitionCreationFlag = SimpleNamespace(STRONGLY_TYPED=5)
    flags = {'REFIT': 'REFIT', 'STRIP_PLAN': 'STRIP_PLAN'}
    if major < 11:
        flags.update(FP16='FP16', INT8='INT8', BF16='BF16')
    trt.BuilderFlag = SimpleNamespace(**flags)

    class Runtime:
        def __init__(self, logger) -> None:
            self.logger = logger

        def deserialize_cuda_engine(self, plan: bytes):
            plan = bytes(plan)
            if not plan.startswith(PLAN_MAGIC):
                return None
            spec = json.loads(plan[len(PLAN_MAGIC):])
            return FakeEngine(trt, spec['profiles'], spec['dtype'], trt.memory)

    class Builder:
        def __init__(self, logger) -> None:
            self.logger = logger

        def create_network(self, flags: int = 0) -> FakeNetwork:
            return FakeNetwork(flags)

        def create_builder_config(self) -> FakeConfig:
            return FakeConfig(trt)

        def create_optimization_profile(self) -> FakeProfile:
            return FakeProfile()

        def build_serialized_network(self, network, config) -> bytes:
            trt.built.append((network, config))
            return fake_plan([p.shapes for p in config.profiles])

    if major < 11:
        Builder.platform_has_fast_fp16 = fast_fp16  # deprecated in 10.5, removed in 11
    trt.Runtime = Runtime
    trt.Builder = Builder
    trt.OnnxParser = FakeParser
    return trt


def install(monkeypatch, trt: types.ModuleType) -> types.ModuleType:
    """Make `import tensorrt` return `trt` for one test."""
    monkeypatch.setitem(sys.modules, 'tensorrt', trt)
    return trt
