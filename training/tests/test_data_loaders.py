"""Real-format loaders on fixtures the tests write themselves, plus the shared real recording."""

import numpy as np
import pytest
from geovr_ros.geometry import quat_xyzw_from_matrix, reproject_depth

from conftest import SHARED_REALSENSE
from geovr_training.data.convert import convert
from geovr_training.data.loaders import load_frames_folder, load_rosbag, load_tum
from geovr_training.data.shards import read_manifest, read_shard


def _png(path, array):
    import cv2
    assert cv2.imwrite(str(path), array)


def write_frames_folder(seq, folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _png(folder / f'frame-{i:06d}.color.png', seq.rgb[i][..., ::-1])
        mm = np.nan_to_num(seq.depth[i] * 1000.0, nan=0.0).round().astype(np.uint16)
        _png(folder / f'frame-{i:06d}.depth.png', mm)
        np.savetxt(folder / f'frame-{i:06d}.pose.txt', seq.T_world_cam[i])
    np.savetxt(folder / 'intrinsics.K.txt', seq.K[0])
    return folder


def write_tum_folder(seq, folder, n=4, t0=1305031102.0):
    (folder / 'rgb').mkdir(parents=True)
    (folder / 'depth').mkdir()
    rgb_lines, depth_lines, gt_lines = ['# color images'], ['# depth maps'], ['# timestamp tx ty tz qx qy qz qw']
    for i in range(n):
        t = t0 + i / 30.0
        _png(folder / 'rgb' / f'{t:.6f}.png', seq.rgb[i][..., ::-1])
        _png(folder / 'depth' / f'{t + 0.004:.6f}.png',
             np.nan_to_num(seq.depth[i] * 5000.0, nan=0.0).round().astype(np.uint16))
        rgb_lines.append(f'{t:.6f} rgb/{t:.6f}.png')
        depth_lines.append(f'{t + 0.004:.6f} depth/{t + 0.004:.6f}.png')
        q = quat_xyzw_from_matrix(seq.T_world_cam[i][:3, :3])
        gt_lines.append(f'{t - 0.003:.4f} ' + ' '.join(f'{v:.7f}' for v in [*seq.T_world_cam[i][:3, 3], *q]))
    gt_lines.append(f'{t0 + 50:.4f} 0 0 0 0 0 0 1')  # far from any image: never associated
    (folder / 'rgb.txt').write_text('\n'.join(rgb_lines) + '\n')
    (folder / 'depth.txt').write_text('\n'.join(depth_lines) + '\n')
    (folder / 'groundtruth.txt').write_text('\n'.join(gt_lines) + '\n')
    return folder


def write_bag(seq, path, n=4, camera_info=True, storage='mcap', tf=True):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore
    ts = get_typestore(Stores.ROS2_HUMBLE)
    T_ = ts.types
    Header, Time = T_['std_msgs/msg/Header'], T_['builtin_interfaces/msg/Time']
    Image, Info = T_['sensor_msgs/msg/Image'], T_['sensor_msgs/msg/CameraInfo']
    ROI = T_['sensor_msgs/msg/RegionOfInterest']
    TFMessage, TransformStamped = T_['tf2_msgs/msg/TFMessage'], T_['geometry_msgs/msg/TransformStamped']
    Transform, Vector3, Quaternion = (T_['geometry_msgs/msg/Transform'], T_['geometry_msgs/msg/Vector3'],
                                      T_['geometry_msgs/msg/Quaternion'])
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    h, w = seq.depth.shape[1:]
    with Writer(path, version=8, storage_plugin=plugin) as writer:
        c_img = writer.add_connection('/camera/color/image_raw', Image.__msgtype__, typestore=ts)
        c_depth = writer.add_connection('/camera/depth/image_rect_raw', Image.__msgtype__, typestore=ts)
        c_info = writer.add_connection('/camera/color/camera_info', Info.__msgtype__, typestore=ts) if camera_info else None
        c_tf = writer.add_connection('/tf', TFMessage.__msgtype__, typestore=ts) if tf else None
        for i in range(n):
            ns = 1_000_000_000 + i * 100_000_000
            header = Header(stamp=Time(sec=ns // 10 ** 9, nanosec=ns % 10 ** 9), frame_id='camera_color_optical_frame')
            img = Image(header=header, height=h, width=w, encoding='rgb8', is_bigendian=0, step=w * 3,
                        data=np.ascontiguousarray(seq.rgb[i]).reshape(-1))
            writer.write(c_img, ns, ts.serialize_cdr(img, Image.__msgtype__))
            mm = np.nan_to_num(seq.depth[i] * 1000.0, nan=0.0).round().astype('<u2')
            dimg = Image(header=header, height=h, width=w, encoding='16UC1', is_bigendian=0, step=w * 2,
                         data=mm.view(np.uint8).reshape(-1))
            writer.write(c_depth, ns + 5_000_000, ts.serialize_cdr(dimg, Image.__msgtype__))
            if camera_info:
                K = seq.K[i]
                P = np.zeros(12)
                P[[0, 2, 5, 6, 10]] = [K[0, 0], K[0, 2], K[1, 1], K[1, 2], 1]
                info = Info(header=header, height=h, width=w, distortion_model='plumb_bob', d=np.zeros(5),
                            k=K.reshape(-1), r=np.eye(3).reshape(-1), p=P, binning_x=0, binning_y=0,
                            roi=ROI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
                writer.write(c_info, ns, ts.serialize_cdr(info, Info.__msgtype__))
            if tf:
                T = seq.T_world_cam[i]
                q = quat_xyzw_from_matrix(T[:3, :3])
                msg = TFMessage(transforms=[TransformStamped(
                    header=Header(stamp=header.stamp, frame_id='map'), child_frame_id='camera_color_optical_frame',
                    transform=Transform(translation=Vector3(x=T[0, 3], y=T[1, 3], z=T[2, 3]),
                                        rotation=Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])))])
                writer.write(c_tf, ns, ts.serialize_cdr(msg, TFMessage.__msgtype__))
    return path


def _same_as_source(loaded, seq, n, depth_step):
    assert len(loaded) == n and loaded.image_size == seq.image_size
    np.testing.assert_array_equal(loaded.rgb, seq.rgb[:n])
    np.testing.assert_allclose(loaded.K, seq.K[:n], rtol=1e-6)
    np.testing.assert_allclose(loaded.T_world_cam, seq.T_world_cam[:n], atol=1e-5)
    finite = np.isfinite(seq.depth[:n])
    assert (np.isfinite(loaded.depth) == finite).all()
    assert np.abs(loaded.depth[finite] - seq.depth[:n][finite]).max() <= depth_step / 2 + 1e-6


def test_frames_folder_round_trip(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'frames')
    _same_as_source(load_frames_folder(folder), rendered_sequence, 4, 0.001)


def test_tum_folder_associates_and_scales_depth(rendered_sequence, tmp_path):
    folder = write_tum_folder(rendered_sequence, tmp_path / 'rgbd_dataset_freiburg1_xyz')
    seq = load_tum(folder, intrinsics=rendered_sequence.K[0])
    _same_as_source(seq, rendered_sequence, 4, 1 / 5000)
    assert np.all(np.diff(seq.timestamps) > 0)
    from geovr_ros.recordings import tum_intrinsics
    np.testing.assert_allclose(tum_intrinsics(None, folder), [[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
    np.testing.assert_allclose(tum_intrinsics('freiburg3', folder)[0, 0], 535.4)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_rosbag2_with_camera_info_depth_and_tf(rendered_sequence, tmp_path, storage):
    bag = write_bag(rendered_sequence, tmp_path / f'bag_{storage}', storage=storage)
    seq = load_rosbag(bag)
    _same_as_source(seq, rendered_sequence, 4, 0.001)
    assert seq.info['world_frame'] == 'map' and seq.info['depth_topic'] == '/camera/depth/image_rect_raw'
    np.testing.assert_allclose(np.diff(seq.timestamps), 0.1)


def test_rosbag_without_tf_gives_nan_poses(rendered_sequence, tmp_path):
    seq = load_rosbag(write_bag(rendered_sequence, tmp_path / 'bag', tf=False, n=2))
    assert np.isnan(seq.T_world_cam).all() and np.isfinite(seq.depth).any()


def test_convert_writes_a_dataset_and_the_realsense_reprojects(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'frames')
    convert('frames', folder, tmp_path / 'out')
    manifest = read_manifest(tmp_path / 'out')
    back = read_shard(tmp_path / 'out' / manifest['sequences'][0]['file'])
    assert len(back) == 4 and manifest['splits']['test'] == ['frames']


def test_convert_records_a_tum_truth_time_offset_and_refuses_it_elsewhere(rendered_sequence, tmp_path):
    """The offset moves where each frame's true pose is looked up: write_tum_folder's truth lies
    3 ms before each frame, 33 ms apart, so 20 ms after a frame the nearest sample within reach
    is the next frame's (and the last frame has none: left out); the dataset says which offset
    its truth has; a folder of frames has no clock of its own to offset."""
    from geovr_training.data.errors import DataFormatError
    folder = write_tum_folder(rendered_sequence, tmp_path / 'rgbd_dataset_freiburg1_xyz')
    convert('tum', folder, tmp_path / 'out', intrinsics=rendered_sequence.K[0], truth_time_offset=0.02)
    entry = read_manifest(tmp_path / 'out')['sequences'][0]
    assert entry['truth_time_offset_s'] == 0.02
    back = read_shard(tmp_path / 'out' / entry['file'])
    np.testing.assert_allclose(back.T_world_cam, rendered_sequence.T_world_cam[1:4], atol=1e-6)
    np.testing.assert_allclose(back.rgb, load_tum(folder, intrinsics=rendered_sequence.K[0]).rgb[:3])
    with pytest.raises(DataFormatError, match='TUM'):
        convert('frames', write_frames_folder(rendered_sequence, tmp_path / 'frames'), tmp_path / 'f',
                truth_time_offset=0.01)


@pytest.mark.skipif(not SHARED_REALSENSE.is_dir(), reason=f'real recording {SHARED_REALSENSE} is absent')
def test_realsense_box_loads_and_reprojects_under_1cm():
    seq = load_frames_folder(SHARED_REALSENSE)
    assert len(seq) == 50 and seq.image_size == (640, 480)
    np.testing.assert_allclose(seq.T_world_cam[0], np.eye(4), atol=1e-6)
    for i, j in [(0, 2), (10, 14), (30, 31)]:
        uv, z = reproject_depth(seq.depth[i], seq.K[i], seq.T_world_cam[i], seq.K[j], seq.T_world_cam[j])
        u, v = np.round(uv[..., 0]), np.round(uv[..., 1])
        ok = np.isfinite(u) & np.isfinite(z) & (u >= 0) & (u < 640) & (v >= 0) & (v < 480)
        err = np.abs(seq.depth[j][v[ok].astype(int), u[ok].astype(int)] - z[ok])
        err = err[np.isfinite(err)]
        assert len(err) > 10000 and np.median(err) < 0.01, (i, j, np.median(err))
