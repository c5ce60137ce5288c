"""The HoloLens layout of DeepVideoMVS's sample data (``../shared/data/hololens_office``).

Layout: ``images/NNNNN.jpg`` (or .png) colour, ``depth/NNNNN.png`` 16-bit millimetres
(0 = invalid) of the same size, ``poses.txt`` one camera-to-world 4x4 matrix a line
(16 numbers, row-major) in the order of the sorted image names, ``K.txt`` the 3x3 K.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from geovr_ros.geometry import validate_intrinsics

from ..errors import DataFormatError
from ..types import Sequence
from ._io import check_pose, read_image, read_matrix

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')


def is_hololens_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return (folder / 'images').is_dir() and (folder / 'depth').is_dir() and (folder / 'poses.txt').is_file()


def load_hololens(folder: str | Path, fps: float = 30.0, stride: int = 1, max_frames: int | None = None,
                  name: str | None = None) -> Sequence:
    """Read a HoloLens-layout folder into a Sequence (depth metres, NaN invalid;
    timestamps = frame number / fps, the frame number being the image name's)."""
    folder = Path(folder)
    if not is_hololens_folder(folder):
        raise DataFormatError(folder, 'not a HoloLens-layout folder (images/, depth/ and poses.txt expected)')
    images = sorted(p for p in (folder / 'images').iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataFormatError(folder / 'images', 'no .jpg or .png images')
    lines = [ln for ln in (folder / 'poses.txt').read_text().splitlines() if ln.strip()]
    if len(lines) != len(images):
        raise DataFormatError(folder / 'poses.txt', f'{len(lines)} poses for {len(images)} images')
    try:
        poses = np.array([[float(v) for v in ln.split()] for ln in lines])
    except ValueError as exc:
        raise DataFormatError(folder / 'poses.txt', f'not a number: {exc}') from None
    if poses.ndim != 2 or poses.shape[1] != 16 or not np.isfinite(poses).all():
        raise DataFormatError(folder / 'poses.txt', 'each line must hold 16 finite numbers (a row-major 4x4)')
    poses = poses.reshape(-1, 4, 4)
    K = read_matrix(folder / 'K.txt', 3, 3)
    keep = list(range(len(images)))[::stride][:max_frames]
    rgb, depth = [], []
    for i in keep:
        check_pose(folder / 'poses.txt', poses[i])
        rgb.append(read_image(images[i], 'rgb'))
        depth_path = folder / 'depth' / f'{images[i].stem}.png'
        d = read_image(depth_path, 'depth16').astype(np.float32) / 1000.0
        d[d <= 0] = np.nan
        if d.shape != rgb[-1].shape[:2]:
            raise DataFormatError(depth_path, f'depth {d.shape[::-1]} and colour {rgb[-1].shape[1::-1]} sizes differ')
        depth.append(d)
        if rgb[-1].shape != rgb[0].shape:
            raise DataFormatError(images[i], f'size {rgb[-1].shape[1::-1]} differs from the first image')
    h, w = rgb[0].shape[:2]
    validate_intrinsics(K, w, h)
    numbers = [int(images[i].stem) if images[i].stem.isdigit() else i for i in keep]
    return Sequence(name=name or folder.name, rgb=np.stack(rgb), depth=np.stack(depth),
                    K=np.repeat(K[None], len(keep), 0), T_world_cam=poses[keep],
                    timestamps=np.asarray(numbers, dtype=np.float64) / fps,
                    info={'source': 'hololens', 'path': str(folder), 'frame_ids': numbers})
