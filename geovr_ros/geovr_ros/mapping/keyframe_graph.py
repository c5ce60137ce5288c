"""Tracking keyframes in a pose graph, with loop closures found near the current estimate and
verified by PnP between the two keyframes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import invert_pose, nearest_pose, rotate_covariance
from geovr_ros.mapping.pose_graph import PoseGraph
from geovr_ros.tracking import Keyframe, match_features, solve_pnp
from geovr_ros.tracking.pnp import LEARNED_DEPTH_PNP, PoseUncertainty


@dataclass
class GraphConfig:
    """Knobs of the keyframe graph (units in the names).

    loop_min_separation: keyframes between a candidate and the current one (recent ones
    are odometry's business). loop_radius_m, loop_max_angle_deg: candidates within this
    distance of the current keyframe's optimised position, their optical axes within this
    angle of its own (a place seen from the other side cannot be matched), tried nearest
    first, where loop_metres_per_radian converts the angle between the axes into distance.
    loop_max_candidates: PnP attempts per keyframe. loop_min_inliers: PnP inliers that
    verify a loop. loop_threshold_px: RANSAC threshold at 640 px width (wider than
    tracking's: the older keyframe's points carry the model's depth error, seen from
    another place). fallback_sigma_m / fallback_sigma_rad: standard deviations of a keyframe
    that came from a tracking failure (the learned pose). loop_kernel: robust kernel of loop
    factors ('cauchy' | 'huber' | 'none'). loop_uncertainty: how a loop's covariance is made
    from its PnP's reprojection covariance (as the tracker's odometry factors are,
    `TrackerConfig.pnp_uncertainty`). scale_sigma: what the published covariance of a map pose
    adds to GTSAM's marginal (`KeyframeGraph.covariance`): the map's metric scale error (the
    model's), scale_sigma of a pose's distance from the map's origin.
    """

    loop_min_separation: int = 10
    loop_radius_m: float = 3.0
    loop_max_angle_deg: float = 60.0
    loop_metres_per_radian: float = 1.0
    loop_max_candidates: int = 3
    loop_min_inliers: int = 40
    loop_threshold_px: float = 6.0
    fallback_sigma_m: float = 0.1
    fallback_sigma_rad: float = 0.05
    loop_kernel: str = 'cauchy'
    loop_uncertainty: PoseUncertainty = LEARNED_DEPTH_PNP
    scale_sigma: float = 0.15

    def __post_init__(self) -> None:
        if self.loop_min_separation < 1 or self.loop_max_candidates < 1 or self.loop_min_inliers < 6:
            raise ValueError(f'loop_min_separation {self.loop_min_separation} and loop_max_candidates '
                             f'{self.loop_max_candidates} must be >= 1, loop_min_inliers '
                             f'{self.loop_min_inliers} >= 6')
        if not 0 < self.loop_max_angle_deg <= 180 or not self.loop_metres_per_radian >= 0:
            raise ValueError(f'loop_max_angle_deg {self.loop_max_angle_deg} must be in (0, 180] and '
                             f'loop_metres_per_radian {self.loop_metres_per_radian} >= 0')
        if not np.isfinite(self.scale_sigma) or self.scale_sigma < 0:
            raise ValueError(f'scale_sigma must be >= 0, got {self.scale_sigma!r}')
        for name in ('loop_radius_m', 'loop_threshold_px', 'fallback_sigma_m', 'fallback_sigma_rad'):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f'{name} must be a positive number, got {getattr(self, name)!r}')


@dataclass(frozen=True)
class LoopClosure:
    """A verified loop: keyframe `key` seen from the older keyframe `older`.
    T_older_key (4, 4); inliers of the verifying PnP; correction_m: how far the newest
    keyframe's map position moved when the loop was added."""

    older: int
    key: int
    T_older_key: np.ndarray
    inliers: int
    correction_m: float


class KeyframeGraph:
    """Keyframes of a `KeyframeTracker` as a pose graph (see the package docstring)."""

    def __init__(self, config: GraphConfig | None = None):
        self.config = config or GraphConfig()
        self.graph = PoseGraph(loop_kernel=self.config.loop_kernel)
        self.keyframes: dict[int, Keyframe] = {}
        self.loops: list[LoopClosure] = []
        self._newest: int | None = None
        self._covariance: tuple | None = None

    def __len__(self) -> int:
        return len(self.keyframes)

    def _fallback_covariance(self) -> np.ndarray:
        c = self.config
        return np.diag([c.fallback_sigma_m ** 2] * 3 + [c.fallback_sigma_rad ** 2] * 3)

    def add_keyframe(self, keyframe: Keyframe) -> LoopClosure | None:
        """Adds a new tracking keyframe (after the previous one) and tries to close a loop."""
        if keyframe.id in self.keyframes:
            raise ValueError(f'keyframe {keyframe.id} is already in the graph')
        if self._newest is None:
            self.graph.add_first(keyframe.id, keyframe.T_odom_kf)
        else:
            previous = self.keyframes[self._newest]
            T_prev_kf = nearest_pose(invert_pose(previous.T_odom_kf) @ keyframe.T_odom_kf)
            covariance = keyframe.covariance_from_previous
            if covariance is not None and not np.all(np.isfinite(covariance)):
                covariance = None
            self.graph.add_odometry(previous.id, keyframe.id, T_prev_kf,
                                    self._fallback_covariance() if covariance is None else covariance)
        self.keyframes[keyframe.id] = keyframe
        self._newest = keyframe.id
        return self.close_loop(keyframe)

    def close_loop(self, keyframe: Keyframe) -> LoopClosure | None:
        """Looks for an older keyframe near this one that sees the same place; adds the
        verified loop factor and returns it, or None."""
        c = self.config
        pose = self.graph.pose(keyframe.id)
        candidates = []
        for key in self.keyframes:
            if key > keyframe.id - c.loop_min_separation:
                continue
            older_pose = self.graph.pose(key)
            distance = float(np.linalg.norm(older_pose[:3, 3] - pose[:3, 3]))
            angle = float(np.arccos(np.clip(older_pose[:3, 2] @ pose[:3, 2], -1.0, 1.0)))
            if distance <= c.loop_radius_m and angle <= np.radians(c.loop_max_angle_deg):
                candidates.append((distance + c.loop_metres_per_radian * angle, key))
        for _, key in sorted(candidates)[:c.loop_max_candidates]:
            older = self.keyframes[key]
            matches = match_features(keyframe.features, older.features)
            if len(matches):
                matches = matches[np.isfinite(older.points[matches[:, 1], 2])]
            if len(matches) < c.loop_min_inliers:
                continue
            width = 2.0 * keyframe.K[0, 2] + 1.0
            solution = solve_pnp(older.points[matches[:, 1]], keyframe.features.keypoints[matches[:, 0]],
                                 keyframe.K, None, c.loop_threshold_px * width / 640.0,
                                 min_inliers=c.loop_min_inliers)
            if solution is None:
                continue
            T_older_key = invert_pose(solution.T_cam_points)
            before = self.graph.pose(self._newest)[:3, 3]
            covariance = (self._fallback_covariance() if solution.covariance is None
                          else c.loop_uncertainty.covariance(solution.covariance, T_older_key))
            self.graph.add_loop(key, keyframe.id, T_older_key, covariance)
            closure = LoopClosure(key, keyframe.id, T_older_key, len(solution.inliers),
                                  float(np.linalg.norm(self.graph.pose(self._newest)[:3, 3] - before)))
            self.loops.append(closure)
            return closure
        return None

    @property
    def T_map_odom(self) -> np.ndarray:
        """(4, 4) map <- odom from the newest keyframe: its optimised pose times the inverse of
        its odometry pose (identity before the first keyframe)."""
        if self._newest is None:
            return np.eye(4)
        return self.graph.pose(self._newest) @ invert_pose(self.keyframes[self._newest].T_odom_kf)

    def T_map_keyframe(self, key: int) -> np.ndarray:
        return self.graph.pose(key)

    def covariance(self, position: np.ndarray | None = None) -> np.ndarray:
        """(6, 6) covariance of the newest keyframe's map pose in map axes (ROS order; GTSAM
        gives its marginal in the pose's own axes); with the camera's `position` (3,) in the
        graph's map, plus the map scale's error along its offset from the first keyframe
        (`scale_sigma`). Zeros before the first keyframe; the marginal is computed once per
        graph change."""
        if self._newest is None:
            return np.zeros((6, 6))
        key = (self._newest, len(self.loops))
        if self._covariance is None or self._covariance[0] != key:
            self._covariance = (key, rotate_covariance(self.graph.covariance(self._newest),
                                                       self.graph.pose(self._newest)[:3, :3]))
        covariance = self._covariance[1].copy()
        if position is not None:
            offset = np.asarray(position, np.float64) - self.graph.pose(self.graph.first_key)[:3, 3]
            covariance[:3, :3] += self.config.scale_sigma ** 2 * np.outer(offset, offset)
        return covariance
