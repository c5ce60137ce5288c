"""The one interface every inference backend implements, and its typed errors.

A backend runs a graph and knows nothing about the model: it maps named float32 arrays in
to named arrays out. Preprocessing and decoding live in `geovr_ros.inference.preprocess`
and `geovr_ros.inference.decode`.
"""
from __future__ import annotations

import abc
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class InferenceError(RuntimeError):
    """Base class of the errors raised by `geovr_ros.inference`."""


class ModelFileError(InferenceError):
    """A model file is missing, unreadable or not a valid model. `path` names it."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f'model file {self.path!r}: {reason}')


class BackendUnavailableError(InferenceError):
    """A backend cannot run on this machine (library or device missing). `reason` says why."""

    def __init__(self, backend: str, reason: str):
        self.backend = backend
        self.reason = reason
        super().__init__(f'backend {backend!r} is unavailable: {reason}')


class InputMismatchError(InferenceError, ValueError):
    """`infer` was given inputs whose names, dtypes or shapes do not fit the graph."""


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one graph input or output.

    `shape` holds an int for a fixed dimension and None or a symbolic name (str) for a
    dynamic one, e.g. ('batch', 2, 3, 'height', 'width').
    """

    name: str
    shape: tuple[int | str | None, ...]
    dtype: np.dtype

    def accepts(self, array: np.ndarray) -> bool:
        """True when `array` has this rank, dtype and every fixed dimension."""
        if array.dtype != self.dtype or array.ndim != len(self.shape):
            return False
        return all(not isinstance(d, int) or d == n for d, n in zip(self.shape, array.shape))


def check_model_file(path: str | os.PathLike, suffixes: tuple[str, ...]) -> Path:
    """Return `path` as a Path if it is a readable file with one of `suffixes`.

    Raises:
        ModelFileError: naming the path, when it is missing, a directory, unreadable or of
            another type.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(path, 'does not exist')
    if not path.is_file():
        raise ModelFileError(path, 'is not a file')
    if not os.access(path, os.R_OK):
        raise ModelFileError(path, 'is not readable (permission denied)')
    if suffixes and path.suffix not in suffixes:
        raise ModelFileError(path, f'has suffix {path.suffix!r}, expected one of {suffixes}')
    if path.stat().st_size == 0:
        raise ModelFileError(path, 'is empty')
    return path


class Backend(abc.ABC):
    """A loaded graph that maps named input arrays to named output arrays.

    Life cycle: `load(path)` once, `infer(...)` many times, `close()` at the end (also
    done by leaving a `with` block).
    """

    #: short name used in logs and by `create_backend` ('onnxruntime', 'torch', 'tensorrt').
    name: str = 'backend'

    def __init__(self) -> None:
        self.model_path: Path | None = None
        #: human-readable description of where the graph runs (e.g. 'CPUExecutionProvider').
        self.device: str = 'unknown'
        #: sizes of symbolic dims used by `example_inputs` / `warmup` without arguments.
        self.example_sizes: dict[str, int] = {'batch': 1}
        # Filled by `load` of each implementation, in graph order.
        self._inputs: list[TensorSpec] = []
        self._outputs: list[TensorSpec] = []

    @abc.abstractmethod
    def load(self, path: str | os.PathLike) -> None:
        """Load the graph at `path`. Raises ModelFileError naming `path` if it is bad."""

    @property
    def input_specs(self) -> list[TensorSpec]:
        """Specs of the graph inputs, in graph order."""
        return list(self._inputs)

    @property
    def output_specs(self) -> list[TensorSpec]:
        """Specs of the graph outputs, in graph order."""
        return list(self._outputs)

    def max_batch(self, name: str) -> int | None:
        """The largest first dimension `infer` accepts for input `name`; None: no limit
        (an engine's optimisation profiles set one)."""
        return None

    @abc.abstractmethod
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph on already-validated inputs."""

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the graph.

        Args:
            inputs: one C-contiguous array per graph input name, dtype and rank as in
                `input_specs`.
        Returns:
            One array per output name of `output_specs` (host memory, numpy).
        Raises:
            InputMismatchError: an input is missing, unexpected or of the wrong dtype/shape.
        """
        self._require_loaded()
        expected = {s.name: s for s in self.input_specs}
        missing = sorted(set(expected) - set(inputs))
        extra = sorted(set(inputs) - set(expected))
        if missing or extra:
            raise InputMismatchError(
                f'{self.name}: inputs {sorted(inputs)} do not match the graph inputs '
                f'{sorted(expected)} (missing {missing}, unexpected {extra})')
        for name, array in inputs.items():
            spec = expected[name]
            if not spec.accepts(np.asarray(array)):
                raise InputMismatchError(
                    f'{self.name}: input {name!r} has dtype {np.asarray(array).dtype} and '
                    f'shape {np.shape(array)}, the graph expects {spec.dtype} {spec.shape}')
        return self._run({k: np.ascontiguousarray(v) for k, v in inputs.items()})

    def example_inputs(self, sizes: dict[str, int] | None = None) -> dict[str, np.ndarray]:
        """Deterministic inputs matching `input_specs`.

        `sizes` maps a symbolic dimension name (e.g. 'height') to its value; default
        `self.example_sizes` (batch 1; a caller such as PerceptionPipeline sets height and
        width), and 64 for any other dynamic dimension.
        """
        rng = np.random.default_rng(0)
        sizes = {**self.example_sizes, **(sizes or {})}
        arrays = {}
        for spec in self.input_specs:
            shape = tuple(d if isinstance(d, int) else sizes.get(str(d), 64) for d in spec.shape)
            arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        return arrays

    def warmup(self, n: int = 3, inputs: dict[str, np.ndarray] | None = None) -> float:
        """Run `n` inferences (on `inputs` or `example_inputs()`); return their mean seconds."""
        inputs = inputs if inputs is not None else self.example_inputs()
        start = time.perf_counter()
        for _ in range(n):
            self.infer(inputs)
        return (time.perf_counter() - start) / max(n, 1)

    def close(self) -> None:
        """Release the graph and its buffers. Safe to call twice."""
        self.model_path = None

    def _require_loaded(self) -> None:
        if self.model_path is None:
            raise InferenceError(f'{self.name}: no model loaded, call load(path) first')

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f'{type(self).__name__}(model={self.model_path}, device={self.device!r})'
