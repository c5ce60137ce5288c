"""How much to believe each instance of an object map: a logistic model over what the map knows.

A namer that calls a table's corner "chair" in a few frames leaves a chair instance inside
the table's box; one that fires on a bare wall leaves a weak instance nowhere near an object.
No single threshold told them from real objects (confidence, views, detection rate, size
ranges: each raised precision only as far as it cost recall, docs/objects.md), but together,
and against the instances around them, they do. `InstanceVerifier` scores every instance with
a logistic model of `FEATURES`, all category-agnostic so that it applies to every category a
vocabulary may add, fitted by `geovr_training.evaluation.verifier` on rendered rooms, where
the true objects are known, and stored in the vocabulary YAML (`verifier:`):

    belief = sigmoid(bias + weights . features(instance, the other instances))

`ObjectMap.instances()` sets each instance's `belief` and leaves out those under the
verifier's `threshold`, except (`keep_best`) each category's most believed one
(`ObjectMapConfig.verifier`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from geovr_ros.objects.footprint import pairwise_box_overlap

__all__ = ['FEATURES', 'InstanceVerifier', 'VerifierError', 'believed', 'instance_features']

# The features, in order (the weights' order; the fit and the YAML name them):
FEATURES = (
    'log_confidence',          # log(confidence + 0.001)
    'confidence_to_best',      # confidence / its category's most confident instance's
    'log_views',               # log(n_views)
    'log_missed',              # log(1 + n_missed): frames that should have named it and did not
    'detection_rate',          # n_views / (n_views + n_missed)
    'log_longest',             # log(metres + 0.02) of its own box's sides, longest first
    'log_middle',
    'log_shortest',
    'log_height',              # log(metres + 0.02) along up (the middle side without a vertical axis)
    'overlap_other',           # the largest box overlap with an instance of another category
    'log_stronger_other',      # log(1 + the largest evidence ratio of an overlapping other category's)
    'log_stronger_same',       # log(1 + the largest evidence ratio of its category's within 1 m)
)
_OVERLAPPING = 0.1     # box overlap (of the smaller box) from which another category's instance competes
_SAME_NEAR = 1.0       # metres between centroids within which one category's instances compete


class VerifierError(ValueError):
    """A verifier description that cannot be used; names the key and the value."""


def instance_features(instances: Sequence, vertical_axis: int | None = None) -> np.ndarray:
    """(N, len(FEATURES)) features of `instances` (ObjectInstance-like: category, confidence,
    n_views, n_missed, centroid, box_min, box_max, oriented_box), each against the others
    in the same list. vertical_axis: the map axis that points up (None: unknown)."""
    n = len(instances)
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    confidence = np.array([float(i.confidence) for i in instances])
    views = np.array([float(i.n_views) for i in instances])
    missed = np.array([float(i.n_missed) for i in instances])
    categories = np.array([i.category for i in instances])
    sides = np.array([np.sort(np.asarray(i.oriented_box.size, float))[::-1] for i in instances])
    if vertical_axis is None:
        height = sides[:, 1]
    else:
        height = np.array([float(i.box_max[vertical_axis] - i.box_min[vertical_axis]) for i in instances])
    best = {c: float(confidence[categories == c].max()) for c in set(categories)}
    to_best = confidence / np.maximum([best[c] for c in categories], 1e-9)

    overlap = pairwise_box_overlap(np.array([i.box_min for i in instances]), np.array([i.box_max for i in instances]))
    centroids = np.array([i.centroid for i in instances], float)
    apart = np.linalg.norm(centroids[:, None] - centroids[None], axis=2)
    evidence = confidence * views
    ratio = evidence[None, :] / np.maximum(evidence[:, None], 1e-9)      # [k, j]: j's evidence over k's
    same = categories[:, None] == categories[None, :]
    np.fill_diagonal(same, False)
    other = ~same
    np.fill_diagonal(other, False)
    competing_other = other & (overlap > _OVERLAPPING)
    competing_same = same & (apart < _SAME_NEAR)
    return np.column_stack([
        np.log(confidence + 1e-3), to_best, np.log(np.maximum(views, 1.0)), np.log1p(missed),
        views / np.maximum(views + missed, 1.0), np.log(sides + 0.02), np.log(height + 0.02),
        np.where(other, overlap, 0.0).max(axis=1),
        np.log1p(np.where(competing_other, ratio, 0.0).max(axis=1)),
        np.log1p(np.where(competing_same, ratio, 0.0).max(axis=1))])


def believed(instances: Sequence, beliefs: np.ndarray, threshold: float, keep_best: bool) -> np.ndarray:
    """(N,) bool: the instances whose belief (N,) reaches `threshold`, and with `keep_best`
    each category's most believed one."""
    keep = np.asarray(beliefs) >= threshold
    if keep_best:
        best: dict[str, int] = {}
        for k, inst in enumerate(instances):
            if inst.category not in best or beliefs[k] > beliefs[best[inst.category]]:
                best[inst.category] = k
        keep[list(best.values())] = True
    return keep


