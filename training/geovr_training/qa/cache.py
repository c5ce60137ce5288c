"""Precomputed QA training data: per sequence, the frozen encoder's pooled keyframe tokens
with world positions, and per question the frozen language embeddings.

Building the cache runs the geometry encoder once per keyframe clip and MiniLM once per
distinct text, so training the fusion model afterwards touches neither.

Cache layout (a dict saved with torch.save, loadable with weights_only=True):
  tokens (S, M, C) float16; xyz (S, M, 3) world metres from the encoder's depth;
  xyz_gt (S, M, 3) world metres from ground-truth depth (NaN where unknown);
  time (S, M) keyframe order in [0, 1]; mask (S, M) 1 for real tokens;
  cover (S, M, I) float16 share of each token's image area covered by instance id i (from
  the renderer's instance masks; all 0 where the data set has none): the grounding targets;
  clips (S, KF, 2, H, W, 3) uint8, clip_K (S, KF, 2, 3, 3), clip_slot (KF,) and
  keyframe_poses (S, KF, 4, 4) only when `keep_clips` (joint training re-runs the encoder);
  texts: list of str, text_embeddings (T, 384); text_tokens (sum L_t, 384) float16, the
  per-token MiniLM states of all texts end to end, text t at rows
  text_token_offsets[t]:text_token_offsets[t + 1]; items: list of dicts (see `_item_record`);
  sequences: list of names; splits: list of split names per sequence; info: dict.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from geovr_ros.geometry import resize_intrinsics
from geovr_training.qa.items import target_from_item
from geovr_training.qa.memory import (keyframe_indices, pool_token_grid, pooled_depth_points, pooled_instance_cover,
                                      world_positions)
from geovr_training.qa.vocab import QAVocabularyError


def load_geometry_encoder(checkpoint: str | None, model_args: dict | None = None, seed: int = 0):
    """The geometry encoder in eval mode: from `checkpoint`, or untrained from `model_args`
    (seeded) when `checkpoint` is None (the 'without geometric training' ablation)."""
    from geovr_training.model import build_model, load_checkpoint
    if checkpoint:
        model, _ = load_checkpoint(checkpoint)
        return model
    torch.manual_seed(seed)
    return build_model(dict(model_args or {})).eval()


def normalise_images(rgb: np.ndarray) -> torch.Tensor:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 normalised as the perception graph."""
    from geovr_training.model import IMAGE_MEAN, IMAGE_STD
    x = torch.from_numpy(np.ascontiguousarray(rgb)).float() / 255.0
    x = (x - torch.tensor(IMAGE_MEAN)) / torch.tensor(IMAGE_STD)
    return x.movedim(-1, -3).contiguous()


def resize_frames(rgb: np.ndarray, depth: np.ndarray | None, K: np.ndarray, size: tuple[int, int]):
    """Resize (N, H, W, 3) rgb (area), depth (nearest) and K (N, 3, 3) to size (W, H)."""
    import cv2
    h, w = rgb.shape[1:3]
    if (w, h) == tuple(size):
        return rgb, depth, K
    rgb = np.stack([cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in rgb])
    if depth is not None:
        depth = np.stack([cv2.resize(d, size, interpolation=cv2.INTER_NEAREST) for d in depth])
    K = np.stack([resize_intrinsics(k, (w, h), size) for k in K])
    return rgb, depth, K


