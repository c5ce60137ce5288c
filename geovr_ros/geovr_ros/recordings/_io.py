"""File readers of the recording formats: images, numeric text, lists; errors name the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from geovr_ros.recordings.base import RecordingFormatError

_PNG_END = b'IEND\xaeB`\x82'


def read_image(path: Path, kind: str) -> np.ndarray:
    """Decode an image file: `kind` 'rgb' -> (H, W, 3) uint8 RGB; 'depth16' -> (H, W) uint16.

    A missing, truncated (PNG without its IEND chunk) or undecodable file raises
    RecordingFormatError naming it.
    """
    import cv2  # only the image-file formats need OpenCV
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RecordingFormatError(path, 'file missing') from None
    if path.suffix.lower() == '.png' and not data.rstrip(b'\x00').endswith(_PNG_END):
        raise RecordingFormatError(path, f'truncated or corrupt PNG ({len(data)} bytes, no IEND chunk at the end)')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise RecordingFormatError(path, f'cannot decode image ({len(data)} bytes)')
    if kind == 'rgb':
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if image.dtype != np.uint8:
            image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image.astype(np.uint8)
        return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    if kind == 'depth16':
        if image.ndim != 2 or image.dtype != np.uint16:
            raise RecordingFormatError(path, f'depth must be a 16-bit single-channel image, got {image.dtype} '
                                             f'{image.shape}')
        return image
    raise ValueError(f'unknown image kind {kind!r}; expected rgb or depth16')


def read_depth(path: Path, scale: float, invalid_from: float = np.inf) -> np.ndarray:
    """(H, W) float32 metres from a 16-bit depth PNG of `scale` units a metre; 0 and values of
    `invalid_from` metres or more are NaN."""
    depth = read_image(path, 'depth16').astype(np.float32) / np.float32(scale)
    depth[(depth <= 0) | (depth >= invalid_from)] = np.nan
    return depth


def _text_lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RecordingFormatError(path, 'file missing') from None
    except UnicodeDecodeError:
        raise RecordingFormatError(path, 'not a text file') from None
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith('#')]


def read_matrix(path: Path, rows: int, cols: int, finite: bool = True) -> np.ndarray:
    """A whitespace-separated `rows` x `cols` matrix of numbers (float64), finite unless `finite`
    is False (ScanNet writes -inf for a pose it lost)."""
    lines = [line.split() for _, line in _text_lines(path)]
    if len(lines) != rows or any(len(ln) != cols for ln in lines):
        found = f'{len(lines)} rows of {sorted({len(ln) for ln in lines})} numbers'
        raise RecordingFormatError(path, f'expected {rows} rows of {cols} numbers, found {found}')
    try:
        m = np.array([[float(v) for v in ln] for ln in lines])
    except ValueError as exc:
        raise RecordingFormatError(path, f'not a number: {exc}') from None
    if finite and not np.isfinite(m).all():
        raise RecordingFormatError(path, 'contains non-finite values')
    return m


def read_list(path: Path, columns: int) -> list[list[str]]:
    """Rows of a TUM-style list (`#` comments; fields split by spaces or commas), each of
    `columns` fields with a numeric first field (the timestamp)."""
    rows = []
    for n, line in _text_lines(path):
        parts = line.replace(',', ' ').split()
        if len(parts) != columns:
            raise RecordingFormatError(path, f'line {n}: expected {columns} fields, found {len(parts)}: {line!r}')
        try:
            float(parts[0])
        except ValueError:
            raise RecordingFormatError(path, f'line {n}: timestamp {parts[0]!r} is not a number') from None
        rows.append(parts)
    if not rows:
        raise RecordingFormatError(path, 'no entries')
    return rows


def check_pose(path: Path, T: np.ndarray) -> None:
    """A camera-to-world pose (4, 4) must be rigid: orthonormal rotation, last row 0 0 0 1."""
    R = T[:3, :3]
    if not np.allclose(T[3], [0, 0, 0, 1], atol=1e-6) or not np.allclose(R @ R.T, np.eye(3), atol=1e-3) \
            or np.linalg.det(R) < 0:
        raise RecordingFormatError(path, 'not a rigid 4x4 pose (rotation not orthonormal or last row not 0 0 0 1)')
