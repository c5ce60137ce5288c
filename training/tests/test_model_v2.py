"""GeoVR-S v2's backbone: the contract normalisation, frozen stages and BatchNorm statistics,
the backbone learning rate, checkpoints without the weights package, compaction (the output
shapes and contract: test_model_shapes.py)."""

import pytest
import torch

from geovr_training.model import build_model, load_checkpoint, preset_args, save_checkpoint
from geovr_training.model.network_v2 import frozen_prefixes
from geovr_training.train.trainer import parameter_groups


def tiny(**overrides):
    return preset_args('tiny', descriptor_dim=24, **overrides)


def _k(fx, fy, cx, cy, batch=1):
    k = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return k.expand(batch, 2, 3, 3).clone()


def test_intrinsics_reach_depth_through_the_ray_embedding():
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    with torch.no_grad():
        torch.nn.init.normal_(model.ray_embed.weight, std=1.0)
    images = torch.randn(1, 2, 3, 96, 128)
    a = model(images, _k(100.0, 100.0, 64.0, 48.0))['depth']
    b = model(images, _k(400.0, 400.0, 64.0, 48.0))['depth']
    assert (a - b).abs().max() > 1e-4
    no_rays = build_model(tiny(use_ray_embedding=False)).eval()
    torch.testing.assert_close(no_rays(images, _k(100.0, 100.0, 64.0, 48.0))['depth'],
                               no_rays(images, _k(400.0, 400.0, 64.0, 48.0))['depth'])


def test_the_canonical_camera_makes_the_focal_length_set_the_metric_scale():
    """canonical_focal > 0: the same image through a lens 1.5x as long is 1.5x as far (the
    relative depth and the poses' directions unchanged); 0 leaves the scale to the image."""
    torch.manual_seed(0)
    images = torch.randn(1, 2, 3, 96, 128)
    # without the ray embedding the relative depth ignores K, so only the scale can move
    canonical = build_model(tiny(canonical_focal=1.0, canonical_width=128, use_ray_embedding=False)).eval()
    plain = build_model(tiny(use_ray_embedding=False)).eval()
    plain.load_state_dict(canonical.state_dict())            # the same weights: no new parameter
    with torch.no_grad():
        short, long = (canonical(images, _k(f, f, 64.0, 48.0)) for f in (128.0, 192.0))
        assert float(long['scale'] / short['scale']) == pytest.approx(1.5, rel=1e-3)
        assert float(short['scale'] / plain(images, _k(128.0, 128.0, 64.0, 48.0))['scale']) == \
            pytest.approx(1.0, rel=1e-5)                     # fx = canonical_focal x W: no change
        torch.testing.assert_close(long['depth'], 1.5 * short['depth'], rtol=2e-3, atol=1e-5)
        # the same camera fed wider (its 3:2 frame instead of a 4:3 crop): the focal length in
        # pixels sets the scale, not the input's width
        wide = torch.randn(1, 2, 3, 96, 160)
        fed_wide = canonical(wide, _k(128.0, 128.0, 80.0, 48.0))['scale']
        plain_wide = plain(wide, _k(128.0, 128.0, 80.0, 48.0))['scale']
        assert float(fed_wide / plain_wide) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match='canonical_focal'):
        tiny(canonical_focal=-1.0)
    with pytest.raises(ValueError, match='canonical_width'):
        tiny(canonical_focal=1.0, canonical_width=0)


