"""Every parameter of `geovr_node`, declared once (type from the default, description)."""
from __future__ import annotations

from geovr_ros.geometry.rectify import UNDISTORT_MODES
from geovr_ros.ros.parameters import Param, Rule
from geovr_ros.tracking.tracker import CORRESPONDENCES, FALLBACKS

GEOVR_NODE_PARAMS: list[Param] = [
    # Model and backend
    Param('model', '', 'Model directory written by `geovr-export onnx` (perception.onnx with '
          'its metadata) or an .onnx/.engine/.pt2 file. Loaded in on_configure; a missing '
          'file makes the configure transition fail.'),
    Param('backend', 'auto', 'Inference backend: auto (TensorRT, then ONNX Runtime CUDA, then '
          'ONNX Runtime CPU), tensorrt, onnxruntime or torch.'),
    Param('allow_untrusted_programs', False, 'Allow loading PyTorch programs (.pt2, backend '
          'torch, also for question_model): torch.export.load may unpickle, so such a file can '
          'run any code. False (default) refuses them at configure; ONNX models never run '
          'code.'),
    Param('backend_threads', 0, 'CPU threads one inference may use (ONNX Runtime intra-op, '
          'torch); 0 = the library default (one per physical core). Fewer than the cores '
          'leaves room for the executor and DDS threads on small CPUs.'),
    Param('backend_thread_spinning', True, 'Let idle ONNX Runtime threads busy-wait for the '
          'next operator (its default; faster on this project\'s benchmarks). False gives the '
          'cores back between operators, for CPUs shared with heavier neighbours. A split '
          'model\'s graphs take turns: their threads stop spinning when each run returns.'),
    Param('input_size', [0, 0], 'Model input [width, height] in pixels, multiples of the '
          'model\'s geovr.shapes.multiple_of; the camera image is cut to its aspect, never '
          'stretched. [0, 0]: each camera at about the trained pixel count (geovr.input_size) '
          'and its own aspect (256x192 for 4:3, 288x192 for 3:2, 288x160 for 16:9).', int),
    Param('autostart', True, 'Configure and activate at start-up (plain-node mode). False '
          'leaves the node unconfigured for a lifecycle manager.'),
    # Inputs
    Param('qos_reliability', 'best_effort', 'Reliability of the image and camera_info '
          'subscriptions: best_effort (SensorDataQoS; matches reliable and best-effort '
          'publishers), reliable or system_default.'),
    Param('qos_depth', 1, 'Keep-last depth of the image subscription; 1 drops stale frames '
          'instead of queueing them.'),
    Param('subscribe_compressed', False, 'Also subscribe to image/compressed '
          '(sensor_msgs/CompressedImage, JPEG or PNG).'),
    Param('pairing_mode', 'stamp', 'How an image gets its intrinsics: stamp (camera_info with '
          'the nearest stamp within pairing_tolerance) or latest (the last camera_info '
          'received, for drivers that stamp it differently).'),
    Param('pairing_tolerance', 0.005, 'Largest stamp difference in seconds between an image '
          'and its camera_info in stamp pairing mode.'),
    Param('pairing_wait', 0.05, 'Seconds an image waits for its camera_info to arrive before '
          'it is dropped (camera_info is often delivered just after the image).'),
    Param('input_timeout', 5.0, 'Seconds without an image (or, while images arrive, without '
          'any camera_info, or without scale_odometry_topic\'s odometry) after which the node '
          'logs once why, from the ROS graph: no publisher (and the topics that carry the '
          'type), another message type, or a QoS that never matches; also in /diagnostics. '
          '0: never.'),
    Param('max_image_pixels', 16777216, 'Images with more pixels than this are dropped.'),
    Param('undistort', 'auto', 'Undistorting images by their camera_info\'s d: auto (unless the '
          'image topic is named image_rect*, image_proc\'s rectified output, whose camera_info '
          'still describes the raw camera), always, or never (the images are rectified: d is not '
          'applied and the camera is P\'s left 3x3, or K when P is zero).'),
    # Outputs
    Param('depth_upsample', False, 'Publish depth at the camera resolution (nearest-neighbour '
          'upsampling, camera intrinsics) instead of the model resolution.'),
    Param('publish_depth_colored', True, 'Publish depth/colored, an rgb8 preview of depth.'),
    Param('publish_depth_confidence', True, 'Publish depth/confidence (32FC1 in [0, 1], the size '
          'and header of depth): the depth decoder\'s confidence per pixel; its expected error is '
          'about 0.2 x (1 - confidence) of the scene\'s median depth. Needs a model exported with '
          'depth_confidence.'),
    Param('depth_min_confidence', 0.0, 'Depth pixels less confident than this are published as '
          'NaN (invalid) in depth, depth/colored and points; 0 publishes every pixel. Needs a '
          'model exported with depth_confidence (else it is ignored, with a warning).'),
    Param('publish_points', True, 'Publish points, a PointCloud2 of the depth in the camera '
          'optical frame.'),
    Param('points_decimation', 2, 'Keep every n-th depth pixel in each direction for points.'),
    Param('points_max_depth', 20.0, 'Points farther than this many metres are left out.'),
    Param('path_max_length', 1000, 'Poses kept in the published path.'),
    # Frames and TF
    Param('odom_frame', 'odom', 'Odometry frame (REP 105).'),
    Param('map_frame', 'map', 'Map frame (REP 105).'),
    Param('base_frame', 'base_link', 'Robot body frame, used when odom_child is base.'),
    Param('camera_frame', '', 'Camera optical frame; empty uses the frame_id of the images.'),
    Param('odom_child', 'camera', 'Child frame of odometry and of the odom TF: camera (the '
          'optical frame) or base (base_frame, through the camera mount).'),
    Param('odom_level_from_depth', True, 'With odom_child camera, odom\'s up is the one the first '
          'frame\'s depth shows (the mean normal of its horizontal surfaces: floor, table tops) '
          'instead of its optical -y: a camera that starts pitched or rolled still gets a level '
          'odom, and the object map a true up (its floor and heights). A first view of walls '
          'alone is taken as level, as with false.'),
    Param('camera_mount_source', 'tf', 'Where the base -> camera optical mount comes from when '
          'odom_child is base: tf (looked up on /tf_static) or parameters '
          '(camera_mount_xyz and camera_mount_rpy).'),
    Param('camera_mount_xyz', [0.0, 0.0, 0.0], 'Position [x, y, z] in metres of the camera body '
          'frame (x forward, z up) in base_frame, for camera_mount_source parameters.', float),
    Param('camera_mount_rpy', [0.0, 0.0, 0.0], 'Orientation [roll, pitch, yaw] in radians of '
          'the camera body frame in base_frame; the optical frame is rotated from it as in '
          'REP 103.', float),
    Param('publish_mount_tf', False, 'Publish the parameter mount base_frame -> camera optical '
          'frame on /tf_static (only if nothing else publishes it: one parent per frame).'),
    Param('publish_odom_tf', True, 'Publish TF odom_frame -> odometry child frame.'),
    Param('publish_map_to_odom_tf', True, 'Publish TF map_frame -> odom_frame (REP 105) once '
          'localization knows it.'),
    # Odometry
    Param('odometry_method', 'geometric', 'geometric: each frame is tracked against a keyframe '
          'by PnP on ORB features and the model\'s depth (geovr_ros.tracking), the learned '
          'relative pose only as the fallback when tracking fails; learned: the model\'s '
          'relative poses chained (the pose head alone; worse than standing still on real '
          'recordings, models/README.md).'),
    Param('tracking_max_features', 1000, 'ORB features per frame for geometric odometry.'),
    Param('tracking_correspondences', 'flow', 'How a frame finds the keyframe\'s features: flow, '
          'followed from frame to frame by Lucas-Kanade optical flow (ORB only for new keyframes, '
          'and as the fallback when the flow gives no pose); descriptors, ORB features matched on '
          'every frame.'),
    Param('tracking_shift_recovery', True, 'When neither the flow nor the ORB matches give a '
          'pose, search once more from the turn that the whole image\'s shift since the last frame '
          'says (phase correlation) before the frame counts as failed: fast turns the '
          'constant-velocity motion misses.'),
    Param('tracking_shift_fallback', True, 'With tracking_fallback motion: a frame that fails '
          'with no tracked motion left to carry (before the first tracked frame, or after '
          'tracking_fallback_frames failed frames in a row) turns as the whole image\'s shift '
          'says, when believed, instead of standing still, and the next frame is searched from '
          'that turn.'),
    Param('tracking_threshold_px', 3.0, 'RANSAC inlier threshold of the PnP, pixels at 640 px '
          'image width (scaled with the width).'),
    Param('tracking_search_radius_px', 15.0, 'Guided matching: a keyframe feature is searched '
          'for only this far (pixels at 640 px image width) from where the constant-velocity '
          'motion puts it; every feature against every one when that finds too few (0: always).'),
    Param('tracking_min_inliers', 15, 'Fewer PnP inliers than this and tracking has failed for '
          'the frame (tracking_fallback gives its pose, the reason is in the diagnostics).'),
    Param('tracking_fallback', 'motion', 'A frame that tracking failed on takes: motion, the '
          'constant-velocity prediction (the last tracked motion, for tracking_fallback_frames '
          'failed frames in a row, then none), learned, the learned relative pose (worse than no '
          'motion on the real recordings measured), or reference, the camera\'s motion since the '
          'previous frame in the wheel odometry of scale_odometry_topic (needs odom_child base; '
          'up to 0.25 s past its newest pose when it lags; else the motion model).'),
    Param('tracking_fallback_frames', 3, 'The last tracked motion carries up to this many failed '
          'frames in a row (a camera turning past a blank wall keeps turning), then no motion; '
          '1: once.'),
    Param('tracking_scale_alignment', 0.7, 'How much of the map\'s scale a new tracking '
          'keyframe\'s depth takes, 0..1 (1: one consistent scale; 0: each keyframe at the '
          'model\'s own metric scale).'),
    Param('tracking_window_keyframes', 10, 'Keyframes in the sliding window that is bundle-adjusted '
          'after each new keyframe: the keyframes\' poses and the points they share (carried from '
          'keyframe to keyframe) solved together from every view, the model\'s depth a prior; 0 or 1: '
          'off (each keyframe\'s points stay where its depth put them). Odom moves on without a '
          'jump. Adjusted only when the views\' baseline reaches 4 % of the depth.'),
    Param('tracking_window_depth_sigma', 0.1, 'How far the window lets a point leave the model\'s '
          'depth of it: the standard deviation of the log of depth of its prior.'),
    Param('floor_camera_height', 0.0, 'The camera\'s height above the floor in metres (0: off). '
          'When set, the model\'s depth is rescaled so that the floor it sees lies this far '
          'below the camera (the median over the last 30 frames that saw the floor): metric '
          'scale from a known mount height, for cameras that see the floor.'),
    Param('floor_height_from_mount', False, 'With odom_child base: take floor_camera_height from '
          'the camera mount (the optical centre\'s height above base_frame, which must lie on the '
          'floor, as base_footprint does; camera_mount_source tf or parameters) instead of '
          'giving it. Leave floor_camera_height 0 with it.'),
    Param('scale_odometry_topic', '', 'A reference odometry (nav_msgs/Odometry, e.g. a robot\'s '
          'wheel odometry) whose travelled distance gives the model\'s depth its metric scale '
          '(\'\': off): the median of the last scale_odometry_window samples, each the distance '
          'it moved over the distance the tracker measured on the model\'s depth. Its '
          'child frame is taken as base_frame (the mount is applied with odom_child base). Not '
          'with the floor\'s scale; needs odometry_method geometric.'),
    Param('scale_odometry_min_motion', 0.15, 'Metres the reference must move (its displacement over '
          'tracking keyframe intervals, summed) to give a scale sample (a camera turning in place '
          'gives none).'),
    Param('scale_odometry_window', 30, 'Scale samples whose median is the reference odometry\'s '
          'scale.'),
    Param('odometry_reference_translation', 0.3, 'Metres from the odometry reference frame '
          'after which the current frame becomes the new reference.'),
    Param('odometry_reference_rotation', 0.35, 'Radians from the odometry reference frame '
          'after which the current frame becomes the new reference.'),
    Param('odometry_max_reference_frames', 1, 'Frames after which the odometry reference '
          'frame is renewed regardless of motion. 1: every frame is matched against the previous '
          'one, which suits the rotation solved from patch matching (it holds within about 8 '
          'degrees between the two frames; models/README.md).'),
    Param('time_jump_threshold', 1.0, 'A stamp older than the previous frame by more than '
          'this many seconds is a time jump backwards (bag loop, simulator reset) and restarts '
          'odometry; smaller backward steps are dropped as out of order.'),
    Param('odometry_position_variance', 0.01, 'Variance (m^2, and (m/s)^2 for the twist) put on '
          'the diagonal of the odometry pose and twist covariances when there is no geometric '
          'estimate (learned odometry, tracking failed); geometric tracking publishes the PnP '
          'inliers\' covariance with the depth\'s error.'),
    Param('odometry_orientation_variance', 0.01, 'Variance (rad^2, and (rad/s)^2 for the twist) '
          'put on the diagonal of the odometry pose and twist covariances when there is no '
          'geometric estimate.'),
    # Localization
    Param('localization_enabled', True, 'Build a keyframe map, recognise places and publish '
          'localization and map -> odom.'),
    Param('map_file', '', 'Keyframe map file (.npz): loaded at configure when it exists (the '
          'node then localizes in it), written by ~/save_map, read by ~/load_map.'),
    Param('keyframe_translation', 0.5, 'Metres from the last keyframe that make a new one (map '
          'and memory).'),
    Param('keyframe_rotation', 0.35, 'Radians from the last keyframe that make a new one (map '
          'and memory).'),
    Param('keyframe_min_overlap', 0.6, 'A new keyframe is made when less than this fraction '
          'of the current view falls inside the last keyframe.'),
    Param('max_map_keyframes', 500, 'Keyframes kept in the map (the oldest are evicted).'),
    Param('match_threshold', 0.9, 'Cosine similarity of global descriptors above which a '
          'keyframe is recognised as the current place.'),
    Param('match_candidates', 3, 'Recognised keyframes tried per relocalization, most similar '
          'first, until PnP verifies one (each costs an ORB match and a PnP).'),
    Param('match_min_overlap', 0.3, 'A recognised place is used only if this fraction of the '
          'current depth, placed by the PnP pose that verified it, falls inside the keyframe.'),
    Param('relocalize_period', 10, 'Try place recognition every n-th processed frame (a match is '
          'verified by ORB and PnP on the keyframe\'s depth; a loaded keyframe costs one model run, once).'),
    Param('alignment_window', 1, 'Place matches aligned together to estimate map -> odom (1: the '
          'newest verified match).'),
    # Objects
    Param('objects_enabled', True, 'Keep a 3D map of named objects and the room\'s floor (published on '
          '~/objects, answering count, distance, size, where, first-seen, nearest-of, direction from a '
          'stated viewpoint, route and room-size questions): on every tracking keyframe, and on '
          'tracked frames whose view changed (object_view_*), the model\'s '
          'cell classifier names the cells and the depth places them. Needs a '
          'model exported with cell_classifier.onnx (GeoVR-S v2) and geometric odometry; '
          'otherwise there is no object map. The map\'s up direction comes from the camera mount '
          '(odom_child, camera_mount_*): the odom axis closest to the first image\'s up (z for a '
          'level REP 103 mount); with it the floor under an object stays out of its box and its '
          'footprint, and an object\'s parts stacked above each other merge.'),
    Param('publish_detections', True, 'Also publish the object map as vision_msgs/Detection3DArray on '
          '~/detections (latched, in the frame of ~/objects): per object the answers count, its box, '
          'id, category (class_id) and confidence (score). Needs vision_msgs; without it a warning '
          'and the markers alone.'),
    Param('objects_publish_period', 1.0, 'Seconds: the changes of frames named between tracking keyframes '
          'send ~/objects and ~/detections at most this often (a change left waiting goes out with the '
          'next diagnostics); a tracking keyframe that changed the map sends them at once (0: every '
          'change, at the camera\'s rate).'),
    Param('object_view_translation', 0.05, 'Metres the camera moves before a tracked frame that is not '
          'a tracking keyframe is named into the object map again (or object_view_rotation): more '
          'views of an object, not more of one view; each costs the naming graphs one run.'),
    Param('object_view_rotation', 0.05, 'Radians the camera turns before a tracked frame that is not '
          'a tracking keyframe is named into the object map again (or object_view_translation).'),
    Param('object_vocabulary', '', 'A vocabulary YAML merged over the shipped '
          'config/object_vocabulary.yaml (categories, their ImageNet classes, synonyms, '
          'windows: [0.4, 0.7] to name crops instead of cells; docs/objects.md). Empty: the '
          'shipped one. A bad file makes configure fail.'),
    # Memory and questions
    Param('memory_max_keyframes', 64, 'Keyframes kept in the spatial memory; when full, the '
          'one closest to another is evicted.'),
    Param('memory_max_tokens', 256, 'Model tokens kept per memory keyframe.'),
    Param('path_resolution', 0.25, 'Metres: "how far have I travelled" counts the camera path '
          'in chords of this length, so tracking jitter does not add up (0: every frame\'s step).'),
    Param('question_model', '', 'Directory of the exported question model (question_encoder.onnx, '
          'question_graph.onnx, tokenizer.json). Empty: only the exact trajectory and memory '
          'questions are answered; others get "no question model loaded". A directory that '
          'cannot be loaded makes the configure transition fail.'),
    Param('max_question_chars', 1000, 'Longer questions are rejected by ~/query.'),
    Param('query_queue_depth', 100, 'Questions that may wait for an answer; beyond, ~/query '
          'answers at once "busy: N questions waiting" (the service queue itself is reliable '
          'keep-all, so no request goes unanswered).'),
    # Diagnostics
    Param('diagnostics_period', 1.0, 'Seconds between /diagnostics messages.'),
    Param('log_throttle_period', 10.0, 'A dropped-frame reason is logged at most once per '
          'this many seconds (the first occurrence immediately).'),
]


