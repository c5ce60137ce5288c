"""Camera intrinsics and trajectories for rendered sequences (pure numpy).

Trajectories: ``walk`` (through free floor space at 0.3-1.5 m/s with a slow pan about the
direction of travel), ``orbit`` (around an object, looking at it), ``pan`` (standing,
turning back and forth); all with hand-held jitter, camera height 0.8-1.8 m (``height_range``:
a robot's camera lower), positions in
the free-space grid of the layout (clear of walls and object footprints). ``close`` (not in
the default mix) inspects one object from 0.25-0.8 m at 0.05-0.25 m/s, the camera just
above it: the desk-distance views that real hand-held recordings have and rooms seen from
a walk do not. ``rpy`` (not in the default mix) stands nearly still (drift of 0.01-0.04 m/s)
and rolls, pitches and yaws by 15-35 deg at up to 40-90 deg/s, one axis after another, like
the TUM fr1_rpy recording, looking into the room (at least ``RPY_MIN_VIEW`` m of it ahead).
``tabletop`` (not in any default mix) looks down at a table or another furniture top from
0.3-0.9 m, as a manipulator's or a hand-held camera does, drifting slowly around a point on
it (an item of clutter when the top holds any); almost all of the view is the top and the
things on it, 0.3-1 m away: the distances of a camera over a desk (`realsense_box`) that
neither walks nor ``close`` views hold. ``desk`` (not in any default mix) is a person at a
table's edge, seated or standing: the camera 0.1-0.5 m outside one edge of a table (or another
furniture top) and 0.3-0.7 m above it, looking down across the edge at a point of the top,
swaying slowly; below the edge the image shows the floor, farther than the top above it,
the view that breaks the "bottom of the image is near" prior a room seen from a walk teaches
(`tum_fr1_rpy`'s desk). ``REAL_LIKE_TRAJECTORY_MIX`` is the mix of the domain-randomized
datasets.
Poses are optical camera-to-world (REP 103), built from a body pose (x forward, y left,
z up) with ``geovr_ros.geometry.body_to_optical``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geovr_ros.geometry import body_to_optical, intrinsics_from_fov

from .errors import GenerationError
from .scene import SceneLayout, free_space_grid

RESOLUTIONS_4_3 = ((160, 120), (256, 192), (320, 240), (384, 288), (512, 384), (640, 480))
RESOLUTIONS_16_9 = ((192, 108), (256, 144), (320, 180), (480, 270), (640, 360))
HFOV_RANGE_DEG = (45.0, 110.0)
MAX_PRINCIPAL_OFFSET = 0.10  # fraction of the image size
SPEED_RANGE = (0.3, 1.5)  # m/s
HEIGHT_RANGE = (0.8, 1.8)  # m
TRAJECTORY_KINDS = ('walk', 'orbit', 'pan', 'close', 'rpy', 'tabletop', 'desk')
DEFAULT_TRAJECTORY_MIX = ('walk', 'walk', 'orbit', 'pan')  # drawn uniformly: half walks
REAL_LIKE_TRAJECTORY_MIX = ('walk', 'walk', 'orbit', 'pan', 'close', 'rpy')  # randomized datasets
CLOSE_STANDOFF = (0.25, 0.8)  # m from the object's footprint circle
CLOSE_SPEED = (0.05, 0.25)  # m/s
TABLETOP_RANGE = (0.3, 0.9)  # m from the camera to the point of the top it looks at
TABLETOP_ELEVATION_DEG = (25.0, 65.0)  # how far below the horizon that point lies
TABLETOP_SPEED = (0.03, 0.12)  # m/s
DESK_BACK = (0.1, 0.5)  # m from the top's edge out to the camera
DESK_RISE = (0.3, 0.7)  # m of the camera above the top (seated to standing at a 0.75 m table)
DESK_LOOK_IN = (0.15, 0.8)  # m from the edge in to the point of the top looked at
DESK_SWAY_DEG = (3.0, 15.0)  # amplitude of the slow yaw sway
DESK_DRIFT = (0.0, 0.08)  # m/s along the edge
DESK_TABLE_PREFERENCE = 0.7  # how often a room with a table looks across a table rather than any top
RPY_AMPLITUDE_DEG = (15.0, 35.0)  # of each of roll, pitch and yaw
RPY_PEAK_RATE_DEG_S = (40.0, 90.0)  # angular speed at the zero crossing of each axis
RPY_DRIFT = (0.01, 0.04)  # m/s
RPY_MIN_VIEW = 1.2  # m of room ahead over the whole yaw swing (walls and tall objects)
WALK_TURN_RATE = 2.5  # rad/s (143 deg/s): how fast a walk turns towards its look target
WALK_SPIN_RATE = 1.5  # rad/s: a boxed-in walk turning on the spot, for one second


def parse_resolution(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H) pixels, each 16..4096."""
    try:
        w, h = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise GenerationError(f'resolution must look like 320x240, got {text!r}') from None
    if not (16 <= w <= 4096 and 16 <= h <= 4096):
        raise GenerationError(f'resolution {text!r} out of range 16..4096 pixels per side')
    return w, h


