"""Metadata read back and the PerceptionPipeline stages on a real tiny ONNX graph."""
from __future__ import annotations

import json

import numpy as np
import pytest

from geovr_ros.geometry import InvalidIntrinsicsError, ShapeError, resize_intrinsics
from geovr_ros.inference import (
    MetadataError, ModelMetadata, PerceptionPipeline, PerceptionResult, Preprocessor,
    read_metadata)

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
from test_inference_contract_model import MEAN, STD, contract_metadata, make_contract_model  # noqa: E402


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    return make_contract_model(tmp_path_factory.mktemp('tiny'))


def _camera(width=320, height=240, seed=0):
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 119.5], [0, 0, 1]])
    return rgb, K


def test_metadata_read_back(model_dir):
    meta = read_metadata(model_dir / 'perception.onnx')
    assert meta.input_size == (64, 48)
    assert meta.mean == MEAN and meta.std == STD
    assert meta.model_version == 'tiny-test-1' and meta.config_sha256 == 'ab' * 32
    assert meta.multiple_of == 16 and meta.patch_size == 16
    assert meta.profile_sizes() == {'batch': (1, 1, 2), 'height': (32, 48, 96),
                                    'width': (32, 64, 128)}
    assert meta.vocabularies['categories'] == ['box', 'chair']
    assert meta.flops_at(64, 48) == (1e6, 'counted by the exporter at 64x48')
    scaled, how = meta.flops_at(128, 96)
    assert scaled == pytest.approx(4e6) and 'scaled' in how


@pytest.mark.parametrize('key', ['geovr.input_size', 'geovr.normalization', 'geovr.shapes'])
def test_missing_required_key_is_named(key):
    props = contract_metadata()
    del props[key]
    with pytest.raises(MetadataError, match=key):
        ModelMetadata.from_props(props, 'model.onnx')


def test_invalid_metadata_values_are_named():
    props = contract_metadata()
    props['geovr.normalization'] = json.dumps({'mean': [0.5], 'std': [1, 1, 1]})
    with pytest.raises(MetadataError, match='geovr.normalization'):
        ModelMetadata.from_props(props)
    props = contract_metadata()
    props['geovr.input_size'] = 'not json'
    with pytest.raises(MetadataError, match='geovr.input_size'):
        ModelMetadata.from_props(props)


def test_preprocess_resizes_normalises_and_updates_K():
    rgb, K = _camera()
    frame = Preprocessor((64, 48), MEAN, STD)(rgb, K)
    assert frame.chw.shape == (3, 48, 64) and frame.chw.dtype == np.float32
    np.testing.assert_allclose(frame.K, resize_intrinsics(K, (320, 240), (64, 48)))
    flat = np.full((240, 320, 3), 200, np.uint8)
    values = Preprocessor((64, 48), MEAN, STD)(flat, K).chw[:, 10, 10]
    np.testing.assert_allclose(values, (200 / 255 - np.array(MEAN)) / np.array(STD), rtol=1e-5)


@pytest.mark.parametrize('camera, fitted', [
    ((640, 480), (256, 192)), ((540, 360), (288, 192)), ((1280, 720), (288, 160)),
    ((480, 640), (192, 256)), ((500, 500), (224, 224)), ((256, 192), (256, 192))])
