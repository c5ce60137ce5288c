"""The ROS-free session (`geovr_ros.session`) in-process on frames: stamp checks, time jumps,
keyframes while moving, trajectory answers, resets, maps, and no rclpy anywhere.

Frames look at a textured wall 2 m ahead while the camera slides sideways, so the true path
is known; tracking is given the wall's depth (the tiny test model's depth is not geometry).
"""
from __future__ import annotations

import subprocess
import sys
import textwrap
import dataclasses
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip('onnxruntime', reason='onnxruntime is not installed')
cv2 = pytest.importorskip('cv2', reason='OpenCV is not installed')
from test_inference_contract_model import make_contract_model, make_split_contract_model  # noqa: E402

from geovr_ros.geometry import T_BODY_OPTICAL, make_pose, path_length, rotate_covariance  # noqa: E402
from geovr_ros.localization import MapFileError  # noqa: E402
from geovr_ros.odometry import StampCheck  # noqa: E402
from geovr_ros.session import FrameDrop, ProcessedFrame, Session, SessionConfig  # noqa: E402

WIDTH, HEIGHT, FOCAL, WALL_M = 320, 240, 250.0, 2.0
K = np.array([[FOCAL, 0, (WIDTH - 1) / 2], [0, FOCAL, (HEIGHT - 1) / 2], [0, 0, 1]])
WALL_DEPTH = (np.full((HEIGHT, WIDTH), WALL_M), K)
_TEXTURE = cv2.GaussianBlur((np.random.default_rng(0).random((HEIGHT + 200, 1600, 3)) * 255)
                            .astype(np.uint8), (5, 5), 0)


def wall(x_m: float) -> np.ndarray:
    """(H, W, 3) uint8 view of the wall with the camera x_m metres to the right (optical x)."""
    shift = int(round(FOCAL * x_m / WALL_M)) + 200
    return np.ascontiguousarray(_TEXTURE[100:100 + HEIGHT, shift:shift + WIDTH])


@pytest.fixture(scope='module')
def split_model(tmp_path_factory) -> Path:
    return make_split_contract_model(tmp_path_factory.mktemp('split'))


@pytest.fixture(scope='module')
def single_model(tmp_path_factory) -> Path:
    return make_contract_model(tmp_path_factory.mktemp('single'))


@pytest.fixture
def pipeline(split_model):
    from geovr_ros.inference import PerceptionPipeline
    with PerceptionPipeline(split_model, backend='onnxruntime') as loaded:
        yield loaded


def session_of(pipeline, **config) -> Session:
    return Session(pipeline, SessionConfig(**config), mount=np.eye(4))


def slide(session: Session, xs, t0: float = 10.0, dt: float = 1 / 30, **kwargs) -> list:
    return [session.process(wall(x), K, t0 + i * dt, depth=WALL_DEPTH, **kwargs)
            for i, x in enumerate(xs)]


def test_session_runs_without_rclpy(split_model):
    """Importing the session and processing frames never imports rclpy (nor the node)."""
    code = textwrap.dedent(f'''
        import sys
        import numpy as np
        from geovr_ros.inference import PerceptionPipeline
        from geovr_ros.session import Session
        session = Session(PerceptionPipeline({str(split_model)!r}, backend='onnxruntime'),
                          mount=np.eye(4))
        rng = np.random.default_rng(0)
        K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
        for i in range(3):
            assert not session.process(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), K,
                                       i * 0.1).dropped
        assert session.answer('how many keyframes?', now=1.0).success
        loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rcl_interfaces'))
        print('LOADED', loaded)
    ''')
    run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'LOADED []' in run.stdout, run.stdout


def test_config_defaults_are_the_node_parameters():
    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_PARAMS
    defaults = {param.name: param.default for param in GEOVR_NODE_PARAMS}
    for field in fields(SessionConfig):
        assert field.name in defaults, f'{field.name} is not a geovr_node parameter'
        assert field.default == defaults[field.name], field.name
    assert SessionConfig.from_parameters(defaults) == SessionConfig()
    with pytest.raises(KeyError, match='odometry_method'):
        SessionConfig.from_parameters({k: v for k, v in defaults.items() if k != 'odometry_method'})
    with pytest.raises(ValueError, match='odometry_method'):
        SessionConfig(odometry_method='magic')


