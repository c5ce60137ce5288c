"""TUM RGB-D benchmark folders: rgb.txt, depth.txt, groundtruth.txt (depth PNG / 5000 = m).

Each colour frame is associated with the nearest depth frame within `max_difference` seconds,
and with the ground-truth pose at its own time: interpolated between the two motion-capture
samples around it (linear position, rotation along the geodesic) when both are within
`max_difference` s, else the nearest within that. (fr1_rpy turns at up to 50 deg/s; the
nearest 100 Hz sample is up to 5 ms off, 0.25 deg, half the per-frame error of a good tracker.) Ground truth `tx ty tz qx qy qz qw` is the
optical centre of the colour camera in the world (camera-to-world, optical axes). K is the
sensor's (TUM_INTRINSICS): freiburg1/2/3 from the folder name or the `# file:` line of
rgb.txt, unless given. The freiburg1 and freiburg2 colour cameras have lens distortion
(TUM_DISTORTION: up to 8 px at the middle of an edge, 25 px in a corner for freiburg1; the
freiburg3 images were undistorted by TUM): when K comes from a sensor name, its frames are
undistorted to the same K (colour bilinear; the registered depth, which lies in the distorted
colour image, by nearest neighbour), as geovr_node undistorts a camera whose camera_info has D.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from geovr_ros.geometry import pose_from_xyz_quat_xyzw, so3_exp, so3_log
from geovr_ros.recordings._io import read_depth, read_image, read_list
from geovr_ros.recordings.base import (
    FrameChecks, LensCorrection, Recording, RecordingFormatError, RecordingFrame, intrinsics_matrix, select)

# fx, fy, cx, cy of the TUM cameras (https://cvg.cit.tum.de/data/datasets/rgbd-dataset/file_formats);
# 'default' is the ROS default TUM lists for its own unnamed uses.
TUM_INTRINSICS = {
    'freiburg1': (517.3, 516.5, 318.6, 255.3),
    'freiburg2': (520.9, 521.0, 325.1, 249.7),
    'freiburg3': (535.4, 539.2, 320.1, 247.6),
    'default': (525.0, 525.0, 319.5, 239.5),
}
# plumb_bob (k1, k2, p1, p2, k3) of the colour cameras, from the same page; freiburg3 and the
# ROS default have none.
TUM_DISTORTION = {
    'freiburg1': (0.2624, -0.9531, -0.0054, 0.0026, 1.1633),
    'freiburg2': (0.2312, -0.7849, -0.0033, -0.0001, 0.9172),
}
DEPTH_SCALE = 5000.0
_SENSOR = re.compile(r'freiburg[123]')


def tum_sensor(folder: Path) -> str | None:
    """'freiburg1|2|3' from the folder's name, else from the `# file: '...'` line of its rgb.txt."""
    m = _SENSOR.search(Path(folder).resolve().name)
    if m is None and (Path(folder) / 'rgb.txt').is_file():
        with open(Path(folder) / 'rgb.txt', errors='replace') as f:
            header = ''.join(line for _, line in zip(range(5), f) if line.startswith('#'))
        m = _SENSOR.search(header)
    return m.group(0) if m else None


def tum_intrinsics(spec, folder: str | Path) -> np.ndarray:
    """K (3, 3) from a sensor name ('freiburg1|2|3', 'default'), 'fx,fy,cx,cy', (fx, fy, cx, cy),
    a (3, 3) K, or (None) the sensor of `folder` (tum_sensor), else its calibration.txt ('fx fy
    cx cy' of the undistorted colour camera, as the ETH3D SLAM benchmark ships its TUM-format
    sequences)."""
    folder = Path(folder)
    if spec is None:
        spec = tum_sensor(folder) or _calibration_file(folder)
        if spec is None:
            raise RecordingFormatError(folder, 'TUM sensor unknown (no freiburg1/2/3 in the folder name or in '
                                               'the header of rgb.txt, no calibration.txt); give the intrinsics: '
                                               'freiburg1|2|3 or fx,fy,cx,cy')
    if isinstance(spec, str) and spec in TUM_INTRINSICS:
        spec = TUM_INTRINSICS[spec]
    elif isinstance(spec, str) and spec.count(',') != 3:
        raise RecordingFormatError(folder, f'intrinsics {spec!r}: expected freiburg1|freiburg2|freiburg3 or '
                                           'fx,fy,cx,cy')
    return intrinsics_matrix(spec, folder)


def _calibration_file(folder: Path) -> tuple[float, ...] | None:
    """(fx, fy, cx, cy) from the folder's calibration.txt (its first line), or None when there is
    none. Raises RecordingFormatError when it is not four numbers."""
    path = folder / 'calibration.txt'
    if not path.is_file():
        return None
    first = read_list(path, 4)[0]
    try:
        return tuple(float(v) for v in first)
    except ValueError:
        raise RecordingFormatError(path, f'expected "fx fy cx cy", got {" ".join(first)!r}') from None


def tum_distortion(spec, folder: str | Path) -> tuple[float, ...] | None:
    """plumb_bob D of the colour camera when the intrinsics come from a sensor name (`spec`
    'freiburg1|2|3' or 'default', or None: the folder's sensor), else None (numbers given:
    their lens is not known). None also for the sensors without distortion."""
    if spec is None:
        spec = tum_sensor(Path(folder))
    return TUM_DISTORTION.get(spec) if isinstance(spec, str) else None


def _nearest(times: np.ndarray, t: float) -> int:
    i = int(np.searchsorted(times, t))
    return min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t))


