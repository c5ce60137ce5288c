"""Start geovr_node: `ros2 launch geovr_ros geovr.launch.py model:=/path/to/model_dir`.

Parameters come from params_file (default: the package's config/geovr.yaml, which lists
every parameter); the launch arguments below override it only when given a non-empty value,
so a params_file of your own is not silently overwritten by the defaults.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode

# name, default, description. Empty defaults mean "keep the params_file value".
ARGUMENTS = [
    ('params_file', '', 'YAML file with geovr_node parameters (default: the package\'s '
     'config/geovr.yaml).'),
    ('model', '', 'Model directory from `geovr-export onnx` (perception.onnx) or a model file.'),
    ('question_model', '', 'Question model directory from `geovr-export question` (empty: '
     'only exact trajectory answers).'),
    ('backend', '', 'auto, tensorrt, onnxruntime or torch.'),
    ('namespace', '', 'Namespace of the node and its relative topics.'),
    ('image_topic', '/camera/image_raw', 'sensor_msgs/Image input topic.'),
    ('camera_info_topic', '/camera/camera_info', 'sensor_msgs/CameraInfo input topic.'),
    ('camera_frame', '', 'Camera optical frame (empty: the images\' frame_id).'),
    ('odom_frame', '', 'Odometry frame (REP 105), default odom.'),
    ('map_frame', '', 'Map frame (REP 105), default map.'),
    ('base_frame', '', 'Robot body frame, default base_link.'),
    ('odom_child', '', 'camera (odom -> camera optical frame) or base (odom -> base_frame '
     'through the camera mount).'),
    ('publish_odom_tf', '', 'true/false: publish TF odom -> camera or base frame.'),
    ('publish_map_to_odom_tf', '', 'true/false: publish TF map -> odom.'),
    ('use_sim_time', 'false', 'Use /clock (true when playing a recording).'),
    ('autostart', 'true', 'Configure and activate at start (false: wait for a lifecycle '
     'manager).'),
    ('log_level', 'info', 'Logging level of the node.'),
]
BOOLEAN = {'publish_odom_tf', 'publish_map_to_odom_tf', 'use_sim_time', 'autostart'}
OVERRIDES = ['model', 'question_model', 'backend', 'camera_frame', 'odom_frame', 'map_frame', 'base_frame',
             'odom_child', 'publish_odom_tf', 'publish_map_to_odom_tf', 'use_sim_time',
             'autostart']


def _as_bool(name: str, text: str) -> bool:
    if text.lower() not in ('true', 'false'):
        raise ValueError(f'launch argument {name} must be true or false, got {text!r}')
    return text.lower() == 'true'


def _node(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name, _, _ in ARGUMENTS}
    params_file = value['params_file'] or os.path.join(
        get_package_share_directory('geovr_ros'), 'config', 'geovr.yaml')
    overrides = {}
    for name in OVERRIDES:
        if value[name] != '':
            overrides[name] = _as_bool(name, value[name]) if name in BOOLEAN else value[name]
    image = value['image_topic']
    return [LifecycleNode(
        package='geovr_ros', executable='geovr_node', name='geovr_node',
        namespace=value['namespace'], output='screen',
        parameters=[params_file, overrides],
        remappings=[('image', image), ('image/compressed', image + '/compressed'),
                    ('camera_info', value['camera_info_topic'])],
        arguments=['--ros-args', '--log-level', value['log_level']])]


def generate_launch_description():
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=description)
         for name, default, description in ARGUMENTS]
        + [OpaqueFunction(function=_node)])
