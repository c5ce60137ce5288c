"""Tests of geovr_ros.geometry.rays: pixel centres, ray directions and Plücker ray maps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geovr_ros.geometry import (InvalidIntrinsicsError, invert_pose, make_pose, matrix_from_quat_xyzw, pixel_centers, plucker_rays,
                                ray_directions)

FAST = settings(max_examples=50, deadline=None)


@st.composite
def cameras(draw):
    fx, fy = draw(st.floats(20.0, 500.0)), draw(st.floats(20.0, 500.0))
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    cx, cy = draw(st.floats(-5.0, 20.0)), draw(st.floats(-5.0, 20.0))
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]), height, width


@st.composite
def poses(draw):
    q = draw(arrays(np.float64, 4, elements=st.floats(-1, 1)).filter(lambda q: np.linalg.norm(q) > 0.1))
    t = draw(arrays(np.float64, 3, elements=st.floats(-5, 5)))
    return make_pose(matrix_from_quat_xyzw(q), t)


def test_pixel_centres_are_integer_coordinates():
    uv = pixel_centers(2, 3)
    assert uv.shape == (2, 3, 2) and uv.dtype == np.float64
    assert tuple(uv[1, 2]) == (2.0, 1.0)  # row 1, column 2 -> (u, v) = (2, 1)
    assert tuple(uv[0, 0]) == (0.0, 0.0)


def test_principal_point_ray_is_the_optical_axis():
    K = np.array([[100.0, 0, 2.0], [0, 100.0, 1.0], [0, 0, 1]])
    rays = ray_directions(K, 3, 5)
    np.testing.assert_allclose(rays[1, 2], [0.0, 0.0, 1.0])
    # pixel (row 0, col 4) -> (u, v) = (4, 0): K^-1 [4, 0, 1] = (0.02, -0.01, 1)
    expected = np.array([0.02, -0.01, 1.0])
    np.testing.assert_allclose(rays[0, 4], expected / np.linalg.norm(expected))


@FAST
@given(cameras())
def test_ray_directions_equal_normalised_k_inverse(camera):
    K, height, width = camera
    rays = ray_directions(K, height, width)
    assert rays.shape == (height, width, 3)
    K_inv = np.linalg.inv(K)
    for i in range(height):
        for j in range(width):
            reference = K_inv @ np.array([j, i, 1.0])
            np.testing.assert_allclose(rays[i, j], reference / np.linalg.norm(reference), atol=1e-12)


@FAST
@given(cameras(), poses(), st.floats(-10, 10))
def test_plucker_moment_properties(camera, T_world_cam, along):
    K, height, width = camera
    rays = plucker_rays(K, height, width, T_world_cam)
    assert rays.shape == (height, width, 6)
    d, m = rays[..., :3], rays[..., 3:]
    np.testing.assert_allclose(np.linalg.norm(d, axis=-1), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(d * m, axis=-1), 0.0, atol=1e-9)
    # d is the camera ray rotated into the world
    np.testing.assert_allclose(d, ray_directions(K, height, width) @ T_world_cam[:3, :3].T, atol=1e-12)
    # moving the origin along a ray leaves its moment unchanged
    o = T_world_cam[:3, 3]
    np.testing.assert_allclose(np.cross(o + along * d, d), m, atol=1e-9)


@FAST
@given(cameras(), poses())
def test_plucker_matches_notes_formula_with_world_to_camera(camera, T_world_cam):
    # Notes: world-to-camera [R|t]: o = -R^T t, d = normalize(R^T K^-1 [u, v, 1]), m = o x d
    K, height, width = camera
    T_cam_world = invert_pose(T_world_cam)
    R, t = T_cam_world[:3, :3], T_cam_world[:3, 3]
    o = -R.T @ t
    rays = plucker_rays(K, height, width, T_world_cam)
    i, j = height - 1, width // 2
    d = R.T @ np.linalg.inv(K) @ np.array([j, i, 1.0])
    d /= np.linalg.norm(d)
    np.testing.assert_allclose(rays[i, j], np.concatenate([d, np.cross(o, d)]), atol=1e-9)


def test_plucker_in_camera_frame_and_batch():
    K = np.array([[50.0, 0, 3.5], [0, 50.0, 2.5], [0, 0, 1]])
    rays = plucker_rays(K, 6, 8)
    np.testing.assert_array_equal(rays[..., 3:], 0.0)
    np.testing.assert_allclose(rays[..., :3], ray_directions(K, 6, 8))
    T = np.stack([np.eye(4), make_pose(np.eye(3), [1.0, 0.0, 0.0])])
    batch = plucker_rays(np.stack([K, K]), 6, 8, T)
    assert batch.shape == (2, 6, 8, 6)
    np.testing.assert_allclose(batch[1], plucker_rays(K, 6, 8, T[1]))


def test_bad_sizes_and_singular_k_raise():
    with pytest.raises(InvalidIntrinsicsError, match='singular'):
        ray_directions(np.diag([0.0, 100.0, 1.0]), 2, 2)
    with pytest.raises(ValueError, match='height must be a positive integer, got 0'):
        pixel_centers(0, 4)
