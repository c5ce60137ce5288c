"""A recognised place verified and measured by geometry: the map keyframe's ORB features lifted
to 3D with the model's depth of its image, the current frame's features matched to them, and
the current camera placed by PnP with RANSAC, as loop closures are verified
(`geovr_ros.mapping`). A place whose features do not agree on one pose is no match; the pose
they agree on is metric (the keyframe's depth sets the scale).

Images are uint8 RGB (H, W, 3) with their K (3, 3); depth metres; poses (4, 4), optical frames.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import invert_pose
from geovr_ros.tracking import FeatureSet, TrackerConfig, extract_features, match_features, solve_pnp
from geovr_ros.tracking.tracker import lift, sample_depth

PLACE_MIN_INLIERS = 40        # PnP inliers that verify a place (a loop closure's, GraphConfig.loop_min_inliers)
PLACE_THRESHOLD_PX = 6.0      # RANSAC inlier threshold at 640 px width (a loop closure's: depth error seen anew)


@dataclass(frozen=True)
class PlaceView:
    """A map keyframe as PnP needs it: its ORB features with depth and their points (N, 3) in
    its camera, metres."""

    features: FeatureSet
    points: np.ndarray


@dataclass(frozen=True)
class PlaceMatch:
    """T_kf_cur (4, 4): the current camera in the keyframe's; inliers, matches: PnP's counts;
    covariance (6, 6) of T_kf_cur's (x, y, z, roll, pitch, yaw) in the keyframe's axes, m^2 and
    rad^2, from the inliers' reprojections alone (the keyframe depth's error is not in it; see
    `Localizer.add_match`), or None where PnP's geometry is singular."""

    T_kf_cur: np.ndarray
    inliers: int
    matches: int
    covariance: np.ndarray | None = None


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def place_features(rgb: np.ndarray, config: TrackerConfig | None = None) -> FeatureSet:
    """ORB features of an image `rgb` with the tracker's settings (`config`): a keyframe's for its
    PlaceView, the current frame's for `locate` (once, however many keyframes it is tried on)."""
    config = config or TrackerConfig()
    return extract_features(_gray(rgb), config.max_features, config.orb_fast_threshold, config.orb_levels,
                            config.orb_low_texture_threshold or None)


def place_view(rgb: np.ndarray, K: np.ndarray, depth: np.ndarray, depth_K: np.ndarray,
               config: TrackerConfig | None = None) -> PlaceView:
    """The keyframe image `rgb` with K, its depth (h, w) with depth_K (the model's, at its input
    size): ORB features (the tracker's settings, `config`) that have a depth, and their points."""
    config = config or TrackerConfig()
    features = place_features(rgb, config)
    z = sample_depth(np.asarray(depth, np.float64), np.asarray(depth_K, np.float64), np.asarray(K, np.float64),
                     features.keypoints, config.depth_median_radius)
    keep = np.isfinite(z) & (z > config.min_depth_m) & (z < config.max_depth_m)
    features = features.select(keep)
    return PlaceView(features, lift(features.keypoints, z[keep], np.asarray(K, np.float64)))


def locate(view: PlaceView, features: FeatureSet, K: np.ndarray, config: TrackerConfig | None = None,
           min_inliers: int = PLACE_MIN_INLIERS, threshold_px: float = PLACE_THRESHOLD_PX) -> PlaceMatch | None:
    """The camera whose image has `features` (`place_features`) and K in the keyframe of
    `view`, or None when fewer than `min_inliers` of the matched features agree on one pose
    within `threshold_px` (at 640 px image width)."""
    config = config or TrackerConfig()
    if len(features) < min_inliers or len(view.features) < min_inliers:
        return None
    matches = match_features(features, view.features, config.ratio)
    if len(matches) < min_inliers:
        return None
    K = np.asarray(K, np.float64)
    width = 2.0 * K[0, 2] + 1.0
    solution = solve_pnp(view.points[matches[:, 1]], features.keypoints[matches[:, 0]], K, None,
                         threshold_px * width / 640.0, min_inliers=min_inliers)
    if solution is None:
        return None
    return PlaceMatch(invert_pose(solution.T_cam_points), len(solution.inliers), len(matches), solution.covariance)
