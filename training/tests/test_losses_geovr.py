"""Each loss against a hand-computed case."""

import math

import numpy as np
import pytest
import torch

from geovr_training.losses import (LossConfig, clip_scale, confidence_l1, depth_loss, descriptor_loss,
                                   distillation_loss, filtered_l1, geovr_loss, gradient_l1, make_targets,
                                   pose_loss, scale_loss, silog)


def _maps(values):
    return torch.tensor(values, dtype=torch.float32)[None, None]  # (1, 1, H, W)


def test_confidence_l1_hand_computed():
    pred = _maps([[1.0, 2.0], [3.0, 4.0]])
    target = _maps([[1.5, 2.0], [float('nan'), 3.0]])
    conf = _maps([[2.0, 1.0], [5.0, 3.0]])
    valid = torch.ones_like(pred, dtype=torch.bool)
    # valid pixels: (0,0): 2*0.5 - 0.2 ln 2; (0,1): 0 - 0; (1,1): 3*1 - 0.2 ln 3 (NaN dropped)
    expected = (1.0 - 0.2 * math.log(2) + 0.0 + 3.0 - 0.2 * math.log(3)) / 3
    assert confidence_l1(pred, target, conf, valid, alpha=0.2).item() == pytest.approx(expected, rel=1e-6)


def test_filtered_l1_drops_the_top_two_percent():
    target = torch.ones(1, 1, 10, 10)
    pred = target.clone()
    pred[0, 0, 0, :] += torch.arange(10, dtype=torch.float32) * 0.1  # residuals 0..0.9
    pred[0, 0, 5, 5] = 101.0  # one outlier: residual 100
    pred[0, 0, 5, 6] = 51.0  # second outlier: residual 50
    valid = torch.ones_like(target, dtype=torch.bool)
    # 98 % quantile of 100 residuals (linear interpolation) lies between 0.9 and 50 -> both outliers
    # beyond it are dropped only when the threshold is below them; here the threshold is
    # q = sorted[97] + 0.02 * (sorted[98]-sorted[97]) = 0.9 + 0.02*(50-0.9) = 1.882 -> drop both
    expected = sum(i * 0.1 for i in range(10)) / 98
    assert filtered_l1(pred, target, valid).item() == pytest.approx(expected, rel=1e-5)
    valid[0, 0, 0, 9] = False  # masked pixels never count
    expected = sum(i * 0.1 for i in range(9)) / 97
    assert filtered_l1(pred, target, valid).item() == pytest.approx(expected, rel=1e-5)


def test_gradient_l1_hand_computed_single_scale_and_invariance():
    target = _maps([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    pred = _maps([[1.0, 2.0, 4.0], [1.0, 2.0, 4.0]])
    valid = torch.ones_like(target, dtype=torch.bool)
    # diff rows [0, 1, 3]: |dx| = 1, 2 per row (4 pairs, sum 6); dy = 0 (3 pairs) -> 6 / 7
    assert gradient_l1(pred, target, valid, scales=1).item() == pytest.approx(6 / 7)
    # an offset d^ = d + c has no gradient error at any scale
    assert gradient_l1(target + 0.7, target, valid, scales=4).item() == pytest.approx(0.0, abs=1e-7)


def test_silog_hand_computed_and_scale_invariant():
    target = _maps([[1.0, 2.0]])
    pred = _maps([[1.0, 4.0]])
    valid = torch.ones_like(target, dtype=torch.bool)
    g = np.array([0.0, math.log(2)])
    expected = math.sqrt((g ** 2).mean() - 0.5 * g.mean() ** 2)
    assert silog(pred, target, valid).item() == pytest.approx(expected, rel=1e-6)
    assert silog(pred * 3, pred, valid, lam=1.0).item() == pytest.approx(0.0, abs=1e-3)


def test_depth_loss_sums_weighted_parts():
    torch.manual_seed(0)
    pred = torch.rand(1, 2, 8, 8) + 0.5
    target = torch.rand(1, 2, 8, 8) + 0.5
    conf = torch.rand(1, 2, 8, 8) + 1.0
    valid = torch.rand(1, 2, 8, 8) > 0.2
    parts = depth_loss(pred, target, conf, valid, weights={'grad': 2.0, 'silog': 0.5})
    expected = parts['conf'] + parts['l1'] + 2.0 * parts['grad'] + 0.5 * parts['silog']
    assert parts['total'].item() == pytest.approx(expected.item(), rel=1e-6)


def test_near_edge_weight_makes_a_rim_read_too_far_cost_more_than_a_wall_read_too_near():
    """A box at 1 m before a wall at 2 m: `near_edge_mask` finds the box's rim (its pixels within
    4 px of the outline, as the evaluation's depth_edge_summary does), not the wall's band nor
    the box's middle. With near_edge_weight 3 a rim read as far as the wall costs more than the
    wall's band read as near as the box; with 1 (off) the two cost the same; < 0 is refused."""
    from geovr_training.losses.depth import near_edge_mask
    target = torch.full((1, 1, 32, 32), 2.0)
    target[..., 8:24, 8:24] = 1.0
    valid = torch.ones_like(target, dtype=torch.bool)
    rim = near_edge_mask(target, valid)[0, 0]
    assert rim[8:24, 8:24].sum() == 16 * 16 - 8 * 8  # the box's pixels within 4 px of its outline
    assert not rim[12:20, 12:20].any() and not rim[:8].any() and not rim[:, :8].any()
    wall_band = torch.zeros(32, 32, dtype=torch.bool)
    wall_band[4:28, 4:28] = True
    wall_band[8:24, 8:24] = False
    conf = torch.ones_like(target)

    def costs(weight: float) -> tuple[float, float]:
        rim_far = torch.where(rim, torch.tensor(2.0), target)  # the rim read as the wall
        wall_near = torch.where(wall_band, torch.tensor(1.0), target)  # the wall's band read as the box
        return tuple(depth_loss(p, target, conf, valid, quantile=1.0, near_edge_weight=weight)['l1'].item()
                     for p in (rim_far, wall_near))

    rim_cost, wall_cost = costs(1.0)
    assert rim_cost == pytest.approx(wall_cost * 192 / 320)  # 192 rim pixels, 320 in the wall's band
    rim_cost, wall_cost = costs(3.0)
    assert rim_cost > 1.5 * wall_cost
    with pytest.raises(ValueError, match='near_edge_weight'):
        depth_loss(target, target, conf, valid, near_edge_weight=-1.0)


def test_pose_loss_hand_computed_with_sign_fix_and_weights():
    t_pred, t_gt = torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 0.0, 0.3]])
    q_gt = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    # -q_gt is the same rotation: the quaternion term must vanish
    parts = pose_loss(t_pred, -q_gt, t_gt, q_gt)
    assert parts['quat'].item() == 0.0
    assert parts['trans'].item() == pytest.approx(1.3 / 3)
    q_pred = torch.tensor([[0.2, 0.0, 0.0, 0.8]])
    fov_pred, fov_gt = torch.tensor([[1.0, 0.8]]), torch.tensor([[1.2, 0.8]])
    parts = pose_loss(t_pred, q_pred, t_gt, q_gt, fov_pred, fov_gt)
    expected = 1.3 / 3 + 0.4 / 4 + 0.5 * 0.2 / 2
    assert parts['total'].item() == pytest.approx(expected, rel=1e-6)


