"""`geovr-eval transfer`: training mixes trained alike and judged on the same test sets."""

import json
from pathlib import Path

import pytest

from geovr_training.evaluation.cli import main as eval_main
from geovr_training.evaluation.transfer import parse_test, split_repeats, transfer_table

TINY = str(Path(__file__).resolve().parents[1] / 'configs' / 'tiny.yaml')


def test_run_and_test_specs_parse_and_bad_ones_name_the_text():
    assert split_repeats(['/a/rooms*10', '/b/real']) == (['/a/rooms', '/b/real'], [10, 1])
    assert parse_test('office=/data/holo@val').split == 'val'
    assert parse_test('box=/data/box').split == 'test'
    with pytest.raises(ValueError, match=r'rooms\*0'):
        split_repeats(['rooms*0'])
    with pytest.raises(ValueError, match='NAME=VALUE'):
        parse_test('/data/box')


def test_transfer_trains_each_mix_once_and_resumes(tiny_data, tmp_path, capsys):
    out = tmp_path / 'transfer'
    argv = ['transfer', '--config', TINY, '--set', 'loss.distill=0.0', '--steps', '2', '--max-test-frames', '4',
            '--run', f'one={tiny_data}', '--run', f'twice={tiny_data}*2+{tiny_data}',
            '--test', f'rooms={tiny_data}@test', '--test', f'rooms val={tiny_data}@val', '--out', str(out),
            '--no-progress']
    assert eval_main(argv) == 0
    record = json.loads((out / 'transfer.json').read_text())
    assert [r['name'] for r in record['rows']] == ['one', 'twice']
    for row in record['rows']:
        assert set(row['results']) == {'rooms', 'rooms val'}
        for metrics in row['results'].values():
            assert 0.0 <= metrics['depth_median_delta1'] <= 1.0 and metrics['depth_metric_abs_rel'] > 0
    assert set(record['constant']) == {'rooms', 'rooms val'}
    table = (out / 'transfer.md').read_text()
    assert 'constant depth' in table and '| one |' in table and 'rooms val δ1 med' in table
    trained = {r['name']: Path(r['checkpoint']).stat().st_mtime_ns for r in record['rows']}

    assert 'rooms δ1 aff' in table
    assert all(0.0 <= m['depth_affine_delta1'] <= 1.0 for m in record['rows'][0]['results'].values())

    assert eval_main(argv) == 0  # the same recipe again: not retrained, not scored again
    again = json.loads((out / 'transfer.json').read_text())
    assert {r['name']: Path(r['checkpoint']).stat().st_mtime_ns for r in again['rows']} == trained
    assert again['rows'][0]['results'] == record['rows'][0]['results']

    for metrics in again['rows'][1]['results'].values():  # scored before a column was added
        del metrics['depth_affine_delta1']
    (out / 'transfer.json').write_text(json.dumps(again))
    assert eval_main(argv) == 0
    rescored = json.loads((out / 'transfer.json').read_text())
    assert {r['name']: Path(r['checkpoint']).stat().st_mtime_ns for r in rescored['rows']} == trained
    assert rescored['rows'][1]['results'] == record['rows'][1]['results']


def test_transfer_refuses_a_folder_that_is_not_a_dataset(tiny_data, tmp_path, capsys):
    status = eval_main(['transfer', '--config', TINY, '--run', f'bad={tmp_path}', '--test', f'rooms={tiny_data}',
                        '--out', str(tmp_path / 'o')])
    assert status == 2
    assert 'not a geovr-data dataset folder' in capsys.readouterr().err


def test_table_shows_each_set_and_the_mean():
    rows = [{'name': 'a', 'trained_on': 'x', 'steps': 3, 'train_seconds': 60.0,
             'results': {'s1': {'depth_median_delta1': 0.5}, 's2': {'depth_median_delta1': 0.7}},
             'mean': {'depth_median_delta1': 0.6}}]
    table = transfer_table(rows, ['s1', 's2'])
    assert '| a | x | 3 | 1.0 | 0.500 |' in table and '0.600' in table


def test_a_run_is_keyed_by_what_it_sets_so_a_new_default_keeps_it():
    """The cache key of a transfer run hashes the settings that differ from the trainer's
    defaults: a default key added later at its old behaviour leaves it as it was, a changed
    setting does not."""
    import copy

    from geovr_training.train.config import DEFAULTS, load_config, settings_beside

    config = load_config(TINY, {'data': {'flip_fraction': 0.5}})
    beside = settings_beside(config)
    assert beside['data']['flip_fraction'] == 0.5 and 'colour_jitter_fraction' not in beside['data']
    assert beside['model'] == config['model']                       # free sections: every key set
    newer_defaults, newer_config = copy.deepcopy(DEFAULTS), copy.deepcopy(config)
    newer_defaults['data']['a_later_knob'] = newer_config['data']['a_later_knob'] = 0.0
    assert settings_beside(newer_config, newer_defaults) == beside
    newer_config['data']['a_later_knob'] = 1.0
    assert settings_beside(newer_config, newer_defaults)['data']['a_later_knob'] == 1.0
