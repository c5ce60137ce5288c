"""Answers computed from the object map: count (and "is there a ...?"), distance, size,
where-is, first-seen order, the list of what was seen, and (`objects/relations.py`) which
object is nearest another (or whether one is closer than another: "is the lamp closer to the
bed than the chair?", the camera may be one of them), where one lies seen from a stated
viewpoint, the turns of a route and the room's floor area: VSI-Bench's eight tasks and
where-is; and which of two objects is bigger, taller, longer or wider, what rests on (lies
under) what and whether one lies between two others. Any of them may name an object by where
it is ("how far is the lamp on the table from the sofa?": `objects/referring.py`).

The question is read by `objects/questions.py` (`parse_object_question`: the task from
keywords, the objects from the vocabulary's words). An object the map does not hold gets "I
have not seen a piano" (and says when the word is not in the vocabulary at all). A question that is not
about objects (no task keyword, or no object named) is declined with `NO_MODEL_MESSAGE`, so
`ChainedAnswerer` passes it on (put `GeometricAnswerer` first: "where am I", "how far have I
travelled" are its questions).

Every answer carries the objects it used: their centres in `points` (K, 3), in `frame`, and
their categories in the text. A category's *credible* instances are those at least
`CREDIBLE_FRACTION` (half) as confident as its most confident one: a name given to a few
cells in a few views beside an object seen well is more often a misnaming than a second
object (held-out rendered rooms, docs/objects.md). Definitions:
- count: the credible instances of the category (tentative ones, seen in fewer than the
  map's `min_views` frames, are not in the map's answer at all); the text says how many less
  certain ones were left out;
- distance: between the centres of the two instances (the default, as the project's QA
  data defines it) or between the closest points of their boxes when the question says
  closest / nearest points / edge / gap / between the surfaces; the text gives both. With
  several instances, the pair whose less confident member is the most confident, then whose
  more confident one is (two categories: each one's most confident instance, the ones
  where-is names), then the closest in that measure. "from me" / "from the camera": from the
  camera's position to the category's nearest instance;
- size: the longest side of the instance's own box (`ObjectInstance.oriented_box`: turned to
  its footprint when the map's up is known, else axis-aligned), its height along up ("how
  tall") or its longest side across up ("how wide"), in the unit the question names (cm, mm,
  feet, inches; distances too), else metres; the most confident instance;
- where: the most confident instance, its coordinates and, with a camera pose, its offset
  from the camera in words (ahead/behind, left/right, above/below in the camera's optical
  frame);
- first-seen order: the named categories ordered by the first stamp any of their credible
  instances was seen; when the question lists options ("(A) chair, lamp; (B) ..."), the
  option that agrees with that order on the most pairs of categories (one never seen comes
  after those seen; then the one whose first category was seen first: "which did you see
  first: the chair or the table?"), `value` its index (unit 'option index', as the learned
  answerer's).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from geovr_ros.geometry import invert_pose, transform_points
from geovr_ros.memory.answerer import NO_MODEL_MESSAGE, Answer
from geovr_ros.memory.spatial_memory import MemorySnapshot
from geovr_ros.objects.colours import COLOUR_PROTOTYPES, colour_distance, colour_name
from geovr_ros.objects.object_map import ObjectInstance, ObjectMap, box_distance
from geovr_ros.objects.questions import CAMERA_ROLE, LENGTH_UNITS, RELATION_TASKS, ObjectQuestion, parse_object_question
from geovr_ros.objects.referring import Qualifier, narrow
from geovr_ros.objects.relations import (around_answer, bearing_answer, between_answer, between_list_answer,
                                         comparison_answer, direction_answer, nearest_option, resting_place_answer,
                                         room_answer, route_answer, seen_now_answer, size_comparison_answer,
                                         size_extreme_answer, size_of, support_answer, xyz_text)
from geovr_ros.objects.room import FloorOutline
from geovr_ros.objects.vocabulary import Vocabulary, plural_of

__all__ = ['NOT_SEEN', 'ObjectAnswerer', 'ObjectQuestion', 'answer_from_objects', 'box_distance', 'credible_mask',
           'parse_object_question']


def _plural(name: str, vocabulary: Vocabulary) -> str:
    try:
        return vocabulary.category(name).plural_name
    except ValueError:
        return plural_of(name)


def _a(name: str) -> str:
    return ('an ' if name[:1] in 'aeiou' else 'a ') + name


NOT_SEEN = 'I have not seen'  # how every answer about objects the map lacks begins (Answer.not_seen)
CREDIBLE_FRACTION = 0.5  # of the category's best confidence: see the module docstring


def _credible(group: Sequence[ObjectInstance]) -> list[ObjectInstance]:
    top = max(i.confidence for i in group)
    return [i for i in group if i.confidence >= CREDIBLE_FRACTION * top]


def _credible_items(by_category: dict[str, list[ObjectInstance]]) -> list[ObjectInstance]:
    """Every category's credible instances, in one list."""
    return [i for group in by_category.values() for i in _credible(group)]


