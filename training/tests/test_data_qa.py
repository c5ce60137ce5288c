"""Every QA answer recomputed independently from the scene boxes and camera poses."""

import math
from collections import Counter

import numpy as np

from geovr_training.data.qa import TASKS, TEMPLATES


def _label(o):
    return f'{o.colour} {o.category}'


def _angle_left_positive(fwd, vec):
    """Degrees from fwd to vec in the x-y plane, counter-clockwise (z up: left) positive."""
    a = math.degrees(math.atan2(vec[1], vec[0]) - math.atan2(fwd[1], fwd[0]))
    return (a + 180) % 360 - 180


def _check_item(item, seq):
    scene = seq.scene
    objs = {o.instance_id: o for o in scene.objects}
    used = [objs[i] for i in item['objects']]
    label_counts = Counter(_label(o) for o in scene.objects)
    ans = item['answer']
    task = item['task']
    for o in used:
        assert o.first_seen is not None and o.first_seen <= item['until_frame']
        if task not in ('object_count', 'appearance_order'):
            assert label_counts[_label(o)] == 1, f'ambiguous object {_label(o)} in {item["question"]}'
            assert _label(o) in item['question']
    if task == 'object_count':
        n = sum(1 for o in scene.objects if o.category == item['category'] and o.first_seen is not None)
        assert ans['value'] == n and ans['unit'] == 'count'
    elif task == 'abs_distance':
        a, b = used
        assert math.isclose(ans['value'], math.dist(a.centre, b.centre), rel_tol=1e-9) and ans['unit'] == 'm'
    elif task == 'object_size':
        assert math.isclose(ans['value'], 100 * max(used[0].size), rel_tol=1e-9) and ans['unit'] == 'cm'
    elif task == 'room_size':
        w, d, _ = scene.room_size
        assert math.isclose(ans['value'], w * d, rel_tol=1e-9) and ans['unit'] == 'm^2'
    elif task == 'rel_distance':
        target, options = used[0], used[1:]
        assert ans['choices'] == [_label(o) for o in options]
        dists = [math.dist(o.centre, target.centre) for o in options]
        assert ans['index'] == int(np.argmin(dists))
        assert sorted(dists)[1] - min(dists) >= 0.2
    elif task == 'rel_direction':
        a, b, c = used
        angle = _angle_left_positive(b.centre[:2] - a.centre[:2], c.centre[:2] - a.centre[:2])
        word = ans['choices'][ans['index']]
        if word == 'left':
            assert angle > 0
        elif word == 'right':
            assert angle < 0
        elif word == 'back':
            assert abs(angle) > 135
        else:
            front, side = word.split('-')
            assert (abs(angle) < 90) == (front == 'front') and (angle > 0) == (side == 'left')
        if item['scheme'] == 'left_right_back' and word in ('left', 'right'):
            assert 45 < abs(angle) < 135
    elif task == 'route_plan':
        xy = [o.centre[:2] for o in used]
        turns = []
        for k in range(2):
            angle = _angle_left_positive(xy[k + 1] - xy[k], xy[k + 2] - xy[k + 1])
            turns.append('turn back' if abs(angle) > 150 else 'turn left' if angle > 0 else 'turn right')
            assert abs(angle) > 30
        assert ans['choices'][ans['index']] == ', '.join(turns)
        assert len(set(ans['choices'])) == len(ans['choices'])
    elif task == 'appearance_order':
        first = {}
        for o in scene.objects:
            if o.first_seen is not None:
                first[o.category] = min(first.get(o.category, 10 ** 9), o.first_seen)
        order = sorted(item['categories'], key=lambda c: first[c])
        assert ans['choices'][ans['index']] == ', '.join(order)
        assert len({first[c] for c in item['categories']}) == len(item['categories'])
        # objects in role order: one per listed category, the instance that appeared first
        assert [o.category for o in used] == item['categories']
        assert [o.first_seen for o in used] == [first[c] for c in item['categories']]
    elif task == 'where_is':
        np.testing.assert_allclose(ans['value'], used[0].centre)
        assert ans['frame'] == 'world'
    elif task == 'situated_localization':
        T = seq.T_world_cam[item['frame']]
        np.testing.assert_allclose(ans['position'], T[:3, 3])
        optical_axis = T[:3, 2]
        assert math.isclose(ans['heading'], math.atan2(optical_axis[1], optical_axis[0]), abs_tol=1e-9)
        fwd = optical_axis[:2]
        a, b = used
        assert abs(_angle_left_positive(fwd, a.centre[:2] - T[:2, 3])) < 15
        side = _angle_left_positive(fwd, b.centre[:2] - T[:2, 3])
        assert 60 < abs(side) < 120 and (side > 0) == (item['side'] == 'left')
        assert item['side'] in item['question']
    else:
        raise AssertionError(f'unknown task {task}')
    if ans['type'] == 'choice':
        assert 0 <= ans['index'] < len(ans['choices'])


