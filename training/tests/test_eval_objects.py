"""`geovr-eval objects`: the oracle namer, the matching, and the runtime object map measured
on a tiny rendered set (a floor under what was measured, not the figure itself)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from geovr_training.data.types import SceneObject
from geovr_training.evaluation.objects import (_option_of_order, evaluate_oracle, main, match_objects,
                                               oracle_probabilities, question_only_scores)


def test_oracle_probabilities_are_pixel_fractions_per_cell():
    seg = np.zeros((4, 8), np.int32)
    seg[:2, :2] = 5  # instance 5 (category 1) fills the top-left quarter of cell (0, 0)
    seg[:, 4:] = 9  # instance 9 (category 0) fills cell (0, 1)
    seg[3, 3] = 77  # an id with no object: background
    p = oracle_probabilities(seg, {5: 1, 9: 0}, n_categories=2, stride=4)
    assert p.shape == (1, 2, 3)
    np.testing.assert_allclose(p[0, 0], [0.0, 0.25, 0.75])
    np.testing.assert_allclose(p[0, 1], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(p.sum(-1), 1.0)
    with pytest.raises(ValueError, match='not a whole number'):
        oracle_probabilities(seg, {}, 2, stride=3)


class _Inst:
    def __init__(self, category, centroid):
        self.category, self.centroid = category, np.asarray(centroid, float)


def test_matching_is_one_to_one_within_the_radius_and_category():
    objects = [SceneObject(1, 'chair', 'red', np.array([0.0, 0, 0]), np.ones(3), 0.0, 0),
               SceneObject(2, 'chair', 'red', np.array([0.3, 0, 0]), np.ones(3), 0.0, 0),
               SceneObject(3, 'table', 'red', np.array([5.0, 0, 0]), np.ones(3), 0.0, 0)]
    found = [_Inst('chair', (0.1, 0, 0)), _Inst('chair', (0.15, 0, 0)), _Inst('table', (0.0, 0, 0)),
             _Inst('table', (5.6, 0, 0))]
    matches = match_objects(found, objects, radius=0.5)
    assert sorted((i, j) for i, j, _ in matches) == [(0, 0), (1, 1)]  # the table is 0.6 m off


@pytest.fixture(scope='module')
def tiny_rooms():
    from geovr_training.data.generate import GenerationConfig, render_sequence
    config = GenerationConfig(seed=11, frames_per_scene=16, resolution=(128, 96), qa_per_scene=0)
    return [render_sequence(config, i) for i in range(4)]


def test_oracle_object_map_finds_most_objects(tiny_rooms):
    # measured on these 4 rooms (21 objects shown): stride 8 recall 0.81, precision 0.85,
    # count exact 0.93; stride 32 (4x3 cells at 128x96) recall 0.24
    summary, rows, first = evaluate_oracle(tiny_rooms, strides=(8, 32))
    fine, coarse = summary['oracle namer, stride 8'], summary['oracle namer, stride 32']
    assert fine['objects_shown'] >= 15
    assert fine['recall'] >= 0.65 and fine['precision'] >= 0.65
    assert fine['count_within_one'] >= 0.8 and fine['where_median_m'] <= 0.5
    assert coarse['recall'] < fine['recall']  # coarse cells miss small objects
    assert len(rows['oracle namer, stride 8']) == 4 and set(first) == {8, 32}


def test_cli_writes_the_report(tiny_data, tmp_path, capsys):
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '8', '--out', str(tmp_path)]) == 0
    report = json.loads((tmp_path / 'objects.json').read_text())
    row = report['rendered']['summary']['oracle namer, stride 8']
    assert {'recall', 'precision', 'count_exact', 'where_median_m', 'size_mra'} <= set(row)
    assert report['command'].startswith('geovr-eval objects --data')
    assert (tmp_path / 'objects_rendered_stride8.png').stat().st_size > 0
    assert '| oracle namer, stride 8 |' in capsys.readouterr().out
    qa = report['rendered']['qa']                    # the data engine's QA items answered from the map
    prior = next(k for k in qa if k.startswith('question-only'))
    assert qa['oracle namer, stride 8']['items'] == qa[prior]['items'] > 0
    assert all(0.0 <= v <= 100.0 for row in qa.values() for v in row['tasks'].values())


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(['--data', str(tmp_path / 'missing'), '--out', str(tmp_path / 'out')]) == 2
    assert 'geovr-eval objects: error:' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--out', str(tmp_path)])  # neither --data nor --real


def test_cli_scores_the_category_head_alone_and_combined(tiny_data, tmp_path, capsys):
    import torch

    from geovr_training.model import ModelArgsV2, build_model, save_checkpoint
    from geovr_training.train.cell_categories import rendered_categories
    torch.manual_seed(0)
    model = build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False,
                                    cell_categories=rendered_categories(), category_kernel=3))
    checkpoint = save_checkpoint(tmp_path / 'head.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--imagenet-on-data',
                 '--head-on-data', '--rules', 'max,head', '--checkpoint', str(checkpoint),
                 '--out', str(tmp_path / 'out')]) == 0
    report = json.loads((tmp_path / 'out' / 'objects.json').read_text())
    rows = report['rendered']['summary']
    keys = ['ImageNet namer (pristine Lite0, 128x96, stride 32)', 'category head (128x96, stride 32)',
            'head + ImageNet, rule max (128x96, stride 32)', 'head + ImageNet, rule head (128x96, stride 32)']
    assert list(rows) == ['oracle namer, stride 32', *keys]
    assert all(0.0 <= rows[k]['cell_iou'] <= 1.0 and 'recall' in rows[k] for k in keys)
    assert set(report['rendered_cells']) == set(keys)
    points = report['rendered_cells'][keys[1]]['belief_operating_points']   # the shipped vocabulary's verifier
    assert [p['threshold'] for p in points] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert all(p['instances'] <= p['instances_keep_best'] <= points[0]['instances'] for p in points)
    assert '| category head (128x96, stride 32) |' in capsys.readouterr().out
    old = save_checkpoint(tmp_path / 'old.pt', build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16,
                                                                         descriptor_dim=16, pretrained=False)), {}, 0)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--head-on-data',
                 '--checkpoint', str(old), '--out', str(tmp_path / 'out2')]) == 2
    assert 'category head' in capsys.readouterr().err



def test_the_runtime_session_is_scored_over_the_same_objects_in_its_own_map(tiny_data, tmp_path, capsys):
    """`--runtime MODEL_DIR`: every room goes through the exported model's session (its depth,
    its tracked poses); its map is scored against the objects the oracle rows are scored
    against, and the verifier's operating points come with it. A model directory without a
    cell classifier keeps no object map: refused by name."""
    import torch

    from geovr_training.export.onnx_export import export_model
    from geovr_training.model import ModelArgsV2, build_model, save_checkpoint
    from geovr_training.train.cell_categories import rendered_categories
    torch.manual_seed(0)
    args = dict(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False)
    categories = rendered_categories()
    model = build_model(ModelArgsV2(**args, cell_categories=categories, category_kernel=3))
    with torch.no_grad():   # a namer that calls every cell a chair, so that the map holds something
        model.category_head.classifier[1].weight.zero_()
        model.category_head.classifier[1].bias.fill_(-10.0)[categories.index('chair')] = 10.0   # background last
    checkpoint = save_checkpoint(tmp_path / 'head.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(checkpoint, tmp_path / 'model', sizes=[], with_torch_program=False)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--out', str(tmp_path / 'out')]) == 0
    report = json.loads((tmp_path / 'out' / 'objects.json').read_text())
    keys = ['the runtime session (model: its depth, tracked poses)',
            "the runtime session (model), the room at the map's scale (Sim(3) of its path)"]
    oracle = report['rendered']['summary']['oracle namer, stride 32']
    sequences = [r['sequence'] for r in report['rendered']['per_sequence']['oracle namer, stride 32']]
    printed = capsys.readouterr().out
    for key in keys:
        runtime = report['rendered']['summary'][key]
        assert runtime['objects_shown'] == oracle['objects_shown'] > 0 and runtime['sequences'] == 3
        assert 0.0 <= runtime['recall'] <= 1.0 and 0.0 <= runtime['precision'] <= 1.0
        rows = report['rendered']['per_sequence'][key]
        assert [r['sequence'] for r in rows] == sequences and all(r['scale'] > 0 for r in rows)
        points = report['rendered_runtime'][key]['belief_operating_points']   # the shipped vocabulary's verifier
        assert [p['threshold'] for p in points] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
        assert f'| {key} |' in printed
    # the data engine's items are asked of the session itself, as a robot asks, in the first row
    qa = report['rendered']['qa']
    assert keys[0] in qa and keys[1] not in qa
    assert qa[keys[0]]['items'] == qa['oracle namer, stride 32']['items'] > 0
    assert 0.0 <= qa[keys[0]]['answered'] <= 1.0 and 0.0 <= qa[keys[0]]['overall'] <= 100.0
    # --known-floor: each room's session knows its camera's height from the room's truth (a robot's
    # fixed mount) and rescales the model's depth by the floor it sees: the rooms' map moves
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--known-floor', '--out', str(tmp_path / 'out_floor')]) == 0
    floor = json.loads((tmp_path / 'out_floor' / 'objects.json').read_text())['rendered']['per_sequence'][keys[0]]
    plain = report['rendered']['per_sequence'][keys[0]]
    heights = [r['floor_camera_height'] for r in floor]
    assert all(0.2 < h < 2.5 for h in heights), heights   # the renders' cameras stand 0.25-1.8 m high
    assert sum(r['instances'] for r in plain) > 0
    assert [r['where_errors'] for r in floor] != [r['where_errors'] for r in plain]
    with pytest.raises(SystemExit):
        main(['--data', str(tiny_data), '--split', 'all', '--known-floor', '--out', str(tmp_path / 'out_bad')])
    assert '--runtime' in capsys.readouterr().err
    # --reference-odometry: each room's session is scaled by a wheel odometry (its true path); each
    # row says the scale the session reached and from how many samples, the summary how many rooms had one
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--reference-odometry', '--out', str(tmp_path / 'out_wheels')]) == 0
    wheels = json.loads((tmp_path / 'out_wheels' / 'objects.json').read_text())['rendered']
    rows = wheels['per_sequence'][keys[0]]
    assert all(r['odometry_scale'] > 0 and r['odometry_scale_samples'] >= 0 for r in rows)
    assert wheels['summary'][keys[0]]['odometry_scaled_rooms'] == sum(r['odometry_scale_samples'] > 0 for r in rows)
    # ... and places the frames tracking fails on, on a base whose mount is the first frame's true tilt
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--reference-odometry', '--true-mount', '--set', 'tracking_fallback=reference',
                 '--out', str(tmp_path / 'out_carried')]) == 0
    carried = json.loads((tmp_path / 'out_carried' / 'objects.json').read_text())['rendered']['per_sequence'][keys[0]]
    assert len(carried) == len(rows) and all(r['odometry_scale'] > 0 for r in carried)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--reference-odometry', '--set', 'tracking_fallback=reference', '--out', str(tmp_path / 'out_bad')]) == 2
    assert "odom_child 'base'" in capsys.readouterr().err   # the fallback needs the base's mount
    for flags, reason in ((['--reference-odometry'], 'give --runtime'),
                          (['--true-mount'], 'give --runtime'),
                          (['--runtime', str(tmp_path / 'model'), '--reference-odometry', '--known-floor'],
                           'one scale source')):
        with pytest.raises(SystemExit):
            main(['--data', str(tiny_data), '--split', 'all', *flags, '--out', str(tmp_path / 'out_bad')])
        assert reason in capsys.readouterr().err
    # a user's vocabulary reaches the session (the node's object_vocabulary): a bad one is refused by name
    bad = tmp_path / 'user_vocabulary.yaml'
    bad.write_text('pool_cell: 3\n')
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--vocabulary', str(bad), '--out', str(tmp_path / 'out_vocabulary')]) == 2
    assert 'pool_cell' in capsys.readouterr().err
    (tmp_path / 'model' / 'cell_classifier.onnx').unlink()
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(tmp_path / 'model'),
                 '--out', str(tmp_path / 'out2')]) == 2
    assert 'no object map' in capsys.readouterr().err
    for broken in (tmp_path / 'missing', tmp_path / 'out'):   # no directory; a directory of no model
        assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--runtime', str(broken),
                     '--out', str(tmp_path / 'out3')]) == 2
        err = capsys.readouterr().err
        assert err.startswith('geovr-eval objects: error:') and str(broken) in err and 'Traceback' not in err


def test_imagenet_logits_come_from_the_pristine_network_unless_asked_for_the_checkpoints(tiny_data, tmp_path):
    """--imagenet-weights pristine (default): the class logits are the weights package's Lite0
    on the frame, as the runtime's imagenet_cells graph; checkpoint: the checkpoint's backbone."""
    import torch

    from geovr_training.evaluation.objects import cell_outputs, imagenet_network
    from geovr_training.model import ModelArgsV2, build_model, save_checkpoint
    from geovr_training.model.efficientnet import EfficientNetLite0, load_pretrained
    torch.manual_seed(0)
    model = build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16,
                                    pretrained=False)).eval()
    rgb = np.random.default_rng(0).integers(0, 256, (2, 96, 128, 3), dtype=np.uint8)
    pristine, _ = cell_outputs(model, rgb, (128, 96), imagenet=imagenet_network('pristine'))
    own, _ = cell_outputs(model, rgb, (128, 96))
    assert imagenet_network('checkpoint') is None
    network = load_pretrained(EfficientNetLite0()).eval()
    x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)  # the network's [-1, 1]
    with torch.no_grad():
        expected = network.classify_cells(network.features(x)[32]).flatten(2).transpose(1, 2).numpy()
        backbone = model.backbone.classify_cells(model.backbone.features(x)[32]).flatten(2).transpose(1, 2).numpy()
    assert pristine.shape == (2, 12, 1000)
    np.testing.assert_allclose(pristine, expected, atol=2e-3, rtol=1e-3)
    np.testing.assert_allclose(own, backbone, atol=2e-3, rtol=1e-3)
    assert np.abs(pristine - own).max() > 1.0
    checkpoint = save_checkpoint(tmp_path / 'v2.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--imagenet-on-data',
                 '--imagenet-weights', 'checkpoint', '--checkpoint', str(checkpoint), '--out', str(tmp_path / 'out')]) == 0
    report = json.loads((tmp_path / 'out' / 'objects.json').read_text())
    assert report['imagenet_weights'] == 'checkpoint'
    assert 'ImageNet namer (v2 backbone, 128x96, stride 32)' in report['rendered']['summary']


def test_windows_name_cells_from_crops_each_classified_alone(tiny_data, tmp_path):
    """With a vocabulary that asks for windows the ImageNet logits of every cell are those of
    one window crop classified alone (at window_pixels), as the runtime session's."""
    import torch

    from geovr_ros.objects import load_vocabulary
    from geovr_ros.objects.windows import crop_windows, window_boxes
    from geovr_training.evaluation.objects import imagenet_network, window_cell_logits_of_frames
    from geovr_training.model import ModelArgsV2, build_model, normalize_images, save_checkpoint
    user = tmp_path / 'windows.yaml'
    user.write_text('windows: [0.5, 0.9]\nwindow_pixels: 64\n')
    vocabulary = load_vocabulary(user)
    imagenet = imagenet_network('pristine')
    rgb = np.random.default_rng(1).integers(0, 256, (1, 96, 128, 3), dtype=np.uint8)
    cells = window_cell_logits_of_frames(rgb, (128, 96), vocabulary, imagenet)
    assert cells.shape == (1, 12, 1000)
    boxes, _ = window_boxes(128, 96, vocabulary.windows)
    chw = normalize_images(torch.from_numpy(rgb[0]).permute(2, 0, 1).float() / 255.0).numpy()
    crops = crop_windows(chw.transpose(1, 2, 0), boxes, 64)
    with torch.no_grad():
        alone = np.stack([imagenet(torch.from_numpy(c).permute(2, 0, 1)[None].contiguous()).mean((2, 3))[0].numpy()
                          for c in crops])
    distance = np.abs(cells[0][:, None] - alone[None]).max(-1)   # (cells, windows)
    assert (distance.min(1) < 1e-3).all()                        # each cell: one window's logits
    assert len(set(distance.argmin(1))) > 1                       # not all the same window
    torch.manual_seed(0)
    model = build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False))
    checkpoint = save_checkpoint(tmp_path / 'v2.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '32', '--imagenet-on-data',
                 '--vocabulary', str(user), '--checkpoint', str(checkpoint), '--out', str(tmp_path / 'out')]) == 0
    report = json.loads((tmp_path / 'out' / 'objects.json').read_text())
    assert 'ImageNet namer (pristine Lite0, windows 0.5/0.9 at 64 px, 128x96, stride 32)' in report['rendered']['summary']


