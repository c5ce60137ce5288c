"""geovr-export int8 on a tiny GeoVR-S v2 exported in the test: the per-frame graphs become QDQ
int8 graphs calibrated on rendered frames, carry their metadata, run in the runtime's pipeline
and stay close to the float model."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from geovr_training.export.cli import main as export_main
from geovr_training.export.quantize import FrameSource, QuantizationError, quantize_model
from geovr_training.model import ModelArgsV2, build_model, save_checkpoint


@pytest.fixture(scope='module')
def float_model(tmp_path_factory):
    from geovr_training.export.onnx_export import export_model
    root = tmp_path_factory.mktemp('int8')
    torch.manual_seed(0)
    model = build_model(ModelArgsV2(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False))
    checkpoint = save_checkpoint(root / 'v2.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(checkpoint, root / 'model', sizes=[], with_torch_program=False)
    return root / 'model'


def test_int8_graphs_are_quantized_carry_metadata_and_run_in_the_runtime(float_model, tiny_data, tmp_path, capsys):
    out = tmp_path / 'int8'
    assert export_main(['int8', '--model', str(float_model), '--out', str(out), '--calibration',
                        f'{tiny_data}@train', '--frames', '6', '--check', f'{tiny_data}@val']) == 0
    for graph in ('frame_encoder', 'pair_head'):
        model = onnx.load(str(out / f'{graph}.onnx'))
        ops = {node.op_type for node in model.graph.node}
        assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
        props = {p.key: p.value for p in model.metadata_props}
        float_props = {p.key: p.value for p in onnx.load(str(float_model / f'{graph}.onnx')).metadata_props}
        assert {k: v for k, v in props.items() if k != 'geovr.quantization'} == float_props
        assert json.loads(props['geovr.quantization'])['calibration'] == [f'{tiny_data}@train']
    # the pristine ImageNet namer (keyframes only) is copied as exported, float32
    assert (out / 'imagenet_cells.onnx').read_bytes() == (float_model / 'imagenet_cells.onnx').read_bytes()
    report = json.loads((out / 'int8.json').read_text())
    check = report['check']
    assert check['frames'] > 0 and check['float']['abs_rel'] > 0 and check['int8']['abs_rel'] > 0
    assert abs(check['int8']['abs_rel'] - check['float']['abs_rel']) < 0.1
    assert check['depth_change_median'] < 0.1                      # int8 depth within 10 % of float's
    assert 'int8  depth AbsRel' in capsys.readouterr().out
    from geovr_ros.inference import PerceptionPipeline
    rng = np.random.default_rng(0)
    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    with PerceptionPipeline(out, backend='onnxruntime') as pipeline:
        assert pipeline.graphs == 'split'
        for _ in range(2):
            result = pipeline.step(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), K)
        assert result.depth.shape == (96, 128) and np.isfinite(result.depth).all()


def test_int8_refuses_what_it_cannot_quantize(float_model, tiny_data, tmp_path, capsys):
    with pytest.raises(QuantizationError, match='must differ'):
        quantize_model(float_model, float_model, [FrameSource.parse(str(tiny_data), 'train')])
    with pytest.raises(QuantizationError, match='frame_encoder.onnx'):
        quantize_model(tmp_path, tmp_path / 'out', [FrameSource.parse(str(tiny_data), 'train')])
    assert export_main(['int8', '--model', str(float_model), '--out', str(tmp_path / 'x'),
                        '--calibration', f'{tmp_path}/nowhere']) == 2
    assert 'nowhere' in capsys.readouterr().err