def credible_mask(instances: Sequence[ObjectInstance]) -> np.ndarray:
    """(len(instances),) bool: which instances the answers count, each category's at least
    CREDIBLE_FRACTION as confident as its most confident one (the module docstring)."""
    best: dict[str, float] = {}
    for inst in instances:
        best[inst.category] = max(best.get(inst.category, 0.0), inst.confidence)
    return np.array([inst.confidence >= CREDIBLE_FRACTION * best[inst.category] for inst in instances], bool)


def _not_seen(q: ObjectQuestion, names: Sequence[str], vocabulary: Vocabulary) -> Answer:
    if q.unknown:
        note = f' ({q.unknown} is not in my object vocabulary)'
        names = [q.unknown]
    else:
        note = ''
    if q.task == 'object_count':
        text = f'{"no, " if q.exists else ""}{NOT_SEEN} any {_plural(names[0], vocabulary)}: 0{note}'
        return Answer(True, 'ok', text, q.task, 0.0, 'count', confidence=1.0, not_seen=True)
    text = f'{NOT_SEEN} ' + ' or '.join(_a(n) for n in names) + note
    return Answer(False, text, text, q.task, not_seen=True)


def _no_such_colour(q: ObjectQuestion, category: str, colour: str, uncoloured: int, vocabulary: Vocabulary,
                    frame: str) -> Answer:
    """A count by colour that no instance of the category matches."""
    unsure = (f'; {uncoloured} {category if uncoloured == 1 else _plural(category, vocabulary)} whose colour I could '
              'not tell' if uncoloured else '')
    return Answer(True, 'ok', f'{"no, " if q.exists else ""}I have seen no {colour} '
                  f'{_plural(category, vocabulary)}: 0{unsure}', q.task, 0.0, 'count', confidence=1.0, frame=frame)


def _words(offset_cam: np.ndarray) -> str:
    x, y, z = offset_cam
    parts = [f'{abs(z):.2f} m {"ahead" if z >= 0 else "behind"}',
             f'{abs(x):.2f} m to the {"right" if x >= 0 else "left"}',
             f'{abs(y):.2f} m {"below" if y >= 0 else "above"}']
    return ', '.join(parts)


def answer_from_objects(question: str, instances: Sequence[ObjectInstance], vocabulary: Vocabulary,
                        camera_pose: np.ndarray | None = None, frame: str = 'map', up: np.ndarray | None = None,
                        floor: FloorOutline | Callable[[], FloorOutline | None] | None = None) -> Answer:
    """Answers `question` from `instances` (all in `frame`); camera_pose: (4, 4) optical
    camera-to-`frame` of the latest frame, or None; up: (3,) the up direction in `frame` for
    directions and turns (None: the camera's own up, minus its optical y axis, which is right
    for a level camera); floor: the room's outline in `frame` (`ObjectMap.room`) for its floor
    area, or a function returning it (called only for a room-size question). Declines
    (`NO_MODEL_MESSAGE`) what is not an object question. The answer's `object_ids` name the
    instances its points are the centroids of (`object_ids_of`)."""
    answer = _answer_question(question, instances, vocabulary, camera_pose, frame, up, floor)
    return dataclasses.replace(answer, object_ids=object_ids_of(answer.points, instances))


def object_ids_of(points: np.ndarray, instances: Sequence[ObjectInstance]) -> tuple[int, ...]:
    """Per point (K, 3) the id of the instance whose centroid it is (-1: not an object's, e.g.
    the camera or the floor's centre); () when none is an object's."""
    ids = tuple(next((int(i.instance_id) for i in instances if np.array_equal(i.centroid, p)), -1)
                for p in np.asarray(points, np.float64).reshape(-1, 3))
    return ids if any(i >= 0 for i in ids) else ()


def _answer_question(question: str, instances: Sequence[ObjectInstance], vocabulary: Vocabulary,
                     camera_pose: np.ndarray | None, frame: str, up: np.ndarray | None,
                     floor: FloorOutline | Callable[[], FloorOutline | None] | None) -> Answer:
    q = parse_object_question(question, vocabulary)
    if q is None:
        return Answer(False, NO_MODEL_MESSAGE, frame=frame)
    if up is None and camera_pose is not None:
        up = -np.asarray(camera_pose, np.float64)[:3, 1]
    by_category: dict[str, list[ObjectInstance]] = {}
    for inst in instances:
        by_category.setdefault(inst.category, []).append(inst)
    if q.task == 'object_list':
        return _list(by_category, vocabulary, frame)
    if q.task == 'room_size':
        return room_answer(floor() if callable(floor) else floor, frame, q.unit)
    if q.task == 'above_floor':
        floor = floor() if callable(floor) else floor
        if q.to_camera and not q.categories:
            return _camera_height(camera_pose, floor, up, frame)
    notes = [f"reading '{typed}' as '{term}'" for typed, term in q.read_as]
    for qualifier in q.qualifiers:   # "the lamp on the table": only the lamps on a table
        narrowed = _narrow(q, qualifier, by_category, vocabulary, up, frame)
        if isinstance(narrowed, Answer):
            return narrowed
        notes.append(narrowed)
    answer = _answer(q, by_category, vocabulary, camera_pose, frame, up, floor)
    notes += _doubts(answer, instances)
    if notes and answer.success:
        answer = dataclasses.replace(answer, answer=f'{answer.answer}; ' + '; '.join(notes))
    return answer