def test_cli_scores_a_stride16_head_beside_the_stride32_one(tiny_data, tmp_path, capsys):
    """--head-checkpoints: a second checkpoint's head (here on the stride-16 cells) scored in the
    same run; its cell IoU is against the oracle's labels of its own (stride-16) cells."""
    import torch

    from geovr_training.model import ModelArgsV2, build_model, save_checkpoint
    from geovr_training.train.cell_categories import rendered_categories
    torch.manual_seed(0)
    small = dict(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False,
                 cell_categories=rendered_categories(), category_kernel=3)
    s32 = save_checkpoint(tmp_path / 's32.pt', build_model(ModelArgsV2(**small)),
                          {'data': {'resolution': [128, 96]}}, 0)
    s16 = save_checkpoint(tmp_path / 's16.pt', build_model(ModelArgsV2(**small, category_features='s16+s32')),
                          {'data': {'resolution': [128, 96]}}, 0)
    assert main(['--data', str(tiny_data), '--split', 'all', '--strides', '16', '--head-on-data',
                 '--checkpoint', str(s32), '--head-checkpoints', str(s16), '--out', str(tmp_path / 'out')]) == 0
    rows = json.loads((tmp_path / 'out' / 'objects.json').read_text())['rendered']['summary']
    assert list(rows) == ['oracle namer, stride 16',
                          'category head (128x96, stride 32), s32.pt', 'head + ImageNet, rule head (128x96, stride 32), s32.pt',
                          'category head (128x96, stride 16), s16.pt', 'head + ImageNet, rule head (128x96, stride 16), s16.pt']
    assert all('recall' in row for row in rows.values())
    assert '| category head (128x96, stride 16), s16.pt |' in capsys.readouterr().out

