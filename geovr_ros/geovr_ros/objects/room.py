"""The room's floor as the depth saw it: the floor area a "how big is this room?" is answered from.

Every keyframe the object map takes also leaves a sparse grid of its depth's points (about
`points_per_keyframe`, nearer than `max_range`), kept in that keyframe's optical frame so that
a pose-graph correction moves them with it (`relocate`). `outline(up)` lays every point on the
plane normal to `up` (walls become lines, the floor fills what they enclose), counts them in
`cell` metre squares, keeps the squares holding at least `min_points` points (a stray depth
does not stretch the room), and takes the convex hull of those squares' centres (the floor
seen) and the smallest rectangle around it: the room. Rooms are mostly rectangles (the
Manhattan-world prior of indoor layout estimation), and a camera seldom sees every corner: a
room seen from one side shows two walls and the corner between them, whose hull cuts the room
along a diagonal and whose rectangle does not (24 rendered validation rooms of 32 frames: floor
area MRA 0.59 from the hull, 0.78 from the rectangle; docs/objects.md). The camera was in the
room too: the rectangle also holds every keyframe's camera centre and `camera_clearance`
metres around it (a camera is held by someone or something, and a wall behind it was at least
that far), so a room seen only ahead of a camera that backed through it is not cut at the
first floor the camera looked at (docs/objects.md "The room holds the camera"). An L-shaped
room or two rooms seen together read as their bounding rectangle (more than their floor), a
room seen only in part as the part seen.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from geovr_ros.geometry import ShapeError, depth_to_points, invert_pose, transform_points

__all__ = ['FloorOutline', 'RoomFootprint', 'RoomFootprintConfig', 'floor_basis']


@dataclass(frozen=True)
class RoomFootprintConfig:
    """points_per_keyframe: about this many depth pixels kept per keyframe (a regular grid);
    max_range: metres, farther points are left out (depth is least sure there); cell: metres,
    the side of the squares points are counted in; min_points: points a square needs to count;
    min_confidence: with the depth decoder's confidence given, the pixels below it are left
    out (the real HoloLens walk, model depth: 110 m^2 with every pixel, 85 at 0.5, 79 at 0.7,
    where its own sensor depth and poses give 70.5; docs/objects.md); max_points: beyond this
    many points in all, every keyframe keeps every other one of its points (memory and the
    outline's time stay bounded on long runs: 27 ms for the outline of 1000 keyframes,
    `python -m geovr_ros.objects.bench --keyframes 1000`); camera_clearance: metres around each
    keyframe's camera centre that the room is taken to hold (0: the centre alone)."""

    points_per_keyframe: int = 300
    max_range: float = 10.0
    cell: float = 0.1
    min_points: int = 3
    min_confidence: float = 0.5
    max_points: int = 200_000
    camera_clearance: float = 0.25

    def __post_init__(self):
        if self.points_per_keyframe < 1 or self.min_points < 1 or self.max_points < self.points_per_keyframe:
            raise ValueError(f'points_per_keyframe ({self.points_per_keyframe}) and min_points '
                             f'({self.min_points}) must be >= 1, max_points ({self.max_points}) >= '
                             f'points_per_keyframe')
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f'min_confidence must be in [0, 1], got {self.min_confidence}')
        if not self.camera_clearance >= 0:
            raise ValueError(f'camera_clearance must be >= 0 metres, got {self.camera_clearance}')
        if not (self.max_range > 0 and self.cell > 0):
            raise ValueError(f'max_range and cell must be > 0 metres, got {self.max_range} and {self.cell}')


@dataclass(frozen=True)
class FloorOutline:
    """area_m2: the room's floor area (m^2), its rectangle's (around the floor seen and the
    camera's positions); outline: (4, 3) the rectangle's
    corners in order, metres, in the footprint's frame, at the height of the lowest point seen
    (the floor, once it was seen); width_m, depth_m: its sides (width <= depth); seen_m2: the
    area of the floor seen (the hull inside the rectangle); points: the depth points it was
    made of."""

    area_m2: float
    outline: np.ndarray
    width_m: float
    depth_m: float
    seen_m2: float
    points: int

    def height_above(self, point: np.ndarray, up: np.ndarray) -> float:
        """How high (m) a point (3,) lies above the floor (the outline's level) along `up` (3,)."""
        up = np.asarray(up, np.float64) / np.linalg.norm(up)
        return float((np.asarray(point, np.float64) - self.outline[0]) @ up)


