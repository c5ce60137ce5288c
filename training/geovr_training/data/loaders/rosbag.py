"""rosbag2 (sqlite3 or MCAP) and rosbag1 recordings of Image + CameraInfo, read with ``rosbags``.

- colour: a ``sensor_msgs/msg/Image`` topic with a colour or mono encoding (the only one, or
  ``image_topic``);
- intrinsics: a ``sensor_msgs/msg/CameraInfo`` topic is required (the latest message at or
  before each image, else the first one);
- depth (optional): an Image topic with encoding 16UC1 (mm) or 32FC1 (m), registered to the
  colour image (same size), nearest in time within ``max_difference`` seconds;
- poses (optional): ``/tf`` and ``/tf_static`` chained from ``world_frame`` (default: the
  root of the camera's TF tree) to the image's ``frame_id`` (an optical frame), nearest
  transform in time; NaN poses when there is no TF for the camera.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from geovr_ros.geometry import (DEPTH_ENCODINGS, GeometryError, depth_to_metres, image_to_array,
                                matrix_from_quat_xyzw, validate_intrinsics, to_rgb8)

from ..errors import DataFormatError
from ..types import Sequence

IMAGE = 'sensor_msgs/msg/Image'
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
TF = 'tf2_msgs/msg/TFMessage'


def _stamp(msg) -> float:
    s = msg.header.stamp
    return float(getattr(s, 'sec', 0)) + float(getattr(s, 'nanosec', 0)) * 1e-9


class _TfTree:
    """Transforms parent->child over time (static ones at time -inf)."""

    def __init__(self):
        self.edges: dict[str, tuple[str, list[tuple[float, np.ndarray]]]] = {}  # child -> (parent, [(t, T)])

    def add(self, msg, static: bool) -> None:
        for tf in msg.transforms:
            tr, q = tf.transform.translation, tf.transform.rotation
            T = np.eye(4)
            T[:3, :3] = matrix_from_quat_xyzw(np.array([q.x, q.y, q.z, q.w]))
            T[:3, 3] = [tr.x, tr.y, tr.z]
            child, parent = tf.child_frame_id.lstrip('/'), tf.header.frame_id.lstrip('/')
            entry = self.edges.setdefault(child, (parent, []))
            entry[1].append((-np.inf if static else _stamp(tf), T))

    def root_of(self, frame: str) -> str:
        seen = set()
        while frame in self.edges and frame not in seen:
            seen.add(frame)
            frame = self.edges[frame][0]
        return frame

    def lookup(self, world: str, frame: str, t: float) -> np.ndarray | None:
        """T_world_frame (4, 4) at time t, or None when the chain does not reach ``world``."""
        T = np.eye(4)
        while frame != world:
            if frame not in self.edges:
                return None
            parent, samples = self.edges[frame]
            times = np.array([s[0] for s in samples])
            T = samples[int(np.argmin(np.abs(np.where(np.isinf(times), 0.0, times - t))))][1] @ T
            frame = parent
        return T


def _image_array(msg, path: Path, topic: str) -> np.ndarray:
    try:
        return image_to_array(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data), bool(msg.is_bigendian))
    except GeometryError as exc:
        raise DataFormatError(path, f'topic {topic}: {exc}') from None


def load_rosbag(path: str | Path, image_topic: str | None = None, depth_topic: str | None = None,
                world_frame: str | None = None, max_difference: float = 0.02, stride: int = 1,
                max_frames: int | None = None, name: str | None = None) -> Sequence:
    """Read a bag (rosbag2 folder, .mcap/.db3 file or ROS 1 .bag) into a Sequence."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore
    path = Path(path)
    bag_path = path.parent if path.suffix in ('.mcap', '.db3') and (path.parent / 'metadata.yaml').exists() else path
    if not path.exists():
        raise DataFormatError(path, 'bag does not exist')
    try:
        reader = AnyReader([bag_path], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except Exception as exc:  # rosbags raises several unrelated error types for unreadable bags
        raise DataFormatError(path, f'cannot open as a rosbag2/MCAP/rosbag1 recording ({exc})') from None
    try:
        conns = reader.connections
        info_conns = [c for c in conns if c.msgtype == CAMERA_INFO]
        image_conns = [c for c in conns if c.msgtype == IMAGE]
        if not info_conns:
            raise DataFormatError(path, f'no {CAMERA_INFO} topic (topics: '
                                        f'{sorted({c.topic for c in conns})}); intrinsics are required')
        if not image_conns:
            raise DataFormatError(path, f'no {IMAGE} topic (topics: {sorted({c.topic for c in conns})})')
        encodings = {}
        for c in image_conns:
            for conn, _, raw in reader.messages(connections=[c]):
                encodings[c.topic] = reader.deserialize(raw, conn.msgtype).encoding
                break
        colour_topics = [t for t, e in encodings.items() if e not in DEPTH_ENCODINGS]
        depth_topics = [t for t, e in encodings.items() if e in DEPTH_ENCODINGS]
        if image_topic is None:
            if len(colour_topics) != 1:
                raise DataFormatError(path, f'expected one colour image topic, found {colour_topics}; '
                                            'choose one with image_topic')
            image_topic = colour_topics[0]
        elif image_topic not in colour_topics:
            raise DataFormatError(path, f'image topic {image_topic!r} not among colour topics {colour_topics}')
        if depth_topic is None and depth_topics:
            depth_topic = depth_topics[0]
        elif depth_topic is not None and depth_topic not in depth_topics:
            raise DataFormatError(path, f'depth topic {depth_topic!r} not among depth topics {depth_topics}')
        infos, colour, depth = [], [], []
        tf = _TfTree()
        wanted = [c for c in conns if c.msgtype in (CAMERA_INFO, TF)
                  or c.topic in (image_topic, depth_topic)]
        for conn, _, raw in reader.messages(connections=wanted):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:
                raise DataFormatError(path, f'topic {conn.topic}: cannot deserialize {conn.msgtype} ({exc})') from None
            if conn.msgtype == CAMERA_INFO:
                k = getattr(msg, 'k', None)
                k = msg.K if k is None else k
                infos.append((_stamp(msg), np.asarray(k, dtype=np.float64).reshape(3, 3)))
            elif conn.msgtype == TF:
                tf.add(msg, static=conn.topic.endswith('tf_static'))
            elif conn.topic == image_topic:
                colour.append((_stamp(msg), msg.header.frame_id.lstrip('/'), msg))
            else:
                depth.append((_stamp(msg), msg))
    finally:
        reader.close()
    if not colour:
        raise DataFormatError(path, f'topic {image_topic} has no messages')
    colour.sort(key=lambda x: x[0])
    colour = colour[::stride][:max_frames]
    infos.sort(key=lambda x: x[0])
    info_t = np.array([t for t, _ in infos])
    depth.sort(key=lambda x: x[0])
    depth_t = np.array([t for t, _ in depth])
    camera_frame = colour[0][1]
    world = world_frame or tf.root_of(camera_frame)
    rgbs, depths, Ks, poses, stamps = [], [], [], [], []
    for t, frame_id, msg in colour:
        rgb = to_rgb8(_image_array(msg, path, image_topic), msg.encoding)
        h, w = rgb.shape[:2]
        i = max(int(np.searchsorted(info_t, t, side='right')) - 1, 0)
        K = infos[i][1]
        try:
            validate_intrinsics(K, w, h)
        except GeometryError as exc:
            raise DataFormatError(path, f'camera_info at t={infos[i][0]:.3f}: {exc}') from None
        d = np.full((h, w), np.nan, np.float32)
        if len(depth):
            j = int(np.argmin(np.abs(depth_t - t)))
            if abs(depth_t[j] - t) <= max_difference:
                dmsg = depth[j][1]
                d = depth_to_metres(_image_array(dmsg, path, depth_topic), dmsg.encoding)
                if d.shape != (h, w):
                    raise DataFormatError(path, f'depth topic {depth_topic}: size {d.shape[::-1]} differs from '
                                                f'colour {(w, h)} (registered depth expected)')
        T = tf.lookup(world, frame_id, t) if (world_frame or frame_id in tf.edges) else None
        rgbs.append(rgb)
        depths.append(d)
        Ks.append(K)
        poses.append(np.full((4, 4), np.nan) if T is None else T)
        stamps.append(t)
    return Sequence(name=name or path.stem, rgb=np.stack(rgbs), depth=np.stack(depths), K=np.stack(Ks),
                    T_world_cam=np.stack(poses), timestamps=np.asarray(stamps),
                    info={'source': 'rosbag', 'path': str(path), 'image_topic': image_topic,
                          'depth_topic': depth_topic, 'world_frame': world, 'camera_frame': camera_frame})
