"""`replay_node`: plays a recorded or generated sequence as a camera.

Publishes `image` (rgb8) + `camera_info` with the recording's stamps, ground truth as TF
`<gt_frame_prefix>world -> <gt_frame_prefix><camera_frame>` (a separate tree, for comparison
with the estimate), and /clock for `use_sim_time`, at `rate` times real time. Formats and
their reader: `geovr_ros.recordings` (docs/data.md).
"""
from __future__ import annotations

import threading
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from geovr_ros.recordings import RecordingFormatError, open_recording
from geovr_ros.replay import ReplayClock
from geovr_ros.ros.conversions import (
    array_to_image_msg, camera_info_msg, sec_to_stamp, transform_stamped_msg)
from geovr_ros.ros.parameters import Param, declare_all
from geovr_ros.ros.qos import qos_profile
from geovr_ros.ros.tf import TransformPublisher

REPLAY_NODE_PARAMS: list[Param] = [
    Param('source', '', 'Path of the sequence: a geovr-data dataset folder, a TUM RGB-D '
          'folder, a 7-Scenes-style folder, a HoloLens-layout folder, a rosbag2 folder / .mcap / '
          '.db3 or a ROS 1 .bag file.'),
    Param('format', 'auto', 'auto, generated, tum, 7scenes, hololens or rosbag.'),
    Param('sequence', '', 'Sequence name or index in a generated dataset, or seq-NN folder of '
          '7-Scenes; empty takes the first.'),
    Param('rate', 1.0, 'Playback speed: 1.0 real time, 2.0 twice as fast, 0 as fast as '
          'possible.'),
    Param('loop', False, 'Start again at the end (stamps keep increasing by the sequence '
          'length, so odometry sees no time jump).'),
    Param('start_delay', 0.5, 'Seconds to wait before the first frame (for subscribers to '
          'connect).'),
    Param('wait_for_subscribers', 0, 'Before the first frame, wait (up to 30 s) until this '
          'many subscribers are matched on image.'),
    Param('camera_frame', 'camera_optical_frame', 'frame_id of the published images.'),
    Param('publish_ground_truth', True, 'Publish the ground-truth camera pose as TF.'),
    Param('gt_frame_prefix', 'gt_', 'Prefix of the ground-truth frames (<prefix>world -> '
          '<prefix><camera_frame>), kept apart from the estimated tree.'),
    Param('publish_clock', True, 'Publish /clock with the recording stamps (for '
          'use_sim_time).'),
    Param('stamp_offset', 0.0, 'Seconds added to every recorded stamp.'),
    Param('truth_time_offset', 0.0, 'Seconds added to a frame\'s stamp where its ground-truth pose is '
          'looked up (TUM only: the motion capture\'s clock against the camera\'s; tum_fr1_rpy about '
          '-0.015).'),
    Param('intrinsics', [0.0, 0.0, 0.0, 0.0], '[fx, fy, cx, cy] pixels overriding the '
          'source\'s intrinsics; zeros keep the source\'s.', float),
    Param('image_topic_in_bag', '', 'Image topic to read from a bag (empty: the only colour '
          'one).'),
    Param('camera_info_topic_in_bag', '', 'CameraInfo topic to read from a bag (empty: the only '
          'one, or the one beside the image topic).'),
    Param('reliability', 'reliable', 'QoS reliability of image and camera_info (reliable is '
          'what camera drivers use, REP 2003).'),
    Param('max_frames', 0, 'Stop after this many frames (0: all).'),
    Param('skip_frames', 0, 'Leave out this many frames at the start of the sequence (of every '
          'pass with loop), as a camera switched on later would.'),
]


class ReplayNode(Node):
    """Publishes the frames of `source` from a worker thread (see module docstring)."""

    def __init__(self, **kwargs):
        super().__init__('replay_node', **kwargs)
        self.p = declare_all(self, REPLAY_NODE_PARAMS)
        if not self.p['source']:
            raise ValueError('parameter source is empty: set it to a recording folder or bag')
        for name in ('max_frames', 'skip_frames'):
            if self.p[name] < 0:
                raise ValueError(f'parameter {name} must be >= 0, got {self.p[name]}')
        qos = qos_profile(self.p['reliability'], 'volatile', 5)
        self.pub_image = self.create_publisher(Image, 'image', qos)
        self.pub_info = self.create_publisher(CameraInfo, 'camera_info', qos)
        self.pub_clock = self.create_publisher(Clock, '/clock', 10) \
            if self.p['publish_clock'] else None
        self.tf = TransformPublisher(self) if self.p['publish_ground_truth'] else None
        intrinsics = tuple(self.p['intrinsics']) if any(self.p['intrinsics']) else None
        self._open = lambda: open_recording(
            self.p['source'], self.p['format'], sequence=self.p['sequence'], intrinsics=intrinsics,
            image_topic=self.p['image_topic_in_bag'],
            camera_info_topic=self.p['camera_info_topic_in_bag'], truth_time_offset=self.p['truth_time_offset'])
        self._open()  # fail now, with the reason, rather than in the thread
        self.frames_published = 0
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, daemon=True)
        self._thread.start()

    def _play(self) -> None:
        clock = ReplayClock(self.p['rate'])
        deadline = time.monotonic() + 30.0
        while self.pub_image.get_subscription_count() < self.p['wait_for_subscribers'] \
                and time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.05)
        time.sleep(self.p['start_delay'])
        offset = self.p['stamp_offset']
        limit, skip = self.p['max_frames'], self.p['skip_frames']
        try:
            while not self._stop.is_set():
                first = last = None
                count = 0
                for index, frame in enumerate(self._open()):
                    if self._stop.is_set() or (limit and self.frames_published >= limit):
                        break
                    if index < skip:
                        continue
                    first = frame.stamp if first is None else first
                    last = frame.stamp
                    count += 1
                    wait = clock.delay(frame.stamp + offset)
                    if wait > 0 and self._stop.wait(wait):
                        break
                    self._publish(frame, frame.stamp + offset)
                if not self.p['loop'] or first is None or \
                        (limit and self.frames_published >= limit):
                    break
                offset += (last - first) * (1.0 + 1.0 / max(count - 1, 1))
        except Exception as error:  # a broken file mid-way: say so and stop
            self.get_logger().error(f'replay stopped: {error}')
        self.get_logger().info(f'replay finished: {self.frames_published} frames published')
        self.finished.set()

    def _publish(self, frame, stamp: float) -> None:
        ros_stamp = sec_to_stamp(stamp)
        if self.pub_clock is not None:
            self.pub_clock.publish(Clock(clock=ros_stamp))
        header = Header(stamp=ros_stamp, frame_id=self.p['camera_frame'])
        height, width = frame.rgb.shape[:2]
        self.pub_info.publish(camera_info_msg(frame.K, width, height, header))
        self.pub_image.publish(array_to_image_msg(np.ascontiguousarray(frame.rgb), 'rgb8',
                                                  header))
        if self.tf is not None and frame.T_world_cam is not None:
            prefix = self.p['gt_frame_prefix']
            self.tf.send([transform_stamped_msg(frame.T_world_cam, f'{prefix}world',
                                                f'{prefix}{self.p["camera_frame"]}', ros_stamp)])
        self.frames_published += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


def main(args=None) -> None:
    rclpy.init(args=args)
    try:
        node = ReplayNode()
    except (RecordingFormatError, ValueError) as error:
        print(f'replay_node: {error}')
        rclpy.try_shutdown()
        raise SystemExit(1)
    try:
        while rclpy.ok() and not node.finished.is_set():
            rclpy.spin_once(node, timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.stop()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
