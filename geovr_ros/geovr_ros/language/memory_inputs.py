"""Memory snapshot -> the question graph's memory inputs (numpy, no model).

Each keyframe's tokens are pooled to the per-keyframe budget the graph was trained with
(adaptive average pooling on the encoder's token grid, as in training), positions the same
way; keyframes are ordered by time, and each token gets its keyframe's order in [0, 1].
"""
from __future__ import annotations

import numpy as np


def _adaptive_bounds(n: int, out: int) -> list[tuple[int, int]]:
    # torch.nn.functional.adaptive_avg_pool2d's cells: [floor(i n / out), ceil((i + 1) n / out))
    return [((i * n) // out, -((-(i + 1) * n) // out)) for i in range(out)]


def pool_grid(values: np.ndarray, grid: tuple[int, int], pooled: tuple[int, int]) -> np.ndarray:
    """(rows*cols, D) row-major grid values -> (pr*pc, D) adaptive cell means."""
    rows, cols = grid
    x = np.asarray(values, dtype=np.float32).reshape(rows, cols, -1)
    out = [x[r0:r1, c0:c1].reshape(-1, x.shape[-1]).mean(0)
           for r0, r1 in _adaptive_bounds(rows, pooled[0]) for c0, c1 in _adaptive_bounds(cols, pooled[1])]
    return np.stack(out)


def memory_arrays(entries, token_grid, pooled_grid, max_keyframes: int | None = None
                  ) -> dict[str, np.ndarray]:
    """Graph inputs of memory entries (objects with `stamp`, `tokens` (N, C), `token_xyz`
    (N, 3) world metres): memory_tokens (1, M, C), memory_xyz (1, M, 3), memory_time
    (1, M), memory_mask (1, M), float32. Entries whose N fills `token_grid` are pooled to
    `pooled_grid`; others with N above the budget are evenly subsampled. With more than
    `max_keyframes` entries, the most recent ones are kept."""
    entries = sorted(entries, key=lambda e: e.stamp)
    if max_keyframes is not None and len(entries) > max_keyframes:
        entries = entries[-max_keyframes:]
    budget = int(pooled_grid[0] * pooled_grid[1]) if pooled_grid else None
    tokens, xyz, time = [], [], []
    k = len(entries)
    for j, e in enumerate(entries):
        t = np.asarray(e.tokens, dtype=np.float32)
        p = np.asarray(e.token_xyz, dtype=np.float32)
        if token_grid and pooled_grid and t.shape[0] == token_grid[0] * token_grid[1]:
            t, p = pool_grid(t, token_grid, pooled_grid), pool_grid(p, token_grid, pooled_grid)
        elif budget and t.shape[0] > budget:
            keep = np.linspace(0, t.shape[0] - 1, budget).round().astype(int)
            t, p = t[keep], p[keep]
        tokens.append(t)
        xyz.append(p)
        time.append(np.full(t.shape[0], j / (k - 1) if k > 1 else 1.0, np.float32))
    tokens_arr = np.concatenate(tokens)[None]
    xyz_arr = np.concatenate(xyz)[None]
    valid = np.isfinite(xyz_arr).all(-1) & np.isfinite(tokens_arr).all(-1)
    return {'memory_tokens': np.nan_to_num(tokens_arr).astype(np.float32),
            'memory_xyz': np.nan_to_num(xyz_arr).astype(np.float32),
            'memory_time': np.concatenate(time)[None].astype(np.float32),
            'memory_mask': valid.astype(np.float32)}
