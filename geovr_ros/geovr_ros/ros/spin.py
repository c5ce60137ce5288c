"""Spinning a node until something happened, for command-line tools, tests and the demo."""
from __future__ import annotations

import threading
import time
from typing import Callable

import rclpy
from rclpy.node import Node


def spin_until(node: Node, predicate: Callable[[], bool], timeout: float) -> bool:
    """Spin `node` until `predicate()` is true or `timeout` seconds pass; returns predicate()."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def shutdown_within(node: Node, timeout: float) -> bool:
    """Destroy `node` and shut rclpy's default context down, waiting at most `timeout` seconds;
    True when that finished. The work runs on a daemon thread, so a middleware teardown that
    never returns (seen once in a short-lived process of Fast DDS) cannot keep a command-line
    tool from exiting: on False the caller reports it and leaves with os._exit."""
    finished = threading.Event()

    def teardown():
        try:
            node.destroy_node()
            rclpy.try_shutdown()
        finally:
            finished.set()

    threading.Thread(target=teardown, name='ros-teardown', daemon=True).start()
    return finished.wait(timeout)
