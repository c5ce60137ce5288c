"""Training: per-head overfit, tiny config run, checkpoint round trip, resume, 2-process DDP."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from geovr_training.losses import LossConfig, geovr_loss, make_targets
from geovr_training.model import (V1_LAST_COMMIT, CheckpointError, build_model, load_checkpoint, normalize_images,
                                  preset_args, save_checkpoint)
from geovr_training.train.config import ConfigError, load_config
from geovr_training.data.dataset import ClipDataset
from geovr_training.train.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / 'configs'
SMALL = dict(descriptor_dim=16, token_grid=[2, 2])  # on the 'tiny' preset


def _batch(root, size=4, resolution=(64, 64), semantics=False):
    ds = ClipDataset(root, 'train', out_size=resolution, augment=False, semantics=semantics)
    items = [ds[i] for i in range(size)]
    keys = ('images', 'K', 'depth', 'valid', 'T_world_cam') + (('semantic',) if semantics else ())
    return {k: torch.stack([it[k] for it in items]) for k in keys}


HEADS = ('depth', 'pose', 'scale', 'distill', 'descriptor', 'semantic')


@pytest.mark.parametrize('head', HEADS)
def test_each_head_overfits_a_batch(tiny_data, head):
    torch.manual_seed(0)
    batch = _batch(tiny_data, semantics=head == 'semantic')
    args = preset_args('tiny', **SMALL, distill_dims=[8, 8] if head == 'distill' else [],
                       semantic_classes=15 if head == 'semantic' else 0)
    model = build_model(args)
    weights = {k: 0.0 for k in HEADS}
    weights[head] = 1.0
    config = LossConfig(**weights)
    teacher = [torch.randn(4, 2, 8, 4, 4), torch.randn(4, 2, 8, 4, 4)] if head == 'distill' else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    targets = make_targets(batch)
    images = normalize_images(batch['images'])
    losses = []
    for _ in range(25):
        out = model(images, batch['K'], with_distill=head == 'distill')
        loss, _ = geovr_loss(out, targets, config, teacher)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_tiny_config_trains_saves_and_resumes(tiny_data, tmp_path):
    config = load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data)}, 'out_dir': str(tmp_path / 'run'),
                                                 'optim': {'epochs': 2, 'max_steps_per_epoch': 2}})
    summary = train(config, progress=False)
    assert summary['epochs'] == 2 and Path(summary['last']).is_file()
    assert any((tmp_path / 'run' / 'tb').iterdir())  # TensorBoard events
    raw = torch.load(summary['last'], map_location='cpu', weights_only=True)
    assert raw['epoch'] == 1 and raw['config']['data']['root'] == str(tiny_data)
    assert raw['model_args']['dim'] == 32 and raw['optimizer'] is not None
    model, state = load_checkpoint(summary['last'])
    reference = build_model(raw['model_args'])
    reference.load_state_dict(raw['model'])
    images, k = torch.randn(1, 2, 3, 64, 64), torch.tensor([[50.0, 0, 31.5], [0, 50, 31.5], [0, 0, 1]]).expand(1, 2, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(images, k)['depth'], reference.eval()(images, k)['depth'])
    # resume continues from the next epoch and keeps the history
    config['optim']['epochs'] = 3
    resumed = train(config, resume=summary['last'], progress=False)
    assert resumed['epochs'] == 3 and len(resumed['history']) == 3
    assert torch.load(resumed['last'], weights_only=True)['epoch'] == 2
    # a new run initialised from the checkpoint starts at epoch 0 with its weights, and may
    # read its scale in the canonical camera (no parameter added)
    config.update(init_from=resumed['last'], out_dir=str(tmp_path / 'finetune'))
    config['optim'].update(epochs=1, lr=1e-9, warmup_steps=1)
    config['model']['canonical_focal'] = 1.0
    finetuned = train(config, progress=False)
    tuned = torch.load(finetuned['last'], weights_only=True)
    start = torch.load(resumed['last'], weights_only=True)
    assert tuned['epoch'] == 0 and tuned['model_args']['canonical_focal'] == 1.0
    assert tuned['model_args']['canonical_width'] == config['data']['resolution'][0]  # f_c in its pixels
    assert start['model_args']['canonical_focal'] == 0.0
    torch.testing.assert_close(tuned['model']['token_proj.weight'], start['model']['token_proj.weight'],
                               atol=1e-6, rtol=0)
    # or learn the focal length's power from 0 on the scale head alone: everything else stays
    # the checkpoint's bit for bit (what lets the QA model be rebound instead of retrained)
    config.update(out_dir=str(tmp_path / 'lens'))
    config['model'].update(canonical_exponent=0.0, learn_canonical_exponent=True)
    config['optim'].update(lr=1e-3, trainable=['scale_head.', 'canonical_exponent'], lr_scale={'canonical_exponent': 30.0})
    lens = torch.load(train(config, progress=False)['last'], weights_only=True)
    assert lens['model_args']['learn_canonical_exponent'] and float(lens['model']['canonical_exponent']) != 0.0
    moved = {k for k in lens['model'] if not torch.equal(lens['model'][k], start['model'].get(k, torch.empty(0)))}
    assert moved and all(k.startswith(('scale_head.', 'canonical_exponent')) for k in moved), moved


def test_a_step_budget_repeats_passes_over_small_data(tiny_data, tmp_path):
    """optim.max_steps: as many passes as the budget takes, stopping at it exactly."""
    config = load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data)}, 'out_dir': str(tmp_path / 'run'),
                                                 'optim': {'epochs': 1, 'max_steps': 5, 'max_steps_per_epoch': None},
                                                 'log_every': 1})
    summary = train(config, progress=False)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(tmp_path / 'run' / 'tb'))
    events.Reload()
    steps = [s.step for s in events.Scalars('train/total')]
    assert steps == [1, 2, 3, 4, 5] and summary['epochs'] > 1   # the tiny set is shorter than 5 batches
    with pytest.raises(ConfigError, match='optim.max_steps'):
        load_config(CONFIGS / 'tiny.yaml', {'optim': {'max_steps': 0}})


def test_checkpoint_errors_are_typed_and_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match='does not exist'):
        load_checkpoint(tmp_path / 'missing.pt')
    (tmp_path / 'garbage.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot be read'):
        load_checkpoint(tmp_path / 'garbage.pt')
    torch.save({'state_dict': {}}, tmp_path / 'other.pt')
    with pytest.raises(CheckpointError, match='not a GeoVR-S checkpoint'):
        load_checkpoint(tmp_path / 'other.pt')
    model = build_model(preset_args('tiny', **SMALL))
    path = save_checkpoint(tmp_path / 'small.pt', model, {}, 0)
    raw = torch.load(path, weights_only=True)
    raw['model_args']['dim'] = 48  # weights of one architecture, arguments of another
    raw['model_args']['num_heads'] = 2
    torch.save(raw, tmp_path / 'mismatch.pt')
    with pytest.raises(CheckpointError, match='another architecture'):
        load_checkpoint(tmp_path / 'mismatch.pt')
    raw['model_args']['num_heads'] = 5
    torch.save(raw, tmp_path / 'unusable.pt')
    with pytest.raises(CheckpointError, match="unusable.pt' has unusable model_args: dim 48 is not divisible"):
        load_checkpoint(tmp_path / 'unusable.pt')


def test_a_fine_tune_may_free_the_backbone_stages_its_checkpoint_froze(tiny_data, tmp_path):
    """init_from keeps the checkpoint's architecture, but how much of the backbone trains is
    the new run's to choose (a GPU's fine-tune frees more than the CPU's did)."""
    base = {'data': {'root': str(tiny_data)}, 'optim': {'epochs': 1, 'max_steps_per_epoch': 2, 'lr': 1e-2}}
    config = load_config(CONFIGS / 'tiny.yaml', {**base, 'out_dir': str(tmp_path / 'start')})
    start = train(config, progress=False)['last']
    before = torch.load(start, weights_only=True)
    assert before['model_args']['frozen_stages'] == 3
    for frozen in (3, 0):
        model = {'frozen_stages': frozen, 'freeze_backbone_bn': True}
        config = load_config(CONFIGS / 'tiny.yaml', {**base, 'out_dir': str(tmp_path / f'free{frozen}'),
                                                     'init_from': start, 'model': model})
        tuned = torch.load(train(config, progress=False)['last'], weights_only=True)
        assert tuned['model_args']['frozen_stages'] == frozen
        stem = 'backbone._conv_stem.weight'
        stem_moved = not torch.equal(tuned['model'][stem], before['model'][stem])
        assert stem_moved == (frozen == 0)


