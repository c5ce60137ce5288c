"""QA evaluation: `evaluate_qa(checkpoint, data, out_dir)` writes qa_eval.json, qa_eval.md
and qa_eval.png; CLI `python -m geovr_training.qa.evaluate --checkpoint C --data D --out DIR`.

Reported on the `split` scenes (default 'test', never trained on): VSI-Bench's 8 tasks and
overall, "where is" median error, localization within 0.5 m / 1 m / 15 deg / 30 deg, the
category accuracy; each for the model, the blind baseline (a model trained on the
questions alone, when its checkpoint is given or found next to the model as
qa_blind_best.pt) and chance (numeric: the training mean; choice: 1 / options; point and
position: the memory centroid; heading: uniform); and wording robustness (trained
templates vs held-out templates).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

from geovr_ros.geometry import mean_relative_accuracy
from geovr_training.qa.batches import memory_positions
from geovr_training.qa.checkpoint import load_qa_checkpoint
from geovr_training.qa.metrics import score_items
from geovr_training.qa.train import cached, joint_tokens, merge_config, predict
from geovr_training.qa.vocab import ANSWER_KIND, CATEGORIES, VSI_BENCH_TASKS


def chance_scores(cache: dict, positions: torch.Tensor, priors: dict) -> dict:
    """Scores of the chance answers (see module docstring)."""
    tasks: dict[str, list[float]] = {t: [] for t in VSI_BENCH_TASKS}
    where, pos = [], []
    for it in cache['items']:
        name = CATEGORIES[it['category']]
        kind = ANSWER_KIND[name]
        s = it['sequence']
        m = cache['mask'][s] > 0
        centre = positions[s][m].mean(0).numpy() if m.any() else np.zeros(3)
        if kind == 'numeric':
            tasks[name].append(100 * mean_relative_accuracy(priors.get(name, 1.0), it['value']))
        elif kind == 'choice':
            tasks[name].append(100.0 / len(it['options']))
        elif kind == 'point':
            where.append(float(np.linalg.norm(centre - np.asarray(it['point']))))
        else:
            pos.append(float(np.linalg.norm(centre[:2] - np.asarray(it['position'])[:2])))
    scores = {t: float(np.mean(v)) if v else None for t, v in tasks.items()}
    present = [v for v in scores.values() if v is not None]
    pos = np.asarray(pos)
    return {'tasks': scores, 'overall': float(np.mean(present)) if present else None,
            'where_is': {'median_error_m': float(np.median(where)) if where else None},
            'localization': {'within_0.5m': 100 * float(np.mean(pos <= 0.5)) if len(pos) else None,
                             'within_1m': 100 * float(np.mean(pos <= 1.0)) if len(pos) else None,
                             'within_15deg': 100 * 15 / 180, 'within_30deg': 100 * 30 / 180}}


def _run(path: str | Path, data: str, split: str, progress: bool) -> tuple[dict, dict, dict]:
    model, state = load_qa_checkpoint(path)
    config = merge_config(dict(state['config'], data=data))
    cache = cached(config, [split], keep_clips=state['geometry'].get('mode') == 'joint' and 'encoder' in state,
                   progress=progress)
    positions = memory_positions(cache, config['geometry']['token_xyz_source'])
    tokens = None
    if 'encoder' in state:
        from geovr_training.qa.cache import load_geometry_encoder
        g = config['geometry']
        encoder = load_geometry_encoder(g['checkpoint'], g['model_args'], config['seed'])
        encoder.load_state_dict(state['encoder'])
        with torch.no_grad():
            tokens, positions = joint_tokens(encoder.eval(), cache, torch.arange(len(cache['sequences'])),
                                             config['memory']['pooled_grid'])
    preds = predict(model, cache, list(range(len(cache['items']))), positions, blind=bool(state.get('blind')),
                    tokens=tokens)
    return {'preds': preds, 'positions': positions}, cache, state


def evaluate_qa(checkpoint: str | Path, data: str | Path, out_dir: str | Path, split: str = 'test',
                blind_checkpoint: str | Path | None = None, progress: bool = True) -> dict:
    """Evaluate a QA checkpoint on `split` of dataset `data`; writes JSON, Markdown, PNG."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run, cache, state = _run(checkpoint, str(data), split, progress)
    items = cache['items']
    result = {'checkpoint': str(checkpoint), 'data': str(data), 'split': split, 'items': len(items),
              'sequences': len(cache['sequences']), 'geometry': state['geometry'],
              'model': score_items(items, run['preds'])}
    for wording in ('train', 'heldout'):
        keep = [i for i, it in enumerate(items) if it['template_split'] == wording]
        result[f'wording_{wording}'] = score_items([items[i] for i in keep], [run['preds'][i] for i in keep])
    a, b = result['wording_train']['overall'], result['wording_heldout']['overall']
    result['wording_drop_points'] = None if a is None or b is None else a - b
    blind_path = blind_checkpoint or (Path(checkpoint).parent / 'qa_blind_best.pt')
    if Path(blind_path).is_file():
        blind_run, _, _ = _run(blind_path, str(data), split, progress)
        result['blind'] = score_items(items, blind_run['preds'])
        result['blind_checkpoint'] = str(blind_path)
    priors = state['metrics'].get('priors')
    if not priors:  # older checkpoints: recompute from the training cache
        from geovr_training.qa.train import training_priors
        config = merge_config(dict(state['config'], data=str(data)))
        train_items = cached(config, ['train'], progress=progress)['items']
        priors = training_priors([it for it in train_items if it['template_split'] == 'train'])
    result['chance'] = chance_scores(cache, run['positions'], priors)
    (out / 'qa_eval.json').write_text(json.dumps(result, indent=1))
    (out / 'qa_eval.md').write_text(markdown_table(result))
    plot(result, out / 'qa_eval.png')
    return result


