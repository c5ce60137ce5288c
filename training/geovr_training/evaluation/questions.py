"""`geovr-eval questions`: a labelled question set on a real recording, asked of the runtime.

    geovr-eval questions --model DIR --data ../shared/data/hololens_office \
        --labels fixtures/hololens_office_questions.yaml --out DIR \
        [--spread tracking_threshold_px=2.5,3,3.5]

The labels file names objects by boxes of pixels in frames of the recording; each object's
true centre is the median of the box's sensor-depth points lifted to the world with the
frame's pose (averaged over its views). The runtime session (`geovr_ros.session.Session`,
what geovr_node runs) processes every frame with the exported model, then each question is
put to it; its answer's points are placed in the recording's world by the fit of the session's
camera poses onto the true ones (`pose_alignment`: positions and orientations; a fit of the
positions alone turns at random about a camera that looks around from one spot). Scoring (as
the demo's): where-is correct within WHERE_IS_M of the centre, counts exact, distances within
DISTANCE_RELATIVE relative error (and VSI-Bench's mean relative accuracy), an object never
seen must be said so. Beside it,
the question alone: a count of 1, the middle of the walk, the set's median distance, and
"not seen" never said. Writes questions.json (every answer and score, and the session's
object map: each instance's category, centre in the recording's world, box extent along the
map axes in metres, confidence and views), questions.md and questions.png (`plot_answers`: a
top view of the map, the labelled objects and the where-is answers).

Naming (`naming_recall`, every `--naming-step`-th frame): the answers hang on a few keyframes
that name an object, so the set's score moves by several questions when one detection comes or
goes. Beside it, how often the runtime's namer (`Session.naming_logits`: the vocabulary's cells
or windows, with the category head) names each labelled object in the frames that show it: its
centre projects into the image where the sensor's depth agrees with its own
(`visible_pixel`), and a cell within one of that point bears its category. Also: the share of
frames with a cell named after a category the walk lacks (the zero counts and not-seen
questions of the set).

Spread (`--spread NAME=V1,V2,...`): the same code answers the set differently when a session
parameter moves a little (the tracker's threshold moves its keyframes, and with them which
frames name an object), so one run's score is one draw. The whole evaluation once per value,
each in OUT/NAME=VALUE/, and spread.md / spread.json: each value's score, their mean, and the
questions whose verdict changes between values.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

WHERE_IS_M = 1.0
VISIBLE_DEPTH_M = 0.5   # a labelled centre is seen when the sensor's depth at its pixel is this close
NAMING_STEP = 2         # naming measured on every 2nd frame
DISTANCE_RELATIVE = 0.25
TASKS = ('where_is', 'object_count', 'abs_distance', 'not_seen')


class LabelError(ValueError):
    """A labels file that is not a whole question set (names the key)."""


def load_labels(path: str | Path) -> dict:
    """The labels YAML: {'objects': {name: [{'frame': i, 'box': [u0, v0, u1, v1]}]},
    'questions': [{'question', 'task', 'object' | 'objects' | 'value'}]}; LabelError otherwise."""
    import yaml
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise LabelError(f'{path}: not YAML: {error}') from None
    if not isinstance(data, dict) or not isinstance(data.get('objects'), dict) \
            or not isinstance(data.get('questions'), list):
        raise LabelError(f'{path}: needs a mapping `objects` and a list `questions`')
    for name, views in data['objects'].items():
        for view in views or []:
            box = view.get('box') if isinstance(view, dict) else None
            if not isinstance(box, list) or len(box) != 4 or not isinstance(view.get('frame'), int):
                raise LabelError(f'{path}: objects.{name}: each view needs frame (int) and box [u0, v0, u1, v1]')
    for n, q in enumerate(data['questions']):
        if q.get('task') not in TASKS or not q.get('question'):
            raise LabelError(f'{path}: questions[{n}]: task must be one of {TASKS}, with a question')
        for name in ([q['object']] if 'object' in q else []) + list(q.get('objects', [])):
            if name not in data['objects']:
                raise LabelError(f'{path}: questions[{n}] names {name!r}, which objects does not label')
    return data


def object_centres(recording: str | Path, objects: dict) -> dict[str, dict]:
    """{name: {'centre': (3,) world metres, 'views': [per-view medians], 'points': n}} from the
    recording's sensor depth, K and poses."""
    from geovr_ros.geometry import transform_points
    from geovr_ros.recordings import open_recording
    wanted = {view['frame'] for views in objects.values() for view in views}
    frames = {i: f for i, f in enumerate(open_recording(recording, with_depth=True)) if i in wanted}
    out = {}
    for name, views in objects.items():
        medians, count = [], 0
        for view in views:
            if view['frame'] not in frames:
                raise LabelError(f'objects.{name}: frame {view["frame"]} is not in {recording}')
            f = frames[view['frame']]
            u0, v0, u1, v1 = view['box']
            depth = f.depth[v0:v1, u0:u1]
            vv, uu = np.mgrid[v0:v1, u0:u1]
            ok = np.isfinite(depth) & (depth > 0)
            if ok.sum() < 50:
                raise LabelError(f'objects.{name}: frame {view["frame"]} box {view["box"]} has {ok.sum()} depth pixels')
            z = depth[ok]
            cam = np.stack([(uu[ok] - f.K[0, 2]) * z / f.K[0, 0], (vv[ok] - f.K[1, 2]) * z / f.K[1, 1], z], axis=1)
            medians.append(np.median(transform_points(f.T_world_cam, cam), axis=0))
            count += int(ok.sum())
        out[name] = {'centre': np.mean(medians, axis=0), 'views': [m.tolist() for m in medians], 'points': count}
    return out


