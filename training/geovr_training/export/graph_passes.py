"""Passes over exported ONNX graphs: zero `Pad` nodes folded into the `Conv` they feed
(`fold_pads_into_convs`), and the constants and initializers that nothing reads any more
dropped (`prune_unused`: the pads' constant chains once the pads are gone).

EfficientNet-Lite's TensorFlow "SAME" padding is asymmetric where the stride is 2, which a
PyTorch `Conv2d` cannot express, so the network pads explicitly (`efficientnet.SameConv`) and
the TorchScript exporter writes a `Pad` before each such convolution, its pads computed by a
chain of constant nodes. ONNX Runtime runs those pads as nodes of their own (measured: 3.8 of
16.1 ms of the frame encoder at 256x192, and the layout reorders around them), while ONNX's
`Conv` takes begin and end pads per spatial axis. `fold_pads_into_convs` moves each foldable
pad into its convolution's `pads` attribute; the arithmetic is unchanged.

A pad is folded when its mode is constant with value 0 (or none), its pads are a constant
(an initializer, or nodes whose inputs are all constants: evaluated here with ONNX's reference
evaluator), it pads only the spatial axes and by non-negative amounts, and its output feeds
nothing but one `Conv` without `auto_pad`.
"""
from __future__ import annotations

import numpy as np

# The ops a pads input may be computed with for it to count as a constant.
CONSTANT_OPS = frozenset({'Constant', 'ConstantOfShape', 'Concat', 'Reshape', 'Slice', 'Transpose',
                          'Cast', 'Unsqueeze', 'Squeeze', 'Gather'})


def _constant_value(name: str, producers: dict, order: dict, initializers: dict, opset: int) -> np.ndarray | None:
    """The value of tensor `name` when it is an initializer or computed from constants alone
    (ops of CONSTANT_OPS), else None. producers: {tensor: node}; order: {id(node): its place in
    the graph}, so that the evaluated nodes keep their topological order."""
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    if name in initializers:
        return numpy_helper.to_array(initializers[name])
    nodes, stack, seen = [], [name], set()
    while stack:
        tensor = stack.pop()
        if tensor in seen or tensor in initializers or tensor == '':
            continue
        seen.add(tensor)
        node = producers.get(tensor)
        if node is None or node.op_type not in CONSTANT_OPS:
            return None   # a graph input, or computed from the data
        if node not in nodes:
            nodes.append(node)
        stack.extend(node.input)
    nodes.sort(key=lambda n: order[id(n)])
    used = {i for n in nodes for i in n.input}
    graph = helper.make_graph(nodes, 'pads', [], [helper.make_tensor_value_info(name, onnx.TensorProto.UNDEFINED, None)],
                              [initializers[i] for i in sorted(used & initializers.keys())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])
    return np.asarray(ReferenceEvaluator(model).run(None, {})[0])


def fold_pads_into_convs(model) -> int:
    """Fold every foldable zero `Pad` of `model` (an `onnx.ModelProto`, changed in place) into
    the `Conv` it feeds (see the module docstring). Returns how many were folded."""
    from onnx import helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), 17)
    initializers = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    order = {id(node): i for i, node in enumerate(graph.node)}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    folded = []
    for pad in [n for n in graph.node if n.op_type == 'Pad']:
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        mode = attrs.get('mode', b'constant')
        users = consumers.get(pad.output[0], [])
        if mode not in (b'constant', 'constant') or len(users) != 1 or pad.output[0] in graph_outputs:
            continue
        conv = users[0]
        conv_attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        if conv.op_type != 'Conv' or conv.input[0] != pad.output[0] \
                or conv_attrs.get('auto_pad', b'NOTSET') not in (b'NOTSET', 'NOTSET'):
            continue
        if len(pad.input) > 3 and pad.input[3]:
            continue   # padding only some axes
        if len(pad.input) > 2 and pad.input[2]:
            value = _constant_value(pad.input[2], producers, order, initializers, opset)
            if value is None or np.any(value != 0):
                continue
        pads = _constant_value(pad.input[1], producers, order, initializers, opset)
        if pads is None or pads.ndim != 1 or len(pads) % 2:
            continue
        rank = len(pads) // 2
        begins, ends = pads[:rank].astype(np.int64), pads[rank:].astype(np.int64)
        if rank < 3 or np.any(pads < 0) or np.any(begins[:2]) or np.any(ends[:2]):
            continue
        spatial = rank - 2
        old = np.asarray(conv_attrs.get('pads', [0] * 2 * spatial), np.int64)
        new = old + np.concatenate([begins[2:], ends[2:]])
        for attribute in list(conv.attribute):
            if attribute.name == 'pads':
                conv.attribute.remove(attribute)
        conv.attribute.append(helper.make_attribute('pads', [int(v) for v in new]))
        conv.input[0] = pad.input[0]
        folded.append(pad)
    for pad in folded:
        graph.node.remove(pad)
    prune_unused(model)
    return len(folded)


def prune_unused(model) -> int:
    """Drop from `model` (an `onnx.ModelProto`, changed in place) the nodes of CONSTANT_OPS and
    the initializers whose outputs nothing reads. Returns how many initializers went."""
    graph = model.graph
    outputs = {o.name for o in graph.output}
    while True:
        read = _names_read(graph) | outputs
        dead = [n for n in graph.node if n.op_type in CONSTANT_OPS and not any(o in read for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = _names_read(graph)
    unused = [t for t in graph.initializer if t.name not in read and t.name not in outputs]
    for tensor in unused:
        graph.initializer.remove(tensor)
    return len(unused)


def _names_read(graph) -> set[str]:
    """Every tensor name a node of `graph` or of its subgraphs (If, Loop, Scan bodies) reads."""
    from onnx import AttributeProto
    names = set()
    for node in graph.node:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.type == AttributeProto.GRAPH:
                names |= _names_read(attribute.g)
            for subgraph in attribute.graphs:
                names |= _names_read(subgraph)
    return names
