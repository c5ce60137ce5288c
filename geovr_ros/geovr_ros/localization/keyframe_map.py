"""A bounded map of keyframes: pose in `map`, global descriptor, model-resolution image.

Saved as one `.npz` file (numpy arrays only, no pickle: a map file never executes
anything). Loading checks every array's header (dtype, shape, size) against the zip
member's declared size and the caller's limits *before* decompressing any data (a zip bomb
or a 10,000-keyframe map is refused unread), then every value (finite rigid poses, ids,
descriptors, intrinsics), and builds a new map only when all of it is consistent.

A map file may also carry attachments: named numeric arrays (rank <= 2, at most
_MAX_ATTACHMENT_BYTES together) and one JSON document, e.g. the object map
(`geovr_ros.objects.ObjectMap.to_arrays`); they are read under the same header checks and
given back as `KeyframeMap.attachments`, for their owner to check.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import GeometryError, non_rigid, validate_intrinsics

MAP_FORMAT_VERSION = 1
#: zip members of a map file: name -> (dtype kind(s) allowed, rank).
_MEMBERS = {'meta': ('u', 1), 'ids': ('iu', 1), 'stamps': ('f', 1), 'poses': ('f', 3),
            'descriptors': ('f', 2), 'images': ('u', 4), 'K': ('f', 3)}
_MAX_META_BYTES = 4096
_MAX_DESCRIPTOR_SIZE = 65536
_MAX_IMAGE_SIDE = 8192
_RIGID_TOLERANCE = 1e-4
ATTACHMENT_PREFIX = 'attached.'     # zip members of attachments: attached.<name>.npy
_MAX_ATTACHMENT_BYTES = 64 * 2**20  # all attachments together, from their headers


class MapFileError(ValueError):
    """A map file is missing, unreadable, of another format version, too large, or
    inconsistent (the message names the offending array and value)."""


@dataclass(frozen=True)
class Keyframe:
    """One map keyframe.

    T_map_cam: (4, 4) optical camera to map; descriptor: (D,) float32 L2-normalised;
    image: (H, W, 3) uint8 RGB at the model's input size; K: (3, 3) of that image;
    stamp: seconds.
    """

    keyframe_id: int
    stamp: float
    T_map_cam: np.ndarray
    descriptor: np.ndarray
    image: np.ndarray
    K: np.ndarray


class KeyframeMap:
    """Keyframes with descriptor search. Not thread-safe: one owner calls it."""

    def __init__(self, max_keyframes: int = 500):
        if int(max_keyframes) < 1:
            raise ValueError(f'max_keyframes must be >= 1, got {max_keyframes!r}')
        self.max_keyframes = int(max_keyframes)
        self._keyframes: list[Keyframe] = []
        self._next_id = 0
        #: arrays saved beside the keyframes ({name: array}; '_json' the document's bytes)
        self.attachments: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._keyframes)

    def __iter__(self):
        return iter(self._keyframes)

    @property
    def last(self) -> Keyframe | None:
        return self._keyframes[-1] if self._keyframes else None

    def add(self, stamp: float, T_map_cam: np.ndarray, descriptor: np.ndarray,
            image: np.ndarray, K: np.ndarray) -> Keyframe:
        """Adds a keyframe (evicting the oldest when full) and returns it."""
        descriptor = np.asarray(descriptor, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(descriptor))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError(f'descriptor must be finite and non-zero, got norm {norm}')
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f'image must be (H, W, 3) uint8, got {image.shape} {image.dtype}')
        if self._keyframes and descriptor.shape != self._keyframes[0].descriptor.shape:
            raise ValueError(f'descriptor size {descriptor.shape[0]} differs from the map\'s '
                             f'{self._keyframes[0].descriptor.shape[0]}')
        keyframe = Keyframe(self._next_id, float(stamp), np.array(T_map_cam, dtype=np.float64),
                            descriptor / norm, image.copy(), np.array(K, dtype=np.float64))
        self._next_id += 1
        self._keyframes.append(keyframe)
        if len(self._keyframes) > self.max_keyframes:
            self._keyframes.pop(0)
        return keyframe

    def clear(self) -> None:
        self._keyframes.clear()
        self._next_id = 0

    def move(self, poses: dict[int, np.ndarray]) -> dict[int, Keyframe]:
        """Puts each keyframe of `poses` (keyframe id -> T_map_cam (4, 4); the map was
        corrected) at its new pose; returns the moved keyframes (new objects) by id, without
        the ids the map no longer holds."""
        moved = {}
        for i, keyframe in enumerate(self._keyframes):
            if keyframe.keyframe_id in poses:
                self._keyframes[i] = dataclasses.replace(
                    keyframe, T_map_cam=np.array(poses[keyframe.keyframe_id], dtype=np.float64))
                moved[keyframe.keyframe_id] = self._keyframes[i]
        return moved

    def best_match(self, descriptor: np.ndarray, exclude_newest: int = 0
                   ) -> tuple[Keyframe, float] | None:
        """Keyframe with the highest cosine similarity to `descriptor` (D,), and that
        similarity, ignoring the `exclude_newest` most recent keyframes; None if none."""
        best = self.best_matches(descriptor, 1, exclude_newest)
        return best[0] if best else None

    def best_matches(self, descriptor: np.ndarray, count: int, exclude_newest: int = 0
                     ) -> list[tuple[Keyframe, float]]:
        """The `count` keyframes most similar to `descriptor` (D,) by cosine similarity, with
        it, most similar first, ignoring the `exclude_newest` most recent keyframes."""
        candidates = self._keyframes[:len(self._keyframes) - exclude_newest] \
            if exclude_newest > 0 else self._keyframes
        if not candidates or count < 1:
            return []
        d = np.asarray(descriptor, dtype=np.float32).reshape(-1)
        d = d / max(float(np.linalg.norm(d)), 1e-12)
        similarity = np.stack([k.descriptor for k in candidates]) @ d
        order = np.argsort(-similarity, kind='stable')[:count]
        return [(candidates[i], float(similarity[i])) for i in order]

    def save(self, path: str | os.PathLike, attachments: dict[str, np.ndarray] | None = None,
             document: dict | None = None) -> None:
        """Writes the map to `path` (.npz) atomically: into a new uniquely named file in the
        same folder (created exclusively, so no existing file or symlink is followed),
        flushed to disk, then renamed over `path`; the temporary file is removed on failure.
        attachments: {name: numeric array of rank <= 2} and document: a JSON-able dict, saved
        with the keyframes (see the module docstring). Raises MapFileError (empty map, an
        attachment that could not be loaded back) or OSError."""
        if not self._keyframes:
            raise MapFileError('the map is empty: nothing to save')
        extra = {}
        for name, value in (attachments or {}).items():
            value = np.ascontiguousarray(value)
            if value.dtype.kind not in 'iuf' or value.ndim > 2 or not name.isidentifier():
                raise MapFileError(f'attachment {name!r} must be a numeric array of rank <= 2 '
                                   f'named like an identifier, got {value.dtype} {value.shape}')
            extra[ATTACHMENT_PREFIX + name] = value
        if document is not None:
            extra[ATTACHMENT_PREFIX + '_json'] = np.frombuffer(json.dumps(document).encode(), np.uint8)
        if sum(v.nbytes for v in extra.values()) > _MAX_ATTACHMENT_BYTES:
            raise MapFileError(f'attachments hold more than {_MAX_ATTACHMENT_BYTES} bytes')
        arrays = {
            'meta': np.frombuffer(json.dumps({'version': MAP_FORMAT_VERSION,
                                              'next_id': self._next_id}).encode(), np.uint8),
            'ids': np.array([k.keyframe_id for k in self._keyframes], np.int64),
            'stamps': np.array([k.stamp for k in self._keyframes], np.float64),
            'poses': np.stack([k.T_map_cam for k in self._keyframes]),
            'descriptors': np.stack([k.descriptor for k in self._keyframes]),
            'images': np.stack([k.image for k in self._keyframes]),
            'K': np.stack([k.K for k in self._keyframes]),
            **extra,
        }
        path = os.path.abspath(os.fspath(path))
        folder, name = os.path.split(path)
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.tmp', dir=folder)
        try:
            with os.fdopen(fd, 'wb') as out:
                np.savez_compressed(out, **arrays)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        try:  # the rename itself survives a power cut once the folder is flushed
            dir_fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dir_fd)
        except OSError:
            pass
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, path: str | os.PathLike, max_keyframes: int = 500,
             descriptor_size: int | None = None, image_size: tuple[int, int] | None = None
             ) -> 'KeyframeMap':
        """Reads a map written by `save` into a new map of capacity `max_keyframes`.

        descriptor_size: D the descriptors must have (the model's), or None for any;
        image_size: (W, H) the keyframe images must have (the model input), or None for any
        up to 8192 px a side. Raises MapFileError naming the problem when the file is
        missing, not a map, of another version, holds more than `max_keyframes` keyframes,
        or is inconsistent: ids not 1-D unique non-negative integers, next_id not above
        them, arrays of unequal length, non-finite or non-rigid poses (4, 4), descriptors of
        another size, non-finite or zero, images not (H, W, 3) uint8, or intrinsics K (3, 3)
        not valid for the image size. Nothing is decompressed beyond the sizes these limits
        allow."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MapFileError(f'map file {path!r} does not exist')
        try:
            with zipfile.ZipFile(path) as archive:
                arrays = _read_map_arrays(archive, int(max_keyframes), descriptor_size,
                                          image_size)
        except MapFileError as error:
            raise MapFileError(f'map file {path!r} refused: {error}') from None
        except Exception as error:  # zip, npy header and json errors: "not a map file"
            raise MapFileError(f'map file {path!r} is unreadable: '
                               f'{type(error).__name__}: {error}') from None
        try:
            meta = json.loads(bytes(arrays['meta']).decode())
        except ValueError as error:
            raise MapFileError(f'map file {path!r} is unreadable: meta is not JSON: '
                               f'{error}') from None
        try:
            next_id = _check_map_values(arrays, meta)
        except MapFileError as error:
            raise MapFileError(f'map file {path!r} refused: {error}') from None
        result = cls(max_keyframes)
        descriptors = arrays['descriptors'].astype(np.float32)
        descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
        for i in range(len(arrays['ids'])):
            result._keyframes.append(Keyframe(
                int(arrays['ids'][i]), float(arrays['stamps'][i]),
                arrays['poses'][i].astype(np.float64), descriptors[i].copy(),
                arrays['images'][i].copy(), arrays['K'][i].astype(np.float64)))
        result._next_id = next_id
        result.attachments = {name[len(ATTACHMENT_PREFIX):]: array.copy()
                              for name, array in arrays.items() if name.startswith(ATTACHMENT_PREFIX)}
        return result

    @property
    def document(self) -> dict | None:
        """The JSON document saved with the map, or None; MapFileError if it is not JSON."""
        raw = self.attachments.get('_json')
        if raw is None:
            return None
        try:
            value = json.loads(bytes(raw).decode())
        except ValueError as error:
            raise MapFileError(f'the attached document is not JSON: {error}') from None
        if not isinstance(value, dict):
            raise MapFileError('the attached document is not a JSON object')
        return value


def _npy_header(member) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) of an open .npy member, without reading its data."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(member)
    raise MapFileError(f'unsupported .npy version {version}')


