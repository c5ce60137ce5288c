"""node_bench's in-process measurements (the node itself is measured by running the command)."""
from __future__ import annotations

import argparse

import numpy as np
import pytest

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
pytest.importorskip('cv2', reason='OpenCV is not installed')
from test_inference_contract_model import make_split_contract_model  # noqa: E402

from geovr_ros.nodes.node_bench import (bare_backend_ms, node_backend_options, parse_size,  # noqa: E402
                                         session_alone_ms)
from geovr_ros.nodes.node_bench import test_image as bench_image  # noqa: E402  (not a test)


def test_the_session_alone_costs_at_least_the_bare_model(tmp_path):
    model = make_split_contract_model(tmp_path)
    bare = bare_backend_ms(str(model), 'onnxruntime', (128, 96), frames=8)
    alone = session_alone_ms(str(model), 'onnxruntime', (128, 96), frames=8)
    assert np.isfinite(alone['session_ms']) and alone['session_ms'] > 0
    # the session runs the same preprocess + model per frame, and tracking on top
    assert alone['session_ms'] > 0.5 * bare['bare_ms']


def test_frames_move_and_sizes_parse():
    assert bench_image(64, 48, 0).shape == (48, 64, 3)
    assert not np.array_equal(bench_image(64, 48, 0), bench_image(64, 48, 1))
    assert parse_size('640x480') == (640, 480)
    with pytest.raises(argparse.ArgumentTypeError, match='WxH'):
        parse_size('640by480')


def test_this_process_measures_with_the_node_thread_settings():
    assert node_backend_options([]) == {'thread_spinning': True}           # the node's defaults
    assert node_backend_options(['backend_thread_spinning:=false', 'backend_threads:=1',
                                 'keyframe_translation:=0.0']) == {
        'thread_spinning': False, 'intra_op_threads': 1, 'threads': 1}
