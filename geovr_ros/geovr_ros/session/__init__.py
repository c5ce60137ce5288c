"""A frame's whole journey from one camera, without ROS (numpy, OpenCV, GTSAM, the backends).

    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.session import Session, SessionConfig
    session = Session(PerceptionPipeline(model_dir), SessionConfig(), mount=np.eye(4))
    result = session.process(rgb, K, stamp)        # ProcessedFrame or FrameDrop
    answer = session.answer('how far have I travelled?', now=stamp)

geovr_node converts messages, owns threads, parameters, publishers and services, and
publishes what `process` returns; `geovr-eval odometry` and the tests run the same session.
"""
from geovr_ros.session.config import ODOMETRY_METHODS, SessionConfig
from geovr_ros.session.geometric import GeometricOdometry, GeometricStep
from geovr_ros.session.results import DROP_REASONS, FrameDrop, FrameResult, ProcessedFrame
from geovr_ros.session.session import (
    CLOCK_MISMATCH_S, KEPT_KEYFRAME_INPUTS, STAMP_JUMP_CONFIRM_FRAMES, Session, denormalised_rgb)

__all__ = ['CLOCK_MISMATCH_S', 'DROP_REASONS', 'FrameDrop', 'FrameResult', 'GeometricOdometry',
           'GeometricStep', 'KEPT_KEYFRAME_INPUTS', 'ODOMETRY_METHODS', 'ProcessedFrame',
           'STAMP_JUMP_CONFIRM_FRAMES', 'Session', 'SessionConfig', 'denormalised_rgb']
