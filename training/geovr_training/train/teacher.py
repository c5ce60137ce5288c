"""Geometry teacher at the edge: run any ONNX teacher with named feature outputs, and export
a GeoVR-S checkpoint (a larger or better-trained one, e.g. the shipped
models/geovr_s_v2/checkpoint.pt) to such an ONNX file.

Usage: python -m geovr_training.train.teacher --checkpoint T.pt --out teacher.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch


class TeacherError(ValueError):
    """The ONNX teacher is missing or lacks a configured output."""


class OnnxTeacher:
    """Runs an ONNX teacher (inputs `images` (B, 2, 3, H, W) normalised, `intrinsics`
    (B, 2, 3, 3)) and returns the configured outputs, each (B, 2, C, h, w), as tensors."""

    def __init__(self, path: str | Path, outputs: list[str], threads: int = 1):
        import onnxruntime as ort  # heavy edge dependency

        path = Path(path)
        if not path.is_file():
            raise TeacherError(f'teacher ONNX {str(path)!r} does not exist')
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=['CPUExecutionProvider'])
        available = [o.name for o in self.session.get_outputs()]
        missing = [name for name in outputs if name not in available]
        if missing:
            raise TeacherError(f'teacher {str(path)!r} has no outputs {missing}; it has {available}')
        self.outputs = list(outputs)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def channels(self, height: int = 192, width: int = 256) -> list[int]:
        """Channel count of each configured output (runs the teacher once on zeros)."""
        feats = self(torch.zeros(1, 2, 3, height, width), torch.eye(3).expand(1, 2, 3, 3) * 100 + 1e-3)
        return [int(f.shape[2]) for f in feats]

    def __call__(self, images: torch.Tensor, intrinsics: torch.Tensor) -> list[torch.Tensor]:
        feeds = {'images': images.detach().cpu().numpy().astype(np.float32),
                 'intrinsics': intrinsics.detach().cpu().numpy().astype(np.float32)}
        feeds = {k: v for k, v in feeds.items() if k in self.input_names}
        values = self.session.run(self.outputs, feeds)
        return [torch.from_numpy(v).to(images.device) for v in values]


def export_teacher(checkpoint: str | Path, out: str | Path, height: int = 192, width: int = 256,
                   count: int = 4) -> list[str]:
    """Export a GeoVR-S checkpoint as a teacher: ONNX with outputs depth, feat_0..feat_{count-1}
    (the cell features of `count` blocks evenly spaced over its transformer, each
    (B, 2, dim, H/32, W/32)); `height` and `width` are the tracing size, the graph takes any
    multiple of 32. Raises CheckpointError naming the file when it cannot be loaded."""
    from geovr_training.model import TeacherFeatures, export_onnx, load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    wrapper = TeacherFeatures(model, count=count)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    export_onnx(wrapper, str(out), wrapper.output_names, height, width)
    return wrapper.output_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Export a GeoVR-S checkpoint as an ONNX geometry teacher '
                                                 '(depth, feat_0..feat_{N-1}).')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--width', type=int, default=256)
    parser.add_argument('--features', type=int, default=4, help='block features to output (N)')
    args = parser.parse_args(argv)
    from geovr_training.model import CheckpointError
    try:
        names = export_teacher(args.checkpoint, args.out, args.height, args.width, args.features)
    except CheckpointError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    print(f'wrote {args.out} with outputs {names}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