@dataclass(frozen=True)
class InstanceVerifier:
    """weights: one per `FEATURES` name; bias; threshold: the belief in [0, 1) under which
    an instance is left out of the map's answers and markers; keep_best: each category's most
    believed instance stays whatever its belief (the verifier then prunes duplicates and
    fragments, never a category's only evidence); fitted_on: where the weights came from, for
    readers."""

    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.3
    keep_best: bool = True
    fitted_on: str = ''

    def __post_init__(self):
        if len(self.weights) != len(FEATURES) or not np.all(np.isfinite(self.weights)):
            raise VerifierError(f'verifier weights must be {len(FEATURES)} finite numbers (one per feature: '
                                f'{", ".join(FEATURES)}), got {self.weights!r}')
        if not np.isfinite(self.bias):
            raise VerifierError(f'verifier bias must be finite, got {self.bias!r}')
        if not 0 <= self.threshold < 1:
            raise VerifierError(f'verifier threshold must be in [0, 1), got {self.threshold!r}')

    def beliefs(self, instances: Sequence, vertical_axis: int | None = None) -> np.ndarray:
        """(N,) in (0, 1): how likely each instance is an object of its category."""
        if not instances:
            return np.zeros(0)
        z = instance_features(instances, vertical_axis) @ np.asarray(self.weights) + self.bias
        return 1.0 / (1.0 + np.exp(-z))

    def kept(self, instances: Sequence, beliefs: np.ndarray) -> np.ndarray:
        """(N,) bool: `believed(instances, beliefs, threshold, keep_best)`."""
        return believed(instances, beliefs, self.threshold, self.keep_best)

    def to_dict(self) -> dict[str, Any]:
        return {'threshold': float(self.threshold), 'keep_best': bool(self.keep_best), 'bias': float(self.bias),
                'weights': {name: float(w) for name, w in zip(FEATURES, self.weights)},
                'fitted_on': self.fitted_on}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = 'verifier') -> 'InstanceVerifier':
        """From the vocabulary's `verifier:` mapping (`to_dict`'s form)."""
        if not isinstance(data, Mapping):
            raise VerifierError(f'{where} must be a mapping with threshold, bias and weights, got {data!r}')
        unknown = set(data) - {'threshold', 'keep_best', 'bias', 'weights', 'fitted_on'}
        if unknown:
            raise VerifierError(f'{where}: unknown key(s) {sorted(unknown)} (allowed: threshold, keep_best, bias, '
                                f'weights, fitted_on)')
        if not isinstance(data.get('keep_best', True), bool):
            raise VerifierError(f'{where}.keep_best must be true or false, got {data["keep_best"]!r}')
        weights = data.get('weights')
        if not isinstance(weights, Mapping) or set(weights) != set(FEATURES):
            raise VerifierError(f'{where}.weights must give exactly the features {list(FEATURES)}, got '
                                f'{sorted(weights) if isinstance(weights, Mapping) else weights!r}')
        try:
            return cls(tuple(float(weights[name]) for name in FEATURES), float(data.get('bias', 0.0)),
                       float(data.get('threshold', 0.3)), data.get('keep_best', True), str(data.get('fitted_on', '')))
        except (TypeError, ValueError) as exc:
            raise VerifierError(f'{where}: {exc}') from exc
