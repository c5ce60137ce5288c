"""Spinning a node until something happened, for command-line tools, tests and the demo."""
from __future__ import annotations

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