def test_every_answer_matches_an_independent_recomputation(rendered_sequences):
    tasks = Counter()
    for seq in rendered_sequences:
        assert seq.qa, seq.name
        for item in seq.qa:
            _check_item(item, seq)
            tasks[item['task']] += 1
    assert len(tasks) >= 8, tasks


class _Seq:
    def __init__(self, scene, poses):
        self.scene, self.T_world_cam = scene, poses

    def __len__(self):
        return len(self.T_world_cam)


def _synthetic(seed):
    """A scene graph of 14 objects with first-seen frames and a turning camera (no rendering)."""
    from geovr_training.data.scene import COLOURS
    from geovr_training.data.trajectory import camera_pose
    from geovr_training.data.types import SceneGraph, SceneObject
    rng = np.random.default_rng(seed)
    colours = list(COLOURS)
    cats = ['chair', 'chair', 'chair', 'table', 'lamp', 'ball', 'sofa', 'tv', 'box', 'bed', 'stool', 'cabinet',
            'trash bin', 'toy duck']
    objects = [SceneObject(i + 1, c, colours[i % len(colours)], np.array([*rng.uniform(-4, 4, 2), 0.4]),
                           rng.uniform(0.2, 2.0, 3), float(rng.uniform(-3, 3)), first_seen=int(2 * i))
               for i, c in enumerate(cats)]
    objects[-1].first_seen = None  # never seen: must never be asked about
    poses = np.stack([camera_pose(np.array([0.3, -0.2, 1.4]), yaw=k * 0.2, pitch=0.1) for k in range(32)])
    return _Seq(SceneGraph(np.array([9.0, 9.0, 3.0]), objects), poses)


def test_all_ten_tasks_on_synthetic_scene_graphs():
    from geovr_training.data.qa import generate_qa
    tasks = Counter()
    for seed in range(6):
        seq = _synthetic(seed)
        seq.qa = generate_qa(seq.scene, seq.T_world_cam, np.random.default_rng(seed), 60)
        for item in seq.qa:
            _check_item(item, seq)
            assert 14 not in item['objects']
            tasks[item['task']] += 1
    assert set(tasks) == set(TASKS), tasks


def test_templates_and_splits():
    for task in TASKS:
        train, heldout = TEMPLATES[task]['train'], TEMPLATES[task]['heldout']
        assert len(train) >= 2 and len(heldout) >= 1 and not set(train) & set(heldout)


def test_the_runtime_scope_check_keeps_every_template_and_item_in_its_task():
    # geovr_ros bounds a question's category by its words; no generated wording may fall outside
    from geovr_ros.language.text import plausible_categories
    from geovr_training.data.qa import generate_qa
    fill = dict(plural='chairs', a='red chair', b='blue table', c='green lamp', d='white sofa',
                options='left or right or back', categories='chair, table, lamp', side='left')
    for task in TASKS:
        for template in TEMPLATES[task]['train'] + TEMPLATES[task]['heldout']:
            assert task in plausible_categories(template.format(**fill), list(TASKS)), template
    items = []
    for seed in range(6):
        seq = _synthetic(seed)
        items += generate_qa(seq.scene, seq.T_world_cam, np.random.default_rng(seed), 60)
    assert {item['task'] for item in items} == set(TASKS)
    outside = [item['question'] for item in items
               if item['task'] not in plausible_categories(item['question'], list(TASKS))]
    assert not outside, outside[:3]


