"""Procedural indoor scenes as pure data: a room, furniture and objects with exact boxes.

Nothing here imports pybullet: ``sample_scene`` draws a ``SceneLayout`` (room, surfaces,
light, objects made of primitive parts or pybullet_data meshes) from a numpy Generator,
and ``geovr_training.data.render`` builds it in pybullet. Each object's oriented box is
computed here from its parts, so the boxes are exact by construction.

World frame: z up, floor at z = 0, room centred on the origin (x in [-w/2, w/2],
y in [-d/2, d/2]). An object's local frame has its origin at the centre of its footprint on
the floor, x pointing to its front; ``yaw`` rotates it about world z.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import GenerationError
from .textures import TextureSpec
from .types import SceneGraph, SceneObject

COLOURS: dict[str, tuple[float, float, float]] = {
    'red': (0.80, 0.10, 0.10), 'green': (0.10, 0.60, 0.20), 'blue': (0.10, 0.25, 0.80),
    'yellow': (0.95, 0.85, 0.10), 'orange': (1.00, 0.50, 0.05), 'purple': (0.50, 0.15, 0.60),
    'pink': (1.00, 0.50, 0.70), 'white': (0.95, 0.95, 0.95), 'black': (0.08, 0.08, 0.08),
    'gray': (0.50, 0.50, 0.50), 'brown': (0.45, 0.27, 0.10), 'cyan': (0.10, 0.80, 0.85),
}

SURFACE_PATTERNS = ('checker', 'random', 'planks', 'plain')

ROOM_MIN = (3.0, 3.0)
ROOM_MAX = (10.0, 8.0)


@dataclass
class Part:
    """A visual primitive of an object, in the object's local frame.

    kind: 'box' (``dims`` = half extents), 'cylinder' (``dims`` = (radius, length), axis z),
    'sphere' (``dims`` = (radius,)), 'mesh' (``mesh`` file relative to pybullet_data,
    ``dims`` = scale (3,), ``quat_xyzw`` local orientation).
    """

    kind: str
    dims: tuple[float, ...]
    position: tuple[float, float, float]
    mesh: str = ''
    quat_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)


@dataclass
class ObjectSpec:
    """An object to build: its parts in local frame, pose on the floor, colour and box."""

    instance_id: int
    category: str
    colour: str
    rgba: tuple[float, float, float, float]
    parts: list[Part]
    position_xy: tuple[float, float]
    yaw: float
    box_offset: np.ndarray  # (3,) local box centre relative to the object origin, metres
    box_size: np.ndarray  # (3,) metres
    texture: TextureSpec | None = None  # (domain randomization); None: plain rgba

    def scene_object(self) -> SceneObject:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        off = self.box_offset
        centre = np.array([self.position_xy[0] + c * off[0] - s * off[1],
                           self.position_xy[1] + s * off[0] + c * off[1], off[2]])
        return SceneObject(self.instance_id, self.category, self.colour, centre, self.box_size.copy(),
                           float(self.yaw))


@dataclass
class SceneLayout:
    """Everything needed to build and render one room (pure data)."""

    room_size: np.ndarray  # (w, d, h) metres
    floor_rgba: tuple[float, float, float, float]
    wall_rgba: tuple[float, float, float, float]
    floor_pattern: str  # one of SURFACE_PATTERNS: tiles in 2-4 shades of the surface colour
    wall_pattern: str
    tile_size: float  # metres
    pattern_seed: int  # seeds the shade of each 'random' / 'planks' tile
    light_direction: tuple[float, float, float]
    light_colour: tuple[float, float, float]
    light_coeffs: tuple[float, float, float]  # ambient, diffuse, specular
    objects: list[ObjectSpec] = field(default_factory=list)
    clutter: list[ObjectSpec] = field(default_factory=list)  # drawn, not in the scene graph (instance id 0)
    floor_texture: TextureSpec | None = None  # None: the plain tiles above
    wall_texture: TextureSpec | None = None
    ceiling_texture: TextureSpec | None = None
    shadows: bool = False  # render with TinyRenderer's shadow map (about doubles render time)

    def scene_graph(self) -> SceneGraph:
        return SceneGraph(self.room_size.copy(), [o.scene_object() for o in self.objects])


def pybullet_data_path() -> Path:
    import pybullet_data  # a path-only module; no pybullet import
    return Path(pybullet_data.getDataPath())


@functools.lru_cache(maxsize=None)
def mesh_vertex_bounds(mesh: str) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) of an OBJ file's vertices (unit scale), read from pybullet_data."""
    path = pybullet_data_path() / mesh
    verts = []
    with open(path) as f:
        for line in f:
            if line.startswith('v '):
                verts.append([float(x) for x in line.split()[1:4]])
    v = np.asarray(verts)
    return v.min(0), v.max(0)


