"""7-Scenes-style frame folders (also andyzeng/tsdf-fusion's sample data).

Layout: ``frame-NNNNNN.color.png`` (or .jpg) RGB, ``frame-NNNNNN.depth.png`` 16-bit
millimetres (0 and 65535 = no depth), ``frame-NNNNNN.pose.txt`` 4x4 camera-to-world of the
optical frame, and an intrinsics file (``intrinsics.K.txt``, ``camera-intrinsics.txt`` or
``intrinsics.txt``: a 3x3 K) unless K is given.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from geovr_ros.geometry import validate_intrinsics

from ..errors import DataFormatError
from ..types import Sequence
from ._io import check_pose, read_image, read_matrix

INTRINSICS_FILES = ('intrinsics.K.txt', 'camera-intrinsics.txt', 'intrinsics.txt')
_FRAME = re.compile(r'^frame-(\d+)\.(color\.png|color\.jpg|depth\.png|pose\.txt)$')


def load_frames_folder(folder: str | Path, K: np.ndarray | None = None, fps: float = 30.0, stride: int = 1,
                       max_frames: int | None = None, name: str | None = None) -> Sequence:
    """Read a frame folder into a Sequence (depth metres, NaN invalid; timestamps = index / fps).

    Every frame id must have colour, depth and pose; otherwise DataFormatError names the
    folder and the frames that lack a file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, 'not a folder')
    files: dict[str, dict[int, Path]] = {'color': {}, 'depth': {}, 'pose': {}}
    for path in folder.iterdir():
        m = _FRAME.match(path.name)
        if m:
            files[m.group(2).split('.')[0]][int(m.group(1))] = path
    if not files['color']:
        raise DataFormatError(folder, 'no frame-N.color.png files')
    ids = sorted(set().union(*[set(f) for f in files.values()]))
    for kind, found in files.items():
        missing = [i for i in ids if i not in found]
        if missing:
            raise DataFormatError(folder, f'mismatched frame counts: {len(files["color"])} colour, '
                                          f'{len(files["depth"])} depth, {len(files["pose"])} pose files; '
                                          f'no {kind} file for frame(s) {missing[:10]}')
    if K is None:
        for candidate in INTRINSICS_FILES:
            if (folder / candidate).exists():
                K = read_matrix(folder / candidate, 3, 3)
                break
        else:
            raise DataFormatError(folder, f'no intrinsics file (one of {", ".join(INTRINSICS_FILES)}) and no K given')
    ids = ids[::stride][:max_frames]
    rgb, depth, poses = [], [], []
    for i in ids:
        rgb.append(read_image(files['color'][i], 'rgb'))
        d = read_image(files['depth'][i], 'depth16').astype(np.float32) / 1000.0
        d[(d <= 0) | (d >= 65.535)] = np.nan
        if d.shape != rgb[-1].shape[:2]:
            raise DataFormatError(files['depth'][i], f'depth {d.shape[::-1]} and colour {rgb[-1].shape[1::-1]} '
                                                     'sizes differ (registered depth expected)')
        depth.append(d)
        T = read_matrix(files['pose'][i], 4, 4)
        check_pose(files['pose'][i], T)
        poses.append(T)
    h, w = rgb[0].shape[:2]
    for i, image in zip(ids, rgb):
        if image.shape[:2] != (h, w):
            raise DataFormatError(files['color'][i], f'size {image.shape[1::-1]} differs from the first frame {(w, h)}')
    K = np.asarray(K, dtype=np.float64)
    validate_intrinsics(K, w, h)
    return Sequence(name=name or folder.name, rgb=np.stack(rgb), depth=np.stack(depth),
                    K=np.repeat(K[None], len(ids), 0), T_world_cam=np.stack(poses),
                    timestamps=np.asarray(ids, dtype=np.float64) / fps,
                    info={'source': 'frames', 'path': str(folder), 'frame_ids': ids})