def test_place_candidates_outside_their_range_are_refused_by_the_node_and_the_session():
    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_RULES
    from geovr_ros.ros.parameters import parameter_problem
    for bad in (0, -3, 101):
        assert 'match_candidates' in parameter_problem('match_candidates', bad, GEOVR_NODE_RULES)
    assert parameter_problem('match_candidates', 3, GEOVR_NODE_RULES) is None
    with pytest.raises(ValueError, match='match_candidates'):
        SessionConfig(match_candidates=0)


def test_object_view_steps_below_zero_are_refused_by_the_node_and_the_session():
    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_RULES
    from geovr_ros.ros.parameters import parameter_problem
    for name in ('object_view_translation', 'object_view_rotation'):
        assert name in parameter_problem(name, -0.1, GEOVR_NODE_RULES)
        assert parameter_problem(name, 0.0, GEOVR_NODE_RULES) is None     # 0: every tracked frame
        for bad in (-0.1, float('nan')):
            with pytest.raises(ValueError, match=name):
                SessionConfig(**{name: bad})


def test_objects_publish_period_outside_0_to_an_hour_is_refused_by_the_node():
    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_RULES
    from geovr_ros.ros.parameters import parameter_problem
    for bad in (-1.0, 3601.0, float('nan')):
        assert 'objects_publish_period' in parameter_problem('objects_publish_period', bad, GEOVR_NODE_RULES)
    for good in (0.0, 1.0):                                              # 0: every change goes out
        assert parameter_problem('objects_publish_period', good, GEOVR_NODE_RULES) is None


def test_input_timeout_outside_0_to_an_hour_is_refused_by_the_node():
    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_RULES
    from geovr_ros.ros.parameters import parameter_problem
    for bad in (-0.5, 3601.0, float('nan'), float('inf')):
        assert 'input_timeout' in parameter_problem('input_timeout', bad, GEOVR_NODE_RULES)
    for good in (0.0, 5.0):                                              # 0: never explained
        assert parameter_problem('input_timeout', good, GEOVR_NODE_RULES) is None


def test_no_mount_is_an_error(pipeline):
    with pytest.raises(RuntimeError, match='set_mount'):
        Session(pipeline).process(wall(0), K, 1.0)


def test_repeated_and_out_of_order_stamps_are_typed_drops(pipeline):
    session = session_of(pipeline)
    assert isinstance(session.process(wall(0), K, 5.0), ProcessedFrame)
    repeated = session.process(wall(0), K, 5.0)
    assert repeated == FrameDrop('repeated', 'repeated stamp: 5.000000 after 5.000000')
    older = session.process(wall(0), K, 4.5)
    assert older.reason == 'out_of_order' and older.dropped
    assert older.message == 'stamp older than the previous frame: 4.500000 after 5.000000'
    assert session.frames_processed == 1
    assert not session.process(wall(0), K, 5.1).dropped
    unstamped = session_of(pipeline)   # a driver that leaves every header stamp at 0
    assert not unstamped.process(wall(0), K, 0.0).dropped
    assert unstamped.process(wall(0), K, 0.0).message == (
        'repeated stamp: 0.000000 after 0.000000 (every image stamped 0: does the camera driver stamp its images?)')


def test_a_bad_image_is_a_typed_drop(pipeline):
    session = session_of(pipeline)
    drop = session.process(np.zeros((240, 320), np.uint8), K, 1.0)
    assert drop.reason == 'bad_input' and drop.message.startswith('preprocessing failed:')


