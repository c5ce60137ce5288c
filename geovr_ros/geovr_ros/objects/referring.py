"""Objects named by where they are: "the lamp on the table", "the chair next to the sofa",
"the box under the desk", "the books that are on the shelf".

A question may single out the instances of a category by their place beside another object
(a referring expression) and ask anything about them: "how far is the lamp on the table from
the sofa?", "how many books are on the shelf?", "what colour is the chair next to the bed?".
`find_qualifiers` finds such phrases: a category's mention followed directly by a link ('on',
'on top of', 'under', 'above', 'in', 'inside', 'next to', 'near', 'beside', 'by', 'at', 'around', 'against', optionally after 'that is',
'are', 'lying', ...) and the mention of another object, its anchor (a colour word may name
it: "on the red table"). The question is then parsed without the phrase ("how far is the
lamp from the sofa?") and `ObjectQuestion.qualifiers` carries it. `narrow` keeps the
instances the phrase allows, tested against every credible instance of the anchor with the
place tests of `objects/relations.py`: on (`resting_on`), under (`lying_under`), above
(`lying_above`), in (`lying_inside`), near (`near`: boxes within NEAR_GAP_M, not on or under). When none of a category lies next to the anchor, a
question about one instance ("where is the chair next to the sofa?") takes the nearest and
says so; a count says 0.

Pure Python + numpy; no rclpy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geovr_ros.objects.object_map import ObjectInstance, box_distance
from geovr_ros.objects.relations import NEAR_GAP_M, PLACE_TESTS, PLACE_WORDS

__all__ = ['Narrowed', 'Qualifier', 'cut_spans', 'find_qualifiers', 'narrow']

# What may stand between a mention and its anchor's mention (the anchor's article and an
# optional colour word included): group 1 is the link.
_LINK = re.compile(r"\s+(?:(?:that|which)(?:'s| is| are)?\s+|(?:is|are)\s+)?"
                   r'(?:(?:lying|standing|sitting|placed|kept|put|left|hanging)\s+)?'
                   r'(on top of|on|under|underneath|beneath|below|above|next to|near|beside|by|at|around|close to'
                   r'|against|in|inside|within)\s+'
                   r'(?:the|a|an|that|this)\s+(?:[a-z]+\s+)?')
_RELATION = {'on top of': 'on', 'on': 'on', 'under': 'under', 'underneath': 'under', 'beneath': 'under',
             'below': 'under', 'above': 'above', 'in': 'in', 'inside': 'in', 'within': 'in', 'next to': 'near', 'near': 'near', 'beside': 'near', 'by': 'near', 'at': 'near',
             'around': 'near', 'close to': 'near', 'against': 'near'}


@dataclass(frozen=True)
class Qualifier:
    """"the lamp on the table": category 'lamp', relation 'on' (one of `PLACE_TESTS`: on,
    under, near, above, in), anchor 'table', anchor_colour the colour word before the anchor ('' none)."""

    category: str
    relation: str
    anchor: str
    anchor_colour: str = ''

    @property
    def place(self) -> str:
        """'on the table'."""
        colour = f'{self.anchor_colour} ' if self.anchor_colour else ''
        return f'{PLACE_WORDS[self.relation]} the {colour}{self.anchor}'

    @property
    def phrase(self) -> str:
        """'lamp on the table'."""
        return f'{self.category} {self.place}'


def find_qualifiers(text: str, spans: Sequence[tuple[int, int, str]], colours: Sequence[str]
                    ) -> list[tuple[Qualifier, tuple[int, int]]]:
    """The referring phrases of `text` (lower case), each with the span of `text` to cut so
    that the question reads without it (from the end of the qualified mention to the end of
    the anchor's). spans: (start, end, category) of the vocabulary's mentions in text order
    (`Vocabulary.find_spans`); colours: the colour word before each mention ('' for none). A
    mention and its anchor of one category ("the box on the box") are left as they are."""
    found = []
    for (_, end, category), (start, anchor_end, anchor), colour in zip(spans, spans[1:], colours[1:]):
        link = _LINK.fullmatch(text, end, start)
        if link is not None and anchor != category:
            found.append((Qualifier(category, _RELATION[link.group(1)], anchor, colour), (end, anchor_end)))
    return found


def cut_spans(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` without the (start, end) spans (ascending, not overlapping)."""
    parts, at = [], 0
    for start, end in spans:
        parts.append(text[at:start])
        at = end
    return ''.join(parts) + text[at:]


@dataclass(frozen=True)
class Narrowed:
    """What a qualifier leaves of its category: kept, the instances (credible ones of the
    category that pass the place test; or the single nearest one, `nearest` True, for a
    'near' phrase that none passes and a question about one instance); of_total: how many
    credible instances the category had; note: what the answer says about it."""

    kept: list[ObjectInstance]
    of_total: int
    nearest: bool
    note: str


def narrow(qualifier: Qualifier, group: Sequence[ObjectInstance], anchors: Sequence[ObjectInstance],
           up: np.ndarray | None, one: bool) -> Narrowed:
    """The instances of `group` (the category's credible ones) that `qualifier` allows next
    to any of `anchors` (the anchor's instances), `up` (3,) the map's up (required for 'on'
    and 'under'); one: the question is about one instance (where, size, distance...), not a
    count, so a 'near' phrase that no instance passes falls back to the nearest."""
    test = PLACE_TESTS[qualifier.relation]
    keep = np.zeros(len(group), bool)
    for anchor in anchors:
        keep |= test(group, anchor, up)
    kept = [i for i, k in zip(group, keep) if k]
    total = len(group)
    phrase = qualifier.phrase
    if kept:
        return Narrowed(kept, total, False, f'the {phrase}: {len(kept)} of the {total} I have seen')
    if one and qualifier.relation == 'near' and group:
        gap, nearest = min((min(box_distance(i, a)[0] for a in anchors), k) for k, i in enumerate(group))
        return Narrowed([group[nearest]], total, True,
                        f'the {phrase}: none lies within {NEAR_GAP_M:.2f} m of it, so the nearest one, '
                        f'{gap:.2f} m from it')
    return Narrowed([], total, False, f'none of the {total} I have seen lies {PLACE_WORDS[qualifier.relation]} '
                                      f'the {qualifier.anchor}')
