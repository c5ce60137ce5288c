"""Bundle adjustment of a sliding window of keyframes (pure numpy).

The keyframes' poses and their shared points are solved together from every keyframe that
sees a point, so that the trajectory takes the points' positions from the parallax between
views rather than from one depth map's shape. Each point is anchored in the first keyframe
that saw it: its ray there is fixed (the keypoint) and its inverse depth is free, as in DSO
and LSD-SLAM; the model's depth of it in the anchor is a prior on that depth (log-normal), which
also holds the metric scale where the views cannot. Gauss-Newton with Levenberg-Marquardt
damping; the inverse depths are eliminated by their Schur complement (each is one number, its
block diagonal), so a step costs one (6F x 6F) solve for F free poses. A Huber loss on the
reprojection error in pixels keeps a wrong correspondence from bending the window.

Poses are (4, 4) camera-to-world matrices of the optical frame; metres; pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import so3_exp


@dataclass(frozen=True)
class BundleConfig:
    """iterations: most Levenberg-Marquardt steps; huber_px: the reprojection error (pixels) beyond
    which an observation's weight falls as 1/error; depth_sigma: standard deviation of the log
    of a point's depth about the model's (0.1: within about 10 %);
    outlier_px: an observation further than this from its projection after the adjustment is
    reported an outlier."""

    iterations: int = 2
    huber_px: float = 1.5
    depth_sigma: float = 0.1
    outlier_px: float = 4.0

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise ValueError(f'iterations must be >= 1, got {self.iterations!r}')
        for name in ('huber_px', 'depth_sigma', 'outlier_px'):
            if not np.isfinite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f'{name} must be a positive number, got {getattr(self, name)!r}')


@dataclass(frozen=True)
class WindowBundle:
    """The problem. F keyframes, L points, M observations.

    T_world_cam (F, 4, 4); fixed (F,) bool: poses held where they are (at least one, the gauge);
    K (F, 3, 3). Points: anchor (L,) keyframe index; bearing (L, 3) the ray (x, y, 1) on the
    anchor's normalised image plane; depth (L,) metres along the anchor's z, the start;
    prior_depth (L,) metres, the model's. Observations in the other keyframes: frame (M,),
    point (M,), pixels (M, 2) (the anchor's own observation is its bearing, not listed)."""

    T_world_cam: np.ndarray
    fixed: np.ndarray
    K: np.ndarray
    anchor: np.ndarray
    bearing: np.ndarray
    depth: np.ndarray
    prior_depth: np.ndarray
    frame: np.ndarray
    point: np.ndarray
    pixels: np.ndarray

    def __post_init__(self) -> None:
        F, L, M = len(self.T_world_cam), len(self.anchor), len(self.frame)
        shapes = {'T_world_cam': (F, 4, 4), 'fixed': (F,), 'K': (F, 3, 3), 'bearing': (L, 3), 'depth': (L,),
                  'prior_depth': (L,), 'point': (M,), 'pixels': (M, 2)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f'{name} must have shape {shape}, got {np.shape(getattr(self, name))}')
        if not np.any(self.fixed):
            raise ValueError('at least one pose must be fixed (the gauge)')
        if L and (np.any(self.depth <= 0) or np.any(self.prior_depth <= 0)):
            raise ValueError('depths must be positive')
        if M and (self.frame.min() < 0 or self.frame.max() >= F or self.point.min() < 0 or self.point.max() >= L):
            raise ValueError('observation indices out of range')
        if M and np.any(self.anchor[self.point] == self.frame):
            raise ValueError("an observation in the point's own anchor keyframe (its bearing is that observation)")


@dataclass(frozen=True)
class BundleResult:
    """T_world_cam (F, 4, 4) adjusted (fixed ones unchanged); depth (L,) metres along the
    anchors' z; rms_px_before, rms_px_after: reprojection RMS of the observations in front of
    their cameras; outliers (M,) bool: further than BundleConfig.outlier_px after, or behind the
    camera; iterations: steps taken (accepted or not)."""

    T_world_cam: np.ndarray
    depth: np.ndarray
    rms_px_before: float
    rms_px_after: float
    outliers: np.ndarray
    iterations: int


def _apply(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(M, 3) rotations R (M, 3, 3) applied to vectors v (M, 3) (einsum: numpy's matmul is slow
    on many 3 x 3 matrices)."""
    return np.einsum('mij,mj->mi', R, v)


class _Evaluation:
    """Residuals (and, asked, Jacobians) of a window at poses T (F, 4, 4) and log inverse depths s (L,)."""

    def __init__(self, problem: WindowBundle, anchor: np.ndarray, K: np.ndarray, T: np.ndarray, s: np.ndarray,
                 jacobians: bool):
        p = problem
        Ra, ta = T[anchor, :3, :3], T[anchor, :3, 3]
        Rj, tj = T[p.frame, :3, :3], T[p.frame, :3, 3]
        RjT = np.transpose(Rj, (0, 2, 1))
        x_anchor = p.bearing[p.point] * np.exp(-s[p.point])[:, None]      # in the anchor's frame
        world = _apply(Ra, x_anchor) + ta
        cam = _apply(RjT, world - tj)                                       # R_j^T (world - t_j)
        z = cam[:, 2]
        self.front = z > 1e-3
        zs = np.where(self.front, z, 1.0)
        fx, fy = K[:, 0, 0], K[:, 1, 1]
        u = fx * cam[:, 0] / zs + K[:, 0, 2]
        v = fy * cam[:, 1] / zs + K[:, 1, 2]
        self.residual = np.where(self.front[:, None], np.stack([u, v], 1) - p.pixels, 0.0)    # (M, 2)
        self.prior = (-s - np.log(p.prior_depth))                                            # (L,) log depth error
        if not jacobians:
            return
        # d(u, v) / d cam, times d cam / d world = R_j^T: row i of J_point is
        # f_i / z (R_j^T row i - cam_i / z R_j^T row 2)
        front = self.front[:, None]
        J_point = np.empty((len(z), 2, 3))
        J_point[:, 0] = np.where(front, (fx / zs)[:, None] * (RjT[:, 0] - (cam[:, 0] / zs)[:, None] * RjT[:, 2]), 0.0)
        J_point[:, 1] = np.where(front, (fy / zs)[:, None] * (RjT[:, 1] - (cam[:, 1] / zs)[:, None] * RjT[:, 2]), 0.0)
        # d cam / d s = R_j^T R_a (-x_anchor); d cam / d(omega, v) of the anchor = R_j^T [-[world]x, I];
        # of the observer = [R_j^T [world]x, -R_j^T] (left perturbations of camera-to-world poses);
        # a row a times [world]x is the cross product a x world
        self.J_s = np.einsum('mrk,mk->mr', J_point, _apply(Ra, -x_anchor))                        # (M, 2)
        J_rotation = np.cross(J_point, world[:, None, :])                                          # (M, 2, 3)
        self.J_anchor = np.concatenate([-J_rotation, J_point], axis=2)                            # (M, 2, 6)
        self.J_frame = np.concatenate([J_rotation, -J_point], axis=2)                             # (M, 2, 6)


def _huber_weights(residual: np.ndarray, front: np.ndarray, k: float) -> np.ndarray:
    error = np.linalg.norm(residual, axis=1)
    weight = np.where(error <= k, 1.0, k / np.maximum(error, 1e-12))
    return np.where(front, weight, 0.0)


def _cost(evaluation: _Evaluation, k: float, sigma: float) -> float:
    error = np.linalg.norm(evaluation.residual, axis=1)
    huber = np.where(error <= k, 0.5 * error ** 2, k * (error - 0.5 * k))
    behind = (~evaluation.front).sum() * 0.5 * (10 * k) ** 2     # a point behind a camera costs like a far outlier
    return float(huber[evaluation.front].sum() + behind + 0.5 * np.sum((evaluation.prior / sigma) ** 2))


def _rms(evaluation: _Evaluation) -> float:
    r = evaluation.residual[evaluation.front]
    return float(np.sqrt(np.mean(np.sum(r ** 2, axis=1)))) if len(r) else float('nan')


def _normal_equations(problem: WindowBundle, anchor: np.ndarray, evaluation: _Evaluation, weight: np.ndarray,
                      inv_var: float):
    """Gauss-Newton's (H_pp (6F, 6F), b_p (6F,), H_sp (L, 6F), D (L,), b_s (L,)) over every pose
    (fixed ones included; the caller drops them): H = J^T W J and b = -J^T W r, D the diagonal
    block of the inverse depths."""
    p = problem
    F, L, M = len(p.T_world_cam), len(p.anchor), len(p.frame)
    sqrt_w = np.sqrt(weight)[:, None]
    A = evaluation.J_anchor * sqrt_w[:, :, None]                 # (M, 2, 6) weighted, the anchor's pose
    B = evaluation.J_frame * sqrt_w[:, :, None]                  # (M, 2, 6) weighted, the observer's
    rows = np.arange(M)
    J = np.zeros((M, 2, F, 6))                                   # the poses' Jacobian, dense (12 of 6F per row)
    J[rows, :, anchor] = A
    J[rows, :, p.frame] = B
    J = J.reshape(M, 2, 6 * F)
    js = evaluation.J_s * sqrt_w                                 # (M, 2)
    r = evaluation.residual * sqrt_w
    flat = J.reshape(2 * M, 6 * F)
    H_pp = flat.T @ flat
    b_p = -(flat.T @ r.reshape(-1))
    D = np.bincount(p.point, weights=np.sum(js ** 2, axis=1), minlength=L) + inv_var
    # the prior's residual is (-s - log prior) / sigma, its derivative -1 / sigma: -J^T r = +prior / sigma^2
    b_s = -np.bincount(p.point, weights=np.sum(js * r, axis=1), minlength=L) + evaluation.prior * inv_var
    # a row of H_sp has two 6-blocks per observation (its anchor's, its keyframe's): summed
    # block by block over (point, keyframe), not over the dense rows (np.add.at is slower)
    blocks = np.concatenate([A[:, 0] * js[:, :1] + A[:, 1] * js[:, 1:], B[:, 0] * js[:, :1] + B[:, 1] * js[:, 1:]])
    H_sp = np.zeros((L * F, 6))
    order, starts, present = _grouping(np.concatenate([p.point * F + anchor, p.point * F + p.frame]))
    if len(order):
        H_sp[present] = np.add.reduceat(blocks[order], starts)
    return H_pp, b_p, H_sp.reshape(L, 6 * F), D, b_s


def _grouping(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order of `keys` sorted, where each key's run starts in that order, the keys present
    ascending) for np.add.reduceat."""
    order = np.argsort(keys, kind='stable')
    present, starts = np.unique(keys[order], return_index=True)
    return order, starts, present


def adjust_window(problem: WindowBundle, config: BundleConfig | None = None) -> BundleResult:
    """Levenberg-Marquardt on `problem` (see the module docstring)."""
    cfg = config or BundleConfig()
    p = problem
    T = np.array(p.T_world_cam, dtype=np.float64)
    s = -np.log(np.asarray(p.depth, dtype=np.float64))
    anchor = p.anchor[p.point]
    K = p.K[p.frame]
    free = np.flatnonzero(~p.fixed)
    columns = (6 * free[:, None] + np.arange(6)).reshape(-1)
    inv_var = 1.0 / cfg.depth_sigma ** 2
    current = _Evaluation(p, anchor, K, T, s, jacobians=True)
    rms_before = _rms(current)
    cost = _cost(current, cfg.huber_px, cfg.depth_sigma)
    lam, steps = 1e-4, 0
    for steps in range(1, cfg.iterations + 1):
        weight = _huber_weights(current.residual, current.front, cfg.huber_px)
        H_pp, b_p, H_sp, D, b_s = _normal_equations(p, anchor, current, weight, inv_var)
        H_pp, b_p, H_sp = H_pp[np.ix_(columns, columns)], b_p[columns], H_sp[:, columns]
        accepted = False
        for _ in range(4):
            D_damped = D * (1.0 + lam)
            S = H_pp + lam * np.diag(np.diag(H_pp)) + 1e-9 * np.eye(len(columns)) - (H_sp.T / D_damped) @ H_sp
            rhs = b_p - H_sp.T @ (b_s / D_damped)
            try:
                dp = np.linalg.solve(S, rhs)
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            ds = (b_s - H_sp @ dp) / D_damped
            T_new = T.copy()
            if len(free):
                step = dp.reshape(-1, 6)
                E = np.tile(np.eye(4), (len(free), 1, 1))
                E[:, :3, :3] = so3_exp(step[:, :3])
                E[:, :3, 3] = step[:, 3:]
                T_new[free] = E @ T[free]
            s_new = s + ds
            trial = _Evaluation(p, anchor, K, T_new, s_new, jacobians=True)   # most steps are taken
            trial_cost = _cost(trial, cfg.huber_px, cfg.depth_sigma)
            if np.isfinite(trial_cost) and trial_cost < cost:
                T, s, cost, current = T_new, s_new, trial_cost, trial
                lam = max(lam / 10.0, 1e-7)
                accepted = True
                break
            lam *= 10.0
        if not accepted:
            break
    error = np.linalg.norm(current.residual, axis=1)
    return BundleResult(T, np.exp(-s), rms_before, _rms(current), ~current.front | (error > cfg.outlier_px), steps)