def test_each_camera_is_fed_at_the_trained_pixel_count_and_its_own_aspect(camera, fitted):
    from geovr_ros.inference.preprocess import FITTED_AREA_RANGE, aspect_window, fitted_input_size
    size = fitted_input_size(camera, (256, 192), 32)
    assert size == fitted
    assert size[0] % 32 == 0 and size[1] % 32 == 0
    assert FITTED_AREA_RANGE[0] <= size[0] * size[1] / (256 * 192) <= FITTED_AREA_RANGE[1]
    x0, y0, w, h = aspect_window(camera, size)
    assert abs(w / h - size[0] / size[1]) < 2 / min(w, h) and (w, h) <= camera
    assert (x0, y0) == ((camera[0] - w) // 2, (camera[1] - h) // 2)          # centred
    assert max(1 - w / camera[0], 1 - h / camera[1]) < 0.02                   # a sliver at most


def test_preprocess_cuts_to_the_input_aspect_instead_of_stretching():
    """A 3:2 camera fed at a 4:3 size loses its sides (K shifted), it is not squeezed; fed
    at its fitted size it is whole; a stored keyframe can be fed at another frame's size."""
    rgb = np.random.default_rng(0).integers(0, 256, (360, 540, 3), dtype=np.uint8)
    K = np.array([[500.0, 0, 269.5], [0, 500.0, 179.5], [0, 0, 1]])
    fixed = Preprocessor((256, 192), MEAN, STD)(rgb, K)
    assert fixed.size == (256, 192) and fixed.source_size == (540, 360)
    assert fixed.K[0, 0] == pytest.approx(fixed.K[1, 1])                       # square pixels kept
    assert fixed.K[0, 0] == pytest.approx(500.0 * 192 / 360)                   # the height sets the scale
    assert fixed.K[0, 2] == pytest.approx(127.5, abs=0.3)                      # the centre stays the centre
    fitted = Preprocessor((256, 192), MEAN, STD, multiple_of=32)
    whole = fitted(rgb, K)
    assert whole.size == (288, 192) and fitted.size_for((540, 360)) == (288, 192)
    np.testing.assert_allclose(whole.K, resize_intrinsics(K, (540, 360), (288, 192)))
    assert fitted(rgb, K, size=(256, 192)).size == (256, 192)
    # the same pixels as a crop done by hand: what reaches the model is the camera's centre
    x0 = (540 - 480) // 2
    by_hand = Preprocessor((256, 192), MEAN, STD)(np.ascontiguousarray(rgb[:, x0:x0 + 480]), K)
    np.testing.assert_array_equal(fixed.chw, by_hand.chw)


def test_preprocess_rejects_bad_images_and_K():
    prepare = Preprocessor((64, 48), MEAN, STD)
    rgb, K = _camera()
    with pytest.raises(ShapeError, match='uint8'):
        prepare(rgb.astype(np.float32), K)
    with pytest.raises(ShapeError, match=r'\(240, 320\)'):
        prepare(rgb[..., 0], K)
    with pytest.raises(InvalidIntrinsicsError):
        prepare(rgb, -K)


def test_pipeline_infer_returns_a_decoded_result(model_dir):
    pipeline = PerceptionPipeline(model_dir, backend='onnxruntime')
    rgb, K = _camera()
    result = pipeline.infer(rgb, K, *_camera(seed=1))
    assert isinstance(result, PerceptionResult)
    assert result.depth.shape == (48, 64) and result.depth.dtype == np.float32
    assert np.all(result.depth > 0)
    np.testing.assert_allclose(result.K, resize_intrinsics(K, (320, 240), (64, 48)))
    assert result.rel_pose.shape == (4, 4) and result.rel_pose.dtype == np.float64
    np.testing.assert_allclose(result.rel_pose[3], [0, 0, 0, 1])
    assert result.tokens.ndim == 2 and result.token_xyz.shape[1] == 3
    assert np.linalg.norm(result.descriptor) == pytest.approx(1.0, abs=1e-5)
    assert isinstance(result.scale, float)
    assert set(result.timings_ms) == {'preprocess', 'infer', 'decode', 'total'}
    assert result.timings_ms['total'] >= result.timings_ms['infer']
    assert result.depth_confidence is None  # a graph exported without it still runs


def test_depth_confidence_is_optional_and_must_match_the_depth():
    from geovr_ros.inference.backends.base import InferenceError
    from geovr_ros.inference.decode import decode_perception
    outputs = {'depth': np.ones((1, 1, 6, 8), np.float32), 'rel_pose': np.eye(4)[None],
               'scale': np.ones(1), 'tokens': np.zeros((1, 1, 4, 8)), 'token_xyz': np.zeros((1, 1, 4, 3)),
               'descriptor': np.ones((1, 1, 8))}
    assert decode_perception(outputs, np.eye(3)).depth_confidence is None
    confidence = np.linspace(0, 0.9, 48, dtype=np.float32).reshape(1, 1, 6, 8)
    np.testing.assert_array_equal(decode_perception({**outputs, 'depth_confidence': confidence},
                                                    np.eye(3)).depth_confidence, confidence[0, 0])
    with pytest.raises(InferenceError, match='depth_confidence'):
        decode_perception({**outputs, 'depth_confidence': confidence[..., :4]}, np.eye(3))


def test_pipeline_runs_at_another_input_size_and_rejects_bad_sizes(model_dir):
    pipeline = PerceptionPipeline(model_dir, backend='onnxruntime', input_size=(128, 96))
    assert not pipeline.fits_camera
    assert pipeline.infer(*_camera(), *_camera(seed=1)).depth.shape == (96, 128)
    fitting = PerceptionPipeline(model_dir, backend='onnxruntime')   # the trained 64x48's pixel count
    assert fitting.fits_camera and fitting.input_size == (64, 48)
    wide = [np.random.default_rng(seed).integers(0, 256, (180, 320, 3), dtype=np.uint8) for seed in (0, 1)]
    K = np.array([[300.0, 0, 159.5], [0, 300.0, 89.5], [0, 0, 1]])
    result = fitting.infer(wide[0], K, wide[1], K)                        # 16:9 at 80x48 (5:3)
    assert result.depth.shape == fitting.preprocess.size_for((320, 180))[::-1]
    assert result.depth.shape != (48, 64)
    with pytest.raises(ValueError, match='multiples of 16'):
        PerceptionPipeline(model_dir, backend='onnxruntime', input_size=(100, 96))


def test_step_keeps_the_reference_frame(model_dir):
    pipeline = PerceptionPipeline(model_dir, backend='onnxruntime')
    first, second, third = _camera(seed=0), _camera(seed=1), _camera(seed=2)
    r1 = pipeline.step(*first)
    np.testing.assert_array_equal(r1.depth, r1.depth_ref)  # first frame is its own reference
    r2 = pipeline.step(*second)
    pair = pipeline.infer(*first, *second)
    np.testing.assert_allclose(r2.depth_ref, pair.depth_ref, rtol=1e-6)
    np.testing.assert_allclose(r2.rel_pose, pair.rel_pose, rtol=1e-6)
    r3 = pipeline.step(*third, update_reference=False)  # reference stays the second frame
    np.testing.assert_allclose(r3.depth_ref, r2.depth, rtol=1e-6)
    r4 = pipeline.step(*first)
    np.testing.assert_allclose(r4.depth_ref, r2.depth, rtol=1e-6)
    pipeline.reset()
    r5 = pipeline.step(*third)
    np.testing.assert_array_equal(r5.depth, r5.depth_ref)


@pytest.fixture(scope='module')
def split_dir(tmp_path_factory):
    from test_inference_contract_model import make_split_contract_model
    return make_split_contract_model(tmp_path_factory.mktemp('split'))


def test_split_graphs_equal_the_single_graph_on_a_stream(split_dir):
    """A v2-style directory runs frame encoder + pair head by default; on a stream of frames
    every output equals the single perception graph's for the current frame."""
    single = PerceptionPipeline(split_dir, backend='onnxruntime', graphs='single')
    split = PerceptionPipeline(split_dir, backend='onnxruntime')
    assert (single.graphs, split.graphs) == ('single', 'split')
    for seed in range(4):
        rgb, K = _camera(seed=seed)
        a, b = single.step(rgb, K), split.step(rgb, K)
        for name in ('depth', 'rel_pose', 'tokens', 'token_xyz', 'descriptor'):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-5, atol=1e-5,
                                       err_msg=name)
        assert b.scale == pytest.approx(a.scale, rel=1e-5)
        assert a.depth_ref is not None and b.depth_ref is None  # the pair head decodes one frame
    single.close()
    split.close()


