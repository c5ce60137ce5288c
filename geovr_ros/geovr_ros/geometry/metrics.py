"""Evaluation metrics: depth, trajectories (ATE, RPE) and VSI-Bench's Mean Relative Accuracy.

Depth in metres; positions in metres; rotation errors reported in degrees where the key says
``_deg``. Poses are camera-to-world (N, 4, 4).
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from ._arrays import as_float_array
from .errors import GeometryError, ShapeError
from .transforms import invert_pose, rotation_angle

__all__ = [
    'depth_metrics',
    'DEPTH_ALIGNMENTS',
    'umeyama_alignment',
    'pose_alignment',
    'absolute_trajectory_error',
    'relative_pose_error',
    'mean_relative_accuracy',
    'MRA_THRESHOLDS',
]


DepthAlignment = Literal['metric', 'median', 'affine']
DEPTH_ALIGNMENTS: tuple[str, ...] = get_args(DepthAlignment)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None,
                  alignment: DepthAlignment = 'metric', min_depth: float = 1e-3,
                  max_depth: float | None = None) -> dict[str, float]:
    """Standard monocular-depth errors of `pred` against `gt` (same shape, metres).

    Pixels count when gt is finite and in ``[min_depth, max_depth]``, pred is finite and > 0, and
    `valid` (bool, same shape) is true. `alignment` says what pred is granted before it is scored:
    ``'metric'`` nothing (the default); ``'median'`` a scale, ``median(gt) / median(pred)`` over
    those pixels (reported as ``median_scale``); ``'affine'`` a scale and a shift of its
    disparity (1 / depth) fitted to gt's by least squares, the
    relative-depth protocol of MiDaS and Depth Anything, with the aligned depth capped at
    `max_depth` or gt's farthest pixel (reported as ``disparity_scale`` and
    ``disparity_shift``, 1/m): it scores the shape alone, whatever the prediction's contrast.
    Returns abs_rel, sq_rel (m), rmse (m), log_rmse, delta1..3 (fraction with
    ``max(p/g, g/p) < 1.25**k``) and n_valid. Raises GeometryError when no pixel is valid or
    the alignment is unknown.
    """
    if alignment not in DEPTH_ALIGNMENTS:
        raise GeometryError(f'alignment must be one of {DEPTH_ALIGNMENTS}, not {alignment!r}')
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ShapeError(f'pred {pred.shape} and gt {gt.shape} must have the same shape')
    with np.errstate(invalid='ignore'):
        mask = np.isfinite(gt) & (gt > 0) & (gt >= min_depth) & np.isfinite(pred) & (pred > 0)
        if max_depth is not None:
            mask &= gt <= max_depth
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != gt.shape:
            raise ShapeError(f'valid {valid.shape} must have the shape of gt {gt.shape}')
        mask &= valid
    if not np.any(mask):
        raise GeometryError(f'no valid pixel to evaluate (min_depth={min_depth}, max_depth={max_depth}, '
                            f'{gt.size} pixels)')
    p, g = pred[mask], gt[mask]
    result: dict[str, float] = {}
    if alignment == 'median':
        scale = float(np.median(g) / np.median(p))
        p = p * scale
        result['median_scale'] = scale
    elif alignment == 'affine':
        design = np.stack([1.0 / p, np.ones_like(p)], axis=1)
        (scale, shift), *_ = np.linalg.lstsq(design, 1.0 / g, rcond=None)
        farthest = max_depth if max_depth is not None else float(g.max())
        p = 1.0 / np.maximum(scale / p + shift, 1.0 / farthest)
        result.update(disparity_scale=float(scale), disparity_shift=float(shift))
    ratio = np.maximum(p / g, g / p)
    result.update(
        abs_rel=float(np.mean(np.abs(p - g) / g)),
        sq_rel=float(np.mean((p - g) ** 2 / g)),
        rmse=float(np.sqrt(np.mean((p - g) ** 2))),
        log_rmse=float(np.sqrt(np.mean((np.log(p) - np.log(g)) ** 2))),
        delta1=float(np.mean(ratio < 1.25)),
        delta2=float(np.mean(ratio < 1.25 ** 2)),
        delta3=float(np.mean(ratio < 1.25 ** 3)),
        n_valid=float(p.size),
    )
    return result


def umeyama_alignment(src: np.ndarray, dst: np.ndarray, with_scale: bool) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R (3, 3), t (3,)) minimising ``sum ||dst_i - (s R src_i + t)||^2`` (Umeyama 1991).

    `src`, `dst` are (N, 3) corresponding points, N >= 3; s = 1 when not `with_scale`.
    Raises GeometryError for non-finite points or, with scale, for coincident source points.
    """
    src = as_float_array(src, 'src', (3,), finite=True)
    dst = as_float_array(dst, 'dst', (3,), finite=True)
    if src.ndim != 2 or src.shape != dst.shape:
        raise ShapeError(f'src {src.shape} and dst {dst.shape} must both be (N, 3)')
    n = src.shape[0]
    if n < 3:
        raise GeometryError(f'alignment needs at least 3 points, got {n}')
    mu_src, mu_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mu_src, dst - mu_dst
    covariance = dst_c.T @ src_c / n
    U, singular, Vt = np.linalg.svd(covariance)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    if with_scale:
        var_src = float(np.mean(np.sum(src_c ** 2, axis=1)))
        if var_src <= 1e-24:
            raise GeometryError(f'cannot estimate a scale: the {n} source points coincide')
        scale = float(np.sum(singular * np.diag(S)) / var_src)
    else:
        scale = 1.0
    t = mu_dst - scale * R @ mu_src
    return scale, R, t


