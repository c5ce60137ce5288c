"""GeoVR-S v2's per-cell category head: cell labels from the renderer's segmentation, cached
features, the head trains (its loss falls), and it rides in a checkpoint that old code paths
still load (tiny untrained model, tiny rendered rooms)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from geovr_training.model import ModelArgsV2, build_model, load_checkpoint, save_checkpoint
from geovr_training.model.category_head import CellCategoryHead, FineCellCategoryHead, join_features
from geovr_training.train.cell_categories import (attach_head, cache_features, cell_labels, class_weights,
                                                  feature_moments, fit_head, frame_grids, head_inputs,
                                                  iter_sequences, main, rendered_categories)

SMALL = dict(dim=32, depth=2, num_heads=2, mlp_ratio=2.0, decoder_dim=16, descriptor_dim=24, pretrained=False)


def test_a_cell_is_the_category_covering_most_of_it_or_background():
    fractions = np.array([[0.5, 0.2, 0.3],     # category 0 covers half
                          [0.25, 0.2, 0.55],   # nothing reaches 0.3: background
                          [0.3, 0.3, 0.4],     # a tie: the first category
                          [0.0, 0.0, 1.0]])
    assert cell_labels(fractions, 0.3).tolist() == [0, 2, 0, 2]
    assert cell_labels(fractions, 0.6).tolist() == [2, 2, 2, 2]


def test_class_weights_balance_rare_categories():
    labels = np.array([0] * 90 + [1] * 10)
    w = class_weights(labels, 3, power=1.0)
    assert w[1] / w[0] == pytest.approx(9.0)
    assert w[2] == pytest.approx(w[1])                   # never seen: the largest weight
    assert float((w[labels.tolist()]).mean()) == pytest.approx(1.0)
    assert torch.allclose(class_weights(labels, 2, power=0.0), torch.ones(2))


def test_old_checkpoints_load_without_a_head_and_args_are_checked(tmp_path):
    model = build_model(ModelArgsV2(**SMALL))
    assert model.category_head is None
    state = model.args.to_dict()
    for key in ('cell_categories', 'category_features', 'category_hidden', 'category_kernel'):
        del state[key]                                    # a checkpoint written before the head
    path = save_checkpoint(tmp_path / 'old.pt', model, {}, 0)
    raw = torch.load(path, weights_only=True)
    raw['model_args'] = state
    torch.save(raw, path)
    loaded, _ = load_checkpoint(path)
    assert loaded.category_head is None and loaded.args.cell_categories == []
    with pytest.raises(RuntimeError, match='no category head'):
        loaded.cell_category_logits(torch.zeros(1, 320, 3, 4))
    with pytest.raises(ValueError, match='category_features'):
        ModelArgsV2(**SMALL, cell_categories=['chair'], category_features='s8')
    with pytest.raises(ValueError, match='distinct'):
        ModelArgsV2(**SMALL, cell_categories=['chair', 'chair'])
    with pytest.raises(ValueError, match='kernel'):
        CellCategoryHead(320, 3, kernel=4)


@pytest.fixture(scope='module')
def tiny_cache(tmp_path_factory):
    """Features of 3 tiny rendered rooms (8 frames, 128x96: 3x4 cells) from a tiny v2 with the
    ImageNet backbone (a random one's stride-32 features are constant: nothing to learn from)."""
    from geovr_training.data.generate import GenerationConfig, generate_dataset
    root = tmp_path_factory.mktemp('rooms')
    generate_dataset(root, 3, GenerationConfig(seed=5, frames_per_scene=8, resolution=(128, 96), qa_per_scene=0),
                     progress=False)
    torch.manual_seed(0)
    model = build_model(ModelArgsV2(**{**SMALL, 'pretrained': True})).eval()
    sequences = [s for split in ('train', 'val', 'test') for s in iter_sequences(root, split)]
    return root, model, cache_features(model, sequences, features=('s32', 'head', 's16', 's8'))


def test_the_cache_holds_each_cells_features_and_label(tiny_cache):
    _, model, cache = tiny_cache
    frames = 24
    assert cache['grid'].tolist() == [3, 4]
    assert cache['s32'].shape == (frames * 12, 320) and cache['head'].shape == (frames * 12, 1280)
    assert cache['s32'].dtype == np.float16 and cache['fractions'].shape == (frames * 12, 15)
    assert cache['categories'].tolist() == rendered_categories()
    np.testing.assert_allclose(cache['fractions'].astype(np.float32).sum(-1), 1.0, atol=1e-2)
    assert (cache['labels'] < 14).any() and (cache['labels'] == 14).any()   # objects and background
    assert cache['frame'].tolist() == np.repeat(np.arange(frames), 12).tolist()


@pytest.mark.parametrize('features,hidden,kernel', [('s32', 16, 3), ('head', 0, 1), ('s32', 8, 5)])
def test_the_head_trains_and_rides_in_the_checkpoint(tiny_cache, tmp_path, features, hidden, kernel):
    _, model, cache = tiny_cache
    x, y = frame_grids(cache[features], cache['labels'], cache['grid'])
    assert x.shape == (24, cache[features].shape[1], 3, 4) and y.shape == (24, 3, 4)
    head, history = fit_head(x, y, 15, hidden=hidden, kernel=kernel, epochs=50, batch=8, lr=1e-2, val=(x, y))
    losses = [h['loss'] for h in history]
    assert losses[-1] < 0.7 * losses[0], losses                         # the loss falls
    assert history[-1]['val_accuracy'] > 0.5
    base = save_checkpoint(tmp_path / 'base.pt', model, {'data': {'resolution': [128, 96]}}, 2)
    path = attach_head(base, head, rendered_categories(), features, hidden, kernel, tmp_path / 'with_head.pt',
                       {'loss': losses[-1]})
    loaded, state = load_checkpoint(path)
    assert loaded.args.cell_categories == rendered_categories() and state['epoch'] == 2
    assert state['metrics']['category_head'] == {'loss': losses[-1]}
    feat_s32 = torch.from_numpy(cache['s32'][:12].astype(np.float32).reshape(1, 3, 4, 320)).permute(0, 3, 1, 2)
    with torch.no_grad():
        expected = head(feat_s32 if features == 's32' else model.backbone.head_features(feat_s32))
        torch.testing.assert_close(loaded.cell_category_logits(feat_s32), expected)
        for name, value in model.state_dict().items():                  # the rest is unchanged
            torch.testing.assert_close(loaded.state_dict()[name], value)


@pytest.mark.parametrize('cached, features, stride, wrong_cache, wrong_features, error', [
    ('s32', 's32', 32, 's32', 'head', 'holds no'),
    ('s16,s32', 's16+s32', 16, 's32', 's16+s32', "holds no 's16' features"),
    ('s8,s16,s32', 's8+s16+s32', 8, 's16,s32', 's8+s16+s32', "holds no 's8' features"),
])
def test_the_cli_caches_and_fits(tiny_cache, tmp_path, capsys, cached, features, stride, wrong_cache,
                                 wrong_features, error):
    root, model, _ = tiny_cache
    base = save_checkpoint(tmp_path / 'base.pt', model, {}, 0)

    def cache(which: str, out: str) -> int:
        return main(['cache', '--checkpoint', str(base), '--data', str(root), '--split', 'train',
                     '--features', which, '--out', str(tmp_path / out)])

    def fit(train: str, which: str, out: str, *extra: str) -> int:
        return main(['fit', '--checkpoint', str(base), '--train', str(tmp_path / train), '--features', which,
                     *extra, '--out', str(tmp_path / out)])

    assert cache(cached, 'train.npz') == 0
    assert fit('train.npz', features, 'head.pt', '--hidden', '8', '--epochs', '2') == 0
    loaded, state = load_checkpoint(tmp_path / 'head.pt')
    assert loaded.args.category_features == features and loaded.category_stride == stride
    assert loaded.args.category_kernel == 3 and loaded.args.category_hidden == 8
    assert state['metrics']['category_head']['stride'] == stride
    assert cache(wrong_cache, 'wrong.npz') == 0
    assert fit('wrong.npz', wrong_features, 'x.pt') == 2                # features the cache lacks
    assert error in capsys.readouterr().err


def test_the_cache_holds_the_stride16_cells_of_the_same_frames(tiny_cache):
    _, _, cache = tiny_cache
    frames = 24
    assert cache['grid_s16'].tolist() == [6, 8]
    assert cache['s16'].shape == (frames * 48, 112) and cache['s16'].dtype == np.float16
    assert cache['fractions_s16'].shape == (frames * 48, 15) and cache['labels_s16'].shape == (frames * 48,)
    # a stride-32 cell's pixel fractions are the mean of its four stride-16 cells'
    quarters = cache['fractions_s16'].astype(np.float32).reshape(frames, 3, 2, 4, 2, 15).mean((2, 4))
    np.testing.assert_allclose(quarters.reshape(-1, 15), cache['fractions'].astype(np.float32), atol=2e-3)
    np.testing.assert_array_equal(cache['labels_s16'], cell_labels(cache['fractions_s16'].astype(np.float32)))
    assert (cache['labels_s16'] < 14).sum() > (cache['labels'] < 14).sum()   # finer cells: more object cells


def test_join_features_puts_each_stride32_cell_on_its_four_stride16_cells():
    s16, s32 = torch.randn(2, 112, 6, 8), torch.randn(2, 320, 3, 4)
    joined = join_features(s16, s32)
    assert joined.shape == (2, 432, 6, 8)
    torch.testing.assert_close(joined[:, :112], s16)
    torch.testing.assert_close(joined[:, 112:, 3, 5], s32[:, :, 1, 2])
    torch.testing.assert_close(joined[:, 112:, 2, 4], s32[:, :, 1, 2])
    with pytest.raises(ValueError, match='twice the cells'):
        join_features(s16[:, :, :5], s32)
    pair = (s16.half(), s32.half())
    mean, std = feature_moments(pair)
    x, = head_inputs(pair, slice(0, 2))
    torch.testing.assert_close(mean, x.mean((0, 2, 3)), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(std, x.std((0, 2, 3)), atol=2e-2, rtol=2e-2)   # n - 1 of the cells, not of x


@pytest.mark.parametrize('features', ['s16', 's16+s32'])
def test_a_stride16_head_trains_and_names_the_stride16_cells(tiny_cache, tmp_path, features):
    _, model, cache = tiny_cache
    x16, y = frame_grids(cache['s16'], cache['labels_s16'], cache['grid_s16'], np.float16)
    x32, _ = frame_grids(cache['s32'], None, cache['grid'], np.float16)
    x = (x16, x32) if features == 's16+s32' else x16
    assert x16.shape == (24, 112, 6, 8) and x16.dtype == torch.float16 and y.shape == (24, 6, 8)
    head, history = fit_head(x, y, 15, hidden=16, kernel=3, epochs=40, batch=8, lr=1e-2, val=(x, y))
    losses = [h['loss'] for h in history]
    assert losses[-1] < 0.7 * losses[0], losses
    base = save_checkpoint(tmp_path / 'base.pt', model, {'data': {'resolution': [128, 96]}}, 2)
    path = attach_head(base, head, rendered_categories(), features, 16, 3, tmp_path / 'with_head.pt')
    loaded, _ = load_checkpoint(path)
    assert loaded.category_stride == 16 and model.category_stride is None
    feat_s16, feat_s32 = x16[:1].float(), x32[:1].float()
    with torch.no_grad():
        logits = loaded.cell_category_logits(feat_s32, feat_s16)
        assert logits.shape == (1, 15, 6, 8)                             # the stride-16 grid of 128x96
        torch.testing.assert_close(logits, head(*head_inputs(x, slice(0, 1))))
    with pytest.raises(ValueError, match='give feat_s16'):
        loaded.cell_category_logits(feat_s32)


def test_the_cache_holds_the_stride8_cells_of_the_same_frames(tiny_cache):
    _, _, cache = tiny_cache
    frames = 24
    assert cache['grid_s8'].tolist() == [12, 16]
    assert cache['s8'].shape == (frames * 192, 40) and cache['s8'].dtype == np.float16
    # a stride-16 cell's pixel fractions are the mean of its four stride-8 cells'
    quarters = cache['fractions_s8'].astype(np.float32).reshape(frames, 6, 2, 8, 2, 15).mean((2, 4))
    np.testing.assert_allclose(quarters.reshape(-1, 15), cache['fractions_s16'].astype(np.float32), atol=2e-3)
    np.testing.assert_array_equal(cache['labels_s8'], cell_labels(cache['fractions_s8'].astype(np.float32)))


def test_a_stride8_head_trains_and_names_the_stride8_cells(tiny_cache, tmp_path):
    """`s8+s16+s32`: the context of the stride-16 cells and the stride-8 map name the stride-8
    cells; the head's loss falls, it rides in the checkpoint, and the model's logits are the
    head's on the maps it is given."""
    _, model, cache = tiny_cache
    x8, y = frame_grids(cache['s8'], cache['labels_s8'], cache['grid_s8'], np.float16)
    x16, _ = frame_grids(cache['s16'], None, cache['grid_s16'], np.float16)
    x32, _ = frame_grids(cache['s32'], None, cache['grid'], np.float16)
    x = (x16, x32, x8)
    assert x8.shape == (24, 40, 12, 16) and y.shape == (24, 12, 16)
    mean, _ = feature_moments(x)
    assert mean.shape == (472,)                                          # 112 + 320 context, then 40 fine
    head, history = fit_head(x, y, 15, hidden=16, kernel=3, epochs=40, batch=8, lr=1e-2, val=(x, y))
    assert isinstance(head, FineCellCategoryHead)
    losses = [h['loss'] for h in history]
    assert losses[-1] < 0.7 * losses[0], losses
    base = save_checkpoint(tmp_path / 'base.pt', model, {'data': {'resolution': [128, 96]}}, 2)
    path = attach_head(base, head, rendered_categories(), 's8+s16+s32', 16, 3, tmp_path / 'with_head.pt')
    loaded, _ = load_checkpoint(path)
    assert loaded.category_stride == 8
    with torch.no_grad():
        logits = loaded.cell_category_logits(x32[:1].float(), x16[:1].float(), x8[:1].float())
        assert logits.shape == (1, 15, 12, 16)                           # the stride-8 grid of 128x96
        torch.testing.assert_close(logits, head(*head_inputs(x, slice(0, 1))))
    with pytest.raises(ValueError, match='give feat_s8'):
        loaded.cell_category_logits(x32[:1].float(), x16[:1].float())
    with pytest.raises(ValueError, match='twice the cells'):
        head(join_features(x16[:1].float(), x32[:1].float()), x16[:1].float())
    with pytest.raises(ValueError, match='hidden'):
        FineCellCategoryHead(432, 40, 15, hidden=0)


def test_fit_can_fine_tune_the_checkpoints_head(tiny_cache, tmp_path, capsys):
    """`fit --init-head` starts from --checkpoint's head and keeps its input normalisation, its
    width and kernel (a robot's rooms added to a fitted head); a head of other features, or none,
    is refused by name."""
    root, model, _ = tiny_cache
    base = save_checkpoint(tmp_path / 'base.pt', model, {}, 0)
    for split in ('train', 'val'):
        assert main(['cache', '--checkpoint', str(base), '--data', str(root), '--split', split,
                     '--features', 's8,s16,s32', '--out', str(tmp_path / f'{split}.npz')]) == 0

    def fit(checkpoint, cache: str, out: str, *extra: str) -> int:
        return main(['fit', '--checkpoint', str(checkpoint), '--train', str(tmp_path / cache),
                     '--features', 's8+s16+s32', *extra, '--out', str(tmp_path / out)])

    assert fit(base, 'train.npz', 'fitted.pt', '--hidden', '8', '--kernel', '1', '--epochs', '3') == 0
    fitted, _ = load_checkpoint(tmp_path / 'fitted.pt')
    assert fit(tmp_path / 'fitted.pt', 'val.npz', 'kept.pt', '--init-head', '--epochs', '1', '--lr', '1e-12') == 0
    assert fit(tmp_path / 'fitted.pt', 'val.npz', 'tuned.pt', '--init-head', '--epochs', '3', '--lr', '1e-2') == 0
    assert fit(tmp_path / 'fitted.pt', 'val.npz', 'fresh.pt', '--hidden', '8', '--kernel', '1', '--epochs', '1') == 0
    kept, state = load_checkpoint(tmp_path / 'kept.pt')
    tuned, _ = load_checkpoint(tmp_path / 'tuned.pt')
    fresh, _ = load_checkpoint(tmp_path / 'fresh.pt')
    assert (kept.args.category_hidden, kept.args.category_kernel) == (8, 1)   # the head's, not fit's defaults
    assert state['metrics']['category_head']['init_head'] == str(tmp_path / 'fitted.pt')
    assert state['metrics']['category_head']['dropout'] == 0.0                # a loaded head has none
    before = fitted.category_head.state_dict()
    for name, value in kept.category_head.state_dict().items():               # a step of 1e-12 changes nothing
        torch.testing.assert_close(value, before[name])
    changed = [n for n, v in tuned.category_head.state_dict().items() if not torch.equal(v, before[n])]
    assert changed and not any(n.startswith('feature_') for n in changed)     # weights move, normalisation kept
    assert not torch.equal(fresh.category_head.feature_mean, before['feature_mean'])  # a new fit: its own moments

    assert fit(base, 'val.npz', 'x.pt', '--init-head') == 2
    assert 'has no category head' in capsys.readouterr().err
    assert main(['cache', '--checkpoint', str(base), '--data', str(root), '--split', 'val',
                 '--features', 's16,s32', '--out', str(tmp_path / 'val16.npz')]) == 0
    assert main(['fit', '--checkpoint', str(tmp_path / 'fitted.pt'), '--train', str(tmp_path / 'val16.npz'),
                 '--features', 's16+s32', '--init-head', '--out', str(tmp_path / 'x.pt')]) == 2
    assert "reads 's8+s16+s32' features, not 's16+s32'" in capsys.readouterr().err
