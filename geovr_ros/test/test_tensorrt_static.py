"""Static TensorRT 10 checks of exported ONNX graphs: operators in the ONNX parser's
supported list, opset, shapes inside the optimisation profiles. Runs without TensorRT."""
from __future__ import annotations

import importlib.util

import pytest

from geovr_ros.inference import tensorrt_ops
from geovr_ros.inference.tensorrt_checks import (
    check_onnx_for_tensorrt, onnx_input_dims, onnx_op_types, profile_from_dims, tensorrt_problems)
from geovr_ros.inference.tensorrt_common import TensorRTCompatibilityError

onnx = pytest.importorskip('onnx', reason='onnx is not installed')
from onnx import TensorProto, helper  # noqa: E402

from test_inference_contract_model import make_contract_model  # noqa: E402

SIZES = {'batch': (1, 1, 2), 'height': (32, 48, 96), 'width': (32, 64, 128)}


@pytest.fixture(scope='module')
def contract_onnx(tmp_path_factory):
    return make_contract_model(tmp_path_factory.mktemp('tiny')) / 'perception.onnx'


def _graph_with(op_type: str, opset: int = 17, **attrs):
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, None)
    node = helper.make_node(op_type, ['x'], ['y'], **attrs)
    graph = helper.make_graph([node], 'g', [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)])


def test_op_list_is_the_transcribed_fact_table():
    assert tensorrt_ops.TENSORRT_VERSION.startswith('10.')
    assert 'onnx-tensorrt' in tensorrt_ops.SOURCE
    assert not tensorrt_ops.SUPPORTED_OPS & tensorrt_ops.UNSUPPORTED_OPS
    for op in ('Conv', 'MatMul', 'Softmax', 'LayerNormalization', 'Resize', 'Gelu'):
        assert op in tensorrt_ops.SUPPORTED_OPS
    for op in ('Unique', 'Det', 'SequenceAt', 'StringNormalizer'):
        assert op in tensorrt_ops.UNSUPPORTED_OPS


def test_exported_contract_graph_passes(contract_onnx):
    model = onnx.load(str(contract_onnx))
    profile = profile_from_dims(onnx_input_dims(model), SIZES)
    assert tensorrt_problems(model, [profile], {'images': [[1, 2, 3, 48, 64],
                                                           [1, 2, 3, 96, 128]]}) == []
    check_onnx_for_tensorrt(contract_onnx, [profile])  # does not raise


def test_shipped_model_passes(ros_env):
    """The shipped checkpoint, exported as a user would, parses in TensorRT 10 and its
    declared shapes fit the engine profile."""
    from ros_helpers import shipped_model

    from geovr_ros.inference import read_metadata
    for path in [shipped_model(ros_env) / 'perception.onnx']:
        model = onnx.load(str(path), load_external_data=False)
        meta = read_metadata(path)
        profile = profile_from_dims(onnx_input_dims(model), meta.profile_sizes())
        declared = {'images': [[1, 2, 3, h, w] for w, h in meta.shapes['declared']]}
        assert tensorrt_problems(model, [profile], declared) == [], path


@pytest.mark.parametrize('op_type', ['Unique', 'Det'])
def test_graph_with_an_unsupported_op_fails(tmp_path, op_type):
    model = _graph_with(op_type)
    problems = tensorrt_problems(model)
    assert any(op_type in p and 'not supported' in p for p in problems)
    path = tmp_path / 'bad.onnx'
    onnx.save(model, str(path))
    with pytest.raises(TensorRTCompatibilityError, match=op_type):
        check_onnx_for_tensorrt(path)


def test_ops_inside_subgraphs_and_custom_domains_are_checked():
    then = helper.make_graph([helper.make_node('Unique', ['x'], ['u'])], 'then', [],
                             [helper.make_tensor_value_info('u', TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node('Identity', ['x'], ['v'])], 'else', [],
                              [helper.make_tensor_value_info('v', TensorProto.FLOAT, None)])
    node = helper.make_node('If', ['c'], ['y'], then_branch=then, else_branch=other)
    custom = helper.make_node('MyOp', ['x'], ['z'], domain='com.example')
    graph = helper.make_graph(
        [node, custom], 'g',
        [helper.make_tensor_value_info('c', TensorProto.BOOL, []),
         helper.make_tensor_value_info('x', TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    assert onnx_op_types(model) == {'If', 'Unique', 'Identity', 'com.example::MyOp'}
    problem = tensorrt_problems(model)[0]
    assert 'Unique' in problem and 'com.example::MyOp' in problem


@pytest.mark.parametrize('opset', [16, 21])
def test_opset_outside_the_supported_range_fails(opset):
    problems = tensorrt_problems(_graph_with('Relu', opset=opset))
    assert any(f'opset {opset}' in p for p in problems)


def test_shapes_outside_the_profile_fail(contract_onnx):
    model = onnx.load(str(contract_onnx))
    profile = profile_from_dims(onnx_input_dims(model), SIZES)
    problems = tensorrt_problems(model, [profile], {'images': [[1, 2, 3, 480, 640]]})
    assert problems == ["declared shape [1, 2, 3, 480, 640] of 'images' lies outside every "
                        'optimisation profile']


def test_profile_that_contradicts_the_graph_fails(contract_onnx):
    model = onnx.load(str(contract_onnx))
    wrong_channels = {'images': ((1, 2, 4, 32, 32), (1, 2, 4, 48, 64), (1, 2, 4, 96, 128)),
                      'intrinsics': ((1, 2, 3, 3),) * 3}
    assert any('axis 2 is fixed at 3' in p for p in tensorrt_problems(model, [wrong_channels]))
    missing_input = {'images': wrong_channels['images']}
    assert any('names inputs' in p for p in tensorrt_problems(model, [missing_input]))
    with pytest.raises(ValueError, match="'height'"):
        profile_from_dims(onnx_input_dims(model), {'batch': (1, 1, 1), 'width': (32, 64, 128)})


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is None,
                    reason='TensorRT is not installed on this machine')
def test_tensorrt_parser_accepts_the_contract_graph(contract_onnx):
    import tensorrt as trt
    logger = trt.Logger(trt.Logger.WARNING)
    network = trt.Builder(logger).create_network(0)
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(str(contract_onnx)), [str(parser.get_error(i))
                                                         for i in range(parser.num_errors)]