def test_a_retired_v1_checkpoint_names_the_file_and_the_commit_that_loads_it(tiny_data, tmp_path):
    """v1 (the ViT) left the tree: its checkpoints (model_args without a family) are refused
    by every reader, naming the file, the retirement and the last commit that holds v1."""
    v1_args = dict(patch_size=16, dim=192, depth=6, num_heads=3, mlp_ratio=3.0, decoder_dim=48, num_frames=2,
                   use_ray_embedding=True, depth_layers=[1, 2, 3, 5], distill_layers=[1, 2, 3, 5],
                   distill_dims=[256] * 4, token_grid=[6, 8], descriptor_dim=256, pixel_offset=0.0, init_scale_m=2.0,
                   semantic_classes=15, pose_from_matching=True)  # what models/geovr_s/checkpoint.pt holds
    path = tmp_path / 'geovr_s_v1.pt'
    torch.save({'format': 'geovr-s/1', 'model': {'patch_embed.weight': torch.zeros(192, 3, 16, 16)},
                'model_args': v1_args, 'config': {'model': {'preset': 'student'}}, 'epoch': 7}, path)
    expected = rf"{re.escape(repr(str(path)))} holds a GeoVR-S v1 \(ViT\) model, which was retired .* {V1_LAST_COMMIT} is the last"
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)
    base = {'data': {'root': str(tiny_data)}, 'out_dir': str(tmp_path / 'run')}
    with pytest.raises(CheckpointError, match=expected):  # fine-tuning from it
        train(load_config(CONFIGS / 'tiny.yaml', {**base, 'init_from': str(path)}), progress=False)
    with pytest.raises(CheckpointError, match=expected):  # resuming it
        train(load_config(CONFIGS / 'tiny.yaml', base), resume=path, progress=False)


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('optim: {lr: 0.1, epoks: 3}\n')
    with pytest.raises(ConfigError, match='optim.epoks'):
        load_config(bad)
    with pytest.raises(ConfigError, match='does not exist'):
        load_config(tmp_path / 'none.yaml')
    with pytest.raises(ConfigError, match="'data.train_split' is a value, not a mapping"):
        load_config(CONFIGS / 'tiny.yaml', {'data': {'train_split': {'extra': 1}}})


