"""Answers that relate objects to one another and to the room, from the object map's geometry:
which object is nearest another, where an object lies seen from a stated viewpoint, the turns
of a route through objects, and the room's floor area (VSI-Bench's rel_distance,
rel_direction, route_plan and room_size).

Conventions (the data engine's, `geovr_training.data.qa`, so that its items score them):
- directions and turns are angles in the floor plane (normal to `up`), counter-clockwise
  seen from above, so to the left is positive; an object's place is its instance's centroid;
- a direction answers the option whose centre is nearest the angle (front 0, front-left 45,
  left 90, back-left 135, back 180 degrees, and the right-hand mirror), which puts the
  boundaries where the options meet (left / right at 0 and 180; left / right / back at +-135);
- a turn at a waypoint is the angle from the leg that reaches it to the leg that leaves it:
  'turn left' 30-150 degrees, 'turn right' -30 to -150, 'turn back' beyond 150 either way,
  'go forward' within 30; a route answers the option that agrees with the most turns, then
  the one nearest in angle;
- which object is nearest: centre to centre (closest box points when the question says
  closest points / edges / surfaces), from the target's most confident instance to each
  option's nearest credible one; an option never seen is never the nearest (and always the
  farthest, it may be anywhere);
- the floor area: `room.RoomFootprint`'s rectangle around what the depth saw.
"""
from __future__ import annotations

import re
from functools import partial
from typing import Sequence

import numpy as np

from geovr_ros.memory.answerer import Answer, centimetres
from geovr_ros.objects.object_map import ObjectInstance, box_distance
from geovr_ros.objects.room import FloorOutline

__all__ = ['DIRECTION_DEG', 'SIZE_WORDS', 'TURN_DEG', 'between_answer', 'comparison_answer', 'direction_answer',
           'direction_choice', 'direction_of', 'eight_way', 'floor_angle_deg', 'nearest_option', 'resting_on',
           'room_answer', 'route_answer', 'route_roles', 'size_comparison_answer', 'support_answer', 'turn_word',
           'turns_of', 'xyz_text']

DIRECTION_DEG = {'front': 0.0, 'ahead': 0.0, 'forward': 0.0, 'front-left': 45.0, 'left': 90.0,
                 'back-left': 135.0, 'back': 180.0, 'behind': 180.0, 'back-right': -135.0,
                 'right': -90.0, 'front-right': -45.0}
_DIRECTION = re.compile(r'\b(front|back|rear)[ -](left|right)\b|\b(left|right)[ -](front|back|rear)\b'
                        r'|\b(front|ahead|forward|left|right|back|behind)\b')
TURN_DEG = {'turn left': 90.0, 'turn right': -90.0, 'turn back': 180.0, 'go forward': 0.0}
_TURN = re.compile(r'\bturn(?:ing)?\s+(left|right|back|around)\b|\b(straight|forward)\b')
# "go forward until the tv", "reach the lamp", "go forward to the sofa": the waypoints of a route
_WAYPOINT_CUE = re.compile(r'\b(?:until|reach(?:es|ing)?|(?:forward|go|walk|move|head|drive)\s+(?:on\s+)?'
                           r'(?:to|towards?))\s+(?:the\s+|a\s+|an\s+)?(?:[a-z-]+\s+){0,2}$')   # "the red chair"


def xyz_text(p: np.ndarray) -> str:
    """'x=.., y=.., z=.. m' of a (3,) point, centimetre precision (the answers' coordinates)."""
    return f'x={centimetres(p[0])}, y={centimetres(p[1])}, z={centimetres(p[2])} m'


def floor_angle_deg(up: np.ndarray, forward: np.ndarray, target: np.ndarray) -> float:
    """Angle (degrees, (-180, 180]) from `forward` (3,) to `target` (3,) in the plane normal to
    `up` (3,), positive to the left (counter-clockwise seen from above); NaN when either lies
    along `up`."""
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    f = np.asarray(forward, np.float64) - np.dot(forward, up) * up
    t = np.asarray(target, np.float64) - np.dot(target, up) * up
    if np.linalg.norm(f) < 1e-9 or np.linalg.norm(t) < 1e-9:
        return float('nan')
    return float(np.degrees(np.arctan2(np.dot(up, np.cross(f, t)), np.dot(f, t))))


