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
    return _save_atomically(state, path)


def _save_atomically(state: dict, path: str | Path) -> Path:
    """torch.save to a temp file beside `path`, then renamed over it: a failed write never
    leaves a half-written checkpoint. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    return _save_atomically(state, dst)


def interpolate_checkpoints(base: str | Path, tuned: str | Path, dst: str | Path, weight: float,
                            prefixes: tuple[str, ...] = ()) -> Path:
    """Weights between two checkpoints of one architecture (WiSE-FT, Wortsman et al. 2022):
    (1 - weight) x `base` + weight x `tuned`, for floating-point tensors whose names start with
    one of `prefixes` (every tensor when empty); every other tensor, and every other key, is
    `base`'s. Meant for a fine-tune and the model it started from: weight 0 is `base`, 1 the
    fine-tune for the tensors named. Tensors keep `base`'s dtype. Writes `dst` atomically and
    returns it; raises CheckpointError when the two do not hold the same tensors, and
    ValueError for a weight outside [0, 1] or a prefix that names no tensor."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f'interpolation weight must lie in [0, 1], got {weight!r}')
    state, other = read_checkpoint(base), read_checkpoint(tuned)
    if checkpoint_model_args(state, base) != checkpoint_model_args(other, tuned):
        raise CheckpointError(f'checkpoints {str(base)!r} and {str(tuned)!r} have different model_args')
    weights, tuned_weights = state['model'], other['model']
    if weights.keys() != tuned_weights.keys():
        missing = sorted(set(weights) ^ set(tuned_weights))[:3]
        raise CheckpointError(f'checkpoints {str(base)!r} and {str(tuned)!r} hold different tensors, e.g. {missing}')
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name in weights):
            raise ValueError(f'prefix {prefix!r} names no tensor of {str(base)!r}')
    mixed = 0
    for name, value in weights.items():
        if not value.is_floating_point() or (prefixes and not name.startswith(tuple(prefixes))):
            continue
        if value.shape != tuned_weights[name].shape:
            raise CheckpointError(f'tensor {name!r} is {tuple(value.shape)} in {str(base)!r} '
                                  f'and {tuple(tuned_weights[name].shape)} in {str(tuned)!r}')
        weights[name] = torch.lerp(value.float(), tuned_weights[name].float(), weight).to(value.dtype)
        mixed += 1
    state['optimizer'] = None
    state['interpolated'] = {'base': str(base), 'tuned': str(tuned), 'weight': float(weight),
                             'prefixes': list(prefixes), 'tensors': mixed}
    return _save_atomically(state, dst)


def main(argv: list[str] | None = None) -> int:
    """`python -m geovr_training.model.checkpoint compact SRC DST` and
    `... interpolate BASE TUNED DST --weight W [--prefix depth_decoder.]`."""
    import argparse
    parser = argparse.ArgumentParser(prog='python -m geovr_training.model.checkpoint')
    sub = parser.add_subparsers(dest='command', required=True)
    compact = sub.add_parser('compact', help='drop the optimizer, store weights as float16')
    compact.add_argument('src')
    compact.add_argument('dst')
    interpolate = sub.add_parser('interpolate', help="weights between a checkpoint and its fine-tune (WiSE-FT)")
    interpolate.add_argument('base', help='the checkpoint the fine-tune started from')
    interpolate.add_argument('tuned', help='the fine-tune')
    interpolate.add_argument('dst')
    interpolate.add_argument('--weight', type=float, required=True, help="the fine-tune's share, 0-1")
    interpolate.add_argument('--prefix', action='append', default=[],
                             help='interpolate only tensors whose names start with it (repeatable)')
    args = parser.parse_args(argv)
    try:
        if args.command == 'compact':
            path = compact_checkpoint(args.src, args.dst)
        else:
            path = interpolate_checkpoints(args.base, args.tuned, args.dst, args.weight, tuple(args.prefix))
    except (CheckpointError, ValueError) as error:
        print(f'error: {error}')
        return 2
    print(f'{path}: {path.stat().st_size / 1e6:.1f} MB')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