def test_the_object_map_reads_every_wording_of_its_tasks():
    """Every template of the tasks the object map answers (VSI-Bench's eight and where-is)
    parses to its task, objects and unit, or roles and options (the held-out wordings too:
    'how many centimeters does it measure' is a size)."""
    from geovr_ros.objects import load_vocabulary, parse_object_question
    from geovr_training.data.qa import generate_qa
    vocab = load_vocabulary()
    fill = dict(plural='boxes', a='red chair', b='blue table', categories='chair, table, lamp, sofa',
                options='(A) chair, table, lamp, sofa; (B) sofa, lamp, table, chair')
    expected = {'object_count': ('box',), 'abs_distance': ('chair', 'table'), 'object_size': ('chair',),
                'where_is': ('chair',), 'appearance_order': ('chair', 'table', 'lamp', 'sofa')}
    for task, categories in expected.items():
        for template in TEMPLATES[task]['train'] + TEMPLATES[task]['heldout']:
            q = parse_object_question(template.format(**fill), vocab)
            assert q is not None and (q.task, q.categories) == (task, categories), template
            assert q.unit == ('cm' if task == 'object_size' else 'm'), template
            assert len(q.options) == (2 if task == 'appearance_order' else 0), template
    relations = {   # task: (fill, roles, options)
        'room_size': ({}, (), ()),
        'rel_distance': ({'a': 'red chair', 'options': 'blue table, green lamp, white sofa'}, ('chair',),
                         (('table', 'blue'), ('lamp', 'green'), ('sofa', 'white'))),
        'rel_direction': ({'a': 'red chair', 'b': 'blue table', 'c': 'green lamp', 'options': 'left or right or back'},
                          ('chair', 'table', 'lamp'), (('left',), ('right',), ('back',))),
        'route_plan': ({'a': 'red chair', 'b': 'blue table', 'c': 'green lamp', 'd': 'white sofa',
                        'options': '(A) turn left, turn right; (B) turn back, turn left; (C) turn right, turn back'},
                       ('chair', 'table', 'lamp', 'sofa'),
                       (('turn left', 'turn right'), ('turn back', 'turn left'), ('turn right', 'turn back')))}
    for task, (values, roles, options) in relations.items():
        for template in TEMPLATES[task]['train'] + TEMPLATES[task]['heldout']:
            q = parse_object_question(template.format(**values), vocab)
            assert q is not None and (q.task, q.roles, q.options) == (task, roles, options), template
            assert q.role_colours == tuple(values[k].split()[0] for k in 'abcd'[:len(roles)]), template
    scenes = [(_synthetic(seed), seed) for seed in range(6)]
    counts = [item['question'] for seq, seed in scenes
              for item in generate_qa(seq.scene, seq.T_world_cam, np.random.default_rng(seed), 60)
              if item['task'] == 'object_count']
    assert counts and not [q for q in counts if '(s)' in q or 'boxs' in q], counts


def test_items_carry_their_wording_split_and_frames(rendered_sequences):
    splits = Counter()
    for seq in rendered_sequences:
        for item in seq.qa:
            templates = TEMPLATES[item['task']][item['template_split']]
            assert 0 <= item['template_id'] < len(templates)
            assert 0 <= item['until_frame'] < len(seq)
            assert item['frames'] == sorted(set(item['frames'])) and max(item['frames'], default=0) <= item['until_frame']
            splits[item['template_split']] += 1
        assert len({q['question'] for q in seq.qa}) == len(seq.qa)
    assert splits['train'] > splits['heldout'] > 0
