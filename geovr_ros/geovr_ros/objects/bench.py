"""`python -m geovr_ros.objects.bench`: the object map's cost per frame and per answer.

A map of `--objects` instances (in `--keyframes` keyframes, each instance holding the
maximum of 32 observations, z up: each fits its footprint box) is built from synthetic
observations, and its room footprint from
`--keyframes` 256x192 depth frames around a box room; then timed (median of `--repeats`):
an observation's footprint reaches from 2048 points, fusing one frame of `--per-frame`
observations, counting the frame against the instances it
did not name (`note_missed`), a keyframe's depth into the room footprint, the floor outline
afresh (the first room question after a keyframe), `instances()` afresh and unchanged,
each answer kind through
`ObjectAnswerer` (VSI-Bench's eight, where-is, one never seen), and `relocate()` of every
keyframe.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from geovr_ros.memory import SpatialMemory
from geovr_ros.objects.footprint import footprint_reach
from geovr_ros.objects.mapper import map_config_of
from geovr_ros.objects.object_map import ObjectMap
from geovr_ros.objects.observations import ObjectObservation
from geovr_ros.objects.queries import ObjectAnswerer
from geovr_ros.objects.vocabulary import load_vocabulary

QUESTIONS = ('How many chairs are there?', 'How far is the chair from the table?',
             'How long is the longest side of the sofa in centimetres?', 'Where is the plant?',
             'Which did you see first, the sofa or the table?', 'Where is the piano?',
             'How big is this room?', 'Which of these is closest to the sofa: the chair, the lamp, the monitor?',
             'If I am standing by the sofa and facing the table, is the lamp to my left, right, or back?',
             'You are a robot beginning at the sofa facing the table. 1. Go forward until the table '
             '2. [please fill in] 3. Go forward until the lamp 4. [please fill in] 5. Go forward until the plant. '
             'Options: A. Turn Left, Turn Right B. Turn Back, Turn Left C. Turn Right, Turn Right',
             'Is the lamp closer to me than the chair?', 'Is the sofa bigger than the table?',
             'What is on the table?', 'Is the chair between the sofa and the table?',
             'How far is the lamp on the table from the sofa?', 'Where is the chair next to the table?',
             'What is under the table?', 'Which is the biggest object?', 'What is the closest object to me?',
             'What is in front of me?', 'When did you last see the plant?')


_CUBE = np.array([[x, y, z] for x in (-0.25, 0.25) for y in (-0.25, 0.25) for z in (-0.25, 0.25)])


FLOOR_Z = -1.5   # the floor the frames saw, under every cube (the standing ones reach down to it)


def cube_observation(category: str, centre: np.ndarray, keyframe: int, stamp: float) -> ObjectObservation:
    """An observation of a 0.5 m cube at `centre` (z up) over the floor, with its footprint reaches."""
    low, high = footprint_reach(centre + _CUBE, centre, 2, (0.0, 100.0))
    return ObjectObservation(category, 0.8, centre, centre - 0.25, centre + 0.25, keyframe, centre, stamp,
                             np.zeros(0, int), 100, reach_low=low, reach_high=high, floor=FLOOR_Z)


def synthetic_map(n_objects: int, n_keyframes: int, rng: np.random.Generator) -> ObjectMap:
    categories = ['chair', 'table', 'sofa', 'plant', 'monitor', 'lamp', 'cabinet', 'bottle']
    centres = rng.uniform(-10, 10, (n_objects, 3)) * [1, 1, 0.1]
    m = ObjectMap(map_config_of(load_vocabulary(), vertical_axis=2))   # the runtime's
    for t in range(32):
        m.add([cube_observation(categories[i % len(categories)], c + rng.normal(0, 0.03, 3), int(t % n_keyframes),
                                float(t)) for i, c in enumerate(centres)])
    return m


def _level_view(yaw: float) -> np.ndarray:
    """Optical camera pose at 1.4 m looking along yaw (radians) in a z-up world."""
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    T = np.eye(4)
    T[:3, :3] = np.stack([right, [0.0, 0.0, -1.0], forward], axis=1)
    T[2, 3] = 1.4
    return T


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m geovr_ros.objects.bench', description=__doc__.splitlines()[0])
    parser.add_argument('--objects', type=int, default=50)
    parser.add_argument('--keyframes', type=int, default=16)
    parser.add_argument('--per-frame', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=50)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    m = synthetic_map(args.objects, args.keyframes, rng)
    K = np.array([[200.0, 0.0, 127.5], [0.0, 200.0, 95.5], [0.0, 0.0, 1.0]])
    up = np.array([0.0, 0.0, 1.0])
    depth = np.full((192, 256), 3.0)
    views = [_level_view(2 * np.pi * k / args.keyframes) for k in range(args.keyframes)]
    for k, T in enumerate(views):
        m.room.add(k, depth, K, T)
    answerer = ObjectAnswerer(m, load_vocabulary(), up=up)
    memory = SpatialMemory()
    memory.record_pose(0.0, np.eye(4))
    snapshot = memory.snapshot()
    existing = m.instances(min_views=1)
    frame = [cube_observation(i.category, i.centroid, 0, 99.0) for i in existing[:args.per_frame]]
    print(f'{len(m)} instances, {args.keyframes} keyframes, 32 observations each')
    points = rng.normal(0.0, 0.3, (2048, 3))
    ms = _median_ms(lambda: footprint_reach(points, np.zeros(3), 2, (5.0, 95.0)), args.repeats)
    print(f'footprint reaches of one observation (2048 points, thinned to 512): {ms:.2f} ms')
    print(f'add one frame of {len(frame)} observations: {_median_ms(lambda: m.add(frame), args.repeats):.2f} ms')
    stamps = iter(range(10 ** 9))   # a new frame each call: every instance in view is counted
    named = [i.instance_id for i in existing[:args.per_frame]]
    ms = _median_ms(lambda: m.note_missed(named, depth, K, np.eye(4), 1000.0 + next(stamps)), args.repeats)
    print(f'note_missed, {len(existing) - len(named)} instances not named: {ms:.2f} ms')
    print(f'room footprint: one keyframe\'s depth {_median_ms(lambda: m.room.add(0, depth, K, views[0]), args.repeats):.2f} ms')
    m.room.clear()
    for k, T in enumerate(views):
        m.room.add(k, depth, K, T)

    def outline_afresh():
        m.room.relocate({0: views[0]})   # any change drops the cached outline
        return m.room.outline(up)
    print(f'room footprint: the floor outline of {len(m.room)} keyframes afresh {_median_ms(outline_afresh, args.repeats):.2f} ms')

    def instances_afresh():
        m.config = m.config   # new rules: every instance summarised and judged again
        return m.instances()
    print(f'instances() under new rules, every instance summarised again and judged by the shipped verifier: '
          f'{_median_ms(instances_afresh, args.repeats):.2f} ms')
    print(f'add one frame, then instances() (its instances summarised again, every instance judged): '
          f'{_median_ms(lambda: (m.add(frame), m.instances()), args.repeats):.2f} ms')
    print(f'instances() again, the map unchanged (beliefs cached): {_median_ms(m.instances, args.repeats):.2f} ms')
    poses = {k: np.eye(4) for k in range(args.keyframes)}
    print(f'relocate({args.keyframes} keyframes): {_median_ms(lambda: m.relocate(poses), args.repeats):.2f} ms')
    for question in QUESTIONS:
        ms = _median_ms(lambda: answerer.answer(question, snapshot, 0.0), args.repeats)
        print(f'answer {question!r}: {ms:.2f} ms')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
