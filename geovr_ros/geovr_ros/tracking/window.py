"""The tracker's sliding window: keyframe points carried from keyframe to keyframe as landmarks,
and the window's bundle adjustment (`tracking.bundle`) after each new keyframe.

A new keyframe keeps the previous keyframe's points that were tracked into it as inliers, at
the pixels they were followed to, with their landmark ids (and descriptors); its own ORB
features away from them start new landmarks. After each keyframe the last `size` keyframes
are adjusted together on the landmarks that two or more of them see, the oldest held fixed;
the adjusted poses are written back to the keyframes and every keyframe's points of an
adjusted landmark move to the landmark's adjusted position, so the tracker's PnP on the newest
keyframe uses points placed by the views' parallax rather than by one depth map alone. The
window keeps its own poses (`Keyframe.T_window`): the tracker publishes each frame's motion in
the adjusted window, never a jump (REP 105's odom).
"""
from __future__ import annotations

from collections import deque

import numpy as np

from geovr_ros.geometry import invert_pose, transform_points
from geovr_ros.tracking.bundle import BundleConfig, BundleResult, WindowBundle, adjust_window
from geovr_ros.tracking.features import FeatureSet


def carry_landmarks(features: FeatureSet, carried: FeatureSet, carried_landmarks: np.ndarray, radius_px: float,
                    first_new_id: int) -> tuple[FeatureSet, np.ndarray]:
    """A new keyframe's features and their landmark ids (N,): first the `carried` points (the
    previous keyframe's, at the pixels they were followed to in this image, with their
    descriptors and octaves; ids `carried_landmarks`), then the image's own `features` that lie
    further than `radius_px` from every carried one (new ids counting up from `first_new_id`)."""
    keep = np.ones(len(features), bool)
    if len(features) and len(carried):
        d2 = np.sum((features.keypoints[:, None, :] - carried.keypoints[None, :, :]) ** 2, axis=2)   # (N, C)
        keep = d2.min(axis=1) > radius_px ** 2
    own = features.select(keep)
    octaves = None if carried.octaves is None or own.octaves is None else np.concatenate([carried.octaves, own.octaves])
    merged = FeatureSet(np.concatenate([carried.keypoints, own.keypoints]),
                        np.concatenate([carried.descriptors, own.descriptors]), octaves)
    ids = np.concatenate([np.asarray(carried_landmarks, np.int64), first_new_id + np.arange(len(own), dtype=np.int64)])
    return merged, ids


