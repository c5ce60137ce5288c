"""Demo: replay a recording into geovr_node, optionally with RViz.

    ros2 launch geovr_ros demo.launch.py source:=/data/scene model:=/models/geovr-s rviz:=true

replay_node publishes /camera/image_raw + /camera/camera_info (and ground truth as TF under
gt_*) and /clock; geovr_node runs on sim time. With rviz:=true, rviz2 must be installed: the
launch checks before it starts anything, and closing RViz ends the whole launch (no node is
left running without its parent).
"""
import os
import shutil

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import (DeclareLaunchArgument, IncludeLaunchDescription, LogInfo, OpaqueFunction,
                            Shutdown)
from launch.conditions import IfCondition
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

SHARE = get_package_share_directory('geovr_ros')


def rviz2_available() -> bool:
    """rviz2 is installed where ros2 launch would find it (ament index or PATH)."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix
    try:
        get_package_prefix('rviz2')
        return True
    except PackageNotFoundError:
        return shutil.which('rviz2') is not None


def nodes(context):
    """The demo's processes, or nothing but an error when RViz is asked for and absent."""
    want_rviz = LaunchConfiguration('rviz').perform(context).lower() in ('true', '1', 'yes')
    if want_rviz and not rviz2_available():
        return [LogInfo(msg='demo.launch.py: rviz:=true but rviz2 is not installed (apt install '
                            'ros-$ROS_DISTRO-rviz2); starting nothing. Run with rviz:=false.'),
                Shutdown(reason='rviz2 not installed')]
    source = LaunchConfiguration('source')
    rate = LaunchConfiguration('rate')
    loop = LaunchConfiguration('loop')
    return [
        Node(package='geovr_ros', executable='replay_node', name='replay_node',
             output='screen',
             parameters=[LaunchConfiguration('replay_params_file'),
                         {'source': source, 'rate': rate, 'loop': loop,
                          'camera_frame': 'camera_optical_frame'}],
             remappings=[('image', '/camera/image_raw'),
                         ('camera_info', '/camera/camera_info')]),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(SHARE, 'launch', 'geovr.launch.py')),
            launch_arguments={'params_file': LaunchConfiguration('params_file'),
                              'model': LaunchConfiguration('model'),
                              'backend': LaunchConfiguration('backend'),
                              'image_topic': '/camera/image_raw',
                              'camera_info_topic': '/camera/camera_info',
                              'use_sim_time': 'true'}.items()),
        Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
             arguments=['-d', os.path.join(SHARE, 'config', 'geovr.rviz')],
             parameters=[{'use_sim_time': True}],
             condition=IfCondition(LaunchConfiguration('rviz')),
             on_exit=Shutdown(reason='rviz2 closed')),
    ]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument('source', description='Recording to play: geovr-data dataset '
                              'folder, TUM or 7-Scenes folder, or rosbag2 / .mcap.'),
        DeclareLaunchArgument('model', default_value='', description='Model directory from '
                              '`geovr-export onnx`.'),
        DeclareLaunchArgument('backend', default_value='', description='auto, tensorrt, '
                              'onnxruntime or torch (empty: params_file value).'),
        DeclareLaunchArgument('rate', default_value='1.0', description='Playback speed factor '
                              '(0: as fast as possible).'),
        DeclareLaunchArgument('loop', default_value='false', description='Play the recording '
                              'in a loop.'),
        DeclareLaunchArgument('params_file', default_value=os.path.join(
            SHARE, 'config', 'geovr.yaml'), description='geovr_node parameters.'),
        DeclareLaunchArgument('replay_params_file', default_value=os.path.join(
            SHARE, 'config', 'replay.yaml'), description='replay_node parameters.'),
        DeclareLaunchArgument('rviz', default_value='false', description='Start rviz2 with '
                              'config/geovr.rviz (image, depth, points, path, TF, objects).'),
        OpaqueFunction(function=nodes),
    ])
