"""The pose graph (GTSAM, iSAM2) and loop closures verified by PnP, on a textured plane seen
by a camera that goes round a circle and comes back: exact depth and poses."""
import dataclasses

import numpy as np
import pytest

from geovr_ros.geometry import invert_pose, make_pose, rotate_covariance, so3_exp
from geovr_ros.tracking import KeyframeTracker, TrackerConfig

gtsam = pytest.importorskip('gtsam', reason='the pose graph needs gtsam (scripts/requirements.txt)')
cv2 = pytest.importorskip('cv2')

from geovr_ros.mapping import GraphConfig, KeyframeGraph, PoseGraph  # noqa: E402
from test_tracking_core import K, _render, _texture  # noqa: E402


def _circle(n=48, radius=0.4):
    poses = []
    for i in range(n + 1):  # the last pose is the first one again
        a = 2 * np.pi * i / n
        T = make_pose(so3_exp(np.array([0.0, 0.0, 0.3 * np.sin(a)])),
                      np.array([radius * np.cos(a) - radius, radius * np.sin(a), 0.0]))
        poses.append(T)
    return np.stack(poses)


@pytest.fixture(scope='module')
def loop_keyframes():
    """Keyframes of a tracker on true depth round the circle, with true poses."""
    tex = _texture(3)
    poses = _circle()
    tracker = KeyframeTracker(TrackerConfig(keyframe_translation_m=0.08))
    keyframes, truth = [], []
    for T in poses:
        image, depth = _render(tex, invert_pose(poses[0]) @ T)
        step = tracker.track(image, K, depth)
        if step.keyframe is not None:
            keyframes.append(step.keyframe)
            truth.append(invert_pose(poses[0]) @ T)
    return keyframes, truth


def _drifted(keyframes, yaw_per_keyframe=0.02, scale=1.1):
    """The same keyframes with odometry that drifts: a yaw bias and a scale error accumulating."""
    out, drift = [], np.eye(4)
    for i, kf in enumerate(keyframes):
        if i:
            step = invert_pose(keyframes[i - 1].T_odom_kf) @ kf.T_odom_kf
            step = make_pose(so3_exp(np.array([0, 0, yaw_per_keyframe])) @ step[:3, :3], scale * step[:3, 3])
            drift = drift @ step
        out.append(dataclasses.replace(kf, T_odom_kf=drift.copy()))
    return out


def test_loop_closure_pulls_the_revisit_back_to_the_start(loop_keyframes):
    keyframes, truth = loop_keyframes
    assert len(keyframes) >= 15
    drifted = _drifted(keyframes)
    graph = KeyframeGraph(GraphConfig(loop_min_separation=8, loop_radius_m=1.0))
    closures = [graph.add_keyframe(kf) for kf in drifted]
    found = [c for c in closures if c is not None]
    assert found, 'the revisit was not recognised'
    assert all(c.older < c.key - 7 for c in found)
    # a loop's covariance holds the learned depth's error as the tracker's does: its floor at least
    floor = graph.config.loop_uncertainty.floor_m
    assert all(np.linalg.eigvalsh(covariance[:3, :3])[0] >= 0.99 * floor ** 2 for *_, covariance in graph.graph.loops)
    last = keyframes[-1].id
    odometry_error = np.linalg.norm(drifted[-1].T_odom_kf[:3, 3] - truth[-1][:3, 3])
    map_error = np.linalg.norm(graph.T_map_keyframe(last)[:3, 3] - truth[-1][:3, 3])
    assert odometry_error > 0.15 and map_error < 0.05 and map_error < odometry_error / 4, (odometry_error, map_error)
    # map -> odom carries the correction for whatever frame odometry reports next
    T_map_cam = graph.T_map_odom @ drifted[-1].T_odom_kf
    np.testing.assert_allclose(T_map_cam, graph.T_map_keyframe(last), atol=1e-9)


def test_one_wrong_loop_cannot_bend_the_map():
    def run(kernel):
        graph = PoseGraph(loop_kernel=kernel)
        graph.add_first(0, np.eye(4))
        step = make_pose(np.eye(3), np.array([0.1, 0.0, 0.0]))
        cov = np.diag([1e-4] * 3 + [1e-5] * 3)
        for k in range(1, 20):
            graph.add_odometry(k - 1, k, step, cov)
        graph.add_loop(0, 19, make_pose(np.eye(3), np.array([1.9, 0.0, 0.0])), cov)  # right
        graph.add_loop(2, 15, make_pose(np.eye(3), np.array([0.0, 2.0, 0.0])), cov)  # wrong by 2.3 m
        return np.linalg.norm(graph.pose(19)[:3, 3] - [1.9, 0, 0])
    assert run('cauchy') < 0.05 and run('none') > 2 * run('cauchy')


