"""Benchmark of a running geovr_node against the bare backend.

    python -m geovr_ros.nodes.node_bench --model DIR [--sizes 256x192,640x480] [--frames 100]

For each camera size it measures:
- bare: `PerceptionPipeline.preprocess + run` in this process, with the node's thread
  settings (its parameters, `--node-param` included: what the node must do anyway);
- latency, one frame in flight at a time, each image sent when the node is idle (a geovr_node
  process started here, or `--node-running` for one you started):
  - in the node (its /diagnostics, mean over the latency frames): image callback -> depth
    published, and the stamp's age when the callback ran (DDS transport + executor);
  - end to end: image stamp (set just before publishing) -> depth received here;
- node overhead = (callback -> depth published) - bare, also as a percentage of bare: what
  the node adds to the backend's work; the transport is reported beside it;
- the session alone: `Session.process` in this process over the same frames (the frame's
  whole work: preprocess, model, tracking, pose graph, localization, memory, objects), its
  mean against the node's mean callback -> every output published (`latency_total_ms`):
  what the node adds around the ROS-free core (message conversion, publishing, its threads
  beside the model's). `--rounds N` alternates N blocks of the node and N of the session
  (node, session, node, ...), so that a machine whose speed drifts over a minute (this 2-core
  one swings 20-30 %) slows both alike; the figure is the ratio of the sums, each round's
  beside it;
- throughput: depth messages per second while images are offered at `--offer-hz`.

Must run with the project's ROS environment (`source scripts/ros_env.sh`).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'size must be WxH, got {text!r}') from None
    return width, height


def test_image(width: int, height: int, shift: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height // 8 + 1, width // 8 + 2, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(base, 8, axis=0), 8, axis=1)
    return np.ascontiguousarray(big[:height, shift % 8:shift % 8 + width])


def intrinsics(width: int, height: int) -> np.ndarray:
    return np.array([[0.9 * width, 0, (width - 1) / 2], [0, 0.9 * width, (height - 1) / 2],
                     [0, 0, 1.0]])


def node_backend_options(node_params: list[str]) -> dict:
    """The backend options (threads, spinning) the node gets from its default parameters and
    the `--node-param NAME:=VALUE` overrides, so that this process measures what it runs."""
    import yaml

    from geovr_ros.nodes.geovr_node_params import GEOVR_NODE_PARAMS, backend_options
    values = {param.name: param.default for param in GEOVR_NODE_PARAMS}
    for text in node_params:
        name, _, value = text.partition(':=')
        if name in values:
            values[name] = yaml.safe_load(value)
    return backend_options(values)


def bare_backend_ms(model: str, backend: str, size: tuple[int, int], frames: int, **options) -> dict:
    """Median ms of preprocess and run in this process for camera images of `size`."""
    from geovr_ros.inference import PerceptionPipeline
    pipeline = PerceptionPipeline(model, backend=backend, **options)
    K = intrinsics(*size)
    ref = pipeline.preprocess(test_image(*size, 0), K)
    pre, run = [], []
    for i in range(frames + 3):
        t0 = time.perf_counter()
        cur = pipeline.preprocess(test_image(*size, i), K)
        t1 = time.perf_counter()
        pipeline.run(ref, cur)
        t2 = time.perf_counter()
        if i >= 3:
            pre.append((t1 - t0) * 1e3)
            run.append((t2 - t1) * 1e3)
    pipeline.close()
    return {'preprocess_ms': float(np.median(pre)), 'run_ms': float(np.median(run)),
            'bare_ms': float(np.median(np.add(pre, run)))}


def session_alone_ms(model: str, backend: str, size: tuple[int, int], frames: int, gap: float = 0.0,
                     **options) -> dict:
    """`Session.process` (default SessionConfig, as the node's default parameters) in this
    process over the latency test's `frames` frames of `size` at 30 Hz stamps, `gap` seconds
    apart as the latency test sends them (an idle pause makes the next inference slower: the
    backend's threads have gone to sleep): the mean ms per frame (what the node's diagnostics
    average; keyframes cost more than other frames), the median, and the mean of each of the
    session's stages (`ProcessedFrame.timings_ms`)."""
    from geovr_ros.inference import PerceptionPipeline
    from geovr_ros.session import Session
    pipeline = PerceptionPipeline(model, backend=backend, **options)
    session = Session(pipeline, mount=np.eye(4))
    K = intrinsics(*size)
    totals, stages = [], {}
    for i in range(frames + 3):
        start = time.perf_counter()
        frame = session.process(test_image(*size, i), K, 1000.0 + i / 30.0)
        if i >= 3:
            totals.append((time.perf_counter() - start) * 1e3)
            for key, value in getattr(frame, 'timings_ms', {}).items():
                stages.setdefault(key, []).append(value)
        time.sleep(gap)
    pipeline.close()
    return {'session_ms': float(np.mean(totals)), 'session_median_ms': float(np.median(totals)),
            'session_stages_ms': {k: float(np.mean(v)) for k, v in stages.items()}}


class NodeDriver:
    """Publishes images to the node and times the depth that comes back."""

    def __init__(self, namespace: str):
        import rclpy
        from sensor_msgs.msg import CameraInfo, Image
        self.rclpy = rclpy
        self.node = rclpy.create_node('node_bench')
        self.image_pub = self.node.create_publisher(Image, f'{namespace}/image', 1)
        self.info_pub = self.node.create_publisher(CameraInfo, f'{namespace}/camera_info', 10)
        self.received: dict[float, float] = {}
        self.node.create_subscription(Image, f'{namespace}/depth', self._on_depth, 10)
        from diagnostic_msgs.msg import DiagnosticArray
        self.stages: dict[str, float] = {}
        self.memory_keyframes = 0
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)

    def _on_diagnostics(self, msg) -> None:
        for status in msg.status:
            values = {v.key: v.value for v in status.values}
            if 'memory_keyframes' in values:
                self.memory_keyframes = int(values['memory_keyframes'])
            if 'latency_total_ms' in values:
                self.stages = {k[len('latency_'):]: float(v) for k, v in values.items()
                               if k.startswith('latency_')}

    def _on_depth(self, msg) -> None:
        from geovr_ros.ros.conversions import stamp_to_sec
        self.received[round(stamp_to_sec(msg.header.stamp), 6)] = time.time()

    def wait_for_node(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.image_pub.get_subscription_count() and self.node.count_publishers(
                    self.image_pub.topic_name.rsplit('/', 1)[0] + '/depth'):
                return True
            self.rclpy.spin_once(self.node, timeout_sec=0.1)
        return False

    def send(self, size, shift) -> float:
        from std_msgs.msg import Header

        from geovr_ros.ros.conversions import array_to_image_msg, camera_info_msg, sec_to_stamp
        header = Header(frame_id='bench_optical')
        info = camera_info_msg(intrinsics(*size), size[0], size[1], header)
        image = array_to_image_msg(test_image(*size, shift), 'rgb8', header)
        stamp = round(time.time(), 6)  # a driver stamps a frame it has ready to publish
        info.header.stamp = image.header.stamp = sec_to_stamp(stamp)
        self.info_pub.publish(info)
        self.image_pub.publish(image)
        return stamp

    def fresh_stages(self, timeout: float = 5.0) -> dict[str, float]:
        """The node's per-stage means from the next /diagnostics message."""
        self.stages = {}
        deadline = time.monotonic() + timeout
        while not self.stages and time.monotonic() < deadline:
            self.rclpy.spin_once(self.node, timeout_sec=0.05)
        return dict(self.stages)

    def latency_ms(self, size, frames: int, gap: float, timeout: float = 5.0) -> list[float]:
        """Stamp -> depth of `frames` images, each sent `gap` s after the previous depth
        arrived, so it finds the node idle (its work after depth is done), as a camera frame
        does when the node keeps up."""
        latencies = []
        for i in range(frames + 3):
            stamp = self.send(size, i)
            deadline = time.monotonic() + timeout
            while stamp not in self.received and time.monotonic() < deadline:
                # spin_once returns as soon as a message is in: a long timeout costs no latency,
                # and a short one polls, taking CPU from the node it measures
                self.rclpy.spin_once(self.node, timeout_sec=0.1)
            if stamp in self.received and i >= 3:
                latencies.append((self.received[stamp] - stamp) * 1e3)
            settle = time.monotonic() + gap
            while time.monotonic() < settle:
                self.rclpy.spin_once(self.node, timeout_sec=max(0.0, settle - time.monotonic()))
        return latencies

    def question_ms(self, namespace: str, calls: int = 30) -> list[float]:
        """Round-trip ms of ~/query for a trajectory question, one call at a time."""
        from geovr_interfaces.srv import SpatialQuery
        client = self.node.create_client(SpatialQuery, f'{namespace}/geovr_node/query')
        if not client.wait_for_service(timeout_sec=5):
            return []
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            future = client.call_async(SpatialQuery.Request(
                question='how far have I travelled?', target_frame='odom'))
            self.rclpy.spin_until_future_complete(self.node, future, timeout_sec=5)
            if future.done() and future.result().success:
                times.append((time.perf_counter() - start) * 1e3)
        self.node.destroy_client(client)
        return times

    def throughput_hz(self, size, seconds: float, offer_hz: float) -> float:
        self.received.clear()
        start = time.monotonic()
        sent, next_send = 0, start
        while time.monotonic() - start < seconds:
            if time.monotonic() >= next_send:
                self.send(size, sent)
                sent += 1
                next_send += 1.0 / offer_hz
            self.rclpy.spin_once(self.node, timeout_sec=0.002)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            self.rclpy.spin_once(self.node, timeout_sec=0.01)
        return len(self.received) / seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='node_bench', description=__doc__.splitlines()[0])
    parser.add_argument('--model', required=True, help='model directory (geovr-export onnx)')
    parser.add_argument('--backend', default='onnxruntime')
    parser.add_argument('--sizes', default='256x192,640x480',
                        type=lambda t: [parse_size(s) for s in t.split(',')])
    parser.add_argument('--frames', type=int, default=100,
                        help='frames per latency figure (the node averages its stages over '
                        'its last 100 frames)')
    parser.add_argument('--gap', type=float, default=0.05,
                        help='seconds between a depth arriving and the next image in the '
                        'latency test (the node finishes its other outputs meanwhile)')
    parser.add_argument('--rounds', type=int, default=2,
                        help='alternating blocks of --frames frames of the node and of the session alone '
                        'per size, for the overhead against the session (default 2)')
    parser.add_argument('--seconds', type=float, default=5.0, help='throughput window')
    parser.add_argument('--offer-hz', type=float, default=60.0,
                        help='image rate offered in the throughput test')
    parser.add_argument('--namespace', default='/bench')
    parser.add_argument('--node-running', action='store_true',
                        help='measure an already running node in --namespace')
    parser.add_argument('--node-param', action='append', default=[], metavar='NAME:=VALUE',
                        help='extra geovr_node parameter (repeatable), e.g. '
                        'keyframe_translation:=0.0 to fill the memory for the question figure')
    parser.add_argument('--json', type=Path, help='also write the results here')
    parser.add_argument('--node-log', type=Path, default=None,
                        help="write the started node's output here (default: discarded)")
    args = parser.parse_args(argv)

    import rclpy
    results = []
    rclpy.init(args=[])
    node_process = None
    if not args.node_running:
        node_process = subprocess.Popen(
            [str(Path(sys.executable).parent / 'geovr_node'), '--ros-args',
             '-p', f'model:={args.model}', '-p', f'backend:={args.backend}',
             '-r', f'__ns:={args.namespace}']
            + [arg for param in args.node_param for arg in ('-p', param)],
            env=dict(os.environ), stderr=subprocess.STDOUT,
            stdout=open(args.node_log, 'w') if args.node_log else subprocess.DEVNULL)
    driver = NodeDriver(args.namespace)
    try:
        if not driver.wait_for_node(60):
            print('node_bench: geovr_node did not come up (no depth publisher)', file=sys.stderr)
            return 1
        for size in args.sizes:
            options = node_backend_options(args.node_param)   # the node's thread settings here too
            bare = bare_backend_ms(args.model, args.backend, size, min(args.frames, 40), **options)
            latencies, rounds = [], []
            for _ in range(max(1, args.rounds)):    # node, session alone, node, ...: drift hits both
                latencies += driver.latency_ms(size, args.frames, args.gap)
                stages = driver.fresh_stages()      # the node's means over its last 100 frames
                alone = session_alone_ms(args.model, args.backend, size, args.frames, args.gap, **options)
                if stages:
                    rounds.append((stages['total_ms'], alone['session_ms']))
            throughput = driver.throughput_hz(size, args.seconds, args.offer_hz)
            latency = float(np.median(latencies)) if latencies else float('nan')
            row = {'size': f'{size[0]}x{size[1]}', **bare, **alone, 'frames': len(latencies),
                   'end_to_end_ms': latency,
                   'end_to_end_p90_ms': float(np.percentile(latencies, 90))
                   if latencies else float('nan'),
                   'throughput_hz': throughput, 'node_stages_ms': stages}
            if stages:
                to_depth = sum(stages[k] for k in ('input_ms', 'preprocess_ms', 'model_ms',
                                                   'depth_publish_ms'))
                overhead = to_depth - bare['bare_ms']
                row.update(callback_to_depth_ms=to_depth, node_overhead_ms=overhead,
                           node_overhead_pct=100.0 * overhead / bare['bare_ms'],
                           transport_ms=stages['arrival_age_ms'],
                           node_total_ms=float(np.mean([node for node, _ in rounds])),
                           session_ms=float(np.mean([session for _, session in rounds])),
                           session_overhead_pct=100.0 * (sum(n for n, _ in rounds) / sum(a for _, a in rounds) - 1),
                           session_overhead_pct_rounds=[100.0 * (n / a - 1) for n, a in rounds])
            questions = driver.question_ms(args.namespace)
            row['question_ms'] = float(np.median(questions)) if questions else float('nan')
            row['memory_keyframes'] = driver.memory_keyframes
            results.append(row)
            print(f"{row['size']:>9}: bare {bare['bare_ms']:.1f} ms (preprocess "
                  f"{bare['preprocess_ms']:.1f} + run {bare['run_ms']:.1f})", flush=True)
            if stages:
                print(f"           in the node: callback -> depth published "
                      f"{row['callback_to_depth_ms']:.1f} ms, overhead "
                      f"{row['node_overhead_ms']:.1f} ms = {row['node_overhead_pct']:.0f} % of "
                      f"bare; stamp age at the callback (transport) "
                      f"{row['transport_ms']:.1f} ms; stages: " + ', '.join(
                          f'{k[:-3]} {v:.1f}' for k, v in stages.items()), flush=True)
                print(f"           against the session alone ({len(rounds)} alternating rounds of {args.frames} "
                      f"frames): {row['session_ms']:.1f} ms per frame here (last round's median "
                      f"{alone['session_median_ms']:.1f}), {row['node_total_ms']:.1f} ms in the node (callback -> "
                      f"every output) = {row['session_overhead_pct']:+.0f} % (rounds: " + ', '.join(
                          f'{pct:+.0f} %' for pct in row['session_overhead_pct_rounds']) + "); last round's session "
                      "stages: " + ', '.join(
                          f'{k[:-3]} {v:.1f}' for k, v in alone['session_stages_ms'].items()), flush=True)
            print(f"           end to end: stamp -> depth received {latency:.1f} ms (p90 "
                  f"{row['end_to_end_p90_ms']:.1f}); throughput {throughput:.1f} Hz; question "
                  f"{row['question_ms']:.1f} ms with {driver.memory_keyframes} keyframes in "
                  f"memory", flush=True)
    finally:
        driver.node.destroy_node()
        rclpy.try_shutdown()
        if node_process is not None:
            node_process.send_signal(signal.SIGINT)
            try:
                node_process.wait(10)
            except subprocess.TimeoutExpired:
                node_process.kill()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