def test_time_jump_backwards_restarts_only_when_confirmed(pipeline):
    session = session_of(pipeline)
    slide(session, [0.0, 0.02, 0.04, 0.06], t0=100.0)
    assert session.answer('how far have I travelled?', now=100.1).value > 0.05
    pending = session.process(wall(0.08), K, 10.0, depth=WALL_DEPTH)
    assert pending.reason == 'stamp_jump' and 'ignored unless 3 frames in a row' in pending.message
    # a frame on the old timeline cancels the candidate
    assert not session.process(wall(0.08), K, 100.2, depth=WALL_DEPTH).dropped
    assert session.process(wall(0.1), K, 10.0, depth=WALL_DEPTH).reason == 'stamp_jump'
    assert session.process(wall(0.1), K, 10.1, depth=WALL_DEPTH).reason == 'stamp_jump'
    restarted = session.process(wall(0.1), K, 10.2, depth=WALL_DEPTH)
    assert restarted.stamp_check == StampCheck.JUMP_BACK
    np.testing.assert_allclose(restarted.T_odom_cam, np.eye(4))
    answer = session.answer('how long have I been running?', now=10.2)
    assert answer.success and answer.value == 0.0      # the memory restarted with the frame
    assert session.answer('how far have I travelled?', now=10.2).value == 0.0


def test_keyframes_while_moving_and_the_distance_travelled(pipeline):
    """A 0.8 m slide: tracking keyframes every ~0.25 m, in the pose graph; the distance answer
    is the trajectory's length at path_resolution and within 5 % of the true path."""
    session = session_of(pipeline)
    xs = np.arange(40) * 0.02
    frames = slide(session, xs)
    assert all(isinstance(f, ProcessedFrame) for f in frames)
    assert all(f.tracking.status in ('initialised', 'tracking') for f in frames)
    keyframes = [i for i, f in enumerate(frames) if f.keyframe]
    assert keyframes[0] == 0 and len(keyframes) >= 3
    assert len(session.pose_graph) == len(keyframes)
    positions = np.stack([f.T_odom_cam[:3, 3] for f in frames])
    np.testing.assert_allclose(positions[:, 0], xs, atol=0.02)
    answer = session.answer('how far have I travelled?', now=20.0)
    assert answer.success and answer.unit == 'm' and answer.stamp == frames[-1].stamp
    assert answer.value == pytest.approx(path_length(positions, session.config.path_resolution))
    assert answer.value == pytest.approx(xs[-1], rel=0.05)
    speed = np.mean([f.odometry.linear_velocity[0] for f in frames[1:]])   # along optical x
    assert speed == pytest.approx(0.02 * 30, rel=0.1)                        # m/s
    assert frames[-1].covariance.shape == (6, 6)
    assert frames[-1].T_map_odom is not None and frames[-1].map_covariance.shape == (6, 6)
    # the map pose's: the newest keyframe's marginal and tracking's from it, both in map axes
    in_graph = np.linalg.inv(session.mount) @ frames[-1].T_map_cam                 # the camera in the graph's map
    graph_part = rotate_covariance(session.pose_graph.covariance(in_graph[:3, 3]), session.mount[:3, :3])
    tracking_part = rotate_covariance(frames[-1].covariance, frames[-1].T_map_odom[:3, :3])
    np.testing.assert_allclose(frames[-1].map_covariance, graph_part + tracking_part, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(frames[-1].map_covariance) > 0)
    timings = frames[-1].timings_ms
    assert {'preprocess_ms', 'model_ms', 'tracking_ms', 'graph_ms', 'odometry_ms',
            'localization_ms'} <= set(timings)
    diagnostics = session.diagnostics()
    assert diagnostics['tracking_keyframes'] == str(len(keyframes))
    assert diagnostics['tracking_by'] in ('flow', 'descriptors')
    assert 0 <= int(diagnostics['tracking_flow_frames']) <= len(frames) - 1
    assert 0 <= int(diagnostics['tracking_shift_recoveries']) <= len(frames) - 1
    assert diagnostics['tracking_status'] == 'tracking' and diagnostics['map_odom_source'] == 'pose graph'
    assert diagnostics['tracking_failed_in_row'] == '0'


