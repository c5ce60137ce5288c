"""The demo driver (scripts/demo.py) end to end in a reduced mode: a 12-frame sequence, real
geovr_node and replay_node processes, the questions through ~/query, the PNGs and JSON files.

Uses the models shipped in models/ when they are there; otherwise the tiny untrained test model
(given explicitly with --model, so the demo's "shipped models only" rule is not bypassed) and
no question model. Checks that the outputs exist and are sane, not that the model is accurate
(test_node_accuracy does that for a trained model).
"""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ros_helpers import REPO_ROOT, tiny_model

cv2 = pytest.importorskip('cv2')
pytest.importorskip('rclpy')

DEMO = REPO_ROOT / 'scripts' / 'demo.py'
FRAMES = 12
OWN_QUESTION = 'Which object did you see closest to the door?'  # asked with --ask: recorded, not scored


def _shipped(marker: str) -> Path | None:
    found = sorted((REPO_ROOT / 'models').rglob(marker))
    return found[0].parent if found else None


def _finite_numbers(obj, path='') -> list[str]:
    """Paths of the non-finite numbers in a parsed JSON value (None is allowed: it is 'no value')."""
    bad = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            bad += _finite_numbers(v, f'{path}.{k}')
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            bad += _finite_numbers(v, f'{path}[{i}]')
    elif isinstance(obj, float) and not math.isfinite(obj):
        bad.append(path)
    return bad


@pytest.fixture(scope='module')
def demo_run(ros_env, tmp_path_factory, venv_python):
    out = tmp_path_factory.mktemp('demo_out')
    perception = _shipped('perception.onnx') or tiny_model(ros_env)
    question = _shipped('question_graph.onnx') or 'none'
    env = {k: v for k, v in ros_env.items() if not k.startswith('GEOVR_DEMO_')}
    cmd = [venv_python, str(DEMO), '--out', str(out), '--frames', str(FRAMES), '--rate', '1.0',
           '--montages', '2', '--model', str(perception), '--question-model', str(question), '--ask', OWN_QUESTION]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    return out, result


@pytest.mark.slow
def test_demo_writes_sane_outputs(demo_run):
    out, result = demo_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'questions answered / correct / asked' in result.stdout

    metrics = json.loads((out / 'metrics.json').read_text())
    answers = json.loads((out / 'answers.json').read_text())
    assert not _finite_numbers(metrics) and not _finite_numbers(answers)

    frames = metrics['frames']
    assert frames['replayed'] == FRAMES
    assert frames['node_frames_received'] is not None, 'no /diagnostics from geovr_node'
    assert FRAMES // 2 <= frames['depth_published'] <= FRAMES
    assert metrics['depth']['frames_evaluated'] == frames['depth_published']
    assert 0 < metrics['depth']['abs_rel'] < 10 and 0 <= metrics['depth']['delta1'] <= 1
    assert 0 < metrics['depth']['abs_rel_median_scaled'] < 10
    trajectory = metrics['trajectory']
    assert trajectory['matched'] >= 3 and trajectory['ate_se3']['rmse'] >= 0
    assert trajectory['path_length_gt_m'] > 0
    assert metrics['time']['wall_s'] > 0 and metrics['time']['cpu_s'] > 0

    own = [r for r in answers if r['task'] == 'own']
    scored = [r for r in answers if r['task'] != 'own']
    assert len(scored) >= 5 and metrics['qa']['asked'] == len(scored)
    for record in answers:
        assert record['question'] and record['latency_ms'] > 0
        assert record['success'] or record['message'], record
    assert all(isinstance(r['correct'], bool) for r in scored)
    assert [r['question'] for r in own] == [OWN_QUESTION] and own[0]['correct'] is None
    assert metrics['qa']['own_asked'] == 1 and 'your questions (--ask) answered / asked' in result.stdout
    assert f'Q: {OWN_QUESTION}' in result.stdout
    scene = json.loads((out / 'scene.json').read_text())
    assert scene['objects'] and all(o['category'] and len(o['centre']) == 3 for o in scene['objects'])
    assert scene['path_length_m'] == pytest.approx(trajectory['path_length_gt_m'], rel=0.5)
    travelled = next(r for r in answers if r['task'] == 'travelled')
    assert travelled['success'], travelled
    assert travelled['ground_truth']['value'] == pytest.approx(
        trajectory['path_length_gt_m'], rel=1e-6)
    assert travelled['structured']['unit'] == 'm' and travelled['relative_error'] >= 0

    montages = sorted(out.glob('montage_*.png'))
    assert len(montages) == 2
    for path in montages:
        image = cv2.imread(str(path))
        assert image is not None and image.shape == (350, 1550, 3), (path, None if image is None else image.shape)
        assert np.std(image) > 10, f'{path} looks blank'
    topdown = cv2.imread(str(out / 'trajectory.png'))
    assert topdown is not None and topdown.shape[1] == 800 and topdown.shape[0] > 300
    assert (out / 'logs' / 'geovr_node.log').stat().st_size > 0


