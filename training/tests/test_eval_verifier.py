"""`geovr-eval verifier`: the logistic fit, the AUC, and the command on tiny rendered rooms."""
from __future__ import annotations

import re

import numpy as np
import pytest

from geovr_training.evaluation.verifier import fit_logistic, main, roc_auc


def test_the_logistic_fit_recovers_known_weights_on_raw_features():
    rng = np.random.default_rng(0)
    x = rng.normal([2.0, -1.0, 5.0], [1.0, 3.0, 0.5], size=(20000, 3))
    true_w, true_b = np.array([1.5, -0.5, 2.0]), -9.0
    y = rng.random(len(x)) < 1 / (1 + np.exp(-(x @ true_w + true_b)))
    w, b = fit_logistic(x, y, l2=0.0)
    assert w == pytest.approx(true_w, abs=0.1) and b == pytest.approx(true_b, abs=0.6)
    shrunk, _ = fit_logistic(x, y, l2=5000.0)
    assert np.all(np.abs(shrunk) < np.abs(w))


def test_auc_counts_ordered_pairs_and_ties_as_half():
    labels = np.array([0, 0, 1, 1], bool)
    assert roc_auc(np.array([0.1, 0.2, 0.8, 0.9]), labels) == 1.0
    assert roc_auc(np.array([0.9, 0.8, 0.2, 0.1]), labels) == 0.0
    assert roc_auc(np.array([0.5, 0.1, 0.5, 0.9]), labels) == pytest.approx(0.875)   # one tie of four pairs
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1], bool)))


def test_the_command_refuses_bad_arguments_and_missing_data(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['--data', str(tmp_path), '--threshold', '1.5', '--out', str(tmp_path / 'out')])
    assert main(['--data', str(tmp_path / 'nothing'), '--out', str(tmp_path / 'out')]) == 2
    assert 'geovr-eval verifier: error' in capsys.readouterr().err


def test_the_command_maps_tiny_rooms_with_the_runtime_namer_and_refuses_nothing_to_learn(tiny_data, tmp_path,
                                                                                     capsys):
    """An untrained head (seed 0) keeps no true instance in the 3 tiny rooms (the pristine ImageNet
    namer may keep a false one or two): nothing to fit, said plainly."""
    import torch

    from geovr_training.model import ModelArgsV2, build_model, save_checkpoint
    from geovr_training.train.cell_categories import rendered_categories
    torch.manual_seed(0)
    model = build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False,
                                    cell_categories=rendered_categories(), category_kernel=3))
    checkpoint = save_checkpoint(tmp_path / 'head.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    assert main(['--data', str(tiny_data), '--checkpoint', str(checkpoint), '--out', str(tmp_path / 'out')]) == 2
    assert re.search(r'\d+ instances?, 0 of them true: nothing to tell apart', capsys.readouterr().err)
    assert not (tmp_path / 'out' / 'verifier.yaml').exists()


def rooms_with_weak_misnamings(n_rooms=12, seed=0):
    """[(instances, shown objects)]: per room a table and a chair seen well (true) and weak
    misnamings: a 'chair' on the table's corner, a 'lamp' on a wall. Real ObjectMap instances."""
    from geovr_ros.objects import ObjectMap, ObjectMapConfig, ObjectObservation
    from geovr_training.data.types import SceneObject
    rng = np.random.default_rng(seed)
    rooms = []
    for _ in range(n_rooms):
        m = ObjectMap(ObjectMapConfig(vertical_axis=2))

        def observe(category, centre, half, stamps, score):
            c, h = np.asarray(centre, float), np.asarray(half, float)
            for stamp in stamps:
                jitter = rng.normal(0, 0.02, 3)
                m.add([ObjectObservation(category, score, c + jitter, c + jitter - h, c + jitter + h, 0, c, float(stamp),
                                         np.zeros(0, int), 100)])
        table = rng.uniform(-2, 2, 3) * [1, 1, 0] + [0, 0, 0.4]
        chair = table + [3.0, rng.uniform(-1, 1), 0.05]
        observe('table', table, (0.6, 0.4, 0.4), range(int(rng.integers(10, 30))), 0.8)
        observe('chair', chair, (0.25, 0.25, 0.45), range(int(rng.integers(8, 20))), 0.7)
        observe('chair', table + [0.4, 0.25, 0.2], (0.1, 0.1, 0.1), range(int(rng.integers(2, 4))), 0.4)
        observe('lamp', table + [0, 3.0, 1.5], (0.2, 0.05, 0.3), range(int(rng.integers(2, 4))), 0.35)
        objects = [SceneObject(1, 'table', 'brown', table, np.array([1.2, 0.8, 0.8]), 0.0, 0),
                   SceneObject(2, 'chair', 'red', chair, np.array([0.5, 0.5, 0.9]), 0.0, 0)]
        rooms.append((m.instances(), objects))
    return rooms


def test_fit_verifier_believes_what_was_seen_well_and_doubts_weak_misnamings():
    from geovr_training.evaluation.verifier import fit_verifier
    verifier, report = fit_verifier(rooms_with_weak_misnamings(), 2, threshold=0.5, fitted_on='test (12 rooms')
    assert (report['instances'], report['true']) == (48, 24) and report['auc'] > 0.95
    assert verifier.fitted_on == 'test (12 rooms, 48 instances, 24 true)' and verifier.threshold == 0.5
    first, at_half = report['operating_points'][0], report['operating_points'][5]
    assert (first['threshold'], first['recall'], first['precision']) == (0.0, 1.0, 0.5)
    assert at_half['threshold'] == 0.5 and at_half['recall'] == 1.0 and at_half['precision'] > 0.9
    # keep_best keeps each room's lamp (its category's only instance): precision stays lower
    assert at_half['precision_keep_best'] < at_half['precision']
    held_out = rooms_with_weak_misnamings(4, seed=1)
    for instances, _ in held_out:
        beliefs = verifier.beliefs(instances, 2)
        true = np.array([i.n_views >= 8 for i in instances])
        assert beliefs[true].min() > beliefs[~true].max()
    with pytest.raises(ValueError, match='nothing to tell apart'):
        fit_verifier([(instances[:1], objects[:1]) for instances, objects in held_out], 2)
