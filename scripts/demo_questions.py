"""Questions of the demo (`scripts/demo.py`) and how their answers are scored against the
ground truth of the rendered sequence. Pure numpy, no rclpy.

Selection is a fixed rule, never the outcome: the first QA item of each task in the order of
`geovr_training.data.qa.TASKS`, then the exact trajectory questions the node answers from its
own odometry. Every selected question is asked and recorded, answered or not.

Scoring (thresholds in `CORRECT_IF`):
- numbers: relative error |answer - truth| / |truth| (units converted to the truth's), VSI-Bench
  Mean Relative Accuracy as the score; counts must match exactly;
- choices: the option the node picked (as read back from the question's own options) equals
  the true option;
- points (world, m): distance between the answered point, taken from `odom` into the world
  frame with the ground-truth pose of the node's first frame, and the true point;
- poses: position error (m) and heading error (rad, heading of the optical axis on the floor).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from geovr_ros.geometry import mean_relative_accuracy, optical_to_body, yaw_from_pose

CORRECT_IF = {
    'relative_error': 0.25,       # numbers (not counts): |a - t| / |t| at most this
    'point_error_m': 1.0,         # points: metres from the true point
    'position_error_m': 1.0,      # poses: metres from the true position ...
    'heading_error_rad': math.radians(45.0),  # ... and radians from the true heading
    'travelled_relative_error': 0.10,         # "how far have I travelled?" against the true path
}

UNIT_SCALE = {'m': 1.0, 'cm': 0.01, 'mm': 0.001, 'm^2': 1.0, 'cm^2': 1e-4, 'm^3': 1.0,
              'rad': 1.0, 'deg': math.pi / 180.0, 's': 1.0, 'count': 1.0, 'objects': 1.0, '': 1.0}

OWN_TASK = 'own'  # a question the user asked in their own words (`demo.py --ask`): recorded, not scored
TRAVELLED_QUESTION = 'How far have I travelled?'
WHERE_AM_I_QUESTION = 'Where am I?'


@dataclass
class DemoQuestion:
    """A question the demo asks, with what is needed to score the answer."""

    question: str
    task: str                       # QA task of the data engine, or 'travelled' / 'where_am_i'
    truth: dict[str, Any]           # the QA item's `answer` dict (or the demo's own for trajectory questions)
    source: str                     # 'qa item <id>' or 'trajectory'
    template_split: str = ''
    qa_id: str = ''
    extra: dict[str, Any] = field(default_factory=dict)


def select_questions(qa_items: list[dict], tasks: tuple[str, ...]) -> list[DemoQuestion]:
    """The first item of each task in `tasks` order (tasks absent from the sequence are skipped),
    then the two exact trajectory questions (their truth is filled in after the run)."""
    selected = []
    for task in tasks:
        item = next((q for q in qa_items if q['task'] == task), None)
        if item is not None:
            selected.append(DemoQuestion(item['question'], task, dict(item['answer']), f"qa item {item.get('id', '')}",
                                         item.get('template_split', ''), str(item.get('id', ''))))
    selected.append(DemoQuestion(TRAVELLED_QUESTION, 'travelled', {'type': 'number', 'unit': 'm'}, 'trajectory'))
    selected.append(DemoQuestion(WHERE_AM_I_QUESTION, 'where_am_i', {'type': 'pose', 'frame': 'world'}, 'trajectory'))
    return selected


# Asked on a real recording (demo.py --recording): it has no QA items, so these are recorded
# beside the object map and the images (not scored), then the two scored trajectory questions.
RECORDING_QUESTIONS = ('What objects have you seen?', 'How many chairs do you see?', 'Where is the table?',
                       'How far is the sofa from the table?', 'Where is the plant?', 'How big is this room?',
                       'What is the closest object to me?', 'What is in front of me?')


def recording_questions() -> list[DemoQuestion]:
    """RECORDING_QUESTIONS (task OWN_TASK: not scored), then the trajectory questions."""
    asked = [DemoQuestion(text, OWN_TASK, {'type': 'none'}, 'real-recording question') for text in RECORDING_QUESTIONS]
    return asked + [DemoQuestion(TRAVELLED_QUESTION, 'travelled', {'type': 'number', 'unit': 'm'}, 'trajectory'),
                    DemoQuestion(WHERE_AM_I_QUESTION, 'where_am_i', {'type': 'pose', 'frame': 'world'}, 'trajectory')]


def own_questions(texts: list[str]) -> list[DemoQuestion]:
    """The user's own questions (`demo.py --ask`), asked after the selected ones. They have no
    ground truth: their answers are recorded beside the scene's true objects (scene.json)."""
    return [DemoQuestion(text, OWN_TASK, {'type': 'none'}, 'asked with --ask') for text in texts]


def _heading_of(T_world_cam: np.ndarray) -> float:
    """Heading (rad from world +x) of the optical axis projected on the floor (as the data engine's)."""
    return float(yaw_from_pose(optical_to_body(T_world_cam)))


def _angle_difference(a: float, b: float) -> float:
    return abs((a - b + math.pi) % (2 * math.pi) - math.pi)


