"""GeoVR-ROS: spatial perception from a single camera.

Importing this package (or its pure core, `geovr_ros.geometry`) never imports rclpy:
the ROS nodes live in `geovr_ros.nodes` and import ROS on their own.
"""

__version__ = '0.1.0'