def test_the_camera_graphs_run_on_sessions_fixed_to_their_sizes(split_dir):
    """ONNX Runtime sessions fixed to the input sizes by default (docs/deployment.md), one per
    graph for one camera; the same depth as the sessions of free sizes."""
    fixed = PerceptionPipeline(split_dir, backend='onnxruntime')
    free = PerceptionPipeline(split_dir, backend='onnxruntime', fixed_shapes=False)
    for seed in range(3):
        rgb, K = _camera(seed=seed)
        np.testing.assert_allclose(fixed.step(rgb, K).depth, free.step(rgb, K).depth, rtol=1e-5, atol=1e-5)
    assert [len(b._fixed_sessions) for b in (fixed.encoder, fixed.backend)] == [1, 1]
    assert [len(b._fixed_sessions) for b in (free.encoder, free.backend)] == [0, 0]
    fixed.close()
    free.close()


@pytest.mark.parametrize('spinning', [True, False])
def test_split_graphs_spin_within_a_run_and_stop_when_it_returns(split_dir, spinning):
    """The graphs of a camera frame run in turn: threads spinning after one would compete with
    the next one's (docs/deployment.md); threads that may spin do so within a run only."""
    pipeline = PerceptionPipeline(split_dir, backend='onnxruntime', thread_spinning=spinning)
    try:
        graphs = [b for b in (pipeline.encoder, pipeline.backend, pipeline.classifier, pipeline.imagenet) if b]
        assert len(graphs) >= 2
        assert all(g.thread_spinning == spinning and not g.spin_after_run for g in graphs)
    finally:
        pipeline.close()