def floor_basis(up: np.ndarray) -> np.ndarray:
    """(2, 3) two orthonormal directions spanning the plane normal to `up` (3,), ordered so
    that (e1, e2, up) is right-handed. Raises ValueError for a zero or non-finite `up`."""
    up = np.asarray(up, np.float64).reshape(3)
    norm = float(np.linalg.norm(up))
    if not np.isfinite(norm) or norm < 1e-9:
        raise ValueError(f'up must be a finite non-zero 3-vector, got {up.tolist()}')
    up = up / norm
    helper = np.eye(3)[int(np.argmin(np.abs(up)))]
    e1 = np.cross(helper, up)
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(up, e1)])


class RoomFootprint:
    """Sparse depth points of the keyframes, and the floor outline they enclose (module docstring).
    Thread-safe: keyframes may be added from one thread while another asks for the outline."""

    def __init__(self, config: RoomFootprintConfig = RoomFootprintConfig()):
        self.config = config
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._keyframes: list[int] = []
            self._poses: list[np.ndarray] = []     # T_map_keyframe (4, 4) per entry
            self._points: list[np.ndarray] = []    # (n, 3) float32 in the keyframe's optical frame
            self._cameras: list[np.ndarray] = []   # (3,) the camera centre in the keyframe's frame
            self._cached: tuple[tuple, FloorOutline | None] | None = None

    def __len__(self) -> int:
        with self._lock:
            return len(self._keyframes)

    def add(self, keyframe_id: int, depth: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray,
            T_map_keyframe: np.ndarray | None = None, confidence: np.ndarray | None = None) -> int:
        """Keeps a grid of the frame's depth points: depth (H, W) metres (NaN, inf, <= 0:
        none), K (3, 3) at (H, W), T_map_cam (4, 4); `T_map_keyframe` when the frame is not
        the keyframe `keyframe_id` itself (its points are kept in the keyframe's frame);
        confidence: (H, W) the depth's confidence in [0, 1] (None: every pixel counts).
        Returns the number of points kept."""
        depth = np.asarray(depth, np.float64)
        if depth.ndim != 2:
            raise ShapeError(f'depth must be (H, W), got {depth.shape}')
        h, w = depth.shape
        step = max(1, int(np.sqrt(h * w / self.config.points_per_keyframe)))
        first = step // 2
        grid = depth[first::step, first::step]
        if confidence is not None:
            confidence = np.asarray(confidence)
            if confidence.shape != depth.shape:
                raise ShapeError(f'confidence must have the shape of depth {depth.shape}, got {confidence.shape}')
            grid = np.where(confidence[first::step, first::step] >= self.config.min_confidence, grid, np.nan)
        K_grid = np.array(K, np.float64)   # the kept pixels (first + j * step, ...) as a camera of their own
        K_grid[:2, :3] /= step
        K_grid[:2, 2] -= first / step
        points = depth_to_points(grid, K_grid).reshape(-1, 3)
        points = points[np.isfinite(points[:, 2]) & (points[:, 2] <= self.config.max_range)]
        T_map_cam = np.asarray(T_map_cam, np.float64)
        camera = np.zeros(3)
        if T_map_keyframe is None:
            T_map_keyframe = T_map_cam
        else:
            T_map_keyframe = np.asarray(T_map_keyframe, np.float64)
            T_keyframe_cam = invert_pose(T_map_keyframe) @ T_map_cam
            points = transform_points(T_keyframe_cam, points)
            camera = T_keyframe_cam[:3, 3].copy()
        with self._lock:
            self._keyframes.append(int(keyframe_id))
            self._poses.append(T_map_keyframe.copy())
            self._points.append(points.astype(np.float32))
            self._cameras.append(camera)
            if sum(len(p) for p in self._points) > self.config.max_points:
                self._points = [p[::2] for p in self._points]
            self._cached = None
        return len(points)

    def relocate(self, keyframe_poses: Mapping[int, np.ndarray]) -> int:
        """Moves the points of the given keyframes ({keyframe id: T_map_keyframe (4, 4)});
        returns how many entries moved."""
        moved = 0
        with self._lock:
            for i, k in enumerate(self._keyframes):
                if k in keyframe_poses:
                    self._poses[i] = np.asarray(keyframe_poses[k], np.float64).copy()
                    moved += 1
            if moved:
                self._cached = None
        return moved

    def outline(self, up: np.ndarray) -> FloorOutline | None:
        """The floor outline seen so far, in the map's frame, with `up` (3,) the map's up
        direction; None while fewer than 3 squares hold enough points."""
        up = np.asarray(up, np.float64).reshape(3)
        key = tuple(np.round(up / max(float(np.linalg.norm(up)), 1e-12), 6))
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
            clouds = [transform_points(T, p.astype(np.float64)) for T, p in zip(self._poses, self._points)]
            cameras = (transform_points(np.stack(self._poses), np.stack(self._cameras)[:, None])[:, 0]
                       if self._poses else np.zeros((0, 3)))
        result = _outline(np.concatenate(clouds) if clouds else np.zeros((0, 3)), up, self.config, cameras)
        with self._lock:
            self._cached = (key, result)
        return result

    # ---- saving (arrays beside the object map's, `ObjectMap.to_arrays`)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """keyframe (n,), count (n,) points per entry, pose (n, 16) T_map_keyframe row-major,
        points (sum of count, 3) float32 in their keyframes' frames, camera (n, 3) each entry's
        camera centre in its keyframe's frame (rank <= 2: map attachments)."""
        with self._lock:
            counts = np.array([len(p) for p in self._points], np.int64)
            return {'keyframe': np.array(self._keyframes, np.int64), 'count': counts,
                    'pose': np.stack(self._poses).reshape(-1, 16) if self._poses else np.zeros((0, 16)),
                    'points': np.concatenate(self._points) if self._points else np.zeros((0, 3), np.float32),
                    'camera': np.array(self._cameras, np.float64).reshape(-1, 3)}

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], config: RoomFootprintConfig = RoomFootprintConfig()
                    ) -> 'RoomFootprint':
        """The footprint `to_arrays` wrote (a map saved before the camera centres were kept
        takes each entry's keyframe centre). Raises ValueError naming the array that does not fit."""
        a = {k: np.asarray(arrays[k]) for k in ('keyframe', 'count', 'pose', 'points') if k in arrays}
        if len(a) != 4:
            raise ValueError(f'room footprint arrays lack {sorted({"keyframe", "count", "pose", "points"} - set(a))}')
        n = len(a['keyframe'])
        a['camera'] = np.asarray(arrays['camera']) if 'camera' in arrays else np.zeros((n, 3))
        shapes = {'keyframe': (n,), 'count': (n,), 'pose': (n, 16), 'points': (int(a['count'].sum()), 3),
                  'camera': (n, 3)}
        for name, shape in shapes.items():
            if a[name].shape != shape or a[name].dtype.kind not in 'iuf' or not np.all(np.isfinite(a[name])):
                raise ValueError(f'room footprint array {name!r}: finite numbers of shape {shape} expected, '
                                 f'got {a[name].dtype} {a[name].shape}')
        if np.any(a['count'] < 0):
            raise ValueError('room footprint array \'count\' must be >= 0')
        out = cls(config)
        ends = np.cumsum(a['count'])
        out._keyframes = [int(k) for k in a['keyframe']]
        out._poses = [T.reshape(4, 4).astype(np.float64) for T in a['pose']]
        out._points = [a['points'][e - c:e].astype(np.float32) for e, c in zip(ends, a['count'])]
        out._cameras = [c.astype(np.float64) for c in a['camera']]
        return out


