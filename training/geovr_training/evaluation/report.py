"""Write evaluation results: JSON, a Markdown table and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HEADLINE = [
    ('depth_metric_abs_rel', 'AbsRel (metric)', '{:.3f}'),
    ('depth_metric_delta1', 'δ1 (metric)', '{:.3f}'),
    ('depth_median_abs_rel', 'AbsRel (median-scaled)', '{:.3f}'),
    ('depth_median_delta1', 'δ1 (median-scaled)', '{:.3f}'),
    ('depth_affine_delta1', 'δ1 (affine: disparity scale and shift)', '{:.3f}'),
    ('scale_abs_rel', 'scale error (rel)', '{:.3f}'),
    ('ate_sim3_m', 'ATE Sim(3) m', '{:.3f}'),
    ('ate_se3_m', 'ATE SE(3) m', '{:.3f}'),
    ('rpe_trans_m', 'RPE-T m', '{:.3f}'),
    ('rpe_rot_deg', 'RPE-R deg', '{:.2f}'),
    ('path_length_m', 'path m', '{:.2f}'),
]
CONFIDENCE_COLUMNS = [
    ('kept', 'pixels kept', '{:.1%}'),
    ('abs_rel', 'AbsRel (metric)', '{:.3f}'),
    ('delta1', 'δ1 (metric)', '{:.3f}'),
]
EDGE_COLUMNS = [
    ('edge_near_log_bias', 'near side: log(pred / true)', '{:+.3f}'),
    ('edge_near_delta1', 'near side: δ1', '{:.3f}'),
    ('edge_far_log_bias', 'far side: log(pred / true)', '{:+.3f}'),
    ('edge_flat_log_bias', 'flat: log(pred / true)', '{:+.3f}'),
    ('edge_pixels', 'edge pixels', '{:.1%}'),
]
OBJECT_COLUMNS = [
    ('object_log_bias', 'object: log(pred / true)', '{:+.3f}'),
    ('object_abs_log', 'object: mean abs log', '{:.3f}'),
    ('object_within_10pct', 'within 10 %', '{:.3f}'),
    ('object_near_abs_log', 'nearer than 2 m: mean abs log', '{:.3f}'),
    ('object_extent_log_ratio', 'depth extent: log(pred / true)', '{:+.3f}'),
    ('object_room_log_bias', 'room: log(pred / true)', '{:+.3f}'),
    ('object_views', 'views', '{:.0f}'),
]
FLOOR_COLUMNS = [
    ('depth_metric_abs_rel', 'AbsRel (metric)', '{:.3f}'),
    ('depth_metric_delta1', 'δ1 (metric)', '{:.3f}'),
    ('depth_metric_rmse', 'RMSE m', '{:.3f}'),
]
NO_MOTION = [  # the no-motion baseline beside the pose figures
    ('static_ate_m', 'ATE m', '{:.3f}'),
    ('static_rpe_trans_m', 'RPE-T m', '{:.3f}'),
    ('static_rpe_rot_deg', 'RPE-R deg', '{:.2f}'),
]


def _fmt(value, pattern):
    return '—' if value is None or not np.isfinite(value) else pattern.format(value)


def markdown_table(rows: dict[str, dict[str, float]], columns=HEADLINE) -> str:
    """Rows {name: metrics} -> Markdown table with the given (key, header, format) columns."""
    present = [c for c in columns if any(c[0] in r for r in rows.values())]
    lines = ['| condition | ' + ' | '.join(h for _, h, _ in present) + ' |',
             '|---|' + '---|' * len(present)]
    for name, row in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(_fmt(row.get(k), f) for k, _, f in present) + ' |')
    return '\n'.join(lines)


def write_report(out_dir: str | Path, summary: dict, per_sequence: list[dict], robustness: dict[str, dict],
                 command: str, plots: dict | None = None, baselines: dict[str, dict] | None = None) -> dict[str, str]:
    """Write metrics.json, metrics.md and PNGs into out_dir; returns {kind: path}.

    `baselines` {name: metrics} are rows printed under the model's (e.g. constant depth)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {'command': command, 'summary': summary, 'per_sequence': per_sequence, 'camera_robustness': robustness,
               'baselines': baselines or {}}
    (out / 'metrics.json').write_text(json.dumps(payload, indent=2, default=float))
    md = [f'# GeoVR-S evaluation\n\nCommand: `{command}`\n', '## Summary (mean over sequences)\n',
          markdown_table({'all': summary, **(baselines or {})}), '']
    if 'static_ate_m' in summary:
        md += ['Pose baseline: a camera that never moves (its best-aligned ATE is the spread of the '
               'true positions; its RPE the true motion between frames)\n',
               markdown_table({'no motion': summary}, NO_MOTION), '']
    if any(key.startswith('confidence_') for key in summary):
        from geovr_training.evaluation.metrics import CONFIDENCE_LEVELS
        md += ["## Depth kept by confidence (geovr_node's depth_min_confidence; metric, pixels pooled per sequence)\n",
               markdown_table({f'confidence >= {t:g}': {k.split('_', 2)[-1]: v for k, v in summary.items()
                                                         if k.startswith(f'confidence_{t:g}_')}
                               for t in CONFIDENCE_LEVELS}, CONFIDENCE_COLUMNS), '']
    if 'edge_near_log_bias' in summary:
        from geovr_training.evaluation.metrics import EDGE_JUMP_LOG, EDGE_RADIUS_PX
        md += ["## Depth at its edges (each frame's median scale removed; an edge: the true log-depth "
               f'steps by more than {EDGE_JUMP_LOG:g} within {EDGE_RADIUS_PX} px; > 0: too far)\n',
               markdown_table({'model': summary, **(baselines or {})}, EDGE_COLUMNS), '']
    if 'object_log_bias' in summary:
        from geovr_training.evaluation.metrics import OBJECT_MIN_PIXELS
        md += ["## Depth at whole objects (each frame's median scale removed; a view: one instance's pixels in one "
               f'frame, at least {OBJECT_MIN_PIXELS}; its error: log of the median predicted over the median true '
               'depth, > 0: too far; the extent: its 10th-90th percentile depth span; views per sequence)\n',
               markdown_table({'model': summary, **(baselines or {})}, OBJECT_COLUMNS), '']
    floor_rows = [r for r in per_sequence if 'floor_camera_height' in r]
    if floor_rows:
        keys = set.intersection(*(set(r) for r in floor_rows)) - {'sequence'}
        mean = {k: float(np.mean([r[k] for r in floor_rows])) for k in keys}
        md += ["## Depth at the floor's scale (geovr_node's floor_camera_height, the height known from the true depth)\n",
               f'{len(floor_rows)} of {len(per_sequence)} sequences show a floor (the lowest large horizontal surface: a desk where no floor is in view) in their true depth; means over those, '
               f"camera height {mean['floor_camera_height']:.2f} m, predicted floor seen in "
               f"{100 * mean['floor_frames']:.0f} % of the frames.\n",
               markdown_table({'model': {k: mean[k] for k in mean if k.startswith('depth_')},
                               'rescaled by the floor': {k[len('floor_'):]: v for k, v in mean.items()
                                                         if k.startswith('floor_depth_')}}, FLOOR_COLUMNS), '']
    if robustness:
        base = robustness.get('original', {}).get('depth_metric_delta1')
        md += ['## Camera robustness\n', markdown_table(robustness), '']
        if base is not None:
            md.append('δ1 (metric) lost vs original, points: ' + ', '.join(
                f"{name}: {100 * (base - row.get('depth_metric_delta1', np.nan)):.1f}"
                for name, row in robustness.items() if name != 'original') + '\n')
        if any('floor_depth_metric_delta1' in row for row in robustness.values()):
            md.append("At the floor's scale (floor_camera_height, means over the sequences that show a floor), "
                      'δ1 (metric) per condition: ' + ', '.join(
                          f"{name}: {row['floor_depth_metric_delta1']:.3f}" for name, row in robustness.items()
                          if 'floor_depth_metric_delta1' in row) + '\n')
    (out / 'metrics.md').write_text('\n'.join(md))
    written = {'json': str(out / 'metrics.json'), 'markdown': str(out / 'metrics.md')}
    written.update(_plots(out, robustness, plots or {}))
    return written


