"""Byte-deterministic shard files: one compressed file per sequence, plus manifest.json.

A shard is a standard zip archive (readable by ``numpy.load`` as an ``.npz``) written with
fixed member timestamps, a fixed member order and JSON with sorted keys, so the same
sequence always gives the same bytes. Members:

- ``meta.json``: name, frame count, image size, scene graph, QA items, provenance;
- ``K.npy`` float64 (N, 3, 3), ``T_world_cam.npy`` float64 (N, 4, 4), ``timestamps.npy``
  float64 (N,);
- per frame i (6 digits): ``rgb/i.npy`` uint8 (H, W, 3), ``depth/i.npy`` float32 (H, W)
  metres (NaN invalid), ``segmentation/i.npy`` int32 (H, W) when present.

Per-frame members keep random access cheap: a clip reads only its frames.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import DataFormatError
from .types import SceneGraph, Sequence

SHARD_FORMAT_VERSION = 1
SHARD_SUFFIX = '.geovr.npz'
MANIFEST_NAME = 'manifest.json'
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def dumps_json(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, fixed separators, UTF-8)."""
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=False,
                      allow_nan=False).encode('utf-8')


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _write_member(zf: zipfile.ZipFile, name: str, data: bytes, level: int) -> None:
    """One member, deflated at ``level`` (0: stored as it is)."""
    method = zipfile.ZIP_DEFLATED if level > 0 else zipfile.ZIP_STORED
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = method
    info.external_attr = 0o644 << 16
    info.create_system = 3
    zf.writestr(info, data, compress_type=method, compresslevel=level if level > 0 else None)


def write_shard(sequence: Sequence, path: str | Path, compress_level: int = 3) -> Path:
    """Write ``sequence`` to ``path`` (a ``.geovr.npz`` file); same input, same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        'format_version': SHARD_FORMAT_VERSION,
        'name': sequence.name,
        'num_frames': len(sequence),
        'image_size': list(sequence.image_size),
        'has_depth': sequence.depth is not None,
        'has_segmentation': sequence.segmentation is not None,
        'scene': None if sequence.scene is None else sequence.scene.to_json(),
        'qa': sequence.qa,
        'info': sequence.info,
    }
    tmp = path.with_name(path.name + '.tmp')
    with zipfile.ZipFile(tmp, 'w') as zf:
        _write_member(zf, 'meta.json', dumps_json(meta), compress_level)
        _write_member(zf, 'K.npy', _npy_bytes(sequence.K.astype(np.float64)), compress_level)
        _write_member(zf, 'T_world_cam.npy', _npy_bytes(sequence.T_world_cam.astype(np.float64)), compress_level)
        _write_member(zf, 'timestamps.npy', _npy_bytes(sequence.timestamps.astype(np.float64)), compress_level)
        for i in range(len(sequence)):
            _write_member(zf, f'rgb/{i:06d}.npy', _npy_bytes(sequence.rgb[i].astype(np.uint8)), compress_level)
            if sequence.depth is not None:  # stored: deflate saved 13 % of float depth at 7 ms a 256x192 frame
                _write_member(zf, f'depth/{i:06d}.npy', _npy_bytes(sequence.depth[i].astype(np.float32)), 0)
            if sequence.segmentation is not None:
                _write_member(zf, f'segmentation/{i:06d}.npy',
                              _npy_bytes(sequence.segmentation[i].astype(np.int32)), compress_level)
    tmp.replace(path)
    return path


class ShardReader:
    """Random access to one shard: ``meta``, ``len()``, ``read(indices)`` -> Sequence.

    Raises DataFormatError naming the file when it is not a readable shard.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._zip = zipfile.ZipFile(self.path)
            self.meta: dict[str, Any] = json.loads(self._zip.read('meta.json'))
            self._K = self._array('K.npy')
            self._T = self._array('T_world_cam.npy')
            self._timestamps = self._array('timestamps.npy')
        except FileNotFoundError:
            raise DataFormatError(self.path, 'shard file does not exist') from None
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, ValueError, OSError, EOFError,
                zlib.error) as exc:
            raise DataFormatError(self.path, f'not a readable GeoVR shard ({exc})') from None
        if self.meta.get('format_version') != SHARD_FORMAT_VERSION:
            raise DataFormatError(self.path, f"shard format version {self.meta.get('format_version')!r}, "
                                             f'this reader reads {SHARD_FORMAT_VERSION}')

    def _array(self, member: str) -> np.ndarray:
        try:
            with self._zip.open(member) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (KeyError, zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as exc:
            raise DataFormatError(self.path, f'member {member}: {exc}') from None

    def __len__(self) -> int:
        return int(self.meta['num_frames'])

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> 'ShardReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def scene(self) -> SceneGraph | None:
        return None if self.meta['scene'] is None else SceneGraph.from_json(self.meta['scene'])

    @property
    def qa(self) -> list[dict[str, Any]]:
        return self.meta['qa']

    @property
    def K(self) -> np.ndarray:
        return self._K

    @property
    def T_world_cam(self) -> np.ndarray:
        return self._T

    @property
    def timestamps(self) -> np.ndarray:
        return self._timestamps

    def read(self, indices: Iterable[int] | None = None, segmentation: bool = True) -> Sequence:
        """Sequence of the chosen frames (all by default), in the given order."""
        idx = list(range(len(self))) if indices is None else [int(i) for i in indices]
        for i in idx:
            if not 0 <= i < len(self):
                raise IndexError(f'{self.path}: frame {i} out of range 0..{len(self) - 1}')
        rgb = np.stack([self._array(f'rgb/{i:06d}.npy') for i in idx])
        depth = (np.stack([self._array(f'depth/{i:06d}.npy') for i in idx])
                 if self.meta['has_depth'] else None)
        seg = (np.stack([self._array(f'segmentation/{i:06d}.npy') for i in idx])
               if segmentation and self.meta['has_segmentation'] else None)
        return Sequence(name=self.meta['name'], rgb=rgb, depth=depth, K=self._K[idx],
                        T_world_cam=self._T[idx], timestamps=self._timestamps[idx], segmentation=seg,
                        scene=self.scene, qa=self.qa, info=dict(self.meta['info'], frame_indices=idx))


def read_shard(path: str | Path, indices: Iterable[int] | None = None) -> Sequence:
    """Read a whole shard (or the given frames) into a Sequence."""
    with ShardReader(path) as reader:
        return reader.read(indices)


def write_manifest(out_dir: str | Path, manifest: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (canonical JSON) into ``out_dir``."""
    path = Path(out_dir) / MANIFEST_NAME
    path.write_bytes(dumps_json(manifest) + b'\n')
    return path


def read_manifest(root: str | Path) -> dict[str, Any]:
    """Read a dataset folder's manifest.json (DataFormatError naming the file if bad)."""
    path = Path(root) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataFormatError(path, 'manifest.json missing: is this a geovr-data dataset folder?') from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f'invalid JSON ({exc})') from None
    for key in ('sequences', 'splits'):
        if key not in manifest:
            raise DataFormatError(path, f'missing key {key!r}')
    return manifest
