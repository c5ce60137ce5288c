"""Convert a real recording into a dataset folder (manifest.json + shards).

By default the whole recording is one sequence of split 'test'. With ``split_recording`` it
becomes three sequences cut by the fixed rule every model of the project uses on real
recordings (``recording_splits``): the first 70 % of frames train, the next 10 % validate,
the last 20 % test, with the ``RECORDING_SPLIT_GAP`` frames after each boundary dropped so
that no test frame is a near-copy of a training frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError, DataFormatError
from .shards import SHARD_SUFFIX, write_manifest, write_shard
from .types import Sequence

SOURCES = ('tum', 'frames', 'hololens', 'scannet', 'rosbag')  # 'frames' is the recording reader's '7scenes'
RECORDING_SPLIT_FRACTIONS = (('train', 0.7), ('val', 0.1), ('test', 0.2))
RECORDING_SPLIT_GAP = 10


def recording_splits(num_frames: int, gap: int = RECORDING_SPLIT_GAP) -> dict[str, range]:
    """Frame index ranges {'train', 'val', 'test'} of a recording of ``num_frames`` frames:
    70 / 10 / 20 % in time order; the first ``gap`` frames after each of the two boundaries
    are dropped (373 frames: train 0-260, val 271-297, test 308-372)."""
    bounds, start = {}, 0
    for index, (split, fraction) in enumerate(RECORDING_SPLIT_FRACTIONS):
        end = num_frames if index == len(RECORDING_SPLIT_FRACTIONS) - 1 else start + round(fraction * num_frames)
        bounds[split] = (start, end)
        start = end
    ranges = {split: range(lo + (gap if lo else 0), hi) for split, (lo, hi) in bounds.items()}
    if any(len(r) < 2 for r in ranges.values()):
        raise DataError(f'a recording of {num_frames} frames is too short to split 70/10/20 with '
                        f'{gap} frames dropped at each boundary')
    return ranges


def load_recording(source_format: str, src: str | Path, **options: Any) -> Sequence:
    """Load a recording with the loader of ``source_format``: one of SOURCES, '7scenes' (=
    'frames') or 'auto' (``geovr_ros.recordings.detect_format``). ``options``: name, stride,
    max_frames; intrinsics, truth_time_offset (TUM; refused elsewhere); image_topic, depth_topic
    (rosbag); None values are left out."""
    from geovr_ros.recordings import RecordingFormatError, detect_format

    from .loaders import load_frames_folder, load_hololens, load_rosbag, load_scannet, load_tum
    if source_format == 'auto':
        try:
            source_format = detect_format(src)
        except RecordingFormatError as exc:
            raise DataFormatError(exc.path, exc.problem) from None
    opts = {k: v for k, v in options.items() if v is not None}
    common = {k: opts[k] for k in ('name', 'stride', 'max_frames') if k in opts}
    if opts.get('truth_time_offset') and source_format != 'tum':
        raise DataFormatError(src, f'a truth_time_offset ({opts["truth_time_offset"]!r} s) applies to a TUM '
                                   f'recording, whose truth has its own clock; this one is {source_format!r}')
    if source_format == 'tum':
        return load_tum(src, intrinsics=opts.get('intrinsics'), truth_time_offset=opts.get('truth_time_offset', 0.0),
                        **common)
    if source_format in ('frames', '7scenes'):
        return load_frames_folder(src, **common)
    if source_format == 'hololens':
        return load_hololens(src, **common)
    if source_format == 'scannet':
        return load_scannet(src, **common)
    if source_format == 'rosbag':
        return load_rosbag(src, image_topic=opts.get('image_topic'), depth_topic=opts.get('depth_topic'), **common)
    if source_format == 'generated':
        raise DataFormatError(src, 'a geovr-data dataset already: read it with read_shard / SequenceDataset')
    raise DataError(f'unknown source format {source_format!r}; expected auto or one of {SOURCES}')


def _subsequence(seq: Sequence, frames: range, name: str) -> Sequence:
    pick = np.asarray(frames)
    ids = seq.info.get('frame_ids')
    info = {**seq.info, 'frame_ids': [ids[i] for i in pick] if ids else list(map(int, pick)),
            'recording_frames': [int(pick[0]), int(pick[-1]) + 1]}
    return Sequence(name=name, rgb=seq.rgb[pick], depth=None if seq.depth is None else seq.depth[pick],
                    K=seq.K[pick], T_world_cam=seq.T_world_cam[pick], timestamps=seq.timestamps[pick],
                    info=info)


def convert(source_format: str, src: str | Path, out_dir: str | Path, split_recording: bool = False,
            **options: Any) -> dict[str, Any]:
    """Load ``src`` and write it as a dataset in ``out_dir``: one sequence of split 'test', or
    with ``split_recording`` the three sequences NAME_train / NAME_val / NAME_test of
    ``recording_splits``."""
    seq = load_recording(source_format, src, **options)
    out = Path(out_dir)
    if split_recording:
        parts = [(split, _subsequence(seq, frames, f'{seq.name}_{split}'))
                 for split, frames in recording_splits(len(seq)).items()]
    else:
        parts = [('test', seq)]
    entries = []
    for split, part in parts:
        path = write_shard(part, out / f'{part.name}{SHARD_SUFFIX}')
        entries.append({'name': part.name, 'file': path.name, 'num_frames': len(part),
                        'image_size': list(part.image_size), 'split': split, 'source': str(src),
                        **({'recording_frames': part.info['recording_frames']} if split_recording else {}),
                        **({'truth_time_offset_s': seq.info['truth_time_offset_s']}
                           if 'truth_time_offset_s' in seq.info else {})})
    manifest = {'format': 'geovr-data', 'generator': f'convert-{source_format}', 'seed': None,
                'sequences': entries,
                'splits': {split: [e['name'] for e in entries if e['split'] == split]
                           for split in ('train', 'val', 'test')}}
    write_manifest(out, manifest)
    return manifest
