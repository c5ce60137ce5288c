"""In-memory types shared by the generator, the shard files and the real-recording loaders.

Conventions (docs/architecture.md): SI units; world frame z up with the floor at z = 0 for
rendered scenes; camera poses ``T_world_cam`` are camera-to-world 4x4 float64 matrices of
the *optical* camera frame (REP 103: x right, y down, z forward); depth is metres along the
optical z axis, NaN where invalid; K is in the pixel coordinates of the stored image with
pixel centres at integer coordinates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SceneObject:
    """One object of a rendered scene.

    ``centre`` (3,) metres in the world frame; ``size`` (3,) metres along the box's own
    x, y, z axes; ``yaw`` radians about world z (box x axis = (cos yaw, sin yaw, 0)).
    ``first_seen`` is the first frame whose segmentation shows at least the sequence's
    minimum pixel count of this instance (None: never seen).
    """

    instance_id: int
    category: str
    colour: str
    centre: np.ndarray
    size: np.ndarray
    yaw: float
    first_seen: int | None = None

    @property
    def label(self) -> str:
        return f'{self.colour} {self.category}'

    def corners_xy(self) -> np.ndarray:
        """(4, 2) floor-plane corners of the box footprint, metres, counter-clockwise."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        hx, hy = self.size[0] / 2, self.size[1] / 2
        local = np.array([[hx, hy], [-hx, hy], [-hx, -hy], [hx, -hy]])
        rot = np.array([[c, -s], [s, c]])
        return local @ rot.T + self.centre[:2]

    def to_json(self) -> dict[str, Any]:
        return {'instance_id': int(self.instance_id), 'category': self.category,
                'colour': self.colour, 'centre': [float(v) for v in self.centre],
                'size': [float(v) for v in self.size], 'yaw': float(self.yaw),
                'first_seen': None if self.first_seen is None else int(self.first_seen)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> 'SceneObject':
        return cls(int(d['instance_id']), d['category'], d['colour'],
                   np.asarray(d['centre'], dtype=np.float64), np.asarray(d['size'], dtype=np.float64),
                   float(d['yaw']), d.get('first_seen'))


@dataclass
class SceneGraph:
    """A room centred on the world origin: x in [-w/2, w/2], y in [-d/2, d/2], floor z = 0.

    ``room_size`` = (w, d, h) metres.
    """

    room_size: np.ndarray
    objects: list[SceneObject] = field(default_factory=list)

    @property
    def floor_area(self) -> float:
        return float(self.room_size[0] * self.room_size[1])

    def by_id(self, instance_id: int) -> SceneObject:
        for obj in self.objects:
            if obj.instance_id == instance_id:
                return obj
        raise KeyError(f'no object with instance id {instance_id}')

    def to_json(self) -> dict[str, Any]:
        return {'room_size': [float(v) for v in self.room_size],
                'objects': [o.to_json() for o in self.objects]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> 'SceneGraph':
        return cls(np.asarray(d['room_size'], dtype=np.float64),
                   [SceneObject.from_json(o) for o in d['objects']])


@dataclass
class Frame:
    """One frame: ``rgb`` uint8 (H, W, 3); ``depth`` float32 (H, W) metres, NaN invalid;
    ``segmentation`` int32 (H, W) instance ids (0 = room/background) or None;
    ``K`` float64 (3, 3); ``T_world_cam`` float64 (4, 4) optical camera-to-world;
    ``timestamp`` float seconds."""

    rgb: np.ndarray
    depth: np.ndarray | None
    K: np.ndarray
    T_world_cam: np.ndarray
    timestamp: float
    segmentation: np.ndarray | None = None


@dataclass
class Sequence:
    """A recording or rendered sequence of N frames of one size (H, W).

    Arrays are stacked over frames: ``rgb`` uint8 (N, H, W, 3); ``depth`` float32
    (N, H, W) metres along optical z, NaN invalid (None when the source has no depth);
    ``segmentation`` int32 (N, H, W) or None; ``K`` float64 (N, 3, 3);
    ``T_world_cam`` float64 (N, 4, 4) optical camera-to-world (identity-free sources
    may use NaN poses); ``timestamps`` float64 (N,) seconds. ``scene`` and ``qa`` exist
    for rendered sequences; ``info`` holds provenance (source format, path, seed...).
    """

    name: str
    rgb: np.ndarray
    depth: np.ndarray | None
    K: np.ndarray
    T_world_cam: np.ndarray
    timestamps: np.ndarray
    segmentation: np.ndarray | None = None
    scene: SceneGraph | None = None
    qa: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.rgb)
        for key in ('depth', 'segmentation', 'K', 'T_world_cam', 'timestamps'):
            value = getattr(self, key)
            if value is not None and len(value) != n:
                raise ValueError(f'Sequence {self.name!r}: {key} has {len(value)} entries, rgb has {n}')

    def __len__(self) -> int:
        return len(self.rgb)

    @property
    def image_size(self) -> tuple[int, int]:
        """(W, H) pixels."""
        return int(self.rgb.shape[2]), int(self.rgb.shape[1])

    def select(self, indices) -> 'Sequence':
        """The frames at ``indices`` (a slice or index array) as a new Sequence; scene, QA and
        info are kept as they are."""
        per_frame = {key: None if getattr(self, key) is None else getattr(self, key)[indices]
                     for key in ('rgb', 'depth', 'segmentation', 'K', 'T_world_cam', 'timestamps')}
        return dataclasses.replace(self, **per_frame)

    def frame(self, i: int) -> Frame:
        return Frame(self.rgb[i], None if self.depth is None else self.depth[i], self.K[i],
                     self.T_world_cam[i], float(self.timestamps[i]),
                     None if self.segmentation is None else self.segmentation[i])
