"""Backends behind one interface: ONNX Runtime and torch.export on real tiny graphs,
typed errors for bad model files, backend selection, lazy imports."""
from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest

from geovr_ros.inference import (
    BackendUnavailableError, InputMismatchError, ModelFileError, TensorSpec, choose_backend,
    create_backend)
from geovr_ros.inference.select import Probe

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
from test_inference_contract_model import OUTPUTS, example_inputs, make_contract_model  # noqa: E402


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return make_contract_model(tmp_path_factory.mktemp('tiny'), with_pt2=True)


def _inputs(batch=1, width=64, height=48):
    return {name: t.numpy() for name, t in
            zip(('images', 'intrinsics'), example_inputs(batch, width, height))}


def test_importing_inference_needs_no_heavy_library():
    code = ('import sys, geovr_ros.inference, geovr_ros.inference.bench, '
            'geovr_ros.inference.backends.tensorrt_backend, '
            'geovr_ros.inference.backends.torch_backend, '
            'geovr_ros.inference.backends.onnxruntime_backend, '
            'geovr_ros.inference.tensorrt_checks, geovr_ros.inference.tensorrt_cache, '
            'geovr_ros.inference.tensorrt_common, geovr_ros.inference.cuda_memory\n'
            'bad = [m for m in ("torch", "onnxruntime", "onnx", "tensorrt", "pycuda", "cuda", '
            '"rclpy", "geovr_training") if m in sys.modules]\n'
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_onnxruntime_specs_and_outputs(model_dir):
    with create_backend('onnxruntime', model_dir, intra_op_threads=1) as backend:
        assert [s.name for s in backend.input_specs] == ['images', 'intrinsics']
        assert [s.name for s in backend.output_specs] == OUTPUTS
        images = backend.input_specs[0]
        assert images.dtype == np.float32 and images.shape[1:3] == (2, 3)
        assert not isinstance(images.shape[3], int)  # dynamic height
        for width, height, batch in ((64, 48, 1), (128, 96, 2)):
            out = backend.infer(_inputs(batch, width, height))
            assert out['depth'].shape == (batch, 2, height, width)
            assert out['rel_pose'].shape == (batch, 4, 4)
            assert out['descriptor'].shape[:2] == (batch, 2)
        assert backend.warmup(2) > 0


@pytest.mark.parametrize('spinning', [True, False])
def test_onnxruntime_thread_settings_reach_the_session(model_dir, spinning):
    with create_backend('onnxruntime', model_dir, intra_op_threads=1,
                        thread_spinning=spinning) as backend:
        options = backend.session.get_session_options()
        assert options.intra_op_num_threads == 1
        expected = '1' if spinning else '0'
        assert options.get_session_config_entry('session.intra_op.allow_spinning') == expected
        assert backend.infer(_inputs())['depth'].shape[:2] == (1, 2)


@pytest.mark.parametrize('spinning, after_run, stops', [(True, True, False), (True, False, True),
                                                        (False, False, False)])
def test_onnxruntime_threads_stop_spinning_when_a_run_returns_if_asked(model_dir, spinning, after_run, stops):
    with create_backend('onnxruntime', model_dir, intra_op_threads=1, thread_spinning=spinning,
                        spin_after_run=after_run, fixed_shapes=True) as backend:
        backend.infer(_inputs())
        for session in (backend.session, *backend._fixed_sessions.values()):
            options = session.get_session_options()
            assert options.get_session_config_entry('session.intra_op.allow_spinning') == str(int(spinning))
            if stops:
                assert options.get_session_config_entry('session.force_spinning_stop') == '1'
            else:
                with pytest.raises(RuntimeError, match='does not have configuration'):
                    options.get_session_config_entry('session.force_spinning_stop')


def test_onnxruntime_sessions_fixed_to_the_input_sizes_give_the_same_outputs(model_dir):
    free = create_backend('onnxruntime', model_dir, intra_op_threads=1)   # the default: one session of free sizes
    fixed = create_backend('onnxruntime', model_dir, intra_op_threads=1, fixed_shapes=True, max_fixed_sessions=2)
    for width, height, batch in ((64, 48, 1), (128, 96, 2), (64, 48, 1)):
        inputs = _inputs(batch, width, height)
        expected, got = free.infer(inputs), fixed.infer(inputs)
        for name in OUTPUTS:
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-5, err_msg=name)
        session = fixed._session_for(inputs)
        assert session is not fixed.session   # a session of its own, whose inputs have no free size left
        assert [i.shape for i in session.get_inputs()] == [list(v.shape) for v in inputs.values()]
    assert free._session_for(_inputs()) is free.session
    assert len(fixed._fixed_sessions) == 2
    fixed.infer(_inputs(1, 32, 32))   # a third size: the least recently used (128x96) is dropped
    assert sorted(dict(key)['width'] for key in fixed._fixed_sessions) == [32, 64]


