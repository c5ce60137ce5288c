"""End to end on a tiny rendered dataset: cache -> train (frozen and joint) -> evaluate
(JSON, Markdown, PNG) -> export the question graphs; and the config checks."""
import json
from pathlib import Path

import pytest
import torch

from geovr_training.qa.ablation import ablation_table, variant
from geovr_training.qa.checkpoint import QACheckpointError, load_qa_checkpoint
from geovr_training.qa.train import QAConfigError, load_config, merge_config, train_qa


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    pytest.importorskip('pybullet', reason='rendering the tiny dataset needs pybullet')
    from geovr_training.data.generate import GenerationConfig, generate_dataset
    root = tmp_path_factory.mktemp('qa_pipeline')
    generate_dataset(root / 'data', 3, GenerationConfig(seed=5, frames_per_scene=6, resolution=(128, 96)),
                     workers=1, progress=False)
    config = load_config(Path(__file__).resolve().parents[1] / 'configs' / 'qa_tiny.yaml')
    config.update(data=str(root / 'data'), cache_dir=str(root / 'cache'))
    return root, config


@pytest.fixture(scope='module')
def trained(tiny):
    root, config = tiny
    summary = train_qa(config, root / 'run', progress=False)
    return root, config, summary


def test_training_writes_loadable_checkpoints_and_a_log(trained):
    root, config, summary = trained
    assert summary['train_items'] > 0 and summary['val_items'] > 0
    model, state = load_qa_checkpoint(summary['qa']['checkpoint'])
    assert state['geometry']['mode'] == 'frozen' and state['geometry']['pooled_grid'] == [2, 2]
    assert state['metrics']['priors']['room_size'] > 1.0  # mean training floor area, m^2
    blind, blind_state = load_qa_checkpoint(summary['blind']['checkpoint'])
    assert blind_state['blind'] is True
    log = json.loads((root / 'run' / 'train_log.json').read_text())
    assert len(log['qa']['history']) == config['training']['epochs']
    assert all(h['train']['total'] == h['train']['total'] for h in log['qa']['history'])  # no NaN


def test_evaluation_reports_tasks_baselines_and_wording(trained):
    from geovr_training.qa.evaluate import evaluate_qa
    root, config, summary = trained
    r = evaluate_qa(summary['qa']['checkpoint'], config['data'], root / 'eval', progress=False)
    for name in ('qa_eval.json', 'qa_eval.md', 'qa_eval.png'):
        assert (root / 'eval' / name).stat().st_size > 100
    assert set(r['model']['tasks']) == {'object_count', 'abs_distance', 'object_size', 'room_size', 'rel_distance',
                                        'rel_direction', 'route_plan', 'appearance_order'}
    present = [v for v in r['model']['tasks'].values() if v is not None]
    assert present and all(0 <= v <= 100 for v in present)
    assert r['blind'] is not None and r['chance']['overall'] is not None
    assert 'wording_heldout' in r and 'overall (mean of 8)' in (root / 'eval' / 'qa_eval.md').read_text()
    g = r['model']['grounding']
    assert g['roles'] > 0 and 0 <= g['mass_on_object'] <= 100 and 0 < g['uniform_mass_on_object'] <= 100
    assert 'Grounding (' in (root / 'eval' / 'qa_eval.md').read_text()


def test_joint_training_updates_the_geometry_encoder(tiny):
    root, config = tiny
    joint = merge_config(config)
    joint['geometry']['mode'] = 'joint'
    joint['training'].update(epochs=1, train_blind_baseline=False, encoder_lr=1e-3)
    summary = train_qa(joint, root / 'joint', progress=False)
    _, state = load_qa_checkpoint(summary['qa']['checkpoint'])
    from geovr_training.qa.cache import load_geometry_encoder
    start = load_geometry_encoder(None, joint['geometry']['model_args'], joint['seed']).state_dict()
    changed = [k for k, v in state['encoder'].items() if not torch.equal(v, start[k])]
    assert changed, 'joint training left the geometry encoder unchanged'


