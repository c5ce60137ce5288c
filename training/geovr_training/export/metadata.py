"""The perception graph's `geovr.*` metadata (the schema itself, common to every graph, is
written and read by `geovr_ros.inference.metadata`)."""
from __future__ import annotations

from collections.abc import Sequence

from geovr_training.train.config import config_sha256  # the checkpoints' own hash: the two agree


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H). Raises ValueError naming the text."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'size must be WxH like 256x192, got {text!r}') from None
    if width <= 0 or height <= 0:
        raise ValueError(f'size must be positive, got {text!r}')
    return width, height


def size_key(size: tuple[int, int]) -> str:
    return f'{size[0]}x{size[1]}'


def input_size_from_config(config: dict, default: tuple[int, int] = (256, 192)
                           ) -> tuple[int, int]:
    """(W, H) the model was trained at, from the training config; `default` if absent.

    Looks for 'input_size' / 'image_size' / 'resolution' at the top level or under 'data',
    'model' or 'train', as [W, H] or 'WxH'.
    """
    sections = [config] + [config.get(k) for k in ('data', 'model', 'train')]
    for section in sections:
        if not isinstance(section, dict):
            continue
        for key in ('input_size', 'image_size', 'resolution'):
            value = section.get(key)
            if isinstance(value, str):
                return parse_size(value)
            if isinstance(value, (list, tuple)) and len(value) == 2:
                return int(value[0]), int(value[1])
    return default


def build_metadata(*, graph: str, model_version: str, config: dict,
                   input_size: tuple[int, int], mean: Sequence[float], std: Sequence[float],
                   outputs: dict, dynamic_axes: dict, multiple_of: int,
                   declared_sizes: Sequence[tuple[int, int]], profile: dict,
                   flops_per_clip: dict[str, int], patch_size: int | None,
                   vocabularies: dict | None = None, extra: dict | None = None) -> dict[str, str]:
    """{key: JSON text} for onnx `metadata_props` of the perception graph: the common schema
    of `geovr_ros.inference.metadata.graph_props` plus the image keys (docs/deployment.md) and
    `extra` ({`geovr.*` key: JSON-able value}, e.g. `geovr.weights`)."""
    from geovr_ros.inference.metadata import graph_props

    image = {
        'geovr.input_size': list(input_size),
        'geovr.normalization': {'mean': list(mean), 'std': list(std)},
        'geovr.flops_per_clip': {k: int(v) for k, v in flops_per_clip.items()},
        'geovr.vocabularies': vocabularies or {},
    }
    if patch_size is not None:
        image['geovr.patch_size'] = int(patch_size)
    return graph_props(graph=graph, model_version=model_version,
                       config_sha256=config_sha256(config), outputs=outputs,
                       dynamic_axes=dynamic_axes, profile=profile, multiple_of=multiple_of,
                       declared=declared_sizes, extra={**image, **(extra or {})})
