"""One metadata schema for every exported graph (`graph_props` writes it,
`read_graph_metadata` reads it), the question graphs' pre-schema files still read, and the
TensorRT profile of any graph taken from it (issue #19, defect 1: the question graphs have
no geovr.input_size, which the TensorRT path used to require)."""
from __future__ import annotations

import json

import pytest

from geovr_ros.inference.metadata import (
    LEGACY_PROFILES, GraphMetadata, MetadataError, graph_props, read_graph_metadata)

onnx = pytest.importorskip('onnx', reason='onnx is not installed')
from onnx import TensorProto, helper  # noqa: E402

ENCODER_AXES = {'input_ids': {0: 'batch', 1: 'tokens'}, 'attention_mask': {0: 'batch', 1: 'tokens'},
                'embedding': {0: 'batch'}}


def _encoder_props(**changes):
    args = dict(graph='question_encoder', model_version='geovr-s-qa-2', config_sha256='cd' * 32,
                outputs={'embedding': {'unit': '1', 'dims': ['batch', 4]}}, dynamic_axes=ENCODER_AXES,
                profile={'batch': (1, 4, 8), 'tokens': (1, 24, 128)}, extra={'geovr.max_tokens': 128})
    args.update(changes)
    return graph_props(**args)


def _encoder_onnx(path, props):
    """A tiny graph with the encoder's inputs: int64 (batch, tokens) ids and mask."""
    ids = helper.make_tensor_value_info('input_ids', TensorProto.INT64, ['batch', 'tokens'])
    mask = helper.make_tensor_value_info('attention_mask', TensorProto.INT64, ['batch', 'tokens'])
    out = helper.make_tensor_value_info('embedding', TensorProto.INT64, ['batch', 'tokens'])
    graph = helper.make_graph([helper.make_node('Mul', ['input_ids', 'attention_mask'], ['embedding'])],
                              'enc', [ids, mask], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    for key, value in props.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(model, str(path))
    return path


def test_written_schema_reads_back_for_a_question_graph():
    meta = GraphMetadata.from_props(_encoder_props(), 'enc.onnx')
    assert (meta.graph, meta.schema, meta.model_version) == ('question_encoder', 2, 'geovr-s-qa-2')
    assert meta.profile_sizes() == {'batch': (1, 4, 8), 'tokens': (1, 24, 128)}
    assert meta.opt_sizes() == {'batch': 4, 'tokens': 24}
    assert meta.get('max_tokens') == 128 and meta.get('geovr.max_tokens') == 128
    assert meta.shapes['dynamic_axes']['input_ids'] == {'0': 'batch', '1': 'tokens'}


def test_writer_refuses_a_dynamic_dim_without_profile_and_bad_ranges():
    with pytest.raises(ValueError, match=r"\['tokens'\]"):
        _encoder_props(profile={'batch': (1, 1, 2)})
    with pytest.raises(ValueError, match="'tokens'.*1 <= min <= opt <= max"):
        _encoder_props(profile={'batch': (1, 1, 2), 'tokens': (8, 4, 128)})
    with pytest.raises(ValueError, match='geovr.graph'):
        _encoder_props(extra={'geovr.graph': 'other'})


def test_pre_schema_question_graphs_still_read():
    """Props exactly as training/geovr_training/qa/export.py wrote them before schema 2."""
    graph = {'geovr.model_version': '"geovr-s-qa-2"', 'geovr.config_sha256': json.dumps('ef' * 32),
             'geovr.graph': '"question"', 'geovr.outputs': json.dumps({'point': {'unit': 'm'}}),
             'geovr.shapes': json.dumps({'dynamic_axes': ['batch', 'tokens', 'options', 'memory']}),
             'geovr.memory': json.dumps({'token_dim': 64})}
    meta = GraphMetadata.from_props(graph, 'question_graph.onnx')
    assert meta.schema == 1
    assert meta.profile_sizes() == LEGACY_PROFILES['question']
    assert meta.get('memory') == {'token_dim': 64}
    encoder = {k: v for k, v in graph.items() if k != 'geovr.shapes'}
    encoder['geovr.graph'] = '"question_encoder"'
    assert GraphMetadata.from_props(encoder).profile_sizes() == LEGACY_PROFILES['question_encoder']


def test_a_schema_2_graph_without_shapes_or_profile_is_named():
    props = _encoder_props()
    del props['geovr.shapes']
    with pytest.raises(MetadataError, match='geovr.shapes'):
        GraphMetadata.from_props(props)
    props = _encoder_props()
    props['geovr.shapes'] = json.dumps({'dynamic_axes': {}})
    with pytest.raises(MetadataError, match='profile'):
        GraphMetadata.from_props(props)
    props = _encoder_props()
    del props['geovr.config_sha256']
    with pytest.raises(MetadataError, match='geovr.config_sha256'):
        GraphMetadata.from_props(props)


def test_perception_metadata_reads_through_the_same_schema():
    from test_inference_contract_model import contract_metadata
    meta = GraphMetadata.from_props(contract_metadata())
    assert meta.graph == 'perception'
    assert meta.profile_sizes() == {'batch': (1, 1, 2), 'height': (32, 48, 96), 'width': (32, 64, 128)}


@pytest.mark.parametrize('legacy', [False, True])
def test_tensorrt_profile_of_a_question_graph_comes_from_its_metadata(tmp_path, legacy):
    from geovr_ros.inference.tensorrt_checks import graph_profiles, tensorrt_problems
    props = _encoder_props()
    if legacy:
        props = {k: v for k, v in props.items() if k not in ('geovr.shapes', 'geovr.schema')}
    path = _encoder_onnx(tmp_path / 'question_encoder.onnx', props)
    assert read_graph_metadata(path).graph == 'question_encoder'
    profiles, sizes = graph_profiles(path)
    expected = LEGACY_PROFILES['question_encoder'] if legacy else {'batch': (1, 4, 8), 'tokens': (1, 24, 128)}
    assert sizes == expected
    b, t = expected['batch'], expected['tokens']
    assert profiles[0]['input_ids'] == ((b[0], t[0]), (b[1], t[1]), (b[2], t[2]))
    assert tensorrt_problems(onnx.load(str(path)), profiles) == []
    profiles, sizes = graph_profiles(path, {'tokens': (1, 8, 64)})
    assert profiles[0]['attention_mask'][2] == (b[2], 64)
