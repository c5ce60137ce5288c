"""Answering spatial questions from memory.

`QuestionAnswerer` is the interface the node calls. A language-model answerer (a later
component) implements it; until one is loaded, `GeometricAnswerer` answers only what the
memory determines exactly without a language model: the camera's own trajectory (where it
is, where it was at a time, how far it travelled, for how long) and the memory's size. Any
other question gets `success=False` and `NO_MODEL_MESSAGE`; nothing is guessed.

Answers are in the memory's frame (`odom`); the caller converts points and poses to the
requested frame.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from geovr_ros.geometry import pose_from_xyz_quat_xyzw, pose_to_xyz_quat_xyzw
from geovr_ros.memory.spatial_memory import MemorySnapshot

NO_MODEL_MESSAGE = ('no question model loaded: without one this node answers only questions '
                    'about its own trajectory and memory (where am I, where was I at <t> s, '
                    'how far have I travelled, for how long, how many keyframes)')


@dataclass(frozen=True)
class Answer:
    """One answer. points: (K, 3) metres and pose: 4x4 or None, both in `frame`; stamp:
    seconds of the newest frame the answer was given from (None when no frame is known)."""

    success: bool
    message: str
    answer: str = ''
    category: str = ''
    value: float = float('nan')
    unit: str = ''
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    pose: np.ndarray | None = None
    confidence: float = 0.0
    frame: str = 'odom'
    stamp: float | None = None
    not_seen: bool = False  # the object map holds nothing of the objects asked about


class QuestionAnswerer(Protocol):
    """Anything that answers a validated question from a memory snapshot."""

    name: str

    def answer(self, question: str, memory: MemorySnapshot, now: float) -> Answer:
        """`now` is the node's clock in seconds (for questions such as '5 s ago')."""
        ...


_NUMBER = r'([-+]?\d+(?:\.\d+)?)'


