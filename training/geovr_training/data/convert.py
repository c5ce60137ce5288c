"""Convert a real recording into a dataset folder (manifest.json + one shard)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import DataError
from .shards import SHARD_SUFFIX, write_manifest, write_shard
from .types import Sequence

SOURCES = ('tum', 'frames', 'rosbag')


def load_recording(source_format: str, src: str | Path, **options: Any) -> Sequence:
    """Load a recording with the loader of ``source_format`` ('tum', 'frames', 'rosbag')."""
    from .loaders import load_frames_folder, load_rosbag, load_tum
    opts = {k: v for k, v in options.items() if v is not None}
    common = {k: opts[k] for k in ('name', 'stride', 'max_frames') if k in opts}
    if source_format == 'tum':
        return load_tum(src, intrinsics=opts.get('intrinsics'), **common)
    if source_format == 'frames':
        return load_frames_folder(src, **common)
    if source_format == 'rosbag':
        return load_rosbag(src, image_topic=opts.get('image_topic'), depth_topic=opts.get('depth_topic'), **common)
    raise DataError(f'unknown source format {source_format!r}; expected one of {SOURCES}')


def convert(source_format: str, src: str | Path, out_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Load ``src`` and write it as a one-sequence dataset in ``out_dir`` (split 'test')."""
    seq = load_recording(source_format, src, **options)
    out = Path(out_dir)
    path = write_shard(seq, out / f'{seq.name}{SHARD_SUFFIX}')
    manifest = {'format': 'geovr-data', 'generator': f'convert-{source_format}', 'seed': None,
                'sequences': [{'name': seq.name, 'file': path.name, 'num_frames': len(seq),
                               'image_size': list(seq.image_size), 'split': 'test', 'source': str(src)}],
                'splits': {'train': [], 'val': [], 'test': [seq.name]}}
    write_manifest(out, manifest)
    return manifest
