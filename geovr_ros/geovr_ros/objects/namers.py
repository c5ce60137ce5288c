"""Two cell namers combined into one category distribution per cell.

- The ImageNet namer: the backbone's 1000 ImageNet logits per cell through the vocabulary
  (`Vocabulary.grid_probabilities` on a grid: the logits averaged over the vocabulary's
  `pool_cells` window of cells first, the classifier's logits for that window;
  `Vocabulary.probabilities` on flat cells, each alone): names real objects, not the
  rendered rooms' furniture.
- A trained category head (`category_logits` of the exported cell classifier, its category
  names in the graph's metadata): K categories + background, trained on rendered rooms.

`CellNamer(vocabulary, head_categories)` maps each head category to the vocabulary category
its name resolves to (name, plural or synonym: the renderer's 'tv' is the vocabulary's
'monitor'); names that resolve to none are added as categories (`Vocabulary.with_categories`:
'stool', 'toy duck'), so `namer.vocabulary` is the one questions are parsed with.

The rule (`probabilities`), per cell, over the vocabulary's V categories + background; the
vocabulary's `combine` chooses it (YAML key, default 'head'):
- 'head' (the default): the head decides its own categories, the ImageNet namer the rest
  within what the head calls background:
      p_c = p_head(c)                          for the head's categories
      p_c = p_head(background) p_imagenet(c)   for the others
      p_background = 1 - sum_c p_c             (rows sum to 1)
  except in cells where the ImageNet namer's probability of one category reaches the
  vocabulary's `imagenet_sure` (shipped 0.4; 0.9 before session 53): there its probabilities
  are taken as they are (a classifier of real photographs, fairly sure, over a head that learned
  from renders: on the real HoloLens walk the head names a sofa 'teddy bear'; docs/objects.md).
- 'max': a cell is an object when either namer is confident of it, with the category the
  more confident namer gives:
      p_c = max(p_head(c), p_imagenet(c))      (a namer that does not name c gives 0)
      p_background = min(p_head(background), p_imagenet(background))   (rows do not sum to 1)
The two namers may see different cells: the ImageNet classes are named on the stride-32
cells, a stride-16 head on the stride-16 ones. Given as grids (..., h, w, C), the coarser one
is brought to the finer grid first (`upsample_cells`: nearest, each coarse cell's values in
the f x f fine cells it covers), so a combined map has the finer cells.
Cells are then labelled as always (`Vocabulary.label_cells`: the largest p_c where it reaches
min_score, else background). With one namer only, its own probabilities are returned (the
ImageNet path of a model without the head is unchanged). On held-out rendered rooms 'head'
keeps the head's recall (0.425) at a better precision than 'max' (0.27 vs 0.21; 'max' lets
ImageNet classes relabel the head's chairs and tables), and answers 3 of the 22 real
HoloLens questions to 'max''s 2 (docs/objects.md).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from geovr_ros.geometry import ShapeError
from geovr_ros.objects.vocabulary import COMBINE_RULES, Vocabulary, VocabularyError

__all__ = ['CellNamer', 'RULES', 'softmax', 'upsample_cells']

RULES = COMBINE_RULES


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def upsample_cells(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Nearest upsampling of a cell grid (..., h, w, C) to (..., H, W, C) with H = f h and
    W = f w for one integer factor f >= 1 (stride-32 cells to stride-16 ones: f = 2; each
    cell's values are repeated in the f x f cells it covers). Raises ShapeError when `grid`
    is not such a multiple of (h, w)."""
    values = np.asarray(values)
    if values.ndim < 3:
        raise ShapeError(f'cells must be a grid (..., h, w, C), got shape {values.shape}')
    h, w = values.shape[-3:-1]
    H, W = int(grid[0]), int(grid[1])
    if H % h or W % w or H // h != W // w or H < h:
        raise ShapeError(f'a {h}x{w} cell grid cannot be upsampled to {H}x{W} by one integer factor')
    f = H // h
    if f == 1:
        return values
    return np.repeat(np.repeat(values, f, axis=-3), f, axis=-2)


