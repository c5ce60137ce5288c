"""Tests of geovr_ros.geometry.encodings: ROS image buffers to numpy and back."""

import array as pyarray

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geovr_ros.geometry import (SUPPORTED_ENCODINGS, ImageEncodingError, array_to_image, depth_to_metres,
                                image_to_array, metres_to_depth_image, to_rgb8)

FAST = settings(max_examples=60, deadline=None)

LAYOUT = {  # encoding -> (dtype, channels), written out independently of the module's table
    'rgb8': (np.uint8, 3), 'bgr8': (np.uint8, 3), 'rgba8': (np.uint8, 4), 'bgra8': (np.uint8, 4),
    'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1), '16UC1': (np.uint16, 1), '32FC1': (np.float32, 1),
}


def test_supported_encodings_are_the_contract():
    assert set(SUPPORTED_ENCODINGS) == set(LAYOUT)


@st.composite
def images(draw):
    encoding = draw(st.sampled_from(sorted(LAYOUT)))
    dtype, channels = LAYOUT[encoding]
    height, width = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype is np.float32:
        elements = st.floats(-1e6, 1e6, width=32, allow_nan=False)
    else:
        elements = st.integers(0, np.iinfo(dtype).max)
    return encoding, draw(arrays(dtype, shape, elements=elements))


def ros_buffer(image, padding, big_endian):
    """Build message bytes by hand, row by row (independent of array_to_image)."""
    dtype = image.dtype.newbyteorder('>' if big_endian else '<')
    height = image.shape[0]
    rows = [image[i].astype(dtype).tobytes() + b'\xab' * padding for i in range(height)]
    return b''.join(rows), len(rows[0])


@FAST
@given(images())
def test_encode_decode_round_trip(case):
    encoding, image = case
    data, step = array_to_image(image, encoding)
    assert step == image.shape[1] * image.itemsize * (1 if image.ndim == 2 else image.shape[2])
    assert data == ros_buffer(image, 0, False)[0]
    decoded = image_to_array(encoding, image.shape[0], image.shape[1], step, data)
    assert decoded.dtype == image.dtype and decoded.shape == image.shape
    np.testing.assert_array_equal(decoded, image)


@FAST
@given(images(), st.integers(0, 9), st.booleans())
def test_decode_padded_and_big_endian(case, padding, big_endian):
    encoding, image = case
    data, step = ros_buffer(image, padding, big_endian)
    decoded = image_to_array(encoding, image.shape[0], image.shape[1], step, data, is_bigendian=big_endian)
    assert decoded.dtype.isnative
    np.testing.assert_array_equal(decoded, image)


def test_decode_is_zero_copy_when_unpadded():
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    buffer = bytearray(image.tobytes())
    decoded = image_to_array('rgb8', 2, 3, 9, buffer)
    buffer[0] = 200
    assert decoded[0, 0, 0] == 200  # shares memory with the message buffer
    padded = bytearray(b''.join(image[i].tobytes() + b'\0\0\0' for i in range(2)))
    decoded = image_to_array('rgb8', 2, 3, 12, padded)
    padded[12] = 201
    assert decoded[1, 0, 0] == 201


def test_decode_accepts_rclpy_style_buffers():
    depth = np.array([[1000, 0], [65535, 1]], dtype=np.uint16)
    data = pyarray.array('B', depth.tobytes())
    np.testing.assert_array_equal(image_to_array('16UC1', 2, 2, 4, data), depth)
    np.testing.assert_array_equal(image_to_array('16UC1', 2, 2, 4, list(depth.tobytes())), depth)


@pytest.mark.parametrize('encoding, height, width, step, size, message', [
    ('rgb8', 2, 3, 9, 17, 'len\\(data\\)=17'),
    ('rgb8', 2, 3, 8, 16, 'step is shorter'),
    ('32FC1', 2, 2, 8, 15, "encoding='32FC1' height=2 width=2 step=8 len\\(data\\)=15"),
    ('rgb8', -1, 3, 9, 0, 'height must be a non-negative integer'),
])
def test_mismatched_fields_raise_naming_every_field(encoding, height, width, step, size, message):
    with pytest.raises(ImageEncodingError, match=message) as info:
        image_to_array(encoding, height, width, step, bytes(size))
    for field in (encoding, f'height={height}', f'width={width}', f'step={step}', f'len(data)={size}'):
        assert field in str(info.value)


