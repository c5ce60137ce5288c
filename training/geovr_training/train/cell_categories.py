"""Train GeoVR-S v2's per-cell category head (`model/category_head.py`) on rendered rooms.

The backbone is frozen (the shipped v2's), so its per-cell features are computed once and
cached; the head is fitted on the cache in seconds. A cell's label is the rendered category
covering most of its pixels when it covers at least `min_coverage` (0.3, the oracle namer's
threshold in `geovr-eval objects`), else background.

    python -m geovr_training.train.cell_categories cache --checkpoint models/geovr_s_v2/checkpoint.pt \\
        --data /tmp/h7/rooms --split train --out /tmp/h7/cells_train.npz
    python -m geovr_training.train.cell_categories fit --checkpoint models/geovr_s_v2/checkpoint.pt \\
        --train /tmp/h7/cells_train.npz --val /tmp/h7/cells_val.npz --out /tmp/h7/with_head.pt

`cache --features s32` keeps the 320-d features only (a large set's 1280-d ones do not fit in
memory); `--features s16,s32` keeps the stride-16 map too, for a head on the stride-16 cells
(`fit --features s16+s32` or `s16`); `--features s8,s16,s32` also the stride-8 map, for a head
on the stride-8 cells (`fit --features s8+s16+s32`). `fit` defaults: the s32 features, 3x3 cells, 128 hidden,
dropout 0.2, 20 epochs. `fit --init-head` fine-tunes --checkpoint's head instead (its width,
kernel and input normalisation kept): the way to add rooms of another kind, e.g. rendered from
a robot's camera height (`geovr-data generate --camera-height 0.25,0.5`), to a fitted head.

The cache holds, per stride-32 cell (row-major cells of each frame, frames in sequence order):
`s32` (320) and `head` (1280) features as float16, `labels` (int, K = background), and
`fractions` (K + 1) pixel fractions, plus the category names and `grid` (rows, columns); with
`s16`, per stride-16 cell: `s16` (112) float16, `labels_s16`, `fractions_s16`, `grid_s16`; with
`s8` the same per stride-8 cell (`s8`: 40 channels).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from geovr_training.model.category_head import (FEATURE_CHANNELS, FEATURE_STRIDE, KERNELS,
                                                 CellCategoryHead, FineCellCategoryHead, join_features)

MIN_COVERAGE = 0.3
MAP_STRIDE = {'head': 32, 's32': 32, 's16': 16, 's8': 8}  # a cached map -> its cells' size, pixels


def rendered_categories() -> list[str]:
    """The data engine's categories in its own order (the head's columns, background last)."""
    from geovr_training.data.scene import CATEGORIES
    return list(CATEGORIES)


def cell_labels(fractions: np.ndarray, min_coverage: float = MIN_COVERAGE) -> np.ndarray:
    """(...) labels of pixel fractions (..., K + 1): the category with the largest fraction
    where it reaches `min_coverage`, else K (background)."""
    k = fractions.shape[-1] - 1
    best = np.argmax(fractions[..., :-1], axis=-1)
    covered = np.take_along_axis(fractions, best[..., None], axis=-1)[..., 0] >= min_coverage
    return np.where(covered, best, k)


def sequence_features(model, seq, categories: list[str], batch: int = 16,
                      features: tuple[str, ...] = ('s32', 'head')) -> dict[str, np.ndarray]:
    """Per-cell features and pixel fractions of one rendered sequence at its own size (a
    multiple of 32): {'s32': (N*cells, 320), 'head': (N*cells, 1280), 'fractions': (N*cells, K + 1)}
    over the stride-32 cells, with 's16' {'s16': (N*cells16, 112), 'fractions_s16':
    (N*cells16, K + 1)} over the stride-16 cells and with 's8' the same over the stride-8 cells
    (the features named in `features`)."""
    unknown = set(features) - {'s32', 'head', 's16', 's8'}
    if unknown:
        raise ValueError(f'features {sorted(unknown)} are not cached ones (s32, head, s16, s8)')
    from geovr_training.evaluation.objects import oracle_probabilities
    from geovr_training.model import normalize_images
    if seq.segmentation is None or seq.scene is None:
        raise ValueError(f'sequence {seq.name!r} has no segmentation or scene: not a rendered one')
    index = {name: k for k, name in enumerate(categories)}
    category_of = {o.instance_id: index[o.category] for o in seq.scene.objects if o.category in index}
    s32, head = [], []
    finer = {name: [] for name in ('s16', 's8') if name in features}  # per map: its cells' features
    fractions, finer_fractions = [], {name: [] for name in finer}
    with torch.no_grad():
        for start in range(0, len(seq), batch):
            rgb = torch.from_numpy(seq.rgb[start:start + batch]).permute(0, 3, 1, 2).float() / 255.0
            K = torch.from_numpy(seq.K[start:start + batch]).float()
            encoded = model.encode_frames(normalize_images(rgb), K)
            feat = encoded['s32']  # (B, 320, h, w)
            for name, cells in finer.items():
                f = encoded[name]  # (B, C, 2h, 2w) or (B, C, 4h, 4w)
                cells.append(f.flatten(2).transpose(1, 2).reshape(-1, f.shape[1]).half().numpy())
            s32.append(feat.flatten(2).transpose(1, 2).reshape(-1, feat.shape[1]).half().numpy())
            if 'head' in features:
                h = model.backbone.head_features(feat)
                head.append(h.flatten(2).transpose(1, 2).reshape(-1, h.shape[1]).half().numpy())
    for i in range(len(seq)):
        p = oracle_probabilities(seq.segmentation[i], category_of, len(categories), 32)
        fractions.append(p.reshape(-1, p.shape[-1]).astype(np.float16))
        for name, cells in finer_fractions.items():
            p = oracle_probabilities(seq.segmentation[i], category_of, len(categories), MAP_STRIDE[name])
            cells.append(p.reshape(-1, p.shape[-1]).astype(np.float16))
    out = {'s32': np.concatenate(s32), 'fractions': np.concatenate(fractions)}
    if 'head' in features:
        out['head'] = np.concatenate(head)
    for name in finer:
        out[name] = np.concatenate(finer[name])
        out[f'fractions_{name}'] = np.concatenate(finer_fractions[name])
    return {k: v for k, v in out.items() if k in features or k.startswith('fractions')}


def cache_features(model, sequences: Iterable, categories: list[str] | None = None,
                   min_coverage: float = MIN_COVERAGE, features: tuple[str, ...] = ('s32', 'head'),
                   progress: bool = False) -> dict[str, np.ndarray]:
    """The cache (module docstring) of `sequences` (any iterable: read one at a time); `frame`
    (cells,) numbers each cell's frame; `grid` (2,) the cells' (rows, columns) per frame
    (every sequence of one size, whole 32-pixel cells); with 's16' in `features` also
    `labels_s16` and `grid_s16` (2 x grid) of the stride-16 cells, with 's8' `labels_s8` and
    `grid_s8` (4 x grid)."""
    categories = categories or rendered_categories()
    parts, sizes, frames = [], set(), []
    start = time.perf_counter()
    for seq in sequences:
        sizes.add(seq.rgb.shape[1:3])
        if len(sizes) != 1 or any(v % 32 for v in seq.rgb.shape[1:3]):
            raise ValueError(f'the sequences must share one size of whole 32-pixel cells, got {sorted(sizes)}')
        parts.append(sequence_features(model, seq, categories, features=features))
        frames.append(len(seq))
        if progress and (len(frames) % 25 == 0):
            print(f'cache: {len(frames)} sequences, {sum(frames)} frames, {time.perf_counter() - start:.0f} s',
                  file=sys.stderr, flush=True)
    if not parts:
        raise ValueError('no sequences to cache')
    out = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    grid = np.array(next(iter(sizes))) // 32
    out['frame'] = np.repeat(np.arange(sum(frames)), int(grid.prod()))
    out['labels'] = cell_labels(out['fractions'].astype(np.float32), min_coverage)
    out['categories'] = np.array(categories)
    out['grid'] = grid
    for name in ('s16', 's8'):
        if name in out:
            out[f'labels_{name}'] = cell_labels(out[f'fractions_{name}'].astype(np.float32), min_coverage)
            out[f'grid_{name}'] = 32 // MAP_STRIDE[name] * grid
    out['min_coverage'] = np.array(min_coverage)
    return out


def iter_sequences(data: str | Path, split: str, max_sequences: int | None = None) -> Iterator:
    """The sequences of a generated dataset's split, read one at a time (a large set does not
    fit in memory at once). Raises ValueError for an empty split."""
    from geovr_training.data.shards import SHARD_SUFFIX, read_manifest, read_shard
    manifest = read_manifest(data)
    names = manifest['splits'].get(split)
    if not names:
        raise ValueError(f'dataset {str(data)!r} has no sequences in split {split!r}')
    files = {s['name']: s['file'] for s in manifest['sequences']}
    for name in names[:max_sequences] if max_sequences else names:
        yield read_shard(Path(data) / files.get(name, name + SHARD_SUFFIX))


def class_weights(labels: np.ndarray, num_classes: int, power: float = 0.5) -> torch.Tensor:
    """Class-balanced loss weights: (count / mean count) ** -power, a class never seen gets
    the largest weight of those seen; normalised to a count-weighted mean of 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    seen = counts > 0
    w = np.zeros(num_classes)
    w[seen] = (counts[seen] / counts[seen].mean()) ** -power
    w[~seen] = w[seen].max() if seen.any() else 1.0
    w /= (w * counts).sum() / max(counts.sum(), 1.0)
    return torch.tensor(w, dtype=torch.float32)


