"""`geovr-eval questions`: the labelled real question sets (fixtures/hololens_office_questions.yaml,
fixtures/tum_fr1_rpy_questions.yaml), their truth from the recordings' sensor depth and poses, and
the scoring rules."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geovr_ros.memory import Answer
from geovr_training.evaluation.questions import (LabelError, absent_categories, load_labels, main, markdown_spread,
                                                 mean_relative_accuracy, naming_recall, object_centres, question_alone,
                                                 score, spread_summary, visible_pixel)

ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / 'fixtures' / 'hololens_office_questions.yaml'
RECORDING = ROOT.parent / 'shared' / 'data' / 'hololens_office'
TUM_LABELS = ROOT / 'fixtures' / 'tum_fr1_rpy_questions.yaml'
TUM_RECORDING = ROOT.parent / 'shared' / 'data' / 'tum_fr1_rpy'


@pytest.mark.parametrize('labels', [LABELS, TUM_LABELS], ids=['hololens_office', 'tum_fr1_rpy'])
def test_the_shipped_question_sets_are_whole(labels):
    data = load_labels(labels)
    assert len(data['questions']) >= 20
    assert {q['task'] for q in data['questions']} == {'where_is', 'object_count', 'abs_distance', 'not_seen'}
    assert data['recording'] == labels.name.removesuffix('_questions.yaml')


@pytest.mark.parametrize('text, match', [
    ('objects: {}\n', 'needs a mapping `objects` and a list `questions`'),
    ('objects: {sofa: [{frame: 1}]}\nquestions: []\n', 'box'),
    ('objects: {sofa: [{frame: 1, box: [0, 0, 9, 9]}]}\nquestions: [{question: x, task: where_is, object: lamp}]\n',
     "names 'lamp'"),
    ('objects: {}\nquestions: [{question: x, task: guess}]\n', 'task must be one of'),
    ('objects: {a: [}\n', 'not YAML'),
])
def test_bad_label_files_name_the_problem(tmp_path, text, match):
    path = tmp_path / 'labels.yaml'
    path.write_text(text)
    with pytest.raises(LabelError, match=match):
        load_labels(path)


def test_truth_comes_from_the_recordings_depth_and_poses():
    """The backpack is labelled in two frames far apart in the walk (228 and 336): lifted with
    the sensor's depth and the two poses, the medians land within 10 cm of each other."""
    if not (RECORDING / 'poses.txt').is_file():
        pytest.skip(f'no recording at {RECORDING} (the shared data folder is absent)')
    data = load_labels(LABELS)
    truth = object_centres(RECORDING, {'backpack': data['objects']['backpack']})
    first, second = (np.asarray(v) for v in truth['backpack']['views'])
    assert np.linalg.norm(first - second) < 0.10
    assert truth['backpack']['points'] > 1000


def test_the_second_sets_truth_agrees_across_its_views():
    """tum_fr1_rpy: the chair labelled in frames 150 and 240 (the camera turned away and back),
    lifted with the Kinect's depth and the motion-capture poses, lands within 10 cm; the
    keyboard and the teddy bears lie within 1 m of the camera, the chair 2.5-3.5 m from it."""
    if not (TUM_RECORDING / 'groundtruth.txt').is_file():
        pytest.skip(f'no recording at {TUM_RECORDING} (the shared data folder is absent)')
    data = load_labels(TUM_LABELS)
    truth = object_centres(TUM_RECORDING, data['objects'])
    first, second = (np.asarray(v) for v in truth['chair']['views'])
    assert np.linalg.norm(first - second) < 0.10
    camera = np.array([1.28, 0.63, 1.52])   # the camera stands within 0.1 m of here (the labels' header)
    assert np.linalg.norm(truth['keyboard']['centre'] - camera) < 1.0
    assert np.linalg.norm(truth['teddy bear']['centre'] - camera) < 1.0
    assert 2.5 < np.linalg.norm(truth['chair']['centre'] - camera) < 3.5


