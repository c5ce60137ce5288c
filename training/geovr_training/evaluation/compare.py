"""`geovr-eval compare`: is B's object map better than A's, or is it the rooms?

Two `geovr-eval objects` runs over the same rendered rooms (two models, or two settings) give
one row per room each. A figure pooled over 24 rooms swings with the few rooms where one
tracker loses its way, so a difference of a few VSI points can be either. The rooms are
resampled with replacement (a paired bootstrap: the same rooms for both runs in each
resample), and each figure's difference B - A is given with its interval and the share of
resamples in which B is the better, next to both runs' figures. Two `geovr-eval questions`
outputs (a labelled real question set, each question right in a share of a `--spread`'s runs)
are compared the same way, the questions resampled.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geovr_training.evaluation.objects import QA_TASKS, RUNTIME_ROWS, qa_summary, summarise

RUNTIME = 'runtime'   # --row: the runtime session's first row, whatever the model directory's name


@dataclass(frozen=True)
class Figure:
    """One figure of a run's rows: `key` of the summary its `source` makes of them ('qa':
    `qa_summary` of the rooms' items, `task` one of its tasks' score; 'map': `summarise` of the
    rooms; 'questions': questions right, of `task` alone when given); `higher_is_better` says
    which way B must move."""
    name: str
    source: str
    key: str = ''
    task: str | None = None
    higher_is_better: bool = True


FIGURES = (
    Figure('VSI overall (the 8)', 'qa', 'overall'),
    *(Figure(f'VSI {task}', 'qa', task=task) for task in QA_TASKS),
    Figure('QA where-is median m', 'qa', 'where_median_m', higher_is_better=False),
    Figure('object recall', 'map', 'recall'),
    Figure('object precision', 'map', 'precision'),
    Figure('count exact', 'map', 'count_exact'),
    Figure('where-is median m', 'map', 'where_median_m', higher_is_better=False),
    Figure('size MRA', 'map', 'size_mra'),
    Figure('distance MRA', 'map', 'distance_mra'),
)
QUESTION_TASKS = ('where_is', 'object_count', 'abs_distance', 'not_seen')   # the real question set's
QUESTION_FIGURES = (Figure('questions right (mean over runs)', 'questions'),
                    *(Figure(f'{task} right', 'questions', task=task) for task in QUESTION_TASKS))


def figures_of(rows: list[dict], figures: tuple[Figure, ...]) -> dict[str, float]:
    """{name: value} of each figure over `rows`, each summary made once; a 'qa' figure is
    left out when a row has no QA items."""
    sources = {f.source for f in figures}
    qa = (qa_summary([r['qa'] for r in rows]) if 'qa' in sources and all('qa' in r for r in rows) else None)
    rooms = summarise(rows) if 'map' in sources else None
    out = {}
    for f in figures:
        if f.source == 'qa' and qa is not None:
            out[f.name] = qa['tasks'].get(f.task, float('nan')) if f.task else qa[f.key]
        elif f.source == 'map':
            out[f.name] = rooms[f.key]
        elif f.source == 'questions':
            out[f.name] = float(sum(r['correct'] for r in rows if f.task is None or r['task'] == f.task))
    return out


class CompareError(ValueError):
    """Two runs that cannot be compared room by room."""


def room_rows(path: str | Path, row: str = RUNTIME) -> tuple[str, list[dict]]:
    """(the row's name, its per-room rows) of a `geovr-eval objects` output (objects.json, or
    the folder holding it). row: RUNTIME (the runtime session's first row), or a row's name."""
    path = Path(path)
    file = path / 'objects.json' if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f'{str(file)!r} does not exist (a geovr-eval objects output)')
    per_sequence = json.loads(file.read_text()).get('rendered', {}).get('per_sequence', {})
    if row == RUNTIME:
        prefix, suffix = RUNTIME_ROWS[0].split('{}')
        names = [n for n in per_sequence if n.startswith(prefix) and n.endswith(suffix)]
    else:
        names = [n for n in per_sequence if n == row]
    if len(names) != 1:
        raise CompareError(f'{str(file)!r} has {len(names)} rows named {row!r}; its rows: {sorted(per_sequence)}')
    return names[0], per_sequence[names[0]]


def question_rows(path: str | Path) -> tuple[str, list[dict]]:
    """(the model's name, one row per question: {'sequence': the question, 'task', 'correct':
    the share of runs that answered it right}) of a `geovr-eval questions` output folder: its
    `--spread` runs (spread.json and a folder per run) or its one run (questions.json)."""
    path = Path(path)
    spread = path / 'spread.json'
    if spread.is_file():
        meta = json.loads(spread.read_text())
        files = [path / f"{meta['parameter']}={value}" / 'questions.json' for value in meta['values']]
    else:
        files = [path / 'questions.json']
    runs = []
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f'{str(file)!r} does not exist (a geovr-eval questions output)')
        runs.append(json.loads(file.read_text()))
    texts = [[q['question'] for q in run['questions']] for run in runs]
    if any(t != texts[0] for t in texts):
        raise CompareError(f'{str(path)!r}: its runs did not ask the same questions')
    rows = [{'sequence': q['question'], 'task': q['task'],
             'correct': float(np.mean([run['questions'][k]['correct'] for run in runs]))}
            for k, q in enumerate(runs[0]['questions'])]
    return f"{Path(str(runs[0].get('model', path))).name} ({len(runs)} runs)", rows


def is_questions_output(paths: str | Path) -> bool:
    """Whether `paths` (one folder, or the first of several comma-separated) is a `geovr-eval
    questions` output folder (else an objects one)."""
    first = Path(str(paths).split(',')[0])
    return (first / 'spread.json').is_file() or (first / 'questions.json').is_file()


def pooled_rows(paths: str, row: str = RUNTIME, questions: bool = False) -> tuple[str, list[dict]]:
    """`room_rows` of several outputs (comma-separated), their rooms told apart by the output's
    place in the list (room sets generated with other seeds reuse the scene names); with
    `questions`, `question_rows` of several question sets (the real sets pooled)."""
    names, rows = [], []
    parts = [p for p in str(paths).split(',') if p]
    for index, path in enumerate(parts):
        name, these = question_rows(path) if questions else room_rows(path, row)
        names.append(name)
        rows += [{**r, 'sequence': f'{index}:{r["sequence"]}'} if len(parts) > 1 else r for r in these]
    return ' + '.join(dict.fromkeys(names)), rows


def paired_rooms(rows_a: list[dict], rows_b: list[dict]) -> tuple[list[dict], list[dict]]:
    """The two runs' rows in one room order; CompareError when their rooms differ."""
    by_name = {r['sequence']: r for r in rows_b}
    names_a = [r['sequence'] for r in rows_a]
    if sorted(names_a) != sorted(by_name) or len(set(names_a)) != len(names_a):
        only_a = sorted(set(names_a) - set(by_name))
        only_b = sorted(set(by_name) - set(names_a))
        raise CompareError(f'the runs are not over the same rooms (or questions): only in A {only_a[:5]}, '
                           f'only in B {only_b[:5]}')
    return rows_a, [by_name[n] for n in names_a]