def frame_grids(features: np.ndarray, labels: np.ndarray | None, grid, dtype=np.float32
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cached cells (N, C), (N,) -> frames (F, C, h, w) of `dtype` (float16 halves the memory
    of a large set: the cache is float16) and labels (F, h, w) int64 (None: None)."""
    h, w = (int(v) for v in grid)
    x = torch.from_numpy(np.asarray(features, dtype).reshape(-1, h, w, features.shape[-1]))
    y = None if labels is None else torch.from_numpy(np.asarray(labels, np.int64).reshape(-1, h, w))
    return x.permute(0, 3, 1, 2).contiguous(), y


Features = torch.Tensor | tuple[torch.Tensor, ...]


def feature_frames(features: Features) -> int:
    """The number of frames of `features`: frames (F, C, h, w), the (s16, s32) pair of the
    `s16+s32` head, (F, 112, 2h, 2w) and (F, 320, h, w), or the (s16, s32, s8) triple of the
    `s8+s16+s32` head (+ (F, 40, 4h, 4w))."""
    return len(features[0]) if isinstance(features, tuple) else len(features)


def head_inputs(features: Features, idx) -> tuple[torch.Tensor, ...]:
    """The head's float32 inputs of frames `idx` (an index tensor or slice) of `features`
    (`feature_frames`): (B, C, h, w); a pair joined (`join_features`: s16 + s32 upsampled x2); a
    triple as the joined pair and the stride-8 map (`FineCellCategoryHead`'s two inputs)."""
    if isinstance(features, tuple):
        joined = join_features(features[0][idx].float(), features[1][idx].float())
        return (joined, *(f[idx].float() for f in features[2:]))
    return (features[idx].float(),)


def feature_moments(features: Features, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (C,) of the head's input over all frames and cells, computed in
    float64 chunks; of a pair or triple, those of its parts in order (nearest upsampling repeats
    every cell 4 times and keeps them)."""
    if isinstance(features, tuple):
        moments = [feature_moments(f, chunk) for f in features]
        return torch.cat([m[0] for m in moments]), torch.cat([m[1] for m in moments])
    total = torch.zeros(features.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for start in range(0, len(features), chunk):
        x = features[start:start + chunk].double()
        total += x.sum((0, 2, 3))
        squares += (x * x).sum((0, 2, 3))
    n = len(features) * features.shape[2] * features.shape[3]
    mean = total / n
    var = (squares / n - mean * mean).clamp_min(0.0) * n / max(n - 1, 1)
    return mean.float(), var.sqrt().float()


def fit_head(features: Features, labels: torch.Tensor, num_classes: int, hidden: int = 0, kernel: int = 1,
             dropout: float = 0.0, epochs: int = 20, lr: float = 3e-3, weight_decay: float = 1e-2, batch: int = 64,
             balance: float = 0.5, seed: int = 0, val: tuple[Features, torch.Tensor] | None = None,
             progress: bool = False, init: CellCategoryHead | FineCellCategoryHead | None = None
             ) -> tuple[CellCategoryHead | FineCellCategoryHead, list[dict]]:
    """A CellCategoryHead fitted to cached frames: features (F, C, h, w) (or the (s16, s32)
    pair of the `s16+s32` head, `feature_frames`), labels (F, h, w) in [0, num_classes) on the
    head's cells (`frame_grids`); a FineCellCategoryHead to the (s16, s32, s8) triple. AdamW,
    cosine learning rate, batches of `batch` frames, cross-entropy weighted by `class_weights(power=balance)`. Returns (head in eval mode,
    per-epoch history: train loss, and val loss / accuracy / cell IoU when `val` is given);
    `progress` prints each epoch's record to stderr as it ends. With `init` (a fitted head of the
    same features and classes) a copy of it is fine-tuned instead, keeping its input
    normalisation; `hidden`, `kernel` and `dropout` are then its own (a head loaded from a
    checkpoint has no dropout)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    n_frames = feature_frames(features)
    if init is not None:
        head = _trainable_copy(init, features, num_classes)
    else:
        mean, std = feature_moments(features)
        if isinstance(features, tuple) and len(features) == 3:
            fine = features[2].shape[1]
            head = FineCellCategoryHead(len(mean) - fine, fine, num_classes, hidden, kernel, dropout)
        else:
            head = CellCategoryHead(len(mean), num_classes, hidden, kernel, dropout)
        head.set_normalisation(mean, std)
    weights = class_weights(labels.flatten().numpy(), num_classes, balance)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * math.ceil(n_frames / batch)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s / steps, 1))))
    history = []
    started = time.perf_counter()
    for epoch in range(epochs):
        head.train()
        order = torch.randperm(n_frames, generator=generator)
        total = 0.0
        for start in range(0, n_frames, batch):
            idx = order[start:start + batch]
            loss = F.cross_entropy(head(*head_inputs(features, idx)), labels[idx], weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(idx)
        record = {'epoch': epoch + 1, 'loss': total / n_frames}
        if val is not None:
            record.update(evaluate_head(head, *val, weights=weights))
        record['seconds'] = round(time.perf_counter() - started, 1)
        history.append(record)
        if progress:
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in record.items()}),
                  file=sys.stderr, flush=True)
    return head.eval(), history