class GeometricAnswerer:
    """Answers trajectory and memory-size questions exactly; declines everything else."""

    name = 'geometric'

    _PATTERNS = (
        ('count', re.compile(r'\bhow many (key ?frames|places|memories)\b')),
        ('distance', re.compile(r'\b(?:how far|how many (?:m|meters|metres)|(?:what|how much) (?:total )?distance) '
                                r'(have|has|did) (i|we|you|the camera|the robot) '
                                r'(travel+ed|travel|move|moved|go|gone|walk|walked|come|driven|drive|drove|'
                                r'covered|cover)\b'
                                r'|\b(?:total|overall) distance (?:travel+ed|covered|moved|walked|driven)\b')),
        ('duration', re.compile(r'\bhow long (have|has|did) (i|we|you|the camera|the robot) '
                                r'(been )?(running|moving|travel+ing|travel+ed|recording|run|driving)\b')),
        ('ago', re.compile(r'\bwhere (was|were) (i|we|you|the camera|the robot)\b.*?'
                           + _NUMBER + r'\s*(s|sec|secs|second|seconds)\s+ago\b')),
        ('at_time', re.compile(r'\bwhere (was|were) (i|we|you|the camera|the robot)\b.*?'
                               r'(?:at|t\s*=)\s*(?:t\s*=\s*)?(?:time\s+)?' + _NUMBER)),
        # Only the bare question: a situated one ("I am facing the sofa and the lamp is on
        # my left; where am I?") is localization from a description, for the question model.
        ('now', re.compile(r'^\s*where (am i|are we|are you|is the camera|is the robot)'
                           r'(\s+(now|right now|currently))?\s*[?.!]*\s*$'
                           r"|^\s*what(?:'s| is) (?:my|our|your|the camera's|the robot's) (?:current )?"
                           r'(?:position|location|pose)(?:\s+(?:now|right now))?\s*[?.!]*\s*$')),
    )

    def answer(self, question: str, memory: MemorySnapshot, now: float) -> Answer:
        text = question.lower()
        for kind, pattern in self._PATTERNS:
            match = pattern.search(text)
            if match:
                return getattr(self, f'_{kind}')(match, memory, now)
        return Answer(False, NO_MODEL_MESSAGE)

    def _count(self, match, memory, now):
        n = len(memory.entries)
        return Answer(True, 'ok', f'{n} keyframes are in memory '
                      f'({memory.keyframes_added} added, {memory.keyframes_evicted} evicted)',
                      'count', float(n), 'keyframes', confidence=1.0)

    def _distance(self, match, memory, now):
        if memory.trajectory_stamps.size == 0:
            return Answer(False, 'no trajectory yet: no frame has been processed')
        d = memory.distance_travelled
        counted = f' (counted in {memory.path_resolution:g} m steps)' if memory.path_resolution > 0 else ''
        return Answer(True, 'ok', f'{d:.2f} m travelled along the camera trajectory{counted}',
                      'distance', d, 'm', points=memory.trajectory_xyz[-1:].copy(),
                      confidence=1.0)

    def _duration(self, match, memory, now):
        stamps = memory.trajectory_stamps
        if stamps.size == 0:
            return Answer(False, 'no trajectory yet: no frame has been processed')
        span = float(stamps[-1] - stamps[0])
        return Answer(True, 'ok', f'{span:.2f} s of trajectory since odometry started',
                      'duration', span, 's', confidence=1.0)

    def _now(self, match, memory, now):
        if memory.trajectory_stamps.size == 0:
            return Answer(False, 'no trajectory yet: no frame has been processed')
        return self._pose_answer(memory.trajectory_poses[-1], float(memory.trajectory_stamps[-1]),
                                 now=True)

    def _ago(self, match, memory, now):
        return self._at(memory, now - float(match.group(3)))

    def _at_time(self, match, memory, now):
        return self._at(memory, float(match.group(3)))

    def _at(self, memory, t):
        stamps = memory.trajectory_stamps
        if stamps.size == 0:
            return Answer(False, 'no trajectory yet: no frame has been processed')
        if t < stamps[0] or t > stamps[-1]:
            return Answer(False, f'time {t:.3f} s is outside the remembered trajectory '
                                 f'[{stamps[0]:.3f}, {stamps[-1]:.3f}] s')
        return self._pose_answer(interpolate_pose(stamps, memory.trajectory_poses, t), t)

    @staticmethod
    def _pose_answer(T, t, now=False):
        x, y, z = T[:3, 3]
        where = f'x={x:.2f} m, y={y:.2f} m, z={z:.2f} m'
        sentence = (f'the camera is at {where} (last frame, t={t:.3f} s)' if now
                    else f'at t={t:.3f} s the camera was at {where}')
        return Answer(True, 'ok', sentence, 'pose', float(np.linalg.norm(T[:3, 3])), 'm',
                      points=T[None, :3, 3].copy(), pose=T.copy(), confidence=1.0)


class ChainedAnswerer:
    """Asks `answerers` in order; the first that does not decline with NO_MODEL_MESSAGE
    answers (e.g. exact trajectory answers first, then a language model)."""

    def __init__(self, answerers: list[QuestionAnswerer]):
        if not answerers:
            raise ValueError('ChainedAnswerer needs at least one answerer')
        self.answerers = list(answerers)
        self.name = '+'.join(a.name for a in self.answerers)

    def answer(self, question: str, memory: MemorySnapshot, now: float) -> Answer:
        result = Answer(False, NO_MODEL_MESSAGE)
        for answerer in self.answerers:
            result = answerer.answer(question, memory, now)
            if result.success or result.message != NO_MODEL_MESSAGE:
                return result
        return result


def interpolate_pose(stamps: np.ndarray, poses: np.ndarray, t: float) -> np.ndarray:
    """Pose (4x4) at time t: linear in position, normalised-linear in quaternion (nlerp)
    between the two bracketing trajectory samples. stamps: (M,) increasing seconds."""
    i = int(np.searchsorted(stamps, t))
    if i == 0:
        return poses[0].copy()
    if i >= len(stamps):
        return poses[-1].copy()
    t0, t1 = stamps[i - 1], stamps[i]
    a = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
    p0, q0 = pose_to_xyz_quat_xyzw(poses[i - 1])
    p1, q1 = pose_to_xyz_quat_xyzw(poses[i])
    q0, q1 = np.asarray(q0, float), np.asarray(q1, float)
    if np.dot(q0, q1) < 0:
        q1 = -q1
    q = (1 - a) * q0 + a * q1
    return pose_from_xyz_quat_xyzw((1 - a) * np.asarray(p0) + a * np.asarray(p1),
                                   q / np.linalg.norm(q))
