"""Surface textures for rendered rooms (domain randomization): procedural images and photo patches.

``assign_textures`` draws a ``TextureSpec`` (pure data: kind, seed, colours, size in pixels
and metres) for the floor, walls, ceiling and, with ``object_probability``, each object and
clutter item; ``materialise`` turns a spec into a uint8 RGB image, the same bytes for the
same spec. Every image tiles seamlessly (procedural patterns are periodic; photo patches
are mirrored 2 x 2), so the renderer may repeat it over a surface.

Kinds: 'wood' (planks with grain), 'tiles' (grout, 2-4 shades), 'fabric' (weave),
'plaster' (low-contrast multi-scale noise), 'noise' (multi-scale value noise in 2-3 random
colours), 'brick' (staggered rows, mortar), 'photo' (a crop of a photograph that
scikit-image ships, or of a training frame of a converted real recording in ``photo_dirs``).

Colours: an object's texture is a luminance pattern around its own rgb (mean luminance
factor 1), so the colour name the scene graph and QA questions give it stays true; floors,
walls and ceiling may take free colours.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import GenerationError

KINDS = ('wood', 'tiles', 'fabric', 'plaster', 'noise', 'brick', 'photo')
CEILING_RGBA = (0.92, 0.92, 0.9, 1.0)  # the plain renders' ceiling colour
SKIMAGE_PHOTOS = ('brick', 'grass', 'gravel', 'coffee', 'chelsea', 'astronaut', 'rocket')


@dataclass(frozen=True)
class TextureConfig:
    """Textures on walls, floors, ceilings, furniture and objects."""

    enabled: bool = False
    # kinds drawn uniformly per surface (repeats weigh); each of KINDS
    floor_kinds: tuple[str, ...] = ('wood', 'wood', 'tiles', 'plaster', 'noise', 'photo')
    wall_kinds: tuple[str, ...] = ('plaster', 'plaster', 'brick', 'tiles', 'noise', 'fabric', 'photo')
    ceiling_kinds: tuple[str, ...] = ('plaster',)
    object_kinds: tuple[str, ...] = ('wood', 'fabric', 'plaster', 'noise', 'photo')
    # chance that an object or clutter item is textured, [0, 1] (the rest stay plain)
    object_probability: float = 0.8
    # luminance contrast (std of the factor around 1) of object textures, drawn in this range, [0, 0.5]
    object_contrast: tuple[float, float] = (0.08, 0.22)
    # image side in pixels of surface / object textures, [8, 1024]
    surface_px: int = 128
    object_px: int = 64
    # metres one surface image covers on floors and walls (its period), drawn in this range, (0, 10]
    surface_period_m: tuple[float, float] = (0.8, 2.4)
    # photographs of scikit-image's skimage.data to crop 'photo' textures from (some of SKIMAGE_PHOTOS)
    photo_images: tuple[str, ...] = SKIMAGE_PHOTOS
    # geovr-data dataset folders of converted real recordings: their TRAIN-split frames are photo sources too
    photo_dirs: tuple[str, ...] = ()

    def validate(self) -> None:
        for name in ('floor_kinds', 'wall_kinds', 'ceiling_kinds', 'object_kinds'):
            kinds = getattr(self, name)
            if not kinds or any(k not in KINDS for k in kinds):
                raise GenerationError(f'textures.{name} must name some of {KINDS}, got {list(kinds)}')
        if not 0.0 <= self.object_probability <= 1.0:
            raise GenerationError(f'textures.object_probability must be in [0, 1], got {self.object_probability}')
        lo, hi = self.object_contrast
        if not 0.0 <= lo <= hi <= 0.5:
            raise GenerationError(f'textures.object_contrast must be 0 <= lo <= hi <= 0.5, got {self.object_contrast}')
        for name in ('surface_px', 'object_px'):
            if not 8 <= getattr(self, name) <= 1024:
                raise GenerationError(f'textures.{name} must be in [8, 1024], got {getattr(self, name)}')
        lo, hi = self.surface_period_m
        if not 0.0 < lo <= hi <= 10.0:
            raise GenerationError(f'textures.surface_period_m must be 0 < lo <= hi <= 10, got {self.surface_period_m}')
        unknown = [n for n in self.photo_images if n not in SKIMAGE_PHOTOS]
        if unknown:
            raise GenerationError(f'textures.photo_images {unknown} are not among {SKIMAGE_PHOTOS}')


@dataclass(frozen=True)
class TextureSpec:
    """One texture image as pure data; ``materialise`` draws it.

    ``palette``: colours (rgb in [0, 1]); one colour = a luminance pattern around it (tint).
    ``period_m``: metres one image covers on a room surface (ignored on objects).
    ``photo``: the photo source ('skimage:NAME' or 'PATH#FRAME' of a shard), '' otherwise.
    """

    kind: str
    seed: int
    size: int
    palette: tuple[tuple[float, float, float], ...]
    contrast: float = 0.15
    period_m: float = 1.0
    photo: str = ''


# ---------------------------------------------------------------- drawing (pure numpy)

def _periodic_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth value noise (size, size) in [0, 1] on a ``cells`` x ``cells`` periodic lattice."""
    lattice = rng.random((cells, cells))
    x = np.arange(size) * cells / size
    i0 = np.floor(x).astype(int)
    f = x - i0
    f = f * f * (3 - 2 * f)
    i1 = (i0 + 1) % cells
    rows = lattice[i0] * (1 - f)[:, None] + lattice[i1] * f[:, None]  # (size, cells)
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i1] * f[None, :]


