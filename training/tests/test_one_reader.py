"""One reader for every recording format (issue #19): the same folder read by replay, by
convert / the loaders and by evaluation gives identical frames, and every bad file gives the
one error type naming the file, whichever of them reads it."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from geovr_ros.geometry import make_pose, quat_xyzw_from_matrix
from geovr_ros.recordings import RecordingFormatError, detect_format, open_recording
from geovr_ros.replay import open_replay_source

from geovr_training.data.convert import convert, load_recording
from geovr_training.data.errors import DataFormatError
from geovr_training.data.shards import read_manifest, read_shard
from geovr_training.evaluation.data import load_sequences
from test_data_loaders import write_bag

cv2 = pytest.importorskip('cv2')
N = 4
SHARED_DATA = Path(__file__).resolve().parents[3] / 'shared' / 'data'  # as conftest's, which geovr_ros/test's may shadow


def _rgb(i, h, w):
    rng = np.random.default_rng(i)
    return rng.integers(0, 256, (h, w, 3), np.uint8)


def _depth_mm(i, h, w):
    depth = np.full((h, w), 1500 + 10 * i, np.uint16)
    depth[0, :5] = 0
    return depth


def _pose(i):
    c, s = np.cos(0.05 * i), np.sin(0.05 * i)
    return make_pose(np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]), [0.1 * i, 0.02 * i, 0.0])


def seven_scenes(root, h=48, w=64):
    """frame-N.color.jpg + depth.png (mm) + pose.txt and camera-intrinsics.txt, as 7-Scenes ships."""
    root.mkdir(parents=True)
    for i in range(N):
        assert cv2.imwrite(str(root / f'frame-{i:06d}.color.jpg'), _rgb(i, h, w))
        assert cv2.imwrite(str(root / f'frame-{i:06d}.depth.png'), _depth_mm(i, h, w))
        np.savetxt(root / f'frame-{i:06d}.pose.txt', _pose(i))
    (root / 'camera-intrinsics.txt').write_text(f'50 0 {w / 2 - 0.5}\n0 50 {h / 2 - 0.5}\n0 0 1\n')
    return root


def hololens(root, h=36, w=54):
    (root / 'images').mkdir(parents=True)
    (root / 'depth').mkdir()
    for i in range(N):
        assert cv2.imwrite(str(root / 'images' / f'{i + 3:05d}.jpg'), _rgb(i, h, w))
        assert cv2.imwrite(str(root / 'depth' / f'{i + 3:05d}.png'), _depth_mm(i, h, w))
    (root / 'poses.txt').write_text(''.join(' '.join(f'{v:.9f}' for v in _pose(i).ravel()) + '\n' for i in range(N)))
    (root / 'K.txt').write_text(f'40 0 {w / 2}\n0 40 {h / 2}\n0 0 1\n')
    return root


def tum(root, h=480, w=640):
    """A TUM folder whose sensor (freiburg1) is named only by the `# file:` line of rgb.txt."""
    (root / 'rgb').mkdir(parents=True)
    (root / 'depth').mkdir()
    rgb, depth, gt = ["# color images\n# file: 'rgbd_dataset_freiburg1_desk.bag'\n"], ['# depth\n'], ['# gt\n']
    for i in range(N):
        t = 1305031102.0 + i / 30
        assert cv2.imwrite(str(root / 'rgb' / f'{t:.6f}.png'), _rgb(i, h, w))
        assert cv2.imwrite(str(root / 'depth' / f'{t + 0.005:.6f}.png'), _depth_mm(i, h, w) * 5)
        rgb.append(f'{t:.6f} rgb/{t:.6f}.png\n')
        depth.append(f'{t + 0.005:.6f} depth/{t + 0.005:.6f}.png\n')
        T = _pose(i)
        gt.append(f'{t - 0.002:.4f} ' + ' '.join(f'{v:.9f}' for v in [*T[:3, 3], *quat_xyzw_from_matrix(T[:3, :3])])
                  + '\n')
    for name, lines in (('rgb.txt', rgb), ('depth.txt', depth), ('groundtruth.txt', gt)):
        (root / name).write_text(''.join(lines))
    return root


def scannet(root, h=48, w=64):
    """ScanNet's SensReader export: colour at twice the depth camera's size, 4x4 intrinsics."""
    for kind in ('color', 'depth', 'pose', 'intrinsic'):
        (root / kind).mkdir(parents=True)
    for i in range(N):
        assert cv2.imwrite(str(root / 'color' / f'{i}.jpg'), cv2.resize(_rgb(i, h, w), (2 * w, 2 * h)))
        assert cv2.imwrite(str(root / 'depth' / f'{i}.png'), _depth_mm(i, h, w))
        np.savetxt(root / 'pose' / f'{i}.txt', _pose(i))
    for name, f in (('color', 100.0), ('depth', 50.0)):
        K = np.diag([f, f, 1.0, 1.0])
        K[:2, 2] = (f / 50.0) * w / 2 - 0.5, (f / 50.0) * h / 2 - 0.5
        np.savetxt(root / 'intrinsic' / f'intrinsic_{name}.txt', K)
    return root


WRITERS = {'7scenes': seven_scenes, 'hololens': hololens, 'tum': tum, 'scannet': scannet}
CONVERT_NAMES = {'7scenes': 'frames', 'hololens': 'hololens', 'tum': 'tum', 'scannet': 'scannet', 'rosbag': 'rosbag'}


def _recording(fmt, tmp_path, rendered_sequence):
    if fmt == 'rosbag':
        return write_bag(rendered_sequence, tmp_path / 'bag')
    return WRITERS[fmt](tmp_path / fmt)


def _assert_same(frames, seq):
    assert len(frames) == len(seq)
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(frame.rgb, seq.rgb[i])
        np.testing.assert_array_equal(frame.K, seq.K[i])
        np.testing.assert_array_equal(frame.T_world_cam, seq.T_world_cam[i])
        assert frame.stamp == seq.timestamps[i]
        if frame.depth is not None:
            np.testing.assert_array_equal(frame.depth, seq.depth[i])


@pytest.mark.parametrize('fmt', ['7scenes', 'hololens', 'tum', 'scannet', 'rosbag'])
def test_replay_convert_and_eval_read_the_same_frames(fmt, tmp_path, rendered_sequence):
    src = _recording(fmt, tmp_path, rendered_sequence)
    assert detect_format(src) == fmt
    replayed = list(open_replay_source(src))                 # what replay_node publishes
    with_depth = list(open_recording(src, with_depth=True))  # what the training side collects
    assert len(replayed) == N and all(f.depth is None for f in replayed)
    assert all(f.T_world_cam is not None for f in replayed)
    loaded = load_recording(CONVERT_NAMES[fmt], src)
    evaluated = load_sequences(src)[0]
    convert(CONVERT_NAMES[fmt], src, tmp_path / 'out')
    manifest = read_manifest(tmp_path / 'out')
    converted = read_shard(tmp_path / 'out' / manifest['sequences'][0]['file'])
    for seq in (loaded, evaluated, converted):
        _assert_same(replayed, seq)
        _assert_same(with_depth, seq)
        assert np.isfinite(seq.depth).any() and (fmt == 'rosbag' or np.isnan(seq.depth).any())  # 0 mm is NaN
    _assert_same(list(open_replay_source(tmp_path / 'out')), converted)  # the converted dataset replays the same
    _assert_same(list(open_recording(tmp_path / 'out', with_depth=True)), converted)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _resize(path):
    assert cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), (20, 10)))


# (format, damage done to the fixture, the file the error must name, what it must say)
BAD_FILES = [
    ('tum', lambda r: _truncate(sorted((r / 'rgb').iterdir())[1]), lambda r: sorted((r / 'rgb').iterdir())[1],
     'truncated or corrupt PNG'),
    ('7scenes', lambda r: (r / 'frame-000002.pose.txt').write_text('1 0 0 0\n0 1 0 0\n0 0 1 0\n'),
     lambda r: r / 'frame-000002.pose.txt', 'expected 4 rows of 4 numbers'),
    ('7scenes', lambda r: (r / 'frame-000001.pose.txt').write_text('2 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n'),
     lambda r: r / 'frame-000001.pose.txt', 'not a rigid 4x4 pose'),
    ('7scenes', lambda r: (r / 'frame-000003.pose.txt').unlink(), lambda r: r,
     r'mismatched frame counts: 4 colour, 4 depth, 3 pose files; no pose file for frame\(s\) \[3\]'),
    ('7scenes', lambda r: (r / 'camera-intrinsics.txt').write_text('-50 0 31.5\n0 50 23.5\n0 0 1\n'),
     lambda r: r / 'camera-intrinsics.txt', 'focal lengths must be positive'),
    ('hololens', lambda r: _resize(r / 'depth' / '00004.png'), lambda r: r / 'depth' / '00004.png',
     r'depth \(20, 10\) and colour \(54, 36\) sizes differ'),
    ('hololens', lambda r: (r / 'poses.txt').write_text('1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n'),
     lambda r: r / 'poses.txt', '1 poses for 4 images'),
    ('tum', lambda r: (r / 'groundtruth.txt').write_text((r / 'groundtruth.txt').read_text() + '1305031200.0 1 2 3\n'),
     lambda r: r / 'groundtruth.txt', r'line 6: expected 8 fields, found 4'),
    ('tum', lambda r: (r / 'rgb.txt').write_text('# no sensor named here\n' + (r / 'rgb.txt').read_text().split('\n', 2)[2]),
     lambda r: r, 'TUM sensor unknown'),
]


@pytest.mark.parametrize('fmt, damage, named, problem', BAD_FILES,
                         ids=[f'{b[0]}-{b[3].split(":")[0][:30]}' for b in BAD_FILES])
def test_every_reader_gives_the_one_error_naming_the_file(fmt, damage, named, problem, tmp_path):
    root = WRITERS[fmt](tmp_path / fmt)
    damage(root)
    readers = {'replay': lambda: list(open_replay_source(root, with_depth=True)),
               'load': lambda: load_recording(CONVERT_NAMES[fmt], root),
               'convert': lambda: convert(CONVERT_NAMES[fmt], root, tmp_path / 'out'),
               'eval': lambda: load_sequences(root)}
    for who, read in readers.items():
        with pytest.raises(RecordingFormatError, match=problem) as err:
            read()
        assert err.value.path == str(named(root)), who
        assert str(err.value).startswith(f'{named(root)}: '), who
        if who != 'replay':
            assert isinstance(err.value, DataFormatError), who


def test_not_a_bag_and_no_format_name_the_path(tmp_path):
    junk = tmp_path / 'junk.mcap'
    junk.write_bytes(b'not a bag at all')
    (tmp_path / 'empty').mkdir()
    for path, problem in ((junk, 'cannot open as a rosbag2'), (tmp_path / 'empty', 'none of'),
                          (tmp_path / 'missing', 'does not exist')):
        for read in (lambda: list(open_replay_source(path)), lambda: load_recording('auto', path)):
            with pytest.raises(RecordingFormatError, match=problem) as err:
                read()
            assert err.value.path == str(path)


def test_depth_is_read_only_when_asked(tmp_path):
    root = seven_scenes(tmp_path / 'frames')
    _truncate(root / 'frame-000001.depth.png')
    assert len(list(open_replay_source(root))) == N   # replay never opens the depth files
    with pytest.raises(RecordingFormatError, match='truncated') as err:
        list(open_recording(root, with_depth=True))
    assert err.value.path == str(root / 'frame-000001.depth.png')


@pytest.mark.parametrize('name', ['hololens_office', 'tum_fr1_rpy', 'realsense_box'])
def test_shared_recordings_read_the_same_through_replay_and_eval(name):
    src = SHARED_DATA / name
    if not src.is_dir():
        pytest.skip(f'shared recording {src} is absent')
    replayed = list(open_replay_source(src, require_poses=True, max_frames=6))
    evaluated = load_sequences(src, max_frames=6)[0]
    assert len(replayed) == 6
    if name == 'tum_fr1_rpy':  # evaluation also needs depth: TUM frames without it are left out
        replayed = [f for f in open_replay_source(src, require_poses=True, with_depth=True, max_frames=6)]
        np.testing.assert_allclose(replayed[0].K[:2], [[517.3, 0, 318.6], [0, 516.5, 255.3]])  # from rgb.txt
    _assert_same(replayed, evaluated)


def test_seven_scenes_seq_folders_and_a_copy_elsewhere_read_alike(tmp_path):
    """A 7-Scenes scene (seq-NN folders, no intrinsics file) is read in its Kinect's colour
    camera: the same frames as a flat copy whose intrinsics file holds that camera's K, with
    the copy's poses and depth moved from the depth camera to the colour camera by hand."""
    from geovr_ros.geometry import depth_seen_from, invert_pose
    from geovr_ros.recordings.seven_scenes import (
        SEVEN_SCENES_COLOUR_FROM_DEPTH, SEVEN_SCENES_COLOUR_INTRINSICS, SEVEN_SCENES_DEPTH_INTRINSICS)
    seq = seven_scenes(tmp_path / 'chess' / 'seq-01', h=480, w=640)
    (seq / 'camera-intrinsics.txt').unlink()
    flat = tmp_path / 'flat'
    shutil.copytree(seq, flat)
    (flat / 'intrinsics.txt').write_text('525 0 320\n0 525 240\n0 0 1\n')
    assert detect_format(tmp_path / 'chess') == '7scenes'
    replayed = list(open_replay_source(tmp_path / 'chess', with_depth=True))
    copy = load_recording('frames', flat)
    fx, fy, cx, cy = SEVEN_SCENES_DEPTH_INTRINSICS
    depth_K = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    for i, frame in enumerate(replayed):
        np.testing.assert_array_equal(frame.rgb, copy.rgb[i])
        assert tuple(frame.K[[0, 1, 0, 1], [0, 1, 2, 2]]) == SEVEN_SCENES_COLOUR_INTRINSICS
        np.testing.assert_allclose(frame.T_world_cam, copy.T_world_cam[i] @ invert_pose(SEVEN_SCENES_COLOUR_FROM_DEPTH))
        registered = depth_seen_from(copy.depth[i], depth_K, SEVEN_SCENES_COLOUR_FROM_DEPTH, frame.K, (640, 480))
        np.testing.assert_array_equal(frame.depth, registered)
    with pytest.raises(DataFormatError, match='no intrinsics file'):
        load_recording('frames', seq.rename(tmp_path / 'not-a-seq'))