def _outline(points: np.ndarray, up: np.ndarray, config: RoomFootprintConfig,
             cameras: np.ndarray | None = None) -> FloorOutline | None:
    """points (N, 3) and camera centres (M, 3) in the map's frame, metres -> the outline (module
    docstring); None while fewer than 3 squares hold enough points."""
    import cv2

    up = up / np.linalg.norm(up)
    basis = floor_basis(up)
    flat = points @ basis.T                                   # (N, 2) on the floor plane
    cells = np.floor(flat / config.cell).astype(np.int64)
    if not len(cells):
        return None
    low = cells.min(0)
    span = int(cells[:, 1].max() - low[1]) + 1
    keys = (cells[:, 0] - low[0]) * span + (cells[:, 1] - low[1])   # one integer per square
    occupied, counts = np.unique(keys, return_counts=True)
    occupied = occupied[counts >= config.min_points]
    kept = np.stack([occupied // span + low[0], occupied % span + low[1]], axis=1)
    if len(kept) < 3:
        return None
    centres = ((kept + 0.5) * config.cell).astype(np.float32)
    hull = cv2.convexHull(centres)
    seen = float(cv2.contourArea(hull))
    if len(hull) < 3 or seen <= 0:
        return None
    if cameras is not None and len(cameras):   # each centre and the clearance around it, on the floor plane
        angles = np.linspace(0.0, 2 * np.pi, 8, endpoint=False)
        ring = config.camera_clearance * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        held = ((np.asarray(cameras, np.float64) @ basis.T)[:, None, :] + ring[None]).reshape(-1, 2)
        hull = cv2.convexHull(np.vstack([hull.reshape(-1, 2), held]).astype(np.float32))
    rectangle = cv2.minAreaRect(hull)
    corners = cv2.boxPoints(rectangle).astype(np.float64)   # (4, 2) in order
    width, depth = sorted(float(v) for v in rectangle[1])
    floor_height = float(np.min(points @ up))
    outline = corners @ basis + floor_height * up
    return FloorOutline(width * depth, outline, width, depth, seen, int(len(points)))
