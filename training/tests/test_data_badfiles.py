"""Bad files give a DataFormatError naming the file and the problem."""

import pytest

from geovr_training.data.errors import DataError, DataFormatError
from geovr_training.data.loaders import load_frames_folder, load_rosbag, load_tum
from test_data_loaders import write_bag, write_frames_folder, write_tum_folder


def test_truncated_png(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'f', n=2)
    png = folder / 'frame-000001.color.png'
    png.write_bytes(png.read_bytes()[:300])
    with pytest.raises(DataFormatError, match=r'frame-000001\.color\.png: truncated or corrupt PNG') as err:
        load_frames_folder(folder)
    assert err.value.path == str(png)


def test_missing_pose_line(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'f', n=2)
    pose = folder / 'frame-000000.pose.txt'
    pose.write_text('\n'.join(pose.read_text().splitlines()[:3]) + '\n')
    with pytest.raises(DataFormatError, match=r'frame-000000\.pose\.txt: expected 4 rows of 4 numbers, found 3 rows'):
        load_frames_folder(folder)


def test_non_rigid_pose(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'f', n=1)
    (folder / 'frame-000000.pose.txt').write_text('2 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n')
    with pytest.raises(DataFormatError, match='not a rigid 4x4 pose'):
        load_frames_folder(folder)


def test_mismatched_frame_counts(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'f', n=3)
    (folder / 'frame-000002.depth.png').unlink()
    with pytest.raises(DataFormatError, match=r'mismatched frame counts: 3 colour, 2 depth, 3 pose.*no depth file for '
                                              r'frame\(s\) \[2\]') as err:
        load_frames_folder(folder)
    assert err.value.path == str(folder)


def test_missing_intrinsics_file(rendered_sequence, tmp_path):
    folder = write_frames_folder(rendered_sequence, tmp_path / 'f', n=1)
    (folder / 'intrinsics.K.txt').unlink()
    with pytest.raises(DataFormatError, match='no intrinsics file'):
        load_frames_folder(folder)


def test_bag_without_camera_info(rendered_sequence, tmp_path):
    bag = write_bag(rendered_sequence, tmp_path / 'nobag', n=2, camera_info=False)
    with pytest.raises(DataFormatError, match=r'nobag: no sensor_msgs/msg/CameraInfo topic') as err:
        load_rosbag(bag)
    assert '/camera/color/image_raw' in str(err.value)


def test_not_a_bag(tmp_path):
    junk = tmp_path / 'junk.mcap'
    junk.write_bytes(b'not a bag at all')
    with pytest.raises(DataFormatError, match='junk.mcap: cannot open'):
        load_rosbag(junk)


def test_tum_bad_groundtruth_line_and_no_association(rendered_sequence, tmp_path):
    folder = write_tum_folder(rendered_sequence, tmp_path / 'tum', n=2)
    gt = folder / 'groundtruth.txt'
    good = gt.read_text()
    gt.write_text(good + '1305031200.0 1 2 3\n')
    with pytest.raises(DataFormatError, match=r'groundtruth.txt: line \d+: expected 8 fields, found 4'):
        load_tum(folder, intrinsics='80,80,79.5,59.5')
    gt.write_text('# nothing near the images\n1.0 0 0 0 0 0 0 1\n')
    with pytest.raises(DataFormatError, match='no colour frame has a depth frame and a ground-truth pose'):
        load_tum(folder, intrinsics='80,80,79.5,59.5')


def test_typed_errors_are_value_errors():
    assert issubclass(DataFormatError, DataError) and issubclass(DataError, ValueError)
