"""Frame-to-keyframe tracking with PnP on the keyframe's depth (its features followed by optical
flow or matched by ORB descriptors, searched again from the image shift's turn when neither
gives a pose); keyframe depth kept at the map's scale; the motion model or the learned
relative pose as the fallback, turned as the image shift says when it is believed.

Poses are 4x4 float64 camera-to-odom matrices of the optical frame; metres; seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from geovr_ros.geometry import invert_pose, nearest_pose, non_rigid, project_points, rotate_covariance, rotation_angle, transform_points
from geovr_ros.tracking.features import FeatureSet, extract_features, match_features, match_guided
from geovr_ros.tracking.pnp import LEARNED_DEPTH_PNP, PnPSolution, PoseUncertainty, refine_pnp, solve_pnp
from geovr_ros.tracking.shift import image_shift, turn_from_shift
from geovr_ros.tracking.bundle import BundleConfig
from geovr_ros.tracking.window import KeyframeWindow, carry_landmarks


FALLBACKS = ('motion', 'learned', 'reference')   # TrackerConfig.fallback
# A pose searched from the image shift's turn must hold at least this share of its
# correspondences as inliers: from a guessed turn, RANSAC can trade rotation for translation on
# a minority (hololens_office test split: 26 of 66, 0.3 m off, where the motion model's pose
# was 0.035 m off).
SHIFT_MIN_INLIER_RATIO = 0.5
CORRESPONDENCES = ('descriptors', 'flow')   # TrackerConfig.correspondences


@dataclass
class TrackerConfig:
    """Knobs of the tracker (units in the names).

    max_features: ORB features per frame; orb_levels: their pyramid levels (1.2x apart);
    orb_fast_threshold: FAST's intensity step for a corner candidate (ORB keeps the
    max_features best by Harris score); orb_low_texture_threshold: the step of a second
    detection when fewer than a quarter of max_features pass the first (bare walls, low
    contrast: rendered rooms at 256x192 find a median of 124 at 12; 0: no second detection).
    ratio: Lowe's ratio test. threshold_px: RANSAC inlier threshold at 640 px image width
    (scaled with the width). search_radius_px: guided matching, at 640 px width: a keyframe
    feature is searched for only within this radius of where the constant-velocity motion
    predicts it (0: every feature against every one);
    when fewer than `guided_min_matches` are found that way, every one against every one. min_inliers: fewer means
    tracking failed. keyframe_inlier_ratio: a new keyframe when the inliers fall below this
    share of those the keyframe had on its first tracked frame. keyframe_translation_m,
    keyframe_rotation_rad: a new keyframe beyond this motion from the keyframe.
    fallback: a failed frame's pose: 'motion', the motion model's prediction (the last tracked
    frame's motion), 'learned', the learned relative pose given to `track` (no motion
    without one), or 'reference', a measured motion given to `track` (a robot's wheel
    odometry since the previous frame; the motion model's prediction without one).
    fallback_frames: the last tracked motion carries up to this many failed frames
    in a row (their pose with fallback 'motion', and where the next frame is searched for with
    either), then no motion: a camera that was turning keeps turning through a blank view or a
    blur (session 54, 3: 98 rendered rooms at 10 fps map ATE Sim(3) 0.087 -> 0.083 m, SE(3)
    level; 40 at 30 fps level; the demo's room 1.16 -> 0.89 m; 6 gained more at 10 fps and cost
    SE(3) at 30; 1: once, as before).
    surprise_rad, surprise_m: a pose that turns or moves more than this from the motion model's
    prediction is believed only when at least half of the matches, and at least twice
    min_inliers, are its inliers: in a blurred fast turn a wrong pose can gather a few
    (tum_fr1_rpy: 22 of 63, 24 deg and 0.5 m from the prediction, its rotation and translation
    trading off so that the points move only 26 px; hololens_office: 15 of 24, 0.8 m off);
    otherwise tracking failed.
    correspondences: 'descriptors', every frame's ORB features matched to the keyframe's; or
    'flow', the keyframe's features followed from frame to frame by pyramidal Lucas-Kanade
    optical flow (started where the motion model predicts them), ORB extracted only for a new
    keyframe and, when the flow does not give a pose, matched as with 'descriptors'.
    flow_window_px: the Lucas-Kanade window side at 640 px image width (scaled with the width,
    at least 9); flow_levels: its pyramid levels above the image (each half the size);
    flow_iterations: its most iterations per level (it stops earlier below 0.01 px a step);
    flow_max_points: at most this many of a keyframe's features are followed, spread over the
    image (Lucas-Kanade's cost grows with them; ORB matching still uses them all).
    shift_recovery: when neither the flow nor the descriptors give a pose, search once more from
    the turn that the whole image's shift since the last frame says (phase correlation, see
    tracking.shift), before the frame counts as failed: the fast turns that the motion model
    misses (rendered rooms at 10 fps: failures 1.5 -> 0.3 a room); the pose found so must hold
    SHIFT_MIN_INLIER_RATIO of its correspondences as inliers. shift_min_response:
    the phase correlation's peak below which the shift is not believed.
    shift_fallback: with fallback 'motion', a frame that fails all the same (a bare wall, blur)
    with no tracked motion to carry (before the first tracked frame, or after `fallback_frames`
    failed frames in a row, where the motion model says "no motion") takes the turn its image
    shift says, when believed, and the next frame is searched from that turn; the step's
    correspondences say 'shift'. A view of one flat colour measures no shift
    (`shift.MIN_CONTRAST`) and keeps "no motion". The carried motion stays first: on the real
    HoloLens walk, whose few failures are single frames of smooth hand-held motion, the carried
    turn was nearer the truth than the shift's (session 58: turning every failed frame by the
    shift cost its question set an answer of 22); a camera that turns on past a blank wall
    for longer is measured instead of stopped (the demo's room 0.892 -> 0.582 m).
    pnp_uncertainty: how a tracked pose's covariance is made from PnP's reprojection covariance
    (`PoseUncertainty`): the covariance odometry publishes (`TrackingStep.covariance`) and the
    one a new keyframe gives the pose graph's odometry factor (`Keyframe.covariance_from_previous`).
    depth_median_radius: a feature's depth (a keyframe's points, the scale alignment, a place's
    points) is the median of the valid depth pixels within this many of it (1: 3x3), not the
    one nearest: a corner lies on an object's outline, where one pixel of a learned depth may
    read the wall behind (session 40: rendered test rooms "how far" +5.8 -> +3.6 %, the
    HoloLens walk's map SE(3) 0.293 -> 0.228 m; 0: the nearest pixel).
    """

    max_features: int = 1000
    orb_levels: int = 8
    orb_fast_threshold: int = 12
    orb_low_texture_threshold: int = 5
    ratio: float = 0.8
    threshold_px: float = 3.0
    search_radius_px: float = 15.0
    guided_min_matches: int = 60
    min_inliers: int = 15
    keyframe_inlier_ratio: float = 0.5
    keyframe_translation_m: float = 0.15
    keyframe_rotation_rad: float = 0.26
    surprise_rad: float = 0.17
    surprise_m: float = 0.25
    fallback: str = 'motion'
    fallback_frames: int = 3
    min_depth_m: float = 0.1
    max_depth_m: float = 20.0
    scale_alignment: float = 0.7
    correspondences: str = 'flow'
    flow_window_px: int = 21
    flow_levels: int = 3
    flow_iterations: int = 10
    flow_max_points: int = 300
    shift_recovery: bool = True
    shift_min_response: float = 0.05
    shift_fallback: bool = True
    window_keyframes: int = 10
    window_fixed: int = 1
    window_depth_sigma: float = 0.1
    window_min_parallax: float = 0.04
    landmark_radius_px: float = 3.0
    depth_median_radius: int = 1
    pnp_uncertainty: PoseUncertainty = LEARNED_DEPTH_PNP

    def __post_init__(self) -> None:
        if self.window_keyframes < 0 or (self.window_keyframes >= 2 and not 1 <= self.window_fixed < self.window_keyframes):
            raise ValueError(f'window_keyframes must be 0 or 1 (no window) or more than window_fixed >= 1, got '
                             f'{self.window_keyframes!r} and {self.window_fixed!r}')
        if not np.isfinite(self.window_min_parallax) or self.window_min_parallax < 0:
            raise ValueError(f'window_min_parallax must be >= 0, got {self.window_min_parallax!r}')
        if isinstance(self.depth_median_radius, bool) or not isinstance(self.depth_median_radius, (int, np.integer)) \
                or not 0 <= self.depth_median_radius <= 5:
            raise ValueError(f'depth_median_radius must be an integer in [0, 5], got {self.depth_median_radius!r}')
        for name in ('window_depth_sigma', 'landmark_radius_px'):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f'{name} must be a positive number, got {getattr(self, name)!r}')
        if not np.isfinite(self.search_radius_px) or self.search_radius_px < 0:
            raise ValueError(f'search_radius_px must be >= 0 (0: no guided matching), got {self.search_radius_px!r}')
        for name in ('threshold_px', 'keyframe_translation_m', 'keyframe_rotation_rad', 'surprise_rad', 'surprise_m', 'min_depth_m'):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f'{name} must be a positive number, got {value!r}')
        if not 0 <= self.scale_alignment <= 1:
            raise ValueError(f'scale_alignment must be in [0, 1], got {self.scale_alignment!r}')
        if not 0 < self.ratio <= 1 or not 0 < self.keyframe_inlier_ratio <= 1:
            raise ValueError(f'ratio {self.ratio} and keyframe_inlier_ratio {self.keyframe_inlier_ratio} '
                             'must be in (0, 1]')
        if self.fallback not in FALLBACKS:
            raise ValueError(f'fallback must be one of {FALLBACKS}, got {self.fallback!r}')
        if isinstance(self.fallback_frames, bool) or not isinstance(self.fallback_frames, (int, np.integer)) \
                or not 1 <= self.fallback_frames <= 1000:
            raise ValueError(f'fallback_frames must be an integer in [1, 1000], got {self.fallback_frames!r}')
        if not 1 <= self.orb_levels <= 16:
            raise ValueError(f'orb_levels must be in [1, 16], got {self.orb_levels!r}')
        if not 1 <= self.orb_fast_threshold <= 255:
            raise ValueError(f'orb_fast_threshold must be in [1, 255], got {self.orb_fast_threshold!r}')
        if not 0 <= self.orb_low_texture_threshold <= self.orb_fast_threshold:
            raise ValueError(f'orb_low_texture_threshold must be in [0, orb_fast_threshold '
                             f'{self.orb_fast_threshold}], got {self.orb_low_texture_threshold!r}')
        if self.correspondences not in CORRESPONDENCES:
            raise ValueError(f'correspondences must be one of {CORRESPONDENCES}, got {self.correspondences!r}')
        if not 3 <= self.flow_window_px <= 101 or not 0 <= self.flow_levels <= 8 or self.flow_iterations < 1:
            raise ValueError(f'flow_window_px must be in [3, 101], flow_levels in [0, 8] and flow_iterations >= 1, '
                             f'got {self.flow_window_px!r}, {self.flow_levels!r} and {self.flow_iterations!r}')
        if not 0 <= self.shift_min_response < 1:
            raise ValueError(f'shift_min_response must be in [0, 1), got {self.shift_min_response!r}')
        if self.flow_max_points < self.min_inliers:
            raise ValueError(f'flow_max_points must be >= min_inliers {self.min_inliers}, got {self.flow_max_points!r}')
        if self.min_inliers < 6 or self.max_features < self.min_inliers:
            raise ValueError(f'min_inliers {self.min_inliers} must be >= 6 and <= max_features {self.max_features}')


class _Found(NamedTuple):
    """The keyframe's points found in a frame: followed (the flow gave the pose, else ORB
    descriptors were matched), point_index (M,) into the keyframe's points, pixels (M, 2) in the
    frame, solution (None: no pose), reason (why not, or ''), features (the frame's ORB
    features, None when the flow did not need them)."""

    followed: bool
    point_index: np.ndarray
    pixels: np.ndarray
    solution: PnPSolution | None
    reason: str
    features: FeatureSet | None


@dataclass(frozen=True)
class TrackingStep:
    """Result of one frame.

    T_odom_cam (4, 4); status: 'initialised' | 'tracking' | 'fallback'; reason: why tracking
    failed ('' when it did not); matches, inliers: counts against the keyframe; covariance
    (6, 6) of (x, y, z, roll, pitch, yaw) of the pose from the keyframe, in odom axes (PnP's
    made honest by `TrackerConfig.pnp_uncertainty`), None without PnP;
    new_keyframe: this frame became the keyframe; depth_scale: factor applied to the model's
    depth of the current keyframe to keep it at the map's scale; rms_px: inlier reprojection;
    keyframe: the new Keyframe when this frame became one (for mapping), else None;
    correspondences: what the pose came from, 'flow' or 'descriptors' ('' when tracking failed
    or on the first frame; 'shift' when it failed and the image shift gave its turn,
    `TrackerConfig.shift_fallback`; 'reference' when it failed and a measured motion gave its
    pose, fallback 'reference'); map_depth_ratio: on a frame tracked into a new keyframe,
    the median ratio of the old keyframe's inlier points' depth, seen from here, to this
    frame's own depth there: the map's units (in which the tracker measured the motion from
    the old keyframe) per unit of the depth given (NaN otherwise, or when too few agree).
    """

    T_odom_cam: np.ndarray
    status: str
    reason: str
    matches: int
    inliers: int
    covariance: np.ndarray | None
    new_keyframe: bool
    depth_scale: float
    rms_px: float = float('nan')
    keyframe: Keyframe | None = None
    correspondences: str = ''
    map_depth_ratio: float = float('nan')


@dataclass
class Keyframe:
    """A tracking keyframe: its ORB features, their 3D points in its camera frame (metres,
    NaN where no depth), its pose in odom, K (3, 3) of its image, the depth scale applied,
    and the covariance (6, 6, ROS order, in the previous keyframe's axes) of its pose
    relative to the previous keyframe (None when it came from a tracking failure).
    landmarks (N,) int64: each feature's landmark id (the same id in the keyframes that saw the
    same point); prior_depth (N,) metres: the depth (at the map's scale) its points came from;
    T_window (4, 4): its pose as the sliding window (TrackerConfig.window_keyframes) adjusts it,
    in a frame of the window's own (None without a window); the window also moves its points.
    T_odom_kf, its published pose, never moves."""

    id: int
    features: FeatureSet
    points: np.ndarray
    T_odom_kf: np.ndarray
    K: np.ndarray
    depth_scale: float
    covariance_from_previous: np.ndarray | None = None
    first_inliers: int | None = None
    frames: int = 0
    landmarks: np.ndarray | None = None
    prior_depth: np.ndarray | None = None
    T_window: np.ndarray | None = None


def sample_depth(depth: np.ndarray, depth_K: np.ndarray, K: np.ndarray, pixels: np.ndarray,
                 radius: int = 0) -> np.ndarray:
    """Depth (metres, NaN outside or invalid) at `pixels` (N, 2) of the image with K, read from
    `depth` (h, w) whose intrinsics are `depth_K` (same camera, another resolution): the nearest
    depth pixel, or with `radius` > 0 the median of the valid ones in the (2 radius + 1)^2 depth
    pixels around it (clipped at the border)."""
    sx, sy = depth_K[0, 0] / K[0, 0], depth_K[1, 1] / K[1, 1]
    u = np.round((pixels[:, 0] - K[0, 2]) * sx + depth_K[0, 2]).astype(np.int64)
    v = np.round((pixels[:, 1] - K[1, 2]) * sy + depth_K[1, 2]).astype(np.int64)
    h, w = depth.shape
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    out = np.full(len(pixels), np.nan)
    if radius <= 0:
        out[inside] = depth[v[inside], u[inside]]
        return out
    steps = np.arange(-radius, radius + 1)
    rows = np.clip(v[inside, None, None] + steps[None, :, None], 0, h - 1)
    cols = np.clip(u[inside, None, None] + steps[None, None, :], 0, w - 1)
    around = np.sort(depth[rows, cols].reshape(len(rows), len(steps) ** 2), axis=1)   # NaN sorts last
    valid = np.isfinite(around).sum(axis=1)
    low = np.take_along_axis(around, np.maximum(valid - 1, 0)[:, None] // 2, axis=1)[:, 0]
    high = np.take_along_axis(around, (valid // 2)[:, None], axis=1)[:, 0]
    out[inside] = np.where(valid > 0, 0.5 * (low + high), np.nan)
    return out


def spread_subset(pixels: np.ndarray, image_shape: tuple[int, ...], count: int, cells: int = 16) -> np.ndarray:
    """Indices (ascending) of at most `count` of `pixels` (N, 2) spread over an image of
    `image_shape` (H, W, ...): the image cut into cells x cells (3/4 as many rows for a 4:3
    image) and the cells taking one point each in turn, each its points in their given order."""
    n = len(pixels)
    if n <= count:
        return np.arange(n)
    h, w = image_shape[:2]
    rows = max(1, round(cells * h / w))
    cell = (np.clip((pixels[:, 1] * rows / h).astype(np.int64), 0, rows - 1) * cells
            + np.clip((pixels[:, 0] * cells / w).astype(np.int64), 0, cells - 1))
    order = np.argsort(cell, kind='stable')
    first_in_cell = np.searchsorted(cell[order], cell[order])
    rank = np.empty(n, np.int64)
    rank[order] = np.arange(n) - first_in_cell       # a point's place among its cell's
    chosen = np.lexsort((cell, rank))[:count]
    return np.sort(chosen)


def lift(pixels: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame points of `pixels` (N, 2) at depths `z` (N,) metres along optical z."""
    x = (pixels[:, 0] - K[0, 2]) / K[0, 0]
    y = (pixels[:, 1] - K[1, 2]) / K[1, 1]
    return np.stack([x * z, y * z, z], axis=1)


class KeyframeTracker:
    """Tracks each frame against the current keyframe; see the module docstring."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.reset()

    def _new_window(self) -> KeyframeWindow | None:
        cfg = self.config
        if cfg.window_keyframes < 2:      # one keyframe alone has nothing to adjust
            return None
        adjustment = BundleConfig(huber_px=0.5 * cfg.threshold_px, depth_sigma=cfg.window_depth_sigma,
                                  outlier_px=cfg.threshold_px)     # pixels at 640 px width, as the window's
        return KeyframeWindow(cfg.window_keyframes, cfg.window_fixed, cfg.min_inliers, cfg.window_min_parallax,
                              config=adjustment)

    def _restart_window(self, keyframe: Keyframe) -> None:
        """A window holding only `keyframe` (the first, or one after a failure: it shares no
        landmark with the last), its window pose its odom pose."""
        if self._window is not None:
            keyframe.T_window = keyframe.T_odom_kf.copy()
            self._window.restart(keyframe)

    def reset(self) -> None:
        self._keyframe: Keyframe | None = None
        self._T_odom_last: np.ndarray | None = None
        self._T_motion = np.eye(4)   # T_prev_last: the last frame's motion, for the next prediction
        self._motion_tracked = False  # _T_motion is a tracked frame's motion being carried (else: none known)
        self._failed_in_row = 0      # frames since the last tracked one (the motion carries fallback_frames)
        self._last_gray: np.ndarray | None = None    # the last frame's image (the flow, shift_recovery)
        self._flow_points = np.zeros(0, np.int64)    # correspondences 'flow': the keyframe points followed (indices),
        self._flow_pixels = np.zeros((0, 2))         # and where they were in the last frame's image
        self.guided_matches = 0      # frames matched by guided search (the rest: every feature against every one)
        self.refined_from_prediction = 0   # frames whose pose was refined from the prediction (the rest: RANSAC)
        self.flow_tracked = 0        # frames tracked on optical flow alone (correspondences 'flow')
        self.surprises = 0           # poses refused: far from the prediction with few inliers
        self.shift_recoveries = 0    # frames tracked only from the image shift's turn (shift_recovery)
        self.shift_fallbacks = 0     # failed frames that took the image shift's turn (shift_fallback)
        self.reference_fallbacks = 0  # failed frames that took a measured motion (fallback 'reference')
        self.keyframes_created = 0
        self.failures = 0
        self._window = self._new_window()
        self._next_landmark = 0

    @property
    def window(self) -> KeyframeWindow | None:
        """The sliding window (None when TrackerConfig.window_keyframes is 0)."""
        return self._window

    @property
    def failed_in_row(self) -> int:
        """Frames tracking has failed on since the last tracked one (0 while tracking); their
        poses carry the last tracked motion while this is at most `fallback_frames`."""
        return self._failed_in_row

    @property
    def started(self) -> bool:
        return self._keyframe is not None

    @property
    def keyframe(self) -> Keyframe | None:
        """The keyframe the frames are tracked against now (None before the first frame)."""
        return self._keyframe

    def _valid(self, z: np.ndarray) -> np.ndarray:
        return np.isfinite(z) & (z > self.config.min_depth_m) & (z < self.config.max_depth_m)

    def _features(self, gray: np.ndarray) -> FeatureSet:
        cfg = self.config
        return extract_features(gray, cfg.max_features, cfg.orb_fast_threshold, cfg.orb_levels,
                                cfg.orb_low_texture_threshold or None)

    def _new_keyframe(self, features: FeatureSet, depth: np.ndarray, depth_K: np.ndarray, K: np.ndarray,
                      T_odom_cam: np.ndarray, depth_scale: float, covariance: np.ndarray | None,
                      carried: tuple[FeatureSet, np.ndarray] | None = None) -> Keyframe:
        """The new current keyframe from `features` of its image; `carried`: (the previous
        keyframe's points tracked here as inliers, at their pixels here, their landmark ids; given
        only when the sliding window is on), kept as the same landmarks."""
        first_new = self._next_landmark
        if carried is not None:
            radius = self.config.landmark_radius_px * K[0, 2] / 320.0     # at 640 px width
            features, landmarks = carry_landmarks(features, *carried, radius, first_new)
        else:
            landmarks = first_new + np.arange(len(features), dtype=np.int64)
        z = sample_depth(depth, depth_K, K, features.keypoints, self.config.depth_median_radius) * depth_scale
        keep = self._valid(z)  # a feature without depth can never be tracked: leave it out of the matching
        features, z, landmarks = features.select(keep), z[keep], landmarks[keep]
        self._next_landmark = int(max(first_new, landmarks.max(initial=-1) + 1))
        self._keyframe = Keyframe(self.keyframes_created, features, lift(features.keypoints, z, K),
                                  T_odom_cam.copy(), K.copy(), depth_scale, covariance,
                                  landmarks=landmarks, prior_depth=z.copy())
        self.keyframes_created += 1
        return self._keyframe

    def track(self, gray: np.ndarray, K: np.ndarray, depth: np.ndarray, depth_K: np.ndarray | None = None,
              fallback_T_prev_cur: np.ndarray | None = None) -> TrackingStep:
        """One frame: gray uint8 (H, W); K (3, 3) of it; depth (h, w) metres of the same frame
        (the model's or a sensor's) with intrinsics depth_K (default K); fallback_T_prev_cur
        (4, 4) the relative pose from the previous frame that `config.fallback` 'learned' or
        'reference' takes when PnP fails (None: no motion for 'learned', the motion model for
        'reference'; a non-rigid one: no motion)."""
        cfg = self.config
        K = np.asarray(K, dtype=np.float64)
        depth_K = K if depth_K is None else np.asarray(depth_K, dtype=np.float64)
        if self._keyframe is None:
            self._T_odom_last = np.eye(4)
            keyframe = self._new_keyframe(self._features(gray), depth, depth_K, K, self._T_odom_last, 1.0, None)
            self._restart_window(keyframe)
            self._follow_from(gray, keyframe)
            self._last_gray = gray
            return TrackingStep(np.eye(4), 'initialised', '', 0, 0, None, True, 1.0, keyframe=keyframe)
        kf = self._keyframe
        kf.frames += 1
        width_scale = gray.shape[1] / 640.0
        T_kf_last = invert_pose(kf.T_odom_kf) @ self._T_odom_last
        found = self._find(gray, kf, K, invert_pose(T_kf_last @ self._T_motion), width_scale, None)
        shift_turn = None     # T_last_cur of the turn the image shift says, when believed
        if found.solution is None and (cfg.shift_recovery or cfg.shift_fallback) and self._last_gray is not None \
                and self._last_gray.shape == gray.shape:
            dx, dy, response = image_shift(self._last_gray, gray)
            if response >= cfg.shift_min_response:
                shift_turn = turn_from_shift(dx, dy, K)
            if shift_turn is not None and cfg.shift_recovery:
                turned = self._find(gray, kf, K, invert_pose(T_kf_last @ shift_turn), width_scale, found.features)
                if turned.solution is not None and \
                        len(turned.solution.inliers) >= SHIFT_MIN_INLIER_RATIO * len(turned.point_index):
                    self.shift_recoveries += 1
                    found = turned
                else:
                    found = found._replace(features=turned.features)
        self._last_gray = gray
        followed, point_index, pixels, solution, reason, features = found
        if solution is not None:
            T_kf_cam = invert_pose(solution.T_cam_points)
            T_odom_cam = kf.T_odom_kf @ T_kf_cam
            if kf.first_inliers is None:
                kf.first_inliers = len(solution.inliers)
            moved = float(np.linalg.norm(T_kf_cam[:3, 3]))
            covariance = (None if solution.covariance is None else   # singular geometry: no figure to give
                          cfg.pnp_uncertainty.covariance(solution.covariance, T_kf_cam))   # the keyframe's axes
            new_keyframe = (len(solution.inliers) < cfg.keyframe_inlier_ratio * kf.first_inliers
                            or moved > cfg.keyframe_translation_m
                            or rotation_angle(T_kf_cam[:3, :3]) > cfg.keyframe_rotation_rad)
            scale, keyframe, map_depth_ratio = kf.depth_scale, None, float('nan')
            if new_keyframe:
                inliers = solution.inliers
                scale, map_depth_ratio = self._aligned_scale(solution, kf.points[point_index[inliers]], pixels[inliers],
                                                             kf.depth_scale, depth, depth_K, K)
                if features is None:
                    features = self._features(gray)
                carried = None if self._window is None else self._carried(kf, point_index[inliers], pixels[inliers])
                keyframe = self._new_keyframe(features, depth, depth_K, K, T_odom_cam, scale, covariance, carried)
                if self._window is not None:
                    T_odom_cam = self._adjust_window(kf, keyframe, T_kf_last, T_kf_cam)
            step = TrackingStep(T_odom_cam, 'tracking', '', len(point_index), len(solution.inliers),
                                None if covariance is None else rotate_covariance(covariance, kf.T_odom_kf[:3, :3]),
                                new_keyframe, scale,
                                solution.rms_px, keyframe, 'flow' if followed else 'descriptors', map_depth_ratio)
        else:
            self.failures += 1
            by_motion = cfg.fallback == 'motion' or (cfg.fallback == 'reference' and fallback_T_prev_cur is None)
            if by_motion:
                prior = self._T_motion             # the last tracked motion, for fallback_frames failures in a row
            else:
                prior = np.eye(4) if fallback_T_prev_cur is None else np.asarray(fallback_T_prev_cur, np.float64)
                if non_rigid(prior)[0]:           # non-finite counts as non-rigid
                    prior = np.eye(4)              # a broken given pose: no motion rather than poison
            turned = (cfg.shift_fallback and shift_turn is not None and by_motion
                      and not self._motion_tracked)   # no tracked motion to carry: the measured turn
            if turned:
                prior = prior.copy()
                prior[:3, :3] = shift_turn[:3, :3]
                self.shift_fallbacks += 1
            measured = cfg.fallback == 'reference' and not by_motion
            self.reference_fallbacks += measured
            T_odom_cam = self._T_odom_last @ prior
            keyframe = self._new_keyframe(features, depth, depth_K, K, T_odom_cam, kf.depth_scale, None)
            self._restart_window(keyframe)
            step = TrackingStep(T_odom_cam, 'fallback', reason, len(point_index), 0, None, True, kf.depth_scale,
                                keyframe=keyframe, correspondences='shift' if turned else 'reference' if measured else '')
        if cfg.correspondences == 'flow':
            if step.keyframe is not None:
                self._follow_from(gray, step.keyframe)
            else:   # the inliers go on; an outlier has drifted or is occluded
                self._flow_points = point_index[solution.inliers]
                self._flow_pixels = pixels[solution.inliers]
        if step.status == 'tracking':
            self._T_motion, self._failed_in_row = invert_pose(self._T_odom_last) @ T_odom_cam, 0
            self._motion_tracked = True
        else:
            self._failed_in_row += 1
            if self._failed_in_row >= cfg.fallback_frames:
                self._T_motion, self._motion_tracked = np.eye(4), False
            if step.correspondences == 'shift':    # the next frame is searched from the measured turn
                self._T_motion = self._T_motion.copy()
                self._T_motion[:3, :3] = shift_turn[:3, :3]
        self._T_odom_last = T_odom_cam
        return step

    def _adjust_window(self, kf: Keyframe, keyframe: Keyframe, T_kf_last: np.ndarray, T_kf_cam: np.ndarray) -> np.ndarray:
        """Adjusts the window with the new `keyframe` (tracked from `kf` by T_kf_cam; the last
        frame was T_kf_last from it) and returns the new keyframe's odom pose: the last frame's
        odom pose times the motion from it to here in the adjusted window, so that odom moves
        on smoothly (REP 105) while each step between frames takes the adjustment's geometry."""
        keyframe.T_window = kf.T_window @ T_kf_cam
        self._window.add(keyframe)
        T_window_last = kf.T_window @ T_kf_last         # the last frame where the adjusted window puts it
        keyframe.T_odom_kf = nearest_pose(self._T_odom_last @ invert_pose(T_window_last) @ keyframe.T_window)
        return keyframe.T_odom_kf.copy()

    @staticmethod
    def _carried(kf: Keyframe, point_index: np.ndarray, pixels: np.ndarray) -> tuple[FeatureSet, np.ndarray]:
        """The keyframe's points `point_index` (M,) as features at `pixels` (M, 2) of the frame
        they were tracked into, with their descriptors, octaves and landmark ids."""
        moved = kf.features.select(point_index)
        return FeatureSet(np.asarray(pixels, np.float64), moved.descriptors, moved.octaves), kf.landmarks[point_index]

    def _find(self, gray: np.ndarray, kf: Keyframe, K: np.ndarray, guess: np.ndarray, width_scale: float,
              features: FeatureSet | None) -> _Found:
        """The keyframe's points in `gray`, searched from the predicted T_cam_kf `guess`: followed
        by the flow (correspondences 'flow'), else matched by ORB descriptors (`features` of gray,
        extracted here when None)."""
        if self.config.correspondences == 'flow':
            followed = self._follow_flow(gray, kf, K, guess, width_scale)
            if followed is not None:
                return _Found(True, *followed, '', features)
        if features is None:
            features = self._features(gray)
        matches, solution, reason = self._match_and_solve(features, kf, K, guess, width_scale)
        return _Found(False, matches[:, 1], features.keypoints[matches[:, 0]], solution, reason, features)

    def _follow_from(self, gray: np.ndarray, keyframe: Keyframe) -> None:
        """Optical flow starts again from a new keyframe: its features, in its image."""
        self._flow_points = spread_subset(keyframe.features.keypoints, gray.shape, self.config.flow_max_points)
        self._flow_pixels = keyframe.features.keypoints[self._flow_points]

    def _follow_flow(self, gray: np.ndarray, kf: Keyframe, K: np.ndarray, guess: np.ndarray,
                     width_scale: float) -> tuple[np.ndarray, np.ndarray, PnPSolution] | None:
        """The keyframe's features followed from the last frame into `gray` by pyramidal
        Lucas-Kanade, each started where the motion model predicts it, and the pose refined
        from the prediction on them (RANSAC when the prediction does not hold): (keyframe point
        indices (M,), their pixels (M, 2) here, PnPSolution), or None when too few are followed
        or no pose is believed (the caller then matches ORB descriptors)."""
        import cv2
        cfg = self.config
        if self._last_gray is None or self._last_gray.shape != gray.shape or len(self._flow_points) < cfg.min_inliers:
            return None
        predicted = project_points(transform_points(guess, kf.points[self._flow_points]), K)[0]
        start = np.where(np.isfinite(predicted).all(axis=1)[:, None], predicted, self._flow_pixels)
        window = max(9, int(round(cfg.flow_window_px * width_scale)) | 1)
        followed, status, _ = cv2.calcOpticalFlowPyrLK(
            self._last_gray, gray, self._flow_pixels.astype(np.float32).reshape(-1, 1, 2),
            start.astype(np.float32).reshape(-1, 1, 2), winSize=(window, window), maxLevel=cfg.flow_levels,
            criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, cfg.flow_iterations, 0.01),
            flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
        followed = followed.reshape(-1, 2).astype(np.float64)
        h, w = gray.shape
        ok = (status.ravel() == 1) & (followed[:, 0] >= 0) & (followed[:, 0] <= w - 1) \
            & (followed[:, 1] >= 0) & (followed[:, 1] <= h - 1)
        point_index, pixels = self._flow_points[ok], followed[ok]
        if len(point_index) < cfg.min_inliers:
            return None
        points = kf.points[point_index]
        threshold = cfg.threshold_px * width_scale
        solution = refine_pnp(points, pixels, K, guess, threshold, min_inliers=cfg.min_inliers)
        if solution is None:
            # Features the flow lost often stay where they were and agree on no motion: unlike
            # descriptor matches, most followed features must be inliers for the pose to count.
            solution = solve_pnp(points, pixels, K, guess, threshold, min_inliers=cfg.min_inliers,
                                 min_inlier_ratio=0.5)
            if solution is None or self._surprising(solution, len(point_index), guess):
                return None
        self.flow_tracked += 1
        return point_index, pixels, solution

    def _surprising(self, solution: PnPSolution, correspondences: int, guess: np.ndarray) -> tuple[float, float] | None:
        """(turn rad, shift m) from the motion model's prediction when the pose is too far from
        it for the share of the correspondences that support it (TrackerConfig.surprise_*), else None."""
        cfg = self.config
        turn = rotation_angle(solution.T_cam_points[:3, :3] @ guess[:3, :3].T)
        shift = float(np.linalg.norm(invert_pose(solution.T_cam_points)[:3, 3] - invert_pose(guess)[:3, 3]))
        weak = len(solution.inliers) < max(0.5 * correspondences, 2 * cfg.min_inliers)
        return (turn, shift) if weak and (turn > cfg.surprise_rad or shift > cfg.surprise_m) else None

    def _match_and_solve(self, features: FeatureSet, kf: Keyframe, K: np.ndarray, guess: np.ndarray,
                         width_scale: float) -> tuple[np.ndarray, PnPSolution | None, str]:
        """(matches (M, 2) [frame feature, keyframe feature], PnPSolution or None, why None or '').

        The keyframe's features are searched where the motion model predicts them; when that
        finds enough and the prediction, refined by Levenberg-Marquardt, keeps at least half of
        them as inliers, that is the answer (no RANSAC). Otherwise every feature is matched
        against every one and RANSAC solves it; the guided matches get RANSAC too when there
        were enough, and the solution with more inliers wins."""
        cfg = self.config
        threshold = cfg.threshold_px * width_scale
        guided = np.zeros((0, 2), np.int64)
        if cfg.search_radius_px > 0:
            guided = match_guided(features, kf.features, project_points(transform_points(guess, kf.points), K)[0],
                                  cfg.search_radius_px * width_scale, cfg.ratio)
        candidates = []
        if len(guided) >= cfg.guided_min_matches:
            points, pixels = kf.points[guided[:, 1]], features.keypoints[guided[:, 0]]
            refined = refine_pnp(points, pixels, K, guess, threshold, min_inliers=cfg.min_inliers)
            if refined is not None:
                self.guided_matches += 1
                self.refined_from_prediction += 1
                return guided, refined, ''
            candidates.append((guided, solve_pnp(points, pixels, K, guess, threshold, min_inliers=cfg.min_inliers)))
        matches = match_features(features, kf.features, cfg.ratio)
        if len(matches):
            matches = matches[np.isfinite(kf.points[matches[:, 1], 2])]
        solution = None
        if len(matches) >= cfg.min_inliers:
            solution = solve_pnp(kf.points[matches[:, 1]], features.keypoints[matches[:, 0]], K, guess,
                                 threshold, min_inliers=cfg.min_inliers)
        candidates.append((matches, solution))
        matches, solution = max(candidates, key=lambda c: -1 if c[1] is None else len(c[1].inliers))
        if matches is guided:
            self.guided_matches += 1
        if solution is None:
            return matches, None, (f'too few matches with depth ({len(matches)} < {cfg.min_inliers})'
                                   if len(matches) < cfg.min_inliers else
                                   f'PnP found fewer than {cfg.min_inliers} inliers among {len(matches)} matches')
        surprise = self._surprising(solution, len(matches), guess)
        if surprise is not None:
            self.surprises += 1
            return matches, None, (f'PnP ended {np.degrees(surprise[0]):.0f} deg and {surprise[1]:.2f} m away from '
                                   f'the motion model with only {len(solution.inliers)} inliers among {len(matches)} matches')
        return matches, solution, ''

    def _aligned_scale(self, solution: PnPSolution, points_kf: np.ndarray, pixels: np.ndarray, keyframe_scale: float,
                       depth: np.ndarray, depth_K: np.ndarray, K: np.ndarray) -> tuple[float, float]:
        """(factor that puts the current frame's depth at the map's scale, the ratio it comes
        from): the median ratio of the inlier points' depth in the current camera (`points_kf`
        (N, 3) in the keyframe, moved by the solution) to the current frame's own depth at their
        `pixels` (N, 2), to the power scale_alignment; (the keyframe's factor, NaN) when too
        few agree."""
        points_cur = points_kf @ solution.T_cam_points[:3, :3].T + solution.T_cam_points[:3, 3]
        z_own = sample_depth(depth, depth_K, K, pixels, self.config.depth_median_radius)
        ok = self._valid(z_own) & (points_cur[:, 2] > self.config.min_depth_m)
        if ok.sum() < self.config.min_inliers:
            return keyframe_scale, float('nan')
        ratio = float(np.median(points_cur[ok, 2] / z_own[ok]))
        return ratio ** self.config.scale_alignment, ratio
