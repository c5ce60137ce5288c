"""`geovr_node`: metric depth, odometry, TF, localization and spatial questions from one
camera.

A lifecycle node (autostart=true makes it configure and activate itself, like a plain
node). on_configure loads the model; on_activate starts processing. Image callbacks only
hand the message to a perception thread that works on the newest frame (a frame that
arrives while the model is busy replaces the one waiting), so the executor stays free for
camera_info, services and timers. Per image, on that thread:

  decode -> intrinsics pairing -> rectify -> camera mount -> Session.process (stamp check,
  model, odometry, memory, localization) -> depth / points / odometry / TF / localization

A frame's whole journey lives in the ROS-free `geovr_ros.session.Session` (which runs the
pure cores `geovr_ros.inference`, `.odometry`, `.tracking`, `.mapping`, `.localization`,
`.memory`); this module converts messages, owns threads, parameters, publishers and
services, and publishes what the session returns.
"""
from __future__ import annotations

import functools
import queue
import threading
import time
from collections import deque

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PointStamped, PoseStamped, PoseWithCovarianceStamped
from geovr_interfaces.srv import SpatialQuery
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from geovr_ros.geometry import (
    GeometryError, InvalidIntrinsicsError, T_BODY_OPTICAL, body_to_optical, depth_to_points,
    make_pose, matrix_from_rpy, rotate_covariance, same_camera_lookup, validate_intrinsics)
from geovr_ros.localization import MapFileError
from geovr_ros.memory import (
    ChainedAnswerer, GeometricAnswerer, InvalidQuestionError, QuestionAnswerer,
    validate_question)
from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_PARAMS, GEOVR_NODE_RULES, backend_options
from geovr_ros.odometry import StampCheck
from geovr_ros.session import CLOCK_MISMATCH_S, Session, SessionConfig
from geovr_ros.geometry.encodings import DEPTH_ENCODINGS, SUPPORTED_ENCODINGS
from geovr_ros.ros.conversions import (
    ImageTooLargeError, array_to_image_msg, camera_info_msg, camera_info_to_k, colorize_depth,
    compressed_msg_to_rgb, depth_to_image_msg, image_msg_to_rgb, odometry_msg, pointcloud2_msg,
    pose_from_msg, pose_msg, sec_to_stamp, stamp_to_sec, transform_stamped_msg)
from geovr_ros.ros.droplog import DropLog, check_name, shown
from geovr_ros.geometry.rectify import Rectifier, input_is_rectified, rectified_camera
from geovr_ros.ros.input_check import endpoints, message_type_name, silent_topic_reason
from geovr_ros.ros.pairing import CameraIntrinsics, IntrinsicsPairer
from geovr_ros.ros.parameters import check_parameters, declare_all, parameter_problem
from geovr_ros.ros.qos import LATCHED, qos_profile
from geovr_ros.ros.tf import StaticTransformCache, TransformPublisher
from geovr_ros.ros.worker import LatestItemWorker

def _under_frame_lock(service):
    """A service callback that changes per-frame state: it waits for the frame in progress."""
    @functools.wraps(service)
    def locked(self, request, response):
        with self._frame_lock:
            return service(self, request, response)
    return locked