def test_onnxruntime_fixed_sizes_of_the_inputs(model_dir):
    backend = create_backend('onnxruntime', model_dir, fixed_shapes=True)
    inputs = _inputs(2, 64, 48)
    sizes = backend.fixed_sizes(inputs)
    assert sizes['batch'] == 2 and sorted(sizes.values()).count(64) == 1 and 48 in sizes.values()
    # one name, two sizes (the batch of images 2, of intrinsics 1): no session fixed to either,
    # the session of free sizes runs them as it always did
    clash = {**inputs, 'intrinsics': inputs['intrinsics'][:1]}
    assert backend.fixed_sizes(clash) == {}
    assert backend._session_for(clash) is backend.session


def test_onnxruntime_rejects_wrong_inputs_by_name(model_dir):
    backend = create_backend('onnxruntime', model_dir)
    inputs = _inputs()
    with pytest.raises(InputMismatchError, match='missing'):
        backend.infer({'images': inputs['images']})
    with pytest.raises(InputMismatchError, match="'intrinsics'"):
        backend.infer({**inputs, 'intrinsics': inputs['intrinsics'].astype(np.float64)})


def test_onnxruntime_options_are_validated():
    from geovr_ros.inference.backends.onnxruntime_backend import OnnxRuntimeBackend
    with pytest.raises(ValueError, match='optimization'):
        OnnxRuntimeBackend(optimization='max')
    with pytest.raises(ValueError, match='intra_op_threads'):
        OnnxRuntimeBackend(intra_op_threads=-1)
    with pytest.raises(ValueError, match='max_fixed_sessions'):
        OnnxRuntimeBackend(max_fixed_sessions=0)


def test_onnxruntime_cuda_request_without_cuda_is_a_clear_error(model_dir):
    import onnxruntime
    if 'CUDAExecutionProvider' in onnxruntime.get_available_providers():
        pytest.skip('this onnxruntime has CUDA; the error branch cannot be reached')
    with pytest.raises(BackendUnavailableError, match='CUDAExecutionProvider'):
        create_backend('onnxruntime', model_dir, device='cuda')


def test_torch_backend_loads_the_pt2_and_matches_onnxruntime(model_dir):
    pytest.importorskip('torch', reason='torch is not installed')
    torch_backend = create_backend('torch', model_dir, device='cpu')
    assert torch_backend.model_path.suffix == '.pt2'
    assert torch_backend.metadata['geovr.model_version'] == '"tiny-test-1"'
    ort_backend = create_backend('onnxruntime', model_dir)
    inputs = _inputs(1, 128, 96)
    a, b = torch_backend.infer(inputs), ort_backend.infer(inputs)
    assert set(a) == set(OUTPUTS)
    for name in OUTPUTS:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize('kind', ['onnxruntime', 'torch'])
def test_missing_model_file_names_the_path(tmp_path, kind):
    missing = tmp_path / 'nowhere' / 'perception.onnx'
    with pytest.raises(ModelFileError) as info:
        create_backend(kind, missing)
    assert 'nowhere' in str(info.value)


