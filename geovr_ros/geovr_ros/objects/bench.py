"""`python -m geovr_ros.objects.bench`: the object map's cost per frame and per answer.

A map of `--objects` instances (in `--keyframes` keyframes, each instance holding the
maximum of 32 observations) is built from synthetic observations; then timed (median of
`--repeats`): fusing one frame of `--per-frame` observations, counting the frame against
the instances it did not name (`note_missed`, on a 256x192 depth image), `instances()`, each
answer kind through `ObjectAnswerer`, and `relocate()` of every keyframe.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from geovr_ros.memory import SpatialMemory
from geovr_ros.objects.object_map import ObjectMap
from geovr_ros.objects.observations import ObjectObservation
from geovr_ros.objects.queries import ObjectAnswerer
from geovr_ros.objects.vocabulary import load_vocabulary

QUESTIONS = ('How many chairs are there?', 'How far is the chair from the table?',
             'How long is the longest side of the sofa in centimetres?', 'Where is the plant?',
             'Which did you see first, the sofa or the table?', 'Where is the piano?')


def synthetic_map(n_objects: int, n_keyframes: int, rng: np.random.Generator) -> ObjectMap:
    categories = ['chair', 'table', 'sofa', 'plant', 'monitor', 'lamp', 'cabinet', 'bottle']
    centres = rng.uniform(-10, 10, (n_objects, 3)) * [1, 1, 0.1]
    m = ObjectMap()
    for t in range(32):
        frame = []
        for i, c in enumerate(centres):
            p = c + rng.normal(0, 0.03, 3)
            frame.append(ObjectObservation(categories[i % len(categories)], 0.8, p, p - 0.25, p + 0.25,
                                           int(t % n_keyframes), p, float(t), np.zeros(0, int), 100))
        m.add(frame)
    return m


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
    answerer = ObjectAnswerer(m, load_vocabulary())
    memory = SpatialMemory()
    memory.record_pose(0.0, np.eye(4))
    snapshot = memory.snapshot()
    existing = m.instances(min_views=1)
    frame = [ObjectObservation(i.category, 0.8, i.centroid, i.box_min, i.box_max, 0, i.centroid, 99.0,
                               np.zeros(0, int), 100) for i in existing[:args.per_frame]]
    print(f'{len(m)} instances, {args.keyframes} keyframes, 32 observations each')
    print(f'add one frame of {len(frame)} observations: {_median_ms(lambda: m.add(frame), args.repeats):.2f} ms')
    depth = np.full((192, 256), 3.0)
    K = np.array([[200.0, 0.0, 127.5], [0.0, 200.0, 95.5], [0.0, 0.0, 1.0]])
    stamps = iter(range(10 ** 9))   # a new frame each call: every instance in view is counted
    named = [i.instance_id for i in existing[:args.per_frame]]
    ms = _median_ms(lambda: m.note_missed(named, depth, K, np.eye(4), 1000.0 + next(stamps)), args.repeats)
    print(f'note_missed, {len(existing) - len(named)} instances not named: {ms:.2f} ms')
    print(f'instances(): {_median_ms(m.instances, args.repeats):.2f} ms')
    poses = {k: np.eye(4) for k in range(args.keyframes)}
    print(f'relocate({args.keyframes} keyframes): {_median_ms(lambda: m.relocate(poses), args.repeats):.2f} ms')
    for question in QUESTIONS:
        ms = _median_ms(lambda: answerer.answer(question, snapshot, 0.0), args.repeats)
        print(f'answer {question!r}: {ms:.2f} ms')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