def test_answers_in_every_target_frame(pipeline):
    mount = np.eye(4)
    mount[:3, 3] = (0.1, 0.0, 0.3)
    mount = mount @ T_BODY_OPTICAL
    session = Session(pipeline, SessionConfig(odom_child='base', base_frame='base_link'),
                      mount=mount)
    frames = slide(session, np.arange(10) * 0.02, camera_frame='cam_optical')
    last = frames[-1].T_odom_cam
    where = session.answer('where am I?', now=11.0, target_frame='odom')
    assert where.frame == 'odom'
    np.testing.assert_allclose(where.pose, last, atol=1e-9)
    in_camera = session.answer('where am I?', now=11.0, target_frame='cam_optical')
    np.testing.assert_allclose(in_camera.pose, np.eye(4), atol=1e-9)
    assert 'x=0.00 m, y=0.00 m, z=0.00 m in cam_optical' in in_camera.answer   # said in the frame asked for
    speed = session.answer('how fast am I moving?', now=11.0, target_frame='cam_optical')
    assert speed.category == 'speed' and speed.unit == 'm/s', speed   # the trajectory's, not the objects'
    assert speed.value == pytest.approx(0.02 * 30, abs=0.05)          # 2 cm a frame at 30 Hz, in any frame
    in_base = session.answer('where am I?', now=11.0, target_frame='base_link')
    np.testing.assert_allclose(in_base.pose, mount, atol=1e-9)   # the mount, seen from base
    assert 'x=0.10 m, y=0.00 m, z=0.30 m in base_link' in in_base.answer
    default = session.answer('where am I?', now=11.0)
    assert default.frame == 'map'     # mapping: map -> odom from the pose graph
    np.testing.assert_allclose(default.pose, frames[-1].T_map_odom @ last, atol=1e-9)
    unknown = session.answer('where am I?', now=11.0, target_frame='world')
    assert not unknown.success and unknown.stamp is None
    assert unknown.message == ("unknown target_frame 'world': use map, odom, cam_optical or "
                               "empty")
    old = session.answer('where am I?', now=20.0, max_age=1.0)
    assert not old.success and old.message.startswith('memory is 9.')
    assert session.answer('\x00', now=11.0).message.startswith('question rejected:')
    declined = session.answer('what colour is the chair?', now=11.0)
    assert not declined.success and declined.stamp == frames[-1].stamp


def test_map_frame_is_refused_until_localized(pipeline):
    session = session_of(pipeline, odometry_method='learned')   # no pose graph
    slide(session, [0.0, 0.02])
    session.reset()          # a restart with keyframes in the map: map -> odom is unknown
    assert session.process(wall(0.04), K, 11.0).T_map_odom is None
    refused = session.answer('where am I?', now=11.0, target_frame='map')
    assert refused.message == 'map -> odom is not known yet (not localized); ask in odom'
    assert session.answer('where am I?', now=11.0).frame == 'odom'


def test_reset_clears_memory_and_restarts_odometry(pipeline):
    session = session_of(pipeline)
    slide(session, np.arange(15) * 0.02)
    assert len(session.memory.snapshot().trajectory_stamps) == 15
    session.reset()
    assert session.answer('how far have I travelled?', now=11.0).message == \
        'no frame processed yet: memory is empty'
    assert len(session.memory) == 0 and session.diagnostics()['tracking_status'] == 'not started'
    first = session.process(wall(0.3), K, 12.0, depth=WALL_DEPTH)
    np.testing.assert_allclose(first.T_odom_cam, np.eye(4))
    assert first.keyframe and first.tracking.status == 'initialised'
    assert session.frames_processed == 16                # the session's count is not reset


def test_one_reference_and_no_image_prepared_twice(pipeline):
    """The odometry reference is the previous frame's prepared input, kept once; every frame
    is preprocessed and encoded once; place verification reuses the kept keyframe inputs and
    their depth (no model run, no map image prepared again)."""
    prepared, encoded = [], []
    preprocess, encode = pipeline.preprocess, pipeline.encoder.infer

    class CountingPreprocess:
        input_size = preprocess.input_size

        def __call__(self, *args):
            prepared.append(preprocess(*args))
            return prepared[-1]

    pipeline.preprocess = CountingPreprocess()
    pipeline.encoder.infer = lambda inputs: encoded.append(1) or encode(inputs)
    session = session_of(pipeline, localization_enabled=False)
    slide(session, np.arange(12) * 0.02)
    assert session.learned.reference is prepared[-1]
    assert len(prepared) == 12 and len(encoded) == 12
    # out and back with a map keyframe every 0.1 m and place recognition on every frame
    session = session_of(pipeline, keyframe_translation=0.1, relocalize_period=1)
    prepared.clear()
    encoded.clear()
    xs = list(np.arange(0, 0.6, 0.02)) + list(np.arange(0.6, -0.01, -0.02))
    slide(session, xs)
    assert sum(session.place_matches.values()) > 0     # verified (the toy model's depth decides which pass)
    assert len(prepared) == len(xs) and len(encoded) == len(xs)   # on kept inputs and depth


