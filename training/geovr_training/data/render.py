"""pybullet rendering (DIRECT, ER_TINY_RENDERER: headless CPU) of a SceneLayout.

pybullet-specific conversions live here: the OpenGL view matrix from an optical
``T_world_cam``, the OpenGL projection matrix from K (principal point and non-square
images exactly), and metric depth from pybullet's z-buffer. pybullet is imported lazily.

Measured facts this module relies on (checked by tests/test_data_render.py on a tilted
plane): with a projection built for pixel centres at window coordinates ``j + 0.5``,
TinyRenderer's pixel (i, j) shows ``u = j - 0.5, v = i + 0.5``; the projection therefore
uses ``cx - 0.5`` and ``cy + 0.5`` so that pixel (i, j) shows exactly ``u = j, v = i``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .scene import ObjectSpec, SceneLayout, pybullet_data_path
from .textures import CEILING_RGBA, TextureSpec, materialise, object_image

# Optical camera (x right, y down, z forward) -> OpenGL camera (x right, y up, z backward).
T_OPTICAL_GL = np.diag([1.0, -1.0, -1.0, 1.0])
_RENDER_SHIFT_U, _RENDER_SHIFT_V = -0.5, 0.5


def view_matrix(T_world_cam: np.ndarray) -> np.ndarray:
    """OpenGL view matrix (world -> GL camera), (4, 4), from optical camera-to-world."""
    return np.linalg.inv(np.asarray(T_world_cam, dtype=np.float64) @ T_OPTICAL_GL)


def projection_matrix(K: np.ndarray, width: int, height: int, near: float, far: float) -> np.ndarray:
    """OpenGL projection (4, 4) reproducing pinhole K (pixel centres at integers) for
    TinyRenderer at ``width`` x ``height`` pixels, clipping at ``near``/``far`` metres."""
    fx, fy = K[0, 0], K[1, 1]
    cx, cy = K[0, 2] + _RENDER_SHIFT_U, K[1, 2] + _RENDER_SHIFT_V
    P = np.zeros((4, 4))
    P[0, 0] = 2 * fx / width
    P[0, 1] = -2 * K[0, 1] / width
    P[0, 2] = 1 - 2 * (cx + 0.5) / width
    P[1, 1] = 2 * fy / height
    P[1, 2] = 2 * (cy + 0.5) / height - 1
    P[2, 2] = -(far + near) / (far - near)
    P[2, 3] = -2 * far * near / (far - near)
    P[3, 2] = -1.0
    return P


def zbuffer_to_depth(zbuf: np.ndarray, near: float, far: float) -> np.ndarray:
    """Metric depth along optical z (float32, metres) from pybullet's [0, 1] z-buffer;
    NaN where nothing was drawn (z-buffer 1: background or beyond ``far``)."""
    zbuf = np.asarray(zbuf, dtype=np.float64)
    depth = far * near / (far - (far - near) * zbuf)
    depth[zbuf >= 1.0 - 1e-7] = np.nan
    return depth.astype(np.float32)


class Renderer:
    """One pybullet DIRECT client holding one built scene.

    ``segmentation`` from ``render`` carries instance ids (0 = room or background).
    """

    def __init__(self, near: float = 0.05, far: float = 20.0):
        import pybullet
        self.p = pybullet
        self.client = pybullet.connect(pybullet.DIRECT)
        self.near, self.far = near, far
        self.layout: SceneLayout | None = None
        self._lut = np.zeros(1, dtype=np.int32)
        self._texture_ids: dict[str, int] = {}  # image file name -> pybullet texture id (until resetSimulation)

    def close(self) -> None:
        if self.client is not None:
            self.p.disconnect(self.client)
            self.client = None

    def __enter__(self) -> 'Renderer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _surface(self, half, pos, rgba, pattern: str, tile: float, rng: np.random.Generator) -> None:
        """A static box of the room, drawn as tiles of about ``tile`` metres in shades of
        ``rgba`` (pattern 'checker', 'random', 'planks' or 'plain'): the plain renders. Textured
        surfaces are meshes instead (``_textured_quad``): a GEOM_BOX shows only a quarter x
        quarter window of a texture on each face, and batch-created bodies take no texture."""
        p, c = self.p, self.client
        half = np.asarray(half, dtype=np.float64)
        pos = np.asarray(pos, dtype=np.float64)
        thin = int(np.argmin(half))
        sizes = np.full(3, tile)
        if pattern == 'planks':
            long_axis = [k for k in range(3) if k != thin][0]
            sizes[long_axis] = tile * 3
            sizes[[k for k in range(3) if k not in (thin, long_axis)][0]] = tile / 4
        if pattern == 'plain':
            sizes[:] = 1e9
        counts = [1 if k == thin else max(1, int(np.ceil(2 * half[k] / sizes[k]))) for k in range(3)]
        step = 2 * half / counts
        shades = np.array([1.0, 0.82, 0.9, 0.74])
        groups: dict[int, list[list[float]]] = {}
        for idx in np.ndindex(*counts):
            centre = pos - half + step * (np.asarray(idx) + 0.5)
            centre[thin] = pos[thin]
            if pattern == 'checker':
                shade = sum(idx) % 2
            elif pattern == 'plain':
                shade = 0
            else:
                shade = int(rng.integers(4))
            groups.setdefault(shade, []).append(centre.tolist())
        for shade, centres in sorted(groups.items()):
            colour = [float(v) * shades[shade] for v in rgba[:3]] + [1.0]
            vis = p.createVisualShape(p.GEOM_BOX, halfExtents=(step / 2).tolist(), rgbaColor=colour,
                                      physicsClientId=c)
            for start in range(0, len(centres), 64):
                p.createMultiBody(baseVisualShapeIndex=vis, batchPositions=centres[start:start + 64],
                                  physicsClientId=c)

    def _texture(self, image: np.ndarray) -> int:
        """pybullet texture id of ``image`` (uint8 (H, W, 3)): written once per process to a
        cache folder under its content hash, loaded once per client between resets."""
        import cv2
        name = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest() + '.png'
        if name not in self._texture_ids:
            path = texture_dir() / name
            if not path.exists():   # written under another name, then renamed: workers share the folder
                partial = path.with_name(f'{path.stem}.{os.getpid()}.partial.png')
                cv2.imwrite(str(partial), np.ascontiguousarray(image[..., ::-1]))
                os.replace(partial, path)
            self._texture_ids[name] = self.p.loadTexture(str(path), physicsClientId=self.client)
        return self._texture_ids[name]

    def _textured_quad(self, origin, e_u, e_v, len_u: float, len_v: float, spec: TextureSpec) -> None:
        """A room surface as one textured mesh: the rectangle ``origin + a e_u + b e_v``
        (a in [0, len_u], b in [0, len_v] metres; its normal e_u x e_v faces the room), cut
        into cells of at most one texture period with texture coordinates in periods (the
        image repeats). Measured: TinyRenderer draws such meshes' textures exactly, also
        where triangles reach behind the camera (tests/test_data_textures.py checks it)."""
        p, c = self.p, self.client
        nu, nv = (max(1, int(np.ceil(n / spec.period_m))) for n in (len_u, len_v))
        a, b = np.meshgrid(np.linspace(0, len_u, nu + 1), np.linspace(0, len_v, nv + 1))  # (nv+1, nu+1)
        verts = np.asarray(origin, dtype=np.float64) + a[..., None] * e_u + b[..., None] * e_v
        uvs = np.stack([a, b], -1) / spec.period_m
        k = np.arange((nv + 1) * (nu + 1)).reshape(nv + 1, nu + 1)[:-1, :-1].reshape(-1)
        tris = np.stack([k, k + 1, k + nu + 2, k, k + nu + 2, k + nu + 1], 1).reshape(-1)
        normal = np.cross(e_u, e_v).tolist()
        vis = p.createVisualShape(p.GEOM_MESH, vertices=verts.reshape(-1, 3).tolist(), indices=tris.tolist(),
                                  uvs=uvs.reshape(-1, 2).tolist(), normals=[normal] * verts[..., 0].size,
                                  physicsClientId=c)
        body = p.createMultiBody(baseVisualShapeIndex=vis, physicsClientId=c)
        p.changeVisualShape(body, -1, textureUniqueId=self._texture(materialise(spec)), rgbaColor=[1, 1, 1, 1],
                            physicsClientId=c)

    def build(self, layout: SceneLayout) -> None:
        """Replace the current scene with ``layout``."""
        p, c = self.p, self.client
        p.resetSimulation(physicsClientId=c)
        self._texture_ids = {}  # resetSimulation invalidates texture ids (measured); the images stay cached on disk
        w, d, h = layout.room_size
        t = 0.1
        rng = np.random.default_rng(layout.pattern_seed)
        tile = layout.tile_size
        X, Y, Z = np.eye(3)
        if layout.floor_texture is None:
            self._surface((w / 2 + t, d / 2 + t, t / 2), (0, 0, -t / 2), layout.floor_rgba, layout.floor_pattern, tile, rng)
        else:
            self._textured_quad((-w / 2, -d / 2, 0), X, Y, w, d, layout.floor_texture)
        if layout.ceiling_texture is None:
            self._surface((w / 2 + t, d / 2 + t, t / 2), (0, 0, h + t / 2), CEILING_RGBA, 'plain', tile, rng)
        else:
            self._textured_quad((-w / 2, d / 2, h), X, -Y, w, d, layout.ceiling_texture)
        if layout.wall_texture is None:
            for sign in (-1, 1):
                self._surface((t / 2, d / 2 + t, h / 2), (sign * (w / 2 + t / 2), 0, h / 2), layout.wall_rgba,
                              layout.wall_pattern, tile * 1.5, rng)
                self._surface((w / 2 + t, t / 2, h / 2), (0, sign * (d / 2 + t / 2), h / 2), layout.wall_rgba,
                              layout.wall_pattern, tile * 1.5, rng)
        else:
            for origin, along, length in (((w / 2, -d / 2, 0), -X, w), ((w / 2, d / 2, 0), -Y, d),
                                          ((-w / 2, d / 2, 0), X, w), ((-w / 2, -d / 2, 0), Y, d)):
                self._textured_quad(origin, along, Z, length, h, layout.wall_texture)
        body_to_instance = {}
        for obj in layout.objects:
            body_to_instance[self._build_object(obj)] = obj.instance_id
        for item in layout.clutter:
            body_to_instance[self._build_object(item)] = 0  # not a scene-graph object; in the table so
            # the clip below cannot map it to the last object's id
        lut = np.zeros(max(body_to_instance, default=0) + 2, dtype=np.int32)
        for body, instance in body_to_instance.items():
            lut[body + 1] = instance
        self._lut = lut  # index: body uid + 1 (pybullet uses -1 for background)
        self.layout = layout

    def _build_object(self, obj: ObjectSpec) -> int:
        """One multi-part body for ``obj`` (its parts, pose and colour); returns the body id."""
        p, c = self.p, self.client
        data = pybullet_data_path()
        kinds = {'box': p.GEOM_BOX, 'cylinder': p.GEOM_CYLINDER, 'sphere': p.GEOM_SPHERE, 'mesh': p.GEOM_MESH}
        args = dict(shapeTypes=[], halfExtents=[], radii=[], lengths=[], fileNames=[], meshScales=[],
                    visualFramePositions=[], visualFrameOrientations=[])
        for part in obj.parts:
            args['shapeTypes'].append(kinds[part.kind])
            args['halfExtents'].append(list(part.dims) if part.kind == 'box' else [0.1, 0.1, 0.1])
            args['radii'].append(part.dims[0] if part.kind in ('cylinder', 'sphere') else 0.1)
            args['lengths'].append(part.dims[1] if part.kind == 'cylinder' else 0.1)
            args['fileNames'].append(str(data / part.mesh) if part.kind == 'mesh' else '')
            args['meshScales'].append(list(part.dims) if part.kind == 'mesh' else [1, 1, 1])
            args['visualFramePositions'].append(list(part.position))
            args['visualFrameOrientations'].append(list(part.quat_xyzw))
        vis = p.createVisualShapeArray(**args, physicsClientId=c)
        quat = p.getQuaternionFromEuler([0, 0, obj.yaw])
        body = p.createMultiBody(baseVisualShapeIndex=vis, basePosition=[*obj.position_xy, 0.0],
                                 baseOrientation=quat, physicsClientId=c)
        if obj.texture is None:
            p.changeVisualShape(body, -1, rgbaColor=list(obj.rgba), physicsClientId=c)
        else:  # the image carries the object's colour (textures.py)
            p.changeVisualShape(body, -1, textureUniqueId=self._texture(object_image(obj.texture)),
                                rgbaColor=[1, 1, 1, 1], physicsClientId=c)
        return body

    def render(self, K: np.ndarray, T_world_cam: np.ndarray, width: int, height: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render the built scene.

        Returns rgb uint8 (H, W, 3), depth float32 (H, W) metres along optical z (NaN
        invalid), segmentation int32 (H, W) instance ids (0 = room/background).
        """
        if self.layout is None:
            raise RuntimeError('Renderer.render called before build()')
        p, L = self.p, self.layout
        _, _, rgba, zbuf, seg = p.getCameraImage(
            width, height,
            viewMatrix=view_matrix(T_world_cam).T.reshape(-1).tolist(),
            projectionMatrix=projection_matrix(K, width, height, self.near, self.far).T.reshape(-1).tolist(),
            renderer=p.ER_TINY_RENDERER, shadow=int(L.shadows),
            lightDirection=list(L.light_direction), lightColor=list(L.light_colour),
            lightAmbientCoeff=L.light_coeffs[0], lightDiffuseCoeff=L.light_coeffs[1],
            lightSpecularCoeff=L.light_coeffs[2], physicsClientId=self.client)
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(height, width, 4)[..., :3].copy()
        depth = zbuffer_to_depth(np.asarray(zbuf).reshape(height, width), self.near, self.far)
        seg = np.asarray(seg, dtype=np.int64).reshape(height, width)
        seg = self._lut[np.clip(seg, -1, len(self._lut) - 2) + 1]
        return rgb, depth, seg.astype(np.int32)


