"""`PerceptionPipeline`: preprocess -> backend.infer -> decode, with per-stage timings.

Pure Python/numpy (no rclpy): a ROS node converts messages to (rgb, K) and calls `step`
or `infer`, then converts the `PerceptionResult` back to messages.

Two ways to run a model directory, chosen by what it holds (`graphs='auto'`):
- 'single': the perception graph on each (reference, current) clip: both frames are
  encoded again for every pair (GeoVR-S v1, or any model exported with that graph only);
- 'split' (GeoVR-S v2): the frame encoder runs once per camera frame and its encoding is
  kept; the pair head turns (reference encoding, current encoding) into the same outputs
  for the current frame. A stream then encodes each frame once instead of twice. The
  cell classifier, when exported, names what each stride-32 cell shows (`cell_logits`:
  ImageNet logits; `cell_category_logits`: a trained category head's, when the model has
  one, its names in `cell_categories`, read from the graph's geovr.vocabularies; on the
  head's own cells, stride 32, 16 or 8, as the graph's output shape says; a finer head's
  graph also takes the frame encoder's feat_s16, and feat_s8 at stride 8). When the directory also holds
  `imagenet_cells` (the pristine ImageNet EfficientNet-Lite0 on the same preprocessed image:
  GeoVR-S v2's backbone was fine-tuned for depth and lost ImageNet's classes), `cell_logits`
  are that graph's, run once per frame asked (the frames the object map names), instead of the classifier's.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from geovr_ros.inference.backends.base import Backend, ModelFileError
from geovr_ros.inference.decode import PerceptionResult, decode_perception
from geovr_ros.inference.metadata import (
    MetadataError, ModelMetadata, read_graph_metadata, read_metadata, read_props)
from geovr_ros.inference.preprocess import PreparedFrame, Preprocessor, clip_inputs
from geovr_ros.inference.select import create_backend

LOG = logging.getLogger(__name__)

GRAPH_MODES = ('auto', 'single', 'split')
SPLIT_GRAPHS = ('frame_encoder', 'pair_head')
IMAGENET_GRAPH = 'imagenet_cells'  # split mode, when exported: the ImageNet names of the cells
ENCODING_CACHE_SIZE = 4  # frames whose encoding is kept: reference, current, a keyframe or two


def _has_graph(model: Path, graph: str) -> bool:
    return any((model / f'{graph}{suffix}').exists() for suffix in ('.onnx', '.engine'))


class PerceptionPipeline:
    """Runs the perception graph on (reference, current) frames from any camera.

    Args:
        model: a model directory written by `geovr-export onnx` (perception.onnx, .pt2) or
            an .onnx / .pt2 / .engine file; or an already loaded Backend via `backend=`.
        backend: 'auto' | 'tensorrt' | 'onnxruntime' | 'torch', or a loaded Backend.
        input_size: (W, H) every camera is fed at (cut to its aspect, then resized); must be
            a multiple of geovr.shapes.multiple_of. None: each camera at about the trained
            pixel count (geovr.input_size) and its own aspect (`preprocess.fitted_input_size`).
        metadata: use this instead of reading it from the model's ONNX file.
        graphs: 'auto' (split when the model directory holds frame_encoder and pair_head,
            else single), 'single' or 'split' (see the module docstring).
        **backend_options: passed to `create_backend`. In split mode the graphs run in turn,
            and a session spinning while the other works halves the speed: ONNX Runtime's
            threads spin within a run (where `thread_spinning`, its default, asks) and stop
            when it returns (`spin_after_run=False`). ONNX Runtime's sessions are fixed to
            the input sizes unless `fixed_shapes=False` (a camera's sizes stay put;
            docs/deployment.md).
    """

    def __init__(self, model: str | os.PathLike, backend: str | Backend = 'auto',
                 input_size: tuple[int, int] | None = None,
                 metadata: ModelMetadata | None = None, graphs: str = 'auto',
                 **backend_options) -> None:
        model = Path(model)
        self.model_dir = model
        self.graphs = self._graph_mode(model, backend, graphs)
        self.metadata = metadata or self._find_metadata(model, backend)
        width, height = input_size or self.metadata.input_size
        step = self.metadata.multiple_of
        if width % step or height % step or width <= 0 or height <= 0:
            raise ValueError(f'input_size {(width, height)} must be positive multiples of '
                             f'{step} pixels (geovr.shapes.multiple_of of this model)')
        self.input_size = (int(width), int(height))
        # no size given: each camera is fed at the trained pixel count and its own aspect
        self.preprocess = Preprocessor(self.input_size, self.metadata.mean, self.metadata.std,
                                       multiple_of=step if input_size is None else None)
        self.encoder: Backend | None = None       # split mode: frame_encoder
        self.classifier: Backend | None = None    # split mode, when exported: cell_classifier
        self.imagenet: Backend | None = None      # split mode, when exported: imagenet_cells
        self.cell_categories: tuple[str, ...] = ()  # the classifier's category head, when it has one
        self._classified: tuple[PreparedFrame, dict[str, np.ndarray]] | None = None
        self._named: tuple[PreparedFrame, np.ndarray] | None = None  # imagenet_cells' last frame
        self._encodings: list[tuple[PreparedFrame, dict[str, np.ndarray]]] = []
        backend_options = {'fixed_shapes': True, **backend_options}
        if self.graphs == 'split':
            options = {**backend_options, 'spin_after_run': False}
            self.encoder = create_backend(backend, model, graph='frame_encoder', **options)
            try:
                self.backend = create_backend(backend, model, graph='pair_head', **options)
                if _has_graph(model, 'cell_classifier'):
                    self.classifier = create_backend(backend, model, graph='cell_classifier',
                                                     **options)
                    self.cell_categories = self._head_categories(model, self.classifier)
                if _has_graph(model, IMAGENET_GRAPH):
                    self.imagenet = create_backend(backend, model, graph=IMAGENET_GRAPH, **options)
                    self._check_normalisation(model, self.imagenet)
            except Exception:
                self.close()
                raise
        else:
            self.backend = (backend if isinstance(backend, Backend)
                            else create_backend(backend, model, **backend_options))
        for loaded in (self.backend, self.encoder, self.imagenet):  # the image's graphs
            if loaded is not None:
                loaded.example_sizes.update(batch=1, height=self.input_size[1],
                                            width=self.input_size[0])
        self._reference: PreparedFrame | None = None

    @property
    def fits_camera(self) -> bool:
        """Whether each camera is fed at its own aspect (`input_size` None) rather than one size."""
        return self.preprocess.multiple_of is not None

    @staticmethod
    def _graph_mode(model: Path, backend, graphs: str) -> str:
        if graphs not in GRAPH_MODES:
            raise ValueError(f'graphs must be one of {GRAPH_MODES}, got {graphs!r}')
        splittable = (model.is_dir() and not isinstance(backend, Backend)
                      and all(_has_graph(model, g) for g in SPLIT_GRAPHS))
        if graphs == 'split' and not splittable:
            raise ModelFileError(model, 'has no frame_encoder and pair_head graphs to run split '
                                        '(a GeoVR-S v2 export directory holds them)')
        if graphs == 'auto':
            return 'split' if splittable else 'single'
        return graphs

    @staticmethod
    def _find_metadata(model: Path, backend) -> ModelMetadata:
        candidates = ([model / 'perception.onnx', model / 'pair_head.onnx'] if model.is_dir()
                      else [model.with_suffix('.onnx')])
        for candidate in candidates:
            if candidate.exists():
                return read_metadata(candidate)
        if isinstance(backend, Backend) and getattr(backend, 'metadata', None):
            return ModelMetadata.from_props(backend.metadata, str(model))
        if not model.exists():
            raise ModelFileError(model, 'does not exist')
        raise MetadataError(str(model), 'geovr.*', 'not found: no perception.onnx next to it to '
                                                   'read the metadata from (pass metadata=)')

    def encode(self, frame: PreparedFrame) -> dict[str, np.ndarray]:
        """Split mode: the frame encoder's outputs for `frame` (batch 1), computed once per
        frame object and kept for the last ENCODING_CACHE_SIZE frames."""
        if self.encoder is None:
            raise RuntimeError('encode() needs the split graphs (this pipeline runs '
                               f'{self.graphs!r})')
        for kept, encoding in self._encodings:
            if kept is frame:
                return encoding
        inputs = {'image': frame.chw[None], 'intrinsics': frame.K.astype(np.float32)[None]}
        wanted = {spec.name for spec in self.encoder.input_specs}  # a graph may not use K
        encoding = self.encoder.infer({k: v for k, v in inputs.items() if k in wanted})
        self._encodings = [(frame, encoding), *self._encodings[:ENCODING_CACHE_SIZE - 1]]
        return encoding

    def pair_inputs(self, ref: PreparedFrame, cur: PreparedFrame) -> dict[str, np.ndarray]:
        """Split mode: the pair head's inputs for (ref, cur), their encodings kept or computed
        (`encode`) and K of both (1, 2, 3, 3); what `run` feeds it (int8 calibration too)."""
        if ref.size != cur.size:
            raise ValueError(f'reference and current frames differ in size: {ref.size} vs '
                             f'{cur.size}')
        wanted = {spec.name for spec in self.backend.input_specs}
        inputs = {'intrinsics': np.stack([ref.K, cur.K]).astype(np.float32)[None]}
        for side, frame in (('ref', ref), ('cur', cur)):
            for name, value in self.encode(frame).items():
                if f'{side}_{name}' in wanted:
                    inputs[f'{side}_{name}'] = value
        return inputs

    @staticmethod
    def _head_categories(model: Path, classifier: Backend) -> tuple[str, ...]:
        """The names of the cell classifier's `category_logits` columns (background last, not
        named) from its metadata (geovr.vocabularies.cell_categories); () without that output.
        Raises MetadataError when the names are missing or do not fit the output."""
        output = next((s for s in classifier.output_specs if s.name == 'category_logits'), None)
        if output is None:
            return ()
        source = model / 'cell_classifier.onnx'
        if source.exists():
            vocabularies = read_graph_metadata(source).get('vocabularies', {})
        else:  # an engine or program: the metadata it carries
            props = getattr(classifier, 'metadata', None) or {}
            vocabularies = json.loads(props.get('geovr.vocabularies', '{}'))
        names = vocabularies.get('cell_categories') if isinstance(vocabularies, dict) else None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise MetadataError(str(source), 'geovr.vocabularies', 'has no cell_categories (the names of '
                                f'category_logits) but the graph outputs category_logits (got {names!r})')
        columns = output.shape[1] if len(output.shape) == 4 else None
        if isinstance(columns, int) and columns != len(names) + 1:
            raise MetadataError(str(source), 'geovr.vocabularies', f'names {len(names)} cell categories, '
                                f'category_logits has {columns} columns (categories + background)')
        return tuple(names)

    def _check_normalisation(self, model: Path, loaded: Backend) -> None:
        """`imagenet_cells` takes the frame encoder's image: its geovr.normalization must be the
        pipeline's (the perception metadata's mean and std). Raises MetadataError naming the
        file when it is missing or differs."""
        source = model / f'{IMAGENET_GRAPH}.onnx'
        props = read_props(source) if source.exists() else (getattr(loaded, 'metadata', None) or {})
        try:
            stated = json.loads(props['geovr.normalization'])
            mean, std = (tuple(float(v) for v in stated[k]) for k in ('mean', 'std'))
        except (KeyError, TypeError, ValueError) as error:
            raise MetadataError(str(source), 'geovr.normalization', 'is missing or not {"mean": [3], "std": [3]} '
                                f'({error!r}): the graph must say which image it takes') from None
        expected = (tuple(self.metadata.mean), tuple(self.metadata.std))
        if len(mean) != 3 or len(std) != 3 or not np.allclose((mean, std), expected, atol=1e-6):
            raise MetadataError(str(source), 'geovr.normalization', f'mean {list(mean)} std {list(std)} differ from '
                                f'the frame encoder\'s mean {list(expected[0])} std {list(expected[1])}')

    def classify(self, frame: PreparedFrame) -> dict[str, np.ndarray] | None:
        """The cell classifier's outputs for `frame` (batch 1: class_logits (1, 1000, H/32, W/32),
        category_logits (1, K + 1, H/s, W/s) at the head's stride s, 32, 16 or 8), computed once
        for the last frame asked; None without a cell classifier. Its inputs (feat_s32, and
        feat_s16 / feat_s8 for a finer head) are the frame encoder's outputs of those names."""
        if self.classifier is None:
            return None
        if self._classified is None or self._classified[0] is not frame:
            encoding = self.encode(frame)
            names = [spec.name for spec in self.classifier.input_specs]
            missing = [n for n in names if n not in encoding]
            if missing:
                raise MetadataError(str(self.model_dir / 'cell_classifier.onnx'), 'inputs',
                                    f'{missing} are not frame encoder outputs ({sorted(encoding)})')
            self._classified = (frame, self.classifier.infer({n: encoding[n] for n in names}))
        return self._classified[1]

    def imagenet_logits(self, frame: PreparedFrame) -> np.ndarray | None:
        """The `imagenet_cells` graph's class_logits of `frame` (1, 1000, H/32, W/32), computed
        once for the last frame asked; None without that graph. It takes the frame encoder's
        image input (the same preprocessed frame)."""
        if self.imagenet is None:
            return None
        if self._named is None or self._named[0] is not frame:
            wanted = {spec.name for spec in self.imagenet.input_specs}
            inputs = {'image': frame.chw[None], 'intrinsics': frame.K.astype(np.float32)[None]}
            missing = sorted(wanted - set(inputs))
            if missing:
                raise MetadataError(str(self.model_dir / f'{IMAGENET_GRAPH}.onnx'), 'inputs',
                                    f'{missing} are not a camera frame (image, intrinsics)')
            logits = self.imagenet.infer({k: v for k, v in inputs.items() if k in wanted})['class_logits']
            self._named = (frame, np.asarray(logits))
        return self._named[1]

    def image_logits(self, images: np.ndarray) -> np.ndarray | None:
        """ImageNet logits (N, 1000) float32 of images (N, 3, h, w) normalised as the frame
        encoder's input (e.g. windows cropped from `PreparedFrame.chw`, `objects/windows.py`),
        each classified alone: the `imagenet_cells` graph's cells averaged (the classifier's
        logits of the whole image). Batches no larger than the backend takes (an engine's
        profile). None without that graph."""
        if self.imagenet is None:
            return None
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.ndim != 4 or images.shape[1] != 3 or not len(images):
            raise ValueError(f'images must be (N >= 1, 3, h, w), got shape {images.shape}')
        names = {spec.name for spec in self.imagenet.input_specs}
        if names != {'image'}:
            raise MetadataError(str(self.model_dir / f'{IMAGENET_GRAPH}.onnx'), 'inputs',
                                f'{sorted(names)}: classifying images alone needs the image input only')
        batch = self.imagenet.max_batch('image') or len(images)
        logits = [np.asarray(self.imagenet.infer({'image': images[i:i + batch]})['class_logits'])
                  for i in range(0, len(images), batch)]
        return np.concatenate(logits).mean(axis=(2, 3), dtype=np.float64).astype(np.float32)

    def cell_logits(self, frame: PreparedFrame) -> np.ndarray | None:
        """ImageNet logits of every stride-32 cell of `frame`, float32 (H/32, W/32, 1000): the
        `imagenet_cells` graph's when the model directory holds it, else the cell classifier's
        `class_logits`; None when the model has neither (single mode, or not exported)."""
        named = self.imagenet_logits(frame)
        if named is not None:
            return named[0].transpose(1, 2, 0)
        outputs = self.classify(frame)
        if outputs is None:
            return None
        return np.asarray(outputs['class_logits'])[0].transpose(1, 2, 0)

    def cell_category_logits(self, frame: PreparedFrame) -> np.ndarray | None:
        """The category head's logits of every cell, float32 (H/s, W/s, K + 1) at the head's
        stride s (32, 16 or 8: the grid is the graph's output shape)
        (columns: `cell_categories`, then background), or None when the model has no head."""
        if not self.cell_categories:
            return None
        return np.asarray(self.classify(frame)['category_logits'])[0].transpose(1, 2, 0)

    def run(self, ref: PreparedFrame, cur: PreparedFrame) -> PerceptionResult:
        """Inference + decoding on two prepared frames (timings for 'infer' and 'decode')."""
        start = time.perf_counter()
        if self.graphs == 'split':
            outputs = self.backend.infer(self.pair_inputs(ref, cur))
        else:
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
        for loaded in (getattr(self, 'backend', None), self.encoder, self.classifier, self.imagenet):
            if loaded is not None:
                loaded.close()
        self._encodings = []
        self._classified = None
        self._named = None

    def __enter__(self) -> PerceptionPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
