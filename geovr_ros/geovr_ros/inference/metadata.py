"""The contract a model carries inside its ONNX file (`metadata_props`, JSON values).

Keys (written by `geovr-export onnx`, see docs/architecture.md and docs/deployment.md):

| key | value |
| --- | --- |
| geovr.graph | which graph this file is ('perception') |
| geovr.model_version | version string of the model |
| geovr.config_sha256 | sha256 of the canonical JSON of the training config |
| geovr.input_size | [W, H] the model was trained at, pixels |
| geovr.normalization | {"mean": [r, g, b], "std": [r, g, b]} on rgb / 255 |
| geovr.outputs | {output name: {"unit": ..., "dims": [...]}} |
| geovr.shapes | {"dynamic_axes": ..., "multiple_of": px, "profile": {dim: [min, opt, max]}, "declared": [[W, H], ...]} |
| geovr.patch_size | patch size, pixels (optional) |
| geovr.flops_per_clip | {"WxH": FLOPs of one clip at batch 1} (optional) |
| geovr.vocabularies | {"categories": [...], "answers": [...]} (optional) |
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from geovr_ros.inference.backends.base import InferenceError, ModelFileError, check_model_file

PREFIX = 'geovr.'
REQUIRED_KEYS = ('geovr.model_version', 'geovr.config_sha256', 'geovr.input_size',
                 'geovr.normalization', 'geovr.outputs', 'geovr.shapes')


class MetadataError(InferenceError):
    """A model's metadata lacks a required key or holds an invalid value."""

    def __init__(self, path: str, key: str, reason: str):
        self.path = path
        self.key = key
        super().__init__(f'{path}: metadata key {key!r} {reason}')


@dataclass(frozen=True)
class ModelMetadata:
    """Typed view of the `geovr.*` metadata of an exported graph.

    Attributes:
        input_size: (W, H) in pixels the model was trained at.
        mean, std: per-channel RGB normalisation applied to rgb / 255.
        outputs: {output name: {"unit": str, "dims": list}}.
        shapes: the `geovr.shapes` dict (dynamic axes, multiple_of, profile, declared).
        flops_per_clip: {"WxH": FLOPs of one clip (batch 1)}; {} when not recorded.
        vocabularies: {"categories": [...], ...}; {} when the graph has none.
    """

    model_version: str
    config_sha256: str
    input_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    outputs: dict
    shapes: dict
    graph: str = 'perception'
    patch_size: int | None = None
    flops_per_clip: dict[str, float] = field(default_factory=dict)
    vocabularies: dict[str, list[str]] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = '<props>') -> ModelMetadata:
        """Parse `metadata_props` (key -> JSON text). Raises MetadataError naming the key."""
        for key in REQUIRED_KEYS:
            if key not in props:
                raise MetadataError(source, key, 'is missing (was the file exported by '
                                                 'geovr-export onnx?)')
        values = {}
        for key, text in props.items():
            if not key.startswith(PREFIX):
                continue
            try:
                values[key] = json.loads(text)
            except json.JSONDecodeError as error:
                raise MetadataError(source, key, f'is not valid JSON ({error}): {text[:80]!r}')

        def get(key, kind, default=None):
            value = values.get(key, default)
            if value is not None and not isinstance(value, kind):
                raise MetadataError(source, key, f'must be a {kind}, got {value!r}')
            return value

        size = get('geovr.input_size', list)
        if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
            raise MetadataError(source, 'geovr.input_size', f'must be [W, H] > 0, got {size!r}')
        norm = get('geovr.normalization', dict)
        try:
            mean = tuple(float(v) for v in norm['mean'])
            std = tuple(float(v) for v in norm['std'])
        except (KeyError, TypeError, ValueError) as error:
            raise MetadataError(source, 'geovr.normalization',
                                f'must be {{"mean": [3], "std": [3]}}, got {norm!r} ({error!r})')
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise MetadataError(source, 'geovr.normalization',
                                f'needs 3 means and 3 positive stds, got {norm!r}')
        return cls(
            model_version=str(values['geovr.model_version']),
            config_sha256=str(values['geovr.config_sha256']),
            input_size=(size[0], size[1]), mean=mean, std=std,
            outputs=get('geovr.outputs', dict), shapes=get('geovr.shapes', dict),
            graph=str(values.get('geovr.graph', 'perception')),
            patch_size=get('geovr.patch_size', int),
            flops_per_clip={k: float(v) for k, v in
                            get('geovr.flops_per_clip', dict, {}).items()},
            vocabularies=get('geovr.vocabularies', dict, {}),
            raw={k: v for k, v in props.items() if k.startswith(PREFIX)})

    @property
    def multiple_of(self) -> int:
        """Input H and W must be multiples of this many pixels (1 = any)."""
        return int(self.shapes.get('multiple_of', self.patch_size or 1))

    def profile_sizes(self) -> dict[str, tuple[int, int, int]]:
        """(min, opt, max) per symbolic dim ('batch', 'height', 'width') for TensorRT."""
        profile = self.shapes.get('profile', {})
        return {name: tuple(int(v) for v in values) for name, values in profile.items()}

    def flops_at(self, width: int, height: int) -> tuple[float | None, str]:
        """FLOPs of one clip at (width, height) and how it was obtained.

        Exact when the exporter counted that size; else scaled by pixel count from the
        nearest counted size (says so); (None, reason) when nothing was counted.
        """
        key = f'{width}x{height}'
        if key in self.flops_per_clip:
            return self.flops_per_clip[key], f'counted by the exporter at {key}'
        if not self.flops_per_clip:
            return None, 'the model metadata has no geovr.flops_per_clip'
        pixels = width * height

        def area(k):
            w, h = (int(v) for v in k.split('x'))
            return w * h
        nearest = min(self.flops_per_clip, key=lambda k: abs(area(k) - pixels))
        return (self.flops_per_clip[nearest] * pixels / area(nearest),
                f'scaled by pixel count from {nearest} (approximate: attention is not linear)')


def read_props(path: str | os.PathLike) -> dict[str, str]:
    """The `metadata_props` of an ONNX file as {key: value}, without external weights."""
    path = check_model_file(path, ('.onnx',))
    try:
        import onnx
    except ImportError:
        onnx = None
    if onnx is not None:
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as error:  # google.protobuf DecodeError and friends
            raise ModelFileError(path, f'is not a valid ONNX file ({error})') from error
        return {p.key: p.value for p in model.metadata_props}
    import onnxruntime as ort
    try:
        session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    except Exception as error:
        raise ModelFileError(path, f'is not a valid ONNX file ({error})') from error
    return dict(session.get_modelmeta().custom_metadata_map)


def read_metadata(path: str | os.PathLike) -> ModelMetadata:
    """Typed metadata of an exported ONNX file. Raises ModelFileError / MetadataError."""
    return ModelMetadata.from_props(read_props(path), str(path))


def find_model_file(model: str | os.PathLike, suffix: str = '.onnx',
                    graph: str = 'perception') -> Path:
    """`model` itself if it is a file, else `<model>/<graph><suffix>` in a model directory.

    Raises:
        ModelFileError: naming the path that does not exist.
    """
    model = Path(model)
    if model.is_dir():
        candidate = model / f'{graph}{suffix}'
        if not candidate.exists():
            raise ModelFileError(candidate, f'does not exist (model directory {model} holds '
                                            f'{sorted(p.name for p in model.iterdir())})')
        return candidate
    if model.suffix != suffix and model.with_suffix(suffix).exists():
        return model.with_suffix(suffix)
    if not model.exists():
        raise ModelFileError(model, 'does not exist')
    return model
