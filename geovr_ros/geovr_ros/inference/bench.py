"""`geovr-bench`: latency, throughput, memory and achieved FLOP/s of a backend on this machine.

    geovr-bench --backend onnxruntime --model DIR --resolution 256x192 --iters 50 --json out.json
    geovr-bench --backend onnxruntime --model NEW --model OLD --rounds 3     # compared in one run

Measures (a) inference alone per camera frame (on prepared inputs: the 2-frame clip of a
single graph, or the frame encoder on the new frame + the pair head of split graphs) and (b)
preprocess + inference + decode (PerceptionPipeline.step on a camera-sized uint8 frame); reports
p50/p90/p99 latency, frames per second, peak RSS (and CUDA peak for torch on CUDA), the
measured float32 matrix-multiply peak of this machine (numpy and, if importable, torch),
the model's FLOPs per camera frame (each graph's metadata geovr.flops_per_clip: the
perception graph's clip, or the frame encoder's frame plus the pair head) and the achieved
GFLOP/s.

Several --model are measured in the same run, in turn for --rounds rounds (A B A B ...), so
that a neighbour's load or the clock falls on each alike; each model's figures are then the
round with its median per-frame p50, and the per-frame rate of the first is given as a
multiple of each other's. `--fixed-shapes both` measures each model that way with ONNX
Runtime's sessions fixed to the input sizes and with the one session of free sizes;
`--thread-spinning both` with ONNX Runtime's threads spinning (the node's default) and asleep
between operators (`backend_thread_spinning: false`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

LOG = logging.getLogger(__name__)


def parse_resolution(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H); ValueError naming the text otherwise."""
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'resolution must be WxH like 256x192, got {text!r}') from None
    if width <= 0 or height <= 0:
        raise ValueError(f'resolution must be positive, got {text!r}')
    return width, height


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean latency in ms and fps (= 1000 / p50) of per-iteration times."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {'p50_ms': float(p50), 'p90_ms': float(p90), 'p99_ms': float(p99),
            'mean_ms': float(ms.mean()), 'fps': float(1e3 / p50), 'iters': len(ms)}


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux ru_maxrss is KiB)."""
    scale = 1 if sys.platform == 'darwin' else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def matmul_peak_gflops(n: int = 1024, repeats: int = 10) -> dict[str, float]:
    """Best float32 GEMM rate (2 n^3 FLOP per n x n product) with numpy and torch (CPU),
    GFLOP/s; each library's best of `repeats` runs with its default threads."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n ** 3
    results = {}

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return flop / min(times) / 1e9
    results['numpy'] = best(lambda: a @ b)
    try:
        import torch
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        results['torch'] = best(lambda: torch.mm(ta, tb))
    except ImportError:
        pass
    results['peak'] = max(results.values())
    return results


def camera_frame_flops(pipeline, width: int, height: int) -> tuple[float | None, str]:
    """FLOPs the model spends on one camera frame at (width, height) and how they were found:
    a single graph runs a 2-frame clip per camera frame, split graphs the frame encoder on the
    new frame and the pair head (each graph's own geovr.flops_per_clip)."""
    from geovr_ros.inference.backends.base import ModelFileError
    from geovr_ros.inference.metadata import MetadataError, read_metadata
    from geovr_ros.inference.perception import SPLIT_GRAPHS

    if pipeline.graphs != 'split':
        return pipeline.metadata.flops_at(width, height)
    total, sources = 0.0, []
    for graph in SPLIT_GRAPHS:
        path = pipeline.model_dir / f'{graph}.onnx'
        if not path.is_file():
            return None, f'{path} is missing (its metadata holds its FLOPs)'
        try:
            flops, source = read_metadata(path).flops_at(width, height)
        except (MetadataError, ModelFileError) as error:
            return None, f'{graph}: {error}'
        if flops is None:
            return None, f'{graph}: {source}'
        total += flops
        sources.append(source)
    return total, f"frame encoder + pair head, {' / '.join(dict.fromkeys(sources))}"