def _fractal(rng: np.random.Generator, size: int, base: int, octaves: int) -> np.ndarray:
    """Multi-scale periodic noise (size, size), zero mean, unit std."""
    out = np.zeros((size, size))
    for k in range(octaves):
        cells = min(size, base * 2 ** k)
        out += 0.55 ** k * _periodic_noise(rng, size, cells)
    out -= out.mean()
    return out / (out.std() + 1e-9)


def _wood(rng, s):
    planks = int(rng.choice([3, 4, 6, 8]))
    row = np.arange(s) * planks // s  # plank index of each row
    v = (np.arange(s) % (s // planks)) / (s // planks)
    warp = _periodic_noise(rng, s, 4) * rng.uniform(1.0, 3.0)
    rings = np.sin(2 * np.pi * (v[:, None] * rng.uniform(2, 5) + warp))
    grain = 0.5 * rings + 0.5 * _fractal(rng, s, 16, 2) * 0.4
    lum = 1 + 0.12 * grain + rng.uniform(-0.12, 0.12, planks)[row][:, None]
    seams = np.zeros((s, s), bool)
    seams[np.arange(s) % (s // planks) == 0] = True
    ends = rng.integers(0, s, planks)
    for k in range(planks):
        rows = row == k
        seams[np.ix_(rows, [ends[k], (ends[k] + 1) % s])] = True
    lum[seams] *= 0.6
    return lum


def _tiles(rng, s):
    n = int(rng.choice([2, 4]))
    shades = rng.uniform(0.8, 1.15, int(rng.integers(2, 5)))
    cell = np.arange(s) * n // s
    idx = rng.integers(len(shades), size=(n, n))
    lum = shades[idx[cell][:, cell]] + 0.03 * _fractal(rng, s, 8, 3)
    grout = max(1, s // (n * 16))
    edge = (np.arange(s) % (s // n)) < grout
    lum[edge, :] = lum[:, edge] = rng.uniform(0.55, 1.25)
    return lum


def _fabric(rng, s):
    threads = int(rng.choice([16, 32])) if s >= 64 else 8
    t = np.arange(s) * threads / s
    weft = 0.5 + 0.5 * np.cos(2 * np.pi * t)
    over = (np.floor(t)[:, None] + np.floor(t)[None, :]) % 2
    weave = np.where(over > 0, weft[None, :], weft[:, None])
    return 1 + 0.18 * (weave - 0.5) + 0.06 * _fractal(rng, s, 8, 3)


def _plaster(rng, s):
    return 1 + rng.uniform(0.03, 0.08) * _fractal(rng, s, 4, 5)


def _brick(rng, s):
    rows = int(rng.choice([4, 8]))
    per_row = max(1, rows // 2)
    r = np.arange(s) * rows // s
    x = np.arange(s) * per_row / s
    shift = (r % 2) * 0.5
    brick_id = np.floor(x[None, :] + shift[:, None]) % per_row + per_row * r[:, None]
    shade = rng.uniform(0.8, 1.15, rows * per_row)[brick_id.astype(int)]
    lum = shade + 0.06 * _fractal(rng, s, 8, 3)
    mortar = max(1, s // (rows * 8))
    lum[np.arange(s) % (s // rows) < mortar, :] = 1.35
    edge = ((x[None, :] + shift[:, None]) % 1.0) * s / per_row < mortar
    lum[edge] = 1.35
    return lum


_PATTERNS = {'wood': _wood, 'tiles': _tiles, 'fabric': _fabric, 'plaster': _plaster, 'brick': _brick}


@functools.lru_cache(maxsize=None)
def _skimage_photo(name: str) -> np.ndarray:
    import skimage.data  # optional at import time: only 'photo' textures need it
    img = getattr(skimage.data, name)()
    return np.repeat(img[..., None], 3, -1) if img.ndim == 2 else img[..., :3]


@functools.lru_cache(maxsize=64)
def _shard_frame(source: str) -> np.ndarray:
    from .shards import read_shard
    path, frame = source.rsplit('#', 1)
    return read_shard(path, [int(frame)]).rgb[0]


def _photo(rng: np.random.Generator, source: str, s: int) -> np.ndarray:
    """A seamless (s, s, 3) float [0, 1] patch: a random square crop, mirrored 2 x 2."""
    import cv2
    img = _skimage_photo(source.split(':', 1)[1]) if source.startswith('skimage:') else _shard_frame(source)
    side = int(min(img.shape[:2]) * rng.uniform(0.25, 0.6))
    y, x = (int(rng.integers(0, n - side + 1)) for n in img.shape[:2])
    crop = cv2.resize(np.ascontiguousarray(img[y:y + side, x:x + side]), (s // 2, s // 2), interpolation=cv2.INTER_AREA)
    top = np.concatenate([crop, crop[:, ::-1]], 1)
    return np.concatenate([top, top[::-1]], 0).astype(np.float64) / 255.0


def materialise(spec: TextureSpec) -> np.ndarray:
    """The texture image of ``spec``: uint8 (size, size, 3), deterministic (same spec, same bytes)."""
    return _materialise(spec).copy()


@functools.lru_cache(maxsize=256)
def _materialise(spec: TextureSpec) -> np.ndarray:
    if spec.kind not in KINDS:
        raise GenerationError(f'unknown texture kind {spec.kind!r}; expected one of {KINDS}')
    rng = np.random.default_rng(spec.seed)
    s = spec.size
    palette = np.asarray(spec.palette, dtype=np.float64)
    if spec.kind == 'photo':
        patch = _photo(rng, spec.photo, s)
        if len(palette) == 1:  # tint: the photo's luminance pattern around the colour
            lum = patch.mean(-1)
            lum = 1 + spec.contrast * (lum - lum.mean()) / (lum.std() + 1e-9)
            img = palette[0] * lum[..., None]
        else:
            img = patch
    elif spec.kind == 'noise':
        t = np.clip(0.5 + 0.3 * _fractal(rng, s, int(rng.choice([2, 4])), 5), 0, 1)
        if len(palette) == 1:
            img = palette[0] * (1 + spec.contrast * (t - t.mean())[..., None] / (t.std() + 1e-9))
        else:
            t = t * (len(palette) - 1)
            i0 = np.minimum(t.astype(int), len(palette) - 2)
            f = (t - i0)[..., None]
            img = palette[i0] * (1 - f) + palette[i0 + 1] * f
    else:
        lum = _PATTERNS[spec.kind](rng, s)
        if len(palette) == 1 and spec.contrast > 0:  # objects: rescale to the drawn contrast
            lum = 1 + spec.contrast * (lum - lum.mean()) / (lum.std() + 1e-9)
        img = palette[0] * lum[..., None]
    if len(palette) == 1:  # keep the mean on the colour where clipping at 0 or 1 moved it
        for _ in range(4):
            img = np.clip(img + (palette[0] - img.reshape(-1, 3).mean(0)), 0.0, 1.0)
    out = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


# ---------------------------------------------------------------- assignment (pure data)

def mesh_has_uvs(mesh: str) -> bool:
    """Whether a pybullet_data OBJ file has texture coordinates (else a texture shows one texel)."""
    from .scene import pybullet_data_path
    with open(pybullet_data_path() / mesh) as f:
        return any(line.startswith('vt ') for line in f)


@functools.lru_cache(maxsize=None)
def _train_frames(folder: str) -> tuple[tuple[str, int], ...]:
    """(shard path, frame count) of each TRAIN-split sequence of a dataset folder."""
    from .errors import DataError
    from .shards import read_manifest
    path = Path(folder)
    if not path.is_dir():
        raise GenerationError(f'textures.photo_dirs entry {folder!r} is not a folder')
    try:
        manifest = read_manifest(path)
    except DataError as exc:
        raise GenerationError(f'textures.photo_dirs entry {folder!r} is not a geovr-data dataset: {exc}') from None
    train = set(manifest['splits'].get('train', []))
    seqs = tuple((str(path / s['file']), int(s['num_frames'])) for s in manifest['sequences']
                 if s['name'] in train and s.get('split', 'train') == 'train' and int(s['num_frames']) > 0)
    if not seqs:
        raise GenerationError(f'textures.photo_dirs entry {folder!r} has no train-split sequence')
    return seqs


def _photo_source(config: TextureConfig, rng: np.random.Generator) -> str:
    shards = [s for folder in config.photo_dirs for s in _train_frames(str(folder))]
    n_sk = len(config.photo_images)
    if not shards and not n_sk:
        raise GenerationError('textures: a photo kind was drawn but photo_images and photo_dirs are both empty')
    k = int(rng.integers(n_sk + len(shards)))
    if k < n_sk:
        return f'skimage:{config.photo_images[k]}'
    path, frames = shards[k - n_sk]
    return f'{path}#{int(rng.integers(frames))}'


def _rgb(values) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(values, 0.0, 1.0)[:3])


def _surface_spec(config: TextureConfig, kinds: tuple[str, ...], rgba, rng: np.random.Generator) -> TextureSpec:
    kind = kinds[int(rng.integers(len(kinds)))]
    base = np.asarray(rgba[:3], dtype=np.float64)
    if kind == 'wood':
        palette = (_rgb(np.array([0.55, 0.36, 0.2]) * rng.uniform(0.5, 1.5) * (0.6 + 0.4 * base)),)
    elif kind == 'brick' and rng.random() < 0.6:
        palette = (_rgb(np.array([0.62, 0.3, 0.22]) * rng.uniform(0.7, 1.3)),)
    elif kind == 'noise':
        palette = tuple(_rgb(rng.uniform(0.15, 1.0, 3)) for _ in range(int(rng.integers(2, 4))))
    elif kind == 'photo':
        palette = ((1.0, 1.0, 1.0), (1.0, 1.0, 1.0))  # two colours: the photo's own
    else:
        palette = (_rgb(base),)
    photo = _photo_source(config, rng) if kind == 'photo' else ''
    return TextureSpec(kind, int(rng.integers(2 ** 31)), config.surface_px, palette, contrast=0.0,
                       period_m=float(rng.uniform(*config.surface_period_m)), photo=photo)


def _object_spec(config: TextureConfig, rgba, rng: np.random.Generator) -> TextureSpec:
    kind = config.object_kinds[int(rng.integers(len(config.object_kinds)))]
    photo = _photo_source(config, rng) if kind == 'photo' else ''
    return TextureSpec(kind, int(rng.integers(2 ** 31)), config.object_px, (_rgb(rgba),),
                       contrast=float(rng.uniform(*config.object_contrast)), photo=photo)


def assign_textures(layout, config: TextureConfig, rng: np.random.Generator) -> None:
    """Give the layout's floor, walls, ceiling and (with ``object_probability``) objects and
    clutter a ``TextureSpec`` (in place). Geometry, colours and the scene graph are unchanged.
    Meshes without texture coordinates (teddy) stay plain."""
    config.validate()
    layout.floor_texture = _surface_spec(config, config.floor_kinds, layout.floor_rgba, rng)
    layout.wall_texture = _surface_spec(config, config.wall_kinds, layout.wall_rgba, rng)
    layout.ceiling_texture = _surface_spec(config, config.ceiling_kinds, CEILING_RGBA, rng)
    for obj in list(layout.objects) + list(layout.clutter):
        textured = rng.random() < config.object_probability
        spec = _object_spec(config, obj.rgba, rng)  # drawn either way: one object's choice moves no other's
        if textured and all(p.kind != 'mesh' or mesh_has_uvs(p.mesh) for p in obj.parts):
            obj.texture = spec


def object_image(spec: TextureSpec) -> np.ndarray:
    """The image to put on a pybullet primitive: ``materialise(spec)`` tiled 4 x 4, uint8
    (4 size, 4 size, 3). pybullet's GEOM_BOX maps a quarter x quarter window of the image
    onto each face (a cube atlas), so each face then shows one whole period."""
    return np.tile(materialise(spec), (4, 4, 1))

