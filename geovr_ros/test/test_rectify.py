"""Rectification from camera_info: distorted images become pinhole images with the new K;
zero distortion costs nothing; unknown models are refused."""
import numpy as np
import pytest

from geovr_ros.geometry import InvalidIntrinsicsError
from geovr_ros.geometry.rectify import Rectifier, input_is_rectified, rectified_camera

cv2 = pytest.importorskip('cv2')
W, H = 320, 240
K = np.array([[250.0, 0, 159.5], [0, 250.0, 119.5], [0, 0, 1]])
EYE = [1.0, 0, 0, 0, 1, 0, 0, 0, 1]


def grid_points():
    u, v = np.meshgrid(np.linspace(20, 300, 8), np.linspace(20, 220, 6))
    return np.stack([u.ravel(), v.ravel()], 1)


def test_zero_distortion_needs_no_maps():
    rectifier = Rectifier()
    assert rectifier.for_camera('plumb_bob', [0.0] * 5, K, EYE, [], W, H) is None
    assert rectifier.for_camera('', [], K, EYE, [], W, H) is None
    assert rectifier.for_camera('whatever', [0.0] * 5, K, EYE, [], W, H) is None


@pytest.mark.parametrize('model, D', [('plumb_bob', [-0.3, 0.1, 0.001, -0.002, 0.0]),
                                      ('rational_polynomial', [-0.3, 0.1, 0, 0, 0, 0.01, 0, 0]),
                                      ('equidistant', [0.1, -0.05, 0.01, 0.0])])
def test_a_pinhole_point_lands_where_the_distorted_camera_saw_it(model, D):
    """Distort ideal pinhole pixels with OpenCV's own projection, then look them up in the
    rectification maps: each rectified pixel must point back at its distorted source."""
    rect = Rectifier().for_camera(model, D, K, EYE, [], W, H)
    assert rect is not None and np.allclose(rect.K, K)
    pinhole = grid_points()
    rays = np.concatenate([(pinhole - K[:2, 2]) / K[0, 0], np.ones((len(pinhole), 1))], 1)
    if model == 'equidistant':
        source = cv2.fisheye.distortPoints(
            ((pinhole - K[:2, 2]) / K[0, 0]).reshape(-1, 1, 2), K, np.asarray(D, float))
    else:
        source, _ = cv2.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K,
                                      np.asarray(D, float))
    source = source.reshape(-1, 2)
    ui, vi = pinhole[:, 0].astype(int), pinhole[:, 1].astype(int)
    looked_up = np.stack([rect.map_x[vi, ui], rect.map_y[vi, ui]], 1)
    expected = source + 0.0  # the grid is on whole pixels already (linspace of integers)
    assert np.abs(looked_up - expected).max() < 0.05
    assert rect.apply(np.zeros((H, W, 3), np.uint8)).shape == (H, W, 3)


def test_maps_are_cached_per_camera_model():
    rectifier = Rectifier()
    D = [-0.3, 0.1, 0.0, 0.0, 0.0]
    assert rectifier.for_camera('plumb_bob', D, K, EYE, [], W, H) is \
        rectifier.for_camera('plumb_bob', list(D), K.copy(), EYE, [], W, H)


@pytest.mark.parametrize('model, D, message', [
    ('kannala_brandt_x', [0.1, 0, 0, 0], 'unknown distortion model'),
    ('plumb_bob', [0.1, 0.2], 'needs (5,) coefficients, got 2'),
    ('plumb_bob', [float('nan')] * 5, 'must be finite')])
def test_unknown_or_malformed_distortion_is_refused(model, D, message):
    with pytest.raises(InvalidIntrinsicsError, match=message.replace('(', r'\(').replace(')', r'\)')):
        Rectifier().for_camera(model, D, K, EYE, [], W, H)


@pytest.mark.parametrize('mode, topic, rectified', [
    ('auto', '/camera/image_raw', False), ('auto', '/camera/image_rect', True),
    ('auto', '/camera/image_rect_color', True), ('auto', 'image', False),
    ('never', '/camera/image_raw', True), ('always', '/camera/image_rect', False)])
def test_which_image_topics_are_taken_as_rectified(mode, topic, rectified):
    assert input_is_rectified(mode, topic) is rectified


def test_an_unknown_undistort_mode_is_named():
    with pytest.raises(ValueError, match="'sometimes'"):
        input_is_rectified('sometimes', '/camera/image_rect')


def test_a_rectified_image_takes_p_as_its_camera():
    P = np.array([[300.0, 0, 150, 0], [0, 310.0, 110, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(rectified_camera(K, P.ravel()), P[:, :3])
    np.testing.assert_array_equal(rectified_camera(K, np.zeros(12)), K)   # P unset: K
    np.testing.assert_array_equal(rectified_camera(K, []), K)
