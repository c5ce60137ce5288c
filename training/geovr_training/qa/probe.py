"""Do the memory tokens say what object they show? A linear probe of object category on the
QA cache's pooled keyframe tokens: `token_category_probe(config)`; CLI
`python -m geovr_training.qa.probe --config training/configs/qa_cpu_v2.yaml --out DIR [--untrained]`.

A token is labelled with the category of the instance covering most of its image area, when
that instance covers at least `min_cover` of it (the renderer's instance masks, as the
grounding targets). A multinomial logistic regression (L2, full-batch L-BFGS) on standardised
tokens is fitted on the training rooms (its L2 weight chosen on the validation rooms) and
scored on the held-out ones, beside two baselines: the training rooms' most frequent category,
and the held-out rooms' own most frequent share. `--untrained` probes the tokens of the same
architecture without geometric training (the QA ablation's `no_geometric_training` encoder).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def labelled_tokens(cache: dict, dataset_dir: str | Path, min_cover: float = 0.3) -> tuple[torch.Tensor, list[str]]:
    """Tokens (N, C) float32 whose image area is covered at least `min_cover` by one object,
    and that object's category per token."""
    from geovr_training.data.shards import ShardReader, read_manifest
    dataset_dir = Path(dataset_dir)
    files = {s['name']: s['file'] for s in read_manifest(dataset_dir)['sequences']}
    features, labels = [], []
    for s, name in enumerate(cache['sequences']):
        with ShardReader(dataset_dir / files[name]) as reader:
            category = {o.instance_id: o.category for o in reader.scene.objects}
        share, instance = cache['cover'][s].float().max(-1)
        keep = [m for m in range(share.shape[0]) if cache['mask'][s, m] > 0 and share[m] >= min_cover
                and int(instance[m]) in category]
        features.append(cache['tokens'][s, keep].float())
        labels += [category[int(instance[m])] for m in keep]
    return torch.cat(features), labels


def fit_linear_probe(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float = 1e-3,
                     iterations: int = 200) -> torch.nn.Linear:
    """Multinomial logistic regression on (N, C) features and (N,) class indices."""
    torch.manual_seed(0)
    probe = torch.nn.Linear(x.shape[1], classes)
    optimiser = torch.optim.LBFGS(probe.parameters(), lr=1.0, max_iter=iterations, line_search_fn='strong_wolfe')

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(probe(x), y) + l2 * probe.weight.square().sum()
        loss.backward()
        return loss
    optimiser.step(closure)
    return probe


def token_category_probe(config: dict, splits: tuple[str, str, str] = ('train', 'val', 'test'),
                         min_cover: float = 0.3, l2_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1),
                         progress: bool = True) -> dict:
    """Fit on the first split's tokens for each L2 weight of `l2_grid`, keep the one best on the
    second, score it on the third; accuracies in percent."""
    from geovr_training.qa.train import cached, merge_config
    config = merge_config(config)
    data = [labelled_tokens(cached(config, [split], progress=progress), config['data'], min_cover) for split in splits]
    for split, (_, labels) in zip(splits, data):
        if not labels:
            raise ValueError(f'no token of the {split!r} rooms is covered at least {min_cover} by one object: '
                             'lower min_cover')
    categories = sorted({c for _, labels in data for c in labels})
    index = {c: i for i, c in enumerate(categories)}
    splits_xt = [(x, torch.tensor([index[c] for c in labels])) for x, labels in data]
    (x_train, t_train), (x_val, t_val), (x_test, t_test) = splits_xt
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)

    def accuracy(probe, x, t):
        with torch.no_grad():
            return 100 * float((probe((x - mean) / std).argmax(-1) == t).float().mean())
    fits = {l2: fit_linear_probe((x_train - mean) / std, t_train, len(categories), l2) for l2 in l2_grid}
    validation = {l2: accuracy(probe, x_val, t_val) for l2, probe in fits.items()}
    l2 = max(validation, key=validation.get)
    probe = fits[l2]
    with torch.no_grad():
        predicted = probe((x_test - mean) / std).argmax(-1)  # (N_test,) category indices
    majority = int(torch.bincount(t_train, minlength=len(categories)).argmax())
    per_category = {c: {'tokens': int((t_test == i).sum()),
                        'recall': 100 * float((predicted[t_test == i] == i).float().mean())
                        if (t_test == i).any() else None}
                    for c, i in index.items()}
    return {'geometry_checkpoint': config['geometry']['checkpoint'], 'data': str(config['data']),
            'splits': list(splits), 'min_cover': min_cover, 'tokens': [len(t) for _, t in splits_xt],
            'categories': len(categories), 'l2': l2, 'validation_accuracy_by_l2': validation,
            'test_accuracy': accuracy(probe, x_test, t_test), 'train_accuracy': accuracy(probe, x_train, t_train),
            'majority_category': categories[majority],
            'majority_accuracy': 100 * float((t_test == majority).float().mean()),
            'most_frequent_test_share': 100 * float(torch.bincount(t_test).max()) / len(t_test),
            'per_category': per_category}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description='Linear probe of object category on the QA memory tokens.')
    parser.add_argument('--config', required=True, help='QA YAML config (its data, geometry and memory)')
    parser.add_argument('--out', required=True, help='folder for probe.json')
    parser.add_argument('--untrained', action='store_true',
                        help='probe the same encoder architecture without geometric training')
    parser.add_argument('--min-cover', type=float, default=0.3)
    args = parser.parse_args(argv)
    from geovr_training.qa.ablation import variant
    from geovr_training.qa.train import load_config, merge_config
    config = merge_config(load_config(args.config))
    if args.untrained:
        config = variant(config, 'no_geometric_training') or config
    result = token_category_probe(config, min_cover=args.min_cover)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'probe.json').write_text(json.dumps(result, indent=1))
    print(f"object category from memory tokens ({result['categories']} categories, {result['tokens'][2]} "
          f"held-out tokens): linear probe {result['test_accuracy']:.1f} % (train {result['train_accuracy']:.1f} %, "
          f"L2 {result['l2']:g}); training majority '{result['majority_category']}' "
          f"{result['majority_accuracy']:.1f} %, most frequent held-out category "
          f"{result['most_frequent_test_share']:.1f} %")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
