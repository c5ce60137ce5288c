"""The sliding window's bundle adjustment (pure numpy) and the landmarks it runs on: synthetic
scenes whose poses and depths are known, and the tracker on a textured plane whose depth is
given with a wrong shape."""

import numpy as np
import pytest

from geovr_ros.geometry import absolute_trajectory_error, invert_pose, so3_exp
from geovr_ros.tracking import FeatureSet, KeyframeTracker, TrackerConfig
from geovr_ros.tracking.bundle import BundleConfig, WindowBundle, adjust_window
from geovr_ros.tracking.window import KeyframeWindow, carry_landmarks
from test_tracking_core import K as PLANE_K, _render, _texture, _trajectory

K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])


def _scene(seed=0, frames=6, points=300, pixel_noise=0.3, shape_error=0.15, depth_noise=0.05, views=3):
    """A camera sliding and turning past points 2-6 m away: (true poses (F, 4, 4), the problem
    with the poses disturbed by a few cm and the depths given with a smooth shape error plus
    noise, true anchor depths (L,))."""
    rng = np.random.default_rng(seed)
    T = np.tile(np.eye(4), (frames, 1, 1))
    T[:, 0, 3] = np.arange(frames) * 0.15
    T[:, :3, :3] = so3_exp(np.stack([np.zeros(frames), np.linspace(0, 0.2, frames), np.zeros(frames)], 1))
    world = np.stack([rng.uniform(-2, 3, points), rng.uniform(-1.5, 1.5, points), rng.uniform(2, 6, points)], 1)
    anchor = rng.integers(0, frames - 1, points)
    bearing, depth = np.zeros((points, 3)), np.zeros(points)
    frame, point, pixels = [], [], []
    for l in range(points):
        for f in range(anchor[l], min(frames, anchor[l] + views + 1)):
            cam = invert_pose(T[f])[:3, :3] @ world[l] + invert_pose(T[f])[:3, 3]
            if f == anchor[l]:
                bearing[l], depth[l] = cam / cam[2], cam[2]
            else:
                frame.append(f)
                point.append(l)
                pixels.append((K @ cam)[:2] / cam[2] + rng.normal(0, pixel_noise, 2))
    prior = depth * np.exp(shape_error * bearing[:, 0] + rng.normal(0, depth_noise, points))
    start = T.copy()
    for f in range(1, frames):
        start[f, :3, 3] += rng.normal(0, 0.03, 3)
        start[f, :3, :3] = so3_exp(rng.normal(0, 0.01, 3)) @ start[f, :3, :3]
    fixed = np.zeros(frames, bool)
    fixed[0] = True
    problem = WindowBundle(start, fixed, np.tile(K, (frames, 1, 1)), anchor, bearing, prior.copy(), prior,
                           np.array(frame), np.array(point), np.array(pixels))
    return T, problem, depth


def _position_errors(T_est, T_true):
    return np.linalg.norm(T_est[:, :3, 3] - T_true[:, :3, 3], axis=1)


def test_the_views_correct_poses_and_depths_that_one_depth_map_got_wrong():
    T, problem, depth = _scene()
    result = adjust_window(problem)
    before, after = _position_errors(problem.T_world_cam, T), _position_errors(result.T_world_cam, T)
    assert after.max() < 0.02 and after.mean() < 0.3 * before[1:].mean()
    rel_before = np.mean(np.abs(problem.depth - depth) / depth)
    rel_after = np.mean(np.abs(result.depth - depth) / depth)
    assert rel_after < 0.4 * rel_before
    assert result.rms_px_after < 0.6 < result.rms_px_before   # 0.3 px of noise per axis
    np.testing.assert_array_equal(result.T_world_cam[0], problem.T_world_cam[0])   # the gauge stays
    assert not result.outliers.any()


def test_the_depth_prior_sets_the_metric_scale():
    """Reprojections alone cannot tell a scene from one twice its size: the prior's scale wins."""
    T, problem, depth = _scene(shape_error=0.0, depth_noise=0.0, pixel_noise=0.0)
    start = problem.T_world_cam.copy()
    start[1:, :3, 3] = T[1:, :3, 3] * 1.2           # poses at the wrong scale, depths at the right one
    result = adjust_window(WindowBundle(**{**problem.__dict__, 'T_world_cam': start}), BundleConfig(iterations=10))
    assert _position_errors(result.T_world_cam, T).max() < 0.005
    np.testing.assert_allclose(result.depth, depth, rtol=0.01)


def test_wrong_correspondences_are_down_weighted_and_reported():
    T, problem, _ = _scene(seed=1)
    rng = np.random.default_rng(5)
    wrong = rng.choice(len(problem.frame), 30, replace=False)
    pixels = problem.pixels.copy()
    pixels[wrong] += rng.uniform(20, 40, (30, 2)) * rng.choice([-1, 1], (30, 2))
    result = adjust_window(WindowBundle(**{**problem.__dict__, 'pixels': pixels}))
    assert _position_errors(result.T_world_cam, T).max() < 0.03
    assert set(np.flatnonzero(result.outliers)) >= set(wrong)
    assert result.outliers.sum() <= len(wrong) + 5


