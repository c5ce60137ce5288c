"""The ScanNet reader on a ScanNet-layout copy of the real HoloLens excerpt: its colour at twice the
depth camera's size, the depth, poses and intrinsics as ScanNet's SensReader writes them."""
from pathlib import Path

import numpy as np
import pytest

from geovr_ros.geometry import resize_intrinsics
from geovr_ros.recordings import RecordingFormatError, detect_format, open_recording

cv2 = pytest.importorskip('cv2', reason='OpenCV reads the image files')
EXCERPT = Path(__file__).resolve().parents[2] / 'fixtures' / 'hololens_office_excerpt'
FRAMES = 6


@pytest.fixture(scope='module')
def excerpt():
    """The first FRAMES frames of the excerpt as the HoloLens reader gives them (with depth)."""
    return list(open_recording(EXCERPT, with_depth=True, max_frames=FRAMES))


def scannet_copy(root: Path, frames, lost=(), extrinsic=True) -> Path:
    """`frames` written in ScanNet's layout: colour 2x larger, 4x4 intrinsics, -inf poses for `lost`."""
    for kind in ('color', 'depth', 'pose', 'intrinsic'):
        (root / kind).mkdir(parents=True, exist_ok=True)
    h, w = frames[0].depth.shape
    for n, f in enumerate(frames):
        big = cv2.resize(f.rgb, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
        assert cv2.imwrite(str(root / 'color' / f'{n}.jpg'), big[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        millimetres = np.nan_to_num(f.depth * 1000.0, nan=0.0).round().astype(np.uint16)
        assert cv2.imwrite(str(root / 'depth' / f'{n}.png'), millimetres)
        np.savetxt(root / 'pose' / f'{n}.txt', np.full((4, 4), -np.inf) if n in lost else f.T_world_cam)
    K4 = np.eye(4)
    K4[:3, :3] = resize_intrinsics(frames[0].K, (w, h), (2 * w, 2 * h))
    np.savetxt(root / 'intrinsic' / 'intrinsic_color.txt', K4)
    K4[:3, :3] = frames[0].K
    np.savetxt(root / 'intrinsic' / 'intrinsic_depth.txt', K4)
    if extrinsic:
        for name in ('color', 'depth'):
            np.savetxt(root / 'intrinsic' / f'extrinsic_{name}.txt', np.eye(4))
    return root


def test_a_scannet_export_is_read_at_the_depth_cameras_size_with_its_depth_registered(tmp_path, excerpt):
    root = scannet_copy(tmp_path / 'scene0000_00', excerpt, lost={2}, extrinsic=False)
    assert detect_format(root) == 'scannet'
    recording = open_recording(root, with_depth=True)
    frames = list(recording)
    assert recording.format == 'scannet' and len(recording) == len(frames) == FRAMES
    assert recording.info['frames_without_pose'] == 1
    for n, (got, want) in enumerate(zip(frames, excerpt)):
        assert got.rgb.shape == want.rgb.shape and got.number == n and got.stamp == pytest.approx(n / 30.0)
        np.testing.assert_allclose(got.K, want.K, atol=1e-9)
        assert np.abs(got.rgb.astype(int) - want.rgb).mean() < 6   # back from 2x through JPEG
        valid = np.isfinite(want.depth)
        assert np.array_equal(np.isfinite(got.depth), valid)
        np.testing.assert_allclose(got.depth[valid], want.depth[valid], atol=6e-4)   # millimetres
        if n == 2:
            assert got.T_world_cam is None                 # ScanNet lost the camera there
        else:
            np.testing.assert_allclose(got.T_world_cam, want.T_world_cam, atol=1e-6)
    posed = open_recording(root, require_poses=True)
    assert [f.number for f in posed] == [0, 1, 3, 4, 5]


def test_the_depth_is_moved_into_the_colour_camera_by_the_extrinsics(tmp_path, excerpt):
    root = scannet_copy(tmp_path / 'scene', excerpt[:1])
    shift = np.eye(4)
    shift[0, 3] = 0.05                                     # the depth camera 5 cm right of the rig
    np.savetxt(root / 'intrinsic' / 'extrinsic_depth.txt', shift)
    (frame,) = open_recording(root, with_depth=True)
    want = excerpt[0].depth
    # a point seen by the depth camera lies 5 cm further right for the colour camera: fx * 0.05 / z pixels
    v, u = np.argwhere(np.isfinite(want))[len(np.argwhere(np.isfinite(want))) // 2]
    z = float(want[v, u])
    moved = int(round(u + excerpt[0].K[0, 0] * 0.05 / z))
    assert frame.depth[v, moved] == pytest.approx(z, abs=0.05)


def test_a_broken_export_names_the_file(tmp_path, excerpt):
    root = scannet_copy(tmp_path / 'scene', excerpt[:3])
    (root / 'depth' / '1.png').unlink()
    with pytest.raises(RecordingFormatError, match=r'no depth file for frame\(s\) \[1\]'):
        open_recording(root)
    root = scannet_copy(tmp_path / 'other', excerpt[:2])
    (root / 'intrinsic' / 'intrinsic_depth.txt').write_text('1 2 3\n')
    with pytest.raises(RecordingFormatError, match='intrinsic_depth.txt'):
        open_recording(root)
    np.savetxt(root / 'intrinsic' / 'intrinsic_depth.txt', excerpt[0].K)      # a 3x3 K is read too
    (root / 'pose' / '1.txt').write_text('1 0 0 0\n')
    with pytest.raises(RecordingFormatError, match='1.txt: expected 4 rows'):
        open_recording(root)