@pytest.mark.parametrize('module', ['geovr_training.train.cli', 'geovr_training.evaluation.transfer',
                                    'geovr_training.evaluation.ablation', 'geovr_training.qa.train'])
def test_every_repeated_set_flag_applies(module, capsys):
    """`--set a=1 --set b=2` applies both (argparse's plain nargs would keep the last alone):
    the first flag's unknown key is what the command refuses."""
    import importlib
    qa = module == 'geovr_training.qa.train'
    argv = {'geovr_training.evaluation.transfer': ['--out', 'unused', '--run', 'a=unused', '--test', 't=unused'],
            'geovr_training.evaluation.ablation': ['--data', 'unused', '--out', 'unused']}.get(
        module, ['--config', str(CONFIGS / ('qa_tiny.yaml' if qa else 'tiny.yaml'))])
    section = 'training' if qa else 'data'
    assert importlib.import_module(module).main([*argv, '--set', f'{section}.no_such_key=1', '--set', 'seed=1']) != 0
    assert f'{section}.no_such_key' in capsys.readouterr().err


@pytest.mark.parametrize('name', sorted(p.name for p in CONFIGS.glob('*.yaml')
                                        if 'task: qa' not in p.read_text()))
def test_every_shipped_geometry_config_loads(name):
    """A misspelt key in a shipped recipe fails here, not an hour into its run."""
    config = load_config(CONFIGS / name)
    assert config['optim']['lr'] > 0 and config['data']['batch_size'] >= 1