def keyframe_clips(num_frames: int, keyframes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clip frame pairs (KF, 2) for keyframes: (previous frame, keyframe), or (keyframe,
    next frame) for frame 0; and which clip slot (0 or 1) holds the keyframe."""
    pairs, slot = [], []
    for f in keyframes:
        if f > 0 or num_frames == 1:
            pairs.append((max(f - 1, 0), f))
            slot.append(1)
        else:
            pairs.append((f, f + 1))
            slot.append(0)
    return np.asarray(pairs), np.asarray(slot)


@torch.no_grad()
def encode_keyframes(encoder, clips: torch.Tensor, clip_K: torch.Tensor, slot: torch.Tensor,
                     pooled: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(KF, 2, 3, H, W) normalised clips, (KF, 2, 3, 3) K, (KF,) slot of the keyframe ->
    pooled tokens (KF, P, C) and camera-frame positions (KF, P, 3) metres."""
    return encode_keyframes_grad(encoder, clips, clip_K, slot, pooled)


def encode_keyframes_grad(encoder, clips, clip_K, slot, pooled):
    """As `encode_keyframes`, keeping gradients (joint training)."""
    out = encoder(clips, clip_K)
    index = torch.arange(clips.shape[0])
    tokens = out['tokens'][index, slot]  # (KF, N, C)
    xyz = out['token_xyz'][index, slot]
    grid = tuple(encoder.args.token_grid)
    return pool_token_grid(tokens, grid, pooled), pool_token_grid(xyz, grid, pooled)


CACHE_FORMAT = 2  # bump when the cache's contents change: old caches are then rebuilt
MAX_OBJECTS = 5  # object roles grounded per question (the QA model's object slots)


def _item_record(target, sequence_index: int, text_index: dict[str, int], objects: list[int]) -> dict:
    return {'sequence': sequence_index, 'question': text_index[target.question],
            'objects': [int(o) for o in objects[:MAX_OBJECTS]],
            'options': [text_index[o] for o in target.options], 'category': target.category_index,
            'numeric_index': target.numeric_index,
            'log_value': float(np.log(target.value)) if target.numeric_index >= 0 else 0.0,
            'value': float(target.value), 'choice_index': target.choice_index,
            'point': None if target.point is None else [float(v) for v in target.point],
            'position': None if target.position is None else [float(v) for v in target.position],
            'heading': float(target.heading), 'template_split': target.template_split,
            'id': target.item_id, 'text': target.question, 'option_texts': list(target.options)}


def build_cache(dataset_dir: str | Path, splits: list[str], encoder, *, num_keyframes: int = 16,
                pooled: tuple[int, int] = (4, 4), input_size: tuple[int, int] = (256, 192),
                keep_clips: bool = False, max_sequences: int | None = None, embedder=None,
                progress: bool = True) -> dict:
    """Build the QA cache of `splits` of a geovr-data dataset folder (see module docstring).

    encoder: a GeoVRv2Model in eval mode; `input_size` (W, H) multiples of its patch size.
    Items whose answers do not fit the vocabulary are skipped and counted in info.
    """
    from tqdm import tqdm

    from geovr_training.data.shards import ShardReader, read_manifest
    from geovr_training.qa.language import TextEmbedder
    dataset_dir = Path(dataset_dir)
    manifest = read_manifest(dataset_dir)
    files = {s['name']: s['file'] for s in manifest['sequences']}
    names = [(n, split) for split in splits for n in manifest['splits'].get(split, [])]
    if max_sequences is not None:
        names = names[:max_sequences]
    if not names:
        raise ValueError(f'{dataset_dir} has no sequences in splits {splits}')
    tokens, xyz, xyz_gt, times, covers, clips_all, clipk_all, poses = [], [], [], [], [], [], [], []
    targets, skipped = [], 0
    grid = tuple(encoder.args.token_grid)
    for s_index, (name, _split) in enumerate(tqdm(names, desc='qa cache', disable=not progress)):
        with ShardReader(dataset_dir / files[name]) as reader:
            n = len(reader)
            keyframes = keyframe_indices(n, num_keyframes)
            pairs, slot = keyframe_clips(n, keyframes)
            needed = sorted(set(pairs.reshape(-1).tolist()))
            seq = reader.read(needed, segmentation=True)
            items = reader.qa
        where = {f: i for i, f in enumerate(needed)}
        rgb, depth, K = resize_frames(seq.rgb, seq.depth, seq.K, tuple(input_size))
        idx = np.vectorize(where.get)(pairs)  # (KF, 2)
        clips = normalise_images(rgb[idx])  # (KF, 2, 3, H, W)
        clip_K = torch.from_numpy(K[idx]).float()
        tok, cam_xyz = encode_keyframes(encoder, clips, clip_K, torch.from_numpy(slot), pooled)
        kf_local = idx[np.arange(len(slot)), slot]  # position of each keyframe in `needed`
        T = seq.T_world_cam[kf_local]
        gt_cam = np.stack([pooled_depth_points(depth[j], K[j], pooled) for j in kf_local]) if depth is not None \
            else np.full(cam_xyz.shape, np.nan)
        kf = len(keyframes)
        per = pooled[0] * pooled[1]
        tokens.append(tok.reshape(kf * per, -1).half())
        xyz.append(torch.from_numpy(world_positions(cam_xyz.numpy(), T).reshape(kf * per, 3)).float())
        xyz_gt.append(torch.from_numpy(world_positions(gt_cam, T).reshape(kf * per, 3)).float())
        if seq.segmentation is not None:
            instances = int(max(seq.segmentation[j].max() for j in kf_local)) + 1
            covers.append(torch.from_numpy(np.concatenate([
                pooled_instance_cover(seq.segmentation[j], grid, pooled, instances) for j in kf_local])))
        else:
            covers.append(torch.zeros(kf * per, 1))
        order = torch.linspace(0, 1, kf) if kf > 1 else torch.ones(1)
        times.append(order.repeat_interleave(per))
        if keep_clips:
            clips_all.append(torch.from_numpy(np.ascontiguousarray(rgb[idx])))
            clipk_all.append(clip_K)
            poses.append(torch.from_numpy(T).float())
        for item in items:
            try:
                targets.append((s_index, target_from_item(item), list(item.get('objects') or [])))
            except (QAVocabularyError, KeyError, TypeError, ValueError):
                skipped += 1
    m = max(t.shape[0] for t in tokens)

    def pad(seqs, fill=0.0):
        out = torch.full((len(seqs), m) + tuple(seqs[0].shape[1:]), fill, dtype=seqs[0].dtype)
        for i, t in enumerate(seqs):
            out[i, :t.shape[0]] = t
        return out
    mask = pad([torch.ones(t.shape[0]) for t in tokens])
    instances = max(c.shape[1] for c in covers)
    cover = pad([torch.nn.functional.pad(c, (0, instances - c.shape[1])).half() for c in covers])
    texts = sorted({t.question for _, t, _ in targets} | {o for _, t, _ in targets for o in t.options})
    embedder = embedder or TextEmbedder()
    embeddings = embedder.embed(texts)
    states = embedder.token_states(texts)
    offsets = torch.zeros(len(texts) + 1, dtype=torch.long)
    offsets[1:] = torch.tensor([len(x) for x in states], dtype=torch.long).cumsum(0)
    text_index = {t: i for i, t in enumerate(texts)}
    cache = {'tokens': pad(tokens), 'xyz': pad(xyz), 'xyz_gt': pad(xyz_gt, float('nan')), 'time': pad(times),
             'mask': mask, 'cover': cover,
             'texts': texts, 'text_embeddings': embeddings.float(),
             'text_tokens': torch.cat(states).half() if states else torch.zeros(0, embeddings.shape[-1]).half(),
             'text_token_offsets': offsets,
             'items': [_item_record(t, s, text_index, objects) for s, t, objects in targets],
             'sequences': [n for n, _ in names], 'splits': [s for _, s in names],
             'info': {'dataset': str(dataset_dir), 'num_keyframes': num_keyframes, 'pooled': list(pooled),
                      'input_size': list(input_size), 'skipped_items': skipped,
                      'token_grid': list(encoder.args.token_grid), 'token_dim': int(encoder.args.dim)}}
    if keep_clips:
        cache['clips'] = torch.stack(clips_all)
        cache['clip_K'] = torch.stack(clipk_all)
        cache['clip_slot'] = torch.from_numpy(slot)
        cache['keyframe_poses'] = torch.stack(poses)
    return cache
