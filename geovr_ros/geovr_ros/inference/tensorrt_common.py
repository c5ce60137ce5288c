"""What the TensorRT modules share: the lazy `tensorrt` import, its major version, the
precisions, the profile type and the typed errors (no TensorRT needed to import this).

Modules: `tensorrt_checks` (static ONNX checks), `tensorrt_cache` (engine cache keys,
paths and the metadata beside an engine), `cuda_memory` (device memory: pycuda or
cuda-python), `backends.tensorrt_backend` (load + infer). Engines are built by
`geovr_training.export.tensorrt_builder` (`geovr-export engine`); the runtime only loads.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from geovr_ros.inference.backends.base import BackendUnavailableError, InferenceError

#: 'fp32': fp32 kernels; 'fp16': TensorRT 10's weakly typed FP16 builder flag (removed in
#: TensorRT 11); 'onnx': a strongly typed network, precision as typed in the ONNX graph (an
#: fp16 ONNX gives an fp16 engine; the only mode of TensorRT 11); 'auto': 'fp16' on
#: TensorRT 10, 'onnx' on 11 (`resolve_precision`).
PRECISIONS = ('fp32', 'fp16', 'onnx')
PRECISION_CHOICES = PRECISIONS + ('auto',)

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


class PrecisionUnsupportedError(InferenceError, ValueError):
    """The precision asked for does not exist in this TensorRT (e.g. 'fp16' on 11.x)."""

    def __init__(self, precision: str, version: str, reason: str):
        self.precision = precision
        self.version = version
        super().__init__(f'precision {precision!r} is not available with TensorRT {version}: '
                         f'{reason}')


def import_tensorrt():
    """Import tensorrt (10.x or 11.x) or raise BackendUnavailableError saying why."""
    try:
        import tensorrt as trt
    except ImportError as error:
        raise BackendUnavailableError('tensorrt', 'TensorRT is not installed on this machine '
                                                  f'({error})')
    major = tensorrt_major(trt)
    if major < 10:
        raise BackendUnavailableError('tensorrt', f'TensorRT {trt.__version__} found, this '
                                                  'backend needs TensorRT >= 10')
    return trt


def tensorrt_major(trt) -> int:
    """Major version of a tensorrt module ('10.3.0' -> 10)."""
    try:
        return int(str(trt.__version__).split('.')[0])
    except (AttributeError, ValueError):
        raise BackendUnavailableError('tensorrt', f'cannot read the TensorRT version from '
                                                  f'{getattr(trt, "__version__", None)!r}')


FP16_ON_11 = ('TensorRT 11 removed weak typing (BuilderFlag.FP16, platform_has_fast_fp16): '
              'every network is strongly typed and takes its precision from the ONNX graph. '
              'Convert the ONNX to mixed fp16 first (NVIDIA ModelOpt AutoCast: python -m '
              'modelopt.onnx.autocast --onnx_path X.onnx --output_path X_fp16.onnx) and '
              'build that file with --precision onnx (or auto)')


def resolve_precision(trt, precision: str) -> str:
    """The concrete precision ('fp32' | 'fp16' | 'onnx') `precision` means with `trt`.

    'auto' is 'fp16' on TensorRT 10 and 'onnx' (strongly typed) on TensorRT >= 11.
    Raises:
        ValueError: unknown precision.
        PrecisionUnsupportedError: 'fp16' on TensorRT >= 11 (the message says what to do).
    """
    if precision not in PRECISION_CHOICES:
        raise ValueError(f'precision must be one of {PRECISION_CHOICES}, got {precision!r}')
    major = tensorrt_major(trt)
    if precision == 'auto':
        return 'fp16' if major < 11 else 'onnx'
    if precision == 'fp16' and major >= 11:
        raise PrecisionUnsupportedError(precision, trt.__version__, FP16_ON_11)
    return precision


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


def profile_index(profiles: Sequence[Profile], shapes: Mapping[str, Sequence[int]]) -> int | None:
    """Index of the first profile whose [min, max] holds every input shape, else None.

    Args:
        profiles: each {input name: (min, opt, max) shapes}.
        shapes: {input name: shape} of one inference.
    """
    for index, profile in enumerate(profiles):
        if all(name in profile and len(profile[name][0]) == len(shape)
               and all(int(a) <= int(s) <= int(b)
                       for a, s, b in zip(profile[name][0], shape, profile[name][2]))
               for name, shape in shapes.items()):
            return index
    return None