def _quat_matrix(q: tuple[float, float, float, float]) -> np.ndarray:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def part_bounds(part: Part) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned (min, max) of a part in the object's local frame, metres."""
    p = np.asarray(part.position, dtype=np.float64)
    if part.kind == 'box':
        h = np.asarray(part.dims)
        return p - h, p + h
    if part.kind == 'cylinder':
        r, length = part.dims
        h = np.array([r, r, length / 2])
        return p - h, p + h
    if part.kind == 'sphere':
        r = part.dims[0]
        return p - r, p + r
    if part.kind == 'mesh':
        lo, hi = mesh_vertex_bounds(part.mesh)
        corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        corners = (corners * np.asarray(part.dims)) @ _quat_matrix(part.quat_xyzw).T + p
        return corners.min(0), corners.max(0)
    raise GenerationError(f'unknown part kind {part.kind!r}')


# ---- object models: each returns parts with the footprint centred and the bottom at z = 0

def _box(hx, hy, hz, x=0.0, y=0.0, z=None) -> Part:
    return Part('box', (hx, hy, hz), (x, y, hz if z is None else z))


def _table(rng):
    L, W, H, t = rng.uniform(0.8, 1.8), rng.uniform(0.6, 1.0), rng.uniform(0.70, 0.78), 0.04
    legs = [_box(0.03, 0.03, (H - t) / 2, sx * (L / 2 - 0.06), sy * (W / 2 - 0.06)) for sx in (-1, 1) for sy in (-1, 1)]
    return [_box(L / 2, W / 2, t / 2, z=H - t / 2)] + legs


def _chair(rng):
    s, h = rng.uniform(0.42, 0.5), rng.uniform(0.43, 0.48)
    back = rng.uniform(0.4, 0.5)
    legs = [_box(0.02, 0.02, (h - 0.04) / 2, sx * (s / 2 - 0.03), sy * (s / 2 - 0.03)) for sx in (-1, 1) for sy in (-1, 1)]
    return legs + [_box(s / 2, s / 2, 0.02, z=h - 0.02), _box(0.02, s / 2, back / 2, -s / 2 + 0.02, 0, h + back / 2)]


def _sofa(rng):
    L, D, seat, top = rng.uniform(1.6, 2.4), rng.uniform(0.8, 1.0), 0.42, rng.uniform(0.8, 0.9)
    return [_box(D / 2 - 0.1, L / 2 - 0.12, seat / 2, 0.1), _box(0.1, L / 2, top / 2, -D / 2 + 0.1),
            _box(D / 2 - 0.1, 0.12 / 2, 0.3, 0.1, L / 2 - 0.06), _box(D / 2 - 0.1, 0.12 / 2, 0.3, 0.1, -L / 2 + 0.06)]


def _bed(rng):
    L, W = rng.uniform(1.9, 2.1), rng.choice([0.9, 1.4, 1.6, 1.8])
    return [_box(L / 2, W / 2, 0.25), _box(0.04, W / 2, 0.5, -L / 2 - 0.04),
            _box(0.2, W / 2 - 0.1, 0.06, -L / 2 + 0.3, 0, 0.56)]


def _cabinet(rng):
    return [_box(rng.uniform(0.2, 0.3), rng.uniform(0.3, 0.6), rng.uniform(0.4, 1.0))]


def _bookshelf(rng):
    D, W, H = rng.uniform(0.28, 0.36), rng.uniform(0.8, 1.2), rng.uniform(1.5, 2.0)
    parts = [_box(D / 2, 0.02, H / 2, 0, s * (W / 2 - 0.02)) for s in (-1, 1)]
    parts.append(_box(0.01, W / 2, H / 2, -D / 2 + 0.01))
    parts += [_box(D / 2, W / 2 - 0.04, 0.015, 0, 0, z) for z in np.linspace(0.015, H - 0.015, 5)]
    return parts


def _tv(rng):
    W, Hs, stand = rng.uniform(0.9, 1.4), rng.uniform(0.5, 0.8), rng.uniform(0.5, 0.8)
    return [_box(0.2, 0.3, 0.015), _box(0.03, 0.03, stand / 2, 0, 0, stand / 2),
            _box(0.03, W / 2, Hs / 2, 0, 0, stand + Hs / 2)]