def pose_alignment(est: np.ndarray, gt: np.ndarray, rotation_weight: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Rigid (R (3, 3), t (3,)) placing the frame of the `est` poses onto that of the `gt` poses
    (both (N, 4, 4) camera-to-frame, N >= 1): the least squares of the positions' errors
    ``||p_gt - (R p_est + t)||^2`` plus `rotation_weight` (m^2) times the orientations'
    ``||R_gt - R R_est||_F^2``, solved in closed form (the SVD of their summed correlations).

    A fit of positions alone (`umeyama_alignment`) turns freely about a path that hardly moves
    (a camera looking around from one spot) and tilts about a nearly straight one; the
    orientations fix both. With weight 1 a rotation error of theta counts as moving a point 1 m
    in front of the camera by about theta metres. Raises GeometryError for non-finite poses or a
    negative weight."""
    est = as_float_array(est, 'est', (4, 4), finite=True).reshape(-1, 4, 4)
    gt = as_float_array(gt, 'gt', (4, 4), finite=True).reshape(-1, 4, 4)
    if est.shape != gt.shape or len(est) == 0:
        raise ShapeError(f'est {est.shape} and gt {gt.shape} must both be (N, 4, 4) with N >= 1')
    if not (rotation_weight >= 0 and np.isfinite(rotation_weight)):
        raise GeometryError(f'rotation_weight {rotation_weight} must be finite and >= 0')
    p, q = est[:, :3, 3], gt[:, :3, 3]
    mu_p, mu_q = p.mean(axis=0), q.mean(axis=0)
    correlation = (q - mu_q).T @ (p - mu_p) + rotation_weight * np.einsum('nij,nkj->ik', gt[:, :3, :3], est[:, :3, :3])
    U, _, Vt = np.linalg.svd(correlation)
    S = np.diag([1.0, 1.0, float(np.sign(np.linalg.det(U @ Vt)) or 1.0)])
    R = U @ S @ Vt
    return R, mu_q - R @ mu_p


def _positions(trajectory, name: str) -> np.ndarray:
    array = np.asarray(trajectory, dtype=np.float64)
    if array.ndim == 3 and array.shape[1:] == (4, 4):
        return array[:, :3, 3]
    if array.ndim == 2 and array.shape[1] == 3:
        return array
    raise ShapeError(f'{name} must be (N, 4, 4) poses or (N, 3) positions, got {array.shape}')


def absolute_trajectory_error(est: np.ndarray, gt: np.ndarray,
                              alignment: Literal['sim3', 'se3', 'none'] = 'sim3') -> dict[str, float]:
    """Absolute trajectory error (metres) of `est` against `gt` after aligning est onto gt.

    `est`, `gt`: (N, 4, 4) camera-to-world poses or (N, 3) positions, same N. `alignment`: 'sim3'
    (Umeyama with scale), 'se3' (rigid) or 'none'. Returns rmse, mean, median, max of the position
    errors and the alignment scale (1 unless sim3).
    """
    est_xyz, gt_xyz = _positions(est, 'est'), _positions(gt, 'gt')
    if est_xyz.shape != gt_xyz.shape:
        raise ShapeError(f'est {est_xyz.shape} and gt {gt_xyz.shape} must hold the same number of positions')
    if alignment == 'none':
        scale, aligned = 1.0, est_xyz
    elif alignment in ('sim3', 'se3'):
        scale, R, t = umeyama_alignment(est_xyz, gt_xyz, with_scale=alignment == 'sim3')
        aligned = scale * est_xyz @ R.T + t
    else:
        raise GeometryError(f"alignment must be 'sim3', 'se3' or 'none', got {alignment!r}")
    errors = np.linalg.norm(aligned - gt_xyz, axis=1)
    return {
        'rmse': float(np.sqrt(np.mean(errors ** 2))),
        'mean': float(np.mean(errors)),
        'median': float(np.median(errors)),
        'max': float(np.max(errors)),
        'scale': float(scale),
    }


def relative_pose_error(est: np.ndarray, gt: np.ndarray, delta: int = 1) -> dict[str, float]:
    """Relative pose error over frame pairs (i, i + delta), no alignment or scaling.

    `est`, `gt`: (N, 4, 4) camera-to-world poses. For each pair the error is
    ``E = inv(inv(gt_i) gt_j) @ (inv(est_i) est_j)``; its translation norm (metres) and rotation
    angle (degrees) give trans_rmse, trans_mean, rot_rmse_deg and rot_mean_deg.
    """
    est = as_float_array(est, 'est', (4, 4))
    gt = as_float_array(gt, 'gt', (4, 4))
    if est.ndim != 3 or est.shape != gt.shape:
        raise ShapeError(f'est {est.shape} and gt {gt.shape} must both be (N, 4, 4)')
    n = est.shape[0]
    if isinstance(delta, bool) or not isinstance(delta, (int, np.integer)) or not 1 <= delta < n:
        raise GeometryError(f'delta must be an integer in [1, {n - 1}] for {n} poses, got {delta!r}')
    rel_est = invert_pose(est[:-delta]) @ est[delta:]
    rel_gt = invert_pose(gt[:-delta]) @ gt[delta:]
    error = invert_pose(rel_gt) @ rel_est
    trans = np.linalg.norm(error[:, :3, 3], axis=1)
    rot_deg = np.degrees(np.atleast_1d(rotation_angle(error[:, :3, :3])))
    return {
        'trans_rmse': float(np.sqrt(np.mean(trans ** 2))),
        'rot_rmse_deg': float(np.sqrt(np.mean(rot_deg ** 2))),
        'trans_mean': float(np.mean(trans)),
        'rot_mean_deg': float(np.mean(rot_deg)),
    }


MRA_THRESHOLDS: np.ndarray = np.arange(50, 100, 5) / 100.0
"""VSI-Bench confidence thresholds theta = 0.50, 0.55, ..., 0.95."""
MRA_THRESHOLDS.setflags(write=False)


def mean_relative_accuracy(pred, gt, variant: Literal['paper', 'lmms_eval'] = 'paper') -> float:
    """VSI-Bench Mean Relative Accuracy in [0, 1] of numeric answers (scalars or arrays, mean over items).

    'paper' (default, the paper's formula): ``mean over theta in {0.50, ..., 0.95} of
    1[|pred - gt| / |gt| < 1 - theta]``. 'lmms_eval' reproduces the official lmms-eval code, which
    uses ``np.linspace(0.5, 0.95, 11)`` and ``<=``. `gt` must be finite and non-zero; a NaN or
    infinite prediction scores 0.
    """
    pred = np.atleast_1d(np.asarray(pred, dtype=np.float64))
    gt = np.atleast_1d(np.asarray(gt, dtype=np.float64))
    try:
        pred, gt = np.broadcast_arrays(pred, gt)
    except ValueError as exc:
        raise ShapeError(f'pred {pred.shape} and gt {gt.shape} do not match') from exc
    if gt.size == 0:
        raise GeometryError('mean_relative_accuracy needs at least one item, got none')
    if not np.all(np.isfinite(gt)) or np.any(gt == 0):
        raise GeometryError(f'gt must be finite and non-zero, got {gt.tolist()}')
    with np.errstate(invalid='ignore'):
        relative = np.abs(pred - gt) / np.abs(gt)
        relative = np.where(np.isfinite(relative), relative, np.inf)[..., None]
        if variant == 'paper':
            hits = relative < (100 - np.arange(50, 100, 5)) / 100.0
        elif variant == 'lmms_eval':
            hits = relative <= 1 - np.linspace(0.5, 0.95, 11)
        else:
            raise GeometryError(f"variant must be 'paper' or 'lmms_eval', got {variant!r}")
    return float(np.mean(hits))
