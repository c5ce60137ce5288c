"""Checkpoints: a torch.save dict that loads with `torch.load(weights_only=True)`.

Layout (docs/architecture.md): {"model": state_dict, "model_args": dict, "config": dict,
"epoch": int, "optimizer": state_dict | None, "metrics": dict, "format": str}.
"""

from __future__ import annotations

from pathlib import Path

import torch

from geovr_training.model.network_v2 import FAMILY, GeoVRv2Model, ModelArgsV2, build_model, model_args_from_dict

CHECKPOINT_FORMAT = 'geovr-s/1'
V1_LAST_COMMIT = 'd49947f'  # the last commit whose tree holds the v1 ViT (model/network.py, GeoVRModel)


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


def checkpoint_model_args(state: dict, path: str | Path) -> ModelArgsV2:
    """The ModelArgsV2 of checkpoint dict `state` read from `path`, the ImageNet initialisation
    off (the checkpoint's weights follow). Raises CheckpointError naming the file for the
    retired v1 ViT (its `model_args` have no `family`) and for unusable arguments."""
    values = state['model_args']
    if isinstance(values, dict) and 'family' not in values:
        raise CheckpointError(f'checkpoint {str(path)!r} holds a GeoVR-S v1 (ViT) model, which was retired from '
                              f'the tree; git commit {V1_LAST_COMMIT} is the last that loads it '
                              f'(`git switch --detach {V1_LAST_COMMIT}`). This tree loads {FAMILY!r} checkpoints.')
    try:
        return model_args_from_dict(values, pretrained=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f'checkpoint {str(path)!r} has unusable model_args: {exc}') from exc


def load_checkpoint(path: str | Path, strict: bool = True) -> tuple[GeoVRv2Model, dict]:
    """Rebuild the model from `model_args` and load its weights (eval mode, CPU).

    Returns (model, checkpoint dict). Raises CheckpointError naming the file when it is
    missing, unreadable, a retired v1 model, of another architecture, or its weights do not fit.
    """
    state = read_checkpoint(path)
    model = build_model(checkpoint_model_args(state, path))
    try:
        model.load_state_dict(state['model'], strict=strict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(f'checkpoint {str(path)!r} weights do not match its model_args '
                              f'(another architecture?): {" ".join(first)}') from exc
    model.eval()
    return model, state


def compact_checkpoint(src: str | Path, dst: str | Path) -> Path:
    """A shippable copy of a training checkpoint: no optimizer state, floating-point weights
    stored as float16 (halves the file; `load_checkpoint` casts them back to float32 when it
    loads them into the model). Integer buffers and every other key are kept."""
    state = read_checkpoint(src)
    state['model'] = {k: v.half() if v.is_floating_point() else v for k, v in state['model'].items()}
    state['optimizer'] = None
    state['compacted_from'] = Path(src).name
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(dst.suffix + '.tmp')
    torch.save(state, tmp)
    tmp.replace(dst)
    return dst


def main(argv: list[str] | None = None) -> int:
    """`python -m geovr_training.model.checkpoint compact SRC DST`."""
    import argparse
    parser = argparse.ArgumentParser(prog='python -m geovr_training.model.checkpoint')
    sub = parser.add_subparsers(dest='command', required=True)
    compact = sub.add_parser('compact', help='drop the optimizer, store weights as float16')
    compact.add_argument('src')
    compact.add_argument('dst')
    args = parser.parse_args(argv)
    try:
        path = compact_checkpoint(args.src, args.dst)
    except CheckpointError as error:
        print(f'error: {error}')
        return 2
    print(f'{path}: {path.stat().st_size / 1e6:.1f} MB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
