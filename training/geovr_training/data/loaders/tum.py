"""TUM RGB-D benchmark folders: rgb.txt, depth.txt, groundtruth.txt (depth PNG / 5000 = m).

Colour frames are associated with the nearest depth frame and the nearest ground-truth
pose in time, each within ``max_difference`` seconds (unmatched colour frames are
dropped, as TUM's associate.py does). Ground truth ``tx ty tz qx qy qz qw`` is the optical
centre of the colour camera in the world (camera-to-world, optical axes).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from geovr_ros.geometry import pose_from_xyz_quat_xyzw, validate_intrinsics

from ..errors import DataFormatError
from ..types import Sequence
from ._io import read_image

# fx, fy, cx, cy of the TUM cameras (https://cvg.cit.tum.de/data/datasets/rgbd-dataset/file_formats)
TUM_INTRINSICS = {
    'freiburg1': (517.3, 516.5, 318.6, 255.3),
    'freiburg2': (520.9, 521.0, 325.1, 249.7),
    'freiburg3': (535.4, 539.2, 320.1, 247.6),
    'default': (525.0, 525.0, 319.5, 239.5),
}
DEPTH_SCALE = 5000.0


def _read_list(path: Path, columns: int) -> list[list[str]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataFormatError(path, 'file missing') from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        parts = line.replace(',', ' ').split()
        if len(parts) != columns:
            raise DataFormatError(path, f'line {n}: expected {columns} fields, found {len(parts)}: {line.strip()!r}')
        try:
            float(parts[0])
        except ValueError:
            raise DataFormatError(path, f'line {n}: timestamp {parts[0]!r} is not a number') from None
        rows.append(parts)
    if not rows:
        raise DataFormatError(path, 'no entries')
    return rows


def tum_intrinsics(spec: str | None, folder: Path) -> np.ndarray:
    """K (3, 3) from 'freiburg1|2|3', 'fx,fy,cx,cy', or (None) the folder name."""
    if spec is None:
        m = re.search(r'freiburg[123]', folder.resolve().name)
        spec = m.group(0) if m else 'default'
    if spec in TUM_INTRINSICS:
        fx, fy, cx, cy = TUM_INTRINSICS[spec]
    else:
        try:
            fx, fy, cx, cy = (float(v) for v in spec.split(','))
        except ValueError:
            raise DataFormatError(folder, f'intrinsics {spec!r}: expected freiburg1|freiburg2|freiburg3 or fx,fy,cx,cy') from None
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _nearest(times: np.ndarray, t: float) -> int:
    i = int(np.searchsorted(times, t))
    cands = [j for j in (i - 1, i) if 0 <= j < len(times)]
    return min(cands, key=lambda j: abs(times[j] - t))


def load_tum(folder: str | Path, intrinsics: str | np.ndarray | None = None, max_difference: float = 0.02,
             stride: int = 1, max_frames: int | None = None, name: str | None = None) -> Sequence:
    """Read a TUM RGB-D folder into a Sequence (associated frames only)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, 'not a folder')
    rgb_list = _read_list(folder / 'rgb.txt', 2)
    depth_list = _read_list(folder / 'depth.txt', 2)
    gt = _read_list(folder / 'groundtruth.txt', 8)
    gt_t = np.array([float(r[0]) for r in gt])
    depth_t = np.array([float(r[0]) for r in depth_list])
    order_gt, order_d = np.argsort(gt_t), np.argsort(depth_t)
    gt, gt_t = [gt[i] for i in order_gt], gt_t[order_gt]
    depth_list, depth_t = [depth_list[i] for i in order_d], depth_t[order_d]
    matches = []
    for t_str, rgb_file in rgb_list:
        t = float(t_str)
        j, k = _nearest(depth_t, t), _nearest(gt_t, t)
        if abs(depth_t[j] - t) <= max_difference and abs(gt_t[k] - t) <= max_difference:
            matches.append((t, rgb_file, depth_list[j][1], gt[k]))
    if not matches:
        raise DataFormatError(folder, f'no colour frame has a depth frame and a ground-truth pose within '
                                      f'{max_difference} s (rgb {float(rgb_list[0][0]):.3f}.., depth '
                                      f'{depth_t[0]:.3f}.., groundtruth {gt_t[0]:.3f}..)')
    matches = matches[::stride][:max_frames]
    K = intrinsics if isinstance(intrinsics, np.ndarray) else tum_intrinsics(intrinsics, folder)
    rgb, depth, poses, times = [], [], [], []
    for t, rgb_file, depth_file, pose in matches:
        rgb.append(read_image(folder / rgb_file, 'rgb'))
        d = read_image(folder / depth_file, 'depth16').astype(np.float32) / DEPTH_SCALE
        d[d <= 0] = np.nan
        if d.shape != rgb[-1].shape[:2]:
            raise DataFormatError(folder / depth_file, f'depth size {d.shape[::-1]} differs from colour '
                                                       f'{rgb[-1].shape[1::-1]}')
        depth.append(d)
        values = np.array([float(v) for v in pose[1:]])
        poses.append(pose_from_xyz_quat_xyzw(values[:3], values[3:] / np.linalg.norm(values[3:])))
        times.append(t)
    h, w = rgb[0].shape[:2]
    validate_intrinsics(K, w, h)
    return Sequence(name=name or folder.name, rgb=np.stack(rgb), depth=np.stack(depth),
                    K=np.repeat(np.asarray(K, dtype=np.float64)[None], len(rgb), 0), T_world_cam=np.stack(poses),
                    timestamps=np.asarray(times), info={'source': 'tum', 'path': str(folder),
                                                        'max_difference_s': max_difference})
