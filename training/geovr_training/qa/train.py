"""Training of the QA fusion model: `train_qa(config, out_dir)`; CLI
`python -m geovr_training.qa.train --config training/configs/qa_cpu_v2.yaml`.

The frozen geometry encoder's keyframe tokens and the frozen MiniLM embeddings are cached
once (`geovr_training.qa.cache`) under `cache_dir`, keyed by the sha256 of what they depend
on; the fusion model then trains on the cache. In `geometry.mode: joint` the encoder is
re-run on the cached keyframe clips every step and trained with the QA loss.
Writes out_dir/qa_best.pt, qa_last.pt, qa_blind.pt (blind baseline when enabled),
train_log.json and TensorBoard logs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from geovr_training.qa.batches import make_batch, memory_positions, model_inputs
from geovr_training.qa.cache import (CACHE_FORMAT, build_cache, encode_keyframes_grad, load_geometry_encoder,
                                     normalise_images)
from geovr_training.qa.checkpoint import file_sha256, geometry_config_sha256, save_qa_checkpoint
from geovr_training.qa.losses import qa_losses
from geovr_training.qa.metrics import decode_outputs, score_items
from geovr_training.qa.model import QAModelArgs, build_qa_model
from geovr_training.train.trainer import seed_everything

DEFAULT_CONFIG: dict = {
    'task': 'qa',
    'data': '/tmp/geovr_qa/data',
    'cache_dir': '/tmp/geovr_qa/cache',
    'out_dir': None,  # where checkpoints and logs go (the CLI's --out overrides it)
    'seed': 0,
    'geometry': {'checkpoint': None, 'model_args': {}, 'mode': 'frozen', 'input_size': [256, 192],
                 'token_xyz_source': 'predicted'},
    'memory': {'num_keyframes': 16, 'pooled_grid': [4, 4]},
    'model': {},
    'training': {'epochs': 40, 'batch_size': 32, 'lr': 3e-4, 'weight_decay': 0.01, 'patience': 10,
                 'max_sequences': None, 'rotate': True, 'keyframe_dropout': 0.25, 'word_dropout': 0.0,
                 'blind': False,
                 'train_blind_baseline': True, 'train_templates': ['train'], 'encoder_lr': 1e-5,
                 'threads': 1, 'init_from': None},
    'loss_weights': {'category': 1.0, 'numeric': 1.0, 'choice': 1.0, 'point': 1.0, 'bev': 0.05,
                     'position': 0.075, 'heading': 0.2625, 'grounding': 0.5},
    'heading_sigma_deg': 15.0,
}


class QAConfigError(ValueError):
    """A QA config value is invalid; the message names the key."""


QA_FREE_SECTIONS = ('model', 'geometry.model_args')  # validated by QAModelArgs / the geometry model


def _update_sections(base: dict, config: dict) -> dict:
    """A copy of `base` with `config` merged in; unknown keys raise QAConfigError (the
    geometry trainer's merge: one config system for both trainings)."""
    from geovr_training.train.config import merge_strict
    return merge_strict(base, config or {}, QA_FREE_SECTIONS, error=QAConfigError)


def merge_config(config: dict) -> dict:
    """DEFAULT_CONFIG merged with `config` (unknown keys rejected, naming them); validated."""
    merged = _update_sections(DEFAULT_CONFIG, config)
    if merged.get('task', 'qa') != 'qa':
        raise QAConfigError(f"config task is {merged['task']!r}, the QA trainer needs 'qa'")
    if merged['geometry']['mode'] not in ('frozen', 'joint'):
        raise QAConfigError(f"geometry.mode must be 'frozen' or 'joint', got {merged['geometry']['mode']!r}")
    if merged['geometry']['token_xyz_source'] not in ('predicted', 'ground_truth'):
        raise QAConfigError(f"geometry.token_xyz_source must be 'predicted' or 'ground_truth', "
                            f"got {merged['geometry']['token_xyz_source']!r}")
    QAModelArgs.from_dict(dict(merged['model']))  # raises on unknown keys
    return merged


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """The YAML config at `path`, with `overrides` (nested dict) merged in, validated."""
    import yaml
    with open(path) as f:
        config = merge_config(yaml.safe_load(f) or {})
    return merge_config(_update_sections(config, overrides)) if overrides else config


def cached(config: dict, splits: list[str], keep_clips: bool = False, progress: bool = True) -> dict:
    """The QA cache of `splits` for this config, built once and reused (keyed by sha256)."""
    g, mem = config['geometry'], config['memory']
    manifest = Path(config['data']) / 'manifest.json'
    key = {'format': CACHE_FORMAT, 'data': str(Path(config['data']).resolve()),
           'manifest': hashlib.sha256(manifest.read_bytes()).hexdigest() if manifest.is_file() else None,
           'geometry': file_sha256(g['checkpoint']), 'model_args': g['model_args'], 'seed': config['seed'],
           'input_size': g['input_size'], 'memory': mem, 'splits': splits, 'clips': keep_clips,
           'max_sequences': config['training'].get('max_sequences')}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(config['cache_dir']) / f'qa_cache_{"-".join(splits)}_{digest}.pt'
    if path.is_file():
        return torch.load(path, weights_only=True)
    encoder = load_geometry_encoder(g['checkpoint'], g['model_args'], config['seed'])
    cache = build_cache(config['data'], splits, encoder, num_keyframes=mem['num_keyframes'],
                        pooled=tuple(mem['pooled_grid']), input_size=tuple(g['input_size']),
                        keep_clips=keep_clips, max_sequences=config['training'].get('max_sequences'),
                        progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache, path)
    return cache


def joint_tokens(encoder, cache: dict, sequences: torch.Tensor, pooled) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-encode the keyframe clips of `sequences` with gradients: tokens (S, M, C) and world
    positions (S, M, 3) for all cache sequences (only `sequences` rows are fresh)."""
    tokens = cache['tokens'].float().clone()
    xyz = cache['xyz'].clone()
    for s in sequences.unique().tolist():
        clips = normalise_images(cache['clips'][s].numpy())
        tok, cam = encode_keyframes_grad(encoder, clips, cache['clip_K'][s], cache['clip_slot'], tuple(pooled))
        T = cache['keyframe_poses'][s]  # (KF, 4, 4)
        world = cam @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]
        n = tok.shape[0] * tok.shape[1]
        tokens = tokens.index_put((torch.tensor([s]), torch.arange(n)), tok.reshape(n, -1))
        xyz = xyz.index_put((torch.tensor([s]), torch.arange(n)), world.reshape(n, 3))
    return tokens, xyz


@torch.no_grad()
def predict(model, cache: dict, indices: list[int], positions: torch.Tensor, blind: bool = False,
            batch_size: int = 64, tokens: torch.Tensor | None = None) -> list[dict]:
    model.eval()
    preds = []
    for start in range(0, len(indices), batch_size):
        batch = make_batch(cache, indices[start:start + batch_size], positions=positions, blind=blind, tokens=tokens)
        out = model(**model_inputs(batch))
        decoded = decode_outputs(out)
        if 'object_weights' in out and not blind:
            for pred, grounding in zip(decoded, grounding_scores(out['object_weights'], batch['grounding'],
                                                                 batch['memory_mask'])):
                pred['grounding'] = grounding
        preds += decoded
    return preds


def grounding_scores(weights: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> list[list[tuple]]:
    """Per item, per object role present in its memory: (pointer mass on the object's
    tokens, whether the top token is one of them, the mass a uniform pointer would put
    there). weights and target (B, S, M), mask (B, M)."""
    s = min(weights.shape[1], target.shape[1])
    on = (target[:, :s] > 0).to(weights.dtype)
    mass = (weights[:, :s] * on).sum(-1)
    top = on.gather(-1, weights[:, :s].argmax(-1, keepdim=True)).squeeze(-1)
    uniform = on.sum(-1) / mask.sum(-1, keepdim=True).clamp_min(1.0)
    present = on.sum(-1) > 0
    return [[(float(mass[i, j]), bool(top[i, j]), float(uniform[i, j])) for j in range(s) if present[i, j]]
            for i in range(weights.shape[0])]


def _fit(config: dict, train_cache: dict, val_cache: dict, out_dir: Path, blind: bool, progress: bool) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm
    t = config['training']
    g = config['geometry']
    seed_everything(config['seed'])
    margs = dict(config['model'])
    margs['token_dim'] = int(train_cache['tokens'].shape[-1])
    model = build_qa_model(margs)
    if t.get('init_from') and not blind:  # continue from a QA checkpoint of the same architecture
        from geovr_training.qa.checkpoint import load_qa_checkpoint
        start_model, _ = load_qa_checkpoint(t['init_from'])
        try:
            model.load_state_dict(start_model.state_dict())
        except RuntimeError as exc:
            raise QAConfigError(f"training.init_from {t['init_from']!r} does not fit model {margs}: "
                                f"{str(exc).splitlines()[0]}") from exc
    joint = g['mode'] == 'joint' and not blind
    encoder = None
    params = [{'params': model.parameters(), 'lr': t['lr']}]
    if joint:
        encoder = load_geometry_encoder(g['checkpoint'], g['model_args'], config['seed']).train()
        params.append({'params': encoder.parameters(), 'lr': t['encoder_lr']})
    opt = torch.optim.AdamW(params, weight_decay=t['weight_decay'])
    templates = set(t['train_templates'])
    train_idx = [i for i, it in enumerate(train_cache['items']) if it['template_split'] in templates]
    val_idx = list(range(len(val_cache['items'])))
    if not train_idx:
        raise QAConfigError('no training items with template_split in ' + str(sorted(templates)))
    pos_train = memory_positions(train_cache, g['token_xyz_source'])
    pos_val = memory_positions(val_cache, g['token_xyz_source'])
    steps_per_epoch = max(1, math.ceil(len(train_idx) / t['batch_size']))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[p['lr'] for p in params],
                                                total_steps=t['epochs'] * steps_per_epoch, pct_start=0.1)
    name = 'qa_blind' if blind else 'qa'
    writer = SummaryWriter(str(out_dir / 'tb' / name))
    gen = torch.Generator().manual_seed(config['seed'])
    best, best_epoch, history, bad = -math.inf, -1, [], 0
    geometry = {'checkpoint': g['checkpoint'], 'checkpoint_sha256': file_sha256(g['checkpoint']),
                'config_sha256': geometry_config_sha256(g['checkpoint']),
                'model_args': g['model_args'] if not g['checkpoint'] else None, 'mode': g['mode'],
                'input_size': g['input_size'], 'token_grid': train_cache['info']['token_grid'],
                'pooled_grid': config['memory']['pooled_grid'], 'num_keyframes': config['memory']['num_keyframes'],
                'token_xyz_source': g['token_xyz_source']}
    priors = training_priors([train_cache['items'][i] for i in train_idx])
    start = time.perf_counter()
    for epoch in range(t['epochs']):
        model.train()
        order = torch.randperm(len(train_idx), generator=gen).tolist()
        bar = tqdm(range(steps_per_epoch), desc=f'{name} epoch {epoch}', disable=not progress, leave=False)
        totals: dict[str, float] = {}
        for step in bar:
            chunk = [train_idx[i] for i in order[step * t['batch_size']:(step + 1) * t['batch_size']]]
            if not chunk:
                continue
            tokens, positions = None, pos_train
            if joint:
                seqs = torch.tensor([train_cache['items'][i]['sequence'] for i in chunk])
                tokens, positions = joint_tokens(encoder, train_cache, seqs, config['memory']['pooled_grid'])
            batch = make_batch(train_cache, chunk, positions=positions, blind=blind, generator=gen,
                               rotate=t['rotate'], keyframe_dropout=t['keyframe_dropout'],
                               word_dropout=t['word_dropout'], tokens=tokens)
            losses = qa_losses(model(**model_inputs(batch)), batch, config['loss_weights'],
                               math.radians(config['heading_sigma_deg']))
            opt.zero_grad(set_to_none=True)
            losses['total'].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            for k, v in losses.items():
                totals[k] = totals.get(k, 0.0) + float(v.detach()) / steps_per_epoch
            bar.set_postfix(loss=f'{float(losses["total"]):.3f}')
        val_tokens = None
        if joint:
            encoder.eval()
            with torch.no_grad():
                val_tokens, pos_val = _encode_all(encoder, val_cache, config)
            encoder.train()
        scores = score_items(val_cache['items'], predict(model, val_cache, val_idx, pos_val, blind, tokens=val_tokens))
        val = _selection_score(scores)
        history.append({'epoch': epoch, 'train': totals, 'val_overall': scores['overall'], 'val_selection': val,
                        'val_where_is_median_m': scores['where_is']['median_error_m'],
                        'val_loc_within_1m': scores['localization']['within_1m']})
        for k, v in totals.items():
            writer.add_scalar(f'train/{k}', v, epoch)
        writer.add_scalar('val/selection', val, epoch)
        if scores['overall'] is not None:
            writer.add_scalar('val/overall', scores['overall'], epoch)
        state = dict(model=model, config=config, epoch=epoch, metrics={'val': scores, 'priors': priors},
                     geometry=geometry,
                     encoder_state=encoder.state_dict() if joint else None, blind=blind)
        save_qa_checkpoint(out_dir / f'{name}_last.pt', **state)
        if val > best:
            best, best_epoch, bad = val, epoch, 0
            save_qa_checkpoint(out_dir / f'{name}_best.pt', **state)
        else:
            bad += 1
            if bad >= t['patience']:
                break
    writer.close()
    return {'best_epoch': best_epoch, 'best_selection': best, 'history': history,
            'seconds': time.perf_counter() - start, 'checkpoint': str(out_dir / f'{name}_best.pt')}


def training_priors(items: list[dict]) -> dict:
    """Per numeric category the mean training answer (canonical unit): the 'chance' guess."""
    from geovr_training.qa.vocab import CATEGORIES, NUMERIC_CATEGORIES
    values: dict[str, list[float]] = {c: [] for c in NUMERIC_CATEGORIES}
    for it in items:
        name = CATEGORIES[it['category']]
        if name in values:
            values[name].append(it['value'])
    return {c: float(np.mean(v)) if v else 1.0 for c, v in values.items()}


def _selection_score(scores: dict) -> float:
    """Validation score for model selection: mean of the VSI-Bench overall, where-is
    (100 - 100 * median error in m, floored at 0) and localization within 1 m."""
    parts = [scores['overall'] or 0.0]
    w = scores['where_is']['median_error_m']
    parts.append(max(0.0, 100 - 100 * w) if w is not None and math.isfinite(w) else 0.0)
    parts.append(scores['localization']['within_1m'] or 0.0)
    return float(np.mean(parts))


@torch.no_grad()
def _encode_all(encoder, cache: dict, config: dict) -> tuple[torch.Tensor, torch.Tensor]:
    return joint_tokens(encoder, cache, torch.arange(len(cache['sequences'])), config['memory']['pooled_grid'])


def train_qa(config: dict, out_dir: str | Path, progress: bool = True) -> dict:
    """Train the QA model (and, when enabled, the blind baseline). Returns a summary dict
    (also written to out_dir/train_log.json) with the checkpoint paths."""
    config = merge_config(config)
    if config['training'].get('threads'):
        torch.set_num_threads(int(config['training']['threads']))  # shared CPUs: no oversubscription
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = config['geometry']['mode'] == 'joint'
    train_cache = cached(config, ['train'], keep_clips=keep, progress=progress)
    val_cache = cached(config, ['val'], keep_clips=keep, progress=progress)
    summary = {'config': config, 'train_items': len(train_cache['items']), 'val_items': len(val_cache['items'])}
    summary['qa'] = _fit(config, train_cache, val_cache, out_dir, blind=bool(config['training']['blind']),
                         progress=progress)
    if config['training']['train_blind_baseline'] and not config['training']['blind']:
        summary['blind'] = _fit(config, train_cache, val_cache, out_dir, blind=True, progress=progress)
    (out_dir / 'train_log.json').write_text(json.dumps(summary, indent=1, default=str))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Train the GeoVR-S QA model (language half).')
    parser.add_argument('--config', required=True, help='YAML config (task: qa)')
    parser.add_argument('--out', default=None, help='output folder (default: config out_dir)')
    parser.add_argument('--data', default=None, help='dataset folder (overrides config data)')
    parser.add_argument('--set', action='extend', nargs='*', default=[], metavar='KEY=VALUE',
                        help='override config values, e.g. training.epochs=3 training.init_from=qa_best.pt')
    args = parser.parse_args(argv)
    from geovr_training.train.config import ConfigError, parse_overrides
    try:
        config = load_config(args.config, parse_overrides(args.set))
    except (ConfigError, QAConfigError, FileNotFoundError) as exc:
        print(f'geovr-train (qa): error: {exc}', file=sys.stderr)
        return 2
    if args.data:
        config['data'] = args.data
    out = args.out or config.get('out_dir') or '/tmp/geovr_qa/run'
    summary = train_qa(config, out)
    print(json.dumps({k: summary[k]['checkpoint'] for k in ('qa', 'blind') if k in summary}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
