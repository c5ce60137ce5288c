"""ScanNet scenes as its SensReader exports them (and the many tools that write the same layout).

Layout: `color/N.jpg` RGB (1296x968 on ScanNet's Structure sensor rig), `depth/N.png` 16-bit
millimetres (640x480, 0 = no depth), `pose/N.txt` 4x4 camera-to-world (rows of `-inf` or `nan`
where ScanNet's reconstruction lost the camera), and `intrinsic/intrinsic_color.txt`,
`intrinsic_depth.txt` (4x4, K in the upper left), `extrinsic_color.txt`, `extrinsic_depth.txt`
(4x4 camera-to-rig; identity in ScanNet's exports, assumed so when absent). N counts from 0.
Stamps: frame number / fps (the sensor ran at 30 Hz; an export that kept every k-th frame
numbers them 0, k, 2k... or 0, 1, 2...: pass fps accordingly).

The colour and depth cameras are not registered and see the scene at different sizes, so the
frames are given at the depth camera's size in the colour camera: the colour image resized to
the depth image's size (K_colour scaled with it), the depth lifted with K_depth, moved into the
colour camera by the extrinsics and splatted to the nearest pixel (`depth_seen_from`), as the
7-Scenes reader registers the Kinect's. Frames without a pose are left out when poses are
required, else come with `T_world_cam` None.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from geovr_ros.geometry import depth_seen_from, invert_pose, resize_intrinsics
from geovr_ros.recordings._io import check_pose, read_depth, read_image, read_matrix
from geovr_ros.recordings.base import (
    FrameChecks, Recording, RecordingFormatError, RecordingFrame, intrinsics_matrix, select)

_NUMBERED = re.compile(r'^(\d+)\.(jpg|jpeg|png|txt)$', re.IGNORECASE)


def _numbered(folder: Path, suffixes: tuple[str, ...]) -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    return {int(m.group(1)): p for p in folder.iterdir()
            if (m := _NUMBERED.match(p.name)) and m.group(2).lower() in suffixes}


def is_scannet_folder(folder: str | Path) -> bool:
    """Whether `folder` holds ScanNet's export: color/ with numbered images and intrinsic/."""
    folder = Path(folder)
    return (folder / 'intrinsic').is_dir() and bool(_numbered(folder / 'color', ('jpg', 'jpeg', 'png')))


def _pose(path: Path) -> np.ndarray | None:
    """The 4x4 camera-to-world of a pose file, or None where ScanNet wrote -inf / nan (lost)."""
    T = read_matrix(path, 4, 4, finite=False)
    if not np.isfinite(T).all():
        return None
    check_pose(path, T)
    return T


def _camera(folder: Path, name: str) -> np.ndarray:
    """The upper-left 3x3 of a 4x4 intrinsic file (a 3x3 one is read as it is)."""
    path = folder / 'intrinsic' / f'intrinsic_{name}.txt'
    try:
        return read_matrix(path, 4, 4)[:3, :3]
    except RecordingFormatError as as_4x4:
        try:
            return read_matrix(path, 3, 3)
        except RecordingFormatError:
            raise as_4x4 from None


def _extrinsic(folder: Path, name: str) -> np.ndarray:
    path = folder / 'intrinsic' / f'extrinsic_{name}.txt'
    return read_matrix(path, 4, 4) if path.is_file() else np.eye(4)


def open_scannet(path: str | Path, *, intrinsics=None, fps: float = 30.0, with_depth: bool = False,
                 require_poses: bool = False, stride: int = 1, max_frames: int | None = None) -> Recording:
    """Frames of a ScanNet export (module docstring), in frame-number order, at the depth
    camera's size. intrinsics: the colour camera's K at its own size ((fx, fy, cx, cy), (3, 3)
    or 'fx,fy,cx,cy'), replacing intrinsic_color.txt."""
    folder = Path(path)
    if not is_scannet_folder(folder):
        raise RecordingFormatError(folder, 'not a ScanNet export (color/N.jpg and intrinsic/ expected)')
    colour = _numbered(folder / 'color', ('jpg', 'jpeg', 'png'))
    depth = _numbered(folder / 'depth', ('png',))
    poses = _numbered(folder / 'pose', ('txt',))
    if not depth:
        raise RecordingFormatError(folder / 'depth', 'no numbered depth PNGs: the frames are given at the depth '
                                                     "camera's size")
    missing = {kind: [n for n in colour if n not in files] for kind, files in (('depth', depth), ('pose', poses))}
    if missing['depth'] or (poses and missing['pose']):
        kind = 'depth' if missing['depth'] else 'pose'
        raise RecordingFormatError(folder, f'mismatched frame counts: {len(colour)} colour, {len(depth)} depth, '
                                           f'{len(poses)} pose files; no {kind} file for frame(s) '
                                           f'{missing[kind][:10]}')
    K_colour = intrinsics_matrix(intrinsics, folder)
    K_colour = _camera(folder, 'color') if K_colour is None else K_colour
    K_depth = _camera(folder, 'depth')
    T_colour_depth = invert_pose(_extrinsic(folder, 'color')) @ _extrinsic(folder, 'depth')
    numbers = sorted(colour)
    pose_of = {n: _pose(poses[n]) for n in numbers} if poses else {}
    if require_poses:
        if not poses:
            raise RecordingFormatError(folder / 'pose', 'no pose files, and poses are required')
        numbers = [n for n in numbers if pose_of[n] is not None]
        if not numbers:
            raise RecordingFormatError(folder / 'pose', 'every pose is invalid (-inf / nan)')
    numbers = select(numbers, stride, max_frames)
    depth_size = read_image(depth[numbers[0]], 'depth16').shape[::-1] if numbers else (0, 0)

    def frames():
        import cv2
        checks = FrameChecks()
        for number in numbers:
            rgb = read_image(colour[number], 'rgb')
            checks.image(rgb, colour[number])
            checks.intrinsics(K_colour, rgb, folder / 'intrinsic' / 'intrinsic_color.txt')
            K = resize_intrinsics(K_colour, rgb.shape[1::-1], depth_size)
            rgb = cv2.resize(rgb, depth_size, interpolation=cv2.INTER_AREA)
            registered = None
            if with_depth:
                raw = read_depth(depth[number], 1000.0)
                if raw.shape[::-1] != depth_size:
                    raise RecordingFormatError(depth[number], f'size {raw.shape[::-1]} differs from the first depth '
                                                              f'image {depth_size}')
                registered = depth_seen_from(raw, K_depth, T_colour_depth, K, depth_size)
            yield RecordingFrame(number / fps, rgb, K, pose_of.get(number), registered, number)
    info = {'colour_size': 'resized to the depth camera size', 'depth': 'registered to the colour camera',
            'frames_without_pose': sum(T is None for T in pose_of.values())}
    return Recording(folder, 'scannet', frames, len(numbers), info)
