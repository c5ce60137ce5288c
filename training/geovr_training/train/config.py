"""Training configuration: a YAML file with sections, validated with clear errors."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import yaml

DEFAULTS: dict = {
    'seed': 0,
    'out_dir': 'runs/geovr_s',
    'init_from': None,  # checkpoint whose model weights start a new run (fine-tuning; fresh optimizer)
    'model': {'preset': 'v2'},  # 'v2' | 'tiny' (model.network_v2.PRESETS), plus any ModelArgsV2 field
    'data': {
        'root': None,  # dataset folder written by `geovr-data generate`, or a list of them (mixed)
        'repeats': None,  # with a list root: times each folder enters the training pool (default 1 each)
        'depth_supervision': None,  # with a list root: per folder 'metric' (default) or 'shape' (its depth
                                    # trains scale- and shift-invariant disparity only, no metric scale)
        'train_split': 'train',
        'val_split': 'val',
        'frame_gap': [1, 3],  # min, max frames between the two frames of a clip
        'resolution': [256, 192],  # [W, H] the model trains at, multiples of RESOLUTION_MULTIPLE
        'camera_augmentation': True,
        'camera_zoom': [0.85, 1.25],  # [min, max] zoom about the centre in camera augmentation (2: half the field)
        'camera_zoom_narrow': [1.25, 2.2],  # [min, max] zoom of the narrow-field draws (2.2: a 64 deg camera at 32)
        'camera_zoom_narrow_fraction': 0.0,  # share of augmented clips zoomed by camera_zoom_narrow instead
        'camera_blur_fraction': 0.0,  # share of augmented clips shrunk by camera_blur_factor and resized back
        'camera_blur_factor': [1.5, 3.0],  # [min, max] shrink of those clips (2: a camera of half the pixels per side)
        'colour_jitter_fraction': 0.0,  # share of augmented clips whose brightness, contrast, saturation
                                        # (x 0.8-1.25) and hue (+-0.03 of the circle) change
        'flip_fraction': 0.0,  # share of augmented clips mirrored left to right (poses and K with them)
        'batch_size': 8,
        'num_workers': 0,
        'clip_stride': 1,  # a clip starts every clip_stride frames
        'val_clip_stride': 8,  # sparser validation clips so a few batches cover every val scene
        'semantics': False,  # per-pixel category labels from the renderer (for loss.semantic)
    },
    'loss': {},  # LossConfig fields
    'optim': {
        'lr': 3e-4,
        'weight_decay': 0.05,
        'epochs': 10,
        'warmup_steps': 50,
        'grad_clip': 1.0,
        'max_steps_per_epoch': None,
        'max_steps': None,  # total steps: passes over the data repeat until reached (overrides epochs)
        'max_val_batches': None,
        'max_time_min': None,  # stop after this many minutes (checkpoint kept)
        'trainable': [],  # parameter-name prefixes to train, the rest frozen; empty: all
        'lr_scale': {},  # parameter-name prefix -> learning-rate factor (e.g. {backbone.: 0.1})
    },
    'early_stopping': {'patience': 5, 'min_delta': 0.0},
    'teacher': {
        'onnx': None,  # path to any ONNX teacher with named feature outputs
        'outputs': ['feat_0', 'feat_1', 'feat_2', 'feat_3'],
        'student_layers': [],  # empty: evenly spaced over the student's blocks
        'threads': 1,
    },
    'log_every': 10,
}


class ConfigError(ValueError):
    """A training configuration value is missing or invalid."""


FREE_SECTIONS = ('model', 'loss', 'optim.lr_scale')  # mappings checked by their own classes
RESOLUTION_MULTIPLE = 32  # the model's stride (model.network_v2.STRIDE)


def merge_strict(base: dict, override: dict, free: tuple[str, ...] = FREE_SECTIONS, path: str = '',
                 error: type[ValueError] = None) -> dict:
    """A copy of `base` with `override` merged in, section by section. A key `base` does not
    have raises `error` (ConfigError by default) naming its dotted path, and so does a mapping
    given for a plain value (`data.train_split.x=1`, the split being a name); the mappings named
    in `free` (dotted paths) take any keys (their owners validate them)."""
    error = error or ConfigError
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        dotted = path + key
        if key not in base:
            raise error(f'unknown config key {dotted!r}')
        if isinstance(base[key], dict) and dotted not in free:
            if not isinstance(value, dict):
                raise error(f'config key {dotted!r} must be a mapping, got {value!r}')
            out[key] = merge_strict(base[key], value, free, dotted + '.', error)
        elif isinstance(value, dict) and isinstance(base[key], (str, int, float, list)):
            raise error(f'config key {dotted!r} is a value, not a mapping: got {value!r}')
        else:
            out[key] = copy.deepcopy(value)
    return out


def _merge(base: dict, override: dict) -> dict:
    return merge_strict(base, override)


def resolve_config(values: dict) -> dict:
    """Merge `values` over DEFAULTS, rejecting unknown keys; returns a new dict."""
    config = _merge(DEFAULTS, values or {})
    optim = config['optim']
    if not optim['lr'] > 0:
        raise ConfigError(f"optim.lr must be > 0, got {optim['lr']!r}")
    if int(optim['epochs']) < 1:
        raise ConfigError(f"optim.epochs must be >= 1, got {optim['epochs']!r}")
    if optim['max_steps'] is not None and int(optim['max_steps']) < 1:
        raise ConfigError(f"optim.max_steps must be >= 1 or null, got {optim['max_steps']!r}")
    if int(config['data']['batch_size']) < 1:
        raise ConfigError(f"data.batch_size must be >= 1, got {config['data']['batch_size']!r}")
    width, height = config['data']['resolution']
    if width % RESOLUTION_MULTIPLE or height % RESOLUTION_MULTIPLE:
        raise ConfigError(f"data.resolution {config['data']['resolution']} must be multiples of {RESOLUTION_MULTIPLE}")
    return config


def load_config(path: str | Path, overrides: dict | None = None) -> dict:
    """Read a YAML config (optionally merged with `overrides`) and resolve it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'config file {str(path)!r} does not exist')
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f'config file {str(path)!r} must hold a mapping, got {type(values).__name__}')
    config = resolve_config(values)
    if overrides:  # checked like the file's values
        config = resolve_config(_merge(config, overrides))
    return config


def parse_overrides(pairs: list[str]) -> dict:
    """['optim.lr=1e-3', 'data.root=/x'] -> nested dict (values parsed as YAML)."""
    out: dict = {}
    for pair in pairs:
        if '=' not in pair:
            raise ConfigError(f'--set expects key=value, got {pair!r}')
        key, value = pair.split('=', 1)
        node = out
        parts = key.split('.')
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return out


_MISSING = object()


def settings_beside(config: dict, defaults: dict = DEFAULTS) -> dict:
    """The entries of a resolved `config` that differ from `defaults` (nested; a key the
    defaults lack, as in the free sections, counts as a difference): what a run set, so that a
    new default key, added at its old behaviour, changes nothing in it."""
    out = {}
    for key, value in config.items():
        base = defaults.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(base, dict):
            inner = settings_beside(value, base)
            if inner:
                out[key] = inner
        elif base is _MISSING or value != base:
            out[key] = value
    return out


def config_sha256(config: dict) -> str:
    """sha256 hex of the config's JSON (sorted keys, non-JSON values as their str): stored in
    checkpoints and in the exported graphs' `geovr.config_sha256`."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