def _read_map_arrays(archive: zipfile.ZipFile, max_keyframes: int,
                     descriptor_size: int | None, image_size: tuple[int, int] | None
                     ) -> dict[str, np.ndarray]:
    """Every map array, each checked (dtype kind, rank, shape, byte size) from its .npy
    header and the zip member's declared size before its data is decompressed."""
    infos = {info.filename: info for info in archive.infolist()}
    attached = [name for name in infos if name.startswith(ATTACHMENT_PREFIX) and name.endswith('.npy')
                and name[len(ATTACHMENT_PREFIX):-4].replace('_json', 'json').isidentifier()]
    unexpected = sorted(set(infos) - {f'{name}.npy' for name in _MEMBERS} - set(attached))
    if unexpected:
        raise MapFileError(f'unexpected members {[n[:40] for n in unexpected[:5]]} '
                           f'(a map holds {sorted(_MEMBERS)})')
    arrays = {}
    for name, (kinds, rank) in _MEMBERS.items():
        info = infos.get(f'{name}.npy')
        if info is None:
            raise MapFileError(f'array {name!r} is missing')
        with archive.open(info) as member:
            shape, fortran, dtype = _npy_header(member)
            if dtype.hasobject or dtype.kind not in kinds or len(shape) != rank:
                raise MapFileError(f'array {name!r} is {dtype} of shape {shape}, expected '
                                   f'rank {rank} of kind {kinds!r}')
            if name in ('meta', 'images') and dtype != np.uint8:
                raise MapFileError(f'array {name!r} is {dtype}, expected uint8')
            _check_shape(name, shape, max_keyframes, descriptor_size, image_size)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if info.file_size != member.tell() + nbytes:
                raise MapFileError(f'array {name!r} declares {info.file_size} bytes in the '
                                   f'zip but its header {shape} {dtype} needs '
                                   f'{member.tell() + nbytes}')
            data = member.read(nbytes)
            if len(data) != nbytes:
                raise MapFileError(f'array {name!r} is truncated')
            arrays[name] = np.frombuffer(data, dtype).reshape(shape, order='F' if fortran
                                                              else 'C')
    budget = _MAX_ATTACHMENT_BYTES
    for member_name in sorted(attached):
        name = member_name[:-4]
        with archive.open(infos[member_name]) as member:
            shape, fortran, dtype = _npy_header(member)
            if dtype.hasobject or dtype.kind not in 'iuf' or len(shape) > 2:
                raise MapFileError(f'attachment {name!r} is {dtype} of shape {shape}, expected a '
                                   f'numeric array of rank <= 2')
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            budget -= nbytes
            if budget < 0:
                raise MapFileError(f'attachments hold more than {_MAX_ATTACHMENT_BYTES} bytes')
            if infos[member_name].file_size != member.tell() + nbytes:
                raise MapFileError(f'attachment {name!r} declares {infos[member_name].file_size} '
                                   f'bytes in the zip but its header needs {member.tell() + nbytes}')
            data = member.read(nbytes)
            if len(data) != nbytes:
                raise MapFileError(f'attachment {name!r} is truncated')
            arrays[name] = np.frombuffer(data, dtype).reshape(shape, order='F' if fortran else 'C')
    return arrays