def test_scoring_rules():
    truth = {'sofa': {'centre': np.array([1.0, 0.0, 0.0])}, 'sink': {'centre': np.array([5.0, 0.0, 0.0])}}
    T = np.eye(4)
    T[0, 3] = 0.5   # map -> world: half a metre along x
    near = Answer(True, 'ok', 'the sofa is at ...', points=np.array([[0.2, 0.3, 0.0]]))
    assert score({'task': 'where_is', 'object': 'sofa'}, near, truth, T)['correct']          # 0.42 m off
    far = Answer(True, 'ok', 'the sofa is at ...', points=np.array([[2.0, 0.0, 0.0]]))
    assert not score({'task': 'where_is', 'object': 'sofa'}, far, truth, T)['correct']       # 1.5 m off
    distance = {'task': 'abs_distance', 'objects': ['sofa', 'sink']}
    assert score(distance, Answer(True, 'ok', '', value=4.9), truth, T)['correct']
    assert not score(distance, Answer(True, 'ok', '', value=2.5), truth, T)['correct']
    count = {'task': 'object_count', 'value': 1}
    assert score(count, Answer(True, 'ok', '', value=1.0), truth, T)['correct']
    assert not score(count, Answer(True, 'ok', '', value=3.0), truth, T)['correct']
    assert score({'task': 'not_seen'}, Answer(False, 'I have not seen a piano', 'I have not seen a piano',
                                              not_seen=True), truth, T)['correct']
    assert not score({'task': 'not_seen'}, Answer(True, 'ok', 'I have not seen it move'), truth, T)['correct']
    assert mean_relative_accuracy(4.0, 4.0) == 1.0 and mean_relative_accuracy(np.nan, 4.0) == 0.0
    alone = question_alone([count, distance, {'task': 'not_seen'}], truth, np.zeros((3, 3)))
    assert alone == [True, True, False]   # a count of 1; the set's median distance is this one


def test_a_labelled_object_is_seen_where_the_sensor_depth_agrees():
    """The naming measure counts a frame for an object when its centre projects into the image
    and the sensor sees a surface at its depth there (not behind a wall, not out of view)."""
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    depth = np.full((48, 64), 2.0)
    T = np.eye(4)
    T[0, 3] = 1.0   # the camera one metre along world x
    assert visible_pixel(np.array([1.0, 0.0, 2.2]), T, K, depth) == pytest.approx((32.0, 24.0))
    assert visible_pixel(np.array([1.0, 0.0, 3.0]), T, K, depth) is None      # hidden behind the surface at 2 m
    assert visible_pixel(np.array([1.0, 0.0, -2.0]), T, K, depth) is None     # behind the camera
    assert visible_pixel(np.array([3.0, 0.0, 2.0]), T, K, depth) is None      # projects at u = 132, outside
    assert visible_pixel(np.array([1.0, 0.0, 2.0]), T, K, np.full((48, 64), np.nan)) is None   # no sensor depth


def test_the_categories_the_walk_lacks_come_from_the_set():
    from geovr_ros.objects import load_vocabulary
    questions = load_labels(LABELS)['questions']
    assert absent_categories(questions, load_vocabulary()) == ['bathtub', 'bed', 'toilet']   # piano: no category


