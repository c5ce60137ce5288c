"""Batches of QA items drawn from a cache (see `geovr_training.qa.cache`), with the
training augmentations: a random rotation of the world about z plus a translation (the
answers rotate with it), and random keyframe dropout (memories of 1..16 keyframes)."""

from __future__ import annotations

import math

import torch

from geovr_training.qa.cache import MAX_OBJECTS
from geovr_training.qa.vocab import MAX_OPTIONS


def memory_positions(cache: dict, source: str) -> torch.Tensor:
    """(S, M, 3) token world positions: the encoder's ('predicted') or ground-truth depth's
    ('ground_truth', falling back to the encoder's where the ground truth is unknown)."""
    if source == 'predicted':
        return cache['xyz']
    if source == 'ground_truth':
        gt = cache['xyz_gt']
        return torch.where(torch.isfinite(gt), gt, cache['xyz'])
    raise ValueError(f"token_xyz_source must be 'predicted' or 'ground_truth', got {source!r}")


def question_token_batch(cache: dict, text_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded per-token MiniLM states of cache texts: (B, L, 384) float32 and mask (B, L)."""
    offsets = cache['text_token_offsets']
    spans = [(int(offsets[t]), int(offsets[t + 1])) for t in text_ids]
    length = max(1, max(b - a for a, b in spans))
    states = torch.zeros(len(spans), length, cache['text_tokens'].shape[-1])
    mask = torch.zeros(len(spans), length)
    for i, (a, b) in enumerate(spans):
        states[i, :b - a] = cache['text_tokens'][a:b].float()
        mask[i, :b - a] = 1
    return states, mask


def grounding_targets(cache: dict, items: list[dict], seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, MAX_OBJECTS, M) distribution over memory tokens per object role of each item:
    proportional to the share of each (unmasked) token covered by that object's instance
    mask; all 0 where the role is absent or the object is not in the memory."""
    cover = cache['cover'][seq].float()  # (B, M, I)
    b, m, instances = cover.shape
    target = torch.zeros(b, MAX_OBJECTS, m)
    for i, it in enumerate(items):
        for slot, obj in enumerate(it.get('objects', [])[:MAX_OBJECTS]):
            if 0 < obj < instances:
                target[i, slot] = cover[i, :, obj] * mask[i]
    total = target.sum(-1, keepdim=True)
    return torch.where(total > 0, target / total.clamp_min(1e-9), target)


def make_batch(cache: dict, indices: list[int], *, positions: torch.Tensor, blind: bool = False,
               generator: torch.Generator | None = None, rotate: bool = False,
               keyframe_dropout: float = 0.0, word_dropout: float = 0.0,
               tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Model inputs and targets of cache items `indices` (see QAModel and qa_losses).

    tokens: (S, M, C) replacement memory tokens (joint training); defaults to the cache's.
    With `rotate`, a random yaw in [0, 2 pi) and a shift of up to 2 m are applied to all
    positions and answers of each item (requires `generator`); `word_dropout` hides that
    share of each question's token states (never all; a wording augmentation).
    """
    items = [cache['items'][i] for i in indices]
    seq = torch.tensor([it['sequence'] for it in items])
    emb = cache['text_embeddings']
    b = len(items)
    question = emb[[it['question'] for it in items]]
    question_tokens, question_token_mask = question_token_batch(cache, [it['question'] for it in items])
    if word_dropout > 0 and generator is not None:
        keep = (torch.rand(question_token_mask.shape, generator=generator) >= word_dropout).float()
        keep[:, 0] = 1.0  # [CLS] stays: no question loses every token
        question_token_mask = question_token_mask * keep
    options = torch.zeros(b, MAX_OPTIONS, emb.shape[1])
    option_mask = torch.zeros(b, MAX_OPTIONS)
    for i, it in enumerate(items):
        k = len(it['options'])
        if k:
            options[i, :k] = emb[it['options']]
            option_mask[i, :k] = 1
    mem_tokens = (cache['tokens'] if tokens is None else tokens)[seq].float()
    xyz = positions[seq].clone()
    mask = cache['mask'][seq].clone()
    time = cache['time'][seq]
    gt = cache['xyz_gt'][seq]
    bev_valid = mask * torch.isfinite(gt).all(-1).float()
    bev_xy = torch.nan_to_num(gt[..., :2])
    point = torch.tensor([it['point'] or [0.0, 0.0, 0.0] for it in items], dtype=torch.float32)
    position = torch.tensor([it['position'] or [0.0, 0.0, 0.0] for it in items], dtype=torch.float32)
    heading = torch.tensor([0.0 if math.isnan(it['heading']) else it['heading'] for it in items])
    if keyframe_dropout > 0 and generator is not None:
        per = int(cache['info']['pooled'][0] * cache['info']['pooled'][1])
        kf = mask.shape[1] // per
        keep = (torch.rand(b, kf, generator=generator) >= keyframe_dropout).float()
        keep[torch.arange(b), torch.randint(kf, (b,), generator=generator)] = 1.0  # >= 1 keyframe
        mask = mask * keep.repeat_interleave(per, dim=1)
        bev_valid = bev_valid * mask
    if rotate and generator is not None:
        yaw = torch.rand(b, generator=generator) * 2 * math.pi
        shift = (torch.rand(b, 3, generator=generator) * 2 - 1) * torch.tensor([2.0, 2.0, 0.0])
        c, s = yaw.cos(), yaw.sin()
        R = torch.zeros(b, 3, 3)
        R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = c, -s, s, c, 1.0

        def move(p):  # (B, ..., 3)
            flat = p.reshape(b, -1, 3)
            return (flat @ R.transpose(1, 2) + shift[:, None]).reshape(p.shape)
        xyz = move(xyz)
        point, position = move(point[:, None])[:, 0], move(position[:, None])[:, 0]
        gt3 = torch.cat([bev_xy, torch.zeros_like(bev_xy[..., :1])], dim=-1)
        bev_xy = move(gt3)[..., :2]
        heading = torch.remainder(heading + yaw + math.pi, 2 * math.pi) - math.pi
    grounding = torch.zeros(b, MAX_OBJECTS, 1) if blind else grounding_targets(cache, items, seq, mask)
    if blind:  # the question alone: one masked memory slot (no memory content, no cost)
        mem_tokens, xyz, time = mem_tokens[:, :1] * 0, xyz[:, :1] * 0, time[:, :1] * 0
        mask, bev_valid, bev_xy = mask[:, :1] * 0, bev_valid[:, :1] * 0, bev_xy[:, :1] * 0
    return {
        'question': question, 'question_tokens': question_tokens, 'question_token_mask': question_token_mask,
        'options': options, 'option_mask': option_mask, 'memory_tokens': mem_tokens,
        'memory_xyz': xyz * mask.unsqueeze(-1), 'memory_time': time, 'memory_mask': mask,
        'category': torch.tensor([it['category'] for it in items]),
        'numeric_index': torch.tensor([it['numeric_index'] for it in items]),
        'log_value': torch.tensor([it['log_value'] for it in items], dtype=torch.float32),
        'choice_index': torch.tensor([it['choice_index'] for it in items]),
        'point': point, 'has_point': torch.tensor([float(it['point'] is not None) for it in items]),
        'position': position, 'heading': heading,
        'has_pose': torch.tensor([float(it['position'] is not None) for it in items]),
        'bev_xy': bev_xy, 'bev_valid': bev_valid, 'sequence': seq,
        'grounding': grounding,
    }


MODEL_INPUTS = ('question', 'question_tokens', 'question_token_mask', 'options', 'option_mask', 'memory_tokens',
                'memory_xyz', 'memory_time', 'memory_mask')


def model_inputs(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: batch[k] for k in MODEL_INPUTS}