def _doubts(answer: Answer, instances: Sequence[ObjectInstance]) -> list[str]:
    """A note per doubted instance the answer used (its centre among the answer's points): the
    map keeps it as its category's most believed, but its verifier doubts it."""
    used = set(object_ids_of(answer.points, instances))
    return [f'uncertain: the map believes this {inst.category} only {inst.belief:.2f}' for inst in instances
            if inst.doubted and inst.instance_id in used]


def _narrow(q: ObjectQuestion, qualifier: Qualifier, by_category: dict[str, list[ObjectInstance]],
            vocabulary: Vocabulary, up, frame) -> str | Answer:
    """Leaves in `by_category` the instances of `qualifier.category` that lie where it says
    (`objects/referring.py`) and returns what the answer should add about them, or the answer
    itself when none is left or the places cannot be told."""
    group, anchors = by_category.get(qualifier.category), by_category.get(qualifier.anchor)
    if not group or not anchors:
        missing = [c for c in (qualifier.category, qualifier.anchor) if not by_category.get(c)]
        return _replace_frame(_not_seen(q, missing, vocabulary), frame)
    if up is None and qualifier.relation not in ('near', 'in'):   # the tests that need no up
        return Answer(False, 'no camera pose yet to tell up from down', frame=frame)
    anchors = [_pick(anchors, qualifier.anchor_colour)] if qualifier.anchor_colour else _credible(anchors)
    result = narrow(qualifier, _credible(group), anchors, up, one=q.task != 'object_count')
    if result.kept:
        by_category[qualifier.category] = result.kept
        return result.note
    if q.task == 'object_count':
        plural = _plural(qualifier.category, vocabulary)
        return Answer(True, 'ok', f'{"no, " if q.exists else ""}I have seen no {plural} '
                      f'{qualifier.place}: 0 ({result.note}; '
                      f'{"; ".join(f"the {qualifier.anchor} at {xyz_text(a.centroid)}" for a in anchors)})',
                      q.task, 0.0, 'count', points=np.stack([a.centroid for a in anchors]),
                      confidence=float(min(a.confidence for a in anchors)), frame=frame)
    text = f'{NOT_SEEN} {_a(qualifier.phrase)} ({result.note})'
    return Answer(False, text, text, q.task, frame=frame, not_seen=True)


def _answer(q: ObjectQuestion, by_category: dict[str, list[ObjectInstance]], vocabulary: Vocabulary,
            camera_pose, frame: str, up, floor: FloorOutline | None = None) -> Answer:
    """`answer_from_objects` for a parsed question of a task that reads instances (`floor`:
    the room's outline, for heights above the floor)."""
    if q.task in RELATION_TASKS:
        return _relation(q, by_category, vocabulary, camera_pose, up, frame)
    if q.unknown:
        return _replace_frame(_not_seen(q, [], vocabulary), frame)
    uncoloured = 0   # a count by colour: the credible instances whose colour could not be told
    for category, colour in zip(q.categories, q.colours):   # "the red chair": the chair nearest red in colour
        if colour and by_category.get(category) and q.task != 'appearance_order':
            group = by_category[category]
            if q.task == 'object_count':
                credible = _credible(group)
                uncoloured = sum(i.colour is None for i in credible)
                by_category[category] = [i for i in credible if colour_name(i.colour) == colour]
                if not by_category[category]:
                    return _no_such_colour(q, category, colour, uncoloured, vocabulary, frame)
            else:
                by_category[category] = [_pick(group, colour)]
    seen = [c for c in q.categories if by_category.get(c)]
    if q.task == 'appearance_order':
        return _order(q, by_category, vocabulary, frame)
    if not seen or (q.task == 'abs_distance' and len(q.categories) >= 2 and len(seen) < 2):
        missing = [c for c in q.categories if not by_category.get(c)]
        return _replace_frame(_not_seen(q, missing, vocabulary), frame)
    if q.task == 'object_count' and len(q.categories) > 1 and not any(q.colours):
        return _counts(q, by_category, vocabulary, frame)
    if q.task == 'object_count':
        found = _credible(by_category[seen[0]])
        name = seen[0] if len(found) == 1 else _plural(seen[0], vocabulary)
        left_out = len(by_category[seen[0]]) - len(found)
        doubt = (f'; {left_out} less certain one{"s" * (left_out > 1)} (under half the best confidence) '
                 f'not counted' if left_out else '')
        if uncoloured:
            doubt += f'; {uncoloured} more whose colour I could not tell'
        return Answer(True, 'ok', f'{"yes, " if q.exists else ""}I have seen {len(found)} {name} (centres in {frame}: '
                      + '; '.join(xyz_text(i.centroid) + _looks(i) for i in found) + f'){doubt}', q.task,
                      float(len(found)), 'count',
                      points=np.stack([i.centroid for i in found]),
                      confidence=float(np.mean([i.confidence for i in found])), frame=frame)
    if q.task == 'object_size':
        return _size(q, seen[0], by_category[seen[0]], up, frame)
    if q.task == 'where_is':
        return _where(seen[0], by_category[seen[0]], camera_pose, frame, nearest=q.to_camera)
    if q.task == 'when_seen':
        return _when(seen[0], _credible(by_category[seen[0]]), q.latest, frame)
    if q.task == 'above_floor':
        return _above_floor(seen[0], by_category[seen[0]], floor, up, frame)
    if q.task == 'object_colour':
        return _colour(seen[0], by_category[seen[0]], frame)
    return _distance(q, seen, by_category, vocabulary, camera_pose, frame)


