"""Private input checks shared by the geometry modules (not public API)."""

from __future__ import annotations

import numpy as np

from .errors import ShapeError


def as_float_array(value, name: str, trailing: tuple[int, ...] = (), *, finite: bool = False) -> np.ndarray:
    """Return `value` as float64 whose last dimensions equal `trailing`, else raise ShapeError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f'{name} must be numeric, got {value!r}') from exc
    if trailing and (array.ndim < len(trailing) or array.shape[array.ndim - len(trailing):] != trailing):
        raise ShapeError(f'{name} must have shape (..., {", ".join(map(str, trailing))}), got {array.shape}')
    if finite and not np.all(np.isfinite(array)):
        raise ShapeError(f'{name} must be finite, got {array!r}')
    return array


def as_camera_matrix(K, name: str = 'K') -> np.ndarray:
    """K as float64 (..., 3, 3), finite."""
    return as_float_array(K, name, (3, 3), finite=True)


def as_size(size, name: str = 'image_size') -> tuple[int, int]:
    """(width, height) as two positive ints."""
    try:
        width, height = size
    except (TypeError, ValueError) as exc:
        raise ShapeError(f'{name} must be (width, height), got {size!r}') from exc
    return positive_int(width, f'{name} width'), positive_int(height, f'{name} height')


def positive_int(value, name: str) -> int:
    """`value` as a positive int (accepts integral floats and numpy ints)."""
    try:
        as_int = int(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ShapeError(f'{name} must be a positive integer, got {value!r}') from exc
    if as_int != value or as_int <= 0:
        raise ShapeError(f'{name} must be a positive integer, got {value!r}')
    return as_int
