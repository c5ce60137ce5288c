"""Real geovr_node process fed bad input by this test process: after each kind of bad
input the node is still up and publishes depth for the next good frame; each reason is
logged once (throttled), never a crash."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ros_helpers import (
    Feeder, Process, camera_frame, intrinsics, node_args, spin_until, textured_image,
    tiny_model)

rclpy = pytest.importorskip('rclpy')
from geovr_interfaces.srv import SpatialQuery  # noqa: E402

from geovr_ros.ros.conversions import stamp_to_sec  # noqa: E402

W, H = 320, 240


@pytest.fixture(scope='module')
def fed(ros_env):
    model = tiny_model(ros_env)
    rclpy.init()
    probe = rclpy.create_node('bad_input_probe')
    node = Process('geovr_node', node_args(
        {'model': str(model), 'backend': 'onnxruntime', 'log_throttle_period': 30.0,
         'max_image_pixels': 2000000},
        {'image': '/bad/image', 'camera_info': '/bad/camera_info'}), ros_env, 'bad_node')
    try:
        assert node.wait_for_output('active:', 60), node.output()
        feeder = Feeder(probe, '/bad', W, H)
        spin_until(probe, lambda: feeder.image_pub.get_subscription_count() > 0, 10)
        yield feeder, node
    finally:
        node.stop()
        probe.destroy_node()
        rclpy.try_shutdown()


def test_images_without_camera_info_log_one_clear_line(fed):
    feeder, node = fed
    for _ in range(5):
        stamp = feeder.next_stamp()
        image, _ = camera_frame(textured_image(W, H), intrinsics(W, H), stamp)
        feeder.send(image)
        spin_until(feeder.probe, lambda: False, 0.15)
    assert node.wait_for_output('no camera_info received yet', 5)
    assert node.output().count('no camera_info received yet') == 1
    assert feeder.good_frame_is_processed()


def test_first_good_frame_gives_depth_at_model_resolution(fed):
    feeder, node = fed
    assert feeder.good_frame_is_processed()
    depth = feeder.depth[-1]
    assert (depth.width, depth.height, depth.encoding) == (256, 192, '32FC1')
    assert depth.header.frame_id == 'cam_optical'


@pytest.mark.parametrize('encoding', ['bgr8', 'rgba8', 'mono8'])
def test_other_colour_encodings_are_processed(fed, encoding):
    feeder, node = fed
    stamp = feeder.next_stamp()
    rgb = textured_image(W, H, 3)
    array = {'bgr8': rgb[..., ::-1], 'mono8': rgb[..., 0],
             'rgba8': np.concatenate([rgb, np.full((H, W, 1), 255, np.uint8)], axis=2)}[encoding]
    image, info = camera_frame(np.ascontiguousarray(array), intrinsics(W, H), stamp,
                               encoding=encoding)
    feeder.send(image, info)
    assert spin_until(feeder.probe, lambda: any(
        stamp_to_sec(d.header.stamp) == stamp for d in feeder.depth), 8)


def _bad_inputs():
    def wrong_encoding(feeder):
        stamp = feeder.next_stamp()
        image, info = camera_frame(textured_image(W, H), intrinsics(W, H), stamp)
        image.encoding = 'yuv422'
        return [(image, info)], "unsupported image encoding 'yuv422'"

    def depth_encoding(feeder):
        stamp = feeder.next_stamp()
        image, info = camera_frame(np.ones((H, W), np.uint16), intrinsics(W, H), stamp,
                                   encoding='16UC1')
        return [(image, info)], 'is depth, not colour'

    def truncated_data(feeder):
        stamp = feeder.next_stamp()
        image, info = camera_frame(textured_image(W, H), intrinsics(W, H), stamp)
        image.data = bytes(image.data[:1000])
        return [(image, info)], 'len(data)=1000'

    def mismatched_size(feeder):
        stamp = feeder.next_stamp()
        image, _ = camera_frame(textured_image(W, H), intrinsics(W, H), stamp)
        _, info = camera_frame(textured_image(640, 480), intrinsics(640, 480), stamp)
        return [(image, info)], 'camera_info is 640x480 but the image is 320x240'

    def zero_k(feeder):
        stamp = feeder.next_stamp()
        image, info = camera_frame(textured_image(W, H), intrinsics(W, H), stamp)
        info.k = [0.0] * 9
        return [(image, info)], 'camera_info rejected: focal lengths must be positive'

    def nan_k(feeder):
        stamp = feeder.next_stamp()
        image, info = camera_frame(textured_image(W, H), intrinsics(W, H), stamp)
        info.k = [float('nan')] * 9
        return [(image, info)], 'camera_info rejected: K must be finite'

    def repeated_stamp(feeder):
        stamp = feeder.next_stamp()
        frame = camera_frame(textured_image(W, H, 1), intrinsics(W, H), stamp)
        return [frame, frame], 'repeated stamp'

    def out_of_order(feeder):
        late = feeder.next_stamp()
        early = round(late - 0.05, 3)
        frames = [camera_frame(textured_image(W, H, 2), intrinsics(W, H), late),
                  camera_frame(textured_image(W, H, 3), intrinsics(W, H), early)]
        return frames, 'stamp older than the previous frame'

    def too_many_pixels(feeder):  # the node runs with max_image_pixels=2000000
        stamp = feeder.next_stamp()
        big = np.zeros((1500, 1600), np.uint8)
        return [camera_frame(big, intrinsics(1600, 1500), stamp, encoding='mono8')], \
            'image 1600x1500 has more than max_image_pixels=2000000'

    return [wrong_encoding, depth_encoding, truncated_data, mismatched_size, zero_k, nan_k,
            repeated_stamp, out_of_order, too_many_pixels]


@pytest.mark.parametrize('make', _bad_inputs(), ids=lambda f: f.__name__)
def test_bad_input_is_dropped_with_a_reason_and_the_node_keeps_publishing(fed, make):
    feeder, node = fed
    assert feeder.good_frame_is_processed()
    frames, reason = make(feeder)
    for image, info in frames:
        feeder.send(image, info)
        spin_until(feeder.probe, lambda: False, 0.3)
    assert node.wait_for_output(reason, 8), node.output()[-3000:]
    assert node.alive()
    assert feeder.good_frame_is_processed()
    assert node.output().count(reason) == 1  # throttled: one line per reason


def test_a_huge_image_does_not_stop_the_node(fed):
    """A 4200x4200 rgb8 image (53 MB). The loopback DDS profile caps messages at 4 MiB, so
    it may never reach the node; either way the node must stay up and keep publishing."""
    feeder, node = fed
    assert feeder.good_frame_is_processed()
    image, info = camera_frame(np.zeros((4200, 4200, 3), np.uint8), intrinsics(4200, 4200),
                               feeder.next_stamp())
    feeder.send(image, info)
    spin_until(feeder.probe, lambda: False, 1.0)
    assert node.alive()
    assert feeder.good_frame_is_processed()


def test_time_jump_backwards_restarts_odometry_with_a_log_line(fed):
    feeder, node = fed
    assert feeder.good_frame_is_processed()
    feeder.stamp -= 50.0                   # a bag loop or simulator reset
    # Believed only when sustained: three valid frames in a row on the new timeline.
    assert any(feeder.good_frame_is_processed(2.0) for _ in range(8))
    assert node.wait_for_output('time jumped backwards', 5)
    assert 'restarting odometry' in node.output()


def test_1000_rapid_service_calls_keep_the_node_up_with_bounded_memory(fed):
    feeder, node = fed
    # a frame after whatever the previous test restarted: memory is not empty when asked
    assert feeder.good_frame_is_processed()
    probe = feeder.probe
    client = probe.create_client(SpatialQuery, '/geovr_node/query')
    assert client.wait_for_service(timeout_sec=5)
    for _ in range(50):  # depth is published just before the frame reaches the memory
        ready = client.call_async(SpatialQuery.Request(question='how far have I travelled?'))
        spin_until(probe, ready.done, 5)
        if ready.done() and ready.result().success:
            break
    questions = ['how far have I travelled?', 'where am I?', 'how far is the chair?', '',
                 'x' * 2000, 'where \ufffd', 'how many keyframes']
    answers, rss_half = [], None
    for batch in range(100):                 # 10 concurrent calls at a time, frames between
        if batch == 50:                      # after warm-up (caches, allocator pools)
            rss_half = node.rss_kib()
        if batch % 10 == 0:
            feeder.send(*camera_frame(textured_image(W, H, batch), intrinsics(W, H),
                                      feeder.next_stamp()))
        futures = [client.call_async(SpatialQuery.Request(
            question=questions[(batch * 10 + i) % len(questions)])) for i in range(10)]
        deadline = time.monotonic() + 60            # generous: a loaded machine is slow, not wrong
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            rclpy.spin_once(probe, timeout_sec=0.05)
        answers += [f.result() for f in futures if f.done()]
    assert len(answers) == 1000, f'{len(answers)} of 1000 answered'
    assert node.alive()
    by_question = {}
    for i, a in enumerate(answers):
        by_question.setdefault(questions[i % len(questions)], set()).add(a.success)
    failed = {a.message for i, a in enumerate(answers)
              if questions[i % len(questions)] == 'how far have I travelled?' and not a.success}
    assert by_question['how far have I travelled?'] == {True}, failed
    assert by_question[''] == {False} and by_question['x' * 2000] == {False}
    assert by_question['how far is the chair?'] == {False}
    # a leak grows with the calls: the second 500 must not add what a leak would (speed is the
    # benchmark's business, not this test's)
    growth_mib = (node.rss_kib() - rss_half) / 1024
    assert growth_mib < 20, f'node memory grew {growth_mib:.1f} MiB over the second 500 calls'
    assert feeder.good_frame_is_processed()   # perception still running
    probe.destroy_client(client)
