"""`geovr-eval localize --model DIR --data REC --map-frames A:B --frames C:D --out O`: localizing
in a saved map, as a robot that reuses yesterday's map does.

The runtime session (what geovr_node runs) maps frames A:B of the recording and saves the map
(`Session.save_map`); a fresh session loads it (`Session.load_map`) and runs frames C:D (a
Python slice, `start:stop[:step]`) from odometry's own origin. Every frame of the second pass
with map -> odom known is scored two ways:
- against the map: where the map itself puts that view, i.e. the map pose of the nearest
  mapped frame (after the mapping pass's last pose-graph optimisation: the map that was saved)
  moved by the true motion between the two frames (what localization can be asked for:
  agreement with the map it was given);
- against the truth, the map frame (the mapping pass's first camera frame) put in the world by
  that frame's true pose; this adds the map's own error, reported beside it.
Beside the runtime, the camera put at the recognised keyframe itself (place recognition alone).
The map pose's published covariance is checked against the errors (against the map): the share
inside its 95 % ellipsoid, and the standard deviation it states.
Writes O/localize.json and O/localize.md.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def _frames(text: str) -> slice:
    try:
        parts = [int(p) if p else None for p in text.split(':')]
        if not 2 <= len(parts) <= 3:
            raise ValueError
        return slice(*parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected start:stop[:step], got {text!r}') from None


def _errors(T_est: list[np.ndarray], T_true: np.ndarray) -> dict[str, float]:
    """Median / 90th percentile position error (m) and median rotation error (deg)."""
    from geovr_ros.geometry import rotation_angle
    if not len(T_est):
        return {'median_m': float('nan'), 'p90_m': float('nan'), 'rotation_median_deg': float('nan')}
    T_est, T_true = np.stack(T_est), np.asarray(T_true)
    position = np.linalg.norm(T_est[:, :3, 3] - T_true[:, :3, 3], axis=1)
    rotation = [np.degrees(rotation_angle(a[:3, :3].T @ b[:3, :3])) for a, b in zip(T_est, T_true)]
    return {'median_m': float(np.median(position)), 'p90_m': float(np.quantile(position, 0.9)),
            'rotation_median_deg': float(np.median(rotation))}


def _score_match(session, rgb, K, verified, T_world_kf, T_world_cur, matches) -> None:
    """The relative pose of a verified place match against the truth: as PnP gave it, as the
    model's pose head gives it for the same pair, and as the keyframe itself (identity); a
    rejected one's true distance between the two views."""
    from geovr_ros.geometry import invert_pose
    keyframe, located = verified
    true = invert_pose(T_world_kf) @ T_world_cur
    if located is None:
        matches['rejected_distance_m'].append(float(np.linalg.norm(true[:3, 3])))
        return
    cur = session.perception.preprocess(rgb, K)
    learned = session.perception.run(session.perception.preprocess(keyframe.image, keyframe.K, cur.size), cur).rel_pose
    for name, estimate in (('pnp', located.T_kf_cur), ('learned', learned), ('at the keyframe', np.eye(4))):
        matches[name][0].append(estimate)
        matches[name][1].append(true)


def _at_keyframe(match):
    import dataclasses
    return None if match is None else dataclasses.replace(match, T_kf_cur=np.eye(4))


