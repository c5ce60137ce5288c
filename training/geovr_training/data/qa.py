"""Spatial question-answer items from a scene graph and the frames seen so far.

Tasks (VSI-Bench's eight plus two): ``object_count``, ``abs_distance``, ``object_size``,
``room_size``, ``rel_distance``, ``rel_direction``, ``route_plan``, ``appearance_order``,
``where_is``, ``situated_localization``.

Definitions (every answer is recomputable from the boxes; tests do so independently):
- only objects seen in the sequence (``first_seen`` set) are asked about; an object is named
  by "colour category" and only when that pair is unique in the room; counts count the seen
  instances of a category;
- distances are between box centres (metres); object size is the longest box side (cm);
  room size is the floor area (m^2);
- directions are in the floor plane, angles counter-clockwise from the facing direction
  (left positive); choices closer than 10 degrees to a boundary are not asked;
- route plan: start at A facing B, go to B, turn, go to C, turn, go to D; turns are 'turn left'
  (30..150 deg), 'turn right' (-150..-30), 'turn back' (|angle| > 150), 10 deg margins;
- situated localization: the pose of camera frame ``frame`` (position of the optical centre,
  metres, and heading of the optical axis projected on the floor, radians from world +x),
  where X is within 15 deg of straight ahead and Y within 60..120 deg to one side.

Item fields: ``id``, ``task``, ``question``, ``template_id``, ``template_split``
('train' or 'heldout'), ``answer`` ({'type': 'number', 'value', 'unit'} | {'type': 'choice',
'choices', 'index'} | {'type': 'point', 'value', 'unit', 'frame'} | {'type': 'pose',
'position', 'heading', 'frame'}), ``objects`` (instance ids in role order), ``category`` /
``categories`` where asked, ``frames`` (key frames that show what is asked) and
``until_frame`` (the answer is defined after watching frames 0..until_frame).
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import numpy as np
from geovr_ros.geometry import optical_to_body, yaw_from_pose
from geovr_ros.objects.vocabulary import plural_of

from .types import SceneGraph, SceneObject

TASKS = ('object_count', 'abs_distance', 'object_size', 'room_size', 'rel_distance', 'rel_direction',
         'route_plan', 'appearance_order', 'where_is', 'situated_localization')
HELDOUT_FRACTION = 0.25
ANGLE_MARGIN_DEG = 10.0

TEMPLATES: dict[str, dict[str, list[str]]] = {
    'object_count': {
        'train': ['How many {plural} are in this room?', 'Count the {plural} you have seen.',
                  'What is the number of {plural} in the room?'],
        'heldout': ['In total, how many {plural} appear in the video?'],
    },
    'abs_distance': {
        'train': ['What is the distance between the {a} and the {b} in metres?',
                  'How far apart are the {a} and the {b} (in meters)?',
                  'Measuring centre to centre, how far is the {a} from the {b}?'],
        'heldout': ['Estimate the direct distance from the {a} to the {b}, in metres.'],
    },
    'object_size': {
        'train': ['How long is the longest side of the {a} in centimetres?',
                  'What is the size of the {a} along its longest dimension (cm)?',
                  'Give the largest dimension of the {a} in cm.'],
        'heldout': ['Along its longest edge, how many centimeters does the {a} measure?'],
    },
    'room_size': {
        'train': ['What is the floor area of this room in square metres?',
                  'How big is the room, in square meters?', 'Estimate the size of the room (m^2).'],
        'heldout': ['How many square metres of floor does this room have?'],
    },
    'rel_distance': {
        'train': ['Which of these is closest to the {a}: {options}?',
                  'Measured between centres, which object is nearest to the {a}: {options}?',
                  'Among {options}, which one is the closest to the {a}?'],
        'heldout': ['Of {options}, which lies nearest the {a}?'],
    },
    'rel_direction': {
        'train': ['If I am standing by the {a} and facing the {b}, is the {c} to my {options}?',
                  'Standing at the {a} looking towards the {b}, where is the {c}: {options}?',
                  'Imagine you are at the {a} facing the {b}. In which direction is the {c} ({options})?'],
        'heldout': ['From the {a}, with the {b} straight ahead, which way lies the {c}: {options}?'],
    },
    'route_plan': {
        'train': ['You are a robot beginning at the {a} facing the {b}. You want to navigate to the {d}. '
                  'You will perform the following actions: 1. Go forward until the {b}. 2. [please fill in] '
                  '3. Go forward until the {c}. 4. [please fill in] 5. Go forward until the {d}. '
                  'Which actions fill in the blanks: {options}?',
                  'Starting at the {a} and facing the {b}: go forward to the {b}, [fill in], go forward to the '
                  '{c}, [fill in], go forward to the {d}. Choose the missing turns: {options}.'],
        'heldout': ['A robot at the {a} faces the {b}. Its route: reach the {b}, then ___, reach the {c}, then '
                    '___, reach the {d}. Which turns complete the route: {options}?'],
    },
    'appearance_order': {
        'train': ['What will be the first-time appearance order of the following categories in the video: '
                  '{categories}? Options: {options}.',
                  'In which order do these first appear: {categories}? {options}',
                  'Sort by first appearance in the video: {categories}. Options: {options}.'],
        'heldout': ['Which sequence gives the order in which {categories} are first seen? {options}'],
    },
    'where_is': {
        'train': ['Where is the {a}?', 'Give the 3D position of the {a}.', 'Locate the {a} in the room.'],
        'heldout': ['At which point in the room can the {a} be found?'],
    },
    'situated_localization': {
        'train': ['I am facing the {a} and the {b} is on my {side}. Where am I?',
                  'The {a} is straight ahead of me and the {b} is to my {side}. What is my position and heading?',
                  'Facing the {a}, with the {b} on my {side}: where am I standing?'],
        'heldout': ['With the {a} in front of me and the {b} at my {side}, locate me.'],
    },
}


def signed_angle_deg(forward_xy: np.ndarray, target_xy: np.ndarray) -> float:
    """Angle (degrees, (-180, 180]) from ``forward_xy`` to ``target_xy`` in the floor plane,
    counter-clockwise positive (to the left when z is up)."""
    cross = forward_xy[0] * target_xy[1] - forward_xy[1] * target_xy[0]
    return float(np.degrees(np.arctan2(cross, np.dot(forward_xy, target_xy))))


def _near(angle: float, boundaries) -> bool:
    return any(abs((angle - b + 180) % 360 - 180) < ANGLE_MARGIN_DEG for b in boundaries)


def direction_label(angle: float, scheme: str) -> str | None:
    """Direction word of ``angle`` (degrees, left positive) under a scheme; None when ambiguous."""
    if scheme == 'left_right':
        if _near(angle, (0, 180)) or abs(angle) < 20 or abs(angle) > 160:
            return None
        return 'left' if angle > 0 else 'right'
    if scheme == 'left_right_back':
        if _near(angle, (45, -45, 135, -135)) or abs(angle) < 45:
            return None
        return 'back' if abs(angle) > 135 else ('left' if angle > 0 else 'right')
    if scheme == 'quadrant':
        if _near(angle, (0, 90, -90, 180)):
            return None
        return ('front' if abs(angle) < 90 else 'back') + '-' + ('left' if angle > 0 else 'right')
    raise ValueError(f'unknown direction scheme {scheme!r}')


DIRECTION_CHOICES = {'left_right': ['left', 'right'], 'left_right_back': ['left', 'right', 'back'],
                     'quadrant': ['front-left', 'front-right', 'back-left', 'back-right']}


def turn_label(angle: float) -> str | None:
    """'turn left' / 'turn right' / 'turn back' for a heading change (degrees); None if ambiguous."""
    if _near(angle, (30, -30, 150, -150)) or abs(angle) < 30:
        return None
    return 'turn back' if abs(angle) > 150 else ('turn left' if angle > 0 else 'turn right')


def camera_position_heading(T_world_cam: np.ndarray) -> tuple[np.ndarray, float]:
    """Optical centre (3,) metres and heading (radians from world +x) of an optical pose."""
    return T_world_cam[:3, 3].copy(), float(yaw_from_pose(optical_to_body(T_world_cam)))


class _Builder:
    def __init__(self, scene: SceneGraph, poses: np.ndarray, rng: np.random.Generator):
        self.scene, self.poses, self.rng = scene, poses, rng
        self.seen = [o for o in scene.objects if o.first_seen is not None]
        labels = Counter(o.label for o in scene.objects)
        self.unique = [o for o in self.seen if labels[o.label] == 1]
        self.last_frame = len(poses) - 1

    def pick(self, pool: list, k: int) -> list | None:
        if len(pool) < k:
            return None
        return [pool[i] for i in self.rng.choice(len(pool), k, replace=False)]

    def item(self, task: str, fields: dict[str, str], answer: dict[str, Any], objects: list[SceneObject],
             frames: list[int] | None = None, **extra) -> dict[str, Any]:
        split = 'heldout' if self.rng.random() < HELDOUT_FRACTION else 'train'
        templates = TEMPLATES[task][split]
        tid = int(self.rng.integers(len(templates)))
        key_frames = sorted({o.first_seen for o in objects} | set(frames or []))
        until = max(key_frames) if key_frames else self.last_frame
        return {'task': task, 'question': templates[tid].format(**fields), 'template_id': tid,
                'template_split': split, 'answer': answer, 'objects': [o.instance_id for o in objects],
                'frames': key_frames, 'until_frame': int(until), **extra}

    # ---- one function per task: return an item or None when this draw is not askable

    def object_count(self):
        categories = sorted({o.category for o in self.seen})
        if not categories:
            return None
        category = categories[self.rng.integers(len(categories))]
        instances = [o for o in self.seen if o.category == category]
        return self.item('object_count', {'plural': plural_of(category)},
                         {'type': 'number', 'value': float(len(instances)), 'unit': 'count'}, instances,
                         category=category)

    def abs_distance(self):
        pair = self.pick(self.unique, 2)
        if pair is None:
            return None
        a, b = pair
        return self.item('abs_distance', {'a': a.label, 'b': b.label},
                         {'type': 'number', 'value': float(np.linalg.norm(a.centre - b.centre)), 'unit': 'm'}, pair)

    def object_size(self):
        one = self.pick(self.unique, 1)
        if one is None:
            return None
        return self.item('object_size', {'a': one[0].label},
                         {'type': 'number', 'value': float(np.max(one[0].size) * 100), 'unit': 'cm'}, one)

    def room_size(self):
        return self.item('room_size', {}, {'type': 'number', 'value': self.scene.floor_area, 'unit': 'm^2'}, [],
                         frames=[self.last_frame])

    def rel_distance(self):
        group = self.pick(self.unique, 5)
        if group is None:
            group = self.pick(self.unique, 4)
        if group is None:
            return None
        target, options = group[0], group[1:]
        dist = np.array([np.linalg.norm(o.centre - target.centre) for o in options])
        order = np.argsort(dist)
        if dist[order[1]] - dist[order[0]] < 0.2:
            return None
        return self.item('rel_distance', {'a': target.label, 'options': ', '.join(o.label for o in options)},
                         {'type': 'choice', 'choices': [o.label for o in options], 'index': int(order[0])}, group)

    def rel_direction(self):
        trio = self.pick(self.unique, 3)
        if trio is None:
            return None
        a, b, c = trio
        f, v = b.centre[:2] - a.centre[:2], c.centre[:2] - a.centre[:2]
        if np.linalg.norm(f) < 0.3 or np.linalg.norm(v) < 0.3:
            return None
        scheme = ('left_right', 'left_right_back', 'quadrant')[self.rng.integers(3)]
        label = direction_label(signed_angle_deg(f, v), scheme)
        if label is None:
            return None
        choices = DIRECTION_CHOICES[scheme]
        return self.item('rel_direction', {'a': a.label, 'b': b.label, 'c': c.label, 'options': ' or '.join(choices)},
                         {'type': 'choice', 'choices': choices, 'index': choices.index(label)}, trio, scheme=scheme)

    def route_plan(self):
        route = self.pick(self.unique, 4)
        if route is None:
            return None
        xy = [o.centre[:2] for o in route]
        legs = [xy[i + 1] - xy[i] for i in range(3)]
        if min(np.linalg.norm(leg) for leg in legs) < 0.5:
            return None
        turns = [turn_label(signed_angle_deg(legs[i], legs[i + 1])) for i in range(2)]
        if None in turns:
            return None
        correct = ', '.join(turns)
        others = [', '.join(t) for t in itertools.product(['turn left', 'turn right', 'turn back'], repeat=2)
                  if ', '.join(t) != correct]
        picks = [others[i] for i in self.rng.choice(len(others), 3, replace=False)]
        choices = picks + [correct]
        choices = [choices[i] for i in self.rng.permutation(4)]
        a, b, c, d = route
        return self.item('route_plan', {'a': a.label, 'b': b.label, 'c': c.label, 'd': d.label,
                                        'options': '; '.join(f'({chr(65 + i)}) {ch}' for i, ch in enumerate(choices))},
                         {'type': 'choice', 'choices': choices, 'index': choices.index(correct)}, route)

    def appearance_order(self):
        first = {}
        for o in self.seen:
            first[o.category] = min(first.get(o.category, o.first_seen), o.first_seen)
        cats = self.pick(sorted(first), 4)
        if cats is None:
            return None
        frames = [first[c] for c in cats]
        if len(set(frames)) < 4:
            return None
        correct = [cats[i] for i in np.argsort(frames)]
        perms = [list(p) for p in itertools.permutations(correct) if list(p) != correct]
        choices = [correct] + [perms[i] for i in self.rng.choice(len(perms), 3, replace=False)]
        choices = [', '.join(choices[i]) for i in self.rng.permutation(4)]
        index = choices.index(', '.join(correct))
        # role order: per category as the question lists them, its first instance seen
        instances = [next(o for o in self.seen if o.category == c and o.first_seen == first[c]) for c in cats]
        return self.item('appearance_order', {'categories': ', '.join(cats),
                                              'options': '; '.join(f'({chr(65 + i)}) {ch}' for i, ch in enumerate(choices))},
                         {'type': 'choice', 'choices': choices, 'index': index}, instances, categories=cats)

    def where_is(self):
        one = self.pick(self.unique, 1)
        if one is None:
            return None
        return self.item('where_is', {'a': one[0].label},
                         {'type': 'point', 'value': [float(v) for v in one[0].centre], 'unit': 'm', 'frame': 'world'},
                         one)

    def situated_localization(self):
        if len(self.unique) < 2:
            return None
        for _ in range(8):
            i = int(self.rng.integers(len(self.poses)))
            pos, heading = camera_position_heading(self.poses[i])
            fwd = np.array([np.cos(heading), np.sin(heading)])
            angles = {o.instance_id: signed_angle_deg(fwd, o.centre[:2] - pos[:2]) for o in self.unique}
            ahead = [o for o in self.unique if abs(angles[o.instance_id]) < 15
                     and np.linalg.norm(o.centre[:2] - pos[:2]) > 0.5]
            side = [o for o in self.unique if 60 < abs(angles[o.instance_id]) < 120]
            if ahead and side:
                a = ahead[self.rng.integers(len(ahead))]
                b = side[self.rng.integers(len(side))]
                side_word = 'left' if angles[b.instance_id] > 0 else 'right'
                return self.item('situated_localization', {'a': a.label, 'b': b.label, 'side': side_word},
                                 {'type': 'pose', 'position': [float(v) for v in pos], 'heading': heading,
                                  'frame': 'world'}, [a, b], frames=[i], frame=i, side=side_word)
        return None


def generate_qa(scene: SceneGraph, poses: np.ndarray, rng: np.random.Generator, max_items: int = 24
                ) -> list[dict[str, Any]]:
    """Up to ``max_items`` QA items, tasks taken in turn (unaskable draws skipped), unique questions.

    ``scene`` must have ``first_seen`` set; ``poses`` (N, 4, 4) optical camera-to-world.
    """
    builder = _Builder(scene, poses, rng)
    items, questions = [], set()
    fails = 0
    task_cycle = itertools.cycle(TASKS)
    while len(items) < max_items and fails < 6 * len(TASKS):
        task = next(task_cycle)
        item = getattr(builder, task)()
        if item is None or item['question'] in questions:
            fails += 1
            continue
        questions.add(item['question'])
        item['id'] = f'q{len(items):03d}'
        items.append(item)
    return items
