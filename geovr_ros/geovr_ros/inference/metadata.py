"""The contract every exported graph carries inside its ONNX file (`metadata_props`, JSON
values), written by `graph_props` and read by `read_graph_metadata` / `read_metadata` here:
one schema for the perception graph, the question encoder, the question graph and any later
graph (frame, pair).

Common keys (every graph, schema 2):

| key | value |
| --- | --- |
| geovr.schema | 2 |
| geovr.graph | which graph this file is ('perception', 'question_encoder', 'question', ...) |
| geovr.model_version | version string of the model |
| geovr.config_sha256 | sha256 of the canonical JSON of the training config |
| geovr.outputs | {output name: {"unit": ..., "dims": [...]}} |
| geovr.shapes | {"dynamic_axes": {tensor: {axis: dim name}}, "profile": {dim name: [min, opt, max]}, ...} |

`geovr.shapes.profile` names every symbolic dimension of the graph inputs: the TensorRT
optimisation profile and the sizes a backend warms up with (opt). Graphs add their own keys
(the question graph its vocabulary and memory layout, the encoder its tokenizer).

Perception keys (written by `geovr-export onnx`, see docs/architecture.md and docs/deployment.md):

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
SCHEMA_VERSION = 2
GRAPH_REQUIRED_KEYS = ('geovr.model_version', 'geovr.config_sha256', 'geovr.outputs')

# Profiles of graphs exported before schema 2 (the question graphs wrote `geovr.shapes` as a
# list of dim names, the encoder none): the sizes `language/answerer.py` feeds them. tokens:
# MAX_QUESTION_TOKENS 128; options: MAX_OPTIONS 6 (encoder batch = question + options);
# memory: up to 64 keyframes of at most 64 pooled tokens each.
LEGACY_PROFILES = {
    'question_encoder': {'batch': (1, 4, 8), 'tokens': (1, 24, 128)},
    'question': {'batch': (1, 1, 2), 'tokens': (1, 24, 128), 'options': (1, 4, 8),
                 'memory': (1, 256, 4096)},
}


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


def _check_profile(profile: dict, source: str) -> dict[str, tuple[int, int, int]]:
    sizes = {}
    for name, values in profile.items():
        try:
            low, opt, high = (int(v) for v in values)
        except (TypeError, ValueError):
            raise MetadataError(source, 'geovr.shapes',
                                f'profile of {name!r} must be [min, opt, max], got {values!r}')
        if not 1 <= low <= opt <= high:
            raise MetadataError(source, 'geovr.shapes', f'profile of {name!r} must satisfy '
                                f'1 <= min <= opt <= max, got {[low, opt, high]}')
        sizes[str(name)] = (low, opt, high)
    return sizes


def graph_props(*, graph: str, model_version: str, config_sha256: str, outputs: dict,
                dynamic_axes: dict, profile: dict, multiple_of: int | None = None,
                declared: list | None = None, extra: dict | None = None) -> dict[str, str]:
    """{key: JSON text} for onnx `metadata_props` of any exported graph (schema 2).

    Args:
        graph: graph name, the file stem ('perception', 'question_encoder', 'question').
        dynamic_axes: {tensor name: {axis: dim name}} as given to torch.onnx.export.
        profile: {dim name: (min, opt, max)} for every dim name in `dynamic_axes`.
        multiple_of, declared: perception's spatial step (px) and declared [[W, H], ...].
        extra: graph-specific keys ('geovr.input_size', 'geovr.qa_vocabulary', ...) -> value.
    Raises:
        ValueError: a dynamic dim has no profile or a profile is not 1 <= min <= opt <= max.
    """
    names = {str(d) for axes in dynamic_axes.values() for d in axes.values()}
    missing = sorted(names - set(profile))
    if missing:
        raise ValueError(f'graph {graph!r}: dynamic dims {missing} have no (min, opt, max) '
                         f'in the profile {sorted(profile)}')
    try:
        sizes = _check_profile(profile, graph)
    except MetadataError as error:
        raise ValueError(str(error)) from None
    shapes = {'dynamic_axes': {tensor: {str(k): str(v) for k, v in axes.items()}
                               for tensor, axes in dynamic_axes.items()},
              'profile': {k: list(v) for k, v in sizes.items()}}
    if multiple_of is not None:
        shapes['multiple_of'] = int(multiple_of)
    if declared is not None:
        shapes['declared'] = [list(s) for s in declared]
    values = {'geovr.schema': SCHEMA_VERSION, 'geovr.graph': graph,
              'geovr.model_version': model_version, 'geovr.config_sha256': config_sha256,
              'geovr.outputs': outputs, 'geovr.shapes': shapes}
    for key, value in (extra or {}).items():
        if not key.startswith(PREFIX) or key in values:
            raise ValueError(f'extra metadata key {key!r} must start with {PREFIX!r} and not '
                             f'replace a common key')
        values[key] = value
    return {key: json.dumps(value, sort_keys=True) for key, value in values.items()}


@dataclass(frozen=True)
class GraphMetadata:
    """The common `geovr.*` metadata of any exported graph (see the module docstring).

    Attributes:
        graph: graph name; schema: 2, or 1 for files written before `graph_props`.
        shapes: `geovr.shapes` as a dict (a legacy list of dim names becomes
            {"dynamic_axes": [...]}), its profile filled from LEGACY_PROFILES for legacy files.
        values: every `geovr.*` key parsed from JSON (graph-specific keys included).
    """

    graph: str
    model_version: str
    config_sha256: str
    outputs: dict
    shapes: dict
    schema: int = SCHEMA_VERSION
    values: dict = field(default_factory=dict, repr=False)
    raw: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_props(cls, props: dict[str, str], source: str = '<props>') -> GraphMetadata:
        """Parse `metadata_props`. Raises MetadataError naming the missing or invalid key."""
        values = {}
        for key, text in props.items():
            if key.startswith(PREFIX):
                try:
                    values[key] = json.loads(text)
                except json.JSONDecodeError as error:
                    raise MetadataError(source, key, f'is not valid JSON ({error}): '
                                                     f'{text[:80]!r}')
        graph = str(values.get('geovr.graph', 'perception'))
        schema = int(values.get('geovr.schema', 1))
        legacy = schema < SCHEMA_VERSION and graph in LEGACY_PROFILES
        required = GRAPH_REQUIRED_KEYS + (() if legacy else ('geovr.shapes',))
        for key in required:
            if key not in values:
                raise MetadataError(source, key, 'is missing (was the file exported by '
                                                 'geovr-export?)')
        shapes = values.get('geovr.shapes', {})
        if isinstance(shapes, list):
            shapes = {'dynamic_axes': shapes}
        if not isinstance(shapes, dict) or not isinstance(values['geovr.outputs'], dict):
            bad = 'geovr.outputs' if isinstance(shapes, dict) else 'geovr.shapes'
            raise MetadataError(source, bad, f'must be a JSON object, got {values[bad]!r}')
        profile = shapes.get('profile')
        if profile is None and legacy:
            shapes = {**shapes, 'profile': {k: list(v) for k, v in LEGACY_PROFILES[graph].items()}}
        elif not isinstance(profile, dict):
            raise MetadataError(source, 'geovr.shapes', 'has no "profile" {dim: [min, opt, '
                                                        f'max]}} (got {profile!r})')
        _check_profile(shapes['profile'], source)
        return cls(graph=graph, model_version=str(values['geovr.model_version']),
                   config_sha256=str(values['geovr.config_sha256']),
                   outputs=values['geovr.outputs'], shapes=shapes, schema=schema,
                   values=values, raw={k: v for k, v in props.items() if k.startswith(PREFIX)})

    def profile_sizes(self) -> dict[str, tuple[int, int, int]]:
        """(min, opt, max) per symbolic dim name (e.g. 'batch', 'tokens', 'height')."""
        return _check_profile(self.shapes['profile'], self.graph)

    def opt_sizes(self) -> dict[str, int]:
        """The opt size of each symbolic dim: what a backend warms up with."""
        return {name: sizes[1] for name, sizes in self.profile_sizes().items()}

    def get(self, key: str, default=None):
        """A parsed `geovr.*` value (`key` with or without the prefix), else `default`."""
        return self.values.get(key if key.startswith(PREFIX) else PREFIX + key, default)


def read_graph_metadata(path: str | os.PathLike) -> GraphMetadata:
    """Common metadata of any exported ONNX graph. Raises ModelFileError / MetadataError."""
    return GraphMetadata.from_props(read_props(path), str(path))


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