def sample_camera(rng: np.random.Generator, resolution: tuple[int, int] | None = None
                  ) -> tuple[np.ndarray, tuple[int, int]]:
    """Per-sequence intrinsics: K (3, 3) and (W, H); hfov 45-110 deg, principal point offset
    up to 10 % of the image size, 4:3 or 16:9 resolutions 160x120..640x480 unless given."""
    if resolution is None:
        pool = RESOLUTIONS_4_3 if rng.random() < 0.6 else RESOLUTIONS_16_9
        resolution = pool[rng.integers(len(pool))]
    w, h = resolution
    hfov = np.deg2rad(rng.uniform(*HFOV_RANGE_DEG))
    K = intrinsics_from_fov(hfov, (w, h))
    K[1, 1] *= rng.uniform(0.98, 1.02)
    K[0, 2] += rng.uniform(-MAX_PRINCIPAL_OFFSET, MAX_PRINCIPAL_OFFSET) * w
    K[1, 2] += rng.uniform(-MAX_PRINCIPAL_OFFSET, MAX_PRINCIPAL_OFFSET) * h
    return K, (int(w), int(h))


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def camera_pose(position: np.ndarray, yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Optical camera-to-world (4, 4) of a camera at ``position`` (3,) metres heading ``yaw``
    (radians about world z from +x), tilted down by ``pitch`` and rolled by ``roll`` radians."""
    T_world_body = np.eye(4)
    T_world_body[:3, :3] = _rot_z(yaw) @ _rot_y(pitch) @ _rot_x(roll)
    T_world_body[:3, 3] = position
    return body_to_optical(T_world_body)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, amplitude: float, dims: int) -> np.ndarray:
    """(len(t), dims) sum of 3 random sinusoids (0.2-2 Hz) per dim, std about ``amplitude``."""
    out = np.zeros((len(t), dims))
    for _ in range(3):
        f = rng.uniform(0.2, 2.0, dims)
        ph = rng.uniform(0, 2 * np.pi, dims)
        out += np.sin(2 * np.pi * f * t[:, None] + ph) * rng.uniform(0.5, 1.0, dims)
    return out * amplitude / np.sqrt(3 * 0.5 * 0.6)


@dataclass
class _Free:
    grid: np.ndarray
    origin: np.ndarray
    res: float

    def ok(self, xy: np.ndarray) -> bool:
        j, i = np.floor((np.asarray(xy) - self.origin) / self.res + 0.5).astype(int)
        return bool(0 <= i < self.grid.shape[0] and 0 <= j < self.grid.shape[1] and self.grid[i, j])

    def segment_ok(self, a: np.ndarray, b: np.ndarray) -> bool:
        n = max(2, int(np.linalg.norm(b - a) / (self.res / 2)) + 1)
        return all(self.ok(a + (b - a) * s) for s in np.linspace(0, 1, n))

    def random_point(self, rng: np.random.Generator) -> np.ndarray:
        cells = np.argwhere(self.grid)
        i, j = cells[rng.integers(len(cells))]
        return self.origin + np.array([j, i]) * self.res


def _walk(rng, free: _Free, n: int, step: float, start: np.ndarray, look_targets: np.ndarray,
          fps: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) positions and (n,) headings of a walk between random free waypoints, ``step`` m
    a frame at ``fps`` frames a second.

    Per leg the camera turns (at most ``WALK_TURN_RATE``: 14.3 deg a frame at 10 fps, 4.8 at
    30) towards a look target (an object or the room centre; ``look_targets`` (M, 2)), so it
    looks into the room, not at walls. The turn is a rate, not a per-frame step: a sequence
    rendered at 30 fps follows the same path in time as at 10 fps (until session 54 each frame
    turned up to 14.3 deg at any frame rate: 430 deg/s at 30 fps).
    """
    max_turn, spin = WALK_TURN_RATE / fps, WALK_SPIN_RATE / fps
    positions, headings = [], []
    pos = start.copy()
    heading = rng.uniform(-np.pi, np.pi)
    while len(positions) < n:
        target = None
        for _ in range(40):
            cand = free.random_point(rng)
            dist = np.linalg.norm(cand - pos)
            if 0.8 < dist < 5.0 and free.segment_ok(pos, cand):
                target = cand
                break
        look = look_targets[rng.integers(len(look_targets))]
        if target is None:  # boxed in: turn on the spot
            for _ in range(min(int(round(fps)), n - len(positions))):
                heading += spin
                positions.append(pos.copy())
                headings.append(heading)
            continue
        k = int(np.ceil(np.linalg.norm(target - pos) / step))
        for s in range(1, k + 1):
            here = pos + (target - pos) * s / k
            to_look = look - here
            if np.linalg.norm(to_look) < 0.6:
                to_look = target - pos
            diff = (np.arctan2(to_look[1], to_look[0]) - heading + np.pi) % (2 * np.pi) - np.pi
            heading += np.clip(diff, -max_turn, max_turn)
            positions.append(here)
            headings.append(heading)
            if len(positions) >= n:
                break
        pos = target
    return np.asarray(positions[:n]), np.asarray(headings[:n])


def _close_inspection(rng: np.random.Generator, layout: SceneLayout, t: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """A slow arc around one object at desk distance: (xy (N, 2), heading (N,), height m,
    pitch rad), or None when no object leaves room for it (20 tries).

    The camera stays 0.15 m inside the walls and 0.1 m outside every object's and every
    floor clutter item's footprint circle, and looks at the object's centre (or just below
    eye level for tall objects).
    """
    w, d = layout.room_size[:2]
    objects = [o.scene_object() for o in layout.objects]
    circles = [(o.centre[:2], float(np.hypot(*o.size[:2]) / 2)) for o in objects]
    obstacles = circles + [(np.asarray(item.position_xy), float(np.hypot(*item.box_size[:2]) / 2))
                           for item in layout.clutter if item.box_offset[2] - item.box_size[2] / 2 <= 1e-6]
    for _ in range(20 if objects else 0):
        index = int(rng.integers(len(objects)))
        obj = objects[index]
        radius = circles[index][1] + rng.uniform(*CLOSE_STANDOFF)
        speed = rng.uniform(*CLOSE_SPEED)
        angles = rng.uniform(-np.pi, np.pi) + rng.choice([-1.0, 1.0]) * speed / radius * t
        xy = obj.centre[:2] + radius * np.stack([np.cos(angles), np.sin(angles)], -1)
        inside = (np.abs(xy[:, 0]) < w / 2 - 0.15).all() and (np.abs(xy[:, 1]) < d / 2 - 0.15).all()
        clear = all((np.linalg.norm(xy - c, axis=1) > r + 0.1).all() for c, r in obstacles)
        if not (inside and clear):
            continue
        top = obj.centre[2] + obj.size[2] / 2
        height = float(np.clip(top + rng.uniform(0.05, 0.5), 0.3, HEIGHT_RANGE[1]))
        look_z = obj.centre[2] if top < height else height - rng.uniform(0.0, 0.3)
        heading = np.arctan2(obj.centre[1] - xy[:, 1], obj.centre[0] - xy[:, 0])
        return xy, heading, height, float(np.arctan2(height - look_z, radius))
    return None


def _obstacles(layout: SceneLayout, item_boxes: list, floor_clutter_blocks: bool = False
               ) -> list[tuple[np.ndarray, float, float]]:
    """(centre xy (2,) m, footprint radius m, top z m) of every object and clutter item (its
    box from ``clutter.item_box``); with ``floor_clutter_blocks`` an item standing on the floor
    blocks a camera at any height (nobody stands on it)."""
    objects = [o.scene_object() for o in layout.objects]
    return ([(o.centre[:2], float(np.hypot(*o.size[:2]) / 2), float(o.centre[2] + o.size[2] / 2)) for o in objects]
            + [(b.centre, float(np.hypot(*b.half)), np.inf if floor_clutter_blocks and b.z0 < 1e-3 else b.z1)
               for b in item_boxes])


def _stands_clear(layout: SceneLayout, xy: np.ndarray, height: float, obstacles: list) -> bool:
    """Whether a camera path ``xy`` (N, 2) at ``height`` m stays 0.15 m inside the walls and
    out of the footprint of every obstacle (``_obstacles``) reaching up to within 0.05 m of it."""
    w, d = layout.room_size[:2]
    inside = (np.abs(xy[:, 0]) < w / 2 - 0.15).all() and (np.abs(xy[:, 1]) < d / 2 - 0.15).all()
    return bool(inside and all((np.linalg.norm(xy - centre, axis=1) > radius).all() or top < height - 0.05
                               for centre, radius, top in obstacles))


def _tabletop_view(rng: np.random.Generator, layout: SceneLayout, t: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """A slow arc above a furniture top, looking down at one point of it from
    ``TABLETOP_RANGE``: (xy (N, 2), heading (N,), height m, pitch rad), or None when no top
    leaves room for it (20 tries).

    The point is an item of clutter on the top (four times in five, when it holds any) or a
    point of the top's inner part. The camera stays 0.15 m inside the walls, under the top's
    headroom, and never inside the footprint of an object or clutter item that reaches up to
    within 0.05 m of it.
    """
    from .clutter import find_supports, item_box
    supports = [s for s in find_supports(layout) if s.kind in ('table', 'top') and s.area >= 0.08]
    item_boxes = [item_box(c) for c in layout.clutter]
    obstacles = _obstacles(layout, item_boxes)
    for _ in range(20 if supports else 0):
        top = supports[int(rng.integers(len(supports)))]
        on_top = [b for b in item_boxes if abs(b.z0 - top.z) < 1e-3 and top.contains(b)]
        if on_top and rng.random() < 0.8:
            target = np.asarray(on_top[int(rng.integers(len(on_top)))].centre, float)
        else:
            target = top.to_world(top.centre + rng.uniform(-0.6, 0.6, 2) * top.half)
        reach = rng.uniform(*TABLETOP_RANGE)
        elevation = np.deg2rad(rng.uniform(*TABLETOP_ELEVATION_DEG))
        radius, rise = reach * np.cos(elevation), reach * np.sin(elevation)
        if rise > top.headroom - 0.1:
            continue
        height = top.z + rise
        speed = rng.uniform(*TABLETOP_SPEED)
        angles = rng.uniform(-np.pi, np.pi) + rng.choice([-1.0, 1.0]) * speed / radius * t
        xy = target + radius * np.stack([np.cos(angles), np.sin(angles)], -1)
        if not _stands_clear(layout, xy, height, obstacles):
            continue
        heading = np.arctan2(target[1] - xy[:, 1], target[0] - xy[:, 0])
        return xy, heading, float(height), float(elevation)
    return None


def _desk_edge_view(rng: np.random.Generator, layout: SceneLayout, t: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """A person at a furniture top's edge looking down across it: (xy (N, 2), heading (N,),
    height m, pitch rad), or None when no top leaves room for it (20 tries).

    The camera stands ``DESK_BACK`` outside one edge of a table (``DESK_TABLE_PREFERENCE`` of the
    time where the room has one) or another top (0.3-1.2 m high, at least 0.08 m^2),
    ``DESK_RISE`` above it, looking at a point ``DESK_LOOK_IN`` inside that edge, drifting
    along the edge and swaying its heading. It stays 0.15 m inside the walls, out
    of the footprint of every item of floor clutter and of every object or item on a top that
    reaches up to within 0.05 m of it.
    """
    from .clutter import find_supports, item_box
    supports = [s for s in find_supports(layout)
                if s.kind in ('table', 'top') and s.area >= 0.08 and 0.3 <= s.z <= 1.2]
    obstacles = _obstacles(layout, [item_box(c) for c in layout.clutter], floor_clutter_blocks=True)
    tables = [s for s in supports if s.kind == 'table']
    for _ in range(20 if supports else 0):
        pool = tables if tables and rng.random() < DESK_TABLE_PREFERENCE else supports
        top = pool[int(rng.integers(len(pool)))]
        axis, side = int(rng.integers(2)), float(rng.choice([-1.0, 1.0]))
        normal_local = np.zeros(2)
        normal_local[axis] = side
        along_local = np.array([-normal_local[1], normal_local[0]])
        edge = top.centre + normal_local * top.half + along_local * rng.uniform(-0.7, 0.7) * top.half[1 - axis]
        look_in = min(rng.uniform(*DESK_LOOK_IN), 1.8 * float(top.half[axis]))
        back, rise = rng.uniform(*DESK_BACK), rng.uniform(*DESK_RISE)
        if rise > top.headroom - 0.1:
            continue
        c, s = np.cos(top.yaw), np.sin(top.yaw)
        rotation = np.array([[c, -s], [s, c]])
        normal, along = rotation @ normal_local, rotation @ along_local
        target = top.to_world(edge - normal_local * look_in)
        drift = rng.uniform(*DESK_DRIFT) * rng.choice([-1.0, 1.0])
        xy = top.to_world(edge) + normal * back + along * drift * t[:, None]
        height = top.z + rise
        if not _stands_clear(layout, xy, height, obstacles):
            continue
        sway = np.deg2rad(rng.uniform(*DESK_SWAY_DEG)) * np.sin(2 * np.pi * t / rng.uniform(4.0, 9.0)
                                                                 + rng.uniform(0, 2 * np.pi))
        heading = np.arctan2(target[1] - xy[:, 1], target[0] - xy[:, 0]) + sway
        return xy, heading, float(height), float(np.arctan2(rise, back + look_in))
    return None


def _view_distance(layout: SceneLayout, xy: np.ndarray, yaws: np.ndarray, height: float) -> np.ndarray:
    """(len(yaws),) metres from ``xy`` (2,) to the first wall or object taller than
    ``height`` - 0.5 m (its footprint circle) along each heading in ``yaws`` (radians)."""
    w, d = layout.room_size[:2]
    direction = np.stack([np.cos(yaws), np.sin(yaws)], -1)  # (Y, 2)
    with np.errstate(divide='ignore'):
        to_wall = (np.sign(direction) * np.array([w / 2, d / 2]) - xy) / direction
    dist = np.nanmin(np.where(direction != 0, to_wall, np.inf), axis=1)
    for obj in layout.objects:
        so = obj.scene_object()
        if so.centre[2] + so.size[2] / 2 < height - 0.5:
            continue
        r = float(np.hypot(*so.size[:2]) / 2)
        rel = so.centre[:2] - xy
        along = direction @ rel
        miss2 = rel @ rel - along ** 2
        hit = (along > 0) & (miss2 < r * r)
        dist = np.where(hit, np.minimum(dist, along - np.sqrt(np.maximum(r * r - miss2, 0.0))), dist)
    return dist


def _rpy(rng: np.random.Generator, layout: SceneLayout, free: _Free, t: np.ndarray, start: np.ndarray,
         height: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Standing nearly still, turning about all three axes: (xy (N, 2), heading (N,),
    pitch (N,), roll (N,)) radians.

    Each axis oscillates with its own amplitude (``RPY_AMPLITUDE_DEG``) at a period giving a
    peak rate in ``RPY_PEAK_RATE_DEG_S``, under a slow envelope (8-16 s) that lets the axes take
    turns. Of ``start`` and 15 more free points the first whose yaw swing keeps
    ``RPY_MIN_VIEW`` m of room ahead is used (else the one with the most), heading towards the
    room centre or an object.
    """
    amp = np.deg2rad(rng.uniform(*RPY_AMPLITUDE_DEG, 3))  # yaw, pitch, roll
    period = 2 * np.pi * amp / np.deg2rad(rng.uniform(*RPY_PEAK_RATE_DEG_S, 3))
    phase = rng.uniform(0, 2 * np.pi, 3)
    env_period, env_phase = rng.uniform(8.0, 16.0), rng.uniform(0, 2 * np.pi)
    envelope = 0.3 + 0.7 * (0.5 + 0.5 * np.sin(2 * np.pi * t[:, None] / env_period + env_phase
                                                 + np.array([0.0, 2.0, 4.0]) * np.pi / 3))
    swing = amp * envelope * np.sin(2 * np.pi * t[:, None] / period + phase)  # (N, 3)
    sweep = np.linspace(-amp[0] - 0.2, amp[0] + 0.2, 9)
    looks = [np.zeros(2)] + [np.asarray(o.position_xy, float) for o in layout.objects]
    best = None
    for k in range(16):
        xy0 = start if k == 0 else free.random_point(rng)
        look = looks[rng.integers(len(looks))]
        if np.linalg.norm(look - xy0) < 0.6:
            look = np.zeros(2) if np.linalg.norm(xy0) >= 0.6 else xy0 + rng.normal(size=2)
        yaw0 = float(np.arctan2(*(look - xy0)[::-1])) + rng.uniform(-0.3, 0.3)
        view = float(_view_distance(layout, xy0, yaw0 + sweep, height).min())
        if best is None or view > best[0]:
            best = (view, xy0, yaw0)
        if view >= RPY_MIN_VIEW:
            break
    _, xy0, yaw0 = best
    drift = rng.normal(size=2)
    drift *= rng.uniform(*RPY_DRIFT) / max(np.linalg.norm(drift), 1e-9)
    xy = xy0 + drift * t[:, None]
    if not all(free.ok(p) for p in xy):
        xy = np.repeat(xy0[None], len(t), 0)
    pitch_centre = np.deg2rad(rng.uniform(0.0, 15.0))
    return xy, yaw0 + swing[:, 0], pitch_centre + swing[:, 1], swing[:, 2]


def sample_trajectory(rng: np.random.Generator, layout: SceneLayout, num_frames: int, fps: float = 10.0,
                      kind: str | None = None, kinds: tuple[str, ...] = DEFAULT_TRAJECTORY_MIX,
                      height_range: tuple[float, float] = HEIGHT_RANGE) -> tuple[np.ndarray, np.ndarray, str]:
    """Camera poses for ``num_frames`` frames at ``fps``, the camera ``height_range`` (m) above
    the floor (an orbit rises above its object, a close view sits just above its object, a
    tabletop or desk view above the top it looks at).

    ``kind`` forces one of TRAJECTORY_KINDS; otherwise it is drawn uniformly from ``kinds``
    (repeats weigh). Returns T_world_cam (N, 4, 4) optical camera-to-world, timestamps (N,)
    seconds and the kind actually rendered (an orbit, close, tabletop or desk view with no
    room for it falls back to 'walk'). Kinds draw from ``rng`` only in their own branch, so
    adding one leaves every other kind's path unchanged.
    """
    requested = (kind,) if kind else tuple(kinds)
    unknown = [name for name in requested if name not in TRAJECTORY_KINDS]
    if unknown or not requested:
        raise GenerationError(f'unknown trajectory kinds {unknown or list(requested)}; '
                              f'expected some of {TRAJECTORY_KINDS}')
    if num_frames < 1:
        raise GenerationError(f'num_frames must be >= 1, got {num_frames}')
    if fps <= 0:
        raise GenerationError(f'fps must be > 0, got {fps}')
    grid, origin = free_space_grid(layout)
    if not grid.any():
        grid, origin = free_space_grid(layout, clearance=0.15)
    if not grid.any():
        raise GenerationError(f'room {layout.room_size.tolist()} has no free floor space for a camera')
    free = _Free(grid, origin, 0.1)
    t = np.arange(num_frames) / fps
    speed = rng.uniform(*SPEED_RANGE)
    step = speed / fps
    kind = kind or str(rng.choice(list(kinds)))
    height = rng.uniform(*height_range)
    pitch0 = np.deg2rad(rng.uniform(0, 25))
    start = free.random_point(rng)
    xy = heading = None
    if kind == 'orbit' and layout.objects:
        obj = layout.objects[rng.integers(len(layout.objects))].scene_object()
        radius = float(np.hypot(*obj.size[:2]) / 2 + rng.uniform(0.8, 2.0))
        a0, direction = rng.uniform(-np.pi, np.pi), rng.choice([-1.0, 1.0])
        angles = a0 + direction * speed / radius * t
        xy = obj.centre[:2] + radius * np.stack([np.cos(angles), np.sin(angles)], -1)
        if all(free.ok(p) for p in xy):
            heading = np.arctan2(obj.centre[1] - xy[:, 1], obj.centre[0] - xy[:, 0])
            height = float(np.clip(height, obj.size[2] + 0.3, max(height_range[1], HEIGHT_RANGE[1])))
            pitch0 = float(np.arctan2(height - obj.centre[2], radius))
        else:
            xy, kind = None, 'walk'
    if kind in ('close', 'tabletop', 'desk'):
        view = {'close': _close_inspection, 'tabletop': _tabletop_view, 'desk': _desk_edge_view}[kind](rng, layout, t)
        if view is None:
            kind = 'walk'
        else:
            xy, heading, height, pitch0 = view
    if kind == 'pan':
        rate = np.deg2rad(rng.uniform(20, 60))
        period = rng.uniform(3.0, 8.0)
        towards_centre = float(np.arctan2(-start[1], -start[0])) + rng.uniform(-0.5, 0.5)
        heading = towards_centre + rate * period / (2 * np.pi) * np.sin(2 * np.pi * t / period) * np.pi
        drift = rng.uniform(-1, 1, 2)
        drift *= 0.05 / max(np.linalg.norm(drift), 1e-9)
        xy = start + drift * t[:, None]
        if not all(free.ok(p) for p in xy):
            xy = np.repeat(start[None], num_frames, 0)
    roll = np.zeros(num_frames)
    if kind == 'rpy':
        xy, heading, pitch0, roll = _rpy(rng, layout, free, t, start, height)
    if xy is None:
        kind = 'walk'
        looks = np.array([[0.0, 0.0]] + [o.position_xy for o in layout.objects])
        xy, heading = _walk(rng, free, num_frames, step, start, looks, fps)
        pan_amp, pan_period = np.deg2rad(rng.uniform(0, 20)), rng.uniform(3.0, 8.0)
        heading = heading + pan_amp * np.sin(2 * np.pi * t / pan_period + rng.uniform(0, 2 * np.pi))
    jitter_pos = _smooth_noise(rng, t, 0.01, 3)
    jitter_ang = _smooth_noise(rng, t, np.deg2rad(rng.uniform(0.3, 1.2)), 3)
    bob = 0.02 if kind in ('close', 'rpy', 'tabletop', 'desk') else 0.05
    z = height + bob * np.sin(2 * np.pi * t / rng.uniform(4, 10)) + jitter_pos[:, 2]
    pitch = np.broadcast_to(pitch0, (num_frames,))
    poses = np.stack([camera_pose(np.array([xy[i, 0] + jitter_pos[i, 0], xy[i, 1] + jitter_pos[i, 1], z[i]]),
                                  heading[i] + jitter_ang[i, 0], pitch[i] + jitter_ang[i, 1],
                                  roll[i] + jitter_ang[i, 2])
                      for i in range(num_frames)])
    return poses, t.astype(np.float64), kind
