"""QA items of `geovr_training.data.qa` -> training targets of the QA model.

An item is a dict with `task`, `question`, `template_split` and `answer` (see
geovr_training.data.qa). Targets are in the canonical units of `vocab.CANONICAL_UNIT`
(numeric), option order as given (choice), world metres (point, position) and radians from
world +x about z (heading).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from geovr_training.qa.vocab import (ANSWER_KIND, CATEGORIES, MAX_OPTIONS, NUMERIC_CATEGORIES,
                                     QAVocabularyError, canonical_category, to_canonical_unit)


@dataclass
class QATarget:
    """One question with its answer in model terms (see module docstring)."""

    question: str
    category: str
    template_split: str
    options: list[str] = field(default_factory=list)
    value: float = math.nan
    choice_index: int = -1
    point: np.ndarray | None = None
    position: np.ndarray | None = None
    heading: float = math.nan
    item_id: str = ''

    @property
    def kind(self) -> str:
        return ANSWER_KIND[self.category]

    @property
    def category_index(self) -> int:
        return CATEGORIES.index(self.category)

    @property
    def numeric_index(self) -> int:
        return NUMERIC_CATEGORIES.index(self.category) if self.kind == 'numeric' else -1


def target_from_item(item: dict) -> QATarget:
    """Convert one generated QA item; raises QAVocabularyError naming what does not fit."""
    category = canonical_category(item.get('task', item.get('category', '')))
    answer = item.get('answer') or {}
    target = QATarget(question=str(item['question']), category=category,
                      template_split=str(item.get('template_split', 'train')), item_id=str(item.get('id', '')))
    kind = ANSWER_KIND[category]
    kind_of_answer = {'number': 'numeric', 'choice': 'choice', 'point': 'point', 'pose': 'pose'}.get(answer.get('type'))
    if kind_of_answer != kind:
        raise QAVocabularyError(f'item {target.item_id!r} of task {category!r} has answer type '
                                f'{answer.get("type")!r}, expected the {kind!r} kind')
    if kind == 'numeric':
        target.value = to_canonical_unit(float(answer['value']), answer.get('unit', ''), category)
        if not target.value > 0:
            raise QAVocabularyError(f'item {target.item_id!r}: numeric answer {target.value} must be > 0')
    elif kind == 'choice':
        target.options = [str(c) for c in answer['choices']]
        if not 2 <= len(target.options) <= MAX_OPTIONS:
            raise QAVocabularyError(f'item {target.item_id!r}: {len(target.options)} options, '
                                    f'expected 2..{MAX_OPTIONS}')
        target.choice_index = int(answer['index'])
    elif kind == 'point':
        target.point = np.asarray(answer['value'], dtype=np.float64).reshape(3)
    else:
        target.position = np.asarray(answer['position'], dtype=np.float64).reshape(3)
        target.heading = float(answer['heading'])
    return target