def _check_shape(name: str, shape: tuple[int, ...], max_keyframes: int,
                 descriptor_size: int | None, image_size: tuple[int, int] | None) -> None:
    """Raises MapFileError when an array's header shape exceeds the limits."""
    if name == 'meta':
        if shape[0] > _MAX_META_BYTES:
            raise MapFileError(f'meta has {shape[0]} bytes, more than {_MAX_META_BYTES}')
        return
    n = shape[0]
    if n > max_keyframes:
        raise MapFileError(f'{name} holds {n} keyframes, more than max_map_keyframes='
                           f'{max_keyframes}')
    if n == 0:
        raise MapFileError(f'{name} holds no keyframes')
    expected = {'poses': (n, 4, 4), 'K': (n, 3, 3)}.get(name)
    if name == 'descriptors':
        d = shape[1]
        if descriptor_size is not None and d != descriptor_size:
            raise MapFileError(f'descriptors have size {d}, the model\'s have '
                               f'{descriptor_size}')
        expected = (n, d) if 1 <= d <= _MAX_DESCRIPTOR_SIZE else None
    elif name == 'images':
        h, w = shape[1], shape[2]
        if image_size is not None and (w, h) != tuple(image_size):
            raise MapFileError(f'images are {w}x{h}, the model input is '
                               f'{image_size[0]}x{image_size[1]}')
        ok = 1 <= h <= _MAX_IMAGE_SIDE and 1 <= w <= _MAX_IMAGE_SIDE
        expected = (n, h, w, 3) if ok else None
    elif name in ('ids', 'stamps'):
        expected = (n,)
    if expected is None or tuple(shape) != expected:
        raise MapFileError(f'{name} has shape {tuple(shape)}, expected '
                           f'{expected or "a valid shape"}')


