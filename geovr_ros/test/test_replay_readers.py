"""Replay readers on real files of each format (written here, or by geovr-data)."""
import numpy as np
import pytest

from geovr_ros.geometry import make_pose, pose_to_xyz_quat_xyzw
from geovr_ros.replay import ReplayClock, ReplayFormatError, detect_format, open_replay_source
from ros_helpers import generated_dataset

cv2 = pytest.importorskip('cv2', reason='OpenCV reads the PNG frames of TUM and 7-Scenes')


def rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


KINECT = (480, 640)  # frames the TUM and 7-Scenes Kinect intrinsics are valid for


def frame_rgb(i, size=(24, 32)):
    rgb = np.zeros((*size, 3), np.uint8)
    rgb[..., 0] = 10 * i
    rgb[..., 2] = 255 - 10 * i
    return rgb


def write_png(path, rgb):
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_generated_dataset_frames_match_the_shard(ros_env):
    root = generated_dataset(ros_env)
    assert detect_format(root) == 'generated'
    frames = list(open_replay_source(root))
    import json
    manifest = json.loads((root / 'manifest.json').read_text())
    assert len(frames) == manifest['sequences'][0]['num_frames']
    stamps = [f.stamp for f in frames]
    assert np.all(np.diff(stamps) > 0)
    first = frames[0]
    assert first.rgb.shape == (192, 256, 3) and first.rgb.dtype == np.uint8
    assert first.K.shape == (3, 3) and first.T_world_cam.shape == (4, 4)
    assert np.allclose(first.T_world_cam[:3, :3] @ first.T_world_cam[:3, :3].T, np.eye(3))
    with pytest.raises(ReplayFormatError, match='no sequence'):
        open_replay_source(root, sequence='nope')


def test_tum_folder_with_ground_truth_association(tmp_path):
    root = tmp_path / 'rgbd_dataset_freiburg1_xyz'
    (root / 'rgb').mkdir(parents=True)
    lines, gt = ['# timestamp filename'], ['# timestamp tx ty tz qx qy qz qw']
    poses = [make_pose(rot_z(0.1 * i), [0.1 * i, 0, 1]) for i in range(3)]
    for i in range(3):
        write_png(root / 'rgb' / f'{i}.png', frame_rgb(i, KINECT))
        lines.append(f'{100 + 0.033 * i:.6f} rgb/{i}.png')
        xyz, q = pose_to_xyz_quat_xyzw(poses[i])
        gt.append(f'{100 + 0.033 * i + 0.004:.6f} ' + ' '.join(f'{v:.9f}' for v in [*xyz, *q]))
    (root / 'rgb.txt').write_text('\n'.join(lines))
    (root / 'groundtruth.txt').write_text('\n'.join(gt))
    assert detect_format(root) == 'tum'
    frames = list(open_replay_source(root))
    assert [round(f.stamp, 3) for f in frames] == [100.0, 100.033, 100.066]
    raw = list(open_replay_source(root, rectify=False))
    assert np.array_equal(raw[2].rgb, frame_rgb(2, KINECT))
    # freiburg1's lens is undistorted: the middle keeps its colour, the corners of the pinhole
    # image lie outside what the distorted camera recorded
    assert np.array_equal(frames[2].rgb[200:280, 280:360], raw[2].rgb[200:280, 280:360])
    assert not frames[2].rgb[0, 0].any()
    assert frames[0].K[0, 0] == 517.3                         # freiburg1 from the path
    assert np.allclose(frames[1].T_world_cam, poses[1], atol=1e-6)
    renamed = tmp_path / 'other'
    root.rename(renamed)
    with pytest.raises(ReplayFormatError, match='intrinsics'):
        open_replay_source(renamed)
    assert list(open_replay_source(renamed, intrinsics=(1, 2, 3, 4)))[0].K[1, 1] == 2


def test_tum_ground_truth_is_interpolated_to_the_image_time():
    """Between two motion-capture samples the pose is interpolated (position linearly, rotation
    along the geodesic); a sample too far on one side leaves the nearest within reach."""
    from geovr_ros.recordings.tum import pose_at
    times = np.array([10.00, 10.01, 10.05])
    poses = [make_pose(rot_z(0.0), [0, 0, 0]), make_pose(rot_z(0.2), [0.1, 0, 0]), make_pose(rot_z(0.3), [1, 0, 0])]
    middle = pose_at(times, poses, 10.0025, 0.02)
    np.testing.assert_allclose(middle, make_pose(rot_z(0.05), [0.025, 0, 0]), atol=1e-9)
    np.testing.assert_allclose(pose_at(times, poses, 10.01, 0.02), poses[1], atol=1e-12)
    np.testing.assert_allclose(pose_at(times, poses, 10.015, 0.02), poses[1])   # the next is 35 ms away
    assert pose_at(times, poses, 10.2, 0.02) is None