def _trainable_copy(init: CellCategoryHead | FineCellCategoryHead, features: Features, num_classes: int
                    ) -> CellCategoryHead | FineCellCategoryHead:
    """A trainable copy of `init`, refused (ValueError) where it reads other inputs than
    `features` or names another number of classes."""
    channels = [f.shape[1] for f in features] if isinstance(features, tuple) else [features.shape[1]]
    if isinstance(features, tuple):  # the head reads the joined (s16, s32) pair, then s8
        channels = [channels[0] + channels[1], *channels[2:]]
    expected = ([init.context_channels, init.feature_mean.numel() - init.context_channels]
                if isinstance(init, FineCellCategoryHead) else [init.feature_mean.numel()])
    if channels != expected:
        raise ValueError(f'the head to fine-tune reads {expected} channels, the features hold {channels}')
    classes = init.classifier[-1].out_channels
    if classes != num_classes:
        raise ValueError(f'the head to fine-tune names {classes} classes, the labels {num_classes}')
    return copy.deepcopy(init)


def head_probabilities(head: CellCategoryHead | FineCellCategoryHead, features: Features, batch: int = 256
                       ) -> np.ndarray:
    """(F, h, w, K + 1) softmax probabilities of frames (F, C, h, w) (or an (s16, s32) pair /
    (s16, s32, s8) triple, `feature_frames`; h, w then the stride-16 / stride-8 grid)."""
    out = []
    with torch.no_grad():
        for start in range(0, feature_frames(features), batch):
            x = head_inputs(features, slice(start, start + batch))
            out.append(torch.softmax(head.eval()(*x), 1).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def cell_iou(predicted: np.ndarray, truth: np.ndarray, background: int) -> dict[int, float]:
    """{category: IoU of the cells labelled with it} over categories in either (background excluded)."""
    out = {}
    for k in sorted(set(np.unique(truth)) | set(np.unique(predicted))):
        if k == background:
            continue
        union = int(((truth == k) | (predicted == k)).sum())
        out[int(k)] = int(((truth == k) & (predicted == k)).sum()) / union
    return out


def evaluate_head(head: CellCategoryHead | FineCellCategoryHead, features: Features, labels: torch.Tensor, min_score: float = 0.3,
                  weights: torch.Tensor | None = None) -> dict:
    """val_loss (weighted as in training), val_accuracy, val_cell_iou (mean over the categories
    the truth holds) with cells labelled where the best category's probability >= min_score."""
    probs = head_probabilities(head, features).reshape(-1, head.classifier[-1].out_channels)
    k = probs.shape[1] - 1
    y = labels.flatten().numpy()
    loss = F.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-12)), torch.from_numpy(y), weight=weights)
    best = probs[:, :-1].argmax(1)
    predicted = np.where(probs[np.arange(len(probs)), best] >= min_score, best, k)
    ious = cell_iou(predicted, y, k)
    shown = set(np.unique(y)) - {k}
    return {'val_loss': float(loss), 'val_accuracy': float((predicted == y).mean()),
            'val_cell_iou': float(np.mean([v for c, v in ious.items() if c in shown])) if shown else float('nan'),
            'val_cell_iou_per_category': {int(c): round(v, 3) for c, v in ious.items() if c in shown}}