def test_scale_loss_hand_computed():
    pred, gt = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 3.0])
    expected = abs(math.log(2) - math.log(3)) / 2
    assert scale_loss(pred, gt).item() == pytest.approx(expected, rel=1e-6)


def test_distillation_loss_hand_computed():
    # teacher 4x4 grid, 2x2 pooled to 2x2; student already 2x2
    teacher = torch.zeros(1, 1, 2, 4, 4)
    teacher[0, 0, 0] = 1.0  # every pooled teacher vector = (1, 0)
    student = torch.zeros(1, 1, 2, 2, 2)
    student[0, 0, 0, 0, 0] = 3.0  # cos 1 -> 0
    student[0, 0, 1, 0, 1] = 2.0  # orthogonal -> 1
    student[0, 0, 0, 1, :] = -1.0  # opposite -> 2 (two positions)
    expected = (0 + 1 + 2 + 2) / 4
    assert distillation_loss([student], [teacher]).item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match='does not match'):
        distillation_loss([student], [torch.zeros(1, 1, 3, 4, 4)])


def test_descriptor_loss_prefers_matching_pairs():
    d = torch.nn.functional.normalize(torch.eye(4)[:, None, :].repeat(1, 2, 1), dim=-1)  # pairs equal
    good = descriptor_loss(d)
    shuffled = d.clone()
    shuffled[:, 1] = d[[1, 2, 3, 0], 1]
    assert good.item() < descriptor_loss(shuffled).item()
    # hand-computed: logits diag 10, off 0 -> CE = log(1 + 3 e^-10)
    assert good.item() == pytest.approx(math.log(1 + 3 * math.exp(-10)), rel=1e-3)


def test_targets_scale_pose_and_total_loss_switches():
    depth = torch.full((1, 2, 4, 4), 2.0)
    depth[0, 1] = 4.0
    depth[0, 1, 0, 0] = float("nan")
    valid = torch.isfinite(depth)
    poses = torch.eye(4, dtype=torch.float64).repeat(1, 2, 1, 1)
    poses[0, 0, :3, 3] = torch.tensor([1.0, 0.0, 0.0])
    poses[0, 1, :3, 3] = torch.tensor([1.0, 0.0, 3.0])
    targets = make_targets({'depth': depth, 'valid': valid, 'T_world_cam': poses, 'K': torch.eye(3).expand(1, 2, 3, 3)})
    assert clip_scale(depth, valid).item() == pytest.approx(2.0)  # median of 16 x 2.0 and 15 x 4.0
    torch.testing.assert_close(targets['trans_norm'], torch.tensor([[0.0, 0.0, 1.5]]))
    torch.testing.assert_close(targets['quat'], torch.tensor([[0.0, 0.0, 0.0, 1.0]]))
    outputs = {'depth_rel': targets['depth_rel'].nan_to_num(1.0), 'depth_conf': torch.ones(1, 2, 4, 4),
               'trans_norm': targets['trans_norm'], 'quat': targets['quat'], 'scale': torch.tensor([2.0]),
               'descriptor': torch.nn.functional.normalize(torch.ones(1, 2, 8), dim=-1)}
    total, logs = geovr_loss(outputs, targets, LossConfig())
    assert total.item() == pytest.approx(0.0, abs=1e-6)  # perfect prediction; log c = 0 at c = 1
    outputs['scale'] = torch.tensor([3.0])
    total, logs = geovr_loss(outputs, targets, LossConfig(depth=0, pose=0, descriptor=0))
    assert set(logs) == {'scale', 'total'}
    assert total.item() == pytest.approx(abs(math.log(4) - math.log(3)), rel=1e-6)
    with pytest.raises(ValueError, match='unknown loss settings'):
        LossConfig.from_dict({'depht': 1.0})