def test_pose_graph_refuses_unknown_keys():
    graph = PoseGraph()
    graph.add_first(0, np.eye(4))
    with pytest.raises(KeyError, match='3'):
        graph.add_odometry(3, 4, np.eye(4), np.eye(6) * 1e-3)
    with pytest.raises(ValueError, match='already'):
        graph.add_odometry(0, 0, np.eye(4), np.eye(6) * 1e-3)


def test_marginal_covariance_grows_along_odometry_and_shrinks_at_a_loop():
    graph = PoseGraph()
    graph.add_first(0, np.eye(4))
    step = make_pose(np.eye(3), np.array([0.2, 0.0, 0.0]))
    cov = np.diag([0.02 ** 2] * 3 + [0.01 ** 2] * 3)
    for k in range(1, 10):
        graph.add_odometry(k - 1, k, step, cov)
    spread = [np.trace(graph.covariance(k)[:3, :3]) for k in (1, 5, 9)]
    assert spread[0] < spread[1] < spread[2]
    graph.add_loop(0, 9, make_pose(np.eye(3), np.array([1.8, 0.0, 0.0])), cov)
    assert np.trace(graph.covariance(9)[:3, :3]) < spread[2] / 2


def test_the_newest_keyframes_covariance_is_given_in_map_axes(loop_keyframes):
    """GTSAM's marginal is in the pose's own axes; the map pose's covariance is published in
    map axes: a keyframe turned 90 degrees about z, uncertain along its own x, is uncertain
    along the map's y."""
    first = loop_keyframes[0][0]
    graph = KeyframeGraph()
    graph.add_keyframe(dataclasses.replace(first, id=0, T_odom_kf=np.eye(4), covariance_from_previous=None))
    turned = make_pose(so3_exp(np.array([0.0, 0.0, np.pi / 2])), np.array([0.2, 0.0, 0.0]))
    own_x = np.diag([0.1 ** 2, 0.001 ** 2, 0.001 ** 2] + [0.001 ** 2] * 3)
    graph.add_keyframe(dataclasses.replace(first, id=1, T_odom_kf=turned, covariance_from_previous=own_x))
    covariance = graph.covariance()
    assert covariance[1, 1] > 0.9 * 0.1 ** 2 and covariance[0, 0] < 0.02 * covariance[1, 1]   # x: the first pose's prior
    assert np.allclose(covariance, covariance.T)
    # published: the marginal, and the map scale's error along the offset
    np.testing.assert_allclose(covariance, rotate_covariance(graph.graph.covariance(1), turned[:3, :3]), atol=1e-12)
    offset = np.array([0.0, 0.0, 2.0])
    with_scale = graph.covariance(offset)
    assert with_scale[2, 2] - covariance[2, 2] == pytest.approx((graph.config.scale_sigma * 2.0) ** 2)
    assert with_scale[0, 0] == pytest.approx(covariance[0, 0])


def _looped_graph():
    graph = PoseGraph()
    graph.add_first(0, np.eye(4))
    step = make_pose(so3_exp(np.array([0.0, 0.0, 0.1])), np.array([0.2, 0.0, 0.0]))
    cov = np.diag([0.02 ** 2] * 3 + [0.01 ** 2] * 3)
    for k in range(1, 12):
        graph.add_odometry(k - 1, k, step, cov)
    graph.add_loop(0, 11, make_pose(np.eye(3), np.array([0.1, -0.05, 0.0])), cov)
    return graph


def test_a_saved_pose_graph_comes_back_with_its_factors_and_poses():
    graph = _looped_graph()
    arrays, meta = graph.to_arrays()
    assert all(a.dtype.kind in 'if' and a.ndim <= 2 for a in arrays.values())   # map-file attachments
    loaded = PoseGraph.from_arrays(arrays, meta)
    assert loaded.keys == graph.keys and loaded.first_key == 0
    assert len(loaded.odometry) == 11 and len(loaded.loops) == 1
    for key in graph.keys:
        np.testing.assert_allclose(loaded.pose(key), graph.pose(key), atol=1e-4)   # iSAM2 stops short by ~1e-5
    np.testing.assert_allclose(loaded.covariance(11), graph.covariance(11), rtol=0.05, atol=1e-6)
    loaded.add_odometry(11, 12, np.eye(4), np.eye(6) * 1e-4)                    # it goes on growing
    assert 12 in loaded