def test_learned_odometry_chains_the_pose_head(pipeline):
    session = session_of(pipeline, odometry_method='learned')
    frames = slide(session, np.arange(6) * 0.02)
    assert all(f.tracking is None and f.covariance is None for f in frames)
    chained = np.eye(4)
    for frame in frames[1:]:
        chained = chained @ frame.perception.rel_pose
    np.testing.assert_allclose(frames[-1].T_odom_cam, chained, atol=1e-9)
    assert all(f.odometry is f.learned for f in frames)
    assert 'tracking_status' not in session.diagnostics()


def test_depth_is_handed_out_before_odometry(pipeline):
    session = session_of(pipeline)
    seen = []
    frame = session.process(wall(0), K, 1.0, on_perception=lambda result: seen.append(
        (result, len(session.memory.snapshot().trajectory_stamps))))
    assert seen == [(frame.perception, 0)]


def test_maps_save_load_and_reset(pipeline, tmp_path):
    session = session_of(pipeline, keyframe_translation=0.1)
    slide(session, np.arange(20) * 0.02)
    path = tmp_path / 'map.npz'
    count = session.save_map(str(path))
    assert count == len(session.localizer.map) >= 2
    graph = session.pose_graph.graph
    saved_poses = {key: graph.pose(key) for key in graph.keys}
    session.reset_map()
    assert len(session.localizer.map) == 0 and len(session.pose_graph) == 0
    assert session.answer('where am I?', now=11.0).frame == 'map'    # map == odom
    assert session.load_map(str(path)) == count
    assert not session.localizer.mapping
    loaded = session.loaded_pose_graph                                # the graph came back whole
    assert loaded.keys == sorted(saved_poses) and len(loaded.odometry) == len(saved_poses) - 1
    for key, pose in saved_poses.items():
        np.testing.assert_allclose(loaded.pose(key), pose, atol=1e-4)
    assert session.diagnostics()['loaded_pose_graph'].startswith(f'{len(saved_poses)} keyframes')
    assert session.answer('where am I?', now=11.0).frame == 'odom'   # not localized yet
    (tmp_path / 'bad.npz').write_bytes(b'not a zip')
    with pytest.raises(MapFileError, match='unreadable'):
        session.load_map(str(tmp_path / 'bad.npz'))
    assert len(session.localizer.map) == count                        # the live map is kept


def test_single_graph_models_run_the_same_session(single_model):
    from geovr_ros.inference import PerceptionPipeline
    with PerceptionPipeline(single_model, backend='onnxruntime') as pipeline:
        assert pipeline.graphs == 'single'
        frames = slide(session_of(pipeline), np.arange(8) * 0.02)
    assert all(f.tracking.status != 'fallback' for f in frames)
    assert frames[-1].T_odom_cam[0, 3] == pytest.approx(0.14, abs=0.02)


def test_tracking_bench_runs_the_sessions_geometric_step(tmp_path, capsys):
    """`python -m geovr_ros.tracking.bench` on a 7-Scenes-style folder of the slide with its
    true depth: GeometricOdometry's keyframes, no failure, the timing lines."""
    from geovr_ros.tracking.bench import main as bench_main
    for i, x in enumerate(np.arange(12) * 0.02):
        cv2.imwrite(str(tmp_path / f'frame-{i:06d}.color.png'), wall(x)[..., ::-1])
        cv2.imwrite(str(tmp_path / f'frame-{i:06d}.depth.png'),
                    np.full((HEIGHT, WIDTH), WALL_M * 1000, np.uint16))
        pose = np.eye(4)
        pose[0, 3] = x
        np.savetxt(tmp_path / f'frame-{i:06d}.pose.txt', pose)
    np.savetxt(tmp_path / 'camera-intrinsics.txt', K)
    assert bench_main([str(tmp_path), '--max-frames', '12']) == 0
    out = capsys.readouterr().out
    assert '12 frames 320x240' in out and '0 tracking failures' in out and 'tracking      median' in out


