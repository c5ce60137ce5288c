"""Conversions between ROS messages and numpy, on top of `geovr_ros.geometry`.

Images are filled from `bytes` and read with `np.frombuffer` (numpy-array assignment to
`Image.data` is ~80x slower). Poses are 4x4 float64 matrices, quaternions (x, y, z, w).
"""
from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from geovr_ros.geometry import (
    DEPTH_ENCODINGS, ImageEncodingError, InvalidIntrinsicsError, array_to_image, image_to_array,
    k_from_camera_info, k_to_camera_info, p_from_k, pose_from_xyz_quat_xyzw,
    pose_to_xyz_quat_xyzw, to_rgb8, validate_intrinsics)


def stamp_to_sec(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def sec_to_stamp(t: float) -> Time:
    sec = int(np.floor(t))
    nanosec = int(round((t - sec) * 1e9))
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return Time(sec=sec, nanosec=nanosec)


def image_msg_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a colour or grey Image; raises ImageEncodingError for depth
    encodings, unknown encodings, or fields that disagree with the data length."""
    if msg.encoding in DEPTH_ENCODINGS:
        raise ImageEncodingError(f'image encoding {msg.encoding!r} is depth, not colour')
    array = image_to_array(msg.encoding, msg.height, msg.width, msg.step, msg.data,
                           bool(msg.is_bigendian))
    return to_rgb8(array, msg.encoding)


_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): not DHT (C4),
# JPG (C8) or DAC (CC).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def compressed_image_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels read from a PNG (IHDR) or JPEG (first SOF marker) header,
    without decoding; raises ImageEncodingError when `data` is neither or its header is
    malformed."""
    data = memoryview(data)
    if bytes(data[:8]) == _PNG_SIGNATURE:
        if len(data) < 24 or bytes(data[12:16]) != b'IHDR':
            raise ImageEncodingError('PNG without an IHDR header')
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    if bytes(data[:2]) == b'\xff\xd8':
        i = 2
        while i + 4 <= len(data):
            if data[i] != 0xFF:
                raise ImageEncodingError(f'JPEG marker expected at byte {i}')
            marker = data[i + 1]
            if marker == 0xFF:               # fill byte
                i += 1
                continue
            if marker in (0x01,) or 0xD0 <= marker <= 0xD7:   # markers without a length
                i += 2
                continue
            if marker in (0xD9, 0xDA):        # end of image or scan before any frame header
                break
            length = int.from_bytes(data[i + 2:i + 4], 'big')
            if length < 2:
                raise ImageEncodingError(f'JPEG segment of length {length} at byte {i}')
            if marker in _JPEG_SOF:
                if i + 9 > len(data):
                    break
                height = int.from_bytes(data[i + 5:i + 7], 'big')
                width = int.from_bytes(data[i + 7:i + 9], 'big')
                return width, height
            i += 2 + length
        raise ImageEncodingError('JPEG without a frame header (SOF) before the scan')
    raise ImageEncodingError('compressed data is neither PNG nor JPEG')


def compressed_msg_to_rgb(msg, max_pixels: int | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB of a sensor_msgs/CompressedImage (JPEG/PNG, via OpenCV).

    The size is read from the PNG/JPEG header first: images above `max_pixels` pixels, or
    of neither format, raise ImageTooLargeError / ImageEncodingError before any decoding."""
    import cv2  # only needed for the optional compressed input
    width, height = compressed_image_size(msg.data)
    if width <= 0 or height <= 0:
        raise ImageEncodingError(f'compressed image header gives a size of {width}x{height}')
    if max_pixels is not None and width * height > max_pixels:
        raise ImageTooLargeError(f'compressed image {width}x{height} has more than '
                                 f'max_image_pixels={max_pixels} pixels')
    bgr = cv2.imdecode(np.frombuffer(msg.data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageEncodingError(f'compressed image ({len(msg.data)} bytes, '
                                 f'{width}x{height}) could not be decoded')
    if bgr.shape[:2] != (height, width):
        raise ImageEncodingError(f'compressed image decoded to {bgr.shape[1]}x{bgr.shape[0]}, '
                                 f'its header says {width}x{height}')
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageTooLargeError(ImageEncodingError):
    """An image has more pixels than allowed (found before decoding it)."""


def array_to_image_msg(array: np.ndarray, encoding: str, header: Header) -> Image:
    """Image message of `array` ((H, W) or (H, W, C) matching `encoding`)."""
    data, step = array_to_image(array, encoding)
    msg = Image(header=header, height=int(array.shape[0]), width=int(array.shape[1]),
                encoding=encoding, is_bigendian=0, step=int(step))
    msg.data = data
    return msg


def depth_to_image_msg(depth: np.ndarray, header: Header) -> Image:
    """32FC1 Image (REP 118: metres, NaN invalid) of depth (H, W) metres."""
    return array_to_image_msg(np.asarray(depth, dtype=np.float32), '32FC1', header)


def camera_info_msg(K: np.ndarray, width: int, height: int, header: Header) -> CameraInfo:
    """CameraInfo of an undistorted pinhole camera with intrinsics K (3, 3)."""
    return CameraInfo(header=header, width=int(width), height=int(height),
                      distortion_model='plumb_bob', d=[0.0] * 5,
                      k=k_to_camera_info(K), r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                      p=p_from_k(K))


#: Focal lengths allowed, as multiples of the image size (fx / width, fy / height): about
#: 180 down to 1 degree of horizontal field of view.
FOCAL_RANGE = (0.05, 50.0)


def camera_info_to_k(msg: CameraInfo) -> np.ndarray:
    """K (3, 3) of a CameraInfo; raises InvalidIntrinsicsError for zero/NaN/negative focal
    lengths, a size of zero, or focal lengths outside FOCAL_RANGE times the image size
    (fx / width, fy / height)."""
    K = k_from_camera_info(msg.k)
    validate_intrinsics(K, msg.width, msg.height)
    low, high = FOCAL_RANGE
    for name, f, size in (('fx', K[0, 0], msg.width), ('fy', K[1, 1], msg.height)):
        if not low <= f / size <= high:
            which = 'too short' if f / size < low else 'too long'
            raise InvalidIntrinsicsError(
                f'focal length {which}: {name}={f:g} px is {f / size:.3g} x the image size '
                f'{size} px, outside [{low:g}, {high:g}] x')
    return K


def pose_msg(T: np.ndarray) -> Pose:
    xyz, q = pose_to_xyz_quat_xyzw(T)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in xyz)
    (pose.orientation.x, pose.orientation.y, pose.orientation.z,
     pose.orientation.w) = (float(v) for v in q)
    return pose


def pose_from_msg(pose: Pose) -> np.ndarray:
    p, o = pose.position, pose.orientation
    return pose_from_xyz_quat_xyzw([p.x, p.y, p.z], [o.x, o.y, o.z, o.w])


def pose_stamped_msg(T: np.ndarray, header: Header) -> PoseStamped:
    return PoseStamped(header=header, pose=pose_msg(T))


def transform_stamped_msg(T: np.ndarray, parent: str, child: str, stamp: Time
                          ) -> TransformStamped:
    """TransformStamped of T_parent_child (4, 4)."""
    xyz, q = pose_to_xyz_quat_xyzw(T)
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t, r = msg.transform.translation, msg.transform.rotation
    t.x, t.y, t.z = (float(v) for v in xyz)
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


def transform_from_msg(msg: TransformStamped) -> np.ndarray:
    t, r = msg.transform.translation, msg.transform.rotation
    return pose_from_xyz_quat_xyzw([t.x, t.y, t.z], [r.x, r.y, r.z, r.w])


def odometry_msg(T_odom_child: np.ndarray, linear: np.ndarray, angular: np.ndarray,
                 header: Header, child_frame: str, pose_covariance: np.ndarray,
                 twist_covariance: np.ndarray) -> Odometry:
    """Odometry: pose of `child_frame` in header.frame_id; twist (m/s, rad/s) in the child
    frame; covariances 6x6 row-major (x, y, z, rotX, rotY, rotZ)."""
    msg = Odometry(header=header, child_frame_id=child_frame)
    msg.pose.pose = pose_msg(T_odom_child)
    msg.pose.covariance = [float(v) for v in np.asarray(pose_covariance).reshape(36)]
    v, w = msg.twist.twist.linear, msg.twist.twist.angular
    v.x, v.y, v.z = (float(x) for x in linear)
    w.x, w.y, w.z = (float(x) for x in angular)
    msg.twist.covariance = [float(x) for x in np.asarray(twist_covariance).reshape(36)]
    return msg


_POINT_FIELDS_XYZ = [PointField(name='x', offset=0, datatype=PointField.FLOAT32, count=1),
                     PointField(name='y', offset=4, datatype=PointField.FLOAT32, count=1),
                     PointField(name='z', offset=8, datatype=PointField.FLOAT32, count=1)]


def pointcloud2_msg(xyz: np.ndarray, header: Header, rgb: np.ndarray | None = None
                    ) -> PointCloud2:
    """Unorganised PointCloud2 of points (N, 3) metres, with packed `rgb` float32 field
    (RViz convention) when rgb (N, 3) uint8 is given. Non-finite points are removed."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    keep = np.all(np.isfinite(xyz), axis=1)
    xyz = xyz[keep]
    fields = list(_POINT_FIELDS_XYZ)
    if rgb is None:
        record = np.ascontiguousarray(xyz)
        point_step = 12
    else:
        rgb = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)[keep]
        packed = (rgb[:, 0].astype(np.uint32) << 16) | (rgb[:, 1].astype(np.uint32) << 8) \
            | rgb[:, 2].astype(np.uint32)
        record = np.empty((xyz.shape[0], 4), np.float32)
        record[:, :3] = xyz
        record[:, 3] = packed.view(np.float32)
        fields.append(PointField(name='rgb', offset=12, datatype=PointField.FLOAT32, count=1))
        point_step = 16
    msg = PointCloud2(header=header, height=1, width=int(xyz.shape[0]), fields=fields,
                      is_bigendian=False, point_step=point_step,
                      row_step=point_step * int(xyz.shape[0]), is_dense=True)
    msg.data = record.tobytes()
    return msg


def pointcloud2_to_xyz(msg: PointCloud2) -> np.ndarray:
    """(N, 3) float32 x, y, z of a PointCloud2 with float32 x/y/z fields."""
    offsets = {f.name: f.offset for f in msg.fields}
    raw = np.frombuffer(msg.data, np.uint8).reshape(-1, msg.point_step)
    return np.stack([raw[:, offsets[c]:offsets[c] + 4].copy().view(np.float32)[:, 0]
                     for c in 'xyz'], axis=1)


def colorize_depth(depth: np.ndarray, near: float | None = None, far: float | None = None
                   ) -> np.ndarray:
    """(H, W, 3) uint8 preview of depth (H, W) metres: near is warm, far is cool, invalid
    black. near/far default to the 2nd/98th percentiles of the valid depth."""
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    out = np.zeros(depth.shape + (3,), np.uint8)
    if not valid.any():
        return out
    values = depth[valid]
    lo = float(np.percentile(values, 2)) if near is None else near
    hi = float(np.percentile(values, 98)) if far is None else far
    x = np.clip((values - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    # A perceptually ordered ramp: red -> yellow -> green -> cyan -> blue.
    r = np.clip(2.0 - 4.0 * x, 0, 1)
    g = np.clip(np.minimum(4.0 * x, 4.0 - 4.0 * x), 0, 1)
    b = np.clip(4.0 * x - 2.0, 0, 1)
    out[valid] = (np.stack([r, g, b], axis=1) * 255).astype(np.uint8)
    return out