def run_benchmark(backend: str, model: str | os.PathLike, resolution: tuple[int, int],
                  iters: int = 50, warmup: int = 5, camera: tuple[int, int] | None = None,
                  gemm_size: int = 1024, **backend_options) -> dict:
    """Benchmark one backend on a model directory. Returns the JSON-able result dict."""
    from geovr_ros.inference.perception import PerceptionPipeline

    if iters < 1:
        raise ValueError(f'iters must be >= 1, got {iters}')
    camera = camera or resolution
    rss_before = peak_rss_mib()
    pipeline = PerceptionPipeline(model, backend=backend, input_size=resolution, **backend_options)
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 256, (camera[1], camera[0], 3), dtype=np.uint8) for _ in range(2)]
    K = np.array([[0.8 * camera[0], 0, camera[0] / 2 - 0.5],
                  [0, 0.8 * camera[0], camera[1] / 2 - 0.5], [0, 0, 1.0]])
    # Inference of one camera frame on prepared inputs: a clip of two frames for a single
    # graph; for split graphs the new frame's encoder run and the pair head (the reference
    # frame's encoding is kept), so every iteration gets a frame it has not seen.
    frames = [pipeline.preprocess(rgb[i % 2], K) for i in range(warmup + iters + 1)]
    infer_times = []
    for i in range(warmup + iters):
        result = pipeline.run(frames[i], frames[i + 1])
        if i >= warmup:
            infer_times.append(result.timings_ms['infer'] / 1e3)
    pipeline.step(rgb[0], K)
    e2e_times, stages = [], {'preprocess': [], 'infer': [], 'decode': []}
    for i in range(iters):
        start = time.perf_counter()
        result = pipeline.step(rgb[(i + 1) % 2], K)
        e2e_times.append(time.perf_counter() - start)
        for stage in stages:
            stages[stage].append(result.timings_ms[stage])

    inference = latency_stats(infer_times)
    flops, flops_source = camera_frame_flops(pipeline, *resolution)
    gemm = matmul_peak_gflops(gemm_size)
    report = {
        'backend': pipeline.backend.name, 'device': pipeline.backend.device,
        'selection': getattr(pipeline.backend, 'selection_reason', ''),
        'model': str(model), 'model_version': pipeline.metadata.model_version,
        'resolution': list(resolution), 'camera': list(camera),
        'inference': inference,
        'end_to_end': latency_stats(e2e_times),
        'end_to_end_stage_p50_ms': {k: float(np.median(v)) for k, v in stages.items()},
        'memory': {'peak_rss_mib': peak_rss_mib(), 'rss_before_load_mib': rss_before},
        'flops_per_camera_frame': flops, 'flops_source': flops_source,
        'matmul_peak_gflops': gemm,
        'machine': {'cpu_count': os.cpu_count(), 'platform': platform.platform(),
                    'processor': platform.processor() or platform.machine(),
                    'load_avg_1m': os.getloadavg()[0]},
        'backend_options': {k: v for k, v in backend_options.items()},
    }
    cuda_peak = getattr(pipeline.backend, 'max_memory_allocated', lambda: None)()
    if cuda_peak is not None:
        report['memory']['cuda_max_allocated_mib'] = cuda_peak / 2**20
    if flops:
        achieved = flops / (inference['p50_ms'] / 1e3) / 1e9
        report['achieved_gflops'] = achieved
        report['percent_of_matmul_peak'] = 100.0 * achieved / gemm['peak']
    pipeline.close()
    return report


