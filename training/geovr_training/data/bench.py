"""Generation speed: frames/s of the whole pipeline (scene, render, QA, shard writing)."""

from __future__ import annotations

import resource
import tempfile
import time
from typing import Any

from .generate import GenerationConfig, generate_dataset
from .randomization import Randomization
from .trajectory import parse_resolution


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def benchmark(workers=(1, 2), scenes: int = 4, frames_per_scene: int = 40, resolution: str = '320x240',
              seed: int = 0, randomization: str = 'none') -> list[dict[str, Any]]:
    """Generate ``scenes`` x ``frames_per_scene`` frames at ``resolution`` once per worker count.

    Returns per run: workers, frames, wall seconds, frames/s (wall), CPU seconds (this process
    and its workers) and frames per CPU-second (the per-core rate, independent of other load).
    """
    results = []
    config = GenerationConfig(seed=seed, frames_per_scene=frames_per_scene, resolution=parse_resolution(resolution),
                              randomization=Randomization.load(randomization))
    for w in workers:
        with tempfile.TemporaryDirectory(prefix='geovr-bench-') as tmp:
            cpu0, t0 = _cpu_seconds(), time.perf_counter()
            generate_dataset(tmp, scenes, config, workers=w, progress=False)
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
        frames = scenes * frames_per_scene
        results.append({'workers': w, 'frames': frames, 'resolution': resolution, 'wall_s': wall,
                        'randomization': randomization, 'fps': frames / wall, 'cpu_s': cpu, 'fps_per_cpu_second': frames / cpu if cpu else float('nan')})
    return results


def format_benchmark(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(f"{r['resolution']}  randomization {r['randomization']}, workers {r['workers']}: {r['frames']} frames in {r['wall_s']:.1f} s = "
                     f"{r['fps']:.1f} frames/s wall; {r['fps_per_cpu_second']:.1f} frames per CPU-second "
                     f"(render + QA + writing; goal 20 per core)")
    return '\n'.join(lines)
