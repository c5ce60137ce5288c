"""Readers of recorded or generated sequences for replay (pure, no rclpy)."""
from geovr_ros.replay.readers import (
    ReplayFormatError, ReplayFrame, open_replay_source, detect_format, FORMATS)
from geovr_ros.replay.clock import ReplayClock

__all__ = ['FORMATS', 'ReplayClock', 'ReplayFormatError', 'ReplayFrame', 'detect_format',
           'open_replay_source']
