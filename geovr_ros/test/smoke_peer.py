"""One side of the real-ROS smoke test, run as its own process.

    python smoke_peer.py serve   # SpatialQuery server, /tf publisher, 640x480 image publisher
    python smoke_peer.py client  # calls the service, counts /tf and images, prints JSON

The image publisher waits for the client's subscription, then sends exactly
`IMAGE_COUNT` 640x480 rgb8 images at 30 Hz with SensorDataQoS; the client reports how
many distinct ones arrived.
"""
from __future__ import annotations

import json
import sys
import time

import rclpy
from geometry_msgs.msg import TransformStamped
from geovr_interfaces.srv import SpatialQuery
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from tf2_msgs.msg import TFMessage

IMAGE_COUNT = 100
WIDTH, HEIGHT = 640, 480
SETTLE_S = 1.0
HD_WIDTH, HD_HEIGHT, HD_COUNT = 1920, 1080, 5


def serve() -> None:
    node = Node('smoke_server')

    def answer(request: SpatialQuery.Request, response: SpatialQuery.Response):
        response.success = True
        response.answer = f'echo: {request.question}'
        response.category = 'smoke'
        response.value = float(len(request.question))
        response.unit = 'count'
        response.confidence = 1.0
        return response

    node.create_service(SpatialQuery, 'smoke_query', answer)
    tf_pub = node.create_publisher(TFMessage, '/tf', 10)
    image_pub = node.create_publisher(Image, 'smoke_image', qos_profile_sensor_data)
    pixels = bytes(range(256)) * (WIDTH * HEIGHT * 3 // 256)

    def publish_tf() -> None:
        t = TransformStamped()
        t.header.stamp = node.get_clock().now().to_msg()
        t.header.frame_id = 'odom'
        t.child_frame_id = 'camera_optical_frame'
        t.transform.translation.x = 1.5
        t.transform.rotation.w = 1.0
        tf_pub.publish(TFMessage(transforms=[t]))

    node.create_timer(0.1, publish_tf)
    sent = 0
    matched_at: float | None = None

    def publish_image() -> None:
        nonlocal sent, matched_at
        if sent >= IMAGE_COUNT or image_pub.get_subscription_count() == 0:
            return
        # Discovery completes on each side on its own: the writer sees the match a little
        # before the reader's shared-memory path is ready. Settle before the first image.
        if matched_at is None:
            matched_at = time.monotonic()
        if time.monotonic() - matched_at < SETTLE_S:
            return
        msg = Image(height=HEIGHT, width=WIDTH, encoding='rgb8', step=WIDTH * 3, data=pixels)
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = f'frame_{sent}'
        image_pub.publish(msg)
        sent += 1

    node.create_timer(1.0 / 30.0, publish_image)

    # Full-HD images (6.2 MB), best effort, must cross too.
    hd_pub = node.create_publisher(Image, 'smoke_image_hd', qos_profile_sensor_data)
    hd_pixels = bytes(HD_WIDTH * HD_HEIGHT * 3)
    hd_sent = 0

    def publish_hd() -> None:
        nonlocal hd_sent
        if sent < IMAGE_COUNT or hd_sent >= HD_COUNT or hd_pub.get_subscription_count() == 0:
            return
        hd_pub.publish(Image(height=HD_HEIGHT, width=HD_WIDTH, encoding='rgb8',
                             step=HD_WIDTH * 3, data=hd_pixels))
        hd_sent += 1

    node.create_timer(0.1, publish_hd)
    deadline = time.monotonic() + 60.0
    while rclpy.ok() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()


def client() -> None:
    node = Node('smoke_client')
    result: dict = {'images': set(), 'tf': [], 'answer': None, 'image_ok': True, 'hd': 0}

    def on_image(msg: Image) -> None:
        ok = (msg.width == WIDTH and msg.height == HEIGHT and msg.encoding == 'rgb8'
              and len(msg.data) == WIDTH * HEIGHT * 3 and bytes(msg.data[:256]) == bytes(range(256)))
        result['image_ok'] &= ok
        result['images'].add(msg.header.frame_id)

    def on_tf(msg: TFMessage) -> None:
        for t in msg.transforms:
            result['tf'].append((t.header.frame_id, t.child_frame_id, t.transform.translation.x))

    node.create_subscription(Image, 'smoke_image', on_image, qos_profile_sensor_data)
    node.create_subscription(TFMessage, '/tf', on_tf, 10)

    def on_hd(msg: Image) -> None:
        result['hd'] += int(len(msg.data) == HD_WIDTH * HD_HEIGHT * 3)

    node.create_subscription(Image, 'smoke_image_hd', on_hd, qos_profile_sensor_data)
    query = node.create_client(SpatialQuery, 'smoke_query')
    if not query.wait_for_service(timeout_sec=20.0):
        print(json.dumps({'error': 'service smoke_query never appeared'}))
        return
    future = query.call_async(SpatialQuery.Request(question='how far is the chair?'))
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if future.done() and result['answer'] is None:
            r = future.result()
            result['answer'] = {'success': r.success, 'answer': r.answer, 'value': r.value,
                                'unit': r.unit}
        if (result['answer'] and result['tf'] and len(result['images']) >= IMAGE_COUNT
                and result['hd'] >= HD_COUNT):
            break
    # Linger to catch any image that would arrive late.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({'answer': result['answer'], 'tf': result['tf'][:3],
                      'images_received': len(result['images']), 'missing': sorted(set(f'frame_{i}' for i in range(IMAGE_COUNT)) - result['images']), 'image_ok': result['image_ok'],
                      'hd_images_received': result['hd']}))
    node.destroy_node()


if __name__ == '__main__':
    rclpy.init()
    try:
        {'serve': serve, 'client': client}[sys.argv[1]]()
    except KeyboardInterrupt:
        pass
    finally:
        if rclpy.ok():
            rclpy.shutdown()
