"""Tests of the geovr_ros.geometry package: pure import, re-exports and the error hierarchy."""

import subprocess
import sys
from pathlib import Path

import geovr_ros.geometry as geometry
from geovr_ros.geometry import GeometryError, ImageEncodingError, InvalidIntrinsicsError, ShapeError

REPO = Path(__file__).resolve().parents[2]

CONTRACT = """
GeometryError InvalidIntrinsicsError ImageEncodingError ShapeError
k_from_camera_info k_to_camera_info p_from_k validate_intrinsics scale_intrinsics resize_intrinsics
crop_intrinsics zoom_intrinsics shift_principal_point fov_from_intrinsics intrinsics_from_fov
pixel_centers ray_directions plucker_rays
depth_to_points transform_points depth_to_world_points project_points reproject_depth
make_pose invert_pose compose relative_pose quat_xyzw_from_matrix matrix_from_quat_xyzw pose_to_xyz_quat_xyzw
pose_from_xyz_quat_xyzw rotation_angle geodesic_angle canonical_quat_xyzw T_BODY_OPTICAL optical_to_body
body_to_optical yaw_from_pose so3_exp so3_log
SUPPORTED_ENCODINGS image_to_array array_to_image to_rgb8 depth_to_metres metres_to_depth_image
depth_metrics umeyama_alignment absolute_trajectory_error relative_pose_error mean_relative_accuracy
""".split()


def test_import_leaves_rclpy_torch_and_cv2_out():
    code = ('import sys, geovr_ros.geometry; '
            'bad = [m for m in ("rclpy", "torch", "cv2") if m in sys.modules]; '
            'assert not bad, bad')
    venv_python = REPO / '.venv' / 'bin' / 'python'
    python = str(venv_python) if venv_python.exists() else sys.executable
    result = subprocess.run([python, '-c', code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr


def test_contract_names_are_re_exported():
    missing = [name for name in CONTRACT if not hasattr(geometry, name)]
    assert not missing
    assert set(CONTRACT) <= set(geometry.__all__)


def test_error_hierarchy():
    for error in (InvalidIntrinsicsError, ImageEncodingError, ShapeError):
        assert issubclass(error, GeometryError)
    assert issubclass(GeometryError, ValueError)