def localize(pipeline, recording, map_frames: slice, frames: slice, config=None, at_keyframe: bool = False,
             progress: bool = True) -> dict:
    """The two passes (module docstring) on `recording` (a Sequence with true poses); with
    `at_keyframe` a verified match puts the camera at the recognised keyframe itself."""
    from tqdm import tqdm

    from geovr_ros.geometry import invert_pose
    from geovr_ros.session import Session
    from geovr_ros.session import session as session_module
    from geovr_training.evaluation.metrics import covariance_consistency
    from geovr_training.evaluation.odometry import final_map_poses, session_stamps
    mapping, later = recording.select(map_frames), recording.select(frames)
    if len(mapping) < 2 or len(later) < 1:
        raise ValueError(f'the map needs 2 frames and the second pass 1, got {len(mapping)} and {len(later)}')
    mapped_index = np.arange(len(recording))[map_frames]    # recording frame of each mapping frame
    later_index = np.arange(len(recording))[frames]
    first = Session(pipeline, config, mount=np.eye(4))
    stamps, _ = session_stamps(mapping)
    frame_of_stamp = {float(t): int(k) for t, k in zip(stamps, mapped_index)}   # map keyframes keep their stamp
    mapped, published, odometry, anchors, anchor = [], [], [], [], None
    for i in tqdm(range(len(mapping)), desc='mapping', disable=not progress):
        frame = first.process(mapping.rgb[i], mapping.K[i], stamps[i])
        if frame.dropped:
            continue
        if frame.tracking is not None and frame.tracking.keyframe is not None:
            anchor = frame.tracking.keyframe
        mapped.append(int(mapped_index[i]))
        published.append(frame.T_map_cam if frame.T_map_odom is not None else frame.T_odom_cam)
        odometry.append(frame.T_odom_cam)
        anchors.append(anchor)
    final = final_map_poses(np.stack(odometry), anchors, first.pose_graph) if mapped else None
    map_poses = dict(zip(mapped, published if final is None else final))   # recording frame -> the map's pose of it
    truth = recording.T_world_cam
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, 'map.npz')
        keyframes = first.save_map(path)
        second = Session(pipeline, config, mount=np.eye(4))
        second.load_map(path)
    origin = int(mapped_index[0])
    world_from_map = truth[origin] @ invert_pose(map_poses[origin])   # the map frame: the first camera frame
    known = np.array(sorted(map_poses))
    if at_keyframe:   # place recognition alone: a verified match puts the camera at the keyframe
        runtime_locate = session_module.locate
        session_module.locate = lambda *args, **kwargs: _at_keyframe(runtime_locate(*args, **kwargs))
    try:
        stamps, _ = session_stamps(later)
        located, beliefs, true_poses, covariances, first_located = [], [], [], [], None
        matches = {'pnp': ([], []), 'learned': ([], []), 'at the keyframe': ([], []), 'rejected_distance_m': []}
        for i in tqdm(range(len(later)), desc='localizing', disable=not progress):
            frame = second.process(later.rgb[i], later.K[i], stamps[i])
            for checked in ([] if at_keyframe else second.place_checks):
                _score_match(second, later.rgb[i], later.K[i], checked, truth[frame_of_stamp[float(checked[0].stamp)]],
                             truth[int(later_index[i])], matches)
            if frame.dropped or frame.T_map_odom is None:
                continue
            first_located = i if first_located is None else first_located
            j = int(later_index[i])
            nearest = int(known[np.argmin(np.abs(known - j))])
            located.append(frame.T_map_cam)
            covariances.append(frame.map_covariance)
            beliefs.append(map_poses[nearest] @ invert_pose(truth[nearest]) @ truth[j])
            true_poses.append(invert_pose(world_from_map) @ truth[j])
    finally:
        if at_keyframe:
            session_module.locate = runtime_locate
    return {'map_keyframes': keyframes, 'frames': len(later), 'localized': len(located),
            'first_localized': first_located, 'place_matches': dict(second.place_matches),
            'against_map': _errors(located, beliefs), 'against_truth': _errors(located, true_poses),
            'covariance_against_map': covariance_consistency(located, beliefs, covariances),
            'relative_pose_at_matches': {name: _errors(*pair) for name, pair in matches.items() if name != 'rejected_distance_m'},
            'rejected_true_distance_m': sorted(round(d, 2) for d in matches['rejected_distance_m']),
            'map_itself': _errors([map_poses[k] for k in known], [invert_pose(world_from_map) @ truth[k] for k in known])}


