"""Real RGB-D recordings as in-memory ``types.Sequence`` (the format of rendered data), read
with the runtime's one recording reader (``geovr_ros.recordings``, docs/data.md):

- ``load_frames_folder``: 7-Scenes-style frame folders;
- ``load_tum``: TUM RGB-D folders (associated frames only);
- ``load_hololens``: the HoloLens layout;
- ``load_scannet``: a ScanNet scene as its SensReader exports it (frames without a pose left out);
- ``load_rosbag``: rosbag2 (sqlite3 or MCAP) / rosbag1 files of Image + CameraInfo
  (+ depth Image, /tf, /tf_static).

Every frame has colour, depth (metres, NaN invalid), K and a pose (NaN for a bag without TF).
Every problem with a file raises ``DataFormatError`` naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from geovr_ros.recordings import RecordingFormatError, open_recording
from geovr_ros.recordings.hololens import is_hololens_folder

from ..errors import DataFormatError
from ..types import Sequence


def read_sequence(path: str | Path, fmt: str, name: str, info: dict[str, Any], **options: Any) -> Sequence:
    """Every frame of the recording at ``path`` (format ``fmt``), with depth, as a Sequence
    named ``name``; ``info`` plus what the reader chose become ``Sequence.info``. ``options``
    go to ``open_recording``."""
    try:
        recording = open_recording(path, fmt, with_depth=True, **options)
        frames = list(recording)
    except RecordingFormatError as exc:
        raise DataFormatError(exc.path, exc.problem) from None
    if not frames:
        raise DataFormatError(path, 'no frames')
    nan_pose = np.full((4, 4), np.nan)
    return Sequence(name=name, rgb=np.stack([f.rgb for f in frames]), depth=np.stack([f.depth for f in frames]),
                    K=np.stack([f.K for f in frames]).astype(np.float64),
                    T_world_cam=np.stack([nan_pose if f.T_world_cam is None else f.T_world_cam for f in frames]),
                    timestamps=np.array([f.stamp for f in frames], dtype=np.float64),
                    info={**info, **recording.info, 'path': str(path), 'frame_ids': [f.number for f in frames]})


def load_frames_folder(folder: str | Path, K: np.ndarray | None = None, fps: float = 30.0, stride: int = 1,
                       max_frames: int | None = None, name: str | None = None) -> Sequence:
    """A 7-Scenes-style frame folder (timestamps = frame number / fps); every frame needs
    colour, depth and pose; K overrides the folder's intrinsics file."""
    return read_sequence(folder, '7scenes', name or Path(folder).name, {'source': 'frames'}, intrinsics=K, fps=fps,
                         require_poses=True, stride=stride, max_frames=max_frames)


def load_tum(folder: str | Path, intrinsics: str | np.ndarray | None = None, max_difference: float = 0.02,
             stride: int = 1, max_frames: int | None = None, name: str | None = None,
             truth_time_offset: float = 0.0) -> Sequence:
    """A TUM RGB-D folder: the colour frames with a depth frame and a ground-truth pose within
    ``max_difference`` s. intrinsics: freiburg1|2|3, 'fx,fy,cx,cy' or a (3, 3) K (default: the
    sensor named by the folder or its rgb.txt); truth_time_offset: seconds added to a frame's
    stamp where its true pose is looked up (``geovr_ros.recordings.tum.open_tum``)."""
    return read_sequence(folder, 'tum', name or Path(folder).name, {'source': 'tum'}, intrinsics=intrinsics,
                         max_difference=max_difference, require_poses=True, stride=stride, max_frames=max_frames,
                         truth_time_offset=truth_time_offset)


def load_hololens(folder: str | Path, fps: float = 30.0, stride: int = 1, max_frames: int | None = None,
                  name: str | None = None) -> Sequence:
    """A HoloLens-layout folder (timestamps = image number / fps)."""
    return read_sequence(folder, 'hololens', name or Path(folder).name, {'source': 'hololens'}, fps=fps,
                         stride=stride, max_frames=max_frames)


def load_scannet(folder: str | Path, fps: float = 30.0, stride: int = 1, max_frames: int | None = None,
                 name: str | None = None) -> Sequence:
    """A ScanNet export (timestamps = frame number / fps), at the depth camera's size; frames
    whose pose ScanNet lost (-inf) are left out."""
    return read_sequence(folder, 'scannet', name or Path(folder).name, {'source': 'scannet'}, fps=fps,
                         require_poses=True, stride=stride, max_frames=max_frames)


def load_rosbag(path: str | Path, image_topic: str | None = None, depth_topic: str | None = None,
                world_frame: str | None = None, max_difference: float = 0.02, stride: int = 1,
                max_frames: int | None = None, name: str | None = None) -> Sequence:
    """A bag (rosbag2 folder, .mcap/.db3 file or ROS 1 .bag); NaN poses without TF."""
    return read_sequence(path, 'rosbag', name or Path(path).stem, {'source': 'rosbag'}, image_topic=image_topic,
                         depth_topic=depth_topic, world_frame=world_frame, max_difference=max_difference,
                         stride=stride, max_frames=max_frames)


__all__ = ['is_hololens_folder', 'load_frames_folder', 'load_hololens', 'load_rosbag', 'load_scannet', 'load_tum',
           'read_sequence']
