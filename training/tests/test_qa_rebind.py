"""A QA checkpoint takes another geometry model only when the memory features are unchanged."""

import pytest
import torch

from geovr_training.model import build_model, preset_args, save_checkpoint
from geovr_training.qa.checkpoint import (QACheckpointError, file_sha256, geometry_config_sha256, load_qa_checkpoint,
                                          main, rebind_geometry, save_qa_checkpoint)
from geovr_training.qa.model import QAModelArgs, build_qa_model

SMALL = preset_args('tiny', descriptor_dim=16, token_grid=[2, 2])


def _geometry(path, seed, change=None):
    torch.manual_seed(0)
    model = build_model(SMALL)
    if change:
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name.startswith(change):
                    param.add_(0.1)
    return save_checkpoint(path, model, {'seed': seed}, epoch=0)


@pytest.fixture()
def checkpoints(tmp_path):
    reference = _geometry(tmp_path / 'reference.pt', 1)
    qa = build_qa_model(QAModelArgs(token_dim=32, dim=32, depth=1, num_heads=2))
    record = {'checkpoint': str(reference), 'checkpoint_sha256': file_sha256(reference),
              'config_sha256': geometry_config_sha256(reference), 'mode': 'frozen', 'input_size': [64, 64]}
    qa_path = save_qa_checkpoint(tmp_path / 'qa.pt', qa, {'geometry': {'checkpoint': str(reference)}}, 0, {}, record)
    return tmp_path, reference, qa_path


def test_new_heads_on_the_same_encoder_are_recorded(checkpoints):
    tmp, reference, qa_path = checkpoints
    heads = _geometry(tmp / 'heads.pt', 2, change='depth_decoder.')
    record = rebind_geometry(qa_path, heads, reference, tmp / 'rebound.pt')
    assert record['checkpoint_sha256'] == file_sha256(heads) != file_sha256(reference)
    assert record['config_sha256'] == geometry_config_sha256(heads) != geometry_config_sha256(reference)
    assert record['trained_with_sha256'] == file_sha256(reference)
    model, state = load_qa_checkpoint(tmp / 'rebound.pt')
    assert state['geometry'] == record
    assert state['config']['geometry']['checkpoint'] == str(heads)   # evaluation loads the new one
    original, _ = load_qa_checkpoint(qa_path)
    for (name, a), b in zip(model.state_dict().items(), original.state_dict().values()):
        assert torch.equal(a, b), name


def test_another_encoder_or_reference_is_refused(checkpoints, capsys):
    tmp, reference, qa_path = checkpoints
    encoder = _geometry(tmp / 'encoder.pt', 3, change='blocks.1.')
    with pytest.raises(QACheckpointError, match='other tokens and descriptor'):
        rebind_geometry(qa_path, encoder, reference, tmp / 'out.pt')
    with pytest.raises(QACheckpointError, match='is not the geometry checkpoint'):
        rebind_geometry(qa_path, reference, encoder, tmp / 'out.pt')
    assert main(['rebind', str(qa_path), '--geometry', str(encoder), '--reference', str(reference),
                 '--out', str(tmp / 'out.pt')]) == 2
    assert 'retrain the QA model' in capsys.readouterr().err
    assert not (tmp / 'out.pt').exists()
    assert main(['rebind', str(qa_path), '--geometry', str(tmp / 'missing.pt'), '--reference', str(reference),
                 '--out', str(tmp / 'out.pt')]) == 2
    assert 'missing.pt' in capsys.readouterr().err
