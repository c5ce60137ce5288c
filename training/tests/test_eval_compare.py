"""geovr-eval compare: two object-map runs over the same rooms, the rooms resampled in pairs."""

import json

import numpy as np
import pytest

from geovr_training.evaluation.cli import main as eval_main
from geovr_training.evaluation.compare import CompareError, compare_runs, room_rows

RUNTIME_ROW = 'the runtime session ({}: its depth, tracked poses)'


def _room(name, where_error, count_right, size_mra):
    """One room's row as geovr-eval objects writes it: three objects shown, one where-is item."""
    return {'sequence': name, 'scale': 1.0, 'objects_shown': 3, 'objects_total': 3, 'instances': 4,
            'matched': 2, 'count_items': 1, 'count_exact': int(count_right), 'count_within_one': 1,
            'where_items': 1, 'where_answered': 1, 'where_errors': [where_error], 'size_mra': [size_mra],
            'distance_mra': [0.5],
            'qa': [{'task': 'object_count', 'key': ['object_count', ['chair']], 'answered': True,
                    'score': 100.0 * count_right},
                   {'task': 'where_is', 'key': ['where_is', ['chair']], 'answered': True, 'score': 0.0,
                    'error_m': where_error}]}


def _write(path, model, rooms):
    path.mkdir()
    (path / 'objects.json').write_text(json.dumps({'rendered': {'per_sequence': {
        RUNTIME_ROW.format(model): rooms, 'oracle namer, stride 8': rooms}}}))
    return path


def test_a_change_in_every_room_is_told_from_one_that_a_single_room_makes():
    rng = np.random.default_rng(3)
    errors = rng.uniform(0.3, 1.2, 24)
    a = [_room(f'scene_{i}', e, i % 2, 0.3) for i, e in enumerate(errors)]
    everywhere = [_room(f'scene_{i}', 0.8 * e, i % 2, 0.4) for i, e in enumerate(errors)]
    result = compare_runs(a, list(reversed(everywhere)), resamples=400)   # rooms paired by name, not order
    where = result['where-is median m']
    assert where['difference'] < 0 and where['high'] < 0 and where['b_better'] == 1.0   # lower is better
    assert result['size MRA']['low'] == pytest.approx(0.1) and result['size MRA']['b_better'] == 1.0
    assert result['count exact']['difference'] == 0.0 and result['VSI object_count']['b_better'] == 0.0
    one_room = [dict(r) for r in a]
    one_room[0] = _room('scene_0', errors[0], 1, 1.0)   # one room's count and size right: inside the noise
    result = compare_runs(a, one_room, resamples=400)
    assert result['count exact']['difference'] > 0 and result['count exact']['low'] == 0.0
    assert 0.3 < result['size MRA']['b_better'] < 0.9


def test_runs_over_other_rooms_or_without_the_row_are_refused(tmp_path, capsys):
    rooms = [_room(f'scene_{i}', 0.5, 1, 0.3) for i in range(3)]
    a = _write(tmp_path / 'a', 'm_a', rooms)
    b = _write(tmp_path / 'b', 'm_b', rooms[:2] + [_room('scene_9', 0.5, 1, 0.3)])
    with pytest.raises(CompareError, match=r"only in A \['scene_2'\], only in B \['scene_9'\]"):
        compare_runs(room_rows(a)[1], room_rows(b)[1])
    assert eval_main(['compare', str(a), str(b)]) == 2 and 'not over the same rooms' in capsys.readouterr().err
    assert eval_main(['compare', str(a), str(a), '--row', 'no such row']) == 2
    assert 'oracle namer, stride 8' in capsys.readouterr().err
    assert eval_main(['compare', str(tmp_path / 'nope'), str(a)]) == 2