def _pick(group: Sequence[ObjectInstance], colour: str = '', taken: Sequence[ObjectInstance] = ()) -> ObjectInstance:
    """The instance a mention means: of the credible ones, the nearest `colour` in colour when
    one is named (`objects/colours.py`), else the most confident; one not `taken` by an
    earlier mention of the same category when there is one."""
    pool = [i for i in _credible(group) if not any(i is t for t in taken)] or _credible(group)
    if colour and any(i.colour is not None for i in pool):
        target = np.asarray(COLOUR_PROTOTYPES[colour])
        return min(pool, key=lambda i: (np.inf if i.colour is None else float(colour_distance(i.colour, target)),
                                        -i.confidence))
    return max(pool, key=lambda i: i.confidence)


def _looks(inst: ObjectInstance) -> str:
    """' (red)': the colour an instance looks, or '' when none was seen."""
    name = colour_name(inst.colour)
    return f' ({name})' if name else ''


def _named(category: str, colour: str) -> str:
    return f'{colour} {category}' if colour else category


def _relation(q: ObjectQuestion, by_category, vocabulary, camera_pose, up, frame) -> Answer:
    """rel_distance, rel_direction and route_plan (`objects/relations.py`) on the instances the
    question's objects resolve to."""
    missing = [c for c in dict.fromkeys(q.roles) if c != CAMERA_ROLE and not by_category.get(c)]
    if missing:
        return _replace_frame(_not_seen(q, missing, vocabulary), frame)
    if CAMERA_ROLE in q.roles and camera_pose is None:
        return Answer(False, 'no camera pose yet to measure from', frame=frame)
    places = []
    for category, colour in zip(q.roles, q.role_colours):
        places.append(_camera_place(camera_pose) if category == CAMERA_ROLE
                      else _pick(by_category[category], colour, places))
    names = ['camera' if c == CAMERA_ROLE else _named(c, colour) for c, colour in zip(q.roles, q.role_colours)]
    if q.task == 'rel_distance' and q.compare:
        return comparison_answer(names, places, q.compare, q.farthest, q.closest, frame)
    if q.task == 'rel_distance' and q.among:   # each credible instance of the one category is an option
        category, colour = q.options[0]
        if not by_category.get(category):
            return _replace_frame(_not_seen(q, [category], vocabulary), frame)
        group = [_pick(by_category[category], colour)] if colour else _credible(by_category[category])
        return nearest_option(names[0], places[0], [_named(category, colour)] * len(group), [[i] for i in group],
                              q.farthest, q.closest, frame, listed=False)
    if q.task == 'rel_distance':
        options = list(q.options) or [(c, '') for c in sorted(by_category)]
        candidates = [[] if not by_category.get(c) else [_pick(by_category[c], colour)] if colour
                      else _credible(by_category[c]) for c, colour in options]
        return nearest_option(names[0], places[0], [_named(c, colour) for c, colour in options], candidates,
                              q.farthest, q.closest, frame, listed=bool(q.options))
    if q.task == 'size_extreme':
        return _size_extreme(q, by_category, vocabulary, up, frame)
    if q.task == 'around' and q.place == 'now':   # needs no pose: what the latest keyframes named
        return seen_now_answer(camera_pose, _credible_items(by_category), frame)
    if q.task == 'around':
        if camera_pose is None or up is None:
            return Answer(False, 'no camera pose yet to look around from', frame=frame)
        if q.roles:
            return bearing_answer(names[0], places[0], camera_pose, up, [o[0] for o in q.options] or [q.place], frame)
        items = _credible_items(by_category)
        return around_answer(q.place, camera_pose, items, up, frame)
    if q.task == 'size_compare':
        return size_comparison_answer(names, places, q.measure, q.yes_no, up, frame)
    if q.task == 'between' and len(places) == 2:
        items = _credible_items(by_category)
        return between_list_answer(names, places, items, up, frame)
    if q.task == 'between':
        return between_answer(names, places, up, frame)
    if up is None:
        return Answer(False, 'no camera pose yet to tell up from down', frame=frame)
    if q.task == 'support' and q.place == 'support_of':
        items = _credible_items(by_category)
        return resting_place_answer(names[0], places[0], items, up, frame)
    if q.task == 'support':
        category, colour = q.roles[-1], q.role_colours[-1]
        supports = [places[-1]] if colour else _credible(by_category[category])
        items = _credible_items(by_category)
        return support_answer(names[-1], supports, items, up, frame, asked=q.roles[0] if len(q.roles) == 2 else '',
                              relation=q.place, camera_pose=camera_pose)
    if q.task == 'rel_direction':
        return direction_answer(names, places, [o[0] for o in q.options], up, frame)
    return route_answer(names, places, q.options, up, frame)


