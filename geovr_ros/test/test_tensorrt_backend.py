"""TensorRTBackend against a fake TensorRT and fake device memory (fake_tensorrt.py): warm-up
inside the profile, the profile that holds each input shape selected, buffers sized over all
profiles, an engine file running alone from its .json, the CUDA context released on every
failed load, and the runtime only loading (no build). No TensorRT, no GPU."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from fake_tensorrt import fake_plan, install, make_fake_tensorrt
from geovr_ros.inference import BackendUnavailableError, InferenceError, ModelFileError
from geovr_ros.inference.backends.tensorrt_backend import TensorRTBackend
from geovr_ros.inference.tensorrt_cache import EngineCache, engine_facts, write_engine_sidecar

PROFILES = [{'x': ((1, 4), (2, 4), (2, 4))}, {'x': ((3, 4), (6, 4), (8, 4))}]
PROPS = {'geovr.graph': '"question_encoder"', 'geovr.model_version': '"v1"'}


@pytest.fixture(params=['10.8.0', '11.0.0'])
def trt(request, monkeypatch):
    return install(monkeypatch, make_fake_tensorrt(request.param))


def _engine_file(tmp_path, profiles=PROFILES, sidecar=True):
    path = tmp_path / 'graph.engine'
    path.write_bytes(fake_plan(profiles))
    if sidecar:
        write_engine_sidecar(path, facts={'tensorrt': 'fake'}, metadata=PROPS,
                             io_dims={'x': ['batch', 4], 'y': ['batch', 4]}, profiles=profiles)
    return path


def _load(trt, path, **options):
    backend = TensorRTBackend(memory=trt.memory, **options)
    backend.load(path)
    return backend


def test_warmup_uses_the_opt_shape_inside_the_profile(trt, tmp_path):
    """Before: every dynamic dim was 64, batch included, outside a max-2 profile."""
    backend = _load(trt, _engine_file(tmp_path))
    assert backend.example_sizes == {'batch': 2}
    assert backend.example_inputs()['x'].shape == (2, 4)
    assert backend.warmup(2) >= 0
    assert trt.memory.depth == 0  # every activation was matched


def test_each_inference_selects_the_profile_holding_its_shape(trt, tmp_path):
    backend = _load(trt, _engine_file(tmp_path))
    context = backend._context
    for batch, profile in ((5, 1), (1, 0), (8, 1), (2, 0)):
        x = np.arange(batch * 4, dtype=np.float32).reshape(batch, 4)
        np.testing.assert_array_equal(backend.infer({'x': x})['y'], 2 * x)
        assert context.profile == profile, batch
    assert context.executed_shapes == [(5, 4), (1, 4), (8, 4), (2, 4)]
    with pytest.raises(InferenceError, match='outside every optimisation profile'):
        backend.infer({'x': np.zeros((9, 4), np.float32)})
    assert backend.max_batch('x') == 8 and backend.max_batch('y') is None   # what callers batch by


def test_buffers_hold_the_largest_maximum_over_all_profiles(trt, tmp_path):
    backend = _load(trt, _engine_file(tmp_path))
    assert backend._buffers['x'][0].size == 8 * 4 and backend._buffers['y'][0].size == 8 * 4
    assert backend.optimization_profiles[1]['x'] == ((3, 4), (6, 4), (8, 4))


def test_an_engine_file_runs_alone_with_its_json(trt, tmp_path):
    backend = _load(trt, _engine_file(tmp_path))
    assert backend.metadata == PROPS
    assert backend.input_specs[0].shape == ('batch', 4)
    assert backend.output_specs[0].shape == ('batch', 4)
    assert 'Fake Orin' in backend.device and 'fake-cuda' in backend.device


def test_an_engine_without_json_still_runs_with_unnamed_dims(trt, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        backend = _load(trt, _engine_file(tmp_path, sidecar=False))
    assert any('no graph.engine.json' in r.message for r in caplog.records)
    assert backend.metadata == {} and backend.input_specs[0].shape == (None, 4)
    assert backend.example_inputs()['x'].shape == (2, 4)


@pytest.mark.parametrize('failure', ['corrupt plan', 'no context', 'bad sidecar'])
def test_a_failed_load_releases_the_cuda_context(trt, tmp_path, failure):
    path = _engine_file(tmp_path)
    expected = InferenceError
    if failure == 'corrupt plan':
        path.write_bytes(b'\0truncated')
        expected = ModelFileError
    elif failure == 'no context':
        original = trt.Runtime.deserialize_cuda_engine

        def failing(self, plan):
            engine = original(self, plan)
            engine.fail_context = True
            return engine
        trt.Runtime.deserialize_cuda_engine = failing
    else:
        (tmp_path / 'graph.engine.json').write_text('{"format": "other"}')
        expected = ModelFileError
    backend = TensorRTBackend(memory=trt.memory)
    with pytest.raises(expected):
        backend.load(path)
    assert (trt.memory.depth, trt.memory.retained, trt.memory.releases) == (0, False, 1)
    assert trt.memory.buffers == {}


def test_close_frees_every_buffer_and_releases_the_context(trt, tmp_path):
    backend = _load(trt, _engine_file(tmp_path))
    assert len(trt.memory.buffers) == 2
    backend.close()
    backend.close()
    assert trt.memory.buffers == {} and len(trt.memory.freed) == 2
    assert (trt.memory.depth, trt.memory.retained, trt.memory.releases) == (0, False, 1)


def _question_encoder_onnx(tmp_path):
    from test_graph_metadata import _encoder_onnx, _encoder_props
    return _encoder_onnx(tmp_path / 'question_encoder.onnx', _encoder_props())


def test_an_onnx_without_a_built_engine_says_which_command_builds_it(trt, tmp_path):
    """The question encoder (no geovr.input_size) reaches the engine lookup: no MetadataError."""
    onnx_path = _question_encoder_onnx(tmp_path)
    backend = TensorRTBackend(memory=trt.memory, cache_dir=tmp_path / 'cache')
    with pytest.raises(BackendUnavailableError, match='geovr-export engine --onnx'):
        backend.load(onnx_path)
    assert (trt.memory.depth, trt.memory.retained) == (0, False)


def test_an_onnx_loads_the_engine_cached_under_its_key(trt, tmp_path):
    onnx_path = _question_encoder_onnx(tmp_path)
    precision = 'fp16' if trt.__version__.startswith('10') else 'onnx'  # what 'auto' means
    profile = {'input_ids': ((1, 1), (4, 24), (8, 128)), 'attention_mask': ((1, 1), (4, 24), (8, 128))}
    key, _ = engine_facts(onnx_path, trt.__version__, 'Fake Orin', (8, 7), precision, [profile])
    cache = EngineCache(tmp_path / 'cache')
    cache.directory.mkdir()
    cache.engine_path(key).write_bytes(fake_plan([profile], dtype='INT64'))
    backend = _load(trt, onnx_path, cache_dir=cache.directory)
    assert backend.cache_outcome.status == 'hit'
    assert [s.shape for s in backend.input_specs] == [('batch', 'tokens')] * 2
    assert backend.example_inputs()['input_ids'].shape == (4, 24)
    ids = backend.example_inputs()['input_ids']
    assert ids.dtype == np.int64 and ids.min() >= 0
    assert backend.metadata['geovr.graph'] == '"question_encoder"'
    np.testing.assert_array_equal(backend.warmup(1) >= 0, True)


def test_fp16_asked_of_tensorrt_11_is_refused_with_what_to_do(monkeypatch, tmp_path):
    trt = install(monkeypatch, make_fake_tensorrt('11.0.0'))
    backend = TensorRTBackend(precision='fp16', memory=trt.memory, cache_dir=tmp_path)
    with pytest.raises(ValueError, match='ModelOpt'):
        backend.load(_question_encoder_onnx(tmp_path))
    assert (trt.memory.depth, trt.memory.retained) == (0, False)


def test_auto_falls_back_when_tensorrt_has_no_engine(trt, tmp_path, monkeypatch, caplog):
    pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
    from test_inference_contract_model import make_contract_model

    from geovr_ros.inference import cuda_memory, create_backend
    from geovr_ros.inference.select import Probe
    monkeypatch.setattr(cuda_memory, 'import_device_memory', lambda prefer=None: trt.memory)
    model_dir = make_contract_model(tmp_path / 'm')
    probes = {'tensorrt': lambda: Probe(True, 'fake TensorRT'),
              'onnxruntime-cuda': lambda: Probe(False, 'no CUDA'),
              'onnxruntime-cpu': lambda: Probe(True, 'cpu')}
    with caplog.at_level(logging.WARNING):
        backend = create_backend('auto', model_dir, probes=probes, cache_dir=tmp_path / 'cache')
    assert backend.name == 'onnxruntime'
    assert 'geovr-export engine' in backend.selection_reason
    assert trt.memory.retained is False
