"""Answering spatial questions from memory.

`QuestionAnswerer` is the interface the node calls. A language-model answerer (a later
component) implements it; until one is loaded, `GeometricAnswerer` answers only what the
memory determines exactly without a language model: the camera's own trajectory (where it
is, where it was at a time, how far it travelled, in the last seconds too, how fast, for how
long) and the memory's size. Any
other question gets `success=False` and `NO_MODEL_MESSAGE`; nothing is guessed.

`GeometricAnswerer` answers in the snapshot's trajectory frame (`MemorySnapshot.trajectory_in`
moves it to the frame asked for, sentences included); other answerers answer in `odom` and the
caller converts their points and poses.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from geovr_ros.geometry import (optical_to_body, path_length, pose_from_xyz_quat_xyzw, pose_to_xyz_quat_xyzw,
                               yaw_from_pose)
from geovr_ros.memory.spatial_memory import MemorySnapshot

NO_MODEL_MESSAGE = ('no question model loaded: without one this node answers only questions '
                    'about its own trajectory and memory (where am I, where was I at <t> s, '
                    'where did I start, how far have I travelled, how far am I from the start, '
                    'how fast am I moving, for how long, which way am I facing, how many keyframes)')


@dataclass(frozen=True)
class Answer:
    """One answer. points: (K, 3) metres and pose: 4x4 or None, both in `frame`; stamp:
    seconds of the newest frame the answer was given from (None when no frame is known);
    object_ids: per point, the object map's instance id whose centroid it is (-1: a point that
    is no object's), or () when the answer used no object."""

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
    object_ids: tuple[int, ...] = ()


class QuestionAnswerer(Protocol):
    """Anything that answers a validated question from a memory snapshot."""

    name: str

    def answer(self, question: str, memory: MemorySnapshot, now: float) -> Answer:
        """`now` is the node's clock in seconds (for questions such as '5 s ago')."""
        ...


_NUMBER_WORDS = {'a': 1, 'an': 1, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6, 'seven': 7,
                 'eight': 8, 'nine': 9, 'ten': 10, 'eleven': 11, 'twelve': 12, 'fifteen': 15, 'twenty': 20,
                 'thirty': 30, 'forty': 40, 'forty-five': 45, 'fifty': 50, 'sixty': 60, 'ninety': 90}
_NUMBER = r'([-+]?\d+(?:\.\d+)?|' + '|'.join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + ')'
_SECONDS = {'s': 1.0, 'sec': 1.0, 'secs': 1.0, 'second': 1.0, 'seconds': 1.0,
            'min': 60.0, 'mins': 60.0, 'minute': 60.0, 'minutes': 60.0}
_WHO = r'(i|we|you|the camera|the robot)'
_MOVED = (r'(travel+ed|travel|move|moved|go|gone|walk|walked|come|driven|drive|drove|covered|cover|flown|fly'
          r'|flew)')
_START = r'(?:the start(?:ing point)?|(?:my|our|your|its) start(?:ing point)?|where (?:i|we|you|it) started)'
_UNITS = '|'.join(sorted(_SECONDS, key=len, reverse=True))
SPEED_WINDOW_S = 1.0     # the current speed: the straight way over the last second of the trajectory
MOVING_SPEED_M_S = 0.05  # slower than this is standing still (tracking jitter is a few cm a second)


