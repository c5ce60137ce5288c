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

from geovr_ros.geometry import relative_pose, rotation_angle
from geovr_ros.localization.keyframe_map import Keyframe, KeyframeMap
from geovr_ros.localization.overlap import view_overlap
from geovr_ros.localization.smoothing import WindowedMapOdomEstimator


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
    """

    keyframe_translation: float = 0.5
    keyframe_rotation: float = 0.35
    keyframe_min_overlap: float = 0.6
    match_threshold: float = 0.9
    exclude_newest: int = 3
    window: int = 1
    max_keyframes: int = 500


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

    def covariance(self) -> np.ndarray:
        """6x6 row-major covariance (x, y, z, rotX, rotY, rotZ) of the map pose: the window
        alignment residual squared, floored at 1 cm / 0.01 rad; large before any match."""
        if not self.localized:
            return np.diag([1e6] * 6)
        residual = self._estimator.residual()
        if not np.isfinite(residual):  # mapping without a revisit: map == odom by definition
            residual = 0.0
        var_t = max(residual, 0.01) ** 2
        var_r = max(residual, 0.01) ** 2
        return np.diag([var_t] * 3 + [var_r] * 3)

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
        if (np.linalg.norm(T_kf_cur[:3, 3]) > self.config.keyframe_translation
                or rotation_angle(T_kf_cur[:3, :3]) > self.config.keyframe_rotation):
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

    def add_match(self, T_odom_cam: np.ndarray, keyframe: Keyframe, T_kf_cur: np.ndarray
                  ) -> np.ndarray:
        """Adds a place match (current camera at `T_kf_cur` (4x4, m) in the keyframe) and
        returns the new map pose of the camera."""
        T_map_cam = keyframe.T_map_cam @ np.asarray(T_kf_cur, np.float64)
        self._T_map_odom = self._estimator.add(T_odom_cam, T_map_cam)
        self.matches += 1
        return self._T_map_odom @ T_odom_cam

    def odometry_restarted(self) -> None:
        """Odometry restarted at identity: the old map -> odom no longer holds."""
        self._estimator.reset()
        if self.mapping and len(self.map) == 0:
            self._T_map_odom = np.eye(4)
        else:
            self._T_map_odom = None


