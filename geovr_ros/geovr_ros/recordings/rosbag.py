"""Bags: rosbag2 folders (sqlite3 or MCAP), `.mcap` / `.db3` files and ROS 1 `.bag` files,
read with `rosbags` (no ROS install needed).

- colour: a sensor_msgs/Image topic of a colour or mono encoding, or a CompressedImage topic
  (the only one, or `image_topic`); frames in the bag's order, stamped by their headers;
- intrinsics: a CameraInfo topic (the only one, the one beside the image topic, or
  `camera_info_topic`): the latest message at or before each image, else the first; not
  needed when `intrinsics` is given; a camera_info with non-zero D undistorts the frames
  (`LensCorrection`: P's left 3x3 becomes K, depth moved with the colour) unless the image
  topic is already rectified (named `image_rect*`: its camera_info still carries the raw
  camera's D by ROS convention, and its K is P's left 3x3) or `rectify` is False;
- depth (read only `with_depth`): an Image topic of encoding 16UC1 (mm) or 32FC1 (m)
  registered to the colour image (same size), nearest in time within `max_difference` s;
  all NaN where there is none;
- poses: /tf and /tf_static chained from `world_frame` (default: the root of the camera's TF
  tree) to the image's frame_id (an optical frame); None when there is no TF for the camera.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from geovr_ros.geometry import (
    DEPTH_ENCODINGS, GeometryError, depth_to_metres, image_to_array, matrix_from_quat_xyzw, to_rgb8)
from geovr_ros.geometry.rectify import input_is_rectified, rectified_camera
from geovr_ros.recordings.base import (
    FrameChecks, LensCorrection, Recording, RecordingFormatError, RecordingFrame, intrinsics_matrix, select)

BAG_SUFFIXES = ('.mcap', '.db3', '.bag')
IMAGE = 'sensor_msgs/msg/Image'
COMPRESSED = 'sensor_msgs/msg/CompressedImage'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
TF = 'tf2_msgs/msg/TFMessage'


def _field(msg, name: str):
    """A CameraInfo field by its ROS 2 name (k, d, r, p), or its ROS 1 one (K, D, R, P)."""
    value = getattr(msg, name, None)
    return getattr(msg, name.upper()) if value is None else value


def _stamp(msg) -> float:
    s = msg.header.stamp
    return float(getattr(s, 'sec', 0)) + float(getattr(s, 'nanosec', 0)) * 1e-9


class TfTree:
    """Transforms parent -> child over time, from TFMessages (static ones hold at all times)."""

    def __init__(self):
        self.edges: dict[str, tuple[str, list[tuple[float, np.ndarray]]]] = {}  # child -> (parent, [(t, T)])

    def add(self, msg, static: bool) -> None:
        for tf in msg.transforms:
            tr, q = tf.transform.translation, tf.transform.rotation
            T = np.eye(4)
            T[:3, :3] = matrix_from_quat_xyzw(np.array([q.x, q.y, q.z, q.w]))
            T[:3, 3] = [tr.x, tr.y, tr.z]
            child, parent = tf.child_frame_id.lstrip('/'), tf.header.frame_id.lstrip('/')
            self.edges.setdefault(child, (parent, []))[1].append((-np.inf if static else _stamp(tf), T))

    def root_of(self, frame: str) -> str:
        seen = set()
        while frame in self.edges and frame not in seen:
            seen.add(frame)
            frame = self.edges[frame][0]
        return frame

    def lookup(self, world: str, frame: str, t: float) -> np.ndarray | None:
        """T_world_frame (4, 4) at time t (nearest sample of each edge), or None when the chain
        does not reach `world`."""
        T = np.eye(4)
        seen = set()
        while frame != world:
            if frame not in self.edges or frame in seen:
                return None
            seen.add(frame)
            parent, samples = self.edges[frame]
            times = np.array([s[0] for s in samples])
            T = samples[int(np.argmin(np.abs(np.where(np.isinf(times), 0.0, times - t))))][1] @ T
            frame = parent
        return T


class _Bag:
    """An open AnyReader on a bag (closed on exit); errors name the bag."""

    def __init__(self, path: Path):
        self.path = path
        self.bag_path = path.parent if path.suffix in ('.mcap', '.db3') \
            and (path.parent / 'metadata.yaml').exists() else path

    def __enter__(self):
        from rosbags.highlevel import AnyReader  # optional dependency, only for bags
        from rosbags.typesys import Stores, get_typestore
        try:
            self.reader = AnyReader([self.bag_path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
            self.reader.open()
        except Exception as exc:  # rosbags raises several unrelated error types for unreadable bags
            raise RecordingFormatError(self.path, f'cannot open as a rosbag2/MCAP/rosbag1 recording ({exc})') from None
        return self

    def __exit__(self, *exc):
        self.reader.close()

    def raw(self, connections):
        """(connection, serialized message) in bag order; none for no connections (rosbags
        would give every message)."""
        if not connections:
            return
        for conn, _, raw in self.reader.messages(connections=connections):
            yield conn, raw

    def decode(self, conn, raw):
        try:
            return self.reader.deserialize(raw, conn.msgtype)
        except Exception as exc:
            raise RecordingFormatError(self.path, f'topic {conn.topic}: cannot deserialize {conn.msgtype} '
                                                  f'({exc})') from None

    def messages(self, connections):
        """(connection, message) in bag order."""
        for conn, raw in self.raw(connections):
            yield conn, self.decode(conn, raw)


class _Cursor:
    """The k-th message of some connections in bag order, reading forward (reopening the bag
    to go back)."""

    def __init__(self, path: Path, connections: list):
        self.path, self.topics = path, {c.topic for c in connections}
        self._bag = self._iter = None
        self._pos, self._msg = -1, None

    def get(self, k: int):
        if k < self._pos or self._iter is None:
            self.close()
            self._bag = _Bag(self.path).__enter__()
            conns = [c for c in self._bag.reader.connections if c.topic in self.topics]
            self._iter, self._pos = self._bag.messages(conns), -1
        while self._pos < k:
            self._msg = next(self._iter)[1]
            self._pos += 1
        return self._msg

    def close(self):
        if self._bag is not None:
            self._bag.__exit__()
            self._bag = self._iter = None


def _decode(msg, msgtype: str, path: Path, topic: str, depth: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour Image or CompressedImage, or with `depth` (H, W) float32
    metres of a 16UC1 / 32FC1 Image."""
    if msgtype == COMPRESSED:
        import cv2
        bgr = cv2.imdecode(np.frombuffer(bytes(msg.data), np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RecordingFormatError(path, f'topic {topic}: undecodable compressed image ({msg.format!r})')
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        array = image_to_array(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data),
                               bool(msg.is_bigendian))
        return depth_to_metres(array, msg.encoding) if depth else to_rgb8(array, msg.encoding)
    except GeometryError as exc:
        raise RecordingFormatError(path, f'topic {topic}: {exc}') from None


def _choose(path: Path, kind: str, wanted: str | None, candidates: list[str], near: str = '') -> str | None:
    """The topic of `kind` to read: `wanted` (must be a candidate), the only candidate, or the
    one in the namespace of `near`."""
    if wanted:
        if wanted not in candidates:
            raise RecordingFormatError(path, f'{kind} topic {wanted!r} not among {kind} topics {candidates}')
        return wanted
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    beside = [t for t in candidates if t.rsplit('/', 1)[0] == near.rsplit('/', 1)[0]]
    if near and len(beside) == 1:
        return beside[0]
    raise RecordingFormatError(path, f'expected one {kind} topic, found {candidates}; choose one with {kind}_topic')


def open_rosbag(path: str | Path, *, image_topic: str | None = None, camera_info_topic: str | None = None,
                depth_topic: str | None = None, world_frame: str | None = None, intrinsics=None,
                max_difference: float = 0.02, with_depth: bool = False, require_poses: bool = False,
                stride: int = 1, max_frames: int | None = None, rectify: bool = True) -> Recording:
    """Frames of a bag (module docstring). Reads the CameraInfo and TF messages (and, with
    depth, the depth stamps) now; colour and depth images as the frames are iterated.

    intrinsics: (fx, fy, cx, cy), a (3, 3) K or 'fx,fy,cx,cy' instead of the bag's CameraInfo
    (its D is then not used either); rectify: undistort when the CameraInfo has non-zero D.
    """
    path = Path(path)
    if not path.exists():
        raise RecordingFormatError(path, 'bag does not exist')
    K_override = intrinsics_matrix(intrinsics, path)
    with _Bag(path) as bag:
        conns = bag.reader.connections
        topics = sorted({c.topic for c in conns})
        firsts = {}  # image topic -> (msgtype, first message)
        for c in conns:
            if c.msgtype in (IMAGE, COMPRESSED) and c.topic not in firsts:
                for conn, msg in bag.messages([c]):
                    firsts[c.topic] = (conn.msgtype, msg)
                    break
        if not firsts:
            raise RecordingFormatError(path, f'no {IMAGE} topic (topics: {topics})')

        def is_depth(msgtype, msg):
            return msg.encoding in DEPTH_ENCODINGS if msgtype == IMAGE else 'compressedDepth' in msg.format
        colour_topics = [t for t, (mt, m) in firsts.items() if not is_depth(mt, m)]
        depth_topics = [t for t, (mt, m) in firsts.items() if mt == IMAGE and is_depth(mt, m)]
        image_topic = _choose(path, 'image', image_topic, colour_topics)
        if image_topic is None:
            raise RecordingFormatError(path, f'no colour image topic (image topics: {sorted(firsts)})')
        image_type, first = firsts[image_topic]
        camera_frame = first.header.frame_id.lstrip('/')

        infos = []  # (stamp, K, LensCorrection or None) in time order
        lenses: dict[tuple, LensCorrection] = {}   # one per camera model: its maps are built once
        if K_override is None:
            info_topics = sorted({c.topic for c in conns if c.msgtype == CAMERA_INFO})
            if not info_topics:
                raise RecordingFormatError(path, f'no {CAMERA_INFO} topic (topics: {topics}); intrinsics are '
                                                 'required')
            camera_info_topic = _choose(path, 'camera_info', camera_info_topic, info_topics, near=image_topic)
            rectified = input_is_rectified('auto', image_topic)
            for _, msg in bag.messages([c for c in conns if c.topic == camera_info_topic]):
                K, D, R, P = (np.asarray(_field(msg, name), np.float64).reshape(-1) for name in 'kdrp')
                lens, K = None, K.reshape(3, 3)
                if rectified:
                    K = rectified_camera(K, P)
                elif rectify and D.size and np.any(D):
                    key = (msg.distortion_model, D.tobytes(), R.tobytes(), P.tobytes())
                    if key not in lenses:
                        lenses[key] = LensCorrection(msg.distortion_model, D, path, R, P)
                    lens = lenses[key]
                infos.append((_stamp(msg), K, lens))
            if not infos:
                raise RecordingFormatError(path, f'topic {camera_info_topic} has no messages')
            infos.sort(key=lambda x: x[0])
        depth_topic = _choose(path, 'depth', depth_topic, depth_topics) if with_depth else None
        depth_t = np.array([_stamp(msg) for _, msg in bag.messages([c for c in conns if c.topic == depth_topic])]) \
            if depth_topic else np.zeros(0)
        tf = TfTree()
        for conn, msg in bag.messages([c for c in conns if c.msgtype == TF]):
            tf.add(msg, static=conn.topic.endswith('tf_static'))
        colour_conns = [c for c in conns if c.topic == image_topic]
        depth_conns = [c for c in conns if c.topic == depth_topic]
    world = world_frame or tf.root_of(camera_frame)
    if require_poses and world == camera_frame:
        raise RecordingFormatError(path, f'no /tf chain to the camera frame {camera_frame!r}')
    info_t = np.array([info[0] for info in infos])
    count = len(select(range(sum(c.msgcount for c in colour_conns)), stride, max_frames))

    def frames():
        checks = FrameChecks()
        depth_cursor = _Cursor(path, depth_conns) if len(depth_t) else None
        try:
            with _Bag(path) as bag:
                conns = [c for c in bag.reader.connections if c.topic == image_topic]
                kept = 0
                for index, (conn, raw) in enumerate(bag.raw(conns)):
                    if max_frames is not None and kept >= max_frames:
                        break
                    if index % stride:
                        continue
                    kept += 1
                    msg = bag.decode(conn, raw)
                    t = _stamp(msg)
                    rgb = _decode(msg, image_type, path, image_topic)
                    checks.image(rgb, path)
                    lens = None
                    if K_override is None:
                        i = max(int(np.searchsorted(info_t, t, side='right')) - 1, 0)
                        (_, K, lens), where = infos[i], f'camera_info at t={infos[i][0]:.3f}: '
                    else:
                        K, where = K_override, ''
                    checks.intrinsics(K, rgb, path, where)
                    depth = None
                    if with_depth:
                        depth = np.full(rgb.shape[:2], np.nan, np.float32)
                        if depth_cursor is not None:
                            j = int(np.argmin(np.abs(depth_t - t)))
                            if abs(depth_t[j] - t) <= max_difference:
                                depth = _decode(depth_cursor.get(j), IMAGE, path, depth_topic, depth=True)
                                checks.depth(depth, rgb, path, f'depth topic {depth_topic}: ')
                    frame_id = msg.header.frame_id.lstrip('/')
                    T = tf.lookup(world, frame_id, t) if (world_frame or frame_id in tf.edges) else None
                    if T is None and require_poses:
                        raise RecordingFormatError(path, f'no transform {world} -> {frame_id} at t={t:.3f}')
                    if lens is not None:
                        rgb, K, depth = lens(rgb, K, depth)
                    yield RecordingFrame(t, rgb, K, T, depth, index)
        finally:
            if depth_cursor is not None:
                depth_cursor.close()
    return Recording(path, 'rosbag', frames, count,
                     {'image_topic': image_topic, 'camera_info_topic': camera_info_topic, 'depth_topic': depth_topic,
                      'world_frame': world, 'camera_frame': camera_frame,
                      'rectified': ', '.join(lens.describe() for lens in lenses.values()) or 'no'})
