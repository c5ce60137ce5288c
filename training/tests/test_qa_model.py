"""QA fusion model and losses: shapes, invariances, hand-computed losses, per-head overfit."""
import math

import pytest
import torch

from geovr_training.qa.losses import gaussian_nll, heading_kl, qa_losses, wrapped_gaussian_bins
from geovr_training.qa.model import QAModelArgs, build_qa_model, relation_feature_sizes, relation_features
from geovr_training.qa.vocab import CATEGORIES, NUMERIC_CATEGORIES

torch.set_num_threads(1)  # the test machine's cores are shared; more threads only thrash
TINY = dict(token_dim=24, dim=32, depth=1, num_heads=2)


def inputs(b=2, k=4, keyframes=16, per=4, c=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = keyframes * per
    return dict(question=torch.nn.functional.normalize(torch.randn(b, 384, generator=g), dim=-1),
                question_tokens=torch.randn(b, 9, 384, generator=g), question_token_mask=torch.ones(b, 9),
                options=torch.randn(b, k, 384, generator=g), option_mask=torch.ones(b, k),
                memory_tokens=torch.randn(b, m, c, generator=g), memory_xyz=torch.randn(b, m, 3, generator=g) * 2,
                memory_time=torch.linspace(0, 1, keyframes).repeat_interleave(per).expand(b, m).contiguous(),
                memory_mask=torch.ones(b, m))


@pytest.mark.parametrize('keyframes', [1, 16])
def test_output_shapes_for_one_and_sixteen_keyframes(keyframes):
    model = build_qa_model(TINY).eval()
    x = inputs(keyframes=keyframes)
    out = model(**x)
    m = keyframes * 4
    assert out['category_logits'].shape == (2, len(CATEGORIES))
    assert out['log_values'].shape == (2, len(NUMERIC_CATEGORIES))
    assert out['choice_logits'].shape == (2, 4)
    assert out['point'].shape == out['position'].shape == (2, 3)
    assert out['point_weights'].shape == (2, m) and torch.allclose(out['point_weights'].sum(-1), torch.ones(2))
    assert out['heading_logits'].shape == (2, 36) and out['heading'].abs().max() <= math.pi
    assert out['bev_xy'].shape == (2, m, 2) and out['bev_log_sigma'].shape == (2, m)
    assert all(torch.isfinite(v).all() for v in out.values())


def test_padding_tokens_and_options_do_not_change_the_answer():
    model = build_qa_model(TINY).eval()
    x = inputs(keyframes=2)
    padded = {k: v.clone() for k, v in x.items()}
    for key, extra in (('memory_tokens', torch.randn(2, 5, 24) * 50), ('memory_xyz', torch.randn(2, 5, 3) * 50),
                       ('memory_time', torch.rand(2, 5))):
        padded[key] = torch.cat([x[key], extra], dim=1)
    padded['memory_mask'] = torch.cat([x['memory_mask'], torch.zeros(2, 5)], dim=1)
    padded['options'] = torch.cat([x['options'], torch.randn(2, 1, 384)], dim=1)
    padded['option_mask'] = torch.cat([x['option_mask'], torch.zeros(2, 1)], dim=1)
    a, b = model(**x), model(**padded)
    for key in ('category_logits', 'log_values', 'point', 'position', 'heading'):
        assert torch.allclose(a[key], b[key], atol=1e-4), key
    assert torch.allclose(a['choice_logits'], b['choice_logits'][:, :4], atol=1e-4)
    assert (b['choice_logits'][:, 4] < -1e3).all()


def test_translating_the_world_translates_points_and_nothing_else():
    model = build_qa_model(TINY).eval()
    x = inputs(keyframes=3)
    shift = torch.tensor([3.0, -2.0, 0.5])
    moved = dict(x, memory_xyz=x['memory_xyz'] + shift)
    a, b = model(**x), model(**moved)
    assert torch.allclose(a['point'] + shift, b['point'], atol=1e-4)
    assert torch.allclose(a['position'] + shift, b['position'], atol=1e-4)
    assert torch.allclose(a['category_logits'], b['category_logits'], atol=1e-4)


def test_position_embedding_makes_answers_depend_on_positions():
    x = inputs(keyframes=2)
    scrambled = dict(x, memory_xyz=x['memory_xyz'][:, torch.randperm(x['memory_xyz'].shape[1])])
    with_pe = build_qa_model(dict(TINY, use_position_embedding=True, use_relation_features=False)).eval()
    relations = build_qa_model(dict(TINY, use_position_embedding=False)).eval()
    without = build_qa_model(dict(TINY, use_position_embedding=False, use_relation_features=False)).eval()
    for model in (with_pe, relations):
        assert not torch.allclose(model(**x)['log_values'], model(**scrambled)['log_values'], atol=1e-5)
    assert torch.allclose(without(**x)['log_values'], without(**scrambled)['log_values'], atol=1e-5)


def test_empty_memory_points_at_the_origin_plus_residual():
    model = build_qa_model(TINY).eval()
    x = dict(inputs(keyframes=1), memory_mask=torch.zeros(2, 4))
    out = model(**x)
    assert out['point_weights'].abs().max() == 0
    assert out['point'].abs().max() <= TINY.get('point_residual_m', 0.5) + 1e-5


def test_losses_against_hand_computed_values():
    assert float(gaussian_nll(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(0.0))) == pytest.approx(0.5)
    assert float(gaussian_nll(torch.tensor(2.0), torch.tensor(0.0), torch.tensor(math.log(2.0)))) == \
        pytest.approx(0.5 + math.log(2.0))
    centres = -math.pi + (torch.arange(36) + 0.5) * (2 * math.pi / 36)
    target = wrapped_gaussian_bins(torch.tensor([math.pi - 0.01]), centres, math.radians(15))
    assert target.sum() == pytest.approx(1.0)
    assert int(target.argmax()) == 35 and float(target[0, 0]) > 0.05  # wraps around +-pi
    logits = target.log()
    assert float(heading_kl(logits, torch.tensor([math.pi - 0.01]), math.radians(15))) == pytest.approx(0, abs=1e-5)
    assert float(heading_kl(torch.zeros(1, 36), torch.tensor([0.0]), math.radians(15))) > 0.5


def test_args_reject_bad_values():
    with pytest.raises(ValueError, match='divisible'):
        QAModelArgs(dim=30, num_heads=4)
    with pytest.raises(ValueError, match='unknown QA model_args'):
        QAModelArgs.from_dict({'nope': 1})


def _batch(kind, b=6, m=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = inputs(b=b, keyframes=m // 4, seed=seed)
    targets = {'category': torch.randint(len(CATEGORIES), (b,), generator=g),
               'numeric_index': torch.full((b,), -1), 'log_value': torch.zeros(b),
               'choice_index': torch.full((b,), -1), 'point': torch.zeros(b, 3), 'has_point': torch.zeros(b),
               'position': torch.zeros(b, 3), 'heading': torch.zeros(b), 'has_pose': torch.zeros(b),
               'bev_xy': torch.zeros(b, m, 2), 'bev_valid': torch.zeros(b, m)}
    if kind == 'numeric':
        targets['numeric_index'] = torch.randint(4, (b,), generator=g)
        targets['log_value'] = torch.randn(b, generator=g)
    elif kind == 'choice':
        targets['choice_index'] = torch.randint(4, (b,), generator=g)
    elif kind == 'point':
        targets['point'] = x['memory_xyz'][torch.arange(b), torch.randint(m, (b,), generator=g)]
        targets['has_point'] = torch.ones(b)
    elif kind == 'pose':
        targets['position'] = torch.randn(b, 3, generator=g)
        targets['heading'] = (torch.rand(b, generator=g) * 2 - 1) * math.pi
        targets['has_pose'] = torch.ones(b)
    elif kind == 'grounding':  # slot 0 on one memory token, slot 1 on two
        targets['grounding'] = torch.zeros(b, 2, m)
        targets['grounding'][torch.arange(b), 0, torch.randint(m, (b,), generator=g)] = 1.0
        targets['grounding'][:, 1, :2] = 0.5
    elif kind == 'bev':
        targets['bev_xy'] = x['memory_xyz'][..., :2] + torch.randn(b, m, 2, generator=g) * 0.3
        targets['bev_valid'] = torch.ones(b, m)
    return x, targets


HEAD_TERMS = {'category': ['category'], 'numeric': ['numeric'], 'choice': ['choice'], 'point': ['point'],
              'pose': ['position', 'heading'], 'bev': ['bev'], 'grounding': ['grounding']}


@pytest.mark.parametrize('kind', list(HEAD_TERMS))
def test_each_head_overfits_a_small_batch(kind):
    torch.manual_seed(0)
    model = build_qa_model(TINY)
    x, targets = _batch(kind)
    weights = {k: 0.0 for k in ('category', 'numeric', 'choice', 'point', 'bev', 'position', 'heading',
                                'grounding')}
    for term in HEAD_TERMS[kind]:
        weights[term] = 1.0
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    first = None
    for _ in range(30):
        losses = qa_losses(model(**x), targets, weights)
        first = float(losses['total'].detach()) if first is None else first
        opt.zero_grad()
        losses['total'].backward()
        opt.step()
    last = float(qa_losses(model(**x), targets, weights)['total'])
    assert last < 0.5 * first if first > 0 else last < first, (kind, first, last)


def _turn(points, yaw, shift):
    c, s = math.cos(yaw), math.sin(yaw)
    R = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return points @ R.T + shift


def test_relation_features_hand_computed_and_invariant_to_moving_the_world():
    # A at the origin facing B at (2, 0): C at (1, 1) is front-left, D at (-1, -1) back-right
    points = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [1, 1, 0], [-1, -1, 0], [0, 3, 0]]])
    xyz = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [1, 1, 0], [-1, -1, 0], [0, 3, 0], [4, 0, 0]]])
    weights = torch.eye(5, 6)[None]
    time = torch.tensor([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]])
    valid = torch.ones(1, 6)
    g, per_slot = relation_features(points, weights, xyz, time, valid)
    assert g.shape[-1] == relation_feature_sizes(5)[0] and per_slot.shape == (1, 5, 7)
    assert float(g[0, 0]) == pytest.approx(math.log(2.0 + 0.1), abs=1e-4)  # |AB| = 2 m
    direction = g[0, 10:16].reshape(3, 2)  # (forward, left) of C, D, E from A facing B
    assert torch.allclose(direction[0], torch.tensor([0.7071, 0.7071]), atol=1e-3)
    assert torch.allclose(direction[1], torch.tensor([-0.7071, -0.7071]), atol=1e-3)
    assert torch.allclose(per_slot[0, :, -1], time[0, :5])  # first-seen time of each slot
    moved = relation_features(_turn(points, 1.1, torch.tensor([3.0, -1.0, 0.5])), weights,
                              _turn(xyz, 1.1, torch.tensor([3.0, -1.0, 0.5])), time, valid)
    assert torch.allclose(g, moved[0], atol=1e-4) and torch.allclose(per_slot, moved[1], atol=1e-4)


def test_object_slots_point_at_memory_and_the_point_is_slot_zero():
    model = build_qa_model(TINY).eval()
    out = model(**inputs(keyframes=3))
    assert out['object_points'].shape == (2, 5, 3) and out['object_weights'].shape == (2, 5, 12)
    assert torch.allclose(out['object_weights'].sum(-1), torch.ones(2, 5), atol=1e-5)
    assert torch.equal(out['point'], out['object_points'][:, 0])


def test_instance_cover_of_pooled_tokens_hand_computed():
    from geovr_training.qa.memory import pooled_instance_cover
    seg = torch.zeros(4, 8, dtype=torch.int32).numpy()
    seg[0:2, 0:2] = 3  # fills patch (0, 0) of a 2x4 patch grid
    seg[2:4, 6:7] = 1  # half of patch (1, 3)
    cover = pooled_instance_cover(seg, (2, 4), (1, 2), num_instances=4)
    assert cover.shape == (2, 4)
    assert cover[0, 3] == pytest.approx(0.25) and cover[1, 3] == 0  # 1 of the 4 patches of the left half
    assert cover[1, 1] == pytest.approx(0.125) and cover[0, 1] == 0  # half a patch of 4 on the right
