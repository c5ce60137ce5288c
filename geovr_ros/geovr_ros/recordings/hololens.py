"""The HoloLens layout of DeepVideoMVS's sample data (`shared/data/hololens_office`).

Layout: `images/NNNNN.jpg` (or .png) colour, `depth/NNNNN.png` 16-bit millimetres (0 =
invalid) of the same size, `poses.txt` one camera-to-world 4x4 a line (16 numbers,
row-major) in the order of the sorted image names, `K.txt` the 3x3 K. Stamps: the image's
number / fps.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from geovr_ros.recordings._io import check_pose, read_depth, read_image, read_matrix
from geovr_ros.recordings.base import (
    FrameChecks, Recording, RecordingFormatError, RecordingFrame, intrinsics_matrix, select)

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


def is_hololens_folder(folder: str | Path) -> bool:
    """Whether `folder` has the layout's images/ folder and poses.txt."""
    folder = Path(folder)
    return (folder / 'images').is_dir() and (folder / 'poses.txt').is_file()


def _poses(path: Path, count: int) -> np.ndarray:
    """(count, 4, 4) rigid poses of poses.txt."""
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except (FileNotFoundError, UnicodeDecodeError) as exc:
        raise RecordingFormatError(path, f'unreadable ({exc.__class__.__name__})') from None
    if len(lines) != count:
        raise RecordingFormatError(path, f'{len(lines)} poses for {count} images')
    try:
        rows = [[float(v) for v in ln.split()] for ln in lines]
    except ValueError as exc:
        raise RecordingFormatError(path, f'not a number: {exc}') from None
    if any(len(r) != 16 for r in rows) or not np.isfinite(rows).all():
        raise RecordingFormatError(path, 'each line must hold 16 finite numbers (a row-major 4x4)')
    poses = np.array(rows).reshape(-1, 4, 4)
    for T in poses:
        check_pose(path, T)
    return poses


def open_hololens(path: str | Path, *, intrinsics=None, fps: float = 30.0, with_depth: bool = False,
                  stride: int = 1, max_frames: int | None = None) -> Recording:
    """Frames of a HoloLens-layout folder (module docstring), in image-name order.

    intrinsics: (fx, fy, cx, cy), a (3, 3) K or 'fx,fy,cx,cy' overriding K.txt.
    """
    folder = Path(path)
    if not is_hololens_folder(folder):
        raise RecordingFormatError(folder, 'not a HoloLens-layout folder (images/ and poses.txt expected)')
    if with_depth and not (folder / 'depth').is_dir():
        raise RecordingFormatError(folder / 'depth', 'no depth folder (depth/NNNNN.png in millimetres)')
    images = sorted(p for p in (folder / 'images').iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise RecordingFormatError(folder / 'images', 'no .jpg or .png images')
    poses = _poses(folder / 'poses.txt', len(images))
    K = intrinsics_matrix(intrinsics, folder)
    k_source = folder if K is not None else folder / 'K.txt'
    K = read_matrix(k_source, 3, 3) if K is None else K
    keep = select(range(len(images)), stride, max_frames)

    def frames():
        checks = FrameChecks()
        for i in keep:
            image = images[i]
            number = int(image.stem) if image.stem.isdigit() else i
            rgb = read_image(image, 'rgb')
            checks.image(rgb, image)
            checks.intrinsics(K, rgb, k_source)
            depth = None
            if with_depth:
                depth_path = folder / 'depth' / f'{image.stem}.png'
                depth = read_depth(depth_path, 1000.0)
                checks.depth(depth, rgb, depth_path)
            yield RecordingFrame(number / fps, rgb, K, poses[i], depth, number)
    return Recording(folder, 'hololens', frames, len(keep))