def test_export_from_a_trained_checkpoint(trained):
    from geovr_training.qa.export import export_question_graphs
    root, _, summary = trained
    result = export_question_graphs(summary['qa']['checkpoint'], root / 'model')
    assert result['parity']['question_graph'] < 1e-4
    import onnx
    props = {p.key: json.loads(p.value) for p in onnx.load(str(root / 'model' / 'question_graph.onnx')).metadata_props}
    assert props['geovr.graph'] == 'question'
    assert props['geovr.memory']['pooled_grid'] == [2, 2] and props['geovr.qa_vocabulary']['heading_bins'] == 36


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(QAConfigError, match='geometry.mode'):
        merge_config({'geometry': {'mode': 'sideways'}})
    with pytest.raises(QAConfigError, match="task"):
        merge_config({'task': 'geometry'})
    # a typo is refused with its dotted name, as in the geometry trainer (one config system)
    with pytest.raises(QAConfigError, match="'training.epochz'"):
        merge_config({'training': {'epochz': 3}})
    with pytest.raises(QAConfigError, match="'lr'"):
        merge_config({'lr': 1e-3})
    assert merge_config({'geometry': {'model_args': {'any': 1}}})['geometry']['model_args'] == {'any': 1}
    bad = tmp_path / 'x.pt'
    bad.write_bytes(b'not a checkpoint')
    with pytest.raises(QACheckpointError, match='x.pt'):
        load_qa_checkpoint(bad)


def test_ablation_variants():
    config = merge_config({})
    assert variant(config, 'no_position_embedding')['model']['use_position_embedding'] is False
    assert variant(config, 'joint_encoder')['geometry']['mode'] == 'joint'
    assert variant(config, 'no_geometric_training') is None  # no trained checkpoint to take away
    assert 'skipped' in ablation_table({'no_geometric_training': {'skipped': 'why'}})


def test_geovr_eval_dispatches_a_qa_checkpoint_to_the_qa_evaluation(trained):
    from geovr_training.evaluation.cli import main as geovr_eval
    root, config, summary = trained
    out = root / 'eval_cli'
    assert geovr_eval(['--checkpoint', str(summary['qa']['checkpoint']), '--data', config['data'],
                       '--out', str(out)]) == 0
    assert 'overall (mean of 8)' in (out / 'qa_eval.md').read_text()


def test_geovr_train_sends_qa_configs_and_their_overrides_to_the_qa_trainer(tmp_path):
    from geovr_training.data.errors import DataFormatError
    from geovr_training.train.cli import _config_task, main as geovr_train
    qa_config = Path(__file__).resolve().parents[1] / 'configs' / 'qa_tiny.yaml'
    assert _config_task(str(qa_config)) == 'qa'
    assert _config_task(str(qa_config.with_name('tiny.yaml'))) == 'geometry'
    with pytest.raises(SystemExit) as exit_info:
        geovr_train(['--config', str(qa_config), '--resume', 'last.pt'])
    assert exit_info.value.code == 2
    missing = tmp_path / 'no_such_dataset'
    with pytest.raises(DataFormatError, match='no_such_dataset'):  # the --set value reached the QA trainer
        geovr_train(['--config', str(qa_config), '--set', f'data={missing}', f'cache_dir={tmp_path}'])