def _size_extreme(q: ObjectQuestion, by_category, vocabulary, up, frame) -> Answer:
    """The tallest (biggest, ...) of the question's options, of a category's credible instances,
    or of every credible instance of the map."""
    if q.options:
        missing = [c for c, _ in q.options if not by_category.get(c)]
        if missing:
            return _replace_frame(_not_seen(q, missing, vocabulary), frame)
        candidates = [_pick(by_category[c], colour) for c, colour in q.options]
        return size_extreme_answer(q.measure, [_named(c, colour) for c, colour in q.options], candidates, up, frame,
                                   listed=True)
    if q.roles:
        colour = q.role_colours[0] if q.role_colours else ''
        candidates = [_pick(by_category[q.roles[0]], colour)] if colour else _credible(by_category[q.roles[0]])
    else:
        candidates = _credible_items(by_category)
    if not candidates:
        return Answer(True, 'ok', 'I have not seen any object yet', q.task, float('nan'), frame=frame)
    return size_extreme_answer(q.measure, [i.category for i in candidates], candidates, up, frame, listed=False)


def _camera_place(camera_pose: np.ndarray) -> ObjectInstance:
    """The camera's optical centre as a point-sized place to measure distances from."""
    centre = np.asarray(camera_pose, np.float64)[:3, 3].copy()
    return ObjectInstance(-1, 'camera', 1.0, centre, centre.copy(), centre.copy(), 0, float('nan'), float('nan'), ())


def _replace_frame(answer: Answer, frame: str) -> Answer:
    from dataclasses import replace
    return replace(answer, frame=frame)


def _list(by_category, vocabulary, frame) -> Answer:
    if not by_category:
        return Answer(True, 'ok', 'I have not seen any object yet', 'object_list', 0.0, 'count', frame=frame)
    found = [i for group in by_category.values() for i in group]
    parts = [f'{len(g)} {g[0].category if len(g) == 1 else _plural(g[0].category, vocabulary)}'
             for g in sorted(by_category.values(), key=lambda g: -len(g))]
    return Answer(True, 'ok', 'I have seen ' + ', '.join(parts) + f' (centres in `points`, {frame})',
                  'object_list', float(len(found)), 'count', points=np.stack([i.centroid for i in found]),
                  confidence=float(np.mean([i.confidence for i in found])), frame=frame)


