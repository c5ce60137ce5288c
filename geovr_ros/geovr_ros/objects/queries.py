"""Answers computed from the object map: count (and "is there a ...?"), distance, size,
where-is, first-seen order, the list of what was seen, and (`objects/relations.py`) which
object is nearest another (or whether one is closer than another: "is the lamp closer to the
bed than the chair?", the camera may be one of them), where one lies seen from a stated
viewpoint, the turns of a route and the room's floor area: VSI-Bench's eight tasks and
where-is; and which of two objects is bigger, taller, longer or wider, what rests on (lies
under) what and whether one lies between two others. Any of them may name an object by where
it is ("how far is the lamp on the table from the sofa?": `objects/referring.py`).

The question is parsed simply: the task from keywords, the objects from the vocabulary's
words (names, plurals, synonyms). An object the map does not hold gets "I have not seen a
piano" (and says when the word is not in the vocabulary at all). A question that is not
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
  several instances, the pair whose less confident member is the most confident (then the
  closest in that measure). "from me" / "from the camera": from the camera's position to
  the category's nearest instance;
- size: the longest side of the instance's axis-aligned box (in map axes), in cm when the
  question says cm / centimetres, else metres; the most confident instance;
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
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from geovr_ros.geometry import invert_pose, transform_points
from geovr_ros.language.text import parse_options
from geovr_ros.memory.answerer import NO_MODEL_MESSAGE, Answer
from geovr_ros.memory.spatial_memory import MemorySnapshot
from geovr_ros.objects.colours import COLOUR_PROTOTYPES, colour_distance, colour_name, colour_word_before
from geovr_ros.objects.object_map import ObjectInstance, ObjectMap, box_distance
from geovr_ros.objects.referring import Qualifier, cut_spans, find_qualifiers, narrow
from geovr_ros.objects.relations import (SIZE_WORDS, SUPERLATIVES, around_answer, bearing_answer, between_answer,
                                         between_list_answer, comparison_answer, direction_answer, direction_of,
                                         nearest_option, resting_place_answer, room_answer, route_answer, route_roles,
                                         seen_now_answer, size_comparison_answer, size_extreme_answer, size_of,
                                         support_answer, turns_of, xyz_text)
from geovr_ros.objects.room import FloorOutline
from geovr_ros.objects.vocabulary import IRREGULAR_PLURALS, Vocabulary, plural_of

__all__ = ['NOT_SEEN', 'ObjectAnswerer', 'ObjectQuestion', 'answer_from_objects', 'box_distance', 'credible_mask',
           'parse_object_question']

_SIZE_WORD = re.compile(r'\b(' + '|'.join(SIZE_WORDS) + r')\b')   # "bigger", "taller", ...
# "what is on the table?", "is the lamp on the table?", "is there a box on top of the shelf?", "what is under
# the desk?"
_ON = (r"\b(?:what|which)(?:'s| is| are)?(?: there| lying| standing| sitting| placed| kept| hanging"
       r"| the (?:objects?|things?|items?)| (?:objects?|things?|items?) (?:is|are)(?: there)?)? "
       r"(?:on|under|underneath|beneath|below|above) (?:top of )?(?:the|a|an|that|this)\b"
       r"|^(?:is|are) (?:there )?(?:anything|something) (?:on top of|on|under|underneath|beneath|below|above|next to"
       r"|near|beside|close to|by) (?:the|a|an)\b"
       r"|^(?:is|are) (?:the|a|an|there an?|there any) .+? "
       r"(?:on top of|on|under|underneath|beneath|below|above|next to|near|beside|close to|by) (?:the|a|an)\b")
_UNDER = re.compile(r'\b(under|underneath|beneath|below)\b')
_ABOVE = re.compile(r'\babove\b')
_ON_FLOOR = re.compile(r'\bon the (floor|ground)\b')
_RESTS_ON = re.compile(r"^what(?:'s| is| are) (?:the|that|this|a|an) .+? "
                       r"(?:standing |lying |sitting |placed |kept |resting )?on(?: top of)?\s*[?.!]*$")
_NEAR = re.compile(r'\b(next to|near|beside|close to|by)\b')
# "what is in front of me?", "what's behind me?", "what is to my left?", "what do you see right now?"
_AROUND = re.compile(r"\bwhat(?:'s| is| are| (?:do|can) (?:you|i) see| (?:is|are) there)? "
                     r"(?:(?:in front of|ahead of|behind|to the (?:left|right) of|on the (?:left|right) of"
                     r"|(?:left|right) of) (?:me|us|you|the camera|the robot)|(?:on|to) my (?:left|right)"
                     r"|(?:straight )?ahead|(?:right )?now)\b"
                     r"|^(?:is|are) (?:the|a|an|my) .+? (?:(?:to|on) my (?:left|right)|(?:in front of|ahead of|behind) "
                     r"(?:me|us|you|the camera|the robot))\b")
# "which is the tallest object?", "what is the biggest thing you saw?", "which chair is the smallest?"
_SUPERLATIVE = re.compile(r'\b(?:which|what)\b.*\b(' + '|'.join(SUPERLATIVES) + r')\b'
                          r'(?!\s+(?:side|sides|dimension|dimensions|edge|edges|extent|distance|path|route|way|gap'
                          r'|time)\b)')
# "when did you see the plant?", "when did you last see the plant?"
_WHEN = re.compile(r'^when\b.*\b(see|seen|saw|notic\w*|spot\w*|find|found)\b|\bwhat time\b.*\b(see|seen|saw)\b'
                   r'|\bhow long ago\b.*\b(see|seen|saw)\b')
_LATEST = re.compile(r'\b(last|latest|most recently)\b')
# "how many things are on the table?": a count of what lies there
_COUNT_PLACED = re.compile(r'\b(objects|things|items)\b.*\b(on top of|on|under|underneath|beneath|below|above|next to'
                           r'|near|beside|around|close to|by)\s+(?:the|a|an)\b')
# "where is the nearest chair?", "how far is the closest lamp?": the instance nearest the camera
_NEAREST_ONE = re.compile(r'\bthe (nearest|closest)\b')
# "how far is the plant?": one object, nothing to measure from but the camera
_OTHER_PLACE = re.compile(r'\b(from|and|between|apart|separat\w*)\b')
_HEIGHT = re.compile(r'\bhow (tall|high)\b|\bheight\b')
_WIDTH = re.compile(r'\bhow wide\b|\bwidth\b')
_LONGEST = re.compile(r'\b(longest|largest|dimensions?)\b')
# "what is next to the table?", "which things are near the sofa?": what lies next to it (a support
# question, place 'near'); "which object is next to the sofa?" (one): the nearest object
_WHAT_NEXT_TO = re.compile(r"^(?:what|which (?:objects|things|items))(?:'s| is| are)?(?: there| lying| standing"
                           r"| sitting| placed| kept| (?:did|do|can) (?:you|i|we) see)? "
                           r"(?:next to|near|beside|close to|by) (?:the|a|an|that|this)\b")
_NEXT_TO = (r"\b(?:what|which)(?:'s| is| are| objects? (?:is|are)| things? (?:is|are)| (?:did|do|can) (?:you|i|we) see"
            r"|(?:'s| is) the (?:object|thing|item))? "
            r"(?:next to|near|beside|close to|by)\b")
# "what is the chair next to?": what lies nearest the object named
_NEXT_TO_WHAT = (r"^what(?:'s| is| are) (?:the|a|an|that|this) .+? (?:standing |lying |sitting |placed )?"
                 r"(?:next to|near|beside|by)\s*[?.!]*$")
_TASKS = (
    ('around', _AROUND),
    ('when_seen', _WHEN),
    # "how high above the floor is the lamp?", "how far is the lamp from the floor?"
    ('above_floor', re.compile(r'\b(above|off|from|over) the (floor|ground)\b|\bat what height\b|\bhow high up\b')),
    ('room_size', re.compile(r'\bfloor (area|space)\b|\bsquare (met(er|re)s?|feet|foot)\b|\bsq\.? ?m\b|\bm\^?2\b|m²'
                             r'|\bhow (big|large|spacious) is (the|this|that) (room|space|place)\b'
                             r'|\b(size|area) of (the|this|that) (room|space)\b')),
    ('route_plan', re.compile(r'\broute\b|\bnavigate\b|\bfill in\b|\bblanks?\b|\bmissing turns?\b')),
    ('rel_direction', re.compile(r'\b(facing|face|faces|looking (at|to|towards?)|straight ahead|ahead of me'
                                 r'|in front of me)\b.*\b(left|right|behind|back|front|where|which way|direction)\b')),
    ('appearance_order', re.compile(r'\b(first|earliest|earlier|order|last|latest|most recently)\b.*'
                                    r'\b(see|seen|saw|appear\w*|notic\w*|spot\w*)\b'
                                    r'|\b(see|seen|saw|appear\w*|notic\w*|spot\w*)\b.*'
                                    r'\b(first|earliest|earlier|order|last|latest|most recently)\b')),
    ('rel_distance', re.compile(r'\b(closest|nearest|closer|nearer|farthest|furthest|farther|further)\b'
                                r'(?!\s+(points?|parts?|edges?|surfaces?)\b)|' + _NEXT_TO + '|' + _NEXT_TO_WHAT)),
    ('size_compare', _SIZE_WORD),
    # "is the chair between the sofa and the table?", "what is between the sofa and the table?"
    ('between', re.compile(r"^(is|are)\b.*\bbetween\b|^what(?:'s| is| are| lies| stands)?(?: there)? between\b")),
    ('size_extreme', _SUPERLATIVE),
    ('support', re.compile(_ON + '|' + _RESTS_ON.pattern)),
    # 'how many centimetres does it measure' asks a size, 'how many metres apart' a distance
    ('object_count', re.compile(r'\bhow many\b(?! (cm|mm|m|centimet\w*|millimet\w*|met(er|re)s?|inch\w*|f(ee|oo)t)\b)'
                                r'|\bcount\b|\bnumber of\b')),
    ('abs_distance', re.compile(r'\bhow far\b|\bfar from\b|\bdistance\b|\bapart\b|\bhow close\b|\bgap\b|\bseparat\w*\b'
                                r'|\bhow many (cm|m|centimet\w*|met(er|re)s?|f(ee|oo)t)\b.*\b(between|from|apart)\b')),
    ('object_size', re.compile(r'\bhow (big|large|long|tall|wide|high)\b|\bsize\b|\blength\b|\bheight\b|\bwidth\b'
                               r'|\bdimensions?\b|\blongest\b|\bmeasures?\b')),
    ('where_is', re.compile(r'\bwhere\b|\b(which|what) direction\b|\blocat\w*\b|\bposition of\b|\bfind\b'
                            r'|\bbe found\b|\bshow me\b'
                            r'|\bwhich (point|place|spot)\b')),
    ('object_list', re.compile(r'\bwhat (objects|things|items)\b|\bwhat (do|did|can|have) (you|i|we) (see|seen|saw)\b'
                               r'|\blist\b|\bwhat is (in|around)\b')),
    ('object_colour', re.compile(r'\b(what|which) colou?rs?\b|\bcolou?r of\b')),
    # "is there a piano?", "did you see any chairs?": a count, answered yes or no
    ('object_exists', re.compile(r'^(is|are) there\b|^any\b|\b(did|do|have|has|can|could) '
                                 r'(you|i|we|it|the robot|the camera) '
                                 r'(ever )?(see|seen|saw|notice\w*|spot\w*|find|found|come across)\b')),
)
# answered in `objects/relations.py`
RELATION_TASKS = ('rel_distance', 'rel_direction', 'route_plan', 'size_compare', 'size_extreme', 'between', 'support',
                  'around')
# Questions of the trajectory / situated-localization answerers, never of this one.
_NOT_OURS = re.compile(r'\bwhere (am|was|were) (i|we)\b|\bwhere are we\b|\bhow (far|long) (have|did|had) (i|we|you)\b'
                       r'|\bkey ?frames?\b|\blocate (me|us)\b'  # 'locate me': situated localization
                       r"|\bwhat(?:'s| is) my (position|heading|pose|location)\b|\bmy position and heading\b")
_TO_CAMERA = re.compile(r'\b(from|to) (me|us|you|here|the camera|the robot|my position)\b'
                        r'|\bhow (far|close) (am i|are we|is the camera|is the robot)\b')
# The camera as one of a comparison's places: after 'to' / 'from' ("closer to me"), as the one
# asked about ("am I closer to ..."), after 'than' ("than I am"); group 1 is where it is named.
CAMERA_ROLE = '<camera>'
_CAMERA_NAMED = (re.compile(r'\b(?:to|from)\s+(me|us|you|the camera|the robot)\b'),
             re.compile(r'\b(?:am|are|is)\s+(i|we|you|the camera|the robot)\s+(?:\w+\s+)?'
                        r'(?:closer|nearer|farther|further)\b'),
             re.compile(r'\bthan\s+(i|we|you|the camera|the robot)\b(?!\s+(?:see|saw|think)\b)'))
_CLOSEST = re.compile(r'\b(closest|nearest) (point|points|part|parts|edge|edges)\b|\bedge\b|\bgap\b|\bsurfaces?\b'
                      r'|\bshortest distance\b'
                      r'|\bclosest point\b')
_FARTHEST = re.compile(r'\b(farthest|furthest|farther|further)\b')
_ANY_OBJECT = re.compile(r'\b(which|what) (object|thing|item|one)s?\b'
                         r"|\b(which|what)(?:'s| is| are)? the (closest|nearest|farthest|furthest) "
                         r"(object|thing|item)s?\b|\b(which|what)(?:'s| is| are)? the (object|thing|item)s? "
                         r'(closest|nearest|farthest|furthest)\b|' + _NEXT_TO + '|' + _NEXT_TO_WHAT)
# "which chair", "which red chair", "which of the chairs"
_WHICH_OF = re.compile(r"\bwhich (?:of the )?(?:[a-z-]+ )?$")
_WHAT_FIRST = re.compile(r'\b(what|which)\b')   # with appearance_order's words and no object named: every category
_ALL_OBJECTS = re.compile(r'\b(objects|things|items)\b')
_HOW_FAR_AWAY = re.compile(r'\bhow far (away|off)\b')
_CM = re.compile(r'\bcm\b|\bcentimet(er|re)s?\b')
_UNKNOWN = (re.compile(r'\bhow many ([a-z][a-z-]+)'),
            re.compile(r'\b(?:the|a|an|any|my|some)\s+([a-z][a-z-]+)'))
_NOT_OBJECTS = {'camera', 'robot', 'room', 'video', 'scene', 'distance', 'size', 'length', 'height', 'width',
                'number', 'first', 'order', 'longest', 'largest', 'biggest', 'closest', 'nearest', 'same', 'map',
                'way', 'time', 'moment', 'one', 'ones', 'other', 'objects', 'object', 'things', 'thing', 'items',
                'frame', 'frames', 'trajectory', 'start', 'end', 'floor', 'total', 'times', 'metres', 'meters',
                'two', 'three', 'four', 'both', 'centre', 'center', 'centres', 'centers', 'edge', 'edges', 'point',
                'points'}


@dataclass(frozen=True)
class ObjectQuestion:
    """What a question asks.

    task: one of the `_TASKS` names ('object_exists' is asked as an 'object_count' with
      `exists`); categories: vocabulary names in text order (unique); unknown: an object word
      the vocabulary does not know ('' if none); unit: 'cm' or 'm'; closest: distances between
      the closest box points; to_camera: the distance (where-is: the instance) from the camera.
    options: the options the question lists, each as what it names: categories in order
      (appearance order), (category, colour) (rel_distance, size_extreme), one direction word
      or '' (rel_direction, around), turns in order (route plan).
    roles: the categories in the task's roles (rel_distance: the target; rel_direction: where
      I stand, what I face, what is asked about; route plan: the start and each waypoint; a
      comparative: its three objects in order; size_compare: the two compared; support: the
      item and the support, or the support; between: the object and the two ends, or the
      ends); role_colours: the colour word before each role ('' for none).
    farthest: rel_distance asks for the farthest. compare: a comparative of distances without
      options, the two pairs of `roles` it compares ("is the lamp closer to the bed than the
      chair is?": ((0, 1), (2, 1)); "... than to the chair?": ((0, 1), (0, 2))).
    among: rel_distance's one option is a category whose nearest instance is asked for ("which
      chair is nearest the sofa?"); exists: a yes-or-no question about whether something was
      seen; yes_no: size_compare asks "is A bigger than B?" (else "which is bigger?").
    colours: the colour word before each category's first mention ('' for none: "the red chair").
    qualifiers: the categories named by where they are ("the lamp on the table",
      `objects/referring.py`), the question parsed without those phrases.
    place: what a support question asks for, 'on' ("what is on the table?"), 'under' ("what is
      under the desk?"), 'near' ("is the plant near the sofa?", "what is next to the table?"), 'above'
      ("is the lamp above the table?") or 'support_of' ("what is the lamp on?"); an 'around' question's direction from the camera ('ahead', 'left', 'right',
      'behind') or 'now' ("what do you see now?").
    measure: what a size question measures: object_size 'length' (the longest side), 'height'
      or 'width'; size_compare its comparative (a key of SIZE_WORDS), size_extreme its
      superlative (a key of SUPERLATIVES).
    latest: appearance_order and when_seen ask for the last time seen.
    """

    task: str
    categories: tuple[str, ...]
    unknown: str = ''
    unit: str = 'm'
    closest: bool = False
    to_camera: bool = False
    options: tuple[tuple[str, ...], ...] = ()
    roles: tuple[str, ...] = ()
    farthest: bool = False
    exists: bool = False
    yes_no: bool = False
    compare: tuple[tuple[int, int], ...] = ()
    among: bool = False
    colours: tuple[str, ...] = ()
    role_colours: tuple[str, ...] = ()
    qualifiers: tuple[Qualifier, ...] = ()
    place: str = 'on'
    measure: str = 'length'
    latest: bool = False


_SINGULARS = {plural: singular for singular, plural in IRREGULAR_PLURALS.items()}
# phones and word processors type "what’s": read typographic quotes as the plain ones
_TYPOGRAPHIC = str.maketrans({'\u2019': "'", '\u2018': "'", '\u201c': '"', '\u201d': '"'})


def _singular(word: str) -> str:
    if word in _SINGULARS:
        return _SINGULARS[word]
    if word.endswith('ies') and len(word) > 4:
        return word[:-3] + 'y'
    if re.search(r'(ches|shes|xes|sses)$', word):
        return word[:-2]
    if word.endswith('s') and not word.endswith('ss') and len(word) > 3:
        return word[:-1]
    return word


def parse_object_question(question: str, vocabulary: Vocabulary) -> ObjectQuestion | None:
    """The object question in `question`, or None when it is not one this module answers. The
    first task whose keywords match and whose roles the question fills is taken ("which is
    closest to the sofa" without options or a "which object" is not a rel_distance question).
    Objects named by where they are ("the lamp on the table") are read as such when the
    question, without those phrases, is still a question ("is the lamp on the table?" is not:
    it asks what rests on what)."""
    spaced = ' '.join(question.translate(_TYPOGRAPHIC).split())
    text = spaced.lower()
    if _NOT_OURS.search(text):
        return None
    spans = vocabulary.find_spans(text)
    colours = [colour_word_before(text[:start]) for start, _, _ in spans]
    qualifiers = find_qualifiers(text, spans, colours) if len(text) == len(spaced) else []
    for first in range(len(qualifiers)):   # every phrase read as one, then all but the first, ...
        parsed = _parse(cut_spans(spaced, [span for _, span in qualifiers[first:]]), vocabulary)
        if parsed is not None:
            return dataclasses.replace(parsed, qualifiers=tuple(q for q, _ in qualifiers[first:]
                                                                if q.category in parsed.categories))
    return _parse(spaced, vocabulary)


def _parse(question: str, vocabulary: Vocabulary) -> ObjectQuestion | None:
    """`parse_object_question` without referring phrases; question: spaces normalised."""
    text = question.lower()
    mentions = vocabulary.find(text)
    colours = [colour_word_before(text[:offset]) for offset, _ in mentions]
    first = {}
    for (_, name), colour in zip(mentions, colours):
        first.setdefault(name, colour)
    categories = tuple(first)
    for task, pattern in _TASKS:
        if pattern.search(text):
            parsed = _relation_question(task, question, text, mentions, colours, categories, vocabulary) \
                if task in RELATION_TASKS else _object_question(task, question, text, categories, vocabulary)
            if parsed is not None:
                return dataclasses.replace(parsed, colours=tuple(first[c] for c in categories))
    return None


def _object_question(task: str, question: str, text: str, categories: tuple[str, ...],
                     vocabulary: Vocabulary) -> ObjectQuestion | None:
    if task == 'room_size':
        return ObjectQuestion(task, categories)
    latest = bool(_LATEST.search(text)) and task in ('appearance_order', 'when_seen')
    if task == 'object_count' and len(categories) == 1 and _COUNT_PLACED.search(text):   # "how many things are on ..."
        place = _COUNT_PLACED.search(text).group(2)
        return ObjectQuestion('support', categories, roles=categories, role_colours=('',),
                              place='near' if place == 'around' else _place_of(place))
    if task == 'object_count' and not categories and _ALL_OBJECTS.search(text):   # "how many objects ...?"
        return ObjectQuestion('object_list', categories)
    if task == 'above_floor' and not categories and re.search(r'\b(camera|robot|i|me|you|we)\b', text):
        return ObjectQuestion(task, categories, to_camera=True)   # "how high above the floor is the camera?"
    if task == 'appearance_order' and text.startswith('where'):   # "where did you first see the plant?"
        return None
    if task == 'appearance_order' and not categories and _WHAT_FIRST.search(text):   # "what did you see first?"
        return ObjectQuestion(task, categories, latest=latest)
    unknown = ''
    to_camera = bool(_TO_CAMERA.search(text)) or (len(categories) == 1 and bool(
        _HOW_FAR_AWAY.search(text) or _NEAREST_ONE.search(text)
        or (task == 'abs_distance' and not _OTHER_PLACE.search(text))))
    if not categories and task != 'object_list':
        unknown = _unknown_word(text, vocabulary)
        if not unknown:
            return None
    elif task == 'abs_distance' and len(categories) == 1 and not to_camera:   # "how far is the lamp from the wall?"
        unknown = _unknown_word(text, vocabulary)
    options = ()
    if task == 'appearance_order':
        options = tuple(tuple(dict.fromkeys(name for _, name in vocabulary.find(o))) for o in parse_options(question))
        if len(options) < 2 or not all(options):
            options = ()
    exists = task == 'object_exists'
    measure = 'length'
    if task == 'object_size' and not _LONGEST.search(text):   # "how tall is the table?": its height
        measure = 'height' if _HEIGHT.search(text) else 'width' if _WIDTH.search(text) else 'length'
    return ObjectQuestion('object_count' if exists else task, categories, unknown, 'cm' if _CM.search(text) else 'm',
                          bool(_CLOSEST.search(text)) and task != 'where_is', to_camera, options, exists=exists,
                          measure=measure, latest=latest)


def _unknown_word(text: str, vocabulary: Vocabulary) -> str:
    """The first word of `text` that names an object outside the vocabulary ('' if none)."""
    named = [(start, end) for start, end, _ in vocabulary.find_spans(text)]
    for pattern in _UNKNOWN:
        for match in pattern.finditer(text):
            word = match.group(1)
            if any(start <= match.start(1) < end for start, end in named):
                continue
            if word not in _NOT_OBJECTS and _singular(word) not in _NOT_OBJECTS:
                return _singular(word)
    return ''


def _relation_question(task: str, question: str, text: str, mentions: list[tuple[int, str]], colours: list[str],
                       categories: tuple[str, ...], vocabulary: Vocabulary) -> ObjectQuestion | None:
    """A question of one of RELATION_TASKS with its roles filled, or None. colours: the colour
    word before each of `mentions` ('' for none)."""
    if task == 'between':   # the object asked about, then the two it may lie between
        if text.startswith('what') and len(mentions) >= 2:   # "what is between the sofa and the table?"
            return ObjectQuestion(task, categories, roles=tuple(name for _, name in mentions[:2]),
                                  role_colours=tuple(colours[:2]))
        if len(mentions) < 3:
            return None
        return ObjectQuestion(task, categories, roles=tuple(name for _, name in mentions[:3]),
                              role_colours=tuple(colours[:3]))
    if task == 'support':   # "what is on the table?" (the support) or "is the lamp on the table?" (item, support)
        if len(mentions) not in (1, 2) or (len(mentions) == 2 and not re.match(r'(is|are)\b', text)):
            return None
        on_floor = _ON_FLOOR.search(text) and re.match(r'(is|are)\b', text)
        if len(mentions) == 1 and (_RESTS_ON.match(text) or on_floor):
            # "what is the lamp on?", "is the ball on the floor?": what the one object named rests on
            return ObjectQuestion(task, categories, roles=(mentions[0][1],), role_colours=tuple(colours[:1]),
                                  place='support_of')
        return ObjectQuestion(task, categories, roles=tuple(name for _, name in mentions), role_colours=tuple(colours),
                              place=_place_of(text))
    if task == 'around':   # "what is in front of me?", "what is to my left?", "what do you see now?"
        said = text.replace('right now', 'now')
        if mentions:   # "is the sofa to my left or right?", "is the sofa in front of me?"
            words = re.findall(r'\b(left|right|behind|in front of|ahead of)\b', said[mentions[0][0]:])
            sides = tuple(dict.fromkeys('ahead' if w in ('in front of', 'ahead of') else w for w in words))
            if len(mentions) > 1 or not sides:
                return None
            return ObjectQuestion(task, categories, roles=(mentions[0][1],), role_colours=tuple(colours[:1]),
                                  options=tuple((side,) for side in sides) if len(sides) > 1 else (),
                                  place=sides[0])
        return ObjectQuestion(task, categories, place='behind' if re.search(r'\bbehind\b', said) else
                              'left' if re.search(r'\bleft\b', said) else 'right' if re.search(r'\bright\b', said)
                              else 'now' if re.search(r'\bnow\b', said) else 'ahead')
    if task == 'size_extreme':   # "which is the tallest object?", "which chair is the smallest?"
        named = [_option_named(option, vocabulary) for option in parse_options(question)]
        if len(named) >= 2 and all(name for name, _ in named):   # "which is the biggest: the sofa, the bed or ...?"
            return ObjectQuestion(task, categories, options=tuple(named), measure=_SUPERLATIVE.search(text).group(1))
        if len(categories) > 1:
            return None
        return ObjectQuestion(task, categories, roles=categories, role_colours=tuple(colours[:1]),
                              measure=_SUPERLATIVE.search(text).group(1))
    if task == 'size_compare':   # "is the sofa bigger than the table?", "which is taller, the chair or the lamp?"
        if len(mentions) != 2:
            return None
        word = _SIZE_WORD.search(text).group(1)
        than = _THAN.search(text)
        if than is not None and not mentions[0][0] < than.start() <= mentions[1][0]:
            return None
        return ObjectQuestion(task, categories, roles=tuple(name for _, name in mentions), role_colours=tuple(colours),
                              measure=word, yes_no=than is not None)
    if task == 'rel_distance' and len(mentions) == 1 and _WHAT_NEXT_TO.match(text):   # "what is next to the table?"
        return ObjectQuestion('support', categories, roles=(mentions[0][1],), role_colours=tuple(colours[:1]),
                              place='near')
    listed = parse_options(question)
    if task == 'route_plan':
        at = route_roles(text, mentions)
        options = tuple(tuple(turns_of(o)) for o in listed)
        return ObjectQuestion(task, categories, roles=tuple(mentions[k][1] for k in at), options=options,
                              role_colours=tuple(colours[k] for k in at)) if len(at) >= 3 else None
    if task == 'rel_direction':
        if len(mentions) < 3:
            return None
        options = tuple((direction_of(o) or '',) for o in listed)
        return ObjectQuestion(task, categories, roles=tuple(name for _, name in mentions[:3]),
                              options=options if any(o[0] for o in options) else (), role_colours=tuple(colours[:3]))
    named = [_option_named(option, vocabulary) for option in listed]
    if len(listed) >= 2 and sum(bool(n) for n, _ in named) >= 2:
        rest = list(zip((name for _, name in mentions), colours)) + [(CAMERA_ROLE, '')] * bool(_camera_mentions(text))
        for option in named:   # the target is what the options do not name (the camera last)
            if option in rest:
                rest.remove(option)
            elif option[0] in [n for n, _ in rest]:
                rest.pop([n for n, _ in rest].index(option[0]))
        options = tuple(named)
    elif len(mentions) >= 2 and _WHICH_OF.search(text[:mentions[0][0]]):   # "which chair is nearest the sofa?"
        rest, options = [(mentions[1][1], colours[1])], ((mentions[0][1], colours[0]),)
        return ObjectQuestion(task, categories, closest=bool(_CLOSEST.search(text)), options=options,
                              roles=(rest[0][0],), role_colours=(rest[0][1],), farthest=bool(_FARTHEST.search(text)),
                              among=True)
    elif len(mentions) == 1 and _camera_mentions(text) and _WHICH_OF.search(text[:mentions[0][0]]):
        # "which chair is closest to me?"
        return ObjectQuestion(task, categories, closest=bool(_CLOSEST.search(text)),
                              options=((mentions[0][1], colours[0]),), roles=(CAMERA_ROLE,), role_colours=('',),
                              farthest=bool(_FARTHEST.search(text)), among=True)
    elif (len(mentions) == 3 and not _THAN.search(text)
          and re.search(r'\bor\b', text[mentions[1][0]:mentions[2][0]])):
        # "is the lamp closer to the bed or the sofa?"
        rest, options = [(mentions[0][1], colours[0])], tuple((name, colour) for (_, name), colour in
                                                             zip(mentions[1:], colours[1:]))
    elif _ANY_OBJECT.search(text) and (mentions or _camera_mentions(text)):
        # "which object is nearest the sofa?", "what is the closest thing to me?": any of the map's
        rest, options = [(mentions[0][1], colours[0]) if mentions else (CAMERA_ROLE, '')], ()
    else:
        return _comparative(task, text, mentions, colours, categories)
    if not rest:
        return None
    return ObjectQuestion(task, categories, closest=bool(_CLOSEST.search(text)), options=options,
                          roles=(rest[0][0],), role_colours=(rest[0][1],), farthest=bool(_FARTHEST.search(text)))


def _place_of(text: str) -> str:
    """The place a support question asks about: 'under', 'near', 'above' or 'on'."""
    return 'under' if _UNDER.search(text) else 'near' if _NEAR.search(text) else 'above' if _ABOVE.search(text) else 'on'


def _option_named(option: str, vocabulary: Vocabulary) -> tuple[str, str]:
    """(category, colour word) an option names first ('' for none: ('', ''))."""
    found = vocabulary.find(option.lower())
    return (found[0][1], colour_word_before(option.lower()[:found[0][0]])) if found else ('', '')


_THAN = re.compile(r'\bthan\s+(?:(to|from)\b)?')


def _comparative(task: str, text: str, mentions: list[tuple[int, str]], colours: list[str],
                 categories: tuple[str, ...]) -> ObjectQuestion | None:
    """"Is the lamp closer to the bed than the chair (is)?" compares the lamp's and the chair's
    distances to the bed; "... than to the chair?" the lamp's to the bed and to the chair; the
    camera may be one of the three ("closer to me", "am I closer", "than I am"). Two places
    before 'than' and one after, else None."""
    than = _THAN.search(text)
    if than is None:
        return None
    places = sorted([(offset, name, colour) for (offset, name), colour in zip(mentions, colours)]
                    + [(offset, CAMERA_ROLE, '') for offset in _camera_mentions(text)])
    before = [p for p in places if p[0] < than.start()]
    after = [p for p in places if p[0] >= than.start()]
    if len(before) != 2 or len(after) != 1:
        return None
    at = before + after
    compare = ((0, 1), (0, 2)) if than.group(1) else ((0, 1), (2, 1))
    return ObjectQuestion(task, categories, closest=bool(_CLOSEST.search(text)), roles=tuple(p[1] for p in at),
                          role_colours=tuple(p[2] for p in at), farthest=bool(_FARTHEST.search(text)),
                          compare=compare)


def _camera_mentions(text: str) -> list[int]:
    """Offsets in `text` where the camera is named as a place of a comparison (`_CAMERA_NAMED`)."""
    return sorted({m.start(1) for pattern in _CAMERA_NAMED for m in pattern.finditer(text)})


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
    (`NO_MODEL_MESSAGE`) what is not an object question."""
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
        return room_answer(floor() if callable(floor) else floor, frame)
    if q.task == 'above_floor':
        floor = floor() if callable(floor) else floor
        if q.to_camera and not q.categories:
            return _camera_height(camera_pose, floor, up, frame)
    notes = []
    for qualifier in q.qualifiers:   # "the lamp on the table": only the lamps on a table
        narrowed = _narrow(q, qualifier, by_category, vocabulary, up, frame)
        if isinstance(narrowed, Answer):
            return narrowed
        notes.append(narrowed)
    answer = _answer(q, by_category, vocabulary, camera_pose, frame, up, floor)
    if notes and answer.success:
        answer = dataclasses.replace(answer, answer=f'{answer.answer}; ' + '; '.join(notes))
    return answer


def _narrow(q: ObjectQuestion, qualifier: Qualifier, by_category: dict[str, list[ObjectInstance]],
            vocabulary: Vocabulary, up, frame) -> str | Answer:
    """Leaves in `by_category` the instances of `qualifier.category` that lie where it says
    (`objects/referring.py`) and returns what the answer should add about them, or the answer
    itself when none is left or the places cannot be told."""
    group, anchors = by_category.get(qualifier.category), by_category.get(qualifier.anchor)
    if not group or not anchors:
        missing = [c for c in (qualifier.category, qualifier.anchor) if not by_category.get(c)]
        return _replace_frame(_not_seen(q, missing, vocabulary), frame)
    if up is None and qualifier.relation != 'near':
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
                              relation=q.place)
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


def _length(value: float, unit: str) -> str:
    """'75 cm' or '0.75 m'."""
    return f'{value:.0f} cm' if unit == 'cm' else f'{value:.2f} m'


def _counts(q: ObjectQuestion, by_category, vocabulary, frame) -> Answer:
    """"How many chairs and tables are there?": each category's credible instances; value: the
    total."""
    parts, found = [], []
    for category in q.categories:
        group = _credible(by_category[category]) if by_category.get(category) else []
        parts.append(f'{len(group)} {category if len(group) == 1 else _plural(category, vocabulary)}')
        found += group
    total = len(found)
    text = f'{"yes, " if q.exists and total else "no, " if q.exists else ""}I have seen ' + ' and '.join(parts)
    if found:
        text += f' ({total} in all; centres in {frame}: ' + '; '.join(f'the {i.category} at {xyz_text(i.centroid)}'
                                                                     for i in found) + ')'
    return Answer(True, 'ok', text, q.task, float(total), 'count',
                  points=np.stack([i.centroid for i in found]) if found else np.zeros((0, 3)),
                  confidence=float(np.mean([i.confidence for i in found])) if found else 1.0, frame=frame)


def _size(q: ObjectQuestion, category: str, found, up, frame) -> Answer:
    """The most confident instance's longest side, or its height along `up` ("how tall") or
    its width across it ("how wide"); without `up` (no camera pose yet) the longest side."""
    inst = max(found, key=lambda i: i.confidence)
    measure = q.measure if up is not None else 'length'
    metres = size_of(inst, measure, up)
    value, unit = (metres * 100, 'cm') if q.unit == 'cm' else (metres, 'm')
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
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    centre = np.asarray(camera_pose, np.float64)[:3, 3]
    height = float(centre @ up - floor.outline[0] @ up)
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
    level = float(floor.outline[0] @ up)
    half = 0.5 * float(np.abs(up) @ inst.extent)
    centre = float(inst.box_centre @ up) - level
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
        value, unit = (d * 100, 'cm') if q.unit == 'cm' else (d, 'm')
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
    a, b = max(pairs, key=lambda pair: (min(pair[0].confidence, pair[1].confidence), -measure(pair)))
    centre = float(np.linalg.norm(a.centroid - b.centroid))
    closest = box_distance(a, b)[0]
    value = closest if q.closest else centre
    which = f' (the most confident pair of {len(pairs)})' if len(pairs) > 1 else ''
    subject = (f'the two {_plural(names[0], vocabulary)}' if names[0] == names[1]
               else f'the {names[0]} and the {names[1]}')
    shown, unit = (value * 100, 'cm') if q.unit == 'cm' else (value, 'm')
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