def test_cache_holds_grounding_targets_and_question_token_states(tiny):
    from geovr_training.qa.batches import grounding_targets
    from geovr_training.qa.train import cached
    _, config = tiny
    cache = cached(merge_config(config), ['train'], progress=False)
    offsets = cache['text_token_offsets']
    assert offsets[-1] == cache['text_tokens'].shape[0] and (offsets[1:] > offsets[:-1]).all()
    items = [it for it in cache['items'] if it['point'] is not None and it['objects']]
    assert items, 'the tiny set has no "where is" question'
    seq = torch.tensor([it['sequence'] for it in items])
    target = grounding_targets(cache, items, seq, cache['mask'][seq])
    grounded = target[:, 0].sum(-1) > 0
    assert grounded.any() and torch.allclose(target[grounded, 0].sum(-1), torch.ones(int(grounded.sum())))
    # the target's mass sits on tokens whose ground-truth positions are near the object
    xyz = torch.nan_to_num(cache['xyz_gt'][seq])
    centre = torch.einsum('bm,bmk->bk', target[:, 0], xyz)[grounded]
    truth = torch.tensor([it['point'] for it in items])[grounded]
    spread = (xyz[grounded] - truth[:, None]).norm(dim=-1).mean(-1)  # a random token's distance
    assert ((centre - truth).norm(dim=-1) < spread).float().mean() > 0.7


def test_training_continues_from_a_qa_checkpoint(trained):
    root, config, summary = trained
    again = merge_config(config)
    again['training'].update(epochs=1, lr=0.0, train_blind_baseline=False, init_from=summary['qa']['checkpoint'])
    result = train_qa(again, root / 'continued', progress=False)
    start, _ = load_qa_checkpoint(summary['qa']['checkpoint'])
    continued, _ = load_qa_checkpoint(result['qa']['checkpoint'])
    for (name, a), b in zip(start.state_dict().items(), continued.state_dict().values()):
        assert torch.equal(a, b), name  # learning rate 0: the weights are exactly the loaded ones
    bad = merge_config(config)
    bad['model'] = dict(bad['model'], dim=48)
    bad['training'].update(epochs=1, train_blind_baseline=False, init_from=summary['qa']['checkpoint'])
    with pytest.raises(QAConfigError, match='init_from'):
        train_qa(bad, root / 'bad_init', progress=False)


def test_linear_probe_separates_separable_classes_and_not_noise():
    from geovr_training.qa.probe import fit_linear_probe
    g = torch.Generator().manual_seed(0)
    centres = 3 * torch.randn(4, 16, generator=g)
    labels = torch.arange(4).repeat(100)
    x = centres[labels] + torch.randn(400, 16, generator=g)
    probe = fit_linear_probe(x[:300], labels[:300], 4)
    assert (probe(x[300:]).argmax(-1) == labels[300:]).float().mean() > 0.95
    noise = torch.randn(400, 16, generator=g)
    probe = fit_linear_probe(noise[:300], labels[:300], 4, l2=1e-1)
    assert (probe(noise[300:]).argmax(-1) == labels[300:]).float().mean() < 0.5


def test_token_category_probe_labels_tokens_from_the_instance_masks(tiny):
    from geovr_training.data.shards import ShardReader, read_manifest
    from geovr_training.qa.probe import labelled_tokens, token_category_probe
    from geovr_training.qa.train import cached
    _, config = tiny
    config = merge_config(config)
    cache = cached(config, ['train'], progress=False)
    features, labels = labelled_tokens(cache, config['data'], min_cover=0.05)  # 2x2 tokens: objects are small
    manifest = read_manifest(config['data'])
    with ShardReader(Path(config['data']) / manifest['sequences'][0]['file']) as reader:
        present = {o.category for o in reader.scene.objects}
    assert len(labels) == features.shape[0] > 0 and set(labels) <= present
    assert features.shape[1] == cache['tokens'].shape[-1]
    assert len(labelled_tokens(cache, config['data'], min_cover=0.9)[1]) < len(labels)
    with pytest.raises(ValueError, match='lower min_cover'):
        token_category_probe(config, min_cover=1.01, progress=False)
    result = token_category_probe(config, min_cover=0.05, progress=False)
    assert result['tokens'][0] == len(labels) and result['l2'] in result['validation_accuracy_by_l2']
    assert 0 <= result['test_accuracy'] <= 100 and 0 <= result['majority_accuracy'] <= 100
