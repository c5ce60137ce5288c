"""Geometry teacher at the edge: run any ONNX teacher with named feature outputs, and export
a trained GeoVR teacher checkpoint to such an ONNX file.

Usage: python -m geovr_training.train.teacher --checkpoint T.pt --out teacher.onnx
"""

from __future__ import annotations

import argparse
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


def export_teacher(checkpoint: str | Path, out: str | Path, height: int = 192, width: int = 256) -> list[str]:
    """Export a GeoVR teacher checkpoint to ONNX with outputs depth, feat_0..feat_3.

    Only the encoder, depth decoder and scale head are traced, so weights of other heads
    (e.g. a descriptor head added after the teacher was trained) may be absent.
    """
    from geovr_training.model import CheckpointError, TeacherFeatures, export_onnx, load_checkpoint, read_checkpoint

    model, _ = load_checkpoint(checkpoint, strict=False)
    expected = model.state_dict().keys()
    stored = read_checkpoint(checkpoint)['model'].keys()
    feature_path = ('patch_embed', 'ray_embed', 'frame_embed', 'camera_token', 'scale_token', 'blocks',
                    'depth_decoder', 'scale_head', 'norm')
    missing = [k for k in expected if k not in stored and k.startswith(feature_path)]
    if missing:
        raise CheckpointError(f'teacher checkpoint {str(checkpoint)!r} lacks weights {missing[:5]}')
    wrapper = TeacherFeatures(model)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    export_onnx(wrapper, str(out), wrapper.output_names, height, width)
    return wrapper.output_names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Export a GeoVR geometry teacher to ONNX (feat_0..feat_3).')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--out', required=True)
    parser.add_argument('--height', type=int, default=192)
    parser.add_argument('--width', type=int, default=256)
    args = parser.parse_args(argv)
    names = export_teacher(args.checkpoint, args.out, args.height, args.width)
    print(f'wrote {args.out} with outputs {names}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
