"""One frame's object observations: labelled cells lifted to 3D with the depth.

Input per frame: category probabilities per cell of a grid (Hc, Wc, K + 1) (e.g. the
stride-32 cells of the frame encoder, `Vocabulary.probabilities` of its ImageNet logits),
metric depth (H, W) at the model input size (H = Hc * sy, W = Wc * sx), K at that size and
the camera pose T_map_cam (4x4, optical frame, metres).

Cells are labelled (`Vocabulary.label_cells`), grouped into 4-connected components of one
category, and each component becomes an `ObjectObservation`: the component's pixels are
lifted to 3D with their depth (NaN, inf and <= 0 ignored), the foreground kept (within a
depth band around a low percentile of the component's depth, and there the run of depths
with no gap: a cell is 16 or 32 px wide and also holds what lies behind the object; with the
map's up direction known, the surface the object stands on is left out too, and so is the
frame's floor: a namer trained on flat-coloured rendered floors names real carpets and wooden
floors "trash bin" and "teddy bear"), and summarised
robustly in `map`: box = per-axis percentiles of the points; centroid = the centre of the
observation's own footprint box (`objects/footprint.py`) at the box's middle height when the
map's vertical axis is known (default `centre='footprint'`: it does not move when the map is
turned about up, the axis-aligned box's centre does), else the box centre (`centre='box'`); the
per-axis median of the points with `centre='median'` (the median sits on the visible surface,
the box centre nearer the object's middle; measured on rendered rooms, docs/objects.md). The centroid is also stored in the frame of the observation's keyframe, so
a pose-graph correction of that keyframe can move it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from geovr_ros.geometry import ShapeError, depth_to_points, floor_distance, invert_pose, transform_points
from geovr_ros.objects.footprint import (DIRECTIONS, column_quantile, column_quantiles, fit_footprint_box,
                                         footprint_reach, reach_from)
from geovr_ros.objects.vocabulary import Vocabulary

__all__ = ['ObjectObservation', 'ObservationConfig', 'cell_grid_shape', 'connected_components', 'reach_down',
           'extract_observations']


@dataclass(frozen=True)
class ObservationConfig:
    """How cells become observations.

    min_score: cell labelling threshold (None: the vocabulary's `min_score`).
    min_points: valid foreground pixels an observation needs.
    foreground_percentile: the component's foreground depth is this percentile of its
        pixel depths (low: the object is in front of what the cell also shows).
    depth_band, depth_band_relative: pixels within max(band, relative * foreground depth)
        metres of the foreground depth are the object.
    box_percentiles: (low, high) per-axis percentiles of the object's points that bound its
        box (robust to stray pixels; 0 and 100 would be the exact hull).
    max_depth: pixels farther than this (metres) are ignored.
    centre: 'footprint' (the centroid is the centre of the observation's footprint box, at the
        box's middle height; the box centre without a vertical axis), 'box' (the box centre) or
        'median' (per-axis median of the points).
    depth_gap, depth_gap_relative: within the band, the object is the run of depths around
        the foreground depth with no gap wider than max(gap, relative * depth) metres between
        neighbours (a wall or another object behind it in the same cells is cut off; 0 and 0:
        the band alone).
    support_band: with the map's vertical axis known, the points within this many metres of
        the observation's lowest ones are the surface it stands on (the floor or a table
        around a small object, the floor between a table's legs), left out of its footprint
        when enough points lie above them; its box then reaches down to that surface (0: off;
        measured in docs/objects.md).
    floor_band, floor_reach: with the map's vertical axis known, the frame's floor is the
        lowest large horizontal surface of its depth (`geometry.floor_distance`: pixels whose
        normals point up, the lowest dense layer of their heights, refused when much lies
        below it), every pixel up to `floor_band` above it is left out of every observation
        (the floor is not an object, whatever a namer calls it), and an observation whose
        lowest point is within `floor_reach` of the floor stands on it: its box reaches down
        to it. floor_band 0: off
        (docs/objects.md, "The floor is not an object").
    """

    min_score: float | None = None
    min_points: int = 20
    foreground_percentile: float = 30.0
    depth_band: float = 0.5
    depth_band_relative: float = 0.25
    box_percentiles: tuple[float, float] = (5.0, 95.0)
    max_depth: float = 10.0
    centre: str = 'footprint'
    depth_gap: float = 0.05
    depth_gap_relative: float = 0.02
    support_band: float = 0.03
    floor_band: float = 0.03
    floor_reach: float = 0.2

    def __post_init__(self):
        if self.centre not in ('footprint', 'box', 'median'):
            raise ValueError(f"centre must be 'footprint', 'box' or 'median', got {self.centre!r}")
        lo, hi = self.box_percentiles
        if not 0 <= lo < hi <= 100:
            raise ValueError(f'box_percentiles must satisfy 0 <= low < high <= 100, got {self.box_percentiles}')
        if not 0 <= self.foreground_percentile <= 100:
            raise ValueError(f'foreground_percentile must be in [0, 100], got {self.foreground_percentile}')
        if self.min_points < 1:
            raise ValueError(f'min_points must be >= 1, got {self.min_points}')
        if self.support_band < 0:
            raise ValueError(f'support_band must be >= 0, got {self.support_band}')
        if self.floor_band < 0 or self.floor_reach < 0:
            raise ValueError(f'floor_band ({self.floor_band}) and floor_reach ({self.floor_reach}) must be >= 0')
        if self.depth_gap < 0 or self.depth_gap_relative < 0:
            raise ValueError(f'depth_gap ({self.depth_gap}) and depth_gap_relative ({self.depth_gap_relative}) '
                             f'must be >= 0')
        if self.depth_band <= 0 or self.depth_band_relative < 0 or self.max_depth <= 0:
            raise ValueError(f'depth_band ({self.depth_band}) and max_depth ({self.max_depth}) must be > 0, '
                             f'depth_band_relative ({self.depth_band_relative}) >= 0')


@dataclass(frozen=True)
class ObjectObservation:
    """One object seen in one frame.

    centroid, box_min, box_max: (3,) metres in `map` (box axis-aligned in map);
    centroid_keyframe: (3,) the centroid in the optical frame of keyframe `keyframe_id`;
    score: mean category probability over the component's cells; cells: (M,) flat indices
    of the component's cells in the (Hc, Wc) grid; n_points: foreground pixels used;
    colour: (3,) median sRGB in [0, 1] of those pixels (NaN when no image was given);
    reach_low, reach_high: (N,) metres the points reach from the centroid along each footprint
    direction of the floor plane (`objects/footprint.py`; NaN when the map's vertical axis is
    unknown); floor: the coordinate on the map's vertical axis of the floor this frame saw
    (NaN: not seen, or no vertical axis).
    """

    category: str
    score: float
    centroid: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    keyframe_id: int
    centroid_keyframe: np.ndarray
    stamp: float
    cells: np.ndarray
    n_points: int
    colour: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    reach_low: np.ndarray = field(default_factory=lambda: np.full(DIRECTIONS, np.nan))
    reach_high: np.ndarray = field(default_factory=lambda: np.full(DIRECTIONS, np.nan))
    floor: float = float('nan')

    @property
    def extent(self) -> np.ndarray:
        """(3,) box size along map x, y, z, metres."""
        return self.box_max - self.box_min


def cell_grid_shape(n_cells: int, image_shape: tuple[int, int]) -> tuple[int, int]:
    """(Hc, Wc) of a row-major grid of `n_cells` square cells tiling an (H, W) image exactly
    (e.g. 140 cells on 320x448 -> (10, 14), stride 32). Raises ShapeError when none does."""
    height, width = int(image_shape[0]), int(image_shape[1])
    if n_cells < 1:
        raise ShapeError(f'n_cells must be >= 1, got {n_cells}')
    stride = int(round(np.sqrt(height * width / n_cells)))
    for s in (stride, stride - 1, stride + 1):
        if s >= 1 and height % s == 0 and width % s == 0 and (height // s) * (width // s) == n_cells:
            return height // s, width // s
    raise ShapeError(f'{n_cells} cells do not tile a {height}x{width} image with square cells')


def connected_components(labels: np.ndarray, background: int) -> tuple[np.ndarray, int]:
    """4-connected components of equal, non-background labels of a grid (Hc, Wc).

    Returns (components (Hc, Wc) int: 0..n-1, -1 on background; n). Pure numpy: minimum
    label propagation with pointer jumping (grids here are small).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ShapeError(f'labels must be a 2D grid, got shape {labels.shape}')
    fg = labels != background
    size = labels.size
    ids = np.arange(size).reshape(labels.shape)
    cur = np.where(fg, ids, size)
    down = fg[1:] & fg[:-1] & (labels[1:] == labels[:-1])  # (Hc-1, Wc): cell and the one below
    right = fg[:, 1:] & fg[:, :-1] & (labels[:, 1:] == labels[:, :-1])
    while True:
        new = cur.copy()
        new[1:] = np.where(down, np.minimum(new[1:], cur[:-1]), new[1:])
        new[:-1] = np.where(down, np.minimum(new[:-1], cur[1:]), new[:-1])
        new[:, 1:] = np.where(right, np.minimum(new[:, 1:], cur[:, :-1]), new[:, 1:])
        new[:, :-1] = np.where(right, np.minimum(new[:, :-1], cur[:, 1:]), new[:, :-1])
        flat = new.reshape(-1)
        flat[fg.reshape(-1)] = flat[flat[fg.reshape(-1)]]  # pointer jumping: a root's root
        if np.array_equal(new, cur):
            break
        cur = new
    roots, inverse = np.unique(cur[fg], return_inverse=True)
    out = np.full(labels.shape, -1, dtype=np.int64)
    out[fg] = inverse
    return out, len(roots)


def extract_observations(probabilities: np.ndarray, depth: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray,
                         keyframe_id: int, stamp: float, vocabulary: Vocabulary,
                         config: ObservationConfig = ObservationConfig(),
                         T_map_keyframe: np.ndarray | None = None,
                         vertical_axis: int | None = None, rgb: np.ndarray | None = None) -> list[ObjectObservation]:
    """Observations of one frame.

    probabilities: (Hc, Wc, K + 1) per cell (K categories of `vocabulary` + background);
    depth: (H, W) metres with H, W multiples of Hc, Wc; K: (3, 3) at (H, W);
    T_map_cam: (4, 4) camera-to-map of this frame; T_map_keyframe: (4, 4) pose of keyframe
    `keyframe_id` (None: this frame is that keyframe); vertical_axis: the map axis that
    points up or down (`ObjectMapConfig.vertical_axis`; None: unknown, no support surface nor floor is
    removed); rgb: (H, W, 3) the frame's image at the depth's size (uint8, or floats in [0, 1]),
    for the observations' colours (None: unknown). Raises ShapeError on shapes that disagree
    and ValueError on a non-finite pose.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    if probabilities.ndim != 3 or probabilities.shape[-1] != len(vocabulary) + 1:
        raise ShapeError(f'probabilities must be (Hc, Wc, {len(vocabulary) + 1}), got {probabilities.shape}')
    if depth.ndim != 2:
        raise ShapeError(f'depth must be (H, W), got {depth.shape}')
    hc, wc = probabilities.shape[:2]
    if depth.shape[0] % hc or depth.shape[1] % wc:
        raise ShapeError(f'depth {depth.shape} is not a whole number of cells of the {hc}x{wc} grid')
    sy, sx = depth.shape[0] // hc, depth.shape[1] // wc
    T_map_cam = _pose(T_map_cam, 'T_map_cam')
    T_map_kf = T_map_cam if T_map_keyframe is None else _pose(T_map_keyframe, 'T_map_keyframe')
    T_kf_map = invert_pose(T_map_kf)

    labels, _ = vocabulary.label_cells(probabilities, config.min_score)
    components, n = connected_components(labels, vocabulary.background)
    if n == 0:
        return []
    points = depth_to_points(depth, K)  # (H, W, 3) camera frame, NaN where invalid
    z = points[..., 2]
    valid = np.isfinite(z) & (z <= config.max_depth)
    up = _up_direction(T_map_cam, vertical_axis)  # (3,) or None
    floor = None   # the floor's height along up in map (None: not seen, or up unknown)
    if up is not None and config.floor_band > 0:
        up_camera = T_map_cam[:3, :3].T @ up
        seen = floor_distance(depth, K, up_camera)
        if seen is not None:
            with np.errstate(invalid='ignore'):   # NaN heights (invalid pixels) stay invalid
                valid &= points @ up_camera > config.floor_band - seen.distance
            floor = float(up @ T_map_cam[:3, 3]) - seen.distance
    colours = _colours(rgb, depth.shape).reshape(-1, 3)   # (H W, 3) in [0, 1], NaN without an image
    points = points.reshape(-1, 3)
    # each component's valid pixels, in image order: one stable sort of the pixels by component
    pixel_component = np.where(valid, np.repeat(np.repeat(components, sy, axis=0), sx, axis=1), -1).reshape(-1)
    by_component = np.argsort(pixel_component, kind='stable')
    ends = np.cumsum(np.bincount(pixel_component + 1, minlength=n + 1))   # component c: ends[c]:ends[c + 1]
    observations = []
    for c in range(n):
        if ends[c + 1] - ends[c] < config.min_points:
            continue
        mask = components == c  # (Hc, Wc)
        label = int(labels[mask][0])
        pixels = by_component[ends[c]:ends[c + 1]]
        pts, rgbs = points[pixels], colours[pixels]  # (P, 3) each
        front = column_quantile(pts[:, 2], config.foreground_percentile / 100)
        band = max(config.depth_band, config.depth_band_relative * front)
        keep = np.abs(pts[:, 2] - front) <= band
        pts, rgbs = pts[keep], rgbs[keep]
        if config.depth_gap > 0 and len(pts):
            keep = _depth_cluster(pts[:, 2], front, config.depth_gap, config.depth_gap_relative)
            pts, rgbs = pts[keep], rgbs[keep]
        if len(pts) < config.min_points:
            continue
        in_map = transform_points(T_map_cam, pts)  # (P, 3)
        support = None
        if up is not None and config.support_band > 0:
            heights = in_map @ up
            support = _support_height(heights, config.support_band, config.min_points)
            if support is not None:
                above = heights > support + config.support_band
                in_map, rgbs = in_map[above], rgbs[above]
        box_min, box_max = column_quantiles(in_map, tuple(p / 100 for p in config.box_percentiles))
        if support is not None:  # the object stands on the surface: its box reaches down to it
            reach_down(box_min, box_max, up, support)
        if floor is not None and min(box_min @ up, box_max @ up) - floor <= config.floor_reach:
            reach_down(box_min, box_max, up, floor)   # its lowest point is near the floor: it stands on it
        centroid = np.median(in_map, axis=0) if config.centre == 'median' else (box_min + box_max) / 2
        reach = (np.full(DIRECTIONS, np.nan),) * 2
        if vertical_axis is not None:
            reach = footprint_reach(in_map, centroid, vertical_axis, config.box_percentiles)
            if config.centre == 'footprint':   # the centre of its own footprint box, the reaches from there
                own = fit_footprint_box(centroid[None], reach[0][None], reach[1][None], vertical_axis,
                                        (box_min[vertical_axis], box_max[vertical_axis]), (0.0, 1.0))
                reach = reach_from(reach, own.centre - centroid, vertical_axis)
                centroid = own.centre
        observations.append(ObjectObservation(
            category=vocabulary.names[label], score=float(probabilities[..., label][mask].mean()),
            centroid=centroid, box_min=np.minimum(box_min, centroid), box_max=np.maximum(box_max, centroid),
            keyframe_id=int(keyframe_id), centroid_keyframe=transform_points(T_kf_map, centroid),
            stamp=float(stamp), cells=np.flatnonzero(mask), n_points=int(len(pts)),
            colour=np.median(rgbs, axis=0) if len(rgbs) else np.full(3, np.nan),
            reach_low=reach[0], reach_high=reach[1],
            floor=float('nan') if floor is None else floor * float(up[vertical_axis])))
    return observations


def _colours(rgb: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) float colours in [0, 1] of an image at the depth's `shape` (NaN for None)."""
    if rgb is None:
        return np.full(tuple(shape) + (3,), np.nan)
    rgb = np.asarray(rgb)
    if rgb.shape != tuple(shape) + (3,):
        raise ShapeError(f'rgb must be {tuple(shape) + (3,)} (the depth\'s size), got {rgb.shape}')
    return rgb / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)


def _up_direction(T_map_cam: np.ndarray, vertical_axis: int | None) -> np.ndarray | None:
    """(3,) unit vector up along the map's vertical axis, its sign from the camera (optical y
    points down); None when the axis is unknown or the camera looks too steeply up or down
    (its y axis within 60 degrees of horizontal) to tell."""
    if vertical_axis is None:
        return None
    down = T_map_cam[vertical_axis, 1]  # the optical y axis along the vertical axis
    if abs(down) < 0.5:
        return None
    up = np.zeros(3)
    up[vertical_axis] = -np.sign(down)
    return up


def reach_down(box_min: np.ndarray, box_max: np.ndarray, up: np.ndarray, height: float) -> None:
    """Stretches a map box (3,) + (3,) in place along the vertical axis down (or up) to `height`
    metres along `up` (+-1 on the vertical axis, 0 elsewhere: `_up_direction`)."""
    axis = int(np.argmax(np.abs(up)))
    surface = height * up[axis]   # the height's coordinate on the vertical axis
    box_min[axis], box_max[axis] = min(box_min[axis], surface), max(box_max[axis], surface)


def _support_height(heights: np.ndarray, band: float, min_points: int) -> float | None:
    """The height (m) of the surface under an observation: its lowest heights (the 1st
    percentile) when at least max(min_points, 20 %) of the heights (P,) lie more than `band`
    above them (else the lowest layer is the object itself, e.g. a rug or a table top)."""
    base = float(column_quantile(heights, 0.01))
    above = int(np.count_nonzero(heights > base + band))
    return base if above >= max(min_points, 0.2 * len(heights)) else None


def _depth_cluster(z: np.ndarray, front: float, gap: float, relative: float) -> np.ndarray:
    """Mask (P,) of the depths z (P,) in the cluster around `front`: the sorted depths
    split where two neighbours differ by more than max(gap, relative * depth)."""
    order = np.argsort(z)
    zs = z[order]
    breaks = np.flatnonzero(np.diff(zs) > np.maximum(gap, relative * zs[:-1]))  # a break after index b
    at = int(np.searchsorted(zs, front))
    lo = breaks[breaks < at]
    hi = breaks[breaks >= at]
    start = int(lo[-1]) + 1 if len(lo) else 0
    stop = int(hi[0]) + 1 if len(hi) else len(zs)
    keep = np.zeros(len(z), bool)
    keep[order[start:stop]] = True
    return keep


def _pose(T, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f'{name} must be a finite 4x4 matrix, got shape {T.shape}')
    return T
