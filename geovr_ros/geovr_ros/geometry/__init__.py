"""`geovr_ros.geometry`: the pure numpy core of GeoVR-ROS (no rclpy, no torch, no cv2).

Camera intrinsics, rays, projection, the floor's scale, a reference odometry's scale, SE(3) poses and quaternions, ROS image encodings and
evaluation metrics, shared by the ROS nodes and the training package.

Conventions (all modules):
- SI units: metres, radians, seconds.
- Camera frames are optical (x right, y down, z forward); depth is metres along z.
- ``T_a_b`` (4, 4) maps points of frame b into frame a; ``T_world_cam`` is camera-to-world.
- Pixel (row i, column j) has its centre at the continuous point ``(u, v) = (j, i)``; the image
  spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, so resizing by s maps ``c -> s (c + 0.5) - 0.5``
  and the ray through pixel (i, j) is ``K^-1 [j, i, 1]``.
- Quaternions are (x, y, z, w), canonical with w >= 0.
"""

from .encodings import (DEPTH_ENCODINGS, SUPPORTED_ENCODINGS, array_to_image, depth_to_metres, image_to_array,
                        metres_to_depth_image, to_rgb8)
from .errors import GeometryError, ImageEncodingError, InvalidIntrinsicsError, ShapeError
from .floor import FloorEstimate, FloorScale, floor_distance, up_from_depth
from .intrinsics import (crop_intrinsics, fov_from_intrinsics, image_center, intrinsics_from_fov, k_from_camera_info,
                         k_to_camera_info, p_from_k, resize_intrinsics, same_camera_lookup, scale_intrinsics,
                         shift_principal_point, validate_intrinsics, zoom_intrinsics)
from .metrics import (DEPTH_ALIGNMENTS, MRA_THRESHOLDS, absolute_trajectory_error, depth_metrics,
                      mean_relative_accuracy, pose_alignment, relative_pose_error, umeyama_alignment)
from .odometry_scale import OdometryScale, ReferenceTrajectory
from .path import PathOdometer, path_length
from .projection import (
    depth_seen_from, depth_to_points, depth_to_world_points, project_points, reproject_depth, transform_points)
from .rays import pixel_centers, plucker_rays, ray_directions
from .transforms import (T_BODY_OPTICAL, T_OPTICAL_BODY, body_to_optical, canonical_quat_xyzw, compose,
                         geodesic_angle, invert_pose, make_pose, moved_beyond, nearest_pose, non_rigid, matrix_from_quat_xyzw, matrix_from_rpy,
                         optical_to_body,
                         pose_from_xyz_quat_xyzw, pose_to_xyz_quat_xyzw, quat_xyzw_from_matrix, relative_pose,
                         rotate_covariance, rotation_angle, rotation_between, so3_exp, so3_log, vector_angle,
                         vertical_axis_of,
                         yaw_from_pose)

__all__ = [
    # errors
    'GeometryError', 'InvalidIntrinsicsError', 'ImageEncodingError', 'ShapeError',
    # intrinsics
    'k_from_camera_info', 'k_to_camera_info', 'p_from_k', 'validate_intrinsics', 'scale_intrinsics',
    'resize_intrinsics', 'crop_intrinsics', 'zoom_intrinsics', 'shift_principal_point', 'fov_from_intrinsics',
    'same_camera_lookup',
    'intrinsics_from_fov', 'image_center',
    # floor
    'FloorEstimate', 'FloorScale', 'floor_distance', 'up_from_depth',
    # a reference odometry's scale
    'OdometryScale', 'ReferenceTrajectory',
    # rays
    'pixel_centers', 'ray_directions', 'plucker_rays',
    # path
    'PathOdometer', 'path_length',
    # projection
    'depth_to_points', 'transform_points', 'depth_to_world_points', 'project_points', 'reproject_depth',
    'depth_seen_from',
    # transforms
    'T_BODY_OPTICAL', 'T_OPTICAL_BODY', 'make_pose', 'nearest_pose', 'non_rigid', 'invert_pose', 'compose', 'relative_pose', 'rotate_covariance',
    'canonical_quat_xyzw', 'quat_xyzw_from_matrix', 'matrix_from_quat_xyzw', 'matrix_from_rpy', 'pose_to_xyz_quat_xyzw',
    'pose_from_xyz_quat_xyzw', 'rotation_angle', 'geodesic_angle', 'moved_beyond', 'so3_exp', 'so3_log', 'optical_to_body',
    'body_to_optical', 'yaw_from_pose', 'vertical_axis_of', 'vector_angle', 'rotation_between',
    # encodings
    'SUPPORTED_ENCODINGS', 'DEPTH_ENCODINGS', 'image_to_array', 'array_to_image', 'to_rgb8', 'depth_to_metres',
    'metres_to_depth_image',
    # metrics
    'depth_metrics', 'DEPTH_ALIGNMENTS', 'umeyama_alignment', 'absolute_trajectory_error', 'relative_pose_error', 'pose_alignment',
    'mean_relative_accuracy', 'MRA_THRESHOLDS',
]
