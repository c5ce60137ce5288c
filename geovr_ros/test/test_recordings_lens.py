"""Recordings of cameras with lens distortion come out pinhole, as geovr_node sees a camera:
a TUM freiburg1 folder and a bag whose camera_info has D are undistorted (colour and depth),
a rectified bag topic (image_rect) is not undistorted twice and takes P as its camera."""
import numpy as np
import pytest

from geovr_ros.recordings import TUM_DISTORTION, TUM_INTRINSICS, open_recording

cv2 = pytest.importorskip('cv2', reason='OpenCV reads the image files and undistorts')

SEEN_AT = (520.0, 410.0)     # where a pinhole camera with the sensor's K sees the dot (pixels)


def distorted_pixel(pinhole_px, K, D) -> np.ndarray:
    """Where the distorted camera (K, D) records what a pinhole camera K sees at `pinhole_px`."""
    ray = np.array([[(pinhole_px[0] - K[0, 2]) / K[0, 0], (pinhole_px[1] - K[1, 2]) / K[1, 1], 1.0]])
    pixel, _ = cv2.projectPoints(ray, np.zeros(3), np.zeros(3), K, np.asarray(D, float))
    return pixel.reshape(2)


def dot_images(K, D, size=(640, 480)):
    """A raw colour image (H, W, 3) uint8 with a white dot and a raw depth (H, W) uint16 with
    a 1.5 m patch (TUM's 5000 per metre), both where the distorted camera records SEEN_AT."""
    u, v = np.round(distorted_pixel(SEEN_AT, K, D)).astype(int)
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    cv2.circle(rgb, (int(u), int(v)), 4, (255, 255, 255), -1)
    depth = np.zeros((size[1], size[0]), np.uint16)
    depth[v - 6:v + 7, u - 6:u + 7] = 7500
    return rgb, depth, np.array([u, v], float)


def dot_centre(rgb) -> np.ndarray:
    v, u = np.nonzero(rgb[..., 0] > 128)
    return np.array([u.mean(), v.mean()])


def tum_folder(root, K, D):
    rgb, depth, raw_at = dot_images(K, D)
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    assert cv2.imwrite(str(root / 'rgb' / '1.png'), rgb)
    assert cv2.imwrite(str(root / 'depth' / '1.png'), depth)
    (root / 'rgb.txt').write_text('# timestamp filename\n100.000000 rgb/1.png\n')
    (root / 'depth.txt').write_text('# timestamp filename\n100.001000 depth/1.png\n')
    return raw_at


def test_a_freiburg1_folder_is_undistorted_colour_and_depth_alike(tmp_path):
    K = np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
    raw_at = tum_folder(tmp_path / 'rgbd_dataset_freiburg1_desk', K, TUM_DISTORTION['freiburg1'])
    assert np.linalg.norm(raw_at - SEEN_AT) > 5, 'the lens moves the dot: the test would prove nothing'
    recording = open_recording(tmp_path / 'rgbd_dataset_freiburg1_desk', with_depth=True)
    assert recording.info['rectified'] is True and 'plumb_bob' in recording.info['distortion']
    frame, = recording
    np.testing.assert_allclose(frame.K, K)                   # undistorted to the sensor's own K
    np.testing.assert_allclose(dot_centre(frame.rgb), SEEN_AT, atol=1.0)
    patch = np.isfinite(frame.depth)
    assert patch.any() and np.all(frame.depth[patch] == pytest.approx(1.5))
    np.testing.assert_allclose(np.argwhere(patch).mean(0)[::-1], SEEN_AT, atol=1.5)

    raw, = open_recording(tmp_path / 'rgbd_dataset_freiburg1_desk', with_depth=True, rectify=False)
    np.testing.assert_allclose(dot_centre(raw.rgb), raw_at, atol=1.0)
    # numbers instead of a sensor name: the lens is not known, the images stay as recorded
    given, = open_recording(tmp_path / 'rgbd_dataset_freiburg1_desk', intrinsics=tuple(TUM_INTRINSICS['freiburg1']))
    assert np.array_equal(given.rgb, raw.rgb)


