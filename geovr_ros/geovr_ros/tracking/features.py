"""ORB keypoints and descriptors, and their matches (OpenCV)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureSet:
    """keypoints: float64 (N, 2) pixel (u, v), pixel centres at integer coordinates;
    descriptors: uint8 (N, 32) ORB descriptors (N may be 0)."""

    keypoints: np.ndarray
    descriptors: np.ndarray

    def __len__(self) -> int:
        return len(self.keypoints)


def extract_features(gray: np.ndarray, max_features: int = 1000, fast_threshold: int = 12) -> FeatureSet:
    """ORB features of a uint8 (H, W) grayscale image, spread over the image (8 levels)."""
    import cv2
    orb = cv2.ORB_create(nfeatures=max_features, scaleFactor=1.2, nlevels=8, fastThreshold=fast_threshold)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return FeatureSet(np.zeros((0, 2)), np.zeros((0, 32), np.uint8))
    return FeatureSet(cv2.KeyPoint_convert(keypoints).astype(np.float64), descriptors)


def match_features(query: FeatureSet, train: FeatureSet, ratio: float = 0.8) -> np.ndarray:
    """Matches (M, 2) of [query index, train index], Lowe's ratio test on Hamming distances,
    each train feature used at most once (the closest query wins)."""
    import cv2
    if len(query) < 2 or len(train) < 2:
        return np.zeros((0, 2), np.int64)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = [p for p in matcher.knnMatch(query.descriptors, train.descriptors, k=2) if len(p) == 2]
    if not pairs:
        return np.zeros((0, 2), np.int64)
    table = np.array([(m.queryIdx, m.trainIdx, m.distance, n.distance) for m, n in pairs])
    table = table[table[:, 2] < ratio * table[:, 3]]
    table = table[np.lexsort((table[:, 2], table[:, 1]))]  # by train index, closest first
    _, first = np.unique(table[:, 1], return_index=True)  # the closest query per train feature
    kept = table[first][:, :2].astype(np.int64)
    return kept[np.argsort(kept[:, 0], kind='stable')]