class KeyframeWindow:
    """The last `size` keyframes and their landmarks (see the module docstring).

    Keyframes are `tracking.Keyframe`s with `landmarks` (N,), `prior_depth` (N,) and `T_window`
    set; the window changes their `T_window` and `points` in place when it adjusts them.
    """

    def __init__(self, size: int, fixed: int = 1, min_observations: int = 20, min_parallax: float = 0.04,
                 config: BundleConfig | None = None):
        """size keyframes, the oldest `fixed` of them held; a keyframe with fewer than
        `min_observations` of the window's shared points is held too; min_parallax: see `add`;
        config: the adjustment's, its pixels at 640 px image width (the window rescales)."""
        if size < 2 or not 1 <= fixed < size:
            raise ValueError(f'a window needs size >= 2 and 1 <= fixed < size, got size {size!r}, fixed {fixed!r}')
        if not np.isfinite(min_parallax) or min_parallax < 0:
            raise ValueError(f'min_parallax must be >= 0, got {min_parallax!r}')
        self.size, self.fixed, self.min_observations = size, fixed, min_observations
        self.min_parallax = min_parallax
        self.config = config or BundleConfig()
        self._keyframes: deque = deque(maxlen=size)
        self.adjustments = 0     # windows adjusted
        self.skipped = 0         # windows left as tracked: too little parallax
        self.last_result: BundleResult | None = None

    def __len__(self) -> int:
        return len(self._keyframes)

    def restart(self, keyframe) -> None:
        """A window holding only `keyframe` (tracking failed: it shares no landmark with the last)."""
        self._keyframes.clear()
        self._keyframes.append(keyframe)

    def add(self, keyframe) -> BundleResult | None:
        """Appends `keyframe` (dropping the oldest beyond `size`) and adjusts the window; the
        result (pixels at 640 px width), or None when there was nothing to adjust or the views'
        median baseline over depth stays below `min_parallax` (`_parallax`)."""
        self._keyframes.append(keyframe)
        if len(self._keyframes) < 2:
            return None
        problem, landmark_rows = self._problem()
        if problem is None:
            return None
        if self._parallax(problem) < self.min_parallax:
            self.skipped += 1          # a turn on the spot: the views cannot place the points, PnP's poses stand
            return None
        result = adjust_window(problem, self.config)
        self._apply(problem, landmark_rows, result)
        self.adjustments += 1
        self.last_result = result
        return result

    @staticmethod
    def _parallax(problem: WindowBundle) -> float:
        """Median over the observations of the baseline between the point's anchor and the
        observing keyframe over the point's depth (radians, about): how well the views place it."""
        T = problem.T_world_cam
        baseline = np.linalg.norm(T[problem.frame, :3, 3] - T[problem.anchor[problem.point], :3, 3], axis=1)
        return float(np.median(baseline / problem.depth[problem.point])) if len(baseline) else 0.0

    def _problem(self):
        """The WindowBundle of the window's shared landmarks and, per keyframe, (feature rows, landmark index) of its observations;
        (None, None) when no landmark is seen twice."""
        keyframes = list(self._keyframes)
        sizes = [len(kf.landmarks) for kf in keyframes]
        frames = np.repeat(np.arange(len(keyframes)), sizes)
        rows = np.concatenate([np.arange(n) for n in sizes])
        ids = np.concatenate([kf.landmarks for kf in keyframes])
        unique, first, counts = np.unique(ids, return_index=True, return_counts=True)
        shared = np.flatnonzero(counts >= 2)
        if not len(shared):
            return None, None
        index = np.full(len(unique), -1)
        index[shared] = np.arange(len(shared))
        point = index[np.searchsorted(unique, ids)]
        observed = point >= 0
        # np.unique's first index is the earliest keyframe (frames ascend): the anchor
        anchor_obs = first[shared]
        anchor = frames[anchor_obs]
        anchor_points = np.concatenate([kf.points for kf in keyframes])[anchor_obs]
        prior = np.concatenate([kf.prior_depth for kf in keyframes])[anchor_obs]
        others = observed.copy()
        others[anchor_obs] = False
        obs_frames, obs_points = frames[others], point[others]
        pixels = np.concatenate([kf.features.keypoints for kf in keyframes])[others]
        fixed = np.zeros(len(keyframes), bool)
        fixed[:self.fixed] = True
        seen = np.bincount(obs_frames, minlength=len(keyframes)) + np.bincount(anchor, minlength=len(keyframes))
        fixed |= seen < self.min_observations          # too few to place it: held where tracking put it
        # pixels at 640 px width, the unit of the tracker's thresholds
        K = np.stack([kf.K for kf in keyframes])
        to_640 = 320.0 / K[:, 0, 2]
        K[:, :2] *= to_640[:, None, None]
        problem = WindowBundle(
            np.stack([kf.T_window for kf in keyframes]), fixed, K,
            anchor, anchor_points / anchor_points[:, 2:3], anchor_points[:, 2].copy(), prior,
            obs_frames, obs_points, pixels * to_640[obs_frames, None])
        observations = [(rows[observed & (frames == f)], point[observed & (frames == f)]) for f in range(len(keyframes))]
        return problem, observations

    def _apply(self, problem: WindowBundle, observations, result: BundleResult) -> None:
        """The adjusted poses into the keyframes, and each keyframe's points of an adjusted
        landmark (not an outlier there) to where the landmark now is."""
        keyframes = list(self._keyframes)
        world = transform_points(result.T_world_cam[problem.anchor], (problem.bearing * result.depth[:, None])[:, None, :])[:, 0] \
            if len(problem.anchor) else np.zeros((0, 3))
        outlier = np.zeros((len(keyframes), len(problem.anchor)), bool)
        outlier[problem.frame[result.outliers], problem.point[result.outliers]] = True
        for f, (kf, (rows, points)) in enumerate(zip(keyframes, observations)):
            kf.T_window = result.T_world_cam[f].copy()
            keep = ~outlier[f, points]
            kf.points[rows[keep]] = transform_points(invert_pose(kf.T_window), world[points[keep]])