def run_session(model: str | Path, recording: str | Path, progress: bool = True, vocabulary: str = '',
                assignments: tuple[str, ...] = ()):
    """The runtime session over every frame of `recording`: (session, stamps (N,), T_map_cam
    (N, 4, 4) of the processed frames, their true T_world_cam (N, 4, 4)). `vocabulary`: a
    user object vocabulary YAML (the node's object_vocabulary), '' for the shipped one;
    `assignments`: node parameters the session reads, 'NAME=VALUE' (as `geovr-eval odometry
    --set`)."""
    import dataclasses

    from tqdm import tqdm

    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.recordings import open_recording
    from geovr_ros.session import Session
    from geovr_training.evaluation.odometry import session_config
    config = session_config(list(assignments), objects_enabled=True)
    if vocabulary:
        config = dataclasses.replace(config, object_vocabulary=vocabulary)
    pipeline = PerceptionPipeline(model, backend='onnxruntime')
    session = Session(pipeline, config, mount=np.eye(4))
    stamps, est, gt = [], [], []
    frames = open_recording(recording)
    for f in tqdm(frames, desc='session', disable=not progress, total=len(frames)):
        result = session.process(f.rgb, f.K, f.stamp)
        if result.dropped:
            continue
        stamps.append(f.stamp)
        est.append(result.T_map_cam if result.T_map_cam is not None else result.T_odom_cam)
        gt.append(f.T_world_cam)
    return session, np.asarray(stamps), np.stack(est), np.stack(gt)


