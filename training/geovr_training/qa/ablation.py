"""QA ablation rows: `run_qa_ablation(config, out_dir)` trains and evaluates each variant of
a QA config and writes qa_ablation.json and qa_ablation.md (one table); CLI
`python -m geovr_training.qa.ablation --config training/configs/qa_cpu_v2.yaml --out DIR`.

Rows (the issue's three comparisons):
- 'full': the config as given (frozen encoder, 3D position embeddings);
- 'no_position_embedding': the same without 3D position embeddings;
- 'no_relation_features': answer heads without the explicit relations of the grounded
  objects; 'no_grounding_loss': object pointers not supervised by the instance masks;
- 'joint_encoder': the geometry encoder trained jointly with the QA loss;
- 'no_geometric_training': an untrained geometry encoder (same architecture) instead of
  the config's trained checkpoint (skipped, and said so, when the config has none: then
  'full' already is the untrained-encoder row).
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from geovr_training.qa.evaluate import evaluate_qa
from geovr_training.qa.train import load_config, merge_config, train_qa

ROWS = ('full', 'no_position_embedding', 'no_relation_features', 'no_grounding_loss', 'joint_encoder',
        'no_geometric_training')


def variant(config: dict, row: str) -> dict | None:
    """The config of ablation `row`, or None when the row does not apply."""
    c = copy.deepcopy(config)
    c['training']['train_blind_baseline'] = row == 'full'
    if row == 'no_position_embedding':
        c['model']['use_position_embedding'] = False
    elif row == 'no_relation_features':
        c['model']['use_relation_features'] = False
    elif row == 'no_grounding_loss':
        c['loss_weights']['grounding'] = 0.0
    elif row == 'joint_encoder':
        c['geometry']['mode'] = 'joint'
    elif row == 'no_geometric_training':
        if not c['geometry']['checkpoint']:
            return None
        from geovr_training.model import read_checkpoint
        c['geometry']['model_args'] = dict(read_checkpoint(c['geometry']['checkpoint'])['model_args'])
        c['geometry']['checkpoint'] = None
    elif row != 'full':
        raise ValueError(f'unknown ablation row {row!r}; one of {ROWS}')
    return c


def run_qa_ablation(config: dict, out_dir: str | Path, rows: list[str] | None = None,
                    epochs: int | None = None, split: str = 'test') -> dict:
    """Train + evaluate each row; returns {row: summary or {'skipped': reason}}."""
    config = merge_config(config)
    if epochs is not None:
        config['training']['epochs'] = int(epochs)
    out = Path(out_dir)
    results = {}
    for row in rows or ROWS:
        c = variant(config, row)
        if c is None:
            results[row] = {'skipped': 'the config names no trained geometry checkpoint, so "full" already '
                                       'uses an untrained encoder'}
            continue
        summary = train_qa(c, out / row)
        r = evaluate_qa(summary['qa']['checkpoint'], c['data'], out / row / 'eval', split)
        results[row] = {'overall': r['model']['overall'], 'where_is_median_m': r['model']['where_is']['median_error_m'],
                        'loc_within_1m': r['model']['localization']['within_1m'],
                        'loc_within_30deg': r['model']['localization']['within_30deg'],
                        'blind_overall': (r.get('blind') or {}).get('overall'),
                        'wording_drop_points': r['wording_drop_points'], 'train_seconds': summary['qa']['seconds']}
    (out / 'qa_ablation.json').write_text(json.dumps(results, indent=1))
    (out / 'qa_ablation.md').write_text(ablation_table(results))
    return results


def ablation_table(results: dict) -> str:
    def f(v, d=1):
        return '-' if v is None else f'{v:.{d}f}'
    lines = ['| QA row | overall | where-is median (m) | loc. within 1 m (%) | loc. within 30 deg (%) | '
             'held-out wording drop |', '|---|---|---|---|---|---|']
    for row, r in results.items():
        if 'skipped' in r:
            lines.append(f'| {row} | skipped: {r["skipped"]} | | | | |')
        else:
            lines.append(f"| {row} | {f(r['overall'])} | {f(r['where_is_median_m'], 2)} | {f(r['loc_within_1m'])} | "
                         f"{f(r['loc_within_30deg'])} | {f(r['wording_drop_points'])} |")
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='GeoVR-S QA ablation rows.')
    parser.add_argument('--config', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--rows', nargs='*', default=None, choices=ROWS)
    parser.add_argument('--epochs', type=int, default=None)
    args = parser.parse_args(argv)
    results = run_qa_ablation(load_config(args.config), args.out, args.rows, args.epochs)
    print(ablation_table(results))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
