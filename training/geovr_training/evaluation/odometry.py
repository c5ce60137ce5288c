"""`geovr-eval odometry --model DIR --data REC`: the runtime's session over a recording.

Every frame goes through `geovr_ros.session.Session.process`, the object geovr_node runs per
frame (stamp checks, the model through the runtime's `PerceptionPipeline`, ONNX Runtime by
default, geometric tracking, the pose graph, memory, localization), with geovr_node's default
parameters and the recording's stamps, so the figures are what the node would publish.
Rows of one table (JSON, Markdown, trajectory PNG in --out):
- tracker on the model's depth: the session's odometry (PnP on learned depth, the learned
  relative pose as fallback), its map-frame poses as published frame by frame (the pose graph
  as it stood), and the map after the last optimisation (each frame placed from the final pose
  of the tracking keyframe it was tracked against: the map `~/save_map` keeps);
- the learned pose head alone: the same session's learned chain (the model's T_prev_cur);
- no motion: every pose the first one;
- tracker on the recording's true depth: the same session with the true depth given to
  tracking, the upper bound of this design.

`--set NAME=VALUE` changes a node parameter the session reads (`SessionConfig`: tracking_*,
keyframe_*, localization_enabled...), to try it on a recording before putting it in
config/geovr.yaml. `--reference-odometry` feeds the session the true camera path as a robot's
wheel odometry (`scale_odometry_topic`), optionally with a length error, noise and a turn error;
with `--set tracking_fallback=reference` it also places the frames tracking fails on (the
session then runs with odom_child base, the first camera being the base); the published
depth's metric errors are reported either way. `--cache DIR` keeps every model
output in DIR, keyed by the model's files and the two input frames, so that a repeated run
(another --set) replays the session without running the model (the model's own timings are
then not measured). The object map does not touch odometry and is left off.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import sys
import zipfile
from pathlib import Path

import numpy as np



def trajectory_row(est: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """`metrics.trajectory_summary` (ATE Sim(3) / SE(3), RPE at gap 1) plus the ATEs in % of
    the true path length and the distance the estimate travelled (m)."""
    from geovr_training.evaluation.metrics import trajectory_summary
    row = trajectory_summary(est, gt)
    path = max(row['path_length_m'], 1e-9)
    revisit = revisit_frame(gt)
    return {**row, 'ate_sim3_pct': 100 * row['ate_sim3_m'] / path, 'ate_se3_pct': 100 * row['ate_se3_m'] / path,
            'path_m': row['path_length_m'],
            'travelled_m': float(np.linalg.norm(np.diff(est[:, :3, 3], axis=0), axis=1).sum()),
            'revisit_error_m': float('nan') if revisit is None
            else float(np.linalg.norm(est[revisit, :3, 3] - gt[revisit, :3, 3]))}


def revisit_frame(gt: np.ndarray, min_path_m: float = 2.0, radius_m: float = 0.3,
                  max_angle_deg: float = 30.0) -> int | None:
    """The frame where a true path (N, 4, 4; first pose the identity) comes back to its start:
    after at least `min_path_m` of travel, the frame closest to the first position among those
    within `radius_m` of it and looking within `max_angle_deg` of its direction; None when the
    path never returns. The error there, with no alignment, is what a loop closure must undo."""
    from geovr_ros.geometry import rotation_angle
    travelled = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1))]
    candidates = [j for j in np.flatnonzero(travelled >= min_path_m)
                  if np.linalg.norm(gt[j, :3, 3] - gt[0, :3, 3]) <= radius_m
                  and np.degrees(rotation_angle(gt[0, :3, :3].T @ gt[j, :3, :3])) <= max_angle_deg]
    if not candidates:
        return None
    return int(min(candidates, key=lambda j: np.linalg.norm(gt[j, :3, 3] - gt[0, :3, 3])))


def true_path_row(gt: np.ndarray) -> dict[str, float]:
    """The true path's length (m), frame by frame and as the session's answer counts it (at
    the node's default path_resolution)."""
    from geovr_ros.geometry import path_length
    from geovr_ros.session import SessionConfig
    positions = gt[:, :3, 3]
    return {'travelled_m': path_length(positions),
            'travelled_answer_m': path_length(positions, SessionConfig().path_resolution)}


def session_stamps(seq) -> tuple[np.ndarray, str]:
    """The recording's stamps (s), or 30 Hz ones when they are missing or not increasing;
    and a note saying which."""
    stamps = None if seq.timestamps is None else np.asarray(seq.timestamps, np.float64)
    if stamps is not None and len(stamps) == len(seq) and np.all(np.isfinite(stamps)) \
            and np.all(np.diff(stamps) > 0):
        return stamps, ''
    return np.arange(len(seq)) / 30.0, 'stamps missing or not increasing: 30 Hz assumed'


def final_map_poses(odom: np.ndarray, anchors: list, graph) -> np.ndarray | None:
    """Map poses (N, 4, 4) of frames after the pose graph's last optimisation: each odometry
    pose `odom` (N, 4, 4, in the tracker's frame) moved as the tracking keyframe it was tracked
    against (`anchors`: that Keyframe, or None before the first) moved, T_map_kf T_kf_odom
    T_odom_cam. A frame whose keyframe is not in the graph (none yet, the graph or the tracker
    restarted) keeps its odometry pose. None without a graph (localization off, learned odometry)."""
    if graph is None:
        return None
    from geovr_ros.geometry import invert_pose
    out = np.array(odom, dtype=np.float64, copy=True)
    for i, keyframe in enumerate(anchors):
        if keyframe is not None and graph.keyframes.get(keyframe.id) is keyframe:   # not one of a restarted graph
            out[i] = graph.T_map_keyframe(keyframe.id) @ invert_pose(keyframe.T_odom_kf) @ odom[i]
    return out


def odometry_covariance_consistency(odom: np.ndarray, gt: np.ndarray, records: list) -> dict[str, float]:
    """`metrics.covariance_consistency` of odometry's published covariance: for each tracked
    frame (`records`: (index of its keyframe's frame, its index, covariance (6, 6) of its pose
    from the keyframe in odom axes)), its pose from the keyframe, `odom` (N, 4, 4), against the
    truth's, `gt` (N, 4, 4), both in the first frame's optical frame; the keys prefixed
    `covariance_` ({} without records)."""
    from geovr_ros.geometry import invert_pose
    from geovr_training.evaluation.metrics import covariance_consistency
    if not records:
        return {}
    # both relative poses hung from the estimated keyframe: their difference is in odom axes
    estimates = [odom[i] for _, i, _ in records]
    truths = [odom[k] @ invert_pose(gt[k]) @ gt[i] for k, i, _ in records]
    scored = covariance_consistency(estimates, truths, [c for _, _, c in records])
    return {'covariance_within_95': scored['within_95'], 'covariance_rotation_within_95': scored['rotation_within_95'],
            'covariance_sigma_m': scored['sigma_median_m']}


def run_session(seq, pipeline, true_depth: bool = False, config=None, progress: bool = True,
                mount: np.ndarray | None = None, reference: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, np.ndarray | None]:
    """`Session.process` on every frame of `seq` (the node's defaults unless `config`, a
    `SessionConfig`; `mount` T_odom_opt0, default identity; poses are returned in the first
    frame's optical frame either way), with the recording's true depth given to tracking when
    `true_depth`. A frame the session drops keeps the previous pose (the node publishes
    nothing for it; counted in the stats). Returns (odometry poses, map poses as published,
    learned pose head poses: each (N, 4, 4), stats, map poses after the last optimisation
    (`final_map_poses`; None without a pose graph)). With true poses, the stats say how well
    the published odometry covariance describes the errors (`odometry_covariance_consistency`).
    `reference` (N, 4, 4): the camera's pose in a reference odometry at each frame (metres),
    given to the session before the frame (`Session.add_reference_pose`; the config must set
    scale_odometry_topic). On the model's depth, with the recording's true depth, the stats
    hold the published depth's metric errors (`published_depth_errors`): the mean over every
    frame, and with a reference over the frames processed after its first scale sample
    (suffix `_scaled`)."""
    from tqdm import tqdm

    from geovr_ros.geometry import invert_pose, rotate_covariance
    from geovr_ros.session import Session
    mount = np.eye(4) if mount is None else np.asarray(mount, np.float64)
    session = Session(pipeline, config, mount=mount)
    stamps, _ = session_stamps(seq)
    odom, maps, learned = [np.eye(4)], [np.eye(4)], [np.eye(4)]
    anchors, keyframe = [None], None    # the tracking keyframe each frame was tracked against
    covariances, keyframe_frame = [], None   # (keyframe's frame, frame, covariance in the tracker's odom axes)
    map_covariances = []                       # (frame, map pose, its covariance), the tracker's axes
    twist_covariances, previous = [], None     # (previous frame, frame, twist covariance x dt^2 in odom axes)
    tracking_ms, graph_ms, model_ms, inliers, dropped = [], [], [], [], 0
    depth_errors = []                          # ((AbsRel, δ1) of each frame's published depth, scaled yet)
    for i in tqdm(range(len(seq)), desc='session' + (', true depth' if true_depth else ''),
                  disable=not progress):
        if reference is not None:
            session.add_reference_pose(stamps[i], reference[i])
        depth = (seq.depth[i], seq.K[i]) if true_depth else None
        scaled = session.odometry_scale is not None and session.odometry_scale.samples > 0
        frame = session.process(seq.rgb[i], seq.K[i], stamps[i], depth=depth)
        if not frame.dropped and seq.depth is not None and not true_depth:
            depth_errors.append((published_depth_errors(frame.perception.depth, frame.perception.K,
                                                        seq.depth[i], seq.K[i]), scaled))
        if frame.dropped:
            dropped += 1
            odom.append(odom[-1]), maps.append(maps[-1]), learned.append(learned[-1]), anchors.append(anchors[-1])
            continue
        unmount = invert_pose(session.mount)   # the mount as the first frame levelled it (odom_level_from_depth)
        odom.append(unmount @ frame.T_odom_cam)
        maps.append(unmount @ (frame.T_map_cam if frame.T_map_odom is not None else frame.T_odom_cam))
        learned.append(frame.learned.T_odom_cam)
        tracked = frame.tracking is not None and frame.tracking.status == 'tracking' and frame.covariance is not None
        if tracked and keyframe_frame is not None:   # a new keyframe's pose is from the previous one
            covariances.append((keyframe_frame, i, rotate_covariance(frame.covariance, unmount[:3, :3])))
        if frame.tracking is not None and frame.tracking.keyframe is not None:
            keyframe, keyframe_frame = frame.tracking.keyframe, i
        if frame.T_map_odom is not None and frame.map_covariance is not None:
            map_covariances.append((i, maps[-1], rotate_covariance(frame.map_covariance, unmount[:3, :3])))
        if frame.twist_covariance is not None and previous is not None:   # the velocity's, as a pose step
            dt = stamps[i] - stamps[previous]
            twist_covariances.append((previous, i, rotate_covariance(frame.twist_covariance * dt ** 2,
                                                                     odom[previous + 1][:3, :3])))
        previous = i
        anchors.append(keyframe)
        timings = frame.timings_ms
        model_ms.append(timings['preprocess_ms'] + timings['model_ms'])
        if frame.tracking is not None:
            tracking_ms.append(timings['tracking_ms'])
            graph_ms.append(timings['graph_ms'])
            if frame.tracking.status == 'tracking':
                inliers.append(frame.tracking.inliers)
    tracker, graph = session.geometric.tracker, session.pose_graph
    stats = {'tracking_ms_median': float(np.median(tracking_ms)) if tracking_ms else float('nan'),
             'graph_ms_mean': float(np.mean(graph_ms)) if graph_ms else float('nan'),
             'failures': float(tracker.failures), 'keyframes': float(tracker.keyframes_created),
             'flow_frames': float(tracker.flow_tracked),
             'shift_recoveries': float(tracker.shift_recoveries),
             'shift_fallbacks': float(tracker.shift_fallbacks),
             'loop_closures': float(len(graph.loops)) if graph is not None else 0.0,
             'inliers_median': float(np.median(inliers)) if inliers else 0.0,
             'travelled_answer_m': _travelled_answer(session, stamps),
             'model_ms_median': float(np.median(model_ms)) if model_ms else float('nan'),
             'frames_dropped': float(dropped)}
    if session.config.tracking_fallback == 'reference':
        stats['reference_fallbacks'] = float(tracker.reference_fallbacks)
    if session.floor is not None:
        stats['floor_frames'] = session.floor.frames_with_floor / max(len(seq), 1)
        stats['floor_scale'] = session.floor.scale
    if session.odometry_scale is not None:
        stats['odometry_scale'] = session.odometry_scale.scale
        stats['odometry_scale_samples'] = float(session.odometry_scale.samples)
    for suffix, kept in (('', (False, True)), ('_scaled', (True,))):   # every frame; those after a scale sample
        errors = np.array([e for e, scaled in depth_errors if e is not None and scaled in kept]).reshape(-1, 2)
        if len(errors):
            stats[f'depth_abs_rel{suffix}'], stats[f'depth_delta1{suffix}'] = (float(v) for v in errors.mean(axis=0))
    odom = np.stack(odom[1:])
    truth = seq.T_world_cam
    if truth is not None and np.isfinite(truth).all():
        truth = invert_pose(truth[0]) @ truth
        stats.update(odometry_covariance_consistency(odom, truth, covariances))
        stats.update({f'twist_{k}': v for k, v in odometry_covariance_consistency(odom, truth, twist_covariances).items()})
        if map_covariances:
            from geovr_training.evaluation.metrics import covariance_consistency
            scored = covariance_consistency([p for _, p, _ in map_covariances], truth[[i for i, _, _ in map_covariances]],
                                            [c for _, _, c in map_covariances])
            stats.update({f'map_covariance_{k}': v for k, v in scored.items() if k != 'error_median_m'})
    return odom, np.stack(maps[1:]), np.stack(learned[1:]), stats, final_map_poses(odom, anchors[1:], graph)


def published_depth_errors(depth: np.ndarray, K: np.ndarray, true_depth: np.ndarray, true_K: np.ndarray
                           ) -> tuple[float, float] | None:
    """(AbsRel, δ1) of a depth map the session published, (h, w) metres with K (3, 3),
    against the recording's true depth (H, W) with true_K, read at the published pixels'
    centres (nearest); None where no pixel has a true depth."""
    from geovr_ros.geometry import GeometryError, depth_metrics, pixel_centers
    from geovr_ros.tracking.tracker import sample_depth
    h, w = depth.shape
    pixels = pixel_centers(h, w).reshape(-1, 2)
    truth = sample_depth(true_depth, true_K, K, pixels).reshape(h, w)
    try:
        row = depth_metrics(depth, truth)
    except GeometryError:
        return None
    return row['abs_rel'], row['delta1']


def reference_poses(gt: np.ndarray, length_error: float = 0.0, noise_m: float = 0.0,
                    seed: int = 0, turn_error: float = 0.0) -> np.ndarray:
    """(N, 4, 4): what a reference odometry (a robot's wheel odometry) would say of the true
    camera poses `gt` (N, 4, 4): every length times 1 + `length_error` (a wheel's radius off
    by that much), plus Gaussian noise of `noise_m` metres on each position; the orientations
    the true ones with every turn from one pose to the next times 1 + `turn_error` (a wheel
    base or gyro off by that much: the heading error grows with the turns)."""
    from geovr_ros.geometry import make_pose, so3_exp, so3_log
    positions = gt[:, :3, 3] * (1.0 + length_error)
    if noise_m > 0:
        positions = positions + np.random.default_rng(seed).normal(0.0, noise_m, positions.shape)
    rotations = [gt[0, :3, :3]]
    for before, after in zip(gt[:-1, :3, :3], gt[1:, :3, :3]):
        rotations.append(rotations[-1] @ so3_exp((1.0 + turn_error) * so3_log(before.T @ after)))
    return np.stack([make_pose(R, t) for R, t in zip(rotations, positions)])


def known_floor_session(seq, config):
    """(SessionConfig, mount) of a robot that knows its camera's height and up
    (`metrics.known_floor` on the recording's truth): floor_camera_height set, odom_child base,
    the mount the first frame's true tilt (odom x its forward direction levelled, z up); (config,
    None) unchanged when the truth knows no floor or no gravity."""
    import dataclasses

    known = true_tilt_mount(seq)
    if known is None:
        return config, None
    mount, height = known
    return dataclasses.replace(config, floor_camera_height=height, odom_child='base'), mount


def true_tilt_mount(seq) -> tuple[np.ndarray, float] | None:
    """(mount (4, 4), camera height m) from the recording's truth (`metrics.known_floor`): the
    mount the first frame's true tilt (odom x its forward direction levelled, z up), the height
    the first camera's above the floor; None when the truth knows no floor or no gravity."""
    from geovr_training.evaluation.metrics import known_floor
    known = None if seq.depth is None else known_floor(seq.depth, seq.K, seq.T_world_cam)
    if known is None:
        return None
    ups, height = known
    up = ups[0] / np.linalg.norm(ups[0])
    forward = np.array([0.0, 0.0, 1.0]) - up[2] * up       # the optical axis, levelled
    forward /= np.linalg.norm(forward)
    mount = np.eye(4)
    mount[:3, :3] = np.stack([forward, np.cross(up, forward), up])   # rows: odom x, y, z in the camera's axes
    return mount, height


def session_config(assignments: list[str], objects_enabled: bool = False, **defaults):
    """The node's default `SessionConfig` with `defaults` (field values) and then the `NAME=VALUE`
    assignments (values read as YAML, as every `--set` of the project reads them, then checked
    against the field's type), the object map off unless `objects_enabled`. Raises ValueError
    naming an unknown parameter or a value of the wrong type."""
    from geovr_ros.session import SessionConfig
    return SessionConfig(**{'objects_enabled': objects_enabled, **defaults, **session_overrides(assignments)})


def session_overrides(assignments: list[str]) -> dict:
    """{field: value} of `SessionConfig` from `--set NAME=VALUE` assignments (`session_config`)."""
    from geovr_ros.session import SessionConfig
    from geovr_training.train.config import ConfigError, parse_overrides
    kinds = {f.name: f.type if isinstance(f.type, str) else f.type.__name__
             for f in dataclasses.fields(SessionConfig)}
    accepted = {'bool': (bool,), 'int': (int,), 'float': (int, float), 'str': (str,)}
    values = {}
    for assignment in assignments:
        try:
            (name, value), = parse_overrides([assignment]).items()
        except (ConfigError, ValueError):   # no '=', or a dotted name
            name, value = None, None
        if name not in kinds:
            raise ValueError(f'--set {assignment!r}: expected NAME=VALUE with NAME one of '
                             f'{", ".join(sorted(kinds))}')
        kind = kinds[name]
        if kind == 'str' and value is None:   # NAME= : the empty string
            value = ''
        if not isinstance(value, accepted[kind]) or (kind != 'bool' and isinstance(value, bool)):
            raise ValueError(f'--set {assignment!r}: {name} must be of type {kind}')
        values[name] = float(value) if kind == 'float' else value
    return values


class CachedPipeline:
    """A `PerceptionPipeline` whose `run` results are kept in `folder`, one .npz per call,
    named by a hash of the model's files and of both input frames (pixels and K): a repeated
    evaluation replays them instead of running the model. Everything else is the pipeline's.
    `hits` and `misses` count the calls answered from the folder and by the model."""

    _ARRAYS = ('depth', 'K', 'rel_pose', 'tokens', 'token_xyz', 'descriptor', 'depth_ref', 'depth_confidence')

    def __init__(self, pipeline, folder: str | Path, model_dir: str | Path):
        self._pipeline = pipeline
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1()
        for path in sorted(p for p in Path(model_dir).rglob('*') if p.is_file()):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        self._model_key = digest.digest()
        self.hits = self.misses = 0

    def __getattr__(self, name):
        return getattr(self._pipeline, name)

    def run(self, reference, current):
        from geovr_ros.inference.decode import PerceptionResult
        digest = hashlib.sha1(self._model_key)
        for frame in (reference, current):
            digest.update(np.ascontiguousarray(frame.chw).tobytes())
            digest.update(np.asarray(frame.K, np.float64).tobytes())
        path = self.folder / f'{digest.hexdigest()}.npz'
        if path.exists():
            try:
                with np.load(path) as stored:
                    arrays = {k: stored[k] if k in stored else None for k in self._ARRAYS}
                    result = PerceptionResult(**arrays, scale=float(stored['scale']),
                                              timings_ms=json.loads(str(stored['timings_ms'])))
                self.hits += 1
                return result
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass   # an unreadable entry (a copy cut short): the model computes it again
        result = self._pipeline.run(reference, current)
        self.misses += 1
        arrays = {k: getattr(result, k) for k in self._ARRAYS if getattr(result, k) is not None}
        partial = path.with_name(f'{path.stem}.{os.getpid()}.partial.npz')
        np.savez(partial, **arrays, scale=np.float64(result.scale), timings_ms=json.dumps(result.timings_ms))
        os.replace(partial, path)
        return result


def _mean(values: list[float]) -> float:
    """Mean over the sequences that have the value (NaN: e.g. no revisit); NaN if none has."""
    values = np.asarray(values, np.float64)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float('nan')


def _travelled_answer(session, stamps: np.ndarray) -> float:
    """What the session answers to "how far have I travelled?" (m; NaN when it cannot)."""
    answer = session.answer('how far have I travelled?', now=float(stamps[-1])) if len(stamps) else None
    return float(answer.value) if answer is not None and answer.success else float('nan')


ROWS = (('tracker on the model depth, odom', 'tracker'), ('tracker on the model depth, map (pose graph)', 'tracker_map'),
        ('tracker on the model depth, map after the last optimisation', 'tracker_final'),
        ('learned pose head alone', 'pose_head'), ('no motion', 'static'),
        ('the true path (its length)', 'truth'),
        ('tracker on the true depth (upper bound), odom', 'true_depth'),
        ('tracker on the true depth (upper bound), map', 'true_depth_map'),
        ('tracker on the true depth (upper bound), map after the last optimisation', 'true_depth_final'))
COLUMNS = (('ate_sim3_m', 'ATE Sim(3) m', '.3f'), ('ate_sim3_pct', 'Sim(3) % path', '.2f'),
           ('ate_se3_m', 'ATE SE(3) m', '.3f'), ('ate_se3_pct', 'SE(3) % path', '.2f'),
           ('rpe_trans_m', 'RPE-T m/frame', '.4f'), ('rpe_rot_deg', 'RPE-R deg/frame', '.3f'),
           ('revisit_error_m', 'error at the revisit m', '.3f'),
           ('travelled_m', 'travelled m (frame by frame)', '.2f'),
           ('travelled_answer_m', '"how far have I travelled" m', '.2f'),
           ('failures', 'tracking failures', '.1f'),
           ('shift_recoveries', 'tracked from the image shift', '.1f'),
           ('shift_fallbacks', 'failed, turned by the image shift', '.1f'),
           ('reference_fallbacks', "failed, placed by the reference odometry's motion", '.1f'),
           ('loop_closures', 'loop closures', '.1f'), ('tracking_ms_median', 'tracking ms (median)', '.1f'),
           ('graph_ms_mean', 'graph ms (mean)', '.1f'),
           ('covariance_within_95', 'odometry covariance: position errors inside its 95 %', '.2f'),
           ('covariance_rotation_within_95', '... rotation errors inside', '.2f'),
           ('covariance_sigma_m', '... its median sigma m', '.4f'),
           ('twist_covariance_within_95', 'twist covariance: frame-to-frame position errors inside its 95 %', '.2f'),
           ('twist_covariance_rotation_within_95', '... rotation errors inside', '.2f'),
           ('map_covariance_within_95', 'map covariance: position errors inside its 95 %', '.2f'),
           ('map_covariance_rotation_within_95', '... rotation errors inside', '.2f'),
           ('map_covariance_sigma_median_m', '... its median sigma m', '.3f'),
           ('floor_frames', 'floor seen (share of frames)', '.2f'), ('floor_scale', 'floor scale (last)', '.2f'),
           ('odometry_scale', 'reference odometry scale (last)', '.3f'),
           ('odometry_scale_samples', '... its samples', '.0f'),
           ('depth_abs_rel', 'published depth AbsRel', '.3f'), ('depth_delta1', 'published depth δ1', '.3f'),
           ('depth_abs_rel_scaled', '... AbsRel once the reference odometry gave a scale', '.3f'),
           ('depth_delta1_scaled', '... δ1 then', '.3f'))


def markdown(rows: dict[str, dict]) -> str:
    def shown(row, key):
        return key in row and np.isfinite(row[key])
    present = [c for c in COLUMNS if any(shown(r, c[0]) for r in rows.values())]
    lines = ['| | ' + ' | '.join(h for _, h, _ in present) + ' |', '|---|' + '---|' * len(present)]
    for name, row in rows.items():
        lines.append(f'| {name} | ' + ' | '.join(format(row[k], f) if shown(row, k) else '—'
                                                 for k, _, f in present) + ' |')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval odometry', description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='exported model directory (perception.onnx, '
                                                       'or the split graphs of GeoVR-S v2)')
    parser.add_argument('--data', required=True, help='dataset folder (its --split) or a real recording')
    parser.add_argument('--split', default='test', help="a generated dataset's split ('all': every one)")
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--backend', default='onnxruntime', help='runtime backend (default onnxruntime)')
    parser.add_argument('--max-frames', type=int, default=None)
    parser.add_argument('--max-sequences', type=int, default=None)
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--set', action='extend', nargs='*', default=[], metavar='NAME=VALUE',
                        help='node parameters of the session, e.g. tracking_threshold_px=4 (repeatable)')
    parser.add_argument('--cache', default=None, metavar='DIR',
                        help="keep the model's outputs in DIR and reuse them on the next run")
    parser.add_argument('--truth-time-offset', type=float, default=0.0, metavar='S',
                        help="a TUM recording's true poses looked up S seconds after each frame's stamp (the "
                             "camera's clock against the motion capture's, as TUM's evaluate_rpe.py --offset; "
                             "default 0); the session runs on the recording's stamps either way")
    parser.add_argument('--known-floor', action='store_true',
                        help='run the session as on a robot that knows its camera height and which way is '
                             'up: floor_camera_height from the true depth and odom_child base with the first '
                             "frame's true tilt as the mount (recordings with gravity-aligned poses)")
    parser.add_argument('--reference-odometry', action='store_true',
                        help="run the session as on a robot with wheel odometry: the recording's true camera "
                             "positions as the reference odometry whose distances scale the model's depth "
                             "(scale_odometry_topic)")
    parser.add_argument('--reference-length-error', type=float, default=0.0, metavar='F',
                        help="with --reference-odometry: the reference's lengths times 1 + F (a wheel's "
                             "radius off by F; default 0)")
    parser.add_argument('--reference-noise', type=float, default=0.0, metavar='M',
                        help='with --reference-odometry: Gaussian noise of M metres on each reference '
                             'position (default 0)')
    parser.add_argument('--reference-turn-error', type=float, default=0.0, metavar='F',
                        help="with --reference-odometry: the reference's turns times 1 + F (default 0: the "
                             "true orientations, which --set tracking_fallback=reference takes for a failed "
                             "frame; the session then runs with odom_child base and the first camera as base)")
    args = parser.parse_args(argv)

    from geovr_ros.inference import MetadataError, ModelFileError, PerceptionPipeline
    from geovr_training.evaluation.data import load_sequences
    try:
        defaults = {}
        if args.reference_odometry:
            defaults['scale_odometry_topic'] = 'truth'
            if session_overrides(args.set).get('tracking_fallback') == 'reference':
                defaults['odom_child'] = 'base'   # the reference is the camera's own path: the base is the camera
        config = session_config(args.set, **defaults)
        if args.reference_odometry:
            config = dataclasses.replace(config, scale_odometry_topic=config.scale_odometry_topic or 'truth')
        elif args.reference_length_error or args.reference_noise or args.reference_turn_error:
            raise ValueError('--reference-length-error, --reference-noise and --reference-turn-error need '
                             '--reference-odometry')
        if not (np.isfinite(args.reference_noise) and args.reference_noise >= 0
                and np.isfinite(args.reference_length_error) and args.reference_length_error > -1
                and np.isfinite(args.reference_turn_error) and args.reference_turn_error > -1):
            raise ValueError(f'--reference-noise must be >= 0 metres, --reference-length-error and '
                             f'--reference-turn-error > -1, got {args.reference_noise!r}, '
                             f'{args.reference_length_error!r} and {args.reference_turn_error!r}')
        sequences = load_sequences(args.data, args.split, args.max_sequences, args.max_frames,
                                   truth_time_offset=args.truth_time_offset)
        pipeline = PerceptionPipeline(args.model, backend=args.backend)
        if args.cache:
            pipeline = CachedPipeline(pipeline, args.cache, args.model)
        from geovr_ros.session import Session
        Session(pipeline, config, mount=np.eye(4))   # refuses a bad --set value before any frame runs
    except (FileNotFoundError, ValueError, OSError, MetadataError, ModelFileError) as exc:
        print(f'geovr-eval odometry: error: {exc}', file=sys.stderr)
        return 2
    per_sequence = []
    plot = None
    for seq in sequences:
        gt = seq.T_world_cam
        if gt is None or not np.isfinite(gt).all():
            print(f'geovr-eval odometry: {seq.name} has no true poses: skipped', file=sys.stderr)
            continue
        gt = np.linalg.inv(gt[0]) @ gt  # in the first frame's optical frame, as the estimates
        note = session_stamps(seq)[1]
        if note:
            print(f'geovr-eval odometry: {seq.name}: {note}', file=sys.stderr)
        seq_config, mount = config, None
        if args.known_floor:
            seq_config, mount = known_floor_session(seq, config)
            if mount is None:
                print(f'geovr-eval odometry: {seq.name}: no floor or no gravity in its truth: run without '
                      f'floor_camera_height', file=sys.stderr)
        reference = reference_poses(gt, args.reference_length_error, args.reference_noise,
                                    turn_error=args.reference_turn_error) if args.reference_odometry else None
        est_model, map_model, pose_head, stats_model, final_model = run_session(
            seq, pipeline, config=seq_config, progress=not args.no_progress, mount=mount, reference=reference)
        on_map = {k: stats_model.pop(k) for k in list(stats_model) if k.startswith('map_covariance_')}
        rows = {'tracker': {**trajectory_row(est_model, gt), **stats_model},
                'tracker_map': {**trajectory_row(map_model, gt), **on_map},
                'pose_head': trajectory_row(pose_head, gt),
                'static': trajectory_row(np.broadcast_to(np.eye(4), gt.shape).copy(), gt),
                'truth': true_path_row(gt)}
        if final_model is not None:
            rows['tracker_final'] = trajectory_row(final_model, gt)
        est_true = None
        if seq.depth is not None:
            est_true, map_true, _, stats_true, final_true = run_session(   # the reference too: a failed frame's pose
                seq, pipeline, true_depth=True, config=seq_config, progress=not args.no_progress, mount=mount,
                reference=reference)
            on_map = {k: stats_true.pop(k) for k in list(stats_true) if k.startswith('map_covariance_')}
            rows['true_depth'] = {**trajectory_row(est_true, gt), **stats_true}
            rows['true_depth_map'] = {**trajectory_row(map_true, gt), **on_map}
            if final_true is not None:
                rows['true_depth_final'] = trajectory_row(final_true, gt)
        per_sequence.append({'sequence': seq.name, 'frames': len(seq), **{k: v for k, v in rows.items()}})
        if plot is None:
            plot = (seq.name, gt, est_model, est_true, pose_head, final_model)
    if not per_sequence:
        print('geovr-eval odometry: no sequence with true poses', file=sys.stderr)
        return 2
    summary = {}
    for _, key in ROWS:
        items = [s[key] for s in per_sequence if key in s]
        if items:
            keys = dict.fromkeys(k for r in items for k in r)      # every key, in order of appearance
            summary[key] = {k: _mean([r[k] for r in items if k in r]) for k in keys}
    table = markdown({name: summary[key] for name, key in ROWS if key in summary})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = 'geovr-eval odometry ' + ' '.join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[2:]))
    (out / 'odometry.json').write_text(json.dumps({'command': command, 'summary': summary,
                                                   'per_sequence': per_sequence}, indent=2))
    means = f'Means over the {len(per_sequence)} sequences.\n\n' if len(per_sequence) > 1 else ''
    (out / 'odometry.md').write_text(f'# Odometry\n\nCommand: `{command}`\n\n{means}{table}\n')
    _plot(out / 'odometry.png', *plot)
    print(table)
    if args.cache:
        print(f'model outputs: {pipeline.hits} from {args.cache}, {pipeline.misses} computed')
    print(f'wrote {out / "odometry.json"}, {out / "odometry.md"}, {out / "odometry.png"}')
    return 0


def _plot(path: Path, name: str, gt: np.ndarray, est: np.ndarray, est_true, pose_head: np.ndarray,
          final=None) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 6))
    # top view in the first camera's optical frame: x right, z forward
    ax.plot(gt[:, 0, 3], gt[:, 2, 3], 'k-', lw=2, label='true')
    ax.plot(est[:, 0, 3], est[:, 2, 3], 'C0-', label='tracker, model depth (odom)')
    if final is not None:
        ax.plot(final[:, 0, 3], final[:, 2, 3], 'C1-', label='the same, map after the last optimisation')
    if est_true is not None:
        ax.plot(est_true[:, 0, 3], est_true[:, 2, 3], 'C2--', label='tracker, true depth')
    ax.plot(pose_head[:, 0, 3], pose_head[:, 2, 3], 'C3:', label='learned pose head')
    ax.set_xlabel('x (m, first camera right)')
    ax.set_ylabel('z (m, first camera forward)')
    ax.set_title(f'{name}: trajectories (no alignment)')
    ax.axis('equal')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
