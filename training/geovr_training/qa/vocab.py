"""The QA vocabulary shared by training, evaluation, export and the runtime answerer.

Categories: VSI-Bench's eight tasks plus "where is" (a 3D point) and "localization" (a
camera pose from a description). Every category has one answer kind: 'numeric' (a value
with a unit, regressed in log space), 'choice' (one of the options given with the
question), 'point' (a 3D point in the memory's world frame, metres) or 'pose' (position in
metres and heading in radians about world z, world frame z up).

The vocabulary is written into the exported question graph's metadata
(`geovr.qa_vocabulary`), so the runtime reads it from the file, never from this module.
"""

from __future__ import annotations

import math

CATEGORIES: tuple[str, ...] = (
    'object_count', 'abs_distance', 'object_size', 'room_size', 'rel_distance',
    'rel_direction', 'route_plan', 'appearance_order', 'where_is', 'situated_localization')

VSI_BENCH_TASKS: tuple[str, ...] = CATEGORIES[:8]

ANSWER_KIND: dict[str, str] = {
    'object_count': 'numeric', 'abs_distance': 'numeric', 'object_size': 'numeric',
    'room_size': 'numeric', 'rel_distance': 'choice', 'rel_direction': 'choice',
    'route_plan': 'choice', 'appearance_order': 'choice', 'where_is': 'point',
    'situated_localization': 'pose'}

NUMERIC_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if ANSWER_KIND[c] == 'numeric')

# Canonical unit per numeric category (VSI-Bench: object size in centimetres, room size in
# square metres, distances in metres, counts without unit).
CANONICAL_UNIT: dict[str, str] = {
    'object_count': '', 'abs_distance': 'm', 'object_size': 'cm', 'room_size': 'm^2'}

# Category names are the task names of geovr_training.data.qa.TASKS; VSI-Bench's own
# names are accepted as aliases.
CATEGORY_ALIASES: dict[str, str] = {
    'object_counting': 'object_count', 'object_abs_distance': 'abs_distance',
    'object_size_estimation': 'object_size', 'room_size_estimation': 'room_size',
    'object_rel_distance': 'rel_distance', 'object_rel_direction': 'rel_direction',
    'object_rel_direction_easy': 'rel_direction', 'object_rel_direction_medium': 'rel_direction',
    'object_rel_direction_hard': 'rel_direction', 'route_planning': 'route_plan',
    'obj_appearance_order': 'appearance_order', 'localization': 'situated_localization'}

# Factor to the canonical unit of each unit spelling.
UNIT_FACTORS: dict[str, tuple[str, float]] = {
    '': ('', 1.0), 'objects': ('', 1.0), 'count': ('', 1.0),
    'm': ('m', 1.0), 'meter': ('m', 1.0), 'meters': ('m', 1.0), 'metre': ('m', 1.0), 'metres': ('m', 1.0),
    'cm': ('m', 0.01), 'centimeters': ('m', 0.01), 'centimetres': ('m', 0.01), 'mm': ('m', 0.001),
    'm^2': ('m^2', 1.0), 'm2': ('m^2', 1.0), 'sqm': ('m^2', 1.0), 'square meters': ('m^2', 1.0),
    'square metres': ('m^2', 1.0), 'cm^2': ('m^2', 1e-4)}

HEADING_BINS = 36
MAX_OPTIONS = 6


class QAVocabularyError(ValueError):
    """A category or unit is not in the QA vocabulary."""


def canonical_category(name: str) -> str:
    """The category name of CATEGORIES for `name` or one of its aliases."""
    key = str(name).strip().lower()
    key = CATEGORY_ALIASES.get(key, key)
    if key not in ANSWER_KIND:
        raise QAVocabularyError(f'unknown QA category {name!r}; known: {list(CATEGORIES)}')
    return key


def to_canonical_unit(value: float, unit: str, category: str) -> float:
    """`value` in `unit` converted to the canonical unit of numeric `category`."""
    target = CANONICAL_UNIT[category]
    spelled = str(unit or '').strip().lower()
    if spelled not in UNIT_FACTORS:
        raise QAVocabularyError(f'unknown unit {unit!r} for category {category!r}')
    dimension, factor = UNIT_FACTORS[spelled]
    target_dimension, target_factor = UNIT_FACTORS[target]
    if dimension != target_dimension:
        raise QAVocabularyError(f'unit {unit!r} does not measure {category!r} (expected {target!r})')
    return float(value) * factor / target_factor


def heading_bin_centres() -> list[float]:
    """Centres of the heading bins, radians in [-pi, pi): bin i covers
    [-pi + i w, -pi + (i + 1) w) with w = 2 pi / HEADING_BINS."""
    width = 2 * math.pi / HEADING_BINS
    return [-math.pi + (i + 0.5) * width for i in range(HEADING_BINS)]


def vocabulary_metadata() -> dict:
    """The vocabulary as written into `geovr.qa_vocabulary` of the question graph."""
    return {'categories': list(CATEGORIES), 'answer_kind': dict(ANSWER_KIND),
            'numeric_categories': list(NUMERIC_CATEGORIES), 'units': dict(CANONICAL_UNIT),
            'heading_bins': HEADING_BINS, 'heading_bin_centres': heading_bin_centres(),
            'max_options': MAX_OPTIONS,
            'choice_convention': 'options are scored independently; choice = argmax over '
                                 'valid options (option_mask 1); index is 0-based in the '
                                 'order the options were given'}
