"""SE(3) poses, rotations and quaternions.

A pose ``T_a_b`` is a 4x4 float64 matrix mapping points of frame b into frame a
(``p_a = T_a_b @ p_b``), translation in metres. Functions accept a single pose (4, 4) or a
batch (..., 4, 4) unless said otherwise. Quaternions are in ROS order (x, y, z, w), unit norm,
and canonical when ``w >= 0`` (``q`` and ``-q`` are the same rotation).

Frames (REP 103): a *body* frame has x forward, y left, z up; a camera *optical* frame has
x right, y down, z forward. `T_BODY_OPTICAL` is the pose of the optical frame in the body frame
of the same camera (no translation).
"""

from __future__ import annotations

import numpy as np

from ._arrays import as_float_array
from .errors import GeometryError

__all__ = [
    'matrix_from_rpy',
    'T_BODY_OPTICAL',
    'T_OPTICAL_BODY',
    'make_pose',
    'invert_pose',
    'compose',
    'relative_pose',
    'canonical_quat_xyzw',
    'quat_xyzw_from_matrix',
    'matrix_from_quat_xyzw',
    'pose_to_xyz_quat_xyzw',
    'pose_from_xyz_quat_xyzw',
    'rotation_angle',
    'geodesic_angle',
    'so3_exp',
    'so3_log',
    'optical_to_body',
    'body_to_optical',
    'yaw_from_pose',
    'vertical_axis_of',
]

def _pose(T, name: str = 'T') -> np.ndarray:
    return as_float_array(T, name, (4, 4))

def _rotation(R, name: str = 'R') -> np.ndarray:
    return as_float_array(R, name, (3, 3))

def _scalar_or_array(values: np.ndarray):
    return float(values) if values.ndim == 0 else values

