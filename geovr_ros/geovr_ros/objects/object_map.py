"""The 3D object map: observations fused into object instances in `map`.

An instance keeps the observations that support it (the most recent `max_observations`),
each as its centroid in its keyframe's optical frame plus its box relative to that centroid
(map axes). Everything an instance reports is computed from them:

- centroid: the score-weighted mean of the observations' centroids;
- box: per axis, the `box_quantiles` of the observations' box corners (low quantile of the
  minima, high quantile of the maxima: the union of partial views, robust to one stray view),
  what association compares; the box an instance reports takes `size_quantiles` when given;
- footprint box, with the vertical axis known: the same union along 36 directions of the
  floor plane, and the box turned about the vertical axis to the smallest footprint
  (`objects/footprint.py`): an object at an angle to the map's axes gets its own size, not its
  axis-aligned box's (the sizes answers give and the boxes RViz draws);
- confidence: the mean score of every observation ever fused times the view support
  n_views / (n_views + `views_half`): named once with score 0.9 gives 0.30, in 2 frames
  0.45, in 20 frames 0.82 (an object named in many frames is more certain than one named
  once; unlike a noisy-OR it does not saturate after a few views), times the detection rate
  n_views / (n_views + n_missed) when `negative_evidence` is on;
- standing on something, with the vertical axis known and its category in `on_floor`: its
  box (and centroid, its footprint box's height) reaches down to the surface under it, the
  top of another instance whose footprint holds its centroid or else the floor its views saw
  (each observation keeps the frame's floor below it): a floor lamp whose pole no cell
  named is its whole height, not a shade in the air. Read-time only: association compares
  the boxes the views gave;
- n_views: frames (distinct stamps) that saw it; first_seen, last_seen: their stamps;
- n_missed: frames that should have named it and did not (`note_missed`): its centroid in
  the image and in front of the camera, no nearer surface before it in that frame's depth, no
  farther than `miss_range` times the farthest distance it was named from. A thing named
  in 2 of the 12 views that looked at it is a naming error more often than an object.

Association: an observation joins the nearest instance of its category whose centroid is
within `max_distance` metres or whose box overlaps the observation's by `min_overlap` of the
smaller box's volume (or, with `vertical_axis` set, whose floor footprint overlaps so), unless
both have colours farther apart than `max_colour_distance` (a red chair beside a blue one);
otherwise it starts an instance. After each frame, instances of one
category that have come to overlap the same way are merged (the older id stays).

`relocate(keyframe_poses)` re-places every observation of a corrected keyframe
(centroid = T_map_keyframe @ centroid_keyframe), so instances move with the pose graph;
boxes keep their map-axis offsets (a pose-graph correction is a small rotation).
With a verifier (`ObjectMapConfig.verifier`, the vocabulary's `verifier:`; `objects/verifier.py`)
`instances()` gives each instance a belief, judged against the other instances, and leaves out
those under its threshold but each category's most believed one: a weak name inside a better-seen instance of another category, a name
given in 2 of the 12 views that looked, is most often the namer's error.
`room` holds the same keyframes' depth points (`objects/room.py`: the floor's outline); it is
cleared, relocated and saved with the map.

Thread-safe: frames may be added from one thread while another reads `instances()`.
"""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterable, Mapping

import numpy as np

from geovr_ros.geometry import invert_pose, project_points, transform_points
from geovr_ros.objects.colours import colour_distance, nearest_colours
from geovr_ros.objects.footprint import DIRECTIONS, OrientedBox, box_overlaps, column_quantile, fit_footprint_box
from geovr_ros.objects.observations import ObjectObservation, reach_down
from geovr_ros.objects.room import RoomFootprint
from geovr_ros.objects.verifier import InstanceVerifier

__all__ = ['ObjectInstance', 'ObjectMap', 'ObjectMapConfig', 'ObjectMapError', 'FORMAT', 'box_distance']

FORMAT = 'geovr_object_map'
VERSION = 1


class ObjectMapError(ValueError):
    """Saved object-map arrays that are not a whole, consistent map; names the key."""


