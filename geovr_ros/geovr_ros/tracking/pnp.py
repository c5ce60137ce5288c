"""Camera pose from 3D-2D correspondences: PnP with RANSAC, LM refinement on the inliers, and
the pose covariance from the inliers' reprojection geometry."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PnPSolution:
    """T_cam_points: (4, 4) pose of the points' frame in the camera (X_cam = T @ X_points);
    inliers: int64 indices into the correspondences; rms_px: inlier reprojection RMS, pixels;
    covariance: (6, 6) of (x, y, z, roll, pitch, yaw) of the camera in the points' frame
    (m^2, rad^2; first-order from the reprojection Jacobian), or None if singular."""

    T_cam_points: np.ndarray
    inliers: np.ndarray
    rms_px: float
    covariance: np.ndarray | None


@dataclass(frozen=True)
class PoseUncertainty:
    """What PnP's covariance leaves out when its points were lifted from a learned depth map:
    its reprojection covariance sees the pixels' noise only. reprojection_factor multiplies it
    (the residuals of points whose depth is off are larger than the inliers' RMS says);
    scale_sigma: the depth's relative scale error, which moves the camera along its offset from
    the points' frame (that fraction of the offset); floor_m / floor_rad: standard deviations
    added on every axis; rad_per_rad: rotation error per radian the camera turned from the
    points' frame. Calibrated against true poses where used (`LEARNED_DEPTH_PNP`,
    `LocalizerConfig`)."""

    reprojection_factor: float = 1.0
    scale_sigma: float = 0.0
    floor_m: float = 0.0
    floor_rad: float = 0.0
    rad_per_rad: float = 0.0

    def covariance(self, reprojection: np.ndarray | None, T_points_cam: np.ndarray) -> np.ndarray:
        """(6, 6) covariance of the camera pose `T_points_cam` (4, 4) in the points' frame,
        ROS order (position, rotation) in the points' axes, m^2 and rad^2, from PnP's
        `reprojection` covariance (`PnPSolution.covariance`, None for none)."""
        from geovr_ros.geometry import rotation_angle
        T = np.asarray(T_points_cam, np.float64)
        covariance = np.zeros((6, 6)) if reprojection is None else self.reprojection_factor * np.array(reprojection, np.float64)
        offset = T[:3, 3]
        covariance[:3, :3] += self.scale_sigma ** 2 * np.outer(offset, offset) + self.floor_m ** 2 * np.eye(3)
        turned = float(rotation_angle(T[:3, :3]))
        covariance[3:, 3:] += (self.floor_rad ** 2 + (self.rad_per_rad * turned) ** 2) * np.eye(3)
        return covariance


# A PnP pose on points lifted from the shipped model's depth (calibrated so that about 0.9 of the
# poses-from-keyframe errors fall inside the 95 % ellipsoid on rendered rooms, a rendered loop,
# hololens_office and tum_fr1_rpy: models/geovr_s_v2/README.md, "The odometry covariance").
LEARNED_DEPTH_PNP = PoseUncertainty(reprojection_factor=4.0, scale_sigma=0.2, floor_m=0.01, floor_rad=0.01,
                                    rad_per_rad=0.05)


def _pose(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    import cv2
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.ravel()
    return T


def solve_pnp(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, guess_T_cam_points: np.ndarray | None = None,
              threshold_px: float = 2.0, iterations: int = 200, min_inliers: int = 12,
              min_inlier_ratio: float = 0.0) -> PnPSolution | None:
    """Pose of a camera seeing `points` (N, 3, metres, any frame) at `pixels` (N, 2) with K (3, 3).

    Returns None when fewer than `min_inliers`, or less than `min_inlier_ratio` of the
    correspondences, agree within `threshold_px`."""
    import cv2
    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    pixels = np.ascontiguousarray(pixels, dtype=np.float64).reshape(-1, 2)
    if len(points) < max(min_inliers, 6):
        return None
    # RANSAC from the guess, Levenberg-Marquardt on its inliers, then the inliers chosen again
    # with the refined pose (RANSAC's are those of a hypothesis) and refined once more.
    use_guess = guess_T_cam_points is not None
    rvec, tvec = _rvec_tvec(guess_T_cam_points) if use_guess else (np.zeros((3, 1)), np.zeros((3, 1)))
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        points, pixels, K, None, rvec, tvec, useExtrinsicGuess=use_guess, iterationsCount=iterations,
        reprojectionError=threshold_px, confidence=0.999, flags=cv2.SOLVEPNP_ITERATIVE if use_guess else cv2.SOLVEPNP_EPNP)
    if not ok or inliers is None or len(inliers) < min_inliers:
        return None
    inliers = inliers.ravel().astype(np.int64)
    rvec, tvec = cv2.solvePnPRefineLM(points[inliers], pixels[inliers], K, None, rvec, tvec)
    refined = _within(points, pixels, K, rvec, tvec, threshold_px)
    if len(refined) < max(min_inliers, min_inlier_ratio * len(points)):
        return None
    if not np.array_equal(refined, inliers):
        inliers = refined
        rvec, tvec = cv2.solvePnPRefineLM(points[inliers], pixels[inliers], K, None, rvec, tvec)
    return _solution(points, pixels, K, rvec, tvec, inliers)


def refine_pnp(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, guess_T_cam_points: np.ndarray,
               threshold_px: float = 2.0, min_inliers: int = 12, min_inlier_ratio: float = 0.5,
               rounds: tuple[float, ...] = (4.0, 2.0, 1.0)) -> PnPSolution | None:
    """The pose near a good guess without RANSAC (ORB-SLAM's tracking with a motion model):
    the correspondences within `rounds[0]` x `threshold_px` of their projection under the
    guess are refined by Levenberg-Marquardt, the inliers are chosen again at each smaller
    multiple and refined again; the last multiple must be 1 (the final inliers are those within
    `threshold_px`). Arguments as `solve_pnp`. Returns None when fewer than `min_inliers` or
    less than `min_inlier_ratio` of the correspondences agree in the end, or the refinement
    leaves non-finite numbers: the caller then runs RANSAC (`solve_pnp`)."""
    import cv2
    points = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
    pixels = np.ascontiguousarray(pixels, dtype=np.float64).reshape(-1, 2)
    if not rounds or rounds[-1] != 1.0:
        raise ValueError(f'rounds must end with 1 (the final inliers within threshold_px), got {rounds}')
    if len(points) < max(min_inliers, 6):
        return None
    rvec, tvec = _rvec_tvec(guess_T_cam_points)
    for multiple in rounds:
        inliers = _within(points, pixels, K, rvec, tvec, multiple * threshold_px)
        if len(inliers) < max(min_inliers, 6):
            return None
        rvec, tvec = cv2.solvePnPRefineLM(points[inliers], pixels[inliers], K, None, rvec, tvec)
        if not (np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec))):
            return None
    inliers = _within(points, pixels, K, rvec, tvec, threshold_px)
    if len(inliers) < min_inliers or len(inliers) < min_inlier_ratio * len(points):
        return None
    return _solution(points, pixels, K, rvec, tvec, inliers)


def _rvec_tvec(T_cam_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's (rvec (3, 1), tvec (3, 1)) of a (4, 4) pose."""
    import cv2
    T = np.asarray(T_cam_points, np.float64)
    return cv2.Rodrigues(T[:3, :3])[0], T[:3, 3].reshape(3, 1).copy()


def _within(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
            threshold_px: float) -> np.ndarray:
    """Indices of the correspondences whose points project within `threshold_px` of their pixels
    (points behind the camera never do). Numpy rather than cv2.projectPoints: 4x faster for a
    few hundred points, and this runs four times a frame."""
    import cv2
    homogeneous = (points @ cv2.Rodrigues(rvec)[0].T + tvec.reshape(1, 3)) @ np.asarray(K, np.float64).T
    z = homogeneous[:, 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        du = homogeneous[:, 0] / z - pixels[:, 0]
        dv = homogeneous[:, 1] / z - pixels[:, 1]
        return np.flatnonzero((z > 0) & (du * du + dv * dv <= threshold_px ** 2))


def _solution(points: np.ndarray, pixels: np.ndarray, K: np.ndarray, rvec: np.ndarray, tvec: np.ndarray,
              inliers: np.ndarray) -> PnPSolution:
    """The PnPSolution of a refined pose: inlier RMS and covariance from the reprojection Jacobian."""
    import cv2
    projected, jacobian = cv2.projectPoints(points[inliers], rvec, tvec, K, None)
    residuals = (projected.reshape(-1, 2) - pixels[inliers]).ravel()
    rms = float(np.sqrt(np.mean(residuals ** 2)))
    T_cam_points = _pose(rvec, tvec)
    return PnPSolution(T_cam_points, inliers, rms, _camera_covariance(jacobian[:, :6], residuals, T_cam_points))


def _camera_covariance(jacobian: np.ndarray, residuals: np.ndarray, T_cam_points: np.ndarray) -> np.ndarray | None:
    """First-order covariance of the camera pose in the points' frame from the Jacobian of the
    reprojections wrt (rvec, tvec): sigma^2 (J^T J)^-1, mapped to (position, rotation)."""
    dof = max(len(residuals) - 6, 1)
    sigma2 = max(float(residuals @ residuals) / dof, 0.25 ** 2)  # at least a quarter pixel of noise
    info = jacobian.T @ jacobian
    if not np.all(np.isfinite(info)):
        return None
    eigenvalues, eigenvectors = np.linalg.eigh(info)
    if eigenvalues[0] <= 1e-12 * eigenvalues[-1]:   # condition number above 1e12: singular
        return None
    cov_rt = sigma2 * (eigenvectors / eigenvalues) @ eigenvectors.T  # of (rvec, tvec) of T_cam_points
    # camera position c = -R^T t: dc/dt = -R^T; dc/drvec ~ [c]x R^T (small rotation about the current one)
    R = T_cam_points[:3, :3]
    c = -R.T @ T_cam_points[:3, 3]
    skew = np.array([[0, -c[2], c[1]], [c[2], 0, -c[0]], [-c[1], c[0], 0]])
    J = np.zeros((6, 6))
    J[:3, :3] = skew @ R.T
    J[:3, 3:] = -R.T
    J[3:, :3] = -R.T  # the camera's rotation is the inverse of the points' rotation
    cov = J @ cov_rt @ J.T
    return 0.5 * (cov + cov.T)