def _lamp(rng):
    H = rng.uniform(1.3, 1.7)
    return [Part('cylinder', (0.15, 0.03), (0, 0, 0.015)), Part('cylinder', (0.015, H - 0.3), (0, 0, (H - 0.3) / 2)),
            Part('cylinder', (0.2, 0.3), (0, 0, H - 0.15))]


def _bin(rng):
    r, h = rng.uniform(0.15, 0.22), rng.uniform(0.35, 0.6)
    return [Part('cylinder', (r, h), (0, 0, h / 2))]


def _stool(rng):
    h = rng.uniform(0.45, 0.65)
    return [Part('cylinder', (0.2, 0.03), (0, 0, 0.015)), Part('cylinder', (0.03, h), (0, 0, h / 2)),
            Part('cylinder', (0.18, 0.05), (0, 0, h - 0.025))]


def _ball(rng):
    r = rng.uniform(0.1, 0.2)
    return [Part('sphere', (r,), (0, 0, r))]


def _crate(rng):
    s = rng.uniform(0.3, 0.6)
    return [_box(s / 2, s / 2 * rng.uniform(0.8, 1.2), s / 2 * rng.uniform(0.7, 1.0))]


_Y_UP_TO_Z_UP = (float(np.sqrt(0.5)), 0.0, 0.0, float(np.sqrt(0.5)))


def _mesh_model(mesh: str, size_range: tuple[float, float], quat=_Y_UP_TO_Z_UP):
    def model(rng):
        lo, hi = part_bounds(Part('mesh', (1.0, 1.0, 1.0), (0, 0, 0), mesh, quat))
        scale = rng.uniform(*size_range) / float(np.max(hi - lo))
        return [Part('mesh', (scale, scale, scale), (0, 0, 0), mesh, quat)]
    return model


# category -> (model, placed against a wall, sampling weight)
CATEGORIES = {
    'table': (_table, False, 1.0), 'chair': (_chair, False, 2.0), 'sofa': (_sofa, True, 0.6),
    'bed': (_bed, True, 0.4), 'cabinet': (_cabinet, True, 1.0), 'bookshelf': (_bookshelf, True, 0.8),
    'tv': (_tv, True, 0.6), 'lamp': (_lamp, False, 0.8), 'trash bin': (_bin, False, 1.0),
    'stool': (_stool, False, 0.8), 'ball': (_ball, False, 1.0), 'box': (_crate, False, 1.2),
    'toy duck': (_mesh_model('duck.obj', (0.2, 0.35)), False, 0.7),
    'teddy bear': (_mesh_model('teddy2_VHACD_CHs.obj', (0.3, 0.6)), False, 0.7),
}


