"""`geovr-eval transfer`: does what a model learns on one training mix hold on real recordings?

Each ``--run NAME=DIR[*K][+DIR...]`` trains the same recipe (``--config``, default
configs/transfer_v2.yaml: GeoVR-S v2 with its ImageNet backbone, depth and scale targets)
for the same number of steps and seed on the training splits of its folders, then every
model is evaluated on every ``--test NAME=PATH[@SPLIT]`` (a converted dataset's split, or a
real recording folder read whole). The table puts a constant-depth row beside them (each
test set at its own median true depth: an oracle constant, stronger than any a model could
know). Each set is scored median-scaled, metric, and affine-aligned (a scale and shift of each
frame's disparity, as relative-depth models are judged): where a model barely orders a set's
depths, median-scaled δ1 rewards a flat prediction, and the affine column shows it. Results
go to OUT/transfer.json and OUT/transfer.md after every run; a run already in transfer.json
with the same recipe is not trained again (``--fresh`` retrains; one scored before a column
was added is scored again), so a long comparison resumes across sessions.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / 'configs' / 'transfer_v2.yaml'
METRICS = (('depth_median_delta1', 'δ1 med'), ('depth_metric_abs_rel', 'AbsRel'), ('depth_metric_delta1', 'δ1'),
           ('depth_affine_delta1', 'δ1 aff'))


@dataclass(frozen=True)
class TestSet:
    name: str
    path: str
    split: str = 'test'


def parse_named(text: str, what: str) -> tuple[str, str]:
    """'NAME=VALUE' -> (NAME, VALUE); a clear error otherwise."""
    name, sep, value = text.partition('=')
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f'{what} must look like NAME=VALUE, got {text!r}')
    return name.strip(), value.strip()


def parse_test(text: str) -> TestSet:
    name, value = parse_named(text, '--test')
    path, _, split = value.partition('@')
    return TestSet(name, path, split or 'test')


def load_test_sets(tests: list[TestSet], max_frames: int) -> dict[str, list]:
    """{name: [Sequence]}: each set's frames, thinned evenly to at most ``max_frames`` per
    sequence (a recording's frames spread over its whole length, not its first seconds)."""
    from geovr_training.evaluation.data import load_sequences
    sets = {}
    for test in tests:
        sequences = load_sequences(test.path, test.split)
        sets[test.name] = [_thin(seq, max_frames) for seq in sequences]
    return sets


def _thin(seq, max_frames: int):
    n = len(seq.rgb)
    if n <= max_frames:
        return seq
    return seq.select(np.unique(np.linspace(0, n - 1, max_frames).round().astype(int)))


def split_repeats(roots: list[str]) -> tuple[list[str], list[int]]:
    """['DIR*10', 'DIR'] -> (['DIR', 'DIR'], [10, 1]): how often each folder enters the pool."""
    folders, repeats = [], []
    for root in roots:
        folder, star, times = root.rpartition('*') if '*' in root else (root, '', '1')
        if not times.isdigit() or int(times) < 1:
            raise ValueError(f'{root!r}: a repeat count must be a positive integer (DIR*10)')
        folders.append(folder)
        repeats.append(int(times))
    return folders, repeats


def train_run(base_config: dict, name: str, roots: list[str], steps: int, out_dir: Path,
              progress: bool) -> tuple[str, float]:
    """Train the recipe on ``roots`` for ``steps`` steps; returns (last checkpoint, seconds)."""
    from geovr_training.train.config import resolve_config
    from geovr_training.train.trainer import train
    config = json.loads(json.dumps(base_config))
    config['out_dir'] = str(out_dir / _slug(name))
    folders, repeats = split_repeats(roots)
    config['data']['root'] = folders if len(folders) > 1 else folders[0]
    config['data']['repeats'] = repeats if len(folders) > 1 else None
    config['optim'].update({'max_steps': steps, 'max_steps_per_epoch': None, 'max_time_min': None})
    config['early_stopping']['patience'] = 10 ** 6
    started = time.time()
    summary = train(resolve_config(config), progress=progress)
    return summary['last'], time.time() - started


def evaluate_run(checkpoint: str, test_sets: dict[str, list]) -> dict[str, dict]:
    """{test name: depth summary} of one checkpoint, run in PyTorch at its trained size."""
    from geovr_training.evaluation.evaluate import evaluate_model, trained_input_size
    from geovr_training.model import load_checkpoint
    model, state = load_checkpoint(checkpoint)
    size = trained_input_size(state)
    results = {}
    for name, sequences in test_sets.items():
        summary, _, _, _ = evaluate_model(model, sequences, size, changes=(), progress=False, backend='torch')
        results[name] = {k: float(summary[k]) for k, _ in METRICS if k in summary}
    return results


def constant_rows(test_sets: dict[str, list]) -> dict[str, dict]:
    from geovr_training.evaluation.metrics import constant_depth_summary
    rows = {}
    for name, sequences in test_sets.items():
        summary = constant_depth_summary([seq.depth for seq in sequences])
        rows[name] = {k: float(summary[k]) for k, _ in METRICS if k in summary}
    return rows


def transfer_table(rows: list[dict], test_names: list[str]) -> str:
    """Markdown: one row per run, per test set median-scaled δ1 / metric AbsRel / metric δ1 / affine-aligned
    δ1, then the means."""
    header = ['run', 'trained on', 'steps', 'train min']
    for name in test_names:
        header += [f'{name} {label}' for _, label in METRICS]
    header += [f'mean {label}' for _, label in METRICS]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for row in rows:
        cells = [row['name'], row.get('trained_on', ''), str(row.get('steps', '')),
                 f"{row['train_seconds'] / 60:.1f}" if row.get('train_seconds') else '']
        for name in test_names:
            cells += [_fmt(row['results'].get(name, {}).get(key)) for key, _ in METRICS]
        cells += [_fmt(row['mean'].get(key)) for key, _ in METRICS]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def mean_over_sets(results: dict[str, dict]) -> dict[str, float]:
    return {key: float(np.mean([r[key] for r in results.values() if key in r]))
            for key, _ in METRICS if any(key in r for r in results.values())}


def _fmt(value) -> str:
    return '' if value is None or not np.isfinite(value) else f'{value:.3f}'


def _slug(name: str) -> str:
    return ''.join(c if c.isalnum() else '_' for c in name).strip('_') or 'run'


def _recipe_key(config: dict, roots: list[str], steps: int) -> str:
    """The run's settings that differ from the trainer's defaults, its steps and data: a
    default key added later (at its old behaviour) keeps cached runs valid."""
    from geovr_training.train.config import config_sha256, settings_beside
    return f'{config_sha256(settings_beside(config))[:16]}:{steps}:' + '+'.join(roots)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval transfer', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--run', action='append', required=True, metavar='NAME=DIR[*K][+DIR[*K]...]',
                        help='a training mix: dataset folders (their train splits) joined by +, each '
                             'entering the pool K times (default 1)')
    parser.add_argument('--test', action='append', required=True, metavar='NAME=PATH[@SPLIT]',
                        help='a test set: a dataset folder and split (default test) or a recording folder')
    parser.add_argument('--out', required=True)
    parser.add_argument('--config', default=str(DEFAULT_CONFIG), help='the training recipe (default %(default)s)')
    parser.add_argument('--steps', type=int, default=300, help='training steps per run (default 300)')
    parser.add_argument('--max-test-frames', type=int, default=60,
                        help='frames per test sequence, spread evenly over it (default 60)')
    parser.add_argument('--set', action='extend', nargs='*', default=[], metavar='KEY=VALUE', help='recipe overrides')
    parser.add_argument('--fresh', action='store_true', help='retrain runs already in OUT/transfer.json')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)

    from geovr_training.train.config import ConfigError, load_config, parse_overrides
    try:
        runs = [parse_named(text, '--run') for text in args.run]
        tests = [parse_test(text) for text in args.test]
        config = load_config(args.config, parse_overrides(args.set))
        for name, roots in runs:
            for root in split_repeats(roots.split('+'))[0]:
                if not (Path(root) / 'manifest.json').is_file():
                    raise ValueError(f'run {name!r}: {root!r} is not a geovr-data dataset folder (no manifest.json)')
        test_sets = load_test_sets(tests, args.max_test_frames)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f'geovr-eval transfer: error: {exc}', file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    record = out / 'transfer.json'
    previous = {r['name']: r for r in json.loads(record.read_text())['rows']} if record.is_file() and not args.fresh else {}
    command = 'geovr-eval transfer ' + ' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    names = [t.name for t in tests]
    constant = constant_rows(test_sets)
    rows = []

    def write() -> str:
        table_rows = rows + [{'name': 'constant depth (each set\'s own median)', 'results': constant,
                              'mean': mean_over_sets(constant)}]
        table = transfer_table(table_rows, names)
        record.write_text(json.dumps({'command': command, 'rows': rows, 'constant': constant}, indent=2))
        (out / 'transfer.md').write_text(f'# Transfer to real recordings\n\nCommand: `{command}`\n\n{table}\n')
        return table

    for name, roots_text in runs:
        roots = roots_text.split('+')
        key = _recipe_key(config, roots, args.steps)
        done = previous.get(name)
        if done and done.get('recipe') == key:
            scored = set(done['results']) == set(names) and all(
                metric in result for result in done['results'].values() for metric, _ in METRICS)
            rows.append(done if scored else {**done, 'results': evaluate_run(done['checkpoint'], test_sets)})
            rows[-1]['mean'] = mean_over_sets(rows[-1]['results'])
            write()
            continue
        print(f'transfer: training {name!r} on {roots} for {args.steps} steps', file=sys.stderr, flush=True)
        checkpoint, seconds = train_run(config, name, roots, args.steps, out, progress=not args.no_progress)
        results = evaluate_run(checkpoint, test_sets)
        rows.append({'name': name, 'trained_on': roots_text, 'steps': args.steps, 'train_seconds': seconds,
                     'checkpoint': checkpoint, 'recipe': key, 'results': results, 'mean': mean_over_sets(results)})
        print(write(), file=sys.stderr, flush=True)
    print(write())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
