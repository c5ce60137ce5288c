"""Geometry teacher: a GeoVR-S checkpoint exported to ONNX with named features, run as any
ONNX teacher, a student distilled from it."""

from pathlib import Path

import pytest
import torch

from geovr_training.model import build_model, preset_args, save_checkpoint
from geovr_training.train.config import load_config
from geovr_training.train.teacher import OnnxTeacher, TeacherError, export_teacher, main as teacher_main
from geovr_training.train.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'


@pytest.fixture(scope='module')
def teacher_onnx(tmp_path_factory):
    pytest.importorskip('onnxruntime')
    root = tmp_path_factory.mktemp('teacher')
    torch.manual_seed(0)
    model = build_model(preset_args('tiny', dim=48, depth=4))  # wider and deeper than the tiny student
    ckpt = save_checkpoint(root / 'teacher.pt', model, {}, 0)
    path = root / 'teacher.onnx'
    names = export_teacher(ckpt, path, 64, 64)
    assert names == ['depth', 'feat_0', 'feat_1', 'feat_2', 'feat_3']
    return path, model


def test_onnx_teacher_features_match_torch(teacher_onnx):
    path, model = teacher_onnx
    teacher = OnnxTeacher(path, ['feat_0', 'feat_3'])
    images = torch.randn(1, 2, 3, 128, 192)
    k = torch.tensor([[140.0, 0, 95.5], [0, 140, 63.5], [0, 0, 1]]).expand(1, 2, 3, 3)
    feats = teacher(images, k)
    assert [f.shape for f in feats] == [(1, 2, 48, 4, 6)] * 2
    with torch.no_grad():
        ref = model.eval()(images, k, feature_layers=[0, 3])['features']
    for got, want in zip(feats, ref):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-3)
    assert teacher.channels(64, 64) == [48, 48]
    with pytest.raises(TeacherError, match="no outputs \\['feat_9'\\]"):
        OnnxTeacher(path, ['feat_9'])


def test_teacher_export_refuses_a_checkpoint_it_cannot_load(tmp_path, capsys):
    assert teacher_main(['--checkpoint', str(tmp_path / 'none.pt'), '--out', str(tmp_path / 't.onnx')]) == 2
    assert 'none.pt' in capsys.readouterr().err and not (tmp_path / 't.onnx').exists()


def test_student_distils_from_onnx_teacher(teacher_onnx, tmp_path):
    from geovr_training.data.generate import GenerationConfig, generate_dataset
    data = tmp_path / 'data'
    generate_dataset(data, 3, GenerationConfig(seed=3, frames_per_scene=6, resolution=(128, 96), qa_per_scene=1),
                     progress=False)
    config = load_config(CONFIGS / 'tiny.yaml', {
        'data': {'root': str(data)}, 'out_dir': str(tmp_path / 'run'),
        'teacher': {'onnx': str(teacher_onnx[0]), 'outputs': ['feat_1', 'feat_3']},
        'optim': {'epochs': 1, 'max_steps_per_epoch': 2}})
    summary = train(config, progress=False)
    state = torch.load(summary['last'], weights_only=True)
    assert state['model_args']['distill_dims'] == [48, 48]
    assert 'distill' in state['metrics']['val']
    assert 0.0 < state['metrics']['val']['distill'] < 2.0
