"""Message conversions (no spinning): images, camera info, point clouds, poses, pairing."""
import time

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from geovr_ros.geometry import ImageEncodingError, InvalidIntrinsicsError, make_pose
from geovr_ros.ros.conversions import (
    array_to_image_msg, camera_info_msg, camera_info_to_k, colorize_depth, depth_to_image_msg,
    image_msg_to_rgb, odometry_msg, pointcloud2_msg, pointcloud2_to_xyz, sec_to_stamp,
    stamp_to_sec, transform_from_msg, transform_stamped_msg)
from geovr_ros.ros.pairing import CameraIntrinsics, IntrinsicsPairer

HEADER = Header(frame_id='cam_optical')
K = np.array([[200.0, 0, 31.5], [0, 210.0, 23.5], [0, 0, 1]])


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8'])
def test_colour_encodings_decode_to_rgb(encoding):
    rgb = np.random.default_rng(1).integers(0, 255, (6, 8, 3), dtype=np.uint8)
    if encoding == 'mono8':
        array, expected = rgb[..., 0].copy(), np.repeat(rgb[..., :1], 3, axis=2)
    elif encoding.startswith('bgr'):
        array, expected = rgb[..., ::-1].copy(), rgb
    else:
        array, expected = rgb, rgb
    if encoding.endswith('a8'):
        array = np.concatenate([array, np.full((6, 8, 1), 255, np.uint8)], axis=2)
    msg = array_to_image_msg(np.ascontiguousarray(array), encoding, HEADER)
    assert np.array_equal(image_msg_to_rgb(msg), expected)


def test_bad_images_raise_typed_errors():
    depth = depth_to_image_msg(np.ones((4, 5)), HEADER)
    with pytest.raises(ImageEncodingError, match='32FC1'):
        image_msg_to_rgb(depth)
    short = Image(height=10, width=10, encoding='rgb8', step=30, data=b'\x00' * 50)
    with pytest.raises(ImageEncodingError):
        image_msg_to_rgb(short)
    with pytest.raises(ImageEncodingError):
        image_msg_to_rgb(Image(height=1, width=1, encoding='yuv999', step=3, data=b'abc'))


def test_depth_message_is_32fc1_metres_with_nan_kept():
    depth = np.array([[1.5, np.nan], [0.25, 80.0]], np.float32)
    msg = depth_to_image_msg(depth, HEADER)
    assert msg.encoding == '32FC1' and msg.step == 8 and msg.header.frame_id == 'cam_optical'
    back = np.frombuffer(msg.data, np.float32).reshape(2, 2)
    assert np.array_equal(back, depth, equal_nan=True)


def test_camera_info_round_trip_and_rejection():
    info = camera_info_msg(K, 64, 48, HEADER)
    assert np.allclose(camera_info_to_k(info), K) and info.p[0] == 200.0 and info.p[3] == 0.0
    for bad in (np.zeros((3, 3)), np.full((3, 3), np.nan)):
        with pytest.raises(InvalidIntrinsicsError):
            camera_info_to_k(camera_info_msg(bad, 64, 48, HEADER) if not np.isnan(bad).any()
                             else _info_with_k(bad))


def _info_with_k(K_bad):
    info = camera_info_msg(K, 64, 48, HEADER)
    info.k = [float(v) for v in K_bad.reshape(9)]
    return info


def test_pointcloud_packs_xyz_and_rgb_and_drops_nan():
    xyz = np.array([[0, 0, 1], [np.nan, 0, 1], [1, 2, 3]], np.float32)
    rgb = np.array([[255, 0, 0], [0, 0, 0], [0, 0, 255]], np.uint8)
    msg = pointcloud2_msg(xyz, HEADER, rgb)
    assert msg.width == 2 and msg.point_step == 16 and [f.name for f in msg.fields][-1] == 'rgb'
    assert np.allclose(pointcloud2_to_xyz(msg), xyz[[0, 2]])
    packed = np.frombuffer(msg.data, np.float32).reshape(2, 4)[:, 3].view(np.uint32)
    assert list(packed) == [0xFF0000, 0x0000FF]


def test_transforms_and_odometry_round_trip():
    T = make_pose(np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]]), [1, 2, 3])
    msg = transform_stamped_msg(T, 'odom', 'cam', sec_to_stamp(12.25))
    assert np.allclose(transform_from_msg(msg), T) and stamp_to_sec(msg.header.stamp) == 12.25
    odom = odometry_msg(T, np.array([1, 0, 0]), np.zeros(3), Header(frame_id='odom'), 'cam',
                        np.eye(6), np.eye(6) * 2)
    assert odom.child_frame_id == 'cam' and odom.pose.pose.position.z == 3.0
    assert odom.twist.covariance[7] == 2.0 and odom.twist.twist.linear.x == 1.0


def test_sec_to_stamp_never_overflows_nanoseconds():
    stamp = sec_to_stamp(1.9999999999)
    assert stamp.sec == 2 and stamp.nanosec == 0


def test_filling_a_vga_image_is_fast():
    rgb = np.zeros((480, 640, 3), np.uint8)
    start = time.perf_counter()
    for _ in range(10):
        array_to_image_msg(rgb, 'rgb8', HEADER)
    assert (time.perf_counter() - start) / 10 < 0.01


def test_colorized_depth_is_black_where_invalid():
    depth = np.array([[1.0, 2.0], [np.nan, 4.0]])
    out = colorize_depth(depth)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[1, 0].tolist() == [0, 0, 0] and out[0, 0].tolist() != out[1, 1].tolist()


def test_pairing_by_stamp_and_latest():
    pairer = IntrinsicsPairer('stamp', tolerance=0.005)
    assert pairer.match(1.0) == (None, 'no camera_info received yet')
    pairer.add(CameraIntrinsics(1.0, K, 64, 48))
    pairer.add(CameraIntrinsics(1.1, K * 2, 64, 48))
    assert pairer.match(1.103)[0].stamp == 1.1
    found, reason = pairer.match(1.05)
    assert found is None and 'nearest is 0.0500 s away' in reason
    latest = IntrinsicsPairer('latest')
    latest.add(CameraIntrinsics(1.0, K, 64, 48))
    assert latest.match(99.0)[0].stamp == 1.0
    with pytest.raises(ValueError, match='pairing mode'):
        IntrinsicsPairer('nearest')


def test_the_ask_command_names_the_object_of_each_point():
    from geometry_msgs.msg import PointStamped
    from geovr_interfaces.srv import SpatialQuery

    from geovr_ros.nodes.ask import format_response
    response = SpatialQuery.Response(success=True, answer='the chair is 1.20 m from me', category='abs_distance',
                                     value=1.2, unit='m', confidence=0.8, object_ids=[7, -1])
    response.points = [PointStamped(header=Header(frame_id='map')), PointStamped(header=Header(frame_id='map'))]
    response.points[0].point.x = 1.5
    lines = format_response(response).splitlines()
    assert lines[2] == '  point in map: (1.500, 0.000, 0.000) m (object 7)'
    assert lines[3] == '  point in map: (0.000, 0.000, 0.000) m'        # the camera: no object