def test_model_directory_without_the_graph_names_the_expected_file(tmp_path):
    with pytest.raises(ModelFileError, match='perception.onnx'):
        create_backend('onnxruntime', tmp_path)


@pytest.mark.parametrize('content,reason', [(b'', 'empty'), (b'not a protobuf' * 10, 'cannot load')])
def test_corrupt_or_empty_onnx_names_the_file(tmp_path, content, reason):
    path = tmp_path / 'broken.onnx'
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=reason) as info:
        create_backend('onnxruntime', path)
    assert info.value.path == str(path)


def test_corrupt_pt2_names_the_file(tmp_path):
    pytest.importorskip('torch', reason='torch is not installed')
    path = tmp_path / 'perception.pt2'
    path.write_bytes(b'garbage' * 20)
    with pytest.raises(ModelFileError) as info:
        create_backend('torch', path)
    assert info.value.path == str(path)


def test_unreadable_model_file_names_it(tmp_path):
    import os
    if os.geteuid() == 0:
        pytest.skip('running as root: permission bits do not stop reads')
    path = tmp_path / 'perception.onnx'
    path.write_bytes(b'x' * 10)
    path.chmod(0)
    with pytest.raises(ModelFileError, match='not readable'):
        create_backend('onnxruntime', path)


def test_auto_selection_on_this_machine_logs_the_choice_and_reason(model_dir, caplog):
    kind, _, reason = choose_backend('auto')
    import importlib.util
    if importlib.util.find_spec('tensorrt') is None:
        assert kind == 'onnxruntime'
        assert 'TensorRT is not installed' in reason
    with caplog.at_level(logging.INFO, logger='geovr_ros.inference.select'):
        backend = create_backend('auto', model_dir)
    assert backend.name == kind
    assert any('inference backend' in r.message and reason in r.message for r in caplog.records)


def _probes(**available):
    return {name: (lambda ok=available.get(name, False), n=name: Probe(ok, f'{n} probed'))
            for name in ('tensorrt', 'onnxruntime-cuda', 'onnxruntime-cpu')}


@pytest.mark.parametrize('available,expected', [
    ({'tensorrt': True, 'onnxruntime-cuda': True, 'onnxruntime-cpu': True}, ('tensorrt', {})),
    ({'onnxruntime-cuda': True, 'onnxruntime-cpu': True}, ('onnxruntime', {'device': 'cuda'})),
    ({'onnxruntime-cpu': True}, ('onnxruntime', {'device': 'cpu'})),
])
def test_auto_selection_order(available, expected):
    kind, options, reason = choose_backend('auto', _probes(**available))
    assert (kind, options) == expected
    if not available.get('tensorrt'):
        assert 'not tensorrt: tensorrt probed' in reason


def test_auto_selection_with_nothing_available_says_why():
    with pytest.raises(BackendUnavailableError, match='onnxruntime-cpu'):
        choose_backend('auto', _probes())


def test_explicit_and_unknown_kinds():
    assert choose_backend('torch')[0] == 'torch'
    with pytest.raises(ValueError, match="'tflite'"):
        choose_backend('tflite')


def test_tensorrt_requested_without_tensorrt_is_unavailable(model_dir):
    import importlib.util
    if importlib.util.find_spec('tensorrt') is not None:
        pytest.skip('TensorRT is installed here; this tests the machine without it')
    with pytest.raises(BackendUnavailableError, match='TensorRT is not installed'):
        create_backend('tensorrt', model_dir)


def test_tensor_spec_accepts():
    spec = TensorSpec('images', ('batch', 2, 3, None, None), np.dtype(np.float32))
    assert spec.accepts(np.zeros((1, 2, 3, 5, 7), np.float32))
    assert not spec.accepts(np.zeros((1, 3, 3, 5, 7), np.float32))
    assert not spec.accepts(np.zeros((1, 2, 3, 5), np.float32))
    assert not spec.accepts(np.zeros((1, 2, 3, 5, 7), np.float64))
