"""Rendered dataset generation: one sequence per scene, shards + manifest, deterministic.

The random stream of scene ``i`` is seeded by ``SeedSequence([seed, i])`` alone, so a scene's
shard is byte-identical whatever the number of workers or the order they run in.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GenerationError
from .qa import generate_qa
from .randomization import Randomization, randomization_rng, randomize_layout
from .scene import sample_scene
from .shards import SHARD_SUFFIX, write_manifest, write_shard
from .trajectory import DEFAULT_TRAJECTORY_MIX, HEIGHT_RANGE, TRAJECTORY_KINDS, sample_camera, sample_trajectory
from .types import SceneGraph, Sequence

GENERATOR_VERSION = 'geovr-data-render-2'  # 2: domain randomization (preset 'none' renders as 1 did)
SPLIT_FRACTIONS = {'train': 0.8, 'val': 0.1, 'test': 0.1}


@dataclass(frozen=True)
class GenerationConfig:
    """Parameters of one rendered dataset (all recorded in the manifest)."""

    seed: int = 0
    frames_per_scene: int = 32
    resolution: tuple[int, int] | None = None  # (W, H); None: random per sequence
    fps: float = 10.0
    min_seen_fraction: float = 0.002  # of the image area, at least 20 pixels
    qa_per_scene: int = 24
    trajectories: tuple[str, ...] = DEFAULT_TRAJECTORY_MIX  # drawn uniformly per scene; repeats weigh
    randomization: Randomization = field(default_factory=Randomization)  # default: every stage off
    camera_height: tuple[float, float] = HEIGHT_RANGE  # m above the floor, drawn per scene

    def validate(self) -> None:
        unknown = [k for k in self.trajectories if k not in TRAJECTORY_KINDS]
        if unknown or not self.trajectories:
            raise GenerationError(f'trajectories must name some of {TRAJECTORY_KINDS}, got {list(self.trajectories)}')
        if self.frames_per_scene < 1:
            raise GenerationError(f'frames_per_scene must be >= 1, got {self.frames_per_scene}')
        if self.seed < 0:
            raise GenerationError(f'seed must be >= 0, got {self.seed}')
        if self.fps <= 0:
            raise GenerationError(f'fps must be > 0, got {self.fps}')
        low, high = self.camera_height
        if not 0.1 <= low <= high <= 2.2:
            raise GenerationError(f'camera_height must be MIN,MAX metres with 0.1 <= MIN <= MAX <= 2.2, '
                                  f'got {list(self.camera_height)}')
        self.randomization.validate()


def scene_rng(seed: int, scene_index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(scene_index)]))


def first_seen_frames(segmentation: np.ndarray, scene: SceneGraph, min_pixels: int) -> None:
    """Set each object's ``first_seen``: first frame with >= ``min_pixels`` of its id."""
    for obj in scene.objects:
        counts = (segmentation == obj.instance_id).sum(axis=(1, 2))
        hits = np.flatnonzero(counts >= min_pixels)
        obj.first_seen = int(hits[0]) if len(hits) else None


def render_sequence(config: GenerationConfig, scene_index: int, renderer=None) -> Sequence:
    """Render scene ``scene_index`` of a dataset: frames, scene graph with first-seen frames, QA."""
    from .render import Renderer
    config.validate()
    rng = scene_rng(config.seed, scene_index)
    layout = randomize_layout(sample_scene(rng), config.randomization, config.seed, scene_index)
    K, (w, h) = sample_camera(rng, config.resolution)
    poses, timestamps, kind = sample_trajectory(rng, layout, config.frames_per_scene, config.fps,
                                                kinds=config.trajectories, height_range=config.camera_height)
    own = renderer is None
    renderer = renderer or Renderer()
    try:
        renderer.build(layout)
        n = len(poses)
        rgb = np.empty((n, h, w, 3), np.uint8)
        depth = np.empty((n, h, w), np.float32)
        seg = np.empty((n, h, w), np.int32)
        for i in range(n):
            rgb[i], depth[i], seg[i] = renderer.render(K, poses[i], w, h)
    finally:
        if own:
            renderer.close()
    if config.randomization.sensor.enabled:
        from .sensor import apply_sensor_effects
        rgb = apply_sensor_effects(rgb, depth, K, poses, timestamps, config.randomization.sensor,
                                   randomization_rng(config.seed, scene_index, 'sensor'))
    scene = layout.scene_graph()
    min_pixels = max(20, int(round(config.min_seen_fraction * w * h)))
    first_seen_frames(seg, scene, min_pixels)
    Ks = np.repeat(K[None], n, 0)
    qa = generate_qa(scene, poses, rng, config.qa_per_scene)
    info = {'source': 'render', 'generator': GENERATOR_VERSION, 'seed': int(config.seed),
            'scene_index': int(scene_index), 'trajectory': kind,
            'randomized': config.randomization.enabled_stages, 'fps': float(config.fps),
            'min_seen_pixels': min_pixels, 'depth_convention': 'metres along optical z, NaN invalid',
            'pose_convention': 'T_world_cam optical (REP 103) camera-to-world; world z up, floor z=0'}
    return Sequence(name=f'scene_{scene_index:05d}', rgb=rgb, depth=depth, K=Ks, T_world_cam=poses,
                    timestamps=timestamps, segmentation=seg, scene=scene, qa=qa, info=info)


