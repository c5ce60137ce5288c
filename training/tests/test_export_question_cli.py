"""`geovr-export question` writes the question model directory geovr_node loads."""
import json

import onnx
import pytest
import torch

from geovr_training.export.cli import main as export_main
from geovr_training.qa.checkpoint import save_qa_checkpoint
from geovr_training.qa.model import build_qa_model


@pytest.fixture
def qa_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_qa_model({'token_dim': 48, 'dim': 32, 'depth': 1, 'num_heads': 2})
    return save_qa_checkpoint(tmp_path / 'qa.pt', model, {'task': 'qa'}, 0, {},
                              {'token_grid': [6, 8], 'pooled_grid': [2, 2], 'num_keyframes': 16})


def test_question_export_writes_self_describing_graphs(qa_checkpoint, tmp_path, capsys):
    out = tmp_path / 'question_model'
    assert export_main(['question', '--checkpoint', str(qa_checkpoint), '--out', str(out)]) == 0
    assert 'parity' in capsys.readouterr().out
    assert (out / 'tokenizer.json').is_file()
    graph = onnx.load(out / 'question_graph.onnx', load_external_data=False)
    onnx.checker.check_model(graph)
    metadata = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(metadata['geovr.graph']) == 'question'
    assert json.loads(metadata['geovr.memory'])['token_dim'] == 48


def test_question_graphs_carry_the_common_schema_and_pass_the_tensorrt_checks(qa_checkpoint, tmp_path):
    """Both question graphs are read by the one metadata reader and get a TensorRT profile
    from it (issue #19: they had no profile, so the TensorRT path refused them)."""
    from geovr_ros.inference.metadata import read_graph_metadata
    from geovr_training.export.engine import engine_profiles, static_check
    out = tmp_path / 'question_model'
    assert export_main(['question', '--checkpoint', str(qa_checkpoint), '--out', str(out), '--no-parity']) == 0
    graph = read_graph_metadata(out / 'question_graph.onnx')
    assert (graph.schema, graph.graph) == (2, 'question')
    assert graph.profile_sizes()['memory'] == (1, 256, 2 * 2 * 64)  # pooled 2x2, 64 keyframes
    assert graph.get('memory')['pooled_grid'] == [2, 2]
    encoder = read_graph_metadata(out / 'question_encoder.onnx')
    assert encoder.profile_sizes()['tokens'][2] == 128 and encoder.get('max_tokens') == 128
    for name in ('question_graph', 'question_encoder'):
        profiles, _ = engine_profiles(out / f'{name}.onnx')
        assert static_check(out / f'{name}.onnx', profiles) == [], name


def test_question_export_of_a_missing_checkpoint_names_it(tmp_path, capsys):
    missing = tmp_path / 'nope.pt'
    assert export_main(['question', '--checkpoint', str(missing), '--out', str(tmp_path)]) == 2
    assert str(missing) in capsys.readouterr().err
