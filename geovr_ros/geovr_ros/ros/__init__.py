"""ROS message conversions and small rclpy helpers (the edge between the core and ROS)."""