def split_of(scene_index: int, num_scenes: int) -> str:
    """Split by scene: the first 80 % train, next 10 % val, last 10 % test (at least one
    val and one test scene when there are 3 or more scenes)."""
    n_test = max(1, round(num_scenes * SPLIT_FRACTIONS['test'])) if num_scenes >= 3 else 0
    n_val = max(1, round(num_scenes * SPLIT_FRACTIONS['val'])) if num_scenes >= 3 else 0
    if scene_index >= num_scenes - n_test:
        return 'test'
    if scene_index >= num_scenes - n_test - n_val:
        return 'val'
    return 'train'


_WORKER_RENDERER = None


def _worker(args: tuple[GenerationConfig, int, str]) -> dict[str, Any]:
    global _WORKER_RENDERER
    from .render import Renderer
    config, index, out_dir = args
    if _WORKER_RENDERER is None:
        _WORKER_RENDERER = Renderer()
    seq = render_sequence(config, index, _WORKER_RENDERER)
    path = write_shard(seq, Path(out_dir) / f'{seq.name}{SHARD_SUFFIX}')
    return {'name': seq.name, 'file': path.name, 'num_frames': len(seq), 'image_size': list(seq.image_size),
            'num_objects': len(seq.scene.objects), 'num_qa': len(seq.qa), 'scene_index': index}


def generate_dataset(out_dir: str | Path, num_scenes: int, config: GenerationConfig, workers: int = 1,
                     progress: bool = True) -> dict[str, Any]:
    """Render ``num_scenes`` sequences into ``out_dir`` with ``workers`` processes.

    Returns the manifest (also written to ``out_dir/manifest.json``).
    """
    config.validate()
    if num_scenes < 1:
        raise GenerationError(f'num_scenes must be >= 1, got {num_scenes}')
    if workers < 1:
        raise GenerationError(f'workers must be >= 1, got {workers}')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(config, i, str(out)) for i in range(num_scenes)]
    from tqdm import tqdm
    bar = tqdm(total=num_scenes * config.frames_per_scene, unit='frame', disable=not progress, desc='generate')
    start = time.perf_counter()
    results = []
    if workers == 1:
        for job in jobs:
            results.append(_worker(job))
            bar.update(config.frames_per_scene)
    else:
        from .render import shared_texture_dir
        with shared_texture_dir(), multiprocessing.get_context('spawn').Pool(workers) as pool:
            for res in pool.imap_unordered(_worker, jobs):
                results.append(res)
                bar.update(config.frames_per_scene)
    bar.close()
    elapsed = time.perf_counter() - start
    results.sort(key=lambda r: r['scene_index'])
    for r in results:
        r['split'] = split_of(r['scene_index'], num_scenes)
    manifest = {
        'format': 'geovr-data', 'generator': GENERATOR_VERSION, 'seed': int(config.seed),
        'config': {'frames_per_scene': config.frames_per_scene,
                   'resolution': None if config.resolution is None else list(config.resolution),
                   'fps': config.fps, 'min_seen_fraction': config.min_seen_fraction,
                   'qa_per_scene': config.qa_per_scene, 'trajectories': list(config.trajectories),
                   'camera_height': list(config.camera_height),
                   'randomization': config.randomization.to_dict()},
        'sequences': results,
        'splits': {s: [r['name'] for r in results if r['split'] == s] for s in ('train', 'val', 'test')},
    }
    write_manifest(out, manifest)
    manifest['_elapsed_s'] = elapsed  # not written: timing differs run to run
    return manifest