def test_two_process_ddp_on_gloo(tiny_data, tmp_path):
    out = tmp_path / 'ddp'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_port', '29531',
           '-m', 'geovr_training.train.cli', '--config', str(CONFIGS / 'tiny.yaml'), '--no-progress',
           '--set', f'data.root={tiny_data}', f'out_dir={out}', 'optim.epochs=1', 'optim.max_steps_per_epoch=2']
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout[result.stdout.index('{'):])
    assert summary['epochs'] == 1
    state = torch.load(out / 'last.pt', weights_only=True)
    assert not any(k.startswith('module.') for k in state['model'])  # DDP unwrapped
    load_checkpoint(out / 'last.pt')


@pytest.fixture(scope='module')
def base_checkpoint(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('base')
    train(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data)}, 'out_dir': str(out),
                                              'loss': {'distill': 0.0}}), progress=False)
    return out / 'last.pt'


@pytest.mark.parametrize('added,loss,data,module,trainable', [
    ({'semantic_classes': 15}, 'semantic', {'semantics': True}, 'semantic_head', []),
    ({'semantic_classes': 15}, 'semantic', {'semantics': True}, 'semantic_head', ['semantic_head.']),
])
def test_fine_tuning_adds_a_head_to_a_checkpoint(tiny_data, base_checkpoint, tmp_path, added, loss, data, module,
                                                 trainable):
    base, _ = load_checkpoint(base_checkpoint)
    assert getattr(base, module) is None
    finetune = load_config(CONFIGS / 'tiny.yaml', {
        'data': {'root': str(tiny_data), **data}, 'out_dir': str(tmp_path / 'ft'),
        'init_from': str(base_checkpoint), 'loss': {'distill': 0.0, loss: 1.0},
        'model': added, 'optim': {'epochs': 1, 'trainable': trainable}})
    result = train(finetune, progress=False)
    assert f'val_{loss}' in result['history'][-1]
    tuned, _ = load_checkpoint(tmp_path / 'ft' / 'last.pt')
    assert all(getattr(tuned.args, k) == v for k, v in added.items()) and getattr(tuned, module) is not None
    assert tuned.args.dim == base.args.dim  # everything else is the base model's
    if trainable:  # ... and, frozen, keeps the base weights exactly
        before = base.state_dict()
        kept = {k: v for k, v in tuned.state_dict().items() if not k.startswith(tuple(trainable))}
        assert kept and all(torch.equal(v, before[k]) for k, v in kept.items())


@pytest.mark.parametrize('added', [{'depth_upsampling': 'convex'},
                                   {'depth_upsampling': 'convex', 'depth_guidance': 'upsampling'}])
def test_a_fine_tune_may_turn_the_depth_upsampling_convex(tiny_data, base_checkpoint, tmp_path, added):
    """init_from adds the convex upsampler (and the image guide) to a bilinear checkpoint; with
    only the decoder trainable, every other weight stays the checkpoint's."""
    base, _ = load_checkpoint(base_checkpoint)
    assert base.depth_decoder.upsample is None
    finetune = load_config(CONFIGS / 'tiny.yaml', {
        'data': {'root': str(tiny_data)}, 'out_dir': str(tmp_path / 'ft'), 'init_from': str(base_checkpoint),
        'loss': {'distill': 0.0}, 'model': added,
        'optim': {'epochs': 1, 'trainable': ['depth_decoder.']}})
    train(finetune, progress=False)
    tuned, _ = load_checkpoint(tmp_path / 'ft' / 'last.pt')
    assert tuned.args.depth_upsampling == 'convex' and tuned.depth_decoder.upsample is not None
    assert (tuned.depth_decoder.guide is not None) == ('depth_guidance' in added)
    before = base.state_dict()
    kept = {k: v for k, v in tuned.state_dict().items() if not k.startswith('depth_decoder.')}
    assert kept and all(torch.equal(v, before[k]) for k, v in kept.items())


def test_a_trainable_prefix_matching_nothing_is_refused(tiny_data, tmp_path):
    config = load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data)}, 'out_dir': str(tmp_path),
                                                 'optim': {'trainable': ['no_such_module.']}})
    with pytest.raises(ConfigError, match='no_such_module'):
        train(config, progress=False)