def make_pose(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Pose (..., 4, 4) from rotation R (..., 3, 3) and translation t (..., 3) metres (broadcast)."""
    R = _rotation(R)
    t = as_float_array(t, 't', (3,))
    batch = np.broadcast_shapes(R.shape[:-2], t.shape[:-1])
    T = np.zeros(batch + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T

def nearest_pose(T: np.ndarray) -> np.ndarray:
    """The rigid pose (..., 4, 4) nearest a 4x4 matrix whose rotation block has drifted (a
    network's output, reduced precision): the rotation block's nearest rotation (SVD, det +1),
    its translation, the last row [0, 0, 0, 1]."""
    T = as_float_array(T, 'T', (4, 4))
    U, _, Vt = np.linalg.svd(T[..., :3, :3])
    flip = np.where(np.linalg.det(U @ Vt) < 0, -1.0, 1.0)
    U = U.copy()
    U[..., :, 2] *= flip[..., None]
    return make_pose(U @ Vt, T[..., :3, 3])


def non_rigid(poses: np.ndarray, tolerance: float = 1e-4) -> np.ndarray:
    """Mask (N,) of the poses (N, 4, 4) that are not finite rigid transforms: a rotation block
    orthonormal within `tolerance` with determinant +1, and a last row [0, 0, 0, 1]."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
    finite = np.all(np.isfinite(poses), axis=(1, 2))
    safe = np.where(finite[:, None, None], poses, np.eye(4))
    R = safe[:, :3, :3]
    orthonormal = np.abs(np.swapaxes(R, 1, 2) @ R - np.eye(3)).max(axis=(1, 2))
    return ~finite | (orthonormal > tolerance) | (np.linalg.det(R) < 0) \
        | np.any(safe[:, 3] != [0.0, 0.0, 0.0, 1.0], axis=1)


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse (..., 4, 4) of rigid poses T (..., 4, 4) in closed form ``[R^T | -R^T t]``.

    Assumes the rotation block is orthonormal (as every pose here is).
    """
    T = _pose(T)
    R_inv = np.swapaxes(T[..., :3, :3], -1, -2)
    t_inv = -np.einsum('...ij,...j->...i', R_inv, T[..., :3, 3])
    return make_pose(R_inv, t_inv)

def compose(*Ts: np.ndarray) -> np.ndarray:
    """Product ``Ts[0] @ Ts[1] @ ...`` of poses (..., 4, 4), e.g. ``compose(T_a_b, T_b_c) = T_a_c``."""
    if not Ts:
        raise GeometryError('compose needs at least one pose, got none')
    result = _pose(Ts[0], 'Ts[0]')
    for index, T in enumerate(Ts[1:], start=1):
        result = result @ _pose(T, f'Ts[{index}]')
    return result

def relative_pose(T_world_a: np.ndarray, T_world_b: np.ndarray) -> np.ndarray:
    """``T_a_b = inv(T_world_a) @ T_world_b`` (..., 4, 4): frame b expressed in frame a."""
    return invert_pose(T_world_a) @ _pose(T_world_b, 'T_world_b')


def rotate_covariance(covariance: np.ndarray, R: np.ndarray) -> np.ndarray:
    """A pose covariance (6, 6; ROS order: position, then rotation) expressed in axes rotated
    by R (3, 3): both blocks turn with the axes, B @ covariance @ B.T with B = diag(R, R)."""
    B = np.zeros((6, 6))
    B[:3, :3] = B[3:, 3:] = _rotation(R)
    return B @ np.asarray(covariance, np.float64) @ B.T


def canonical_quat_xyzw(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) xyzw with the sign fixed so that ``w > 0``.

    Ties (``w == 0``) are broken by making the first non-zero of x, y, z positive. Not normalised.
    """
    q = as_float_array(q, 'q', (4,))
    sign = np.zeros(q.shape[:-1])
    for axis in (3, 0, 1, 2):
        undecided = sign == 0
        sign = np.where(undecided, np.sign(q[..., axis]), sign)
    sign = np.where(sign == 0, 1.0, sign)
    return q * sign[..., None]

def quat_xyzw_from_matrix(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (..., 4) xyzw, canonical (w >= 0), of rotation matrices R (..., 3, 3).

    Uses the numerically stable branch on the largest of w, x, y, z (Shepperd's method).
    """
    R = _rotation(R)
    m00, m01, m02 = R[..., 0, 0], R[..., 0, 1], R[..., 0, 2]
    m10, m11, m12 = R[..., 1, 0], R[..., 1, 1], R[..., 1, 2]
    m20, m21, m22 = R[..., 2, 0], R[..., 2, 1], R[..., 2, 2]
    trace = m00 + m11 + m22
    # 4 * q_k^2 for k = w, x, y, z
    squares = np.stack([1 + trace, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], axis=-1)
    best = np.argmax(squares, axis=-1)
    with np.errstate(invalid='ignore', divide='ignore'):
        candidates = []
        s = 2.0 * np.sqrt(np.maximum(squares[..., 0], 1e-300))  # 4 w
        candidates.append(np.stack([(m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, s / 4], axis=-1))
        s = 2.0 * np.sqrt(np.maximum(squares[..., 1], 1e-300))  # 4 x
        candidates.append(np.stack([s / 4, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s], axis=-1))
        s = 2.0 * np.sqrt(np.maximum(squares[..., 2], 1e-300))  # 4 y
        candidates.append(np.stack([(m01 + m10) / s, s / 4, (m12 + m21) / s, (m02 - m20) / s], axis=-1))
        s = 2.0 * np.sqrt(np.maximum(squares[..., 3], 1e-300))  # 4 z
        candidates.append(np.stack([(m02 + m20) / s, (m12 + m21) / s, s / 4, (m10 - m01) / s], axis=-1))
    q = np.choose(best[..., None], candidates)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return canonical_quat_xyzw(q)

def matrix_from_quat_xyzw(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of quaternions (..., 4) xyzw; normalises; raises on zero norm."""
    q = as_float_array(q, 'q', (4,))
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(q)) or np.any(norm < 1e-12):
        raise GeometryError(f'quaternion must be finite with non-zero norm, got {q.tolist()}')
    x, y, z, w = np.moveaxis(q / norm, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=-1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=-1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=-1),
    ], axis=-2)

def pose_to_xyz_quat_xyzw(T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Translation (..., 3) metres and canonical quaternion (..., 4) xyzw of poses T (..., 4, 4)."""
    T = _pose(T)
    return T[..., :3, 3].copy(), quat_xyzw_from_matrix(T[..., :3, :3])

def pose_from_xyz_quat_xyzw(xyz: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Pose (..., 4, 4) from translation (..., 3) metres and quaternion (..., 4) xyzw (normalised)."""
    return make_pose(matrix_from_quat_xyzw(q), xyz)

def matrix_from_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """Rotation (3, 3) from fixed-axis roll, pitch, yaw in radians: Rz(yaw) Ry(pitch) Rx(roll).

    The convention of URDF `rpy` and of tf2's `setRPY`.
    """
    from transforms3d.euler import euler2mat
    return euler2mat(roll, pitch, yaw, axes='sxyz')


def rotation_angle(R: np.ndarray):
    """Angle (radians, [0, pi]) of rotations R (..., 3, 3); a float for one R, else an array (...).

    Equals ``arccos(clip((tr R - 1) / 2, -1, 1))``, computed as ``atan2(|vee(R - R^T)| / 2, (tr R - 1) / 2)``
    to stay accurate near 0 and pi.
    """
    R = _rotation(R)
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    skew = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], axis=-1)
    sin = np.linalg.norm(skew, axis=-1) / 2.0
    return _scalar_or_array(np.arctan2(sin, cos))

def moved_beyond(T_a_b: np.ndarray, translation: float, rotation: float) -> bool:
    """True when the relative pose T_a_b (4, 4) moves more than `translation` metres or turns
    more than `rotation` radians."""
    return bool(np.linalg.norm(T_a_b[:3, 3]) > translation or rotation_angle(T_a_b[:3, :3]) > rotation)


