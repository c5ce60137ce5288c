"""ROS `sensor_msgs/Image` encodings to numpy arrays and back, without ROS.

`image_to_array` returns a view on the message buffer when it can (rows unpadded or padded,
native byte order); the view is read-only when the buffer is (e.g. `bytes`): copy it before
writing. Single-channel images are (H, W), others (H, W, C). Depth conventions: ``16UC1`` is
millimetres with 0 = no measurement; ``32FC1`` is metres with NaN (or <= 0, inf) = no measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ImageEncodingError

__all__ = [
    'SUPPORTED_ENCODINGS',
    'DEPTH_ENCODINGS',
    'image_to_array',
    'array_to_image',
    'to_rgb8',
    'depth_to_metres',
    'metres_to_depth_image',
]


@dataclass(frozen=True)
class _Layout:
    dtype: np.dtype
    channels: int


_LAYOUTS: dict[str, _Layout] = {
    'rgb8': _Layout(np.dtype(np.uint8), 3),
    'bgr8': _Layout(np.dtype(np.uint8), 3),
    'rgba8': _Layout(np.dtype(np.uint8), 4),
    'bgra8': _Layout(np.dtype(np.uint8), 4),
    'mono8': _Layout(np.dtype(np.uint8), 1),
    'mono16': _Layout(np.dtype(np.uint16), 1),
    '16UC1': _Layout(np.dtype(np.uint16), 1),
    '32FC1': _Layout(np.dtype(np.float32), 1),
}

SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)
"""Encodings this module converts: rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1 (mm), 32FC1 (m)."""

DEPTH_ENCODINGS: tuple[str, ...] = ('16UC1', '32FC1')
"""Encodings that carry depth (16UC1 millimetres, 32FC1 metres)."""

_MAX_16UC1_METRES = np.iinfo(np.uint16).max / 1000.0


def _layout(encoding: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except (KeyError, TypeError):
        raise ImageEncodingError(
            f'unsupported image encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}') from None


def _shape(height: int, width: int, channels: int) -> tuple[int, ...]:
    return (height, width) if channels == 1 else (height, width, channels)


def image_to_array(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False) -> np.ndarray:
    """Array (H, W) or (H, W, C) of a ROS image message's fields, a view on `data` where possible.

    `data` is any buffer (bytes, bytearray, memoryview, array.array, uint8 ndarray) or a list of
    ints; `step` is the row length in bytes (>= W * C * itemsize; padding bytes are skipped).
    Big-endian data of multi-byte types is converted to native order (a copy).
    Raises ImageEncodingError naming encoding, height, width, step and len(data) when they disagree.
    """
    layout = _layout(encoding)
    try:
        buffer = np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError):
        buffer = np.asarray(data, dtype=np.uint8).reshape(-1)
    described = (f'encoding={encoding!r} height={height!r} width={width!r} step={step!r} '
                 f'len(data)={buffer.size}')
    for name, value in (('height', height), ('width', width), ('step', step)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ImageEncodingError(f'image {name} must be a non-negative integer: {described}')
    height, width, step = int(height), int(width), int(step)
    row_bytes = width * layout.channels * layout.dtype.itemsize
    if step < row_bytes:
        raise ImageEncodingError(f'step is shorter than a row of {row_bytes} bytes: {described}')
    if buffer.size != step * height:
        raise ImageEncodingError(f'len(data) must be step * height = {step * height}: {described}')
    rows = buffer.reshape(height, step)[:, :row_bytes]
    dtype = layout.dtype.newbyteorder('>' if is_bigendian else '<')
    array = rows.view(dtype).reshape(_shape(height, width, layout.channels))
    if not dtype.isnative:
        array = array.astype(layout.dtype.newbyteorder('='))
    return array


def array_to_image(array: np.ndarray, encoding: str) -> tuple[bytes, int]:
    """(data, step) of a little-endian, unpadded ROS image of `array` in `encoding`.

    `array` must be (H, W) for one channel or (H, W, C) with the encoding's C; its dtype must be the
    encoding's (uint8, uint16), except 32FC1 which accepts any float dtype (cast to float32).
    Set the message's ``is_bigendian = 0``.
    """
    layout = _layout(encoding)
    array = np.asarray(array)
    if array.ndim == 3 and layout.channels == 1 and array.shape[2] == 1:
        array = array[..., 0]
    expected = 'H, W' if layout.channels == 1 else f'H, W, {layout.channels}'
    if array.ndim != (2 if layout.channels == 1 else 3) or (layout.channels > 1 and array.shape[2] != layout.channels):
        raise ImageEncodingError(f'{encoding} needs an array of shape ({expected}), got {array.shape}')
    if layout.dtype.kind == 'f' and array.dtype.kind == 'f':
        array = array.astype(layout.dtype)
    elif array.dtype.newbyteorder('=') != layout.dtype.newbyteorder('='):
        raise ImageEncodingError(f'{encoding} needs dtype {layout.dtype}, got {array.dtype}')
    array = np.ascontiguousarray(array, dtype=layout.dtype.newbyteorder('<'))
    step = array.shape[1] * layout.channels * layout.dtype.itemsize
    return array.tobytes(), step


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour or grey image array as `image_to_array` returns it.

    bgr/bgra are reordered (a contiguous copy), alpha is dropped, mono8 is replicated, mono16 keeps
    its high byte. rgb8 and rgba8 return views. Depth encodings (16UC1, 32FC1) are refused.
    """
    layout = _layout(encoding)
    if encoding in DEPTH_ENCODINGS:
        raise ImageEncodingError(f'{encoding} is a depth encoding, not an image to show as RGB')
    array = np.asarray(array)
    expected = (2,) if layout.channels == 1 else (3,)
    if array.ndim not in expected or (layout.channels > 1 and array.shape[2] != layout.channels):
        raise ImageEncodingError(f'{encoding} array must be ({"H, W" if layout.channels == 1 else f"H, W, {layout.channels}"}), '
                                 f'got {array.shape}')
    if array.dtype != layout.dtype:
        raise ImageEncodingError(f'{encoding} array must have dtype {layout.dtype}, got {array.dtype}')
    if encoding == 'rgb8':
        return array
    if encoding == 'rgba8':
        return array[..., :3]
    if encoding in ('bgr8', 'bgra8'):
        return np.ascontiguousarray(array[..., 2::-1])
    if encoding == 'mono16':
        array = (array >> 8).astype(np.uint8)
    return np.repeat(array[..., None], 3, axis=-1)