@dataclass(frozen=True)
class ObjectMapConfig:
    """max_distance: metres between centroids to associate or merge, at least; size_fraction:
    the radius grows to this fraction of the longer of the two boxes' longest sides (partial
    views of a big object scatter in proportion to its size: the sofa of the HoloLens walk,
    seen from its end and from its front, lands 1.0-1.6 m apart); min_overlap: box
    intersection / smaller box volume to associate or merge; max_observations: kept per
    instance (the oldest go); min_views / min_confidence: the default filter of
    `instances()` (an instance seen in fewer frames is tentative); box_quantiles,
    views_half: see the module docstring; vertical_axis: the map axis that points up (or
    down), when known: two boxes whose footprints (the other two axes) overlap by
    `min_overlap` are then one object too (a lamp's shade and its foot; a table's top and
    its legs); None: the map's up direction is unknown and only 3D overlap counts.
    negative_evidence: the confidence is scaled by the detection rate (module docstring);
    min_detection_rate: the default filter of `instances()` on that rate, n_views / (n_views +
    n_missed);
    miss_margin: the fraction of the image's width and height at each border where a centroid
    does not count as in view; miss_range: see n_missed in the module docstring;
    miss_tolerance: metres, at least, by which the depth at the centroid's pixel may lie before
    it without hiding it (half the instance's longest side when that is more);
    max_colour_distance: two things of one category whose colours (`objects/colours.py`, HSV
    cone: shading moves a colour by up to about 0.3, red to blue is 1.6) lie farther apart are
    two objects; None: colours never part them.
    verifier: how much to believe each instance (`objects/verifier.py`; the vocabulary's
    `verifier:`): `instances()` sets each one's `belief` and leaves out those under its
    threshold (but, with its `keep_best`, each category's most believed); None: every
    instance is believed (belief None).
    on_floor: categories whose objects stand (the vocabulary's `on_floor`): with the vertical
    axis known, an instance of one reaches down to the surface under it (module docstring);
    (): none.
    size_quantiles: the quantiles of the views' box corners an instance reports as its box and
    footprint (what its size, its markers and the answers' closest points read, and the
    verifier weighs); association and merging still compare the `box_quantiles` box. None:
    `box_quantiles` (the vocabulary's `size_quantiles`; docs/objects.md, "An instance's box on
    a learned depth")."""

    max_distance: float = 0.5
    size_fraction: float = 1.0
    min_overlap: float = 0.3
    max_observations: int = 32
    min_views: int = 2
    min_confidence: float = 0.0
    box_quantiles: tuple[float, float] = (0.1, 0.9)
    vertical_axis: int | None = None
    views_half: float = 2.0
    negative_evidence: bool = True
    min_detection_rate: float = 0.0
    miss_margin: float = 0.1
    miss_range: float = 1.5
    miss_tolerance: float = 0.3
    max_colour_distance: float | None = 0.6
    verifier: InstanceVerifier | None = None
    on_floor: tuple[str, ...] = ()
    size_quantiles: tuple[float, float] | None = None

    def __post_init__(self):
        if isinstance(self.on_floor, str) or not all(isinstance(c, str) for c in self.on_floor):
            raise ValueError(f'on_floor must be a tuple of category names, got {self.on_floor!r}')
        object.__setattr__(self, 'on_floor', tuple(self.on_floor))   # a saved map's list
        if self.vertical_axis not in (None, 0, 1, 2):
            raise ValueError(f'vertical_axis must be None, 0, 1 or 2, got {self.vertical_axis!r}')
        if not 0 <= self.size_fraction <= 2:
            raise ValueError(f'size_fraction must be in [0, 2], got {self.size_fraction}')
        if self.max_distance <= 0 or not 0 < self.min_overlap <= 1:
            raise ValueError(f'max_distance must be > 0 and min_overlap in (0, 1], got '
                             f'{self.max_distance}, {self.min_overlap}')
        if self.max_observations < 1 or self.min_views < 1:
            raise ValueError(f'max_observations ({self.max_observations}) and min_views ({self.min_views}) '
                             f'must be >= 1')
        if not self.views_half > 0:
            raise ValueError(f'views_half must be > 0, got {self.views_half}')
        if self.max_colour_distance is not None and not self.max_colour_distance >= 0:
            raise ValueError(f'max_colour_distance must be None or >= 0, got {self.max_colour_distance}')
        if not 0 <= self.min_detection_rate <= 1:
            raise ValueError(f'min_detection_rate must be in [0, 1], got {self.min_detection_rate}')
        if not 0 <= self.miss_margin < 0.5 or not self.miss_range > 0 or not self.miss_tolerance >= 0:
            raise ValueError(f'miss_margin must be in [0, 0.5), miss_range > 0 and miss_tolerance >= 0, got '
                             f'{self.miss_margin}, {self.miss_range} and {self.miss_tolerance}')
        for name in ('box_quantiles', 'size_quantiles'):
            quantiles = getattr(self, name)
            if quantiles is None and name == 'size_quantiles':
                continue
            if len(quantiles) != 2 or not 0 <= quantiles[0] <= quantiles[1] <= 1:
                raise ValueError(f'{name} must satisfy 0 <= low <= high <= 1, got {quantiles}')
            object.__setattr__(self, name, tuple(float(q) for q in quantiles))   # a saved map's list


