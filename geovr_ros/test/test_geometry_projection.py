"""Tests of geovr_ros.geometry.projection: depth to points and points to pixels."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geovr_ros.geometry import (ShapeError, depth_to_points, depth_to_world_points, invert_pose, make_pose,
                                matrix_from_quat_xyzw, pixel_centers, project_points, reproject_depth,
                                transform_points)

FAST = settings(max_examples=50, deadline=None)
K = np.array([[200.0, 0.0, 15.5], [0.0, 180.0, 11.5], [0.0, 0.0, 1.0]])


@st.composite
def poses(draw):
    q = draw(arrays(np.float64, 4, elements=st.floats(-1, 1)).filter(lambda q: np.linalg.norm(q) > 0.1))
    t = draw(arrays(np.float64, 3, elements=st.floats(-5, 5)))
    return make_pose(matrix_from_quat_xyzw(q), t)


depths = arrays(np.float64, (6, 8), elements=st.floats(0.05, 50.0))


def test_depth_to_points_reference_value():
    depth = np.full((24, 32), 2.0)
    points = depth_to_points(depth, K)
    # pixel (row 11, col 25): u = 25 -> x = 2 * (25 - 15.5) / 200 = 0.095; v = 11 -> y = 2 * (11 - 11.5) / 180
    np.testing.assert_allclose(points[11, 25], [0.095, -1.0 / 180.0, 2.0])


def test_invalid_depth_gives_nan_points():
    depth = np.array([[1.0, np.nan], [0.0, np.inf], [-1.0, 3.0]])
    points = depth_to_points(depth, K)
    valid = np.all(np.isfinite(points), axis=-1)
    np.testing.assert_array_equal(valid, [[True, False], [False, False], [False, True]])
    assert np.all(np.isnan(points[~valid]))


@FAST
@given(depths)
def test_projecting_points_gives_back_pixel_centres(depth):
    uv, z = project_points(depth_to_points(depth, K), K)
    np.testing.assert_allclose(uv, pixel_centers(6, 8), atol=1e-9)
    np.testing.assert_allclose(z, depth, rtol=1e-12)


def test_points_behind_camera_project_to_nan():
    uv, z = project_points(np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.1, 0.2, 1.0]]), K)
    assert np.all(np.isnan(uv[:2]))
    np.testing.assert_allclose(uv[2], [200 * 0.1 + 15.5, 180 * 0.2 + 11.5])
    np.testing.assert_array_equal(z, [-1.0, 0.0, 1.0])


@FAST
@given(poses(), arrays(np.float64, (5, 3), elements=st.floats(-10, 10)))
def test_transform_points_matches_homogeneous_product(T, points):
    homogeneous = np.concatenate([points, np.ones((5, 1))], axis=1) @ T.T
    np.testing.assert_allclose(transform_points(T, points), homogeneous[:, :3], atol=1e-9)
    np.testing.assert_allclose(transform_points(invert_pose(T), transform_points(T, points)), points, atol=1e-9)


def test_transform_points_batch_and_shape_errors():
    T = np.stack([np.eye(4), make_pose(np.eye(3), [0, 0, 1.0])])
    points = np.zeros((2, 4, 4, 3))
    out = transform_points(T, points)
    assert out.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(out[1, ..., 2], 1.0)
    np.testing.assert_array_equal(out[0], 0.0)
    with pytest.raises(ShapeError, match=r'\(3, 4, 4, 3\)'):
        transform_points(T, np.zeros((3, 4, 4, 3)))
    with pytest.raises(ShapeError, match='depth'):
        depth_to_points(np.ones(4), K)


@FAST
@given(depths, poses())
def test_world_points_round_trip(depth, T_world_cam):
    world = depth_to_world_points(depth, K, T_world_cam)
    back = transform_points(invert_pose(T_world_cam), world)
    np.testing.assert_allclose(back, depth_to_points(depth, K), atol=1e-8)


@FAST
@given(depths, poses())
def test_reproject_into_the_same_camera_is_identity(depth, T_world_cam):
    uv, z = reproject_depth(depth, K, T_world_cam, K, T_world_cam)
    np.testing.assert_allclose(uv, pixel_centers(6, 8), atol=1e-6)
    np.testing.assert_allclose(z, depth, rtol=1e-9)


def test_reproject_sideways_translation_by_hand():
    # destination camera 0.1 m to the right (+x): a point at depth 2 m shifts left by fx * 0.1 / 2 = 10 px
    depth = np.full((24, 32), 2.0)
    depth[0, 0] = np.nan
    T_world_dst = make_pose(np.eye(3), [0.1, 0.0, 0.0])
    uv, z = reproject_depth(depth, K, np.eye(4), K, T_world_dst)
    np.testing.assert_allclose(uv[5, 20], [20 - 10.0, 5.0])
    np.testing.assert_allclose(z[5, 20], 2.0)
    assert np.all(np.isnan(uv[0, 0])) and np.isnan(z[0, 0])


def test_depth_seen_from_the_same_camera_is_the_depth_and_keeps_the_nearest():
    from geovr_ros.geometry import depth_seen_from
    K = np.array([[50.0, 0, 16], [0, 50.0, 12], [0, 0, 1]])
    depth = np.full((24, 32), 2.0, np.float32)
    depth[5, 7] = np.nan
    same = depth_seen_from(depth, K, np.eye(4), K, (32, 24))
    np.testing.assert_allclose(same[np.isfinite(depth)], 2.0, rtol=1e-6)
    assert np.isnan(same[5, 7])                                # nothing lands where nothing was
    # a camera 9 cm to the left (points move 0.09 m right in it) sees the near plane (2 m) move
    # 2.25 px and the far one (4 m) 1.125 px: at the step the near points cover the far ones
    two = depth.copy()
    two[5, 7] = 2.0
    two[:, 16:] = 4.0
    moved = depth_seen_from(two, K, make_pose(np.eye(3), [0.09, 0.0, 0.0]), K, (32, 24))
    assert np.isnan(moved[:, :2]).all()                        # nothing lands left of the near plane
    assert moved[12, 17] == pytest.approx(2.0)                 # near and far land here: the near kept
    assert moved[12, 18] == pytest.approx(4.0) and np.isfinite(moved[:, 2:]).all()