class GeometricAnswerer:
    """Answers trajectory and memory-size questions exactly; declines everything else.
    Positions, poses and their sentences are in the snapshot's `trajectory_frame`."""

    name = 'geometric'

    _PATTERNS = (
        ('count', re.compile(r'\bhow many (key ?frames|places|memories)\b')),
        ('speed', re.compile(r'\bhow fast\b|\bspeed\b|\bvelocity\b|\b(am|are|is) ' + _WHO + r' (still )?moving\b')),
        ('recent', re.compile(r'\b(?:how far|how many (?:m|meters|metres)|(?:what|how much) distance|how much) '
                              r'(have|has|did) ' + _WHO + r' (been )?' + _MOVED + r'\b.*?\b(?:in|over|during|within) '
                              r'the (?:last|past|previous) (?:' + _NUMBER + r'\s*)?(' + _UNITS + r')\b')),
        ('from_start', re.compile(r'\bhow far (am|are|is) ' + _WHO + r' (now )?(from|away from) ' + _START
                                  + r'|\b(distance|how far) (from|to) ' + _START + r'\b')),
        ('distance', re.compile(r'\b(?:how far|how many (?:m|meters|metres)|(?:what|how much) (?:total )?distance'
                                r'|how much) (have|has|did) ' + _WHO + r' (been )?' + _MOVED + r'\b'
                                r'|\b(?:total|overall) distance (?:travel+ed|covered|moved|walked|driven)\b'
                                r'|^\s*(?:the )?distance (?:so far )?(?:travel+ed|covered|moved|walked|driven)\b')),
        ('duration', re.compile(r'\bhow long (have|has|did) ' + _WHO + r' (been )?'
                                r'(running|moving|move|walking|walk|travel+ing|travel+ed|travel|recording|record|run'
                                r'|driving|drive|going|go|flying|fly)\b'
                                r'|\bhow long ago did ' + _WHO + r' (start|begin|set off)\b'
                                r'|\bhow (long|much time) (has it been|has passed|since (i|we|you|it) started)\b')),
        ('start', re.compile(r'\bwhere (did|do) ' + _WHO + r' (start|begin|set off|start off)\b'
                             r'|\bwhere (was|were) ' + _WHO + r' at the (start|beginning)\b'
                             r"|\bwhere(?:'s| is| was) (?:my|our|your|the) start(?:ing point)?\b"
                             r'|\bwhat (?:was|is) (?:my|our|your|the camera\'s|the robot\'s) (?:position|location|pose) '
                             r'at the (?:start|beginning)\b'
                             r'|\b(?:my|our|your) (?:starting|start) (?:position|location|pose)\b')),
        ('ago', re.compile(r'\bwhere (was|were) ' + _WHO + r'\b.*?' + _NUMBER + r'\s*(' + _UNITS + r')\s+ago\b')),
        ('at_time', re.compile(r'\bwhere (was|were) ' + _WHO + r'\b.*?'
                               r'(?:at|t\s*=)\s*(?:t\s*=\s*)?(?:time\s+)?([-+]?\d+(?:\.\d+)?)')),
        ('heading', re.compile(r"^\s*what(?:'s| is) (?:my|our|your|the camera's|the robot's) (?:current )?heading\b"
                               r'|\b(which|what) (way|direction) (am|are|is) ' + _WHO
                               + r' (facing|heading|looking|pointing|pointed)\b')),
        # Only the bare question: a situated one ("I am facing the sofa and the lamp is on
        # my left; where am I?") is localization from a description, for the question model.
        ('now', re.compile(r'^\s*where (am i|are we|are you|is the camera|is the robot)'
                           r'(\s+(now|right now|currently))?\s*[?.!]*\s*$'
                           r"|^\s*what(?:'s| is) (?:my|our|your|the camera's|the robot's) (?:current )?"
                           r'(?:position|location|pose)(?:\s+(?:now|right now))?\s*[?.!]*\s*$')),
    )

    def answer(self, question: str, memory: MemorySnapshot, now: float) -> Answer:
        text = re.sub(r"\bwhere's\b", 'where is', ' '.join(question.lower().replace('\u2019', "'").split()))
        for kind, pattern in self._PATTERNS:
            match = pattern.search(text)
            if match:
                return getattr(self, f'_{kind}')(match, memory, now)
        return Answer(False, NO_MODEL_MESSAGE)

    def _count(self, match, memory, now):
        n = len(memory.entries)
        return Answer(True, 'ok', f'{n} keyframes are in memory '
                      f'({memory.keyframes_added} added, {memory.keyframes_evicted} evicted)',
                      'count', float(n), 'keyframes', confidence=1.0, frame=memory.trajectory_frame)

    def _distance(self, match, memory, now):
        if memory.trajectory_stamps.size == 0:
            return _no_trajectory()
        d = memory.distance_travelled
        counted = f' (counted in {memory.path_resolution:g} m steps)' if memory.path_resolution > 0 else ''
        return Answer(True, 'ok', f'{d:.2f} m travelled along the camera trajectory{counted}',
                      'distance', d, 'm', points=memory.trajectory_xyz[-1:].copy(),
                      confidence=1.0, frame=memory.trajectory_frame)

    def _recent(self, match, memory, now):
        """The way along the trajectory in the last N seconds or minutes (N 1 when not said:
        "in the last minute")."""
        stamps = memory.trajectory_stamps
        if stamps.size == 0:
            return _no_trajectory()
        amount, unit = match.groups()[-2:]   # the pattern's last two groups
        amount = amount or 'one'
        window = (float(_NUMBER_WORDS[amount]) if amount in _NUMBER_WORDS else float(amount)) * _SECONDS[unit]
        if not window > 0:
            return Answer(False, f'the time span must be positive, got {window:g} s')
        since, note = now - window, ''
        if since >= stamps[-1]:
            return Answer(False, f'no frame processed in the last {window:g} s (the newest is '
                                 f'{now - float(stamps[-1]):.3g} s old)')
        started = _started(memory)
        if since < started:   # odometry began within the span: all of its way
            since, note = started, f', all since odometry started at t={started:.3f} s'
        if since < stamps[0]:
            return Answer(False, f'the remembered trajectory starts at t={stamps[0]:.3f} s (older poses were '
                                 f'dropped), after the {window:g} s asked about began (t={since:.3f} s)')
        inside = stamps >= since
        positions = np.concatenate([interpolate_pose(stamps, memory.trajectory_poses, since)[None, :3, 3],
                                    memory.trajectory_xyz[inside]])
        d = path_length(positions, memory.path_resolution)
        return Answer(True, 'ok', f'{d:.2f} m travelled in the last {window:g} s (since t={since:.3f} s{note}; '
                      f'counted in {memory.path_resolution:g} m steps)', 'distance', d, 'm',
                      points=positions[[0, -1]].copy(), confidence=1.0, frame=memory.trajectory_frame)

    def _speed(self, match, memory, now):
        """The current speed (the straight way over the last SPEED_WINDOW_S of the trajectory),
        or the average one (the distance travelled over the time) when asked; "am I moving?"
        is yes from MOVING_SPEED_M_S."""
        stamps = memory.trajectory_stamps
        if stamps.size < 2:
            return Answer(False, 'no speed yet: fewer than two frames processed')
        text = match.string
        if re.search(r'\b(average|mean|overall)\b', text):
            span = float(stamps[-1]) - _started(memory)
            if span <= 0:
                return Answer(False, 'no speed yet: the trajectory spans no time')
            v = memory.distance_travelled / span
            return Answer(True, 'ok', f'{v:.2f} m/s on average: {memory.distance_travelled:.2f} m in {span:.2f} s',
                          'speed', v, 'm/s', points=memory.trajectory_xyz[-1:].copy(), confidence=1.0,
                          frame=memory.trajectory_frame)
        since = max(float(stamps[0]), float(stamps[-1]) - SPEED_WINDOW_S)
        before = interpolate_pose(stamps, memory.trajectory_poses, since)[:3, 3]
        span = float(stamps[-1]) - since
        v = float(np.linalg.norm(memory.trajectory_xyz[-1] - before)) / span if span > 0 else 0.0
        said = f'{v:.2f} m/s over the last {span:.2f} s of the trajectory (to t={float(stamps[-1]):.3f} s)'
        if match.group(1):   # "am I moving?"
            moving = v >= MOVING_SPEED_M_S
            said = (f'yes: {said}' if moving else
                    f'no: {said} (below {MOVING_SPEED_M_S:g} m/s, which tracking jitter alone can reach)')
        return Answer(True, 'ok', said, 'speed', v, 'm/s', points=np.stack([before, memory.trajectory_xyz[-1]]),
                      confidence=1.0, frame=memory.trajectory_frame)

    def _from_start(self, match, memory, now):
        if memory.start_pose is None or memory.trajectory_stamps.size == 0:
            return _no_trajectory()
        start, here = memory.start_pose[:3, 3], memory.trajectory_xyz[-1]
        d = float(np.linalg.norm(here - start))
        return Answer(True, 'ok', f'{d:.2f} m in a straight line from where the camera started '
                      f'({_xyz(start)} at t={memory.start_stamp:.3f} s; now {_xyz(here)} in '
                      f'{memory.trajectory_frame}); {memory.distance_travelled:.2f} m along the way',
                      'distance', d, 'm', points=np.stack([start, here]), confidence=1.0,
                      frame=memory.trajectory_frame)

    def _duration(self, match, memory, now):
        stamps = memory.trajectory_stamps
        if stamps.size == 0:
            return _no_trajectory()
        span = float(stamps[-1]) - _started(memory)
        return Answer(True, 'ok', f'{span:.2f} s of trajectory since odometry started',
                      'duration', span, 's', confidence=1.0, frame=memory.trajectory_frame)

    def _start(self, match, memory, now):
        if memory.start_pose is None:
            return _no_trajectory()
        return _pose_answer(memory.start_pose, memory.start_stamp, memory.trajectory_frame, said='started')

    def _heading(self, match, memory, now):
        if memory.trajectory_stamps.size == 0:
            return _no_trajectory()
        T = memory.trajectory_poses[-1]
        yaw = float(yaw_from_pose(optical_to_body(T)))
        sentence = (f'the camera faces {round(float(np.degrees(yaw)))} deg from the x axis of '
                    f'{memory.trajectory_frame} towards its y axis, seen from above (its z axis up)')
        if memory.start_pose is not None:
            turned = float(np.angle(np.exp(1j * (yaw - yaw_from_pose(optical_to_body(memory.start_pose))))))
            side = 'left' if turned > 0 else 'right'
            sentence += (f'; {abs(np.degrees(turned)):.0f} deg to the {side} of its heading at the start'
                         if abs(np.degrees(turned)) >= 0.5 else '; the heading it started with')
        return Answer(True, 'ok', sentence, 'heading', yaw, 'rad', points=T[None, :3, 3].copy(), pose=T.copy(),
                      confidence=1.0, frame=memory.trajectory_frame)

    def _now(self, match, memory, now):
        if memory.trajectory_stamps.size == 0:
            return _no_trajectory()
        return _pose_answer(memory.trajectory_poses[-1], float(memory.trajectory_stamps[-1]),
                            memory.trajectory_frame, said='now')

    def _ago(self, match, memory, now):
        amount = match.group(3)
        amount = float(_NUMBER_WORDS[amount]) if amount in _NUMBER_WORDS else float(amount)
        return self._at(memory, now - amount * _SECONDS[match.group(4)])

    def _at_time(self, match, memory, now):
        return self._at(memory, float(match.group(3)))

    def _at(self, memory, t):
        stamps = memory.trajectory_stamps
        if stamps.size == 0:
            return _no_trajectory()
        if t < stamps[0] or t > stamps[-1]:
            return Answer(False, f'time {t:.3f} s is outside the remembered trajectory '
                                 f'[{stamps[0]:.3f}, {stamps[-1]:.3f}] s')
        return _pose_answer(interpolate_pose(stamps, memory.trajectory_poses, t), t, memory.trajectory_frame)