class GeoVRNode(LifecycleNode):
    """See the module docstring; topics, services and parameters are listed in docs/ros.md."""

    def __init__(self, answerer: QuestionAnswerer | None = None, **kwargs):
        """`answerer` replaces the one built from the question_model parameter."""
        super().__init__('geovr_node', **kwargs)
        self.p = declare_all(self, GEOVR_NODE_PARAMS)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._given_answerer = answerer
        self._perception = None
        self.session: Session | None = None   # made at configure, with the model
        self._active = False
        self._frame_group = MutuallyExclusiveCallbackGroup()
        self._info_group = MutuallyExclusiveCallbackGroup()
        self._query_group = ReentrantCallbackGroup()
        self._diag_group = MutuallyExclusiveCallbackGroup()
        self._reference_group = MutuallyExclusiveCallbackGroup()
        self._reference_warned = float('-inf')   # monotonic s of the last 'reference odometry rejected'
        self._input_subscriptions: dict[str, list] = {}   # input -> [(subscription, reliability, redirect)]
        self._last_input: dict[str, float | None] = dict.fromkeys(('image', 'camera_info', 'reference_odometry'))
        self._activated_at = time.monotonic()
        self._silent_logged: set[str] = set()   # inputs whose silence was logged, until they speak again
        self._publishers_owned: list = []
        self.pub_objects = None          # ~/objects, made at configure when there is an object map
        self.pub_detections = None       # ~/detections, the same map as vision_msgs (publish_detections)
        self._subscriptions_owned: list = []
        self._services_owned: list = []
        self._timers_owned: list = []
        self._helpers_owned: list = []
        self._info_cond = threading.Condition()
        self._frame_lock = threading.Lock()  # per-frame state: the perception thread, resets
        self._worker = LatestItemWorker(self._handle_frame, self._on_frame_error,
                                        name='geovr_perception')
        self.drops = DropLog(self.get_logger(), self.p['log_throttle_period'])
        # Questions: the executor only takes each request and hands it to the answering
        # thread (an async callback waits for the answer), so a burst is taken off the
        # middleware queue at once and every request gets a response, a refusal
        # "busy: N questions waiting" beyond query_queue_depth.
        self._query_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._query_lock = threading.Lock()
        self._queries_waiting = 0
        self._query_thread = threading.Thread(target=self._answer_questions,
                                              name='geovr_questions', daemon=True)
        self._query_thread.start()
        # Keep-all: a keep-last queue silently drops requests (and responses) of a burst.
        self._query_service = self.create_service(
            SpatialQuery, '~/query', self._on_query, callback_group=self._query_group,
            qos_profile=QoSProfile(history=HistoryPolicy.KEEP_ALL, depth=1,
                                   reliability=ReliabilityPolicy.RELIABLE,
                                   durability=DurabilityPolicy.VOLATILE))
        if self.p['autostart']:
            # Steady clock: with use_sim_time a ROS-time timer would wait for /clock.
            self._autostart_timer = self.create_timer(0.0, self._autostart,
                                                      clock=Clock(clock_type=ClockType.STEADY_TIME))

    # ---------------------------------------------------------------- lifecycle
    def _autostart(self) -> None:
        self.destroy_timer(self._autostart_timer)
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        p = self.p = {name: self.get_parameter(name).value for name in self.p}
        before = self._entities()
        try:
            self._check_parameters(p)
            self._perception = self._load_model(p)
            self._make_cores(p, self._given_answerer or self._load_answerer(p))
            self._make_ros_entities(p)
        except Exception as error:  # every failure becomes a failed transition, with reason
            self.get_logger().error(f'configure failed: {error}')
            self._release_entities_since(before)
            if self._perception is not None:
                self._perception.close()
            self._perception = self.session = None
            return TransitionCallbackReturn.FAILURE
        meta = self._perception.metadata
        self.get_logger().info(
            f'model {p["model"]!r} loaded: backend {self._backend_name()}, input '
            f'{self._perception.input_size[0]}x{self._perception.input_size[1]}'
            f'{" (pixel count; each camera at its own aspect)" if self._perception.fits_camera else ""}, version '
            f'{getattr(meta, "model_version", "?")}')
        return TransitionCallbackReturn.SUCCESS

    def _entities(self) -> dict[str, set]:
        """ids of the node's publishers, subscriptions, services and timers now."""
        return {kind: {id(e) for e in getattr(self, kind)}
                for kind in ('publishers', 'subscriptions', 'services', 'timers')}

    def _release_entities_since(self, before: dict[str, set]) -> None:
        """Destroys what a failed configure created (no half-made publishers stay)."""
        destroy = {'publishers': self.destroy_publisher,
                   'subscriptions': self.destroy_subscription,
                   'services': self.destroy_service, 'timers': self.destroy_timer}
        for kind, entities in before.items():
            for entity in list(getattr(self, kind)):
                if id(entity) not in entities:
                    destroy[kind](entity)
        for helper in self._helpers_owned:
            helper.destroy()
        self._publishers_owned, self._subscriptions_owned = [], []
        self._input_subscriptions = {}
        self._services_owned, self._timers_owned, self._helpers_owned = [], [], []

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._activated_at = time.monotonic()
        self._last_input = dict.fromkeys(self._last_input)   # monotonic s of each input's last message
        self._silent_logged.clear()
        self._active = True
        self._worker.start()
        self.get_logger().info('active: waiting for images on '
                               f'{self.resolve_topic_name("image")} and camera_info on '
                               f'{self.resolve_topic_name("camera_info")}')
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._worker.stop()
        return TransitionCallbackReturn.SUCCESS

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._worker.stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._active = False
        self._worker.stop()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        for publisher in self._publishers_owned:
            self.destroy_publisher(publisher)
        for subscription in self._subscriptions_owned:
            self.destroy_subscription(subscription)
        for service in self._services_owned:
            self.destroy_service(service)
        for timer in self._timers_owned:
            self.destroy_timer(timer)
        for helper in self._helpers_owned:
            helper.destroy()
        self._publishers_owned, self._subscriptions_owned = [], []
        self._input_subscriptions = {}
        self._services_owned, self._timers_owned, self._helpers_owned = [], [], []
        if self._perception is not None:
            self._perception.close()
            self._perception = self.session = None

    @staticmethod
    def _check_parameters(p: dict) -> None:
        """Raises ValueError naming the first parameter outside GEOVR_NODE_RULES."""
        if not p['model']:
            raise ValueError('parameter model is empty: set it to a model directory or file '
                             '(geovr-export onnx --out DIR)')
        check_parameters(p, GEOVR_NODE_RULES)
        program = p['backend'] == 'torch' or str(p['model']).endswith('.pt2')
        if program and not p['allow_untrusted_programs']:
            raise ValueError(f'refusing a PyTorch program (backend {p["backend"]!r}, model '
                             f'{p["model"]!r}): loading a .pt2 file can run any code in it; '
                             f'use the ONNX model (backend auto or onnxruntime) or set '
                             f'allow_untrusted_programs to true for a file you trust')

    def _on_set_parameters(self, params) -> SetParametersResult:
        """Run-time parameter changes: refused with the allowed values when outside
        GEOVR_NODE_RULES (the same table configure checks)."""
        for param in params:
            problem = parameter_problem(param.name, param.value, GEOVR_NODE_RULES)
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    def _load_model(self, p: dict):
        from geovr_ros.inference import PerceptionPipeline  # heavy: only at configure
        size = tuple(int(v) for v in p['input_size'])
        return PerceptionPipeline(p['model'], backend=p['backend'],
                                  input_size=None if size == (0, 0) else size,
                                  **backend_options(p))

    def _load_answerer(self, p: dict) -> QuestionAnswerer:
        if not p['question_model']:
            return GeometricAnswerer()
        from geovr_ros.language.answerer import LanguageAnswerer  # optional, heavy
        language = LanguageAnswerer(p['question_model'], backend=p['backend'],
                                    frame=p['odom_frame'], max_chars=p['max_question_chars'],
                                    **backend_options(p))
        self.get_logger().info(f'question model {p["question_model"]!r} loaded')
        mismatch = language.geometry_mismatch(self._perception.metadata.config_sha256)
        if mismatch:
            self.get_logger().warning(mismatch)
        return ChainedAnswerer([GeometricAnswerer(), language])

    def _backend_name(self) -> str:
        backend = self._perception.backend if self._perception else None
        return getattr(backend, 'name', type(backend).__name__) if backend else 'none'

    def _make_cores(self, p: dict, answerer: QuestionAnswerer) -> None:
        self.session = Session(self._perception, SessionConfig.from_parameters(p), answerer,
                               self.get_logger())
        self.pairer = IntrinsicsPairer(p['pairing_mode'], p['pairing_tolerance'])
        self.rectifier = Rectifier()
        if p['localization_enabled'] and p['map_file']:
            try:
                count = self.session.load_map(p['map_file'])
                self.get_logger().info(f'localizing in map {p["map_file"]!r} ({count} keyframes)')
            except MapFileError as error:
                if 'does not exist' in str(error):
                    self.get_logger().info(f'mapping afresh: {error}')
                else:
                    self.get_logger().warning(f'{error}: mapping afresh')
        self._T_odom_opt0 = None         # odom <- optical frame of the first image
        self._path = deque(maxlen=p['path_max_length'])
        self._objects_unsent = False     # the object map changed since ~/objects was last sent
        self._objects_sent = float('-inf')   # when it was, monotonic s
        self._frames_received = 0       # every counter of the diagnostics starts afresh together
        self._worker.replaced = 0
        self.drops.reset()
        self._sim_time_hint_given = False
        self._confidence_missing_said = False
        self._stage_ms: deque = deque(maxlen=100)
        self._processed_times: deque = deque(maxlen=100)
        self._last_drop_total = 0

    def _make_ros_entities(self, p: dict) -> None:
        image_qos = qos_profile(p['qos_reliability'], 'volatile', p['qos_depth'])
        info_qos = qos_profile(p['qos_reliability'], 'volatile', 10)
        out_qos = qos_profile('reliable', 'volatile', 1)
        pub = self.create_publisher
        self.pub_depth = pub(Image, 'depth', out_qos)
        self.pub_depth_info = pub(CameraInfo, 'depth/camera_info', out_qos)
        self.pub_colored = pub(Image, 'depth/colored', out_qos) \
            if p['publish_depth_colored'] else None
        self.pub_confidence = pub(Image, 'depth/confidence', out_qos) \
            if p['publish_depth_confidence'] else None
        self.pub_points = pub(PointCloud2, 'points', out_qos) if p['publish_points'] else None
        self.pub_odom = pub(Odometry, 'odometry', qos_profile('reliable', 'volatile', 10))
        self.pub_pose = pub(PoseStamped, 'pose', qos_profile('reliable', 'volatile', 10))
        self.pub_path = pub(Path, 'path', out_qos)
        self.pub_loc = pub(PoseWithCovarianceStamped, 'localization',
                           qos_profile('reliable', 'volatile', 10))
        self.pub_diag = pub(DiagnosticArray, '/diagnostics',
                            qos_profile('reliable', 'volatile', 10))
        # the object map, latched: a late RViz or subscriber gets the newest map at once
        self.pub_objects = pub(MarkerArray, '~/objects', LATCHED) \
            if self.session.objects is not None else None
        self.pub_detections = self._detections_publisher(p) if self.session.objects is not None else None
        self.tf = TransformPublisher(self)
        self.static_tf = StaticTransformCache(self) \
            if p['odom_child'] == 'base' and p['camera_mount_source'] == 'tf' else None
        image_sub = self.create_subscription(Image, 'image', self._on_image, image_qos,
                                             callback_group=self._frame_group)
        self._image_rectified = input_is_rectified(p['undistort'], image_sub.topic_name)
        self._lens_logged = False
        reliability = p['qos_reliability']
        info_sub = self.create_subscription(CameraInfo, 'camera_info', self._on_camera_info, info_qos,
                                            callback_group=self._info_group)
        # input -> [(subscription, its reliability, how to point it elsewhere)], for _silent_input_reason
        inputs = {'image': [(image_sub, reliability, 'remap image:=<topic>')],
                  'camera_info': [(info_sub, reliability, 'remap camera_info:=<topic>')]}
        if p['subscribe_compressed']:
            inputs['image'].append((self.create_subscription(
                CompressedImage, 'image/compressed', self._on_image, image_qos,
                callback_group=self._frame_group), reliability, 'remap image/compressed:=<topic>'))
        if p['scale_odometry_topic']:   # best effort matches reliable and best-effort publishers
            inputs['reference_odometry'] = [(self.create_subscription(
                Odometry, p['scale_odometry_topic'], self._on_reference_odometry,
                qos_profile('best_effort', 'volatile', 50), callback_group=self._reference_group),
                'best_effort', 'set scale_odometry_topic to it')]
        self._input_subscriptions = inputs
        subs = [subscription for entries in inputs.values() for subscription, _, _ in entries]
        services = [
            self.create_service(Trigger, '~/reset', self._on_reset,
                                callback_group=self._frame_group),
            self.create_service(Trigger, '~/save_map', self._on_save_map,
                                callback_group=self._frame_group),
            self.create_service(Trigger, '~/load_map', self._on_load_map,
                                callback_group=self._frame_group),
            self.create_service(Trigger, '~/reset_map', self._on_reset_map,
                                callback_group=self._frame_group)]
        timer = self.create_timer(p['diagnostics_period'], self._publish_diagnostics,
                                  callback_group=self._diag_group,
                                  clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._publishers_owned = [e for e in (
            self.pub_depth, self.pub_depth_info, self.pub_odom, self.pub_pose, self.pub_path,
            self.pub_loc, self.pub_diag, self.pub_colored, self.pub_confidence, self.pub_points,
            self.pub_objects, self.pub_detections)
            if e is not None]
        self._subscriptions_owned = subs
        self._services_owned = services
        self._timers_owned = [timer]
        self._helpers_owned = [e for e in (self.tf, self.static_tf) if e is not None]

    # ---------------------------------------------------------------- inputs
    def _on_camera_info(self, msg: CameraInfo) -> None:
        if not self._active:
            return
        self._input_arrived('camera_info')
        try:
            K = camera_info_to_k(msg)
            if msg.binning_x > 1 or msg.binning_y > 1 or (
                    msg.roi.width and (msg.roi.width, msg.roi.height) != (msg.width, msg.height)):
                raise InvalidIntrinsicsError(
                    f'binning or region of interest is not supported (binning {msg.binning_x}x'
                    f'{msg.binning_y}, roi {msg.roi.width}x{msg.roi.height}); publish full '
                    f'images or a camera_info for the image as sent')
            rectification = None
            if self._image_rectified:
                K = rectified_camera(K, msg.p)
                validate_intrinsics(K, msg.width, msg.height)
            else:
                rectification = self.rectifier.for_camera(msg.distortion_model, msg.d, K, msg.r,
                                                           msg.p, msg.width, msg.height)
                if rectification is not None:
                    validate_intrinsics(rectification.K, msg.width, msg.height)
                    K = rectification.K
            if not self._lens_logged and any(msg.d):
                self._lens_logged = True
                self.get_logger().info(
                    f'camera_info has {msg.distortion_model} distortion: ' + (
                        'the images are taken as rectified already (undistort: '
                        f'{self.p["undistort"]}), its d is not applied, the camera is P'
                        if self._image_rectified else 'the images are undistorted before the model'))
        except GeometryError as error:
            self.drops.drop('bad_camera_info', f'camera_info rejected: {error}',
                            check_name(str(error)))
            return
        with self._info_cond:
            self.pairer.add(CameraIntrinsics(stamp_to_sec(msg.header.stamp), K, msg.width,
                                             msg.height, rectification))
            self._info_cond.notify_all()

    def _input_arrived(self, name: str) -> None:
        self._last_input[name] = time.monotonic()
        if name in self._silent_logged:
            self._silent_logged.discard(name)
            self.get_logger().info(f'{name} messages arrive now')

    def _silent_input_reason(self) -> str | None:
        """Why inputs have been silent for input_timeout seconds (the images; or, while images
        arrive, any camera_info at all, or the reference odometry of scale_odometry_topic), from
        the ROS graph; each logged once per silence. None when the inputs flow, the node is
        inactive or input_timeout is 0."""
        timeout, now = self.p['input_timeout'], time.monotonic()
        if not self._active or timeout <= 0:
            return None
        since = {name: now - (last if last is not None else self._activated_at)
                 for name, last in self._last_input.items()}
        if since['image'] >= timeout:
            silent = ['image']
        else:
            silent = [name for name in ('camera_info', 'reference_odometry')
                      if name in self._input_subscriptions and since[name] >= timeout
                      and (name != 'camera_info' or self._last_input[name] is None)]
        if not silent:
            return None
        topic_types = self.get_topic_names_and_types()
        own = frozenset(publisher.topic_name for publisher in self._publishers_owned)
        reasons = []
        for name in silent:
            said = []
            for subscription, reliability, redirect in self._input_subscriptions[name]:
                topic = subscription.topic_name
                said.append(silent_topic_reason(
                    topic, message_type_name(subscription.msg_type),
                    endpoints(self.get_publishers_info_by_topic(topic)), reliability, 'volatile', topic_types,
                    since[name], redirect, own))
            if name not in self._silent_logged:
                self._silent_logged.add(name)
                self.get_logger().warning('; '.join(said))
            reasons += said
        return '; '.join(reasons)

    def _on_reference_odometry(self, msg: Odometry) -> None:
        """scale_odometry_topic: the camera's pose in the reference odometry (its child frame
        taken as base_frame, times the mount) to the session, whose distances scale the depth.
        Messages before the first image (no mount yet) are skipped."""
        session = self.session
        if self._active:
            self._input_arrived('reference_odometry')
        if not self._active or session is None or session.mount is None:
            return
        try:
            stamp = stamp_to_sec(msg.header.stamp)
            session.add_reference_pose(stamp, pose_from_msg(msg.pose.pose) @ session.mount)
        except ValueError as error:   # NaN, a zero quaternion
            now = time.monotonic()
            if now - self._reference_warned >= self.p['log_throttle_period']:
                self._reference_warned = now
                self.get_logger().warning(f'reference odometry on {self.p["scale_odometry_topic"]!r} '
                                          f'rejected: {error}')

    def _on_image(self, msg: Image | CompressedImage) -> None:
        """Image and image/compressed callback: hands the frame to the perception thread."""
        if not self._active:
            return
        self._input_arrived('image')
        self._frames_received += 1
        age = self.get_clock().now().nanoseconds * 1e-9 - stamp_to_sec(msg.header.stamp)
        if abs(age) > CLOCK_MISMATCH_S and not self._sim_time_hint_given:
            self._sim_time_hint_given = True
            self.get_logger().warning(
                f'image stamps are {age:.0f} s from this node\'s clock: they look like recorded or '
                f'simulated time. Play the recording\'s /clock and set use_sim_time:=true '
                f'(latencies and "how long ago" answers are wrong until then)')
        self._worker.submit((time.perf_counter(), age, msg))

    def _handle_frame(self, item: tuple[float, float, Image | CompressedImage]) -> None:
        """On the perception thread: decode and process one frame (item: perf_counter at
        arrival, age of the stamp at arrival in seconds, message)."""
        t_start, age, msg = item
        with self._frame_lock:
            if not self._active or self.session is None:
                return
            decode = self._decode_compressed if isinstance(msg, CompressedImage) else self._decode_raw
            rgb = decode(msg)
            if rgb is not None:
                self._process(rgb, msg.header, t_start, age)

    def _on_frame_error(self, error: BaseException) -> None:
        self.drops.drop('error', f'processing failed: {type(error).__name__}: {error}',
                        type(error).__name__)  # a class name: a finite key

    def _decode_raw(self, msg: Image) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB, or None after logging why the frame is dropped."""
        if msg.width * msg.height > self.p['max_image_pixels']:
            self.drops.drop('too_large', f'image {msg.width}x{msg.height} has more than '
                                         f'max_image_pixels={self.p["max_image_pixels"]} pixels')
            return None
        if msg.encoding in DEPTH_ENCODINGS:
            self.drops.drop('depth_encoding', f'image rejected: image encoding '
                                              f'{msg.encoding!r} is depth, not colour')
            return None
        if msg.encoding not in SUPPORTED_ENCODINGS:
            self.drops.drop('bad_encoding', f'image rejected: unsupported image encoding '
                                            f'{shown(msg.encoding)}; supported: '
                                            f'{", ".join(SUPPORTED_ENCODINGS)}')
            return None
        try:
            return image_msg_to_rgb(msg)
        except GeometryError as error:  # the encoding is a known one: no sender text here
            self.drops.drop('bad_image', f'image rejected: {error}', check_name(str(error)))
            return None

    def _decode_compressed(self, msg: CompressedImage) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB; the size is checked from the PNG/JPEG header first."""
        try:
            return compressed_msg_to_rgb(msg, self.p['max_image_pixels'])
        except ImageTooLargeError as error:
            self.drops.drop('too_large', str(error))
        except GeometryError as error:
            self.drops.drop('bad_compressed', f'compressed image (format '
                                              f'{shown(msg.format)}) rejected: {error}',
                            check_name(str(error)))
        return None

    def _intrinsics_for(self, stamp: float) -> tuple[CameraIntrinsics | None, str]:
        deadline = time.monotonic() + self.p['pairing_wait']
        with self._info_cond:
            while True:
                found, reason = self.pairer.match(stamp)
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0:
                    return found, reason
                self._info_cond.wait(remaining)

    # ---------------------------------------------------------------- processing
    def _process(self, rgb: np.ndarray, header: Header, t_start: float, age: float) -> None:
        """One frame: rgb (H, W, 3) uint8 with its header; t_start: perf_counter when the
        callback ran; age: seconds from the image stamp to the callback."""
        if not 0 <= header.stamp.nanosec < 1_000_000_000:
            self.drops.drop('bad_stamp', f'stamp nanosec {header.stamp.nanosec} is not in '
                                         f'[0, 1e9)')
            return
        stamp = stamp_to_sec(header.stamp)
        # Validate the frame first: a stamp is trusted only for a frame that is usable.
        intrinsics, reason = self._intrinsics_for(stamp)
        if intrinsics is None:
            self.drops.drop('no_camera_info', reason)
            return
        height, width = rgb.shape[:2]
        if (intrinsics.width, intrinsics.height) != (width, height):
            self.drops.drop('size_mismatch', f'camera_info is {intrinsics.width}x'
                                             f'{intrinsics.height} but the image is '
                                             f'{width}x{height}')
            return
        if intrinsics.rectification is not None:   # distorted camera: the model sees pinhole
            rgb = intrinsics.rectification.apply(rgb)
        camera_frame = self.p['camera_frame'] or header.frame_id
        if not camera_frame:
            self.drops.drop('no_frame_id', 'image has an empty frame_id and the camera_frame '
                                           'parameter is empty')
            return
        T_odom_opt0 = self._odom_from_first_optical(camera_frame)
        if T_odom_opt0 is None:
            return
        if self.session.mount is None:
            self.session.set_mount(T_odom_opt0)
        t_decoded = time.perf_counter()
        frame = self.session.process(
            rgb, intrinsics.K, stamp, camera_frame=camera_frame,
            on_perception=lambda result: self._publish_perception(result, header, camera_frame,
                                                                  rgb, intrinsics))
        if frame.stamp_check == StampCheck.JUMP_BACK:   # odometry restarted
            self._path.clear()
        if frame.dropped:
            self.drops.drop(frame.reason, frame.message)
            return
        t_processed = time.perf_counter()
        self._publish_odometry(frame.odometry, frame.T_odom_cam, header, camera_frame,
                               frame.covariance, frame.twist_covariance)
        t_odometry = time.perf_counter()
        if frame.T_map_odom is not None:
            self._publish_localization(frame, header)
        self._objects_unsent |= frame.objects_changed
        if self._objects_unsent and (frame.keyframe or time.monotonic() - self._objects_sent
                                     >= self.p['objects_publish_period']):
            self._publish_objects(header.stamp)
        t_end = time.perf_counter()
        self._processed_times.append(time.monotonic())
        ms, session_ms = 1e3, frame.timings_ms
        self._stage_ms.append({
            'arrival_age_ms': age * ms,
            'input_ms': (t_decoded - t_start) * ms,
            'preprocess_ms': session_ms['preprocess_ms'],
            'model_ms': session_ms['model_ms'],
            'depth_publish_ms': session_ms['perception_callback_ms'],
            'odometry_ms': session_ms['odometry_ms'] + (t_odometry - t_processed) * ms,
            'localization_ms': session_ms['localization_ms'] + (t_end - t_odometry) * ms,
            'total_ms': (t_end - t_start) * ms})

    def _odom_from_first_optical(self, camera_frame: str) -> np.ndarray | None:
        """odom <- optical frame of the first image: the camera mount (base mode) or the
        REP 103 body rotation (camera mode), so that odom is x forward, z up."""
        if self._T_odom_opt0 is not None:
            return self._T_odom_opt0
        if self.p['odom_child'] == 'camera':
            self._T_odom_opt0 = T_BODY_OPTICAL.copy()
        elif self.p['camera_mount_source'] == 'parameters':
            T_base_body = make_pose(matrix_from_rpy(*self.p['camera_mount_rpy']),
                                    np.asarray(self.p['camera_mount_xyz'], float))
            self._T_odom_opt0 = body_to_optical(T_base_body)
            if self.p['publish_mount_tf']:
                self.tf.send_static(transform_stamped_msg(
                    self._T_odom_opt0, self.p['base_frame'], camera_frame,
                    self.get_clock().now().to_msg()))
        else:
            T = self.static_tf.lookup(self.p['base_frame'], camera_frame)
            if T is None:
                self.drops.drop('no_mount', f'no static transform {self.p["base_frame"]} -> '
                                            f'{shown(camera_frame)} on /tf_static yet '
                                            f'(odom_child is base, camera_mount_source is tf)')
                return None
            self._T_odom_opt0 = T
        return self._T_odom_opt0

    # ---------------------------------------------------------------- outputs
    @staticmethod
    def _camera_sized(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """`values` (h, w) at the camera's pixels (`same_camera_lookup`), NaN outside the
        model input's window (the sides a camera of another aspect had cut)."""
        out = values[np.maximum(rows, 0)][:, np.maximum(cols, 0)].astype(np.float32)
        out[rows < 0] = np.nan
        out[:, cols < 0] = np.nan
        return out

    def _publish_perception(self, result, header: Header, camera_frame: str, rgb: np.ndarray,
                            intrinsics: CameraIntrinsics) -> None:
        out_header = Header(stamp=header.stamp, frame_id=camera_frame)
        depth = np.where(np.isfinite(result.depth) & (result.depth > 0), result.depth, np.nan)
        depth, K = depth.astype(np.float32), result.K
        confidence = result.depth_confidence
        if confidence is None and not self._confidence_missing_said and (
                self.p['depth_min_confidence'] > 0 or self.pub_confidence is not None):
            self._confidence_missing_said = True
            self.get_logger().warning('the model has no depth_confidence output (exported before it): '
                                      'depth/confidence is not published and depth_min_confidence '
                                      'is ignored; export the model again to get it')
        if confidence is not None and self.p['depth_min_confidence'] > 0:
            depth = np.where(confidence >= self.p['depth_min_confidence'], depth, np.nan).astype(np.float32)
        if self.p['depth_upsample'] and depth.shape != rgb.shape[:2]:
            rows, cols = same_camera_lookup(K, intrinsics.K, rgb.shape[1::-1], depth.shape[::-1])
            depth, K = self._camera_sized(depth, rows, cols), intrinsics.K
            confidence = None if confidence is None else self._camera_sized(confidence, rows, cols)
        self.pub_depth.publish(depth_to_image_msg(depth, out_header))
        if self.pub_confidence is not None and confidence is not None:
            self.pub_confidence.publish(array_to_image_msg(np.asarray(confidence, np.float32), '32FC1',
                                                           out_header))
        self.pub_depth_info.publish(camera_info_msg(K, depth.shape[1], depth.shape[0],
                                                    out_header))
        if self.pub_colored is not None and self.pub_colored.get_subscription_count() > 0:
            self.pub_colored.publish(array_to_image_msg(colorize_depth(depth), 'rgb8',
                                                        out_header))
        if self.pub_points is not None and self.pub_points.get_subscription_count() > 0:
            n = self.p['points_decimation']
            sub = depth[::n, ::n]
            sub = np.where(sub <= self.p['points_max_depth'], sub, np.nan)
            K_sub = K.copy()
            K_sub[:2] /= n
            self.pub_points.publish(pointcloud2_msg(depth_to_points(sub, K_sub).reshape(-1, 3),
                                                    out_header))

    def _publish_odometry(self, update, T_odom_cam, header, camera_frame, covariance=None,
                          twist_covariance=None) -> None:
        """covariance: (6, 6) of the pose in odom axes from tracking; twist_covariance: (6, 6)
        of the velocities in the optical camera frame; either None: the parameters'."""
        T_child, child = self.session.child_pose(T_odom_cam)
        child = child or camera_frame
        odom_header = Header(stamp=header.stamp, frame_id=self.p['odom_frame'])
        var_p, var_r = self.p['odometry_position_variance'], self.p['odometry_orientation_variance']
        if covariance is None:
            covariance = np.diag([var_p] * 3 + [var_r] * 3)
        if twist_covariance is None:
            twist_covariance = np.diag([var_p] * 3 + [var_r] * 3)
        linear, angular = update.linear_velocity, update.angular_velocity
        if child != camera_frame:  # twist is in the child frame: rotate camera axes to base
            R = self._T_odom_opt0[:3, :3]  # the mount's rotation (lever arm ignored)
            linear, angular = R @ linear, R @ angular
            twist_covariance = rotate_covariance(twist_covariance, R)
        self.pub_odom.publish(odometry_msg(T_child, linear, angular, odom_header, child,
                                           covariance, twist_covariance))
        pose = PoseStamped(header=odom_header, pose=pose_msg(T_child))
        self.pub_pose.publish(pose)
        self._path.append(pose)
        if self.pub_path.get_subscription_count() > 0:  # 1000 poses cost ~1 ms to serialise
            self.pub_path.publish(Path(header=odom_header, poses=list(self._path)))
        if self.p['publish_odom_tf']:
            self.tf.send([transform_stamped_msg(T_child, self.p['odom_frame'], child,
                                                header.stamp)])

    def _publish_localization(self, frame, header: Header) -> None:
        """The child frame's pose in map (with the map pose's covariance) and map -> odom TF."""
        T_child, _ = self.session.child_pose(frame.T_odom_cam)
        msg = PoseWithCovarianceStamped()
        msg.header = Header(stamp=header.stamp, frame_id=self.p['map_frame'])
        msg.pose.pose = pose_msg(frame.T_map_odom @ T_child)
        msg.pose.covariance = [float(v) for v in frame.map_covariance.reshape(36)]
        self.pub_loc.publish(msg)
        if self.p['publish_map_to_odom_tf']:
            self.tf.send([transform_stamped_msg(frame.T_map_odom, self.p['map_frame'],
                                                self.p['odom_frame'], header.stamp)])

    def _detections_publisher(self, p: dict):
        """The ~/detections publisher, or None when not asked for or vision_msgs is missing."""
        if not p['publish_detections']:
            return None
        try:
            from vision_msgs.msg import Detection3DArray
        except ImportError as error:
            self.get_logger().warning(f'publish_detections: vision_msgs is not installed ({error}); the object '
                                      'map goes out as markers on ~/objects only')
            return None
        return self.create_publisher(Detection3DArray, '~/detections', LATCHED)

    def _publish_objects(self, stamp) -> None:
        """The object map as boxes and labels (a DELETEALL first: removed objects vanish) and,
        with publish_detections, as detections."""
        if self.pub_objects is None:
            return
        self._objects_unsent, self._objects_sent = False, time.monotonic()
        from geovr_ros.ros.object_markers import object_markers
        instances = self.session.objects.map.instances()
        self.pub_objects.publish(object_markers(instances, self.session.objects_frame, stamp,
                                                up=self.session.objects_up(), floor=self.session.room_outline()))
        if self.pub_detections is not None:
            from geovr_ros.ros.object_detections import object_detections
            self.pub_detections.publish(object_detections(instances, self.session.objects_frame, stamp))

    # ---------------------------------------------------------------- services
    @_under_frame_lock
    def _on_reset(self, request, response):
        if not self._active:
            response.success, response.message = False, 'node is not active'
            return response
        self.session.reset()
        self._path.clear()
        self._publish_objects(self.get_clock().now().to_msg())
        self.get_logger().info('odometry reset by ~/reset: restarting at the next frame')
        response.success, response.message = True, 'odometry and memory reset'
        return response

    @_under_frame_lock
    def _on_save_map(self, request, response):
        path = self.get_parameter('map_file').value
        if not self._active or not path:
            response.success = False
            response.message = 'set the map_file parameter first' if self._active \
                else 'node is not active'
            return response
        try:
            count = self.session.save_map(path)
        except (MapFileError, OSError) as error:
            response.success, response.message = False, f'saving the map failed: {error}'
            return response
        response.success = True
        response.message = f'saved {count} keyframes to {path}'
        self.get_logger().info(response.message)
        return response

    @_under_frame_lock
    def _on_load_map(self, request, response):
        path = self.get_parameter('map_file').value
        if not self._active:
            response.success, response.message = False, 'node is not active'
            return response
        try:
            count = self.session.load_map(path)   # the live map is untouched unless it is whole
        except MapFileError as error:
            response.success, response.message = False, f'{error}: the current map is kept'
            self.get_logger().warning(response.message)
            return response
        self._publish_objects(self.get_clock().now().to_msg())
        response.success = True
        response.message = (f'loaded {count} keyframes from {path}: '
                            f'localizing (map -> odom unknown until a place is recognised)')
        self.get_logger().info(response.message)
        return response

    @_under_frame_lock
    def _on_reset_map(self, request, response):
        if not self._active:
            response.success, response.message = False, 'node is not active'
            return response
        self.session.reset_map()
        self._publish_objects(self.get_clock().now().to_msg())
        response.success, response.message = True, 'map cleared: mapping afresh, map == odom'
        return response

    async def _on_query(self, request, response):
        """Executor side of ~/query: refuses at once when query_queue_depth questions are
        waiting, else queues the request for the answering thread and awaits its answer."""
        executor = self.executor
        with self._query_lock:
            waiting = self._queries_waiting
            busy = waiting >= self.p['query_queue_depth']
            if not busy:
                self._queries_waiting += 1
        if busy:
            response.success = False
            response.message = (f'busy: {waiting} questions waiting (query_queue_depth '
                                f'{self.p["query_queue_depth"]}); ask again later')
            return response
        if executor is None:   # not spun by an executor (direct calls in tests)
            try:
                return self._answer(request, response)
            finally:
                with self._query_lock:
                    self._queries_waiting -= 1
        answered = Future(executor=executor)
        answered.add_done_callback(lambda _: None)   # wakes the executor when answered
        self._query_queue.put((request, response, answered))
        return await answered

    def _answer_questions(self) -> None:
        """The answering thread: one question at a time, in arrival order."""
        while True:
            item = self._query_queue.get()
            if item is None:
                return
            request, response, answered = item
            try:
                response = self._answer(request, response)
            except Exception as error:  # an answerer bug must not leave a caller waiting
                response.success = False
                response.message = f'answering failed: {type(error).__name__}: {error}'
            finally:
                with self._query_lock:
                    self._queries_waiting -= 1
            answered.set_result(response)

    def destroy_node(self):
        """Stops the perception and answering threads first, then destroys the node: a thread
        still publishing while its publishers are destroyed, or alive when the interpreter
        exits, ended Ctrl-C with SIGABRT ('terminate called without an active exception')."""
        worker = getattr(self, '_worker', None)   # absent when __init__ failed
        if worker is not None and not worker.stop(timeout=10.0):
            self.get_logger().warning('the perception thread did not stop within 10 s')
        if hasattr(self, '_query_queue'):
            self._query_queue.put(None)
            thread = getattr(self, '_query_thread', None)
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5.0)
        return super().destroy_node()

    def _answer(self, request, response):
        session = self.session
        if session is None or not self._active:
            try:
                validate_question(request.question, self.p['max_question_chars'])
            except InvalidQuestionError as error:
                response.success, response.message = False, f'question rejected: {error}'
                return response
            response.success, response.message = False, 'node is not active'
            return response
        now = self.get_clock().now().nanoseconds * 1e-9
        answer = session.answer(request.question, now, request.target_frame, request.max_age)
        response.success, response.message = answer.success, answer.message
        if answer.stamp is None:   # refused before the answerer was asked
            return response
        response.answer, response.category = answer.answer, answer.category
        response.value, response.unit = float(answer.value), answer.unit
        response.confidence = float(answer.confidence)
        header = Header(stamp=sec_to_stamp(answer.stamp), frame_id=answer.frame)
        if len(answer.points):
            response.points = [PointStamped(header=header) for _ in answer.points]
            for msg, xyz in zip(response.points, answer.points):
                msg.point.x, msg.point.y, msg.point.z = (float(v) for v in xyz)
        response.object_ids = [int(i) for i in answer.object_ids]
        if answer.pose is not None:  # no pose: frame_id stays empty (an identity pose would look real)
            response.pose.header = header
            response.pose.pose = pose_msg(answer.pose)
        return response

    # ---------------------------------------------------------------- diagnostics
    def _send_waiting_objects(self) -> None:
        """A change of the object map that waited for its period goes out (the camera stopped
        after it); skipped while a frame is being processed, which sends it itself."""
        if not (self._objects_unsent and time.monotonic() - self._objects_sent >= self.p['objects_publish_period']
                and self._frame_lock.acquire(blocking=False)):
            return
        try:
            if self._active and self.session is not None and self._objects_unsent:
                self._publish_objects(self.get_clock().now().to_msg())
        finally:
            self._frame_lock.release()

    def _publish_diagnostics(self) -> None:
        self._send_waiting_objects()
        times = list(self._processed_times)
        now = time.monotonic()
        recent = [t for t in times if now - t < 5.0]
        rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 \
            and recent[-1] > recent[0] else 0.0
        stages = list(self._stage_ms)
        status = DiagnosticStatus(name=f'{self.get_name()}: perception',
                                  hardware_id=self._backend_name())
        session = self.session
        values = {'backend': self._backend_name(), 'rate_hz': f'{rate:.2f}',
                  'frames_received': str(self._frames_received),
                  'frames_processed': str(session.frames_processed),
                  'frames_skipped_busy': str(self._worker.replaced),
                  **session.diagnostics()}
        if stages:
            for key in stages[-1]:
                vals = [s[key] for s in stages if key in s]
                values[f'latency_{key}'] = f'{np.mean(vals):.2f}'
        drops = dict(self.drops.counts)
        for reason, count in sorted(drops.items()):
            values[f'dropped_{reason}'] = str(count)
        total = sum(drops.values())
        new_drops = total - self._last_drop_total
        silent = self._silent_input_reason()
        self._last_drop_total = total
        if not self._active:
            status.level, status.message = DiagnosticStatus.WARN, 'inactive'
        elif silent:
            status.level, status.message = DiagnosticStatus.WARN, silent
        elif new_drops:
            status.level = DiagnosticStatus.WARN
            status.message = f'{new_drops} frames dropped: ' + ', '.join(
                f'{r}={c}' for r, c in sorted(drops.items()))
        elif not recent:
            status.level, status.message = DiagnosticStatus.WARN, 'no images processed recently'
        else:
            status.level, status.message = DiagnosticStatus.OK, f'{rate:.1f} Hz'
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self.pub_diag.publish(array)


def main(args=None) -> None:
    rclpy.init(args=args)
    try:
        node = GeoVRNode()
    except ValueError as error:  # a wrong parameter type on the command line: one line
        get_logger('geovr_node').fatal(f'cannot start: {error}')
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    # One executor thread is enough: frames run on the perception thread, and rclpy's
    # MultiThreadedExecutor busy-waits while a callback group is busy (ros2/rclpy#1452),
    # which on a small CPU measurably slows the model (docs/benchmarks.md).
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
