"""Small readers shared by the loaders: images and numeric text files with clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataFormatError


def read_image(path: Path, flags: str) -> np.ndarray:
    """Decode an image file: ``flags`` 'rgb' -> uint8 (H, W, 3) RGB; 'depth16' -> uint16 (H, W).

    Truncated or corrupt files raise DataFormatError naming the file.
    """
    import cv2
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, 'file missing') from None
    if path.suffix.lower() == '.png' and not data.rstrip(b'\x00').endswith(b'IEND\xaeB`\x82'):
        raise DataFormatError(path, f'truncated or corrupt PNG ({len(data)} bytes, no IEND chunk at the end)')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataFormatError(path, f'cannot decode image ({len(data)} bytes)')
    if flags == 'rgb':
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.dtype != np.uint8:
            image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
        return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    if flags == 'depth16':
        if image.ndim != 2 or image.dtype != np.uint16:
            raise DataFormatError(path, f'depth must be a 16-bit single-channel image, got {image.dtype} {image.shape}')
        return image
    raise ValueError(f'unknown image flags {flags!r}')


def read_matrix(path: Path, rows: int, cols: int) -> np.ndarray:
    """A whitespace-separated rows x cols matrix of finite numbers (float64)."""
    try:
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith('#')]
    except FileNotFoundError:
        raise DataFormatError(path, 'file missing') from None
    except UnicodeDecodeError:
        raise DataFormatError(path, 'not a text file') from None
    if len(lines) != rows or any(len(ln) != cols for ln in lines):
        shape = f"{len(lines)} rows of {sorted({len(ln) for ln in lines})} numbers"
        raise DataFormatError(path, f'expected {rows} rows of {cols} numbers, found {shape}')
    try:
        m = np.array([[float(v) for v in ln] for ln in lines])
    except ValueError as exc:
        raise DataFormatError(path, f'not a number: {exc}') from None
    if not np.isfinite(m).all():
        raise DataFormatError(path, 'contains non-finite values')
    return m


def check_pose(path: Path, T: np.ndarray) -> None:
    """A camera-to-world pose must be rigid: orthonormal rotation, last row (0, 0, 0, 1)."""
    R = T[:3, :3]
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-6) or not np.allclose(R @ R.T, np.eye(3), atol=1e-3) \
            or np.linalg.det(R) < 0:
        raise DataFormatError(path, 'not a rigid 4x4 pose (rotation not orthonormal or last row not 0 0 0 1)')
