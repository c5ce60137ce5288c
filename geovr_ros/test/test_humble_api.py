"""The runtime uses only the rclpy API that Humble has (Jetson users run Humble; tests run on Kilted).

A static check of the runtime's sources (geovr_ros/geovr_ros, the launch files, scripts): every
name imported from rclpy, every `rclpy.<name>` used and every keyword argument given to a few
calls that grew one after Humble. The allowed names were each found in rclpy's `humble` branch
(session 65, rclpy 3.3); a new name fails here until someone looks it up there and adds it.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [*sorted((ROOT / 'geovr_ros' / 'geovr_ros').rglob('*.py')),
           *sorted((ROOT / 'geovr_ros' / 'launch').glob('*.py')), *sorted((ROOT / 'scripts').glob('*.py'))]

# rclpy module -> names found in its humble-branch source (rclpy 3.3.x)
HUMBLE_NAMES = {
    'rclpy': {'init', 'ok', 'shutdown', 'try_shutdown', 'create_node', 'spin', 'spin_once',
              'spin_until_future_complete', 'get_global_executor',
              # its submodules, reached as attributes
              'qos', 'node', 'executors', 'utilities', 'task', 'logging', 'lifecycle', 'exceptions', 'clock',
              'callback_groups', 'duration', 'time', 'parameter', 'publisher', 'subscription'},
    'rclpy.qos': {'DurabilityPolicy', 'HistoryPolicy', 'QoSProfile', 'ReliabilityPolicy', 'LivelinessPolicy',
                  'qos_profile_sensor_data', 'qos_profile_system_default', 'QoSPresetProfiles'},
    'rclpy.node': {'Node', 'NodeNameNonExistentError'},
    'rclpy.executors': {'ExternalShutdownException', 'SingleThreadedExecutor', 'MultiThreadedExecutor'},
    'rclpy.task': {'Future'},
    'rclpy.logging': {'get_logger'},
    'rclpy.lifecycle': {'LifecycleNode', 'LifecycleState', 'TransitionCallbackReturn', 'Publisher'},
    'rclpy.exceptions': {'ParameterException', 'ParameterNotDeclaredException', 'InvalidParameterValueException'},
    'rclpy.clock': {'Clock', 'ClockType', 'ROSClock'},
    'rclpy.callback_groups': {'MutuallyExclusiveCallbackGroup', 'ReentrantCallbackGroup'},
    'rclpy.utilities': {'remove_ros_args', 'try_shutdown'},
    'rclpy.duration': {'Duration'},
    'rclpy.time': {'Time'},
    'rclpy.parameter': {'Parameter'},
}
# keyword arguments that rclpy gained after Humble: Client.call(timeout_sec) (Jazzy),
# Node.create_timer(autostart) (Jazzy), create_subscription(content_filter_options) (Jazzy),
# create_node / Node(enable_logger_service) (Iron)
LATER_KEYWORDS = {'call': {'timeout_sec'}, 'create_timer': {'autostart'},
                  'create_subscription': {'content_filter_options'},
                  'create_node': {'enable_logger_service'}, 'Node': {'enable_logger_service'}}
# Node methods rclpy gained after Humble (Node.wait_for_node too, left out: node_bench's driver
# has a method of that name)
LATER_METHODS = {'add_pre_set_parameters_callback', 'add_post_set_parameters_callback', 'count_clients',
                 'count_services', 'get_fully_qualified_node_names', 'list_parameters',
                 'remove_pre_set_parameters_callback', 'remove_post_set_parameters_callback'}


def _attribute_chain(node: ast.AST) -> list[str] | None:
    """['rclpy', 'utilities', 'remove_ros_args'] for rclpy.utilities.remove_ros_args; None otherwise."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(names)]
    return None


def humble_violations(source: str, filename: str) -> list[str]:
    """What in `source` Humble's rclpy lacks, one line each ('file:line: why')."""
    problems = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f'{filename}:{getattr(node, "lineno", 0)}'
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] == 'rclpy':
            allowed = HUMBLE_NAMES.get(node.module)
            if allowed is None:
                problems.append(f'{where}: module {node.module} not checked against Humble')
                continue
            problems += [f'{where}: {node.module}.{a.name} not checked against Humble'
                         for a in node.names if a.name not in allowed]
        elif isinstance(node, ast.Import):
            problems += [f'{where}: module {a.name} not checked against Humble' for a in node.names
                         if a.name.split('.')[0] == 'rclpy' and a.name not in HUMBLE_NAMES]
        elif isinstance(node, ast.Attribute) and not isinstance(getattr(node, 'ctx', None), ast.Store):
            chain = _attribute_chain(node)
            if chain and chain[0] == 'rclpy' and len(chain) >= 2:
                module = 'rclpy' if len(chain) == 2 else 'rclpy.' + chain[1]
                name = chain[1] if len(chain) == 2 else chain[2]
                if module in HUMBLE_NAMES and name not in HUMBLE_NAMES[module]:
                    problems.append(f'{where}: {module}.{name} not checked against Humble')
                elif module not in HUMBLE_NAMES and len(chain) == 3:
                    problems.append(f'{where}: module {module} not checked against Humble')
            if node.attr in LATER_METHODS:
                problems.append(f'{where}: {node.attr} is newer than Humble')
        if isinstance(node, ast.Call):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, 'id', None)
            later = LATER_KEYWORDS.get(called, set()) & {k.arg for k in node.keywords}
            if later:
                problems.append(f'{where}: {called}({", ".join(sorted(later))}=...) is newer than Humble')
    return problems


def test_the_runtime_uses_only_rclpy_names_humble_has():
    assert len(SOURCES) > 30
    problems = [p for path in SOURCES for p in humble_violations(path.read_text(), str(path.relative_to(ROOT)))]
    assert not problems, '\n'.join(problems)


def test_the_check_finds_what_humble_lacks():
    newer = '''
import rclpy
import rclpy.event_handler
from rclpy.qos import QoSProfile
from rclpy.parameter_client import AsyncParameterClient
from rclpy.node import Node, NodeFromTheFuture
future = client.call(request, timeout_sec=2.0)
timer = node.create_timer(1.0, callback, autostart=False)
node.add_post_set_parameters_callback(callback)
rclpy.wait_for_message(node, msg_type, 'topic')
'''
    problems = humble_violations(newer, 'newer.py')
    for expected in ('newer.py:3: module rclpy.event_handler', 'newer.py:5: module rclpy.parameter_client',
                     'newer.py:6: rclpy.node.NodeFromTheFuture', 'newer.py:7: call(timeout_sec=...)',
                     'newer.py:8: create_timer(autostart=...)', 'newer.py:9: add_post_set_parameters_callback',
                     'newer.py:10: rclpy.wait_for_message'):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert not any(p.startswith('newer.py:4') for p in problems)   # QoSProfile is Humble's
    assert humble_violations('import rclpy\nrclpy.init()\nrclpy.utilities.remove_ros_args([])\n', 'ok.py') == []
