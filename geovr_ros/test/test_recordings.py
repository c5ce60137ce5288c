"""geovr_ros.recordings without the training package: detection, frame choice before decoding,
re-iteration, the error type."""
import pickle

import numpy as np
import pytest

from geovr_ros.geometry import make_pose
from geovr_ros.recordings import FORMATS, RecordingFormatError, detect_format, open_recording

cv2 = pytest.importorskip('cv2', reason='OpenCV reads the image files')


def frames_folder(root, n=6, size=(24, 32)):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        assert cv2.imwrite(str(root / f'frame-{i:06d}.color.png'), np.full((*size, 3), 20 * i, np.uint8))
        np.savetxt(root / f'frame-{i:06d}.pose.txt', make_pose(np.eye(3), [0.1 * i, 0, 0]))
    (root / 'intrinsics.txt').write_text('30 0 15.5\n0 30 11.5\n0 0 1\n')
    return root


def test_bag_files_are_detected_by_suffix_and_other_files_refused(tmp_path):
    for suffix in ('.mcap', '.db3', '.bag'):
        (tmp_path / f'x{suffix}').write_bytes(b'')
        assert detect_format(tmp_path / f'x{suffix}') == 'rosbag'
    (tmp_path / 'x.txt').write_text('')
    with pytest.raises(RecordingFormatError, match='must be a bag') as err:
        detect_format(tmp_path / 'x.txt')
    assert err.value.path == str(tmp_path / 'x.txt')
    with pytest.raises(RecordingFormatError, match='unknown recording format'):
        open_recording(tmp_path, 'kinect')
    assert set(FORMATS) == {'generated', 'tum', '7scenes', 'hololens', 'scannet', 'rosbag'}


def test_stride_and_max_frames_choose_frames_before_decoding(tmp_path):
    root = frames_folder(tmp_path / 'f')
    (root / 'frame-000003.color.png').write_bytes(b'\x89PNG broken')  # never decoded at stride 2
    recording = open_recording(root, stride=2, max_frames=2)
    assert len(recording) == 2
    assert [f.number for f in recording] == [0, 2]
    assert [f.number for f in recording] == [0, 2]                   # iterating again starts over
    assert [f.stamp for f in recording] == pytest.approx([0.0, 2 / 30])
    with pytest.raises(RecordingFormatError, match='truncated or corrupt PNG') as err:
        list(open_recording(root))
    assert err.value.path == str(root / 'frame-000003.color.png')
    with pytest.raises(ValueError, match='stride'):
        open_recording(root, stride=0)


def test_intrinsics_override_and_its_check(tmp_path):
    root = frames_folder(tmp_path / 'f', n=1)
    assert next(iter(open_recording(root, intrinsics=(10, 11, 12, 13)))).K[1, 1] == 11
    assert next(iter(open_recording(root, intrinsics='10,11,12,13'))).K[0, 2] == 12
    with pytest.raises(RecordingFormatError, match=r"intrinsics '10,11': expected fx,fy,cx,cy"):
        open_recording(root, intrinsics='10,11')
    with pytest.raises(RecordingFormatError, match='principal point') as err:
        list(open_recording(root, intrinsics=(10, 10, 500, 12)))
    assert err.value.path == str(root)


def test_the_error_names_path_and_problem_and_survives_pickling():
    error = RecordingFormatError('/data/x/poses.txt', '3 poses for 4 images')
    assert isinstance(error, ValueError) and str(error) == '/data/x/poses.txt: 3 poses for 4 images'
    back = pickle.loads(pickle.dumps(error))
    assert (back.path, back.problem, str(back)) == (error.path, error.problem, str(error))