def _order(q, by_category, vocabulary, frame) -> Answer:
    """First-seen order of the question's categories (every category of the map when it names
    none: "what did you see first?"); `q.latest`: last-seen order, the latest first ("what did
    you see last?", "which did you see last, the chair or the table?")."""
    if not q.categories and not by_category:
        return Answer(True, 'ok', 'I have not seen any object yet', q.task, float('nan'), frame=frame)
    firsts = []
    for c in q.categories or tuple(by_category):
        if by_category.get(c):
            if q.latest:
                last = max(_credible(by_category[c]), key=lambda i: i.last_seen)
                firsts.append((last.last_seen, c, last))
            else:
                first = min(_credible(by_category[c]), key=lambda i: i.first_seen)
                firsts.append((first.first_seen, c, first))
    missing = [c for c in q.categories if not by_category.get(c)]
    if not firsts:
        return _replace_frame(_not_seen(q, missing, vocabulary), frame)
    firsts.sort(key=lambda f: -f[0] if q.latest else f[0])
    listed = [f'the {c} (t={t:.2f} s)' for t, c, _ in firsts]
    text = 'last seen: ' + ', before it '.join(listed) if q.latest else 'first seen: ' + ', then '.join(listed)
    if missing:
        text += '; not seen: ' + ', '.join(f'the {c}' for c in missing)
    value, unit = float('nan'), ''
    if q.options and q.latest and all(len(option) == 1 for option in q.options):   # the option seen last
        seen_at = {c: t for t, c, _ in firsts}
        index = max(range(len(q.options)), key=lambda k: (seen_at.get(q.options[k][0], -np.inf), -k))
        text = f'({chr(65 + index)}) {q.options[index][0]}; ' + text
        value, unit = float(index), 'option index'
    elif q.options:
        seen_at = {c: t for t, c, _ in firsts}
        index = max(range(len(q.options)), key=lambda k: (_order_agreement(q.options[k], seen_at),
                                                          -seen_at.get(q.options[k][0], np.inf), -k))
        text = f'({chr(65 + index)}) {", ".join(q.options[index])}; ' + text
        value, unit = float(index), 'option index'
    return Answer(True, 'ok', text, q.task, value, unit,
                  points=np.stack([f[2].centroid for f in firsts]),
                  confidence=float(np.mean([f[2].confidence for f in firsts])), frame=frame)


def _order_agreement(order: Sequence[str], seen_at: dict[str, float]) -> int:
    """Pairs of `order` that the first-seen stamps {category: s} agree with, minus those they
    contradict; a category never seen counts as seen after every stamp."""
    t = [seen_at.get(c, np.inf) for c in order]
    return sum(int(np.sign(t[j] - t[i])) for i in range(len(t)) for j in range(i + 1, len(t))
               if np.isfinite(t[i]) or np.isfinite(t[j]))


def _in_unit(metres: float, unit: str) -> tuple[float, str]:
    """(value, unit) of a length in metres in the question's unit (a key of LENGTH_UNITS)."""
    return metres * LENGTH_UNITS[unit], unit


def _length(value: float, unit: str) -> str:
    """'75 cm', '750 mm', '2.5 ft', '29.5 in' or '0.75 m'."""
    digits = {'cm': 0, 'mm': 0, 'ft': 1, 'in': 1}.get(unit, 2)
    return f'{value:.{digits}f} {unit}'


_COUNT_COMPARISONS = {'more': np.greater, 'fewer': np.less, 'as many': np.equal}


def _counts(q: ObjectQuestion, by_category, vocabulary, frame) -> Answer:
    """"How many chairs and tables are there?": each category's credible instances; value: the
    total. Two counts compared (`q.measure` 'more', 'fewer' or 'as many'): "are there more chairs
    than tables?" value 1 (yes) or 0 (no); "how many more chairs than tables?" the difference."""
    parts, found, counts = [], [], []
    for category in q.categories:
        group = _credible(by_category[category]) if by_category.get(category) else []
        parts.append(f'{len(group)} {category if len(group) == 1 else _plural(category, vocabulary)}')
        found += group
        counts.append(len(group))
    total = len(found)
    text = f'{"yes, " if q.exists and total else "no, " if q.exists else ""}I have seen ' + ' and '.join(parts)
    value, unit = float(total), 'count'
    if q.measure in _COUNT_COMPARISONS:
        first, second = counts[:2]
        if q.yes_no:
            value, unit = float(_COUNT_COMPARISONS[q.measure](first, second)), 'yes (1) / no (0)'
            text = f'{"yes" if value else "no"}: I have seen ' + ' and '.join(parts)
        else:   # signed: "how many more chairs than tables?" with fewer chairs is negative
            more = first - second
            value = float(-more if q.measure == 'fewer' else more)
            said = 'as many' if more == 0 else f'{abs(more)} {"more" if more > 0 else "fewer"}'
            text = f'{said}: I have seen ' + ' and '.join(parts)
    if found:
        text += f' ({total} in all; centres in {frame}: ' + '; '.join(f'the {i.category} at {xyz_text(i.centroid)}'
                                                                     for i in found) + ')'
    return Answer(True, 'ok', text, q.task, value, unit,
                  points=np.stack([i.centroid for i in found]) if found else np.zeros((0, 3)),
                  confidence=float(np.mean([i.confidence for i in found])) if found else 1.0, frame=frame)


