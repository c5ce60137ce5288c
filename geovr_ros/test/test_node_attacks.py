"""The node's contract under attack (issue #20): a real geovr_node process is fed each
attack by this test process; afterwards a good frame still gives depth, nothing that should
survive was lost (odometry, memory, map), and the reason is one clear line.

One node serves most attacks (module fixture); start-up attacks start their own.
"""
from __future__ import annotations

import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest

from ros_helpers import (
    Feeder, Process, camera_frame, intrinsics, node_args, scratch_dir, spin_until,
    textured_image, tiny_model)

rclpy = pytest.importorskip('rclpy')
cv2 = pytest.importorskip('cv2')
from geovr_interfaces.srv import SpatialQuery  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from geovr_ros.localization import KeyframeMap  # noqa: E402

W, H = 320, 240
NODE = '/geovr_node'


class Attacked:
    """The node process, the feeder, and service helpers of the probe node."""

    def __init__(self, node, feeder, map_file):
        self.node, self.feeder, self.probe, self.map_file = node, feeder, feeder.probe, map_file
        self.compressed_pub = self.probe.create_publisher(CompressedImage,
                                                          '/att/image/compressed', 5)
        self._clients = {}

    def call(self, srv_type, name, request=None, timeout=20.0):
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = self.probe.create_client(srv_type, f'{NODE}/{name}')
        assert client.wait_for_service(timeout_sec=10), f'{name} is not offered'
        future = client.call_async(request or srv_type.Request())
        assert spin_until(self.probe, future.done, timeout), f'{name} was not answered'
        return future.result()

    def ask(self, question):
        return self.call(SpatialQuery, 'query', SpatialQuery.Request(question=question))

    def running_seconds(self) -> float:
        answer = self.ask('how long have I been running?')
        assert answer.success, answer.message
        return answer.value

    def lines(self, text) -> list[str]:
        return [line for line in self.node.output().splitlines() if text in line]


@pytest.fixture(scope='module')
def attacked(ros_env):
    model = tiny_model(ros_env)
    map_file = scratch_dir() / f'attack_map_{os.getpid()}.npz'
    rclpy.init()
    probe = rclpy.create_node('attack_probe')
    node = Process('geovr_node', node_args(
        {'model': str(model), 'backend': 'onnxruntime', 'log_throttle_period': 60.0,
         'max_image_pixels': 2000000, 'subscribe_compressed': True,
         'map_file': str(map_file), 'keyframe_translation': 0.0},
        {'image': '/att/image', 'camera_info': '/att/camera_info',
         'image/compressed': '/att/image/compressed'}), ros_env, 'attacked_node')
    try:
        assert node.wait_for_output('active:', 90), node.output()
        feeder = Feeder(probe, '/att', W, H)
        spin_until(probe, lambda: feeder.image_pub.get_subscription_count() > 0, 10)
        a = Attacked(node, feeder, map_file)
        for _ in range(4):
            assert feeder.good_frame_is_processed(20), node.output()[-3000:]
        yield a
    finally:
        node.stop()
        probe.destroy_node()
        rclpy.try_shutdown()


def assert_still_whole(a: Attacked, running_before: float):
    """A good frame gives depth, and the memory's history (odometry) was not restarted."""
    assert a.node.alive(), a.node.output()[-3000:]
    assert a.feeder.good_frame_is_processed(20), a.node.output()[-3000:]
    assert a.running_seconds() >= running_before
    assert not a.lines('restarting odometry')


# ---------------------------------------------------------------- 3: stamps
@pytest.mark.parametrize('stamp, with_info', [(0.0, False), (0.0, True), (4e9, True),
                                              (-50.0, True)],
                         ids=['zero without camera_info', 'zero with camera_info',
                              'far future', 'one frame 50 s back'])
def test_one_outlier_stamp_never_restarts_odometry(attacked, stamp, with_info):
    a = attacked
    before = a.running_seconds()
    keyframes = a.ask('how many keyframes?').value
    stamp = a.feeder.stamp + stamp if stamp < 0 else stamp
    image, info = camera_frame(textured_image(W, H, 5), intrinsics(W, H), stamp)
    a.feeder.send(image, info if with_info else None)
    reason = 'more than time_jump_threshold' if with_info else 'camera_info'
    assert spin_until(a.probe, lambda: a.lines(reason), 10), a.node.output()[-2000:]
    assert_still_whole(a, before)
    assert a.ask('how many keyframes?').value >= keyframes
    assert len(a.lines('more than time_jump_threshold')) <= 1   # one line per kind