def test_cli_compares_the_runtime_rows_of_two_model_directories(tmp_path, capsys):
    a = _write(tmp_path / 'a', 'm_a', [_room(f'scene_{i}', 0.5 + 0.1 * i, i % 2, 0.3) for i in range(6)])
    b = _write(tmp_path / 'b', 'm_b', [_room(f'scene_{i}', 0.4 + 0.1 * i, 1, 0.3) for i in range(6)])
    assert eval_main(['compare', str(a), str(b / 'objects.json'), '--resamples', '200', '--out', str(tmp_path / 'o')]) == 0
    printed = capsys.readouterr().out
    assert 'A: the runtime session (m_a: its depth' in printed and 'B: the runtime session (m_b' in printed
    saved = json.loads((tmp_path / 'o' / 'compare.json').read_text())['figures']
    assert saved['VSI object_count']['difference'] == pytest.approx(50.0)
    assert saved['where-is median m']['difference'] == pytest.approx(-0.1)
    assert '| VSI overall (the 8) |' in (tmp_path / 'o' / 'compare.md').read_text()
    c = _write(tmp_path / 'c', 'm_a', [_room(f'scene_{i}', 0.5, 0, 0.3) for i in range(6)])   # another set, same names
    assert eval_main(['compare', f'{a},{c}', f'{b},{c}', '--resamples', '50', '--out', str(tmp_path / 'p')]) == 0
    pooled = json.loads((tmp_path / 'p' / 'compare.json').read_text())['figures']
    assert pooled['VSI object_count']['difference'] == pytest.approx(25.0)   # 12 rooms, 6 of them unchanged
    assert '12 rooms' in capsys.readouterr().out


def _questions(path, verdicts, tasks=('where_is', 'object_count', 'abs_distance')):
    """A geovr-eval questions --spread output: one run per row of `verdicts` (questions x runs)."""
    values = [str(2.5 + 0.5 * k) for k in range(len(verdicts[0]))]
    path.mkdir()
    (path / 'spread.json').write_text(json.dumps({'parameter': 'tracking_threshold_px', 'values': values}))
    for k, value in enumerate(values):
        run = path / f'tracking_threshold_px={value}'
        run.mkdir()
        questions = [{'question': f'question {i}?', 'task': tasks[i % len(tasks)], 'correct': bool(v[k])}
                     for i, v in enumerate(verdicts)]
        (run / 'questions.json').write_text(json.dumps({'model': '/tmp/m_x', 'questions': questions}))
    return path


def test_two_question_sets_are_compared_question_by_question(tmp_path, capsys):
    a = _questions(tmp_path / 'a', [[1, 1, 1]] * 10 + [[0, 0, 0]] * 10)
    b = _questions(tmp_path / 'b', [[1, 1, 1]] * 10 + [[1, 1, 0]] * 10)   # ten more right in 2 of 3 runs
    assert eval_main(['compare', str(a), str(b), '--resamples', '300', '--out', str(tmp_path / 'o')]) == 0
    assert '20 questions, paired resamples of the questions' in capsys.readouterr().out
    right = json.loads((tmp_path / 'o' / 'compare.json').read_text())['figures']['questions right (mean over runs)']
    assert right['a'] == 10 and right['b'] == pytest.approx(10 + 20 / 3) and right['low'] > 3 and right['b_better'] == 1.0
    objects = _write(tmp_path / 'objects', 'm_a', [_room('scene_0', 0.5, 1, 0.3)])
    assert eval_main(['compare', str(a), str(objects)]) == 2
    assert 'not both geovr-eval questions outputs' in capsys.readouterr().err
    other = _questions(tmp_path / 'other', [[1, 1, 1]] * 19)
    assert eval_main(['compare', str(a), str(other)]) == 2
    assert 'only in A' in capsys.readouterr().err
    # two question sets pooled (the real sets of two recordings): their questions told apart by
    # the set's place, though both ask 'question 0?'
    a2 = _questions(tmp_path / 'a2', [[0, 0, 0]] * 5)
    b2 = _questions(tmp_path / 'b2', [[0, 0, 0]] * 5)
    assert eval_main(['compare', f'{a},{a2}', f'{b},{b2}', '--resamples', '300', '--out', str(tmp_path / 'o2')]) == 0
    assert '25 questions, paired resamples of the questions' in capsys.readouterr().out
    pooled = json.loads((tmp_path / 'o2' / 'compare.json').read_text())['figures']['questions right (mean over runs)']
    assert pooled['a'] == 10 and pooled['b'] == pytest.approx(10 + 20 / 3)
    assert eval_main(['compare', f'{a},{a2}', f'{b},{other}']) == 2   # a set of other questions in B
    assert 'only in A' in capsys.readouterr().err
