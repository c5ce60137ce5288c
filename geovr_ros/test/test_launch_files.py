"""Launch files and parameter files: parse checks everywhere, and a real launch where
`launch_ros` is importable (it is part of a ROS 2 distribution, not on PyPI)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_PARAMS
from geovr_ros.nodes.replay_node import REPLAY_NODE_PARAMS
from ros_helpers import Process, node_args, tiny_model

PACKAGE = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((PACKAGE / 'launch').glob('*.launch.py'))
HAVE_LAUNCH_ROS = importlib.util.find_spec('launch_ros') is not None


def declared_arguments(path: Path) -> dict[str, dict]:
    """DeclareLaunchArgument calls (name -> keywords) and the ARGUMENTS table, from the AST."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument' \
                and node.args and isinstance(node.args[0], ast.Constant):
            found[node.args[0].value] = {k.arg: k.value for k in node.keywords}
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            for name, default, description in ast.literal_eval(node.value):
                found[name] = {'default_value': default, 'description': description}
    return found


def test_two_launch_files_parse_and_define_generate_launch_description():
    assert [p.name for p in LAUNCH_FILES] == ['demo.launch.py', 'geovr.launch.py']
    for path in LAUNCH_FILES:
        tree = ast.parse(path.read_text(), filename=str(path))
        compile(tree, str(path), 'exec')
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert 'generate_launch_description' in names


def test_geovr_launch_declares_every_required_argument_with_a_description():
    args = declared_arguments(PACKAGE / 'launch' / 'geovr.launch.py')
    required = {'params_file', 'model', 'backend', 'namespace', 'image_topic',
                'camera_info_topic', 'camera_frame', 'odom_frame', 'map_frame', 'base_frame',
                'use_sim_time', 'publish_odom_tf', 'publish_map_to_odom_tf'}
    assert required <= set(args)
    for name, keywords in args.items():
        assert keywords.get('description'), f'{name} has no description'
        assert 'default_value' in keywords, f'{name} has no default'


def test_demo_launch_offers_rviz_with_the_shipped_config():
    args = declared_arguments(PACKAGE / 'launch' / 'demo.launch.py')
    assert {'source', 'model', 'rate', 'rviz'} <= set(args)
    text = (PACKAGE / 'launch' / 'demo.launch.py').read_text()
    assert "'geovr.rviz'" in text and (PACKAGE / 'config' / 'geovr.rviz').is_file()
    rviz = yaml.safe_load((PACKAGE / 'config' / 'geovr.rviz').read_text())
    displays = rviz['Visualization Manager']['Displays']
    topics = {d.get('Topic', {}).get('Value') for d in displays}
    assert {'/camera/image_raw', '/depth/colored', '/points', '/path'} <= topics
    assert any(d['Class'] == 'rviz_default_plugins/TF' for d in displays)


@pytest.mark.parametrize('file, key, params', [
    ('geovr.yaml', '/**/geovr_node', GEOVR_NODE_PARAMS),
    ('replay.yaml', '/**/replay_node', REPLAY_NODE_PARAMS)])
def test_config_lists_every_declared_parameter_with_its_default(file, key, params):
    values = yaml.safe_load((PACKAGE / 'config' / file).read_text())[key]['ros__parameters']
    assert list(values) == [p.name for p in params]
    for p in params:
        assert values[p.name] == p.default and type(values[p.name]) is type(p.default), p.name
    assert len({p.name for p in params}) == len(params)   # each declared once


def test_node_starts_from_the_shipped_params_file(ros_env):
    model = tiny_model(ros_env)
    node = Process('geovr_node', ['--ros-args', '--params-file',
                                  str(PACKAGE / 'config' / 'geovr.yaml')]
                   + node_args({'model': str(model)})[1:] + ['-r', '__ns:=/robot1'],
                   ros_env, 'params_file')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        assert '/robot1/image' in node.output()
    finally:
        node.stop()


@pytest.mark.skipif(not HAVE_LAUNCH_ROS, reason='launch_ros is not importable: it ships with '
                    'a ROS 2 distribution (apt / source), not on PyPI')