def test_bad_nanosec_is_refused(attacked):
    a = attacked
    before = a.running_seconds()
    image, info = camera_frame(textured_image(W, H, 6), intrinsics(W, H), a.feeder.next_stamp())
    image.header.stamp.nanosec = info.header.stamp.nanosec = 1_500_000_000
    a.feeder.send(image, info)
    assert spin_until(a.probe, lambda: a.lines('stamp nanosec 1500000000'), 10)
    assert_still_whole(a, before)


# ---------------------------------------------------------------- 4, 6: images
def png_claiming(width, height) -> bytes:
    ok, data = cv2.imencode('.png', np.zeros((8, 8, 3), np.uint8))
    data = bytearray(data.tobytes())
    data[16:24] = struct.pack('>II', width, height)
    data[29:33] = struct.pack('>I', zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def test_a_16000x16000_png_is_refused_from_its_header(attacked):
    a = attacked
    before, rss = a.running_seconds(), a.node.rss_kib()
    msg = CompressedImage(format='png', data=png_claiming(16000, 16000))
    msg.header.stamp.sec, msg.header.frame_id = int(a.feeder.stamp), 'cam_optical'
    a.compressed_pub.publish(msg)
    reason = 'compressed image 16000x16000 has more than max_image_pixels=2000000'
    assert spin_until(a.probe, lambda: a.lines(reason), 10), a.node.output()[-2000:]
    assert (a.node.rss_kib() - rss) / 1024 < 200
    assert_still_whole(a, before)


def test_a_good_compressed_frame_gives_depth(attacked):
    a = attacked
    stamp = a.feeder.next_stamp()
    ok, jpeg = cv2.imencode('.jpg', textured_image(W, H, 9)[..., ::-1])
    image, info = camera_frame(textured_image(W, H, 9), intrinsics(W, H), stamp)
    msg = CompressedImage(header=image.header, format='jpeg', data=jpeg.tobytes())
    got = lambda: any(d.header.stamp == image.header.stamp for d in a.feeder.depth)  # noqa
    for _ in range(10):
        a.feeder.info_pub.publish(info)
        a.compressed_pub.publish(msg)
        if spin_until(a.probe, got, 1.5):
            break
    assert got(), a.node.output()[-2000:]


def test_400_distinct_encoding_strings_give_one_log_line(attacked):
    a = attacked
    before = a.running_seconds()
    stamp = a.feeder.stamp            # refused before the stamp is looked at: time stands still
    for i in range(400):
        image, info = camera_frame(textured_image(W, H, 1), intrinsics(W, H), stamp)
        image.encoding = f'enc{i}' + 'x' * 60000
        a.feeder.send(image, info)
        if i % 20 == 0:
            spin_until(a.probe, lambda: False, 0.05)
    assert spin_until(a.probe, lambda: a.lines('unsupported image encoding'), 10)
    assert_still_whole(a, before)
    lines = a.lines('unsupported image encoding')
    assert len(lines) == 1 and len(lines[0]) < 600, lines[0][:1000]
    assert '(60004 chars)' in lines[0] or '(60005 chars)' in lines[0] or \
        '(60006 chars)' in lines[0]


# ---------------------------------------------------------------- 1, 5, 10: map files
def saved_map(a: Attacked) -> KeyframeMap:
    response = a.call(Trigger, 'save_map')
    assert response.success, response.message
    return KeyframeMap.load(a.map_file, 10 ** 6)


def map_arrays(kmap: KeyframeMap) -> dict:
    frames = list(kmap)
    return {'meta': np.frombuffer(json.dumps({'version': 1, 'next_id': frames[-1].keyframe_id
                                              + 1}).encode(), np.uint8),
            'ids': np.array([k.keyframe_id for k in frames], np.int64),
            'stamps': np.array([k.stamp for k in frames]),
            'poses': np.stack([k.T_map_cam for k in frames]),
            'descriptors': np.stack([k.descriptor for k in frames]),
            'images': np.stack([k.image for k in frames]),
            'K': np.stack([k.K for k in frames])}


def _zip_bomb(path, arrays):
    n, h, w = len(arrays['ids']), *arrays['images'].shape[1:3]
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            if name != 'images':
                buffer = io.BytesIO()
                np.save(buffer, value)
                archive.writestr(f'{name}.npy', buffer.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {'descr': '|u1', 'fortran_order': False,
                                                      'shape': (n, h, w, 3)})
        with archive.open('images.npy', 'w', force_zip64=True) as member:
            member.write(header.getvalue())
            for _ in range(64):             # 64 MiB of zeros, under 100 kB compressed
                member.write(bytes(1 << 20))


def _edit(change):
    def write(path, arrays):
        change(arrays)
        np.savez_compressed(path, **arrays)
    return write


def _nan_pose(a):
    a['poses'][0, 0, 3] = np.nan


MAP_ATTACKS = {
    'bad next_id': (_edit(lambda a: a.update(meta=np.frombuffer(
        b'{"version": 1, "next_id": -5}', np.uint8))), 'next_id -5'),
    'unequal lengths': (_edit(lambda a: a.update(stamps=a['stamps'][:1])), 'unequal length'),
    '2-D ids': (_edit(lambda a: a.update(ids=np.stack([a['ids'], a['ids']], 1))),
                "'ids' is int64 of shape"),
    'descriptor of size 7': (_edit(lambda a: a.update(descriptors=np.ones(
        (len(a['ids']), 7), np.float32))), 'descriptors have size 7'),
    'NaN pose': (_edit(_nan_pose), 'pose 0 is not a finite rigid transform'),
    '10000 keyframes': (_edit(lambda a: a.update(ids=np.arange(10000))),
                        'holds 10000 keyframes, more than max_map_keyframes=500'),
    'zip bomb': (_zip_bomb, "'images' declares"),
    'not a zip': (lambda path, arrays: path.write_bytes(b'PK\x03\x04 nonsense'), 'unreadable'),
}


@pytest.mark.parametrize('attack', sorted(MAP_ATTACKS))
def test_a_bad_map_file_is_refused_and_the_live_map_is_kept(attacked, attack):
    a = attacked
    good = saved_map(a)
    before = a.running_seconds()
    write, reason = MAP_ATTACKS[attack]
    if attack == 'zip bomb':       # the model input size is 256x192: a bomb that fits it
        arrays = map_arrays(good)
        arrays['ids'] = np.arange(400)
    else:
        arrays = map_arrays(good)
    rss = a.node.rss_kib()
    write(a.map_file, arrays)
    response = a.call(Trigger, 'load_map')
    assert not response.success
    assert reason in response.message and 'the current map is kept' in response.message, \
        response.message
    assert (a.node.rss_kib() - rss) / 1024 < 100
    assert_still_whole(a, before)
    kept = saved_map(a)               # the live map: the old keyframes, none lost
    assert {k.keyframe_id for k in good} <= {k.keyframe_id for k in kept}
    assert len(a.lines(reason)) == 1


def test_load_map_of_a_good_file_swaps_the_map(attacked):
    a = attacked
    good = saved_map(a)
    response = a.call(Trigger, 'load_map')
    assert response.success, response.message
    assert f'loaded {len(good)} keyframes' in response.message


def test_save_map_never_follows_a_symlink_at_the_old_temporary_name(attacked):
    a = attacked
    victim = scratch_dir() / f'victim_{os.getpid()}.txt'
    victim.write_text('keep me')
    trap = a.map_file.parent / (a.map_file.name + '.tmp.npz')
    if trap.is_symlink() or trap.exists():
        trap.unlink()
    os.symlink(victim, trap)
    try:
        saved_map(a)
        assert victim.read_text() == 'keep me'
        leftovers = [p.name for p in a.map_file.parent.iterdir()
                     if p.name.startswith(f'.{a.map_file.name}.')]
        assert leftovers == []
    finally:
        trap.unlink()


def test_configure_with_a_bad_map_file_logs_one_line_and_maps_afresh(ros_env, attacked):
    a = attacked
    bad = scratch_dir() / f'bad_start_map_{os.getpid()}.npz'
    arrays = map_arrays(saved_map(a))
    arrays['ids'] = np.stack([arrays['ids'], arrays['ids']], 1)
    np.savez_compressed(bad, **arrays)
    node = Process('geovr_node', node_args(
        {'model': str(tiny_model(ros_env)), 'backend': 'onnxruntime', 'map_file': str(bad)},
        {'__node': 'startup_map_node', 'image': '/start/image',
         'camera_info': '/start/camera_info'}), ros_env, 'startup_map_node')
    try:
        assert node.wait_for_output('active:', 90), node.output()
        lines = [line for line in node.output().splitlines() if str(bad) in line]
        assert len(lines) == 1 and 'refused' in lines[0] and 'mapping afresh' in lines[0], lines
        assert 'Traceback' not in node.output()
    finally:
        node.stop()


# ---------------------------------------------------------------- 2: question bursts
@pytest.mark.parametrize('calls', [11, 500])
def test_every_concurrent_question_is_answered(attacked, calls):
    """The node answers every request of a burst: an answer, or "busy: N questions
    waiting". The client's own keep-last depth must hold its burst (a default client, depth
    10, loses the 11th response itself), so the client here is as deep as the burst."""
    depth = calls
    from rclpy.qos import QoSProfile
    a = attacked
    before = a.running_seconds()
    client = a.probe.create_client(SpatialQuery, f'{NODE}/query',
                                   qos_profile=QoSProfile(depth=depth))
    try:
        assert client.wait_for_service(timeout_sec=10)
        futures = [client.call_async(SpatialQuery.Request(question='how far have I travelled?'))
                   for _ in range(calls)]
        spin_until(a.probe, lambda: all(f.done() for f in futures), 60)
        answers = [f.result() for f in futures if f.done()]
        assert len(answers) == calls, f'{len(answers)} of {calls} answered'
        refused = [r for r in answers if not r.success]
        assert all(r.message.startswith('busy: ') and 'questions waiting' in r.message
                   for r in refused), {r.message for r in refused}
        assert len(refused) < calls
    finally:
        a.probe.destroy_client(client)
    assert_still_whole(a, before)


BURSTS = 10


def test_a_burst_beyond_the_queue_is_refused_as_busy_not_dropped(ros_env):
    """With query_queue_depth 1, a burst of 30 gets answers and 'busy' refusals: 30 replies.
    Whether a burst outruns the answering thread is timing (a fast node answers some bursts
    whole): bursts are sent until one meets a 'busy' (at most BURSTS), every one answered whole."""
    from rclpy.qos import QoSProfile
    node = Process('geovr_node', node_args(
        {'model': str(tiny_model(ros_env)), 'backend': 'onnxruntime', 'query_queue_depth': 1},
        {'__node': 'busy_node', 'image': '/busy/image', 'camera_info': '/busy/camera_info'}),
        ros_env, 'busy_node')
    probe = rclpy.create_node('busy_probe') if rclpy.ok() else None
    own_context = probe is None
    if own_context:
        rclpy.init()
        probe = rclpy.create_node('busy_probe')
    try:
        assert node.wait_for_output('active:', 90), node.output()
        client = probe.create_client(SpatialQuery, '/busy_node/query', qos_profile=QoSProfile(depth=30))
        assert client.wait_for_service(timeout_sec=20)
        busy, messages = [], set()
        for _ in range(BURSTS):
            futures = [client.call_async(SpatialQuery.Request(question='how far have I travelled?'))
                       for _ in range(30)]
            spin_until(probe, lambda: all(f.done() for f in futures), 60)
            replies = [f.result() for f in futures if f.done()]
            assert len(replies) == 30   # refused or answered, never dropped
            messages |= {r.message for r in replies}
            busy = [r for r in replies if r.message.startswith('busy: ')]
            if busy:
                break
        assert busy and all('questions waiting' in r.message for r in busy), messages
    finally:
        probe.destroy_node()
        if own_context:
            rclpy.try_shutdown()
        node.stop()


# ---------------------------------------------------------------- 9, 11: parameters
@pytest.mark.parametrize('name, value, allowed', [
    ('diagnostics_period', 0.0, 'a finite number > 0'),
    ('max_image_pixels', -1, 'a finite number >= 1'),
    ('backend', 'nonsense', "one of ('auto', 'tensorrt', 'onnxruntime', 'torch')"),
    ('pairing_wait', float('nan'), 'a finite number >= 0'),
    ('depth_min_confidence', 1.0, 'a finite number >= 0 and < 1'),
    ('tracking_correspondences', 'sift', "one of ('descriptors', 'flow')"),
    ('undistort', 'sometimes', "one of ('auto', 'always', 'never')"),
])
def test_a_bad_parameter_at_run_time_is_refused_with_the_allowed_values(attacked, name, value,
                                                                        allowed):
    from rcl_interfaces.srv import GetParameters, SetParameters
    from rclpy.parameter import Parameter
    a = attacked
    before = a.call(GetParameters, 'get_parameters', GetParameters.Request(names=[name]))
    result = a.call(SetParameters, 'set_parameters', SetParameters.Request(
        parameters=[Parameter(name, value=value).to_parameter_msg()])).results[0]
    assert not result.successful
    assert f'parameter {name} = ' in result.reason and allowed in result.reason, result.reason
    after = a.call(GetParameters, 'get_parameters', GetParameters.Request(names=[name]))
    assert after.values == before.values
    assert a.feeder.good_frame_is_processed(20)


def test_a_good_parameter_at_run_time_is_accepted(attacked):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    result = attacked.call(SetParameters, 'set_parameters', SetParameters.Request(
        parameters=[Parameter('diagnostics_period', value=2.0).to_parameter_msg()])).results[0]
    assert result.successful, result.reason


def test_a_wrong_parameter_type_at_start_up_is_one_line(ros_env, attacked):
    node = Process('geovr_node', node_args({'model': 'x', 'max_image_pixels': 'abc'},
                                           {'__node': 'bad_type_node'}), ros_env, 'bad_type')
    try:
        node.popen.wait(60)
        lines = [line for line in node.output().splitlines() if line.strip()]
        assert node.popen.returncode == 2, node.output()
        assert len(lines) == 1 and 'max_image_pixels' in lines[0], node.output()
        assert 'Traceback' not in node.output()
    finally:
        node.stop()


@pytest.mark.parametrize('fx', [1e-9, 1e12])
def test_an_absurd_focal_length_rejects_the_camera_info(attacked, fx):
    a = attacked
    before = a.running_seconds()
    image, info = camera_frame(textured_image(W, H, 3), intrinsics(W, H), a.feeder.next_stamp())
    k = list(info.k)
    k[0] = k[4] = fx
    info.k = k
    a.feeder.send(image, info)
    assert spin_until(a.probe, lambda: a.lines(f'fx={fx:g}'), 10), a.node.output()[-2000:]
    assert_still_whole(a, before)


# ---------------------------------------------------------------- 7: programs that run code
def test_a_pytorch_program_is_refused_unless_allowed(ros_env, attacked):
    """A crafted perception.pt2 is never opened with the default parameters."""
    trap = scratch_dir() / f'trap_{os.getpid()}'
    trap.mkdir(exist_ok=True)
    (trap / 'perception.pt2').write_bytes(b'not opened')
    node = Process('geovr_node', node_args({'model': str(trap), 'backend': 'torch'},
                                           {'__node': 'pt2_node'}), ros_env, 'pt2_node')
    try:
        assert node.wait_for_output('configure failed', 60), node.output()
        lines = [line for line in node.output().splitlines() if 'configure failed' in line]
        assert len(lines) == 1 and 'allow_untrusted_programs' in lines[0], lines
        assert node.alive()
    finally:
        node.stop()


# ---------------------------------------------------------------- 8: camera models
def _frame_with(a: Attacked, change):
    image, info = camera_frame(textured_image(W, H, 4), intrinsics(W, H), a.feeder.next_stamp())
    change(info)
    return image, info


def test_a_distorted_camera_is_undistorted_and_processed(attacked):
    a = attacked

    def plumb_bob(info):
        info.distortion_model, info.d = 'plumb_bob', [-0.2, 0.05, 0.0, 0.0, 0.0]
    image, info = _frame_with(a, plumb_bob)
    got = lambda: any(d.header.stamp == image.header.stamp for d in a.feeder.depth)  # noqa
    for _ in range(10):
        a.feeder.send(image, info)
        if spin_until(a.probe, got, 1.5):
            break
    assert got(), a.node.output()[-2000:]
    said = a.lines('distortion')     # no complaint; one line saying what is done with it
    assert len(said) == 1 and 'undistorted before the model' in said[0], said


@pytest.mark.parametrize('change, reason', [
    (lambda i: (setattr(i, 'distortion_model', 'mystery'), setattr(i, 'd', [0.1, 0.0, 0.0])),
     "unknown distortion model 'mystery'"),
    (lambda i: setattr(i, 'binning_x', 2), 'binning or region of interest is not supported'),
], ids=['unknown model', 'binning'])
def test_an_unusable_camera_model_is_refused_with_one_line(attacked, change, reason):
    a = attacked
    before = a.running_seconds()
    a.feeder.send(*_frame_with(a, change))
    assert spin_until(a.probe, lambda: a.lines(reason), 10), a.node.output()[-2000:]
    assert_still_whole(a, before)
    assert len(a.lines(reason)) == 1
