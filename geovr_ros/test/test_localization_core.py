"""Keyframe map, view overlap, windowed map -> odom alignment and the Localizer."""
import numpy as np
import pytest

from geovr_ros.geometry import invert_pose, make_pose, relative_pose
from geovr_ros.localization import (
    KeyframeMap, Localizer, LocalizerConfig, MapFileError, WindowedMapOdomEstimator,
    view_overlap)


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
IMAGE = np.zeros((96, 128, 3), np.uint8)


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_view_overlap_falls_as_the_camera_turns_away():
    depth = np.full((96, 128), 3.0)
    same = view_overlap(depth, K, np.eye(4), K, (128, 96))
    half = view_overlap(depth, K, make_pose(rot_y(0.28), [0, 0, 0]), K, (128, 96))
    away = view_overlap(depth, K, make_pose(rot_y(np.pi / 2), [0, 0, 0]), K, (128, 96))
    assert same == pytest.approx(1.0)
    # Turning by 0.28 rad keeps the columns whose ray angle atan((u - cx) / f) stays within
    # the half field of view atan(64 / 100) after the turn: u < cx + f tan(0.569 - 0.28).
    kept_columns = np.sum(np.arange(128) < 63.5 + 100 * np.tan(np.arctan(64 / 100) - 0.28))
    assert half == pytest.approx(kept_columns / 128, abs=0.03)
    assert away == 0.0
    assert view_overlap(np.full((96, 128), np.nan), K, np.eye(4), K, (128, 96)) == 0.0


def test_map_search_save_and_load(tmp_path):
    kmap = KeyframeMap(max_keyframes=3)
    for i, d in enumerate([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]):
        kmap.add(float(i), make_pose(np.eye(3), [i, 0, 0]), d, IMAGE, K)
    assert len(kmap) == 3 and [k.keyframe_id for k in kmap] == [1, 2, 3]  # oldest evicted
    best, similarity = kmap.best_match([0, 0.1, 1])
    assert best.keyframe_id == 2 and similarity > 0.99
    assert kmap.best_match([0, 0, 1], exclude_newest=2)[0].keyframe_id == 1
    assert [k.keyframe_id for k, _ in kmap.best_matches([0, 0.1, 1], 2)] == [2, 1]   # most similar first
    assert kmap.best_matches([0, 0.1, 1], 0) == [] and len(kmap.best_matches([1, 0, 0], 9)) == 3
    path = tmp_path / 'map.npz'
    kmap.save(path)
    loaded = KeyframeMap.load(path)
    assert [k.keyframe_id for k in loaded] == [1, 2, 3]
    assert np.allclose(loaded.last.T_map_cam, kmap.last.T_map_cam)
    assert loaded.add(9.0, np.eye(4), [1, 0, 0], IMAGE, K).keyframe_id == 4
    with pytest.raises(MapFileError, match='does not exist'):
        KeyframeMap.load(tmp_path / 'none.npz')
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(MapFileError, match='unreadable'):
        KeyframeMap.load(tmp_path / 'bad.npz')
    with pytest.raises(ValueError, match='non-zero'):
        kmap.add(1.0, np.eye(4), [0, 0, 0], IMAGE, K)
    # a corrected map moves a keyframe (a new object at the new pose); an evicted one is gone
    moved = kmap.move({2: make_pose(np.eye(3), [5, 0, 0]), 0: np.eye(4)})
    assert list(moved) == [2] and moved[2].T_map_cam[0, 3] == 5.0
    assert [k.T_map_cam[0, 3] for k in kmap] == [1.0, 5.0, 3.0]


def test_window_alignment_recovers_map_to_odom_and_outvotes_one_bad_match():
    rng = np.random.default_rng(0)
    T_map_odom = make_pose(rot_y(0.4), [2.0, -1.0, 0.5])
    estimator = WindowedMapOdomEstimator(window=8)
    for i in range(8):
        T_odom_cam = make_pose(rot_y(0.1 * i), rng.normal(size=3))
        noisy = T_map_odom @ T_odom_cam
        noisy[:3, 3] += rng.normal(scale=0.01, size=3)
        estimate = estimator.add(T_odom_cam, noisy)
    assert np.allclose(estimate[:3, 3], T_map_odom[:3, 3], atol=0.02)
    assert np.allclose(estimate[:3, :3], T_map_odom[:3, :3], atol=0.02)
    T_odom_cam = make_pose(np.eye(3), [0, 0, 0])
    outlier = T_map_odom @ T_odom_cam
    outlier[:3, 3] += [1.0, 0, 0]
    after = estimator.add(T_odom_cam, outlier)
    assert np.linalg.norm(after[:3, 3] - T_map_odom[:3, 3]) < 0.2   # one bad of 8: damped
    assert estimator.residual() > 0.05


