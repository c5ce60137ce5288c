"""Clutter for rendered rooms (domain randomization, issue #21): small things on floors, tables,
shelves and other furniture tops, none of them in the scene graph.

``add_clutter`` puts items (pybullet_data meshes and primitive books, cans and boxes) on the
top faces of supporting furniture parts and on the free floor. Every item stands with its
bottom exactly on its support's top, lies fully on that top face, fits under what is above
it (the next shelf board) and overlaps no part of any object nor any other item (oriented
boxes, yaw only). Items carry instance id 0 and category ``'clutter'``; ``layout.objects`` is
never touched, so the scene graph and the QA are those of the plain room. Pure numpy: the
mesh bounds are read from the OBJ files (cached), pybullet is not imported.

Meshes (pybullet_data, zlib licence) were vetted by loading each in pybullet and checking
its vertex bounds: ``random_urdfs/168`` holds NaN vertices, and eleven others are plates
thinner than 15 % of their length; both are left out (``_EXCLUDED_BLOBS``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import GenerationError
from .scene import COLOURS, ObjectSpec, Part, SceneLayout, _centre_parts, _footprint_radius, free_space_grid

_Y_UP = (float(np.sqrt(0.5)), 0.0, 0.0, float(np.sqrt(0.5)))  # +90 deg about x: a Y-up mesh stands on z
_IDENTITY = (0.0, 0.0, 0.0, 1.0)


@dataclass(frozen=True)
class ClutterConfig:
    """Small things on floors, tables and shelves. Densities are Poisson means per square
    metre of supporting top face; sizes are an item's largest extent in metres."""

    enabled: bool = False
    table_density: float = 5.0  # items per m2 of table top; [0, 20]
    shelf_density: float = 10.0  # items per m2 of bookshelf board; [0, 30]
    top_density: float = 2.5  # items per m2 of cabinet, tv-stand, bed, sofa-seat and crate tops; [0, 20]
    floor_density: float = 0.15  # items per m2 of room floor; [0, 1]
    surface_probability: float = 0.8  # chance that one supporting top gets any clutter; [0, 1]
    floor_probability: float = 0.7  # chance that a room gets any floor clutter; [0, 1]
    max_floor_fraction: float = 0.15  # most of the camera's free floor that floor clutter may take; [0, 0.5]
    desk_size: tuple[float, float] = (0.05, 0.35)  # largest extent of items on furniture, m; within [0.02, 0.6]
    floor_size: tuple[float, float] = (0.2, 0.6)  # largest extent of items on the floor, m; within [0.1, 1.0]
    blob_fraction: float = 0.35  # share of items drawn from the 988 random_urdfs blobs; [0, 1]
    primitive_fraction: float = 0.25  # share of books, cans and boxes built of primitives; [0, 1]
    shelf_book_fraction: float = 0.5  # share of shelf items that are upright books; [0, 1]
    grey_probability: float = 0.3  # chance that an item is a grey instead of a hue; [0, 1]
    max_items: int = 40  # cap per room (render time grows with it); [0, 200]
    attempts: int = 8  # placement tries per item before it is dropped; [1, 50]

    def validate(self) -> None:
        """Raise ``GenerationError`` naming the first knob outside its documented range."""
        ranges = {'table_density': (0, 20), 'shelf_density': (0, 30), 'top_density': (0, 20),
                  'floor_density': (0, 1), 'surface_probability': (0, 1), 'floor_probability': (0, 1),
                  'max_floor_fraction': (0, 0.5), 'blob_fraction': (0, 1), 'primitive_fraction': (0, 1),
                  'shelf_book_fraction': (0, 1), 'grey_probability': (0, 1), 'max_items': (0, 200),
                  'attempts': (1, 50)}
        for name, (lo, hi) in ranges.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise GenerationError(f'clutter.{name} must be in [{lo}, {hi}], got {value}')
        if self.blob_fraction + self.primitive_fraction > 1:
            raise GenerationError(f'clutter.blob_fraction + primitive_fraction must be <= 1, got '
                                  f'{self.blob_fraction} + {self.primitive_fraction}')
        for name, (lo, hi) in {'desk_size': (0.02, 0.6), 'floor_size': (0.1, 1.0)}.items():
            a, b = getattr(self, name)
            if not lo <= a <= b <= hi:
                raise GenerationError(f'clutter.{name} must be (min, max) within [{lo}, {hi}], got {(a, b)}')


