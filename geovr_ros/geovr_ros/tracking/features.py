"""ORB keypoints and descriptors, and their matches (OpenCV)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureSet:
    """keypoints: float64 (N, 2) pixel (u, v), pixel centres at integer coordinates;
    descriptors: uint8 (N, 32) ORB descriptors (N may be 0); octaves: int (N,) the image
    pyramid level each was found at, or None when not known."""

    keypoints: np.ndarray
    descriptors: np.ndarray
    octaves: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.keypoints)

    def select(self, which: np.ndarray) -> 'FeatureSet':
        """The features at `which` (a boolean mask or indices)."""
        return FeatureSet(self.keypoints[which], self.descriptors[which],
                          None if self.octaves is None else self.octaves[which])


def extract_features(gray: np.ndarray, max_features: int = 1000, fast_threshold: int = 12,
                     levels: int = 8, low_texture_threshold: int | None = None) -> FeatureSet:
    """ORB features of a uint8 (H, W) grayscale image, spread over the image, on `levels`
    pyramid levels 1.2x apart. When fewer than a quarter of `max_features` pass FAST at
    `fast_threshold` (a view of bare walls or low contrast), they are detected again at
    `low_texture_threshold` (None: not)."""
    import cv2

    def detect(threshold: int):
        orb = cv2.ORB_create(nfeatures=max_features, scaleFactor=1.2, nlevels=levels, fastThreshold=threshold)
        return orb.detectAndCompute(gray, None)

    keypoints, descriptors = detect(fast_threshold)
    if low_texture_threshold is not None and low_texture_threshold < fast_threshold \
            and len(keypoints) < max_features // 4:
        keypoints, descriptors = detect(low_texture_threshold)
    if descriptors is None or not keypoints:
        return FeatureSet(np.zeros((0, 2)), np.zeros((0, 32), np.uint8), np.zeros(0, np.int64))
    return FeatureSet(cv2.KeyPoint_convert(keypoints).astype(np.float64), descriptors,
                      np.array([k.octave for k in keypoints], np.int64))


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


_POPCOUNT = np.array([bin(i).count('1') for i in range(256)], np.uint8)


def hamming_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances (P,) int64 between the rows of two (P, words) unsigned integer arrays of
    the same dtype (descriptors as uint8 bytes, or as `_descriptor_words`)."""
    xor = np.bitwise_xor(a, b)
    if not hasattr(np, 'bitwise_count'):   # numpy < 2.0
        return _POPCOUNT[xor.view(np.uint8)].sum(axis=1, dtype=np.int64)
    bits = np.bitwise_count(xor)
    total = bits[:, 0].astype(np.int64)
    for column in range(1, bits.shape[1]):   # a loop over the few words: faster than sum(axis=1)
        total += bits[:, column]
    return total


def _descriptor_words(descriptors: np.ndarray) -> np.ndarray:
    """(N, bytes / 8) uint64 view of (N, bytes) uint8 descriptors when the rows allow it (a
    gather of 4 words is several times faster than one of 32 bytes), else the bytes."""
    descriptors = np.ascontiguousarray(descriptors)
    if descriptors.ndim == 2 and descriptors.shape[1] % 8 == 0:
        return descriptors.view(np.uint64)
    return descriptors


