"""7-Scenes-style frame folders (also andyzeng/tsdf-fusion's sample data).

Layout: `frame-NNNNNN.color.png` (or `.color.jpg`) RGB, `frame-NNNNNN.depth.png` 16-bit
millimetres (0 and 65535 = no depth), `frame-NNNNNN.pose.txt` 4x4 camera-to-world of the
optical frame, and an intrinsics file (INTRINSICS_FILES: a 3x3 K) in the folder or the one
above it. Stamps: frame number / fps.

Microsoft's 7-Scenes keeps each sequence in a `seq-NN` folder and ships no intrinsics file;
its Kinect's colour and depth cameras are not registered, and the intrinsics it publishes,
(585, 585, 320, 240), are the depth camera's, whose poses the pose files hold. There the
frames are given in the colour camera, as the scene-coordinate literature does (DSAC, ACE):
K = SEVEN_SCENES_COLOUR_INTRINSICS, the depth registered to it (lifted with the depth
camera's K, moved by SEVEN_SCENES_COLOUR_FROM_DEPTH, splatted to the nearest pixel), and the
poses moved to the colour camera. Given intrinsics replace the colour camera's.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from geovr_ros.geometry import depth_seen_from, invert_pose
from geovr_ros.recordings._io import check_pose, read_depth, read_image, read_matrix
from geovr_ros.recordings.base import (
    FrameChecks, Recording, RecordingFormatError, RecordingFrame, intrinsics_matrix, select)

INTRINSICS_FILES = ('intrinsics.K.txt', 'camera-intrinsics.txt', 'intrinsics.txt')
SEVEN_SCENES_DEPTH_INTRINSICS = (585.0, 585.0, 320.0, 240.0)   # published with the dataset
SEVEN_SCENES_COLOUR_INTRINSICS = (525.0, 525.0, 320.0, 240.0)  # the Kinect v1 colour camera
# T_colour_depth of a Kinect v1 (LIRIS activities dataset's Kinect calibration, the one the
# 7-Scenes relocalisation literature uses): 2.6 cm along x and under a degree of rotation.
SEVEN_SCENES_COLOUR_FROM_DEPTH = np.array([
    [9.9996518012567637e-01, 2.6765126468950343e-03, -7.9041012313000904e-03, -2.5558943178152542e-02],
    [-2.7409311281316700e-03, 9.9996302803027592e-01, -8.1504520778013286e-03, 1.0109636268061706e-04],
    [7.8819942130445332e-03, 8.1718328771890631e-03, 9.9993554558014031e-01, 2.0318321729487039e-03],
    [0.0, 0.0, 0.0, 1.0]])
_FRAME = re.compile(r'^frame-(\d+)\.(color\.png|color\.jpg|depth\.png|pose\.txt)$')
_KINDS = ('color', 'depth', 'pose')


def _scan(folder: Path) -> dict[str, dict[int, Path]]:
    files: dict[str, dict[int, Path]] = {kind: {} for kind in _KINDS}
    for path in folder.iterdir():
        m = _FRAME.match(path.name)
        if m:
            files[m.group(2).split('.')[0]][int(m.group(1))] = path
    return files


def _has_colour(folder: Path) -> bool:
    return any(_FRAME.match(p.name) and '.color.' in p.name for p in folder.iterdir())


def _sequences(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob('seq-*') if p.is_dir() and _has_colour(p))


def is_seven_scenes_folder(folder: str | Path) -> bool:
    """Whether `folder` holds frame-N.color.png / .jpg files, itself or in seq-* folders."""
    folder = Path(folder)
    return folder.is_dir() and (_has_colour(folder) or bool(_sequences(folder)))


def open_seven_scenes(path: str | Path, *, sequence: str = '', intrinsics=None, fps: float = 30.0,
                      with_depth: bool = False, require_poses: bool = False, stride: int = 1,
                      max_frames: int | None = None) -> Recording:
    """Frames of a 7-Scenes-style folder (module docstring), in frame-number order.

    sequence: a sub-folder (`seq-01`); empty: the folder itself, else its first seq-* folder.
    intrinsics: (fx, fy, cx, cy), a (3, 3) K or 'fx,fy,cx,cy' overriding the folder's.
    Every frame must have the files that are read: colour; depth when `with_depth`; a pose
    when `require_poses` or when any frame has one.
    """
    root = Path(path)
    folder = root / sequence if sequence else root
    if not folder.is_dir():
        raise RecordingFormatError(folder, 'not a folder')
    if not _has_colour(folder):
        subs = _sequences(folder)
        if not subs:
            raise RecordingFormatError(folder, 'no frame-N.color.png / .color.jpg files')
        folder = subs[0]
    files = _scan(folder)
    required = ['color'] + (['depth'] if with_depth else []) \
        + (['pose'] if require_poses or files['pose'] else [])
    ids = sorted(set().union(*(files[kind] for kind in required)))
    for kind in required:
        missing = [i for i in ids if i not in files[kind]]
        if missing:
            raise RecordingFormatError(folder, f'mismatched frame counts: {len(files["color"])} colour, '
                                               f'{len(files["depth"])} depth, {len(files["pose"])} pose files; '
                                               f'no {kind} file for frame(s) {missing[:10]}')
    K, k_source = _intrinsics(root, folder, intrinsics)
    registered = k_source == folder and folder.name.startswith('seq-')   # 7-Scenes, no intrinsics file
    depth_K = intrinsics_matrix(SEVEN_SCENES_DEPTH_INTRINSICS, folder)
    depth_to_colour = invert_pose(SEVEN_SCENES_COLOUR_FROM_DEPTH)
    ids = select(ids, stride, max_frames)

    def frames():
        checks = FrameChecks()
        for number in ids:
            colour = files['color'][number]
            rgb = read_image(colour, 'rgb')
            checks.image(rgb, colour)
            checks.intrinsics(K, rgb, k_source)
            depth = None
            if with_depth:
                depth = read_depth(files['depth'][number], 1000.0, invalid_from=65.535)
                checks.depth(depth, rgb, files['depth'][number])
                if registered:
                    depth = depth_seen_from(depth, depth_K, SEVEN_SCENES_COLOUR_FROM_DEPTH, K, rgb.shape[1::-1])
            T = None
            if 'pose' in required:
                T = read_matrix(files['pose'][number], 4, 4)
                check_pose(files['pose'][number], T)
                if registered:
                    T = T @ depth_to_colour
            yield RecordingFrame(number / fps, rgb, K, T, depth, number)
    info = {'intrinsics_source': str(k_source)}
    if registered:
        info['registered'] = 'depth and poses moved from the depth camera to the colour camera'
    return Recording(folder, '7scenes', frames, len(ids), info)


def _intrinsics(root: Path, folder: Path, override) -> tuple[np.ndarray, Path]:
    """K and the file (or folder) it came from."""
    K = intrinsics_matrix(override, folder)
    if K is not None:
        return K, folder
    for place in dict.fromkeys((folder, root)):
        for name in INTRINSICS_FILES:
            if (place / name).is_file():
                return read_matrix(place / name, 3, 3), place / name
    if folder.name.startswith('seq-'):
        return intrinsics_matrix(SEVEN_SCENES_COLOUR_INTRINSICS, folder), folder
    raise RecordingFormatError(folder, f'no intrinsics file (one of {", ".join(INTRINSICS_FILES)}) and no K '
                                       'given (only 7-Scenes seq-NN folders default to its Kinect\'s K)')
