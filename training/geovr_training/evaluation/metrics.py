"""Metrics of a sequence prediction against ground truth (all from `geovr_ros.geometry`)."""

from __future__ import annotations

import numpy as np

from geovr_ros.geometry import (DEPTH_ALIGNMENTS, FloorScale, GeometryError, absolute_trajectory_error, depth_metrics,
                                floor_distance, relative_pose_error, vertical_axis_of)
from geovr_training.evaluation.predict import SequencePrediction
from geovr_training.losses.depth import EDGE_JUMP_LOG, EDGE_RADIUS_PX  # what a depth edge is, trained and scored


def clip_scales_gt(depth_gt: np.ndarray) -> np.ndarray:
    """Median valid depth of each clip (i, i+1), (N-1,) metres: the scale head's target."""
    with np.errstate(all='ignore'):
        return np.array([np.nanmedian(np.where(depth_gt[i:i + 2] > 0, depth_gt[i:i + 2], np.nan))
                         for i in range(len(depth_gt) - 1)])


def depth_summary(pred: np.ndarray, gt: np.ndarray,
                  alignments: tuple[str, ...] = DEPTH_ALIGNMENTS) -> dict[str, float]:
    """Depth metrics averaged over frames (N, H, W): metric, median-scaled and affine-aligned
    (scale and shift of the disparity) per frame, as `alignments` asks; keys
    ``depth_{alignment}_{abs_rel,rmse,delta1}`` and ``depth_frames``."""
    rows: dict[str, list] = {alignment: [] for alignment in alignments}
    for p, g in zip(pred, gt):
        if not np.any(np.isfinite(g) & (g > 0)):
            continue
        for alignment, items in rows.items():
            items.append(depth_metrics(p, g, alignment=alignment))
    out: dict[str, float] = {}
    for mode, items in rows.items():
        for key in ('abs_rel', 'rmse', 'delta1'):
            out[f'depth_{mode}_{key}'] = float(np.mean([r[key] for r in items])) if items else float('nan')
    out['depth_frames'] = float(len(rows[alignments[0]]))
    return out


def depth_edge_summary(pred: np.ndarray, gt: np.ndarray, jump_log: float = EDGE_JUMP_LOG,
                       radius_px: int = EDGE_RADIUS_PX) -> dict[str, float]:
    """Depth at the true depth edges, where an object's outline is, against flat ground.

    pred, gt (N, H, W) metres (NaN / 0 invalid). A pixel is on an edge when the true log-depth
    `radius_px` pixels away (left, right, up or down) differs by more than `jump_log`; on its
    near side when that neighbour is farther; on flat ground when no such neighbour differs by
    more than a fifth of it. Each frame's median log ratio is removed (the scale is scored
    elsewhere), then pixels are pooled. Returns `edge_near_log_bias` / `edge_far_log_bias` /
    `edge_flat_log_bias` (mean log(pred / true): > 0 too far), `edge_near_delta1` (share within
    1.25x on the near side) and `edge_pixels` (the share of valid pixels on an edge)."""
    pooled: dict[str, list[np.ndarray]] = {'near': [], 'far': [], 'flat': []}
    edge_pixels = valid_pixels = 0
    r = radius_px
    for p, g in zip(pred, gt):
        with np.errstate(all='ignore'):
            ok = np.isfinite(g) & (g > 0) & np.isfinite(p) & (p > 0)
        if ok.sum() < 100:
            continue
        log_gt = np.log(np.where(ok, g, 1.0))
        error = np.log(np.where(ok, p, 1.0)) - log_gt
        error -= np.median(error[ok])
        largest_step = np.zeros(g.shape)
        near = np.zeros(g.shape, bool)
        for axis in (0, 1):
            for step in (r, -r):  # the neighbour `step` pixels along `axis`, both where both exist
                here = [slice(None)] * 2
                there = [slice(None)] * 2
                here[axis] = slice(max(0, -step), g.shape[axis] - max(0, step))
                there[axis] = slice(max(0, step), g.shape[axis] - max(0, -step))
                here, there = tuple(here), tuple(there)
                both = ok[here] & ok[there]
                rise = np.where(both, log_gt[there] - log_gt[here], 0.0)  # > 0: the neighbour is farther
                largest_step[here] = np.maximum(largest_step[here], np.abs(rise))
                near[here] |= rise > jump_log
        edge = ok & (largest_step > jump_log)
        pooled['near'].append(error[edge & near])
        pooled['far'].append(error[edge & ~near])
        pooled['flat'].append(error[ok & (largest_step < jump_log / 5)])
        edge_pixels += int(edge.sum())
        valid_pixels += int(ok.sum())
    errors = {side: np.concatenate(parts) if parts else np.zeros(0) for side, parts in pooled.items()}
    out = {f'edge_{side}_log_bias': float(e.mean()) if e.size else float('nan') for side, e in errors.items()}
    near = errors['near']
    out['edge_near_delta1'] = float(np.mean(np.abs(near) < np.log(1.25))) if near.size else float('nan')
    out['edge_pixels'] = edge_pixels / valid_pixels if valid_pixels else float('nan')
    return out