def test_seven_scenes_depth_lands_where_the_colour_camera_sees_it(tmp_path):
    """The Kinect's depth camera (f 585) sees less than its colour camera (f 525) and sits 2.6 cm
    to the side: a depth step at the depth image's centre column appears where the calibration
    puts it in the colour image, and the colour image's edges have no depth."""
    seq = tmp_path / 'office' / 'seq-01'
    seq.mkdir(parents=True)
    depth = np.full((480, 640), 3000, np.uint16)
    depth[:, :320] = 1000                                     # 1 m on the left half, 3 m on the right
    assert cv2.imwrite(str(seq / 'frame-000000.color.png'), np.zeros((480, 640, 3), np.uint8))
    assert cv2.imwrite(str(seq / 'frame-000000.depth.png'), depth)
    np.savetxt(seq / 'frame-000000.pose.txt', np.eye(4))
    frame, = open_recording(seq, with_depth=True)
    row = frame.depth[240]
    assert np.isnan(row[:10]).all() and np.isnan(row[-30:]).all()     # beyond the depth camera's view
    # the near plane's last column (319 in the depth image, at 1 m), through the calibration
    from geovr_ros.recordings.seven_scenes import SEVEN_SCENES_COLOUR_FROM_DEPTH
    point = SEVEN_SCENES_COLOUR_FROM_DEPTH @ np.array([(319 - 320) / 585, 0.0, 1.0, 1.0])
    expected = 320 + 525 * point[0] / point[2]
    assert expected < 319 - 15                                # 2.6 cm and 0.5 deg move it 17 px
    near = np.flatnonzero(np.abs(row - 1.0) < 0.05)
    assert near.size and abs(near.max() - expected) <= 1.0
    assert np.nanmedian(row[400:560]) == pytest.approx(3.0, abs=0.05)
