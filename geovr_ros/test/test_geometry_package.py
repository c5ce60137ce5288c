"""Tests of the geovr_ros.geometry package: pure import, re-exports and the error hierarchy."""

import subprocess
import sys
from pathlib import Path

import geovr_ros.geometry as geometry
from geovr_ros.geometry import GeometryError, ImageEncodingError, InvalidIntrinsicsError, ShapeError

REPO = Path(__file__).resolve().parents[2]

def test_import_leaves_rclpy_torch_and_cv2_out():
    code = ('import sys, geovr_ros.geometry; '
            'bad = [m for m in ("rclpy", "torch", "cv2") if m in sys.modules]; '
            'assert not bad, bad')
    venv_python = REPO / '.venv' / 'bin' / 'python'
    python = str(venv_python) if venv_python.exists() else sys.executable
    result = subprocess.run([python, '-c', code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_camera_frame_goes_through_the_public_functions_and_back():
    """What the node does with a frame, through the package's public names only: K from a
    CameraInfo, depth decoded to metres, lifted to 3D, moved by a pose, projected back."""
    import numpy as np
    K = geometry.k_from_camera_info([200.0, 0, 79.5, 0, 210.0, 59.5, 0, 0, 1])
    geometry.validate_intrinsics(K, 160, 120)
    depth_mm = np.full((120, 160), 2500, np.uint16)
    data, step = geometry.array_to_image(depth_mm, '16UC1')
    depth = geometry.depth_to_metres(geometry.image_to_array('16UC1', 120, 160, step, data), '16UC1')
    assert np.allclose(depth, 2.5)
    points = geometry.depth_to_points(depth, K)
    T = geometry.make_pose(geometry.so3_exp(np.array([0.0, 0.1, 0.0])), np.array([0.2, 0.0, 0.1]))
    xyz, q = geometry.pose_to_xyz_quat_xyzw(T)
    np.testing.assert_allclose(geometry.pose_from_xyz_quat_xyzw(xyz, q), T, atol=1e-12)
    moved = geometry.transform_points(geometry.invert_pose(T), geometry.transform_points(T, points))
    uv, z = geometry.project_points(moved, K)
    u, v = np.meshgrid(np.arange(160), np.arange(120))
    np.testing.assert_allclose(uv[..., 0], u, atol=1e-6)
    np.testing.assert_allclose(uv[..., 1], v, atol=1e-6)
    np.testing.assert_allclose(z, 2.5)
    half = geometry.resize_intrinsics(K, (160, 120), (80, 60))
    assert half[0, 0] == 100.0 and half[0, 2] == 0.5 * (79.5 + 0.5) - 0.5
    assert geometry.depth_metrics(depth, depth)['abs_rel'] == 0.0
    poses = np.stack([geometry.make_pose(np.eye(3), np.array([t, 0.0, 0.0])) for t in range(5)])
    assert geometry.absolute_trajectory_error(poses, poses, 'se3')['rmse'] < 1e-12
    assert geometry.rotation_angle(geometry.relative_pose(T, T)[:3, :3]) < 1e-9


def test_every_public_name_resolves():
    assert all(hasattr(geometry, name) for name in geometry.__all__)


def test_error_hierarchy():
    for error in (InvalidIntrinsicsError, ImageEncodingError, ShapeError):
        assert issubclass(error, GeometryError)
    assert issubclass(GeometryError, ValueError)