def _angle_gap(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def direction_of(option: str) -> str | None:
    """The direction word an option names ('front-left', 'left', 'back', ...), or None."""
    m = _DIRECTION.search(option.lower())
    if m is None:
        return None
    if m.group(1):
        return ('back' if m.group(1) == 'rear' else m.group(1)) + '-' + m.group(2)
    if m.group(3):
        return ('back' if m.group(4) == 'rear' else m.group(4)) + '-' + m.group(3)
    return m.group(5)


def direction_choice(angle: float, options: Sequence[str]) -> int | None:
    """Index of the option (direction words, e.g. ['left', 'right', 'back']) whose centre is
    nearest `angle` (degrees, left positive); None when no option names a direction."""
    gaps = [(_angle_gap(angle, DIRECTION_DEG[d]), i) for i, d in enumerate(map(direction_of, options))
            if d is not None]
    return min(gaps)[1] if gaps else None


def eight_way(angle: float) -> str:
    """'front', 'front-left', 'left', ... for an angle (degrees, left positive)."""
    names = ('front', 'front-left', 'left', 'back-left', 'back', 'back-right', 'right', 'front-right')
    return names[int(np.round((angle % 360.0) / 45.0)) % 8]


def turn_word(angle: float) -> str:
    """The turn (module docstring) of a heading change of `angle` degrees."""
    if abs(angle) < 30.0:
        return 'go forward'
    if abs(angle) > 150.0:
        return 'turn back'
    return 'turn left' if angle > 0 else 'turn right'


def turns_of(option: str) -> list[str]:
    """The turns an option lists, in order ('turn left', 'turn back', 'go forward', ...)."""
    out = []
    for m in _TURN.finditer(option.lower()):
        word = m.group(1)
        out.append('go forward' if word is None else 'turn back' if word == 'around' else f'turn {word}')
    return out


def route_roles(text: str, mentions: Sequence[tuple[int, str]]) -> list[int]:
    """The route's waypoints as indices into `mentions` (the vocabulary's (offset, category) of
    `text`, lower case): the first object named (where it starts), then every object named
    right after 'until', 'reach' or 'go/walk/head to' and at most two words ('the red chair'),
    in order."""
    if not mentions:
        return []
    return [0] + [k for k, (offset, _) in enumerate(mentions) if k and _WAYPOINT_CUE.search(text[:offset])]


# ---- answers, from the instances the question's objects resolved to (`queries`), in the map's frame

def _distance(a: ObjectInstance, b: ObjectInstance, closest_points: bool) -> float:
    return box_distance(a, b)[0] if closest_points else float(np.linalg.norm(b.centroid - a.centroid))


def nearest_option(target: str, anchor: ObjectInstance, options: Sequence[str],
                   candidates: Sequence[Sequence[ObjectInstance]], farthest: bool, closest_points: bool,
                   frame: str, listed: bool = True) -> Answer:
    """rel_distance: which of `options` (names, one per option; '' for an option that names
    none), each with its `candidates` (the instances it may mean), lies nearest (`farthest`:
    farthest from) `anchor`, the instance `target` names. listed: the options are the
    question's (the value is the chosen one's index), else the map's categories (the value is
    the distance, metres)."""
    distances = []
    for group in candidates:
        found = [(_distance(anchor, i, closest_points), i) for i in group if i is not anchor]
        distances.append(min(found, key=lambda f: f[0]) if found else (np.inf, None))
    seen = [k for k, (d, _) in enumerate(distances) if np.isfinite(d)]
    if not seen:
        why = 'I have seen none of the options' if listed else f'I have seen nothing beside the {target}'
        return Answer(False, why, frame=frame)
    pick = (max(range(len(options)) if listed else seen, key=lambda k: (distances[k][0], -k)) if farthest else
            min(seen, key=lambda k: (distances[k][0], k)))
    distance, chosen = distances[pick]
    how = 'between the closest points of the boxes' if closest_points else 'centre to centre'
    others = '; '.join(f'{options[k] or "?"} {distances[k][0]:.2f} m' if np.isfinite(distances[k][0])
                       else f'{options[k] or "?"} not seen' for k in range(len(options)))
    where = f'the {target} at {xyz_text(anchor.centroid)} in {frame}'
    points = np.stack([anchor.centroid] + ([] if chosen is None else [chosen.centroid]))
    confidence = float(min(anchor.confidence, 1.0 if chosen is None else chosen.confidence))
    word = 'farthest from' if farthest else 'nearest'
    if listed:
        return Answer(True, 'ok', f'({chr(65 + pick)}) the {options[pick]} is {word} the {target} ({how}: {others}; '
                      f'{where})', 'rel_distance', float(pick), 'option index', points=points, confidence=confidence,
                      frame=frame)
    return Answer(True, 'ok', f'the {options[pick]} at {xyz_text(chosen.centroid)} is {word} the {target}: '
                  f'{distance:.2f} m {how} ({where})', 'rel_distance', distance, 'm', points=points,
                  confidence=confidence, frame=frame)


def comparison_answer(names: Sequence[str], places: Sequence[ObjectInstance],
                      pairs: tuple[tuple[int, int], tuple[int, int]], farther: bool, closest_points: bool,
                      frame: str) -> Answer:
    """A comparative without options ("is the lamp closer to the bed than the chair is?"):
    whether the distance between the two `places` of pairs[0] (indices into `names` and
    `places`, the question's three objects in order) is shorter (`farther`: longer) than
    between those of pairs[1]. value 1 for yes, 0 for no; the answer says both distances."""
    (a, b), (c, d) = pairs
    if places[a] is places[b] or places[c] is places[d]:
        return Answer(False, f'the {names[a]} and the {names[b]} are one thing in my map' if places[a] is places[b]
                      else f'the {names[c]} and the {names[d]} are one thing in my map', frame=frame)
    first, second = _distance(places[a], places[b], closest_points), _distance(places[c], places[d], closest_points)
    yes = first > second if farther else first < second
    how = 'between the closest points of the boxes' if closest_points else 'centre to centre'
    shared = ({a, b} & {c, d}).pop() if {a, b} & {c, d} else None
    if shared is not None and len({a, b, c, d}) == 3:   # "the lamp 1.2 m from the bed, the chair 2.3 m"
        one, other = (a if b == shared else b), (c if d == shared else d)
        said = (f'the {names[one]} is {first:.2f} m from the {names[shared]}, '
                f'the {names[other]} {second:.2f} m')
    else:
        said = (f'the {names[a]} and the {names[b]} are {first:.2f} m apart, '
                f'the {names[c]} and the {names[d]} {second:.2f} m')
    points = np.stack([p.centroid for p in places])
    confidence = float(min(p.confidence for p in places))
    return Answer(True, 'ok', f'{"yes" if yes else "no"}: {said} ({how})', 'rel_distance', float(yes),
                  'yes (1) / no (0)', points=points, confidence=confidence, frame=frame)


# comparative -> (measure, whether the smaller wins); 'shorter' of a thing is its height
SIZE_WORDS = {'bigger': ('volume', False), 'larger': ('volume', False), 'smaller': ('volume', True),
              'longer': ('length', False), 'taller': ('height', False), 'shorter': ('height', True),
              'wider': ('width', False), 'narrower': ('width', True)}


def size_of(inst: ObjectInstance, measure: str, up: np.ndarray | None) -> float:
    """`measure` of an instance's own box (`oriented_box`: turned to its footprint when the map's
    vertical axis is known): 'volume' m^3, 'length' its longest side, 'height' its extent along
    `up`, 'width' its longest side across `up` (m)."""
    box = inst.oriented_box
    size = np.asarray(box.size, np.float64)
    if measure == 'volume':
        return float(np.prod(size))
    if measure == 'length' or up is None:
        return float(np.max(size))
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    if measure == 'height':
        return box.extent_along(up)
    return float(np.max(size * (1.0 - np.abs(up @ box.axes))))


# superlative -> (measure, whether the smallest wins), as SIZE_WORDS
SUPERLATIVES = {'biggest': ('volume', False), 'largest': ('volume', False), 'smallest': ('volume', True),
                'longest': ('length', False), 'tallest': ('height', False), 'shortest': ('height', True),
                'widest': ('width', False), 'narrowest': ('width', True)}
MEASURE_WORDS = {'volume': 'volumes', 'length': 'longest sides', 'height': 'heights', 'width': 'widths'}


def size_extreme_answer(word: str, names: Sequence[str], candidates: Sequence[ObjectInstance], up: np.ndarray | None,
                        frame: str, listed: bool) -> Answer:
    """Which of `candidates` (one instance each, `names` theirs) is the `word` one ('tallest',
    ... a key of SUPERLATIVES) by its box; listed: the candidates are the question's options
    (value: the chosen one's index), else the map's or a category's instances (value: its
    measure, m or m^3). The text gives the three largest (smallest) in order."""
    measure, smallest = SUPERLATIVES[word]
    sizes = [size_of(c, measure, up) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda k: (sizes[k] if smallest else -sizes[k], k))
    pick = order[0]
    unit = 'm^3' if measure == 'volume' else 'm'
    chosen = candidates[pick]
    ranked = ', '.join(f'the {names[k]} {sizes[k]:.2f} {unit}' for k in order[:3])
    text = (f'the {names[pick]} at {xyz_text(chosen.centroid)} in {frame} is the {word} of the {len(candidates)} '
            f'({MEASURE_WORDS[measure]} of their boxes: {ranked})')
    if listed:
        return Answer(True, 'ok', f'({chr(65 + pick)}) {text}', 'size_extreme', float(pick), 'option index',
                      points=np.stack([c.centroid for c in candidates]),
                      confidence=float(min(c.confidence for c in candidates)), frame=frame)
    return Answer(True, 'ok', text, 'size_extreme', sizes[pick], unit, points=chosen.centroid[None].copy(),
                  confidence=chosen.confidence, frame=frame)


def size_comparison_answer(names: Sequence[str], places: Sequence[ObjectInstance], word: str, yes_no: bool,
                           up: np.ndarray | None, frame: str) -> Answer:
    """Which of two objects is `word` ('bigger', 'taller', ... a key of SIZE_WORDS), from their
    boxes: yes_no answers "is places[0] <word> than places[1]?" (value 1 / 0), else "which is
    <word>?" (value: the index of the one that is). up: (3,) for heights and widths; without it
    those compare longest sides."""
    measure, smaller_wins = SIZE_WORDS[word]
    sizes = [size_of(p, measure, up) for p in places]
    unit = 'm^3' if measure == 'volume' else 'm'
    how = MEASURE_WORDS[measure]
    said = f'the {names[0]} {sizes[0]:.2f} {unit}, the {names[1]} {sizes[1]:.2f} {unit} ({how} of their boxes)'
    if places[0] is places[1]:
        return Answer(False, f'the {names[0]} and the {names[1]} are one thing in my map', frame=frame)
    winner = int(sizes[1] < sizes[0]) if smaller_wins else int(sizes[1] > sizes[0])
    points = np.stack([p.centroid for p in places])
    confidence = float(min(p.confidence for p in places))
    if yes_no:
        yes = winner == 0
        return Answer(True, 'ok', f'{"yes" if yes else "no"}: {said}', 'size_compare', float(yes), 'yes (1) / no (0)',
                      points=points, confidence=confidence, frame=frame)
    return Answer(True, 'ok', f'the {names[winner]} is {word}: {said}', 'size_compare', float(winner), 'option index',
                  points=points, confidence=confidence, frame=frame)


def direction_answer(names: Sequence[str], places: Sequence[ObjectInstance], options: Sequence[str], up: np.ndarray,
                     frame: str) -> Answer:
    """rel_direction: standing at places[0] facing places[1], where places[2] lies (`names`
    theirs); the option (`options`: what each names, `direction_of`, '' for none) nearest the
    angle, or one of eight directions without options."""
    at, facing, target = places
    angle = floor_angle_deg(up, facing.centroid - at.centroid, target.centroid - at.centroid)
    points = np.stack([at.centroid, facing.centroid, target.centroid])
    confidence = float(min(i.confidence for i in places))
    if not np.isfinite(angle) or at is facing or at is target:
        return Answer(False, f'the {names[0]}, the {names[1]} and the {names[2]} are not three places in my map '
                      'to tell a direction from', frame=frame)
    side = f'{abs(angle):.0f} deg to the {"left" if angle > 0 else "right"}' if abs(angle) >= 0.5 else 'straight ahead'
    seen_from = (f'from the {names[0]} facing the {names[1]}, the {names[2]} lies {side} ({eight_way(angle)}; '
                 f'centres in {frame}: points)')
    choice = direction_choice(angle, options) if options else None
    if choice is None:
        return Answer(True, 'ok', seen_from, 'rel_direction', angle, 'deg', points=points, confidence=confidence,
                      frame=frame)
    return Answer(True, 'ok', f'({chr(65 + choice)}) {options[choice]}: {seen_from}', 'rel_direction', float(choice),
                  'option index', points=points, confidence=confidence, frame=frame)


def route_answer(names: Sequence[str], places: Sequence[ObjectInstance], options: Sequence[Sequence[str]],
                 up: np.ndarray, frame: str) -> Answer:
    """route_plan: the turns at each inner waypoint of places[0] -> places[1] -> ... (`names`
    theirs), and the option (`options`: each its turns, `turns_of`) that agrees with them best
    (module docstring)."""
    centres = [p.centroid for p in places]
    legs = [b - a for a, b in zip(centres[:-1], centres[1:])]
    angles = [floor_angle_deg(up, a, b) for a, b in zip(legs[:-1], legs[1:])]
    if not angles or not np.all(np.isfinite(angles)) or any(a is b for a, b in zip(places[:-1], places[1:])):
        return Answer(False, 'the route\'s places are not distinct places in my map to tell its turns from',
                      frame=frame)
    turns = [turn_word(a) for a in angles]
    said = '; '.join(f'at the {name}: {turn} ({a:+.0f} deg)' for name, turn, a in zip(names[1:-1], turns, angles))
    confidence = float(min(p.confidence for p in places))
    points = np.stack(centres)
    if not any(options):
        return Answer(True, 'ok', f'{said} (centres of the route in {frame}: points)', 'route_plan', float('nan'), '',
                      points=points, confidence=confidence, frame=frame)

    def cost(k):
        option = options[k]
        agree = sum(a == b for a, b in zip(option, turns))
        gaps = sum(_angle_gap(a, TURN_DEG[t]) for a, t in zip(angles, option))
        return (-agree, abs(len(option) - len(turns)), gaps, k)
    pick = min(range(len(options)), key=cost)
    return Answer(True, 'ok', f'({chr(65 + pick)}) {", ".join(options[pick])}: {said} (centres of the route in '
                  f'{frame}: points)', 'route_plan', float(pick), 'option index', points=points,
                  confidence=confidence, frame=frame)


SUPPORT_GAP_M = (-0.15, 0.3)   # an item's box bottom this far below / above its support's top
SUPPORT_MARGIN_M = 0.1         # and its centre this far outside the support's footprint at most
UNDER_CLEARANCE_M = 0.1        # an item under a cover: its centre at least this far below the cover's top
NEAR_GAP_M = 0.5               # "next to", "near", "beside": the closest points of the two boxes this close
INSIDE_MARGIN_M = 0.05         # "in", "inside": an item's centre within the container's box grown by this much
BESIDE_GAP_M = 1.0             # "to the left of", "behind" (seen from the camera): the boxes' closest points this close


def _vertical(items: Sequence[ObjectInstance], anchor: ObjectInstance, up: np.ndarray):
    """(bottoms (N,): the items' box bottoms along `up`, heights (N,): their centres along it,
    top: the anchor's box top along it, over (N,) bool: their centres over the anchor's
    footprint, SUPPORT_MARGIN_M wider) for the axis-aligned boxes of `items` and `anchor`."""
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    weights = np.abs(up)
    box_centres = np.stack([i.box_centre for i in items]).astype(np.float64)
    extents = np.stack([i.extent for i in items]).astype(np.float64)
    centroids = np.stack([i.centroid for i in items]).astype(np.float64)
    bottoms = box_centres @ up - 0.5 * extents @ weights
    top = float(np.dot(anchor.box_centre, up) + 0.5 * weights @ np.asarray(anchor.extent, np.float64))
    across = weights < 0.5   # the box axes that lie in the floor plane
    over = np.all(np.abs(centroids - anchor.box_centre)[:, across]
                  <= 0.5 * np.asarray(anchor.extent)[across] + SUPPORT_MARGIN_M, axis=1)
    return bottoms, centroids @ up, top, over


def resting_on(items: Sequence[ObjectInstance], support: ObjectInstance, up: np.ndarray) -> np.ndarray:
    """(len(items),) bool: which `items` rest on `support` (boxes in one frame, `up` (3,) in it):
    a box's bottom within SUPPORT_GAP_M of the support's top, its centre above that top and,
    across `up`, over the support's footprint (SUPPORT_MARGIN_M wider). Boxes are the map's
    axis-aligned ones; `support` itself never rests on itself."""
    return _over_top(items, support, up, SUPPORT_GAP_M[1])


def _over_top(items: Sequence[ObjectInstance], anchor: ObjectInstance, up: np.ndarray, max_gap: float) -> np.ndarray:
    """(len(items),) bool: a box's bottom from SUPPORT_GAP_M[0] below to `max_gap` above the
    anchor's top, its centre above that top and over the anchor's footprint (SUPPORT_MARGIN_M
    wider); the anchor itself never."""
    if not items:
        return np.zeros(0, bool)
    bottoms, heights, top, over = _vertical(items, anchor, up)
    gap = bottoms - top
    return ((gap >= SUPPORT_GAP_M[0]) & (gap <= max_gap) & (heights > top - 0.05) & over
            & np.array([i is not anchor for i in items]))


def lying_under(items: Sequence[ObjectInstance], cover: ObjectInstance, up: np.ndarray) -> np.ndarray:
    """(len(items),) bool: which `items` lie under `cover` (a table, a desk, a shelf): the
    centre over its footprint (SUPPORT_MARGIN_M wider) and at least UNDER_CLEARANCE_M below
    its top, along `up`. A chair pushed under a table counts though its back may rise above
    the table top; what rests on the cover does not."""
    if not items:
        return np.zeros(0, bool)
    _, heights, top, over = _vertical(items, cover, up)
    return (heights <= top - UNDER_CLEARANCE_M) & over & np.array([i is not cover for i in items])


def lying_above(items: Sequence[ObjectInstance], anchor: ObjectInstance, up: np.ndarray) -> np.ndarray:
    """(len(items),) bool: which `items` lie above `anchor`: resting on it or higher (a lamp
    hanging over a table): a box's bottom no lower than SUPPORT_GAP_M[0] below the anchor's top,
    its centre above that top and over the anchor's footprint (SUPPORT_MARGIN_M wider)."""
    return _over_top(items, anchor, up, np.inf)


def lying_inside(items: Sequence[ObjectInstance], container: ObjectInstance, up: np.ndarray | None = None
                 ) -> np.ndarray:
    """(len(items),) bool: which `items` lie in `container` (a bin, a box, a shelf, a cabinet):
    their centre within its box (INSIDE_MARGIN_M larger on every side) and their longest side
    shorter than its longest. `up` is not used (the place tests' common signature)."""
    if not items:
        return np.zeros(0, bool)
    centres = np.stack([i.centroid for i in items]).astype(np.float64)
    within = np.all((centres >= container.box_min - INSIDE_MARGIN_M) & (centres <= container.box_max + INSIDE_MARGIN_M),
                    axis=1)
    longest = size_of(container, 'length', None)
    smaller = np.array([size_of(i, 'length', None) < longest for i in items])
    return within & smaller & np.array([i is not container for i in items])


def _box_gaps(items: Sequence[ObjectInstance], anchor: ObjectInstance) -> np.ndarray:
    """(len(items),) metres between the closest points of each item's box and the anchor's (0: they overlap)."""
    lows = np.stack([i.box_min for i in items]).astype(np.float64)
    highs = np.stack([i.box_max for i in items]).astype(np.float64)
    return np.linalg.norm(np.maximum(0.0, np.maximum(anchor.box_min - highs, lows - anchor.box_max)), axis=1)


def seen_beside(items: Sequence[ObjectInstance], anchor: ObjectInstance, up: np.ndarray, camera_centre: np.ndarray,
                side: str, reach: float = BESIDE_GAP_M) -> np.ndarray:
    """(len(items),) bool: which `items` lie on `side` ('left', 'right', 'behind', 'front') of
    `anchor` as the camera at `camera_centre` (3,) sees it: in that quarter around the anchor's
    centre in the floor plane (normal to `up`), the quarters cut by the diagonals of the line of
    sight (behind: away from the camera), within `reach` metres of its box (the closest points),
    not resting on it nor under it."""
    if not items:
        return np.zeros(0, bool)
    up = np.asarray(up, np.float64) / np.linalg.norm(up)
    sight = anchor.centroid - np.asarray(camera_centre, np.float64)
    sight = sight - (sight @ up) * up
    if np.linalg.norm(sight) < 1e-6:   # the camera right above or below it: no sides
        return np.zeros(len(items), bool)
    sight /= np.linalg.norm(sight)
    offsets = np.stack([i.centroid for i in items]).astype(np.float64) - anchor.centroid
    along, across = offsets @ sight, offsets @ np.cross(up, sight)   # across: positive to the left
    quarter = {'behind': along > np.abs(across), 'front': -along > np.abs(across),
               'left': across > np.abs(along), 'right': -across > np.abs(along)}[side]
    return (quarter & (_box_gaps(items, anchor) <= reach) & np.array([i is not anchor for i in items])
            & ~resting_on(items, anchor, up) & ~lying_under(items, anchor, up))


def near(items: Sequence[ObjectInstance], anchor: ObjectInstance, up: np.ndarray | None = None) -> np.ndarray:
    """(len(items),) bool: which `items` lie next to `anchor`: the closest points of their
    boxes within NEAR_GAP_M (touching and overlapping boxes included), except, with `up` known,
    what rests on the anchor or lies under it (a lamp on a table is on it, not next to it)."""
    if not items:
        return np.zeros(0, bool)
    close = (_box_gaps(items, anchor) <= NEAR_GAP_M) & np.array([i is not anchor for i in items])
    if up is not None:
        close &= ~resting_on(items, anchor, up) & ~lying_under(items, anchor, up)
    return close


PLACE_TESTS = {'on': resting_on, 'under': lying_under, 'near': near, 'above': lying_above, 'in': lying_inside}
PLACE_RULES = {
    'on': f"a box's bottom within {-SUPPORT_GAP_M[0]:.2f} m below to {SUPPORT_GAP_M[1]:.2f} m above the {{0}}'s top, "
          'its centre over it',
    'under': f"its centre over the {{0}}'s footprint and at least {UNDER_CLEARANCE_M:.2f} m below its top",
    'near': f"the closest points of the boxes within {NEAR_GAP_M:.2f} m of the {{0}}'s, not on it or under it",
    'above': f"its centre over the {{0}}'s footprint and its box's bottom no lower than {-SUPPORT_GAP_M[0]:.2f} m "
             'below its top',
    'in': f"its centre inside the {{0}}'s box ({INSIDE_MARGIN_M:.2f} m larger) and smaller than the {{0}}",
}
PLACE_WORDS = {'on': 'on', 'under': 'under', 'near': 'next to', 'above': 'above', 'in': 'in'}
# the sides of an object as the camera sees it now (`seen_beside`): places of a support question
VIEW_SIDES = {'left': 'to the left of', 'right': 'to the right of', 'behind': 'behind', 'front': 'in front of'}
VIEW_SIDE_RULE = (f"seen from the camera's position now: within {BESIDE_GAP_M:.1f} m of the {{0}}'s box, in the "
                  "quarter around it on that side of the line of sight")


def support_answer(support_name: str, supports: Sequence[ObjectInstance], items: Sequence[ObjectInstance],
                   up: np.ndarray, frame: str, asked: str = '', relation: str = 'on',
                   camera_pose: np.ndarray | None = None) -> Answer:
    """What lies on (relation 'on', `resting_on`), under ('under', `lying_under`), next to
    ('near', `near`), above ('above', `lying_above`) or in ('in', `lying_inside`) the `supports` (the instances `support_name`
    names), or on one side of them as the camera sees it (a key of VIEW_SIDES, `seen_beside`;
    camera_pose (4, 4) in `frame`): of `items`, those the test keeps for one of them; value: how
    many (nothing next to them or on that side: the text adds the nearest item there and its
    distance). asked: a category for "is the lamp on the table?" (value 1 / 0)."""
    if relation in VIEW_SIDES:
        if camera_pose is None:
            return Answer(False, 'no camera pose yet to tell the sides of an object', frame=frame)
        camera_centre = np.asarray(camera_pose, np.float64)[:3, 3]
        test = partial(seen_beside, camera_centre=camera_centre, side=relation)
        word, rule_text = VIEW_SIDES[relation], VIEW_SIDE_RULE
    else:
        test, word, rule_text = PLACE_TESTS[relation], PLACE_WORDS[relation], PLACE_RULES[relation]
    found = []
    for support in supports:
        found += [items[k] for k in np.flatnonzero(test(items, support, up)) if not any(items[k] is f for f in found)]
    where = '; '.join(f'the {support_name} at {xyz_text(s.centroid)}' for s in supports)
    rule = rule_text.format(support_name)
    points = np.stack([s.centroid for s in supports] + [item.centroid for item in found])
    if asked:
        yes = any(item.category == asked for item in found)
        rests, resting = ('rests', 'resting') if relation == 'on' else ('lies', 'lying')
        said = f'yes: the {asked} {rests}' if yes else f'no: I have seen no {asked} {resting}'
        return Answer(True, 'ok', f'{said} {word} {where} in {frame} ({rule})', 'support', float(yes),
                      'yes (1) / no (0)', points=points, confidence=float(min(s.confidence for s in supports)),
                      frame=frame)
    if not found:
        text = f'I have seen nothing {word} {where} in {frame} ({rule})'
        others = [i for i in items if not any(i is s for s in supports)]
        if relation in VIEW_SIDES:   # "what is behind the sofa?": then the nearest on that side farther away
            others = [i for i in others if any(test([i], s, up, reach=np.inf)[0] for s in supports)]
        if (relation == 'near' or relation in VIEW_SIDES) and others:   # then what is nearest, and how far
            distance, nearest = min(((min(float(np.linalg.norm(i.centroid - s.centroid)) for s in supports), i)
                                     for i in others), key=lambda pair: pair[0])
            there = 'the nearest' if relation == 'near' else f'the nearest {word} it'
            text += f'; {there}: a {nearest.category} at {xyz_text(nearest.centroid)}, {distance:.2f} m centre to centre'
            points = np.vstack([points, nearest.centroid[None]])
        return Answer(True, 'ok', text, 'support', 0.0, 'count',
                      points=points, confidence=float(min(s.confidence for s in supports)), frame=frame)
    listed = ', '.join(f'a {item.category} at {xyz_text(item.centroid)}' for item in found)
    return Answer(True, 'ok', f'{word} {where} in {frame}: {listed} ({rule})', 'support', float(len(found)), 'count',
                  points=points, confidence=float(np.mean([item.confidence for item in found])), frame=frame)


# directions from the camera, in the floor plane: the bearings (degrees, positive to the left) each word means;
# left and right are the two sides of the heading (10 deg either way of straight ahead or behind is neither)
AROUND_SECTORS = {'ahead': (-45.0, 45.0), 'left': (10.0, 170.0), 'right': (-170.0, -10.0), 'behind': (135.0, 225.0)}


def around_answer(direction: str, camera_pose: np.ndarray, items: Sequence[ObjectInstance], up: np.ndarray,
                  frame: str, limit: int = 8) -> Answer:
    """What lies `direction` ('ahead', 'left', 'right', 'behind': AROUND_SECTORS) of the camera
    at `camera_pose` (4, 4) optical camera-to-`frame`, seen from above (normal to `up`): of
    `items`, those whose centre's bearing from the camera's heading falls in the sector,
    nearest first (at most `limit` in the text); value: how many."""
    pose = np.asarray(camera_pose, np.float64)
    origin, forward = pose[:3, 3], pose[:3, 2]
    low, high = AROUND_SECTORS[direction]
    found = []
    for item in items:
        angle = floor_angle_deg(up, forward, item.centroid - origin)
        if np.isfinite(angle) and (low <= angle <= high or low <= angle + 360.0 <= high):
            found.append((float(np.linalg.norm(item.centroid - origin)), angle, item))
    found.sort(key=lambda f: f[0])
    where = {'ahead': 'ahead of', 'left': 'to the left of', 'right': 'to the right of', 'behind': 'behind'}[direction]
    rule = f'bearing {low:.0f} to {high:.0f} deg from the camera\'s heading, seen from above, positive to the left'
    if not found:
        return Answer(True, 'ok', f'I have seen nothing {where} the camera ({rule})', 'around', 0.0, 'count',
                      points=origin[None].copy(), confidence=1.0, frame=frame)
    listed = ', '.join(f'the {item.category} {d:.2f} m away at {angle:+.0f} deg' for d, angle, item in found[:limit])
    more = f' and {len(found) - limit} more' if len(found) > limit else ''
    return Answer(True, 'ok', f'{where} the camera (at {xyz_text(origin)} in {frame}): {listed}{more} ({rule})',
                  'around', float(len(found)), 'count', points=np.stack([item.centroid for _, _, item in found]),
                  confidence=float(np.mean([item.confidence for _, _, item in found])), frame=frame)


def bearing_answer(name: str, item: ObjectInstance, camera_pose: np.ndarray, up: np.ndarray, sides: Sequence[str],
                   frame: str) -> Answer:
    """Where `item` (`name` it) lies from the camera at `camera_pose`, seen from above: one
    side ('ahead', 'left', 'right', 'behind': AROUND_SECTORS) asks yes or no (value 1 / 0);
    several ("to my left or right?") ask which (value: the index of the side whose sector's
    middle is nearest the bearing)."""
    pose = np.asarray(camera_pose, np.float64)
    offset = np.asarray(item.centroid, np.float64) - pose[:3, 3]
    angle = floor_angle_deg(up, pose[:3, 2], offset)
    if not np.isfinite(angle):
        return Answer(False, f'the {name} lies straight above or below the camera', frame=frame)
    said = (f'the {name} at {xyz_text(item.centroid)} in {frame} lies {np.linalg.norm(offset):.2f} m from the camera '
            f'at a bearing of {angle:+.0f} deg from its heading (seen from above, positive to the left)')
    points, confidence = np.stack([pose[:3, 3], item.centroid]), item.confidence

    def inside(side: str) -> bool:
        low, high = AROUND_SECTORS[side]
        return low <= angle <= high or low <= angle + 360.0 <= high
    if len(sides) == 1:
        yes = inside(sides[0])
        return Answer(True, 'ok', f'{"yes" if yes else "no"}: {said}', 'around', float(yes), 'yes (1) / no (0)',
                      points=points, confidence=confidence, frame=frame)
    middle = {side: (low + high) / 2 for side, (low, high) in AROUND_SECTORS.items()}
    pick = min(range(len(sides)), key=lambda k: _angle_gap(angle, middle[sides[k]]))
    return Answer(True, 'ok', f'{sides[pick]}: {said}', 'around', float(pick), 'option index', points=points,
                  confidence=confidence, frame=frame)


RECENT_S = 1.0   # "what do you see now?": instances seen this close to the newest sighting (s)


def seen_now_answer(camera_pose: np.ndarray | None, items: Sequence[ObjectInstance], frame: str,
                    limit: int = 8) -> Answer:
    """What the camera sees now: of `items`, those last seen within RECENT_S of the newest
    sighting of any (the latest keyframe that named something), nearest the camera first when
    its pose is known; value: how many."""
    if not items:
        return Answer(True, 'ok', 'I have not seen any object yet', 'around', 0.0, 'count', frame=frame)
    newest = max(i.last_seen for i in items)
    found = [i for i in items if i.last_seen >= newest - RECENT_S]
    if camera_pose is not None:
        origin = np.asarray(camera_pose, np.float64)[:3, 3]
        found.sort(key=lambda i: float(np.linalg.norm(i.centroid - origin)))
        listed = [f'the {i.category} {np.linalg.norm(i.centroid - origin):.2f} m away at {xyz_text(i.centroid)}'
                  for i in found[:limit]]
    else:
        listed = [f'the {i.category} at {xyz_text(i.centroid)}' for i in found[:limit]]
    more = f' and {len(found) - limit} more' if len(found) > limit else ''
    return Answer(True, 'ok', f'seen at t={newest:.2f} s (the latest sighting; within {RECENT_S:.1f} s of it) in '
                  f'{frame}: ' + ', '.join(listed) + more, 'around', float(len(found)), 'count',
                  points=np.stack([i.centroid for i in found]),
                  confidence=float(np.mean([i.confidence for i in found])), frame=frame)


BETWEEN_SPAN = (0.1, 0.9)   # where along the segment between the two a third object may lie
BETWEEN_ASIDE = 0.35        # and how far from it, as a fraction of their distance (0.5 m at least)


def _seen_from_above(point: np.ndarray, up: np.ndarray | None) -> np.ndarray:
    """(3,) `point` projected on the plane normal to `up` (the point itself without `up`)."""
    point = np.asarray(point, np.float64)
    if up is None:
        return point
    u = np.asarray(up, np.float64) / np.linalg.norm(up)
    return point - np.dot(point, u) * u


def _between(c: np.ndarray, a: np.ndarray, b: np.ndarray, up: np.ndarray | None) -> tuple[bool, float, float, float]:
    """(whether point c lies between a and b, the fraction of the way from a to b it projects
    to, its distance aside of the line (m), their distance (m)), in the plane normal to `up`
    (3D without it): BETWEEN_SPAN along, no farther aside than BETWEEN_ASIDE of their distance
    (0.5 m at least)."""
    c, a, b = (_seen_from_above(v, up) for v in (c, a, b))
    length = float(np.linalg.norm(b - a))
    if length < 1e-6:
        return False, float('nan'), float('nan'), length
    t = float(np.dot(c - a, b - a) / length ** 2)
    aside = float(np.linalg.norm(c - (a + t * (b - a))))
    return BETWEEN_SPAN[0] <= t <= BETWEEN_SPAN[1] and aside <= max(0.5, BETWEEN_ASIDE * length), t, aside, length


def between_answer(names: Sequence[str], places: Sequence[ObjectInstance], up: np.ndarray | None,
                   frame: str) -> Answer:
    """Whether places[0] lies between places[1] and places[2], in the floor plane (normal to
    `up`; 3D without it): its centre projects onto the segment between theirs within
    BETWEEN_SPAN of its length, no farther from it than BETWEEN_ASIDE of that length (0.5 m at
    least). value 1 / 0."""
    yes, t, aside, length = _between(places[0].centroid, places[1].centroid, places[2].centroid, up)
    if length < 1e-6 or places[1] is places[2]:
        return Answer(False, f'the {names[1]} and the {names[2]} are one place in my map', frame=frame)
    return Answer(True, 'ok', f'{"yes" if yes else "no"}: the {names[0]} lies {100 * t:.0f} % of the way from the '
                  f'{names[1]} to the {names[2]} ({length:.2f} m apart) and {aside:.2f} m aside of the line between '
                  f'them, seen from above', 'between', float(yes), 'yes (1) / no (0)',
                  points=np.stack([p.centroid for p in places]), confidence=float(min(p.confidence for p in places)),
                  frame=frame)


def between_list_answer(names: Sequence[str], ends: Sequence[ObjectInstance], items: Sequence[ObjectInstance],
                        up: np.ndarray | None, frame: str) -> Answer:
    """What lies between ends[0] and ends[1] (`names` theirs): of `items`, those between them
    as `between_answer` decides, in order from the first; value: how many."""
    a, b = ends
    length = float(np.linalg.norm(_seen_from_above(b.centroid, up) - _seen_from_above(a.centroid, up)))
    if a is b or length < 1e-6:
        return Answer(False, f'the {names[0]} and the {names[1]} are one place in my map', frame=frame)
    found = []
    for item in items:
        if item is a or item is b:
            continue
        yes, t, aside, length = _between(item.centroid, a.centroid, b.centroid, up)
        if yes:
            found.append((t, aside, item))
    found.sort(key=lambda f: f[0])
    rule = (f'{100 * BETWEEN_SPAN[0]:.0f}-{100 * BETWEEN_SPAN[1]:.0f} % of the way along, at most '
            f'{BETWEEN_ASIDE:.2f} of their distance aside (0.5 m at least), seen from above')
    ends_text = (f'the {names[0]} at {xyz_text(a.centroid)} and the {names[1]} at {xyz_text(b.centroid)} in {frame}, '
                 f'{length:.2f} m apart')
    points = np.stack([a.centroid, b.centroid] + [item.centroid for _, _, item in found])
    if not found:
        return Answer(True, 'ok', f'I have seen nothing between {ends_text} ({rule})', 'between', 0.0, 'count',
                      points=points, confidence=float(min(a.confidence, b.confidence)), frame=frame)
    listed = ', '.join(f'a {item.category} at {xyz_text(item.centroid)} ({100 * t:.0f} % of the way, {aside:.2f} m '
                       f'aside)' for t, aside, item in found)
    return Answer(True, 'ok', f'between {ends_text}: {listed} ({rule})', 'between', float(len(found)), 'count',
                  points=points, confidence=float(np.mean([item.confidence for _, _, item in found])), frame=frame)


def resting_place_answer(name: str, item: ObjectInstance, supports: Sequence[ObjectInstance], up: np.ndarray,
                         frame: str) -> Answer:
    """What `item` (`name` it) rests on: of `supports`, those it is `resting_on`, the top
    nearest its bottom first; value: how many."""
    under = [s for s in supports if s is not item and resting_on([item], s, up)[0]]
    gaps = [abs(float(bottoms[0]) - top) for bottoms, _, top, _ in (_vertical([item], s, up) for s in under)]
    under = [under[k] for k in np.argsort(gaps, kind='stable')]
    rule = PLACE_RULES['on'].format('support')
    where = f'the {name} at {xyz_text(item.centroid)} in {frame}'
    if not under:
        return Answer(True, 'ok', f'{where} rests on nothing I have seen (on the floor, or on something I did not '
                      f'name; {rule})', 'support', 0.0, 'count', points=item.centroid[None].copy(),
                      confidence=item.confidence, frame=frame)
    listed = ' and '.join(f'the {s.category} at {xyz_text(s.centroid)}' for s in under)
    return Answer(True, 'ok', f'{where} rests on {listed} ({rule})', 'support', float(len(under)), 'count',
                  points=np.stack([item.centroid] + [s.centroid for s in under]),
                  confidence=float(min([item.confidence] + [s.confidence for s in under])), frame=frame)


SQUARE_FEET_PER_M2 = 1.0 / 0.3048 ** 2


def room_answer(floor: FloorOutline | None, frame: str, unit: str = 'm') -> Answer:
    """room_size: the floor area of the rectangle around what the depth saw (`room`), in m^2,
    or in ft^2 with `unit` 'ft' (the sides then in feet too)."""
    if floor is None:
        return Answer(False, 'I have not seen enough of the room to measure its floor', frame=frame)
    area, sides, seen = ((floor.area_m2 * SQUARE_FEET_PER_M2, (floor.width_m / 0.3048, floor.depth_m / 0.3048),
                          floor.seen_m2 * SQUARE_FEET_PER_M2) if unit == 'ft'
                         else (floor.area_m2, (floor.width_m, floor.depth_m), floor.seen_m2))
    return Answer(True, 'ok', f'the room\'s floor is about {area:.1f} {unit}^2: {sides[0]:.1f} {unit} by '
                  f'{sides[1]:.1f} {unit}, the smallest rectangle around the walls and floor my depth saw '
                  f'({seen:.1f} {unit}^2 of it seen; corners in {frame}: points)', 'room_size', area,
                  f'{unit}^2', points=floor.outline.copy(), confidence=1.0, frame=frame)