@dataclass(frozen=True)
class _MeshKind:
    mesh: str  # relative to pybullet_data
    size: tuple[float, float]  # real largest extent, m
    quat: tuple[float, float, float, float] = _IDENTITY  # stands upright on z
    aspect: tuple[float, float, float] = (1.0, 1.0, 1.0)  # non-uniform scale before sizing


# Household-sized meshes of pybullet_data, each with the sizes such a thing has in a room.
HOUSEHOLD_MESHES = (
    _MeshKind('objects/mug.obj', (0.08, 0.14)),
    _MeshKind('duck.obj', (0.08, 0.4), _Y_UP),
    _MeshKind('teddy2_VHACD_CHs.obj', (0.15, 0.6), _Y_UP),
    _MeshKind('bunny.obj', (0.08, 0.4)),
    _MeshKind('soccerball.obj', (0.06, 0.25)),
    _MeshKind('sphere_smooth.obj', (0.04, 0.12)),
    _MeshKind('stone.obj', (0.06, 0.5)),
    _MeshKind('torus/torus_textured.obj', (0.08, 0.6), _Y_UP),
    _MeshKind('tray/tray_textured.obj', (0.25, 0.6)),
    _MeshKind('lego/lego.obj', (0.03, 0.1), _Y_UP),
    _MeshKind('jenga/jenga.obj', (0.1, 0.2), aspect=(0.15, 0.05, 0.03)),
    _MeshKind('domino/domino.obj', (0.04, 0.1)),
    _MeshKind('toys/cube.obj', (0.04, 0.12)),
    _MeshKind('toys/cylinder.obj', (0.04, 0.12)),
    _MeshKind('toys/prism.obj', (0.04, 0.12)),
    _MeshKind('toys/shape_sorter.obj', (0.1, 0.3)),
    _MeshKind('toys/concave_box.obj', (0.2, 0.5)),
    _MeshKind('racecar/meshes/cone.obj', (0.1, 0.5)),
    _MeshKind('cube.obj', (0.05, 0.6)),
)
_EXCLUDED_BLOBS = frozenset({167, 168, 178, 292, 295, 297, 350, 479, 507, 578, 602, 824})
BLOB_MESHES = tuple(f'random_urdfs/{i:03d}/{i:03d}.obj' for i in range(1000) if i not in _EXCLUDED_BLOBS)
_BLOB_SIZE = (0.05, 0.6)

_GREYS = {'white': 0.92, 'gray': 0.5, 'black': 0.1}


# ---- oriented boxes (yaw only): (centre xy (2,), half extents xy (2,), yaw, z min, z max)

@dataclass(frozen=True)
class _Box:
    centre: np.ndarray
    half: np.ndarray
    yaw: float
    z0: float
    z1: float

    def axes(self) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, s], [-s, c]])  # rows: the box's x and y axes in world xy

    def corners(self) -> np.ndarray:
        a = self.axes()
        signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]])
        return self.centre + (signs * self.half) @ a  # (4, 2)


def _overlap(a: _Box, b: _Box, gap: float = 0.0) -> bool:
    """True when the boxes, grown by ``gap`` metres in xy, share volume (touching faces do not)."""
    if min(a.z1, b.z1) - max(a.z0, b.z0) <= 1e-6:
        return False
    ca, cb = a.corners(), b.corners()
    for axis in np.concatenate([a.axes(), b.axes()]):
        pa, pb = ca @ axis, cb @ axis
        if pa.max() + gap <= pb.min() or pb.max() + gap <= pa.min():
            return False
    return True