def test_floor_camera_height_rescales_every_length_of_the_model(pipeline):
    """With floor_camera_height set, what the session passes on (the depth the node publishes,
    the scale, token positions) is the model's times the floor's factor; up comes from odom."""
    from test_geometry_floor import K as FLOOR_K, ray_cast
    plain = session_of(pipeline)
    assert plain.floor is None
    session = session_of(pipeline, floor_camera_height=1.2)
    up = session._up_in_camera()
    assert np.allclose(up, [0, -1, 0])                            # odom optical: the first frame's up
    floor_depth, floor_up = ray_cast(1.2, 20.0)
    for _ in range(3):                                            # three frames saw the floor at half the height
        session.floor.update(floor_depth * 0.5, FLOOR_K, floor_up)
    assert session.floor.scale == pytest.approx(2.0, rel=0.02)
    seen = {}
    frame = session.process(wall(0.0), K, 1.0, on_perception=lambda result: seen.setdefault('scaled', result))
    reference = plain.process(wall(0.0), K, 1.0, on_perception=lambda result: seen.setdefault('model', result))
    factor = session.floor.scale
    assert not frame.dropped and not reference.dropped and factor == pytest.approx(2.0, rel=0.05)
    assert np.allclose(seen['scaled'].depth, seen['model'].depth * factor, rtol=1e-5)
    assert seen['scaled'].scale == pytest.approx(seen['model'].scale * factor)
    assert np.allclose(seen['scaled'].token_xyz, seen['model'].token_xyz * factor, rtol=1e-5)
    assert float(session.diagnostics()['floor_scale']) == pytest.approx(factor, abs=1e-3)
    assert int(session.diagnostics()['floor_frames']) >= 3 and 'floor_scale' not in plain.diagnostics()
    with pytest.raises(ValueError, match='floor_camera_height'):
        SessionConfig(floor_camera_height=-1.0)


class TwiceTooFar:
    """The test model's outputs with its depth the wall's at twice its distance: a model whose
    depth has the right shape and the wrong scale (the tiny model's own depth is not geometry)."""

    def __init__(self, pipeline):
        self._pipeline = pipeline

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def run(self, reference, current):
        result = self._pipeline.run(reference, current)
        return dataclasses.replace(result, depth=np.full_like(result.depth, 2 * WALL_M))


def test_a_reference_odometry_gives_the_models_depth_its_scale(pipeline):
    """scale_odometry_topic: the camera slides 1 cm a frame past the wall, a wheel odometry
    says so, and the model reads the wall twice too far: after 5 cm of reference motion every
    length the session passes on (the depth the node publishes) takes the reference's scale.
    The factor comes out between the truth's 0.5 and 0.8: seen square-on, a flat wall lets PnP
    take part of a sideways slide for a turn (docs/ros.md has the figures on real recordings)."""
    session = Session(TwiceTooFar(pipeline), SessionConfig(scale_odometry_topic='wheel/odometry', scale_odometry_min_motion=0.05), mount=np.eye(4))
    plain = Session(TwiceTooFar(pipeline), SessionConfig(), mount=np.eye(4))
    published, factors = [], []
    for i in range(60):
        stamp, x = 10.0 + i / 30, 0.01 * i
        session.add_reference_pose(stamp, make_pose(np.eye(3), np.array([x, 0.0, 0.0])))
        factors.append(session.odometry_scale.scale)
        frame = session.process(wall(x), K, stamp, on_perception=lambda result: published.append(result))
        reference = plain.process(wall(x), K, stamp)
        assert not frame.dropped and not reference.dropped
    assert session.odometry_scale.samples >= 3 and factors[:5] == [1.0] * 5
    assert 0.45 < session.odometry_scale.scale < 0.8
    assert np.allclose([np.median(result.depth) for result in published], 4.0 * np.array(factors), rtol=1e-5)
    assert float(session.diagnostics()['odometry_scale']) == pytest.approx(session.odometry_scale.scale, abs=1e-3)
    assert 'odometry_scale' not in plain.diagnostics()
    with pytest.raises(RuntimeError, match='scale_odometry_topic'):
        plain.add_reference_pose(1.0, np.eye(4))
    with pytest.raises(ValueError, match='4x4'):
        session.add_reference_pose(13.0, np.eye(3))
    with pytest.raises(ValueError, match='one scale source'):
        SessionConfig(scale_odometry_topic='odom', floor_camera_height=1.0)
    with pytest.raises(ValueError, match="odometry_method 'geometric'"):
        SessionConfig(scale_odometry_topic='odom', odometry_method='learned')
    with pytest.raises(ValueError, match='scale_odometry_min_motion'):
        SessionConfig(scale_odometry_min_motion=0.0)