def test_freiburg3_images_were_undistorted_by_tum_and_stay(tmp_path):
    K = np.array([[535.4, 0, 320.1], [0, 539.2, 247.6], [0, 0, 1]])
    raw_at = tum_folder(tmp_path / 'rgbd_dataset_freiburg3_office', K, np.zeros(5))
    recording = open_recording(tmp_path / 'rgbd_dataset_freiburg3_office')
    assert 'distortion' not in recording.info
    frame, = recording
    np.testing.assert_allclose(dot_centre(frame.rgb), raw_at, atol=1.0)


def write_bag(path, topic, K, D, P, rgb, model='plumb_bob'):
    rosbag2 = pytest.importorskip('rosbags.rosbag2', reason='rosbags reads rosbag2 files')
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    Image, CameraInfo = store.types['sensor_msgs/msg/Image'], store.types['sensor_msgs/msg/CameraInfo']
    Header, Time = store.types['std_msgs/msg/Header'], store.types['builtin_interfaces/msg/Time']
    RoI = store.types['sensor_msgs/msg/RegionOfInterest']
    h, w = rgb.shape[:2]
    with rosbag2.Writer(path, version=9, storage_plugin=rosbag2.StoragePlugin.MCAP) as writer:
        info_conn = writer.add_connection('/cam/camera_info', CameraInfo.__msgtype__, typestore=store)
        image_conn = writer.add_connection(topic, Image.__msgtype__, typestore=store)
        header = Header(stamp=Time(sec=5, nanosec=0), frame_id='cam_optical')
        info = CameraInfo(header=header, height=h, width=w, distortion_model=model,
                          d=np.asarray(D, float), k=K.reshape(9), r=np.eye(3).reshape(9), p=P.reshape(12),
                          binning_x=0, binning_y=0,
                          roi=RoI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        image = Image(header=header, height=h, width=w, encoding='bgr8', is_bigendian=0, step=3 * w,
                      data=bgr.reshape(-1))
        writer.write(info_conn, 5_000_000_000, store.serialize_cdr(info, CameraInfo.__msgtype__))
        writer.write(image_conn, 5_000_000_001, store.serialize_cdr(image, Image.__msgtype__))


def test_a_bag_camera_with_distortion_is_undistorted_and_image_rect_is_not_again(tmp_path):
    K = np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
    D = TUM_DISTORTION['freiburg1']
    P = np.hstack([K, np.zeros((3, 1))])
    rgb, _, raw_at = dot_images(K, D)
    write_bag(tmp_path / 'raw', '/cam/image_raw', K, D, P, rgb)
    recording = open_recording(tmp_path / 'raw')
    assert 'plumb_bob' in recording.info['rectified']
    frame, = recording
    np.testing.assert_allclose(frame.K, K)
    np.testing.assert_allclose(dot_centre(frame.rgb), SEEN_AT, atol=1.0)
    as_recorded, = open_recording(tmp_path / 'raw', rectify=False)
    np.testing.assert_allclose(dot_centre(as_recorded.rgb), raw_at, atol=1.0)

    # image_rect beside the raw camera's camera_info (D and all): already pinhole, camera P
    P_rect = P.copy()
    P_rect[0, 0] = P_rect[1, 1] = 500.0
    write_bag(tmp_path / 'rect', '/cam/image_rect', K, D, P_rect, rgb)
    recording = open_recording(tmp_path / 'rect')
    assert recording.info['rectified'] == 'no'
    frame, = recording
    assert np.array_equal(frame.rgb, rgb) and frame.K[0, 0] == 500.0 and frame.K[1, 1] == 500.0


def test_a_bag_camera_with_a_lens_model_that_cannot_be_undistorted_is_named(tmp_path):
    """An unknown distortion model with non-zero D: one RecordingFormatError naming the bag
    and the model, raised when its frames are read."""
    from geovr_ros.recordings import RecordingFormatError
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    bag = tmp_path / 'mystery'
    write_bag(bag, '/cam/image_raw', K, [0.1, 0.0, 0.0], np.zeros((3, 4)), np.zeros((240, 320, 3), np.uint8),
              model='mystery_lens')
    with pytest.raises(RecordingFormatError, match="lens distortion: unknown distortion model 'mystery_lens'") as err:
        list(open_recording(bag))
    assert err.value.path == str(bag)
