"""Pinhole intrinsics: CameraInfo conversions and updates under image operations.

Pixel convention (used by every module of `geovr_ros.geometry`): the centre of the pixel in
row ``i``, column ``j`` is the continuous image point ``(u, v) = (j, i)``; the image covers
``[-0.5, W - 0.5] x [-0.5, H - 0.5]`` and a continuous point maps to the pixel
``(round(v), round(u))``. This is the convention of ROS CameraInfo / OpenCV calibration, and
the one in which resizing by ``s`` maps ``c -> s (c + 0.5) - 0.5``. The image centre is
``c0 = (W / 2 - 0.5, H / 2 - 0.5)``.

K is the 3x3 camera matrix ``[[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels, mapping a point
``(x, y, z)`` of the camera optical frame (x right, y down, z forward, metres) to
``(u, v) = (fx x / z + s y / z + cx, fy y / z + cy)``. Functions that update K accept a batch
``(..., 3, 3)`` and return float64 of the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ._arrays import as_camera_matrix, as_size
from .errors import InvalidIntrinsicsError, ShapeError

__all__ = [
    'k_from_camera_info',
    'k_to_camera_info',
    'p_from_k',
    'validate_intrinsics',
    'scale_intrinsics',
    'resize_intrinsics',
    'crop_intrinsics',
    'zoom_intrinsics',
    'shift_principal_point',
    'fov_from_intrinsics',
    'intrinsics_from_fov',
    'image_center',
    'same_camera_lookup',
]


def k_from_camera_info(k: Sequence[float]) -> np.ndarray:
    """K (3, 3) float64 from `sensor_msgs/CameraInfo.k` (9 values, row-major, pixels)."""
    try:
        values = np.asarray(k, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f'CameraInfo.k must hold 9 numbers, got {k!r}') from exc
    if values.size != 9:
        raise ShapeError(f'CameraInfo.k must hold 9 values, got {values.size}: {k!r}')
    return values.reshape(3, 3).copy()


def k_to_camera_info(K: np.ndarray) -> list[float]:
    """The 9 row-major values of K (3, 3) for `CameraInfo.k`, as Python floats."""
    K = as_camera_matrix(K)
    if K.shape != (3, 3):
        raise ShapeError(f'K must have shape (3, 3), got {K.shape}')
    return [float(x) for x in K.reshape(9)]


def p_from_k(K: np.ndarray, tx: float = 0.0, ty: float = 0.0) -> list[float]:
    """`CameraInfo.p` (12 values, row-major 3x4 projection ``[K | (tx, ty, 0)]``) for a monocular camera.

    `tx`, `ty` are ``-fx * baseline`` terms in pixels*metres; 0 for a monocular camera.
    """
    K = as_camera_matrix(K)
    if K.shape != (3, 3):
        raise ShapeError(f'K must have shape (3, 3), got {K.shape}')
    P = np.zeros((3, 4))
    P[:, :3] = K
    P[0, 3] = float(tx)
    P[1, 3] = float(ty)
    return [float(x) for x in P.reshape(12)]


def validate_intrinsics(K: np.ndarray, width: int, height: int) -> None:
    """Raise InvalidIntrinsicsError unless K (3, 3) is a usable pinhole camera for a W x H image.

    Checks: finite values; ``fx, fy > 0``; zero skew; layout ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``;
    ``width, height > 0``; principal point within one image size of the image
    (``-W <= cx <= 2 W``, ``-H <= cy <= 2 H``).
    """
    for name, value in (('width', width), ('height', height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise InvalidIntrinsicsError(f'image {name} must be a positive integer, got {value!r}')
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidIntrinsicsError(f'K must be numeric, got {K!r}') from exc
    if K.shape != (3, 3):
        raise InvalidIntrinsicsError(f'K must have shape (3, 3), got {K.shape}')
    if not np.all(np.isfinite(K)):
        raise InvalidIntrinsicsError(f'K must be finite, got {K.tolist()}')
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise InvalidIntrinsicsError(f'focal lengths must be positive, got fx={fx}, fy={fy}')
    if K[0, 1] != 0:
        raise InvalidIntrinsicsError(f'skew K[0, 1] must be 0, got {K[0, 1]}')
    if K[1, 0] != 0 or not np.array_equal(K[2], [0.0, 0.0, 1.0]):
        raise InvalidIntrinsicsError(
            f'K must be laid out [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}')
    if not (-width <= cx <= 2 * width) or not (-height <= cy <= 2 * height):
        raise InvalidIntrinsicsError(
            f'principal point ({cx}, {cy}) is more than one image size outside a {width}x{height} image')


def _apply_image_affine(K: np.ndarray, a_x: float, b_x: float, a_y: float, b_y: float) -> np.ndarray:
    """K' = A K with the image affine map u' = a_x u + b_x, v' = a_y v + b_y."""
    K = as_camera_matrix(K)
    A = np.array([[a_x, 0.0, b_x], [0.0, a_y, b_y], [0.0, 0.0, 1.0]])
    return A @ K


def _positive_finite(value, name: str) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise InvalidIntrinsicsError(f'{name} must be positive and finite, got {value!r}')
    return value


