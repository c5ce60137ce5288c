"""Tests of geovr_ros.geometry.transforms: poses, quaternions, angles, REP 103 frames."""

import math

import numpy as np
import pytest
import transforms3d
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from geovr_ros.geometry import (T_BODY_OPTICAL, matrix_from_rpy, GeometryError, ShapeError, body_to_optical, canonical_quat_xyzw,
                                compose, geodesic_angle, invert_pose, make_pose, matrix_from_quat_xyzw, moved_beyond,
                                optical_to_body, pose_from_xyz_quat_xyzw, pose_to_xyz_quat_xyzw,
                                quat_xyzw_from_matrix, relative_pose, rotate_covariance, rotation_angle, rotation_between,
                                so3_exp, so3_log,
                                vector_angle, vertical_axis_of, yaw_from_pose)

FAST = settings(max_examples=80, deadline=None)

quats = arrays(np.float64, 4, elements=st.floats(-1, 1)).filter(lambda q: np.linalg.norm(q) > 0.1)
vectors = arrays(np.float64, 3, elements=st.floats(-10, 10))


def random_pose(q, t):
    return make_pose(matrix_from_quat_xyzw(q), t)


@FAST
@given(quats)
def test_matrix_from_quat_matches_transforms3d(q):
    x, y, z, w = q / np.linalg.norm(q)
    np.testing.assert_allclose(matrix_from_quat_xyzw(q), transforms3d.quaternions.quat2mat([w, x, y, z]), atol=1e-12)


@FAST
@given(quats)
def test_quaternion_round_trip_and_sign(q):
    R = matrix_from_quat_xyzw(q)
    q_back = quat_xyzw_from_matrix(R)
    assert q_back[3] >= 0
    assert np.linalg.norm(q_back) == pytest.approx(1.0)
    unit = q / np.linalg.norm(q)
    assert min(np.abs(q_back - unit).max(), np.abs(q_back + unit).max()) < 1e-9
    np.testing.assert_allclose(matrix_from_quat_xyzw(q_back), R, atol=1e-12)
    np.testing.assert_allclose(quat_xyzw_from_matrix(matrix_from_quat_xyzw(-q)), q_back, atol=1e-9)


