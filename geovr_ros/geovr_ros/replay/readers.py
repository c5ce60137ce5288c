"""Sequence readers for `replay_node`: the runtime side of the on-disk formats.

The runtime never imports the training package, so these read the files directly:

- `generated`: a `geovr-data generate` folder (manifest.json + `*.geovr.npz` shards, one per
  sequence: zip members `meta.json`, `K.npy` (N,3,3), `T_world_cam.npy` (N,4,4),
  `timestamps.npy` (N,), `rgb/NNNNNN.npy` (H,W,3) uint8);
- `tum`: a TUM RGB-D folder (`rgb.txt`, `rgb/*.png`, optional `groundtruth.txt`);
- `7scenes`: a 7-Scenes-style folder of `frame-NNNNNN.color.png` (or `.color.jpg`) +
  `frame-NNNNNN.pose.txt` (4x4 camera-to-world), recorded at 30 Hz, with its intrinsics file
  (`intrinsics.K.txt`, `camera-intrinsics.txt` or `intrinsics.txt`: a 3x3 K) when it has one,
  else the 7-Scenes Kinect's;
- `hololens`: the HoloLens layout (`images/NNNNN.jpg`, `poses.txt` one row-major 4x4
  camera-to-world a line, `K.txt`), frame number / 30 Hz as the stamp;
- `rosbag`: a rosbag2 folder or `.mcap`/`.db3` file with sensor_msgs/Image (or
  CompressedImage) and CameraInfo (read with `rosbags`).

Every reader yields `ReplayFrame`s in time order. Ground truth `T_world_cam` is the optical
camera to the dataset's world, or None where the format has none.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from geovr_ros.geometry import (
    ImageEncodingError, image_to_array, k_from_camera_info, pose_from_xyz_quat_xyzw, to_rgb8)

FORMATS = ('generated', 'tum', '7scenes', 'hololens', 'rosbag')
INTRINSICS_FILES = ('intrinsics.K.txt', 'camera-intrinsics.txt', 'intrinsics.txt')
COLOR_PATTERNS = ('frame-*.color.png', 'frame-*.color.jpg')

# Published intrinsics of the TUM RGB-D colour cameras (fx, fy, cx, cy), by sensor name.
TUM_INTRINSICS = {'freiburg1': (517.3, 516.5, 318.6, 255.3),
                  'freiburg2': (520.9, 521.0, 325.1, 249.7),
                  'freiburg3': (535.4, 539.2, 320.1, 247.6)}
SEVEN_SCENES_INTRINSICS = (585.0, 585.0, 320.0, 240.0)
SEVEN_SCENES_RATE_HZ = 30.0


class ReplayFormatError(ValueError):
    """A replay source is missing, of an unknown format, or malformed (names the file)."""


@dataclass(frozen=True)
class ReplayFrame:
    """stamp: seconds; rgb: (H, W, 3) uint8; K: (3, 3); T_world_cam: (4, 4) or None."""

    stamp: float
    rgb: np.ndarray
    K: np.ndarray
    T_world_cam: np.ndarray | None


def _k(fx, fy, cx, cy) -> np.ndarray:
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


def detect_format(path: str | os.PathLike) -> str:
    """Names the format of `path` (one of FORMATS) or raises ReplayFormatError."""
    p = Path(path)
    if not p.exists():
        raise ReplayFormatError(f'replay source {str(p)!r} does not exist')
    if p.is_file():
        if p.suffix in ('.mcap', '.db3'):
            return 'rosbag'
        raise ReplayFormatError(f'{str(p)!r}: a file replay source must be .mcap or .db3')
    if (p / 'manifest.json').is_file() or any(p.glob('*.geovr.npz')):
        return 'generated'
    if (p / 'metadata.yaml').is_file():
        return 'rosbag'
    if (p / 'rgb.txt').is_file():
        return 'tum'
    if any(any(p.glob(g)) or any(p.glob('seq-*/' + g)) for g in COLOR_PATTERNS):
        return '7scenes'
    if (p / 'images').is_dir() and (p / 'poses.txt').is_file():
        return 'hololens'
    raise ReplayFormatError(
        f'{str(p)!r} is none of: generated dataset (manifest.json), TUM (rgb.txt), 7-Scenes '
        f'(frame-*.color.png / .jpg), HoloLens (images/ + poses.txt), rosbag2 (metadata.yaml / '
        f'.mcap / .db3)')


def open_replay_source(path: str | os.PathLike, fmt: str = 'auto', sequence: str = '',
                       intrinsics: tuple[float, float, float, float] | None = None,
                       image_topic: str = '', camera_info_topic: str = ''
                       ) -> Iterator[ReplayFrame]:
    """Frames of the source at `path` in time order.

    fmt: 'auto' or one of FORMATS; sequence: sequence name or index for a generated dataset
    (first by default) or a `seq-NN` sub-folder of 7-Scenes; intrinsics: (fx, fy, cx, cy)
    pixels overriding the format's own (required for TUM folders of unknown sensor);
    image_topic / camera_info_topic: bag topics (default: the first of each type).
    """
    fmt = detect_format(path) if fmt == 'auto' else fmt
    if fmt == 'generated':
        return _read_generated(Path(path), sequence, intrinsics)
    if fmt == 'tum':
        return _read_tum(Path(path), intrinsics)
    if fmt == '7scenes':
        return _read_seven_scenes(Path(path), sequence, intrinsics)
    if fmt == 'hololens':
        return _read_hololens(Path(path), intrinsics)
    if fmt == 'rosbag':
        return _read_rosbag(Path(path), image_topic, camera_info_topic, intrinsics)
    raise ReplayFormatError(f'unknown replay format {fmt!r}; expected auto or one of {FORMATS}')


def _read_generated(root: Path, sequence: str, intrinsics) -> Iterator[ReplayFrame]:
    shards = sorted(root.glob('*.geovr.npz')) or sorted(root.glob('**/*.geovr.npz'))
    if not shards:
        raise ReplayFormatError(f'{str(root)!r} holds no *.geovr.npz shard')
    if sequence == '':
        shard = shards[0]
    elif sequence.isdigit():
        if int(sequence) >= len(shards):
            raise ReplayFormatError(f'sequence index {sequence} out of range: {len(shards)} shards')
        shard = shards[int(sequence)]
    else:
        named = [s for s in shards if s.name[:-len('.geovr.npz')] == sequence]
        if not named:
            names = [s.name[:-len('.geovr.npz')] for s in shards]
            raise ReplayFormatError(f'no sequence {sequence!r} in {str(root)!r}; have {names}')
        shard = named[0]

    def member(zf, name):
        with zf.open(name) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    try:
        zf = zipfile.ZipFile(shard)
        meta = json.loads(zf.read('meta.json'))
        Ks, poses, stamps = member(zf, 'K.npy'), member(zf, 'T_world_cam.npy'), \
            member(zf, 'timestamps.npy')
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise ReplayFormatError(f'{str(shard)!r} is not a readable shard: {error}') from None

    def frames():
        with zf:
            for i in range(int(meta['num_frames'])):
                K = _k(*intrinsics) if intrinsics else Ks[i]
                yield ReplayFrame(float(stamps[i]), member(zf, f'rgb/{i:06d}.npy'), K, poses[i])
    return frames()


def _read_image(path: Path) -> np.ndarray:
    import cv2  # optional dependency, only for image-file formats
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ReplayFormatError(f'cannot read image {str(path)!r}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _read_list(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith('#'):
            rows.append(line.split())
    return rows


def _read_tum(root: Path, intrinsics) -> Iterator[ReplayFrame]:
    if intrinsics is None:
        sensor = next((s for s in TUM_INTRINSICS if s in str(root.resolve())), None)
        if sensor is None:
            raise ReplayFormatError(
                f'{str(root)!r}: TUM sensor unknown (no freiburg1/2/3 in the path); set the '
                f'intrinsics parameter [fx, fy, cx, cy]')
        intrinsics = TUM_INTRINSICS[sensor]
    K = _k(*intrinsics)
    images = [(float(r[0]), root / r[1]) for r in _read_list(root / 'rgb.txt')]
    gt_stamps, gt_poses = np.zeros(0), []
    if (root / 'groundtruth.txt').is_file():
        rows = [[float(v) for v in r[:8]] for r in _read_list(root / 'groundtruth.txt')]
        gt_stamps = np.array([r[0] for r in rows])
        gt_poses = [pose_from_xyz_quat_xyzw(r[1:4], r[4:8]) for r in rows]

    def frames():
        for stamp, path in images:
            T = None
            if gt_stamps.size:
                j = int(np.argmin(np.abs(gt_stamps - stamp)))
                if abs(gt_stamps[j] - stamp) <= 0.02:
                    T = gt_poses[j]
            yield ReplayFrame(stamp, _read_image(path), K, T)
    return frames()


def _colour_files(folder: Path) -> list[Path]:
    return sorted(f for g in COLOR_PATTERNS for f in folder.glob(g))


def _intrinsics_file(folder: Path) -> np.ndarray | None:
    for name in INTRINSICS_FILES:
        if (folder / name).is_file():
            try:
                K = np.loadtxt(folder / name).reshape(3, 3)
            except ValueError as exc:
                raise ReplayFormatError(f'{str(folder / name)!r} is not a 3x3 matrix: {exc}') from None
            return K
    return None


def _read_seven_scenes(root: Path, sequence: str, intrinsics) -> Iterator[ReplayFrame]:
    folder = root / sequence if sequence else root
    if not _colour_files(folder):
        subs = sorted(p for p in folder.glob('seq-*') if p.is_dir())
        if not subs:
            raise ReplayFormatError(f'{str(folder)!r} holds no frame-*.color.png / .jpg')
        folder = subs[0]
    files = _colour_files(folder)
    K = _k(*intrinsics) if intrinsics else _intrinsics_file(folder)
    if K is None:
        K = _intrinsics_file(root) if folder != root else None
    if K is None:
        K = _k(*SEVEN_SCENES_INTRINSICS)

    def frames():
        for i, path in enumerate(files):
            pose_path = path.with_name(path.name.split('.color.')[0] + '.pose.txt')
            T = np.loadtxt(pose_path).reshape(4, 4) if pose_path.is_file() else None
            yield ReplayFrame(i / SEVEN_SCENES_RATE_HZ, _read_image(path), K, T)
    return frames()


def _read_hololens(root: Path, intrinsics) -> Iterator[ReplayFrame]:
    images = sorted(f for f in (root / 'images').iterdir() if f.suffix.lower() in ('.jpg', '.jpeg', '.png'))
    try:
        poses = np.loadtxt(root / 'poses.txt', ndmin=2).reshape(-1, 4, 4)
        K = _k(*intrinsics) if intrinsics else np.loadtxt(root / 'K.txt').reshape(3, 3)
    except (OSError, ValueError) as exc:
        raise ReplayFormatError(f'{str(root)!r}: unreadable poses.txt or K.txt: {exc}') from None
    if len(poses) != len(images):
        raise ReplayFormatError(f'{str(root)!r}: {len(poses)} poses for {len(images)} images')

    def frames():
        for i, (path, T) in enumerate(zip(images, poses)):
            number = int(path.stem) if path.stem.isdigit() else i
            yield ReplayFrame(number / SEVEN_SCENES_RATE_HZ, _read_image(path), K, T)
    return frames()


def _read_rosbag(path: Path, image_topic: str, info_topic: str, intrinsics
                 ) -> Iterator[ReplayFrame]:
    from rosbags.highlevel import AnyReader  # optional dependency, only for bags

    image_types = ('sensor_msgs/msg/Image', 'sensor_msgs/msg/CompressedImage')
    try:
        reader = AnyReader([path])
        reader.open()
    except Exception as error:
        raise ReplayFormatError(f'{str(path)!r} is not a readable rosbag2: {error}') from None
    connections = reader.connections
    image_conns = [c for c in connections if c.msgtype in image_types
                   and (not image_topic or c.topic == image_topic)]
    info_conns = [c for c in connections if c.msgtype == 'sensor_msgs/msg/CameraInfo'
                  and (not info_topic or c.topic == info_topic)]
    if not image_conns:
        reader.close()
        raise ReplayFormatError(f'{str(path)!r} has no image topic '
                                f'{image_topic or "of type " + " or ".join(image_types)}')
    if not info_conns and intrinsics is None:
        reader.close()
        raise ReplayFormatError(f'{str(path)!r} has no CameraInfo topic; set intrinsics')
    wanted = [image_conns[0]] + info_conns[:1]

    def frames():
        K = _k(*intrinsics) if intrinsics else None
        try:
            for connection, _, raw in reader.messages(connections=wanted):
                msg = reader.deserialize(raw, connection.msgtype)
                if connection.msgtype == 'sensor_msgs/msg/CameraInfo':
                    if intrinsics is None:
                        K = k_from_camera_info(msg.k)
                    continue
                if K is None:
                    continue  # no intrinsics yet for this image
                stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
                try:
                    rgb = _decode_bag_image(msg, connection.msgtype)
                except ImageEncodingError:
                    continue
                yield ReplayFrame(stamp, rgb, K, None)
        finally:
            reader.close()
    return frames()


def _decode_bag_image(msg, msgtype: str) -> np.ndarray:
    if msgtype.endswith('CompressedImage'):
        import cv2
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ImageEncodingError(f'undecodable compressed image ({msg.format!r})')
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    array = image_to_array(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data),
                           msg.is_bigendian)
    return to_rgb8(array, msg.encoding)
