"""`geovr-export`: onnx | question | int8 | parity | engine. Parses arguments and calls the library."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _sizes(text: str) -> list[tuple[int, int]]:
    from geovr_training.export.metadata import parse_size
    return [parse_size(part) for part in text.split(',') if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='geovr-export', description=__doc__)
    parser.add_argument('-v', '--verbose', action='store_true')
    sub = parser.add_subparsers(dest='command', required=True)

    onnx = sub.add_parser('onnx', help='checkpoint -> model directory (ONNX + .pt2 + metadata)')
    onnx.add_argument('--checkpoint', required=True, type=Path)
    onnx.add_argument('--out', required=True, type=Path, help='model directory to write')
    onnx.add_argument('--opset', type=int, default=17)
    onnx.add_argument('--shapes', type=_sizes, default=None,
                      help='declared sizes besides the training size, WxH,WxH '
                           '(default 128x96,640x480)')
    onnx.add_argument('--input-size', type=lambda t: _sizes(t)[0], default=None,
                      help='training size WxH (default: from the checkpoint config)')
    onnx.add_argument('--model-version', default=None)
    onnx.add_argument('--no-torch-program', action='store_true',
                      help='skip the torch.export program (.pt2)')
    onnx.add_argument('--no-parity', action='store_true', help='skip the parity check')
    onnx.add_argument('--parity-data', type=Path, default=None,
                      help='real frames or a geovr-data dataset for the parity check')

    question = sub.add_parser(
        'question', help='QA checkpoint -> question_encoder.onnx, question_graph.onnx, '
                         'tokenizer.json (with parity check); geovr_node parameter question_model')
    question.add_argument('--checkpoint', required=True, type=Path,
                          help='a QA checkpoint (python -m geovr_training.qa.train)')
    question.add_argument('--out', required=True, type=Path, help='question model directory')
    question.add_argument('--no-parity', action='store_true', help='skip the parity check')

    int8 = sub.add_parser('int8', help='model directory -> the same with its per-frame graphs (frame '
                                       'encoder, pair head) quantized to int8, calibrated on real frames')
    int8.add_argument('--model', required=True, type=Path, help='directory from `geovr-export onnx`')
    int8.add_argument('--out', required=True, type=Path, help='int8 model directory to write')
    int8.add_argument('--calibration', required=True, nargs='+',
                      help='recordings or geovr-data datasets, PATH[@split] (default split: train)')
    int8.add_argument('--frames', type=int, default=80, help='calibration frame pairs (default 80)')
    int8.add_argument('--calibration-method', choices=('percentile', 'minmax'), default='percentile',
                      help="activation ranges: each tensor's 99.99th percentile of |x| (default) or its "
                           'whole range')
    int8.add_argument('--check', nargs='*', default=[],
                      help='held-out PATH[@split] (default split: test): float and int8 depth against '
                           'the true depth, written to OUT/int8.json')

    parity = sub.add_parser('parity', help='torch vs ONNX Runtime on real samples')
    parity.add_argument('--checkpoint', required=True, type=Path)
    parity.add_argument('--onnx', required=True, type=Path)
    parity.add_argument('--data', type=Path, default=None,
                        help='real frames (*.color.png + intrinsics.K.txt) or a geovr-data '
                             'dataset folder (default $GEOVR_PARITY_DATA or realsense_box)')
    parity.add_argument('--samples', type=int, default=2)
    parity.add_argument('--json', type=Path, default=None)

    engine = sub.add_parser('engine', help='ONNX (any exported graph) -> cached TensorRT engine '
                                           '(TensorRT 10 or 11)')
    engine.add_argument('--onnx', required=True, type=Path)
    engine.add_argument('--precision', choices=('auto', 'fp16', 'fp32', 'onnx'), default='auto',
                        help='auto: fp16 on TensorRT 10, onnx on 11; onnx: strongly typed, '
                             'precision as typed in the ONNX graph (the only mode of TensorRT '
                             '11); fp16: TensorRT 10 only')
    engine.add_argument('--workspace', type=int, default=1024, help='MiB')
    engine.add_argument('--shapes', default=None,
                        help='min/opt/max WxH, e.g. 128x96/256x192/640x480 '
                             '(default: the model metadata profile)')
    engine.add_argument('--batch', default=None, help='min/opt/max batch, e.g. 1/1/2')
    engine.add_argument('--cache-dir', type=Path, default=None,
                        help='engine cache (default $GEOVR_ENGINE_CACHE or '
                             '~/.cache/geovr_ros/engines)')
    engine.add_argument('--check-only', action='store_true',
                        help='only the static checks (no TensorRT needed)')
    engine.add_argument('--out', type=Path, default=None,
                        help='also copy the engine and its .json metadata here, e.g. '
                             'models/geovr-s/perception.engine (runs without the ONNX)')
    return parser


def _run_parity(checkpoint, onnx_path, data, samples, json_path=None, graph: str = 'perception') -> int:
    from geovr_training.export.parity import parity_check
    report = parity_check(checkpoint, onnx_path, data, count=samples, graph=graph)
    print(report.table())
    if json_path:
        Path(json_path).write_text(json.dumps(report.to_json(), indent=2) + '\n')
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format='%(levelname)s %(name)s: %(message)s')
    from geovr_ros.inference.backends.base import InferenceError
    from geovr_training.export.parity import ParityDataError

    try:
        if args.command == 'onnx':
            from geovr_training.export.onnx_export import ExportError, export_model
            try:
                report = export_model(args.checkpoint, args.out, opset=args.opset, sizes=args.shapes,
                                      input_size=args.input_size, model_version=args.model_version,
                                      with_torch_program=not args.no_torch_program)
            except ExportError as error:
                print(f'geovr-export onnx: error: {error}', file=sys.stderr)
                return 2
            for graph in report.graphs:
                print(f'{graph.name}: {graph.onnx}' + (f', {graph.pt2}' if graph.pt2 else '')
                      + f' ({", ".join(f"{k} {v:.1f} s" for k, v in graph.seconds.items())})')
            if args.no_parity:
                return 0
            status = _run_parity(args.checkpoint, Path(args.out) / 'perception.onnx',
                                 args.parity_data, 2, Path(args.out) / 'parity.json')
            if any(graph.name == 'imagenet_cells' for graph in report.graphs):
                status = max(status, _run_parity(args.checkpoint, Path(args.out) / 'imagenet_cells.onnx',
                                                 args.parity_data, 2, Path(args.out) / 'parity_imagenet_cells.json',
                                                 graph='imagenet_cells'))
            return status
        if args.command == 'question':
            from geovr_training.qa.export import export_question_graphs
            try:
                result = export_question_graphs(args.checkpoint, args.out,
                                                check=not args.no_parity)
            except AssertionError as failure:  # the parity check's verdict
                print(f'geovr-export question: parity FAILED: {failure}', file=sys.stderr)
                return 1
            for path in result['files']:
                print(path)
            for output, errors in result.get('parity', {}).items():
                print(f'parity {output}: {errors}')
            return 0
        if args.command == 'int8':
            from geovr_training.export.quantize import FrameSource, compare_models, quantize_model
            report = quantize_model(args.model, args.out,
                                    [FrameSource.parse(t, 'train') for t in args.calibration], args.frames,
                                    method=args.calibration_method)
            for graph in ('frame_encoder', 'pair_head'):
                print(f"{graph}: {report[graph]['bytes_float'] / 2**20:.1f} MiB float -> "
                      f"{report[graph]['bytes_int8'] / 2**20:.1f} MiB int8 ({report[graph]['calibration_method']})")
            if args.check:
                report['check'] = compare_models(args.model, args.out,
                                                 [FrameSource.parse(t, 'test') for t in args.check])
                check = report['check']
                for name in ('float', 'int8'):
                    if check.get(name):
                        print(f"{name:5s} depth AbsRel {check[name]['abs_rel']:.3f}  delta1 {check[name]['delta1']:.3f}"
                              f"  ({check['frames']} frames of {', '.join(check['sources'])})")
                print(f"int8 vs float: depth {100 * check['depth_change_median']:.1f} % (median), relative "
                      f"pose {check['pose_rotation_change_deg_median']:.3f} deg (median)")
            (Path(args.out) / 'int8.json').write_text(json.dumps(report, indent=2) + '\n')
            return 0
        if args.command == 'parity':  # the graph the file says it is (perception, frame_encoder, imagenet_cells)
            from geovr_ros.inference.metadata import read_graph_metadata
            return _run_parity(args.checkpoint, args.onnx, args.data, args.samples, args.json,
                               graph=read_graph_metadata(args.onnx).graph)
        if args.command == 'engine':
            from geovr_training.export.engine import build_engine, engine_profiles, static_check
            profiles, _ = engine_profiles(args.onnx, args.shapes, args.batch)
            problems = static_check(args.onnx, profiles)
            for problem in problems:
                print(f'static check FAILED: {problem}', file=sys.stderr)
            if problems:
                return 1
            print(f'static TensorRT checks passed: profile {profiles[0]}')
            if args.check_only:
                return 0
            _, outcome = build_engine(args.onnx, args.precision, args.workspace,
                                      cache_dir=args.cache_dir, verbose=args.verbose,
                                      profiles=profiles, checked=True)
            print(f'engine {outcome.status}: {outcome.path}'
                  + (f' ({outcome.reason})' if outcome.reason else ''))
            if args.out:
                from geovr_training.export.tensorrt_builder import copy_engine
                print(f'engine copied to {copy_engine(outcome.path, args.out)} (+ .json)')
            return 0
    except (InferenceError, ParityDataError, ValueError, OSError) as error:   # QuantizationError too
        print(f'geovr-export {args.command}: error: {error}', file=sys.stderr)
        return 2
    return 2


if __name__ == '__main__':
    sys.exit(main())