def visible_pixel(centre_world: np.ndarray, T_world_cam: np.ndarray, K: np.ndarray, depth: np.ndarray,
                  tolerance_m: float = VISIBLE_DEPTH_M) -> tuple[float, float] | None:
    """The pixel (u, v) of the image (depth's size) where a world point (3,) is seen, or None:
    behind the camera, outside the image, hidden (the sensor's median depth in the 7x7 pixels
    around it differs from the point's by more than `tolerance_m`) or without sensor depth there."""
    from geovr_ros.geometry import invert_pose, transform_points
    x = transform_points(invert_pose(T_world_cam), np.asarray(centre_world, dtype=np.float64)[None])[0]
    if x[2] <= 0.1:
        return None
    u, v = K[0, 0] * x[0] / x[2] + K[0, 2], K[1, 1] * x[1] / x[2] + K[1, 2]
    height, width = depth.shape
    if not (0 <= u < width and 0 <= v < height):
        return None
    patch = depth[max(0, int(v) - 3):int(v) + 4, max(0, int(u) - 3):int(u) + 4]
    patch = patch[np.isfinite(patch) & (patch > 0)]
    if not len(patch) or abs(float(np.median(patch)) - x[2]) > tolerance_m:
        return None
    return float(u), float(v)


def absent_categories(questions: list[dict], vocabulary) -> list[str]:
    """The categories the set says the walk lacks: named by its not-seen questions and its
    counts of zero."""
    names = []
    for q in questions:
        if q['task'] == 'not_seen' or (q['task'] == 'object_count' and q.get('value') == 0):
            names += [name for _, name in vocabulary.find(q['question'])]
    return sorted(set(names))


def naming_recall(session, recording: str | Path, truth: dict, absent: list[str], step: int = NAMING_STEP,
                  progress: bool = True) -> dict:
    """Per labelled object: frames (every `step`-th) that show it (`visible_pixel`) and those of
    them where the session's namer labels a cell within one cell of its pixel with its category;
    and the frames with a cell labelled after an `absent` category. The namer is the runtime's
    (`Session.naming_logits`, its namer's probabilities and the vocabulary's labelling)."""
    from tqdm import tqdm

    from geovr_ros.recordings import open_recording
    namer = session.objects.namer
    vocabulary = namer.vocabulary
    wanted = {name: vocabulary.index(vocabulary.resolve(name)) for name in truth if vocabulary.resolve(name)}
    absent_labels = [vocabulary.index(name) for name in absent]
    shown = dict.fromkeys(wanted, 0)
    named = dict.fromkeys(wanted, 0)
    frames = with_absent = 0
    recording_frames = open_recording(recording, with_depth=True)
    for i, f in enumerate(tqdm(recording_frames, desc='naming', disable=not progress, total=len(recording_frames))):
        if i % step:
            continue
        frame = session.perception.preprocess(f.rgb, f.K)
        logits, categories, pool = session.naming_logits(frame)
        labels, _ = vocabulary.label_cells(namer.probabilities(logits, categories, pool=pool))
        rows, cols = labels.shape
        frames += 1
        with_absent += bool(np.isin(labels, absent_labels).any())
        height, width = f.depth.shape
        for name, label in wanted.items():
            pixel = visible_pixel(truth[name]['centre'], f.T_world_cam, f.K, f.depth)
            if pixel is None:
                continue
            shown[name] += 1
            r, c = int(pixel[1] / height * rows), int(pixel[0] / width * cols)
            named[name] += bool((labels[max(0, r - 1):r + 2, max(0, c - 1):c + 2] == label).any())
    per_object = {name: {'shown': shown[name], 'named': named[name]} for name in wanted}
    recalls = [v['named'] / v['shown'] for v in per_object.values() if v['shown']]
    return {'step': step, 'frames': frames, 'per_object': per_object,
            'mean_recall': float(np.mean(recalls)) if recalls else None,
            'absent': absent, 'frames_naming_absent': with_absent / frames if frames else None}