TEXTURE_DIR_ENV = 'GEOVR_TEXTURE_DIR'
_TEXTURE_DIR: Path | None = None


def texture_dir() -> Path:
    """The folder texture images are written to for pybullet: the one named by the
    environment variable GEOVR_TEXTURE_DIR (a parent process sets it for its worker processes
    and removes the folder itself: pool workers are terminated without running exit
    handlers), else a folder of this process's own, removed at exit."""
    global _TEXTURE_DIR
    shared = os.environ.get(TEXTURE_DIR_ENV)
    if shared:
        Path(shared).mkdir(parents=True, exist_ok=True)
        return Path(shared)
    if _TEXTURE_DIR is None:
        _TEXTURE_DIR = Path(tempfile.mkdtemp(prefix='geovr-textures-'))
        atexit.register(shutil.rmtree, _TEXTURE_DIR, True)
    return _TEXTURE_DIR


@contextlib.contextmanager
def shared_texture_dir():
    """A texture folder for this process and the worker processes it starts inside the block
    (through GEOVR_TEXTURE_DIR), removed when the block ends."""
    previous = os.environ.get(TEXTURE_DIR_ENV)
    with tempfile.TemporaryDirectory(prefix='geovr-textures-') as folder:
        os.environ[TEXTURE_DIR_ENV] = folder
        try:
            yield Path(folder)
        finally:
            if previous is None:
                os.environ.pop(TEXTURE_DIR_ENV, None)
            else:
                os.environ[TEXTURE_DIR_ENV] = previous