OBJECT_MIN_PIXELS = 64  # an object's view is scored when it shows this many pixels with valid true depth
OBJECT_NEAR_M = 2.0      # views this near (the object's true median depth) also scored apart
OBJECT_EXTENT_FLOOR_M = 0.05  # added to both depth extents, so a flat face seen head-on is no division by 0


def depth_object_summary(pred: np.ndarray, gt: np.ndarray, segmentation: np.ndarray,
                         min_pixels: int = OBJECT_MIN_PIXELS, near_m: float = OBJECT_NEAR_M) -> dict[str, float]:
    """Where the depth puts whole objects, as the object map lifts them.

    pred, gt (N, H, W) metres (NaN / 0 invalid); segmentation (N, H, W) instance ids, 0 the room.
    Each frame's median log ratio is removed, as in `depth_edge_summary`. An object's view is the
    pixels of one id > 0 in one frame with at least `min_pixels` valid; its error is
    log(median predicted / median true depth) over them, its depth extent the 10th-90th
    percentile span (metres, after the frame's scale). Returns `object_log_bias` (mean error:
    > 0 the object is read too far), `object_abs_log`, `object_within_10pct` (share of views
    within 10 %), `object_near_abs_log` (views nearer than `near_m`), `object_extent_log_ratio`
    (mean log of the predicted over the true extent, each plus `OBJECT_EXTENT_FLOOR_M`: > 0 an
    object smeared along the rays), `object_room_log_bias` (mean error of the room's pixels) and
    `object_views` (views scored)."""
    errors, near_errors, extent_ratios, room = [], [], [], []
    for p, g, ids in zip(pred, gt, segmentation):
        with np.errstate(all='ignore'):
            ok = np.isfinite(g) & (g > 0) & np.isfinite(p) & (p > 0)
        if ok.sum() < 100:
            continue
        log_ratio = np.log(np.where(ok, p, 1.0)) - np.log(np.where(ok, g, 1.0))
        frame_scale = np.median(log_ratio[ok])
        room.append(log_ratio[ok & (ids == 0)] - frame_scale)
        scaled = p * np.exp(-frame_scale)
        labels, counts = np.unique(ids[ok & (ids > 0)], return_counts=True)
        for label in labels[counts >= min_pixels]:
            mask = ok & (ids == label)
            p_obj, g_obj = scaled[mask], g[mask]
            true_median = float(np.median(g_obj))
            error = float(np.log(np.median(p_obj) / true_median))
            errors.append(error)
            if true_median < near_m:
                near_errors.append(error)
            spans = [np.subtract(*np.percentile(d, [90, 10])) + OBJECT_EXTENT_FLOOR_M for d in (p_obj, g_obj)]
            extent_ratios.append(float(np.log(spans[0] / spans[1])))
    e, near = np.asarray(errors), np.asarray(near_errors)
    room_errors = np.concatenate(room) if room else np.zeros(0)

    def mean(values: np.ndarray) -> float:
        return float(values.mean()) if values.size else float('nan')
    return {'object_log_bias': mean(e), 'object_abs_log': mean(np.abs(e)),
            'object_within_10pct': mean(np.abs(e) < np.log(1.1)), 'object_near_abs_log': mean(np.abs(near)),
            'object_extent_log_ratio': mean(np.asarray(extent_ratios)), 'object_room_log_bias': mean(room_errors),
            'object_views': float(e.size)}


