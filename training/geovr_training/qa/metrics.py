"""QA scores: VSI-Bench's 8 tasks (MRA for numeric, accuracy for choices, 0..100) and
their unweighted mean ('overall'); "where is" error (metres, median); localization within
0.5 m / 1 m (floor-plane distance) and 15 / 30 degrees (heading); grounding (the share of
the object pointers' attention on the named objects' tokens, when predictions carry it).

The answer kind follows the PREDICTED category, as at run time: a question put in the wrong
kind scores 0 (numeric, choice), or counts as a miss (point, pose)."""

from __future__ import annotations

import math

import numpy as np
import torch

from geovr_ros.geometry import mean_relative_accuracy
from geovr_training.qa.vocab import ANSWER_KIND, CATEGORIES, NUMERIC_CATEGORIES, VSI_BENCH_TASKS


def decode_outputs(out: dict[str, torch.Tensor]) -> list[dict]:
    """Per item: predicted category, value (canonical unit), choice, point, position, heading."""
    cats = out['category_logits'].argmax(-1).tolist()
    values = out['log_values'].exp()
    choices = out['choice_logits'].argmax(-1).tolist()
    preds = []
    for i, c in enumerate(cats):
        name = CATEGORIES[c]
        value = float(values[i, NUMERIC_CATEGORIES.index(name)]) if name in NUMERIC_CATEGORIES else math.nan
        preds.append({'category': name, 'value': value, 'choice': int(choices[i]),
                      'point': out['point'][i].tolist(), 'position': out['position'][i].tolist(),
                      'heading': float(out['heading'][i])})
    return preds


def angle_difference(a: float, b: float) -> float:
    """|a - b| wrapped to [0, pi], radians."""
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def score_items(items: list[dict], preds: list[dict], targets: list[dict] | None = None) -> dict:
    """Scores of predictions against cache items (see `_item_record`). `targets` may hold
    per-item overrides of 'point', 'position', 'heading' (e.g. after a rotation)."""
    per_task: dict[str, list[float]] = {t: [] for t in CATEGORIES}
    where, loc_pos, loc_head = [], [], []
    category_hits = []
    for k, (it, p) in enumerate(zip(items, preds)):
        truth = CATEGORIES[it['category']]
        category_hits.append(p['category'] == truth)
        kind = ANSWER_KIND[truth]
        same_kind = ANSWER_KIND[p['category']] == kind
        t = (targets or [{}] * len(items))[k]
        if kind == 'numeric':
            value = p['value'] if p['category'] == truth else math.nan
            per_task[truth].append(100 * mean_relative_accuracy(value, it['value']) if same_kind else 0.0)
        elif kind == 'choice':
            per_task[truth].append(100.0 * (same_kind and p['choice'] == it['choice_index']))
        elif kind == 'point':
            gt = np.asarray(t.get('point', it['point']))
            err = float(np.linalg.norm(np.asarray(p['point']) - gt)) if same_kind else math.inf
            where.append(err)
        else:
            gt = np.asarray(t.get('position', it['position']))
            gt_heading = t.get('heading', it['heading'])
            loc_pos.append(float(np.linalg.norm(np.asarray(p['position'])[:2] - gt[:2])) if same_kind else math.inf)
            loc_head.append(math.degrees(angle_difference(p['heading'], gt_heading)) if same_kind else 180.0)
    scores = {t: (float(np.mean(v)) if v else None) for t, v in per_task.items() if t in VSI_BENCH_TASKS}
    present = [v for v in scores.values() if v is not None]
    result = {'tasks': scores, 'overall': float(np.mean(present)) if present else None,
              'counts': {t: len(v) for t, v in per_task.items() if t in VSI_BENCH_TASKS},
              'category_accuracy': 100.0 * float(np.mean(category_hits)) if category_hits else None}
    result['where_is'] = {'count': len(where), 'median_error_m': float(np.median(where)) if where else None,
                          'mean_error_m': float(np.mean(where)) if where and np.all(np.isfinite(where)) else None,
                          'within_0.3m': 100.0 * float(np.mean(np.asarray(where) <= 0.3)) if where else None}
    roles = [g for p in preds for g in p.get('grounding', [])]
    result['grounding'] = {'roles': len(roles),
                           'mass_on_object': 100.0 * float(np.mean([g[0] for g in roles])) if roles else None,
                           'top_token_on_object': 100.0 * float(np.mean([g[1] for g in roles])) if roles else None,
                           'uniform_mass_on_object': 100.0 * float(np.mean([g[2] for g in roles])) if roles else None}
    pos, head = np.asarray(loc_pos), np.asarray(loc_head)
    result['localization'] = {
        'count': len(loc_pos),
        'within_0.5m': 100.0 * float(np.mean(pos <= 0.5)) if len(pos) else None,
        'within_1m': 100.0 * float(np.mean(pos <= 1.0)) if len(pos) else None,
        'within_15deg': 100.0 * float(np.mean(head <= 15)) if len(head) else None,
        'within_30deg': 100.0 * float(np.mean(head <= 30)) if len(head) else None,
        'median_position_error_m': float(np.median(pos)) if len(pos) else None,
        'median_heading_error_deg': float(np.median(head)) if len(head) else None}
    return result
