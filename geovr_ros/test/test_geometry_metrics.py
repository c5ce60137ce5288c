"""Tests of geovr_ros.geometry.metrics: depth errors, ATE, RPE, Mean Relative Accuracy."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geovr_ros.geometry import (GeometryError, ShapeError, absolute_trajectory_error, depth_metrics, invert_pose,
                                make_pose, matrix_from_quat_xyzw, mean_relative_accuracy, pose_alignment,
                                relative_pose_error, so3_exp, umeyama_alignment)

FAST = settings(max_examples=50, deadline=None)


def test_depth_metrics_by_hand():
    gt = np.array([[1.0, 2.0, 4.0, np.nan, 3.0]])
    pred = np.array([[1.0, 2.5, 3.0, 7.0, 0.0]])  # last two pixels invalid (NaN gt, zero pred)
    m = depth_metrics(pred, gt)
    assert m['n_valid'] == 3
    assert m['abs_rel'] == pytest.approx((0 + 0.5 / 2 + 1 / 4) / 3)
    assert m['sq_rel'] == pytest.approx((0 + 0.25 / 2 + 1 / 4) / 3)
    assert m['rmse'] == pytest.approx(math.sqrt((0 + 0.25 + 1) / 3))
    assert m['log_rmse'] == pytest.approx(math.sqrt((math.log(1.25) ** 2 + math.log(0.75) ** 2) / 3))
    assert m['delta1'] == pytest.approx(1 / 3)  # ratio 1.25 is not < 1.25; 4/3 neither
    assert m['delta2'] == 1.0 and m['delta3'] == 1.0
    assert 'median_scale' not in m


def test_depth_metrics_masks():
    gt = np.array([1.0, 2.0, 10.0])
    pred = np.array([1.0, 3.0, 10.0])
    assert depth_metrics(pred, gt, valid=np.array([True, False, True]))['abs_rel'] == 0.0
    assert depth_metrics(pred, gt, max_depth=5.0)['abs_rel'] == pytest.approx(0.25)
    assert depth_metrics(pred, gt, min_depth=1.5)['n_valid'] == 2
    with pytest.raises(GeometryError, match='no valid pixel'):
        depth_metrics(pred, np.full(3, np.nan))
    with pytest.raises(ShapeError, match=r'\(2,\)'):
        depth_metrics(pred[:2], gt)


@FAST
@given(arrays(np.float64, (4, 5), elements=st.floats(0.2, 20.0)), st.floats(0.05, 20.0))
def test_median_scaling_recovers_a_scaled_prediction(gt, scale):
    m = depth_metrics(gt * scale, gt, alignment='median')
    assert m['median_scale'] == pytest.approx(1 / scale, rel=1e-9)
    assert m['abs_rel'] == pytest.approx(0.0, abs=1e-9)
    assert m['delta1'] == 1.0
    unscaled = depth_metrics(gt * scale, gt)
    assert unscaled['abs_rel'] == pytest.approx(abs(scale - 1), rel=1e-9, abs=1e-12)


@FAST
@given(arrays(np.float64, (4, 5), elements=st.floats(0.2, 20.0)), st.floats(0.1, 10.0), st.floats(-0.04, 1.0))
def test_affine_alignment_recovers_a_prediction_off_by_a_disparity_scale_and_shift(gt, scale, offset):
    pred = 1.0 / (scale * (1.0 / gt + offset))          # 1/gt >= 0.05: the disparity stays positive
    m = depth_metrics(pred, gt, alignment='affine')
    assert m['abs_rel'] == pytest.approx(0.0, abs=1e-6)
    assert m['delta1'] == 1.0


def test_affine_alignment_scores_the_shape_where_the_median_scale_cannot():
    gt = np.linspace(0.3, 1.9, 200)                      # a desk from 0.3 m to 1.9 m
    flattened = 1.0 / (0.3 / gt + 1.0)                  # the right order, a fifth of the contrast
    median, affine = depth_metrics(flattened, gt, alignment='median'), depth_metrics(flattened, gt, alignment='affine')
    assert median['delta1'] < 0.6 and affine['delta1'] == 1.0
    assert affine['disparity_scale'] == pytest.approx(1 / 0.3) and affine['disparity_shift'] == pytest.approx(-1 / 0.3)
    harmonic_mean = 1.0 / np.mean(1.0 / gt)              # a constant can only be moved to the best constant
    constant = depth_metrics(np.full_like(gt, 5.0), gt, alignment='affine')
    assert constant['abs_rel'] == pytest.approx(depth_metrics(np.full_like(gt, harmonic_mean), gt)['abs_rel'])
    with pytest.raises(GeometryError, match="'log'"):
        depth_metrics(flattened, gt, alignment='log')


@st.composite
def similarity(draw):
    q = draw(arrays(np.float64, 4, elements=st.floats(-1, 1)).filter(lambda q: np.linalg.norm(q) > 0.1))
    t = draw(arrays(np.float64, 3, elements=st.floats(-10, 10)))
    return draw(st.floats(0.2, 5.0)), matrix_from_quat_xyzw(q), t


@FAST
@given(similarity(), st.integers(0, 10_000))
def test_umeyama_recovers_a_similarity(sim, seed):
    s, R, t = sim
    src = np.random.default_rng(seed).normal(size=(20, 3))
    dst = s * src @ R.T + t
    s_est, R_est, t_est = umeyama_alignment(src, dst, with_scale=True)
    assert s_est == pytest.approx(s, rel=1e-9)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t_est, t, atol=1e-8)



def random_trajectory(seed, n=15):
    rng = np.random.default_rng(seed)
    R = np.stack([so3_exp(w) for w in rng.normal(scale=0.5, size=(n, 3))])
    return make_pose(R, np.cumsum(rng.normal(size=(n, 3)), axis=0))


@FAST
@given(similarity(), st.integers(0, 10_000))
def test_pose_alignment_recovers_a_rigid_transform(sim, seed):
    _, R, t = sim
    est = random_trajectory(seed)
    gt = make_pose(R, t) @ est
    R_est, t_est = pose_alignment(est, gt)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t_est, t, atol=1e-8)


def test_pose_alignment_holds_a_camera_that_looks_around_from_one_spot():
    """A camera turning on one spot (positions within a few cm, like tum_fr1_rpy), estimated
    with 2 cm of noise: a fit of the positions alone turns the frame by the noise, which moves
    a point 3 m away by decimetres; the orientations hold it within centimetres."""
    rng = np.random.default_rng(5)
    turns = np.stack([so3_exp(w) for w in rng.normal(scale=0.4, size=(60, 3))])
    true = make_pose(turns, rng.normal(scale=0.02, size=(60, 3)))
    frame = make_pose(so3_exp([0.1, -0.2, 1.3]), [2.0, -1.0, 0.5])   # the world from the estimate's frame
    est = invert_pose(frame) @ true
    est[:, :3, 3] += rng.normal(scale=0.02, size=(60, 3))
    point = np.array([3.0, 0.0, 0.0])
    R, t = pose_alignment(est, true)
    _, R_free, t_free = umeyama_alignment(est[:, :3, 3], true[:, :3, 3], with_scale=False)
    target = frame[:3, :3] @ point + frame[:3, 3]
    assert np.linalg.norm(R @ point + t - target) < 0.05
    assert np.linalg.norm(R_free @ point + t_free - target) > 0.15


def test_pose_alignment_refuses_bad_input():
    poses = np.repeat(np.eye(4)[None], 3, axis=0)
    with pytest.raises(GeometryError, match='rotation_weight'):
        pose_alignment(poses, poses, rotation_weight=-1.0)
    with pytest.raises(ShapeError):
        pose_alignment(poses, poses[:2])
    bad = poses.copy()
    bad[1, 0, 3] = np.nan
    with pytest.raises(GeometryError):
        pose_alignment(bad, poses)


@FAST
@given(similarity(), st.integers(0, 10_000))
def test_ate_of_a_similarity_transformed_copy_is_zero(sim, seed):
    s, R, t = sim
    gt = random_trajectory(seed)
    T_sim = make_pose(R, t)
    est = T_sim @ gt
    est[:, :3, 3] = s * (gt[:, :3, 3] @ R.T) + t  # positions under the similarity
    ate = absolute_trajectory_error(est, gt, alignment='sim3')
    assert ate['rmse'] == pytest.approx(0.0, abs=1e-8)
    assert ate['scale'] == pytest.approx(1 / s, rel=1e-9)
    ate_se3 = absolute_trajectory_error(est, gt, alignment='se3')
    assert ate_se3['scale'] == 1.0
    if abs(s - 1) > 0.05:  # a rigid alignment cannot undo the scale
        assert ate_se3['rmse'] > 1e-3


def test_ate_reference_values_by_hand():
    gt = np.array([[-1.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0]])
    # est at twice the size: rigid alignment cannot shrink it; each point stays 1 m off
    se3 = absolute_trajectory_error(2 * gt, gt, alignment='se3')
    assert se3['rmse'] == pytest.approx(1.0) and se3['max'] == pytest.approx(1.0)
    assert absolute_trajectory_error(2 * gt, gt, alignment='sim3')['scale'] == pytest.approx(0.5)
    # a constant offset is an error without alignment, and none with it
    shifted = gt + [0.3, 0.4, 0.0]
    none = absolute_trajectory_error(shifted, gt, alignment='none')
    assert none['rmse'] == pytest.approx(0.5) and none['mean'] == pytest.approx(0.5)
    assert absolute_trajectory_error(shifted, gt, alignment='se3')['rmse'] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(GeometryError, match="'affine'"):
        absolute_trajectory_error(gt, gt, alignment='affine')
    with pytest.raises(ShapeError, match=r'\(4, 2\)'):
        absolute_trajectory_error(gt[:, :2], gt)


@FAST
@given(st.integers(0, 10_000), st.integers(1, 5))
def test_rpe_of_identical_trajectories_is_zero(seed, delta):
    trajectory = random_trajectory(seed)
    rpe = relative_pose_error(trajectory, trajectory.copy(), delta=delta)
    assert all(value == pytest.approx(0.0, abs=1e-6) for value in rpe.values())
    # RPE is invariant to a rigid change of the world frame of est
    moved = make_pose(so3_exp([0.1, 0.2, 0.3]), [1.0, 2.0, 3.0]) @ trajectory
    assert relative_pose_error(moved, trajectory, delta)['trans_rmse'] == pytest.approx(0.0, abs=1e-9)


def test_rpe_reference_values_by_hand():
    gt = make_pose(np.eye(3), np.array([[i, 0.0, 0.0] for i in range(4)]))
    est = make_pose(np.eye(3), np.array([[1.1 * i, 0.0, 0.0] for i in range(4)]))
    est[3, :3, :3] = so3_exp([0.0, 0.0, math.radians(10)])
    rpe = relative_pose_error(est, gt, delta=1)
    assert rpe['trans_mean'] == pytest.approx(0.1)
    assert rpe['trans_rmse'] == pytest.approx(0.1)
    assert rpe['rot_mean_deg'] == pytest.approx(10 / 3)
    assert rpe['rot_rmse_deg'] == pytest.approx(math.sqrt(100 / 3))
    with pytest.raises(GeometryError, match='got 4'):
        relative_pose_error(est, gt, delta=4)


def test_mean_relative_accuracy_by_hand():
    assert mean_relative_accuracy(3.0, 3.0) == 1.0
    # |err| / gt = 0.12 is below 1 - theta for theta = 0.50 .. 0.85 (8 of 10) -> 0.8
    assert mean_relative_accuracy(1.12, 1.0) == pytest.approx(0.8)
    assert mean_relative_accuracy(0.88, 1.0) == pytest.approx(0.8)
    # exactly 0.05 is not < 0.05 -> 9 of 10; exactly 0.5 is not < 0.5 -> 0
    assert mean_relative_accuracy(105.0, 100.0) == pytest.approx(0.9)
    assert mean_relative_accuracy(1.5, 1.0) == 0.0
    assert mean_relative_accuracy(10.0, 1.0) == 0.0
    assert mean_relative_accuracy(np.nan, 1.0) == 0.0
    # arrays: mean over items
    assert mean_relative_accuracy([1.0, 1.12], [1.0, 1.0]) == pytest.approx(0.9)
    # the official lmms-eval code: linspace(0.5, 0.95, 11) and <=: 0.12 <= 1 - theta for 9 of 11
    assert mean_relative_accuracy(1.12, 1.0, variant='lmms_eval') == pytest.approx(9 / 11)
    assert mean_relative_accuracy(1.5, 1.0, variant='lmms_eval') == pytest.approx(1 / 11)
    with pytest.raises(GeometryError, match='non-zero'):
        mean_relative_accuracy(1.0, 0.0)


@FAST
@given(st.floats(0.01, 100.0), st.floats(0.0, 0.6))
def test_mean_relative_accuracy_counts_thresholds(gt, relative_error):
    expected = sum(relative_error < 1 - theta for theta in [0.5 + 0.05 * k for k in range(10)]) / 10
    got = mean_relative_accuracy(gt * (1 + relative_error), gt)
    # away from the threshold boundaries the count is unambiguous
    if min(abs(relative_error - (1 - 0.5 - 0.05 * k)) for k in range(10)) > 1e-9:
        assert got == pytest.approx(expected)
