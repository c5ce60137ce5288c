"""`geovr-eval objects`: the runtime's object map (`geovr_ros.objects`) measured.

(a) Rendered rooms, ORACLE namer: each cell's category probabilities are the fractions of
its pixels that the renderer's instance segmentation gives to each scene category; depth and
poses are the true ones. This measures cell labelling at a given stride, the lifting to 3D
and the fusion alone (no learned part). Per sequence the map is built from every frame
(each frame its own keyframe) and scored against the scene's objects that the sequence
shows (`first_seen` set):
- object recall / precision: an instance is a true positive when it is matched one-to-one
  (greedily, nearest first) to an object of its category whose box centre is within
  `--match-radius` (0.5 m) of the instance centroid;
- count exact / within one: per category shown, the answer of "How many <plural> are
  there?" against the number of its objects shown;
- where-is: for categories shown exactly once, the distance from the point the answer of
  "Where is the <category>?" gives to the object's box centre (median; and the fraction
  answered at all);
- size and distance: VSI mean relative accuracy of "How long is the longest side of the
  <category> in centimetres?" (true: the box's longest side) and of the centre-to-centre
  distance between two such objects.
All answers go through `geovr_ros.objects.ObjectAnswerer`'s function, as the node's will.

With `--runtime MODEL_DIR` the rooms also go through the runtime session itself
(`evaluate_runtime_rendered`): the exported model's depth and namers, the tracker's poses,
the node's defaults; the objects are scored in the session's map frame, where the session put
the first frame, so the model's scale and the tracker's drift count.

(b) A real recording (e.g. ../shared/data/hololens_office): the ImageNet namer, ImageNet
logits per stride-32 cell at the runtime's input size,
through the shipped vocabulary, with the recording's true depth and poses. No labels exist,
so it writes pictures: frames with their cell labels, and a top-down map of the objects
found over the trajectory, plus the list of instances.

ImageNet logits (`--imagenet-weights`): 'pristine' (default), the ImageNet EfficientNet-Lite0 of
the weights package, what the runtime names cells with when the model directory holds
`imagenet_cells.onnx` (`geovr-export onnx` writes it); 'checkpoint': the checkpoint's own
backbone (fine-tuned for depth; the runtime's names without that graph).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np

MATCH_RADIUS = 0.5
IMAGENET_WEIGHTS = ('pristine', 'checkpoint')


# ---- namers

def oracle_probabilities(segmentation: np.ndarray, instance_category: dict[int, int], n_categories: int,
                         stride: int) -> np.ndarray:
    """(Hc, Wc, K + 1) fraction of each cell's pixels per category (last: background) from an
    instance segmentation (H, W) (ids; 0 and unknown ids are background)."""
    h, w = segmentation.shape
    if h % stride or w % stride:
        raise ValueError(f'image {w}x{h} is not a whole number of {stride}-pixel cells')
    lut = np.full(int(max(instance_category, default=0)) + 2, n_categories, dtype=np.int64)
    for iid, k in instance_category.items():
        lut[iid] = k
    seg = np.where((segmentation >= 0) & (segmentation < len(lut) - 1), segmentation, len(lut) - 1)
    labels = lut[seg]  # (H, W) category per pixel
    hc, wc = h // stride, w // stride
    cells = labels.reshape(hc, stride, wc, stride).transpose(0, 2, 1, 3).reshape(hc, wc, -1)
    onehot = np.zeros((hc, wc, n_categories + 1))
    for k in range(n_categories + 1):
        onehot[..., k] = (cells == k).mean(-1)
    return onehot


def imagenet_network(weights: str):
    """The network that names cells for `--imagenet-weights`: 'pristine' -> the exported
    `imagenet_cells` graph's torch module (contract-normalised image -> (B, 1000, h, w));
    'checkpoint' -> None (the checkpoint's backbone). ValueError naming other values."""
    if weights not in IMAGENET_WEIGHTS:
        raise ValueError(f'--imagenet-weights must be one of {IMAGENET_WEIGHTS}, got {weights!r}')
    if weights == 'checkpoint':
        return None
    from geovr_training.export.graphs import IMAGENET_CELLS
    return IMAGENET_CELLS.wrap(None)


def imagenet_cell_logits(model, rgb: np.ndarray, size: tuple[int, int], batch: int = 16,
                         imagenet=None) -> np.ndarray:
    """(N, cells, 1000) ImageNet logits of frames rgb (N, H, W, 3) uint8 resized to size
    (W, H), cells row-major over the (H/32, W/32) grid: of `imagenet` (`imagenet_network`) when
    given, else of the model's backbone (`cell_outputs` without the head)."""
    return cell_outputs(model, rgb, size, batch, imagenet, with_head=False)[0]


def cell_outputs(model, rgb: np.ndarray, size: tuple[int, int], batch: int = 16, imagenet=None,
                 with_head: bool | None = None, with_classes: bool = True
                 ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(class_logits (N, cells, 1000), category_logits (N, cells', K + 1) or None without the
    model's category head) of frames rgb (N, H, W, 3) uint8 resized to size (W, H): the
    exported cell classifier's two outputs, cells row-major over the (H/32, W/32) grid, the
    head's over its own grid (H/s, W/s), s = `model.category_stride` (32, 16 or 8); with
    `imagenet` (`imagenet_network`) the class logits are its, as the runtime's with
    `imagenet_cells.onnx`. `with_head` False skips the head (None: whether the model has one);
    `with_classes` False skips the class logits (None; windows name the cells instead)."""
    import cv2
    import torch

    from geovr_training.model import normalize_images
    if with_head is None:
        with_head = getattr(model, 'category_head', None) is not None
    classes, categories = [], []
    with torch.no_grad():
        for start in range(0, len(rgb), batch):
            frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in rgb[start:start + batch]])
            images = normalize_images(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0)
            maps = None   # the model's own maps, only when something reads them
            if (with_classes and imagenet is None) or with_head:
                maps = model.backbone.features(images * model.input_scale + model.input_shift)
            if with_classes:
                named = imagenet(images) if imagenet is not None else model.backbone.classify_cells(maps[32])
                classes.append(named.flatten(2).transpose(1, 2).numpy())
            if with_head:
                categories.append(model.cell_category_logits(maps[32], maps[16], maps[8]).flatten(2).transpose(1, 2).numpy())
    return (np.concatenate(classes) if with_classes else None), (np.concatenate(categories) if with_head else None)


def window_cell_logits_of_frames(rgb: np.ndarray, size: tuple[int, int], vocabulary, imagenet,
                                 batch: int = 64) -> np.ndarray:
    """(N, cells, 1000) ImageNet logits of the stride-32 cells of frames rgb (N, H, W, 3) uint8
    resized to size (W, H), read from the vocabulary's windows as the runtime does
    (`geovr_ros.objects.windows`; the session's `naming_logits`): each window cropped from the
    normalised frame, resized to `window_pixels`, classified alone by `imagenet`
    (`imagenet_network`, the pristine Lite0), its cells averaged."""
    import cv2
    import torch

    from geovr_ros.objects.windows import windowed_cell_logits
    from geovr_training.model import normalize_images
    if imagenet is None:
        raise ValueError('windows are classified by the pristine ImageNet network (--imagenet-weights pristine)')

    def classify(crops: np.ndarray) -> np.ndarray:   # (N, 3, p, p) -> (N, 1000): each crop alone
        crops = torch.from_numpy(crops)
        return torch.cat([imagenet(crops[i:i + batch]).mean((2, 3)) for i in range(0, len(crops), batch)]).double().numpy()

    out = []
    with torch.no_grad():
        for frame in rgb:
            image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            chw = normalize_images(torch.from_numpy(image).permute(2, 0, 1).float() / 255.0).numpy()
            cells = windowed_cell_logits(chw, vocabulary, classify)   # (h, w, 1000)
            out.append(cells.reshape(-1, cells.shape[-1]))
    return np.stack(out)


def resize_depth_nearest(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2
    return cv2.resize(depth.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)


def resize_image(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An (H, W, 3) image at `size` (W, H), area-averaged as the runtime's preprocessing."""
    import cv2
    return rgb if rgb.shape[1::-1] == tuple(size) else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


# ---- scoring

def match_objects(instances, objects, radius: float = MATCH_RADIUS) -> list[tuple[int, int, float]]:
    """One-to-one (instance index, object index, distance) of same-category pairs within
    `radius` metres (instance centroid to object box centre), nearest first."""
    pairs = sorted((float(np.linalg.norm(inst.centroid - obj.centre)), i, j)
                   for i, inst in enumerate(instances) for j, obj in enumerate(objects)
                   if inst.category == obj.category)
    used_i, used_j, out = set(), set(), []
    for d, i, j in pairs:
        if d <= radius and i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            out.append((i, j, d))
    return out


def score_sequence(instances, scene, camera_pose: np.ndarray, vocabulary, radius: float = MATCH_RADIUS) -> dict:
    """Counts and errors of one sequence's map against its scene (see the module docstring)."""
    from geovr_ros.geometry import mean_relative_accuracy
    from geovr_ros.objects import answer_from_objects
    shown = [o for o in scene.objects if o.first_seen is not None]
    matches = match_objects(instances, shown, radius)
    row = {'objects_shown': len(shown), 'objects_total': len(scene.objects), 'instances': len(instances),
           'matched': len(matches), 'count_items': 0, 'count_exact': 0, 'count_within_one': 0,
           'where_items': 0, 'where_answered': 0, 'where_errors': [], 'size_mra': [], 'distance_mra': []}
    categories = sorted({o.category for o in shown})
    for category in categories:
        plural = vocabulary.category(category).plural_name
        answer = answer_from_objects(f'How many {plural} are there?', instances, vocabulary, camera_pose, 'world')
        true = sum(o.category == category for o in shown)
        predicted = answer.value if answer.success else 0.0
        row['count_items'] += 1
        row['count_exact'] += int(predicted == true)
        row['count_within_one'] += int(abs(predicted - true) <= 1)
    unique = [o for o in shown if sum(p.category == o.category for p in shown) == 1]
    for obj in unique:
        row['where_items'] += 1
        answer = answer_from_objects(f'Where is the {obj.category}?', instances, vocabulary, camera_pose, 'world')
        if answer.success:
            row['where_answered'] += 1
            row['where_errors'].append(float(np.linalg.norm(answer.points[0] - obj.centre)))
        size = answer_from_objects(f'How long is the longest side of the {obj.category} in centimetres?',
                                   instances, vocabulary, camera_pose, 'world')
        row['size_mra'].append(mean_relative_accuracy(size.value, float(np.max(obj.size)) * 100)
                               if size.success else 0.0)
    for a_i in range(len(unique)):
        for b in unique[a_i + 1:]:
            a = unique[a_i]
            answer = answer_from_objects(f'What is the distance between the {a.category} and the {b.category}?',
                                         instances, vocabulary, camera_pose, 'world')
            true = float(np.linalg.norm(a.centre - b.centre))
            row['distance_mra'].append(mean_relative_accuracy(answer.value, true) if answer.success else 0.0)
    return row


QA_TASKS = ('object_count', 'abs_distance', 'object_size', 'room_size', 'rel_distance', 'rel_direction',
            'route_plan', 'appearance_order')  # VSI-Bench's eight, all answered from the map
FIRST_FOUR = ('object_count', 'abs_distance', 'object_size', 'appearance_order')  # the map's tasks before session 33
_UNITS = {'m': 1.0, 'cm': 0.01, 'count': 1.0, '': 1.0, 'm^2': 1.0}
UP = np.array([0.0, 0.0, 1.0])   # rendered rooms' world: z up


def _option_of_order(text: str, choices: list[str], vocabulary) -> int | None:
    """The option (index) whose category order agrees with the order an appearance answer
    names (its categories in text order): one that starts with them (what the map did not
    see came later), else the first that keeps their order; None if none does."""
    said = [c for _, c in vocabulary.find(text.split('; not seen')[0])]
    orders = [[vocabulary.resolve(c.strip()) for c in choice.split(',')] for choice in choices]
    for agrees in (lambda order: order[:len(said)] == said, lambda order: [c for c in order if c in said] == said):
        for index, order in enumerate(orders):
            if agrees(order):
                return index
    return None


def score_qa(items: list[dict], instances, camera_pose: np.ndarray, vocabulary, floor=None, ask=None,
             T_frame_world: np.ndarray | None = None) -> list[dict]:
    """The data engine's QA items of the object tasks (QA_TASKS and where_is) answered from the
    map's instances (and its room outline `floor`, world frame, z up) as the runtime answers
    them: {task, key, truth, score (0..100: VSI MRA for numbers, 100 for the right option),
    answered; where_is: error_m}. A question the map does not answer scores 0.
    ask: question -> geovr_ros Answer, instead (e.g. the runtime session's own `answer`);
    T_frame_world (4, 4): where its answers' points are (a where-is truth is moved there)."""
    from geovr_ros.geometry import mean_relative_accuracy, transform_points
    from geovr_ros.objects import answer_from_objects
    out = []
    for item in items:
        task, truth = item['task'], item['answer']
        if task not in QA_TASKS and task != 'where_is':
            continue
        key = (task, tuple(c for _, c in vocabulary.find(item['question'])))
        answer = (ask(item['question']) if ask is not None else
                  answer_from_objects(item['question'], instances, vocabulary, camera_pose, 'world', UP, floor))
        record = {'task': task, 'key': key, 'answered': bool(answer.success), 'score': 0.0}
        if task == 'where_is':
            record['truth'] = list(truth['value'])
            where = np.asarray(truth['value'], np.float64)
            if T_frame_world is not None:
                where = transform_points(T_frame_world, where[None])[0]
            record['error_m'] = (float(np.linalg.norm(answer.points[0] - where))
                                 if answer.success and answer.points is not None and len(answer.points) else float('inf'))
        elif truth['type'] == 'choice':
            record['options'] = len(truth['choices'])
            if answer.success:
                chosen = (int(answer.value) if answer.unit == 'option index' else
                          _option_of_order(answer.answer, truth['choices'], vocabulary))
                record['score'] = 100.0 * (chosen == truth['index'])
        else:
            record['truth'] = float(truth['value'])
            if answer.success and answer.unit in _UNITS and truth.get('unit', '') in _UNITS:
                value = answer.value * _UNITS[answer.unit] / _UNITS[truth.get('unit', '')]
                record['score'] = 100.0 * mean_relative_accuracy(value, truth['value'])
        out.append(record)
    return out


def question_only_scores(per_sequence: list[list[dict]]) -> list[list[dict]]:
    """The question-only prior on the same items: a number is the mean true answer of the
    items of the same task naming the same categories in the OTHER sequences (else of the
    task), a point likewise; an option is chance (100 / options)."""
    from geovr_ros.geometry import mean_relative_accuracy
    out = []
    for s, records in enumerate(per_sequence):
        others = [r for t, rs in enumerate(per_sequence) if t != s for r in rs]
        scored = []
        for r in records:
            if 'options' in r:
                scored.append({**r, 'score': 100.0 / r['options'], 'answered': True})
                continue
            pool = [o['truth'] for o in others if o['key'] == r['key']] or \
                [o['truth'] for o in others if o['task'] == r['task']]
            guess = np.mean(np.asarray(pool, np.float64), axis=0) if pool else None
            if r['task'] == 'where_is':
                error = float(np.linalg.norm(guess - np.asarray(r['truth']))) if guess is not None else float('inf')
                scored.append({**r, 'error_m': error, 'answered': guess is not None})
            else:
                score = 100.0 * mean_relative_accuracy(float(guess), r['truth']) if guess is not None else 0.0
                scored.append({**r, 'score': score, 'answered': guess is not None})
        out.append(scored)
    return out


def qa_summary(per_sequence: list[list[dict]]) -> dict:
    """Per task mean score, their mean over QA_TASKS ('overall', VSI-Bench's) and over the four
    tasks the map answered first ('first_four'), where-is median error, the fraction of items
    answered and the item count."""
    records = [r for rs in per_sequence for r in rs]
    tasks = {t: float(np.mean([r['score'] for r in records if r['task'] == t]))
             for t in QA_TASKS if any(r['task'] == t for r in records)}
    where = [r['error_m'] for r in records if r['task'] == 'where_is']
    four = [tasks[t] for t in FIRST_FOUR if t in tasks]
    return {'tasks': tasks, 'overall': float(np.mean(list(tasks.values()))) if tasks else float('nan'),
            'first_four': float(np.mean(four)) if four else float('nan'),
            'where_median_m': float(np.median(where)) if where else float('nan'),
            'answered': float(np.mean([r['answered'] for r in records])) if records else float('nan'),
            'items': len(records)}


def qa_markdown(rows: dict[str, dict]) -> str:
    lines = ['| | ' + ' | '.join(QA_TASKS) + ' | overall (VSI, the 8) | mean of the first 4 | where-is median m '
             '| answered | items |', '|---|' + '---|' * (len(QA_TASKS) + 5)]
    for name, row in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(f"{row['tasks'][t]:.1f}" if t in row['tasks'] else '-'
                                                 for t in QA_TASKS)
                     + f" | {row['overall']:.1f} | {row['first_four']:.1f} | {row['where_median_m']:.2f} "
                       f"| {row['answered']:.2f} | {row['items']} |")
    return '\n'.join(lines)


def summarise(rows: list[dict]) -> dict[str, float]:
    """Pooled figures of per-sequence rows (`score_sequence`)."""
    total = lambda k: float(sum(r[k] for r in rows))  # noqa: E731
    pooled = lambda k: [v for r in rows for v in r[k]]  # noqa: E731
    where = pooled('where_errors')
    return {
        'sequences': float(len(rows)),
        'objects_shown': total('objects_shown'), 'instances': total('instances'),
        'recall': total('matched') / max(total('objects_shown'), 1),
        'precision': total('matched') / max(total('instances'), 1),
        'count_exact': total('count_exact') / max(total('count_items'), 1),
        'count_within_one': total('count_within_one') / max(total('count_items'), 1),
        'where_median_m': float(np.median(where)) if where else float('nan'),
        'where_answered': total('where_answered') / max(total('where_items'), 1),
        'size_mra': float(np.mean(pooled('size_mra'))) if pooled('size_mra') else float('nan'),
        'distance_mra': float(np.mean(pooled('distance_mra'))) if pooled('distance_mra') else float('nan'),
    }


def oracle_map(seq, stride: int, vocabulary, observation_config=None, map_config=None):
    """The ObjectMapper of one rendered sequence built with the oracle namer (map config
    default: ObjectMapConfig with the world's z as the vertical axis)."""
    from geovr_ros.objects import ObjectMapConfig, ObjectMapper, ObservationConfig
    mapper = ObjectMapper(vocabulary, observation_config or ObservationConfig(),
                          map_config or ObjectMapConfig(vertical_axis=2))
    category_of = {o.instance_id: vocabulary.index(o.category) for o in seq.scene.objects}
    for i in range(len(seq)):
        probs = oracle_probabilities(seq.segmentation[i], category_of, len(vocabulary), stride)
        mapper.observe_probabilities(probs, seq.depth[i], seq.K[i], seq.T_world_cam[i], i, float(seq.timestamps[i]),
                                     rgb=seq.rgb[i])
    return mapper


def evaluate_oracle(sequences, strides=(32, 8), min_score: float = 0.3, radius: float = MATCH_RADIUS,
                    observation_config=None, map_config=None) -> tuple[dict, dict, dict]:
    """({'oracle namer, stride S': summary}, {same key: per-sequence rows}, {stride: (sequence,
    mapper, objects shown) of the sequence showing the most objects, for the picture})."""
    from geovr_ros.objects import Vocabulary
    from geovr_training.data.scene import CATEGORIES
    vocabulary = Vocabulary.from_names(CATEGORIES, min_score=min_score)
    summaries, per_sequence, first = {}, {}, {}
    for stride in strides:
        rows = []
        for seq in sequences:
            if seq.segmentation is None or seq.scene is None or seq.depth is None:
                raise ValueError(f'sequence {seq.name!r} has no segmentation, scene or depth: not a rendered one')
            mapper = oracle_map(seq, stride, vocabulary, observation_config, map_config)
            row = score_sequence(mapper.map.instances(), seq.scene, seq.T_world_cam[-1], vocabulary, radius)
            row['qa'] = score_qa(seq.qa, mapper.map.instances(), seq.T_world_cam[-1], vocabulary,
                                 mapper.map.room.outline(UP))
            rows.append({'sequence': seq.name, **row})
            if stride not in first or row['objects_shown'] > first[stride][2]:
                first[stride] = (seq, mapper, row['objects_shown'])
        key = f'oracle namer, stride {stride}'
        summaries[key] = summarise(rows)
        per_sequence[key] = rows
    return summaries, per_sequence, first


def nameable_scene(scene, vocabulary):
    """The scene with only the objects whose category names one of `vocabulary`'s (by name,
    plural or synonym: the renderer's tv is the shipped vocabulary's monitor), renamed to it."""
    import dataclasses

    from geovr_training.data.types import SceneGraph
    objects = [dataclasses.replace(o, category=vocabulary.resolve(o.category)) for o in scene.objects]
    return SceneGraph(scene.room_size, [o for o in objects if o.category is not None])


NAMERS = ('imagenet', 'head', 'combined')


def evaluate_namers_rendered(sequences, model, vocabulary, size: tuple[int, int], namers=('imagenet',),
                             rules=('head',), radius: float = MATCH_RADIUS, label: str = '', imagenet=None,
                             map_config=None, keep_maps: list | None = None) -> dict[str, tuple[dict, list[dict], dict]]:
    """The model's namers on rendered rooms: {namer key: (summary, per-sequence rows, cell scores)}.

    'imagenet': the ImageNet logits (of `imagenet`, `imagenet_network`, when given, else of the
    model's backbone) through `vocabulary`; 'head': the model's
    category head alone; 'combined': both through `geovr_ros.objects.CellNamer` with each of
    `rules` (the runtime's path). The head's names extend the vocabulary ('stool', 'toy
    duck'). Objects are scored as by the oracle rows, over the objects whose category the
    namer's vocabulary has (the ImageNet vocabulary lacks stool and toy duck). Cells: per
    category the IoU of the cells the namer labels with it and the cells the oracle (>= 0.3 of
    the pixels) labels with it on the namer's own cells (stride 32; a stride-16 head's, and
    the combined namer's then, 16), over all frames; mean over categories shown. Keys name the
    head's stride and end with `label` (e.g. the checkpoint's name when several are scored).
    With a verifier in `map_config`, the third dict also holds 'belief_operating_points'
    (`geovr_training.evaluation.verifier.operating_points` of every instance's belief).
    `map_config`: the object map's (default ObjectMapConfig with the world's z up); `keep_maps`:
    a list that gets (key, the map's instances, the nameable scene) of every sequence."""
    from geovr_ros.geometry import resize_intrinsics
    from geovr_ros.objects import ObjectMapConfig, ObjectMapper, ObservationConfig, cell_grid_shape
    from geovr_ros.objects.namers import CellNamer
    head_names = list(getattr(getattr(model, 'args', None), 'cell_categories', []) or [])
    unknown = [n for n in namers if n not in NAMERS]
    if unknown or (not head_names and set(namers) - {'imagenet'}):
        raise ValueError(f'namers {list(namers)}: each one of {NAMERS}; head and combined need a checkpoint '
                         'with the category head')
    runs = {}  # key -> (namer, kind, rule)
    stride = getattr(model, 'category_stride', None) or 32
    for kind in namers:
        for rule in (rules if kind == 'combined' else (None,)):
            source = 'v2 backbone' if imagenet is None else 'pristine Lite0'
            if vocabulary.windows:
                source += f', windows {"/".join(f"{w:g}" for w in vocabulary.windows)} at {vocabulary.window_pixels} px'
            key = {'imagenet': f'ImageNet namer ({source}, {size[0]}x{size[1]}, stride 32)',
                   'head': f'category head ({size[0]}x{size[1]}, stride {stride})',
                   'combined': f'head + ImageNet, rule {rule} ({size[0]}x{size[1]}, stride {stride})'}[kind] + label
            runs[key] = (CellNamer(vocabulary, head_names if kind != 'imagenet' else (), rule), kind)
    rows = {key: [] for key in runs}
    believed = {key: [] for key in runs}   # with a verifier: (every instance with its belief, shown objects)
    inter = {key: {} for key in runs}
    union = {key: {} for key in runs}
    shown = {key: set() for key in runs}
    for seq in sequences:
        pool = not vocabulary.windows
        windows = not pool and bool(set(namers) - {'head'})   # windows replace the frame's class logits
        class_logits, category_logits = cell_outputs(model, seq.rgb, size, imagenet=imagenet, with_classes=not windows)
        if windows:
            class_logits = window_cell_logits_of_frames(seq.rgb, size, vocabulary, imagenet)
        src = (seq.rgb.shape[2], seq.rgb.shape[1])
        for key, (namer, kind) in runs.items():
            vocab = namer.vocabulary
            scene = nameable_scene(seq.scene, vocab)
            shown[key] |= {vocab.index(o.category) for o in scene.objects if o.first_seen is not None}
            mapper = ObjectMapper(vocab, ObservationConfig(), map_config or ObjectMapConfig(vertical_axis=2))
            category_of = {o.instance_id: vocab.index(o.category) for o in scene.objects}
            for i in range(len(seq)):
                depth = resize_depth_nearest(seq.depth[i], size)
                K = resize_intrinsics(seq.K[i], src, size)
                classes = class_logits[i].reshape(cell_grid_shape(class_logits.shape[1], depth.shape) + (-1,))
                heads = (None if category_logits is None else
                         category_logits[i].reshape(cell_grid_shape(category_logits.shape[1], depth.shape) + (-1,)))
                if kind == 'imagenet':
                    probs = namer.probabilities(classes, pool=pool)
                elif kind == 'head':
                    probs = namer.head_probabilities(heads)
                else:
                    probs = namer.probabilities(classes, heads, pool=pool)  # on the finer of the two grids
                grid = probs.shape[:2]
                mapper.observe_probabilities(probs, depth, K, seq.T_world_cam[i], i, float(seq.timestamps[i]),
                                             rgb=resize_image(seq.rgb[i], size))
                predicted, _ = vocab.label_cells(probs)
                seg = resize_depth_nearest(seq.segmentation[i].astype(np.float32), size).astype(np.int64)
                oracle = oracle_probabilities(seg, category_of, len(vocab), size[0] // grid[1])
                truth, _ = vocab.label_cells(oracle, 0.3)
                for k in set(np.unique(truth)) | set(np.unique(predicted)):
                    if k == vocab.background:
                        continue
                    inter[key][k] = inter[key].get(k, 0) + int(((truth == k) & (predicted == k)).sum())
                    union[key][k] = union[key].get(k, 0) + int(((truth == k) | (predicted == k)).sum())
            instances = mapper.map.instances()
            row = score_sequence(instances, scene, seq.T_world_cam[-1], vocab, radius)
            row['qa'] = score_qa(seq.qa, instances, seq.T_world_cam[-1], vocab, mapper.map.room.outline(UP))
            rows[key].append({'sequence': seq.name, **row})
            if keep_maps is not None:
                keep_maps.append((key, instances, scene))
            if mapper.map.config.verifier is not None:
                believed[key].append((mapper.map.instances(doubted=True),
                                      [o for o in scene.objects if o.first_seen is not None]))
    out = {}
    for key, (namer, _) in runs.items():
        names = namer.vocabulary.names
        cells = {names[k]: inter[key].get(k, 0) / union[key][k] for k in sorted(union[key]) if k in shown[key]}
        cells_mean = float(np.mean(list(cells.values()))) if cells else float('nan')
        scores = {'cell_iou_per_category': cells, 'cell_iou_mean': cells_mean}
        if believed[key]:
            from geovr_training.evaluation.verifier import operating_points
            scores['belief_operating_points'] = operating_points(
                believed[key], [np.array([i.belief for i in instances]) for instances, _ in believed[key]], radius)
        out[key] = (summarise(rows[key]), rows[key], scores)
    return out


RUNTIME_ROWS = ('the runtime session ({}: its depth, tracked poses)',
                'the runtime session ({}), the room at the map\'s scale (Sim(3) of its path)')
MIN_PATH_SPREAD_M = 0.3   # camera positions' RMS spread (m) under which a path's Sim(3) scale is not trusted


def evaluate_runtime_rendered(sequences, model_dir: str | Path, radius: float = MATCH_RADIUS,
                              progress: bool = False, vocabulary: str | None = None, known_floor: bool = False,
                              reference_odometry: bool = False, true_mount: bool = False,
                              assignments: tuple[str, ...] = ()) -> dict[str, tuple[dict, list[dict], dict]]:
    """The runtime itself on rendered rooms: {row key: (summary, per-sequence rows, {'belief_operating_points'})}.

    Each room goes through `geovr_ros.session.Session` as the node runs it (the exported model
    in `model_dir`: its depth, its namers; the tracker's poses and keyframes; the node's
    defaults), where the namer rows are given the true depth and poses. Its map is kept in the
    session's map frame, and the room's objects are moved into it two ways (`RUNTIME_ROWS`):
    - where the session put its first frame (its pose times the true one's inverse): the
      model's scale and the tracker's drift count in every position, as they do for a robot
      that asks where something is;
    - the same, with the room scaled about the first camera by the map's scale (the scale of
      `umeyama_alignment` of the session's camera path to the true one), the objects' sizes
      too: the room as the map measures it, so that naming, fusion and drift are told apart
      from the model's scale. A room whose cameras spread less than MIN_PATH_SPREAD_M (a turn
      on the spot) keeps scale 1 there.
    Scored as the namer rows (`score_sequence`); the data engine's QA items are asked of the
    session itself (`Session.answer`, its whole chain of answerers, in its map frame) in the
    first row (`score_qa`; where-is truths moved as the objects are). `vocabulary`: a user
    object vocabulary YAML merged over the shipped one, as the node's object_vocabulary.
    `known_floor`: each room's session as a robot that knows its camera's height and up runs it
    (`odometry.known_floor_session`: `floor_camera_height` from the room's true depth, the
    first frame levelled by its true tilt); a room whose truth shows no floor runs without.
    `reference_odometry`: each room's session as a robot with wheel odometry runs it
    (scale_odometry_topic, the room's true camera positions as the reference: as `geovr-eval
    odometry --reference-odometry`); the rows then say the scale it reached and its samples.
    `true_mount`: odom_child base, the first frame levelled by its true tilt as the mount (as
    `known_floor`, without the height), as on a robot that knows how its camera is mounted.
    `assignments`: `--set NAME=VALUE` of the session's parameters (`odometry.session_config`),
    e.g. tracking_fallback=reference with `reference_odometry` and `true_mount`.
    Raises geovr_ros.inference.InferenceError for a model directory the runtime cannot load and
    ValueError for one that names no cells."""
    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.session import Session
    from geovr_training.evaluation.odometry import known_floor_session, session_config, true_tilt_mount
    from geovr_training.evaluation.verifier import operating_points
    from tqdm import tqdm
    if known_floor and reference_odometry:
        raise ValueError('give the session one scale source: known_floor or reference_odometry')
    if known_floor and true_mount:
        raise ValueError('known_floor gives the session its mount already: drop true_mount')
    defaults = {'scale_odometry_topic': 'truth'} if reference_odometry else {}
    if true_mount:
        defaults['odom_child'] = 'base'
    config = session_config(list(assignments), objects_enabled=True, **defaults)
    if vocabulary:
        config = replace(config, object_vocabulary=str(vocabulary))
    keys = [k.format(Path(model_dir).name) for k in RUNTIME_ROWS]
    rows, maps = {k: [] for k in keys}, {k: [] for k in keys}
    with PerceptionPipeline(model_dir, backend='onnxruntime') as pipeline:
        for seq in tqdm(sequences, desc='runtime', disable=not progress):
            room_config, mount = known_floor_session(seq, config) if known_floor else (config, None)
            if true_mount:
                mount = (true_tilt_mount(seq) or (None,))[0]   # its tilt alone (None: no floor in its truth)
            session = Session(pipeline, room_config, mount=np.eye(4) if mount is None else mount)
            if session.objects is None:
                raise ValueError(f'{model_dir} names no cells (no cell classifier graph): the runtime keeps no '
                                 'object map')
            for key, (row, scored) in zip(keys, _runtime_room(session, seq, radius, reference_odometry)):
                if known_floor:
                    row['floor_camera_height'] = float(room_config.floor_camera_height)   # 0: no floor known
                if reference_odometry:
                    row['odometry_scale'] = float(session.odometry_scale.scale)
                    row['odometry_scale_samples'] = int(session.odometry_scale.samples)
                rows[key].append(row)
                maps[key].append(scored)
    out = {}
    for key in keys:
        beliefs = [np.array([np.nan if i.belief is None else i.belief for i in instances])
                   for instances, _ in maps[key]]
        scores = {}
        if all(np.isfinite(b).all() for b in beliefs):
            scores['belief_operating_points'] = operating_points(maps[key], beliefs, radius)
        summary = summarise(rows[key])
        if reference_odometry:   # the rooms whose wheel odometry gave a scale, and its median there
            scaled = [r['odometry_scale'] for r in rows[key] if r['odometry_scale_samples'] > 0]
            summary['odometry_scaled_rooms'] = float(len(scaled))
            summary['odometry_scale_median'] = float(np.median(scaled)) if scaled else float('nan')
        out[key] = (summary, rows[key], scores)
    return out


def _runtime_room(session, seq, radius: float, reference_odometry: bool = False
                  ) -> list[tuple[dict, tuple[list, list]]]:
    """One room through `session`: per `RUNTIME_ROWS` row, (the scored row, (every instance
    with its belief, the shown objects in the map frame)) (`evaluate_runtime_rendered`). With
    `reference_odometry` the room's true camera positions, in its first camera's frame, are
    the session's reference odometry (`Session.add_reference_pose` before each frame)."""
    from geovr_ros.geometry import invert_pose, transform_points, umeyama_alignment
    from geovr_training.data.types import SceneGraph
    from geovr_training.evaluation.odometry import reference_poses, session_stamps
    stamps, _ = session_stamps(seq)
    reference = reference_poses(invert_pose(seq.T_world_cam[0]) @ seq.T_world_cam) if reference_odometry else None
    est, true = [], []
    for i in range(len(seq)):
        if reference is not None:
            session.add_reference_pose(stamps[i], reference[i])
        frame = session.process(seq.rgb[i], seq.K[i], stamps[i])
        if not frame.dropped:
            est.append(frame.T_map_cam if frame.T_map_odom is not None else frame.T_odom_cam)
            true.append(seq.T_world_cam[i])
    if not est:
        raise ValueError(f'{seq.name}: the session dropped every frame')
    est, true = np.stack(est), np.stack(true)
    spread = np.sqrt(np.mean(np.sum((true[:, :3, 3] - true[:, :3, 3].mean(0)) ** 2, axis=1)))
    scale = 1.0   # the map's metres per true metre
    if len(est) >= 3 and spread >= MIN_PATH_SPREAD_M:
        scale = 1.0 / umeyama_alignment(est[:, :3, 3], true[:, :3, 3], with_scale=True)[0]   # true = s R est + t
    vocabulary = session.objects.vocabulary
    scene = nameable_scene(seq.scene, vocabulary)
    in_first = [transform_points(invert_pose(true[0]), o.centre[None])[0] for o in scene.objects]  # first camera's
    instances, every = session.objects.map.instances(), session.objects.map.instances(doubted=True)
    out = []
    for factor in (1.0, scale):   # RUNTIME_ROWS: where the session put the first frame; at the map's scale
        objects = [replace(o, centre=transform_points(est[0], factor * c[None])[0], size=o.size * factor)
                   for o, c in zip(scene.objects, in_first)]
        row = score_sequence(instances, SceneGraph(scene.room_size, objects), est[-1], vocabulary, radius)
        out.append(({'sequence': seq.name, 'scale': float(factor), **row},
                    (every, [o for o in objects if o.first_seen is not None])))
    out[0][0]['qa'] = score_qa(seq.qa, instances, est[-1], vocabulary, ask=lambda q: session.answer(q, 0.0),
                               T_frame_world=est[0] @ invert_pose(true[0]))   # as a robot asks, at the model's scale
    return out


def evaluate_imagenet_rendered(sequences, model, vocabulary, size: tuple[int, int],
                               radius: float = MATCH_RADIUS) -> tuple[dict, list[dict], dict]:
    """The ImageNet namer on rendered rooms: (summary, per-sequence rows, cell scores)
    (`evaluate_namers_rendered` with that namer alone)."""
    (result,) = evaluate_namers_rendered(sequences, model, vocabulary, size, ('imagenet',), radius=radius).values()
    return result


# ---- pictures

def category_rgb(category: str) -> tuple[float, float, float]:
    """The colour `geovr_ros.ros.object_markers.category_colour` gives (same formula)."""
    import colorsys
    return colorsys.hsv_to_rgb((zlib.crc32(category.encode('utf-8')) % 360) / 360.0, 0.75, 0.95)


def floor_basis(poses: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """(2, 3) orthonormal axes of the floor plane: `up` given (rendered: z), or minus the
    mean camera y axis (optical y points down; a walking camera is roughly level)."""
    if up is None:
        up = -poses[:, :3, 1].mean(0)
    up = up / np.linalg.norm(up)
    forward = poses[:, :3, 2].mean(0)
    e1 = forward - up * (forward @ up)
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.cross(up, [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(up, e1)])


def plot_topdown(path: Path, title: str, poses: np.ndarray, instances, objects=None, up=None) -> None:
    """Top view: trajectory, found instances (their boxes' floor footprint), true objects."""
    import matplotlib
    matplotlib.use('Agg')
    import cv2
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle
    basis = floor_basis(poses, None if up is None else np.asarray(up, float))
    fig, ax = plt.subplots(figsize=(7, 6))
    xy = poses[:, :3, 3] @ basis.T
    ax.plot(xy[:, 0], xy[:, 1], 'k-', lw=1, label='camera')
    ax.plot(xy[0, 0], xy[0, 1], 'ko', ms=4)
    for obj in objects or []:
        corners = np.c_[obj.corners_xy(), np.full(4, obj.centre[2])] @ basis.T
        ax.add_patch(Polygon(corners, fill=False, ls='--', lw=1,
                             ec='0.6' if obj.first_seen is None else category_rgb(obj.category)))
    for inst in instances:
        c2 = inst.oriented_box.corners() @ basis.T
        c = basis @ inst.centroid
        colour = category_rgb(inst.category)
        hull = cv2.convexHull(c2.astype(np.float32))[:, 0]   # the box's footprint
        ax.add_patch(Polygon(hull, closed=True, fc=(*colour, 0.3), ec=colour))
        ax.annotate(f'{inst.category} {inst.confidence:.2f}', c, fontsize=7, ha='center')
    ax.set_aspect('equal')
    ax.autoscale_view()
    ax.set_title(title, fontsize=9)
    handles = [plt.Line2D([], [], color='k', label='camera path'),
               Rectangle((0, 0), 1, 1, fc=(0.5, 0.5, 0.5, 0.3), ec='0.3', label='found (box footprint)')]
    if objects:
        handles.append(Rectangle((0, 0), 1, 1, fill=False, ls='--', ec='0.3', label='true (grey: never shown)'))
    ax.legend(handles=handles, fontsize=7, loc='best')
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_cell_labels(path: Path, frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, str]], vocabulary) -> None:
    """Frames with their labelled cells: (rgb (H, W, 3), labels (Hc, Wc), scores (Hc, Wc), title)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    cols = 3
    rows = (len(frames) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.9 * rows))
    for ax in np.ravel(axes):
        ax.axis('off')
    for ax, (rgb, labels, scores, title) in zip(np.ravel(axes), frames):
        ax.imshow(rgb)
        h, w = rgb.shape[:2]
        hc, wc = labels.shape
        sy, sx = h / hc, w / wc
        for r in range(hc):
            for c in range(wc):
                k = int(labels[r, c])
                if k == vocabulary.background:
                    continue
                name = vocabulary.names[k]
                colour = category_rgb(name)
                ax.add_patch(Rectangle((c * sx, r * sy), sx, sy, fc=(*colour, 0.35), ec=colour, lw=0.8))
                ax.text((c + 0.5) * sx, (r + 0.5) * sy, f'{name}\n{scores[r, c]:.2f}', fontsize=5,
                        ha='center', va='center', color='white')
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def evaluate_real(seq, model, size: tuple[int, int], vocabulary, observation_config=None, map_config=None,
                  frame_step: int = 1, imagenet=None, negative_evidence: bool = True, verifier=None):
    """(mapper, per-frame (labels, scores) at the cell grid, seconds of model time) of a real
    recording named by the ImageNet namer (`imagenet`, else the model's backbone) at input size
    (W, H), true depth and poses. Without `map_config`: ObjectMapConfig with the recording's
    vertical axis, `negative_evidence` and `verifier` (`objects/verifier.py`)."""
    from geovr_ros.geometry import resize_intrinsics, vertical_axis_of
    from geovr_ros.objects import ObjectMapConfig, ObjectMapper, ObservationConfig, cell_grid_shape
    indices = list(range(0, len(seq), frame_step))
    start = time.perf_counter()
    logits = imagenet_cell_logits(model, seq.rgb[indices], size, imagenet=imagenet)
    seconds = time.perf_counter() - start
    mapper = ObjectMapper(vocabulary, observation_config or ObservationConfig(),
                          map_config or ObjectMapConfig(vertical_axis=vertical_axis_of(seq.T_world_cam),
                                                        negative_evidence=negative_evidence, verifier=verifier,
                                                        on_floor=vocabulary.on_floor))
    src = (seq.rgb.shape[2], seq.rgb.shape[1])
    labels = []
    for n, i in enumerate(indices):
        depth = resize_depth_nearest(seq.depth[i], size)
        K = resize_intrinsics(seq.K[i], src, size)
        mapper.observe_logits(logits[n], depth, K, seq.T_world_cam[i], i, float(seq.timestamps[i]),
                              rgb=resize_image(seq.rgb[i], size))
        grid = cell_grid_shape(logits.shape[1], depth.shape)
        probs = vocabulary.grid_probabilities(logits[n].reshape(grid + (-1,)))  # as the mapper names them
        labels.append(vocabulary.label_cells(probs))
    return mapper, indices, labels, seconds


# ---- report

COLUMNS = (('cell_iou', 'cell IoU', '.3f'), ('recall', 'object recall', '.3f'), ('precision', 'precision', '.3f'),
           ('count_exact', 'count exact', '.3f'), ('count_within_one', 'count within one', '.3f'),
           ('where_median_m', 'where-is median m', '.3f'), ('where_answered', 'where answered', '.3f'),
           ('size_mra', 'size MRA', '.3f'), ('distance_mra', 'distance MRA', '.3f'),
           ('objects_shown', 'objects shown', '.0f'), ('instances', 'instances', '.0f'))


def belief_markdown(key: str, points: list[dict]) -> str:
    """The verifier's operating points of one namer's maps as a Markdown table."""
    lines = [f"\n{key}: the instances the verifier believes at least t (recall / precision / instances), "
             "alone and with each category's most believed one kept (the runtime's `keep_best`)\n",
             '| belief >= t | believed | believed or the category\'s best |', '|---|---|---|']
    for p in points:
        lines.append(f"| {p['threshold']:.1f} | {p['recall']:.3f} / {p['precision']:.3f} / {p['instances']} | "
                     f"{p['recall_keep_best']:.3f} / {p['precision_keep_best']:.3f} / {p['instances_keep_best']} |")
    return '\n'.join(lines) + '\n'


def markdown(rows: dict[str, dict]) -> str:
    lines = ['| | ' + ' | '.join(h for _, h, _ in COLUMNS) + ' |', '|---|' + '---|' * len(COLUMNS)]
    for name, row in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(format(row[k], f) if k in row else '-' for k, _, f in COLUMNS) + ' |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval objects', description=__doc__.splitlines()[0])
    parser.add_argument('--data', help='generated dataset folder: the oracle rows on its --split')
    parser.add_argument('--split', default='test',
                        help="split of --data; 'all': every split (the oracle rows learn nothing)")
    parser.add_argument('--strides', default='32,8', help='oracle cell sizes in pixels (default 32,8)')
    parser.add_argument('--oracle-min-score', type=float, default=0.3,
                        help='a cell is an object when this fraction of its pixels is (default 0.3)')
    parser.add_argument('--imagenet-on-data', action='store_true',
                        help='also name the --data frames with the ImageNet namer (--checkpoint) and score it')
    parser.add_argument('--head-on-data', action='store_true',
                        help="also the checkpoint's category head alone and combined with the ImageNet namer "
                             '(the runtime path; needs a checkpoint with the head)')
    parser.add_argument('--rules', default='head', help="combination rules scored with --head-on-data "
                                                        "(comma-separated: head, max; default head, the runtime's)")
    parser.add_argument('--picture-min-views', type=int, default=5,
                        help='instances of --real drawn in the top-down picture need this many views (default 5)')
    parser.add_argument('--match-radius', type=float, default=MATCH_RADIUS)
    parser.add_argument('--runtime', metavar='MODEL_DIR', default=None,
                        help='also run the runtime session of this exported model (geovr-export onnx) over the '
                             '--data rooms: its depth, its tracked poses, its object map (evaluate_runtime_rendered)')
    parser.add_argument('--known-floor', action='store_true',
                        help="with --runtime: each room's session knows the camera's height above the floor and "
                             "its up (floor_camera_height from the true depth), as a robot with a fixed mount")
    parser.add_argument('--reference-odometry', action='store_true',
                        help="with --runtime: each room's session scales the model's depth by a wheel odometry, "
                             "the room's true camera path (scale_odometry_topic), as a robot with wheels")
    parser.add_argument('--true-mount', action='store_true',
                        help="with --runtime: each room's session runs with odom_child base and its first frame's "
                             'true tilt as the mount, as on a robot that knows how its camera is mounted')
    parser.add_argument('--set', action='append', default=[], metavar='NAME=VALUE',
                        help="with --runtime: a session parameter (as geovr-eval odometry --set), e.g. "
                             "tracking_fallback=reference with --reference-odometry --true-mount")
    parser.add_argument('--real', help='a real recording with depth and poses (e.g. ../shared/data/hololens_office)')
    parser.add_argument('--checkpoint', default='models/geovr_s_v2/checkpoint.pt', help='GeoVR-S v2 checkpoint')
    parser.add_argument('--head-checkpoints', default=None,
                        help='with --head-on-data: more checkpoints (comma-separated) whose category heads are '
                             'scored beside --checkpoint\'s (alone and combined), e.g. a stride-16 head against '
                             'the shipped stride-32 one; rows end with the file name')
    parser.add_argument('--vocabulary', default=None, help='a user vocabulary YAML merged over the shipped one')
    parser.add_argument('--no-negative-evidence', action='store_true',
                        help="the object map's confidence without the frames that should have named an "
                             "instance and did not (ObjectMapConfig.negative_evidence; before session 30)")
    parser.add_argument('--no-verifier', action='store_true',
                        help="the namers' maps without the vocabulary's instance verifier (objects/verifier.py; "
                             "before session 39); the oracle rows never use it")
    parser.add_argument('--imagenet-weights', choices=IMAGENET_WEIGHTS, default='pristine',
                        help="the ImageNet logits' network: pristine (default; the weights package's Lite0, the "
                             "runtime's with imagenet_cells.onnx) or checkpoint (its depth-tuned backbone)")
    parser.add_argument('--input-size', default=None, help='WxH fed to the backbone (default: trained size)')
    parser.add_argument('--frame-step', type=int, default=1, help='use every n-th frame of --real')
    parser.add_argument('--max-sequences', type=int, default=None)
    parser.add_argument('--out', required=True, help='output folder (objects.json, objects.md, *.png)')
    args = parser.parse_args(argv)
    if not args.data and not args.real:
        parser.error('give --data (rendered, oracle namer) and/or --real (a recording, ImageNet namer)')
    if args.known_floor and not args.runtime:
        parser.error('--known-floor is a setting of the runtime session: give --runtime MODEL_DIR')
    if args.reference_odometry and not args.runtime:
        parser.error('--reference-odometry is a setting of the runtime session: give --runtime MODEL_DIR')
    if args.reference_odometry and args.known_floor:
        parser.error('give the runtime session one scale source: --known-floor or --reference-odometry')
    if (args.true_mount or args.set) and not args.runtime:
        parser.error('--true-mount and --set are settings of the runtime session: give --runtime MODEL_DIR')

    from geovr_training.evaluation.data import load_sequences
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = 'geovr-eval objects ' + ' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[2:]))
    report = {'command': command, 'imagenet_weights': args.imagenet_weights}
    md = [f'# Object map\n\nCommand: `{command}`\n']
    written = []
    from geovr_ros.objects import ObjectMapConfig
    map_config = ObjectMapConfig(vertical_axis=2, negative_evidence=not args.no_negative_evidence)
    if args.data:
        try:
            splits = ('train', 'val', 'test') if args.split == 'all' else (args.split,)
            sequences = [s for split in splits for s in load_sequences(args.data, split, args.max_sequences)]
            strides = tuple(int(s) for s in args.strides.split(','))
            summaries, per_sequence, first = evaluate_oracle(sequences, strides, args.oracle_min_score,
                                                             args.match_radius, map_config=map_config)
        except (FileNotFoundError, ValueError) as exc:
            print(f'geovr-eval objects: error: {exc}', file=sys.stderr)
            return 2
        if args.imagenet_on_data or args.head_on_data:
            from geovr_ros.objects import load_vocabulary
            from geovr_training.evaluation.evaluate import trained_input_size
            from geovr_training.model import CheckpointError, load_checkpoint
            from geovr_training.model.efficientnet import WeightsError
            namers = (('imagenet',) if args.imagenet_on_data else ()) + (('head', 'combined') if args.head_on_data else ())
            try:
                model, state = load_checkpoint(args.checkpoint)
                vocabulary = load_vocabulary(args.vocabulary)
                size = (tuple(int(v) for v in args.input_size.lower().split('x')) if args.input_size
                        else trained_input_size(state) or (256, 192))
                extra = args.head_checkpoints.split(',') if args.head_checkpoints and args.head_on_data else []
                label = f', {Path(args.checkpoint).name}' if extra else ''
                imagenet = imagenet_network(args.imagenet_weights)
                namer_config = replace(map_config, verifier=None if args.no_verifier else vocabulary.verifier,
                                       on_floor=vocabulary.on_floor)
                results = evaluate_namers_rendered(sequences, model, vocabulary, size, namers,
                                                   tuple(args.rules.split(',')), args.match_radius, label, imagenet,
                                                   namer_config)
                for path in extra:
                    other, _ = load_checkpoint(path)
                    results.update(evaluate_namers_rendered(sequences, other, vocabulary, size, ('head', 'combined'),
                                                            tuple(args.rules.split(',')), args.match_radius,
                                                            f', {Path(path).name}', imagenet, namer_config))
            except (CheckpointError, WeightsError, FileNotFoundError, ValueError) as exc:
                print(f'geovr-eval objects: error: {exc}', file=sys.stderr)
                return 2
            report['rendered_cells'] = {}
            for key, (summary, rows, cells) in results.items():
                summaries[key] = {'cell_iou': cells['cell_iou_mean'], **summary}
                per_sequence[key] = rows
                report['rendered_cells'][key] = cells
        if args.runtime:
            from geovr_ros.inference import InferenceError
            try:
                runtime = evaluate_runtime_rendered(sequences, args.runtime, args.match_radius, progress=True,
                                                    vocabulary=args.vocabulary, known_floor=args.known_floor,
                                                    reference_odometry=args.reference_odometry,
                                                    true_mount=args.true_mount, assignments=tuple(args.set))
            except (FileNotFoundError, ValueError, InferenceError) as exc:
                print(f'geovr-eval objects: error: {exc}', file=sys.stderr)
                return 2
            report['rendered_runtime'] = {}
            for key, (summary, rows, scores) in runtime.items():
                summaries[key], per_sequence[key] = summary, rows
                report['rendered_runtime'][key] = scores
        report['rendered'] = {'summary': summaries, 'per_sequence': per_sequence}
        table = markdown(summaries)
        first_rows = next(iter(per_sequence.values()))
        if any(r['qa'] for r in first_rows):
            qa = {key: qa_summary([r['qa'] for r in rows]) for key, rows in per_sequence.items() if rows and 'qa' in rows[0]}
            qa['question-only prior (other rooms\' mean answer; chance for options)'] = \
                qa_summary(question_only_scores([r['qa'] for r in first_rows]))
            report['rendered']['qa'] = qa
            qa_table = qa_markdown(qa)
            print(qa_table)
        md.append(f'## Rendered rooms ({len(sequences)} sequences of {args.data}, split {args.split})\n\n{table}\n')
        if 'qa' in report['rendered']:
            md.append('### The data engine\'s QA items answered from each map (VSI scores, 0..100)\n\n'
                      + qa_markdown(report['rendered']['qa']) + '\n')
        for key, cells in report.get('rendered_cells', {}).items():
            md.append(f"{key}, cell IoU against the oracle's labels of the same cells: mean "
                      f"{cells['cell_iou_mean']:.3f} (" + ', '.join(f'{k} {v:.2f}' for k, v in
                                                                 cells['cell_iou_per_category'].items()) + ')\n')
            if 'belief_operating_points' in cells:
                md.append(belief_markdown(key, cells['belief_operating_points']))
        for key, scores in report.get('rendered_runtime', {}).items():
            if 'belief_operating_points' in scores:
                md.append(belief_markdown(key, scores['belief_operating_points']))
        print(table)
        for stride, (seq, mapper, _) in first.items():
            path = out / f'objects_rendered_stride{stride}.png'
            plot_topdown(path, f'{seq.name}: oracle namer, stride {stride} (found: filled, true: dashed)',
                         seq.T_world_cam, mapper.map.instances(), seq.scene.objects, up=(0, 0, 1))
            written.append(path)
    if args.real:
        from geovr_ros.objects import load_vocabulary
        from geovr_training.evaluation.evaluate import trained_input_size
        from geovr_training.model import CheckpointError, load_checkpoint
        from geovr_training.model.efficientnet import WeightsError
        try:
            seq = load_sequences(args.real, args.split)[0]
            model, state = load_checkpoint(args.checkpoint)
            vocabulary = load_vocabulary(args.vocabulary)
            imagenet = imagenet_network(args.imagenet_weights)
        except (CheckpointError, WeightsError, FileNotFoundError, ValueError) as exc:
            print(f'geovr-eval objects: error: {exc}', file=sys.stderr)
            return 2
        if seq.depth is None or not np.isfinite(seq.T_world_cam).all():
            print(f'geovr-eval objects: {args.real} lacks depth or poses', file=sys.stderr)
            return 2
        size = (tuple(int(v) for v in args.input_size.lower().split('x')) if args.input_size
                else trained_input_size(state) or (256, 192))
        mapper, indices, labels, seconds = evaluate_real(seq, model, size, vocabulary, frame_step=args.frame_step,
                                                         imagenet=imagenet,
                                                         negative_evidence=not args.no_negative_evidence,
                                                         verifier=None if args.no_verifier else vocabulary.verifier)
        instances = mapper.map.instances()
        listing = [{'id': i.instance_id, 'category': i.category, 'confidence': round(i.confidence, 3),
                    'views': i.n_views, 'centroid': [round(float(v), 2) for v in i.centroid],
                    'extent': [round(float(v), 2) for v in i.extent]} for i in instances]
        counts = {}
        for i in instances:
            counts[i.category] = counts.get(i.category, 0) + 1
        report['real'] = {'recording': args.real, 'frames': len(indices), 'input_size': list(size),
                          'model_seconds_per_frame': seconds / max(len(indices), 1),
                          'tentative_instances': len(mapper.map.instances(min_views=1)) - len(instances),
                          'counts': counts, 'instances': listing}
        source = 'GeoVR-S v2 backbone' if imagenet is None else 'pristine Lite0'
        md.append(f'## {args.real}: ImageNet namer ({source}, {size[0]}x{size[1]}), true depth and poses\n\n'
                  f'{len(indices)} frames; {len(instances)} instances seen in >= 2 frames: '
                  + ', '.join(f'{n} {c}' for c, n in sorted(counts.items(), key=lambda kv: -kv[1])) + '\n')
        print(md[-1])
        path = out / 'objects_real_topdown.png'
        drawn = [i for i in instances if i.n_views >= args.picture_min_views]
        plot_topdown(path, f'{seq.name}: {len(drawn)} objects seen in >= {args.picture_min_views} frames '
                     f'(ImageNet namer, {len(indices)} frames)', seq.T_world_cam[indices], drawn)
        written.append(path)
        picks = np.linspace(0, len(indices) - 1, 6).round().astype(int)
        frames = [(seq.rgb[indices[p]], labels[p][0], labels[p][1], f'frame {indices[p]}') for p in picks]
        path = out / 'objects_real_cells.png'
        plot_cell_labels(path, frames, vocabulary)
        written.append(path)
    (out / 'objects.json').write_text(json.dumps(report, indent=2))
    (out / 'objects.md').write_text('\n'.join(md))
    written = [out / 'objects.json', out / 'objects.md', *written]
    print('wrote ' + ', '.join(str(p) for p in written))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