@dataclass(frozen=True)
class ObjectInstance:
    """One object. centroid, box_min, box_max: (3,) metres in `map` (box axis-aligned);
    confidence in [0, 1]; first_seen, last_seen: stamps (s); keyframes: ids supporting it;
    n_missed: frames that should have named it and did not (the module docstring); colour:
    (3,) median sRGB in [0, 1] of its observations' colours, or None when none was seen or
    fewer than half of its views agree with it (`_consistent_colour`); footprint_box: the box
    turned about the map's vertical axis to the object's footprint (None: the vertical axis is
    unknown; `oriented_box` then gives the axis-aligned box); belief: in (0, 1), how likely it is
    an object of its category, from the map's verifier (None: no verifier); doubted: its belief
    is under the verifier's threshold (kept as its category's most believed, or asked for)."""

    instance_id: int
    category: str
    confidence: float
    centroid: np.ndarray
    box_min: np.ndarray
    box_max: np.ndarray
    n_views: int
    first_seen: float
    last_seen: float
    keyframes: tuple[int, ...]
    n_missed: int = 0
    colour: np.ndarray | None = None
    footprint_box: OrientedBox | None = None
    belief: float | None = None
    doubted: bool = False

    @property
    def extent(self) -> np.ndarray:
        """(3,) axis-aligned box size along map x, y, z, metres."""
        return self.box_max - self.box_min

    @property
    def box_centre(self) -> np.ndarray:
        return (self.box_min + self.box_max) / 2

    @property
    def oriented_box(self) -> OrientedBox:
        """The object's own box: the footprint box, else the axis-aligned one. Its sizes are
        what the answers measure."""
        return self.footprint_box or OrientedBox.axis_aligned(self.box_min, self.box_max)


