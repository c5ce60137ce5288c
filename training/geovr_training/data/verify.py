"""Check a recording's poses and intrinsics by reprojection before trusting them for training.

Each pixel's true depth in frame i is lifted with K, moved with T_world_j^-1 T_world_i and
projected into frame j; where it lands on a valid pixel, its depth there is compared with
frame j's true depth. Right poses and intrinsics give millimetre-to-centimetre disagreement
(sensor noise, occlusion edges); a wrong K, a transposed pose or a time offset gives decimetres.
"""

from __future__ import annotations

import numpy as np
from geovr_ros.geometry import reproject_depth

from .types import Sequence


def reprojection_disagreement(seq: Sequence, gap: int = 5, pairs: int = 20) -> dict[str, float]:
    """Median |z_i->j - d_j| over `pairs` evenly spread frame pairs (i, i + gap).

    Returns {'median_m', 'median_rel', 'p90_m', 'overlap' (share of lifted pixels landing on
    a valid pixel of j), 'pairs', 'gap'}; NaN values when no pair overlaps."""
    if seq.depth is None:
        raise ValueError(f'{seq.name}: no depth to reproject')
    n = len(seq)
    starts = np.unique(np.linspace(0, max(n - 1 - gap, 0), min(pairs, max(n - gap, 1))).astype(int))
    errors, rel, overlaps = [], [], []
    for i in starts:
        j = min(i + gap, n - 1)
        uv, z_in_j = reproject_depth(seq.depth[i], seq.K[i], seq.T_world_cam[i], seq.K[j], seq.T_world_cam[j])
        h, w = seq.depth[j].shape
        with np.errstate(invalid='ignore'):
            col, row = np.round(uv[..., 0]), np.round(uv[..., 1])
            inside = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        lifted = np.isfinite(z_in_j)
        d_j = np.full(z_in_j.shape, np.nan)
        d_j[inside] = seq.depth[j][row[inside].astype(int), col[inside].astype(int)]
        ok = inside & np.isfinite(d_j) & (d_j > 0) & lifted
        overlaps.append(ok.sum() / max(lifted.sum(), 1))
        if ok.any():
            diff = np.abs(z_in_j[ok] - d_j[ok])
            errors.append(diff)
            rel.append(diff / d_j[ok])
    if not errors:
        return {'median_m': float('nan'), 'median_rel': float('nan'), 'p90_m': float('nan'),
                'overlap': 0.0, 'pairs': float(len(starts)), 'gap': float(gap)}
    every = np.concatenate(errors)
    return {'median_m': float(np.median(every)), 'median_rel': float(np.median(np.concatenate(rel))),
            'p90_m': float(np.percentile(every, 90)), 'overlap': float(np.mean(overlaps)),
            'pairs': float(len(starts)), 'gap': float(gap)}
