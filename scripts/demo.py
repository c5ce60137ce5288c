#!/usr/bin/env python3
"""The GeoVR-ROS demo: the whole system, for real, on a short rendered sequence or a real recording.

    .venv/bin/python scripts/demo.py [--out demo_out] [--frames 80] [--fps 10] [--randomization none]
                                     [--seed 8] [--rate R]
                                     [--model DIR|CHECKPOINT] [--question-model DIR|CHECKPOINT|none]
    .venv/bin/python scripts/demo.py --recording fixtures/hololens_office_excerpt   # a real walk

Run it through `bash scripts/demo.sh` (`make demo`), which sets up `.venv` and the network-safe
ROS environment first. Stages (each a function below; a failure names its stage and prints the
tail of the node logs):

1. models    the shipped models in models/: an exported directory (perception.onnx; question
             graphs) is used as is, a checkpoint is exported into OUT/model/ (skipped when up to date)
2. data      `geovr-data generate` one sequence with ground truth into OUT/data (skipped when the
             same seed and parameters are already there); or, with --recording, a real RGB-D
             recording read as it is (any format of geovr_ros.recordings)
3. run       geovr_node (ONNX Runtime) and replay_node as processes; a recorder node here keeps
             depth, odometry, localization and /diagnostics by stamp; after the replay the
             questions go to ~/query (`demo_questions.py`)
4. evaluate  depth against the rendered depth, odometry against the true trajectory, answers
             against the QA ground truth (`geovr_ros.geometry` metrics)
5. figures   OUT/montage_NNN_fFFFF.png (RGB, predicted and true depth, error), OUT/trajectory.png
             and OUT/objects.png (the object map from above over the path; true objects beside
             the found ones on rendered data)
6. report    OUT/answers.json, OUT/metrics.json, a summary table; node logs in OUT/logs/
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from demo_questions import (CORRECT_IF, OWN_TASK, DemoQuestion, own_questions, recording_questions,  # noqa: E402
                            score_answer, select_questions, trajectory_truth)

REPO_ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
NODE_NAME = 'geovr_node'
STAMP_TOLERANCE_S = 1e-3
DEMO_FRAMES = 80               # the rendered sequence: 80 frames at 10 Hz of a flat-coloured room
DEMO_FPS = 10.0                # (docs/demo.md "Other rooms": a textured one at 30 Hz, and what it shows)
DEMO_RANDOMIZATION = 'none'
RENDERED_HZ = 5.0              # frames a second the rendered sequence is replayed at (the node keeps up on 2 cores)
RECORDING_RATE = 0.1           # of a recording at 30 Hz: 3 frames/s, each one processed
OBJECT_MATCH_M = 0.5           # a found object matches a true one of its category this close (m)
NODE_LOGS = ('geovr_node.log', 'replay_node.log')
QUESTION_MODEL_FILES = ('question_encoder.onnx', 'question_graph.onnx', 'tokenizer.json')


class StageError(RuntimeError):
    """A demo stage failed; `stage` names it."""

    def __init__(self, stage: str, message: str):
        super().__init__(f'stage {stage!r} failed: {message}')
        self.stage = stage


@contextlib.contextmanager
def stage(name: str, timings: dict):
    """Prints the stage, times it into `timings[name]` (s) and turns any error into StageError."""
    print(f'[demo] {name} ...', flush=True)
    start = time.monotonic()
    try:
        yield
    except StageError:
        raise
    except Exception as error:  # the demo reports every failure with its stage
        raise StageError(name, f'{type(error).__name__}: {error}') from error
    timings[name] = round(time.monotonic() - start, 2)
    print(f'[demo] {name} done in {timings[name]:.1f} s', flush=True)


def run_logged(cmd: list[str], log_path: Path, stage_name: str, timeout: float = 600) -> None:
    """Runs `cmd` with its output in `log_path`; StageError with the log tail when it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, 'w') as log:
        result = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        raise StageError(stage_name, f'{" ".join(cmd[:3])} ... exited with {result.returncode}:\n'
                         + tail(log_path, 15))


def tail(path: Path, lines: int = 20) -> str:
    if not path.is_file():
        return f'({path} was not written)'
    return '\n'.join(path.read_text(errors='replace').splitlines()[-lines:])


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- 1. models
@dataclass
class Models:
    perception: Path                 # directory with perception.onnx
    question: Path | None            # directory with question_encoder.onnx, question_graph.onnx, tokenizer.json
    provenance: dict = field(default_factory=dict)


def _checkpoint_kind(path: Path) -> str | None:
    """'perception' for a GeoVR-S checkpoint this tree loads, 'question' for a QA checkpoint that
    reads the memory; None for anything else (a retired v1 model, the blind QA baseline, other files)."""
    import torch

    from geovr_training.model.checkpoint import CHECKPOINT_FORMAT, CheckpointError, checkpoint_model_args
    from geovr_training.qa.checkpoint import QA_CHECKPOINT_FORMAT
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as error:  # an unreadable file is not a model: say so and go on
        print(f'[demo]   ignoring {path}: {type(error).__name__}: {error}')
        return None
    if not isinstance(state, dict):
        return None
    if state.get('format') == QA_CHECKPOINT_FORMAT:
        return None if state.get('blind') else 'question'
    if state.get('format') == CHECKPOINT_FORMAT:
        try:
            checkpoint_model_args(state, path)
        except (CheckpointError, KeyError) as error:
            print(f'[demo]   ignoring {path}: {error}')
            return None
        return 'perception'
    return None


def _checkpoint_preference(path: Path) -> tuple:
    """checkpoint*.pt first, then *best*, then the rest, each by path."""
    name = path.name.lower()
    return (0 if name.startswith('checkpoint') else 1 if 'best' in name else 2, str(path))


def _export_if_needed(checkpoint: Path, kind: str, out_dir: Path, data_dir: Path, logs: Path) -> Path:
    """Exports `checkpoint` into `out_dir` unless `out_dir/demo_source.json` names the same bytes."""
    stamp_path = out_dir / 'demo_source.json'
    digest = sha256_of(checkpoint)
    marker = 'perception.onnx' if kind == 'perception' else 'question_graph.onnx'
    if stamp_path.is_file() and (out_dir / marker).is_file():
        if json.loads(stamp_path.read_text()).get('sha256') == digest:
            print(f'[demo]   {out_dir} is up to date with {checkpoint}')
            return out_dir
    shutil.rmtree(out_dir, ignore_errors=True)
    print(f'[demo]   exporting {checkpoint} -> {out_dir}')
    if kind == 'perception':
        cmd = [str(VENV_BIN / 'geovr-export'), 'onnx', '--checkpoint', str(checkpoint), '--out', str(out_dir),
               '--no-torch-program', '--parity-data', str(data_dir)]
    else:
        cmd = [sys.executable, '-c', 'import sys; from geovr_training.qa.export import export_question_graphs; '
               'export_question_graphs(sys.argv[1], sys.argv[2])', str(checkpoint), str(out_dir)]
    run_logged(cmd, logs / f'export_{kind}.log', 'models')
    stamp_path.write_text(json.dumps({'checkpoint': str(checkpoint), 'sha256': digest}, indent=1))
    return out_dir


def _resolve(given: str, kind: str, out: Path, data_dir: Path, logs: Path) -> Path:
    path = Path(given).resolve()
    marker = 'perception.onnx' if kind == 'perception' else 'question_graph.onnx'
    if path.is_dir() and (path / marker).is_file():
        return path
    if path.is_file() and path.suffix == '.pt':
        return _export_if_needed(path, kind, out / 'model' / f'{kind}_{path.parent.name}_{path.stem}', data_dir, logs)
    raise StageError('models', f'{given!r} is neither a directory with {marker} nor a .pt checkpoint')


