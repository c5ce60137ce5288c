"""Localization in a keyframe map (pure numpy, no rclpy)."""
from geovr_ros.localization.keyframe_map import Keyframe, KeyframeMap, MapFileError
from geovr_ros.localization.localizer import Localizer, LocalizerConfig
from geovr_ros.localization.overlap import view_overlap
from geovr_ros.localization.smoothing import WindowedMapOdomEstimator

__all__ = ['Keyframe', 'KeyframeMap', 'Localizer', 'LocalizerConfig', 'MapFileError',
           'WindowedMapOdomEstimator', 'view_overlap']