def _world_box(lo: np.ndarray, hi: np.ndarray, xy: tuple[float, float], yaw: float) -> _Box:
    """World box of a local axis-aligned box (lo, hi) of a body at ``xy`` turned by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    mid = (lo[:2] + hi[:2]) / 2
    centre = np.array([xy[0] + c * mid[0] - s * mid[1], xy[1] + s * mid[0] + c * mid[1]])
    return _Box(centre, (hi[:2] - lo[:2]) / 2, float(yaw), float(lo[2]), float(hi[2]))


def item_box(item: ObjectSpec) -> _Box:
    """The world oriented box of a clutter item (or any ObjectSpec) from its exact box."""
    lo = item.box_offset - item.box_size / 2
    return _world_box(lo, lo + item.box_size, item.position_xy, item.yaw)


def part_boxes(obj: ObjectSpec) -> list[_Box]:
    """World oriented boxes of every part of ``obj``."""
    from .scene import part_bounds
    return [_world_box(*part_bounds(p), obj.position_xy, obj.yaw) for p in obj.parts]


# ---- supports: top faces of furniture parts

@dataclass(frozen=True)
class Support:
    """A horizontal top face on which items may stand: a rectangle in its object's frame."""

    object_index: int
    kind: str  # 'table', 'shelf' or 'top'
    centre: np.ndarray  # (2,) local xy of the face centre, m
    half: np.ndarray  # (2,) half extents of the face, m
    z: float  # height of the face above the floor, m
    headroom: float  # free height above the face (to the next part above it), m
    xy: tuple[float, float]  # the object's position
    yaw: float  # the object's yaw

    @property
    def area(self) -> float:
        return float(4 * self.half[0] * self.half[1])

    def to_world(self, local: np.ndarray) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([self.xy[0] + c * local[0] - s * local[1], self.xy[1] + s * local[0] + c * local[1]])

    def contains(self, box: _Box) -> bool:
        """Whether ``box``'s footprint lies fully on the face."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        rel = box.corners() - np.asarray(self.xy)
        local = rel @ np.array([[c, -s], [s, c]])  # world -> object frame
        return bool((np.abs(local - self.centre) <= self.half + 1e-9).all())


def _support_parts(category: str, parts: list[Part]) -> list[tuple[int, str]]:
    """(part index, support kind) of the parts of a ``category`` model whose top holds items."""
    boxes = [i for i, p in enumerate(parts) if p.kind == 'box']
    if category == 'table':
        return [(max(boxes, key=lambda i: parts[i].position[2]), 'table')] if boxes else []
    if category == 'bookshelf':  # the boards: thin full-width plates
        return [(i, 'shelf') for i in boxes if parts[i].dims[2] < 0.02 and parts[i].dims[1] > parts[i].dims[0]]
    if category in ('cabinet', 'bed', 'sofa', 'box'):  # body, mattress, seat, crate: the first part
        return [(0, 'top')] if parts and parts[0].kind == 'box' else []
    if category == 'tv':  # the stand's base plate
        return [(0, 'top')] if parts and parts[0].kind == 'box' else []
    return []


def find_supports(layout: SceneLayout) -> list[Support]:
    """Every top face of ``layout.objects`` that may hold clutter, with its headroom."""
    from .scene import part_bounds
    h_room = float(layout.room_size[2])
    supports = []
    for index, obj in enumerate(layout.objects):
        bounds = [part_bounds(p) for p in obj.parts]
        for k, kind in _support_parts(obj.category, obj.parts):
            lo, hi = bounds[k]
            headroom = h_room - hi[2]
            area = np.prod(hi[:2] - lo[:2])
            for j, (lo2, hi2) in enumerate(bounds):
                shared = np.prod(np.clip(np.minimum(hi[:2], hi2[:2]) - np.maximum(lo[:2], lo2[:2]), 0, None))
                if j != k and lo2[2] >= hi[2] - 1e-9 and shared >= 0.9 * area:  # a board above: a ceiling
                    headroom = min(headroom, lo2[2] - hi[2])  # what covers part of the face is an obstacle
            supports.append(Support(index, kind, (lo[:2] + hi[:2]) / 2, (hi[:2] - lo[:2]) / 2, float(hi[2]),
                                    float(headroom), obj.position_xy, float(obj.yaw)))
    return supports


# ---- items

def _colour(rng: np.random.Generator, config: ClutterConfig) -> tuple[str, tuple[float, float, float, float]]:
    if rng.random() < config.grey_probability:
        name = list(_GREYS)[rng.integers(len(_GREYS))]
        rgb = np.full(3, _GREYS[name] + rng.uniform(-0.06, 0.06))
    else:
        names = [n for n in COLOURS if n not in _GREYS]
        name = names[rng.integers(len(names))]
        rgb = np.asarray(COLOURS[name]) + rng.uniform(-0.08, 0.08, 3)
    return name, tuple(float(v) for v in np.clip(rgb, 0, 1)) + (1.0,)


def _mesh_parts(kind: _MeshKind, size: float) -> list[Part]:
    from .scene import part_bounds
    lo, hi = part_bounds(Part('mesh', kind.aspect, (0, 0, 0), kind.mesh, kind.quat))
    scale = size / float(np.max(hi - lo))
    return [Part('mesh', tuple(float(a * scale) for a in kind.aspect), (0.0, 0.0, 0.0), kind.mesh, kind.quat)]


def _primitive_parts(rng: np.random.Generator, lo: float, hi: float, book: bool) -> list[Part] | None:
    """A book (upright thin box), can (cylinder) or box of largest extent in [lo, hi] m."""
    if book:
        height = rng.uniform(max(lo, 0.15), max(hi, 0.15)) if hi >= 0.15 else rng.uniform(lo, hi)
        depth, thick = height * rng.uniform(0.65, 0.8), rng.uniform(0.015, 0.06)
        return [Part('box', (thick / 2, depth / 2, height / 2), (0.0, 0.0, height / 2))]
    size = rng.uniform(lo, hi)
    if rng.random() < 0.4:
        r, length = size * rng.uniform(0.2, 0.4), size
        return [Part('cylinder', (r, length), (0.0, 0.0, length / 2))]
    half = size / 2 * np.array([1.0, rng.uniform(0.4, 1.0), rng.uniform(0.2, 1.0)])
    return [Part('box', tuple(float(v) for v in half), (0.0, 0.0, float(half[2])))]


def _draw_parts(rng: np.random.Generator, config: ClutterConfig, size_range: tuple[float, float],
                book: bool) -> list[Part] | None:
    """Parts of one item whose largest extent is in ``size_range`` (None if no pool fits)."""
    u = rng.random()
    if book or u < config.primitive_fraction:
        return _primitive_parts(rng, *size_range, book)
    if u < config.primitive_fraction + config.blob_fraction:
        lo, hi = max(size_range[0], _BLOB_SIZE[0]), min(size_range[1], _BLOB_SIZE[1])
        mesh = BLOB_MESHES[rng.integers(len(BLOB_MESHES))]
        return _mesh_parts(_MeshKind(mesh, _BLOB_SIZE), rng.uniform(lo, hi)) if lo <= hi else None
    fitting = [k for k in HOUSEHOLD_MESHES if k.size[0] <= size_range[1] and k.size[1] >= size_range[0]]
    if not fitting:
        return None
    kind = fitting[rng.integers(len(fitting))]
    lo, hi = max(size_range[0], kind.size[0]), min(size_range[1], kind.size[1])
    return _mesh_parts(kind, rng.uniform(lo, hi))


def _make_item(parts: list[Part], xy: np.ndarray, yaw: float, z: float, colour) -> ObjectSpec:
    """An item with its bottom at height ``z``: the support height goes into the parts' z."""
    parts, offset, size = _centre_parts(parts)
    lifted = [Part(p.kind, p.dims, (p.position[0], p.position[1], p.position[2] + z), p.mesh, p.quat_xyzw)
              for p in parts]
    return ObjectSpec(0, 'clutter', colour[0], colour[1], lifted, (float(xy[0]), float(xy[1])), float(yaw),
                      offset + np.array([0.0, 0.0, z]), size)