def scale_intrinsics(K: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """K (..., 3, 3) of an image resized by factors (`scale_x`, `scale_y`) = new size / old size.

    ``fx' = sx fx``, ``cx' = sx (cx + 0.5) - 0.5`` (same for y); skew scales with sx.
    """
    sx = _positive_finite(scale_x, 'scale_x')
    sy = _positive_finite(scale_y, 'scale_y')
    return _apply_image_affine(K, sx, 0.5 * sx - 0.5, sy, 0.5 * sy - 0.5)


def resize_intrinsics(K: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]) -> np.ndarray:
    """K (..., 3, 3) after resizing an image from `src_size` to `dst_size`, both (width, height) pixels."""
    src_w, src_h = as_size(src_size, 'src_size')
    dst_w, dst_h = as_size(dst_size, 'dst_size')
    return scale_intrinsics(K, dst_w / src_w, dst_h / src_h)


def crop_intrinsics(K: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """K (..., 3, 3) of the crop whose top-left pixel is column `x0`, row `y0` of the original.

    ``cx' = cx - x0``, ``cy' = cy - y0``; focal lengths unchanged (the crop size does not matter).
    """
    return shift_principal_point(K, -float(x0), -float(y0))


def image_center(image_size: tuple[int, int]) -> tuple[float, float]:
    """Continuous image centre ``(W / 2 - 0.5, H / 2 - 0.5)`` for `image_size` (width, height)."""
    width, height = as_size(image_size)
    return width / 2 - 0.5, height / 2 - 0.5


def zoom_intrinsics(K: np.ndarray, zoom: float, image_size: tuple[int, int]) -> np.ndarray:
    """K (..., 3, 3) after zooming by `zoom` (> 1 magnifies) about the image centre, size kept.

    ``f' = z f``, ``c' = z (c - c0) + c0`` with ``c0 = (W / 2 - 0.5, H / 2 - 0.5)``;
    `image_size` is (width, height) pixels.
    """
    z = _positive_finite(zoom, 'zoom')
    c0x, c0y = image_center(image_size)
    return _apply_image_affine(K, z, (1.0 - z) * c0x, z, (1.0 - z) * c0y)


def shift_principal_point(K: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """K (..., 3, 3) of an image translated by (`dx`, `dy`) pixels: ``cx' = cx + dx``, ``cy' = cy + dy``."""
    dx, dy = float(dx), float(dy)
    if not (math.isfinite(dx) and math.isfinite(dy)):
        raise InvalidIntrinsicsError(f'principal point shift must be finite, got ({dx}, {dy})')
    return _apply_image_affine(K, 1.0, dx, 1.0, dy)


def fov_from_intrinsics(K: np.ndarray, image_size: tuple[int, int]) -> tuple[float, float]:
    """Horizontal and vertical field of view (radians), edge to edge, of K (3, 3) and (width, height).

    ``hfov = atan((cx + 0.5) / fx) + atan((W - 0.5 - cx) / fx)``, which is ``2 atan(W / (2 fx))``
    for a centred principal point.
    """
    width, height = as_size(image_size)
    K = as_camera_matrix(K)
    if K.shape != (3, 3):
        raise ShapeError(f'K must have shape (3, 3), got {K.shape}')
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise InvalidIntrinsicsError(f'focal lengths must be positive, got fx={fx}, fy={fy}')
    hfov = math.atan((cx + 0.5) / fx) + math.atan((width - 0.5 - cx) / fx)
    vfov = math.atan((cy + 0.5) / fy) + math.atan((height - 0.5 - cy) / fy)
    return float(hfov), float(vfov)


def intrinsics_from_fov(hfov: float, image_size: tuple[int, int], vfov: float | None = None,
                        cx: float | None = None, cy: float | None = None) -> np.ndarray:
    """K (3, 3) with ``fx = (W / 2) / tan(hfov / 2)`` and ``fy`` from `vfov` (square pixels when None).

    Angles in radians in (0, pi); `image_size` is (width, height); the principal point defaults to
    the image centre ``(W / 2 - 0.5, H / 2 - 0.5)``. The focal lengths assume the field of view is
    symmetric about the principal point.
    """
    width, height = as_size(image_size)
    for name, angle in (('hfov', hfov), ('vfov', vfov)):
        if angle is not None and not (0.0 < float(angle) < math.pi):
            raise InvalidIntrinsicsError(f'{name} must be in (0, pi) radians, got {angle!r}')
    fx = (width / 2) / math.tan(float(hfov) / 2)
    fy = fx if vfov is None else (height / 2) / math.tan(float(vfov) / 2)
    c0x, c0y = image_center((width, height))
    cx = c0x if cx is None else float(cx)
    cy = c0y if cy is None else float(cy)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def same_camera_lookup(K_src: np.ndarray, K_dst: np.ndarray, dst_size: tuple[int, int],
                       src_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """For an image of the same camera at `K_dst` and `dst_size` (W, H), the source pixel
    nearest to each destination pixel's ray in an image at `K_src` and `src_size` (W, H)
    (resized and cut versions of one image; no skew): (rows (H,), cols (W,)) int64, -1 where
    the ray falls outside the source."""
    K_src, K_dst = as_camera_matrix(K_src, 'K_src'), as_camera_matrix(K_dst, 'K_dst')
    (dw, dh), (sw, sh) = as_size(dst_size, 'dst_size'), as_size(src_size, 'src_size')
    cols = np.round((np.arange(dw) - K_dst[0, 2]) * K_src[0, 0] / K_dst[0, 0] + K_src[0, 2]).astype(np.int64)
    rows = np.round((np.arange(dh) - K_dst[1, 2]) * K_src[1, 1] / K_dst[1, 1] + K_src[1, 2]).astype(np.int64)
    cols[(cols < 0) | (cols >= sw)] = -1
    rows[(rows < 0) | (rows >= sh)] = -1
    return rows, cols
