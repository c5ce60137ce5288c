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


def test_question_export_of_a_missing_checkpoint_names_it(tmp_path, capsys):
    missing = tmp_path / 'nope.pt'
    assert export_main(['question', '--checkpoint', str(missing), '--out', str(tmp_path)]) == 2
    assert str(missing) in capsys.readouterr().err