def score_answer(question: DemoQuestion, response: dict[str, Any], T_world_odom: np.ndarray | None,
                 options: list[str]) -> dict[str, Any]:
    """Error and verdict of one answer.

    `response`: success, value, unit, points (list of [x, y, z] in odom, metres), pose (4x4 list,
    optical camera pose in odom, or None). `T_world_odom` (4, 4): odom in the ground-truth world
    (None when the node published no odometry). `options`: the options the question lists, in
    order (what a choice answer's index refers to). Returns a dict with `correct` (bool) and the
    error fields of the answer's kind; `correct` is False for an unanswered question.
    """
    truth = question.truth
    if not response.get('success'):
        return {'correct': False, 'error': None, 'reason': response.get('message', 'not answered')}
    kind = truth['type']
    if kind == 'number':
        value = float(response['value'])
        unit = response.get('unit', '')
        if unit not in UNIT_SCALE or truth.get('unit', '') not in UNIT_SCALE:
            return {'correct': False, 'error': None, 'reason': f'unknown unit {unit!r} or {truth.get("unit")!r}'}
        value_in_truth_unit = value * UNIT_SCALE[unit] / UNIT_SCALE[truth.get('unit', '')]
        true_value = float(truth['value'])
        if not math.isfinite(value_in_truth_unit):
            return {'correct': False, 'error': None, 'reason': f'non-finite answer {value}'}
        relative = abs(value_in_truth_unit - true_value) / abs(true_value)
        mra = float(mean_relative_accuracy(value_in_truth_unit, true_value))
        if truth.get('unit') == 'count':
            correct = round(value_in_truth_unit) == round(true_value)
        elif question.task == 'travelled':
            correct = relative <= CORRECT_IF['travelled_relative_error']
        else:
            correct = relative <= CORRECT_IF['relative_error']
        return {'correct': bool(correct), 'answer_in_truth_unit': value_in_truth_unit,
                'relative_error': relative, 'mra': mra}
    if kind == 'choice':
        if not math.isfinite(float(response.get('value', math.nan))):
            return {'correct': False, 'error': None, 'reason': 'the answer picks no option'}
        index = int(round(float(response['value'])))
        picked = options[index] if 0 <= index < len(options) else None
        true_option = truth['choices'][truth['index']]
        return {'correct': picked is not None and picked == true_option, 'picked_option': picked,
                'true_option': true_option}
    if T_world_odom is None:
        return {'correct': False, 'error': None, 'reason': 'no odometry: the odom frame is not placed in the world'}
    if kind == 'point':
        if not response.get('points'):
            return {'correct': False, 'error': None, 'reason': 'the answer holds no point'}
        p_odom = np.append(np.asarray(response['points'][0], np.float64), 1.0)
        p_world = (T_world_odom @ p_odom)[:3]
        error = float(np.linalg.norm(p_world - np.asarray(truth['value'], np.float64)))
        return {'correct': error <= CORRECT_IF['point_error_m'], 'point_world': p_world.tolist(),
                'point_error_m': error}
    if kind == 'pose':
        if response.get('pose') is None:
            return {'correct': False, 'error': None, 'reason': 'the answer holds no pose'}
        T_world_cam = T_world_odom @ np.asarray(response['pose'], np.float64)
        position_error = float(np.linalg.norm(T_world_cam[:3, 3] - np.asarray(truth['position'], np.float64)))
        if 'optical_axis' in truth:   # a world of unknown up: the angle between viewing directions
            heading_error = float(np.arccos(np.clip(T_world_cam[:3, 2] @ np.asarray(truth['optical_axis']), -1, 1)))
            heading = None
        else:
            heading = _heading_of(T_world_cam)
            heading_error = _angle_difference(heading, float(truth['heading']))
        return {'correct': position_error <= CORRECT_IF['position_error_m']
                and heading_error <= CORRECT_IF['heading_error_rad'],
                'position_world': T_world_cam[:3, 3].tolist(), 'heading_world': heading,
                'position_error_m': position_error, 'heading_error_rad': heading_error}
    return {'correct': False, 'error': None, 'reason': f'unknown answer type {kind!r}'}


def trajectory_truth(question: DemoQuestion, gt_positions: np.ndarray, gt_last_pose: np.ndarray,
                     z_up: bool = True) -> None:
    """Fills the truth of the trajectory questions: the ground-truth path length (m) over the frames
    the node processed (`gt_positions` (N, 3) in processing order) and the true last pose (its
    heading in a z-up world; else its optical axis, compared in 3D)."""
    if question.task == 'travelled':
        question.truth['value'] = float(np.sum(np.linalg.norm(np.diff(gt_positions, axis=0), axis=1)))
    elif question.task == 'where_am_i':
        question.truth['position'] = [float(v) for v in gt_last_pose[:3, 3]]
        if z_up:
            question.truth['heading'] = _heading_of(gt_last_pose)
        else:
            question.truth['optical_axis'] = [float(v) for v in gt_last_pose[:3, 2]]