def score(question: dict, answer, truth: dict, T_world_map: np.ndarray) -> dict:
    """Verdict of one answer (`geovr_ros.memory.Answer`): correct, error, the points in the world."""
    from geovr_ros.geometry import transform_points
    points = np.asarray(answer.points, float).reshape(-1, 3)
    world = transform_points(T_world_map, points) if len(points) else points
    record = {'points_world': world.tolist()}
    task = question['task']
    if task == 'not_seen':
        return {**record, 'correct': bool(answer.not_seen)}
    if task == 'object_count':
        value = answer.value if answer.success else np.nan
        return {**record, 'value': float(value), 'truth': question['value'],
                'correct': bool(np.isfinite(value) and round(value) == question['value'])}
    if task == 'where_is':
        centre = truth[question['object']]['centre']
        if not answer.success or not len(world):
            return {**record, 'correct': False, 'error_m': None, 'truth': centre.tolist()}
        error = float(np.linalg.norm(world[0] - centre))
        return {**record, 'correct': error <= WHERE_IS_M, 'error_m': error, 'truth': centre.tolist()}
    a, b = (truth[name]['centre'] for name in question['objects'])
    true = float(np.linalg.norm(a - b))
    value = float(answer.value) if answer.success and np.isfinite(answer.value) else np.nan
    relative = abs(value - true) / true if np.isfinite(value) else np.nan
    return {**record, 'value': value, 'truth': true, 'relative_error': relative,
            'mra': mean_relative_accuracy(value, true), 'correct': bool(relative <= DISTANCE_RELATIVE)}


def mean_relative_accuracy(value: float, truth: float) -> float:
    """VSI-Bench's MRA: the share of thresholds 0.50, 0.55, ..., 0.95 whose relative accuracy
    |value - truth| / truth < 1 - threshold holds (0 for no answer)."""
    if not np.isfinite(value):
        return 0.0
    relative = abs(value - truth) / truth
    return float(np.mean([relative < 1 - t for t in np.arange(0.5, 1.0, 0.05)]))


def question_alone(questions: list[dict], truth: dict, gt_positions: np.ndarray) -> list[bool]:
    """What the question alone gets right: a count of 1 (the set's mode), the middle of the walk
    for where-is, the median true distance of the set for distances, 'not seen' never said."""
    distances = [float(np.linalg.norm(truth[a]['centre'] - truth[b]['centre']))
                 for q in questions if q['task'] == 'abs_distance' for a, b in [q['objects']]]
    middle = gt_positions.mean(axis=0)
    out = []
    for q in questions:
        if q['task'] == 'object_count':
            out.append(q['value'] == 1)
        elif q['task'] == 'where_is':
            out.append(float(np.linalg.norm(middle - truth[q['object']]['centre'])) <= WHERE_IS_M)
        elif q['task'] == 'abs_distance':
            true = float(np.linalg.norm(truth[q['objects'][0]]['centre'] - truth[q['objects'][1]]['centre']))
            out.append(abs(np.median(distances) - true) / true <= DISTANCE_RELATIVE)
        else:
            out.append(False)
    return out