def _size(q: ObjectQuestion, category: str, found, up, frame) -> Answer:
    """The most confident instance's longest side, or its height along `up` ("how tall") or
    its width across it ("how wide"); without `up` (no camera pose yet) the longest side."""
    inst = max(found, key=lambda i: i.confidence)
    measure = q.measure if up is not None else 'length'
    metres = size_of(inst, measure, up)
    value, unit = _in_unit(metres, q.unit)
    more = f' (the most confident of {len(found)})' if len(found) > 1 else ''
    e = inst.oriented_box.size
    axes = 'its own axes, turned to its footprint' if inst.footprint_box is not None else f'{frame} x, y, z'
    size = _length(value, unit)
    said = {'length': f'{size} along its longest side', 'height': f'{size} tall (its extent along up)',
            'width': f'{size} wide (its longest side across up)'}[measure]
    return Answer(True, 'ok', f'the {category}{_looks(inst)}{more} is {said} (box {e[0]:.2f} x {e[1]:.2f} x '
                  f'{e[2]:.2f} m along {axes}; centre {xyz_text(inst.centroid)} in {frame})',
                  q.task, value, unit, points=inst.centroid[None].copy(), confidence=inst.confidence, frame=frame)


def _camera_height(camera_pose, floor: FloorOutline | None, up, frame: str) -> Answer:
    """How high the camera is above the floor (the lowest depth point the room's outline saw)."""
    if camera_pose is None or floor is None or up is None:
        return Answer(False, 'I have not seen enough of the floor to measure heights from it', frame=frame)
    centre = np.asarray(camera_pose, np.float64)[:3, 3]
    height = floor.height_above(centre, up)
    return Answer(True, 'ok', f'the camera is {height:.2f} m above the floor (the lowest point my depth saw; the '
                  f'camera at {xyz_text(centre)} in {frame})', 'above_floor', height, 'm', points=centre[None].copy(),
                  confidence=1.0, frame=frame)


def _above_floor(category: str, found, floor: FloorOutline | None, up, frame: str) -> Answer:
    """How high the most confident instance's box bottom lies above the floor (the lowest
    depth point the room's outline saw, along `up`)."""
    if floor is None or up is None:
        return Answer(False, 'I have not seen enough of the floor to measure heights from it', frame=frame)
    inst = max(found, key=lambda i: i.confidence)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    half = 0.5 * float(np.abs(up) @ inst.extent)
    centre = floor.height_above(inst.box_centre, up)
    bottom, top = centre - half, centre + half
    return Answer(True, 'ok', f'the {category}{_looks(inst)} is {bottom:.2f} m above the floor at its bottom '
                  f'({centre:.2f} m at its centre, {top:.2f} m at its top; the floor is the lowest point my depth saw; '
                  f'centre {xyz_text(inst.centroid)} in {frame})', 'above_floor', bottom, 'm',
                  points=inst.centroid[None].copy(), confidence=inst.confidence, frame=frame)


def _when(category: str, found: Sequence[ObjectInstance], latest: bool, frame: str) -> Answer:
    """When the category's credible instances were first and last seen (stamps, s); value: the
    last time when the question says last, else the first."""
    first = min(found, key=lambda i: i.first_seen)
    last = max(found, key=lambda i: i.last_seen)
    inst = last if latest else first
    views = sum(i.n_views for i in found)
    return Answer(True, 'ok', f'I first saw the {category} at t={first.first_seen:.2f} s and last at '
                  f't={last.last_seen:.2f} s ({views} views; the one {"last" if latest else "first"} seen is at '
                  f'{xyz_text(inst.centroid)} in {frame})', 'when_seen',
                  float(last.last_seen if latest else first.first_seen), 's', points=inst.centroid[None].copy(),
                  confidence=inst.confidence, frame=frame)


def _where(category, found, camera_pose, frame, nearest: bool = False) -> Answer:
    """The most confident instance (`nearest`: the credible one nearest the camera) and where
    it lies from the camera."""
    if nearest and camera_pose is not None:
        cam = np.asarray(camera_pose, np.float64)[:3, 3]
        inst = min(_credible(found), key=lambda i: float(np.linalg.norm(i.centroid - cam)))
        which = f' (the nearest of {len(found)})' if len(found) > 1 else ''
    else:
        inst = max(found, key=lambda i: i.confidence)
        which = f' (the most confident of {len(found)})' if len(found) > 1 else ''
    rel = ''
    if camera_pose is not None:
        offset = transform_points(invert_pose(np.asarray(camera_pose, np.float64)), inst.centroid)
        rel = f', {np.linalg.norm(offset):.2f} m from the camera: {_words(offset)}'
    return Answer(True, 'ok', f'the {category}{_looks(inst)}{which} is at {xyz_text(inst.centroid)} in {frame}{rel}',
                  'where_is',
                  float(np.linalg.norm(inst.centroid)), 'm', points=inst.centroid[None].copy(),
                  confidence=inst.confidence, frame=frame)