def compare_runs(rows_a: list[dict], rows_b: list[dict], resamples: int = 2000, level: float = 0.9,
                 seed: int = 0, figures: tuple[Figure, ...] = FIGURES) -> dict[str, dict[str, float]]:
    """Every figure of `figures` the rows hold: {name: {a, b, difference (B - A), low, high
    (the `level` interval of the difference over `resamples` paired resamples of the rows:
    rooms, or questions), b_better (the share of resamples where B is the better)}}."""
    rows_a, rows_b = paired_rooms(rows_a, rows_b)
    n = len(rows_a)
    if n == 0:
        raise CompareError('no rooms to compare')
    if not 0 < level < 1 or resamples < 1:
        raise CompareError(f'level must be in (0, 1) and resamples >= 1, got {level!r}, {resamples!r}')
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    a_values, b_values = figures_of(rows_a, figures), figures_of(rows_b, figures)
    resampled = [(figures_of([rows_a[i] for i in d], figures), figures_of([rows_b[i] for i in d], figures))
                 for d in draws]
    tail = (1 - level) / 2
    out = {}
    for figure in figures:
        a, b = a_values.get(figure.name, float('nan')), b_values.get(figure.name, float('nan'))
        if not (np.isfinite(a) and np.isfinite(b)):
            continue
        differences = np.array([rb[figure.name] - ra[figure.name] for ra, rb in resampled])
        differences = differences[np.isfinite(differences)]
        sign = 1.0 if figure.higher_is_better else -1.0
        out[figure.name] = {'a': a, 'b': b, 'difference': b - a,
                            'low': float(np.quantile(differences, tail)),
                            'high': float(np.quantile(differences, 1 - tail)),
                            'b_better': float(np.mean(sign * differences > 0))}
    return out