class CellNamer:
    """The vocabulary extended by a category head's names, and the rule combining the namers.

    Args:
        vocabulary: the ImageNet vocabulary (shipped YAML, a user's merged over it).
        head_categories: the head's K category names in its column order (background is
            column K); () for a model without the head.
        rule: 'head' or 'max' (module docstring); None: the vocabulary's `combine`.
    Raises:
        VocabularyError: a head name is empty, repeated, or two names resolve to one category.
    """

    def __init__(self, vocabulary: Vocabulary, head_categories: Sequence[str] = (), rule: str | None = None):
        rule = vocabulary.combine if rule is None else rule
        if rule not in RULES:
            raise ValueError(f'rule must be one of {RULES}, got {rule!r}')
        self.rule = rule
        names = tuple(str(n) for n in head_categories)
        if any(not n.strip() for n in names) or len(set(names)) != len(names):
            raise VocabularyError(f'head categories must be distinct non-empty names, got {list(names)}')
        self.vocabulary = vocabulary.with_categories(names)
        self.head_categories = names
        resolved = [self.vocabulary.resolve(n) for n in names]
        shared = sorted({r for r in resolved if resolved.count(r) > 1})
        if shared:
            raise VocabularyError(f'head categories {list(names)} name {shared} more than once')
        self.head_columns = np.array([self.vocabulary.index(r) for r in resolved], dtype=np.int64)  # (K,)

    def head_probabilities(self, category_logits: np.ndarray) -> np.ndarray:
        """(..., V + 1) probabilities of the head's logits (..., K + 1) in vocabulary columns
        (categories the head does not name: 0)."""
        logits = np.asarray(category_logits)
        k = len(self.head_categories)
        if not k:
            raise VocabularyError('this namer has no head categories')
        if logits.shape[-1] != k + 1:
            raise ShapeError(f'category logits must have {k + 1} columns ({k} head categories + background), '
                             f'got shape {logits.shape}')
        if not np.all(np.isfinite(logits)):
            raise VocabularyError('category logits contain NaN or inf')
        p = softmax(logits)
        out = np.zeros(p.shape[:-1] + (len(self.vocabulary) + 1,))
        out[..., self.head_columns] = p[..., :-1]
        out[..., -1] = p[..., -1]
        return out

    def probabilities(self, class_logits: np.ndarray | None = None,
                      category_logits: np.ndarray | None = None, pool: bool = True) -> np.ndarray:
        """(..., V + 1) category probabilities of a cell grid from ImageNet logits (..., 1000)
        and / or head logits (..., K + 1), combined by the module's rule. ImageNet logits given
        as a grid (..., h, w, 1000) are pooled over the vocabulary's `pool_cells` window first
        (`Vocabulary.grid_probabilities`) unless `pool` is False (logits of windows,
        `objects/windows.py`); flat (cells, 1000) each cell is named alone. The two may be grids
        of different cell sizes, (..., h, w, 1000) and (..., f h, f w, K + 1) or the other way
        round (f an integer): the coarser is upsampled (`upsample_cells`) and the result is on
        the finer grid. Raises ShapeError when their cells differ otherwise."""
        if class_logits is None and category_logits is None:
            raise ValueError('give class_logits, category_logits or both')
        if class_logits is None:
            imagenet = None
        elif np.ndim(class_logits) >= 3 and pool:   # a grid: pooled over the vocabulary's window
            imagenet = self.vocabulary.grid_probabilities(class_logits)
        else:
            imagenet = self.vocabulary.probabilities(class_logits)
        if category_logits is None:
            return imagenet
        head = self.head_probabilities(category_logits)
        if imagenet is None:
            return head
        if imagenet.shape != head.shape and imagenet.ndim >= 3 and imagenet.shape[:-3] == head.shape[:-3]:
            finer = max(imagenet.shape[-3:-1], head.shape[-3:-1])
            try:
                imagenet, head = upsample_cells(imagenet, finer), upsample_cells(head, finer)
            except ShapeError as exc:
                raise ShapeError(f'the namers disagree on the cells: {imagenet.shape[:-1]} vs '
                                 f'{head.shape[:-1]} ({exc})') from None
        if imagenet.shape != head.shape:
            raise ShapeError(f'the namers disagree on the cells: {imagenet.shape[:-1]} vs {head.shape[:-1]}'
                             + (' (give both as (h, w, C) grids to combine cells of two sizes)'
                                if imagenet.ndim < 3 else ''))
        if self.rule == 'head':
            combined = imagenet * head[..., -1:]
            combined[..., self.head_columns] = head[..., self.head_columns]
            combined[..., -1] = 1.0 - combined[..., :-1].sum(-1)
            sure = imagenet[..., :-1].max(-1) >= self.vocabulary.imagenet_sure   # ImageNet all but certain
            combined[sure] = imagenet[sure]
            return combined
        combined = np.maximum(imagenet, head)
        combined[..., -1] = np.minimum(imagenet[..., -1], head[..., -1])
        return combined
