"""Static checks of an ONNX graph against what the TensorRT ONNX parser supports, and the
optimisation profiles of a graph from its metadata. Needs `onnx`, not TensorRT.

Facts checked: every op type (sub-graphs included) is in `tensorrt_ops.SUPPORTED_OPS`, the
opset is within [MIN_OPSET, tensorrt_ops.MAX_OPSET], each profile covers exactly the graph
inputs with the graph's rank and fixed dims, and every declared shape lies in a profile.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from geovr_ros.inference.backends.base import check_model_file
from geovr_ros.inference.tensorrt_common import (
    Profile, TensorRTCompatibilityError, canonical_profiles)

MIN_OPSET = 17


def onnx_op_types(model) -> set[str]:
    """Every op type in an onnx.ModelProto, sub-graphs (If/Loop/Scan bodies) included.

    Ops outside the default ONNX domain are returned as 'domain::OpType'.
    """
    found: set[str] = set()

    def visit(graph) -> None:
        for node in graph.node:
            found.add(node.op_type if node.domain in ('', 'ai.onnx')
                      else f'{node.domain}::{node.op_type}')
            for attribute in node.attribute:
                if attribute.g is not None and attribute.g.node:
                    visit(attribute.g)
                for sub in attribute.graphs:
                    visit(sub)
    visit(model.graph)
    return found


def _dims(value) -> list[int | str | None]:
    shape = value.type.tensor_type.shape
    return [d.dim_value if d.HasField('dim_value') else (d.dim_param or None) for d in shape.dim]


def onnx_input_dims(model) -> dict[str, list[int | str | None]]:
    """Input name -> dims (int, symbolic name or None) of an onnx.ModelProto."""
    initializers = {init.name for init in model.graph.initializer}
    return {v.name: _dims(v) for v in model.graph.input if v.name not in initializers}


def onnx_output_dims(model) -> dict[str, list[int | str | None]]:
    """Output name -> dims (int, symbolic name or None) of an onnx.ModelProto."""
    return {v.name: _dims(v) for v in model.graph.output}


def tensorrt_problems(model, profiles: Sequence[Profile] = (),
                      shapes: Mapping[str, Sequence[Sequence[int]]] | None = None) -> list[str]:
    """Reasons the TensorRT 10 ONNX parser would refuse `model` ([] when none are known).

    Checks, statically: every op type is in `tensorrt_ops.SUPPORTED_OPS` (ops from other
    domains are refused: they need plugins); the default-domain opset is within
    [MIN_OPSET, tensorrt_ops.MAX_OPSET]; each profile covers exactly the graph inputs, with
    the graph's rank and fixed dims; and each shape in `shapes` ({input: [shape, ...]}, the
    shapes the exporter declared) lies within some profile's [min, max].
    """
    from geovr_ros.inference import tensorrt_ops

    problems = []
    ops = onnx_op_types(model)
    unsupported = sorted(op for op in ops if op not in tensorrt_ops.SUPPORTED_OPS)
    if unsupported:
        problems.append(f'operators not supported by the TensorRT {tensorrt_ops.TENSORRT_VERSION} '
                        f'ONNX parser: {unsupported}')
    opsets = {o.domain or 'ai.onnx': o.version for o in model.opset_import}
    opset = opsets.get('ai.onnx')
    if opset is None or not MIN_OPSET <= opset <= tensorrt_ops.MAX_OPSET:
        problems.append(f'opset {opset} is outside [{MIN_OPSET}, {tensorrt_ops.MAX_OPSET}] '
                        f'(this project needs >= {MIN_OPSET}; TensorRT '
                        f'{tensorrt_ops.TENSORRT_VERSION} parses up to {tensorrt_ops.MAX_OPSET})')
    graph_dims = onnx_input_dims(model)
    try:
        plain_profiles = canonical_profiles(profiles)
    except ValueError as error:
        return problems + [str(error)]
    for index, profile in enumerate(plain_profiles):
        if set(profile) != set(graph_dims):
            problems.append(f'profile {index} names inputs {sorted(profile)}, the graph has '
                            f'{sorted(graph_dims)}')
            continue
        for name, (low, _, high) in profile.items():
            dims = graph_dims[name]
            if len(low) != len(dims):
                problems.append(f'profile {index}: {name!r} has rank {len(low)}, the graph '
                                f'input has rank {len(dims)}')
                continue
            for axis, (dim, a, b) in enumerate(zip(dims, low, high)):
                if isinstance(dim, int) and dim > 0 and not a == b == dim:
                    problems.append(f'profile {index}: {name!r} axis {axis} is fixed at {dim} '
                                    f'in the graph but the profile spans [{a}, {b}]')
    for name, shape_list in (shapes or {}).items():
        for shape in shape_list:
            fits = [p for p in plain_profiles if name in p and len(p[name][0]) == len(shape)
                    and all(a <= s <= b for a, s, b in zip(p[name][0], shape, p[name][2]))]
            if plain_profiles and not fits:
                problems.append(f'declared shape {list(shape)} of {name!r} lies outside every '
                                f'optimisation profile')
    return problems


def check_onnx_for_tensorrt(path: str | os.PathLike, profiles: Sequence[Profile] = (),
                            shapes: Mapping[str, Sequence[Sequence[int]]] | None = None) -> None:
    """Raise TensorRTCompatibilityError if `tensorrt_problems` finds any for the file."""
    import onnx

    path = check_model_file(path, ('.onnx',))
    model = onnx.load(str(path), load_external_data=False)
    problems = tensorrt_problems(model, profiles, shapes)
    if problems:
        raise TensorRTCompatibilityError(str(path), problems)


def profile_from_dims(input_dims: Mapping[str, Sequence[int | str | None]],
                      sizes: Mapping[str, tuple[int, int, int]]) -> dict:
    """One profile from the graph's input dims and (min, opt, max) per symbolic dim name.

    Example: dims {'images': ['batch', 2, 3, 'height', 'width']} with sizes
    {'batch': (1, 1, 1), 'height': (96, 192, 480), 'width': (128, 256, 640)}.

    Raises:
        ValueError: a dynamic dim has no entry in `sizes`.
    """
    profile = {}
    for name, dims in input_dims.items():
        shapes = ([], [], [])
        for axis, dim in enumerate(dims):
            if isinstance(dim, int) and dim > 0:
                for shape in shapes:
                    shape.append(dim)
                continue
            if dim not in sizes:
                raise ValueError(f'input {name!r} axis {axis} is dynamic ({dim!r}) and has no '
                                 f'(min, opt, max) in {sorted(sizes)}')
            for shape, value in zip(shapes, sizes[dim]):
                shape.append(int(value))
        profile[name] = tuple(tuple(s) for s in shapes)
    return profile


def graph_profiles(onnx_path: str | os.PathLike,
                   sizes: Mapping[str, tuple[int, int, int]] | None = None,
                   ) -> tuple[list[dict], dict[str, tuple[int, int, int]]]:
    """The optimisation profile of any exported graph: its metadata profile
    (`geovr.shapes.profile`, `read_graph_metadata`) updated by `sizes`.

    Returns:
        ([profile], the sizes used {dim name: (min, opt, max)}).
    Raises:
        MetadataError: the file carries no usable geovr.* metadata and `sizes` is None.
        ValueError: a dynamic input dim has no size.
    """
    import onnx

    from geovr_ros.inference.metadata import MetadataError, read_graph_metadata

    try:
        merged = dict(read_graph_metadata(onnx_path).profile_sizes())
    except MetadataError:
        if sizes is None:
            raise
        merged = {}
    merged.update(sizes or {})
    dims = onnx_input_dims(onnx.load(str(onnx_path), load_external_data=False))
    return [profile_from_dims(dims, merged)], merged


def declared_shapes(onnx_path: str | os.PathLike) -> dict[str, list[list[int]]]:
    """{input: [shape, ...]} the exporter declared (perception `geovr.shapes.declared`
    [[W, H], ...] as images shapes); {} for graphs that declare none."""
    from geovr_ros.inference.metadata import MetadataError, read_graph_metadata

    try:
        meta = read_graph_metadata(onnx_path)
    except MetadataError:
        return {}
    declared = meta.shapes.get('declared') or []
    if not declared or 'images' not in meta.shapes.get('dynamic_axes', {}):
        return {}
    return {'images': [[1, 2, 3, int(h), int(w)] for w, h in declared]}