def add_clutter(layout: SceneLayout, config: ClutterConfig, rng: np.random.Generator) -> None:
    """Add clutter items to ``layout.clutter`` in place (``layout.objects`` is untouched).

    Per supporting top face (``find_supports``), with probability ``surface_probability``,
    Poisson(density x area) items; then, with probability ``floor_probability``,
    Poisson(``floor_density`` x floor area) floor items, while the camera's free floor
    (``free_space_grid``) keeps at least 1 - ``max_floor_fraction`` of its cells. An item
    that finds no place in ``attempts`` tries is dropped; at most ``max_items`` in all.
    """
    config.validate()
    obstacles = [b for obj in layout.objects for b in part_boxes(obj)]
    obstacles += [item_box(c) for c in layout.clutter]
    density = {'table': config.table_density, 'shelf': config.shelf_density, 'top': config.top_density}

    def full() -> bool:
        return len(layout.clutter) >= config.max_items

    for support in find_supports(layout):
        if full() or rng.random() >= config.surface_probability:
            continue
        for _ in range(rng.poisson(density[support.kind] * support.area)):
            if full():
                break
            book = support.kind == 'shelf' and rng.random() < config.shelf_book_fraction
            fit = min(config.desk_size[1], support.headroom - 0.01, 2 * float(support.half.max()))
            if fit < config.desk_size[0]:
                break
            for _ in range(config.attempts):
                parts = _draw_parts(rng, config, (config.desk_size[0], fit), book)
                if parts is None:
                    continue
                local = support.centre + rng.uniform(-1, 1, 2) * support.half
                yaw = support.yaw + (rng.choice([0.0, np.pi / 2, np.pi, -np.pi / 2]) + rng.normal(0, 0.08)
                                     if book else rng.uniform(-np.pi, np.pi))
                item = _make_item(parts, support.to_world(local), yaw, support.z, _colour(rng, config))
                box = item_box(item)
                if (item.box_size[2] <= support.headroom - 0.005 and support.contains(box)
                        and not any(_overlap(box, o) for o in obstacles)):
                    layout.clutter.append(item)
                    obstacles.append(box)
                    break
    if full() or rng.random() >= config.floor_probability:
        return
    w, d = layout.room_size[:2]
    free, origin = free_space_grid(layout)
    budget = int(np.floor(config.max_floor_fraction * free.sum()))
    ys, xs = origin[1] + 0.1 * np.arange(free.shape[0]), origin[0] + 0.1 * np.arange(free.shape[1])
    X, Y = np.meshgrid(xs, ys)
    taken = np.zeros_like(free)
    for _ in range(rng.poisson(config.floor_density * w * d)):
        if full():
            break
        for _ in range(config.attempts):
            parts = _draw_parts(rng, config, config.floor_size, False)
            if parts is None:
                continue
            xy = rng.uniform(-1, 1, 2) * (np.array([w, d]) / 2 - 0.05)
            item = _make_item(parts, xy, rng.uniform(-np.pi, np.pi), 0.0, _colour(rng, config))
            box = item_box(item)
            inside = (np.abs(box.corners()) <= np.array([w, d]) / 2 - 0.02).all()
            if not inside or any(_overlap(box, o, gap=0.03) for o in obstacles):
                continue
            blocked = free & (np.hypot(X - xy[0], Y - xy[1]) <= _footprint_radius(item.box_size) + 0.35)
            if (taken | blocked).sum() > budget:
                continue
            layout.clutter.append(item)
            obstacles.append(box)
            taken |= blocked
            break
