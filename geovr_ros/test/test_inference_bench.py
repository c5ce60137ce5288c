"""geovr-bench on real ONNX Runtime sessions: split graphs (frame encoder + pair head) and a
single 2-frame graph, compared in one run."""
import json

import pytest

pytest.importorskip('onnxruntime')
pytest.importorskip('torch', reason='the contract models are exported from small torch modules')

from test_inference_contract_model import make_contract_model, make_split_contract_model  # noqa: E402

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