def test_naming_recall_counts_the_frames_that_show_an_object_and_name_it(tiny_data):
    """A point on the first frame's surface is shown in that frame (and any other that sees
    it); a namer that calls every cell a sofa names it in all of them, one that calls every
    cell a bed in none, and every frame then names a category the set says is absent."""
    from types import SimpleNamespace

    from geovr_ros.geometry import transform_points
    from geovr_ros.objects import load_vocabulary
    from geovr_ros.objects.namers import CellNamer
    from geovr_ros.recordings import open_recording
    frames = list(open_recording(tiny_data, with_depth=True))
    first = frames[0]
    rows, cols = np.nonzero(np.isfinite(first.depth) & (first.depth > 0))
    v, u = rows[len(rows) // 2], cols[len(cols) // 2]
    z = first.depth[v, u]
    K = first.K
    point = np.array([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z])
    truth = {'sofa': {'centre': transform_points(first.T_world_cam, point[None])[0]}}
    vocabulary = load_vocabulary()

    def session_naming(imagenet_class):
        logits = np.zeros((3, 4, 1000))
        logits[..., imagenet_class] = 20.0
        return SimpleNamespace(perception=SimpleNamespace(preprocess=lambda rgb, K: None),
                               objects=SimpleNamespace(namer=CellNamer(vocabulary)),
                               naming_logits=lambda frame: (logits, None, True))

    sofas = naming_recall(session_naming(831), tiny_data, truth, ['bed'], step=1, progress=False)
    shown = sofas['per_object']['sofa']['shown']
    assert 1 <= shown <= len(frames) and sofas['frames'] == len(frames)
    assert sofas['per_object']['sofa']['named'] == shown and sofas['mean_recall'] == 1.0
    assert sofas['frames_naming_absent'] == 0.0
    beds = naming_recall(session_naming(564), tiny_data, truth, ['bed'], step=2, progress=False)  # four-poster
    assert beds['per_object']['sofa']['named'] == 0 and beds['frames_naming_absent'] == 1.0
    assert beds['frames'] == (len(frames) + 1) // 2


def test_a_negative_naming_step_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--model', str(tmp_path), '--data', str(tmp_path), '--labels', str(LABELS), '--out', str(tmp_path),
              '--naming-step', '-1'])
    assert exit_info.value.code == 2 and '--naming-step must be >= 0, got -1' in capsys.readouterr().err


def test_a_session_parameter_that_does_not_exist_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['--model', str(tmp_path), '--data', str(tmp_path), '--labels', str(LABELS), '--out', str(tmp_path),
              '--set', 'object_view_translaton=0.1'])
    assert exit_info.value.code == 2 and "--set 'object_view_translaton=0.1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--model', str(tmp_path), '--data', str(tmp_path), '--labels', str(LABELS), '--out', str(tmp_path),
              '--set', 'object_view_rotation=-1'])   # a value the session refuses
    assert 'object_view_rotation must be a non-negative number' in capsys.readouterr().err


def _result(verdicts, alone=10):
    questions = [{'question': f'q{k}', 'correct': bool(v)} for k, v in enumerate(verdicts)]
    return {'summary': {'asked': len(verdicts), 'correct': int(sum(verdicts)), 'question_alone_correct': alone},
            'questions': questions}


def test_a_spread_reports_each_runs_score_their_mean_and_the_questions_that_change():
    runs = [('2.5', _result([1, 1, 0, 0])), ('3', _result([1, 0, 1, 0])), ('3.5', _result([1, 1, 1, 0]))]
    spread = spread_summary('tracking_threshold_px', runs)
    assert spread['correct'] == [2, 2, 3] and spread['mean_correct'] == pytest.approx(7 / 3)
    assert spread['mean_accuracy'] == pytest.approx(7 / 12)
    assert (spread['always_correct'], spread['never_correct']) == (1, 1)
    assert spread['changing'] == [{'question': 'q1', 'correct': [True, False, True]},
                                  {'question': 'q2', 'correct': [False, True, True]}]
    text = markdown_spread(spread)
    assert '| mean | 2.3 / 4 (58 %) |' in text and '| q1 | correct | wrong | correct |' in text
    with pytest.raises(ValueError, match='same questions'):
        spread_summary('tracking_threshold_px', [('2.5', _result([1, 1])), ('3', _result([1, 1, 0]))])


@pytest.mark.parametrize('spread, message', [
    ('tracking_threshold_px=3', "--spread 'tracking_threshold_px=3': expected NAME=V1,V2,... with at least two"),
    ('tracking_threshold_px', "--spread 'tracking_threshold_px': expected NAME=V1,V2,..."),
    ('tracking_threshld_px=2.5,3', "--set 'tracking_threshld_px=2.5'"),           # the parameter by name
    ('object_view_rotation=0.1,-1', 'object_view_rotation must be a non-negative number')])   # every value checked
def test_a_spread_that_cannot_run_is_refused_before_any_frame(tmp_path, capsys, spread, message):
    with pytest.raises(SystemExit) as exit_info:
        main(['--model', str(tmp_path), '--data', str(tmp_path), '--labels', str(LABELS), '--out', str(tmp_path),
              '--spread', spread])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def _pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    return int((np.abs(image[..., :3].astype(int) - np.array(rgb)).max(axis=-1) <= tolerance).sum())