def test_qa_options_and_the_question_only_prior():
    from geovr_ros.objects import Vocabulary
    vocab = Vocabulary.from_names(['chair', 'table', 'lamp'])
    choices = ['lamp, chair, table', 'chair, table, lamp', 'chair, lamp, table']
    assert _option_of_order('first seen: the chair (t=0.1 s), then the table (t=0.5 s), then the lamp (t=1 s)',
                            choices, vocab) == 1
    assert _option_of_order('first seen: the chair (t=0.1 s), then the lamp (t=2 s); not seen: the table',
                            choices, vocab) == 2
    assert _option_of_order('first seen: the table (t=0.1 s), then the chair (t=2 s)', choices, vocab) is None
    key = ('object_count', ('chair',))
    rooms = [[{'task': 'object_count', 'key': key, 'truth': 4.0, 'score': 0.0, 'answered': False}],
             [{'task': 'object_count', 'key': key, 'truth': 5.0, 'score': 0.0, 'answered': False},
              {'task': 'appearance_order', 'key': ('appearance_order', ()), 'options': 4, 'score': 0.0,
               'answered': False}]]
    prior = question_only_scores(rooms)
    assert prior[0][0]['score'] == pytest.approx(50.0)         # guesses 5 for a true 4: MRA 0.5
    assert prior[1][0]['score'] == pytest.approx(60.0)         # guesses 4 for a true 5: MRA 0.6
    assert prior[1][1]['score'] == 25.0                        # chance of 4 options


