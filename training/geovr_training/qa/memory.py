"""Spatial memory from geometry-encoder outputs: token pooling and world positions.

A keyframe's tokens come on the encoder's (rows, cols) grid; they are average-pooled to a
(pool_rows, pool_cols) grid (the per-keyframe token budget), and their camera-frame
positions are pooled the same way and moved to the world frame with the keyframe's pose.
The runtime (`geovr_ros.language.memory_inputs`) applies the same pooling in numpy.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from geovr_ros.geometry import depth_to_points, transform_points


def pool_token_grid(values: torch.Tensor, grid: tuple[int, int], pooled: tuple[int, int]) -> torch.Tensor:
    """(F, rows*cols, D) values on a row-major token grid -> (F, pr*pc, D) adaptive means."""
    f, n, d = values.shape
    rows, cols = grid
    if n != rows * cols:
        raise ValueError(f'{n} tokens do not fill the token grid {rows}x{cols}')
    x = values.transpose(1, 2).reshape(f, d, rows, cols)
    x = F.adaptive_avg_pool2d(x, pooled)
    return x.flatten(2).transpose(1, 2)


def pooled_depth_points(depth: np.ndarray, K: np.ndarray, pooled: tuple[int, int]) -> np.ndarray:
    """Ground-truth camera-frame positions of pooled tokens: the NaN-ignoring mean of the
    back-projected depth (H, W) metres over each of the (pr, pc) equal image cells.
    Returns (pr*pc, 3) metres, NaN where a cell has no valid depth."""
    points = depth_to_points(depth, K)  # (H, W, 3)
    h, w = depth.shape
    pr, pc = pooled
    out = np.full((pr * pc, 3), np.nan)
    for r in range(pr):
        for c in range(pc):
            cell = points[r * h // pr:(r + 1) * h // pr, c * w // pc:(c + 1) * w // pc].reshape(-1, 3)
            good = np.isfinite(cell).all(-1)
            if good.any():
                out[r * pc + c] = cell[good].mean(0)
    return out


def pooled_instance_cover(segmentation: np.ndarray, grid: tuple[int, int], pooled: tuple[int, int],
                          num_instances: int) -> np.ndarray:
    """Share of each pooled token's image area covered by each instance: the instance
    masks' fraction per encoder patch cell of `grid` (rows, cols), pooled to `pooled` as the
    tokens are. segmentation (H, W) int instance ids (0 / negative: background); returns
    (pr*pc, num_instances) float32 in [0, 1], column i for instance id i."""
    seg = np.asarray(segmentation)
    h, w = seg.shape
    rows, cols = grid
    cover = np.zeros((rows * cols, num_instances), np.float32)
    for r in range(rows):
        for c in range(cols):
            cell = seg[r * h // rows:(r + 1) * h // rows, c * w // cols:(c + 1) * w // cols].reshape(-1)
            ids, counts = np.unique(cell[(cell > 0) & (cell < num_instances)], return_counts=True)
            cover[r * cols + c, ids.astype(int)] = counts / max(cell.size, 1)
    return pool_token_grid(torch.from_numpy(cover)[None], grid, pooled)[0].numpy()


def world_positions(xyz_cam: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """(F, N, 3) camera-frame metres + (F, 4, 4) camera-to-world -> (F, N, 3) world metres."""
    return transform_points(np.asarray(T_world_cam, np.float64), np.asarray(xyz_cam, np.float64))


def keyframe_indices(num_frames: int, num_keyframes: int) -> np.ndarray:
    """`num_keyframes` frame indices evenly spread over [0, num_frames) (all when fewer)."""
    if num_frames < 1:
        raise ValueError(f'a sequence needs at least one frame, got {num_frames}')
    k = min(num_frames, num_keyframes)
    return np.unique(np.linspace(0, num_frames - 1, k).round().astype(int))
