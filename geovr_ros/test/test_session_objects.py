"""The object map inside the session: the cell classifier names what keyframes show, the depth
places it, answers come from the map in the requested frame, resets empty it (no ROS)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
torch = pytest.importorskip('torch', reason='torch is not installed (needed to build test graphs)')
from test_inference_contract_model import PATCH, example_inputs, make_split_contract_model  # noqa: E402
from test_session_core import slide  # noqa: E402

from geovr_ros.geometry import transform_points  # noqa: E402
from geovr_ros.session import Session, SessionConfig  # noqa: E402

FOLDING_CHAIR = 559  # ImageNet class of the shipped vocabulary's 'chair'


class ConstantClassifier(torch.nn.Module):
    """Every cell is a folding chair, whatever it shows."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.fc = torch.nn.Conv2d(channels, 1000, 1)
        with torch.no_grad():
            self.fc.weight.zero_()
            self.fc.bias.zero_()
            self.fc.bias[FOLDING_CHAIR] = 20.0

    def forward(self, feat_s32):
        return self.fc(feat_s32)


@pytest.fixture(scope='module')
def chair_model(tmp_path_factory):
    directory = make_split_contract_model(tmp_path_factory.mktemp('chairs'))
    images, _ = example_inputs()
    feats = torch.zeros(1, 8, images.shape[-2] // PATCH, images.shape[-1] // PATCH)
    spatial = {0: 'batch', 2: 'height_16', 3: 'width_16'}
    torch.onnx.export(ConstantClassifier().eval(), (feats,), str(directory / 'cell_classifier.onnx'),
                      input_names=['feat_s32'], output_names=['class_logits'],
                      dynamic_axes={'feat_s32': spatial, 'class_logits': spatial}, opset_version=17,
                      dynamo=False)
    return directory


STUDIO_COUCH = 831  # ImageNet class of the shipped vocabulary's 'sofa'


class ConstantImageNetCells(torch.nn.Module):
    """imagenet_cells: every cell of the image is a studio couch, whatever it shows."""

    def forward(self, image):
        logits = torch.zeros(image.shape[0], 1000, image.shape[2] // PATCH, image.shape[3] // PATCH)
        logits[:, STUDIO_COUCH] = 20.0
        return logits + 0.0 * image.mean()


@pytest.fixture(scope='module')
def sofa_model(chair_model, tmp_path_factory):
    """The chair model plus an imagenet_cells graph that sees sofas."""
    import shutil

    from test_inference_contract_model import write_imagenet_cells
    directory = tmp_path_factory.mktemp('sofas') / 'model'
    shutil.copytree(chair_model, directory)
    write_imagenet_cells(directory, module=ConstantImageNetCells())
    return directory


def test_the_imagenet_cells_graph_names_the_maps_objects_when_exported(sofa_model):
    """With imagenet_cells.onnx the session's keyframes are named by it (sofas), not by the
    cell classifier's ImageNet logits (chairs)."""
    from geovr_ros.inference import PerceptionPipeline
    with PerceptionPipeline(sofa_model, backend='onnxruntime') as loaded:
        session, _ = mapped_session(loaded)
        instances = session.objects.map.instances()
    assert instances and {i.category for i in instances} == {'sofa'}
    assert session.answer('How many chairs do you see?', now=20.0).value == 0


BACKPACK = 414  # ImageNet class of the shipped vocabulary's 'backpack'


class WideImageBackpacks(torch.nn.Module):
    """imagenet_cells: studio couches everywhere, and backpacks in the cells from the fifth
    column on, which only an image wider than 4 cells has: a window (128 pixels) names a
    backpack, the 64-pixel frame's own cells a sofa."""

    def forward(self, image):
        cells = torch.nn.functional.avg_pool2d(image[:, :1], PATCH) * 0.0     # (B, 1, h, w) zeros
        column = torch.cumsum(cells + 1.0, dim=3)                            # 1, 2, ... per column
        classes = torch.zeros(1, 1000, 1, 1)
        classes[0, STUDIO_COUCH] = 20.0
        backpack = torch.zeros(1, 1000, 1, 1)
        backpack[0, BACKPACK] = 60.0
        return cells + classes + (column > 4).float() * backpack


def test_the_vocabulary_chooses_windows_or_cells(chair_model, tmp_path):
    """A vocabulary with `windows` classifies windows of the keyframe, each resized to
    window_pixels (`objects/windows.py`); the shipped one (`windows: []`) names the frame's
    own cells."""
    import shutil

    from test_inference_contract_model import write_imagenet_cells

    from geovr_ros.inference import PerceptionPipeline
    directory = tmp_path / 'model'
    shutil.copytree(chair_model, directory)
    write_imagenet_cells(directory, module=WideImageBackpacks())
    windows = tmp_path / 'windows.yaml'
    windows.write_text('windows: [0.4, 0.7]\n')
    found = {}
    for name, vocabulary in (('windows', str(windows)), ('cells', '')):
        with PerceptionPipeline(directory, backend='onnxruntime') as loaded:
            session, _ = mapped_session(loaded, object_vocabulary=vocabulary)
            found[name] = {i.category for i in session.objects.map.instances()}
    assert found == {'windows': {'backpack'}, 'cells': {'sofa'}}


def test_windows_without_an_imagenet_graph_fall_back_to_cells_and_say_so(pipeline, tmp_path, caplog):
    windows = tmp_path / 'windows.yaml'
    windows.write_text('windows: [0.4, 0.7]\n')
    with caplog.at_level('WARNING'):
        session, _ = mapped_session(pipeline, object_vocabulary=str(windows))
    assert 'no imagenet_cells graph' in caplog.text and 'windows.yaml' in caplog.text
    assert {i.category for i in session.objects.map.instances()} == {'chair'}   # the cell classifier's


class HeadClassifier(torch.nn.Module):
    """ImageNet logits that name nothing (uniform) and a category head (chair, toy duck,
    background) that sees a toy duck in every cell."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.fc = torch.nn.Conv2d(channels, 1000, 1)
        self.head = torch.nn.Conv2d(channels, 3, 1)
        with torch.no_grad():
            for conv in (self.fc, self.head):
                conv.weight.zero_()
                conv.bias.zero_()
            self.head.bias[1] = 20.0

    def forward(self, feat_s32):
        return self.fc(feat_s32), self.head(feat_s32)


def export_head_classifier(directory, names):
    import json

    import onnx
    images, _ = example_inputs()
    feats = torch.zeros(1, 8, images.shape[-2] // PATCH, images.shape[-1] // PATCH)
    spatial = {0: 'batch', 2: 'height_16', 3: 'width_16'}
    path = directory / 'cell_classifier.onnx'
    torch.onnx.export(HeadClassifier().eval(), (feats,), str(path), input_names=['feat_s32'],
                      output_names=['class_logits', 'category_logits'],
                      dynamic_axes={'feat_s32': spatial, 'class_logits': spatial, 'category_logits': spatial},
                      opset_version=17, dynamo=False)
    graph = onnx.load(str(path))
    props = {'geovr.schema': 2, 'geovr.graph': 'cell_classifier', 'geovr.model_version': 'test',
             'geovr.config_sha256': '0', 'geovr.outputs': {},
             'geovr.shapes': {'dynamic_axes': {}, 'profile': {'batch': [1, 1, 1]}},
             'geovr.vocabularies': {'cell_categories': names}}
    for key, value in props.items():
        graph.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(graph, str(path))
    return directory


@pytest.fixture(scope='module')
def duck_model(tmp_path_factory):
    return export_head_classifier(make_split_contract_model(tmp_path_factory.mktemp('ducks')), ['chair', 'toy duck'])


@pytest.fixture
def pipeline(chair_model):
    from geovr_ros.inference import PerceptionPipeline
    with PerceptionPipeline(chair_model, backend='onnxruntime') as loaded:
        yield loaded


def mapped_session(pipeline, **config) -> tuple[Session, list]:
    session = Session(pipeline, SessionConfig(**config), mount=np.eye(4))
    frames = slide(session, np.linspace(0.0, 1.2, 40))
    return session, frames


def test_keyframes_and_new_views_put_named_objects_into_the_map(pipeline):
    session, frames = mapped_session(pipeline)
    assert session.objects is not None and session.objects_frame == 'map'
    keyframes = [f for f in frames if f.tracking is not None and f.tracking.keyframe is not None]
    assert len(keyframes) >= 2
    assert all(f.objects_changed for f in keyframes)            # each keyframe observed the chair
    step = SessionConfig().object_view_translation               # the camera slides 3 cm a frame
    named = None
    for f in frames:                                             # between keyframes: a frame each `step` metres
        moved = np.inf if named is None else np.linalg.norm(f.T_odom_cam[:3, 3] - named.T_odom_cam[:3, 3])
        assert f.objects_changed == (f in keyframes or (f.tracking.status == 'tracking' and moved > step)), moved
        named = f if f.objects_changed else named
    assert sum(f.objects_changed for f in frames) > len(keyframes)
    chairs = session.objects.map.instances()
    assert chairs and {c.category for c in chairs} == {'chair'}
    assert session.diagnostics()['objects'] == str(len(chairs))
    assert session.diagnostics()['objects_doubted'] == str(len(session.objects.map.instances(doubted=True)) - len(chairs))
    assert float(session.diagnostics()['objects_up_tilt_deg']) < 1.0   # a level camera sliding sideways
    assert all(np.isfinite(c.centroid).all() for c in chairs)


def test_objects_are_placed_with_the_depth_at_the_maps_scale(pipeline):
    """A named frame's depth goes into the object map at the map's scale, the factor the
    tracker keeps its current keyframe's depth at (`TrackingStep.depth_scale`), as tracking's
    points are: views of one object from keyframes the model saw at different scales meet."""
    session = Session(pipeline, SessionConfig(), mount=np.eye(4))
    model_depth, placed = [], []
    observe = session.objects.observe_logits

    def recording(logits, depth, *args, **kwargs):
        placed.append((len(model_depth) - 1, np.array(depth)))
        return observe(logits, depth, *args, **kwargs)

    session.objects.observe_logits = recording
    keep = lambda result: model_depth.append(np.array(result.depth))   # noqa: E731
    frames = slide(session, [0.0], on_perception=keep)
    session.geometric.tracker.keyframe.depth_scale = 1.25   # the map's scale is not this model depth's
    frames += slide(session, np.linspace(0.03, 0.6, 20), t0=10.0 + 1 / 30, on_perception=keep)
    scaled = [i for i, _ in placed if frames[i].tracking.depth_scale != 1.0]
    assert len(placed) >= 3 and scaled
    for i, depth in placed:
        np.testing.assert_allclose(depth, model_depth[i] * frames[i].tracking.depth_scale, rtol=1e-6)


def test_frames_between_keyframes_are_kept_with_their_keyframe_and_views_counted(pipeline):
    """A frame named between keyframes lands where the keyframes put the object, adds a view
    and moves with its keyframe; thresholds beyond the path name keyframes only."""
    session, _ = mapped_session(pipeline)
    only_keyframes, frames = mapped_session(pipeline, object_view_translation=100.0, object_view_rotation=10.0)
    keyframes = [f for f in frames if f.tracking.keyframe is not None]
    assert [f for f in frames if f.objects_changed] == keyframes
    chair, = session.objects.map.instances()
    chair_kf, = only_keyframes.objects.map.instances()
    assert chair.n_views > chair_kf.n_views == len(keyframes)
    assert np.allclose(chair.centroid[1:], chair_kf.centroid[1:], atol=0.02)   # on the wall (x: more of it seen)
    shift = np.eye(4)
    shift[:3, 3] = [0.0, 0.5, 0.0]
    session.objects.map.relocate({k: shift @ session.mount @ session.geometric.graph.T_map_keyframe(k)
                                  for k in session.geometric.graph.keyframes})
    moved, = session.objects.map.instances()
    assert np.allclose(moved.centroid - chair.centroid, [0.0, 0.5, 0.0], atol=1e-6)


def test_a_camera_standing_still_names_its_view_once(pipeline):
    session = Session(pipeline, SessionConfig(), mount=np.eye(4))
    frames = slide(session, np.zeros(12))
    assert [f.objects_changed for f in frames] == [True] + [False] * 11


def test_object_answers_come_from_the_map_in_the_requested_frame(pipeline):
    session, _ = mapped_session(pipeline)
    chairs = session.objects.map.instances()
    count = session.answer('How many chairs do you see?', now=20.0)
    assert count.success and count.value == len(chairs) and count.frame == 'map'
    np.testing.assert_allclose(np.sort(count.points, axis=0),
                               np.sort(np.stack([c.centroid for c in chairs]), axis=0), atol=1e-9)
    where = session.answer('Where is the chair?', now=20.0, target_frame='odom')
    assert where.success and where.frame == 'odom' and 'in odom' in where.answer
    T_map_odom = session.pose_graph.T_map_odom
    back = transform_points(T_map_odom, where.points)      # odom -> map: one of the chairs
    assert min(np.linalg.norm(c.centroid - back[0]) for c in chairs) < 1e-6
    assert f'x={where.points[0][0]:.2f}' in where.answer        # the text's numbers are the points'


def test_answers_measured_from_the_camera_use_its_latest_pose_in_the_requested_frame(pipeline):
    session, _ = mapped_session(pipeline)
    camera_odom = session.memory.snapshot().trajectory_poses[-1][:3, 3]
    camera_map = transform_points(session.pose_graph.T_map_odom, camera_odom)
    nearest = session.answer('What is the closest object to me?', now=20.0)
    assert nearest.success and nearest.category == 'rel_distance' and nearest.frame == 'map'
    np.testing.assert_allclose(nearest.points[0], camera_map, atol=1e-9)
    assert nearest.value == pytest.approx(np.linalg.norm(nearest.points[1] - camera_map))
    assert min(np.linalg.norm(c.centroid - nearest.points[1]) for c in session.objects.map.instances()) < 1e-9
    ahead = session.answer('What is in front of me?', now=20.0, target_frame='odom')
    assert ahead.success and ahead.category == 'around' and ahead.frame == 'odom' and 'chair' in ahead.answer
    assert ahead.value == len(ahead.points) >= 1    # the chairs the camera looked at lie ahead of it


def test_the_rooms_floor_is_mapped_with_the_objects_and_answered_in_the_requested_frame(pipeline):
    session, frames = mapped_session(pipeline)
    keyframes = sum(f.tracking is not None and f.tracking.keyframe is not None for f in frames)
    assert len(session.objects.map.room) == keyframes      # each keyframe left its depth's points (not the views between)
    up_map = -session.mount[:3, 1]                         # odom optical: the first frame's up; map == odom here
    floor = session.objects.map.room.outline(session.pose_graph.T_map_odom[:3, :3] @ up_map)
    assert session.room_outline().area_m2 == pytest.approx(floor.area_m2)   # what ~/objects draws
    np.testing.assert_allclose(session.objects_up(), session.pose_graph.T_map_odom[:3, :3] @ up_map)
    in_map = session.answer('How big is this room?', now=20.0)
    assert in_map.success and in_map.unit == 'm^2' and in_map.value == pytest.approx(floor.area_m2)
    np.testing.assert_allclose(in_map.points, floor.outline, atol=1e-9)
    in_odom = session.answer('What is the floor area of this room?', now=20.0, target_frame='odom')
    assert in_odom.frame == 'odom' and in_odom.value == pytest.approx(in_map.value)   # an area has no frame
    np.testing.assert_allclose(transform_points(session.pose_graph.T_map_odom, in_odom.points), in_map.points,
                               atol=1e-9)


def test_objects_the_map_lacks_are_said_so_and_other_questions_pass_on(pipeline):
    session, _ = mapped_session(pipeline)
    piano = session.answer('Where is the sofa?', now=20.0)
    assert not piano.success and 'I have not seen a sofa' in piano.answer and piano.not_seen
    travelled = session.answer('How far have I travelled?', now=20.0)   # the trajectory's
    assert travelled.success and travelled.unit == 'm' and travelled.value == pytest.approx(1.2, rel=0.05)
    assert not travelled.not_seen


def test_resets_empty_the_object_map_and_disabled_means_none(pipeline):
    session, _ = mapped_session(pipeline)
    assert session.objects.map.instances()
    session.reset_map()
    assert not session.objects.map.instances(min_views=1)
    slide(session, np.linspace(0.0, 1.2, 40), t0=30.0)
    session.reset()
    assert not session.objects.map.instances(min_views=1)
    assert Session(pipeline, SessionConfig(objects_enabled=False), mount=np.eye(4)).objects is None
    assert Session(pipeline, SessionConfig(odometry_method='learned'), mount=np.eye(4)).objects is None


def test_the_object_maps_up_axis_comes_from_the_mount(pipeline):
    from geovr_ros.geometry import T_BODY_OPTICAL
    assert Session(pipeline, SessionConfig(), mount=np.eye(4)).objects.map.config.vertical_axis == 1  # odom optical
    session = Session(pipeline, SessionConfig())
    assert session.objects.map.config.vertical_axis is None  # no mount yet
    session.set_mount(T_BODY_OPTICAL)  # odom_child camera: REP 103 body axes, z up
    assert session.objects.map.config.vertical_axis == 2


def test_the_object_map_believes_instances_as_the_vocabulary_says(pipeline, tmp_path):
    from geovr_ros.objects import load_vocabulary
    session = Session(pipeline, SessionConfig(), mount=np.eye(4))
    assert session.objects.map.config.verifier == load_vocabulary().verifier is not None
    session.set_mount(np.eye(4))   # the up axis changes, the verifier stays
    assert session.objects.map.config.verifier is not None
    off = tmp_path / 'off.yaml'
    off.write_text('verifier: null\n')
    assert Session(pipeline, SessionConfig(object_vocabulary=str(off)), mount=np.eye(4)).objects.map.config.verifier is None


def test_a_bad_vocabulary_file_is_refused_by_name(pipeline, tmp_path):
    from geovr_ros.objects import VocabularyError
    bad = tmp_path / 'vocabulary.yaml'
    bad.write_text('categories:\n  chair:\n    colour: red\n')
    with pytest.raises(VocabularyError, match='colour'):
        Session(pipeline, SessionConfig(object_vocabulary=str(bad)), mount=np.eye(4))


def test_a_category_head_names_cells_with_categories_the_vocabulary_lacked(duck_model):
    from geovr_ros.inference import PerceptionPipeline
    with PerceptionPipeline(duck_model, backend='onnxruntime') as pipeline:
        assert pipeline.cell_categories == ('chair', 'toy duck')
        session, frames = mapped_session(pipeline)
        assert 'toy duck' in session.objects.vocabulary.names      # added: the shipped YAML lacks it
        ducks = session.objects.map.instances()
        assert ducks and {d.category for d in ducks} == {'toy duck'}
        count = session.answer('How many toy ducks are there?', now=20.0)
        assert count.success and count.value == len(ducks)
        frame = pipeline.preprocess(np.zeros((48, 64, 3), np.uint8), np.array([[50.0, 0, 32], [0, 50.0, 24],
                                                                               [0, 0, 1]]))
        logits = pipeline.cell_category_logits(frame)
        assert logits.shape == (48 // PATCH, 64 // PATCH, 3) and np.all(logits.argmax(-1) == 1)
        assert pipeline.cell_logits(frame).shape == (48 // PATCH, 64 // PATCH, 1000)


def test_category_logits_without_their_names_are_refused(tmp_path):
    from geovr_ros.inference import MetadataError, PerceptionPipeline
    directory = export_head_classifier(make_split_contract_model(tmp_path), ['toy duck'])  # 1 name, 3 columns
    with pytest.raises(MetadataError, match='1 cell categories, category_logits has 3 columns'):
        PerceptionPipeline(directory, backend='onnxruntime')


def test_the_object_map_is_saved_and_loaded_with_the_map(pipeline, tmp_path):
    session, _ = mapped_session(pipeline)
    chairs = session.objects.map.instances()
    path = tmp_path / 'map.npz'
    assert session.save_map(str(path)) >= 1
    other = Session(pipeline, SessionConfig(), mount=np.eye(4))
    other.load_map(str(path))
    loaded = other.objects.map.instances()
    assert [c.category for c in loaded] == [c.category for c in chairs]
    for a, b in zip(chairs, loaded):
        np.testing.assert_allclose(a.centroid, b.centroid)
        assert all(k < 0 for k in b.keyframes)   # never moved by the new session's pose graph
    up = np.array([0.0, -1.0, 0.0])
    assert other.objects.map.room.outline(up).area_m2 == pytest.approx(session.objects.map.room.outline(up).area_m2)
    assert all(k < 0 for k in other.objects.map.room.to_arrays()['keyframe'])
    answer = other.answer('How many chairs do you see?', now=20.0)   # before any frame: refused
    assert not answer.success


def test_a_map_with_a_damaged_object_map_is_refused_whole(pipeline, tmp_path):
    from geovr_ros.localization import KeyframeMap, MapFileError
    session, _ = mapped_session(pipeline)
    path = tmp_path / 'map.npz'
    session.save_map(str(path))
    saved = KeyframeMap.load(str(path))
    arrays = {k: v for k, v in saved.attachments.items() if k != '_json'}
    arrays['objects_n_views'] = arrays['objects_n_views'] * 0      # n_views must be >= 1
    saved.save(str(path), arrays, saved.document)
    before = session.objects.map.instances()
    with pytest.raises(MapFileError, match='object map'):
        session.load_map(str(path))
    assert [c.instance_id for c in session.objects.map.instances()] == [c.instance_id for c in before]


def test_a_multiple_choice_question_the_map_answers_in_words_goes_to_a_model(pipeline):
    session, _ = mapped_session(pipeline)
    question = ('What will be the first-time appearance order of the following categories: chair, sofa? '
                'Options: (A) chair, sofa; (B) sofa, chair.')
    answer = session.answer(question, now=20.0)
    assert not answer.answer.startswith('first seen')   # the chain (here: no language model) has it
    assert session.answer('In what order did you first see the chair and the sofa?', now=20.0).answer