def test_qa_items_asked_of_another_answerer_in_its_own_frame():
    """`score_qa(ask=..., T_frame_world=...)`: the items go to the given answerer (the runtime
    session's `answer`), and a where-is truth is moved into the frame its answers are in."""
    from geovr_ros.geometry import make_pose, matrix_from_rpy
    from geovr_ros.memory.answerer import Answer
    from geovr_ros.objects import Vocabulary
    from geovr_training.evaluation.objects import score_qa
    vocabulary = Vocabulary.from_names(['chair', 'table'])
    T_frame_world = make_pose(matrix_from_rpy(0.0, 0.0, 0.7), np.array([1.0, -2.0, 0.5]))
    truth = np.array([2.0, 1.0, 0.4])
    in_frame = T_frame_world[:3, :3] @ truth + T_frame_world[:3, 3]
    items = [{'task': 'where_is', 'question': 'Where is the chair?', 'answer': {'type': 'point', 'value': truth.tolist()}},
             {'task': 'abs_distance', 'question': 'How far is the chair from the table?',
              'answer': {'type': 'number', 'value': 2.0, 'unit': 'm'}}]
    asked = []

    def ask(question):
        asked.append(question)
        if question.startswith('Where'):
            return Answer(True, 'here', value=0.0, points=in_frame[None], frame='map')
        return Answer(True, '1.5 m', value=1.5, unit='m')
    where, distance = score_qa(items, [], np.eye(4), vocabulary, ask=ask, T_frame_world=T_frame_world)
    assert asked == [i['question'] for i in items]
    assert where['error_m'] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < distance['score'] < 100.0 and distance['answered']
    (unmoved,) = score_qa(items[:1], [], np.eye(4), vocabulary, ask=ask)
    assert unmoved['error_m'] == pytest.approx(np.linalg.norm(in_frame - truth))
