"""Checkpoints: a torch.save dict that loads with `torch.load(weights_only=True)`.

Layout (docs/architecture.md): {"model": state_dict, "model_args": dict, "config": dict,
"epoch": int, "optimizer": state_dict | None, "metrics": dict, "format": str}.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geovr_training.model.network import GeoVRModel, build_model, model_args_from_dict

CHECKPOINT_FORMAT = 'geovr-s/1'


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or not a GeoVR-S checkpoint."""


def save_checkpoint(path: str | Path, model: torch.nn.Module, config: dict, epoch: int,
                    optimizer: torch.optim.Optimizer | None = None, metrics: dict | None = None,
                    extra: dict | None = None) -> Path:
    """Write a checkpoint atomically (temp file + rename); unwraps DDP. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = model.module if hasattr(model, 'module') else model
    state = {
        'format': CHECKPOINT_FORMAT,
        'model': net.state_dict(),
        'model_args': net.args.to_dict(),
        'config': config,
        'epoch': int(epoch),
        'optimizer': optimizer.state_dict() if optimizer is not None else None,
        'metrics': metrics or {},
    }
    state.update(extra or {})
    tmp = path.with_suffix(path.suffix + '.tmp')
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def read_checkpoint(path: str | Path) -> dict:
    """Load the raw checkpoint dict with weights_only=True; raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint {str(path)!r} does not exist')
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as exc:  # corrupt file, pickle with code, wrong format
        raise CheckpointError(f'checkpoint {str(path)!r} cannot be read: {exc}') from exc
    if not isinstance(state, dict) or state.get('format') != CHECKPOINT_FORMAT:
        found = state.get('format') if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f'checkpoint {str(path)!r} is not a GeoVR-S checkpoint '
                              f'(format {found!r}, expected {CHECKPOINT_FORMAT!r})')
    for key in ('model', 'model_args', 'config', 'epoch'):
        if key not in state:
            raise CheckpointError(f'checkpoint {str(path)!r} lacks the key {key!r}')
    return state


def load_checkpoint(path: str | Path, strict: bool = True) -> tuple[GeoVRModel, dict]:
    """Rebuild the model from `model_args` and load its weights (eval mode, CPU).

    Returns (model, checkpoint dict). Raises CheckpointError naming the file when it is
    missing, unreadable, of another architecture, or its weights do not fit.
    """
    state = read_checkpoint(path)
    try:
        args = model_args_from_dict(state['model_args'], pretrained=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'checkpoint {str(path)!r} has unusable model_args: {exc}') from exc
    model = build_model(args)
    try:
        model.load_state_dict(state['model'], strict=strict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(f'checkpoint {str(path)!r} weights do not match its model_args '
                              f'(another architecture?): {" ".join(first)}') from exc
    model.eval()
    return model, state
