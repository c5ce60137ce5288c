"""Statistics and a PNG contact sheet of a dataset folder (rendered or converted)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .shards import ShardReader, read_manifest
from .types import Sequence


def dataset_stats(root: str | Path) -> dict[str, Any]:
    """Counts over a dataset folder: sequences, frames, splits, resolutions, objects, QA tasks,
    depth range and valid fraction (depth from the middle frame of each sequence)."""
    root = Path(root)
    manifest = read_manifest(root)
    stats: dict[str, Any] = {'root': str(root), 'seed': manifest.get('seed'), 'generator': manifest.get('generator'),
                             'sequences': len(manifest['sequences']),
                             'splits': {k: len(v) for k, v in manifest['splits'].items()}}
    frames, sizes, categories, tasks, heldout = 0, Counter(), Counter(), Counter(), 0
    depth_lo, depth_hi, valid = [], [], []
    objects_per_scene = []
    for entry in manifest['sequences']:
        with ShardReader(root / entry['file']) as reader:
            frames += len(reader)
            sizes['x'.join(map(str, reader.meta['image_size']))] += 1
            scene = reader.scene
            if scene is not None:
                objects_per_scene.append(len(scene.objects))
                categories.update(o.category for o in scene.objects)
            tasks.update(q['task'] for q in reader.qa)
            heldout += sum(q['template_split'] == 'heldout' for q in reader.qa)
            if reader.meta['has_depth']:
                d = reader.read([len(reader) // 2], segmentation=False).depth[0]
                finite = d[np.isfinite(d)]
                valid.append(finite.size / d.size)
                if finite.size:
                    depth_lo.append(float(finite.min()))
                    depth_hi.append(float(finite.max()))
    stats.update(frames=frames, resolutions=dict(sizes), categories=dict(sorted(categories.items())),
                 objects_per_scene=(float(np.mean(objects_per_scene)) if objects_per_scene else 0.0),
                 qa_items=sum(tasks.values()), qa_tasks=dict(sorted(tasks.items())), qa_heldout=heldout,
                 depth_range_m=[min(depth_lo), max(depth_hi)] if depth_lo else None,
                 depth_valid_fraction=float(np.mean(valid)) if valid else None)
    return stats


def format_stats(stats: dict[str, Any]) -> str:
    lines = [f"dataset {stats['root']}  (generator {stats['generator']}, seed {stats['seed']})",
             f"sequences {stats['sequences']}  frames {stats['frames']}  splits {stats['splits']}",
             f"resolutions {stats['resolutions']}"]
    if stats['categories']:
        lines.append(f"objects per scene {stats['objects_per_scene']:.1f}; categories {stats['categories']}")
    if stats['qa_items']:
        lines.append(f"QA items {stats['qa_items']} (held-out wording {stats['qa_heldout']}): {stats['qa_tasks']}")
    if stats['depth_range_m']:
        lines.append(f"depth {stats['depth_range_m'][0]:.2f}..{stats['depth_range_m'][1]:.2f} m, "
                     f"valid {100 * stats['depth_valid_fraction']:.1f} % of pixels")
    return '\n'.join(lines)


def _segmentation_colours(seg: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    palette = rng.uniform(0.15, 1.0, (max(int(seg.max()) + 1, 1), 3))
    palette[0] = 0.1
    return palette[np.clip(seg, 0, None)]


def _top_down(ax, seq: Sequence, frame: int) -> None:
    from matplotlib.patches import Polygon, Rectangle
    pos = seq.T_world_cam[:, :3, 3]
    if seq.scene is not None:
        w, d, _ = seq.scene.room_size
        ax.add_patch(Rectangle((-w / 2, -d / 2), w, d, fill=False, lw=2, color='k'))
        for obj in seq.scene.objects:
            colour = 'tab:green' if obj.first_seen is not None else 'tab:gray'
            ax.add_patch(Polygon(obj.corners_xy(), closed=True, fill=False, color=colour, lw=1.2))
            ax.text(obj.centre[0], obj.centre[1], obj.label, fontsize=5, ha='center', va='center')
        ax.set_xlim(-w / 2 - 0.3, w / 2 + 0.3)
        ax.set_ylim(-d / 2 - 0.3, d / 2 + 0.3)
    ax.plot(pos[:, 0], pos[:, 1], '-', color='tab:blue', lw=1)
    ax.plot(pos[0, 0], pos[0, 1], 'o', color='tab:blue', ms=4)
    axis = seq.T_world_cam[frame, :3, 2]
    extent = float(np.ptp(pos[:, :2], axis=0).max()) if seq.scene is None else float(seq.scene.room_size[:2].max())
    length = 0.1 * max(extent, 0.2)
    ax.arrow(pos[frame, 0], pos[frame, 1], length * axis[0], length * axis[1], head_width=0.3 * length,
             color='tab:red')
    ax.set_aspect('equal')
    ax.tick_params(labelsize=5)
    ax.set_title('top-down (m): boxes, camera path', fontsize=7)


def contact_sheet(root: str | Path, out_png: str | Path, max_sequences: int = 4) -> Path:
    """PNG with one row per sequence: RGB (first and middle frame), depth (colour map,
    metres), segmentation (instance colours) and a top-down view of room, boxes and path."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    root = Path(root)
    manifest = read_manifest(root)
    entries = manifest['sequences'][:max_sequences]
    fig, axes = plt.subplots(len(entries), 5, figsize=(16, 3.0 * len(entries)), squeeze=False)
    for row, entry in zip(axes, entries):
        with ShardReader(root / entry['file']) as reader:
            mid = len(reader) // 2
            seq = reader.read([0, mid])
            full_poses = reader.T_world_cam
        row[0].imshow(seq.rgb[0])
        row[0].set_title(f"{seq.name} frame 0  {seq.image_size[0]}x{seq.image_size[1]}", fontsize=7)
        row[1].imshow(seq.rgb[1])
        row[1].set_title(f'frame {mid}', fontsize=7)
        if seq.depth is not None:
            im = row[2].imshow(seq.depth[1], cmap='turbo')
            fig.colorbar(im, ax=row[2], fraction=0.046, pad=0.02).ax.tick_params(labelsize=5)
        row[2].set_title(f'depth frame {mid} (m, NaN white)', fontsize=7)
        if seq.segmentation is not None:
            row[3].imshow(_segmentation_colours(seq.segmentation[1]))
            if seq.scene is not None:
                for obj in seq.scene.objects:
                    ys, xs = np.nonzero(seq.segmentation[1] == obj.instance_id)
                    if len(xs) > 30:
                        row[3].text(xs.mean(), ys.mean(), obj.label, fontsize=5, color='w', ha='center')
        else:
            row[3].text(0.5, 0.5, 'no segmentation', ha='center', va='center', transform=row[3].transAxes)
        row[3].set_title(f'segmentation frame {mid}', fontsize=7)
        for ax in row[:4]:
            ax.axis('off')
        whole = Sequence(seq.name, seq.rgb[:1].repeat(len(full_poses), 0)[:, :1, :1], None,
                         np.repeat(seq.K[:1], len(full_poses), 0), full_poses,
                         np.zeros(len(full_poses)), scene=seq.scene)
        _top_down(row[4], whole, mid)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
