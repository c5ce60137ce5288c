"""Reading a question about objects: which task (VSI-Bench's eight, where-is, the list of what was
seen, and the relations of `objects/relations.py`), which objects of the vocabulary it names
(names, plurals, synonyms, a colour word before them, irregular plurals, phones' typographic
apostrophes), its options, and the phrases that name an object by where it is ("the lamp on the
table": `objects/referring.py`). `parse_object_question` returns an `ObjectQuestion`, or None for a
question that is not about objects; `objects/queries.py` answers it from the map.

The parsing is simple on purpose: the task from keywords (`_TASKS`, the first that matches and
parses wins), the objects from the vocabulary's words. Users' own wordings that it must read are
in geovr_ros/test/test_objects_wordings.py.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from geovr_ros.language.text import parse_options
from geovr_ros.objects.colours import colour_word_before
from geovr_ros.objects.referring import Qualifier, cut_spans, find_qualifiers
from geovr_ros.objects.relations import SIZE_WORDS, SUPERLATIVES, direction_of, route_roles, turns_of
from geovr_ros.objects.vocabulary import IRREGULAR_PLURALS, Vocabulary

__all__ = ['CAMERA_ROLE', 'LENGTH_UNITS', 'ObjectQuestion', 'RELATION_TASKS', 'parse_object_question']

_SIZE_WORD = re.compile(r'\b(' + '|'.join(SIZE_WORDS) + r')\b')   # "bigger", "taller", ...
# the words of a place ("on top of" before "on"): what a support question may ask about
_PLACE_WORDS = r'on top of|on|under|underneath|beneath|below|above|next to|near|beside|close to|by|in|inside|within'
# "what is on the table?", "is the lamp on the table?", "is there a box on top of the shelf?", "what is under
# the desk?"
# how a thing may be said to be somewhere: "what is lying on ...", "what is kept next to ..."
_POSTURE = r'lying| standing| sitting| placed| kept'
_ON = (r"\b(?:what|which)(?:'s| is| are)?(?: there| " + _POSTURE + r"| hanging"
       r"| the (?:objects?|things?|items?)| (?:objects?|things?|items?) (?:is|are)(?: there)?)? "
       r"(?:on|under|underneath|beneath|below|above|in|inside|within) (?:top of )?(?:the|a|an|that|this)\b"
       r"|^(?:(?:is|are) (?:there )?)?(?:anything|something) (?:" + _PLACE_WORDS + r") (?:the|a|an)\b"
       r"|^(?:is|are) (?:the|a|an|there an?|there any) .+? (?:" + _PLACE_WORDS + r") (?:the|a|an)\b")
# "what is to the left of the sofa?", "is the lamp behind the sofa?": a side of an object as the camera sees it
_SIDE = (r"(?:(?:to|on|at) the (?:left|right)(?: hand)?(?: side)? of|(?:left|right) of|behind|in front of"
         r"|at the (?:back|front) of)")
_BESIDE = re.compile(r"^(?:what|which (?:objects?|things?|items?))(?:'s| is| are)?(?: there| " + _POSTURE + r")? "
                     + _SIDE + r" (?:the|a|an|that|this)\b"
                     r"|^(?:is|are) (?:the|a|an|there an?|there any) .+? " + _SIDE + r" (?:the|a|an)\b")
_UNDER = re.compile(r'\b(under|underneath|beneath|below)\b')
_ABOVE = re.compile(r'\babove\b')
_IN = re.compile(r'\b(in|inside|within)\b')
_IN_BEFORE_ANCHOR = re.compile(r'\b(?:in|inside|within) (?:the|a|an|that|this) (?:[a-z]+ )?$')
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
                     r"(?:me|us|you|the camera|the robot)"
                     r"|(?:(?:to|on) (?:the )?)?(?:left|right)(?: or (?:(?:to|on) )?(?:the )?(?:left|right))? of "
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
_COUNT_PLACED = re.compile(r'\b(objects|things|items)\b.*\b(' + _PLACE_WORDS + r'|around)\s+(?:the|a|an)\b')
# "where is the nearest chair?", "how far is the closest lamp?": the instance nearest the camera
_NEAREST_ONE = re.compile(r'\bthe (nearest|closest)\b')
# "how far is the plant?": one object, nothing to measure from but the camera
_OTHER_PLACE = re.compile(r'\b(from|and|between|apart|separat\w*)\b')
_HEIGHT = re.compile(r'\bhow (tall|high)\b|\bheight\b')
_WIDTH = re.compile(r'\bhow wide\b|\bwidth\b')
_LONGEST = re.compile(r'\b(longest|largest|dimensions?)\b')
# "what is next to the table?", "which things are near the sofa?": what lies next to it (a support
# question, place 'near'); "which object is next to the sofa?" (one): the nearest object
_WHAT_NEXT_TO = re.compile(r"^(?:what|which (?:objects|things|items))(?:'s| is| are)?(?: there| " + _POSTURE
                           + r"| (?:did|do|can) (?:you|i|we) see)? "
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
                             r'|\b(size|area) of (the|this|that) (room|space)\b'
                             r"|\broom's (size|area|floor)\b|\bwhat size is (the|this|that) (room|space)\b")),
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
    ('beside', _BESIDE),
    ('support', re.compile(_ON + '|' + _RESTS_ON.pattern)),
    # 'how many centimetres does it measure' asks a size, 'how many metres apart' a distance
    ('object_count', re.compile(r'\bhow many\b(?! (cm|mm|m|centimet\w*|millimet\w*|met(er|re)s?|inch\w*|f(ee|oo)t)\b)'
                                r'|\bcount\b|\bnumber of\b')),
    ('abs_distance', re.compile(r'\bhow far\b|\bfar from\b|\bdistance\b|\bapart\b|\bhow close\b|\bgap\b|\bseparat\w*\b'
                                r'|\bhow many (cm|m|centimet\w*|met(er|re)s?|f(ee|oo)t)\b.*\b(between|from|apart)\b')),
    ('object_size', re.compile(r'\bhow (big|large|long|tall|wide|high)\b|\bsize\b|\blength\b|\bheight\b|\bwidth\b'
                               r'|\bdimensions?\b|\blongest\b|\bmeasures?\b')),
    ('where_is', re.compile(r'\bwhere(abouts)?\b|\b(which|what) direction\b|\blocat\w*\b|\bposition of\b|\bfind\b'
                            r'|\bbe found\b|\bshow me\b|\b(looking|searching|search) for\b'
                            r'|\bwhich (point|place|spot)\b')),
    ('object_list', re.compile(r'\bwhat (objects|things|items)\b|\bwhat (do|did|can|have) (you|i|we) (see|seen|saw)\b'
                               r'|\blist\b|\bwhat is (in|around)\b')),
    ('object_colour', re.compile(r'\b(what|which) colou?rs?\b|\bcolou?r of\b')),
    # "is there a piano?", "did you see any chairs?": a count, answered yes or no
    ('object_exists', re.compile(r'^(is|are) there\b|^any\b'
                                 r'|^(is|are) (the|a|an|any) .+? (in|inside) (the|this|my|our) (room|house|home|flat'
                                 r'|apartment|office|kitchen|space|place|area|scene|building)\b'
                                 r'|\b(did|do|have|has|can|could) '
                                 r'(you|i|we|it|the robot|the camera) '
                                 r'(ever )?(see|seen|saw|notice\w*|spot\w*|find|found|come across)\b')),
)
# answered in `objects/relations.py`
RELATION_TASKS = ('rel_distance', 'rel_direction', 'route_plan', 'size_compare', 'size_extreme', 'between', 'support',
                  'around', 'beside')
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
                         r"|^(which|what)(?:'s| is| are| lies| stands)? (?:the )?(closest|nearest|farthest|furthest)"
                         r" (?:to|from)\b"
                         r"|\b(which|what)(?:'s| is| are)? the (closest|nearest|farthest|furthest) "
                         r"(object|thing|item)s?\b|\b(which|what)(?:'s| is| are)? the (object|thing|item)s? "
                         r'(closest|nearest|farthest|furthest)\b|' + _NEXT_TO + '|' + _NEXT_TO_WHAT)
# "which chair", "which red chair", "which of the chairs"
_WHICH_OF = re.compile(r"\bwhich (?:of the )?(?:[a-z-]+ )?$")
_WHAT_FIRST = re.compile(r'\b(what|which)\b')   # with appearance_order's words and no object named: every category
_ALL_OBJECTS = re.compile(r'\b(objects|things|items)\b')
_HOW_FAR_AWAY = re.compile(r'\bhow far (away|off)\b')
# "are there more chairs than tables?", "how many fewer lamps than chairs?", "as many chairs as tables?"
_COUNTS_COMPARED = re.compile(r'\b(more|fewer|less)\b.*\bthan\b|\b(as many)\b.*\bas\b')
# the length unit a question asks its answer in (metres without one) and metres -> that unit
LENGTH_UNITS = {'m': 1.0, 'cm': 100.0, 'mm': 1000.0, 'ft': 1.0 / 0.3048, 'in': 1.0 / 0.0254}
_SQUARE_FEET = re.compile(r'\bsquare (feet|foot)\b|\bsq\.? ?ft\b|\bft\^?2\b|ft²')
_UNIT_WORDS = (('cm', re.compile(r'\bcm\b|\bcentimet(er|re)s?\b')), ('mm', re.compile(r'\bmm\b|\bmillimet(er|re)s?\b')),
               ('ft', re.compile(r'\b(feet|foot|ft)\b')), ('in', re.compile(r'\binch(es)?\b')))
_UNKNOWN = (re.compile(r'\bhow many ([a-z][a-z-]+)'),
            re.compile(r'\b(?:the|a|an|any|my|some)\s+([a-z][a-z-]+)'))
_NOT_OBJECTS = {'camera', 'robot', 'room', 'video', 'scene', 'distance', 'size', 'length', 'height', 'width',
                'number', 'first', 'order', 'longest', 'largest', 'biggest', 'closest', 'nearest', 'same', 'map',
                'way', 'time', 'moment', 'one', 'ones', 'other', 'objects', 'object', 'things', 'thing', 'items',
                'frame', 'frames', 'trajectory', 'start', 'end', 'floor', 'total', 'times', 'metres', 'meters',
                'two', 'three', 'four', 'both', 'centre', 'center', 'centres', 'centers', 'edge', 'edges', 'point',
                'points', 'starting', 'heading', 'position', 'location', 'pose'}


@dataclass(frozen=True)
class ObjectQuestion:
    """What a question asks.

    task: one of the `_TASKS` names ('object_exists' is asked as an 'object_count' with
      `exists`); categories: vocabulary names in text order (unique); unknown: an object word
      the vocabulary does not know ('' if none); unit: the length unit asked for, a key of
      LENGTH_UNITS ('m' when none is named: cm, mm, feet, inches); closest: distances between
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
      seen; yes_no: size_compare asks "is A bigger than B?" (else "which is bigger?"), a count
      comparison "are there more A than B?".
    colours: the colour word before each category's first mention ('' for none: "the red chair").
    qualifiers: the categories named by where they are ("the lamp on the table",
      `objects/referring.py`), the question parsed without those phrases.
    place: what a support question asks for, 'on' ("what is on the table?"), 'under' ("what is
      under the desk?"), 'near' ("is the plant near the sofa?", "what is next to the table?"), 'above'
      ("is the lamp above the table?"), 'in' ("what is in the trash bin?"), 'support_of' ("what is
      the lamp on?") or a side as the camera sees it, 'left', 'right', 'behind', 'front' ("what
      is to the left of the sofa?"); an 'around' question's direction from the camera ('ahead', 'left', 'right',
      'behind') or 'now' ("what do you see now?").
    measure: what a size question measures: object_size 'length' (the longest side), 'height'
      or 'width'; size_compare its comparative (a key of SIZE_WORDS), size_extreme its
      superlative (a key of SUPERLATIVES); an object_count of two categories compared:
      'more', 'fewer' or 'as many' (the first named against the second; with `yes_no` "are
      there more chairs than tables?", else "how many more chairs than tables?").
    latest: appearance_order and when_seen ask for the last time seen.
    read_as: (the word typed, the vocabulary word it was read as) for each object the question
      named by a slip of the keyboard ("how many chiars?").
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
    read_as: tuple[tuple[str, str], ...] = ()


MAX_SLIPS = 3   # object words of one question read as the vocabulary words they mistype
_SINGULARS = {plural: singular for singular, plural in IRREGULAR_PLURALS.items()}
# phones and word processors type "what’s": read typographic quotes as the plain ones
_TYPOGRAPHIC = str.maketrans({'\u2019': "'", '\u2018': "'", '\u201c': '"', '\u201d': '"'})
_NO_APOSTROPHE = re.compile(r"\b(what|where|how|there|that)s\b", re.IGNORECASE)   # "wheres the sofa", typed fast


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
    it asks what rests on what). An object word one slip of the keyboard from a vocabulary word
    is read as that word (`read_as`)."""
    spaced = _NO_APOSTROPHE.sub(r"\1's", ' '.join(question.translate(_TYPOGRAPHIC).split()))
    if _NOT_OURS.search(spaced.lower()):
        return None
    parsed, read_as = _read(spaced, vocabulary), []
    while parsed is not None and parsed.unknown and len(read_as) < MAX_SLIPS:   # "how many chiars?"
        typed = re.search(r'\b' + re.escape(parsed.unknown) + r'[a-z]*', spaced, re.IGNORECASE)
        term = typed and vocabulary.slip_of(typed.group(0))
        if not term:
            break
        spaced = spaced[:typed.start()] + term + spaced[typed.end():]
        parsed = _read(spaced, vocabulary)
        read_as.append((typed.group(0), term))
    return parsed if parsed is None or not read_as else dataclasses.replace(parsed, read_as=tuple(read_as))


def _read(spaced: str, vocabulary: Vocabulary) -> ObjectQuestion | None:
    """`parse_object_question` of a question whose spaces and apostrophes are normalised."""
    text = spaced.lower()
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
    if task == 'room_size':   # square feet when the question says so, else square metres
        return ObjectQuestion(task, categories, unit='ft' if _SQUARE_FEET.search(text) else 'm')
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
    compared = _COUNTS_COMPARED.search(text) if task in ('object_count', 'object_exists') else None
    if compared and len(categories) == 2:   # the first named against the second
        measure = {'less': 'fewer'}.get(compared.group(1), compared.group(1) or compared.group(2))
        return ObjectQuestion('object_count', categories, exists=exists, measure=measure,
                              yes_no=not re.search(r'\bhow many\b', text))
    if task == 'object_size' and not _LONGEST.search(text):   # "how tall is the table?": its height
        measure = 'height' if _HEIGHT.search(text) else 'width' if _WIDTH.search(text) else 'length'
    unit = next((unit for unit, pattern in _UNIT_WORDS if pattern.search(text)), 'm')
    return ObjectQuestion('object_count' if exists else task, categories, unknown, unit,
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
    if task == 'beside':   # a support question whose place is a side the camera sees: left, right, behind, front
        if len(mentions) not in (1, 2) or (len(mentions) == 2 and not re.match(r'(is|are)\b', text)):
            return None
        side = re.search(r'\b(left|right|behind|front|back)\b', text).group(1)
        return ObjectQuestion('support', categories, roles=tuple(name for _, name in mentions),
                              role_colours=tuple(colours), place={'back': 'behind'}.get(side, side))
    if task == 'support':   # "what is on the table?" (the support) or "is the lamp on the table?" (item, support)
        if len(mentions) not in (1, 2) or (len(mentions) == 2 and not re.match(r'(is|are)\b', text)):
            return None
        on_floor = _ON_FLOOR.search(text) and re.match(r'(is|are)\b', text)
        if len(mentions) == 1 and (_RESTS_ON.match(text) or on_floor):
            # "what is the lamp on?", "is the ball on the floor?": what the one object named rests on
            return ObjectQuestion(task, categories, roles=(mentions[0][1],), role_colours=tuple(colours[:1]),
                                  place='support_of')
        place = _place_of(text)
        if place == 'in' and not _IN_BEFORE_ANCHOR.search(text[:mentions[-1][0]]):
            return None   # "is the lamp in the room?": the place is no object of the map
        return ObjectQuestion(task, categories, roles=tuple(name for _, name in mentions), role_colours=tuple(colours),
                              place=place)
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
    if task == 'rel_distance' and len(mentions) == 1 and (_WHAT_NEXT_TO.match(text) or re.match(_NEXT_TO_WHAT, text)):
        # "what is next to the table?", "what is the table next to?"
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
    """The place a support question asks about: 'under', 'near', 'above', 'in' or 'on'."""
    return ('under' if _UNDER.search(text) else 'near' if _NEAR.search(text) else 'above' if _ABOVE.search(text)
            else 'in' if _IN.search(text) and not re.search(r'\bon\b', text) else 'on')


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
