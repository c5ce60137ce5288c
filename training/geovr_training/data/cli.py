"""`geovr-data`: generate, inspect, convert and benchmark datasets (parses and calls only)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _metres_range(text: str) -> tuple[float, float]:
    """'MIN,MAX' -> (MIN, MAX) floats; GenerationError naming the text otherwise."""
    from .errors import GenerationError
    try:
        low, high = (float(v) for v in text.split(','))
    except ValueError as exc:
        raise GenerationError(f'expected MIN,MAX in metres, e.g. 0.2,0.4, got {text!r}') from exc
    return low, high


def _generate(args) -> int:
    from .generate import GenerationConfig, generate_dataset
    from .randomization import Randomization
    from .trajectory import parse_resolution
    config = GenerationConfig(seed=args.seed, frames_per_scene=args.frames_per_scene,
                              resolution=parse_resolution(args.resolution) if args.resolution else None,
                              fps=args.fps, qa_per_scene=args.qa_per_scene,
                              trajectories=tuple(k.strip() for k in args.trajectories.split(',') if k.strip()),
                              randomization=Randomization.load(args.randomization),
                              camera_height=_metres_range(args.camera_height))
    manifest = generate_dataset(args.out, args.scenes, config, workers=args.workers)
    frames = sum(s['num_frames'] for s in manifest['sequences'])
    print(f"wrote {len(manifest['sequences'])} sequences, {frames} frames to {args.out} "
          f"in {manifest['_elapsed_s']:.1f} s ({frames / manifest['_elapsed_s']:.1f} frames/s)")
    return 0


def _inspect(args) -> int:
    from .inspect import contact_sheet, dataset_stats, format_stats
    stats = dataset_stats(args.dir)
    print(json.dumps(stats, indent=1) if args.json else format_stats(stats))
    png = contact_sheet(args.dir, args.png or Path(args.dir) / 'contact_sheet.png', args.max_sequences)
    print(f'contact sheet: {png}')
    return 0


def _convert(args) -> int:
    from .convert import convert
    manifest = convert(args.source_format, args.src, args.out, name=args.name, intrinsics=args.intrinsics,
                       stride=args.stride, max_frames=args.max_frames, image_topic=args.image_topic,
                       depth_topic=args.depth_topic, split_recording=args.split,
                       truth_time_offset=args.truth_time_offset or None)
    for seq in manifest['sequences']:
        print(f"converted {args.source_format} {args.src}: {seq['name']} ({seq['split']}) {seq['num_frames']} "
              f"frames {seq['image_size'][0]}x{seq['image_size'][1]} -> {args.out}")
    return 0


def _verify(args) -> int:
    from .convert import load_recording
    from .verify import reprojection_disagreement
    seq = load_recording(args.source_format, args.src, intrinsics=args.intrinsics,
                         truth_time_offset=args.truth_time_offset or None)
    print(f'{seq.name}: {len(seq)} frames {seq.image_size[0]}x{seq.image_size[1]}; true depth of frame i '
          f'reprojected into frame i + gap with the poses and K')
    for gap in args.gaps:
        r = reprojection_disagreement(seq, gap=gap, pairs=args.pairs)
        print(f"  gap {gap:3d}: median {1000 * r['median_m']:.1f} mm ({100 * r['median_rel']:.2f} % of depth), "
              f"90th percentile {1000 * r['p90_m']:.0f} mm, overlap {100 * r['overlap']:.0f} % over {r['pairs']:.0f} pairs")
    return 0


def _randomization(args) -> int:
    import yaml
    from .randomization import Randomization
    config = Randomization.load(args.spec)
    values = {stage: {k: list(v) if isinstance(v, tuple) else v for k, v in knobs.items()}
              for stage, knobs in config.to_dict().items()}
    print(f'# geovr-data generate --randomization FILE: {args.spec!r} in full (knob ranges: docs/data.md)')
    print(yaml.safe_dump(values, sort_keys=False, default_flow_style=None, width=100), end='')
    return 0


def _bench(args) -> int:
    from .bench import benchmark, format_benchmark
    results = benchmark(workers=args.workers, scenes=args.scenes, frames_per_scene=args.frames_per_scene,
                        resolution=args.resolution, randomization=args.randomization)
    print(format_benchmark(results))
    return 0


def _pack(args) -> int:
    from .trajectory import parse_resolution
    from .transport import pack_dataset
    out = pack_dataset(args.src, args.out, splits=tuple(args.splits), min_size=parse_resolution(args.min_size),
                       jpeg_quality=args.jpeg_quality, progress=print)
    print(f'wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)')
    return 0


def _unpack(args) -> int:
    from .transport import unpack_dataset
    for packed in args.packed:
        out = Path(args.out) / Path(packed).name.removesuffix('.npz')
        unpack_dataset(packed, out, progress=print)
        print(f'wrote {out}')
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .trajectory import DEFAULT_TRAJECTORY_MIX, TRAJECTORY_KINDS
    parser = argparse.ArgumentParser(prog='geovr-data', description=__doc__)
    sub = parser.add_subparsers(dest='command', required=True)

    g = sub.add_parser('generate', help='render indoor sequences with spatial QA into shards')
    g.add_argument('--out', required=True, help='output folder (manifest.json + one shard per scene)')
    g.add_argument('--scenes', type=int, required=True, help='number of scenes (one sequence each)')
    g.add_argument('--frames-per-scene', type=int, default=32, help='frames per sequence (default 32)')
    g.add_argument('--seed', type=int, default=0, help='dataset seed (default 0)')
    g.add_argument('--workers', type=int, default=1, help='worker processes (default 1)')
    g.add_argument('--resolution', default=None, help='fixed WxH, e.g. 256x192 (default: random per sequence)')
    g.add_argument('--fps', type=float, default=10.0, help='camera frame rate, Hz (default 10)')
    g.add_argument('--qa-per-scene', type=int, default=24, help='QA items per sequence (default 24)')
    g.add_argument('--trajectories', default=','.join(DEFAULT_TRAJECTORY_MIX),
                   help='comma-separated camera paths drawn per scene, repeats weigh; kinds: '
                        f"{', '.join(TRAJECTORY_KINDS)} (default {','.join(DEFAULT_TRAJECTORY_MIX)}; "
                        "close: desk-distance views of one object; rpy: standing, rolling, pitching and yawing; "
                        "tabletop: looking down at a table top from 0.3-0.9 m; "
                        "desk: at a table's edge looking down across it, the floor below the edge)")
    g.add_argument('--camera-height', default='0.8,1.8', metavar='MIN,MAX',
                   help="the camera's height above the floor, metres, drawn per scene (default 0.8,1.8: "
                        "hand-held and head-mounted; e.g. 0.2,0.4 for a small robot's camera)")
    g.add_argument('--randomization', default='none',
                   help="domain randomization: 'none' (plain renders), 'full' (textures, clutter, light and "
                        "sensor effects at their documented defaults) or a YAML file of {stage: {knob: value}} "
                        "over 'full' (docs/data.md lists every knob and its range)")
    g.set_defaults(func=_generate)

    i = sub.add_parser('inspect', help='print statistics and write a PNG contact sheet')
    i.add_argument('dir', help='dataset folder')
    i.add_argument('--png', default=None, help='contact sheet path (default DIR/contact_sheet.png)')
    i.add_argument('--max-sequences', type=int, default=4, help='rows in the contact sheet (default 4)')
    i.add_argument('--json', action='store_true', help='print statistics as JSON')
    i.set_defaults(func=_inspect)

    c = sub.add_parser('convert', help='convert a real recording into a dataset folder')
    c.add_argument('--from', dest='source_format', required=True, choices=['tum', 'frames', 'hololens', 'scannet', 'rosbag'])
    c.add_argument('src', help='recording folder or bag')
    c.add_argument('--out', required=True, help='output dataset folder')
    c.add_argument('--name', default=None, help='sequence name (default: the source folder name)')
    c.add_argument('--intrinsics', default=None,
                   help='TUM: freiburg1|freiburg2|freiburg3 or fx,fy,cx,cy (default: the sensor named by '
                        'the folder or its rgb.txt)')
    c.add_argument('--truth-time-offset', type=float, default=0.0, metavar='S',
                   help="TUM: seconds added to a frame's stamp where its true pose is looked up (the camera's "
                        "clock against the motion capture's, as TUM's evaluate_rpe.py --offset; default 0)")
    c.add_argument('--stride', type=int, default=1, help='keep every n-th frame (default 1)')
    c.add_argument('--max-frames', type=int, default=None, help='keep at most this many frames')
    c.add_argument('--split', action='store_true',
                   help='cut into NAME_train / _val / _test: 70 / 10 / 20 %% in time order, 10 frames '
                        'dropped at each boundary (the fixed split of the real recordings)')
    c.add_argument('--image-topic', default=None, help='rosbag: colour image topic (default: the only one)')
    c.add_argument('--depth-topic', default=None, help='rosbag: depth image topic (default: auto)')
    c.set_defaults(func=_convert)

    v = sub.add_parser('verify', help="check a recording's poses and intrinsics by reprojecting its depth")
    v.add_argument('--from', dest='source_format', required=True, choices=['tum', 'frames', 'hololens', 'scannet', 'rosbag'])
    v.add_argument('src', help='recording folder or bag')
    v.add_argument('--intrinsics', default=None, help='TUM: freiburg1|freiburg2|freiburg3 or fx,fy,cx,cy')
    v.add_argument('--truth-time-offset', type=float, default=0.0, metavar='S',
                   help="TUM: seconds added to a frame's stamp where its true pose is looked up (the camera's "
                        "clock against the motion capture's, as TUM's evaluate_rpe.py --offset; default 0)")
    v.add_argument('--gaps', type=int, nargs='+', default=[1, 5, 15], help='frame gaps (default 1 5 15)')
    v.add_argument('--pairs', type=int, default=20, help='frame pairs per gap (default 20)')
    v.set_defaults(func=_verify)

    r = sub.add_parser('randomization', help='print a randomization preset or file in full, as YAML to edit')
    r.add_argument('spec', nargs='?', default='full', help="'none', 'full' (default) or a YAML file")
    r.set_defaults(func=_randomization)

    b = sub.add_parser('bench', help='frames/s of generation (render + QA + writing) with 1 and 2 workers')
    b.add_argument('--workers', type=int, nargs='+', default=[1, 2], help='worker counts (default 1 2)')
    b.add_argument('--scenes', type=int, default=4, help='scenes per run (default 4)')
    b.add_argument('--frames-per-scene', type=int, default=40, help='frames per scene (default 40)')
    b.add_argument('--resolution', default='320x240', help='WxH (default 320x240)')
    b.add_argument('--randomization', default='none', help="'none', 'full' or a YAML file (as for generate)")
    b.set_defaults(func=_bench)

    p = sub.add_parser('pack', help='a dataset folder in few bytes (JPEG colour, PNG log-depth), to carry '
                                    'to a machine that cannot render (a lent GPU)')
    p.add_argument('src', help='dataset folder')
    p.add_argument('--out', required=True, help='packed file (.npz)')
    p.add_argument('--splits', nargs='+', default=['train', 'val'], help='splits to keep (default train val)')
    p.add_argument('--min-size', default='288x216', help='WxH the shrunk frames still cover (default 288x216)')
    p.add_argument('--jpeg-quality', type=int, default=92, help='JPEG quality of the colour (default 92)')
    p.set_defaults(func=_pack)

    u = sub.add_parser('unpack', help='packed files back into dataset folders (OUT/<file name without .npz>)')
    u.add_argument('packed', nargs='+', help='files written by pack')
    u.add_argument('--out', required=True, help='folder of the dataset folders')
    u.set_defaults(func=_unpack)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .errors import DataError
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f'geovr-data {args.command}: error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