def test_fixed_poses_stay_and_a_problem_without_a_gauge_is_refused():
    T, problem, _ = _scene()
    fixed = problem.fixed.copy()
    fixed[3] = True
    result = adjust_window(WindowBundle(**{**problem.__dict__, 'fixed': fixed}))
    np.testing.assert_array_equal(result.T_world_cam[3], problem.T_world_cam[3])
    with pytest.raises(ValueError, match='at least one pose must be fixed'):
        WindowBundle(**{**problem.__dict__, 'fixed': np.zeros_like(fixed)})
    with pytest.raises(ValueError, match="anchor keyframe"):
        WindowBundle(**{**problem.__dict__, 'frame': problem.anchor[problem.point]})
    with pytest.raises(ValueError, match='pixels must have shape'):
        WindowBundle(**{**problem.__dict__, 'pixels': problem.pixels[:, :1]})
    with pytest.raises(ValueError, match='positive'):
        WindowBundle(**{**problem.__dict__, 'prior_depth': -problem.prior_depth})
    with pytest.raises(ValueError, match='iterations'):
        BundleConfig(iterations=0)


def _features(pixels, first_descriptor=0):
    n = len(pixels)
    descriptors = (np.arange(n)[:, None] + first_descriptor + np.zeros((1, 32))).astype(np.uint8)
    return FeatureSet(np.asarray(pixels, float), descriptors, np.zeros(n, np.int64))


def test_carried_points_come_first_and_push_out_the_image_features_on_them():
    carried = _features([[10.0, 10.0], [50.2, 40.7]], first_descriptor=100)
    own = _features([[10.5, 10.0], [200.0, 100.0], [50.0, 41.0], [300.0, 5.0]])
    features, ids = carry_landmarks(own, carried, np.array([7, 3]), radius_px=1.0, first_new_id=20)
    np.testing.assert_array_equal(ids, [7, 3, 20, 21])
    np.testing.assert_array_equal(features.keypoints, [[10.0, 10.0], [50.2, 40.7], [200.0, 100.0], [300.0, 5.0]])
    np.testing.assert_array_equal(features.descriptors[:2, 0], [100, 101])   # the carried points' own descriptors
    features, ids = carry_landmarks(own, _features(np.zeros((0, 2))), np.zeros(0, np.int64), 1.0, 5)
    np.testing.assert_array_equal(ids, [5, 6, 7, 8])


def test_a_window_needs_a_gauge_inside_it():
    with pytest.raises(ValueError, match='window'):
        KeyframeWindow(size=1)
    with pytest.raises(ValueError, match='window'):
        KeyframeWindow(size=4, fixed=4)
    with pytest.raises(ValueError, match='window_keyframes'):
        TrackerConfig(window_keyframes=-1)
    with pytest.raises(ValueError, match='window_keyframes'):
        TrackerConfig(window_keyframes=3, window_fixed=3)
    assert KeyframeTracker(TrackerConfig(window_keyframes=1)).window is None     # one keyframe: nothing to adjust


@pytest.fixture(scope='module')
def plane_sequence():
    tex, poses = _texture(), _trajectory()
    frames = [_render(tex, T) for T in poses]
    return [f[0] for f in frames], [f[1] for f in frames], poses


def test_the_window_tracks_through_depth_of_the_wrong_shape_better_than_the_keyframes_alone(plane_sequence):
    """A plane whose depth the 'model' tilts (30 % nearer on the left, 30 % further on the right):
    the points placed by the views' parallax keep the path closer to the truth."""
    images, depths, poses = plane_sequence
    h, w = depths[0].shape
    tilt = (1.0 + 0.3 * (np.arange(w) - w / 2) / (w / 2))[None, :].astype(np.float32)
    errors = {}
    for window in (0, 6):
        tracker = KeyframeTracker(TrackerConfig(window_keyframes=window, keyframe_translation_m=0.1))
        steps = [tracker.track(image, PLANE_K, depth * tilt) for image, depth in zip(images, depths)]
        assert all(s.status != 'fallback' for s in steps)
        errors[window] = absolute_trajectory_error(np.stack([s.T_odom_cam for s in steps]), poses, 'sim3')['rmse']
    assert tracker._window.adjustments >= 3 and tracker._window.skipped == 0
    assert errors[6] < 0.7 * errors[0], errors


def test_odom_moves_on_without_a_jump_when_the_window_moves_its_keyframes(plane_sequence):
    """REP 105: the adjustment changes the window's poses, never the published path's past; each
    published step is the tracked one, corrected by at most what the adjustment moved."""
    images, depths, poses = plane_sequence
    h, w = depths[0].shape
    tilt = (1.0 + 0.3 * (np.arange(w) - w / 2) / (w / 2))[None, :].astype(np.float32)
    tracker = KeyframeTracker(TrackerConfig(window_keyframes=6, keyframe_translation_m=0.1))
    published = []
    for image, depth in zip(images, depths):
        step = tracker.track(image, PLANE_K, depth * tilt)
        published.append(step.T_odom_cam)
        if step.keyframe is not None:
            np.testing.assert_array_equal(step.keyframe.T_odom_kf, step.T_odom_cam)   # the keyframe is where odom put it
    steps = np.linalg.norm(np.diff(np.stack(published)[:, :3, 3], axis=0), axis=1)
    true_steps = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
    assert np.abs(steps - true_steps).max() < 0.01                # a 2.3 cm step is never off by a centimetre


def test_a_turn_on_the_spot_leaves_the_window_unadjusted():
    tex = _texture()
    turns = _trajectory()
    turns[:, :3, 3] = 0.0                                          # the same turns, no translation
    tracker = KeyframeTracker(TrackerConfig(window_keyframes=4, keyframe_rotation_rad=0.05))
    for T in turns:
        image, depth = _render(tex, T)
        tracker.track(image, PLANE_K, depth)
    assert tracker.keyframes_created >= 4
    assert tracker._window.adjustments == 0 and tracker._window.skipped >= 2