def pose_at(times: np.ndarray, poses: list[np.ndarray], t: float, max_difference: float) -> np.ndarray | None:
    """The pose (4, 4) at time `t` from samples (`times` ascending, s): interpolated between the
    samples around t when both are within `max_difference` s of it, else the nearest within
    that; None when no sample is."""
    i = int(np.searchsorted(times, t, side='right'))   # times[i - 1] <= t < times[i]
    if 0 < i < len(times) and t - times[i - 1] <= max_difference and times[i] - t <= max_difference:
        a, b = poses[i - 1], poses[i]
        w = (t - times[i - 1]) / (times[i] - times[i - 1]) if times[i] > times[i - 1] else 0.0
        T = np.eye(4)
        T[:3, :3] = a[:3, :3] @ so3_exp(w * so3_log(a[:3, :3].T @ b[:3, :3]))
        T[:3, 3] = (1 - w) * a[:3, 3] + w * b[:3, 3]
        return T
    k = _nearest(times, t)
    return poses[k] if abs(times[k] - t) <= max_difference else None


def _sorted(rows: list[list[str]]) -> tuple[list[list[str]], np.ndarray]:
    times = np.array([float(r[0]) for r in rows])
    order = np.argsort(times, kind='stable')
    return [rows[i] for i in order], times[order]


def _poses(path: Path, rows: list[list[str]]) -> list[np.ndarray]:
    poses = []
    for row in rows:
        try:
            values = np.array([float(v) for v in row[1:]])
        except ValueError as exc:
            raise RecordingFormatError(path, f'at t={row[0]}: not a number: {exc}') from None
        norm = np.linalg.norm(values[3:])
        if not np.isfinite(values).all() or not norm > 0:
            raise RecordingFormatError(path, f'at t={row[0]}: not a pose {row[1:]}')
        poses.append(pose_from_xyz_quat_xyzw(values[:3], values[3:] / norm))
    return poses


def open_tum(path: str | Path, *, intrinsics=None, max_difference: float = 0.02, with_depth: bool = False,
             require_poses: bool = False, stride: int = 1, max_frames: int | None = None,
             rectify: bool = True, truth_time_offset: float = 0.0) -> Recording:
    """Frames of a TUM RGB-D folder (module docstring) in time order.

    A colour frame without a depth frame within `max_difference` s is left out when
    `with_depth` (as TUM's associate.py does); one without a pose is left out when
    `require_poses`, else has T_world_cam None. intrinsics: a sensor name, 'fx,fy,cx,cy',
    (fx, fy, cx, cy) or a (3, 3) K. rectify: undistort the frames of a sensor with lens
    distortion (tum_distortion); False gives the images as recorded (info says which).
    truth_time_offset: seconds added to a colour frame's stamp where its true pose is looked up
    (the frame keeps its stamp): the camera's clock against the motion capture's, as the
    `--offset` of TUM's evaluate_ate.py and evaluate_rpe.py.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise RecordingFormatError(folder, 'not a folder')
    if not np.isfinite(truth_time_offset):
        raise RecordingFormatError(folder, f'truth_time_offset must be a finite number of seconds, '
                                           f'got {truth_time_offset!r}')
    K = tum_intrinsics(intrinsics, folder)
    distortion = tum_distortion(intrinsics, folder)
    lens = LensCorrection('plumb_bob', distortion, folder) if distortion and rectify else None
    rgb_rows, rgb_t = _sorted(read_list(folder / 'rgb.txt', 2))
    depth_rows, depth_t = _sorted(read_list(folder / 'depth.txt', 2)) if with_depth else ([], np.zeros(0))
    gt_path = folder / 'groundtruth.txt'
    gt_rows, gt_t = _sorted(read_list(gt_path, 8)) if require_poses or gt_path.is_file() else ([], np.zeros(0))
    gt_poses = _poses(gt_path, gt_rows)
    matches = []  # (number, t, rgb file, depth file or None, pose or None)
    for number, ((_, rgb_file), t) in enumerate(zip(rgb_rows, rgb_t)):
        depth_file = pose = None
        if with_depth:
            j = _nearest(depth_t, t)
            if abs(depth_t[j] - t) > max_difference:
                continue
            depth_file = depth_rows[j][1]
        if gt_rows:
            pose = pose_at(gt_t, gt_poses, t + truth_time_offset, max_difference)
        if pose is None and require_poses:
            continue
        matches.append((number, t, rgb_file, depth_file, pose))
    if not matches:
        wanted = ' and '.join(w for w, on in (('a depth frame', with_depth), ('a ground-truth pose', require_poses))
                              if on)
        firsts = ', '.join(f'{n} {ts[0]:.3f}..' for n, ts in (('rgb', rgb_t), ('depth', depth_t),
                                                              ('groundtruth', gt_t)) if len(ts))
        raise RecordingFormatError(folder, f'no colour frame has {wanted} within {max_difference} s ({firsts})')
    matches = select(matches, stride, max_frames)

    def frames():
        checks = FrameChecks()
        for number, t, rgb_file, depth_file, pose in matches:
            rgb = read_image(folder / rgb_file, 'rgb')
            checks.image(rgb, folder / rgb_file)
            checks.intrinsics(K, rgb, folder)
            depth = None
            if depth_file is not None:
                depth = read_depth(folder / depth_file, DEPTH_SCALE)
                checks.depth(depth, rgb, folder / depth_file)
            frame_K = K
            if lens is not None:
                rgb, frame_K, depth = lens(rgb, K, depth)
            yield RecordingFrame(float(t), rgb, frame_K, pose, depth, number)
    info = {'max_difference_s': max_difference}
    if truth_time_offset:
        info['truth_time_offset_s'] = truth_time_offset
    if distortion:
        info.update(distortion=f'plumb_bob {list(distortion)}', rectified=lens is not None)
    return Recording(folder, 'tum', frames, len(matches), info)