def test_a_damaged_saved_pose_graph_is_refused_naming_the_fault():
    from geovr_ros.mapping import PoseGraphError
    arrays, meta = _looped_graph().to_arrays()
    with pytest.raises(PoseGraphError, match='loop_T'):
        bad = dict(arrays, loop_T=arrays['loop_T'] * 2.0)                      # not a rotation
        PoseGraph.from_arrays(bad, meta)
    with pytest.raises(PoseGraphError, match='not in the graph'):
        PoseGraph.from_arrays(dict(arrays, loop_keys=np.array([[0, 99]])), meta)
    with pytest.raises(PoseGraphError, match='incomplete'):
        PoseGraph.from_arrays({k: v for k, v in arrays.items() if k != 'odometry_cov'}, meta)
    with pytest.raises(PoseGraphError, match='covariance'):
        PoseGraph.from_arrays(dict(arrays, odometry_cov=-np.abs(arrays['odometry_cov'])), meta)


def test_a_place_seen_from_the_other_side_is_not_a_loop_candidate(loop_keyframes):
    """The first keyframe again, eleven keyframes later, at the same place: with the same view
    it closes a loop; turned round (the optical axis 180 deg away) it is not even tried."""
    keyframes, _ = loop_keyframes
    first = keyframes[0]

    def graph_with_revisit(turn):
        graph = KeyframeGraph(GraphConfig(loop_min_separation=10))
        chain = [dataclasses.replace(first, id=i, T_odom_kf=make_pose(np.eye(3), np.array([0.0, 0.01 * i, 0.0])),
                                     covariance_from_previous=None) for i in range(11)]
        for kf in chain:
            graph.add_keyframe(kf)
        revisit = dataclasses.replace(first, id=11, T_odom_kf=make_pose(so3_exp(np.array([0.0, turn, 0.0])),
                                                                         np.zeros(3)),
                                      covariance_from_previous=None)
        return graph.add_keyframe(revisit)
    assert graph_with_revisit(0.0) is not None
    assert graph_with_revisit(np.pi) is None


def test_a_failing_graph_update_restarts_the_graph_and_tracking_goes_on(loop_keyframes, monkeypatch, caplog):
    """GTSAM raises on an ill-posed system (an int8 model once fed it a non-rigid pose): the
    session's odometry logs it, starts a new graph at that keyframe and keeps tracking."""
    from geovr_ros.session import GeometricOdometry
    keyframes, _ = loop_keyframes
    odometry = GeometricOdometry()
    original = KeyframeGraph.add_keyframe
    calls = {'n': 0}

    def flaky(self, keyframe):
        calls['n'] += 1
        if calls['n'] == 3:
            raise RuntimeError('\nIndeterminate linear system detected while working near variable 2')
        return original(self, keyframe)
    monkeypatch.setattr(KeyframeGraph, 'add_keyframe', flaky)
    tex = _texture(3)
    for i, T in enumerate(_circle()[:12]):
        image, depth = _render(tex, T)
        odometry.track(i / 30.0, image, K, depth)
    assert odometry.graph_restarts == 1
    assert 'pose graph restarted' in caplog.text and 'Indeterminate' in caplog.text
    assert len(odometry.graph) >= 1 and odometry.tracker.failures == 0


def test_a_keyframe_the_new_graph_refuses_too_is_left_out_and_the_next_one_starts_it(monkeypatch, caplog):
    """A keyframe GTSAM cannot take even as the first pose of a new graph (a NaN pose reaches
    it): it is left out with a warning, the session does not raise, and the next keyframe
    starts the graph."""
    from geovr_ros.session import GeometricOdometry
    odometry = GeometricOdometry()
    original = KeyframeGraph.add_keyframe
    calls = {'n': 0}

    def refusing(self, keyframe):
        calls['n'] += 1
        if calls['n'] in (3, 4):   # the keyframe, then the same keyframe on the new graph
            raise RuntimeError('\nIndeterminate linear system detected while working near variable 2')
        return original(self, keyframe)
    monkeypatch.setattr(KeyframeGraph, 'add_keyframe', refusing)
    tex = _texture(3)
    for i, T in enumerate(_circle()):
        image, depth = _render(tex, T)
        odometry.track(i / 30.0, image, K, depth)
    assert calls['n'] > 4 and odometry.graph_restarts == 1
    assert 'left out of the pose graph' in caplog.text
    assert len(odometry.graph) >= 1 and odometry.tracker.failures == 0
