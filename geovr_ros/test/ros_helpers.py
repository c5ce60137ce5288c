"""Shared helpers of the real-process ROS tests: start the console scripts, probe topics
from the test process, build a tiny exported model once per session.

Every wait is bounded; every process started here is stopped by its own Popen handle.
"""
from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from geovr_ros.ros.spin import spin_until  # noqa: F401 (the tests import it from here)

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

_model_dir: Path | None = None
_model_error: str | None = None
_dataset_dir: Path | None = None
_shipped_dir: Path | None = None
_scratch = Path(tempfile.mkdtemp(prefix='geovr_ros_test_'))
atexit.register(shutil.rmtree, _scratch, ignore_errors=True)


def _run(cmd: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(name='probe')
def probe_node():
    """A node in the test process (rclpy initialised for the test, shut down after)."""
    import rclpy
    rclpy.init()
    node = rclpy.create_node('test_probe')
    yield node
    node.destroy_node()
    rclpy.try_shutdown()


def wait_until_heard(probe, topics: list[str], heard, timeout: float = 30.0) -> bool:
    """Spin `probe` until it knows a publisher on each of `topics` and `heard()` is true (a
    message that came through proves the other side matched the probe's readers too).

    Discovery takes its time on a loaded machine: a replay started before it ends loses
    its first frames to a probe that is not connected yet.
    """
    return spin_until(probe, lambda: all(probe.count_publishers(t) for t in topics) and heard(),
                      timeout)


def call_trigger(probe, name: str, timeout: float = 5.0):
    """The response of the std_srvs/Trigger service `name`, called from `probe`."""
    import rclpy
    from std_srvs.srv import Trigger
    client = probe.create_client(Trigger, name)
    assert client.wait_for_service(timeout_sec=timeout), f'no service {name}'
    future = client.call_async(Trigger.Request())
    rclpy.spin_until_future_complete(probe, future, timeout_sec=timeout)
    return future.result()


def tiny_model(env: dict) -> Path:
    """Directory of a tiny untrained GeoVR-S exported with `geovr-export onnx` (built once per
    session), or the exported model directory named by $GEOVR_TEST_MODEL. Skips the calling
    test, naming the reason, when the training package or its export command cannot
    produce one."""
    global _model_dir, _model_error
    if _model_dir is None and os.environ.get('GEOVR_TEST_MODEL'):
        given = Path(os.environ['GEOVR_TEST_MODEL'])
        if not (given / 'perception.onnx').is_file():
            pytest.skip(f'GEOVR_TEST_MODEL={given} holds no perception.onnx')
        _model_dir = given
    if _model_dir is not None:
        return _model_dir
    if _model_error is not None:
        pytest.skip(_model_error)
    checkpoint = _scratch / 'tiny.pt'
    out = _scratch / 'model'
    build = ('import torch\n'
             'from geovr_training.model import build_model, preset_args, save_checkpoint\n'
             'torch.manual_seed(0)\n'
             "model = build_model(preset_args('tiny', dim=64))\n"
             f'save_checkpoint({str(checkpoint)!r}, model, {{"input_size": [256, 192]}}, 0)\n')
    export = [str(VENV_BIN / 'geovr-export'), 'onnx', '--checkpoint', str(checkpoint),
              '--out', str(out), '--input-size', '256x192', '--no-torch-program', '--no-parity']
    for name, cmd in (('building a tiny checkpoint with geovr_training',
                       [sys.executable, '-c', build]), ('geovr-export onnx', export)):
        try:
            result = _run(cmd, env, 300)
        except (OSError, subprocess.TimeoutExpired) as error:
            _model_error = f'no model for the node tests: {name} failed: {error}'
            pytest.skip(_model_error)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            _model_error = f'no model for the node tests: {name} failed: {" | ".join(tail)}'
            pytest.skip(_model_error)
    _model_dir = out
    return out


def shipped_model(env: dict) -> Path:
    """Directory of the shipped GeoVR-S (models/geovr_s_v2/checkpoint.pt) exported with
    `geovr-export onnx` once per session, or the exported model named by
    $GEOVR_TRAINED_MODEL. Skips the calling test, naming the reason, when neither exists."""
    global _shipped_dir
    given = os.environ.get('GEOVR_TRAINED_MODEL')
    if given:
        if not (Path(given) / 'perception.onnx').is_file():
            pytest.skip(f'GEOVR_TRAINED_MODEL={given} holds no perception.onnx')
        return Path(given)
    if _shipped_dir is not None:
        return _shipped_dir
    checkpoint = REPO_ROOT / 'models' / 'geovr_s_v2' / 'checkpoint.pt'
    if not checkpoint.is_file():
        pytest.skip(f'no trained model: {checkpoint} is absent and GEOVR_TRAINED_MODEL is unset '
                    '(an untrained model has no accuracy to test)')
    out = _scratch / 'shipped'
    result = _run([str(VENV_BIN / 'geovr-export'), 'onnx', '--checkpoint', str(checkpoint),
                   '--out', str(out), '--no-torch-program', '--no-parity'], env, 300)
    assert result.returncode == 0, f'geovr-export of the shipped model failed: {result.stderr}'
    _shipped_dir = out
    return out


def generated_dataset(env: dict, frames: int = 40) -> Path:
    """A one-sequence `geovr-data generate` dataset at 256x192 (built once per session)."""
    global _dataset_dir
    if _dataset_dir is not None:
        return _dataset_dir
    out = _scratch / 'data'
    cmd = [str(VENV_BIN / 'geovr-data'), 'generate', '--out', str(out), '--scenes', '1',
           '--frames-per-scene', str(frames), '--seed', '7', '--resolution', '256x192']
    try:
        result = _run(cmd, env, 300)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f'geovr-data generate is unavailable: {error}')
    if result.returncode != 0:
        pytest.skip('geovr-data generate failed: '
                    + ' | '.join(result.stderr.strip().splitlines()[-3:]))
    _dataset_dir = out
    return out