@pytest.mark.slow
def test_demo_without_a_shipped_model_names_what_is_missing(demo_run, ros_env, venv_python, tmp_path):
    out, _ = demo_run   # its data folder is reused: no second rendering
    env = {k: v for k, v in ros_env.items() if not k.startswith('GEOVR_DEMO_')}
    torch = pytest.importorskip('torch')
    v1 = tmp_path / 'geovr_s' / 'checkpoint.pt'  # a retired v1 (ViT) checkpoint does not count, and says why
    v1.parent.mkdir()
    torch.save({'format': 'geovr-s/1', 'model': {}, 'config': {}, 'epoch': 0,
                'model_args': {'patch_size': 16, 'dim': 192, 'depth': 6}}, v1)
    result = subprocess.run([venv_python, str(DEMO), '--out', str(out), '--frames', str(FRAMES),
                             '--models-dir', str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'reusing' in result.stdout, 'a second run with the same parameters renders the sequence again'
    assert f'ignoring {v1}' in result.stdout and 'v1 (ViT) model, which was retired' in result.stdout
    assert "stage 'models' failed: no shipped perception model" in result.stderr
    assert 'never runs an untrained model' in result.stderr


@pytest.mark.slow
def test_demo_on_the_real_excerpt_beats_the_trivial_baselines_and_maps_objects(ros_env, tmp_path, venv_python):
    """`demo.py --recording fixtures/hololens_office_excerpt`: the shipped model on 64 held-out
    frames of a real walk; its depth beats a constant at the recording's median, its odometry
    beats standing still, the object map is drawn and projected into the montages."""
    from ros_helpers import shipped_model
    fixture = REPO_ROOT / 'fixtures' / 'hololens_office_excerpt'
    model = shipped_model(ros_env)
    if not (model / 'cell_classifier.onnx').is_file():
        pytest.skip(f'{model} has no cell classifier (the shipped model is not a GeoVR-S v2)')
    env = {k: v for k, v in ros_env.items() if not k.startswith('GEOVR_DEMO_')}
    result = subprocess.run([venv_python, str(DEMO), '--recording', str(fixture), '--out', str(tmp_path),
                             '--montages', '2', '--model', str(model), '--question-model', 'none'],
                            env=env, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((tmp_path / 'metrics.json').read_text())
    depth, trajectory = metrics['depth'], metrics['trajectory']
    assert depth['frames_evaluated'] >= 48
    assert depth['abs_rel'] < depth['constant_abs_rel'] and depth['delta1'] > depth['constant_delta1']
    positions = np.loadtxt(fixture / 'poses.txt').reshape(-1, 4, 4)[:, :3, 3]
    standing_still = float(np.sqrt(np.mean(np.sum((positions - positions.mean(0)) ** 2, axis=1))))
    assert trajectory['ate_se3']['rmse'] < 0.5 * standing_still   # ATE of no motion: spread about the mean
    gt = json.loads((tmp_path / 'answers.json').read_text())
    assert metrics['objects']['found'] >= 1 and (tmp_path / 'objects.png').is_file()
    assert len(list(tmp_path.glob('montage_*.png'))) == 2
    assert {a['question'] for a in gt} >= {'What objects have you seen?', 'How far have I travelled?'}


def test_demo_names_a_recording_it_cannot_read_and_starts_nothing(ros_env, tmp_path, venv_python):
    """A wrong --recording path fails in the data stage with the path in the message, before any
    node starts (no node log is written)."""
    env = {k: v for k, v in ros_env.items() if not k.startswith('GEOVR_DEMO_')}
    missing = tmp_path / 'no_such_recording'
    result = subprocess.run([venv_python, str(DEMO), '--recording', str(missing), '--out', str(tmp_path / 'out')],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "stage 'data' failed" in result.stderr and str(missing) in result.stderr
    assert not list((tmp_path / 'out' / 'logs').glob('*.log'))


def test_true_objects_are_matched_in_the_nodes_vocabulary(ros_env, tmp_path):
    """The demo scores found objects by the categories the node names: the shipped vocabulary
    and the category head's own names (a rendered toy duck was never counted found before)."""
    import importlib.util
    import sys

    from ros_helpers import shipped_model
    spec = importlib.util.spec_from_file_location('geovr_demo_script', DEMO)
    demo = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))   # its dataclasses look it up
    spec.loader.exec_module(demo)
    model = shipped_model(ros_env)
    if not (Path(model) / 'cell_classifier.onnx').is_file():
        pytest.skip(f'{model} has no cell_classifier.onnx (not a GeoVR-S v2 export)')
    vocabulary = demo.node_vocabulary(model)
    assert vocabulary.find('toy duck') and vocabulary.find('stool') and vocabulary.find('tv')
    assert not demo.node_vocabulary(tmp_path).find('toy duck')   # no classifier: the shipped vocabulary


def test_the_rendered_sequence_is_rendered_again_for_another_frame_rate_or_randomization(ros_env, tmp_path, capsys):
    """`--fps` and `--randomization` reach `geovr-data generate`, and a data folder rendered with
    other ones is not reused (the reuse check compares them as it compares seed and size)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location('geovr_demo_script', DEMO)
    demo = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(demo)
    data, logs = tmp_path / 'data', tmp_path / 'logs'
    logs.mkdir()
    plain = demo.prepare_sequence(data, 4, 3, (48, 36), logs)
    assert np.allclose(np.diff(plain.timestamps), 0.1)
    again = demo.prepare_sequence(data, 4, 3, (48, 36), logs)
    assert 'reusing' in capsys.readouterr().out and np.array_equal(again.rgb, plain.rgb)
    fast = demo.prepare_sequence(data, 4, 3, (48, 36), logs, fps=30.0)
    assert 'reusing' not in capsys.readouterr().out and np.allclose(np.diff(fast.timestamps), 1 / 30)
    textured = demo.prepare_sequence(data, 4, 3, (48, 36), logs, fps=30.0, randomization='full')
    assert 'reusing' not in capsys.readouterr().out
    assert not np.array_equal(textured.rgb, fast.rgb)        # the same room, dressed
    assert demo.parse_args(['--fps', '30', '--randomization', 'full']).fps == 30.0
    for bad in ('0', '-10', 'nan'):
        with pytest.raises(SystemExit):
            demo.parse_args(['--fps', bad])
    assert '--fps must be > 0' in capsys.readouterr().err
    from geovr_training.data.errors import GenerationError
    with pytest.raises(GenerationError, match='sometimes'):      # refused by name before anything renders
        demo.prepare_sequence(data, 4, 3, (48, 36), logs, randomization='sometimes')
    assert (data / 'manifest.json').is_file()                    # the rendered folder is kept