def test_split_graphs_encode_each_frame_once(split_dir):
    """In a stream the reference's encoding is reused: N frames cost N encoder runs, not 2N."""
    pipeline = PerceptionPipeline(split_dir, backend='onnxruntime')
    calls = []
    real_infer = pipeline.encoder.infer
    pipeline.encoder.infer = lambda inputs: calls.append(1) or real_infer(inputs)
    for seed in range(5):
        pipeline.step(*_camera(seed=seed))
    assert len(calls) == 5
    reference = pipeline.preprocess(*_camera(seed=9))
    for seed in range(3):  # keyframe tracking: the reference stays, encoded once
        pipeline.run(reference, pipeline.preprocess(*_camera(seed=seed)))
    assert len(calls) == 5 + 1 + 3
    pipeline.close()


def test_cell_logits_name_every_stride_32_cell(split_dir):
    pipeline = PerceptionPipeline(split_dir, backend='onnxruntime')
    frame = pipeline.preprocess(*_camera())
    logits = pipeline.cell_logits(frame)
    assert logits.shape == (48 // 16, 64 // 16, 1000) and np.isfinite(logits).all()
    single = PerceptionPipeline(split_dir, backend='onnxruntime', graphs='single')
    assert single.cell_logits(single.preprocess(*_camera())) is None
    single.close()
    pipeline.close()


@pytest.fixture(scope='module')
def named_dir(tmp_path_factory):
    from test_inference_contract_model import make_split_contract_model
    return make_split_contract_model(tmp_path_factory.mktemp('named'), with_imagenet=True)


def test_cell_logits_come_from_imagenet_cells_when_the_model_has_it(named_dir):
    """With imagenet_cells.onnx the cell logits are that graph's on the frame encoder's image
    (run once per frame asked), not the cell classifier's; the classifier still runs for its
    own outputs."""
    import onnxruntime as ort
    pipeline = PerceptionPipeline(named_dir, backend='onnxruntime')
    assert pipeline.imagenet is not None and pipeline.classifier is not None
    calls = []
    real_infer = pipeline.imagenet.infer
    pipeline.imagenet.infer = lambda inputs: calls.append(sorted(inputs)) or real_infer(inputs)
    pipeline.step(*_camera(seed=3))  # a frame that is not a keyframe: the graph does not run
    assert calls == []
    frame = pipeline.preprocess(*_camera())
    logits = pipeline.cell_logits(frame)
    session = ort.InferenceSession(str(named_dir / 'imagenet_cells.onnx'), providers=['CPUExecutionProvider'])
    expected = session.run(None, {'image': frame.chw[None]})[0][0].transpose(1, 2, 0)
    assert logits.shape == (48 // 16, 64 // 16, 1000)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    classifier = pipeline.classify(frame)['class_logits'][0].transpose(1, 2, 0)
    assert (logits.argmax(-1) == 7).all() and not (classifier.argmax(-1) == 7).all()
    assert np.abs(logits - classifier).max() > 10.0
    pipeline.cell_logits(frame)
    assert calls == [['image']]  # once for the frame, the image alone
    pipeline.cell_logits(pipeline.preprocess(*_camera(seed=1)))
    assert len(calls) == 2
    pipeline.close()
    assert pipeline.imagenet.model_path is None  # closed with the rest


def test_image_logits_classify_each_image_alone_in_batches_the_backend_takes(named_dir, split_dir):
    """Windows cropped from a frame (`objects/windows.py`): each image's logits are the
    graph's cells averaged, in batches no larger than the backend's limit (an engine's
    profile), the same whatever the batching."""
    import onnxruntime as ort
    images = np.random.default_rng(4).normal(size=(5, 3, 32, 48)).astype(np.float32)
    session = ort.InferenceSession(str(named_dir / 'imagenet_cells.onnx'), providers=['CPUExecutionProvider'])
    expected = np.stack([session.run(None, {'image': image[None]})[0][0].mean((1, 2)) for image in images])
    with PerceptionPipeline(named_dir, backend='onnxruntime') as pipeline:
        batches = []
        real_infer = pipeline.imagenet.infer
        pipeline.imagenet.infer = lambda inputs: batches.append(len(inputs['image'])) or real_infer(inputs)
        np.testing.assert_allclose(pipeline.image_logits(images), expected, rtol=1e-5, atol=1e-5)
        assert batches == [5]
        pipeline.imagenet.max_batch = lambda name: 2
        np.testing.assert_allclose(pipeline.image_logits(images), expected, rtol=1e-5, atol=1e-5)
        assert batches == [5, 2, 2, 1]
        with pytest.raises(ValueError, match=r'\(N >= 1, 3, h, w\), got shape \(3, 32, 48\)'):
            pipeline.image_logits(images[0])
    with PerceptionPipeline(split_dir, backend='onnxruntime') as pipeline:
        assert pipeline.image_logits(images) is None   # no imagenet_cells graph


def test_cell_logits_fall_back_to_the_classifier_without_imagenet_cells(split_dir):
    pipeline = PerceptionPipeline(split_dir, backend='onnxruntime')
    assert pipeline.imagenet is None
    frame = pipeline.preprocess(*_camera())
    np.testing.assert_array_equal(pipeline.cell_logits(frame),
                                  pipeline.classify(frame)['class_logits'][0].transpose(1, 2, 0))
    pipeline.close()


def test_imagenet_cells_must_take_the_frame_encoders_image(tmp_path):
    """A graph normalised otherwise than the frame encoder's input (or silent about it) would
    name other pixels: refused, naming the file and the key."""
    from test_inference_contract_model import (
        MEAN, imagenet_cells_metadata, make_split_contract_model, write_imagenet_cells)

    from geovr_ros.inference import MetadataError
    directory = make_split_contract_model(tmp_path / 'model')
    write_imagenet_cells(directory, imagenet_cells_metadata(mean=(0.485, 0.456, 0.406)))
    with pytest.raises(MetadataError, match='imagenet_cells.onnx.*normalization.*differ'):
        PerceptionPipeline(directory, backend='onnxruntime')
    silent = {k: v for k, v in imagenet_cells_metadata(MEAN).items() if k != 'geovr.normalization'}
    write_imagenet_cells(directory, silent)
    with pytest.raises(MetadataError, match='normalization.*missing'):
        PerceptionPipeline(directory, backend='onnxruntime')


def test_split_needs_the_split_graphs(model_dir):
    from geovr_ros.inference import ModelFileError
    with pytest.raises(ModelFileError, match='frame_encoder and pair_head'):
        PerceptionPipeline(model_dir, backend='onnxruntime', graphs='split')
    with pytest.raises(ValueError, match='graphs must be one of'):
        PerceptionPipeline(model_dir, backend='onnxruntime', graphs='both')
