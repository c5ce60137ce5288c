"""Which format a path holds, and opening it with that format's reader."""
from __future__ import annotations

import os
from pathlib import Path

from geovr_ros.recordings.base import Recording, RecordingFormatError
from geovr_ros.recordings.generated import is_generated_folder, open_generated
from geovr_ros.recordings.hololens import is_hololens_folder, open_hololens
from geovr_ros.recordings.rosbag import BAG_SUFFIXES, open_rosbag
from geovr_ros.recordings.scannet import is_scannet_folder, open_scannet
from geovr_ros.recordings.seven_scenes import is_seven_scenes_folder, open_seven_scenes
from geovr_ros.recordings.tum import open_tum

FORMATS = ('generated', 'tum', '7scenes', 'hololens', 'scannet', 'rosbag')


def detect_format(path: str | os.PathLike) -> str:
    """The format (one of FORMATS) of the recording at `path`; RecordingFormatError naming the
    path when it does not exist or is none of them."""
    p = Path(path)
    if not p.exists():
        raise RecordingFormatError(p, 'does not exist')
    if p.is_file():
        if p.suffix in BAG_SUFFIXES:
            return 'rosbag'
        raise RecordingFormatError(p, f'a recording file must be a bag ({", ".join(BAG_SUFFIXES)})')
    if is_generated_folder(p):
        return 'generated'
    if (p / 'metadata.yaml').is_file():
        return 'rosbag'
    if (p / 'rgb.txt').is_file():
        return 'tum'
    if is_seven_scenes_folder(p):
        return '7scenes'
    if is_hololens_folder(p):
        return 'hololens'
    if is_scannet_folder(p):
        return 'scannet'
    raise RecordingFormatError(p, 'none of: generated dataset (manifest.json / *.geovr.npz), TUM (rgb.txt), '
                                  '7-Scenes (frame-*.color.png / .jpg, or in seq-*/), HoloLens (images/ + '
                                  'poses.txt), ScanNet (color/N.jpg + intrinsic/), rosbag2 (metadata.yaml / .mcap / .db3), rosbag1 (.bag)')


def open_recording(path: str | os.PathLike, fmt: str = 'auto', *, sequence: str = '', intrinsics=None,
                   fps: float = 30.0, max_difference: float = 0.02, image_topic: str | None = None,
                   camera_info_topic: str | None = None, depth_topic: str | None = None,
                   world_frame: str | None = None, with_depth: bool = False, require_poses: bool = False,
                   stride: int = 1, max_frames: int | None = None, rectify: bool = True,
                   truth_time_offset: float = 0.0) -> Recording:
    """Open the recording at `path` for lazy reading of its frames in time order.

    fmt: 'auto' (detect_format) or one of FORMATS. Checks what can be checked without decoding
    images now (lists, poses, intrinsics files, topics) and raises RecordingFormatError naming
    the file; images are decoded, and checked, as the frames are iterated.

    sequence: a generated dataset's sequence name or index, or a 7-Scenes seq-NN folder;
    intrinsics: K overriding the format's own: (fx, fy, cx, cy) pixels, a (3, 3) K, 'fx,fy,cx,cy'
    or, for TUM, a sensor name (freiburg1|2|3); fps: frame rate (Hz) of the formats stamped by
    frame number (7-Scenes, HoloLens, ScanNet); max_difference: seconds within which TUM lists and bag
    depth are associated; image_topic, camera_info_topic, depth_topic, world_frame: bag
    choices (default: chosen from the bag); with_depth: read depth (H, W) metres, leaving out
    TUM frames without it; require_poses: every frame must have a pose (TUM leaves out frames
    without one); stride, max_frames: every stride-th frame, at most max_frames of them,
    chosen before any image is decoded; rectify: undistort the frames of a camera with lens
    distortion (a TUM freiburg1 / freiburg2 sensor, a bag's camera_info with non-zero D),
    depth with them; truth_time_offset: seconds added to a frame's stamp where its true pose is
    looked up, for a recording whose truth has a clock of its own (TUM's motion capture;
    open_tum), refused for the others.
    """
    fmt = detect_format(path) if fmt == 'auto' else fmt
    if truth_time_offset and fmt != 'tum':
        raise RecordingFormatError(path, f'a truth_time_offset ({truth_time_offset!r} s) applies to a TUM '
                                         f'recording, whose truth has its own clock; this one is {fmt!r}')
    common = {'stride': stride, 'max_frames': max_frames, 'intrinsics': intrinsics, 'with_depth': with_depth}
    if fmt == 'generated':
        return open_generated(path, sequence=sequence, **common)
    if fmt == 'tum':
        return open_tum(path, max_difference=max_difference, require_poses=require_poses, rectify=rectify,
                        truth_time_offset=truth_time_offset, **common)
    if fmt == '7scenes':
        return open_seven_scenes(path, sequence=sequence, fps=fps, require_poses=require_poses, **common)
    if fmt == 'hololens':
        return open_hololens(path, fps=fps, **common)
    if fmt == 'scannet':
        return open_scannet(path, fps=fps, require_poses=require_poses, **common)
    if fmt == 'rosbag':
        return open_rosbag(path, image_topic=image_topic or None, camera_info_topic=camera_info_topic or None,
                           depth_topic=depth_topic or None, world_frame=world_frame or None,
                           max_difference=max_difference, require_poses=require_poses, rectify=rectify,
                           **common)
    raise RecordingFormatError(path, f'unknown recording format {fmt!r}; expected auto or one of {FORMATS}')