def _started(memory: MemorySnapshot) -> float:
    """Seconds: when odometry began (the first pose since the last reset, kept when the bounded
    trajectory drops it; the oldest kept pose's stamp for a snapshot without it)."""
    return float(memory.start_stamp) if np.isfinite(memory.start_stamp) else float(memory.trajectory_stamps[0])


def _no_trajectory() -> Answer:
    return Answer(False, 'no trajectory yet: no frame has been processed')


def centimetres(value: float) -> str:
    """A coordinate in metres to centimetre precision for an answer's text: '0.00', never
    '-0.00' (a pose at the origin of its frame comes out of a transform as -1e-17)."""
    return f'{round(float(value), 2) + 0.0:.2f}'


def _xyz(p: np.ndarray) -> str:
    return f'x={centimetres(p[0])} m, y={centimetres(p[1])} m, z={centimetres(p[2])} m'


def _pose_answer(T: np.ndarray, t: float, frame: str, said: str = 'was') -> Answer:
    """The camera's pose T (4, 4, in `frame`) at t seconds, in words ('now': the last frame,
    'started': the first); value: its distance from the frame's origin (m)."""
    where = f'{_xyz(T[:3, 3])} in {frame}'
    sentence = {'now': f'the camera is at {where} (last frame, t={t:.3f} s)',
                'started': f'the camera started at {where} (first frame, t={t:.3f} s)'
                }.get(said, f'at t={t:.3f} s the camera was at {where}')
    return Answer(True, 'ok', sentence, 'pose', float(np.linalg.norm(T[:3, 3])), 'm',
                  points=T[None, :3, 3].copy(), pose=T.copy(), confidence=1.0, frame=frame)


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