def test_a_learned_canonical_exponent_starts_where_it_is_set_and_trains():
    """learn_canonical_exponent: the scale follows (fx / f_c) ** e with e a trained parameter;
    at e = 0 the focal length leaves the scale alone (a fine-tune starts at its checkpoint's
    scale), at e = 1 it is the canonical camera, and the loss reaches e."""
    torch.manual_seed(0)
    images = torch.randn(1, 2, 3, 96, 128)
    args = dict(canonical_focal=1.0, canonical_width=128, use_ray_embedding=False)
    partial = build_model(tiny(**args, canonical_exponent=0.0, learn_canonical_exponent=True)).eval()
    full = build_model(tiny(**args)).eval()
    full.load_state_dict({k: v for k, v in partial.state_dict().items() if k != 'canonical_exponent'})
    with torch.no_grad():
        short, long = (partial(images, _k(f, f, 64.0, 48.0))['scale'] for f in (128.0, 192.0))
        assert float(long / short) == pytest.approx(1.0, rel=1e-5)
        partial.canonical_exponent.fill_(1.0)
        torch.testing.assert_close(partial(images, _k(192.0, 192.0, 64.0, 48.0))['scale'],
                                   full(images, _k(192.0, 192.0, 64.0, 48.0))['scale'])
        partial.canonical_exponent.fill_(0.5)
        half = partial(images, _k(192.0, 192.0, 64.0, 48.0))['scale'] / partial(images, _k(128.0, 128.0, 64.0, 48.0))['scale']
        assert float(half) == pytest.approx(1.5 ** 0.5, rel=1e-4)
    partial(images, _k(192.0, 192.0, 64.0, 48.0))['scale'].sum().backward()
    assert partial.canonical_exponent.grad is not None and float(partial.canonical_exponent.grad) != 0.0
    with pytest.raises(ValueError, match='learn_canonical_exponent'):
        tiny(learn_canonical_exponent=True)


def test_pretrained_backbone_sees_the_contract_normalisation_as_its_own():
    """Inputs arrive ImageNet-normalised; the backbone must receive RGB in [-1, 1]."""
    model = build_model(tiny())
    rgb01 = torch.rand(1, 3, 32, 32)
    contract = (rgb01 - torch.tensor([0.485, 0.456, 0.406])[:, None, None]) / torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(contract * model.input_scale + model.input_shift, rgb01 * 2 - 1)


def test_early_stages_are_frozen_and_batchnorm_statistics_kept():
    model = build_model(tiny(frozen_stages=3))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen and all(n.startswith(frozen_prefixes(3)) for n in frozen)
    assert 'backbone._blocks.4._project_conv.weight' in frozen  # block 4 ends stage 3
    assert 'backbone._blocks.5._project_conv.weight' not in frozen
    model.train()
    assert not any(m.training for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert model.depth_decoder.training
    before = model.backbone._bn0.running_mean.clone()
    model(torch.randn(2, 2, 3, 64, 64) * 5, _k(60.0, 60.0, 32.0, 32.0, 2))
    torch.testing.assert_close(model.backbone._bn0.running_mean, before)


def test_parameter_groups_scale_the_backbone_learning_rate():
    model = build_model(tiny())
    groups = parameter_groups(model, 0.01, {'backbone.': 0.1})
    by_scale = {}
    for group in groups:
        by_scale.setdefault(group['lr_scale'], set()).update(id(p) for p in group['params'])
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[i].startswith('backbone.') for i in by_scale[0.1])
    assert not any(names[i].startswith('backbone.') for i in by_scale[1.0])
    assert all(g['weight_decay'] == 0.0 for g in groups if g['params'][0].ndim < 2)
    trainable = sum(len(g['params']) for g in groups)
    assert trainable == sum(1 for p in model.parameters() if p.requires_grad)


