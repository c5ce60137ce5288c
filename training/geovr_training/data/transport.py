"""A dataset folder in few bytes, for a machine that can neither render nor read the sources
(a lent GPU machine: 64 MiB travel with the working tree, pybullet is not there).

`pack_dataset` writes one ``.npz`` (no pickle) per dataset folder: each frame's colour as
JPEG and its depth as a 16-bit PNG of log-depth codes (steps of 0.2 %, 0: invalid), the
chosen splits only, frames shrunk (never enlarged) so that they still cover ``min_size`` with
K updated. `unpack_dataset` writes the folder back as shards and a manifest the trainer reads.
Lossy on purpose: JPEG colour, depth within 0.1 % (a real sensor's noise is larger; the
sensor's own noise left in millimetres would double the bytes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from .augment import resize_frame
from .errors import DataFormatError
from .shards import ShardReader, dumps_json, read_manifest, write_manifest, write_shard
from .types import SceneGraph, Sequence

PACK_FORMAT = 'geovr-pack-1'
DEPTH_STEP = 0.002  # relative step between depth codes
DEPTH_MIN_M = 0.01  # depth of code 1; code 0 is invalid (none nearer: 0.01 m is no sensor's)


def depth_to_codes(depth: np.ndarray) -> np.ndarray:
    """float depth (H, W) m, NaN or <= DEPTH_MIN_M invalid -> uint16 log codes (0 invalid)."""
    with np.errstate(invalid='ignore', divide='ignore'):
        codes = 1 + np.round(np.log(depth / DEPTH_MIN_M) / np.log1p(DEPTH_STEP))
    valid = np.isfinite(codes) & (depth > DEPTH_MIN_M)
    return np.where(valid, np.clip(codes, 1, 65535), 0).astype(np.uint16)


def codes_to_depth(codes: np.ndarray) -> np.ndarray:
    """uint16 log codes -> float32 depth m (NaN where the code is 0)."""
    depth = DEPTH_MIN_M * np.power(1.0 + DEPTH_STEP, codes.astype(np.float64) - 1)
    return np.where(codes > 0, depth, np.nan).astype(np.float32)


def _encode(image: np.ndarray, extension: str, params: list[int]) -> np.ndarray:
    import cv2
    ok, data = cv2.imencode(extension, image, params)
    if not ok:
        raise ValueError(f'OpenCV could not encode a {image.shape} {image.dtype} image as {extension}')
    return data.reshape(-1)


def _decode(data: np.ndarray, flags: int) -> np.ndarray:
    import cv2
    image = cv2.imdecode(data, flags)
    if image is None:
        raise ValueError('OpenCV could not decode a packed frame')
    return image


def _shrunk_size(width: int, height: int, min_size: tuple[int, int]) -> tuple[int, int]:
    """(W, H) scaled down by one factor so that both still cover `min_size`; never larger."""
    factor = min(1.0, max(min_size[0] / width, min_size[1] / height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def _concat(chunks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
    return np.concatenate(chunks).astype(np.uint8), offsets


def pack_dataset(root: str | Path, out: str | Path, splits: tuple[str, ...] = ('train', 'val'),
                 min_size: tuple[int, int] = (288, 216), jpeg_quality: int = 92,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Pack the `splits` of dataset folder `root` into the file `out` (.npz). Frames are
    shrunk to cover `min_size` (W, H) px. Returns `out`."""
    import cv2
    root, out = Path(root), Path(out)
    manifest = read_manifest(root)
    keep = [entry for entry in manifest['sequences'] if entry.get('split') in splits]
    if not keep:
        raise DataFormatError(root, f'no sequence in splits {list(splits)}')
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for number, entry in enumerate(keep):
        with ShardReader(root / entry['file']) as reader:
            sequence = reader.read()
        height, width = sequence.rgb.shape[1:3]
        size = _shrunk_size(width, height, min_size)
        rgb_chunks, depth_chunks, K = [], [], []
        for i in range(len(sequence)):
            depth = sequence.depth[i] if sequence.depth is not None else np.full((height, width), np.nan, np.float32)
            rgb, depth, K_i = (sequence.rgb[i], depth, sequence.K[i]) if size == (width, height) else \
                resize_frame(sequence.rgb[i], depth, sequence.K[i], size)
            rgb_chunks.append(_encode(np.ascontiguousarray(rgb[..., ::-1]), '.jpg',
                                      [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]))
            depth_chunks.append(_encode(depth_to_codes(depth), '.png', [cv2.IMWRITE_PNG_COMPRESSION, 9]))
            K.append(K_i)
        key = f's{number}'
        arrays[f'{key}_rgb'], arrays[f'{key}_rgb_offsets'] = _concat(rgb_chunks)
        arrays[f'{key}_depth'], arrays[f'{key}_depth_offsets'] = _concat(depth_chunks)
        arrays[f'{key}_K'] = np.stack(K).astype(np.float64)
        arrays[f'{key}_T_world_cam'] = sequence.T_world_cam.astype(np.float64)
        arrays[f'{key}_timestamps'] = sequence.timestamps.astype(np.float64)
        meta = {'name': sequence.name, 'has_depth': sequence.depth is not None, 'qa': sequence.qa,
                'info': sequence.info, 'scene': None if sequence.scene is None else sequence.scene.to_json()}
        arrays[f'{key}_meta'] = np.frombuffer(dumps_json(meta), np.uint8)
        entries.append(dict(entry, image_size=list(size)))
        if progress:
            progress(f'packed {sequence.name}: {len(sequence)} frames {width}x{height} -> {size[0]}x{size[1]}')
    names = {e['name'] for e in entries}
    packed_manifest = dict(manifest, sequences=entries,
                           splits={split: [n for n in members if n in names]
                                   for split, members in manifest['splits'].items()})
    arrays['manifest'] = np.frombuffer(dumps_json({'format': PACK_FORMAT, 'manifest': packed_manifest}), np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, 'wb') as f:
        np.savez(f, **arrays)
    return out