@dataclass(frozen=True)
class HeadToFineTune:
    head: CellCategoryHead | FineCellCategoryHead
    hidden: int
    kernel: int
    dropout: float


def head_to_fine_tune(checkpoint: str | Path, categories: list[str], features: str) -> HeadToFineTune:
    """The category head of `checkpoint` with its width and kernel, refused (ValueError) where it
    names other categories than the caches or reads other features than `features`."""
    from geovr_training.model import load_checkpoint
    model, _ = load_checkpoint(checkpoint)
    if getattr(model, 'category_head', None) is None:
        raise ValueError(f'{checkpoint} has no category head to fine-tune')
    if list(model.args.cell_categories) != list(categories):
        raise ValueError(f'{checkpoint} names the categories {list(model.args.cell_categories)}, '
                         f'the caches {list(categories)}')
    if model.args.category_features != features:
        raise ValueError(f'{checkpoint} reads {model.args.category_features!r} features, not {features!r}')
    dropout = max((m.p for m in model.category_head.modules() if isinstance(m, torch.nn.Dropout)), default=0.0)
    return HeadToFineTune(model.category_head, model.args.category_hidden, model.args.category_kernel, dropout)


def attach_head(checkpoint: str | Path, head: CellCategoryHead | FineCellCategoryHead, categories: list[str], features: str,
                hidden: int, kernel: int, out: str | Path, extra_metrics: dict | None = None) -> Path:
    """A copy of `checkpoint` with the head in the model (model_args.cell_categories, ...);
    every other weight and key is unchanged."""
    from geovr_training.model import build_model, model_args_from_dict, read_checkpoint, save_checkpoint
    state = read_checkpoint(checkpoint)
    values = {**state['model_args'], 'cell_categories': list(categories), 'category_features': features,
              'category_hidden': int(hidden), 'category_kernel': int(kernel)}
    model = build_model(model_args_from_dict(values, pretrained=False))
    weights = {k: v.float() if v.is_floating_point() else v for k, v in state['model'].items()
               if not k.startswith('category_head.')}
    weights.update({f'category_head.{k}': v for k, v in head.state_dict().items()})
    model.load_state_dict(weights, strict=True)
    metrics = {**state.get('metrics', {}), 'category_head': extra_metrics or {}}
    extra = {k: v for k, v in state.items()
             if k not in ('model', 'model_args', 'config', 'epoch', 'optimizer', 'metrics', 'format')}
    return save_checkpoint(out, model, state['config'], state['epoch'], metrics=metrics, extra=extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m geovr_training.train.cell_categories',
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='command', required=True)
    cache = sub.add_parser('cache', help='per-cell features and labels of a generated dataset split')
    cache.add_argument('--checkpoint', default='models/geovr_s_v2/checkpoint.pt')
    cache.add_argument('--data', required=True)
    cache.add_argument('--split', default='train')
    cache.add_argument('--min-coverage', type=float, default=MIN_COVERAGE)
    cache.add_argument('--max-sequences', type=int, default=None)
    cache.add_argument('--features', default='s32,head', help='which features to keep (default s32,head)')
    cache.add_argument('--out', required=True)
    fit = sub.add_parser('fit', help='fit the head on a cache and write the checkpoint with it')
    fit.add_argument('--checkpoint', default='models/geovr_s_v2/checkpoint.pt')
    fit.add_argument('--train', required=True, nargs='+', help='caches (.npz) to fit on')
    fit.add_argument('--val', default=None, help='cache (.npz) reported per epoch')
    fit.add_argument('--features', choices=sorted(FEATURE_CHANNELS), default='s32')
    fit.add_argument('--hidden', type=int, default=128, help='hidden width (0: linear; default 128)')
    fit.add_argument('--kernel', type=int, choices=KERNELS, default=3, help='cells seen per cell (3: 3x3; default)')
    fit.add_argument('--dropout', type=float, default=0.2)
    fit.add_argument('--epochs', type=int, default=20)
    fit.add_argument('--lr', type=float, default=3e-3)
    fit.add_argument('--weight-decay', type=float, default=1e-2)
    fit.add_argument('--balance', type=float, default=0.5, help='class weight = (frequency) ** -balance')
    fit.add_argument('--seed', type=int, default=0)
    fit.add_argument('--threads', type=int, default=1, help='CPU threads torch fits with (default 1)')
    fit.add_argument('--init-head', action='store_true',
                     help="fine-tune --checkpoint's category head (its features and categories; its width and "
                          "kernel, and no dropout, whatever --hidden, --kernel and --dropout say) instead of "
                          "fitting a new one; --lr then sets the fine-tune's rate")
    fit.add_argument('--out', required=True, help='checkpoint with the head (full precision)')
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, getattr(args, 'threads', 1)))

    from geovr_training.model import CheckpointError, load_checkpoint
    if args.command == 'cache':
        start = time.perf_counter()
        try:
            model, _ = load_checkpoint(args.checkpoint)
            cached = cache_features(model, iter_sequences(args.data, args.split, args.max_sequences),
                                    min_coverage=args.min_coverage, features=tuple(args.features.split(',')),
                                    progress=True)
        except (CheckpointError, FileNotFoundError, ValueError) as exc:
            print(f'cell_categories: error: {exc}', file=sys.stderr)
            return 2
        np.savez(args.out, **cached)
        counts = np.bincount(cached['labels'], minlength=len(cached['categories']) + 1)
        print(json.dumps({'cells': int(len(cached['labels'])), 'frames': int(cached['frame'].max() + 1),
                          'seconds': round(time.perf_counter() - start, 1),
                          'labels': dict(zip([*cached['categories'].tolist(), 'background'], counts.tolist()))}))
        return 0
    caches = [np.load(path) for path in args.train] + ([np.load(args.val)] if args.val else [])
    categories = caches[0]['categories'].tolist()
    grid = caches[0]['grid']
    for path, cache in zip([*args.train, args.val], caches):
        if cache['categories'].tolist() != categories or cache['grid'].tolist() != grid.tolist():
            print(f'cell_categories: error: {path} names other categories or cells than {args.train[0]}',
                  file=sys.stderr)
            return 2
        missing = [k for k in args.features.split('+') if k not in cache]
        if missing:
            print(f'cell_categories: error: {path} holds no {missing[0]!r} features (cache --features)',
                  file=sys.stderr)
            return 2
    init = None
    if args.init_head:
        try:
            init = head_to_fine_tune(args.checkpoint, categories, args.features)
        except (CheckpointError, FileNotFoundError, ValueError) as exc:
            print(f'cell_categories: error: {exc}', file=sys.stderr)
            return 2
        args.hidden, args.kernel, args.dropout = init.hidden, init.kernel, init.dropout
    start = time.perf_counter()
    stride = FEATURE_STRIDE[args.features]
    label_grid = grid * (32 // stride)
    labels_key = 'labels' if stride == 32 else f'labels_s{stride}'
    maps = args.features.split('+')  # the cached maps the head reads: one, the (s16, s32) pair or + s8
    maps = maps if len(maps) == 1 else ['s16', 's32', *(['s8'] if 's8' in maps else [])]
    parts = []  # per cache: (features: one map or a tuple of maps, labels), float16 frames
    for c in caches:
        y = torch.from_numpy(np.asarray(c[labels_key], np.int64).reshape(-1, *(int(v) for v in label_grid)))
        x = tuple(frame_grids(c[m], None, grid * (32 // MAP_STRIDE[m]), np.float16)[0] for m in maps)
        parts.append((x if len(x) > 1 else x[0], y))
    min_coverage = float(caches[0]['min_coverage'])
    del caches
    val = parts.pop() if args.val else None
    if len(maps) > 1:
        x = tuple(torch.cat([p[0][k] for p in parts]) for k in range(len(maps)))
    else:
        x = torch.cat([p[0] for p in parts])
    y = torch.cat([p[1] for p in parts])
    del parts
    print(f'cell_categories: {feature_frames(x)} training frames of {args.features} on {label_grid.tolist()} cells '
          f'loaded in {time.perf_counter() - start:.0f} s', file=sys.stderr, flush=True)
    head, history = fit_head(x, y, len(categories) + 1, args.hidden, args.kernel, args.dropout, args.epochs,
                             args.lr, args.weight_decay, balance=args.balance, seed=args.seed, val=val,
                             progress=True, init=init and init.head)
    for record in history:
        print(json.dumps(record))
    metrics = {'features': args.features, 'hidden': args.hidden, 'kernel': args.kernel, 'dropout': args.dropout,
               'epochs': args.epochs, 'balance': args.balance, 'min_coverage': min_coverage,
               'init_head': str(args.checkpoint) if init else None, 'lr': args.lr,
               'train_frames': int(feature_frames(x)), 'stride': FEATURE_STRIDE[args.features], 'train': [str(p) for p in args.train], 'val': args.val,
               **{k: v for k, v in history[-1].items() if k != 'epoch'}}
    path = attach_head(args.checkpoint, head, categories, args.features, args.hidden, args.kernel, args.out, metrics)
    print(f'wrote {path}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