def test_checkpoint_round_trip_needs_no_weights_package(tmp_path, monkeypatch):
    model = build_model(tiny()).eval()
    path = save_checkpoint(tmp_path / 'v2.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    import geovr_training.model.efficientnet as efficientnet

    def no_package():
        raise efficientnet.WeightsError('not installed')
    monkeypatch.setattr(efficientnet, 'pretrained_weights_path', no_package)
    loaded, state = load_checkpoint(path)
    assert state['model_args']['family'] == 'geovr-s-v2'
    images, k = torch.randn(1, 2, 3, 64, 96), _k(80.0, 80.0, 48.0, 32.0)
    torch.testing.assert_close(loaded(images, k)['depth'], model(images, k)['depth'])


def test_compacted_checkpoint_is_half_the_size_and_predicts_the_same(tmp_path):
    from geovr_training.model.checkpoint import compact_checkpoint
    torch.manual_seed(0)
    model = build_model(tiny()).eval()
    optimizer = torch.optim.AdamW(model.parameters())
    full = save_checkpoint(tmp_path / 'full.pt', model, {'data': {'resolution': [128, 96]}}, 3, optimizer)
    small = compact_checkpoint(full, tmp_path / 'small.pt')
    assert small.stat().st_size < 0.55 * full.stat().st_size  # float16 weights, no optimizer state
    loaded, state = load_checkpoint(small)
    assert state['optimizer'] is None and state['epoch'] == 3
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    images, k = torch.randn(1, 2, 3, 64, 96), _k(80.0, 80.0, 48.0, 32.0)
    torch.testing.assert_close(loaded(images, k)['depth'], model(images, k)['depth'], rtol=2e-2, atol=1e-3)


def test_interpolated_checkpoint_mixes_only_the_named_tensors(tmp_path):
    """WiSE-FT between a model and its fine-tune: weight 0 is the model, 1 the fine-tune for the
    tensors named, 0.5 their mean; every tensor not named stays the base's; a mismatch or a
    weight outside [0, 1] is refused by name."""
    from geovr_training.model.checkpoint import CheckpointError, interpolate_checkpoints
    from geovr_training.model.checkpoint import main as checkpoint_main
    torch.manual_seed(0)
    base_model = build_model(tiny()).eval()
    tuned_model = build_model(tiny()).eval()
    tuned_model.load_state_dict(base_model.state_dict())
    with torch.no_grad():
        for name, parameter in tuned_model.named_parameters():
            parameter.add_(torch.randn_like(parameter))
    base = save_checkpoint(tmp_path / 'base.pt', base_model, {}, 1)
    tuned = save_checkpoint(tmp_path / 'tuned.pt', tuned_model, {}, 2)
    base_weights, tuned_weights = base_model.state_dict(), tuned_model.state_dict()
    decoder = [n for n, v in base_weights.items() if n.startswith('depth_decoder.') and v.is_floating_point()]
    assert decoder and len(decoder) < len(base_weights)

    for weight in (0.0, 0.5, 1.0):
        mixed, state = load_checkpoint(interpolate_checkpoints(base, tuned, tmp_path / 'mixed.pt', weight,
                                                               ('depth_decoder.',)))
        assert state['epoch'] == 1 and state['interpolated']['tensors'] == len(decoder)
        for name, value in mixed.state_dict().items():
            expected = base_weights[name]
            if name in decoder:
                expected = (1 - weight) * base_weights[name] + weight * tuned_weights[name]
            torch.testing.assert_close(value, expected, msg=name)

    images, k = torch.randn(1, 2, 3, 64, 96), _k(80.0, 80.0, 48.0, 32.0)
    everything, _ = load_checkpoint(interpolate_checkpoints(base, tuned, tmp_path / 'all.pt', 1.0))
    torch.testing.assert_close(everything(images, k)['depth'], tuned_model(images, k)['depth'])

    with pytest.raises(ValueError, match='1.5'):
        interpolate_checkpoints(base, tuned, tmp_path / 'x.pt', 1.5)
    with pytest.raises(ValueError, match='decoder_typo'):
        interpolate_checkpoints(base, tuned, tmp_path / 'x.pt', 0.5, ('decoder_typo',))
    other = save_checkpoint(tmp_path / 'other.pt', build_model(preset_args('tiny', descriptor_dim=16)), {}, 1)
    with pytest.raises(CheckpointError, match='model_args'):
        interpolate_checkpoints(base, other, tmp_path / 'x.pt', 0.5)
    assert not (tmp_path / 'x.pt').exists()
    assert checkpoint_main(['interpolate', str(base), str(tuned), str(tmp_path / 'cli.pt'), '--weight', '0.25',
                            '--prefix', 'depth_decoder.']) == 0
    assert torch.load(tmp_path / 'cli.pt', weights_only=True)['interpolated']['weight'] == 0.25
    assert checkpoint_main(['interpolate', str(base), str(other), str(tmp_path / 'bad.pt'), '--weight', '0.5']) == 2


def test_convex_upsampling_starts_as_bilinear_and_learns_to_keep_an_edge():
    """At initialisation the convex upsampler is the bilinear upsampling it replaces; bilinear
    smears a depth step over the cells beside it, the convex mix learns to keep it sharp."""
    import torch.nn.functional as F

    from geovr_training.model.network_v2 import ConvexUpsampler
    torch.manual_seed(0)
    upsampler = ConvexUpsampler(features=8, factor=4)
    coarse, features = torch.randn(2, 2, 6, 8), torch.randn(2, 8, 6, 8)
    bilinear = F.interpolate(coarse, scale_factor=4, mode='bilinear', align_corners=False)
    assert (upsampler(coarse, features) - bilinear).abs().max() < 3e-3
    # a near object (log-depth 0) against a far wall (log-depth 1), its edge on a cell boundary;
    # the features say which side of it a cell is on
    fine = torch.ones(1, 1, 24, 32)
    fine[..., 8:, :12] = 0.0
    coarse = F.avg_pool2d(fine, 4)
    side = (coarse < 0.5).float().expand(1, 8, 6, 8)
    smeared = (F.interpolate(coarse, scale_factor=4, mode='bilinear', align_corners=False) - fine).abs().mean()
    optimiser = torch.optim.Adam(upsampler.parameters(), lr=0.05)
    for _ in range(150):
        loss = (upsampler(coarse, side) - fine).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert smeared > 0.02 and loss < smeared / 4


def test_a_bad_depth_upsampling_is_refused():
    with pytest.raises(ValueError, match='depth_upsampling'):
        preset_args('tiny', depth_upsampling='bicubic')
    with pytest.raises(ValueError, match='depth_guidance'):
        preset_args('tiny', depth_guidance='edges')
    with pytest.raises(ValueError, match='convex'):
        preset_args('tiny', depth_guidance='upsampling')  # guides a convex upsampling: bilinear has none


@pytest.mark.parametrize('guidance', ['upsampling', 'decoder'])
def test_image_guidance_starts_as_the_decoder_without_it(guidance):
    """`depth_guidance` adds the frame's 4x4 pixels and stride-2 map per stride-4 cell to the
    convex upsampling's weights (and, 'decoder', to the stride-4 level) through convs that start
    at zero: a model without it loads into one with it and gives the same depth."""
    from geovr_training.model.network_v2 import GUIDE_WIDTH
    torch.manual_seed(0)
    plain = build_model(tiny(depth_upsampling='convex')).eval()
    guided = build_model(tiny(depth_upsampling='convex', depth_guidance=guidance)).eval()
    missing, unexpected = guided.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and missing and all('guide' in key for key in missing)
    images, k = torch.randn(1, 2, 3, 64, 96), _k(80.0, 80.0, 48.0, 32.0)
    with torch.no_grad():
        encoded = guided.encode_frames(images[0], k[0])
        assert encoded['guide4'].shape == (2, GUIDE_WIDTH, 16, 24)
        torch.testing.assert_close(guided(images, k)['depth'], plain(images, k)['depth'])
    with pytest.raises(ValueError, match='guide'):
        guided.depth_decoder(torch.zeros(1, 32, 2, 3), {s: torch.zeros(1, c, 64 // s, 96 // s)
                                                        for s, c in ((16, 112), (8, 40), (4, 24))}, None, 64, 96)


def test_a_guided_convex_upsampler_learns_where_an_outline_runs_inside_a_cell():
    """The outline of a bright near box runs 2 px inside the stride-4 cells (depth 0 on it, 1
    beside): from the coarse depth and uninformative features the upsampler stays bilinear;
    given a guide (here the image's 4 x 4 pixels of each cell) it learns which neighbour each
    pixel takes."""
    import torch.nn.functional as F

    from geovr_training.model.network_v2 import ConvexUpsampler
    image = torch.zeros(1, 3, 32, 64)
    image[..., 10:26, 14:46] = 1.0
    fine = 1.0 - image[:, :1]
    coarse, features = F.avg_pool2d(fine, 4), torch.zeros(1, 8, 8, 16)

    def fitted(guide: torch.Tensor | None) -> float:
        torch.manual_seed(0)
        upsampler = ConvexUpsampler(8, 4, 0 if guide is None else guide.shape[1])
        optimiser = torch.optim.Adam(upsampler.parameters(), lr=0.05)
        for _ in range(150):
            loss = (upsampler(coarse, features, guide) - fine).abs().mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return loss.item()

    smeared = (F.interpolate(coarse, scale_factor=4, mode='bilinear', align_corners=False) - fine).abs().mean()
    assert fitted(None) > 0.95 * smeared > 0.05
    assert fitted(F.pixel_unshuffle(image, 4)) < smeared / 1.6