def test_several_data_roots_pool_their_clips(tiny_data, tmp_path):
    from geovr_training.data.generate import GenerationConfig, generate_dataset
    from geovr_training.train.data import build_datasets
    close = tmp_path / 'close'
    generate_dataset(close, 3, GenerationConfig(seed=8, frames_per_scene=4, resolution=(64, 48), qa_per_scene=0,
                                                trajectories=('close',)), progress=False)
    config = load_config(CONFIGS / 'tiny.yaml', {'data': {'root': [str(tiny_data), str(close)]},
                                                 'out_dir': str(tmp_path / 'run'),
                                                 'optim': {'epochs': 1, 'max_steps_per_epoch': 1}})
    train_set, val_set = build_datasets(config)
    singles = [build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(root)}}))
               for root in (tiny_data, close)]
    assert len(train_set) == sum(len(t) for t, _ in singles) and len(val_set) == sum(len(v) for _, v in singles)
    train_set.set_epoch(3)
    assert [part.epoch for part in train_set.datasets] == [3, 3]
    # interleaved: validation in order (capped by max_val_batches) sees both datasets early
    first_half = {int(p) for p, _ in val_set.index[:max(2, len(val_set) // 2)]}
    assert first_half == {0, 1}
    assert sorted(map(tuple, val_set.index.tolist())) == [(p, j) for p, part in enumerate(val_set.datasets)
                                                          for j in range(len(part))]
    summary = train(config, progress=False)
    assert summary['epochs'] == 1
    # data.depth_supervision marks the second folder's clips as shape only; a wrong list is refused
    config['data']['depth_supervision'] = ['metric', 'shape']
    marked, marked_val = build_datasets(config)
    marks = {int(p): bool(marked_val[k]['metric_depth']) for k, (p, _) in enumerate(marked_val.index)}
    assert marks == {0: True, 1: False} and len(marked) == len(train_set)
    marked.set_epoch(2)
    assert train(config, progress=False)['epochs'] == 1
    for wrong in (['metric'], ['metric', 'exact']):
        config['data']['depth_supervision'] = wrong
        with pytest.raises(ValueError, match='depth_supervision'):
            build_datasets(config)


def test_camera_zoom_sets_the_augmentation_range_and_a_bad_one_is_refused(tiny_data):
    """data.camera_zoom [2, 2] zooms every augmented training clip in by two (focal length at
    least twice the unaugmented one: the crop only enlarges further); [0, 1] is refused."""
    from geovr_training.train.data import build_datasets
    plain, _ = build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data),
                                                                            'camera_augmentation': False}}))
    zoomed, _ = build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data),
                                                                             'camera_zoom': [2.0, 2.0]}}))
    assert len(zoomed) == len(plain) >= 1
    for i in range(len(plain)):
        assert zoomed[i]['K'][0, 0, 0] >= 2.0 * plain[i]['K'][0, 0, 0] - 1e-3
    with pytest.raises(ValueError, match='camera_zoom'):
        build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data), 'camera_zoom': [0.0, 1.0]}}))


def test_narrow_zoom_fraction_zooms_that_share_of_the_clips_and_a_bad_one_is_refused(tiny_data):
    """data.camera_zoom_narrow_fraction 1 with camera_zoom_narrow [3, 3] zooms every augmented
    clip by three (the plain range [1, 1] at most 1 / 0.7 through the crop); 0.3 does so for
    about 30 % of the augmentation's draws; a fraction outside [0, 1] or a bad range is refused."""
    from geovr_training.data.augment import CameraAugment
    from geovr_training.train.data import build_datasets

    def dataset(**data):
        return build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data), **data}}))[0]

    plain = dataset(camera_augmentation=False)
    narrow = dataset(camera_zoom=[1.0, 1.0], camera_zoom_narrow=[3.0, 3.0], camera_zoom_narrow_fraction=1.0)
    never = dataset(camera_zoom=[1.0, 1.0], camera_zoom_narrow=[3.0, 3.0], camera_zoom_narrow_fraction=0.0)
    assert len(narrow) == len(plain) >= 1
    for i in range(len(plain)):
        assert narrow[i]['K'][0, 0, 0] >= 3.0 * plain[i]['K'][0, 0, 0] - 1e-3
        assert never[i]['K'][0, 0, 0] <= 1.0 / 0.7 * plain[i]['K'][0, 0, 0] + 1e-3

    K = np.array([[200.0, 0, 128], [0, 200.0, 96], [0, 0, 1]])
    augment = CameraAugment(out_size=(256, 192), zoom=(1.0, 1.0), narrow_zoom=(3.0, 3.0), narrow_fraction=0.3)
    rng = np.random.default_rng(0)
    zoomed = np.mean([augment.intrinsics(K, (256, 192), rng)[0, 0] >= 3 * 200.0 - 1e-6 for _ in range(400)])
    assert 0.22 <= zoomed <= 0.38
    with pytest.raises(ValueError, match='camera_zoom_narrow_fraction'):
        dataset(camera_zoom_narrow_fraction=1.5)
    with pytest.raises(ValueError, match='camera_zoom_narrow'):
        dataset(camera_zoom_narrow=[2.0, 1.0])