def _read_packed_sequence(archive, key: str, cv2) -> Sequence:
    """The sequence stored under `key` ('s0', 's1', ...) of an open packed archive."""
    meta = json.loads(archive[f'{key}_meta'].tobytes())
    rgb_bytes, rgb_offsets = archive[f'{key}_rgb'], archive[f'{key}_rgb_offsets']
    depth_bytes, depth_offsets = archive[f'{key}_depth'], archive[f'{key}_depth_offsets']
    frames = len(rgb_offsets) - 1
    rgb = np.stack([_decode(rgb_bytes[rgb_offsets[i]:rgb_offsets[i + 1]], cv2.IMREAD_COLOR)[..., ::-1]
                    for i in range(frames)])
    depth = None
    if meta['has_depth']:
        depth = codes_to_depth(np.stack([_decode(depth_bytes[depth_offsets[i]:depth_offsets[i + 1]],
                                                 cv2.IMREAD_UNCHANGED) for i in range(frames)]))
    return Sequence(name=meta['name'], rgb=np.ascontiguousarray(rgb), depth=depth, K=archive[f'{key}_K'],
                    T_world_cam=archive[f'{key}_T_world_cam'], timestamps=archive[f'{key}_timestamps'],
                    scene=None if meta['scene'] is None else SceneGraph.from_json(meta['scene']),
                    qa=meta['qa'], info=meta['info'])


def unpack_dataset(packed: str | Path, out_dir: str | Path, progress: Callable[[str], None] | None = None) -> Path:
    """Write the dataset packed in `packed` into `out_dir` as shards and a manifest."""
    import cv2
    packed, out_dir = Path(packed), Path(out_dir)
    try:
        archive = np.load(packed, allow_pickle=False)
        header = json.loads(archive['manifest'].tobytes())
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(packed, f'not a packed dataset ({exc})') from None
    if header.get('format') != PACK_FORMAT:
        raise DataFormatError(packed, f"format {header.get('format')!r}, this reader reads {PACK_FORMAT}")
    manifest = header['manifest']
    for number, entry in enumerate(manifest['sequences']):
        try:
            sequence = _read_packed_sequence(archive, f's{number}', cv2)
        except (KeyError, ValueError, OSError) as exc:   # a member missing, a frame that does not decode
            raise DataFormatError(packed, f"sequence {entry.get('name')!r}: {exc}") from None
        write_shard(sequence, out_dir / entry['file'], compress_level=0)
        if progress:
            progress(f'unpacked {sequence.name}: {len(sequence)} frames')
    write_manifest(out_dir, manifest)
    return out_dir
