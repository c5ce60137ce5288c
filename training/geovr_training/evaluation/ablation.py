"""`geovr-ablate`: reproduce the source designs' claims on our data in one table.

(a) GeoVR: each geometric target alone, every pair, and all four (depth, pose, scale,
    distill) — does the multi-objective model beat one or two targets?
(b) Camera-Aware MLLM: ray embedding on/off x camera augmentation on/off, evaluated under
    camera changes — do the rays and the augmentation keep depth accuracy when the camera changes?
(c) The backbone: GeoVR-S v2 with its ImageNet-pretrained EfficientNet-Lite0, and the same
    network from scratch (`pretrained: false`; every backbone stage trained, its BatchNorm
    statistics learned and no backbone learning-rate factor, since there is nothing to keep).

Every run trains from the same base config (default tiny.yaml) for the same number of steps
and seed, then is evaluated with `geovr-eval`'s code on the test split. Size it with
--steps / --set so it runs small here and large on a GPU machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

TARGETS = ('depth', 'pose', 'scale', 'distill')
COLUMNS = [('depth_metric_abs_rel', 'AbsRel', '{:.3f}'), ('depth_metric_delta1', 'δ1', '{:.3f}'),
           ('depth_median_delta1', 'δ1 med', '{:.3f}'), ('scale_abs_rel', 'scale err', '{:.3f}'),
           ('ate_se3_m', 'ATE SE3 m', '{:.3f}'), ('rpe_rot_deg', 'RPE-R deg', '{:.2f}'),
           ('camera_delta1_mean', 'δ1 cam-changed', '{:.3f}'), ('camera_delta1_drop_pts', 'δ1 lost pts', '{:.1f}')]


def target_sets() -> list[tuple[str, ...]]:
    """Each target alone, all pairs, and all four (11 sets)."""
    sets = [(t,) for t in TARGETS] + list(itertools.combinations(TARGETS, 2)) + [TARGETS]
    return sets


FROM_SCRATCH = {'pretrained': False, 'frozen_stages': 0, 'freeze_backbone_bn': False}


def run_plan(groups: list[str]) -> list[dict]:
    """The list of runs: {'name', 'group', 'loss', 'model', 'data', 'optim'} overrides."""
    plan = []
    if 'targets' in groups:
        for subset in target_sets():
            loss = {t: (1.0 if t in subset else 0.0) for t in TARGETS}
            loss['pose'] *= 2.5  # the notes' weight when on
            plan.append({'name': '+'.join(subset) if len(subset) < 4 else 'all four', 'group': 'targets',
                         'loss': loss, 'model': {}, 'data': {}, 'optim': {}})
    if 'camera' in groups:
        for rays, augment in itertools.product((True, False), (True, False)):
            plan.append({'name': f"rays {'on' if rays else 'off'}, cam-aug {'on' if augment else 'off'}",
                         'group': 'camera', 'loss': {}, 'model': {'use_ray_embedding': rays},
                         'data': {'camera_augmentation': augment}, 'optim': {}})
    if 'backbone' in groups:
        plan.append({'name': 'ImageNet backbone', 'group': 'backbone', 'loss': {}, 'model': {'pretrained': True},
                     'data': {}, 'optim': {}})
        plan.append({'name': 'from scratch', 'group': 'backbone', 'loss': {}, 'model': dict(FROM_SCRATCH),
                     'data': {}, 'optim': {'lr_scale': {}}})
    return plan


def run_ablation(base_config: dict, data_root: str, out_dir: Path, steps: int, groups: list[str],
                 eval_sequences: int, eval_frames: int, progress: bool = True, on_row=None) -> list[dict]:
    """Train and evaluate every run of the plan; returns rows {'name', 'group', metrics...}.
    `on_row(rows)` is called after each run (to write partial results)."""
    from geovr_training.evaluation.camera import DEFAULT_CHANGES
    from geovr_training.evaluation.data import load_sequences
    from geovr_training.evaluation.evaluate import evaluate_model, trained_input_size
    from geovr_training.model import load_checkpoint
    from geovr_training.train.config import resolve_config
    from geovr_training.train.trainer import train

    sequences = load_sequences(data_root, 'test', eval_sequences, eval_frames)
    rows = []
    for run in run_plan(groups):
        if run['loss'].get('distill') and not base_config['teacher'].get('onnx'):
            rows.append({'name': run['name'], 'group': run['group'], 'note': 'skipped: no teacher.onnx in config'})
            if on_row:
                on_row(rows)
            continue
        config = json.loads(json.dumps(base_config))
        config['out_dir'] = str(out_dir / run['name'].replace(' ', '_').replace(',', '').replace('+', '_'))
        config['data']['root'] = data_root
        config['data'].update(run['data'])
        config['model'].update(run['model'])
        config['loss'].update(run['loss'])
        config['optim'].update(run['optim'])
        config['optim'].update({'epochs': 1, 'max_steps_per_epoch': steps, 'max_time_min': None})
        config['early_stopping']['patience'] = 10 ** 6
        config = resolve_config(config)
        started = time.time()
        summary = train(config, progress=progress)
        model, state = load_checkpoint(summary['last'])
        changes = DEFAULT_CHANGES if run['group'] == 'camera' else DEFAULT_CHANGES[:1]
        metrics, _, robustness, _ = evaluate_model(model, sequences, trained_input_size(state), changes, progress=False)
        row = {'name': run['name'], 'group': run['group'], **metrics, 'train_seconds': time.time() - started}
        if run['group'] == 'camera':
            base = robustness['original'].get('depth_metric_delta1', np.nan)
            changed = [r.get('depth_metric_delta1', np.nan) for n, r in robustness.items() if n != 'original']
            row['camera_delta1_mean'] = float(np.nanmean(changed))
            row['camera_delta1_drop_pts'] = float(100 * (base - np.nanmean(changed)))
            row['camera'] = robustness
        rows.append(row)
        if on_row:
            on_row(rows)
    return rows


def ablation_table(rows: list[dict]) -> str:
    from geovr_training.evaluation.report import _fmt
    present = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    lines = ['| group | run | ' + ' | '.join(h for _, h, _ in present) + ' |', '|---|---|' + '---|' * len(present)]
    for r in rows:
        cells = [r.get('note', '')] if 'note' in r else [_fmt(r.get(k), f) for k, _, f in present]
        lines.append(f"| {r['group']} | {r['name']} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='GeoVR-S ablations: geometric targets; rays and camera '
                                                 'augmentation; pretrained backbone or from scratch.')
    parser.add_argument('--data', required=True, help='generated dataset folder (train/val/test splits)')
    parser.add_argument('--out', required=True)
    parser.add_argument('--config', default=str(Path(__file__).resolve().parents[2] / 'configs' / 'tiny.yaml'))
    parser.add_argument('--steps', type=int, default=30, help='training steps per run')
    parser.add_argument('--groups', default='targets,camera,backbone',
                        help='comma list of: targets, camera, backbone, qa (qa needs --qa-config)')
    parser.add_argument('--qa-config', default=None,
                        help='QA config (task: qa) for the qa rows: with and without 3D position '
                             'embeddings, frozen vs joint encoder, with vs without geometric training')
    parser.add_argument('--eval-sequences', type=int, default=2)
    parser.add_argument('--eval-frames', type=int, default=16)
    parser.add_argument('--set', action='extend', nargs='*', default=[], metavar='KEY=VALUE', help='config overrides')
    args = parser.parse_args(argv)

    from geovr_training.train.config import parse_overrides
    from geovr_training.train.config import ConfigError, load_config

    try:
        config = load_config(args.config, parse_overrides(args.set))
    except ConfigError as exc:
        print(f'geovr-ablate: error: {exc}', file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = 'geovr-ablate ' + ' '.join(argv if argv is not None else sys.argv[1:])

    def write(rows: list[dict]) -> str:
        table = ablation_table(rows)
        (out / 'ablation.json').write_text(json.dumps({'command': command, 'rows': rows}, indent=2, default=float))
        (out / 'ablation.md').write_text(f'# GeoVR-S ablation\n\nCommand: `{command}`\n\n{table}\n')
        return table

    groups = [g.strip() for g in args.groups.split(',')]
    if 'qa' in groups:
        if not args.qa_config:
            parser.error('the qa group needs --qa-config')
        from geovr_training.qa.ablation import main as qa_ablation_main
        status = qa_ablation_main(['--config', args.qa_config, '--out', str(out / 'qa')])
        if status:
            return status
        groups.remove('qa')
        if not groups:
            return 0
    rows = run_ablation(config, args.data, out, args.steps, groups,
                        args.eval_sequences, args.eval_frames, progress=False, on_row=write)
    print(write(rows))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
