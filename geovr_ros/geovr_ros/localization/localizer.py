"""Keyframe mapping and relocalization: chooses keyframes, recognises places, and keeps
`T_map_odom`.

Two modes:
- mapping (no map loaded): `map` starts where `odom` starts (T_map_odom = identity) and
  keyframes are added as the camera moves; revisits of old keyframes correct map -> odom.
- localization (map loaded): `T_map_odom` is unknown until the first place is recognised.

The caller (the node) runs the model on (keyframe image, current image) for a recognised
place and passes the relative pose to `add_match`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import moved_beyond, relative_pose, rotate_covariance, rotation_angle
from geovr_ros.localization.keyframe_map import Keyframe, KeyframeMap
from geovr_ros.localization.overlap import view_overlap
from geovr_ros.localization.smoothing import WindowedMapOdomEstimator
from geovr_ros.tracking.pnp import PoseUncertainty


@dataclass(frozen=True)
class LocalizerConfig:
    """Thresholds of keyframe selection and place recognition.

    keyframe_translation (m) / keyframe_rotation (rad): motion from the last keyframe that
        makes a new keyframe; keyframe_min_overlap: a new keyframe is also made when less
        than this fraction of the current view falls inside the last keyframe.
    match_threshold: cosine similarity of global descriptors for a place match;
        exclude_newest: keyframes this recent are never matched (they are odometry, not a
        revisit); window: measurements aligned together for map -> odom;
        max_keyframes: map size bound (oldest evicted).
    The map pose's covariance (`Localizer.covariance`): depth_scale_sigma, the relative error
        of a keyframe depth's scale (a place pose's translation from the keyframe scales with
        it); drift_per_metre, drift_metres_per_rad: odometry's position error per metre moved
        and per radian turned since the last match; drift_rad_per_rad: its rotation error per
        radian turned; floor_m / floor_rad: standard deviations added on every axis (what no
        match measures better). Calibrated against `geovr-eval localize` (docs/ros.md).
    """

    keyframe_translation: float = 0.5
    keyframe_rotation: float = 0.35
    keyframe_min_overlap: float = 0.6
    match_threshold: float = 0.9
    exclude_newest: int = 3
    window: int = 1
    max_keyframes: int = 500
    depth_scale_sigma: float = 0.1
    drift_per_metre: float = 0.05
    drift_metres_per_rad: float = 0.2
    drift_rad_per_rad: float = 0.1
    floor_m: float = 0.03
    floor_rad: float = 0.03

    def __post_init__(self) -> None:
        for name in ('depth_scale_sigma', 'drift_per_metre', 'drift_metres_per_rad', 'drift_rad_per_rad',
                     'floor_m', 'floor_rad'):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f'{name} must be a number >= 0, got {value!r}')


class Localizer:
    """Owns the keyframe map and the map -> odom estimate. Not thread-safe."""

    def __init__(self, config: LocalizerConfig = LocalizerConfig(),
                 keyframe_map: KeyframeMap | None = None):
        self.config = config
        self._estimator = WindowedMapOdomEstimator(config.window)
        self.set_map(keyframe_map)

    def set_map(self, keyframe_map: KeyframeMap | None) -> None:
        """Starts mapping afresh (None) or localizing in a loaded map."""
        self._estimator.reset()
        self.mapping = keyframe_map is None
        self.map = keyframe_map if keyframe_map is not None \
            else KeyframeMap(self.config.max_keyframes)
        self._T_map_odom = np.eye(4) if self.mapping else None
        self.matches = 0
        self._last_match: tuple[np.ndarray, np.ndarray] | None = None   # (covariance in map axes, T_odom_cam)

    def reset(self) -> None:
        """Forgets the map; mapping restarts with map == odom."""
        self.set_map(None)

    @property
    def localized(self) -> bool:
        return self._T_map_odom is not None

    @property
    def T_map_odom(self) -> np.ndarray | None:
        return None if self._T_map_odom is None else self._T_map_odom.copy()

    def map_pose(self, T_odom_cam: np.ndarray) -> np.ndarray | None:
        """The camera pose in `map` (4x4), or None while not localized."""
        return None if self._T_map_odom is None else self._T_map_odom @ T_odom_cam

    def covariance(self, T_odom_cam: np.ndarray | None = None) -> np.ndarray:
        """(6, 6) covariance of the camera's map pose at `T_odom_cam` (4, 4; the last match's
        when None), ROS order (x, y, z, rotX, rotY, rotZ) in map axes, m^2 and rad^2: the last
        place match's (`add_match`), grown by odometry's drift since it (`LocalizerConfig`), plus
        the window alignment's residual and the floor. Mapping without a revisit has only the
        floor (map is odom by definition); 1e6 on every axis while not localized."""
        if not self.localized:
            return np.diag([1e6] * 6)
        c = self.config
        covariance = np.diag([c.floor_m ** 2] * 3 + [c.floor_rad ** 2] * 3)
        residual = self._estimator.residual()
        if np.isfinite(residual):
            covariance += np.diag([residual ** 2] * 6)
        if self._last_match is None:
            return covariance
        at_match, T_odom_at_match = self._last_match
        covariance += at_match
        if T_odom_cam is not None:
            moved = relative_pose(T_odom_at_match, np.asarray(T_odom_cam, np.float64))
            distance, turned = float(np.linalg.norm(moved[:3, 3])), rotation_angle(moved[:3, :3])
            rotation_variance = np.trace(at_match[3:, 3:]) / 3.0   # its error swings the path since
            drift_m = c.drift_per_metre * distance + c.drift_metres_per_rad * turned
            covariance += np.diag([drift_m ** 2 + rotation_variance * distance ** 2] * 3
                                  + [(c.drift_rad_per_rad * turned) ** 2] * 3)
        return covariance

    def place_covariance(self, T_kf_cur: np.ndarray, reprojection: np.ndarray | None) -> np.ndarray:
        """(6, 6) covariance of a place pose `T_kf_cur` (4, 4) in the keyframe's axes: PnP's from
        the reprojections (`reprojection`, None for none) and the keyframe depth's scale error,
        which moves the camera along its offset from the keyframe (depth_scale_sigma of it)."""
        return PoseUncertainty(scale_sigma=self.config.depth_scale_sigma).covariance(reprojection, T_kf_cur)

    def should_add_keyframe(self, T_odom_cam: np.ndarray, depth: np.ndarray | None = None,
                            K: np.ndarray | None = None, T_map_cam: np.ndarray | None = None) -> bool:
        """True when mapping and the camera moved or turned enough from the last keyframe,
        or its view overlaps the last keyframe too little (needs depth (H, W) m and K).
        T_map_cam: the camera's map pose when another source knows it (the pose graph while
        mapping with one, where the keyframes are placed), else map -> odom times T_odom_cam."""
        if not self.mapping or not (self.localized or T_map_cam is not None):
            return False
        last = self.map.last
        if last is None:
            return True
        T_kf_cur = relative_pose(last.T_map_cam, self._T_map_odom @ T_odom_cam if T_map_cam is None else T_map_cam)
        if moved_beyond(T_kf_cur, self.config.keyframe_translation, self.config.keyframe_rotation):
            return True
        if depth is not None and K is not None:
            size = (last.image.shape[1], last.image.shape[0])
            return view_overlap(depth, K, T_kf_cur, last.K, size) < self.config.keyframe_min_overlap
        return False

    def add_keyframe(self, stamp: float, T_odom_cam: np.ndarray, descriptor: np.ndarray,
                     image: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray | None = None) -> Keyframe:
        """Adds the current frame as a keyframe at its map pose: `T_map_cam` (4, 4) when given
        (the pose graph's, while mapping with one), else map -> odom times T_odom_cam
        (requires `localized`)."""
        if T_map_cam is None:
            if not self.localized:
                raise ValueError('cannot add a keyframe before map -> odom is known')
            T_map_cam = self._T_map_odom @ T_odom_cam
        return self.map.add(stamp, T_map_cam, descriptor, image, K)

    def find_match(self, descriptor: np.ndarray) -> tuple[Keyframe, float] | None:
        """Best keyframe for this global descriptor (D,) if above the match threshold."""
        found = self.find_matches(descriptor, 1)
        return found[0] if found else None

    def find_matches(self, descriptor: np.ndarray, count: int) -> list[tuple[Keyframe, float]]:
        """The `count` best keyframes for this global descriptor (D,) above the match
        threshold, best first."""
        exclude = self.config.exclude_newest if self.mapping else 0
        return [(keyframe, similarity) for keyframe, similarity in self.map.best_matches(descriptor, count, exclude)
                if similarity >= self.config.match_threshold]

    def add_match(self, T_odom_cam: np.ndarray, keyframe: Keyframe, T_kf_cur: np.ndarray,
                  covariance: np.ndarray | None = None) -> np.ndarray:
        """Adds a place match (current camera at `T_kf_cur` (4x4, m) in the keyframe, with
        PnP's reprojection `covariance` (6, 6) in the keyframe's axes, or None) and returns the
        new map pose of the camera."""
        T_kf_cur = np.asarray(T_kf_cur, np.float64)
        T_map_cam = keyframe.T_map_cam @ T_kf_cur
        self._T_map_odom = self._estimator.add(T_odom_cam, T_map_cam)
        self._last_match = (rotate_covariance(self.place_covariance(T_kf_cur, covariance), keyframe.T_map_cam[:3, :3]),
                            np.array(T_odom_cam, np.float64))
        self.matches += 1
        return self._T_map_odom @ T_odom_cam

    def odometry_restarted(self) -> None:
        """Odometry restarted at identity: the old map -> odom no longer holds."""
        self._estimator.reset()
        self._last_match = None
        if self.mapping and len(self.map) == 0:
            self._T_map_odom = np.eye(4)
        else:
            self._T_map_odom = None