def evaluate(model: str | Path, recording: str | Path, labels: str | Path, progress: bool = True,
             vocabulary: str = '', naming_step: int = NAMING_STEP, assignments: tuple[str, ...] = ()) -> dict:
    """The whole evaluation (module docstring); `naming_step` 0 leaves out the naming measure;
    `assignments` ('NAME=VALUE') change node parameters of the session."""
    from geovr_ros.geometry import make_pose, pose_alignment, transform_points
    data = load_labels(labels)
    truth = object_centres(recording, data['objects'])
    session, stamps, est, gt = run_session(model, recording, progress, vocabulary, assignments)
    T_world_map = make_pose(*pose_alignment(est, gt))
    now = float(stamps[-1])
    records = []
    for q in data['questions']:
        answer = session.answer(q['question'], now, target_frame='map')
        records.append({'question': q['question'], 'task': q['task'], 'answer': answer.answer,
                        'success': answer.success, 'message': answer.message,
                        **score(q, answer, truth, T_world_map)})
    alone = question_alone(data['questions'], truth, gt[:, :3, 3])
    instances = session.objects.map.instances() if session.objects is not None else []
    by_task = {}
    for task in TASKS:
        rows = [r for r in records if r['task'] == task]
        if rows:
            by_task[task] = {'asked': len(rows), 'correct': sum(r['correct'] for r in rows)}
    distance_mra = [r['mra'] for r in records if r['task'] == 'abs_distance']
    naming = None
    if naming_step and session.objects is not None:
        naming = naming_recall(session, recording, truth, absent_categories(data['questions'], session.objects.vocabulary),
                               naming_step, progress)
    from geovr_training.evaluation.objects import floor_basis
    axes = floor_basis(gt)
    return {'labels': str(labels), 'recording': str(recording), 'model': str(model),
            'vocabulary': vocabulary or 'shipped', 'naming': naming,
            'floor_axes': axes.tolist(), 'camera_path_floor': np.round(gt[:, :3, 3] @ axes.T, 3).tolist(),
            'objects_labelled': {k: {'centre': v['centre'].tolist(), 'views': v['views'], 'points': v['points']}
                                 for k, v in truth.items()},
            'object_map': [{'category': i.category,
                            'centre_world': transform_points(T_world_map, i.centroid[None])[0].tolist(),
                            'extent_map_m': i.extent.tolist(), 'confidence': float(i.confidence),
                            'views': i.n_views, 'missed': i.n_missed, 'belief': i.belief, 'doubted': bool(i.doubted)}
                           for i in instances],
            'summary': {'asked': len(records), 'correct': sum(r['correct'] for r in records),
                        'accuracy': float(np.mean([r['correct'] for r in records])),
                        'question_alone_correct': int(sum(alone)),
                        'question_alone_accuracy': float(np.mean(alone)),
                        'by_task': by_task,
                        'distance_mra': float(np.mean(distance_mra)) if distance_mra else None,
                        'objects_in_map': len(instances)},
            'questions': records}


