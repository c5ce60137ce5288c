"""ROS 2 nodes and command-line tools of GeoVR-ROS (thin: convert messages, call the cores)."""