def markdown(result: dict[str, dict[str, float]], name_a: str, name_b: str, level: float, rows: int,
             unit: str = 'rooms') -> str:
    lines = [f'A: {name_a}; B: {name_b}; {rows} {unit}, paired resamples of the {unit}', '',
             f'| figure | A | B | B - A | {100 * level:.0f} % interval | B better in |', '|---|---|---|---|---|---|']
    for name, r in result.items():
        lines.append(f"| {name} | {r['a']:.3f} | {r['b']:.3f} | {r['difference']:+.3f} | "
                     f"{r['low']:+.3f} .. {r['high']:+.3f} | {100 * r['b_better']:.0f} % |")
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval compare', description=__doc__.splitlines()[0])
    parser.add_argument('a', help='geovr-eval objects output (folder or objects.json): the baseline; several, '
                                  'comma-separated, are pooled (e.g. validation,held-out,fresh rooms); or a '
                                  'geovr-eval questions output folder (its --spread runs), several pooled alike '
                                  '(e.g. the two real question sets)')
    parser.add_argument('b', help='the same rooms under the change (the same outputs in the same order)')
    parser.add_argument('--row', default=RUNTIME,
                        help=f"the row compared: {RUNTIME!r} (the runtime session's, default) or a row's "
                             "full name (e.g. 'oracle namer, stride 8')")
    parser.add_argument('--resamples', type=int, default=2000)
    parser.add_argument('--level', type=float, default=0.9, help='the interval of the difference (default 0.9)')
    parser.add_argument('--out', default=None, help='also write compare.json and compare.md here')
    args = parser.parse_args(argv)
    try:
        questions = is_questions_output(args.a)
        if questions != is_questions_output(args.b):
            raise CompareError(f'{args.a!r} and {args.b!r} are not both geovr-eval questions outputs')
        name_a, rows_a = pooled_rows(args.a, args.row, questions)
        name_b, rows_b = pooled_rows(args.b, args.row, questions)
        result = compare_runs(rows_a, rows_b, args.resamples, args.level,
                              figures=QUESTION_FIGURES if questions else FIGURES)
    except (FileNotFoundError, CompareError, json.JSONDecodeError, KeyError) as exc:
        print(f'geovr-eval compare: error: {exc}', file=sys.stderr)
        return 2
    text = markdown(result, name_a, name_b, args.level, len(rows_a), 'questions' if questions else 'rooms')
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / 'compare.json').write_text(json.dumps({'a': str(args.a), 'b': str(args.b), 'row': args.row,
                                                      'level': args.level, 'figures': result}, indent=2))
        (out / 'compare.md').write_text(f'# geovr-eval compare\n\n{text}\n')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