def markdown(rows: dict[str, dict]) -> str:
    def cell(errors):
        return f"{errors['median_m']:.3f} / {errors['p90_m']:.3f} m, {errors['rotation_median_deg']:.1f} deg"
    def consistency(stated):
        return f"{stated['within_95']:.2f} / {stated['rotation_within_95']:.2f}, {stated['sigma_median_m']:.3f} m"
    lines = ['| | localized / frames (first) | place matches accepted / rejected | against the map: median / p90, '
             'rotation median | against the truth | covariance: position / rotation errors inside its 95 % ellipsoid, median sigma |',
             '|---|---|---|---|---|---|']
    for name, row in rows.items():
        matches = row['place_matches']
        lines.append(f"| {name} | {row['localized']} / {row['frames']} ({row['first_localized']}) | "
                     f"{matches.get('accepted', 0)} / {matches.get('rejected', 0)} | {cell(row['against_map'])} | "
                     f"{cell(row['against_truth'])} | {consistency(row['covariance_against_map'])} |")
    first = next(iter(rows.values()))
    lines.append(f"| the map itself (the saved map: map poses after the last optimisation) | | | | {cell(first['map_itself'])} | |")
    lines += ['', "The relative pose (current camera in the recognised keyframe) at the runtime's accepted matches, "
              'against the truth: median / p90 position error, median rotation error', '', '| | error |', '|---|---|']
    lines += [f'| {name} | {cell(errors)} |' for name, errors in first['relative_pose_at_matches'].items()]
    lines += ['', f"Proposals PnP rejected, true distance between the two views (m): {first['rejected_true_distance_m']}"]
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='geovr-eval localize', description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='exported model directory')
    parser.add_argument('--data', required=True, help='a recording (or one-sequence dataset) with true poses')
    parser.add_argument('--split', default='all', help="the dataset's split (a recording: 'all')")
    parser.add_argument('--map-frames', type=_frames, required=True, help='frames that make the map, start:stop[:step]')
    parser.add_argument('--frames', type=_frames, required=True, help='frames localized in it, start:stop[:step]')
    parser.add_argument('--out', required=True)
    parser.add_argument('--backend', default='onnxruntime')
    parser.add_argument('--cache', default=None, help="keep the model's outputs in DIR and reuse them")
    parser.add_argument('--set', nargs='*', default=[], metavar='NAME=VALUE', action='extend',
                        help='node parameters of the session (as geovr-eval odometry --set)')
    parser.add_argument('--no-progress', action='store_true')
    args = parser.parse_args(argv)
    from geovr_ros.inference import PerceptionPipeline
    from geovr_training.evaluation.data import load_sequences
    from geovr_training.evaluation.odometry import CachedPipeline, session_config
    config = session_config(args.set)
    recording = load_sequences(args.data, args.split)[0]
    if recording.T_world_cam is None or not np.isfinite(recording.T_world_cam).all():
        parser.error(f'{args.data} has frames without a true pose')
    pipeline = PerceptionPipeline(args.model, backend=args.backend)
    if args.cache:
        pipeline = CachedPipeline(pipeline, args.cache, args.model)
    try:
        rows = {'placed by PnP on the keyframe depth (the runtime)':
                localize(pipeline, recording, args.map_frames, args.frames, config, progress=not args.no_progress),
                'put at the recognised keyframe (place recognition alone)':
                localize(pipeline, recording, args.map_frames, args.frames, config, at_keyframe=True,
                         progress=not args.no_progress)}
    except ValueError as error:   # frame ranges that leave too little to map or to localize
        parser.error(str(error))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'localize.json').write_text(json.dumps(rows, indent=1))
    table = markdown(rows)
    (out / 'localize.md').write_text(f'{args.data}: map of frames {args.map_frames}, localized frames {args.frames}\n\n'
                                     + table)
    print(table)
    print(f'wrote {out / "localize.json"}, {out / "localize.md"}')
    return 0