def test_localizer_adds_keyframes_by_motion_and_relocalizes_in_a_loaded_map(tmp_path):
    config = LocalizerConfig(keyframe_translation=0.5, keyframe_rotation=0.3,
                             match_threshold=0.9, exclude_newest=0)
    mapper = Localizer(config)
    assert mapper.mapping and np.allclose(mapper.T_map_odom, np.eye(4))
    poses = [make_pose(np.eye(3), [0.2 * i, 0, 0]) for i in range(12)]
    descriptors = np.eye(12)
    for i, T in enumerate(poses):
        if mapper.should_add_keyframe(T):
            mapper.add_keyframe(float(i), T, descriptors[i], IMAGE, K)
    assert [k.stamp for k in mapper.map] == [0.0, 3.0, 6.0, 9.0]
    placed = mapper.add_keyframe(12.0, poses[-1], descriptors[0], IMAGE, K, T_map_cam=poses[0])   # the pose graph's
    assert np.allclose(placed.T_map_cam, poses[0])
    # the motion from the last keyframe measured in the same map as the keyframes were placed
    assert not mapper.should_add_keyframe(poses[-1], T_map_cam=poses[0])
    assert mapper.should_add_keyframe(poses[0], T_map_cam=poses[-1])
    mapper.map.move({placed.keyframe_id: poses[-1]})
    mapper.map.save(tmp_path / 'm.npz')

    # A new session: its odom starts elsewhere in the same map.
    T_map_odom = make_pose(rot_y(0.3), [1.0, 0.0, 2.0])
    localizer = Localizer(config, KeyframeMap.load(tmp_path / 'm.npz'))
    assert not localizer.localized and localizer.map_pose(np.eye(4)) is None
    assert localizer.find_match(unit([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])) is None
    T_odom_cam = make_pose(np.eye(3), [0.3, 0, 0])
    keyframe, similarity = localizer.find_match(unit(descriptors[6] + 0.1 * descriptors[5]))
    assert keyframe.stamp == 6.0 and similarity > 0.9
    assert [k.stamp for k, _ in localizer.find_matches(unit(descriptors[6] + 0.1 * descriptors[5]), 3)] == [6.0]   # above the threshold only
    T_map_cam_true = T_map_odom @ T_odom_cam
    T_kf_cur = relative_pose(keyframe.T_map_cam, T_map_cam_true)   # what PnP measures
    T_map_cam = localizer.add_match(T_odom_cam, keyframe, T_kf_cur)
    assert np.allclose(T_map_cam, T_map_cam_true)
    assert np.allclose(localizer.T_map_odom, T_map_odom)
    # The map pose's covariance: the place pose's, in map axes, then odometry's drift.
    stated = localizer.covariance(T_odom_cam)
    offset = keyframe.T_map_cam[:3, :3] @ T_kf_cur[:3, 3]        # the camera from the keyframe, map axes
    along = offset / np.linalg.norm(offset)
    assert along @ stated[:3, :3] @ along == pytest.approx(
        config.depth_scale_sigma ** 2 * offset @ offset + config.floor_m ** 2)
    across = np.cross(along, [0.0, 1.0, 0.0])
    across /= np.linalg.norm(across)
    assert across @ stated[:3, :3] @ across == pytest.approx(config.floor_m ** 2)
    later = T_odom_cam @ make_pose(np.eye(3), [0.0, 0.0, 2.0])   # 2 m on
    grown = localizer.covariance(later)
    assert np.trace(grown[:3, :3]) - np.trace(stated[:3, :3]) == pytest.approx(3 * (config.drift_per_metre * 2.0) ** 2)
    reprojection = np.diag([1e-4] * 6)                            # PnP's, keyframe axes
    localizer.add_match(T_odom_cam, keyframe, T_kf_cur, reprojection)
    with_pnp = localizer.covariance(T_odom_cam)
    assert np.trace(with_pnp) - np.trace(stated) == pytest.approx(np.trace(reprojection))
    assert np.trace(localizer.covariance(later)[:3, :3]) > np.trace(grown[:3, :3]) + 1e-4   # its rotation swings the path
    localizer.odometry_restarted()
    assert not localizer.localized
    assert np.allclose(invert_pose(invert_pose(T_map_odom)), T_map_odom)


def test_a_recognised_place_is_placed_by_pnp_on_the_keyframe_depth():
    """The map keyframe's features lifted with its depth and the current frame matched to them
    give the metric relative pose; another place, or a blank view, is no match."""
    cv2 = pytest.importorskip('cv2')
    from geovr_ros.geometry import invert_pose, make_pose, rotation_angle, so3_exp
    from geovr_ros.localization.place import locate, place_features, place_view
    from test_tracking_core import K as PLANE_K, _render, _texture

    def rgb(gray):
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    texture = _texture(4)
    T_world_kf = make_pose(np.eye(3), np.zeros(3))
    T_world_cur = make_pose(so3_exp(np.array([0.03, -0.08, 0.02])), np.array([0.12, -0.05, 0.2]))
    image_kf, depth_kf = _render(texture, T_world_kf)
    image_cur, _ = _render(texture, T_world_cur)
    view = place_view(rgb(image_kf), PLANE_K, depth_kf, PLANE_K)
    match = locate(view, place_features(rgb(image_cur)), PLANE_K)
    assert match is not None and match.inliers >= 40
    true = invert_pose(T_world_kf) @ T_world_cur
    assert np.linalg.norm(match.T_kf_cur[:3, 3] - true[:3, 3]) < 0.01
    assert np.degrees(rotation_angle(match.T_kf_cur[:3, :3].T @ true[:3, :3])) < 0.5
    elsewhere, _ = _render(_texture(5), T_world_cur)
    assert locate(view, place_features(rgb(elsewhere)), PLANE_K) is None
    assert locate(view, place_features(np.full_like(rgb(image_cur), 128)), PLANE_K) is None
    blank = place_view(np.full_like(rgb(image_kf), 128), PLANE_K, depth_kf, PLANE_K)
    assert len(blank.features) == 0 and locate(blank, place_features(rgb(image_cur)), PLANE_K) is None


@pytest.mark.parametrize('field', ['depth_scale_sigma', 'drift_per_metre', 'floor_m'])
def test_the_covariance_settings_refuse_negative_or_missing_numbers(field):
    for value in (-0.1, float('nan')):
        with pytest.raises(ValueError, match=field):
            LocalizerConfig(**{field: value})
