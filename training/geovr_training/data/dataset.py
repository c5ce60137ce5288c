"""PyTorch datasets over a dataset folder (manifest.json + shards), split by scene.

- ``ClipDataset``: clips of F frames (default 2) with a random frame gap, camera-aware
  augmentation on by default for 'train' and off for 'val'/'test'. Sample dict:
  ``images`` float32 (F, 3, H, W) RGB in [0, 1]; ``K`` float32 (F, 3, 3) in the output
  pixels; ``depth`` float32 (F, H, W) metres, NaN invalid; ``valid`` bool (F, H, W);
  ``T_world_cam`` float32 (F, 4, 4) optical camera-to-world; ``T_ref_cur`` float32 (F, 4, 4)
  each frame in frame 0's optical frame (``T_ref_cur[0]`` = identity); ``frame_indices``
  int64 (F,); ``timestamps`` float64 (F,); ``sequence`` str; ``clip_index`` int; with
  ``semantics=True`` also ``semantic`` int64 (F, H, W): 0 room (floor, walls), 1.. the
  categories of ``SEMANTIC_CLASSES``, -1 unknown (outside the source after augmentation).
- ``SequenceDataset``: whole sequences (``types.Sequence``) for evaluation of trajectories.
- ``QADataset``: the QA items of a split with ``frames(item)`` to load what they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from geovr_ros.geometry import relative_pose

from .augment import CameraAugment, mirror_clip, resize_frame
from .errors import DataError
from .scene import CATEGORIES
from .shards import ShardReader, read_manifest, read_shard
from .types import Sequence

SPLITS = ('train', 'val', 'test', 'all')
SEMANTIC_CLASSES = ('room', *CATEGORIES)  # index = label of ClipDataset's `semantic`


def semantic_lut(scene: dict) -> np.ndarray:
    """Instance id -> SEMANTIC_CLASSES index, from a shard's scene graph (unknown -> 0)."""
    objects = scene.get('objects', []) if scene else []
    lut = np.zeros(max([int(o['instance_id']) for o in objects], default=0) + 1, np.int64)
    for obj in objects:
        if obj['category'] in SEMANTIC_CLASSES:
            lut[int(obj['instance_id'])] = SEMANTIC_CLASSES.index(obj['category'])
    return lut


def _split_entries(root: Path, split: str) -> list[dict[str, Any]]:
    if split not in SPLITS:
        raise DataError(f'split must be one of {SPLITS}, got {split!r}')
    manifest = read_manifest(root)
    if split == 'all':
        return list(manifest['sequences'])
    names = set(manifest['splits'].get(split, []))
    return [e for e in manifest['sequences'] if e['name'] in names]


class _Readers:
    """Shard readers opened lazily per process (safe with DataLoader workers)."""

    def __init__(self, root: Path):
        self.root = root
        self._pid = None
        self._open: dict[str, ShardReader] = {}

    def get(self, file: str) -> ShardReader:
        if self._pid != os.getpid():
            self._open, self._pid = {}, os.getpid()
        if file not in self._open:
            self._open[file] = ShardReader(self.root / file)
        return self._open[file]

    def __getstate__(self):
        return {'root': self.root, '_pid': None, '_open': {}}