def _check_map_values(arrays: dict[str, np.ndarray], meta) -> int:
    """Checks lengths and values of the map arrays; returns next_id. Raises MapFileError."""
    if not isinstance(meta, dict) or meta.get('version') != MAP_FORMAT_VERSION:
        version = meta.get('version') if isinstance(meta, dict) else meta
        raise MapFileError(f'format version {repr(version)[:40]}, expected '
                           f'{MAP_FORMAT_VERSION}')
    lengths = {name: len(arrays[name]) for name in _MEMBERS if name != 'meta'}
    if len(set(lengths.values())) != 1:
        raise MapFileError(f'arrays of unequal length {lengths}')
    ids, n = arrays['ids'], lengths['ids']
    if np.any(ids < 0) or len(np.unique(ids)) != n:
        raise MapFileError('ids must be unique non-negative integers')
    next_id = meta.get('next_id')
    if isinstance(next_id, bool) or not isinstance(next_id, int) or next_id <= int(ids.max()) \
            or next_id > 2 ** 62:
        raise MapFileError(f'next_id {repr(next_id)[:40]} must be an integer above the '
                           f'largest id {int(ids.max())}')
    if not np.all(np.isfinite(arrays['stamps'])):
        raise MapFileError('stamps must be finite')
    poses = arrays['poses'].astype(np.float64)
    bad = non_rigid(poses, _RIGID_TOLERANCE)
    if bad.any():
        i = int(np.argmax(bad))
        raise MapFileError(f'pose {i} is not a finite rigid transform: '
                           f'{np.round(poses[i], 4).tolist()}')
    descriptors = arrays['descriptors'].astype(np.float64)
    norms = np.linalg.norm(descriptors, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise MapFileError('descriptors must be finite and non-zero')
    height, width = arrays['images'].shape[1:3]
    for i, K in enumerate(arrays['K']):
        try:
            validate_intrinsics(K.astype(np.float64), int(width), int(height))
        except GeometryError as error:
            raise MapFileError(f'K of keyframe {i} is invalid: {error}') from None
    return next_id