def _plots(out: Path, robustness: dict, plots: dict) -> dict[str, str]:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    written = {}
    if 'trajectory' in plots:
        est, gt = plots['trajectory']
        from geovr_ros.geometry import umeyama_alignment
        s, r, t = umeyama_alignment(est[:, :3, 3], gt[:, :3, 3], with_scale=True)
        aligned = s * est[:, :3, 3] @ r.T + t
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(gt[:, 0, 3], gt[:, 1, 3], 'k-', label='ground truth')
        ax.plot(aligned[:, 0], aligned[:, 1], 'r-', label='GeoVR-S (Sim(3)-aligned)')
        ax.set_xlabel('x (m)'), ax.set_ylabel('y (m)'), ax.axis('equal'), ax.legend()
        ax.set_title('trajectory, top view')
        fig.tight_layout(), fig.savefig(out / 'trajectory.png', dpi=100), plt.close(fig)
        written['trajectory'] = str(out / 'trajectory.png')
    if 'depth' in plots:
        rgb, gt, pred = plots['depth']
        vmax = float(np.nanpercentile(gt, 98)) if np.isfinite(gt).any() else float(np.nanmax(pred))
        fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
        axes[0].imshow(rgb), axes[0].set_title('RGB')
        axes[1].imshow(gt, vmin=0, vmax=vmax, cmap='turbo'), axes[1].set_title('GT depth (m)')
        im = axes[2].imshow(pred, vmin=0, vmax=vmax, cmap='turbo')
        axes[2].set_title('predicted depth (m)')
        with np.errstate(all='ignore'):
            err = np.abs(pred - gt) / gt
        e = axes[3].imshow(err, vmin=0, vmax=0.3, cmap='magma')
        axes[3].set_title('abs rel error')
        fig.colorbar(im, ax=axes[2]), fig.colorbar(e, ax=axes[3])
        for ax in axes:
            ax.axis('off')
        fig.tight_layout(), fig.savefig(out / 'depth_example.png', dpi=90), plt.close(fig)
        written['depth'] = str(out / 'depth_example.png')
    if 'floor' in plots:
        name, scales = plots['floor']
        frames = np.arange(len(scales['applied']))
        fig, ax = plt.subplots(figsize=(7, 3.4))
        ax.plot(frames, scales['true'], 'k-', label='true / predicted depth (median)')
        ax.plot(frames, scales['applied'], 'C0-', label="the floor's scale, as applied")
        ax.plot(frames[scales['seen']], scales['applied'][scales['seen']], 'C0o', ms=3, label='floor seen')
        ax.axhline(1.0, color='0.6', lw=0.8)
        ax.set_xlabel('frame'), ax.set_ylabel('depth scale factor')
        ax.set_title(f"{name}: camera {scales['height']:.2f} m above the floor")
        ax.legend(fontsize=8), fig.tight_layout()
        fig.savefig(out / 'floor_scale.png', dpi=90), plt.close(fig)
        written['floor'] = str(out / 'floor_scale.png')
    if robustness:
        names = list(robustness)
        values = [robustness[n].get('depth_metric_delta1', np.nan) for n in names]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.barh(names, values, color='tab:blue')
        ax.set_xlim(0, 1), ax.set_xlabel('δ1 (metric depth)'), ax.invert_yaxis()
        ax.set_title('camera robustness')
        fig.tight_layout(), fig.savefig(out / 'camera_robustness.png', dpi=100), plt.close(fig)
        written['robustness'] = str(out / 'camera_robustness.png')
    return written
