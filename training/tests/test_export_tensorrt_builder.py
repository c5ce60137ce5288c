"""The engine builder against a fake TensorRT 10.x and 11.x (geovr_ros/test/fake_tensorrt.py):
the precision each version builds, no removed API touched on 11, the timing cache's result
checked, the engine cache and the metadata beside the engine, the runtime finding what the
builder cached, and `geovr-export engine` running the static checks once. No TensorRT."""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'geovr_ros' / 'test'))
from fake_tensorrt import FakeMemory, install, make_fake_tensorrt  # noqa: E402

from geovr_ros.inference.tensorrt_common import PrecisionUnsupportedError  # noqa: E402
from geovr_training.export import tensorrt_builder  # noqa: E402
from geovr_training.export.tensorrt_builder import (  # noqa: E402
    EngineBuilder, EngineBuildError, build_or_load_engine, copy_engine, precision_plan)

onnx = pytest.importorskip('onnx', reason='onnx is not installed')
from onnx import TensorProto, helper  # noqa: E402

PROFILE = [{'x': ((1, 4), (1, 4), (2, 4))}]


def _onnx(tmp_path, bad=False):
    from geovr_ros.inference.metadata import graph_props
    x = helper.make_tensor_value_info('x', TensorProto.FLOAT, ['batch', 4])
    y = helper.make_tensor_value_info('y', TensorProto.FLOAT, ['batch', 4])
    graph = helper.make_graph([helper.make_node('Relu', ['x'], ['y'])], 'BAD' if bad else 'g', [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    props = graph_props(graph='frame', model_version='t1', config_sha256='ab' * 32, outputs={'y': {'unit': '1'}},
                        dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}}, profile={'batch': (1, 1, 2)})
    for key, value in props.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    path = tmp_path / 'frame.onnx'
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize('version,precision,expected', [
    ('10.8.0', 'auto', ('fp16', False, ('FP16',))),
    ('10.8.0', 'fp32', ('fp32', False, ())),
    ('10.8.0', 'onnx', ('onnx', True, ())),
    ('11.0.0', 'auto', ('onnx', True, ())),
    ('11.0.0', 'fp32', ('fp32', True, ())),
    ('11.0.0', 'onnx', ('onnx', True, ())),
])
def test_precision_plan_per_version(version, precision, expected):
    plan = precision_plan(make_fake_tensorrt(version), precision)
    assert (plan.precision, plan.strongly_typed, plan.builder_flags) == expected


def test_fp16_on_tensorrt_11_is_refused_saying_what_to_do():
    with pytest.raises(PrecisionUnsupportedError, match='ModelOpt AutoCast.*--precision onnx'):
        precision_plan(make_fake_tensorrt('11.0.0'), 'fp16')
    with pytest.raises(ValueError, match="'int8'"):
        precision_plan(make_fake_tensorrt('10.8.0'), 'int8')


def test_default_build_on_tensorrt_11_touches_no_removed_api(tmp_path):
    """Before: builder.platform_has_fast_fp16 / BuilderFlag.FP16 raised AttributeError."""
    trt = make_fake_tensorrt('11.0.0')
    assert not hasattr(trt.Builder, 'platform_has_fast_fp16') and not hasattr(trt.BuilderFlag, 'FP16')
    plan = EngineBuilder(trt=trt).build(_onnx(tmp_path), PROFILE)
    network, config = trt.built[0]
    assert plan.startswith(b'FAKEPLAN')
    assert network.flags == 1 << 5 and config.flags == []  # strongly typed, no precision flag


def test_fp16_on_tensorrt_10_sets_the_flag_and_warns_without_fast_fp16(tmp_path, caplog):
    trt = make_fake_tensorrt('10.3.0', fast_fp16=False)
    with caplog.at_level(logging.WARNING):
        EngineBuilder('fp16', 256, trt=trt).build(_onnx(tmp_path), PROFILE)
    network, config = trt.built[0]
    assert network.flags == 0 and config.flags == ['FP16']
    assert config.pools == {'WORKSPACE': 256 << 20}
    assert config.profiles[0].shapes == {'x': ((1, 4), (1, 4), (2, 4))}
    assert any('no fast fp16' in r.message for r in caplog.records)


