"""A real geovr_node whose inputs stay silent says why, once, from the ROS graph: no publisher
(and where the type is published), a QoS that never matches, images without any camera_info,
no wheel odometry on scale_odometry_topic."""
from __future__ import annotations

import pytest

from ros_helpers import Process, camera_frame, intrinsics, node_args, spin_until, textured_image, tiny_model

rclpy = pytest.importorskip('rclpy')


def test_a_silent_input_is_explained_once_from_the_ros_graph(ros_env):
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Image

    from geovr_ros.ros.qos import qos_profile
    model = tiny_model(ros_env)
    rclpy.init()
    probe = rclpy.create_node('silent_input_probe')
    node = Process('geovr_node', node_args(
        {'model': str(model), 'backend': 'onnxruntime', 'input_timeout': 1.0, 'qos_reliability': 'reliable',
         'diagnostics_period': 0.5, 'scale_odometry_topic': '/wheel/odometry'},
        {'image': '/quiet/image', 'camera_info': '/quiet/camera_info'}), ros_env, 'silent_node')
    messages = []
    probe.create_subscription(DiagnosticArray, '/diagnostics',
                              lambda m: messages.extend(s.message for s in m.status), 20)
    try:
        probe.create_publisher(Image, '/loud/image', 1)   # the camera, on a topic the node was not told
        probe.create_publisher(Odometry, '/odom', 1)       # the wheels, likewise
        assert node.wait_for_output('active:', 60), node.output()
        assert node.wait_for_output('nothing received on /quiet/image', 20), node.output()[-2000:]
        # /diagnostics says it while it lasts, from the graph of the moment (discovery may lag the log)
        assert spin_until(probe, lambda: any('no node publishes it; sensor_msgs/msg/Image is published on '
                                             '/loud/image (remap image:=<topic>)' in m for m in messages), 15), \
            messages[-3:]
        assert not any('/depth' in m for m in messages)   # the node's own outputs are no camera
        # a best-effort publisher on the right topic never matches the reliable subscription
        best_effort = probe.create_publisher(Image, '/quiet/image', qos_profile('best_effort', 'volatile', 1))
        assert spin_until(probe, lambda: any('offers reliability best_effort and this node asks reliable' in m
                                             for m in messages), 15), messages[-3:]
        assert node.output().count('nothing received on /quiet/image') == 1   # logged once per silence
        probe.destroy_publisher(best_effort)
        # images that match, with no camera_info anywhere: the images arrive, the camera_info is explained
        reliable = probe.create_publisher(Image, '/quiet/image', qos_profile('reliable', 'volatile', 1))

        def images_flow_until(text):
            def send_and_check():
                reliable.publish(camera_frame(textured_image(64, 48), intrinsics(64, 48), 1000.0)[0])
                return text in node.output()
            return spin_until(probe, send_and_check, 20)

        assert images_flow_until('nothing received on /quiet/camera_info'), node.output()[-2000:]
        assert 'image messages arrive now' in node.output()
        # and the wheel odometry the scale waits for
        assert images_flow_until('nav_msgs/msg/Odometry is published on /odom (set scale_odometry_topic to it)'), \
            node.output()[-2000:]
        assert node.alive()
    finally:
        node.stop()
        probe.destroy_node()
        rclpy.try_shutdown()
