"""Tests of geovr_ros.geometry.intrinsics: CameraInfo conversions and K under image operations."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geovr_ros.geometry import (InvalidIntrinsicsError, ShapeError, crop_intrinsics, fov_from_intrinsics,
                                intrinsics_from_fov, k_from_camera_info, k_to_camera_info, p_from_k,
                                resize_intrinsics, same_camera_lookup, scale_intrinsics, shift_principal_point, validate_intrinsics,
                                zoom_intrinsics)

FAST = settings(max_examples=60, deadline=None)

K_640 = np.array([[525.0, 0.0, 319.5], [0.0, 520.0, 239.5], [0.0, 0.0, 1.0]])

focal = st.floats(50.0, 2000.0)
centre = st.floats(-100.0, 800.0)
scale = st.floats(0.1, 8.0)


@st.composite
def camera_matrices(draw):
    return np.array([[draw(focal), 0.0, draw(centre)], [0.0, draw(focal), draw(centre)], [0.0, 0.0, 1.0]])


def test_camera_info_round_trip():
    k = [525.0, 0.0, 319.5, 0.0, 520.0, 239.5, 0.0, 0.0, 1.0]
    K = k_from_camera_info(k)
    assert K.shape == (3, 3) and K.dtype == np.float64
    assert K[0, 0] == 525.0 and K[0, 2] == 319.5 and K[1, 1] == 520.0 and K[1, 2] == 239.5
    assert k_to_camera_info(K) == k
    assert all(type(x) is float for x in k_to_camera_info(K))


def test_camera_info_rejects_wrong_length():
    with pytest.raises(ShapeError, match='9 values, got 8'):
        k_from_camera_info([1.0] * 8)


def test_p_from_k_layout():
    P = np.array(p_from_k(K_640, tx=-30.0)).reshape(3, 4)
    np.testing.assert_array_equal(P[:, :3], K_640)
    np.testing.assert_array_equal(P[:, 3], [-30.0, 0.0, 0.0])
    assert len(p_from_k(K_640)) == 12


def test_resize_reference_values_by_hand():
    # 640x480 -> 320x240: s = 0.5. fx' = 262.5, cx' = 0.5 * (319.5 + 0.5) - 0.5 = 159.5.
    K = resize_intrinsics(K_640, (640, 480), (320, 240))
    expected = np.array([[262.5, 0.0, 159.5], [0.0, 260.0, 119.5], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(K, expected, rtol=0, atol=1e-12)
    # anisotropic: 640x480 -> 1280x240: sx = 2, sy = 0.5; cx' = 2 * 320 - 0.5 = 639.5; cy' = 0.5 * 100.5 - 0.5 = 49.75
    K2 = resize_intrinsics(np.array([[500.0, 0, 319.5], [0, 500.0, 100.0], [0, 0, 1]]), (640, 480), (1280, 240))
    np.testing.assert_allclose(K2, [[1000.0, 0, 639.5], [0, 250.0, 49.75], [0, 0, 1]], atol=1e-12)


def test_resize_maps_image_corners_to_corners():
    # The image spans [-0.5, W - 0.5]: the left edge of pixel 0 and right edge of the last pixel stay the edges.
    K = resize_intrinsics(K_640, (640, 480), (160, 120))
    for x in (-1.0, 0.3):
        u_src = K_640[0, 0] * x + K_640[0, 2]
        u_dst = K[0, 0] * x + K[0, 2]
        assert u_dst == pytest.approx((u_src + 0.5) * 160 / 640 - 0.5)


@FAST
@given(camera_matrices(), scale, scale)
def test_scale_then_undo_is_identity(K, sx, sy):
    back = scale_intrinsics(scale_intrinsics(K, sx, sy), 1 / sx, 1 / sy)
    np.testing.assert_allclose(back, K, rtol=1e-9, atol=1e-9)


@FAST
@given(camera_matrices(), st.integers(16, 2000), st.integers(16, 2000), st.integers(16, 2000), st.integers(16, 2000))
def test_resize_then_undo_is_identity(K, w0, h0, w1, h1):
    back = resize_intrinsics(resize_intrinsics(K, (w0, h0), (w1, h1)), (w1, h1), (w0, h0))
    np.testing.assert_allclose(back, K, rtol=1e-9, atol=1e-8)


@FAST
@given(camera_matrices(), st.floats(-500, 500), st.floats(-500, 500))
def test_crop_and_shift_are_inverse(K, x0, y0):
    cropped = crop_intrinsics(K, x0, y0)
    np.testing.assert_allclose(cropped[:2, 2], K[:2, 2] - [x0, y0], atol=1e-9)
    np.testing.assert_array_equal(cropped[[0, 1], [0, 1]], K[[0, 1], [0, 1]])
    np.testing.assert_allclose(shift_principal_point(cropped, x0, y0), K, atol=1e-9)


@FAST
@given(camera_matrices(), st.floats(0.25, 4.0), st.integers(16, 2000), st.integers(16, 2000))
def test_zoom_formula_and_inverse(K, z, width, height):
    zoomed = zoom_intrinsics(K, z, (width, height))
    c0 = np.array([width / 2 - 0.5, height / 2 - 0.5])
    np.testing.assert_allclose(zoomed[[0, 1], [0, 1]], z * K[[0, 1], [0, 1]], rtol=1e-12)
    np.testing.assert_allclose(zoomed[:2, 2], z * (K[:2, 2] - c0) + c0, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(zoom_intrinsics(zoomed, 1 / z, (width, height)), K, rtol=1e-9, atol=1e-8)


def test_zoom_keeps_centred_principal_point():
    K = zoom_intrinsics(K_640, 2.0, (640, 480))
    np.testing.assert_allclose(K, [[1050.0, 0, 319.5], [0, 1040.0, 239.5], [0, 0, 1]])


def test_batched_update():
    batch = np.stack([K_640, 2 * K_640])
    batch[1, 2] = [0, 0, 1]
    out = scale_intrinsics(batch, 0.5, 0.25)
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out[1], scale_intrinsics(batch[1], 0.5, 0.25))


def test_validate_accepts_a_good_camera():
    validate_intrinsics(K_640, 640, 480)


@pytest.mark.parametrize('K, width, height, message', [
    (np.where(np.eye(3, dtype=bool), np.nan, K_640), 640, 480, 'finite'),
    (np.diag([-1.0, 500.0, 1.0]), 640, 480, 'fx=-1.0'),
    (np.diag([500.0, 0.0, 1.0]), 640, 480, 'fy=0.0'),
    (np.array([[500.0, 2.0, 320.0], [0, 500.0, 240.0], [0, 0, 1]]), 640, 480, 'skew'),
    (np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 2]]), 640, 480, 'laid out'),
    (np.array([[500.0, 0, 3000.0], [0, 500.0, 240.0], [0, 0, 1]]), 640, 480, r'\(3000.0, 240.0\)'),
    (np.array([[500.0, 0, 320.0], [0, 500.0, -500.0], [0, 0, 1]]), 640, 480, 'principal point'),
    (K_640, 0, 480, 'width must be a positive integer, got 0'),
    (K_640, 640, -2, 'height must be a positive integer, got -2'),
    (np.eye(2), 640, 480, r'\(2, 2\)'),
])
def test_validate_rejects_with_the_offending_value(K, width, height, message):
    with pytest.raises(InvalidIntrinsicsError, match=message):
        validate_intrinsics(K, width, height)


def test_fov_reference_values():
    # fx = 320 on a 640-wide image centred: hfov = 2 atan(1) = 90 degrees.
    K = np.array([[320.0, 0, 319.5], [0, 240.0 / math.tan(math.radians(30)), 239.5], [0, 0, 1]])
    hfov, vfov = fov_from_intrinsics(K, (640, 480))
    assert hfov == pytest.approx(math.pi / 2)
    assert vfov == pytest.approx(math.radians(60))


@FAST
@given(st.floats(0.1, 3.0), st.floats(0.1, 3.0), st.integers(8, 4000), st.integers(8, 4000))
def test_fov_round_trip(hfov, vfov, width, height):
    K = intrinsics_from_fov(hfov, (width, height), vfov=vfov)
    assert K[0, 2] == width / 2 - 0.5 and K[1, 2] == height / 2 - 0.5
    got = fov_from_intrinsics(K, (width, height))
    assert got == pytest.approx((hfov, vfov), rel=1e-9)


def test_intrinsics_from_fov_square_pixels_and_errors():
    K = intrinsics_from_fov(math.pi / 2, (640, 480))
    assert K[0, 0] == pytest.approx(320.0) and K[1, 1] == K[0, 0]
    with pytest.raises(InvalidIntrinsicsError, match='hfov'):
        intrinsics_from_fov(4.0, (640, 480))
    with pytest.raises(ShapeError, match='width'):
        resize_intrinsics(K_640, (0, 480), (320, 240))
    with pytest.raises(InvalidIntrinsicsError, match='scale_x'):
        scale_intrinsics(K_640, -1.0, 1.0)


def test_resized_k_predicts_where_a_point_lands_in_a_block_averaged_image():
    # Independent of the formula: draw a blob around the projection of a 3D point in a 64x48
    # image (pixel (i, j) sampled at (u, v) = (j, i)), shrink it by averaging 2x2 blocks, and find
    # the blob's centroid in the small image; resize_intrinsics must project the point there.
    from geovr_ros.geometry import pixel_centers, project_points

    K = np.array([[60.0, 0.0, 31.5], [0.0, 55.0, 23.5], [0.0, 0.0, 1.0]])
    point = np.array([0.13, -0.07, 1.0])
    (u, v), _ = project_points(point, K)
    uv = pixel_centers(48, 64)
    image = np.exp(-((uv[..., 0] - u) ** 2 + (uv[..., 1] - v) ** 2) / (2 * 3.0 ** 2))
    small = image.reshape(24, 2, 32, 2).mean(axis=(1, 3))
    small_uv = pixel_centers(24, 32)
    centroid = (small[..., None] * small_uv).sum(axis=(0, 1)) / small.sum()
    expected, _ = project_points(point, resize_intrinsics(K, (64, 48), (32, 24)))
    np.testing.assert_allclose(centroid, expected, atol=1e-3)


def test_same_camera_lookup_finds_each_pixel_of_a_resized_and_cut_image():
    """A 540x360 camera cut to 480x360 and resized to 256x192: each camera pixel finds the
    model pixel seeing its ray, and the cut sides find none."""
    K = np.array([[500.0, 0, 269.5], [0, 500.0, 179.5], [0, 0, 1]])
    K_model = resize_intrinsics(crop_intrinsics(K, 30.0, 0.0), (480, 360), (256, 192))
    rows, cols = same_camera_lookup(K_model, K, (540, 360), (256, 192))
    assert rows.shape == (360,) and cols.shape == (540,)
    assert (rows >= 0).all() and rows.max() == 191
    assert (cols[:29] == -1).all() and (cols[-29:] == -1).all() and (cols[31:-31] >= 0).all()
    u = np.arange(540)[cols >= 0]
    back = (cols[cols >= 0] - K_model[0, 2]) * K[0, 0] / K_model[0, 0] + K[0, 2]  # model pixel -> camera
    assert np.abs(back - u).max() <= 0.5 * K[0, 0] / K_model[0, 0] + 1e-9
    same_rows, same_cols = same_camera_lookup(K, K, (540, 360), (540, 360))
    np.testing.assert_array_equal(same_cols, np.arange(540))
    np.testing.assert_array_equal(same_rows, np.arange(360))