def test_a_timing_cache_that_does_not_fit_is_replaced_not_ignored(tmp_path, caplog):
    trt = make_fake_tensorrt('10.8.0')
    cache_file = tmp_path / 'timing.cache'
    cache_file.write_bytes(b'another GPU')
    builder = EngineBuilder('fp32', timing_cache=cache_file, trt=trt)
    with caplog.at_level(logging.WARNING):
        builder.build(_onnx(tmp_path), PROFILE)
    assert builder.timing_cache_reused is False
    assert any('does not fit' in r.message for r in caplog.records)
    assert trt.built[0][1].timing_cache.data == b''  # a fresh cache was set
    assert cache_file.read_bytes() == b'TIMING-ok'
    builder.build(_onnx(tmp_path), PROFILE)
    assert builder.timing_cache_reused is True


def test_parser_errors_are_all_listed(tmp_path):
    with pytest.raises(EngineBuildError, match='(?s)no importer.*parse failed'):
        EngineBuilder('fp32', trt=make_fake_tensorrt('10.8.0')).build(_onnx(tmp_path, bad=True), PROFILE)


@pytest.mark.parametrize('version', ['10.8.0', '11.0.0'])
def test_built_engine_is_cached_with_its_metadata_and_the_runtime_loads_it(tmp_path, monkeypatch, version):
    from geovr_ros.inference.backends.tensorrt_backend import TensorRTBackend
    from geovr_ros.inference.tensorrt_cache import read_engine_sidecar
    memory = FakeMemory()
    trt = install(monkeypatch, make_fake_tensorrt(version, memory))
    onnx_path = _onnx(tmp_path)
    _, first = build_or_load_engine(onnx_path, tmp_path / 'cache', profiles=PROFILE, trt=trt, memory=memory)
    _, second = build_or_load_engine(onnx_path, tmp_path / 'cache', profiles=PROFILE, trt=trt, memory=memory)
    assert (first.status, second.status, len(trt.built)) == ('built', 'hit', 1)
    sidecar = read_engine_sidecar(first.path)
    assert sidecar['facts']['precision'] == ('fp16' if version.startswith('10') else 'onnx')
    assert sidecar['io_dims'] == {'x': ['batch', 4], 'y': ['batch', 4]}
    assert json.loads(sidecar['metadata']['geovr.graph']) == 'frame'
    backend = TensorRTBackend(memory=memory, cache_dir=tmp_path / 'cache')
    backend.load(onnx_path)  # the same key from the same facts: found, not rebuilt
    assert backend.cache_outcome.path == first.path and len(trt.built) == 1
    backend.close()
    alone = copy_engine(first.path, tmp_path / 'model' / 'frame.engine')
    backend = TensorRTBackend(memory=memory)
    backend.load(alone)
    assert backend.input_specs[0].shape == ('batch', 4)
    assert json.loads(backend.metadata['geovr.model_version']) == 't1'


def test_export_engine_runs_the_static_checks_once(tmp_path, monkeypatch):
    from geovr_ros.inference.tensorrt_cache import CacheOutcome
    from geovr_training.export import engine
    from geovr_training.export.cli import main
    calls = []
    original = engine.static_check
    monkeypatch.setattr(engine, 'static_check', lambda *a: calls.append(a) or original(*a))
    monkeypatch.setattr(tensorrt_builder, 'build_or_load_engine',
                        lambda *a, **k: (None, CacheOutcome('built', tmp_path / 'k.engine')))
    assert main(['engine', '--onnx', str(_onnx(tmp_path)), '--cache-dir', str(tmp_path)]) == 0
    assert len(calls) == 1


def test_export_engine_fp16_on_tensorrt_11_exits_with_the_reason(tmp_path, monkeypatch, capsys):
    from geovr_training.export.cli import main
    trt = install(monkeypatch, make_fake_tensorrt('11.0.0'))
    monkeypatch.setattr('geovr_ros.inference.cuda_memory.import_device_memory', lambda prefer=None: trt.memory)
    code = main(['engine', '--onnx', str(_onnx(tmp_path)), '--precision', 'fp16', '--cache-dir', str(tmp_path)])
    assert code == 2 and 'TensorRT 11 removed weak typing' in capsys.readouterr().err
