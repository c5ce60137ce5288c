"""`Session`: a frame's whole journey from one camera, without ROS.

Per frame (`process`): stamp check -> preprocess -> the model on (odometry reference,
current) -> learned odometry -> geometric tracking and the pose graph -> spatial memory ->
localization (place recognition, map keyframes, map -> odom) -> the object map (on tracking
keyframes: the cell classifier names the cells, the depth places them; a loop closure
moves the objects with their keyframes). `answer` puts a question to
the memory and converts the answer to the requested frame. geovr_node converts messages and
publishes what `process` returns; `geovr-eval odometry` and the tests run the same object.

Poses are (4, 4) float64, metres; stamps seconds. `odom` is the first optical camera frame
moved by the mount `T_odom_opt0` (`set_mount`), so the node's odom is x forward, z up.

Threads: `process`, `reset`, `reset_map`, `load_map` must not run at the same time (the node
calls them under one lock); `answer` and `diagnostics` may run beside any of them.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from typing import Callable, NamedTuple

import numpy as np

from geovr_ros.geometry import (FloorScale, GeometryError, OdometryScale, invert_pose, moved_beyond, relative_pose,
                                rotate_covariance, rotation_between, transform_points, up_from_depth, vector_angle,
                                vertical_axis_of)
from geovr_ros.inference.decode import PerceptionResult
from geovr_ros.inference.preprocess import PreparedFrame
from geovr_ros.language.text import parse_options
from geovr_ros.localization import KeyframeMap, Localizer, LocalizerConfig, MapFileError, view_overlap
from geovr_ros.localization.place import PlaceView, locate, place_features, place_view
from geovr_ros.memory import (
    Answer, GeometricAnswerer, InvalidQuestionError, QuestionAnswerer, SpatialMemory,
    validate_question)
from geovr_ros.odometry import OdometryTracker, OdometryUpdate, StampCheck, StampGate
from geovr_ros.session.config import SessionConfig
from geovr_ros.session.geometric import GeometricOdometry
from geovr_ros.session.results import FrameDrop, FrameResult, ProcessedFrame
from geovr_ros.tracking import TrackerConfig

STAMP_JUMP_CONFIRM_FRAMES = 3   # valid frames in a row that make a stamp jump believed
CLOCK_MISMATCH_S = 86400.0      # stamps this far from the caller's clock are another clock's
KEPT_KEYFRAME_INPUTS = 64       # newest map keyframes whose input, depth and features are kept for verification
OBJECTS_PREFIX = 'objects_'     # map-file attachments of the object map
POSE_GRAPH_PREFIX = 'pose_graph_'   # ... and of the tracking keyframes' pose graph
# tracking_fallback 'reference': a wheel odometry may lag the camera (50 Hz messages that arrive
# after the frame's model has run): its last motion carries on this long past its newest pose,
# as the motion model carries the camera's own
REFERENCE_EXTRAPOLATION_S = 0.25


def denormalised_rgb(chw: np.ndarray, metadata) -> np.ndarray:
    """(H, W, 3) uint8 RGB back from the model's normalised (3, H, W) input (exact: the input
    was made from uint8 pixels); the map file stores keyframes so."""
    mean = np.asarray(metadata.mean, np.float32).reshape(3, 1, 1)
    std = np.asarray(metadata.std, np.float32).reshape(3, 1, 1)
    rgb = (chw * std + mean) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).transpose(1, 2, 0).copy()


class _KeptKeyframe(NamedTuple):
    """A map keyframe's model input (PreparedFrame), the model's depth (h, w) of it with its K,
    and its PlaceView once place verification needed it."""

    keyframe: object
    frame: PreparedFrame
    depth: np.ndarray
    depth_K: np.ndarray
    view: PlaceView | None = None


def _moved_instance(instance, T: np.ndarray):
    """An ObjectInstance moved rigidly by T (4, 4): its centroid and footprint box exactly, its
    axis-aligned box translated with the centroid (the extent keeps its size)."""
    centroid = transform_points(T, instance.centroid[None])[0]
    shift = centroid - instance.centroid
    footprint = None if instance.footprint_box is None else instance.footprint_box.moved(T)
    return dataclasses.replace(instance, centroid=centroid, box_min=instance.box_min + shift,
                               box_max=instance.box_max + shift, footprint_box=footprint)


class Session:
    """One camera's odometry, map, memory and answers (see the module docstring).

    Args:
        perception: a loaded `geovr_ros.inference.PerceptionPipeline` (the session does not
            close it).
        config: the knobs (`SessionConfig.from_parameters(node parameters)`).
        answerer: answers questions from the memory (default `GeometricAnswerer`).
        logger: gets the log lines (time jumps, tracking failures, loop closures); anything
            with `.info` and `.warning` (a `logging.Logger`, an rclpy logger).
        mount: T_odom_opt0 (4, 4), odom <- the first frame's optical frame; None until
            `set_mount` (the node learns it from TF with the first image).
    """

    def __init__(self, perception, config: SessionConfig | None = None,
                 answerer: QuestionAnswerer | None = None, logger=None,
                 mount: np.ndarray | None = None):
        self.perception = perception
        self.config = c = config or SessionConfig()
        self.answerer: QuestionAnswerer = answerer or GeometricAnswerer()
        self.log = logger or logging.getLogger(__name__)
        self.mount: np.ndarray | None = None
        self._mount_given: np.ndarray | None = None   # set_mount's, before the first frame levels it
        self.first_frame_tilt_deg: float | None = None  # how far the first frame was levelled (None: not)
        self.stamp_gate = StampGate(c.time_jump_threshold, STAMP_JUMP_CONFIRM_FRAMES)
        self.learned = OdometryTracker(c.odometry_reference_translation,
                                       c.odometry_reference_rotation,
                                       c.odometry_max_reference_frames, c.time_jump_threshold)
        self.geometric = GeometricOdometry(TrackerConfig(
            max_features=c.tracking_max_features, threshold_px=c.tracking_threshold_px,
            search_radius_px=c.tracking_search_radius_px,
            min_inliers=c.tracking_min_inliers, scale_alignment=c.tracking_scale_alignment,
            fallback=c.tracking_fallback, fallback_frames=c.tracking_fallback_frames,
            correspondences=c.tracking_correspondences,
            shift_recovery=c.tracking_shift_recovery, shift_fallback=c.tracking_shift_fallback,
            window_keyframes=c.tracking_window_keyframes,
            window_depth_sigma=c.tracking_window_depth_sigma),
            mapping=c.localization_enabled, logger=self.log) \
            if c.odometry_method == 'geometric' else None
        self.floor = FloorScale(c.floor_camera_height) if c.floor_camera_height > 0 else None
        self.odometry_scale = OdometryScale(c.scale_odometry_window, c.scale_odometry_min_motion) \
            if c.scale_odometry_topic else None
        self.memory = SpatialMemory(c.memory_max_keyframes, c.memory_max_tokens,
                                    path_resolution=c.path_resolution)
        self.localizer = Localizer(LocalizerConfig(
            keyframe_translation=c.keyframe_translation, keyframe_rotation=c.keyframe_rotation,
            keyframe_min_overlap=c.keyframe_min_overlap, match_threshold=c.match_threshold,
            window=c.alignment_window, max_keyframes=c.max_map_keyframes))
        self.frames_processed = 0          # since the session was made (not reset by `reset`)
        self.place_matches: Counter = Counter()   # 'accepted' / 'rejected' place matches
        self.place_checks: list = []       # (map Keyframe, PlaceMatch or None) of each place verified on the last frame
        self._state_lock = threading.Lock()
        self._latest = None                # (stamp, T_odom_cam, camera_frame, T_map_odom)
        self._camera_up_sum = np.zeros(3)  # the processed frames' up (minus optical y) in odom, summed
        self._learned_last: np.ndarray | None = None  # learned pose of the previous frame
        self._tracked_stamp: float | None = None       # stamp of the frame the tracker placed last
        self._scale = float('nan')
        self._keyframe_inputs: dict[int, _KeptKeyframe] = {}  # map keyframe id -> what verification needs
        self._map_keyframe_anchors: dict[int, tuple[int, np.ndarray]] = {}   # map keyframe id -> (tracking keyframe, T_kf_cam)
        self._tracker_config = self.geometric.tracker.config if self.geometric is not None else \
            TrackerConfig(max_features=c.tracking_max_features)   # ORB settings of place verification
        self._tracking_warned = float('-inf')
        self.objects = self._new_object_mapper()  # ObjectMapper in `objects_frame`, or None
        self._T_odom_named: np.ndarray | None = None   # the camera of the last frame named into the object map
        if mount is not None:
            self.set_mount(mount)
        self.loaded_pose_graph = None      # the PoseGraph of the map file loaded last, if it held one

    def _new_object_mapper(self):
        """An ObjectMapper when objects are enabled, the model names cells (a cell classifier)
        and odometry is geometric (objects hang on tracking keyframes); else None.
        Raises VocabularyError for a bad object_vocabulary file."""
        c = self.config
        if not c.objects_enabled or self.geometric is None \
                or getattr(self.perception, 'classifier', None) is None:
            return None
        from geovr_ros.objects import ObjectMapper, load_vocabulary, map_config_of
        vocabulary = load_vocabulary(c.object_vocabulary or None)
        if vocabulary.windows and getattr(self.perception, 'imagenet', None) is None:
            self.log.warning(f'object vocabulary {c.object_vocabulary!r} asks for windows, but the model has no '
                             'imagenet_cells graph to classify them: the cells are named instead')
        return ObjectMapper(vocabulary, map_config=map_config_of(vocabulary),
                            head_categories=getattr(self.perception, 'cell_categories', ()))

    @property
    def objects_frame(self) -> str:
        """The frame the object map is kept in: map with localization, else odom."""
        return self.config.map_frame if self.config.localization_enabled else self.config.odom_frame

    # ---------------------------------------------------------------- set-up
    def set_mount(self, T_odom_opt0: np.ndarray) -> None:
        """odom <- optical frame of the first image (4, 4): the camera mount (odom_child base)
        or the REP 103 body rotation (odom_child camera); identity keeps odom optical. The
        object map's vertical axis is the odom axis closest to the first image's up (z with a
        level mount, y with odom optical; None when the camera starts looking steeply up or
        down): observations then leave out the floor under an object and footprints merge.
        With odom_child camera and odom_level_from_depth the first frame's up is then the one
        its depth shows (`_level_first_frame`), not its optical -y."""
        T = np.array(T_odom_opt0, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f'T_odom_opt0 must be a finite 4x4 matrix, got shape {T.shape}')
        self.mount = T
        self._mount_given = T
        if self.config.floor_height_from_mount:
            self._floor_from_mount(T)
        if self.objects is not None:
            config = self.objects.map.config
            self.objects.map.config = dataclasses.replace(config, vertical_axis=vertical_axis_of(T))

    def add_reference_pose(self, stamp: float, T_ref_cam: np.ndarray) -> None:
        """The camera's pose (4, 4) at `stamp` (s) in a reference odometry's frame (a wheel
        odometry's base pose times the mount), whose distances give the model's depth its scale
        (scale_odometry_topic). Any thread. Raises RuntimeError when scale_odometry_topic is
        off, ValueError for a non-finite stamp or pose."""
        if self.odometry_scale is None:
            raise RuntimeError('add_reference_pose needs scale_odometry_topic set')
        T = np.asarray(T_ref_cam, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f'T_ref_cam must be a 4x4 matrix, got shape {T.shape}')
        self.odometry_scale.reference.add(stamp, T[:3, 3], T[:3, :3])

    def _floor_from_mount(self, T_base_opt: np.ndarray) -> None:
        """floor_height_from_mount: the floor's scale at the mount's height of the optical centre
        above base_frame (metres); a mount at or below base_frame's origin leaves it off and says why."""
        height = float(T_base_opt[2, 3])
        if height > 0:
            self.floor = FloorScale(height)
            self.log.info(f'floor_height_from_mount: the camera stands {height:.3f} m above {self.config.base_frame}; '
                          f'its depth takes the floor\'s scale')
        else:
            self.floor = None
            self.log.warning(f'floor_height_from_mount: the mount puts the camera {height:.3f} m above '
                             f'{self.config.base_frame}, not above it: the floor\'s scale stays off '
                             f'(base_frame must lie on the floor, as base_footprint does)')

    def _up_in_camera(self) -> np.ndarray:
        """(3,) up in the optical frame of the newest processed camera pose (the mount before
        the first): odom's z with odom_child base (the base is level), else the first frame's
        up (minus its optical y: it is taken as level)."""
        with self._state_lock:
            T_odom_cam = self.mount if self._latest is None else self._latest[1]
        return T_odom_cam[:3, :3].T @ self._up_in_odom()

    def objects_up(self) -> np.ndarray:
        """(3,) up in `objects_frame` (odom's up, moved into map by the latest map -> odom; z
        before the mount is known)."""
        if self.mount is None:
            return np.array([0.0, 0.0, 1.0])
        with self._state_lock:
            T_map_odom = None if self._latest is None else self._latest[3]
        R = T_map_odom[:3, :3] if self.config.localization_enabled and T_map_odom is not None else np.eye(3)
        return R @ self._up_in_odom()

    def room_outline(self):
        """The room's floor outline (`FloorOutline`) in `objects_frame`, or None (no object map,
        no mount yet, or too little seen)."""
        if self.objects is None or self.mount is None:
            return None
        return self.objects.map.room.outline(self.objects_up())

    def objects_up_tilt(self) -> float | None:
        """Degrees between the up the object map takes (the first frame's: `_up_in_odom`) and the
        mean up of the frames processed since; None with odom_child base (up is the level base's)
        or before a frame. A hand-held camera whose first frame was tilted gives the map a tilted
        up, and footprints, support surfaces and the floor the observations leave out are then
        measured askew (the HoloLens walk: 20 deg; `tum_fr1_rpy`, which rolls and pitches by
        design, 10.7; docs/objects.md, "The floor is not an object")."""
        if self.config.odom_child == 'base' or self.mount is None:
            return None
        with self._state_lock:
            mean_up = self._camera_up_sum.copy()
        if not np.linalg.norm(mean_up) > 0:
            return None
        return float(np.degrees(vector_angle(self._up_in_odom(), mean_up)))

    def _up_in_odom(self) -> np.ndarray:
        """(3,) up in odom: its z with odom_child base (the base is level), else the first
        frame's up (what the given mount makes of minus its optical y: the first frame is taken
        as level, or levelled by its depth, `_level_first_frame`)."""
        return np.array([0.0, 0.0, 1.0]) if self.config.odom_child == 'base' else -self._mount_given[:3, 1]

    def _level_first_frame(self, depth: np.ndarray, K: np.ndarray) -> None:
        """With odom_child camera and odom_level_from_depth: turns the first frame in odom so
        that the up its depth (H, W) with K (3, 3) shows (`geometry.up_from_depth`, from its
        optical -y) becomes odom's up; a view without horizontal surfaces keeps -y."""
        self.mount = self._mount_given
        self.first_frame_tilt_deg = None
        if self.config.odom_child != 'camera' or not self.config.odom_level_from_depth:
            return
        seen = up_from_depth(depth, K, np.array([0.0, -1.0, 0.0]))
        if seen is None:
            return
        level = np.eye(4)
        level[:3, :3] = rotation_between(seen, np.array([0.0, -1.0, 0.0]))   # opt0 -> opt0 levelled
        self.mount = self._mount_given @ level
        self.first_frame_tilt_deg = float(np.degrees(vector_angle(seen, np.array([0.0, -1.0, 0.0]))))
        self.log.info(f'odom levelled by the first frame\'s depth: its up is {self.first_frame_tilt_deg:.1f} deg '
                      f'from its optical -y')

    @property
    def pose_graph(self):
        """The tracking keyframes' `KeyframeGraph` (map -> odom while mapping), or None with
        learned odometry, localization off, or no gtsam."""
        return None if self.geometric is None else self.geometric.graph

    @property
    def latest_stamp(self) -> float | None:
        """Stamp (s) of the newest processed frame since the last reset, or None."""
        with self._state_lock:
            return None if self._latest is None else self._latest[0]

    # ---------------------------------------------------------------- frames
    def process(self, rgb: np.ndarray, K: np.ndarray, stamp: float, *, camera_frame: str = '',
                depth: tuple[np.ndarray, np.ndarray] | None = None,
                on_perception: Callable[[PerceptionResult], None] | None = None,
                arrival: float | None = None) -> FrameResult:
        """One frame.

        Args:
            rgb: (H, W, 3) uint8 RGB, already rectified (pinhole K).
            K: (3, 3) intrinsics of `rgb`, pixels.
            stamp: seconds.
            camera_frame: the optical frame's name (a question may ask in it).
            depth: (depth (h, w) metres, its K (3, 3)) for geometric tracking instead of the
                model's (a sensor's, or the recording's true depth).
            on_perception: called with the model's result as soon as it exists (the node
                publishes depth there, before odometry and localization run).
            arrival: when the frame arrived, on the monotonic clock (s; default: now): a
                stamp jump that the arrivals also show is a pause, believed at once.
        Returns:
            ProcessedFrame, or FrameDrop (repeated / out-of-order stamp, a stamp jump not yet
            confirmed, an image preprocessing rejects).
        Raises:
            RuntimeError: no mount yet (`set_mount`). Backend errors propagate.
        """
        if self.mount is None:
            raise RuntimeError('set_mount(T_odom_opt0) before the first frame')
        c = self.config
        stamp = float(stamp)
        last = self.learned.last_stamp
        check = self.stamp_gate.check(stamp, last, time.monotonic() if arrival is None else float(arrival))
        if check in (StampCheck.REPEATED, StampCheck.OUT_OF_ORDER):
            unstamped = ' (every image stamped 0: does the camera driver stamp its images?)' \
                if check == StampCheck.REPEATED and stamp == 0.0 else ''
            return FrameDrop(check.name.lower(), f'{check.value}: {stamp:.6f} after {last:.6f}{unstamped}')
        if check == StampCheck.JUMP_PENDING:
            return FrameDrop('stamp_jump', f'stamp {stamp:.3f} s is {stamp - last:+.3f} s from '
                                           f'the previous frame, more than time_jump_threshold: '
                                           f'ignored unless {self.stamp_gate.confirm_frames} '
                                           f'frames in a row confirm the jump')
        if check == StampCheck.JUMP_BACK:
            self.log.warning(f'time jumped backwards from {last:.3f} s to {stamp:.3f} s '
                             f'({self.stamp_gate.confirm_frames} frames in a row): restarting '
                             f'odometry')
            self.reset()
        elif check == StampCheck.JUMP_FORWARD:
            self.log.warning(f'time jumped forwards from {last:.3f} s to {stamp:.3f} s (a pause, or '
                             f'{self.stamp_gate.confirm_frames} frames in a row): odometry carries on')
        t_start = time.perf_counter()
        try:
            cur = self.perception.preprocess(rgb, K)
        except GeometryError as error:
            return FrameDrop('bad_input', f'preprocessing failed: {error}', check)
        t_prepared = time.perf_counter()
        first = not self.learned.started
        result = self.perception.run(cur if first else self.learned.reference, cur)
        if first:
            self._level_first_frame(*((result.depth, result.K) if depth is None else depth))
        applied = 1.0   # the factor of a scale source (the floor, a reference odometry) on the model's lengths
        if self.floor is not None:
            applied = self.floor.update(result.depth, result.K, self._up_in_camera())
        elif self.odometry_scale is not None:
            applied = self.odometry_scale.scale
        if applied != 1.0:
            result = result.rescaled(applied)
        t_inferred = time.perf_counter()
        if on_perception is not None:
            on_perception(result)
        t_called = time.perf_counter()
        learned = (self.learned.start(stamp, cur) if first
                   else self.learned.update(stamp, result.rel_pose, cur))
        odometry, covariance, tracked, timings = learned, None, None, {}
        if self.geometric is not None:
            odometry, covariance, tracked = self._track_geometric(rgb, K, result, learned, depth)
            timings = {'tracking_ms': tracked.tracking_ms, 'graph_ms': tracked.graph_ms}
            if self.odometry_scale is not None and depth is None:
                step = tracked.step
                self.odometry_scale.update(stamp, step.T_odom_cam, step.status == 'tracking', step.new_keyframe,
                                           applied * step.map_depth_ratio)
        T_odom_cam = self.mount @ odometry.T_odom_cam
        self._scale = result.scale
        self.memory.record_pose(stamp, T_odom_cam)
        if self.memory.is_new_view(T_odom_cam, c.keyframe_translation, c.keyframe_rotation):
            self.memory.add_keyframe(stamp, T_odom_cam, result.tokens, result.token_xyz)
        t_odometry = time.perf_counter()
        T_map_odom = map_covariance = None
        if c.localization_enabled:
            T_map_odom, map_covariance = self._localize(stamp, T_odom_cam, cur, result, covariance)
        if tracked is not None and tracked.loop_closure is not None and self._map_keyframe_anchors:
            self._move_map_keyframes()
        t_localized = time.perf_counter()
        objects_changed = False
        if self.objects is not None and tracked is not None:
            objects_changed = self._update_objects(stamp, cur, result, tracked, T_odom_cam, T_map_odom)
        t_end = time.perf_counter()
        with self._state_lock:
            self._latest = (stamp, T_odom_cam, camera_frame, T_map_odom)
            self._camera_up_sum = self._camera_up_sum - T_odom_cam[:3, 1]
        self.frames_processed += 1
        ms = 1e3
        timings = {'preprocess_ms': (t_prepared - t_start) * ms,
                   'model_ms': (t_inferred - t_prepared) * ms,
                   'perception_callback_ms': (t_called - t_inferred) * ms,
                   **timings,
                   'odometry_ms': (t_odometry - t_called) * ms,
                   'localization_ms': (t_localized - t_odometry) * ms,
                   'objects_ms': (t_end - t_localized) * ms}
        step = None if tracked is None else tracked.step
        return ProcessedFrame(
            stamp, result, odometry, learned, T_odom_cam, covariance, step,
            step.new_keyframe if step is not None else learned.new_reference,
            None if tracked is None else tracked.loop_closure, T_map_odom, map_covariance,
            check, timings, objects_changed, None if tracked is None else tracked.twist_covariance)

    def _track_geometric(self, rgb, K, result: PerceptionResult, learned: OdometryUpdate, depth
                         ) -> tuple[OdometryUpdate, np.ndarray | None, object]:
        """The frame's pose from PnP on the model's depth (or `depth`); the fallback is the
        motion model's pose, the learned relative one or the reference odometry's motion
        (`tracking_fallback`). Returns the update to publish (same stamp and new_reference,
        geometric pose and velocities), its covariance in odom axes or None, the GeometricStep."""
        import cv2
        if self.config.tracking_fallback == 'reference':
            prior = None if self._tracked_stamp is None else self.odometry_scale.reference.motion(
                self._tracked_stamp, learned.stamp, REFERENCE_EXTRAPOLATION_S)
        else:
            prior = None if self._learned_last is None else relative_pose(self._learned_last,
                                                                          learned.T_odom_cam)
        self._learned_last, self._tracked_stamp = learned.T_odom_cam, learned.stamp
        depth_map, depth_K = (result.depth, result.K) if depth is None else depth
        tracked = self.geometric.track(learned.stamp, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), K,
                                       depth_map, depth_K, prior)
        step, closure = tracked.step, tracked.loop_closure
        if closure is not None:
            self.log.info(f'loop closed: keyframe {closure.key} seen from keyframe {closure.older} '
                          f'({closure.inliers} PnP inliers), map moved {closure.correction_m:.2f} m')
        if step.status == 'fallback':
            now = time.monotonic()
            if now - self._tracking_warned >= self.config.log_throttle_period:
                self._tracking_warned = now
                used = {'shift': "the image shift's turn (no tracked motion left to carry)",
                        'reference': "the reference odometry's motion"}.get(
                    step.correspondences,
                    'the learned pose' if self.config.tracking_fallback == 'learned' else 'the motion model')
                self.log.warning(f'geometric tracking failed, {used} gives the pose: {step.reason}')
        covariance = None
        if step.covariance is not None:
            covariance = rotate_covariance(step.covariance, self.mount[:3, :3])
        update = OdometryUpdate(learned.stamp, step.T_odom_cam, tracked.linear_velocity,
                                tracked.angular_velocity, learned.new_reference)
        return update, covariance, tracked

    def _localize(self, stamp: float, T_odom_cam: np.ndarray, cur: PreparedFrame,
                  result: PerceptionResult, odometry_covariance: np.ndarray | None
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Place recognition every relocalize_period frames, a map keyframe when the view is
        new; returns (T_map_odom, covariance of the map pose (6, 6, map axes)) or (None, None).
        odometry_covariance: tracking's (6, 6) of the pose from its keyframe, odom axes, or None."""
        loc = self.localizer
        self.place_checks = []
        if self.frames_processed % max(1, self.config.relocalize_period) == 0 and len(loc.map):
            features = None   # the current frame's, found once for every candidate
            for keyframe, _ in loc.find_matches(result.descriptor, self.config.match_candidates):
                if features is None:
                    features = place_features(denormalised_rgb(cur.chw, self.perception.metadata), self._tracker_config)
                if self._verify_and_add_match(T_odom_cam, features, cur, result, keyframe):
                    break
        anchor = self._graph_anchor()
        T_map_cam = None if anchor is None else anchor[1] @ T_odom_cam
        if loc.should_add_keyframe(T_odom_cam, result.depth, result.K, T_map_cam):
            image = denormalised_rgb(cur.chw, self.perception.metadata)
            keyframe = loc.add_keyframe(stamp, T_odom_cam, result.descriptor, image, cur.K, T_map_cam)
            self._keep(_KeptKeyframe(keyframe, cur, result.depth, result.K))
            if anchor is not None:   # it moves with that tracking keyframe when the graph is corrected
                key = anchor[0]
                self._map_keyframe_anchors[keyframe.keyframe_id] = (
                    key, invert_pose(self._T_map_tracking_keyframe(key)) @ T_map_cam)
                while len(self._map_keyframe_anchors) > self.config.max_map_keyframes:   # the map evicts the oldest
                    del self._map_keyframe_anchors[next(iter(self._map_keyframe_anchors))]
        T_map_odom = self._map_odom()
        if T_map_odom is None:
            return None, None
        graph = self.pose_graph
        if graph is not None and loc.mapping and len(graph):   # the newest keyframe's, and tracking's from it
            mount = np.eye(4) if self.mount is None else self.mount
            in_graph = invert_pose(mount) @ T_map_odom @ T_odom_cam        # the camera in the graph's map
            covariance = rotate_covariance(graph.covariance(in_graph[:3, 3]), mount[:3, :3])
            if odometry_covariance is not None:
                covariance = covariance + rotate_covariance(odometry_covariance, T_map_odom[:3, :3])
            return T_map_odom, covariance
        return T_map_odom, loc.covariance(T_odom_cam)

    def _update_objects(self, stamp: float, cur: PreparedFrame, result: PerceptionResult, tracked,
                        T_odom_cam: np.ndarray, T_map_odom: np.ndarray | None) -> bool:
        """On a new tracking keyframe, and on a tracked frame whose camera moved
        `object_view_translation` or turned `object_view_rotation` since the last frame named,
        the cells the classifier names (ImageNet classes, and the category head's categories
        when the model has one) are placed with the model's depth, at the map's scale as the
        tracker keeps its keyframe's (`TrackingStep.depth_scale`), into the object map (a frame
        that is not a keyframe is kept relative to its keyframe); on a loop closure the objects
        move with their keyframes' optimised poses. Returns whether the object map changed."""
        changed = False
        keyframe, T_map_keyframe = tracked.step.keyframe, None
        T_objects_odom = T_map_odom if self.config.localization_enabled else np.eye(4)
        if keyframe is None and T_objects_odom is not None and self._new_object_view(tracked.step, T_odom_cam):
            keyframe = self.geometric.tracker.keyframe
            T_map_keyframe = T_objects_odom @ self.mount @ keyframe.T_odom_kf
        if keyframe is not None and T_objects_odom is not None:
            self._T_odom_named = T_odom_cam
            logits, categories, pool = self.naming_logits(cur)
            if logits is not None:
                observed = self.objects.observe_logits(
                    logits.reshape(-1, logits.shape[-1]), result.depth * tracked.step.depth_scale, result.K,
                    T_objects_odom @ T_odom_cam, keyframe.id, stamp, T_map_keyframe,
                    category_logits=None if categories is None else categories.reshape(-1, categories.shape[-1]),
                    pool=pool, rgb=denormalised_rgb(cur.chw, self.perception.metadata),
                    depth_confidence=result.depth_confidence)
                changed = bool(observed)
        graph = self.pose_graph
        if tracked.loop_closure is not None and graph is not None and self.localizer.mapping:
            moved = self.objects.map.relocate({key: self.mount @ graph.T_map_keyframe(key)
                                               for key in graph.keyframes})
            changed = changed or moved > 0
        return changed

    def _new_object_view(self, step, T_odom_cam: np.ndarray) -> bool:
        """Whether a tracked frame that is not a keyframe shows the objects from a new view: PnP
        gave its pose and the camera moved or turned enough since the last frame named."""
        c = self.config
        return step.status == 'tracking' and (
            self._T_odom_named is None
            or moved_beyond(relative_pose(self._T_odom_named, T_odom_cam),
                            c.object_view_translation, c.object_view_rotation))

    def naming_logits(self, frame: PreparedFrame) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """What names a frame's cells for the object map: (ImageNet logits (h, w, 1000) or
        None, the category head's logits (h', w', K + 1) or None, whether the ImageNet logits
        are to be pooled over cells). The ImageNet logits are the windows' when the vocabulary
        asks for windows and the model has `imagenet_cells` (not pooled), else the cells'.
        `self.objects.namer.probabilities(*naming_logits)` gives the cells' categories."""
        logits = self._window_logits(frame)   # (h, w, 1000) or None
        pool = logits is None
        if logits is None:
            logits = self.perception.cell_logits(frame)
        categories = (self.perception.cell_category_logits(frame)
                      if self.objects is not None and self.objects.namer.head_categories else None)
        return logits, categories, pool

    def _window_logits(self, frame: PreparedFrame) -> np.ndarray | None:
        """ImageNet logits (h, w, 1000) of the frame's stride-32 cells read from windows (the
        vocabulary's `windows`, `objects/windows.py`), or None when the vocabulary reads cells
        or the model directory has no `imagenet_cells` graph to classify windows with."""
        vocabulary = self.objects.vocabulary if self.objects is not None else None
        if vocabulary is None or not vocabulary.windows or getattr(self.perception, 'imagenet', None) is None:
            return None
        from geovr_ros.objects.windows import CELL_PIXELS, windowed_cell_logits
        cell = self.perception.metadata.patch_size or CELL_PIXELS   # the cells cell_logits would name
        return windowed_cell_logits(frame.chw, vocabulary, self.perception.image_logits, cell)

    def _keep(self, kept: _KeptKeyframe) -> None:
        """Keeps what place verification needs of a map keyframe, for the newest
        KEPT_KEYFRAME_INPUTS keyframes."""
        self._keyframe_inputs[kept.keyframe.keyframe_id] = kept
        bound = min(KEPT_KEYFRAME_INPUTS, self.config.max_map_keyframes)
        while len(self._keyframe_inputs) > bound:
            del self._keyframe_inputs[next(iter(self._keyframe_inputs))]

    def _place_view(self, keyframe, size: tuple[int, int]) -> PlaceView:
        """The map keyframe's ORB features lifted with the model's depth of its image, at the
        current frame's input size `size` (W, H): from the input and depth kept when it was
        mapped, else (a loaded or an older keyframe, or another size) the model run once on its
        stored image."""
        kept = self._keyframe_inputs.get(keyframe.keyframe_id)
        if kept is None or kept.keyframe is not keyframe or kept.frame.size != size:
            frame = self.perception.preprocess(keyframe.image, keyframe.K, size)
            result = self.perception.run(frame, frame)        # the keyframe as the current frame
            kept = _KeptKeyframe(keyframe, frame, result.depth, result.K)
        if kept.view is None:
            kept = kept._replace(view=place_view(denormalised_rgb(kept.frame.chw, self.perception.metadata),
                                                 kept.frame.K, kept.depth, kept.depth_K, self._tracker_config))
            self._keep(kept)
        return kept.view

    def _verify_and_add_match(self, T_odom_cam, features, cur: PreparedFrame, result: PerceptionResult,
                              keyframe) -> bool:
        """Places the current frame (its ORB `features`, `place_features`) in the recognised map
        keyframe by geometry (`localization.place`: ORB matches, PnP on the keyframe's depth);
        keeps the match only when PnP verifies it and the current depth, placed by that pose,
        overlaps the keyframe's view. Returns whether it was kept."""
        located = locate(self._place_view(keyframe, cur.size), features, cur.K, self._tracker_config)
        self.place_checks.append((keyframe, located))
        if located is None:
            self.place_matches['rejected'] += 1
            return False
        size = (keyframe.image.shape[1], keyframe.image.shape[0])
        overlap = view_overlap(result.depth, result.K, located.T_kf_cur, keyframe.K, size)
        if overlap < self.config.match_min_overlap:
            self.place_matches['rejected'] += 1
            return False
        self.place_matches['accepted'] += 1
        self.localizer.add_match(T_odom_cam, keyframe, located.T_kf_cur, located.covariance)
        return True

    def _graph_anchor(self) -> tuple[int, np.ndarray] | None:
        """(the newest tracking keyframe in the pose graph, map -> odom from the graph) while
        mapping with a pose graph, else None."""
        graph = self.pose_graph
        if graph is None or not self.localizer.mapping or not len(graph):
            return None
        return max(graph.keyframes), self._map_odom()

    def _T_map_tracking_keyframe(self, key: int) -> np.ndarray:
        """The pose graph's tracking keyframe `key` in the session's map frame (the mount's)."""
        mount = self.mount if self.mount is not None else np.eye(4)
        return mount @ self.pose_graph.T_map_keyframe(key)

    def _move_map_keyframes(self) -> None:
        """After a loop closure: each map keyframe placed while mapping moves with the tracking
        keyframe it was placed from (as the objects do), so a saved map's keyframes, pose graph
        and objects share one map frame."""
        graph = self.pose_graph
        moved = self.localizer.map.move({keyframe_id: self._T_map_tracking_keyframe(key) @ T_key_cam
                                         for keyframe_id, (key, T_key_cam) in self._map_keyframe_anchors.items()
                                         if key in graph.keyframes})
        # the rest were evicted from the map, or their tracking keyframe from a restarted graph
        self._map_keyframe_anchors = {keyframe_id: anchor for keyframe_id, anchor in self._map_keyframe_anchors.items()
                                      if keyframe_id in moved}
        for keyframe_id, keyframe in moved.items():
            kept = self._keyframe_inputs.get(keyframe_id)
            if kept is not None:
                self._keyframe_inputs[keyframe_id] = kept._replace(keyframe=keyframe)

    def _map_odom(self) -> np.ndarray | None:
        """map <- odom: from the pose graph while mapping, from the loaded map's place matches
        when localizing in one (None until the first match)."""
        graph = self.pose_graph
        if graph is not None and self.localizer.mapping:
            mount = self.mount if self.mount is not None else np.eye(4)
            return mount @ graph.T_map_odom @ invert_pose(mount)
        return self.localizer.T_map_odom

    def _refresh_map_odom(self) -> None:
        """map -> odom changed without a frame (the map was reset or loaded)."""
        with self._state_lock:
            if self._latest is not None:
                T_map_odom = self._map_odom() if self.config.localization_enabled else None
                self._latest = (*self._latest[:3], T_map_odom)

    # ---------------------------------------------------------------- resets and maps
    def reset(self) -> None:
        """Restarts odometry (the next frame is the new origin) and clears the memory; the
        map stays, map -> odom is unknown again (identity while mapping an empty map)."""
        self.learned.reset()
        if self.geometric is not None:
            self.geometric.reset()
        self._map_keyframe_anchors.clear()   # their tracking keyframes belonged to the old odometry
        self._learned_last = self._tracked_stamp = None
        if self.odometry_scale is not None:
            self.odometry_scale.restart()
        self.memory.clear()
        self.localizer.odometry_restarted()
        if self.objects is not None:   # its keyframes and poses belonged to the old odometry
            self.objects.map.clear()
        self._T_odom_named = None
        with self._state_lock:
            self._latest = None
            self._camera_up_sum = np.zeros(3)

    def reset_map(self) -> None:
        """Forgets the map (and the pose graph): mapping afresh with map == odom."""
        self.localizer.reset()
        self.loaded_pose_graph = None
        if self.geometric is not None:
            self.geometric.reset_graph()
        if self.objects is not None:
            self.objects.map.clear()
        self._keyframe_inputs.clear()
        self._map_keyframe_anchors.clear()
        self._refresh_map_odom()

    def read_map(self, path: str) -> KeyframeMap:
        """A new KeyframeMap from `path`, checked against max_map_keyframes and the model's
        descriptor size and input size; raises MapFileError saying why not (any other
        failure reading it is reported the same way)."""
        descriptor_size = None
        for spec in self.perception.backend.output_specs:
            if spec.name == 'descriptor' and spec.shape and isinstance(spec.shape[-1], int):
                descriptor_size = spec.shape[-1]
        try:
            return KeyframeMap.load(path, self.config.max_map_keyframes, descriptor_size,
                                    None if self.perception.fits_camera else self.perception.input_size)
        except MapFileError:
            raise
        except Exception as error:  # never let a file take the caller down
            raise MapFileError(f'map file {path!r} could not be read: '
                               f'{type(error).__name__}: {error}') from None

    def load_map(self, path: str) -> int:
        """Localizes in the map at `path` (map -> odom unknown until a place is recognised)
        with the object map saved in it (none when it has none); returns its keyframe count.
        Raises MapFileError with the live maps untouched."""
        keyframe_map = self.read_map(path)   # the live map is untouched until it is whole
        objects = self._saved_objects(keyframe_map, path) if self.objects is not None else None
        pose_graph = self._saved_pose_graph(keyframe_map, path)
        self.localizer.set_map(keyframe_map)
        self.loaded_pose_graph = pose_graph
        if self.objects is not None:   # objects found so far are in the previous map's frame
            self.objects.map = objects
        self._keyframe_inputs.clear()
        self._map_keyframe_anchors.clear()
        self._refresh_map_odom()
        return len(keyframe_map)

    def save_map(self, path: str) -> int:
        """Writes the keyframe map and the object map (in the same map frame) to `path`
        atomically (`KeyframeMap.save`, objects as attachments); returns the keyframe count.
        Raises MapFileError (empty map) or OSError."""
        attachments, document = {}, {}
        if self.objects is not None and self.objects_frame == self.config.map_frame:
            arrays, meta = self.objects.map.to_arrays()
            attachments = {OBJECTS_PREFIX + key: value for key, value in arrays.items()}
            document['objects'] = meta
        graph = self.pose_graph
        if graph is not None and self.localizer.mapping and len(graph):
            arrays, meta = graph.graph.to_arrays()
            attachments.update({POSE_GRAPH_PREFIX + key: value for key, value in arrays.items()})
            mount = np.eye(4) if self.mount is None else self.mount
            document['pose_graph'] = {**meta, 'T_map_graph': mount.tolist(),
                                      'frame': 'the first tracking keyframe\'s optical frame; '
                                               'map = T_map_graph @ pose @ inverse(T_map_graph)'}
        self.localizer.map.save(path, attachments, document or None)
        return len(self.localizer.map)

    def _saved_pose_graph(self, keyframe_map: KeyframeMap, path: str):
        """The PoseGraph saved in a map file (its factors and optimised poses, in the frame its
        document names), or None when it holds none or gtsam is missing (logged).
        MapFileError naming the file when the saved graph is not whole."""
        from geovr_ros.mapping import PoseGraph, PoseGraphError
        arrays = {key[len(POSE_GRAPH_PREFIX):]: value for key, value in keyframe_map.attachments.items()
                  if key.startswith(POSE_GRAPH_PREFIX)}
        meta = (keyframe_map.document or {}).get('pose_graph')
        if not arrays and meta is None:
            return None
        try:
            return PoseGraph.from_arrays(arrays, meta if isinstance(meta, dict) else {})
        except PoseGraphError as error:
            raise MapFileError(f'map file {path!r} refused: its pose graph: {error}') from None
        except ImportError as error:
            self.log.warning(f'map file {path!r}: its pose graph is not loaded ({error})')
            return None

    def _saved_objects(self, keyframe_map: KeyframeMap, path: str):
        """The ObjectMap saved in a map file (an empty one when it holds none); its
        observations leave their old keyframes (negative ids: this session's pose graph never
        moves them). MapFileError naming the file when the saved objects are not whole."""
        from geovr_ros.objects import ObjectMap, ObjectMapError
        arrays = {key[len(OBJECTS_PREFIX):]: value for key, value in keyframe_map.attachments.items()
                  if key.startswith(OBJECTS_PREFIX)}
        document = keyframe_map.document or {}
        if not arrays and 'objects' not in document:
            return ObjectMap(self.objects.map.config)
        try:
            for key in ('obs_keyframe', 'room_keyframe'):
                if key in arrays:
                    arrays[key] = -1 - np.asarray(arrays[key], np.int64)
            return ObjectMap.from_arrays(arrays, document.get('objects') or {}, self.objects.map.config)
        except ObjectMapError as error:
            raise MapFileError(f'map file {path!r} refused: its object map: {error}') from None

    # ---------------------------------------------------------------- questions
    def child_pose(self, T_odom_cam: np.ndarray) -> tuple[np.ndarray, str | None]:
        """(T_odom_child (4, 4), child frame name or None for the camera's own frame): the
        base through the mount with odom_child 'base', else the camera."""
        if self.config.odom_child == 'base':
            return T_odom_cam @ invert_pose(self.mount), self.config.base_frame
        return T_odom_cam, None

    def target(self, requested: str, T_map_odom, T_odom_cam, camera_frame: str
               ) -> tuple[str, np.ndarray | None, str]:
        """(frame, T_frame_odom (4, 4), error) for a question's target_frame: '' is map when
        map -> odom is known, else odom; also odom, the camera frame, and base_frame with
        odom_child 'base'. An error (not empty) says what was wrong."""
        c = self.config
        map_frame, odom_frame = c.map_frame, c.odom_frame
        if requested in ('', map_frame):
            if T_map_odom is not None:
                return map_frame, T_map_odom, ''
            if requested == map_frame:
                return map_frame, None, (f'{map_frame} -> {odom_frame} is not known yet (not '
                                         f'localized); ask in {odom_frame}')
            return odom_frame, np.eye(4), ''
        if requested == odom_frame:
            return odom_frame, np.eye(4), ''
        if requested == camera_frame:
            return camera_frame, invert_pose(T_odom_cam), ''
        if requested == c.base_frame and self.mount is not None and c.odom_child == 'base':
            T_odom_base, _ = self.child_pose(T_odom_cam)
            return requested, invert_pose(T_odom_base), ''
        return requested, None, (f'unknown target_frame {requested!r}: use {map_frame}, '
                                 f'{odom_frame}, {camera_frame} or empty')

    def answer(self, question: str, now: float, target_frame: str = '', max_age: float = 0.0
               ) -> Answer:
        """Answers `question` from the memory, in `target_frame` (see `target`).

        now: the caller's clock (s), for max_age; max_age > 0 refuses when the newest frame
        is older than that (s). The answerer's answer (its success or not) comes with its
        points and pose in `answer.frame` and `answer.stamp` the newest frame's stamp. The
        session's own refusals (an invalid question, no frame yet, too old, an unknown
        frame) are `Answer(success=False, message=why)` with stamp None.
        """
        try:
            question = validate_question(question, self.config.max_question_chars)
        except InvalidQuestionError as error:
            return Answer(False, f'question rejected: {error}')
        with self._state_lock:
            latest = self._latest
        if latest is None:
            return Answer(False, 'no frame processed yet: memory is empty')
        stamp, T_odom_cam, camera_frame, T_map_odom = latest
        if max_age > 0 and now - stamp > max_age:
            message = f'memory is {now - stamp:.3g} s old, more than max_age {max_age:.3g} s'
            if abs(now - stamp) > CLOCK_MISMATCH_S:
                message += ' (the image stamps look like recorded time: set use_sim_time:=true)'
            return Answer(False, message)
        frame, T_target_odom, error = self.target(target_frame, T_map_odom, T_odom_cam,
                                                  camera_frame)
        if error:
            return Answer(False, error)
        from_objects = None
        if self.objects is not None:
            from_objects = self._answer_from_objects(question, frame, T_target_odom, T_map_odom,
                                                     T_odom_cam)
            if from_objects is not None and not from_objects.not_seen:
                return dataclasses.replace(from_objects, stamp=stamp)
        # the trajectory in the frame asked for: the trajectory's answers are said in it
        answer = self.answerer.answer(question, self.memory.snapshot().trajectory_in(T_target_odom, frame), stamp)
        if from_objects is not None:   # the map lacks the object: a model's answer, labelled so
            if not answer.success:
                return dataclasses.replace(from_objects, stamp=stamp)
            answer = dataclasses.replace(answer, answer=f'{from_objects.answer} in the object map; '
                                                        f'the {self.answerer.name} answerer says: '
                                                        f'{answer.answer}', not_seen=True)
        if answer.frame == frame:
            return dataclasses.replace(answer, stamp=stamp)
        points = np.asarray(answer.points, float)   # an answer from the odom keyframes
        if len(points):
            points = transform_points(T_target_odom, points)
        pose = None if answer.pose is None else T_target_odom @ answer.pose
        return dataclasses.replace(answer, points=points, pose=pose, frame=frame, stamp=stamp)

    def _answer_from_objects(self, question: str, frame: str, T_target_odom: np.ndarray,
                             T_map_odom: np.ndarray | None, T_odom_cam: np.ndarray) -> Answer | None:
        """The object map's answer in `frame` (text, value, points and pose all in it), or None
        when the question is not about objects (the other answerers take it). Distances and
        sizes are measured in the object map's own frame; moving to `frame` moves the boxes
        rigidly (their extents stay those of the map's axes); directions and turns are taken
        about odom's up, the floor area from the map's room outline."""
        from geovr_ros.memory.answerer import NO_MODEL_MESSAGE
        from geovr_ros.objects import answer_from_objects
        T_objects_odom = T_map_odom if self.config.localization_enabled else np.eye(4)
        if T_objects_odom is None:   # objects are placed only once map -> odom is known
            T_target_objects = None
        else:
            T_target_objects = T_target_odom @ invert_pose(T_objects_odom)
        up_odom = self._up_in_odom()
        instances = [] if T_target_objects is None else [
            _moved_instance(i, T_target_objects) for i in self.objects.map.instances()]

        def floor():   # the room's outline in `frame`, asked for by room-size questions only
            outline = None if T_target_objects is None else self.objects.map.room.outline(
                T_objects_odom[:3, :3] @ up_odom)
            return None if outline is None else dataclasses.replace(
                outline, outline=transform_points(T_target_objects, outline.outline))
        answer = answer_from_objects(question, instances, self.objects.vocabulary, T_target_odom @ T_odom_cam, frame,
                                     up=T_target_odom[:3, :3] @ up_odom, floor=floor)
        if answer.message == NO_MODEL_MESSAGE:
            return None
        if parse_options(question) and not np.isfinite(answer.value):
            return None   # a multiple-choice question the map answers in words: a model picks
        return answer

    # ---------------------------------------------------------------- diagnostics
    def diagnostics(self) -> dict[str, str]:
        """Status values, as geovr_node's /diagnostics shows them (key -> text): metric scale,
        map and memory keyframes, localization, place matches, odometry method; tracking state,
        inliers, failures and what the last pose came from (optical flow or ORB descriptors) with
        geometric odometry, and the sliding window's adjustments, windows left for too little
        parallax and its last reprojection RMS before -> after (pixels at 640 px width); the floor's scale and the frames that saw
        the floor with floor_camera_height; the reference odometry's scale and its samples with
        scale_odometry_topic; the object map's instances, doubted instances and
        the tilt of its up (`objects_up_tilt`); how far odom levelled the first frame by its
        depth (`odom_levelled_deg`, odom_level_from_depth); pose graph size and loops with one."""
        loc = self.localizer
        values = {'metric_scale': f'{self._scale:.4f}',
                  'map_keyframes': str(len(loc.map)),
                  'memory_keyframes': str(len(self.memory)),
                  'localized': str(loc.localized),
                  'place_matches_accepted': str(self.place_matches['accepted']),
                  'place_matches_rejected': str(self.place_matches['rejected']),
                  'odometry_method': self.config.odometry_method}
        if self.first_frame_tilt_deg is not None:
            values['odom_levelled_deg'] = f'{self.first_frame_tilt_deg:.1f}'
        if self.geometric is not None:
            step, tracker = self.geometric.last_step, self.geometric.tracker
            values.update({'tracking_status': step.status if step else 'not started',
                           'tracking_inliers': str(step.inliers if step else 0),
                           'tracking_failure_reason': step.reason if step else '',
                           'tracking_failures': str(tracker.failures),
                           'tracking_failed_in_row': str(tracker.failed_in_row),
                           'tracking_keyframes': str(tracker.keyframes_created),
                           'tracking_by': step.correspondences if step else '',
                           'tracking_flow_frames': str(tracker.flow_tracked),
                           'tracking_shift_recoveries': str(tracker.shift_recoveries),
                           'tracking_shift_fallbacks': str(tracker.shift_fallbacks),
                           'tracking_reference_fallbacks': str(tracker.reference_fallbacks),
                           'tracking_depth_scale': f'{step.depth_scale:.3f}' if step else 'nan'})
            window = tracker.window
            if window is not None:
                last = window.last_result
                values.update({'tracking_window_adjustments': str(window.adjustments),
                               'tracking_window_low_parallax': str(window.skipped),
                               'tracking_window_rms_px': 'nan' if last is None else
                               f'{last.rms_px_before:.2f} -> {last.rms_px_after:.2f}'})
        if self.floor is not None:
            values.update({'floor_scale': f'{self.floor.scale:.3f}',
                           'floor_camera_height': f'{self.floor.camera_height:.3f}',
                           'floor_frames': str(self.floor.frames_with_floor)})
        if self.odometry_scale is not None:
            values.update({'odometry_scale': f'{self.odometry_scale.scale:.3f}',
                           'odometry_scale_samples': str(self.odometry_scale.samples)})
        if self.objects is not None:
            shown = len(self.objects.map.instances())
            values['objects'] = str(shown)
            if self.objects.map.config.verifier is not None:
                values['objects_doubted'] = str(len(self.objects.map.instances(doubted=True)) - shown)
            tilt = self.objects_up_tilt()
            if tilt is not None:
                values['objects_up_tilt_deg'] = f'{tilt:.1f}'
        if self.loaded_pose_graph is not None:
            values['loaded_pose_graph'] = (f'{len(self.loaded_pose_graph)} keyframes, '
                                           f'{len(self.loaded_pose_graph.loops)} loop closures')
        graph = self.pose_graph
        if graph is not None:
            values.update({'pose_graph_keyframes': str(len(graph)),
                           'loop_closures': str(len(graph.loops)),
                           'map_odom_source': 'pose graph' if loc.mapping else 'loaded map'})
        return values