def test_semantic_loss_hand_computed_and_unknown_pixels_left_out():
    from geovr_training.losses import patch_class_fractions, semantic_loss
    labels = torch.tensor([[0, 0, 1, 1], [0, 2, 1, -1]]).reshape(1, 1, 2, 4)
    fractions, known = patch_class_fractions(labels, 3, 2)
    torch.testing.assert_close(fractions[0, 0, :, 0, 0], torch.tensor([0.75, 0.0, 0.25]))
    torch.testing.assert_close(fractions[0, 0, :, 0, 1], torch.tensor([0.0, 1.0, 0.0]))
    torch.testing.assert_close(known[0, 0, 0], torch.tensor([1.0, 0.75]))
    logits = torch.zeros(1, 1, 3, 1, 2)
    assert math.isclose(semantic_loss(logits, labels, 2).item(), math.log(3), rel_tol=1e-6)
    logits[0, 0, 1, 0, 1] = 10.0  # confident and right on patch 2, uniform on patch 1
    expected = (math.log(3) - math.log(math.exp(10) / (math.exp(10) + 2))) / 2
    assert math.isclose(semantic_loss(logits, labels, 2).item(), expected, rel_tol=1e-5)
    assert semantic_loss(logits, torch.full_like(labels, -1), 2).item() == 0.0


def test_shape_loss_ignores_the_disparity_scale_and_shift_and_sees_the_order():
    from geovr_training.losses import normalized_disparity, shape_loss
    generator = torch.Generator().manual_seed(0)
    target = 0.5 + 4.0 * torch.rand(2, 2, 12, 16, generator=generator)
    valid = torch.rand(2, 2, 12, 16, generator=generator) > 0.2
    affine = 1.0 / (3.0 / target + 0.4)  # disparity x3 + 0.4: the same shape
    assert shape_loss(affine, target, valid)['total'].item() == pytest.approx(0.0, abs=1e-5)
    normalized = normalized_disparity(target, valid)
    assert normalized[~valid].abs().max().item() == 0.0
    assert normalized[0, 0][valid[0, 0]].abs().mean().item() == pytest.approx(1.0, rel=1e-5)
    reversed_order = 1.0 / (5.0 - 1.0 / target)  # near reads far: the shape is wrong
    assert shape_loss(reversed_order, target, valid)['total'].item() > 1.0
    garbage = affine.clone()
    garbage[~valid] = 1e3  # invalid pixels never count
    assert shape_loss(garbage, target, valid)['total'].item() == pytest.approx(0.0, abs=1e-5)


def test_shape_only_clips_train_no_metric_scale_and_only_the_shape():
    depth = 0.5 + 3.0 * torch.rand(2, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    poses = torch.eye(4, dtype=torch.float64).repeat(2, 2, 1, 1)
    batch = {'depth': depth, 'valid': torch.ones_like(depth, dtype=torch.bool), 'T_world_cam': poses,
             'K': torch.eye(3).expand(2, 2, 3, 3), 'metric_depth': torch.tensor([True, False])}
    targets = make_targets(batch)
    assert targets['metric'].tolist() == [True, False]
    depth_rel = targets['depth_rel'].clone()
    depth_rel[1] = 1.0 / (2.0 / depth_rel[1] + 0.3)  # the shape-only clip: right shape, other contrast
    outputs = {'depth_rel': depth_rel, 'depth_conf': torch.ones(2, 2, 8, 8),
               'scale': torch.stack([targets['scale'][0], targets['scale'][1] * 5.0])}  # its scale far off
    config = LossConfig(pose=0, descriptor=0)
    total, logs = geovr_loss(outputs, targets, config)
    assert total.item() == pytest.approx(0.0, abs=1e-5)
    assert {'depth/ssi', 'depth/ssi_grad', 'depth/l1', 'scale'} <= set(logs)
    outputs['depth_rel'] = depth_rel.flip(-1)  # a wrong shape is seen in both kinds of clip
    assert geovr_loss(outputs, targets, config)[0].item() > 0.1
    targets['metric'] = torch.tensor([False, False])  # no metric clip: no scale term at all
    _, logs = geovr_loss(outputs, targets, config)
    assert 'scale' not in logs and 'depth/l1' not in logs