def test_a_wheel_odometry_carries_the_pose_through_frames_tracking_fails_on(pipeline, caplog):
    """tracking_fallback 'reference': the camera slides past the wall, then sees a blank view
    for five frames while the wheel odometry says it turns 0.1 rad a frame: each blank frame
    takes that turn (the motion model would carry the slide for three frames and then stand)."""
    from geovr_ros.geometry import invert_pose, so3_exp, so3_log
    config = SessionConfig(scale_odometry_topic='odom', odom_child='base', tracking_fallback='reference')
    session = Session(TwiceTooFar(pipeline), config, mount=np.eye(4))
    blank = np.full_like(wall(0.0), 128)
    poses = []
    for i in range(13):
        stamp, x = 10.0 + i / 30, 0.01 * min(i, 7)
        turn = so3_exp(np.array([0.0, 0.1 * max(0, i - 7), 0.0]))
        session.add_reference_pose(stamp, make_pose(turn, np.array([x, 0.0, 0.0])))
        with caplog.at_level('WARNING'):
            frame = session.process(wall(x) if i <= 7 else blank, K, stamp)
        assert not frame.dropped
        poses.append(frame.T_odom_cam)
    assert session.geometric.tracker.reference_fallbacks == 5
    assert session.diagnostics()['tracking_reference_fallbacks'] == '5'
    for before, after in zip(poses[7:], poses[8:]):
        np.testing.assert_allclose(invert_pose(before) @ after, make_pose(so3_exp(np.array([0.0, 0.1, 0.0])), np.zeros(3)),
                                   atol=1e-9)
    assert "the reference odometry's motion gives the pose" in caplog.text
    # an odometry a frame late (its pose at a frame's stamp arrives after the frame): carried on
    lagging = Session(TwiceTooFar(pipeline), config, mount=np.eye(4))
    late = []
    for i in range(13):
        stamp, x = 10.0 + i / 30, 0.01 * min(i, 7)
        if i >= 2:
            previous = 10.0 + (i - 1) / 30
            lagging.add_reference_pose(previous, make_pose(so3_exp(np.array([0.0, 0.1 * max(0, i - 8), 0.0])),
                                                           np.array([0.01 * min(i - 1, 7), 0.0, 0.0])))
        late.append(lagging.process(wall(x) if i <= 7 else blank, K, stamp).T_odom_cam)
    assert lagging.geometric.tracker.reference_fallbacks == 5
    turns = [np.linalg.norm(so3_log((invert_pose(a) @ b)[:3, :3])) for a, b in zip(late[7:], late[8:])]
    assert turns[0] == pytest.approx(0.0, abs=1e-9) and turns[1:] == pytest.approx([0.1] * 4, abs=1e-9)
    with pytest.raises(ValueError, match="tracking_fallback 'reference'"):
        SessionConfig(tracking_fallback='reference', odom_child='base')             # no reference odometry
    with pytest.raises(ValueError, match="odom_child 'base'"):
        SessionConfig(tracking_fallback='reference', scale_odometry_topic='odom')   # no mount to turn it


