"""`geovr-eval verifier`: fits the object map's instance verifier on rendered rooms.

The runtime's namer (the category head with the ImageNet namer, `combine` of the vocabulary)
maps each room without a verifier; every instance it keeps is labelled true when it is
matched one-to-one to a shown object of its category within the match radius (the same
`match_objects` that `geovr-eval objects` scores recall and precision with), else false. A
logistic regression with an L2 penalty on the standardised features
(`geovr_ros.objects.verifier.FEATURES`) is fitted to those labels by Newton's method and the
standardisation folded into the weights. Written: OUT/verifier.yaml, the `verifier:` block of
a vocabulary (paste it into `object_vocabulary.yaml` or a user vocabulary), and
OUT/verifier.json with the fit's figures: per threshold the recall and precision the map
would have had on the same rooms. Judge it on other rooms: `geovr-eval objects` with and
without `--no-verifier`.

    geovr-eval verifier --data ROOMS --checkpoint models/geovr_s_v2/checkpoint.pt --out DIR
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1.0, iterations: int = 50
                 ) -> tuple[np.ndarray, float]:
    """(weights (F,), bias) of P(label) = sigmoid(features @ weights + bias), maximum
    likelihood with `l2` / 2 |w|^2 on the standardised features (the bias unpenalised);
    the standardisation is folded in, so the weights apply to the raw features (N, F)."""
    x = np.asarray(features, np.float64)
    y = np.asarray(labels, np.float64)
    mean, scale = x.mean(0), x.std(0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = np.column_stack([(x - mean) / scale, np.ones(len(x))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], float(l2))
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(z @ w)))
        gradient = z.T @ (p - y) + penalty * w
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    weights = w[:-1] / scale
    return weights, float(w[-1] - weights @ mean)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (the chance that a true instance outscores a false one)."""
    scores, labels = np.asarray(scores), np.asarray(labels, bool)
    ranks = np.empty(len(scores))
    ranks[np.argsort(scores, kind='mergesort')] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):   # ties share their mean rank
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    n_true, n_false = labels.sum(), (~labels).sum()
    if n_true == 0 or n_false == 0:
        return float('nan')
    return float((ranks[labels].sum() - n_true * (n_true + 1) / 2) / (n_true * n_false))


def labelled_maps(sequences, model, vocabulary, size, imagenet, map_config, radius: float):
    """[(instances, shown objects)] of the runtime namer's map of each sequence (no verifier)."""
    from geovr_training.evaluation.objects import evaluate_namers_rendered
    maps: list = []
    evaluate_namers_rendered(sequences, model, vocabulary, size, ('combined',), (vocabulary.combine,), radius,
                             imagenet=imagenet, map_config=replace(map_config, verifier=None), keep_maps=maps)
    return [(instances, [o for o in scene.objects if o.first_seen is not None]) for _, instances, scene in maps]


def operating_points(maps, beliefs: list[np.ndarray], radius: float) -> list[dict]:
    """Per threshold of THRESHOLDS: recall and precision of the instances believed at least so,
    alone and with each category's most believed one kept (`InstanceVerifier.keep_best`)."""
    from geovr_ros.objects.verifier import believed
    from geovr_training.evaluation.objects import match_objects
    shown = sum(len(objects) for _, objects in maps)
    rows = []
    for threshold in (0.0,) + THRESHOLDS:
        row = {'threshold': threshold}
        for keep_best in (False, True):
            kept = matched = 0
            for (instances, objects), belief in zip(maps, beliefs):
                chosen = [i for i, k in zip(instances, believed(instances, belief, threshold, keep_best)) if k]
                kept += len(chosen)
                matched += len(match_objects(chosen, objects, radius))
            suffix = '_keep_best' if keep_best else ''
            row.update({'instances' + suffix: kept, 'recall' + suffix: matched / max(shown, 1),
                        'precision' + suffix: matched / max(kept, 1)})
        rows.append(row)
    return rows


