"""Replay pacing (pure, no rclpy). The frames come from `geovr_ros.recordings`, the one reader
of every recording format; its names are also importable from here under their replay names."""
from geovr_ros.recordings import (
    FORMATS, RecordingFormatError, RecordingFrame, detect_format, open_recording)
from geovr_ros.replay.clock import ReplayClock

ReplayFormatError = RecordingFormatError
ReplayFrame = RecordingFrame
open_replay_source = open_recording

__all__ = ['FORMATS', 'ReplayClock', 'ReplayFormatError', 'ReplayFrame', 'detect_format',
           'open_replay_source']
