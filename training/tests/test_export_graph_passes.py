"""fold_pads_into_convs: zero pads moved into the convolutions they feed, the arithmetic unchanged
(ONNX Runtime on the graph before and after), and pads it must not touch left alone."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from geovr_training.export.graph_passes import fold_pads_into_convs, prune_unused
from geovr_training.model.efficientnet import SameConv


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=['CPUExecutionProvider'])
    return session.run(None, {session.get_inputs()[0].name: x})


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


class _TwoPads(torch.nn.Module):
    """SAME convolutions as EfficientNet-Lite has them: two of stride 2 (asymmetric pads, an
    explicit Pad each), a depthwise one of stride 1 (its pads the convolution's own), then a
    reflect pad that must stay."""

    def __init__(self):
        super().__init__()
        self.down = SameConv(3, 8, 3, stride=2)
        self.depthwise = SameConv(8, 8, 5, stride=1, groups=8)
        self.down_again = SameConv(8, 8, 5, stride=2, groups=8)

    def forward(self, x):
        return F.pad(self.down_again(self.depthwise(self.down(x))), (1, 1, 1, 1), mode='reflect')


def test_exported_same_convolutions_lose_their_pad_nodes_and_keep_their_outputs(tmp_path):
    torch.manual_seed(0)
    module = _TwoPads().eval()
    x = torch.randn(1, 3, 64, 96)
    path = tmp_path / 'two.onnx'
    torch.onnx.export(module, (x,), str(path), input_names=['x'], output_names=['y'], opset_version=17,
                      dynamic_axes={'x': {2: 'h', 3: 'w'}}, dynamo=False)
    model = onnx.load(str(path))
    assert _ops(model).count('Pad') == 3
    before = _run(model, x.numpy())[0]
    assert fold_pads_into_convs(model) == 2
    onnx.checker.check_model(model, full_check=True)
    assert _ops(model).count('Pad') == 1                     # the reflect pad stays
    pads = {n.name: helper.get_attribute_value(a) for n in model.graph.node if n.op_type == 'Conv'
            for a in n.attribute if a.name == 'pads'}
    assert sorted(pads.values()) == [[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 2, 2]]   # top, left, bottom, right
    np.testing.assert_allclose(_run(model, x.numpy())[0], before, atol=1e-5)
    np.testing.assert_allclose(before, module(x).detach().numpy(), atol=1e-5)
    other = torch.randn(1, 3, 32, 160).numpy()                # the dynamic sizes still run
    assert _run(model, other)[0].shape == (1, 8, 10, 42)


def _pad_conv(mode: str = 'constant', value: float | None = None, pads=(0, 0, 0, 1, 0, 0, 1, 1),
              second_user: bool = False, conv_pads=(1, 0, 1, 0)) -> onnx.ModelProto:
    """x -> Pad(pads as an initializer) -> Conv 3x3 (own pads `conv_pads`) [-> also Relu of the pad]."""
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32), 'w')
    inits = [weight, numpy_helper.from_array(np.array(pads, np.int64), 'pads')]
    pad_inputs = ['x', 'pads']
    if value is not None:
        inits.append(numpy_helper.from_array(np.array(value, np.float32), 'value'))
        pad_inputs.append('value')
    nodes = [helper.make_node('Pad', pad_inputs, ['p'], mode=mode),
             helper.make_node('Conv', ['p', 'w'], ['y'], pads=list(conv_pads))]
    outputs = [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)]
    if second_user:
        nodes.append(helper.make_node('Relu', ['p'], ['r']))
        outputs.append(helper.make_tensor_value_info('r', TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, 'g', [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 2, 9, 11])],
                              outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], ir_version=8)


def test_a_pad_adds_to_the_convolutions_own_pads():
    model = _pad_conv()
    x = np.random.default_rng(1).standard_normal((1, 2, 9, 11)).astype(np.float32)
    before = _run(model, x)[0]
    assert fold_pads_into_convs(model) == 1
    assert _ops(model) == ['Conv']
    assert [helper.get_attribute_value(a) for a in model.graph.node[0].attribute if a.name == 'pads'] == [[1, 1, 2, 1]]
    assert [t.name for t in model.graph.initializer] == ['w']   # the pads initializer went with it
    np.testing.assert_allclose(_run(model, x)[0], before, atol=1e-5)


@pytest.mark.parametrize('model, why', [
    (_pad_conv(mode='edge'), 'edge mode'),
    (_pad_conv(value=1.0), 'a non-zero value'),
    (_pad_conv(pads=(0, 0, 0, 1, 1, 0, 1, 1)), 'the batch padded'),
    (_pad_conv(pads=(0, 0, -1, 0, 0, 0, 0, 0)), 'a crop'),
    (_pad_conv(second_user=True), 'the pad read elsewhere too'),
])
def test_pads_that_are_not_a_convolutions_zero_border_stay(model, why):
    x = np.random.default_rng(2).standard_normal((1, 2, 9, 11)).astype(np.float32)
    before = _run(model, x)
    assert fold_pads_into_convs(model) == 0, why
    assert 'Pad' in _ops(model)
    for a, b in zip(_run(model, x), before):
        np.testing.assert_array_equal(a, b)


def test_a_zero_value_pad_folds_like_an_implicit_one():
    model = _pad_conv(value=0.0)
    x = np.random.default_rng(3).standard_normal((1, 2, 9, 11)).astype(np.float32)
    before = _run(model, x)[0]
    assert fold_pads_into_convs(model) == 1
    np.testing.assert_allclose(_run(model, x)[0], before, atol=1e-5)


def test_prune_unused_drops_dead_constants_and_initializers_and_keeps_what_is_read():
    model = _pad_conv()
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), 'orphan'))
    graph.node.append(helper.make_node('Constant', [], ['dead'], value=numpy_helper.from_array(np.ones(2, np.float32))))
    graph.node.append(helper.make_node('Cast', ['dead'], ['dead_too'], to=TensorProto.INT64))
    assert prune_unused(model) == 1
    assert sorted(t.name for t in graph.initializer) == ['pads', 'w']
    assert _ops(model) == ['Pad', 'Conv']
