"""Soak of geovr_node under a hostile peer, beside a clean twin.

    python -m geovr_ros.nodes.soak --model DIR [--minutes 10] [--hz 30] [--size 640x480] [--json OUT]

Two geovr_node processes run side by side (namespaces /soak_clean and /soak_attacked), so
they share the machine's load alike. Both get the same camera stream (`--hz` frames a second);
the attacked one also gets one hostile message a second, in turn: an image with a 60 kB
encoding string, an image stamped 0 with no camera_info, one stamped a day ahead, a
camera_info with NaN focal lengths, an image whose data is too short for its size, and a
compressed PNG whose header claims 16000x16000 pixels. Every `--sample` seconds the resident
memory of each node is read from /proc. Printed and written: depth messages a second for each
node (after the first minute of warm-up) and their ratio, the memory of each at the end of
warm-up and at the end, and the largest growth.

Must run with the project's ROS environment (`source scripts/ros_env.sh`).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from geovr_ros.nodes.node_bench import intrinsics, parse_size, test_image

ATTACKS = ('long_encoding', 'stamp_zero', 'stamp_future', 'nan_camera_info', 'short_data', 'png_bomb_header')


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height RGB pixels, with one empty IDAT: a decoder
    that trusted the header would allocate width * height * 3 bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))
    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', zlib.compress(b'')) + chunk(b'IEND', b'')


def rss_mib(pid: int) -> float:
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
    return float('nan')


class Driver:
    """Publishes the camera stream to both nodes and the attacks to one; counts depth."""

    def __init__(self, size: tuple[int, int]):
        import rclpy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image
        self.rclpy, self.size = rclpy, size
        self.node = rclpy.create_node('soak_driver')
        self.pubs, self.depth = {}, {}
        for name in ('clean', 'attacked'):
            ns = f'/soak_{name}'
            self.pubs[name] = (self.node.create_publisher(Image, f'{ns}/image', 5),
                               self.node.create_publisher(CameraInfo, f'{ns}/camera_info', 10))
            self.depth[name] = 0
            self.node.create_subscription(Image, f'{ns}/depth', self._counter(name), 10)
        self.compressed = self.node.create_publisher(CompressedImage, '/soak_attacked/image/compressed', 5)
        self.frames = [test_image(*size, shift) for shift in range(8)]

    def _counter(self, name: str):
        def count(_msg) -> None:
            self.depth[name] += 1
        return count

    def _messages(self, rgb: np.ndarray, stamp: float):
        from std_msgs.msg import Header

        from geovr_ros.ros.conversions import array_to_image_msg, camera_info_msg, sec_to_stamp
        header = Header(frame_id='soak_optical', stamp=sec_to_stamp(stamp))
        return (array_to_image_msg(rgb, 'rgb8', header),
                camera_info_msg(intrinsics(*self.size), self.size[0], self.size[1], header))

    def frame(self, index: int) -> None:
        image, info = self._messages(self.frames[index % len(self.frames)], time.time())
        for image_pub, info_pub in self.pubs.values():
            info_pub.publish(info)
            image_pub.publish(image)

    def attack(self, index: int) -> str:
        from sensor_msgs.msg import CompressedImage

        from geovr_ros.ros.conversions import sec_to_stamp
        kind = ATTACKS[index % len(ATTACKS)]
        image_pub, info_pub = self.pubs['attacked']
        image, info = self._messages(self.frames[0], time.time())
        if kind == 'long_encoding':
            image.encoding = f'x{index}' + 'y' * 60000
            image_pub.publish(image)
        elif kind in ('stamp_zero', 'stamp_future'):
            image.header.stamp = sec_to_stamp(0.0 if kind == 'stamp_zero' else time.time() + 86400.0)
            image_pub.publish(image)
        elif kind == 'nan_camera_info':
            info.k = [float('nan')] * 9
            info_pub.publish(info)
        elif kind == 'short_data':
            image.data = bytes(image.data[:len(image.data) // 3])
            image_pub.publish(image)
        else:
            msg = CompressedImage(format='png', data=png_header_only(16000, 16000))
            msg.header = image.header
            self.compressed.publish(msg)
        return kind

    def spin(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self.rclpy.spin_once(self.node, timeout_sec=min(left, 0.005))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python -m geovr_ros.nodes.soak', description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='model directory (geovr-export onnx)')
    parser.add_argument('--backend', default='onnxruntime')
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--warmup', type=float, default=60.0, help='seconds before rates and memory count')
    parser.add_argument('--hz', type=float, default=30.0, help='camera frames a second to each node')
    parser.add_argument('--attack-hz', type=float, default=1.0, help='hostile messages a second')
    parser.add_argument('--size', type=parse_size, default=(640, 480))
    parser.add_argument('--sample', type=float, default=10.0, help='seconds between memory samples')
    parser.add_argument('--json', type=Path, default=None)
    args = parser.parse_args(argv)

    import rclpy
    rclpy.init(args=[])
    nodes = {}
    for name in ('clean', 'attacked'):
        nodes[name] = subprocess.Popen(
            [str(Path(sys.executable).parent / 'geovr_node'), '--ros-args', '-p', f'model:={args.model}',
             '-p', f'backend:={args.backend}', '-p', 'subscribe_compressed:=true',
             '-p', 'backend_threads:=1', '-r', f'__ns:=/soak_{name}'],
            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    driver = Driver(args.size)
    samples = {name: [] for name in nodes}
    attacks: dict[str, int] = {}
    try:
        driver.spin(10.0)  # discovery, model loading
        start = time.monotonic()
        end = start + 60.0 * args.minutes
        next_frame = next_attack = next_sample = start
        counted_from, counts_at_warmup, frame = None, None, 0
        while time.monotonic() < end:
            now = time.monotonic()
            if counted_from is None and now - start >= args.warmup:
                counted_from, counts_at_warmup = now, dict(driver.depth)
            if now >= next_frame:
                driver.frame(frame)
                frame += 1
                next_frame += 1.0 / args.hz
            if now >= next_attack and args.attack_hz > 0:
                kind = driver.attack(sum(attacks.values()))
                attacks[kind] = attacks.get(kind, 0) + 1
                next_attack += 1.0 / args.attack_hz
            if now >= next_sample:
                for name, process in nodes.items():
                    alive = process.poll() is None
                    samples[name].append((now - start, rss_mib(process.pid) if alive else float('nan')))
                next_sample += args.sample
            driver.spin(max(0.0, min(next_frame, next_attack, next_sample) - time.monotonic()))
        seconds = time.monotonic() - (counted_from or start)
        result = {'minutes': args.minutes, 'hz_offered': args.hz, 'size': list(args.size), 'attacks_sent': attacks,
                  'frames_offered': frame}
        for name, process in nodes.items():
            rates = (driver.depth[name] - (counts_at_warmup or {}).get(name, 0)) / max(seconds, 1e-9)
            after = [m for t, m in samples[name] if t >= args.warmup]
            result[name] = {'alive': process.poll() is None, 'depth_hz': rates,
                            'rss_mib_after_warmup': after[0] if after else float('nan'),
                            'rss_mib_end': after[-1] if after else float('nan'),
                            'rss_mib_max_growth': (max(after) - after[0]) if after else float('nan'),
                            'rss_samples': samples[name]}
        result['rate_ratio'] = result['attacked']['depth_hz'] / max(result['clean']['depth_hz'], 1e-9)
    finally:
        driver.node.destroy_node()
        rclpy.try_shutdown()
        for process in nodes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    for name in ('clean', 'attacked'):
        r = result[name]
        print(f"{name:>9}: alive {r['alive']}, depth {r['depth_hz']:.2f} Hz, memory {r['rss_mib_after_warmup']:.0f} "
              f"-> {r['rss_mib_end']:.0f} MiB (largest growth {r['rss_mib_max_growth']:.1f} MiB)")
    print(f"attacked / clean rate: {result['rate_ratio']:.3f}; attacks sent: "
          + ', '.join(f'{k} {v}' for k, v in sorted(attacks.items())))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if result['clean']['alive'] and result['attacked']['alive'] else 1


if __name__ == '__main__':
    sys.exit(main())
