"""`geovr-train --config training/configs/NAME.yaml [--resume CKPT] [--set key=value ...]`.

Multi-process: `torchrun --nproc_per_node N -m geovr_training.train.cli --config ...`
(or `torchrun --nproc_per_node N $(which geovr-train) --config ...`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

from geovr_training.train.config import parse_overrides


def _config_task(path: str) -> str:
    """The config's `task` (geometry when absent); unreadable files are left to the loader."""
    try:
        with open(path, encoding='utf-8') as stream:
            config = yaml.safe_load(stream)
    except (OSError, yaml.YAMLError):
        return 'geometry'
    return config.get('task', 'geometry') if isinstance(config, dict) else 'geometry'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Train GeoVR-S (geometry, or the QA half with a task: qa config).')
    parser.add_argument('--config', required=True, help='YAML config (training/configs/*.yaml)')
    parser.add_argument('--resume', default=None, help='checkpoint to resume from (last.pt)')
    parser.add_argument('--set', action='extend', nargs='*', default=[], metavar='KEY=VALUE',
                        help='override config values, e.g. data.root=/tmp/data optim.epochs=3')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if _config_task(args.config) == 'qa':  # the language half (geovr_training.qa)
        if args.resume:
            parser.error('a QA config (task: qa) takes no --resume: continue with --set training.init_from=CKPT')
        from geovr_training.qa.train import main as train_qa_main
        return train_qa_main(['--config', args.config] + (['--set', *args.set] if args.set else []))

    from geovr_training.model import CheckpointError
    from geovr_training.train.config import ConfigError, load_config
    from geovr_training.train.trainer import train

    try:
        config = load_config(args.config, parse_overrides(args.set))
        summary = train(config, resume=args.resume, progress=not args.no_progress)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'geovr-train: error: {exc}', file=sys.stderr)
        return 2
    if os.environ.get('RANK', '0') == '0':
        print(json.dumps({k: v for k, v in summary.items() if k != 'history'}, indent=2))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
