"""`ask`: put a spatial question to a running geovr_node and print the answer.

    ask "how far have I travelled?" [--node /geovr_node] [--frame map] [--timeout 5]

Exit status 0 with the answer on stdout; 1 with the reason on stderr when the service is
unavailable, times out, or answers success=false. The exit comes at most TEARDOWN_TIMEOUT_S
after the answer, whatever the middleware's teardown does.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import NodeNameNonExistentError
from geovr_interfaces.srv import SpatialQuery

from geovr_ros.ros.spin import shutdown_within

TEARDOWN_TIMEOUT_S = 5.0   # a middleware that never finishes its teardown must not hang a script
GRAPH_WAIT_S = 3.0         # an unavailable service: how long the graph is searched for another server


def parse_args(argv):
    parser = argparse.ArgumentParser(prog='ask', description=__doc__.splitlines()[0])
    parser.add_argument('question', help='the question, in quotes')
    parser.add_argument('--node', default='/geovr_node', help='node serving ~/query')
    parser.add_argument('--frame', default='', help='frame of points and poses in the answer '
                        '(empty: map, or odom before localization)')
    parser.add_argument('--max-age', type=float, default=0.0,
                        help='fail if the memory is older than this many seconds (0: any)')
    parser.add_argument('--timeout', type=float, default=5.0, help='seconds to wait')
    return parser.parse_args(argv)


def format_response(response) -> str:
    lines = [response.answer or response.message]
    if response.unit or response.category:
        lines.append(f'  value: {response.value:g} {response.unit}  '
                     f'(category {response.category}, confidence {response.confidence:.2f})')
    ids = list(response.object_ids)
    for k, p in enumerate(response.points):
        owner = f' (object {ids[k]})' if k < len(ids) and ids[k] >= 0 else ''
        lines.append(f'  point in {p.header.frame_id}: ({p.point.x:.3f}, {p.point.y:.3f}, '
                     f'{p.point.z:.3f}) m{owner}')
    if response.pose.header.frame_id:  # empty: the answer carries no pose
        q, t = response.pose.pose.orientation, response.pose.pose.position
        lines.append(f'  pose in {response.pose.header.frame_id}: xyz ({t.x:.3f}, {t.y:.3f}, '
                     f'{t.z:.3f}) m, quaternion xyzw ({q.x:.3f}, {q.y:.3f}, {q.z:.3f}, {q.w:.3f})')
    return '\n'.join(lines)


def _interrupted() -> int:
    """Ctrl-C or SIGTERM: the user asked to stop, which is not an error (exit 0)."""
    print('ask: interrupted', file=sys.stderr)
    return 0


def main(argv=None) -> int:
    ros_args = rclpy.utilities.remove_ros_args(sys.argv if argv is None else ['ask', *argv])
    args = parse_args(ros_args[1:])
    rclpy.init(args=sys.argv if argv is None else None)
    node = rclpy.create_node('ask')
    try:
        status = _ask(node, args)
    except (KeyboardInterrupt, ExternalShutdownException):
        status = _interrupted()
    except Exception:  # rclpy raises RCLError from a call on a context a signal shut down
        if rclpy.ok():
            shutdown_within(node, TEARDOWN_TIMEOUT_S)
            raise
        status = _interrupted()
    if not shutdown_within(node, TEARDOWN_TIMEOUT_S):
        print(f'ask: the ROS 2 teardown did not finish within {TEARDOWN_TIMEOUT_S:g} s: exiting without it',
              file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _where_to_ask(node, asked: str) -> str:
    """Where questions could go instead: the nodes the ROS graph lists with a SpatialQuery
    '<node>/query' (`asked` among them: listed but not answering), or the usual causes when
    it lists none after GRAPH_WAIT_S (a busy node's many endpoints take seconds to appear in
    a new process's graph)."""
    deadline = time.monotonic() + GRAPH_WAIT_S
    while True:
        servers = sorted({name[:-len('/query')]   # servers only: the graph's service names include clients'
                          for other, namespace in node.get_node_names_and_namespaces()
                          for name, types in _services_of(node, other, namespace)
                          if 'geovr_interfaces/srv/SpatialQuery' in types and name.endswith('/query')})
        if servers or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if asked in servers:
        return ('the ROS graph lists it, but it does not answer: a node that stopped a moment ago, or '
                'one this machine cannot reach')
    if servers:
        return 'questions are served by: ' + ', '.join(f'--node {s}' for s in servers)
    return 'no node serves questions: is geovr_node running, with the same ROS_DOMAIN_ID?'


def _services_of(node, name: str, namespace: str) -> list[tuple[str, list[str]]]:
    """The services node `namespace`/`name` serves; none when it left the graph since it was
    listed (rclpy raises its NodeNameNonExistentError then)."""
    try:
        return node.get_service_names_and_types_by_node(name, namespace)
    except NodeNameNonExistentError:
        return []


def _ask(node, args) -> int:
    """Wait for the service, put the question, print the answer: the exit status."""
    service = args.node.rstrip('/') + '/query'
    client = node.create_client(SpatialQuery, service)
    available = client.wait_for_service(timeout_sec=args.timeout)
    if not rclpy.ok():  # Ctrl-C / SIGTERM while waiting: rclpy shut the context down
        return _interrupted()
    if not available:
        print(f'ask: service {service} is not available ({_where_to_ask(node, service[:-len("/query")])})',
              file=sys.stderr)
        return 1
    request = SpatialQuery.Request(question=args.question, target_frame=args.frame,
                                   max_age=args.max_age)
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
    if not rclpy.ok():
        return _interrupted()
    if not future.done():
        print(f'ask: no answer from {service} within {args.timeout} s', file=sys.stderr)
        return 1
    response = future.result()
    if not response.success:
        print(f'ask: {response.message}', file=sys.stderr)
        return 1
    print(format_response(response))
    return 0


if __name__ == '__main__':
    sys.exit(main())
