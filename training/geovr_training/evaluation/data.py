"""Evaluation inputs: sequences of a generated dataset split, or a real recording of any
format the recording reader detects (`geovr_ros.recordings`: 7-Scenes-style folders, TUM,
the HoloLens layout, rosbag2 / rosbag1), read by the data engine's loaders."""

from __future__ import annotations

from pathlib import Path


def load_sequences(path: str | Path, split: str = 'test', max_sequences: int | None = None,
                   max_frames: int | None = None, truth_time_offset: float = 0.0) -> list:
    """Sequences (geovr_training.data.types.Sequence) to evaluate, each cut to `max_frames`: a
    generated dataset's `split` ('all': every split's, in the manifest's order), or the one
    recording `path` holds; truth_time_offset (s): a TUM recording's true poses looked up that much after each frame's
    stamp (`geovr_ros.recordings.tum.open_tum`); refused for a generated dataset, whose truth is
    the render's own."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f'evaluation data {str(path)!r} does not exist')
    if (path / 'manifest.json').is_file():
        if truth_time_offset:
            raise ValueError(f'a truth_time_offset ({truth_time_offset!r} s) applies to a recording whose truth '
                             f'has its own clock, not to the generated dataset {str(path)!r}')
        from geovr_training.data.shards import SHARD_SUFFIX, read_manifest, read_shard
        manifest = read_manifest(path)
        names = (list(dict.fromkeys(n for names in manifest['splits'].values() for n in names))
                 if split == 'all' else manifest['splits'].get(split))
        if not names:
            raise ValueError(f'dataset {str(path)!r} has no sequences in split {split!r}; '
                             f'splits: { {k: len(v) for k, v in manifest["splits"].items()} }')
        names = names[:max_sequences] if max_sequences else names
        files = {s['name']: s['file'] for s in manifest['sequences']}
        out = []
        for name in names:
            seq = read_shard(path / files.get(name, name + SHARD_SUFFIX))
            out.append(_cut(seq, max_frames))
        return out
    from geovr_training.data.convert import load_recording
    return [load_recording('auto', path, max_frames=max_frames, truth_time_offset=truth_time_offset or None)]


def _cut(seq, max_frames: int | None):
    if max_frames is None or len(seq.rgb) <= max_frames:
        return seq
    return seq.select(slice(0, int(max_frames)))