def fit_verifier(maps, vertical_axis: int | None, threshold: float = 0.3, l2: float = 1.0, keep_best: bool = True,
                 fitted_on: str = ''):
    """(InstanceVerifier, report) fitted to [(instances, shown objects)]: an instance is true when
    `match_objects` pairs it with an object. The report: instances, true, AUC and the
    `operating_points` on the same maps, the verifier as a dict. Raises ValueError when the
    instances are all true, all false or none."""
    from geovr_ros.objects.verifier import InstanceVerifier, instance_features
    from geovr_training.evaluation.objects import MATCH_RADIUS, match_objects
    features, labels = [], []
    for instances, objects in maps:
        matched = {i for i, _, _ in match_objects(instances, objects, MATCH_RADIUS)}
        features.append(instance_features(instances, vertical_axis))
        labels += [k in matched for k in range(len(instances))]
    y = np.array(labels, bool)
    if not len(y) or y.all() or not y.any():
        raise ValueError(f'{len(y)} instances, {int(y.sum())} of them true: nothing to tell apart')
    weights, bias = fit_logistic(np.vstack(features), y, l2)
    verifier = InstanceVerifier(tuple(float(w) for w in np.round(weights, 4)), round(bias, 4), threshold, keep_best,
                                f'{fitted_on}, {len(y)} instances, {int(y.sum())} true)' if fitted_on else '')
    beliefs = [verifier.beliefs(instances, vertical_axis) for instances, _ in maps]
    return verifier, {'instances': len(y), 'true': int(y.sum()), 'auc': roc_auc(np.concatenate(beliefs), y),
                      'operating_points': operating_points(maps, beliefs, MATCH_RADIUS),
                      'verifier': verifier.to_dict()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval verifier', description=__doc__.split('\n\n')[0])
    parser.add_argument('--data', required=True, help='generated rendered rooms (every split is used)')
    parser.add_argument('--checkpoint', default='models/geovr_s_v2/checkpoint.pt',
                        help='GeoVR-S v2 checkpoint with the category head')
    parser.add_argument('--vocabulary', default=None, help='a user vocabulary YAML merged over the shipped one')
    parser.add_argument('--threshold', type=float, default=0.3, help='belief under which instances are left out')
    parser.add_argument('--no-keep-best', action='store_true',
                        help="leave out a category's most believed instance too when it is under the threshold")
    parser.add_argument('--l2', type=float, default=1.0, help='L2 penalty on the standardised weights')
    parser.add_argument('--max-sequences', type=int, default=None)
    parser.add_argument('--out', required=True, help='output folder (verifier.yaml, verifier.json)')
    args = parser.parse_args(argv)
    if not 0 <= args.threshold < 1 or args.l2 < 0:
        parser.error(f'--threshold must be in [0, 1) and --l2 >= 0, got {args.threshold} and {args.l2}')

    import yaml
    from geovr_ros.objects import ObjectMapConfig, load_vocabulary
    from geovr_training.evaluation.data import load_sequences
    from geovr_training.evaluation.evaluate import trained_input_size
    from geovr_training.evaluation.objects import MATCH_RADIUS, imagenet_network
    from geovr_training.model import CheckpointError, load_checkpoint
    from geovr_training.model.efficientnet import WeightsError
    try:
        sequences = [s for split in ('train', 'val', 'test') for s in load_sequences(args.data, split,
                                                                                    args.max_sequences)]
        model, state = load_checkpoint(args.checkpoint)
        vocabulary = load_vocabulary(args.vocabulary)
        imagenet = imagenet_network('pristine')
    except (CheckpointError, WeightsError, FileNotFoundError, ValueError) as exc:
        print(f'geovr-eval verifier: error: {exc}', file=sys.stderr)
        return 2
    if not sequences:
        print(f'geovr-eval verifier: error: no sequences in {args.data}', file=sys.stderr)
        return 2
    size = trained_input_size(state) or (256, 192)
    vertical_axis = 2   # the rendered world's z
    maps = labelled_maps(sequences, model, vocabulary, size, imagenet,
                         ObjectMapConfig(vertical_axis=vertical_axis, on_floor=vocabulary.on_floor),
                         MATCH_RADIUS)
    command = 'geovr-eval verifier ' + ' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[2:]))
    try:
        verifier, report = fit_verifier(maps, vertical_axis, args.threshold, args.l2, not args.no_keep_best,
                                        f'{command} ({len(sequences)} rooms')
    except ValueError as exc:
        print(f'geovr-eval verifier: error: {exc}', file=sys.stderr)
        return 2
    report = {'command': command, 'rooms': len(sequences), **report}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'verifier.json').write_text(json.dumps(report, indent=2) + '\n')
    (out / 'verifier.yaml').write_text(yaml.safe_dump({'verifier': verifier.to_dict()}, sort_keys=False, width=100))
    print(f'{len(sequences)} rooms, {report["instances"]} instances ({report["true"]} true), AUC on them '
          f'{report["auc"]:.3f}')
    print('  belief >= t: instances, recall, precision; with each category\'s most believed kept (keep_best)')
    for row in report['operating_points']:
        print(f'  belief >= {row["threshold"]:.1f}: {row["instances"]}, {row["recall"]:.3f}, {row["precision"]:.3f}; '
              f'{row["instances_keep_best"]}, {row["recall_keep_best"]:.3f}, {row["precision_keep_best"]:.3f}')
    print(f'wrote {out / "verifier.yaml"} (the vocabulary block), {out / "verifier.json"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