def test_blur_fraction_softens_that_share_of_the_clips_and_keeps_their_geometry(tiny_data):
    """data.camera_blur_fraction 1 with camera_blur_factor [2, 2]: every augmented clip is the
    unblurred clip's draw (same K, same depth) with its images shrunk by two and resized back;
    a fraction outside [0, 1] or a factor range below zero is refused."""
    from geovr_training.data.augment import soften
    from geovr_training.train.data import build_datasets

    def dataset(**data):
        return build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data), **data}}))[0]

    sharp = dataset(camera_blur_fraction=0.0)
    soft = dataset(camera_blur_fraction=1.0, camera_blur_factor=[2.0, 2.0])
    assert len(soft) == len(sharp) >= 1
    for i in range(min(len(sharp), 3)):
        a, b = sharp[i], soft[i]
        torch.testing.assert_close(a['K'], b['K'])
        torch.testing.assert_close(a['depth'], b['depth'], equal_nan=True)
        for frame in range(a['images'].shape[0]):
            rgb = (a['images'][frame].permute(1, 2, 0) * 255).round().byte().numpy()
            expected = torch.from_numpy(soften(rgb, 2.0)).permute(2, 0, 1).float() / 255
            torch.testing.assert_close(b['images'][frame], expected)
            detail = lambda im: float((im[:, :, 1:] - im[:, :, :-1]).abs().mean())  # noqa: E731
            assert detail(b['images'][frame]) < detail(a['images'][frame])
    with pytest.raises(ValueError, match='camera_blur_fraction'):
        dataset(camera_blur_fraction=-0.1)
    with pytest.raises(ValueError, match='camera_blur_factor'):
        dataset(camera_blur_factor=[0.0, 2.0])


def test_flip_and_colour_fractions_reach_the_clips_and_bad_ones_are_refused(tiny_data):
    """data.flip_fraction 1 mirrors every augmented clip of the configured pool (K's cx moves
    to W - 1 - cx, the draw is otherwise the plain one), data.colour_jitter_fraction 1 changes
    every clip's colours and nothing else; a fraction outside [0, 1] is refused by name."""
    from geovr_training.train.data import build_datasets

    def dataset(**data):
        return build_datasets(load_config(CONFIGS / 'tiny.yaml', {'data': {'root': str(tiny_data), **data}}))[0]

    plain, mirrored, coloured = dataset(), dataset(flip_fraction=1.0), dataset(colour_jitter_fraction=1.0)
    width = plain[0]['images'].shape[-1]
    for i in range(min(len(plain), 3)):
        torch.testing.assert_close(mirrored[i]['images'], plain[i]['images'].flip(-1))
        torch.testing.assert_close(mirrored[i]['K'][:, 0, 2], width - 1 - plain[i]['K'][:, 0, 2])
        torch.testing.assert_close(coloured[i]['K'], plain[i]['K'])
        assert not torch.equal(coloured[i]['images'], plain[i]['images'])
    for key in ('flip_fraction', 'colour_jitter_fraction'):
        with pytest.raises(ValueError, match=key):
            dataset(**{key: 1.5})
