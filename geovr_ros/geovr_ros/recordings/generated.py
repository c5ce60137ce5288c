"""`geovr-data generate` / `convert` dataset folders: manifest.json + one `*.geovr.npz` shard
a sequence (zip members `meta.json`, `K.npy` (N,3,3), `T_world_cam.npy` (N,4,4),
`timestamps.npy` (N,), `rgb/NNNNNN.npy` (H,W,3) uint8, `depth/NNNNNN.npy` (H,W) float32 m).
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from geovr_ros.recordings.base import (
    FrameChecks, Recording, RecordingFormatError, RecordingFrame, intrinsics_matrix, select)

SHARD_SUFFIX = '.geovr.npz'


def is_generated_folder(folder: str | Path) -> bool:
    """Whether `folder` holds a manifest.json or *.geovr.npz shards."""
    folder = Path(folder)
    return (folder / 'manifest.json').is_file() or any(folder.glob('*' + SHARD_SUFFIX))


def _member(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    with zf.open(name) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _shard(root: Path, sequence: str) -> Path:
    shards = sorted(root.glob('*' + SHARD_SUFFIX)) or sorted(root.glob('**/*' + SHARD_SUFFIX))
    if not shards:
        raise RecordingFormatError(root, f'holds no *{SHARD_SUFFIX} shard')
    if sequence == '':
        return shards[0]
    if sequence.isdigit():
        if int(sequence) >= len(shards):
            raise RecordingFormatError(root, f'sequence index {sequence} out of range: {len(shards)} shards')
        return shards[int(sequence)]
    names = [s.name[:-len(SHARD_SUFFIX)] for s in shards]
    if sequence not in names:
        raise RecordingFormatError(root, f'no sequence {sequence!r}; have {names}')
    return shards[names.index(sequence)]


def open_generated(path: str | Path, *, sequence: str = '', intrinsics=None, with_depth: bool = False,
                   stride: int = 1, max_frames: int | None = None) -> Recording:
    """Frames of one sequence of a dataset folder, in stored order.

    sequence: a sequence name or index among the sorted shards (empty: the first);
    intrinsics: (fx, fy, cx, cy), a (3, 3) K or 'fx,fy,cx,cy' overriding the stored K.
    """
    shard = _shard(Path(path), sequence)
    try:
        with zipfile.ZipFile(shard) as zf:
            meta = json.loads(zf.read('meta.json'))
            Ks, poses, stamps = (_member(zf, n) for n in ('K.npy', 'T_world_cam.npy', 'timestamps.npy'))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise RecordingFormatError(shard, f'not a readable shard ({exc})') from None
    if with_depth and not meta.get('has_depth', False):
        raise RecordingFormatError(shard, 'has no depth')
    K_override = intrinsics_matrix(intrinsics, shard)
    keep = select(range(int(meta['num_frames'])), stride, max_frames)

    def frames():
        checks = FrameChecks()
        with zipfile.ZipFile(shard) as zf:
            for i in keep:
                try:
                    rgb = _member(zf, f'rgb/{i:06d}.npy')
                    depth = _member(zf, f'depth/{i:06d}.npy') if with_depth else None
                except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
                    raise RecordingFormatError(shard, f'frame {i}: {exc}') from None
                K = Ks[i] if K_override is None else K_override
                checks.image(rgb, shard)
                checks.intrinsics(K, rgb, shard)
                if depth is not None:
                    checks.depth(depth, rgb, shard)
                yield RecordingFrame(float(stamps[i]), rgb, K, poses[i], depth, i)
    return Recording(shard, 'generated', frames, len(keep), {'sequence': shard.name[:-len(SHARD_SUFFIX)]})