def test_launch_descriptions_load_under_launch_ros():  # pragma: no cover - needs ROS install
    from launch.launch_description_sources import get_launch_description_from_python_launch_file
    for path in LAUNCH_FILES:
        description = get_launch_description_from_python_launch_file(str(path))
        names = {a.name for a in description.get_launch_arguments()}
        assert set(declared_arguments(path)) <= names   # demo also lists the included ones


RUN_LAUNCH = '''
import sys
from launch import LaunchDescription, LaunchService
from launch.actions import IncludeLaunchDescription, TimerAction, Shutdown
from launch.launch_description_sources import PythonLaunchDescriptionSource
path, seconds, *pairs = sys.argv[1:]
service = LaunchService()
service.include_launch_description(LaunchDescription([
    IncludeLaunchDescription(PythonLaunchDescriptionSource(path),
                             launch_arguments=[p.split(':=', 1) for p in pairs]),
    TimerAction(period=float(seconds), actions=[Shutdown(reason='test over')])]))
sys.exit(service.run())
'''


def _installed_share() -> str | None:
    try:
        from ament_index_python.packages import get_package_share_directory
        return get_package_share_directory('geovr_ros')
    except Exception:
        return None


@pytest.mark.skipif(not HAVE_LAUNCH_ROS, reason='launch_ros is not importable: it ships with '
                    'a ROS 2 distribution (apt / source), not on PyPI')
def test_demo_launch_runs_replay_into_the_node(ros_env):  # pragma: no cover - needs ROS install
    import signal
    import subprocess
    import sys

    import rclpy
    from sensor_msgs.msg import Image

    from ros_helpers import generated_dataset, spin_until
    if _installed_share() is None:
        pytest.skip('geovr_ros is not installed in an ament prefix (colcon build / install)')
    model, data = tiny_model(ros_env), generated_dataset(ros_env)
    rclpy.init()
    probe = rclpy.create_node('launch_probe')
    depth = []
    probe.create_subscription(Image, '/depth', depth.append, 10)
    launch = subprocess.Popen([sys.executable, '-c', RUN_LAUNCH,
                               str(Path(_installed_share()) / 'launch' / 'demo.launch.py'), '25',
                               f'source:={data}', f'model:={model}', 'rate:=1.0'],
                              env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        assert spin_until(probe, lambda: len(depth) >= 5, 30)
        assert depth[-1].encoding == '32FC1'
        assert depth[-1].header.frame_id == 'camera_optical_frame'
    finally:
        launch.send_signal(signal.SIGINT)   # LaunchService stops its processes on SIGINT
        try:
            output = launch.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            launch.kill()
            output = launch.communicate()[0]
        probe.destroy_node()
        rclpy.try_shutdown()
    assert 'active: waiting for images on /camera/image_raw' in output, output[-3000:]


def test_docs_list_every_parameter_of_both_nodes():
    text = (PACKAGE.parent / 'docs' / 'ros.md').read_text()
    for p in GEOVR_NODE_PARAMS + REPLAY_NODE_PARAMS:
        assert f'| `{p.name}` |' in text, f'{p.name} missing from docs/ros.md'


def test_the_params_snippets_of_the_docs_name_real_parameters_that_configure_a_session():
    """Every yaml block of docs/ros.md "On a wheeled robot" (a whole params file or the lines
    to put under ros__parameters) names declared parameters whose values a session accepts."""
    from geovr_ros.session import SessionConfig
    text = (PACKAGE.parent / 'docs' / 'ros.md').read_text()
    section = text.split('### On a wheeled robot')[1].split('\n### ')[0]
    blocks = [yaml.safe_load(b.split('```')[0]) for b in section.split('```yaml')[1:]]
    assert len(blocks) >= 2
    defaults = {p.name: p.default for p in GEOVR_NODE_PARAMS}
    for block in blocks:
        values = block['/**/geovr_node']['ros__parameters'] if '/**/geovr_node' in block else block
        assert set(values) <= set(defaults), set(values) - set(defaults)
        SessionConfig.from_parameters({**defaults, **values})   # raises on a combination it refuses