def depth_to_metres(array: np.ndarray, encoding: str) -> np.ndarray:
    """Depth (H, W) float32 metres, NaN = no measurement, from a 16UC1 (mm, 0 = none) or 32FC1 (m) array."""
    _layout(encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise ImageEncodingError(f'{encoding} is not a depth encoding; expected one of {DEPTH_ENCODINGS}')
    array = np.asarray(array)
    if array.ndim != 2:
        raise ImageEncodingError(f'{encoding} depth must be (H, W), got {array.shape}')
    if encoding == '16UC1':
        if array.dtype.kind not in 'ui':
            raise ImageEncodingError(f'16UC1 depth must be an integer array (millimetres), got {array.dtype}')
        metres = array.astype(np.float32) / np.float32(1000.0)
    else:
        metres = array.astype(np.float32, copy=True)
    metres[~(np.isfinite(metres) & (metres > 0))] = np.nan
    return metres


def metres_to_depth_image(depth_m: np.ndarray, encoding: str, out_of_range: str = 'raise') -> np.ndarray:
    """Depth array in `encoding` from depth (H, W) metres (NaN, <= 0, inf = no measurement).

    16UC1: uint16 millimetres (rounded), invalid -> 0; depths above 65.535 m raise
    ImageEncodingError, or become 0 with ``out_of_range='invalid'``. 32FC1: float32 metres, invalid -> NaN.
    Pass the result to `array_to_image`.
    """
    _layout(encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise ImageEncodingError(f'{encoding} is not a depth encoding; expected one of {DEPTH_ENCODINGS}')
    if out_of_range not in ('raise', 'invalid'):
        raise ImageEncodingError(f"out_of_range must be 'raise' or 'invalid', got {out_of_range!r}")
    depth = np.asarray(depth_m, dtype=np.float64)
    if depth.ndim != 2:
        raise ImageEncodingError(f'depth must be (H, W) metres, got {depth.shape}')
    valid = np.isfinite(depth) & (depth > 0)
    if encoding == '32FC1':
        return np.where(valid, depth, np.nan).astype(np.float32)
    millimetres = np.rint(np.where(valid, depth, 0.0) * 1000.0)
    too_far = millimetres > np.iinfo(np.uint16).max
    if np.any(too_far):
        if out_of_range == 'raise':
            raise ImageEncodingError(
                f'16UC1 holds depths up to {_MAX_16UC1_METRES} m, got {float(depth[too_far].max())} m '
                f"(pass out_of_range='invalid' to store them as 0)")
        millimetres[too_far] = 0
    return millimetres.astype(np.uint16)