def find_models(models_root: Path, perception_arg: str | None, question_arg: str | None, out: Path,
                data_dir: Path) -> Models:
    """The perception and question models: the ones given (a development run), else the ones
    shipped in `models_root` (exported directories first, then checkpoints, exported here).
    Raises StageError naming what is missing; an untrained model is never substituted."""
    logs = out / 'logs'
    provenance = {}
    shipped_dirs = {'perception': sorted(p.parent for p in models_root.rglob('perception.onnx')),
                    'question': sorted(p.parent for p in models_root.rglob('question_graph.onnx')
                                       if all((p.parent / f).is_file() for f in QUESTION_MODEL_FILES))}
    checkpoints = {'perception': [], 'question': []}
    if not shipped_dirs['perception'] or not shipped_dirs['question']:
        for path in sorted(models_root.rglob('*.pt'), key=_checkpoint_preference):
            kind = _checkpoint_kind(path)
            if kind is not None:
                checkpoints[kind].append(path)
    chosen = {}
    for kind, given in (('perception', perception_arg), ('question', question_arg)):
        if given is not None:
            if given == 'none' and kind == 'question':
                chosen[kind], provenance[kind] = None, 'none (--question-model none)'
                continue
            chosen[kind] = _resolve(given, kind, out, data_dir, logs)
            provenance[kind] = f'given: {given}'
        elif shipped_dirs[kind]:
            chosen[kind] = shipped_dirs[kind][0]
            provenance[kind] = f'shipped: {chosen[kind]}'
        elif checkpoints[kind]:
            chosen[kind] = _export_if_needed(checkpoints[kind][0], kind,
                                             out / 'model' / kind, data_dir, logs)
            provenance[kind] = f'shipped checkpoint {checkpoints[kind][0]}, exported to {chosen[kind]}'
        else:
            what = ('exported perception model (*/perception.onnx) and no GeoVR-S student checkpoint (**/*.pt)'
                    if kind == 'perception' else
                    f'complete exported question model (a folder with {", ".join(QUESTION_MODEL_FILES)}) '
                    'and no GeoVR-S QA checkpoint (**/*.pt; the blind baseline does not count)')
            flag, variable = ('--model', 'GEOVR_DEMO_MODEL') if kind == 'perception' else \
                ('--question-model', 'GEOVR_DEMO_QUESTION_MODEL')
            raise StageError('models', f'no shipped {kind} model: {models_root} holds no {what}. '
                             f'The demo never runs an untrained model in its place; for a development run '
                             f'pass {flag} PATH (or set {variable})'
                             + ('; --question-model none runs without one (only the trajectory questions '
                                'are answered).' if kind == 'question' else '.'))
    from geovr_ros.inference import read_metadata
    meta = read_metadata(chosen['perception'] / 'perception.onnx')
    provenance['perception_version'] = meta.model_version
    provenance['perception_input_size'] = list(meta.input_size)
    in_repo = models_root == (REPO_ROOT / 'models').resolve()
    provenance['perception_shipped'] = perception_arg is None and in_repo
    provenance['shipped'] = provenance['perception_shipped'] and question_arg is None
    cards = sorted(p for p in models_root.rglob('*.md') if 'card' in p.name.lower() or p.name == 'README.md')
    provenance['model_cards'] = [str(p) for p in cards]
    return Models(chosen['perception'], chosen['question'], provenance)


# ----------------------------------------------------------------------------- 2. data
def load_recording_sequence(path: Path):
    """A real recording (any format geovr_ros.recordings reads) as a `Sequence` with its true
    depth and poses; StageError naming the problem when it cannot be read or lacks them."""
    from geovr_training.data.convert import load_recording
    from geovr_training.data.errors import DataError
    try:
        seq = load_recording('auto', path)
    except (DataError, ValueError, OSError) as error:
        raise StageError('data', f'cannot read the recording {path}: {error}') from None
    if not np.isfinite(seq.T_world_cam).all():
        raise StageError('data', f'{path} has frames without a true pose: the demo scores odometry against them')
    print(f'[demo]   recording {path}: {len(seq)} frames, {seq.rgb.shape[2]}x{seq.rgb.shape[1]}')
    return seq


def prepare_sequence(data_dir: Path, frames: int, seed: int, resolution: tuple[int, int], logs: Path,
                     fps: float = DEMO_FPS, randomization: str = DEMO_RANDOMIZATION):
    """A one-sequence `geovr-data generate` dataset in `data_dir` (reused when its manifest has the
    same seed, frame count, resolution, frame rate and randomization preset); returns the
    `Sequence` with its ground truth."""
    from geovr_training.data import read_manifest, read_shard
    from geovr_training.data.randomization import Randomization
    wanted = {'seed': seed, 'frames_per_scene': frames, 'resolution': list(resolution), 'fps': float(fps),
              'randomization': json.loads(json.dumps(Randomization.load(randomization).to_dict()))}
    manifest_path = data_dir / 'manifest.json'
    reuse = False
    if manifest_path.is_file():
        manifest = read_manifest(data_dir)
        config = manifest['config']
        have = {'seed': manifest['seed'], 'frames_per_scene': config['frames_per_scene'],
                'resolution': list(config['resolution'] or []), 'fps': float(config.get('fps', 10.0)),
                'randomization': config.get('randomization')}
        reuse = have == wanted and all((data_dir / s['file']).is_file() for s in manifest['sequences'])
    described = f'seed {seed}, {frames} frames at {fps:g} Hz, {resolution[0]}x{resolution[1]}, randomization {randomization}'
    if reuse:
        print(f'[demo]   reusing {data_dir} ({described})')
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        run_logged([str(VENV_BIN / 'geovr-data'), 'generate', '--out', str(data_dir), '--scenes', '1',
                    '--frames-per-scene', str(frames), '--seed', str(seed), '--fps', f'{fps:g}',
                    '--randomization', randomization,
                    '--resolution', f'{resolution[0]}x{resolution[1]}'], logs / 'generate.log', 'data')
    manifest = read_manifest(data_dir)
    return read_shard(data_dir / manifest['sequences'][0]['file'])