def plot_answers(path: str | Path, result: dict) -> None:
    """questions.png: a top view of the recording's world (the floor axes of `evaluate`'s result):
    the true camera path, the object map's instances (faint where the verifier doubts them),
    the labelled objects' true centres (stars), and each where-is answer as a line from the
    truth to the point answered (green within WHERE_IS_M, red beyond)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from geovr_training.evaluation.objects import category_rgb
    axes = np.asarray(result['floor_axes'], float)
    fig, ax = plt.subplots(figsize=(7, 6))
    path_xy = np.asarray(result['camera_path_floor'], float).reshape(-1, 2)
    ax.plot(path_xy[:, 0], path_xy[:, 1], 'k-', lw=1)
    ax.plot(path_xy[:1, 0], path_xy[:1, 1], 'ko', ms=4)
    for inst in result['object_map']:
        xy = np.asarray(inst['centre_world'], float) @ axes.T
        doubted = inst.get('doubted', False)
        ax.plot(*xy, 'o', color=category_rgb(inst['category']), alpha=0.35 if doubted else 0.9, ms=7)
        ax.annotate(inst['category'], xy, fontsize=6, alpha=0.5 if doubted else 1.0, ha='center', va='bottom')
    for name, labelled in result['objects_labelled'].items():
        xy = np.asarray(labelled['centre'], float) @ axes.T
        ax.plot(*xy, '*', color=category_rgb(name), mec='k', ms=14)
        ax.annotate(name, xy, fontsize=8, fontweight='bold', ha='left', va='top')
    for record in result['questions']:
        if record['task'] != 'where_is' or not record.get('points_world'):
            continue
        truth = np.asarray(record['truth'], float) @ axes.T
        answered = np.asarray(record['points_world'][0], float) @ axes.T
        ax.plot([truth[0], answered[0]], [truth[1], answered[1]], '-', lw=1.5,
                color='tab:green' if record['correct'] else 'tab:red')
    summary = result['summary']
    ax.set_title(f'{Path(result["recording"]).name}: {summary["correct"]} / {summary["asked"]} right '
                 f'(the question alone {summary["question_alone_correct"]}); stars: labelled objects, '
                 'dots: the map,\nlines: where-is answers (green within '
                 f'{WHERE_IS_M:g} m), black: the true camera path', fontsize=8)
    ax.set_aspect('equal')
    ax.autoscale_view()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def spread_summary(parameter: str, runs: list[tuple[str, dict]]) -> dict:
    """What `evaluate` results over values of one session parameter, [(value, result), ...] with
    the same questions in each, have in common: each value's correct count, their mean, the
    questions right in every run, and those whose verdict changes (with each run's)."""
    if not runs:
        raise ValueError('a spread needs at least one run')
    questions = runs[0][1]['questions']
    if any([r['question'] for r in result['questions']] != [q['question'] for q in questions] for _, result in runs):
        raise ValueError('the runs of a spread must answer the same questions')
    asked = len(questions)
    verdicts = np.array([[bool(r['correct']) for r in result['questions']] for _, result in runs])   # (runs, questions)
    correct = verdicts.sum(axis=1)
    changing = np.flatnonzero(verdicts.any(axis=0) & ~verdicts.all(axis=0))
    return {'parameter': parameter, 'values': [value for value, _ in runs], 'asked': int(asked),
            'correct': correct.tolist(), 'mean_correct': float(correct.mean()),
            'mean_accuracy': float(correct.mean() / asked) if asked else None,
            'question_alone_correct': int(runs[0][1]['summary']['question_alone_correct']),
            'always_correct': int(verdicts.all(axis=0).sum()), 'never_correct': int((~verdicts.any(axis=0)).sum()),
            'changing': [{'question': questions[k]['question'], 'correct': verdicts[:, k].tolist()} for k in changing]}


def markdown_spread(spread: dict) -> str:
    name, asked = spread['parameter'], spread['asked']
    lines = [f'Labelled questions over {name}', '', f'| {name} | correct / asked |', '|---|---|']
    lines += [f'| {value} | {correct} / {asked} |' for value, correct in zip(spread['values'], spread['correct'])]
    lines += [f'| mean | {spread["mean_correct"]:.1f} / {asked} ({100 * spread["mean_accuracy"]:.0f} %) |',
              f'| the question alone | {spread["question_alone_correct"]} / {asked} |', '',
              f'Right in every run: {spread["always_correct"]}; in none: {spread["never_correct"]}; '
              f'changing: {len(spread["changing"])}']
    if spread['changing']:
        lines += ['', '| question | ' + ' | '.join(str(v) for v in spread['values']) + ' |',
                  '|---|' + '---|' * len(spread['values'])]
        lines += [f'| {q["question"]} | ' + ' | '.join('correct' if c else 'wrong' for c in q['correct']) + ' |'
                  for q in spread['changing']]
    return '\n'.join(lines) + '\n'


def parse_spread(text: str) -> tuple[str, list[str]]:
    """'NAME=V1,V2,...' -> (NAME, [V1, V2, ...]); ValueError naming `text` unless NAME and at
    least two values are there."""
    name, _, values = text.partition('=')
    values = [v.strip() for v in values.split(',') if v.strip()]
    if not name.strip() or len(values) < 2:
        raise ValueError(f'--spread {text!r}: expected NAME=V1,V2,... with at least two values')
    return name.strip(), values


def markdown(result: dict) -> str:
    s = result['summary']
    lines = [f'Labelled questions on {result["recording"]} (labels {result["labels"]}), model {result["model"]}',
             '', '| | correct / asked |', '|---|---|',
             f'| all (answers from the object map) | {s["correct"]} / {s["asked"]} ({100 * s["accuracy"]:.0f} %) |',
             f'| the question alone | {s["question_alone_correct"]} / {s["asked"]} '
             f'({100 * s["question_alone_accuracy"]:.0f} %) |']
    lines += [f'| {task} | {v["correct"]} / {v["asked"]} |' for task, v in s['by_task'].items()]
    if s['distance_mra'] is not None:
        lines.append(f'| distance MRA | {s["distance_mra"]:.2f} |')
    naming = result.get('naming')
    if naming:
        lines += ['', f'Naming, every {naming["step"]} frames ({naming["frames"]}): frames that show each labelled '
                  'object and those where a cell within one of its centre bears its category', '',
                  '| object | named / shown |', '|---|---|']
        lines += [f'| {name} | {v["named"]} / {v["shown"]} |' for name, v in naming['per_object'].items()]
        if naming['mean_recall'] is not None:
            lines.append(f'| mean recall | {naming["mean_recall"]:.2f} |')
        if naming['absent']:
            lines.append(f'| frames naming a category the walk lacks ({", ".join(naming["absent"])}) | '
                         f'{100 * naming["frames_naming_absent"]:.0f} % |')
    lines += ['', '| question | answer | verdict |', '|---|---|---|']
    for r in result['questions']:
        detail = (f'{r["error_m"]:.2f} m off' if r.get('error_m') is not None else
                  f'{r["value"]:.2f} vs {r["truth"]:.2f}' if isinstance(r.get('truth'), float) else '')
        lines.append(f'| {r["question"]} | {r["answer"] or r["message"]} | '
                     f'{"correct" if r["correct"] else "wrong"} {detail} |')
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval questions', description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='exported model directory (geovr-export onnx)')
    parser.add_argument('--data', required=True, help='the recording the labels are about')
    parser.add_argument('--labels', required=True, help='labels YAML (e.g. fixtures/hololens_office_questions.yaml)')
    parser.add_argument('--out', required=True, help='output folder (questions.json, questions.md, questions.png)')
    parser.add_argument('--vocabulary', default='',
                        help="object vocabulary YAML merged over the shipped one (the node's object_vocabulary)")
    parser.add_argument('--naming-step', type=int, default=NAMING_STEP,
                        help=f'measure naming on every Nth frame (default {NAMING_STEP}; 0: not at all)')
    parser.add_argument('--set', action='extend', nargs='*', default=[], metavar='NAME=VALUE',
                        help='a node parameter the session reads (SessionConfig), e.g. object_view_translation=0.2')
    parser.add_argument('--spread', default='', metavar='NAME=V1,V2,...',
                        help='run the whole evaluation once per value of a session parameter (over --set) and '
                             'report the spread, e.g. tracking_threshold_px=2.5,3,3.5')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    if args.naming_step < 0:
        parser.error(f'--naming-step must be >= 0, got {args.naming_step}')
    from geovr_training.evaluation.odometry import session_config
    name, runs = '', [('', tuple(args.set))]   # (value, assignments) per run; value '' without --spread
    try:
        if args.spread:
            name, values = parse_spread(args.spread)
            runs = [(value, tuple(args.set) + (f'{name}={value}',)) for value in values]
        for _, assignments in runs:
            session_config(list(assignments), objects_enabled=True)   # before any frame runs
    except ValueError as error:
        parser.error(str(error))
    out = Path(args.out)
    results = []
    for value, assignments in runs:
        folder = f'{name}={value}' if name else ''
        try:
            result = evaluate(args.model, args.data, args.labels, progress=not args.no_progress,
                              vocabulary=args.vocabulary, naming_step=args.naming_step, assignments=assignments)
        except (LabelError, ValueError, OSError) as error:
            print(f'geovr-eval questions: {error}', file=sys.stderr)
            return 2
        (out / folder).mkdir(parents=True, exist_ok=True)
        (out / folder / 'questions.json').write_text(json.dumps(result, indent=1))
        (out / folder / 'questions.md').write_text(markdown(result))
        plot_answers(out / folder / 'questions.png', result)
        print(markdown(result))
        results.append((value, result))
    if name:
        spread = spread_summary(name, results)
        (out / 'spread.json').write_text(json.dumps(spread, indent=1))
        (out / 'spread.md').write_text(markdown_spread(spread))
        print(markdown_spread(spread))
    return 0
