"""One reader for every recording format (pure numpy / OpenCV, no rclpy).

`open_recording(path)` detects the format and yields `RecordingFrame`s lazily in time order;
replay_node, the tracking bench, and the training side's loaders, convert, evaluation and
export parity all read recordings through it. Formats (docs/data.md has the table):

- `generated`: a `geovr-data generate` / `convert` dataset folder (`generated.py`);
- `tum`: a TUM RGB-D folder (`tum.py`);
- `7scenes`: a 7-Scenes-style frame folder, .png or .jpg colour, or its seq-NN folders
  (`seven_scenes.py`);
- `hololens`: DeepVideoMVS's HoloLens layout (`hololens.py`);
- `scannet`: a ScanNet scene as its SensReader exports it, colour resized to the depth
  camera's size and depth registered to it (`scannet.py`);
- `rosbag`: rosbag2 folder, `.mcap`, `.db3` or ROS 1 `.bag` (`rosbag.py`, needs `rosbags`).

Frames come out pinhole: a TUM sensor with lens distortion and a bag whose camera_info has
non-zero D are undistorted as geovr_node undistorts a camera (`rectify=False` keeps the
images as recorded).

Every problem with a file raises `RecordingFormatError(path, problem)`, a ValueError.
"""
from geovr_ros.recordings.base import Recording, RecordingFormatError, RecordingFrame
from geovr_ros.recordings.detect import FORMATS, detect_format, open_recording
from geovr_ros.recordings.tum import TUM_DISTORTION, TUM_INTRINSICS, tum_distortion, tum_intrinsics

__all__ = ['FORMATS', 'Recording', 'RecordingFormatError', 'RecordingFrame', 'TUM_DISTORTION', 'TUM_INTRINSICS',
           'detect_format', 'open_recording', 'tum_distortion', 'tum_intrinsics']
