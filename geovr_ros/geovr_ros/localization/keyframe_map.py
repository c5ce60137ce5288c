"""A bounded map of keyframes: pose in `map`, global descriptor, model-resolution image.

Saved as one `.npz` file (numpy arrays only, read with `allow_pickle=False`: a map file
never executes anything).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

MAP_FORMAT_VERSION = 1


class MapFileError(ValueError):
    """A map file is missing, unreadable or of another format version."""


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

    def best_match(self, descriptor: np.ndarray, exclude_newest: int = 0
                   ) -> tuple[Keyframe, float] | None:
        """Keyframe with the highest cosine similarity to `descriptor` (D,), and that
        similarity, ignoring the `exclude_newest` most recent keyframes; None if none."""
        candidates = self._keyframes[:len(self._keyframes) - exclude_newest] \
            if exclude_newest > 0 else self._keyframes
        if not candidates:
            return None
        d = np.asarray(descriptor, dtype=np.float32).reshape(-1)
        d = d / max(float(np.linalg.norm(d)), 1e-12)
        similarity = np.stack([k.descriptor for k in candidates]) @ d
        best = int(np.argmax(similarity))
        return candidates[best], float(similarity[best])

    def save(self, path: str | os.PathLike) -> None:
        """Writes the map to `path` (.npz), atomically."""
        if not self._keyframes:
            raise MapFileError('the map is empty: nothing to save')
        arrays = {
            'meta': np.frombuffer(json.dumps({'version': MAP_FORMAT_VERSION,
                                              'next_id': self._next_id}).encode(), np.uint8),
            'ids': np.array([k.keyframe_id for k in self._keyframes], np.int64),
            'stamps': np.array([k.stamp for k in self._keyframes], np.float64),
            'poses': np.stack([k.T_map_cam for k in self._keyframes]),
            'descriptors': np.stack([k.descriptor for k in self._keyframes]),
            'images': np.stack([k.image for k in self._keyframes]),
            'K': np.stack([k.K for k in self._keyframes]),
        }
        path = os.fspath(path)
        tmp = path + '.tmp.npz'
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike, max_keyframes: int = 500) -> 'KeyframeMap':
        """Reads a map written by `save`; raises MapFileError naming the problem."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise MapFileError(f'map file {path!r} does not exist')
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data['meta']).decode())
                if meta.get('version') != MAP_FORMAT_VERSION:
                    raise MapFileError(f'map file {path!r} has format version '
                                       f'{meta.get("version")!r}, expected {MAP_FORMAT_VERSION}')
                arrays = {k: data[k] for k in ('ids', 'stamps', 'poses', 'descriptors',
                                               'images', 'K')}
        except MapFileError:
            raise
        except Exception as error:  # zip, json and key errors all mean "not a map file"
            raise MapFileError(f'map file {path!r} is unreadable: {error}') from None
        result = cls(max(max_keyframes, len(arrays['ids'])))
        for i in range(len(arrays['ids'])):
            result._keyframes.append(Keyframe(
                int(arrays['ids'][i]), float(arrays['stamps'][i]), arrays['poses'][i].copy(),
                arrays['descriptors'][i].astype(np.float32), arrays['images'][i].copy(),
                arrays['K'][i].copy()))
        result._next_id = int(meta.get('next_id', len(result._keyframes)))
        return result