@pytest.mark.parametrize('correct', [False, True], ids=['wrong', 'right'])
def test_the_picture_draws_each_where_is_answer_from_its_truth_in_its_verdicts_colour(tmp_path, correct):
    """questions.png: the map's instances, the labelled objects and a where-is answer's line from
    the truth to the point answered, red when it is wrong, green when right."""
    import cv2

    from geovr_training.evaluation.questions import plot_answers
    result = {
        'recording': 'somewhere/office', 'floor_axes': [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
        'camera_path_floor': [[0.0, 0.0], [1.0, 0.2], [2.0, 0.0]],
        'objects_labelled': {'sofa': {'centre': [3.0, 2.0, 0.4]}},
        'object_map': [{'category': 'sofa', 'centre_world': [1.0, 3.0, 0.4], 'belief': 0.9, 'doubted': False},
                       {'category': 'bed', 'centre_world': [0.0, 2.0, 0.4], 'belief': 0.01, 'doubted': True}],
        'questions': [{'task': 'where_is', 'correct': correct, 'truth': [3.0, 2.0, 0.4],
                       'points_world': [[1.0, 3.0, 0.4]]},
                      {'task': 'not_seen', 'correct': True, 'points_world': []}],
        'summary': {'correct': int(correct) + 1, 'asked': 2, 'question_alone_correct': 0}}
    plot_answers(tmp_path / 'questions.png', result)
    image = cv2.cvtColor(cv2.imread(str(tmp_path / 'questions.png')), cv2.COLOR_BGR2RGB)
    red, green = _pixels_near(image, (214, 39, 40)), _pixels_near(image, (44, 160, 44))
    drawn, other = (green, red) if correct else (red, green)
    assert drawn > 50 and other < drawn / 10   # a few edge pixels of the markers may come near either


def test_a_whole_run_places_the_answers_and_the_map_in_the_recordings_world(tiny_data, tmp_path):
    """`geovr-eval questions` end to end on a rendered recording with a tiny exported model: the
    session runs every frame, each question gets a verdict, and the answers' points and the
    object map are placed in the recording's world by the fit of the session's poses
    (`pose_alignment`)."""
    import json

    import torch

    from geovr_training.export.onnx_export import export_model
    from geovr_training.model import ModelArgsV2, build_model, save_checkpoint
    from geovr_training.train.cell_categories import rendered_categories
    torch.manual_seed(0)
    categories = rendered_categories()
    model = build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False,
                                    cell_categories=categories, category_kernel=3))
    with torch.no_grad():   # a namer that calls every cell a chair, so that the map holds something
        model.category_head.classifier[1].weight.zero_()
        model.category_head.classifier[1].bias.fill_(-10.0)[categories.index('chair')] = 10.0   # background last
    checkpoint = save_checkpoint(tmp_path / 'head.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(checkpoint, tmp_path / 'model', sizes=[], with_torch_program=False)
    labels = tmp_path / 'labels.yaml'
    labels.write_text('objects: {middle: [{frame: 0, box: [48, 32, 80, 64]}]}\n'
                      'questions:\n'
                      '  - {question: "Where is the chair?", task: where_is, object: middle}\n'
                      '  - {question: "How many pianos are there?", task: object_count, value: 0}\n'
                      '  - {question: "Where is the piano?", task: not_seen}\n')
    assert main(['--model', str(tmp_path / 'model'), '--data', str(tiny_data), '--labels', str(labels),
                 '--out', str(tmp_path / 'out'), '--naming-step', '0', '--no-progress']) == 0
    result = json.loads((tmp_path / 'out' / 'questions.json').read_text())
    assert result['summary']['asked'] == 3 and len(result['questions']) == 3
    assert all(isinstance(r['correct'], bool) for r in result['questions'])
    assert result['object_map'], 'the tiny model named nothing: the map placement went untested'
    assert all(np.isfinite(o['centre_world']).all() for o in result['object_map'])
    where = result['questions'][0]
    assert len(where['truth']) == 3 and all(np.isfinite(p).all() for p in where['points_world'])