def test_canonical_sign_rules():
    np.testing.assert_array_equal(canonical_quat_xyzw([0.1, 0.2, 0.3, -0.9]), [-0.1, -0.2, -0.3, 0.9])
    np.testing.assert_array_equal(canonical_quat_xyzw([-1.0, 0.0, 0.0, 0.0]), [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(canonical_quat_xyzw([0.0, -1.0, 0.0, 0.0]), [0.0, 1.0, 0.0, 0.0])
    # 180 degrees about x: w = 0, both signs represent it; canonical picks x > 0.
    np.testing.assert_allclose(quat_xyzw_from_matrix(np.diag([1.0, -1.0, -1.0])), [1.0, 0, 0, 0], atol=1e-12)


def test_zero_quaternion_is_refused():
    with pytest.raises(GeometryError, match='non-zero norm'):
        matrix_from_quat_xyzw([0.0, 0.0, 0.0, 0.0])


@FAST
@given(quats, vectors)
def test_pose_inverse(q, t):
    T = random_pose(q, t)
    np.testing.assert_allclose(T @ invert_pose(T), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(invert_pose(T), np.linalg.inv(T), atol=1e-9)


@FAST
@given(quats, vectors, quats, vectors)
def test_relative_pose_and_compose(qa, ta, qb, tb):
    T_world_a, T_world_b = random_pose(qa, ta), random_pose(qb, tb)
    T_a_b = relative_pose(T_world_a, T_world_b)
    np.testing.assert_allclose(compose(T_world_a, T_a_b), T_world_b, atol=1e-9)
    np.testing.assert_allclose(compose(T_world_a, T_a_b, invert_pose(T_world_b)), np.eye(4), atol=1e-9)


@FAST
@given(quats, vectors)
def test_xyz_quat_round_trip(q, t):
    T = random_pose(q, t)
    xyz, q_out = pose_to_xyz_quat_xyzw(T)
    np.testing.assert_array_equal(xyz, t)
    np.testing.assert_allclose(pose_from_xyz_quat_xyzw(xyz, q_out), T, atol=1e-12)


def test_batched_poses():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(5, 4))
    T = make_pose(matrix_from_quat_xyzw(q), rng.normal(size=(5, 3)))
    assert T.shape == (5, 4, 4)
    np.testing.assert_allclose(T @ invert_pose(T), np.broadcast_to(np.eye(4), (5, 4, 4)), atol=1e-12)
    xyz, q_out = pose_to_xyz_quat_xyzw(T)
    assert xyz.shape == (5, 3) and q_out.shape == (5, 4)
    angles = rotation_angle(T[:, :3, :3])
    assert angles.shape == (5,)
    for i in range(5):
        assert angles[i] == pytest.approx(rotation_angle(T[i, :3, :3]))


@FAST
@given(vectors.filter(lambda w: 1e-6 < np.linalg.norm(w) < math.pi - 1e-6))
@example(np.array([1e-5, 1.5e-76, 1.5e-76]))  # once found by a random draw: tiny angle, denormal-scale axis
def test_so3_exp_log_round_trip_and_angle(w):
    R = so3_exp(w)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    axis, angle = transforms3d.axangles.mat2axangle(R)
    assert rotation_angle(R) == pytest.approx(np.linalg.norm(w), abs=1e-9)
    if np.linalg.norm(w) > 1e-3:  # transforms3d's eigenvector axis is inaccurate for tinier angles
        np.testing.assert_allclose(axis * angle, w, atol=1e-8)  # independent reference
    np.testing.assert_allclose(so3_log(R), w, atol=1e-8)


def test_rotation_angle_reference_values():
    assert rotation_angle(np.eye(3)) == 0.0
    assert rotation_angle(so3_exp([0.0, 0.0, 1e-9])) == pytest.approx(1e-9, rel=1e-6)
    assert rotation_angle(np.diag([1.0, -1.0, -1.0])) == pytest.approx(math.pi)
    Rz90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert rotation_angle(Rz90) == pytest.approx(math.pi / 2)
    assert geodesic_angle(Rz90, np.eye(3)) == pytest.approx(math.pi / 2)
    assert isinstance(geodesic_angle(Rz90, Rz90), float)


def test_moved_beyond_either_limit():
    still = np.eye(4)
    assert not moved_beyond(still, 0.0, 0.0)          # beyond, not at
    step = make_pose(np.eye(3), [0.03, 0.04, 0.0])   # 5 cm
    assert moved_beyond(step, 0.049, 1.0) and not moved_beyond(step, 0.05, 1.0)
    turn = make_pose(so3_exp([0.0, 0.1, 0.0]), [0.0, 0.0, 0.0])
    assert moved_beyond(turn, 1.0, 0.09) and not moved_beyond(turn, 1.0, 0.11)


@FAST
@given(quats, quats)
def test_geodesic_angle_matches_arccos_formula(qa, qb):
    Ra, Rb = matrix_from_quat_xyzw(qa), matrix_from_quat_xyzw(qb)
    reference = math.acos(np.clip((np.trace(Ra.T @ Rb) - 1) / 2, -1, 1))
    assert geodesic_angle(Ra, Rb) == pytest.approx(reference, abs=1e-6)


def test_rep103_optical_frame_axes():
    R = T_BODY_OPTICAL[:3, :3]
    # optical z (forward) is body x; optical x (right) is body -y; optical y (down) is body -z.
    np.testing.assert_array_equal(R @ [0, 0, 1], [1, 0, 0])
    np.testing.assert_array_equal(R @ [1, 0, 0], [0, -1, 0])
    np.testing.assert_array_equal(R @ [0, 1, 0], [0, 0, -1])
    assert np.linalg.det(R) == pytest.approx(1.0)
    # the same matrix as the classic static transform "-0.5 0.5 -0.5 0.5" (xyzw) used for optical frames
    np.testing.assert_allclose(quat_xyzw_from_matrix(R), [-0.5, 0.5, -0.5, 0.5])


@FAST
@given(quats, vectors)
def test_body_optical_round_trip(q, t):
    T_world_body = random_pose(q, t)
    T_world_optical = body_to_optical(T_world_body)
    np.testing.assert_allclose(optical_to_body(T_world_optical), T_world_body, atol=1e-12)
    # the camera looks where the body x axis points
    np.testing.assert_allclose(T_world_optical[:3, 2], T_world_body[:3, 0], atol=1e-12)


def test_yaw_from_pose():
    yaw = 0.7
    T = make_pose(so3_exp([0.0, 0.0, yaw]), [1.0, 2.0, 3.0])
    assert yaw_from_pose(T) == pytest.approx(yaw)
    # a camera looking along world +y, level: yaw = pi / 2 once converted to the body frame
    T_world_optical = body_to_optical(make_pose(so3_exp([0.0, 0.0, math.pi / 2]), [0.0, 0.0, 0.0]))
    assert yaw_from_pose(optical_to_body(T_world_optical)) == pytest.approx(math.pi / 2)


def test_vector_angle_is_exact_near_zero_and_pi_and_ignores_lengths():
    assert vector_angle([0.0, 0.0, 1.0], [0.0, 2.0, 2.0]) == pytest.approx(math.pi / 4)
    assert vector_angle([1.0, 0.0, 0.0], [1.0, 1e-9, 0.0]) == pytest.approx(1e-9, rel=1e-6)   # arccos would say 0
    assert vector_angle([0.0, 1.0, 0.0], [0.0, -3.0, 1e-9]) == pytest.approx(math.pi - 1e-9 / 3, rel=1e-12)
    # the tilt of a camera rolled 17 deg about its optical axis, measured on its up (minus optical y)
    rolled = make_pose(so3_exp([0.0, 0.0, math.radians(17.0)]), [0.0, 0.0, 0.0])
    assert math.degrees(vector_angle([0.0, -1.0, 0.0], -rolled[:3, 1])) == pytest.approx(17.0)


def test_rotation_between_turns_one_direction_onto_the_other_by_their_angle():
    rng = np.random.default_rng(5)
    for a, b in rng.normal(size=(20, 2, 3)):
        R = rotation_between(a, b)
        assert np.allclose(R @ R.T, np.eye(3)) and np.linalg.det(R) == pytest.approx(1.0)
        assert np.allclose(R @ (a / np.linalg.norm(a)), b / np.linalg.norm(b))
        assert rotation_angle(R) == pytest.approx(vector_angle(a, b))   # the smallest such rotation
        assert np.allclose(R @ np.cross(a, b), np.cross(a, b))           # about a x b
    assert np.allclose(rotation_between([0.0, 2.0, 0.0], [0.0, 1.0, 0.0]), np.eye(3))
    half = rotation_between([1.0, 0.0, 0.0], [-2.0, 0.0, 0.0])          # opposite: half a turn
    assert np.allclose(half @ [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]) and rotation_angle(half) == pytest.approx(math.pi)


def test_vertical_axis_of_level_and_steep_cameras():
    level = body_to_optical(make_pose(so3_exp([0.0, 0.0, 0.4]), [1.0, 2.0, 1.2]))  # REP 103 world, z up
    assert vertical_axis_of(level) == 2
    assert vertical_axis_of(np.eye(4)) == 1  # the world is the optical frame: y (down) is vertical
    pitched = level @ make_pose(so3_exp([-0.5, 0.0, 0.0]), [0.0, 0.0, 0.0])  # looking 29 degrees down
    assert vertical_axis_of(np.stack([level, pitched])) == 2
    rolled = level @ make_pose(so3_exp([0.0, 0.0, math.pi / 4]), [0.0, 0.0, 0.0])  # tilted sideways 45 degrees
    assert vertical_axis_of(rolled) is None
    with pytest.raises(ShapeError, match=r'T_world_optical must have shape \(\.\.\., 4, 4\), got \(3, 3\)'):
        vertical_axis_of(np.eye(3))  # a rotation, not a pose


def test_shape_errors_name_the_shape():
    with pytest.raises(ShapeError, match=r'\(3, 3\)'):
        invert_pose(np.eye(3))
    with pytest.raises(GeometryError, match='at least one pose'):
        compose()


@given(st.floats(-np.pi, np.pi), st.floats(-1.5, 1.5), st.floats(-np.pi, np.pi))
@settings(max_examples=50, deadline=None)
def test_matrix_from_rpy_is_rz_ry_rx(roll, pitch, yaw):
    cr, sr, cp, sp, cy, sy = (np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch),
                              np.cos(yaw), np.sin(yaw))
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    np.testing.assert_allclose(matrix_from_rpy(roll, pitch, yaw), rz @ ry @ rx, atol=1e-12)


def test_nearest_pose_repairs_a_bent_rotation_and_last_row():
    from geovr_ros.geometry import nearest_pose, non_rigid, so3_exp
    T = make_pose(so3_exp(np.array([0.1, -0.2, 0.3])), np.array([1.0, 2.0, 3.0]))
    bent = T.copy()
    bent[:3, :3] *= 1.05          # what an int8 pair head gave: a scaled rotation block...
    bent[0, 1] += 0.01
    bent[3, 3] = 0.985            # ...and a quantized last row
    assert non_rigid(bent)[0] and not non_rigid(nearest_pose(bent))[0]
    np.testing.assert_allclose(nearest_pose(bent), T, atol=0.01)
    np.testing.assert_allclose(nearest_pose(T), T, atol=1e-12)
    reflection = make_pose(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    assert np.linalg.det(nearest_pose(reflection)[:3, :3]) == pytest.approx(1.0)


def test_a_covariance_turns_with_its_axes():
    """Uncertain along x and about x, seen in axes turned 90 deg about z: along and about y."""
    covariance = np.diag([4.0, 0.0, 0.0, 1.0, 0.0, 0.0])
    turned = rotate_covariance(covariance, so3_exp(np.array([0.0, 0.0, np.pi / 2])))
    np.testing.assert_allclose(turned, np.diag([0.0, 4.0, 0.0, 0.0, 1.0, 0.0]), atol=1e-12)
    with pytest.raises(ShapeError):
        rotate_covariance(covariance, np.eye(4))