def vector_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians, [0, pi]) between two 3-vectors (any lengths; atan2 of |a x b| and a . b,
    accurate near 0 and pi)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.arctan2(np.linalg.norm(np.cross(a, b)), a @ b))


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (3, 3) that turns the direction of 3-vector `a` onto that of `b`
    (any lengths; about a x b by their angle; opposite vectors: half a turn about an axis
    perpendicular to `a`)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    axis = np.cross(a, b)
    if np.linalg.norm(axis) < 1e-12 * max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300):
        if a @ b >= 0:
            return np.eye(3)
        axis = np.cross(a, np.eye(3)[int(np.argmin(np.abs(a)))])   # any axis perpendicular to a
    return so3_exp(axis / np.linalg.norm(axis) * vector_angle(a, b))


def geodesic_angle(R_a: np.ndarray, R_b: np.ndarray):
    """Geodesic distance (radians, [0, pi]) between rotations: angle of ``R_a^T R_b`` (..., 3, 3) -> float or (...)."""
    R_a = _rotation(R_a, 'R_a')
    R_b = _rotation(R_b, 'R_b')
    return rotation_angle(np.swapaxes(R_a, -1, -2) @ R_b)

def _hat(w: np.ndarray) -> np.ndarray:
    zero = np.zeros(w.shape[:-1])
    x, y, z = w[..., 0], w[..., 1], w[..., 2]
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)

def so3_exp(w: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) of axis-angle vectors w (..., 3) (direction = axis, norm = radians)."""
    w = as_float_array(w, 'w', (3,), finite=True)
    theta = np.linalg.norm(w, axis=-1)[..., None, None]
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta ** 2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta ** 2 / 24.0, (1.0 - np.cos(safe)) / safe ** 2)
    W = _hat(w)
    return np.eye(3) + a * W + b * (W @ W)

def so3_log(R: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (..., 3), norm in [0, pi] radians, of rotation matrices R (..., 3, 3)."""
    q = quat_xyzw_from_matrix(R)  # w >= 0
    v, w = q[..., :3], q[..., 3]
    n = np.linalg.norm(v, axis=-1)
    small = n < 1e-10
    factor = np.where(small, 2.0 / np.where(w > 0, w, 1.0), 2.0 * np.arctan2(n, w) / np.where(small, 1.0, n))
    return v * factor[..., None]

T_BODY_OPTICAL: np.ndarray = np.array([
    [0.0, 0.0, 1.0, 0.0],
    [-1.0, 0.0, 0.0, 0.0],
    [0.0, -1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
])
"""Pose (4, 4) of a camera's optical frame (z fwd, x right, y down) in its body frame (x fwd, y left, z up)."""
T_BODY_OPTICAL.setflags(write=False)

T_OPTICAL_BODY: np.ndarray = np.ascontiguousarray(T_BODY_OPTICAL.T)
"""Inverse of `T_BODY_OPTICAL`: pose (4, 4) of the body frame in the optical frame."""
T_OPTICAL_BODY.setflags(write=False)

def optical_to_body(T_world_optical: np.ndarray) -> np.ndarray:
    """``T_world_body = T_world_optical @ T_OPTICAL_BODY`` (..., 4, 4): same camera, REP 103 body axes."""
    return _pose(T_world_optical, 'T_world_optical') @ T_OPTICAL_BODY

def body_to_optical(T_world_body: np.ndarray) -> np.ndarray:
    """``T_world_optical = T_world_body @ T_BODY_OPTICAL`` (..., 4, 4): same camera, optical axes."""
    return _pose(T_world_body, 'T_world_body') @ T_BODY_OPTICAL

def yaw_from_pose(T_world_body: np.ndarray):
    """Heading (radians, (-pi, pi]) of the body x axis projected on the world x-y plane.

    `T_world_body` (..., 4, 4) must be a body-frame pose (x forward); convert an optical pose with
    `optical_to_body` first. Returns a float for one pose, else an array (...).
    """
    T = _pose(T_world_body, 'T_world_body')
    return _scalar_or_array(np.arctan2(T[..., 1, 0], T[..., 0, 0]))


def vertical_axis_of(T_world_optical: np.ndarray, min_alignment: float = 0.8) -> int | None:
    """The world axis closest to up for optical-frame camera poses (4, 4) or (N, 4, 4): up is
    minus the mean camera y axis (optical y points down, and a walking, hand-held or
    robot-mounted camera is roughly level; one looking straight at the floor is not, and
    names a horizontal axis). None when no axis is within arccos(min_alignment) of it."""
    T = _pose(T_world_optical, 'T_world_optical').reshape(-1, 4, 4)
    up = -T[:, :3, 1].mean(0)
    up = up / max(float(np.linalg.norm(up)), 1e-9)
    axis = int(np.argmax(np.abs(up)))
    return axis if abs(up[axis]) >= min_alignment else None