def median_round(rounds: list[dict]) -> dict:
    """Of one model's rounds, the one with the median per-frame (end-to-end) p50, with every
    round's p50 beside it (`rounds_e2e_p50_ms`)."""
    order = sorted(range(len(rounds)), key=lambda i: rounds[i]['end_to_end']['p50_ms'])
    report = dict(rounds[order[len(order) // 2]])
    report['rounds_e2e_p50_ms'] = [r['end_to_end']['p50_ms'] for r in rounds]
    return report


def compare_reports(reports: list[dict]) -> str:
    """One line per other model: the first model's per-frame rate as a multiple of its."""
    first = reports[0]
    lines = []
    for other in reports[1:]:
        ratio = other['end_to_end']['p50_ms'] / first['end_to_end']['p50_ms']
        lines.append(f"{first['model']} per camera frame: {ratio:.2f}x the rate of {other['model']} "
                     f"(p50 {first['end_to_end']['p50_ms']:.2f} vs {other['end_to_end']['p50_ms']:.2f} ms; "
                     f"rounds {', '.join(f'{v:.1f}' for v in first['rounds_e2e_p50_ms'])} vs "
                     f"{', '.join(f'{v:.1f}' for v in other['rounds_e2e_p50_ms'])} ms)")
    return '\n'.join(lines)


def format_report(r: dict) -> str:
    inf, e2e = r['inference'], r['end_to_end']
    lines = [
        f"{r['backend']} on {r['device']} at {r['resolution'][0]}x{r['resolution'][1]} "
        f"(camera {r['camera'][0]}x{r['camera'][1]}), model {r['model_version']}",
        f"  inference     p50 {inf['p50_ms']:8.2f} ms  p90 {inf['p90_ms']:8.2f}  "
        f"p99 {inf['p99_ms']:8.2f}  {inf['fps']:7.1f} fps",
        f"  pre+inf+dec   p50 {e2e['p50_ms']:8.2f} ms  p90 {e2e['p90_ms']:8.2f}  "
        f"p99 {e2e['p99_ms']:8.2f}  {e2e['fps']:7.1f} fps  (stages p50: "
        + ', '.join(f'{k} {v:.2f} ms' for k, v in r['end_to_end_stage_p50_ms'].items()) + ')',
        f"  peak RSS {r['memory']['peak_rss_mib']:.0f} MiB"
        + (f", CUDA max allocated {r['memory']['cuda_max_allocated_mib']:.0f} MiB"
           if 'cuda_max_allocated_mib' in r['memory'] else ''),
        '  matmul peak ' + ', '.join(f'{k} {v:.1f}' for k, v in r['matmul_peak_gflops'].items())
        + ' GFLOP/s',
    ]
    if r.get('flops_per_camera_frame'):
        lines.append(f"  model {r['flops_per_camera_frame'] / 1e9:.3f} GFLOP per camera frame "
                     f"({r['flops_source']}) -> {r['achieved_gflops']:.1f} GFLOP/s achieved, "
                     f"{r['percent_of_matmul_peak']:.0f} % of the matmul peak")
    else:
        lines.append(f"  model FLOPs unknown: {r['flops_source']}")
    lines.append(f"  machine: {r['machine']['cpu_count']} CPUs, load average (1 min) "
                 f"{r['machine']['load_avg_1m']:.2f}")
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-bench', description=__doc__.splitlines()[0])
    parser.add_argument('--backend', default='auto',
                        choices=('auto', 'tensorrt', 'onnxruntime', 'torch'))
    parser.add_argument('--model', required=True, type=Path, action='append',
                        help='model directory or file; repeat to compare models in one run')
    parser.add_argument('--rounds', type=int, default=1,
                        help='measure the models in turn this many times (default 1)')
    parser.add_argument('--resolution', default='256x192', help='model input WxH')
    parser.add_argument('--camera', default=None, help='camera image WxH (default: resolution)')
    parser.add_argument('--iters', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--threads', type=int, default=0,
                        help='intra-op threads (onnxruntime, torch); 0 = library default')
    parser.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    parser.add_argument('--fp16', action='store_true', help='torch on CUDA: autocast fp16')
    parser.add_argument('--precision', default='fp16', choices=('fp16', 'fp32'),
                        help='tensorrt engine precision')
    parser.add_argument('--gemm-size', type=int, default=1024)
    parser.add_argument('--fixed-shapes', default='on', choices=('on', 'off', 'both'),
                        help='onnxruntime: sessions fixed to the input sizes (on, the default), the '
                             'session of free sizes (off), or each model both ways in the same rounds')
    parser.add_argument('--thread-spinning', default='on', choices=('on', 'off', 'both'),
                        help="onnxruntime: threads that busy-wait between operators (on, the default, as "
                             "the node's backend_thread_spinning; a split model's stop when a run returns), "
                             'threads that sleep (off), or each model both ways in the same rounds')
    parser.add_argument('--json', type=Path, default=None, help='write the result here')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    from geovr_ros.inference.backends.base import InferenceError
    try:
        options = {'device': args.device}
        if args.threads:
            options.update(intra_op_threads=args.threads, threads=args.threads)
        if args.backend == 'torch':
            options['fp16'] = args.fp16
        if args.backend in ('tensorrt', 'auto'):
            options['precision'] = args.precision
        if args.rounds < 1:
            raise ValueError(f'rounds must be >= 1, got {args.rounds}')
        ways = {'on': (True,), 'off': (False,), 'both': (True, False)}
        fixed_ways, spinning_ways = ways[args.fixed_shapes], ways[args.thread_spinning]
        runs = {(str(model), fixed, spinning): [] for model in args.model
                for fixed in fixed_ways for spinning in spinning_ways}
        for _ in range(args.rounds):
            for model, fixed, spinning in runs:
                report = run_benchmark(
                    args.backend, model, parse_resolution(args.resolution), args.iters, args.warmup,
                    parse_resolution(args.camera) if args.camera else None, args.gemm_size,
                    fixed_shapes=fixed, thread_spinning=spinning, **options)
                labels = ([f"{'fixed' if fixed else 'free'} shapes"] if len(fixed_ways) > 1 else []) + \
                    ([f"spinning {'on' if spinning else 'off'}"] if len(spinning_ways) > 1 else [])
                if labels:
                    report['model'] += f" ({', '.join(labels)})"
                runs[model, fixed, spinning].append(report)
    except (InferenceError, ValueError) as error:
        print(f'geovr-bench: error: {error}', file=sys.stderr)
        return 2
    reports = [median_round(rounds) for rounds in runs.values()]
    for report in reports:
        print(format_report(report))
    if len(reports) > 1:
        print(compare_reports(reports))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
