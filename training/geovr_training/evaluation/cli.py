"""`geovr-eval --checkpoint C --data D --out DIR`: JSON, Markdown table and PNG plots.

D is a generated dataset folder (its `--split`, default test) or a real recording the data
engine's loaders read (7-Scenes-style folder, TUM, the HoloLens layout, rosbag2). A row of
the trivial baseline (every pixel at the set's median true depth) is printed under the model's.
"""

from __future__ import annotations

import argparse
import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['odometry']:  # geovr-eval odometry --model DIR --data REC
        from geovr_training.evaluation.odometry import main as odometry_main
        return odometry_main(argv[1:])
    if argv[:1] == ['localize']:  # geovr-eval localize --model DIR --data REC --map-frames A:B --frames C:D --out DIR
        from geovr_training.evaluation.localize import main as localize_main
        return localize_main(argv[1:])
    if argv[:1] == ['questions']:  # geovr-eval questions --model DIR --data REC --labels YAML --out DIR
        from geovr_training.evaluation.questions import main as questions_main
        return questions_main(argv[1:])
    if argv[:1] == ['objects']:  # geovr-eval objects --data ROOMS [--real REC] --out DIR
        from geovr_training.evaluation.objects import main as objects_main
        return objects_main(argv[1:])
    if argv[:1] == ['verifier']:  # geovr-eval verifier --data ROOMS --out DIR
        from geovr_training.evaluation.verifier import main as verifier_main
        return verifier_main(argv[1:])
    if argv[:1] == ['compare']:  # geovr-eval compare A B: two objects runs over the same rooms, room-paired
        from geovr_training.evaluation.compare import main as compare_main
        return compare_main(argv[1:])
    if argv[:1] == ['transfer']:  # geovr-eval transfer --run NAME=DIRS ... --test NAME=PATH ... --out DIR
        from geovr_training.evaluation.transfer import main as transfer_main
        return transfer_main(argv[1:])
    parser = argparse.ArgumentParser(description='Evaluate a GeoVR-S checkpoint '
                                                 '(or `geovr-eval odometry --help`: the runtime tracker; '
                                                 '`geovr-eval objects --help`: the object map; '
                                                 '`geovr-eval questions --help`: a labelled real question set; '
                                                 '`geovr-eval verifier --help`: fit the object map\'s instance verifier; '
                                                 '`geovr-eval transfer --help`: training mixes judged on real recordings; '
                                                 '`geovr-eval compare --help`: two object-map runs, room by room).')
    parser.add_argument('--checkpoint', required=True)
    parser.add_argument('--data', required=True, help='generated dataset folder or real recording')
    parser.add_argument('--out', required=True, help='output folder (metrics.json, metrics.md, *.png)')
    parser.add_argument('--split', default='test')
    parser.add_argument('--max-sequences', type=int, default=None)
    parser.add_argument('--max-frames', type=int, default=None)
    parser.add_argument('--camera-changes', action='store_true',
                        help='also run the camera robustness table (resize, zoom, principal point, FOV)')
    parser.add_argument('--no-camera-changes', action='store_true', help='(the default) skip the robustness table')
    parser.add_argument('--backend', choices=['onnxruntime', 'torch'], default='onnxruntime',
                        help='run the network in ONNX Runtime (exported on the fly; default) or PyTorch')
    parser.add_argument('--input-size', default=None, help='WxH fed to the model (default: trained size)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)

    from geovr_training.qa import is_qa_checkpoint
    if is_qa_checkpoint(args.checkpoint):  # the language half: VSI-Bench tasks, where-is, ...
        from geovr_training.qa.evaluate import main as evaluate_qa_main
        return evaluate_qa_main(['--checkpoint', args.checkpoint, '--data', args.data,
                                 '--out', args.out, '--split', args.split])

    from geovr_training.evaluation.camera import DEFAULT_CHANGES
    from geovr_training.evaluation.data import load_sequences
    from geovr_training.evaluation.evaluate import evaluate_model, trained_input_size
    from geovr_training.evaluation.metrics import constant_depth_summary
    from geovr_training.evaluation.report import markdown_table, write_report
    from geovr_training.model import CheckpointError, load_checkpoint

    try:
        model, state = load_checkpoint(args.checkpoint)
        sequences = load_sequences(args.data, args.split, args.max_sequences, args.max_frames)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f'geovr-eval: error: {exc}', file=sys.stderr)
        return 2
    size = tuple(int(v) for v in args.input_size.lower().split('x')) if args.input_size else trained_input_size(state)
    changes = DEFAULT_CHANGES if args.camera_changes else ()
    summary, per_sequence, robustness, plots = evaluate_model(model, sequences, size, changes,
                                                              progress=not args.no_progress, backend=args.backend)
    command = 'geovr-eval ' + ' '.join(shlex.quote(a) for a in argv)
    baselines = {}
    if all(seq.depth is not None for seq in sequences):
        baselines['constant depth (the set\'s median)'] = constant_depth_summary(
            [seq.depth for seq in sequences], [seq.segmentation for seq in sequences])
    written = write_report(args.out, summary, per_sequence, robustness, command, plots, baselines)
    print(markdown_table({'all': summary, **baselines}))
    if robustness:
        print(markdown_table(robustness))
    print('wrote ' + ', '.join(written.values()))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