def test_floor_height_from_mount_takes_the_cameras_height_above_the_base(pipeline, caplog):
    """floor_height_from_mount (odom_child base): the floor's scale at the mount's height of the
    optical centre above base_frame, taken when the mount is set; a mount at or below the
    base's origin leaves it off and says why; the settings that cannot hold are refused."""
    import logging
    mount = T_BODY_OPTICAL.copy()
    mount[2, 3] = 0.35
    config = SessionConfig(odom_child='base', floor_height_from_mount=True)
    session = Session(pipeline, config, mount=mount)
    assert session.floor is not None and session.floor.camera_height == pytest.approx(0.35)
    assert float(session.diagnostics()['floor_camera_height']) == pytest.approx(0.35)
    raised = mount.copy()
    raised[2, 3] = 0.5
    session.set_mount(raised)
    assert session.floor.camera_height == pytest.approx(0.5)
    later = Session(pipeline, config)                     # the node sets the mount with the first image
    assert later.floor is None
    later.set_mount(mount)
    assert later.floor.camera_height == pytest.approx(0.35)
    on_base = mount.copy()
    on_base[2, 3] = 0.0
    with caplog.at_level(logging.WARNING):
        unplaced = Session(pipeline, config, mount=on_base)
    assert unplaced.floor is None and 'floor_height_from_mount' in caplog.text and 'base_footprint' in caplog.text
    with pytest.raises(ValueError, match="odom_child 'base'"):
        SessionConfig(floor_height_from_mount=True)
    with pytest.raises(ValueError, match='not both'):
        SessionConfig(odom_child='base', floor_height_from_mount=True, floor_camera_height=0.4)


def test_the_first_frame_is_levelled_by_the_up_its_depth_shows(pipeline):
    """odom_child camera: a first frame pitched 20 deg down at a floor is not taken as level;
    odom's up (what the object map and the floor's scale use) is the one its depth shows. A
    first view of a wall keeps -y, as does odom_level_from_depth false; a reset levels again."""
    from test_geometry_floor import K as FLOOR_K, ray_cast
    from geovr_ros.geometry import vector_angle
    floor_depth, floor_up = ray_cast(1.2, 20.0)
    session = Session(pipeline, SessionConfig(), mount=T_BODY_OPTICAL)
    first = session.process(wall(0.0), K, 1.0, depth=(floor_depth, FLOOR_K))
    assert not first.dropped
    assert np.degrees(vector_angle(session._up_in_camera(), floor_up)) < 0.5   # the true up, not -y
    assert np.allclose(session._up_in_odom(), [0.0, 0.0, 1.0])                 # odom stays z up ...
    assert np.degrees(vector_angle(first.T_odom_cam[:3, :3] @ floor_up, [0.0, 0.0, 1.0])) < 0.5   # ... and level
    assert float(session.diagnostics()['odom_levelled_deg']) == pytest.approx(20.0, abs=0.5)
    assert session.objects_up() @ [0.0, 0.0, 1.0] == pytest.approx(1.0)
    taken_level = Session(pipeline, SessionConfig(odom_level_from_depth=False), mount=T_BODY_OPTICAL)
    taken_level.process(wall(0.0), K, 1.0, depth=(floor_depth, FLOOR_K))
    assert np.allclose(taken_level._up_in_camera(), [0.0, -1.0, 0.0])
    assert 'odom_levelled_deg' not in taken_level.diagnostics()
    walls = Session(pipeline, SessionConfig(), mount=T_BODY_OPTICAL)
    walls.process(wall(0.0), K, 1.0, depth=WALL_DEPTH)
    assert np.allclose(walls._up_in_camera(), [0.0, -1.0, 0.0]) and np.allclose(walls.mount, T_BODY_OPTICAL)
    session.reset()
    session.process(wall(0.0), K, 5.0, depth=WALL_DEPTH)                      # the new first frame: walls
    assert np.allclose(session.mount, T_BODY_OPTICAL) and 'odom_levelled_deg' not in session.diagnostics()


def test_up_in_camera_with_a_pitched_base_mount(pipeline):
    """odom_child base: up is odom's z, seen from a camera pitched 30 deg down on the base."""
    from geovr_ros.geometry import matrix_from_rpy
    mount = np.eye(4)
    mount[:3, :3] = matrix_from_rpy(0.0, np.radians(30.0), 0.0) @ T_BODY_OPTICAL[:3, :3]
    mount[2, 3] = 0.4
    session = Session(pipeline, SessionConfig(odom_child='base', floor_camera_height=0.4), mount=mount)
    up = session._up_in_camera()
    assert np.allclose(up, mount[:3, :3].T @ [0, 0, 1])
    assert np.allclose(up, [0, -np.cos(np.radians(30)), -np.sin(np.radians(30))], atol=1e-9)  # looking down: up leans back
