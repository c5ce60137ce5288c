"""Publishing TF and reading static mounts, with tf2_ros when importable.

Without tf2_ros (pip installs of ROS 2 have none), `/tf` and `/tf_static` are published
directly as tf2_msgs/TFMessage with the QoS tf2_ros uses (dynamic: reliable, volatile,
depth 100; static: reliable, transient_local, depth 1, all static edges in one message),
and the camera mount is read by subscribing to `/tf_static`.
"""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from geovr_ros.ros.conversions import transform_from_msg

TF_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
TF_STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                           reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)

try:  # pragma: no cover - exercised only where tf2_ros is installed
    import tf2_ros
except ImportError:
    tf2_ros = None


class TransformPublisher:
    """Sends dynamic transforms on /tf and static ones on /tf_static."""

    def __init__(self, node):
        self._node = node
        self._static: dict[str, TransformStamped] = {}
        if tf2_ros is not None:
            self._dynamic_broadcaster = tf2_ros.TransformBroadcaster(node)
            self._static_broadcaster = tf2_ros.StaticTransformBroadcaster(node)
        else:
            self._tf_pub = node.create_publisher(TFMessage, '/tf', TF_QOS)
            self._static_pub = node.create_publisher(TFMessage, '/tf_static', TF_STATIC_QOS)

    def send(self, transforms: list[TransformStamped]) -> None:
        if not transforms:
            return
        if tf2_ros is not None:
            self._dynamic_broadcaster.sendTransform(transforms)
        else:
            self._tf_pub.publish(TFMessage(transforms=transforms))

    def send_static(self, transform: TransformStamped) -> None:
        """Adds (or replaces) a static edge and republishes all static edges together."""
        self._static[transform.child_frame_id] = transform
        if tf2_ros is not None:
            self._static_broadcaster.sendTransform(list(self._static.values()))
        else:
            self._static_pub.publish(TFMessage(transforms=list(self._static.values())))

    def destroy(self) -> None:
        if tf2_ros is None:
            self._node.destroy_publisher(self._tf_pub)
            self._node.destroy_publisher(self._static_pub)


class StaticTransformCache:
    """Static transforms heard on /tf_static, with chain lookup (no tf2_ros needed)."""

    def __init__(self, node):
        self._parent: dict[str, tuple[str, np.ndarray]] = {}
        self._subscription = node.create_subscription(TFMessage, '/tf_static', self._on_tf,
                                                      TF_STATIC_QOS)
        self._node = node

    def _on_tf(self, msg: TFMessage) -> None:
        for t in msg.transforms:
            self._parent[t.child_frame_id] = (t.header.frame_id, transform_from_msg(t))

    def lookup(self, target: str, source: str) -> np.ndarray | None:
        """T_target_source (4x4) when `target` is an ancestor of `source` in the static
        tree, identity when they are equal, else None."""
        T = np.eye(4)
        frame = source
        for _ in range(64):
            if frame == target:
                return T
            if frame not in self._parent:
                return None
            parent, T_parent_frame = self._parent[frame]
            T = T_parent_frame @ T
            frame = parent
        return None

    def destroy(self) -> None:
        self._node.destroy_subscription(self._subscription)