def test_tum_truth_time_offset_looks_the_true_pose_up_on_the_camera_clock(tmp_path):
    """truth_time_offset: each frame keeps its stamp and takes the motion capture's pose that
    many seconds later (here a camera sliding along x at 1 m/s, captured at 100 Hz); the offset
    is a TUM recording's only, and must be a finite number."""
    root = tmp_path / 'rgbd_dataset_freiburg1_rpy'
    (root / 'rgb').mkdir(parents=True)
    lines, gt = ['# timestamp filename'], ['# timestamp tx ty tz qx qy qz qw']
    for i in range(3):
        write_png(root / 'rgb' / f'{i}.png', frame_rgb(i, KINECT))
        lines.append(f'{100.1 + 0.033 * i:.6f} rgb/{i}.png')
    for k in range(30):
        gt.append(f'{100 + 0.01 * k:.6f} {0.01 * k:.6f} 0 1 0 0 0 1')
    (root / 'rgb.txt').write_text('\n'.join(lines))
    (root / 'groundtruth.txt').write_text('\n'.join(gt))
    on_time = list(open_replay_source(root, rectify=False))
    late = list(open_replay_source(root, rectify=False, truth_time_offset=-0.015))
    assert [f.stamp for f in late] == [f.stamp for f in on_time]
    for a, b in zip(on_time, late):
        assert a.T_world_cam[0, 3] == pytest.approx(a.stamp - 100, abs=1e-6)
        assert b.T_world_cam[0, 3] == pytest.approx(a.stamp - 100 - 0.015, abs=1e-6)
    with pytest.raises(ReplayFormatError, match='finite'):
        open_replay_source(root, truth_time_offset=float('nan'))
    with pytest.raises(ReplayFormatError, match='TUM'):    # another format's truth shares the frames' clock
        open_replay_source(tmp_path, fmt='hololens', truth_time_offset=0.01)


def test_seven_scenes_folder(tmp_path):
    seq = tmp_path / 'chess' / 'seq-01'
    seq.mkdir(parents=True)
    for i in range(2):
        write_png(seq / f'frame-{i:06d}.color.png', frame_rgb(i, KINECT))
        np.savetxt(seq / f'frame-{i:06d}.pose.txt', make_pose(np.eye(3), [i, 0, 0]))
    frames = list(open_replay_source(tmp_path / 'chess'))
    assert detect_format(tmp_path / 'chess') == '7scenes'
    assert [f.stamp for f in frames] == [0.0, pytest.approx(1 / 30)]
    # read in the Kinect's colour camera: its K, the depth camera's poses moved 2.6 cm to it
    from geovr_ros.geometry import invert_pose
    from geovr_ros.recordings.seven_scenes import SEVEN_SCENES_COLOUR_FROM_DEPTH
    assert frames[0].K[0, 0] == 525.0
    np.testing.assert_allclose(frames[1].T_world_cam,
                               make_pose(np.eye(3), [1, 0, 0]) @ invert_pose(SEVEN_SCENES_COLOUR_FROM_DEPTH))


def test_seven_scenes_jpg_frames_with_their_own_intrinsics_file(tmp_path):
    for i in range(3):
        assert cv2.imwrite(str(tmp_path / f'frame-{i:06d}.color.jpg'), frame_rgb(i, KINECT))
        np.savetxt(tmp_path / f'frame-{i:06d}.pose.txt', make_pose(np.eye(3), [0.1 * i, 0, 0]))
    (tmp_path / 'intrinsics.K.txt').write_text('615.2 0 298.4\n0 615.2 247.5\n0 0 1\n')
    assert detect_format(tmp_path) == '7scenes'
    frames = list(open_replay_source(tmp_path))
    assert len(frames) == 3 and frames[0].K[0, 0] == pytest.approx(615.2)
    assert frames[2].T_world_cam[0, 3] == pytest.approx(0.2)


def test_hololens_layout(tmp_path):
    (tmp_path / 'images').mkdir()
    poses = []
    for i in range(3):
        write_png(tmp_path / 'images' / f'{i + 3:05d}.png', frame_rgb(i))
        poses.append(' '.join(str(v) for v in make_pose(np.eye(3), [0, 0.5 * i, 0]).ravel()))
    (tmp_path / 'poses.txt').write_text('\n'.join(poses) + '\n')
    (tmp_path / 'K.txt').write_text('30 0 15.5\n0 30 11.5\n0 0 1\n')
    assert detect_format(tmp_path) == 'hololens'
    frames = list(open_replay_source(tmp_path))
    assert [f.stamp for f in frames] == pytest.approx([3 / 30, 4 / 30, 5 / 30])
    assert frames[1].T_world_cam[1, 3] == pytest.approx(0.5) and frames[0].K[0, 2] == 15.5
    np.testing.assert_array_equal(frames[2].rgb, frame_rgb(2))


