"""Engine cache keys and the cache's hit / build / rebuild branches (no TensorRT needed:
the deserialize and build steps are injected; the real ones need TensorRT and a GPU)."""
from __future__ import annotations

import importlib.util
import json
import logging

import pytest

from geovr_ros.inference.tensorrt_cache import (
    EngineCache, engine_cache_key, sha256_file, sidecar_path)
from geovr_ros.inference.tensorrt_common import EngineDeserializeError, canonical_profiles

PROFILE = [{'images': ((1, 2, 3, 96, 128), (1, 2, 3, 192, 256), (2, 2, 3, 480, 640)),
            'intrinsics': ((1, 2, 3, 3), (1, 2, 3, 3), (2, 2, 3, 3))}]
MAGIC = b'PLAN'


def _key(onnx_sha='a' * 64, **changes):
    facts = dict(trt_version='10.3.0', gpu_name='Orin', compute_capability=(8, 7),
                 precision='fp16', profiles=PROFILE)
    facts.update(changes)
    return engine_cache_key(onnx_sha, **facts)


class FakeTensorRT:
    """Stands in for TensorRT's build/deserialize: a plan is MAGIC + payload."""

    def __init__(self):
        self.builds = 0
        self.deserialized = 0

    def build(self) -> bytes:
        self.builds += 1
        return MAGIC + b'engine-%d' % self.builds

    def deserialize(self, plan: bytes):
        self.deserialized += 1
        if not plan.startswith(MAGIC):
            raise EngineDeserializeError('Serialization assertion magicTagRead failed')
        return {'engine': plan}


def test_same_onnx_same_key_and_changed_onnx_new_key(tmp_path):
    onnx_a = tmp_path / 'a.onnx'
    onnx_a.write_bytes(b'graph-1')
    first = _key(sha256_file(onnx_a))
    assert _key(sha256_file(onnx_a)) == first
    onnx_a.write_bytes(b'graph-2')
    assert _key(sha256_file(onnx_a)) != first


@pytest.mark.parametrize('change', [
    {'trt_version': '10.4.0'}, {'gpu_name': 'RTX 4090'}, {'compute_capability': (8, 9)},
    {'precision': 'fp32'},
    {'profiles': [{'images': ((1, 2, 3, 96, 128), (1, 2, 3, 192, 256), (1, 2, 3, 480, 640)),
                   'intrinsics': ((1, 2, 3, 3), (1, 2, 3, 3), (1, 2, 3, 3))}]},
])
def test_every_key_ingredient_changes_the_key(change):
    assert _key(**change) != _key()


def test_key_ignores_dict_order_of_profiles():
    reordered = [{'intrinsics': PROFILE[0]['intrinsics'], 'images': PROFILE[0]['images']}]
    assert _key(profiles=reordered) == _key()


def test_invalid_profiles_and_precision_are_named():
    with pytest.raises(ValueError, match="'images'"):
        canonical_profiles([{'images': ((1, 2), (1, 1), (1, 3))}])
    with pytest.raises(ValueError, match='int8'):
        _key(precision='int8')


def test_cache_miss_builds_then_hits_without_rebuilding(tmp_path):
    cache, trt = EngineCache(tmp_path / 'engines'), FakeTensorRT()
    key = _key()
    engine, outcome = cache.load_or_build(key, trt.deserialize, trt.build, facts={'gpu': 'Orin'})
    assert outcome.status == 'built' and trt.builds == 1
    assert cache.engine_path(key).read_bytes() == engine['engine']
    sidecar = json.loads(sidecar_path(cache.engine_path(key)).read_text())
    assert sidecar == {'format': 'geovr-engine/1', 'facts': {'gpu': 'Orin'}}
    assert sidecar_path(cache.engine_path(key)).name == f'{key}.engine.json'
    for _ in range(2):
        again, outcome = cache.load_or_build(key, trt.deserialize, trt.build)
        assert outcome.status == 'hit' and again == engine
    assert trt.builds == 1


def test_corrupt_cached_engine_is_rebuilt_with_a_log_line_saying_why(tmp_path, caplog):
    cache, trt = EngineCache(tmp_path), FakeTensorRT()
    key = _key()
    cache.engine_path(key).write_bytes(b'\x00truncated engine')
    with caplog.at_level(logging.WARNING):
        engine, outcome = cache.load_or_build(key, trt.deserialize, trt.build)
    assert outcome.status == 'rebuilt' and trt.builds == 1
    assert 'magicTagRead' in outcome.reason
    assert any('failed to deserialize' in r.message and 'rebuilding' in r.message
               for r in caplog.records)
    assert cache.engine_path(key).read_bytes().startswith(MAGIC)
    assert cache.load_or_build(key, trt.deserialize, trt.build)[1].status == 'hit'


def test_deserialize_returning_none_counts_as_failure(tmp_path):
    cache, trt = EngineCache(tmp_path), FakeTensorRT()
    key = _key()
    cache.engine_path(key).write_bytes(MAGIC + b'old')
    _, outcome = cache.load_or_build(key, lambda plan: None if plan.endswith(b'old')
                                     else trt.deserialize(plan), trt.build)
    assert outcome.status == 'rebuilt'


def test_a_build_that_does_not_deserialize_raises(tmp_path):
    cache = EngineCache(tmp_path)
    with pytest.raises(EngineDeserializeError):
        cache.load_or_build(_key(), lambda plan: None, lambda: b'bad')
    assert not cache.engine_path(_key()).exists()


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is None,
                    reason='TensorRT is not installed on this machine')
def test_real_engine_build_and_cache_hit(tmp_path):
    from test_inference_contract_model import make_contract_model

    from geovr_training.export.tensorrt_builder import build_or_load_engine
    onnx_path = make_contract_model(tmp_path / 'm') / 'perception.onnx'
    profile = [{'images': ((1, 2, 3, 32, 32), (1, 2, 3, 48, 64), (1, 2, 3, 96, 128)),
                'intrinsics': ((1, 2, 3, 3),) * 3}]
    _, first = build_or_load_engine(onnx_path, tmp_path / 'cache', 'fp32', 256, profile)
    _, second = build_or_load_engine(onnx_path, tmp_path / 'cache', 'fp32', 256, profile)
    assert (first.status, second.status) == ('built', 'hit')
