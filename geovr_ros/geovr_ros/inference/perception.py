"""`PerceptionPipeline`: preprocess -> backend.infer -> decode, with per-stage timings.

Pure Python/numpy (no rclpy): a ROS node converts messages to (rgb, K) and calls `step`
or `infer`, then converts the `PerceptionResult` back to messages.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from geovr_ros.inference.backends.base import Backend, ModelFileError
from geovr_ros.inference.decode import PerceptionResult, decode_perception
from geovr_ros.inference.metadata import MetadataError, ModelMetadata, read_metadata
from geovr_ros.inference.preprocess import PreparedFrame, Preprocessor, clip_inputs
from geovr_ros.inference.select import create_backend

LOG = logging.getLogger(__name__)


class PerceptionPipeline:
    """Runs the perception graph on (reference, current) frames from any camera.

    Args:
        model: a model directory written by `geovr-export onnx` (perception.onnx, .pt2) or
            an .onnx / .pt2 / .engine file; or an already loaded Backend via `backend=`.
        backend: 'auto' | 'tensorrt' | 'onnxruntime' | 'torch', or a loaded Backend.
        input_size: (W, H) the model runs at; defaults to the metadata's geovr.input_size.
            Must be a multiple of geovr.shapes.multiple_of.
        metadata: use this instead of reading it from the model's ONNX file.
        **backend_options: passed to `create_backend`.
    """

    def __init__(self, model: str | os.PathLike, backend: str | Backend = 'auto',
                 input_size: tuple[int, int] | None = None,
                 metadata: ModelMetadata | None = None, **backend_options) -> None:
        self.metadata = metadata or self._find_metadata(Path(model), backend)
        width, height = input_size or self.metadata.input_size
        step = self.metadata.multiple_of
        if width % step or height % step or width <= 0 or height <= 0:
            raise ValueError(f'input_size {(width, height)} must be positive multiples of '
                             f'{step} pixels (geovr.shapes.multiple_of of this model)')
        self.input_size = (int(width), int(height))
        self.preprocess = Preprocessor(self.input_size, self.metadata.mean, self.metadata.std)
        self.backend = (backend if isinstance(backend, Backend)
                        else create_backend(backend, model, **backend_options))
        self.backend.example_sizes.update(batch=1, height=self.input_size[1],
                                          width=self.input_size[0])
        self._reference: PreparedFrame | None = None

    @staticmethod
    def _find_metadata(model: Path, backend) -> ModelMetadata:
        candidates = [model / 'perception.onnx'] if model.is_dir() else [model.with_suffix('.onnx')]
        for candidate in candidates:
            if candidate.exists():
                return read_metadata(candidate)
        if isinstance(backend, Backend) and getattr(backend, 'metadata', None):
            return ModelMetadata.from_props(backend.metadata, str(model))
        if not model.exists():
            raise ModelFileError(model, 'does not exist')
        raise MetadataError(str(model), 'geovr.*', 'not found: no perception.onnx next to it to '
                                                   'read the metadata from (pass metadata=)')

    def run(self, ref: PreparedFrame, cur: PreparedFrame) -> PerceptionResult:
        """Inference + decoding on two prepared frames (timings for 'infer' and 'decode')."""
        start = time.perf_counter()
        outputs = self.backend.infer(clip_inputs(ref, cur))
        inferred = time.perf_counter()
        result = decode_perception(outputs, cur.K)
        decoded = time.perf_counter()
        result.timings_ms.update(infer=(inferred - start) * 1e3, decode=(decoded - inferred) * 1e3)
        return result

    def infer(self, rgb_ref: np.ndarray, K_ref: np.ndarray, rgb_cur: np.ndarray,
              K_cur: np.ndarray) -> PerceptionResult:
        """Depth, T_ref_cur, tokens and descriptor for a pair of frames.

        Args:
            rgb_ref, rgb_cur: uint8 (H, W, 3) RGB images, any size (each its own).
            K_ref, K_cur: (3, 3) intrinsics of each image, pixels.
        """
        start = time.perf_counter()
        ref = self.preprocess(rgb_ref, K_ref)
        cur = self.preprocess(rgb_cur, K_cur)
        prepared = time.perf_counter()
        result = self.run(ref, cur)
        result.timings_ms['preprocess'] = (prepared - start) * 1e3
        result.timings_ms['total'] = (time.perf_counter() - start) * 1e3
        return result

    def step(self, rgb: np.ndarray, K: np.ndarray, update_reference: bool = True
             ) -> PerceptionResult:
        """Run on a stream: the kept reference frame and this one.

        The first call (or the first after `reset`) uses the frame as its own reference
        (rel_pose close to identity). With `update_reference` the frame becomes the next
        reference (frame-to-frame odometry: rel_pose = T_prev_cur); without it the
        reference stays (keyframe tracking: rel_pose = T_key_cur).
        """
        start = time.perf_counter()
        cur = self.preprocess(rgb, K)
        prepared = time.perf_counter()
        result = self.run(self._reference or cur, cur)
        if update_reference or self._reference is None:
            self._reference = cur
        result.timings_ms['preprocess'] = (prepared - start) * 1e3
        result.timings_ms['total'] = (time.perf_counter() - start) * 1e3
        return result

    def set_reference(self, rgb: np.ndarray, K: np.ndarray) -> None:
        """Make (rgb, K) the reference frame of the next `step` calls."""
        self._reference = self.preprocess(rgb, K)

    def reset(self) -> None:
        """Forget the reference frame."""
        self._reference = None

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> PerceptionPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