# ----------------------------------------------------------------------------- 3. run
class NodeProcess:
    """A console script of .venv as a process, its output in a log file."""

    def __init__(self, script: str, params: dict, log_path: Path):
        args = ['--ros-args']
        for key, value in params.items():
            value = ('true' if value else 'false') if isinstance(value, bool) else value
            args += ['-p', f'{key}:={value}']
        self.name = script
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.popen = subprocess.Popen([str(VENV_BIN / script), *args], stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors='replace')

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then wait; SIGKILL after `timeout` s."""
        if self.alive():
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f'[demo]   {self.name} did not stop on SIGINT within {timeout:.0f} s: killing it')
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()
        return self.popen.returncode


@dataclass
class Recording:
    """What the recorder received, keyed by stamp (s)."""

    images: list[float] = field(default_factory=list)
    depth: dict[float, np.ndarray] = field(default_factory=dict)          # (H, W) float32 m
    depth_K: dict[float, np.ndarray] = field(default_factory=dict)        # (3, 3)
    odometry: dict[float, np.ndarray] = field(default_factory=dict)       # T_odom_cam (4, 4)
    localization: dict[float, np.ndarray] = field(default_factory=dict)   # T_map_cam (4, 4)
    diagnostics: dict[str, str] = field(default_factory=dict)             # last geovr_node status values
    diagnostics_level: int = 0
    replay_published: int | None = None
    answers: list[dict] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)   # the newest ~/objects: category, centre, size, frame
    floor: list[list[float]] = field(default_factory=list)   # the newest ~/objects' room outline (odom or map)


def _make_recorder(node, rec: Recording):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from visualization_msgs.msg import MarkerArray

    from geovr_ros.ros.conversions import camera_info_to_k, pose_from_msg, stamp_to_sec
    from geovr_ros.ros.qos import LATCHED

    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)

    def on_depth(msg):
        rec.depth[stamp_to_sec(msg.header.stamp)] = np.frombuffer(msg.data, np.float32).reshape(
            msg.height, msg.width).copy()

    def on_diag(msg):
        for status in msg.status:
            if status.name.startswith(NODE_NAME):
                rec.diagnostics = {kv.key: kv.value for kv in status.values}
                rec.diagnostics_level = int.from_bytes(status.level, 'little') \
                    if isinstance(status.level, bytes) else int(status.level)

    node.create_subscription(Image, 'image', lambda m: rec.images.append(stamp_to_sec(m.header.stamp)), reliable)
    node.create_subscription(Image, 'depth', on_depth, reliable)
    node.create_subscription(CameraInfo, 'depth/camera_info',
                             lambda m: rec.depth_K.__setitem__(stamp_to_sec(m.header.stamp), camera_info_to_k(m)),
                             reliable)
    node.create_subscription(Odometry, 'odometry', lambda m: rec.odometry.__setitem__(
        stamp_to_sec(m.header.stamp), pose_from_msg(m.pose.pose)), reliable)
    node.create_subscription(PoseWithCovarianceStamped, 'localization', lambda m: rec.localization.__setitem__(
        stamp_to_sec(m.header.stamp), pose_from_msg(m.pose.pose)), reliable)
    node.create_subscription(DiagnosticArray, '/diagnostics', on_diag, reliable)

    def on_objects(msg):
        from visualization_msgs.msg import Marker
        labels = {(m.ns, m.id): m.text for m in msg.markers if m.type == Marker.TEXT_VIEW_FACING}
        rec.objects = [{'category': m.ns, 'label': labels.get((m.ns, m.id + 1), ''), 'frame': m.header.frame_id,
                        'centre': [m.pose.position.x, m.pose.position.y, m.pose.position.z],
                        'size': [m.scale.x, m.scale.y, m.scale.z],
                        'orientation': [m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                                        m.pose.orientation.w]}
                       for m in msg.markers if m.type == Marker.CUBE and m.action == Marker.ADD]
        rec.floor = next(([[p.x, p.y, p.z] for p in m.points] for m in msg.markers
                          if m.ns == 'room' and m.type == Marker.LINE_STRIP), [])
    node.create_subscription(MarkerArray, f'/{NODE_NAME}/objects', on_objects, LATCHED)


def _response_fields(response) -> dict:
    from geovr_ros.ros.conversions import pose_from_msg
    has_pose = bool(response.pose.header.frame_id)
    return {'success': bool(response.success), 'message': response.message, 'answer': response.answer,
            'category': response.category, 'value': float(response.value), 'unit': response.unit,
            'points': [[p.point.x, p.point.y, p.point.z] for p in response.points],
            'points_frame': response.points[0].header.frame_id if response.points else '',
            'pose': pose_from_msg(response.pose.pose).tolist() if has_pose else None,
            'pose_frame': response.pose.header.frame_id, 'confidence': float(response.confidence)}


def ask_questions(node, questions: list[DemoQuestion], timeout: float) -> list[dict]:
    """Each question to ~/query (target frame odom); response fields plus round-trip latency (ms)."""
    import rclpy
    from geovr_interfaces.srv import SpatialQuery
    client = node.create_client(SpatialQuery, f'/{NODE_NAME}/query')
    if not client.wait_for_service(timeout_sec=timeout):
        raise StageError('run', f'/{NODE_NAME}/query is not available after {timeout:.0f} s')
    answers = []
    for q in questions:
        start = time.perf_counter()
        future = client.call_async(SpatialQuery.Request(question=q.question, target_frame='odom', max_age=0.0))
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        latency_ms = (time.perf_counter() - start) * 1e3
        if future.done() and future.result() is not None:
            fields = _response_fields(future.result())
        else:
            fields = {'success': False, 'message': f'no response within {timeout:.0f} s', 'value': math.nan}
        fields['latency_ms'] = latency_ms
        answers.append(fields)
        print(f'[demo]   Q: {q.question}\n[demo]   A: {fields.get("answer") or fields["message"]} '
              f'({latency_ms:.0f} ms)', flush=True)
    node.destroy_client(client)
    return answers


def run_system(models: Models, data_dir: Path, duration_s: float, questions: list[DemoQuestion], rate: float,
               logs: Path, node_timeout: float) -> Recording:
    """geovr_node and replay_node as processes, the recorder here; then the questions.
    `data_dir`: what replay_node plays (a generated dataset or a recording); `duration_s`: its
    length in its own time (s)."""
    import rclpy

    from geovr_ros.ros.spin import spin_until
    # 30 s: replay_node's longest wait for its subscribers; then the sequence at `rate`, with margin
    replay_timeout = 30.0 + (duration_s / rate if rate > 0 else duration_s) * 2.0 + 60.0
    rec = Recording()
    params = {'model': str(models.perception), 'backend': 'onnxruntime', 'depth_upsample': True,
              'publish_points': False, 'publish_depth_colored': False}
    if models.question is not None:
        params['question_model'] = str(models.question)
    geovr = NodeProcess('geovr_node', params, logs / 'geovr_node.log')
    replay = None
    rclpy.init()
    node = rclpy.create_node('demo_recorder')
    try:
        _make_recorder(node, rec)
        if not spin_until(node, lambda: 'active:' in geovr.output() or not geovr.alive(), node_timeout) \
                or not geovr.alive():
            raise StageError('run', f'geovr_node did not become active within {node_timeout:.0f} s:\n'
                             + tail(geovr.log_path))
        # the recorder hears the first frames' outputs only once it has discovered geovr_node's
        # publishers (on a busy machine that took longer than replay_node's start: 5 of 12 depths lost)
        outputs = ('depth', 'odometry', 'localization')
        spin_until(node, lambda: all(node.count_publishers(topic) > 0 for topic in outputs), 10.0)
        replay = NodeProcess('replay_node', {'source': str(data_dir), 'rate': rate, 'wait_for_subscribers': 2,
                                             'start_delay': 0.5}, logs / 'replay_node.log')
        n_frames = None
        with _progress(total=None) as bar:
            def replay_done():
                if len(rec.depth) > bar.n:
                    bar.update(len(rec.depth) - bar.n)
                return not replay.alive() or not geovr.alive()
            if not spin_until(node, replay_done, replay_timeout):
                raise StageError('run', f'replay_node still running after {replay_timeout:.0f} s:\n'
                                 + tail(replay.log_path))
        if not geovr.alive():
            raise StageError('run', 'geovr_node exited during the replay:\n' + tail(geovr.log_path))
        if replay.popen.returncode != 0:
            raise StageError('run', f'replay_node exited with {replay.popen.returncode}:\n' + tail(replay.log_path))
        text = replay.output()
        if 'replay finished:' in text:
            n_frames = int(text.split('replay finished:')[1].split()[0])
        rec.replay_published = n_frames
        # the last frames still in the node, then one more diagnostics period for the final counts
        last = {'count': -1, 'since': time.monotonic()}

        def settled():   # every image answered, or no new depth for 2 s
            if len(rec.depth) != last['count']:
                last.update(count=len(rec.depth), since=time.monotonic())
            quiet = time.monotonic() - last['since']
            return (len(rec.depth) >= len(rec.images) and quiet > 0.5) or quiet > 2.0
        spin_until(node, settled, 15.0)
        seen = len(rec.diagnostics)
        rec.diagnostics = {}
        spin_until(node, lambda: bool(rec.diagnostics), 5.0 if seen else 2.0)
        if not geovr.alive():
            raise StageError('run', 'geovr_node exited after the replay:\n' + tail(geovr.log_path))
        rec.answers = ask_questions(node, questions, timeout=60.0)
        spin_until(node, lambda: False, 0.2)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        if replay is not None:
            replay.stop()
        code = geovr.stop()
        print(f'[demo]   geovr_node stopped (exit {code})')
    return rec


@contextlib.contextmanager
def _progress(total):
    from tqdm import tqdm
    bar = tqdm(total=total, desc='[demo]   depth frames received', unit='frame', leave=True)
    try:
        yield bar
    finally:
        bar.close()


# ----------------------------------------------------------------------------- 4. evaluate
def _gt_index(stamps: np.ndarray, stamp: float) -> int | None:
    i = int(np.argmin(np.abs(stamps - stamp)))
    return i if abs(stamps[i] - stamp) <= STAMP_TOLERANCE_S else None


def _resize_nearest(depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if depth.shape == shape:
        return depth
    rows = np.minimum((np.arange(shape[0]) + 0.5) * depth.shape[0] / shape[0], depth.shape[0] - 1).astype(int)
    cols = np.minimum((np.arange(shape[1]) + 0.5) * depth.shape[1] / shape[1], depth.shape[1] - 1).astype(int)
    return depth[rows][:, cols]


def evaluate_depth(rec: Recording, seq) -> tuple[dict, list[dict]]:
    """Per received depth frame: AbsRel, delta1 (metric and median-scaled) against the rendered depth
    (resized nearest-neighbour to the published depth when the sizes differ); their means."""
    from geovr_ros.geometry import GeometryError, depth_metrics
    per_frame = []
    constant = float(np.nanmedian(seq.depth))   # the trivial baseline: every pixel at the sequence's median
    for stamp in sorted(rec.depth):
        i = _gt_index(seq.timestamps, stamp)
        if i is None:
            continue
        pred = rec.depth[stamp]
        gt = _resize_nearest(seq.depth[i], pred.shape)
        try:
            metric = depth_metrics(pred, gt)
            scaled = depth_metrics(pred, gt, alignment='median')
            baseline = depth_metrics(np.full_like(pred, constant), gt)
        except GeometryError as error:
            per_frame.append({'stamp': stamp, 'frame': i, 'error': str(error)})
            continue
        per_frame.append({'stamp': stamp, 'frame': i, 'abs_rel': metric['abs_rel'], 'delta1': metric['delta1'],
                          'rmse': metric['rmse'], 'abs_rel_median_scaled': scaled['abs_rel'],
                          'delta1_median_scaled': scaled['delta1'], 'median_scale': scaled['median_scale'],
                          'constant_abs_rel': baseline['abs_rel'], 'constant_delta1': baseline['delta1']})
    good = [f for f in per_frame if 'abs_rel' in f]
    mean = (lambda key: float(np.mean([f[key] for f in good])) if good else math.nan)
    summary = {'frames_evaluated': len(good), 'frames_unmatched': len(rec.depth) - len(per_frame),
               'abs_rel': mean('abs_rel'), 'delta1': mean('delta1'), 'rmse_m': mean('rmse'),
               'abs_rel_median_scaled': mean('abs_rel_median_scaled'),
               'delta1_median_scaled': mean('delta1_median_scaled'), 'median_scale': mean('median_scale'),
               'constant_m': constant, 'constant_abs_rel': mean('constant_abs_rel'),
               'constant_delta1': mean('constant_delta1'),
               'depth_size': list(next(iter(rec.depth.values())).shape[::-1]) if rec.depth else None,
               'note': 'means over received depth frames of per-frame metrics; depth published at the camera '
                       'resolution (depth_upsample); median-scaled: each frame scaled by median(gt)/median(pred)'}
    return summary, per_frame


@dataclass
class Trajectory:
    stamps: np.ndarray        # (N,) s
    est: np.ndarray           # (N, 4, 4) T_odom_cam
    gt: np.ndarray            # (N, 4, 4) T_world_cam
    aligned_xyz: np.ndarray   # (N, 3) est positions aligned onto gt (SE(3) Umeyama)
    sim3_xyz: np.ndarray | None  # (N, 3) est positions aligned onto gt (Sim(3) Umeyama); None if degenerate
    T_world_odom: np.ndarray  # (4, 4) odom placed by the first frame's ground truth
    # (4, 4) odom placed by the whole path's poses, orientations with positions (`pose_alignment`):
    # a fit of the positions alone may tilt a nearly level walk and lift what is mapped metres
    # from the path
    T_world_odom_poses: np.ndarray
    poses_xyz: np.ndarray     # (N, 3) est positions placed by it


def evaluate_trajectory(rec: Recording, seq) -> tuple[dict, Trajectory | None]:
    """ATE (Sim(3) and SE(3) Umeyama), RPE (frame to frame) of the odometry; localization ATE."""
    from geovr_ros.geometry import (GeometryError, absolute_trajectory_error, invert_pose, relative_pose_error,
                                    make_pose, pose_alignment, transform_points, umeyama_alignment)
    pairs = [(s, rec.odometry[s], _gt_index(seq.timestamps, s)) for s in sorted(rec.odometry)]
    pairs = [(s, T, i) for s, T, i in pairs if i is not None]
    result = {'odometry_poses': len(rec.odometry), 'matched': len(pairs)}
    if len(pairs) < 3:
        result['error'] = f'only {len(pairs)} odometry poses matched the ground truth (3 needed)'
        return result, None
    stamps = np.array([p[0] for p in pairs])
    est = np.stack([p[1] for p in pairs])
    gt = np.stack([seq.T_world_cam[p[2]] for p in pairs])
    gt_xyz = gt[:, :3, 3]
    path_length = float(np.sum(np.linalg.norm(np.diff(gt_xyz, axis=0), axis=1)))
    _, R, t = umeyama_alignment(est[:, :3, 3], gt_xyz, with_scale=False)
    aligned = est[:, :3, 3] @ R.T + t
    try:
        s_sim, R_sim, t_sim = umeyama_alignment(est[:, :3, 3], gt_xyz, with_scale=True)
        sim3 = s_sim * est[:, :3, 3] @ R_sim.T + t_sim
        ate_sim3 = absolute_trajectory_error(est, gt, alignment='sim3')
    except GeometryError as error:  # a standing-still estimate has no scale to fit
        sim3, ate_sim3 = None, {'error': str(error)}
    result.update(
        path_length_gt_m=path_length,
        path_length_est_m=float(np.sum(np.linalg.norm(np.diff(est[:, :3, 3], axis=0), axis=1))),
        ate_se3=absolute_trajectory_error(est, gt, alignment='se3'),
        ate_sim3=ate_sim3,
        rpe=relative_pose_error(est, gt, delta=1),
        duration_s=float(stamps[-1] - stamps[0]))
    result['ate_se3_fraction_of_path'] = result['ate_se3']['rmse'] / path_length if path_length > 0 else math.nan
    loc = [(rec.localization[s], _gt_index(seq.timestamps, s)) for s in sorted(rec.localization)]
    loc = [(T, i) for T, i in loc if i is not None]
    result['localization'] = {'poses': len(rec.localization)}
    if len(loc) >= 3:
        result['localization']['ate_se3'] = absolute_trajectory_error(
            np.stack([T for T, _ in loc]), np.stack([seq.T_world_cam[i] for _, i in loc]), alignment='se3')
    T_world_odom = gt[0] @ invert_pose(est[0])
    T_world_odom_poses = make_pose(*pose_alignment(est, gt))
    poses_xyz = transform_points(T_world_odom_poses, est[:, :3, 3])
    result['ate_pose_fit_rmse'] = float(np.sqrt(np.mean(np.sum((poses_xyz - gt_xyz) ** 2, axis=1))))
    return result, Trajectory(stamps, est, gt, aligned, sim3, T_world_odom, T_world_odom_poses, poses_xyz)


def evaluate_answers(questions: list[DemoQuestion], answers: list[dict], traj: Trajectory | None,
                     z_up: bool = True) -> list[dict]:
    """One record per question: question, answer, structured fields, truth, error and verdict.
    z_up: the ground truth's world is z up (rendered rooms; a recording's is not known)."""
    from geovr_ros.language.text import parse_options
    if traj is not None:
        for q in questions:
            trajectory_truth(q, traj.gt[:, :3, 3], traj.gt[-1], z_up)
    records = []
    for q, a in zip(questions, answers):
        truth_known = q.truth.get('value') is not None or 'position' in q.truth or 'choices' in q.truth
        options = parse_options(q.question) if q.truth['type'] in ('choice', 'none') else []
        if q.task == OWN_TASK:
            verdict = own_answer_in_world(a, None if traj is None else traj.T_world_odom)
        elif truth_known:
            verdict = score_answer(q, a, None if traj is None else traj.T_world_odom, options)
        else:
            verdict = {'correct': False, 'error': None, 'reason': 'no ground truth (no odometry)'}
        records.append({'question': q.question, 'task': q.task, 'source': q.source,
                        'template_split': q.template_split, 'answer': a.get('answer', ''),
                        'success': a['success'], 'message': a.get('message', ''),
                        'structured': {k: a.get(k) for k in ('category', 'value', 'unit', 'points', 'points_frame',
                                                             'pose', 'pose_frame', 'confidence')},
                        'options': options, 'ground_truth': q.truth, 'latency_ms': a['latency_ms'], **verdict})
    return records


def own_answer_in_world(answer: dict, T_world_odom: np.ndarray | None) -> dict:
    """A question asked with --ask has no ground truth: its verdict is None, and its points and
    pose are also given in the world frame of scene.json (through the odom frame's true placement)."""
    verdict = {'correct': None, 'reason': 'your own question: no ground truth; compare with scene.json'}
    if T_world_odom is None:
        return verdict
    if answer.get('points'):
        points = np.asarray(answer['points'], np.float64)
        verdict['points_world'] = (points @ T_world_odom[:3, :3].T + T_world_odom[:3, 3]).tolist()
    if answer.get('pose') is not None:
        verdict['position_world'] = (T_world_odom @ np.asarray(answer['pose'], np.float64))[:3, 3].tolist()
    return verdict


def node_vocabulary(perception: Path):
    """The vocabulary geovr_node names objects with: the shipped one extended by the category
    head's names in the exported cell classifier's metadata ('toy duck', 'stool')."""
    from geovr_ros.inference.metadata import read_graph_metadata
    from geovr_ros.objects import load_vocabulary
    classifier = Path(perception) / 'cell_classifier.onnx'
    head = read_graph_metadata(classifier).get('vocabularies', {}) if classifier.is_file() else {}
    return load_vocabulary().with_categories(head.get('cell_categories', []) if isinstance(head, dict) else [])


def evaluate_objects(rec: Recording, seq, traj: Trajectory | None, vocabulary) -> dict:
    """The object map geovr_node published last (~/objects), placed in the world by the fit of its
    odometry's poses (`Trajectory.T_world_odom_poses`; map ~ odom: the pose graph corrects it
    little on a short walk); on rendered data also matched with the true objects: found = the
    category `vocabulary` (the node's, `node_vocabulary`) gives the true one (a tv is a monitor)
    within OBJECT_MATCH_M of its centre."""
    if not rec.objects:
        return {'found': 0, 'objects': [], 'note': 'no object map received (no cell classifier, or nothing named)'}
    T = np.eye(4) if traj is None else traj.T_world_odom_poses
    found = [{**o, 'centre_world': (T[:3, :3] @ np.asarray(o['centre']) + T[:3, 3]).tolist()} for o in rec.objects]
    result = {'found': len(found), 'objects': found,
              'categories': {c: sum(o['category'] == c for o in found) for c in sorted({o['category'] for o in found})},
              'frame': "world of the recording (through the fit of the odometry's poses)"}
    if rec.floor:   # the room's floor rectangle (closed), as a room-size answer measures it
        result['floor_world'] = (np.asarray(rec.floor) @ T[:3, :3].T + T[:3, 3]).tolist()
    scene = getattr(seq, 'scene', None)
    if scene is None or traj is None:
        return result
    seen = [o for o in scene.objects if o.first_seen is not None and o.first_seen < len(seq)]
    matched, used = [], set()
    for obj in seen:
        names = {name for _, name in vocabulary.find(obj.category)}
        near = [i for i, f in enumerate(found) if f['category'] in names
                and np.linalg.norm(np.asarray(f['centre_world']) - obj.centre) <= OBJECT_MATCH_M]
        matched.append(bool(near))
        used.update(near)
    result.update(true_objects_seen=len(seen), true_objects_found=int(sum(matched)),
                  recall=float(np.mean(matched)) if seen else math.nan,
                  precision=len(used) / len(found) if found else math.nan,
                  match_rule=f'same vocabulary category, centres within {OBJECT_MATCH_M} m')
    return result


def scene_truth(seq) -> dict:
    """The rendered room's true objects (world frame, metres) and the true camera path, to
    compare answers with."""
    positions = seq.T_world_cam[:, :3, 3]
    return {'frame': 'world (floor z = 0); answers in `points_world` / `position_world` are in it',
            'room_size_m': [float(v) for v in seq.scene.room_size],
            'objects': [o.to_json() for o in seq.scene.objects],
            'camera_first_position': positions[0].tolist(), 'camera_last_position': positions[-1].tolist(),
            'path_length_m': float(np.sum(np.linalg.norm(np.diff(positions, axis=0), axis=1)))}


# ----------------------------------------------------------------------------- 5. figures
def _objects_in_view(rec: Recording, stamp: float, K: np.ndarray, shape: tuple[int, int]) -> list:
    """(category, (u, v) pixel) of the object map's centres in front of the camera at `stamp`
    (its map pose from localization, else its odometry pose; map and odom start together)."""
    T_map_cam = rec.localization.get(stamp, rec.odometry.get(stamp))
    if T_map_cam is None or not rec.objects:
        return []
    from geovr_ros.geometry import invert_pose
    T_cam_map = invert_pose(T_map_cam)
    found = []
    for o in rec.objects:
        p = T_cam_map[:3, :3] @ np.asarray(o['centre']) + T_cam_map[:3, 3]
        if p[2] <= 0.1:
            continue
        u, v = K[0, 0] * p[0] / p[2] + K[0, 2], K[1, 1] * p[1] / p[2] + K[1, 2]
        if 0 <= u < shape[1] and 0 <= v < shape[0]:
            found.append((o['category'], (float(u), float(v))))
    return found


def render_montages(rec: Recording, seq, per_frame: list[dict], out: Path, count: int) -> list[Path]:
    """`count` PNGs, evenly spaced over the received depth frames: RGB with the object map's
    objects in view | predicted depth | true depth (one colour scale, metres) | relative error
    |d - d*| / d*."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    for old in out.glob('montage_*.png'):
        old.unlink()
    good = [f for f in per_frame if 'abs_rel' in f]
    if not good:
        return []
    picks = [good[int(round(k))] for k in np.linspace(0, len(good) - 1, min(count, len(good)))]
    paths = []
    for n, f in enumerate(picks):
        pred = rec.depth[f['stamp']]
        gt = _resize_nearest(seq.depth[f['frame']], pred.shape)
        rgb = seq.rgb[f['frame']]
        finite = np.isfinite(gt)
        vmax = float(np.nanpercentile(np.where(finite, gt, np.nan), 98)) if finite.any() else 5.0
        with np.errstate(invalid='ignore', divide='ignore'):
            rel = np.abs(pred - gt) / gt
        fig, axes = plt.subplots(1, 4, figsize=(15.5, 3.5), dpi=100, constrained_layout=True)
        axes[0].imshow(rgb)
        for label, (u, v) in _objects_in_view(rec, f['stamp'], seq.K[f['frame']], rgb.shape[:2]):
            axes[0].plot(u, v, 'o', ms=5, mec='white', mfc='#d62728')
            axes[0].text(u, v - 6, label, color='white', fontsize=8, ha='center', va='bottom',
                         bbox={'facecolor': '#d62728', 'alpha': 0.7, 'pad': 1, 'lw': 0})
        axes[0].set_title(f'camera image, frame {f["frame"]} (t = {f["stamp"]:.1f} s)', fontsize=10)
        im = axes[1].imshow(pred, cmap='turbo', vmin=0.0, vmax=vmax)
        axes[1].set_title(f'geovr_node depth: AbsRel {f["abs_rel"]:.3f}, δ1 {f["delta1"]:.2f}\n'
                          f'(median-scaled: AbsRel {f["abs_rel_median_scaled"]:.3f})', fontsize=10)
        axes[2].imshow(np.where(finite, gt, np.nan), cmap='turbo', vmin=0.0, vmax=vmax)
        axes[2].set_title('ground-truth depth (rendered)' if getattr(seq, 'scene', None) is not None
                          else 'sensor depth (the recording\'s ground truth)', fontsize=10)
        fig.colorbar(im, ax=axes[1:3], label='depth (m), one scale', shrink=0.9, pad=0.01)
        em = axes[3].imshow(rel, cmap='magma', vmin=0.0, vmax=0.5)
        axes[3].set_title('relative error |d - d*| / d*', fontsize=10)
        fig.colorbar(em, ax=axes[3], label='clipped at 0.5', shrink=0.9, pad=0.01)
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
        path = out / f'montage_{n:03d}_f{f["frame"]:04d}.png'
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def render_topdown(seq, traj: Trajectory | None, traj_metrics: dict, out: Path) -> Path:
    """Top view (world x, y, metres): room outline, object boxes with labels, the true camera path
    and the odometry aligned onto it with SE(3) Umeyama."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle
    w, d = float(seq.scene.room_size[0]), float(seq.scene.room_size[1])
    fig, ax = plt.subplots(figsize=(8.0, 8.0 * d / w + 1.2), dpi=100, constrained_layout=True)
    ax.add_patch(Rectangle((-w / 2, -d / 2), w, d, fill=False, lw=2.0, ec='0.2'))
    for obj in seq.scene.objects:
        seen = obj.first_seen is not None and obj.first_seen < len(seq)
        ax.add_patch(Polygon(obj.corners_xy(), closed=True, fc=('#9ecae1' if seen else '0.85'),
                             ec=('#3182bd' if seen else '0.6'), lw=1.0, alpha=0.8))
        ax.text(obj.centre[0], obj.centre[1], obj.label, ha='center', va='center', fontsize=7,
                color='0.1' if seen else '0.5')
    gt_all = seq.T_world_cam[:, :3, 3]
    ax.plot(gt_all[:, 0], gt_all[:, 1], '-', color='#2ca02c', lw=2.0, label='ground truth (replayed)')
    ax.plot(gt_all[0, 0], gt_all[0, 1], 'o', color='#2ca02c', ms=8)
    ax.annotate('start', gt_all[0, :2], xytext=(6, 6), textcoords='offset points', color='#2ca02c', fontsize=8)
    if traj is not None:
        a = traj.aligned_xyz
        ax.plot(a[:, 0], a[:, 1], '-', color='#ff7f0e', lw=2.0, label='geovr_node odometry, SE(3)-aligned')
        ax.plot(a[0, 0], a[0, 1], 's', color='#ff7f0e', ms=7)
        s3 = traj.sim3_xyz if traj.sim3_xyz is not None else np.full((1, 3), np.nan)
        ax.plot(s3[:, 0], s3[:, 1], '--', color='#d62728', lw=1.2, alpha=0.7,
                label='geovr_node odometry, Sim(3)-aligned (scale fitted)')
        ate = traj_metrics['ate_se3']['rmse']
        title = (f'Odometry vs ground truth, aligned by SE(3) Umeyama (geovr_ros.geometry)\n'
                 f'ATE rmse {ate:.2f} m over a {traj_metrics["path_length_gt_m"]:.1f} m path '
                 f'(Sim(3): {traj_metrics["ate_sim3"].get("rmse", math.nan):.2f} m, '
                 f'scale {traj_metrics["ate_sim3"].get("scale", math.nan):.2f})')
    else:
        title = f'Ground-truth camera path (no odometry to compare: {traj_metrics.get("error")})'
    ax.set_title(title, fontsize=10)
    ax.set_xlim(-w / 2 - 0.3, w / 2 + 0.3)
    ax.set_ylim(-d / 2 - 0.3, d / 2 + 0.3)
    return _save_topdown(fig, ax, ('world x (m)', 'world y (m)'), -0.09, out / 'trajectory.png')


def _save_topdown(fig, ax, labels: tuple[str, str], legend_y: float, path: Path) -> Path:
    """Equal axes, labels, grid and the legend under the plot; writes `path` and closes `fig`."""
    import matplotlib.pyplot as plt
    ax.set_aspect('equal')
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.grid(alpha=0.3)
    ax.legend(loc='upper center', bbox_to_anchor=(0.5, legend_y), ncol=2, fontsize=8, frameon=False)
    fig.savefig(path)
    plt.close(fig)
    return path


def _floor_axes(seq) -> np.ndarray:
    """(2, 3): the world directions drawn as the picture's x and y. Rendered rooms are z up;
    for a recording, up is the mean of the cameras' up (-y of the optical frame) and the
    picture's x the world axis closest to the floor."""
    if getattr(seq, 'scene', None) is not None:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    up = -np.mean(seq.T_world_cam[:, :3, 1], axis=0)
    up /= np.linalg.norm(up)
    axis = np.eye(3)[int(np.argmin(np.abs(up)))]
    e1 = axis - (axis @ up) * up
    e1 /= np.linalg.norm(e1)
    return np.stack([e1, np.cross(up, e1)])


def render_object_map(seq, traj: Trajectory | None, objects: dict, out: Path) -> Path:
    """The object map from above (metres): the true camera path, the odometry fitted onto it,
    the objects geovr_node found (boxes and labels, placed by the same fit) and, on rendered
    data, the true objects beside them."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import cv2
    from matplotlib.patches import Polygon, Rectangle

    from geovr_ros.geometry import matrix_from_quat_xyzw
    from geovr_ros.objects.footprint import OrientedBox
    axes2 = _floor_axes(seq)
    fig, ax = plt.subplots(figsize=(8.0, 7.4), dpi=100, constrained_layout=True)
    scene = getattr(seq, 'scene', None)
    if scene is not None:
        w, d = float(scene.room_size[0]), float(scene.room_size[1])
        ax.add_patch(Rectangle((-w / 2, -d / 2), w, d, fill=False, lw=2.0, ec='0.2'))
        for obj in scene.objects:
            ax.add_patch(Polygon(obj.corners_xy(), closed=True, fc='0.88', ec='0.55', lw=1.0))
            ax.text(obj.centre[0], obj.centre[1] - 0.12, obj.category, ha='center', va='top', fontsize=7,
                    color='0.4')
    gt_xy = seq.T_world_cam[:, :3, 3] @ axes2.T
    ax.plot(gt_xy[:, 0], gt_xy[:, 1], '-', color='#2ca02c', lw=2.0, label='true camera path')
    ax.plot(gt_xy[0, 0], gt_xy[0, 1], 'o', color='#2ca02c', ms=7)
    R = np.eye(3) if traj is None else traj.T_world_odom_poses[:3, :3]
    if traj is not None:
        est_xy = traj.poses_xyz @ axes2.T
        ax.plot(est_xy[:, 0], est_xy[:, 1], '-', color='#ff7f0e', lw=1.5,
                label="geovr_node odometry (fitted by its poses' positions and orientations)")
    if objects.get('floor_world'):
        floor_xy = np.asarray(objects['floor_world']) @ axes2.T
        ax.plot(floor_xy[:, 0], floor_xy[:, 1], ':', color='0.35', lw=1.6, label='floor the map measured (room size)')
    cmap = plt.get_cmap('tab10')
    categories = sorted({o['category'] for o in objects.get('objects', [])})
    uncertain = 0
    for o in objects.get('objects', []):
        centre = np.asarray(o['centre_world']) @ axes2.T
        # the box seen from above (its axes: the marker's orientation, turned by the fit)
        box_axes = R @ matrix_from_quat_xyzw(np.asarray(o.get('orientation', (0.0, 0.0, 0.0, 1.0))))
        corners = OrientedBox(np.asarray(o['centre_world']), box_axes, np.asarray(o['size'])).corners() @ axes2.T
        colour = cmap(categories.index(o['category']) % 10)
        counted = not o.get('label', '').endswith('uncertain')   # what the answers count (object_markers)
        uncertain += not counted
        hull = cv2.convexHull(corners.astype(np.float32))[:, 0]   # the footprint's outline
        ax.add_patch(Polygon(hull, closed=True, fill=False, ec=colour,
                             lw=1.6 if counted else 0.8, ls='--' if counted else ':', alpha=1.0 if counted else 0.45))
        ax.text(centre[0], centre[1], o['category'], ha='center', va='center', fontsize=8 if counted else 6,
                color=colour, fontweight='bold' if counted else 'normal', alpha=1.0 if counted else 0.6)
    if scene is not None and 'recall' in objects:
        title = (f'Object map (dashed, found by geovr_node) over the true objects (grey):\n'
                 f'{objects["true_objects_found"]} of {objects["true_objects_seen"]} seen objects found, '
                 f'{objects["found"]} objects in the map ({uncertain} uncertain, dotted: the answers do not count them)')
    else:
        counts = ", ".join(f"{v} {k}" for k, v in objects.get("categories", {}).items()) or "none"
        title = '\n'.join(textwrap.wrap(f'Object map found by geovr_node on a real recording: {objects.get("found", 0)} '
                                         f'objects ({uncertain} uncertain, dotted: the answers do not count them), '
                                         "placed by the fit of the odometry's poses", 110)
                           + textwrap.wrap(f'({counts})', 110))
    ax.set_title(title, fontsize=9)
    return _save_topdown(fig, ax, ('floor axis 1 (m)', 'floor axis 2 (m)'), -0.08, out / 'objects.png')


def write_docs_images(montage: Path, topdown: Path, object_map: Path, docs_dir: Path, prefix: str = 'demo',
                      max_bytes: int = 300_000) -> list[Path]:
    """Downscaled copies for the README: docs/images/<prefix>_montage.png, _trajectory.png,
    _objects.png (the trajectory picture is the object map's on a recording: one file less)."""
    import cv2
    docs_dir.mkdir(parents=True, exist_ok=True)
    written = []
    pictures = [(montage, f'{prefix}_montage.png', 1100), (object_map, f'{prefix}_objects.png', 640)]
    if topdown != object_map:
        pictures.append((topdown, f'{prefix}_trajectory.png', 640))
    for src, name, width in pictures:
        image = cv2.imread(str(src), cv2.IMREAD_COLOR)
        scale = min(1.0, width / image.shape[1])
        while True:
            small = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode('.png', small, [cv2.IMWRITE_PNG_COMPRESSION, 9])
            if ok and len(data) <= max_bytes or scale < 0.2:
                break
            scale *= 0.85
        (docs_dir / name).write_bytes(data.tobytes())
        written.append(docs_dir / name)
    return written


# ----------------------------------------------------------------------------- 6. report
def _finite_or_none(obj):
    """JSON-safe copy: NaN/inf -> None, numpy -> Python."""
    if isinstance(obj, dict):
        return {str(k): _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return _finite_or_none(obj.tolist())
    return obj


def frame_accounting(rec: Recording, seq) -> dict:
    diag = rec.diagnostics
    dropped = {k[len('dropped_'):]: int(v) for k, v in diag.items() if k.startswith('dropped_')}
    latency = {k[len('latency_'):]: float(v) for k, v in diag.items() if k.startswith('latency_')}
    return {'sequence_frames': len(seq), 'replayed': rec.replay_published, 'images_seen_by_recorder': len(rec.images),
            'node_frames_received': int(diag['frames_received']) if 'frames_received' in diag else None,
            'node_frames_processed': int(diag['frames_processed']) if 'frames_processed' in diag else None,
            'depth_published': len(rec.depth), 'odometry_published': len(rec.odometry),
            'localization_published': len(rec.localization),
            'dropped_by_reason': dropped if diag else 'no /diagnostics received',
            'not_received_by_node': (None if 'frames_received' not in diag or rec.replay_published is None
                                     else rec.replay_published - int(diag['frames_received'])),
            'node_mean_latency_ms': latency, 'diagnostics_level': rec.diagnostics_level if diag else None,
            'diagnostics': diag}


def qa_summary(records: list[dict]) -> dict:
    latencies = [r['latency_ms'] for r in records]
    own = [r for r in records if r['task'] == OWN_TASK]
    scored = [r for r in records if r['task'] != OWN_TASK]
    return {'asked': len(scored), 'answered': sum(r['success'] for r in scored),
            'correct': sum(bool(r['correct']) for r in scored),
            'own_asked': len(own), 'own_answered': sum(r['success'] for r in own),
            'latency_ms_median': float(np.median(latencies)) if latencies else math.nan,
            'latency_ms_max': float(np.max(latencies)) if latencies else math.nan,
            'correct_if': CORRECT_IF,
            'per_question': [{'task': r['task'], 'success': r['success'], 'correct': r['correct'],
                              'latency_ms': r['latency_ms']} for r in records]}


def print_summary(metrics: dict) -> None:
    d, t, f, q = metrics['depth'], metrics['trajectory'], metrics['frames'], metrics['qa']
    ate = t.get('ate_se3', {}).get('rmse', math.nan)
    rows = [
        ('frames replayed / depth received', f'{f["replayed"]} / {f["depth_published"]}'),
        ('dropped by the node', ', '.join(f'{k}={v}' for k, v in f['dropped_by_reason'].items())
         if isinstance(f['dropped_by_reason'], dict) and f['dropped_by_reason'] else 'none'),
        ('depth AbsRel / delta1 (metric)', f'{d["abs_rel"]:.3f} / {d["delta1"]:.3f}'),
        ('constant depth (the sequence median) AbsRel / delta1',
         f'{d.get("constant_abs_rel", math.nan):.3f} / {d.get("constant_delta1", math.nan):.3f}'),
        ('depth AbsRel / delta1 (median-scaled)',
         f'{d["abs_rel_median_scaled"]:.3f} / {d["delta1_median_scaled"]:.3f}'),
        ('odometry ATE rmse (SE(3) / Sim(3))',
         f'{ate:.3f} m / {t.get("ate_sim3", {}).get("rmse", math.nan):.3f} m over '
         f'{t.get("path_length_gt_m", math.nan):.1f} m'),
        ('odometry RPE (per frame)', f'{t.get("rpe", {}).get("trans_rmse", math.nan):.3f} m, '
                                     f'{t.get("rpe", {}).get("rot_rmse_deg", math.nan):.2f} deg'),
        ('objects in the map' + (' (true objects found / seen)' if 'recall' in metrics['objects'] else ''),
         f'{metrics["objects"]["found"]}' + (f' ({metrics["objects"]["true_objects_found"]} / '
                                             f'{metrics["objects"]["true_objects_seen"]})'
                                             if 'recall' in metrics['objects'] else '')
         + (': ' + ', '.join(f'{v} {k}' for k, v in metrics['objects'].get('categories', {}).items())
            if metrics['objects'].get('categories') else '')),
        ('questions answered / correct / asked', f'{q["answered"]} / {q["correct"]} / {q["asked"]}'),
        *([('your questions (--ask) answered / asked', f'{q["own_answered"]} / {q["own_asked"]}')]
          if q['own_asked'] else []),
        ('query latency median', f'{q["latency_ms_median"]:.0f} ms'),
        ('wall time / CPU time (this run)', f'{metrics["time"]["wall_s"]:.0f} s / {metrics["time"]["cpu_s"]:.0f} s'),
    ]
    width = max(len(k) for k, _ in rows)
    print('\n' + '-' * (width + 40))
    print(f'GeoVR-ROS demo, model {metrics["models"].get("perception_version")}\n'
          f'  perception: {metrics["models"]["perception"]}\n  questions:  {metrics["models"]["question"]}')
    print('-' * (width + 40))
    for key, value in rows:
        print(f'{key:<{width}}  {value}')
    print('-' * (width + 40))


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', type=Path, default=REPO_ROOT / 'demo_out', help='output folder (default demo_out/)')
    p.add_argument('--frames', type=int, default=DEMO_FRAMES, help=f'frames of the rendered sequence (default {DEMO_FRAMES})')
    p.add_argument('--fps', type=float, default=DEMO_FPS, help=f'its camera frame rate, Hz (default {DEMO_FPS:g})')
    p.add_argument('--randomization', default=DEMO_RANDOMIZATION,
                   help="the rendered room's domain randomization (geovr-data generate --randomization: 'none' "
                        f"for flat-coloured rooms, 'full', or a YAML file; default {DEMO_RANDOMIZATION})")
    p.add_argument('--seed', type=int, default=8, help='seed of the rendered scene')
    p.add_argument('--resolution', default='256x192', help='camera resolution WxH')
    p.add_argument('--rate', type=float, default=None,
                   help=f'replay speed (1.0 = real time); default {RENDERED_HZ:g} / --fps for the rendered sequence '
                        f'({RENDERED_HZ:g} frames a second), {RECORDING_RATE} for a recording (its frames are 8 cm '
                        f'apart at "30 Hz")')
    p.add_argument('--recording', type=Path, default=None,
                   help='run on a real RGB-D recording with true depth and poses instead of a rendered room, '
                        'e.g. fixtures/hololens_office_excerpt (any format geovr_ros.recordings reads)')
    p.add_argument('--montages', type=int, default=6, help='montage PNGs, evenly spaced over the frames')
    p.add_argument('--models-dir', type=Path, default=REPO_ROOT / 'models', help='where shipped models are found')
    p.add_argument('--model', default=os.environ.get('GEOVR_DEMO_MODEL'),
                   help='perception model (exported directory or checkpoint) instead of the shipped one')
    p.add_argument('--question-model', default=os.environ.get('GEOVR_DEMO_QUESTION_MODEL'),
                   help="question model (exported directory or QA checkpoint) instead of the shipped one, "
                        "or 'none' (only the exact trajectory questions are answered)")
    p.add_argument('--ask', action='append', default=[], metavar='QUESTION',
                   help='a question of your own, asked after the selected ones (repeatable); answers go to '
                        'answers.json (task "own", not scored) beside the true objects in scene.json')
    p.add_argument('--node-timeout', type=float, default=90.0, help='seconds for geovr_node to become active')
    p.add_argument('--update-docs-images', action='store_true',
                   help='write docs/images/demo_{montage,trajectory,objects}.png (demo_real_* with --recording; '
                        'shipped perception model only)')
    args = p.parse_args(argv)
    try:
        args.resolution = tuple(int(v) for v in args.resolution.lower().split('x'))
        assert len(args.resolution) == 2 and min(args.resolution) > 0
    except (ValueError, AssertionError):
        p.error(f'--resolution must be WxH, got {args.resolution!r}')
    if args.frames < 4:
        p.error(f'--frames must be at least 4, got {args.frames}')
    if not args.fps > 0:
        p.error(f'--fps must be > 0, got {args.fps}')
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    wall_start = time.monotonic()
    out = args.out.resolve()
    logs = out / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    for stale in NODE_LOGS:   # a failure report must never show an earlier run's node logs
        (logs / stale).unlink(missing_ok=True)
    timings: dict[str, float] = {}
    try:
        with stage('data', timings):
            if args.recording is not None:
                seq, source = load_recording_sequence(args.recording.resolve()), args.recording.resolve()
            else:
                seq = prepare_sequence(out / 'data', args.frames, args.seed, args.resolution, logs,
                                       args.fps, args.randomization)
                source = out / 'data'
        real = args.recording is not None
        with stage('models', timings):
            models = find_models(args.models_dir.resolve(), args.model, args.question_model, out, source)
            print(f'[demo]   perception: {models.perception} ({models.provenance["perception_version"]})\n'
                  f'[demo]   questions:  {models.question}')
        from geovr_training.data.qa import TASKS
        questions = (recording_questions() if real else select_questions(seq.qa, TASKS)) + own_questions(args.ask)
        rate = args.rate if args.rate is not None else (RECORDING_RATE if real else RENDERED_HZ / args.fps)
        with stage('run', timings):
            duration = float(seq.timestamps[-1] - seq.timestamps[0]) + 0.1
            rec = run_system(models, source, duration, questions, rate, logs, args.node_timeout)
            if not rec.depth:
                raise StageError('run', 'geovr_node published no depth:\n' + tail(logs / 'geovr_node.log'))
        with stage('evaluate', timings):
            depth_summary, per_frame = evaluate_depth(rec, seq)
            traj_metrics, traj = evaluate_trajectory(rec, seq)
            records = evaluate_answers(questions, rec.answers, traj, z_up=not real)
            objects = evaluate_objects(rec, seq, traj, node_vocabulary(models.perception))
        with stage('figures', timings):
            montages = render_montages(rec, seq, per_frame, out, args.montages)
            object_map = render_object_map(seq, traj, objects, out)
            topdown = object_map if real else render_topdown(seq, traj, traj_metrics, out)
            docs = []
            if args.update_docs_images:
                # the pictures show depth and odometry only: they need the shipped perception model
                if not models.provenance['perception_shipped']:
                    raise StageError('figures', '--update-docs-images needs the perception model shipped in '
                                     'models/, not --model or --models-dir')
                # the montage whose true depth has the widest spread: the most structure in view
                spread = [float(np.nanstd(seq.depth[int(p.stem.split('_f')[1])])) for p in montages]
                docs = write_docs_images(montages[int(np.argmax(spread))], topdown, object_map,
                                         REPO_ROOT / 'docs' / 'images', 'demo_real' if real else 'demo')
        with stage('report', timings):
            sequence = ({'name': seq.name, 'frames': len(seq), 'recording': str(source),
                         'resolution': [int(seq.rgb.shape[2]), int(seq.rgb.shape[1])], 'replay_rate': rate}
                        if real else
                        {'name': seq.name, 'frames': len(seq), 'seed': args.seed, 'fps': args.fps,
                         'randomization': args.randomization,
                         'resolution': list(args.resolution), 'room_size_m': seq.scene.room_size.tolist(),
                         'objects': len(seq.scene.objects), 'replay_rate': rate})
            metrics = {'models': models.provenance, 'sequence': sequence,
                       'frames': frame_accounting(rec, seq), 'depth': depth_summary,
                       'depth_per_frame': per_frame, 'trajectory': traj_metrics, 'qa': qa_summary(records),
                       'objects': objects,
                       'outputs': {'montages': [p.name for p in montages], 'topdown': topdown.name,
                                   'object_map': object_map.name,
                                   'docs_images': [str(p.relative_to(REPO_ROOT)) for p in docs]},
                       'time': {'stages_s': timings}}
            metrics['time']['wall_s'] = time.monotonic() - wall_start
            metrics['time']['cpu_s'] = cpu_seconds()
            metrics['time']['cpu_note'] = 'user + system of this process and its finished children (nodes, tools)'
            (out / 'answers.json').write_text(json.dumps(_finite_or_none(records), indent=1))
            if not real:
                (out / 'scene.json').write_text(json.dumps(scene_truth(seq), indent=1))
            (out / 'metrics.json').write_text(json.dumps(_finite_or_none(metrics), indent=1))
        print_summary(metrics)
        pictures = object_map.name if topdown == object_map else f'{topdown.name}, {object_map.name}'
        print(f'[demo] wrote {out}/: {len(montages)} montage PNGs, {pictures}, answers.json, '
              f'{"" if real else "scene.json, "}metrics.json, logs/')
        return 0
    except KeyboardInterrupt:
        print('\n[demo] interrupted: the nodes were stopped', file=sys.stderr)
        return 130
    except StageError as error:
        print(f'\n[demo] FAILED: {error}', file=sys.stderr)
        for name in NODE_LOGS:
            if (logs / name).is_file():
                print(f'[demo] --- last lines of {logs / name} ---\n{tail(logs / name)}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