def constant_depth_summary(depths: list[np.ndarray],
                           segmentations: list[np.ndarray | None] | None = None) -> dict[str, float]:
    """The trivial depth baseline: every pixel of every frame at the set's median true depth.

    depths: one (N, H, W) true depth array (metres, NaN / 0 invalid) per sequence; segmentations:
    their instance ids (N, H, W) where known. Returns the keys of `depth_summary`,
    `depth_edge_summary`, `scale_abs_rel` and, with a segmentation, `depth_object_summary`
    (every object at its frame's median depth), averaged over sequences, plus `constant_depth_m`."""
    valid = [d[np.isfinite(d) & (d > 0)] for d in depths]
    median = float(np.median(np.concatenate(valid))) if any(v.size for v in valid) else float('nan')
    rows = []
    for depth, segmentation in zip(depths, segmentations or [None] * len(depths)):
        constant = np.full(depth.shape, median, np.float32)
        row = {**depth_summary(constant, depth), **depth_edge_summary(constant, depth)}
        if segmentation is not None:
            row.update(depth_object_summary(constant, depth, segmentation))
        s_gt = clip_scales_gt(depth)
        ok = np.isfinite(s_gt)
        if ok.any():
            row['scale_abs_rel'] = float(np.mean(np.abs(median - s_gt[ok]) / s_gt[ok]))
        rows.append(row)
    return {**mean_over_sequences(rows), 'constant_depth_m': median}


