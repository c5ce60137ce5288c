"""Loaders of real RGB-D recordings into ``types.Sequence`` (same format as rendered data).

- ``load_frames_folder``: 7-Scenes-style frame folders (frame-N.color.png, frame-N.depth.png
  in millimetres, frame-N.pose.txt 4x4 camera-to-world, an intrinsics file);
- ``load_tum``: TUM RGB-D folders (rgb.txt, depth.txt, groundtruth.txt; depth / 5000);
- ``load_hololens``: the HoloLens layout (images/, depth/ in mm, poses.txt, K.txt);
- ``load_rosbag``: rosbag2 (sqlite3 or MCAP) / rosbag1 files of Image + CameraInfo
  (+ depth Image, /tf, /tf_static), read with ``rosbags`` (no ROS install).

Every problem with a file raises ``DataFormatError`` naming the file and the problem.
"""

from .frames import load_frames_folder
from .hololens import is_hololens_folder, load_hololens
from .rosbag import load_rosbag
from .tum import TUM_INTRINSICS, load_tum

__all__ = ['load_frames_folder', 'load_hololens', 'is_hololens_folder', 'load_tum', 'load_rosbag', 'TUM_INTRINSICS']