def test_rosbag2_mcap_with_image_and_camera_info(tmp_path):
    rosbag2 = pytest.importorskip('rosbags.rosbag2', reason='rosbags reads rosbag2 files')
    from rosbags.typesys import Stores, get_typestore
    store = get_typestore(Stores.ROS2_HUMBLE)
    Image = store.types['sensor_msgs/msg/Image']
    CameraInfo = store.types['sensor_msgs/msg/CameraInfo']
    Header, Time = store.types['std_msgs/msg/Header'], store.types['builtin_interfaces/msg/Time']
    RoI = store.types['sensor_msgs/msg/RegionOfInterest']
    path = tmp_path / 'bag'
    with rosbag2.Writer(path, version=9, storage_plugin=rosbag2.StoragePlugin.MCAP) as writer:
        info_conn = writer.add_connection('/cam/info', CameraInfo.__msgtype__, typestore=store)
        image_conn = writer.add_connection('/cam/image', Image.__msgtype__, typestore=store)
        for i in range(3):
            header = Header(stamp=Time(sec=5, nanosec=i * 100_000_000), frame_id='cam')
            info = CameraInfo(header=header, height=24, width=32, distortion_model='plumb_bob',
                              d=np.zeros(5), k=np.array([50., 0, 16, 0, 50, 12, 0, 0, 1]),
                              r=np.eye(3).reshape(9), p=np.zeros(12), binning_x=0, binning_y=0,
                              roi=RoI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            bgr = np.ascontiguousarray(frame_rgb(i)[..., ::-1])
            image = Image(header=header, height=24, width=32, encoding='bgr8', is_bigendian=0,
                          step=96, data=bgr.reshape(-1))
            t = 5_000_000_000 + i * 100_000_000
            writer.write(info_conn, t, store.serialize_cdr(info, CameraInfo.__msgtype__))
            writer.write(image_conn, t + 1, store.serialize_cdr(image, Image.__msgtype__))
    assert detect_format(path) == 'rosbag'
    frames = list(open_replay_source(path))
    assert [round(f.stamp, 3) for f in frames] == [5.0, 5.1, 5.2]
    assert np.array_equal(frames[1].rgb, frame_rgb(1)) and frames[0].K[0, 2] == 16
    assert frames[0].T_world_cam is None


def test_unknown_sources_are_named(tmp_path):
    with pytest.raises(ReplayFormatError, match='does not exist'):
        detect_format(tmp_path / 'missing')
    with pytest.raises(ReplayFormatError, match='none of'):
        detect_format(tmp_path)


def test_replay_clock_paces_at_the_rate():
    now = [0.0]
    clock = ReplayClock(rate=2.0, monotonic=lambda: now[0])
    assert clock.delay(10.0) == 0.0
    now[0] = 0.1
    assert clock.delay(11.0) == pytest.approx(0.4)
    assert ReplayClock(rate=0).delay(5.0) == 0.0
    with pytest.raises(ValueError, match='rate'):
        ReplayClock(rate=-1)


def test_tum_folder_with_a_calibration_file_takes_its_camera(tmp_path):
    """The ETH3D SLAM benchmark's TUM-format sequences name no freiburg sensor and ship their
    undistorted camera as calibration.txt ('fx fy cx cy'): read, not distorted again; a file of
    other content is refused naming it."""
    root = tmp_path / 'eth3d_table_3'
    (root / 'rgb').mkdir(parents=True)
    write_png(root / 'rgb' / '0.png', frame_rgb(0, KINECT))
    (root / 'rgb.txt').write_text('# timestamp filename\n100.000000 rgb/0.png\n')
    (root / 'calibration.txt').write_text('726.28 726.28 354.65 186.47\n')
    frame, = open_replay_source(root)
    np.testing.assert_allclose(frame.K, [[726.28, 0, 354.65], [0, 726.28, 186.47], [0, 0, 1]])
    assert np.array_equal(frame.rgb, frame_rgb(0, KINECT))         # no lens correction
    (root / 'calibration.txt').write_text('726.28 726.28 354.65\n')
    with pytest.raises(ReplayFormatError, match='calibration.txt'):
        open_replay_source(root)