def _centre_parts(parts: list[Part]) -> tuple[list[Part], np.ndarray, np.ndarray]:
    """Shift parts so the footprint is centred on the origin and the bottom is at z = 0;
    returns (parts, box offset (3,), box size (3,))."""
    bounds = [part_bounds(p) for p in parts]
    lo = np.min([b[0] for b in bounds], axis=0)
    hi = np.max([b[1] for b in bounds], axis=0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    moved = [Part(p.kind, p.dims, tuple(float(v) for v in np.asarray(p.position) + shift), p.mesh, p.quat_xyzw)
             for p in parts]
    size = hi - lo
    return moved, np.array([0.0, 0.0, size[2] / 2]), size


def _footprint_radius(size: np.ndarray) -> float:
    return float(np.hypot(size[0], size[1]) / 2)


def sample_scene(rng: np.random.Generator, min_objects: int = 6, max_objects: int = 16,
                 room_min: tuple[float, float] = ROOM_MIN, room_max: tuple[float, float] = ROOM_MAX) -> SceneLayout:
    """Draw a furnished room. Object count grows with floor area within [min, max]."""
    if not (room_min[0] <= room_max[0] and room_min[1] <= room_max[1]):
        raise GenerationError(f'room_min {room_min} exceeds room_max {room_max}')
    w, d = rng.uniform(room_min[0], room_max[0]), rng.uniform(room_min[1], room_max[1])
    if d > w:
        w, d = d, w
    h = rng.uniform(2.5, 3.2)
    tint = lambda lo: tuple(float(v) for v in rng.uniform(lo, 1.0, 3)) + (1.0,)
    theta, elev = rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 1.3)
    layout = SceneLayout(
        room_size=np.array([w, d, h]),
        floor_rgba=tint(0.35), wall_rgba=tint(0.55),
        floor_pattern=str(rng.choice(SURFACE_PATTERNS[:3])),
        wall_pattern=str(rng.choice(SURFACE_PATTERNS)),
        tile_size=float(rng.uniform(0.4, 1.0)), pattern_seed=int(rng.integers(2 ** 31)),
        light_direction=(float(np.cos(theta) * np.cos(elev)), float(np.sin(theta) * np.cos(elev)), float(np.sin(elev))),
        light_colour=tuple(float(v) for v in rng.uniform(0.85, 1.0, 3)),
        light_coeffs=(float(rng.uniform(0.5, 0.7)), float(rng.uniform(0.4, 0.6)), float(rng.uniform(0.0, 0.2))),
    )
    area = w * d
    n_target = int(np.clip(round(min_objects + (max_objects - min_objects) * (area - 9) / (80 - 9)), min_objects, max_objects))
    names = list(CATEGORIES)
    weights = np.array([CATEGORIES[n][2] for n in names])
    placed: list[tuple[np.ndarray, float]] = []  # (xy, radius)
    colour_names = list(COLOURS)
    attempts = 0
    while len(layout.objects) < n_target and attempts < 400:
        attempts += 1
        category = names[rng.choice(len(names), p=weights / weights.sum())]
        model, on_wall, _ = CATEGORIES[category]
        parts, offset, size = _centre_parts(model(rng))
        radius = _footprint_radius(size)
        if on_wall:
            side = rng.integers(4)
            half = (w / 2, d / 2)
            along_axis = 1 if side < 2 else 0  # sides 0,1: walls x = +-w/2; 2,3: y = +-d/2
            sign = 1.0 if side % 2 == 0 else -1.0
            span = half[along_axis] - size[1] / 2 - 0.05
            if span <= 0:
                continue
            t = rng.uniform(-span, span)
            if side < 2:
                xy = np.array([sign * (w / 2 - size[0] / 2 - 0.03), t])
                yaw = np.pi if sign > 0 else 0.0
            else:
                xy = np.array([t, sign * (d / 2 - size[0] / 2 - 0.03)])
                yaw = -np.pi / 2 if sign > 0 else np.pi / 2
        else:
            margin = radius + 0.1
            if w / 2 - margin <= 0 or d / 2 - margin <= 0:
                continue
            xy = np.array([rng.uniform(-w / 2 + margin, w / 2 - margin), rng.uniform(-d / 2 + margin, d / 2 - margin)])
            yaw = float(rng.uniform(-np.pi, np.pi))
        if any(np.linalg.norm(xy - q) < radius + r + 0.1 for q, r in placed):
            continue
        colour = colour_names[rng.integers(len(colour_names))]
        rgb = np.clip(np.asarray(COLOURS[colour]) + rng.uniform(-0.04, 0.04, 3), 0, 1)
        layout.objects.append(ObjectSpec(len(layout.objects) + 1, category, colour, tuple(float(v) for v in rgb) + (1.0,),
                                         parts, (float(xy[0]), float(xy[1])), float(yaw), offset, size))
        placed.append((xy, radius))
    return layout


def free_space_grid(layout: SceneLayout, resolution: float = 0.1, clearance: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """Boolean grid (ny, nx) of floor cells a camera may occupy, and the (x, y) of cell (0, 0).

    A cell is free when it is at least ``clearance`` metres from every wall and from every
    object's footprint circle, and from the footprint circle of every clutter item standing
    on the floor (items on furniture lie within their support's circle).
    """
    w, d = layout.room_size[:2]
    xs = np.arange(-w / 2 + resolution / 2, w / 2, resolution)
    ys = np.arange(-d / 2 + resolution / 2, d / 2, resolution)
    X, Y = np.meshgrid(xs, ys)
    free = (np.abs(X) < w / 2 - clearance) & (np.abs(Y) < d / 2 - clearance)
    for obj in layout.objects:
        so = obj.scene_object()
        r = _footprint_radius(so.size) + clearance
        free &= np.hypot(X - so.centre[0], Y - so.centre[1]) > r
    for item in layout.clutter:
        if item.box_offset[2] - item.box_size[2] / 2 <= 1e-6:  # on the floor
            r = _footprint_radius(item.box_size) + clearance
            free &= np.hypot(X - item.position_xy[0], Y - item.position_xy[1]) > r
    return free, np.array([xs[0], ys[0]])
