"""geovr-bench on real ONNX Runtime sessions: split graphs (frame encoder + pair head) and a
single 2-frame graph, compared in one run."""
import json

import pytest

pytest.importorskip('onnxruntime')
pytest.importorskip('torch', reason='the contract models are exported from small torch modules')

from test_inference_contract_model import (  # noqa: E402
    contract_metadata, make_contract_model, make_split_contract_model)

from geovr_ros.inference.bench import main  # noqa: E402


def test_two_models_are_measured_in_turn_and_compared(tmp_path, capsys):
    split = make_split_contract_model(tmp_path / 'split')
    single = make_contract_model(tmp_path / 'single')
    out = tmp_path / 'bench.json'
    assert main(['--backend', 'onnxruntime', '--model', str(split), '--model', str(single), '--rounds', '2',
                 '--iters', '3', '--warmup', '1', '--resolution', '64x48', '--gemm-size', '64',
                 '--json', str(out)]) == 0
    printed = capsys.readouterr().out
    assert f'{split} per camera frame:' in printed and f'the rate of {single}' in printed
    reports = json.loads(out.read_text())
    assert [r['model'] for r in reports] == [str(split), str(single)]
    for report in reports:
        assert len(report['rounds_e2e_p50_ms']) == 2
        assert report['inference']['iters'] == 3 and report['inference']['p50_ms'] > 0
    assert main(['--backend', 'onnxruntime', '--model', str(split), '--rounds', '0']) == 2


def test_sessions_fixed_to_the_sizes_and_free_are_measured_in_the_same_rounds(tmp_path, capsys):
    split = make_split_contract_model(tmp_path / 'split')
    out = tmp_path / 'bench.json'
    assert main(['--backend', 'onnxruntime', '--model', str(split), '--fixed-shapes', 'both', '--rounds', '1',
                 '--iters', '2', '--warmup', '1', '--resolution', '64x48', '--gemm-size', '64',
                 '--json', str(out)]) == 0
    reports = json.loads(out.read_text())
    assert [r['model'] for r in reports] == [f'{split} (fixed shapes)', f'{split} (free shapes)']
    assert [r['backend_options']['fixed_shapes'] for r in reports] == [True, False]
    assert f'{split} (fixed shapes) per camera frame:' in capsys.readouterr().out


def test_thread_spinning_on_and_off_are_measured_in_the_same_rounds(tmp_path):
    split = make_split_contract_model(tmp_path / 'split')
    out = tmp_path / 'bench.json'
    assert main(['--backend', 'onnxruntime', '--model', str(split), '--thread-spinning', 'both',
                 '--fixed-shapes', 'both', '--rounds', '1', '--iters', '2', '--warmup', '1',
                 '--resolution', '64x48', '--gemm-size', '64', '--json', str(out)]) == 0
    reports = json.loads(out.read_text())
    assert [r['model'] for r in reports] == [
        f'{split} (fixed shapes, spinning on)', f'{split} (fixed shapes, spinning off)',
        f'{split} (free shapes, spinning on)', f'{split} (free shapes, spinning off)']
    assert [(r['backend_options']['fixed_shapes'], r['backend_options']['thread_spinning']) for r in reports] \
        == [(True, True), (True, False), (False, True), (False, False)]


def test_a_split_model_counts_the_flops_of_one_camera_frame_not_of_a_clip(tmp_path, capsys):
    """A split model encodes one frame per camera frame: its FLOPs are the frame encoder's and the
    pair head's, not the 2-frame clip's of perception.onnx (which made 108 % of the matmul peak)."""
    import onnx
    split = make_split_contract_model(tmp_path / 'split')
    for graph, flops in (('frame_encoder', 300_000), ('pair_head', 200_000)):
        model = onnx.load(str(split / f'{graph}.onnx'))
        for key, value in contract_metadata(flops={'64x48': flops}).items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(split / f'{graph}.onnx'))
    out = tmp_path / 'bench.json'
    assert main(['--backend', 'onnxruntime', '--model', str(split), '--iters', '2', '--warmup', '1',
                 '--resolution', '64x48', '--gemm-size', '64', '--json', str(out)]) == 0
    report = json.loads(out.read_text())
    assert report['flops_per_camera_frame'] == 500_000   # perception.onnx's clip: 1 000 000
    assert report['flops_source'].startswith('frame encoder + pair head')
    assert '0.001 GFLOP per camera frame' in capsys.readouterr().out
