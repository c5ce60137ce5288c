"""Visual odometry from the model's relative poses (pure numpy, no rclpy)."""
from geovr_ros.odometry.tracker import OdometryTracker, OdometryUpdate, StampCheck, StampGate

__all__ = ['OdometryTracker', 'OdometryUpdate', 'StampCheck', 'StampGate']