@dataclass
class _Track:
    """Mutable state of one instance (under the map's lock). Arrays have one row per kept
    observation: keyframe (n,), stamp (n,), score (n,), point_kf (n, 3), point_map (n, 3),
    offset_min / offset_max (n, 3) box corners relative to point_map, colour (n, 3) sRGB
    (NaN: not seen), reach_low / reach_high (n, DIRECTIONS) footprint reaches from point_map
    (NaN: no vertical axis), floor_drop (n,) metres from point_map down the vertical axis to
    the floor the frame saw (NaN: none seen; kept relative, so that it moves with point_map)."""

    instance_id: int
    category: str
    n_views: int
    first_seen: float
    last_seen: float
    score_sum: float
    obs_total: int
    n_missed: int = 0
    last_missed: float = float('nan')   # the stamp of the last frame counted in n_missed
    keyframe: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    stamp: np.ndarray = field(default_factory=lambda: np.zeros(0))
    score: np.ndarray = field(default_factory=lambda: np.zeros(0))
    point_kf: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    point_map: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    offset_min: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    offset_max: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    colour: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    reach_low: np.ndarray = field(default_factory=lambda: np.zeros((0, DIRECTIONS)))
    reach_high: np.ndarray = field(default_factory=lambda: np.zeros((0, DIRECTIONS)))
    floor_drop: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cached: ObjectInstance | None = None  # the reported instance; None after any change
    cached_summary: tuple | None = None  # what association compares (`summary`); None after any change

    def append(self, rows: dict[str, np.ndarray], keep: int) -> None:
        for key, value in rows.items():
            setattr(self, key, np.concatenate([getattr(self, key), value])[-keep:])
        self.changed()

    def changed(self) -> None:
        """Drops what was summarised of the observations (call after any change)."""
        self.cached = None
        self.cached_summary = None

    def rows(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in _ROW_KEYS}

    def centroid(self) -> np.ndarray:
        w = np.maximum(self.score, 1e-6)
        return (w[:, None] * self.point_map).sum(0) / w.sum()

    def floor(self, vertical_axis: int) -> float | None:
        """The floor's coordinate on the vertical axis under this instance (the median of its
        views' floors), None when no view saw one."""
        seen = np.isfinite(self.floor_drop)
        if not seen.any():
            return None
        return float(np.median(self.point_map[seen, vertical_axis] - self.floor_drop[seen]))

    def box(self, quantiles: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        lo = column_quantile(self.point_map + self.offset_min, quantiles[0])
        hi = column_quantile(self.point_map + self.offset_max, quantiles[1])
        c = self.centroid()
        return np.minimum(lo, c), np.maximum(hi, c)

    def summary(self, config: 'ObjectMapConfig') -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(centroid, box_min, box_max, colour or None): what association compares, without
        the instance's footprint (read-only arrays, kept until the next change)."""
        if self.cached_summary is None:
            lo, hi = self.box(config.box_quantiles)
            centroid, colour = self.centroid(), _consistent_colour(self.colour)
            for array in (centroid, lo, hi) + (() if colour is None else (colour,)):
                array.flags.writeable = False  # shared by every reader until the next change
            self.cached_summary = (centroid, lo, hi, colour)
        return self.cached_summary

    def instance(self, config: 'ObjectMapConfig') -> ObjectInstance:
        if self.cached is None:
            centroid, lo, hi, colour = self.summary(config)
            quantiles = config.box_quantiles
            if config.size_quantiles is not None and config.size_quantiles != quantiles:
                quantiles = config.size_quantiles
                lo, hi = self.box(quantiles)
                lo.flags.writeable = hi.flags.writeable = False
            mean_score = self.score_sum / max(self.obs_total, 1)
            support = self.n_views / (self.n_views + config.views_half)
            if config.negative_evidence:
                support *= self.n_views / (self.n_views + self.n_missed)
            v = config.vertical_axis
            footprint = None if v is None else fit_footprint_box(
                self.point_map, self.reach_low, self.reach_high, v, (lo[v], hi[v]), quantiles, centroid)
            if footprint is not None:
                for array in (footprint.centre, footprint.axes, footprint.size):
                    array.flags.writeable = False  # shared by every reader until the next change
            self.cached = ObjectInstance(self.instance_id, self.category, float(mean_score * support),
                                         centroid, lo, hi, self.n_views, self.first_seen, self.last_seen,
                                         tuple(int(k) for k in np.unique(self.keyframe)), self.n_missed, colour,
                                         footprint)
        return self.cached


def _consistent_colour(colours: np.ndarray) -> np.ndarray | None:
    """The median of the views' colours (n, 3) (NaN rows: not seen) when at least half of the
    views that saw one name the same colour as it (`nearest_colours`); else None: cells named
    alike over different things (a misnamed instance) have no colour of their own."""
    seen = colours[np.all(np.isfinite(colours), axis=1)]
    if not len(seen):
        return None
    median = np.median(seen, axis=0)
    names = nearest_colours(np.vstack([seen, median]))   # the views' terms, then the median's
    return median if 2 * np.count_nonzero(names[:-1] == names[-1]) >= len(seen) else None


_ROW_KEYS = ('keyframe', 'stamp', 'score', 'point_kf', 'point_map', 'offset_min', 'offset_max', 'colour',
             'reach_low', 'reach_high', 'floor_drop')
_ROW_WIDTHS = {'point_kf': 3, 'point_map': 3, 'offset_min': 3, 'offset_max': 3, 'colour': 3,
               'reach_low': DIRECTIONS, 'reach_high': DIRECTIONS}   # (n, width) rows; the others (n,)
_MAY_BE_NAN = ('colour', 'reach_low', 'reach_high', 'floor_drop')   # not seen; no vertical axis


SUPPORT_TOLERANCE = 0.1   # metres a support's top may reach above the bottom of what stands on it


def stand_on_surfaces(instances: list[ObjectInstance], floors: list[float | None], vertical_axis: int,
                      categories: Iterable[str]) -> list[ObjectInstance]:
    """`instances` with each one of `categories` whose box ends above the surface under it
    stretched down to that surface: the highest top, at most SUPPORT_TOLERANCE above its
    bottom, of another instance whose footprint holds its centroid (a lamp on a desk), else
    its floor. floors: per instance, the floor's coordinate on `vertical_axis` (None: unknown,
    left as it is). Its centroid moves to the middle of its new height, its footprint box
    takes that height; the others are returned as they are."""
    categories = set(categories)
    v = vertical_axis
    out = list(instances)
    standing = [k for k, (inst, floor) in enumerate(zip(instances, floors))
                if inst.category in categories and floor is not None]
    if not standing:
        return out
    lows = np.array([i.box_min[v] for i in instances])
    highs = np.array([i.box_max[v] for i in instances])
    boxes = [i.oriented_box for i in instances]
    centres = np.array([b.centre for b in boxes])             # (n, 3)
    axes = np.array([b.axes for b in boxes])                  # (n, 3, 3) columns: the box's axes
    half = np.array([b.size for b in boxes]) / 2              # (n, 3)
    flat = np.abs(axes[:, v, :]) < 0.5                        # (n, 3): the box axes in the floor plane
    for k in standing:
        inst, floor = instances[k], float(floors[k])
        up = 1.0 if inst.centroid[v] >= floor else -1.0       # the axis's direction of up
        bottom = min(up * (lows[k] - floor), up * (highs[k] - floor))   # metres above the floor
        if bottom <= 0:
            continue
        tops = np.maximum(up * (lows - floor), up * (highs - floor))
        along = np.einsum('nij,ni->nj', axes, inst.centroid - centres)  # the centroid in each box's axes
        holds = np.all((np.abs(along) <= half) | ~flat, axis=1)
        under = holds & (tops > 0) & (tops <= bottom + SUPPORT_TOLERANCE)
        under[k] = False
        surface = float(tops[under].max()) if under.any() else 0.0
        if surface >= bottom:
            continue
        lo, hi = inst.box_min.copy(), inst.box_max.copy()
        reach_down(lo, hi, np.eye(3)[v] * up, up * floor + surface)
        centroid = inst.centroid.copy()
        centroid[v] = (lo[v] + hi[v]) / 2
        footprint = inst.footprint_box
        if footprint is not None:   # its third axis is the vertical one (`fit_footprint_box`)
            centre, size = footprint.centre.copy(), footprint.size.copy()
            centre[v], size[2] = centroid[v], hi[v] - lo[v]
            footprint = OrientedBox(centre, footprint.axes, size)
        out[k] = replace(inst, centroid=centroid, box_min=lo, box_max=hi, footprint_box=footprint)
    return out


def box_distance(a: ObjectInstance, b: ObjectInstance) -> tuple[float, np.ndarray, np.ndarray]:
    """(distance, point on a, point on b) between the closest points of two axis-aligned
    boxes (0 when they touch or overlap)."""
    lo, hi = np.maximum(a.box_min, b.box_min), np.minimum(a.box_max, b.box_max)
    overlap = lo <= hi  # per axis
    a_below = a.box_max < b.box_min
    pa = np.where(overlap, (lo + hi) / 2, np.where(a_below, a.box_max, a.box_min))
    pb = np.where(overlap, (lo + hi) / 2, np.where(a_below, b.box_min, b.box_max))
    return float(np.linalg.norm(pa - pb)), pa, pb


class ObjectMap:
    """Object instances fused from observations (see the module docstring)."""

    def __init__(self, config: ObjectMapConfig = ObjectMapConfig()):
        self._lock = threading.Lock()
        self._config = config
        self.room = RoomFootprint()   # the depth's points of the same keyframes: the floor's outline
        self.clear()

    @property
    def config(self) -> ObjectMapConfig:
        return self._config

    @config.setter
    def config(self, config: ObjectMapConfig) -> None:
        """New rules from now on; the instances are summarised anew (e.g. with a vertical axis)."""
        with self._lock:
            self._config = config
            for track in self._tracks.values():
                track.changed()
            self._changed()

    def clear(self) -> None:
        self.room.clear()
        with self._lock:
            self._tracks: dict[int, _Track] = {}
            self._next_id = 1
            self.observations_added = 0
            self._revision = 0   # counts the changes of the instances: it keys the beliefs' cache
            self._beliefs_cache: tuple[tuple[int, int], np.ndarray] | None = None
            self._instances_cache: tuple[tuple[int, int], tuple[ObjectInstance, ...]] | None = None

    def _changed(self) -> None:
        """Call, holding the lock, whenever an instance may have changed."""
        self._revision += 1
        self._beliefs_cache = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._tracks)

    # ---- updating

    def add(self, observations: Iterable[ObjectObservation]) -> list[int]:
        """Fuses one frame's observations; returns the instance id each one joined (after
        merges). Observations of one call are associated against the map as it was before
        the call plus the instances created earlier in it."""
        observations = list(observations)
        joined = []
        with self._lock:
            for obs in observations:
                track = self._associate(obs)
                if track is None:
                    track = _Track(self._next_id, obs.category, 0, obs.stamp, obs.stamp, 0.0, 0)
                    self._tracks[track.instance_id] = track
                    self._next_id += 1
                if obs.stamp != track.last_seen or track.n_views == 0:
                    track.n_views += 1
                track.first_seen = min(track.first_seen, obs.stamp)
                track.last_seen = max(track.last_seen, obs.stamp)
                track.score_sum += float(np.clip(obs.score, 0.0, 1.0))
                track.obs_total += 1
                centroid = np.asarray(obs.centroid, np.float64)
                v = self.config.vertical_axis
                floor_drop = np.nan if v is None else centroid[v] - float(obs.floor)   # NaN: no floor seen
                track.append({'keyframe': np.array([obs.keyframe_id], np.int64),
                              'stamp': np.array([obs.stamp]), 'score': np.array([obs.score]),
                              'point_kf': np.asarray(obs.centroid_keyframe, np.float64)[None],
                              'point_map': centroid[None],
                              'offset_min': (np.asarray(obs.box_min) - centroid)[None],
                              'offset_max': (np.asarray(obs.box_max) - centroid)[None],
                              'colour': np.asarray(obs.colour, np.float64).reshape(1, 3),
                              'reach_low': np.asarray(obs.reach_low, np.float64).reshape(1, DIRECTIONS),
                              'reach_high': np.asarray(obs.reach_high, np.float64).reshape(1, DIRECTIONS),
                              'floor_drop': np.array([floor_drop])},
                             self.config.max_observations)
                joined.append(track.instance_id)
                self.observations_added += 1
            renamed = self._merge_overlapping(set(joined))
            if observations:
                self._changed()
        return [renamed.get(i, i) for i in joined]

    def note_missed(self, named: Iterable[int], depth: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray,
                    stamp: float) -> int:
        """Counts this frame against every instance it should have named and did not (n_missed
        in the module docstring): `named`, the ids `add` returned for the frame; depth (H, W)
        metres (NaN or <= 0: unknown, counts nothing), K (3, 3) at (H, W), T_map_cam (4, 4).
        Returns how many instances it counted."""
        named = set(named)
        depth = np.asarray(depth)
        h, w = depth.shape
        cfg = self.config
        T_cam_map = invert_pose(np.asarray(T_map_cam, np.float64))
        counted = 0
        with self._lock:
            for track in self._tracks.values():
                if track.instance_id in named or track.last_missed == stamp or stamp in track.stamp:
                    continue
                inst = track.instance(cfg)
                (u, v), z = project_points(transform_points(T_cam_map, inst.centroid), K)
                if not 0 < z <= cfg.miss_range * float(np.max(track.point_kf[:, 2])):
                    continue
                if not (cfg.miss_margin * w <= u < (1 - cfg.miss_margin) * w
                        and cfg.miss_margin * h <= v < (1 - cfg.miss_margin) * h):
                    continue
                seen = float(depth[int(v), int(u)])
                tolerance = max(cfg.miss_tolerance, 0.5 * float(np.max(inst.extent)))
                if not np.isfinite(seen) or seen <= 0 or seen < z - tolerance:   # unknown, or hidden
                    continue
                track.n_missed += 1
                track.last_missed = stamp
                track.cached = None   # its confidence; the observations, so the summary, are the same
                counted += 1
            if counted:
                self._changed()
        return counted

    def relocate(self, keyframe_poses: Mapping[int, np.ndarray]) -> int:
        """Moves the observations of the given keyframes to their corrected poses
        ({keyframe id: T_map_keyframe (4, 4)}); returns the number of instances that moved.
        Keyframes not named keep their observations where they are. Instances that come to
        overlap are merged."""
        poses = {int(k): np.asarray(T, np.float64) for k, T in keyframe_poses.items()}
        for k, T in poses.items():
            if T.shape != (4, 4) or not np.all(np.isfinite(T)):
                raise ValueError(f'keyframe {k}: pose must be a finite 4x4 matrix, got shape {T.shape}')
        moved = 0
        with self._lock:
            for track in self._tracks.values():
                hit = False
                for k in np.unique(track.keyframe):
                    if int(k) in poses:
                        rows = track.keyframe == k
                        track.point_map[rows] = transform_points(poses[int(k)], track.point_kf[rows])
                        track.changed()
                        hit = True
                moved += hit
            self._merge_overlapping()
            self._changed()
        self.room.relocate(poses)
        return moved

    # ---- reading

    def instances(self, min_views: int | None = None, min_confidence: float | None = None,
                  category: str | None = None, doubted: bool = False) -> list[ObjectInstance]:
        """Instances ordered by id, filtered by `min_views` and `min_confidence` (defaults:
        the config's; pass 1 and 0 for every instance), by the verifier (each instance's belief
        judged against the others seen as often; `doubted` True keeps the instances it would
        leave out, beliefs set) and optionally one category."""
        with self._lock:   # the rules and the instances of one revision
            cfg = self._config
            min_views = cfg.min_views if min_views is None else int(min_views)
            key = (self._revision, min_views)
            if self._instances_cache is not None and self._instances_cache[0] == key:
                out = list(self._instances_cache[1])
            else:
                tracks = [t for _, t in sorted(self._tracks.items()) if t.n_views >= min_views]
                out = [t.instance(cfg) for t in tracks]
                if cfg.on_floor and cfg.vertical_axis is not None:
                    out = stand_on_surfaces(out, [t.floor(cfg.vertical_axis) for t in tracks], cfg.vertical_axis,
                                            cfg.on_floor)
                self._instances_cache = (key, tuple(out))
            cache = self._beliefs_cache
        min_confidence = cfg.min_confidence if min_confidence is None else float(min_confidence)
        if cfg.verifier is not None:
            if cache is not None and cache[0] == key:
                beliefs = cache[1]
            else:   # the features compare every pair of instances: once per change of the map
                beliefs = cfg.verifier.beliefs(out, cfg.vertical_axis)
                beliefs.setflags(write=False)
                with self._lock:
                    if self._revision == key[0]:
                        self._beliefs_cache = (key, beliefs)
            kept = np.ones(len(out), bool) if doubted else cfg.verifier.kept(out, beliefs)
            out = [replace(i, belief=float(b), doubted=bool(b < cfg.verifier.threshold))
                   for i, b, k in zip(out, beliefs, kept) if k]
        rate = cfg.min_detection_rate
        return [i for i in out if i.confidence >= min_confidence and i.n_views >= rate * (i.n_views + i.n_missed)
                and (category is None or i.category == category)]

    # ---- association

    def _matches(self, summaries: list[tuple], b: tuple) -> tuple[np.ndarray, np.ndarray]:
        """Whether each of n (centroid, box_min, box_max, colour or None) summaries and `b` are one
        object: near (centroids within max(max_distance, size_fraction x the longer box's
        longest side), or boxes overlapping by min_overlap, in 3D or on the floor) and of
        colours alike; (ok (n,) bool, centroid distances (n,) m)."""
        cfg = self.config
        lows, highs = np.array([s[1] for s in summaries]), np.array([s[2] for s in summaries])
        distance = np.linalg.norm(np.array([s[0] for s in summaries]) - b[0], axis=1)
        longest = np.maximum(np.max(highs - lows, axis=1), float(np.max(b[2] - b[1])))
        near = ((distance <= np.maximum(cfg.max_distance, cfg.size_fraction * longest))
                | (box_overlaps(lows, highs, b[1], b[2]) >= cfg.min_overlap))
        if cfg.vertical_axis is not None:
            floor = [i for i in range(3) if i != cfg.vertical_axis]
            near |= box_overlaps(lows[:, floor], highs[:, floor], b[1][floor], b[2][floor]) >= cfg.min_overlap
        return near & self._same_colours([s[3] for s in summaries], b[3]), distance

    def _same_colours(self, colours: list[np.ndarray | None], b: np.ndarray | None) -> np.ndarray:
        """(n,) False only where both colours are known and lie more than max_colour_distance apart."""
        limit = self.config.max_colour_distance
        same = np.ones(len(colours), bool)
        known = [i for i, c in enumerate(colours) if c is not None]
        if limit is not None and b is not None and known:
            same[known] = colour_distance(np.array([colours[i] for i in known]), b) <= limit
        return same

    def _associate(self, obs: ObjectObservation) -> _Track | None:
        colour = np.asarray(obs.colour, np.float64)
        summary = (np.asarray(obs.centroid, np.float64), np.asarray(obs.box_min), np.asarray(obs.box_max),
                   colour if np.all(np.isfinite(colour)) else None)
        tracks = [t for t in self._tracks.values() if t.category == obs.category]
        if not tracks:
            return None
        ok, distance = self._matches([t.summary(self.config) for t in tracks], summary)
        if not ok.any():
            return None
        return tracks[int(np.argmin(np.where(ok, distance, np.inf)))]   # the nearest (the first of equals)

    def _merge_overlapping(self, changed: set[int] | None = None) -> dict[int, int]:
        """Merges instances of one category that match each other, checking the pairs with
        an instance in `changed` (None: every pair); {removed id: kept id}."""
        renamed: dict[int, int] = {}
        summaries = {i: t.summary(self.config) for i, t in self._tracks.items()}
        todo = set(self._tracks) if changed is None else set(changed) & set(self._tracks)
        while todo:
            a = min(todo)
            todo.discard(a)
            category = self._tracks[a].category
            others = [b for b in sorted(self._tracks) if b != a and self._tracks[b].category == category]
            if not others:
                continue
            ok, _ = self._matches([summaries[b] for b in others], summaries[a])
            if not ok.any():
                continue
            b = others[int(np.argmax(ok))]   # the first (lowest id) that matches
            keep, gone = min(a, b), max(a, b)  # the older id stays
            self._absorb(self._tracks[keep], self._tracks.pop(gone))
            del summaries[gone]
            summaries[keep] = self._tracks[keep].summary(self.config)
            renamed = {k: (keep if v == gone else v) for k, v in renamed.items()}
            renamed[gone] = keep
            todo.discard(gone)
            todo.add(keep)  # it grew: check it again
        return renamed

    def _absorb(self, keep: _Track, other: _Track) -> None:
        rows = {k: np.concatenate([getattr(keep, k), getattr(other, k)]) for k in _ROW_KEYS}
        order = np.argsort(rows['stamp'], kind='stable')[-self.config.max_observations:]
        for k, v in rows.items():
            setattr(keep, k, v[order])
        keep.n_views += other.n_views
        keep.first_seen = min(keep.first_seen, other.first_seen)
        keep.last_seen = max(keep.last_seen, other.last_seen)
        keep.score_sum += other.score_sum
        keep.obs_total += other.obs_total
        keep.n_missed += other.n_missed
        keep.changed()

    # ---- saving

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta): plain numeric numpy arrays (for np.savez, no pickle) and a
        JSON-able dict; `from_arrays` rebuilds the map exactly."""
        with self._lock:
            tracks = [self._tracks[i] for i in sorted(self._tracks)]
            categories = sorted({t.category for t in tracks})
            arrays = {
                'instance_id': np.array([t.instance_id for t in tracks], np.int64),
                'category_index': np.array([categories.index(t.category) for t in tracks], np.int64),
                'n_views': np.array([t.n_views for t in tracks], np.int64),
                'first_seen': np.array([t.first_seen for t in tracks], np.float64),
                'last_seen': np.array([t.last_seen for t in tracks], np.float64),
                'score_sum': np.array([t.score_sum for t in tracks], np.float64),
                'observations_total': np.array([t.obs_total for t in tracks], np.int64),
                'n_missed': np.array([t.n_missed for t in tracks], np.int64),
                'obs_instance': np.concatenate([np.full(len(t.stamp), t.instance_id, np.int64) for t in tracks]
                                               or [np.zeros(0, np.int64)]),
            }
            for key in _ROW_KEYS:
                empty = np.zeros((0, _ROW_WIDTHS[key])) if key in _ROW_WIDTHS else np.zeros(0)
                arrays['obs_' + key] = np.concatenate([getattr(t, key) for t in tracks] or [empty])
            arrays['obs_keyframe'] = arrays['obs_keyframe'].astype(np.int64)
            meta = {'format': FORMAT, 'version': VERSION, 'categories': categories, 'next_id': self._next_id,
                    'observations_added': self.observations_added, 'config': self._config_meta()}
        arrays.update({'room_' + key: value for key, value in self.room.to_arrays().items()})
        return arrays, meta

    def _config_meta(self) -> dict[str, Any]:
        meta = asdict(self.config)
        meta['verifier'] = None if self.config.verifier is None else self.config.verifier.to_dict()
        return meta

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any],
                    config: ObjectMapConfig | None = None) -> 'ObjectMap':
        """The map `to_arrays` saved; `config` (default: the saved one) may change the
        association rules from now on. Raises ObjectMapError naming what is wrong."""
        if meta.get('format') != FORMAT or meta.get('version') != VERSION:
            raise ObjectMapError(f'not a {FORMAT} version {VERSION}: format={meta.get("format")!r}, '
                                 f'version={meta.get("version")!r}')
        try:
            saved = meta['config']
            verifier = saved.get('verifier')   # maps saved before the verifier have none
            config = config or ObjectMapConfig(**{**saved, 'verifier': verifier and InstanceVerifier.from_dict(verifier)})
            categories = [str(c) for c in meta['categories']]
            next_id = int(meta['next_id'])
        except (KeyError, TypeError, ValueError) as exc:   # VerifierError is a ValueError
            raise ObjectMapError(f'object map meta is incomplete or wrong: {exc!r}') from exc
        need = {'instance_id': 1, 'category_index': 1, 'n_views': 1, 'first_seen': 1, 'last_seen': 1,
                'score_sum': 1, 'observations_total': 1, 'obs_instance': 1, **{'obs_' + k: 1 for k in _ROW_KEYS}}
        arrays = dict(arrays)
        for key in _MAY_BE_NAN:   # maps saved before colours, footprints or floors: none seen
            if 'obs_' + key not in arrays and 'obs_stamp' in arrays:
                width = (_ROW_WIDTHS[key],) if key in _ROW_WIDTHS else ()
                arrays['obs_' + key] = np.full((len(np.asarray(arrays['obs_stamp'])),) + width, np.nan)
        for key in need:
            if key not in arrays:
                raise ObjectMapError(f'object map arrays lack {key!r}')
        a = {k: np.asarray(arrays[k]) for k in need}
        n, m = len(a['instance_id']), len(a['obs_instance'])
        for key, value in a.items():
            rows = m if key.startswith('obs_') else n
            width = (_ROW_WIDTHS[key[4:]],) if key[4:] in _ROW_WIDTHS else ()
            if value.shape != (rows,) + width:
                raise ObjectMapError(f'object map array {key!r} has shape {value.shape}, expected {(rows,) + width}')
            unseen = np.isnan(value) if key[4:] in _MAY_BE_NAN else False
            if value.dtype.kind not in 'iuf' or not np.all(np.isfinite(value) | unseen):
                raise ObjectMapError(f'object map array {key!r} must be finite numbers')
        ids = a['instance_id'].astype(np.int64)
        if len(set(ids.tolist())) != n or (n and (ids.min() < 1 or ids.max() >= next_id)):
            raise ObjectMapError(f'instance ids must be unique integers in [1, next_id={next_id}), got {ids.tolist()}')
        if n and (a['category_index'].min() < 0 or a['category_index'].max() >= len(categories)):
            raise ObjectMapError(f'category_index out of range of {len(categories)} categories')
        if not set(a['obs_instance'].tolist()) <= set(ids.tolist()):
            raise ObjectMapError('obs_instance names instances that are not in instance_id')
        total = a['observations_total']
        if np.any(total < 1) or np.any(a['score_sum'] < 0) or np.any(a['score_sum'] > total):
            raise ObjectMapError('observations_total must be >= 1 and score_sum in [0, observations_total]')
        if np.any(a['n_views'] < 1):
            raise ObjectMapError('n_views must be >= 1')
        missed = np.asarray(arrays['n_missed']) if 'n_missed' in arrays else np.zeros(n, np.int64)  # maps saved before it
        if missed.shape != (n,) or missed.dtype.kind not in 'iu' or np.any(missed < 0):
            raise ObjectMapError(f"object map array 'n_missed' must be {n} integers >= 0, got {missed.dtype} {missed.shape}")
        out = cls(config)
        with out._lock:
            for row in range(n):
                iid = int(ids[row])
                sel = a['obs_instance'] == iid
                if not sel.any():
                    raise ObjectMapError(f'instance {iid} has no observations')
                track = _Track(iid, categories[int(a['category_index'][row])], int(a['n_views'][row]),
                               float(a['first_seen'][row]), float(a['last_seen'][row]),
                               float(a['score_sum'][row]), int(a['observations_total'][row]),
                               int(missed[row]))
                for key in _ROW_KEYS:
                    value = a['obs_' + key][sel]
                    setattr(track, key, value.astype(np.int64) if key == 'keyframe' else value.astype(np.float64))
                out._tracks[iid] = track
            out._next_id = next_id
            out.observations_added = int(meta.get('observations_added', 0))
            out._changed()
        room = {key[len('room_'):]: value for key, value in arrays.items() if key.startswith('room_')}
        if room:   # maps saved before the footprint have none
            try:
                out.room = RoomFootprint.from_arrays(room, out.room.config)
            except ValueError as exc:
                raise ObjectMapError(str(exc)) from None
        return out