def _candidate_pairs(query_pixels: np.ndarray, predicted: np.ndarray, radius: float,
                     query_octaves: np.ndarray | None = None,
                     train_octaves: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every (query index, train index) whose query keypoint lies within `radius` pixels of the
    train feature's predicted pixel (and, given both octave arrays, whose octaves differ by at
    most one), grouped by train index (ascending).

    The query keypoints are bucketed in a grid of radius/2 cells and sorted by cell; a
    prediction reads the five cell rows its circle spans, in each only the run of cells under
    the circle's chord there (one contiguous range of the sorted keypoints per row), so the
    pairs tested are 1.4x those within the circle (tum_fr1_rpy) instead of about 2.9x with the
    3x3 radius-sized cells before (session 16)."""
    rows_each_side = 2
    cell = radius / rows_each_side
    margin = 2 * rows_each_side                                # empty cells around the keypoints
    qx, qy = np.ascontiguousarray(query_pixels[:, 0]), np.ascontiguousarray(query_pixels[:, 1])
    query_col = (qx // cell).astype(np.int64) + margin
    query_row = (qy // cell).astype(np.int64) + margin
    cols, rows = int(query_col.max()) + margin + 1, int(query_row.max()) + margin + 1
    cell_of_query = query_row * cols + query_col
    order = np.argsort(cell_of_query, kind='stable')
    counts_per_cell = np.bincount(cell_of_query, minlength=rows * cols)
    end_per_cell = np.cumsum(counts_per_cell)
    known = np.flatnonzero(np.isfinite(predicted).all(axis=1))
    px, py = predicted[known, 0], predicted[known, 1]
    train_row = (py // cell).astype(np.int64) + margin
    inside = ((train_row >= rows_each_side) & (train_row < rows - rows_each_side)
              & (px >= -radius) & (px < (cols - 2 * margin) * cell + radius))
    known, px, py, train_row = known[inside], px[inside], py[inside], train_row[inside]
    band = train_row[:, None] + np.arange(-rows_each_side, rows_each_side + 1)      # (N, 5) cell rows
    band_top = (band - margin) * cell
    nearest_dy = np.maximum(np.maximum(band_top - py[:, None], py[:, None] - band_top - cell), 0.0)
    half_chord = np.sqrt(np.maximum(radius * radius - nearest_dy * nearest_dy, 0.0))
    first_col = np.clip(((px[:, None] - half_chord) // cell).astype(np.int64) + margin, 0, cols - 1)
    last_col = np.clip(((px[:, None] + half_chord) // cell).astype(np.int64) + margin, 0, cols - 1)
    first_cell, last_cell = band * cols + first_col, band * cols + last_col
    end = end_per_cell[last_cell].ravel()
    start = (end_per_cell[first_cell] - counts_per_cell[first_cell]).ravel()
    counts = end - start
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    qi = order[np.arange(total) + np.repeat(start - (np.cumsum(counts) - counts), counts)]
    ti = np.repeat(np.repeat(known, band.shape[1]), counts)
    dx = qx[qi] - predicted[:, 0][ti]     # column by column: 5x faster than rows of 2
    dy = qy[qi] - predicted[:, 1][ti]
    keep = dx * dx + dy * dy <= radius * radius
    if query_octaves is not None and train_octaves is not None:
        keep &= np.abs(query_octaves[qi] - train_octaves[ti]) <= 1
    return qi[keep], ti[keep]


def match_guided(query: FeatureSet, train: FeatureSet, predicted: np.ndarray, radius_px: float,
                 ratio: float = 0.8, max_distance: int = 64) -> np.ndarray:
    """Matches (M, 2) of [query index, train index] searched only where each train feature is
    expected: `predicted` (N_train, 2) its pixel in the query image (NaN where unknown), the
    query keypoints within `radius_px` of it its candidates. The closest candidate wins if it
    is within `max_distance` bits and passes Lowe's ratio test against the second closest (ties:
    the lower query index); each query feature is used at most once (the closest train feature
    wins). The cost grows with the candidates, not with N_query x N_train as in
    `match_features`. When both sets know their octaves, a candidate's must be within one of
    the train feature's."""
    if len(query) == 0 or len(train) == 0:
        return np.zeros((0, 2), np.int64)
    qi, ti = _candidate_pairs(query.keypoints, np.asarray(predicted, np.float64), float(radius_px),
                              query.octaves, train.octaves)
    if len(qi) == 0:
        return np.zeros((0, 2), np.int64)
    distance = hamming_distances(_descriptor_words(query.descriptors)[qi], _descriptor_words(train.descriptors)[ti])
    first = np.flatnonzero(np.r_[True, ti[1:] != ti[:-1]])             # candidates come grouped by train
    big = np.int64(1) << 32
    key = distance * big + qi                                         # the closest, then the lower query index
    best_key = np.minimum.reduceat(key, first)
    is_best = key == np.repeat(best_key, np.diff(np.r_[first, len(ti)]))   # a query appears once per group
    second = np.minimum.reduceat(np.where(is_best, np.iinfo(np.int64).max, key), first) // big  # huge if alone
    best, best_query = best_key // big, best_key % big
    keep = (best <= max_distance) & (best < ratio * second)
    table = np.stack([best_query[keep], ti[first[keep]], best[keep]], axis=1)
    table = table[np.lexsort((table[:, 2], table[:, 0]))]              # by query feature, closest first
    _, unique = np.unique(table[:, 0], return_index=True)
    return table[unique][:, :2].astype(np.int64)
