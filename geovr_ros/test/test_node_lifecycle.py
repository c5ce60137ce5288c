"""Lifecycle of a real geovr_node process: a missing model makes configure fail with a
clear message and leaves the node up; a good model configures and activates."""
from __future__ import annotations

import pytest

from ros_helpers import (  # noqa: F401 (probe_node is the `probe` fixture)
    Process, node_args, probe_node, spin_until, tiny_model)

rclpy = pytest.importorskip('rclpy')
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402


def call(probe, kind, name, request, timeout=20.0):
    client = probe.create_client(kind, name)
    assert client.wait_for_service(timeout_sec=timeout), f'{name} not available'
    future = client.call_async(request)
    rclpy.spin_until_future_complete(probe, future, timeout_sec=timeout)
    assert future.done(), f'no response from {name}'
    probe.destroy_client(client)
    return future.result()


def transition(probe, node_name, transition_id):
    return call(probe, ChangeState, f'/{node_name}/change_state',
                ChangeState.Request(transition=Transition(id=transition_id))).success


def state(probe, node_name):
    return call(probe, GetState, f'/{node_name}/get_state', GetState.Request()).current_state.id


def test_missing_model_fails_configure_with_a_clear_message(probe, ros_env, tmp_path):
    missing = tmp_path / 'no_such_model'
    node = Process('geovr_node', node_args({'model': str(missing), 'autostart': False},
                                           {'__node': 'missing_model_node'}), ros_env, 'missing')
    try:
        assert state(probe, 'missing_model_node') == State.PRIMARY_STATE_UNCONFIGURED
        assert not transition(probe, 'missing_model_node', Transition.TRANSITION_CONFIGURE)
        assert node.wait_for_output('configure failed', 5)
        line = next(l for l in node.output().splitlines() if 'configure failed' in l)
        assert str(missing) in line and 'does not exist' in line, line
        assert node.alive()
        assert state(probe, 'missing_model_node') == State.PRIMARY_STATE_UNCONFIGURED
    finally:
        node.stop()


def test_unloadable_question_model_fails_configure(probe, ros_env, tmp_path):
    model = tiny_model(ros_env)
    node = Process('geovr_node', node_args({'model': str(model), 'backend': 'onnxruntime',
                                            'question_model': str(tmp_path)},
                                           {'__node': 'qmodel_node'}), ros_env, 'qmodel')
    try:
        assert node.wait_for_output('configure failed', 60), node.output()
        assert 'question_encoder.onnx is missing' in node.output()
        assert node.alive()
    finally:
        node.stop()


def test_empty_model_parameter_names_the_fix_in_plain_node_mode(probe, ros_env):
    node = Process('geovr_node', node_args({}, {'__node': 'no_model_node'}), ros_env, 'nomodel')
    try:
        assert node.wait_for_output('configure failed', 30)
        assert 'parameter model is empty' in node.output()
        assert node.alive()
    finally:
        node.stop()


def test_negative_backend_threads_fail_configure_naming_the_parameter(probe, ros_env):
    node = Process('geovr_node', node_args({'model': str(tiny_model(ros_env)), 'backend_threads': -2},
                                           {'__node': 'bad_threads_node'}), ros_env, 'badthreads')
    try:
        assert node.wait_for_output('configure failed', 30), node.output()
        line = next(l for l in node.output().splitlines() if 'configure failed' in l)
        assert 'parameter backend_threads = -2 is not allowed: use a finite number >= 0' in line
        assert probe.count_publishers('/depth') == 0     # nothing half-made is left
        assert node.alive()
    finally:
        node.stop()


def test_configure_activate_deactivate_cleanup_with_a_model(probe, ros_env):
    model = tiny_model(ros_env)
    node = Process('geovr_node', node_args({'model': str(model), 'autostart': False,
                                            'backend': 'onnxruntime'},
                                           {'__node': 'managed_node'}), ros_env, 'managed')
    try:
        assert transition(probe, 'managed_node', Transition.TRANSITION_CONFIGURE)
        assert state(probe, 'managed_node') == State.PRIMARY_STATE_INACTIVE
        assert transition(probe, 'managed_node', Transition.TRANSITION_ACTIVATE)
        assert state(probe, 'managed_node') == State.PRIMARY_STATE_ACTIVE
        assert spin_until(probe, lambda: probe.count_publishers('/depth') == 1, 5)
        assert transition(probe, 'managed_node', Transition.TRANSITION_DEACTIVATE)
        assert transition(probe, 'managed_node', Transition.TRANSITION_CLEANUP)
        assert spin_until(probe, lambda: probe.count_publishers('/depth') == 0, 5)
        assert state(probe, 'managed_node') == State.PRIMARY_STATE_UNCONFIGURED
        assert node.alive()
    finally:
        node.stop()