class ClipDataset(torch.utils.data.Dataset):
    """Clips of ``num_frames`` frames from the sequences of one split.

    Clip k starts at a frame of a sequence (every ``stride`` frames); consecutive frames are
    ``gap`` frames apart, drawn uniformly from ``frame_gap`` (inclusive) per clip when
    augmenting, the middle of the range otherwise. ``out_size`` (W, H) fixes the output
    size (None: native size, batch size 1 unless all sequences share a size).
    ``seed`` makes the random draws of item k reproducible (``seed``, ``epoch``, k).
    """

    def __init__(self, root: str | Path, split: str = 'train', num_frames: int = 2,
                 frame_gap: tuple[int, int] = (1, 4), out_size: tuple[int, int] | None = (256, 192),
                 augment: bool | None = None, augmentation: CameraAugment | None = None, stride: int = 1,
                 seed: int = 0, semantics: bool = False):
        if num_frames < 1:
            raise DataError(f'num_frames must be >= 1, got {num_frames}')
        if not 1 <= frame_gap[0] <= frame_gap[1]:
            raise DataError(f'frame_gap must be (lo, hi) with 1 <= lo <= hi, got {frame_gap}')
        self.root = Path(root)
        self.split, self.num_frames, self.frame_gap = split, num_frames, tuple(frame_gap)
        self.out_size = None if out_size is None else tuple(out_size)
        self.augment = (split == 'train') if augment is None else augment
        if self.augment and self.out_size is None:
            raise DataError('augmentation needs an out_size')
        self.augmentation = augmentation or (CameraAugment(out_size=self.out_size) if self.augment else None)
        self.seed, self.epoch = seed, 0
        self.semantics = bool(semantics)
        self.entries = _split_entries(self.root, split)
        self._readers = _Readers(self.root)
        span = (num_frames - 1) * self.frame_gap[1]
        self.clips: list[tuple[int, int]] = []
        for e_idx, entry in enumerate(self.entries):
            n = entry['num_frames']
            reach = min(span, n - 1)
            self.clips += [(e_idx, s) for s in range(0, max(n - reach, 1), stride)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.clips)

    def _frame_indices(self, start: int, n: int, rng: np.random.Generator) -> list[int]:
        lo, hi = self.frame_gap
        idx = [start]
        for _ in range(self.num_frames - 1):
            gap = int(rng.integers(lo, hi + 1)) if self.augment else (lo + hi) // 2
            idx.append(min(idx[-1] + gap, n - 1))
        return idx

    def __getitem__(self, k: int) -> dict[str, Any]:
        e_idx, start = self.clips[k]
        entry = self.entries[e_idx]
        reader = self._readers.get(entry['file'])
        rng = np.random.default_rng([self.seed, self.epoch, k])
        indices = self._frame_indices(start, len(reader), rng)
        seq = reader.read(indices, segmentation=self.semantics)
        if self.semantics and seq.segmentation is None:
            raise DataError(f'{entry["file"]} has no segmentation: semantics=True needs a '
                            f'dataset rendered by geovr-data generate')
        if seq.depth is None:
            depth_in = np.full(seq.rgb.shape[:3], np.nan, np.float32)
        else:
            depth_in = seq.depth
        aug_seed = int(rng.integers(2 ** 63))
        rgbs, depths, Ks, labels = [], [], [], []
        lut = semantic_lut(reader.meta.get('scene')) if self.semantics else None

        for i in range(len(indices)):
            values = depth_in[i]  # labels ride along as a second channel: one nearest-neighbour warp
            if lut is not None:
                ids = np.clip(seq.segmentation[i], 0, len(lut) - 1)
                values = np.dstack([values, lut[ids].astype(np.float32)])
            if self.augment:
                rgb, values, K = self.augmentation(seq.rgb[i], values, seq.K[i], np.random.default_rng(aug_seed))
            elif self.out_size is not None and self.out_size != seq.image_size:
                rgb, values, K = resize_frame(seq.rgb[i], values, seq.K[i], self.out_size)
            else:
                rgb, K = seq.rgb[i], seq.K[i]
            if lut is not None:
                values, label = values[..., 0], values[..., 1]
                labels.append(np.where(np.isfinite(label), label, -1).astype(np.int64))
            rgbs.append(rgb)
            depths.append(values)
            Ks.append(K)
        T = seq.T_world_cam
        if self.augment and self.augmentation.mirrors(aug_seed):
            rgbs, depths, Ks, T = mirror_clip(np.stack(rgbs), np.stack(depths), np.stack(Ks), T)
            labels = list(np.ascontiguousarray(np.stack(labels)[:, :, ::-1])) if labels else labels
        depth = torch.from_numpy(np.stack(depths).astype(np.float32))
        T_ref_cur = np.stack([relative_pose(T[0], T[i]) for i in range(len(T))])
        sample = {
            'images': torch.from_numpy(np.stack(rgbs)).permute(0, 3, 1, 2).float().div_(255.0),
            'K': torch.from_numpy(np.stack(Ks).astype(np.float32)),
            'depth': depth,
            'valid': torch.isfinite(depth) & (depth > 0),
            'T_world_cam': torch.from_numpy(T.astype(np.float32)),
            'T_ref_cur': torch.from_numpy(T_ref_cur.astype(np.float32)),
            'frame_indices': torch.tensor(indices, dtype=torch.int64),
            'timestamps': torch.from_numpy(seq.timestamps.astype(np.float64)),
            'sequence': seq.name,
            'clip_index': k,
        }
        if labels:
            sample['semantic'] = torch.from_numpy(np.stack(labels))
        return sample


class SequenceDataset:
    """Whole sequences of a split for evaluation: ``ds[i]`` -> ``Sequence`` (numpy arrays)."""

    def __init__(self, root: str | Path, split: str = 'test'):
        self.root = Path(root)
        self.entries = _split_entries(self.root, split)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> Sequence:
        return read_shard(self.root / self.entries[i]['file'])

    def names(self) -> list[str]:
        return [e['name'] for e in self.entries]


class QADataset:
    """QA items of a split, optionally filtered by wording split and task.

    ``ds[i]`` -> item dict (fields of ``qa``) plus ``sequence`` and ``file``;
    ``ds.frames(item, which='key'|'until')`` -> Sequence of the frames the item needs
    ('key': its key frames; 'until': frames 0..until_frame).
    """

    def __init__(self, root: str | Path, split: str = 'test', template_split: str | None = None,
                 tasks: list[str] | None = None):
        self.root = Path(root)
        self.items: list[dict[str, Any]] = []
        for entry in _split_entries(self.root, split):
            with ShardReader(self.root / entry['file']) as reader:
                for item in reader.qa:
                    if template_split and item['template_split'] != template_split:
                        continue
                    if tasks and item['task'] not in tasks:
                        continue
                    self.items.append({**item, 'sequence': entry['name'], 'file': entry['file']})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]

    def frames(self, item: dict[str, Any], which: str = 'key') -> Sequence:
        if which not in ('key', 'until'):
            raise DataError(f"which must be 'key' or 'until', got {which!r}")
        indices = item['frames'] if which == 'key' else range(item['until_frame'] + 1)
        return read_shard(self.root / item['file'], indices)