def test_unknown_encoding_is_named():
    with pytest.raises(ImageEncodingError, match="'yuv422'"):
        image_to_array('yuv422', 1, 1, 2, bytes(2))
    with pytest.raises(ImageEncodingError, match="'bayer_rggb8'"):
        array_to_image(np.zeros((2, 2), np.uint8), 'bayer_rggb8')


def test_encode_refuses_wrong_dtype_or_shape():
    with pytest.raises(ImageEncodingError, match='uint16, got int64'):
        array_to_image(np.zeros((2, 2), np.int64), '16UC1')
    with pytest.raises(ImageEncodingError, match=r'\(H, W, 3\), got \(2, 2, 4\)'):
        array_to_image(np.zeros((2, 2, 4), np.uint8), 'rgb8')
    data, step = array_to_image(np.ones((2, 2), np.float64), '32FC1')  # floats are cast to float32
    assert step == 8 and np.frombuffer(data, '<f4').tolist() == [1.0] * 4


def test_to_rgb8():
    rgb = np.array([[[10, 20, 30], [40, 50, 60]]], dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb8(rgb, 'rgb8'), rgb)
    np.testing.assert_array_equal(to_rgb8(rgb[..., ::-1], 'bgr8'), rgb)
    alpha = np.full((1, 2, 1), 255, np.uint8)
    np.testing.assert_array_equal(to_rgb8(np.concatenate([rgb, alpha], -1), 'rgba8'), rgb)
    np.testing.assert_array_equal(to_rgb8(np.concatenate([rgb[..., ::-1], alpha], -1), 'bgra8'), rgb)
    grey = np.array([[7, 200]], dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb8(grey, 'mono8'), [[[7, 7, 7], [200, 200, 200]]])
    np.testing.assert_array_equal(to_rgb8(np.array([[0x1234]], np.uint16), 'mono16'), [[[0x12] * 3]])
    for depth_encoding in ('16UC1', '32FC1'):
        with pytest.raises(ImageEncodingError, match=depth_encoding):
            to_rgb8(np.zeros((1, 1), LAYOUT[depth_encoding][0]), depth_encoding)


def test_depth_to_metres():
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    metres = depth_to_metres(mm, '16UC1')
    assert metres.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(metres), [[True, False], [False, False]])
    np.testing.assert_allclose(metres[~np.isnan(metres)], [1.0, 1.5, 65.535], rtol=1e-6)
    raw = np.array([[2.5, -1.0], [np.inf, 0.0]], dtype=np.float32)
    out = depth_to_metres(raw, '32FC1')
    assert out[0, 0] == 2.5 and np.isnan(out).sum() == 3
    assert raw[0, 1] == -1.0  # input untouched
    with pytest.raises(ImageEncodingError, match='rgb8 is not a depth encoding'):
        depth_to_metres(np.zeros((1, 1, 3), np.uint8), 'rgb8')


@FAST
@given(arrays(np.float64, (3, 4), elements=st.floats(0.001, 65.0) | st.just(np.nan)))
def test_depth_image_round_trip(depth):
    for encoding, tolerance in (('16UC1', 0.0005 + 1e-6), ('32FC1', 1e-6)):
        encoded = metres_to_depth_image(depth, encoding)
        data, step = array_to_image(encoded, encoding)
        back = depth_to_metres(image_to_array(encoding, 3, 4, step, data), encoding)
        valid = ~np.isnan(depth) & (np.rint(depth * 1000) > 0 if encoding == '16UC1' else True)
        np.testing.assert_array_equal(np.isnan(back), ~valid)
        np.testing.assert_allclose(back[valid], depth[valid], atol=tolerance, rtol=1e-6)


def test_depth_beyond_16_bits():
    far = np.array([[70.0, 1.0]])
    with pytest.raises(ImageEncodingError, match='got 70.0 m'):
        metres_to_depth_image(far, '16UC1')
    np.testing.assert_array_equal(metres_to_depth_image(far, '16UC1', out_of_range='invalid'), [[0, 1000]])