def trajectory_summary(est: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """ATE (Sim(3) and SE(3) alignment), RPE-T (m) and RPE-R (deg) at gap 1, the same for a
    trajectory that never moves (`static_*`), path length (m)."""
    ok = np.all(np.isfinite(gt.reshape(len(gt), -1)), axis=1)
    est, gt = est[ok], gt[ok]
    if len(gt) < 3:
        return {}
    # The no-motion baseline (every pose the same), the pose's "chance": its best ATE is the
    # spread of the true positions, its RPE the true motion between frames.
    static = relative_pose_error(np.broadcast_to(np.eye(4), gt.shape), gt, 1)
    positions = gt[:, :3, 3]
    spread = float(np.sqrt(np.mean(np.sum((positions - positions.mean(0)) ** 2, axis=1))))
    try:
        sim3 = absolute_trajectory_error(est, gt, 'sim3')
    except GeometryError:  # the estimate never moves: no scale to fit, the best fit is the centroid
        sim3 = {'rmse': spread, 'scale': 0.0}
    se3 = absolute_trajectory_error(est, gt, 'se3')
    rpe = relative_pose_error(est, gt, 1)
    return {'ate_sim3_m': sim3['rmse'], 'ate_se3_m': se3['rmse'], 'ate_sim3_scale': sim3['scale'],
            'rpe_trans_m': rpe['trans_rmse'], 'rpe_rot_deg': rpe['rot_rmse_deg'],
            'static_ate_m': spread,
            'static_rpe_trans_m': static['trans_rmse'], 'static_rpe_rot_deg': static['rot_rmse_deg'],
            'path_length_m': float(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum())}


CONFIDENCE_LEVELS = (0.5, 0.7, 0.8, 0.9)  # depth_min_confidence values a user might set


CHI2_3DOF_95 = 7.815   # the 95 % quantile of a chi-square with 3 degrees of freedom


def covariance_consistency(estimates: np.ndarray, truths: np.ndarray, covariances: np.ndarray) -> dict[str, float]:
    """How well stated pose covariances describe the errors: estimates and truths (M, 4, 4) in
    one frame, covariances (M, 6, 6) in its axes (ROS order: position, rotation). Returns the
    share of position and of rotation errors inside their 95 % ellipsoid (`within_95`,
    `rotation_within_95`; about 0.95 for an honest covariance, far less for one too small, 1.0
    for one too large), the median standard deviation stated for the position (sqrt of the
    block's trace / 3, `sigma_median_m`) and the median position error (`error_median_m`);
    NaN for every figure when M is 0."""
    from geovr_ros.geometry import so3_log
    estimates, truths, covariances = (np.asarray(a, np.float64) for a in (estimates, truths, covariances))
    if not len(estimates):
        return {k: float('nan') for k in ('within_95', 'rotation_within_95', 'sigma_median_m', 'error_median_m')}

    def inside(errors, blocks):
        return float(np.mean(np.einsum('ni,ni->n', errors, np.linalg.solve(blocks, errors[..., None])[..., 0])
                             <= CHI2_3DOF_95))

    position = estimates[:, :3, 3] - truths[:, :3, 3]
    rotation = so3_log(estimates[:, :3, :3] @ np.swapaxes(truths[:, :3, :3], 1, 2))   # in the frame's axes
    return {'within_95': inside(position, covariances[:, :3, :3]),
            'rotation_within_95': inside(rotation, covariances[:, 3:, 3:]),
            'sigma_median_m': float(np.median(np.sqrt(np.trace(covariances[:, :3, :3], axis1=1, axis2=2) / 3.0))),
            'error_median_m': float(np.median(np.linalg.norm(position, axis=1)))}


def confidence_summary(pred: np.ndarray, confidence: np.ndarray, gt: np.ndarray,
                       levels: tuple[float, ...] = CONFIDENCE_LEVELS) -> dict[str, float]:
    """Metric depth kept at each confidence level, as geovr_node's depth_min_confidence keeps
    it: pred, confidence, gt (N, H, W). Per level t: `confidence_t_kept`, the fraction of the
    pixels with valid true depth whose confidence is >= t, and `confidence_t_abs_rel` /
    `confidence_t_delta1` over those pixels (`depth_metrics`, all frames pooled; absent when
    none is kept)."""
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(gt) & (gt > 0) & np.isfinite(pred) & (pred > 0)
    out = {}
    for level in levels:
        keep = valid & (confidence >= level)
        key = f'confidence_{level:g}'
        out[f'{key}_kept'] = float(keep.sum() / valid.sum()) if valid.any() else float('nan')
        if keep.any():
            metrics = depth_metrics(pred, gt, valid=keep)
            out[f'{key}_abs_rel'], out[f'{key}_delta1'] = metrics['abs_rel'], metrics['delta1']
    return out


def known_floor(gt: np.ndarray, K: np.ndarray, poses_gt: np.ndarray) -> tuple[np.ndarray, float] | None:
    """What a robot with a level base and a known camera height knows, taken from a recording:
    (up (N, 3) in each optical frame, the camera's height above the floor in metres, the median
    over the frames of the floor's distance in the TRUE depth, `floor_distance`). gt (N, H, W)
    metres, K (N, 3, 3), poses_gt (N, 4, 4) optical camera-to-world with a gravity-aligned
    axis. None when the poses have no vertical axis or the true depth never shows a floor (the
    lowest large horizontal surface: a desk where no floor is in view)."""
    axis = vertical_axis_of(poses_gt) if np.isfinite(poses_gt).all() else None
    if axis is None:
        return None
    up_world = np.zeros(3)
    up_world[axis] = -np.sign(poses_gt[:, axis, 1].mean())   # optical y points down
    ups = np.einsum('nji,j->ni', poses_gt[:, :3, :3], up_world)
    heights = [e.distance for e in (floor_distance(gt[i], K[i], ups[i]) for i in range(len(gt))) if e is not None]
    return (ups, float(np.median(heights))) if heights else None


def floor_scales(pred: np.ndarray, K: np.ndarray, gt: np.ndarray, poses_gt: np.ndarray) -> dict | None:
    """The factors geovr_node's `floor_camera_height` applies frame by frame, for a camera whose
    up and height above the floor are known (`known_floor`): pred, gt (N, H, W) metres, K (N,
    3, 3), poses_gt (N, 4, 4). The model's depth goes through `FloorScale` as the session runs
    it (causal: each frame gets the median of the floors seen so far). Returns {'height': m,
    'applied': (N,), 'seen': (N,) bool (the frame's predicted depth showed the floor), 'true':
    (N,) the median of true / predicted depth}, or None when `known_floor` knows nothing."""
    known = known_floor(gt, K, poses_gt)
    if known is None:
        return None
    ups, height = known
    floor = FloorScale(height)
    applied, seen, true = np.ones(len(pred)), np.zeros(len(pred), bool), np.full(len(pred), np.nan)
    for i in range(len(pred)):
        before = floor.frames_with_floor
        applied[i] = floor.update(pred[i], K[i], ups[i])
        seen[i] = floor.frames_with_floor > before
        with np.errstate(invalid='ignore', divide='ignore'):
            ratio = gt[i] / pred[i]
        ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
        if len(ratio):
            true[i] = float(np.median(ratio))
    return {'height': height, 'applied': applied, 'seen': seen, 'true': true}


def floor_summary(pred: np.ndarray, gt: np.ndarray, scales: dict | None) -> dict[str, float]:
    """Metric depth as geovr_node's `floor_camera_height` rescales it, from the factors
    `floor_scales` gave for pred, gt (N, H, W) metres. Returns `floor_camera_height` (m),
    `floor_frames` (share of the frames whose predicted depth showed the floor) and
    `floor_depth_metric_*` (`depth_summary` of the rescaled depth: one scale per frame leaves
    the scale-invariant scores as they were); {} when `scales` is None."""
    if scales is None:
        return {}
    scaled = pred * scales['applied'][:, None, None]
    return {'floor_camera_height': scales['height'], 'floor_frames': float(scales['seen'].mean()),
            **{f'floor_{k}': v for k, v in depth_summary(scaled, gt, ('metric',)).items()}}


def evaluate_sequence(pred: SequencePrediction, depth_gt: np.ndarray | None,
                      poses_gt: np.ndarray | None, K: np.ndarray | None = None,
                      floor: dict | None = None, segmentation: np.ndarray | None = None) -> dict[str, float]:
    """All metrics available for one sequence (depth needs depth_gt, pose needs poses_gt; the
    floor's scale, `floor_summary`, needs K (N, 3, 3) too, or the caller's `floor_scales`
    result as `floor`, computed once when the caller also plots it; depth at whole objects,
    `depth_object_summary`, needs the instance ids (N, H, W) of a rendered sequence)."""
    out: dict[str, float] = {'frames': float(len(pred.depth)),
                             'ms_per_clip': 1000 * pred.seconds / max(1, len(pred.rel_poses))}
    if depth_gt is not None:
        out.update(depth_summary(pred.depth, depth_gt))
        out.update(depth_edge_summary(pred.depth, depth_gt))
        if segmentation is not None:
            out.update(depth_object_summary(pred.depth, depth_gt, segmentation))
        if pred.depth_confidence is not None:
            out.update(confidence_summary(pred.depth, pred.depth_confidence, depth_gt))
        if floor is None and K is not None and poses_gt is not None:
            floor = floor_scales(pred.depth, K, depth_gt, poses_gt)
        out.update(floor_summary(pred.depth, depth_gt, floor))
        s_gt = clip_scales_gt(depth_gt)
        ok = np.isfinite(s_gt)
        if ok.any():
            out['scale_abs_rel'] = float(np.mean(np.abs(pred.scales[ok] - s_gt[ok]) / s_gt[ok]))
    if poses_gt is not None and np.isfinite(poses_gt).all():
        out.update(trajectory_summary(pred.trajectory, poses_gt))
    return out


def mean_over_sequences(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of every metric over sequences (NaN-free entries only)."""
    keys = sorted({k for r in rows for k in r})
    out = {}
    for key in keys:
        values = [r[key] for r in rows if key in r and np.isfinite(r[key])]
        out[key] = float(np.mean(values)) if values else float('nan')
    return out