def _fmt(v, digits=1):
    return '-' if v is None or (isinstance(v, float) and not math.isfinite(v)) else f'{v:.{digits}f}'


def markdown_table(r: dict) -> str:
    cols = [('model', r['model']), ('blind', r.get('blind')), ('chance', r['chance']),
            ('trained wording', r['wording_train']), ('held-out wording', r['wording_heldout'])]
    cols = [(n, c) for n, c in cols if c is not None]
    lines = [f"QA evaluation on {r['sequences']} {r['split']} scenes, {r['items']} questions ({r['data']})", '',
             '| metric | ' + ' | '.join(n for n, _ in cols) + ' |', '|---' * (len(cols) + 1) + '|']
    for t in VSI_BENCH_TASKS:
        lines.append(f'| {t} | ' + ' | '.join(_fmt(c['tasks'].get(t)) for _, c in cols) + ' |')
    lines.append('| **overall (mean of 8)** | ' + ' | '.join(_fmt(c['overall']) for _, c in cols) + ' |')
    lines.append('| where is: median error (m) | ' + ' | '.join(_fmt(c['where_is']['median_error_m'], 2)
                                                       for _, c in cols) + ' |')
    for key in ('within_0.5m', 'within_1m', 'within_15deg', 'within_30deg'):
        lines.append(f'| localization {key} (%) | ' + ' | '.join(_fmt(c['localization'].get(key)) for _, c in cols)
                     + ' |')
    lines.append(f"\nWording robustness: {_fmt(r['wording_drop_points'])} points lost on held-out templates. "
                 f"Category accuracy: {_fmt(r['model']['category_accuracy'])} %.\n")
    g = r['model'].get('grounding') or {}
    if g.get('roles'):
        lines.append(f"Grounding ({g['roles']} named objects in the memory): {_fmt(g['mass_on_object'])} % of the "
                     f"object pointers' attention on the object's tokens (uniform attention: "
                     f"{_fmt(g['uniform_mass_on_object'])} %); top token on the object for "
                     f"{_fmt(g['top_token_on_object'])} %.\n")
    return '\n'.join(lines) + '\n'


def plot(r: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(VSI_BENCH_TASKS) + ['overall']
    runs = [('model', r['model']), ('blind', r.get('blind')), ('chance', r['chance'])]
    runs = [(n, c) for n, c in runs if c is not None]
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(runs)
    for k, (n, c) in enumerate(runs):
        vals = [c['tasks'].get(t) or 0.0 for t in VSI_BENCH_TASKS] + [c['overall'] or 0.0]
        ax.bar(np.arange(len(names)) + k * width, vals, width, label=n)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha='right')
    ax.set_ylabel('score (MRA or accuracy, %)')
    ax.set_title(f"GeoVR-S QA on {r['split']} scenes ({r['items']} questions)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Evaluate a GeoVR-S QA checkpoint.')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--data', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--split', default='test')
    parser.add_argument('--blind-checkpoint', default=None)
    args = parser.parse_args(argv)
    result = evaluate_qa(args.checkpoint, args.data, args.out, args.split, args.blind_checkpoint)
    print(markdown_table(result))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