class Process:
    """A console script of the package, its output in a log file."""

    def __init__(self, script: str, args: list[str], env: dict, name: str):
        self.log_path = _scratch / f'{name}_{time.monotonic_ns()}.log'
        self._log = open(self.log_path, 'w')
        self.popen = subprocess.Popen([str(VENV_BIN / script), *args], env=env,
                                      stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors='replace')

    def rss_kib(self) -> int:
        """Resident memory of the process, KiB."""
        for line in Path(f'/proc/{self.pid}/status').read_text().splitlines():
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
        raise RuntimeError(f'no VmRSS for pid {self.pid}')

    def wait_for_output(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return True
            if not self.alive():
                return text in self.output()
            time.sleep(0.1)
        return False

    def stop(self, timeout: float = 5.0) -> int:
        if self.alive():
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()
        return self.popen.returncode


def node_args(params: dict, remaps: dict | None = None) -> list[str]:
    """`--ros-args -p k:=v ... -r from:=to` for a console script."""
    args = ['--ros-args']
    for key, value in params.items():
        if isinstance(value, bool):
            value = 'true' if value else 'false'
        elif isinstance(value, (list, tuple)):
            value = '[' + ','.join(str(v) for v in value) + ']'
        args += ['-p', f'{key}:={value}']
    for src, dst in (remaps or {}).items():
        args += ['-r', f'{src}:={dst}']
    return args


def camera_frame(rgb: np.ndarray, K: np.ndarray, stamp: float, frame_id: str = 'cam_optical',
                 encoding: str = 'rgb8'):
    """(Image, CameraInfo) messages of an (H, W, 3) uint8 image with intrinsics K."""
    from std_msgs.msg import Header

    from geovr_ros.ros.conversions import array_to_image_msg, camera_info_msg, sec_to_stamp
    header = Header(stamp=sec_to_stamp(stamp), frame_id=frame_id)
    image = array_to_image_msg(rgb, encoding, header)
    info = camera_info_msg(K, rgb.shape[1], rgb.shape[0], header)
    return image, info


def textured_image(width: int, height: int, shift: int = 0, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 random texture, moved `shift` pixels to the right."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height // 8 + 1, width // 8 + 2, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)
    return np.ascontiguousarray(big[:height, shift % 8:shift % 8 + width])


def intrinsics(width: int, height: int) -> np.ndarray:
    f = 0.9 * width
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1.0]])


class Feeder:
    """Publishes frames to the node and collects its depth output."""

    def __init__(self, probe, prefix: str, width: int, height: int, depth_topic='/depth',
                 frame_id: str = 'cam_optical', image_name: str = 'image'):
        from sensor_msgs.msg import CameraInfo, Image
        self.probe, self.width, self.height, self.frame_id = probe, width, height, frame_id
        self.image_pub = probe.create_publisher(Image, f'{prefix}/{image_name}', 5)
        self.info_pub = probe.create_publisher(CameraInfo, f'{prefix}/camera_info', 5)
        self.depth = []
        probe.create_subscription(Image, depth_topic, self.depth.append, 10)
        self.stamp = 1000.0
        self.shift = 0

    def next_stamp(self) -> float:
        self.stamp += 0.1
        return round(self.stamp, 3)

    def send(self, image, info=None):
        if info is not None:
            self.info_pub.publish(info)
        self.image_pub.publish(image)

    def good_frame_is_processed(self, timeout: float = 8.0) -> bool:
        """Sends a valid frame and waits for depth with its stamp."""
        stamp = self.next_stamp()
        self.shift += 1
        image, info = camera_frame(textured_image(self.width, self.height, self.shift),
                                   intrinsics(self.width, self.height), stamp, self.frame_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:     # resend: the first may race discovery
            self.send(image, info)
            if spin_until(self.probe, lambda: any(
                    _stamp(d) == stamp for d in self.depth), 1.0):
                return True
        return False


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def environment_with(env: dict, **extra) -> dict:
    merged = dict(env)
    merged.update({k: str(v) for k, v in extra.items()})
    return merged


def scratch_dir() -> Path:
    return _scratch


__all__ = ['Feeder', 'Process', 'REPO_ROOT', 'camera_frame', 'environment_with',
           'generated_dataset', 'intrinsics', 'node_args', 'probe_node', 'scratch_dir',
           'spin_until', 'textured_image', 'tiny_model', 'wait_until_heard']
os.environ.setdefault('PYTHONUNBUFFERED', '1')