def _colour(category, found, frame) -> Answer:
    """The colour the most confident instance looks (`objects/colours.py`), or why it has none."""
    inst = _pick(found)
    name = colour_name(inst.colour)
    where = f'at {xyz_text(inst.centroid)} in {frame}'
    if not name:
        return Answer(False, f'I have seen the {category} ({where}) but cannot tell its colour: its views disagree '
                      '(or were seen without images)', frame=frame)
    r, g, b = (int(round(255 * v)) for v in inst.colour)
    return Answer(True, 'ok', f'the {category} looks {name} (median colour of its views: RGB {r}, {g}, {b}; {where})',
                  'object_colour', float('nan'), '', points=inst.centroid[None].copy(), confidence=inst.confidence,
                  frame=frame)


def _distance(q, seen, by_category, vocabulary, camera_pose, frame) -> Answer:
    if len(q.categories) == 1 and q.to_camera:
        if camera_pose is None:
            return Answer(False, 'no camera pose yet: no frame has been processed', frame=frame)
        cam = np.asarray(camera_pose, np.float64)[:3, 3]
        inst = min(by_category[seen[0]], key=lambda i: np.linalg.norm(i.centroid - cam))
        d = float(np.linalg.norm(inst.centroid - cam))
        value, unit = _in_unit(d, q.unit)
        return Answer(True, 'ok', f'the {seen[0]} is {_length(value, unit)} from the camera (centre to camera; centre '
                      f'{xyz_text(inst.centroid)} in {frame})', q.task, value, unit, points=inst.centroid[None].copy(),
                      confidence=inst.confidence, frame=frame)
    if len(seen) >= 2:
        pairs = [(a, b) for a in by_category[seen[0]] for b in by_category[seen[1]]]
        names = (seen[0], seen[1])
    else:
        group = by_category[seen[0]]
        pairs = [(group[i], group[j]) for i in range(len(group)) for j in range(i + 1, len(group))]
        names = (seen[0], seen[0])
        if not pairs:
            return Answer(False, f'I have seen only one {seen[0]}: name a second object', frame=frame)

    def measure(pair):
        return box_distance(*pair)[0] if q.closest else float(np.linalg.norm(pair[0].centroid - pair[1].centroid))
    a, b = max(pairs, key=lambda pair: (min(pair[0].confidence, pair[1].confidence),
                                        max(pair[0].confidence, pair[1].confidence), -measure(pair)))
    centre = float(np.linalg.norm(a.centroid - b.centroid))
    closest = box_distance(a, b)[0]
    value = closest if q.closest else centre
    which = f' (the most confident pair of {len(pairs)})' if len(pairs) > 1 else ''
    subject = (f'the two {_plural(names[0], vocabulary)}' if names[0] == names[1]
               else f'the {names[0]} and the {names[1]}')
    shown, unit = _in_unit(value, q.unit)
    text = (f'{subject}{which} are {_length(shown, unit)} apart '
            + (f'between the closest points of their boxes ({centre:.2f} m centre to centre)' if q.closest else
               f'centre to centre ({closest:.2f} m between the closest points of their boxes)')
            + f'; centres {xyz_text(a.centroid)} and {xyz_text(b.centroid)} in {frame}')
    return Answer(True, 'ok', text, q.task, shown, unit, points=np.stack([a.centroid, b.centroid]),
                  confidence=float(min(a.confidence, b.confidence)), frame=frame)


class ObjectAnswerer:
    """A `QuestionAnswerer` over an `ObjectMap` (in `frame`, normally `map`).

    T_frame_odom: returns the transform from the memory's `odom` to `frame` (None while
    unknown), used to place the memory's latest camera pose in `frame` for camera-relative
    answers; None: the memory's poses are taken to be in `frame` already. up: (3,) the up
    direction in `frame` (directions, turns and the room's floor); None: the latest camera's
    own up (minus its optical y axis: right for a level camera).
    """

    name = 'objects'

    def __init__(self, object_map: ObjectMap, vocabulary: Vocabulary, frame: str = 'map',
                 T_frame_odom: Callable[[], np.ndarray | None] | None = None, up: np.ndarray | None = None):
        self.object_map = object_map
        self.vocabulary = vocabulary
        self.frame = frame
        self.T_frame_odom = T_frame_odom
        self.up = None if up is None else np.asarray(up, np.float64)

    def camera_pose(self, memory: MemorySnapshot) -> np.ndarray | None:
        if memory.trajectory_poses.shape[0] == 0:
            return None
        pose = memory.trajectory_poses[-1]
        if self.T_frame_odom is None:
            return pose
        T = self.T_frame_odom()
        return None if T is None else np.asarray(T, np.float64) @ pose

    def answer(self, question: str, memory: MemorySnapshot, now: float) -> Answer:
        pose = self.camera_pose(memory)
        up = self.up if self.up is not None or pose is None else -pose[:3, 1]
        return answer_from_objects(question, self.object_map.instances(), self.vocabulary, pose, self.frame, up,
                                   None if up is None else lambda: self.object_map.room.outline(up))
