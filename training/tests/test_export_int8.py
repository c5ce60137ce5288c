"""geovr-export int8 on a tiny GeoVR-S v2 exported in the test: the per-frame graphs become QDQ
int8 graphs calibrated on rendered frames, carry their metadata, run in the runtime's pipeline
and stay close to the float model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
import pytest
import torch

from geovr_training.export.cli import main as export_main
from geovr_training.export.quantize import FrameSource, QuantizationError, quantize_model
from geovr_training.model import ModelArgsV2, build_model, save_checkpoint

# a real 3:2 camera (540x360), which the runtime feeds at another size than the 4:3 renders
HOLOLENS_EXCERPT = Path(__file__).resolve().parents[2] / 'fixtures' / 'hololens_office_excerpt'


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
    methods = {}
    for graph in ('frame_encoder', 'pair_head'):
        model = onnx.load(str(out / f'{graph}.onnx'))
        ops = {node.op_type for node in model.graph.node}
        assert {'QuantizeLinear', 'DequantizeLinear'} <= ops
        props = {p.key: p.value for p in model.metadata_props}
        float_props = {p.key: p.value for p in onnx.load(str(float_model / f'{graph}.onnx')).metadata_props}
        assert {k: v for k, v in props.items() if k != 'geovr.quantization'} == float_props
        quantization = json.loads(props['geovr.quantization'])
        assert quantization['calibration'] == [f'{tiny_data}@train'] and quantization['calibration_size'] == [128, 96]
        methods[graph] = quantization['calibration_method']
        # the first layer and the heads stay float: their weights come from no DequantizeLinear
        producers = {out: node.op_type for node in model.graph.node for out in node.output}
        weighted = {n.name: producers.get(n.input[1]) for n in model.graph.node if n.op_type in ('Conv', 'Gemm')}
        kept = {'frame_encoder': ['/_conv_stem/Conv'],
                'pair_head': ['/depth_decoder/head/head.2/Conv', '/scale_head/scale_head.2/Gemm']}[graph]
        assert set(kept) <= set(quantization['float_nodes'])
        assert all(weighted[name] != 'DequantizeLinear' for name in kept)
        assert sum(op == 'DequantizeLinear' for op in weighted.values()) > len(weighted) // 2
        # nothing left that no node reads (the folded ReLU6 bounds made ONNX Runtime warn on load)
        read = {name for node in model.graph.node for name in node.input} | {o.name for o in model.graph.output}
        assert all(o in read for node in model.graph.node if node.op_type == 'Constant' for o in node.output)
        assert all(t.name in read for t in model.graph.initializer)
    # The untrained pair head has a tensor whose range is next to nothing, which numpy cannot
    # histogram: that graph falls back to its whole ranges, and says so.
    assert methods == {'frame_encoder': 'percentile 99.99', 'pair_head': 'minmax'}
    # the pristine ImageNet namer (keyframes only) is copied as exported, float32
    assert (out / 'imagenet_cells.onnx').read_bytes() == (float_model / 'imagenet_cells.onnx').read_bytes()
    report = json.loads((out / 'int8.json').read_text())
    check = report['check']
    assert check['frames'] > 0 and check['float']['abs_rel'] > 0 and check['int8']['abs_rel'] > 0
    assert abs(check['int8']['abs_rel'] - check['float']['abs_rel']) < 0.1
    assert check['depth_change_median'] < 0.1                      # int8 depth within 10 % of float's
    printed = capsys.readouterr().out
    assert 'int8  depth AbsRel' in printed and 'MiB int8 (minmax)' in printed
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


def test_percentile_calibration_takes_cameras_of_other_sizes_and_minmax_stays_available(float_model, tiny_data,
                                                                                         tmp_path):
    sources = [FrameSource.parse(str(tiny_data), 'train'), FrameSource.parse(str(HOLOLENS_EXCERPT), 'all')]
    report = quantize_model(float_model, tmp_path / 'percentile', sources, frames=4)   # 128x96 and 540x360 frames
    assert report['frame_encoder']['calibration_method'] == 'percentile 99.99'
    report = quantize_model(float_model, tmp_path / 'minmax', sources, frames=4, method='minmax')
    assert report['frame_encoder']['calibration_method'] == report['pair_head']['calibration_method'] == 'minmax'
    scales = {}
    for name in ('percentile', 'minmax'):   # the ranges differ: the percentile clips the tails
        model = onnx.load(str(tmp_path / name / 'frame_encoder.onnx'))
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        scales[name] = sorted(float(inits[n.input[1]]) for n in model.graph.node
                              if n.op_type == 'QuantizeLinear' and inits.get(n.input[1], np.zeros(2)).size == 1)
    assert len(scales['percentile']) == len(scales['minmax']) > 0
    assert sum(scales['percentile']) < sum(scales['minmax'])
    with pytest.raises(QuantizationError, match='entropy'):
        quantize_model(float_model, tmp_path / 'x', sources, method='entropy')
