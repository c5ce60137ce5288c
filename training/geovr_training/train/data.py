"""Training clips for the trainer, from the data engine's `ClipDataset`.

`build_datasets(config, seed)` -> (train, val): 2-frame clips resized to
`data.resolution` with K updated, from one dataset folder or several (`data.root` a list:
their clips are pooled); camera-aware augmentation (crop, resize, zoom,
principal-point shift with K updated) on the train split when `data.camera_augmentation`;
`data.depth_supervision` marks folders whose depth teaches shape only ('metric_depth').
Samples: images float32 (2, 3, H, W) in [0, 1], K (2, 3, 3), depth (2, H, W) NaN invalid,
valid (2, H, W), T_world_cam (2, 4, 4) optical camera-to-world.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset


class PooledClips(Dataset):
    """Clips of several datasets as one, interleaved in proportion to their sizes, so that
    the first batches of an in-order validation already cover every dataset;
    `set_epoch` reaches each (augmentation draws)."""

    def __init__(self, datasets: list[Dataset]):
        self.datasets = list(datasets)
        keys = [((j + 0.5) / len(part), p, j) for p, part in enumerate(self.datasets) for j in range(len(part))]
        self.index = np.array([(p, j) for _, p, j in sorted(keys)], dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, k: int):
        p, j = self.index[k]
        return self.datasets[p][int(j)]

    def set_epoch(self, epoch: int) -> None:
        for part in self.datasets:
            part.set_epoch(epoch)


class DepthSupervision(Dataset):
    """A dataset's clips, each marked 'metric_depth' (a bool tensor): False where its depth
    should teach shape only (`losses.shape_loss`), not metric scale."""

    def __init__(self, dataset: Dataset, metric: bool):
        self.dataset, self.metric = dataset, bool(metric)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, k: int):
        return {**self.dataset[k], 'metric_depth': torch.tensor(self.metric)}

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)


SUPERVISION_KINDS = ('metric', 'shape')


def build_datasets(config: dict, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, val) clip datasets from the `data` section of a resolved config."""
    from geovr_training.data.augment import CameraAugment
    from geovr_training.data.dataset import ClipDataset

    data = config['data']
    if not data.get('root'):
        raise ValueError('data.root is not set: generate data with `geovr-data generate --out DIR` '
                         'and pass --set data.root=DIR')
    common = dict(num_frames=2, frame_gap=tuple(data['frame_gap']), out_size=tuple(data['resolution']), seed=seed,
                  semantics=bool(data.get('semantics')))
    roots = [data['root']] if isinstance(data['root'], str) else list(data['root'])
    repeats = [int(r) for r in (data.get('repeats') or [1] * len(roots))]
    if len(repeats) != len(roots) or min(repeats) < 1:
        raise ValueError(f"data.repeats {data.get('repeats')} must give a count >= 1 for each of the "
                         f'{len(roots)} data.root folders')
    supervision = list(data.get('depth_supervision') or ['metric'] * len(roots))
    if len(supervision) != len(roots) or not set(supervision) <= set(SUPERVISION_KINDS):
        raise ValueError(f"data.depth_supervision {data.get('depth_supervision')} must name one of "
                         f'{SUPERVISION_KINDS} for each of the {len(roots)} data.root folders')
    zoom = _zoom_range(data, 'camera_zoom', CameraAugment.zoom)
    narrow_zoom = _zoom_range(data, 'camera_zoom_narrow', CameraAugment.narrow_zoom)
    blur_factor = _zoom_range(data, 'camera_blur_factor', CameraAugment.blur_factor)
    narrow_fraction, blur_fraction, colour_fraction, flip_fraction = (_fraction(data, key) for key in (
        'camera_zoom_narrow_fraction', 'camera_blur_fraction', 'colour_jitter_fraction', 'flip_fraction'))
    augment = bool(data['camera_augmentation'])
    # a dataset repeated r times enters the training pool r times, each copy with its own
    # augmentation draws (seed offset), so that a few real recordings weigh against many renders
    augmentation = CameraAugment(out_size=common['out_size'], zoom=zoom, narrow_zoom=narrow_zoom,
                                 narrow_fraction=narrow_fraction, blur_fraction=blur_fraction,
                                 blur_factor=blur_factor, colour_fraction=colour_fraction,
                                 flip_fraction=flip_fraction) if augment else None
    def marked(dataset: Dataset, kind: str) -> Dataset:  # with a shape folder every clip is marked: batches collate
        return DepthSupervision(dataset, kind == 'metric') if 'shape' in supervision else dataset

    train = [marked(ClipDataset(root, data['train_split'], augment=augment, stride=int(data.get('clip_stride') or 1),
                                augmentation=augmentation, **{**common, 'seed': seed + 7919 * copy}), kind)
             for root, count, kind in zip(roots, repeats, supervision) for copy in range(count)]
    val = [marked(ClipDataset(root, data['val_split'], augment=False,
                              stride=int(data.get('val_clip_stride') or 1), **common), kind)
           for root, kind in zip(roots, supervision)]
    if len(train) == 1:
        return train[0], val[0]
    return PooledClips(train), PooledClips(val)


def _fraction(data: dict, key: str) -> float:
    value = float(data.get(key) or 0.0)
    if not 0 <= value <= 1:
        raise ValueError(f'data.{key} must be in [0, 1], got {data.get(key)}')
    return value


def _zoom_range(data: dict, key: str, default: tuple[float, float]) -> tuple[float, float]:
    zoom = tuple(float(z) for z in data.get(key) or default)
    if len(zoom) != 2 or not all(np.isfinite(zoom)) or not 0 < zoom[0] <= zoom[1]:
        raise ValueError(f'data.{key} must be [min, max] with 0 < min <= max, got {data.get(key)}')
    return zoom