BACKENDS = ('auto', 'tensorrt', 'onnxruntime', 'torch')
POSITIVE = Rule(low=0.0, low_open=True)
NON_NEGATIVE = Rule(low=0.0)
AT_LEAST_ONE = Rule(low=1)
FRACTION = Rule(low=0.0, high=1.0)

# The one validation table of geovr_node: used at configure and for every parameter set at
# run time (a rejected set answers with the allowed values). Parameters without a rule
# (frame names, booleans, file paths) take any value of their declared type.
GEOVR_NODE_RULES: dict[str, Rule] = {
    'model': Rule(nonempty=True),
    'backend': Rule(choices=BACKENDS),
    'backend_threads': Rule(low=0, high=1024),
    'input_size': Rule(low=0, high=8192, length=2),
    'qos_reliability': Rule(choices=('best_effort', 'reliable', 'system_default')),
    'qos_depth': Rule(low=1, high=1000),
    'pairing_mode': Rule(choices=('stamp', 'latest')),
    'pairing_tolerance': NON_NEGATIVE,
    'pairing_wait': Rule(low=0.0, high=10.0),
    'max_image_pixels': Rule(low=1, high=2 ** 31),
    'undistort': Rule(choices=UNDISTORT_MODES),
    'points_decimation': Rule(low=1, high=1000),
    'points_max_depth': POSITIVE,
    'depth_min_confidence': Rule(low=0.0, high=1.0, high_open=True),
    'path_max_length': Rule(low=1, high=1_000_000),
    'odom_child': Rule(choices=('camera', 'base')),
    'camera_mount_source': Rule(choices=('tf', 'parameters')),
    'camera_mount_xyz': Rule(length=3),
    'camera_mount_rpy': Rule(length=3),
    'odometry_method': Rule(choices=('geometric', 'learned')),
    'tracking_max_features': Rule(low=10, high=100_000),
    'tracking_threshold_px': POSITIVE,
    'tracking_search_radius_px': NON_NEGATIVE,
    'tracking_min_inliers': Rule(low=6),  # PnP needs 6 points (TrackerConfig)
    'tracking_fallback': Rule(choices=FALLBACKS),
    'tracking_fallback_frames': Rule(low=1, high=1000),
    'tracking_correspondences': Rule(choices=CORRESPONDENCES),
    'tracking_scale_alignment': FRACTION,
    'tracking_window_keyframes': Rule(low=0, high=100),
    'tracking_window_depth_sigma': POSITIVE,
    'floor_camera_height': NON_NEGATIVE,
    'scale_odometry_min_motion': POSITIVE,
    'scale_odometry_window': Rule(low=1, high=100_000),
    'odometry_reference_translation': POSITIVE,
    'odometry_reference_rotation': POSITIVE,
    'odometry_max_reference_frames': AT_LEAST_ONE,
    'time_jump_threshold': POSITIVE,
    'odometry_position_variance': NON_NEGATIVE,
    'odometry_orientation_variance': NON_NEGATIVE,
    'keyframe_translation': NON_NEGATIVE,
    'keyframe_rotation': NON_NEGATIVE,
    'objects_publish_period': Rule(low=0.0, high=3600.0),
    'object_view_translation': NON_NEGATIVE,
    'object_view_rotation': NON_NEGATIVE,
    'keyframe_min_overlap': FRACTION,
    'max_map_keyframes': Rule(low=1, high=100_000),
    'match_threshold': Rule(low=-1.0, high=1.0),
    'match_candidates': Rule(low=1, high=100),
    'match_min_overlap': FRACTION,
    'relocalize_period': AT_LEAST_ONE,
    'alignment_window': AT_LEAST_ONE,
    'memory_max_keyframes': Rule(low=1, high=100_000),
    'memory_max_tokens': Rule(low=1, high=100_000),
    'path_resolution': NON_NEGATIVE,
    'max_question_chars': Rule(low=1, high=1_000_000),
    'query_queue_depth': Rule(low=1, high=100_000),
    'input_timeout': Rule(low=0.0, high=3600.0),
    'diagnostics_period': Rule(low=0.0, low_open=True, high=3600.0),
    'log_throttle_period': Rule(low=0.0, high=86400.0),
}


def backend_options(p: dict) -> dict:
    """Thread settings for every backend (each takes the options it knows) from the node's
    parameter values `p` (`backend_thread_spinning`, `backend_threads`)."""
    options = {'thread_spinning': p['backend_thread_spinning']}
    if p['backend_threads'] > 0:
        options.update(intra_op_threads=p['backend_threads'], threads=p['backend_threads'])
    return options
