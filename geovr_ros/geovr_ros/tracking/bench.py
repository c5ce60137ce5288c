"""`python -m geovr_ros.tracking.bench REC`: per-frame cost of geometric tracking and of the pose
graph on a recording with true depth, one core (OpenCV and GTSAM threads limited to 1). It runs
`geovr_ros.session.GeometricOdometry`, the tracking and graph step of geovr_node's session,
without the model.

REC is any recording with depth that `geovr_ros.recordings` reads (a 7-Scenes-style folder,
TUM, the HoloLens layout, a bag with a depth topic, a generated dataset). Prints the median
and 90th percentile milliseconds of feature extraction + matching + PnP, and of the graph
update, at the recording's own resolution.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np


def _frames(root: Path, max_frames: int):
    """(gray uint8, K, depth metres) per frame of the recording at `root`."""
    import cv2
    from geovr_ros.recordings import open_recording
    for frame in open_recording(root, with_depth=True, max_frames=max_frames):
        yield cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2GRAY), frame.K, frame.depth


def main(argv: list[str] | None = None) -> int:
    from geovr_ros.tracking import TrackerConfig
    from geovr_ros.tracking.tracker import CORRESPONDENCES
    parser = argparse.ArgumentParser(prog='python -m geovr_ros.tracking.bench', description=__doc__.splitlines()[0])
    parser.add_argument('recording', type=Path)
    parser.add_argument('--max-frames', type=int, default=200)
    parser.add_argument('--features', type=int, default=TrackerConfig.max_features,
                        help='ORB features per frame (default %(default)s)')
    parser.add_argument('--levels', type=int, default=TrackerConfig.orb_levels,
                        help='ORB pyramid levels (default %(default)s)')
    parser.add_argument('--fast-threshold', type=int, default=TrackerConfig.orb_fast_threshold,
                        help="ORB's FAST threshold (default %(default)s)")
    parser.add_argument('--low-texture-threshold', type=int, default=TrackerConfig.orb_low_texture_threshold,
                        help='FAST threshold of a second detection when fewer than a quarter of --features '
                             'pass the first, 0: none (default %(default)s)')
    parser.add_argument('--window-keyframes', type=int, default=TrackerConfig.window_keyframes,
                        help='keyframes in the sliding-window bundle adjustment, 0: none (default %(default)s)')
    parser.add_argument('--correspondences', choices=CORRESPONDENCES, default=TrackerConfig.correspondences,
                        help='descriptors: ORB matched on every frame; flow: optical flow, ORB on keyframes '
                             '(default %(default)s)')
    parser.add_argument('--depth-median-radius', type=int, default=TrackerConfig.depth_median_radius,
                        help="a feature's depth: the median within this many depth pixels, 0: the nearest "
                             '(default %(default)s)')
    args = parser.parse_args(argv)
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    import cv2
    cv2.setNumThreads(1)
    from geovr_ros.recordings import RecordingFormatError
    from geovr_ros.session import GeometricOdometry
    odometry = GeometricOdometry(TrackerConfig(max_features=args.features, orb_levels=args.levels,
                                               orb_fast_threshold=args.fast_threshold,
                                               orb_low_texture_threshold=args.low_texture_threshold,
                                               correspondences=args.correspondences,
                                               window_keyframes=args.window_keyframes,
                                               depth_median_radius=args.depth_median_radius))
    track_ms, graph_ms, size = [], [], None
    try:
        for i, (gray, K, depth) in enumerate(_frames(args.recording, args.max_frames)):
            size = gray.shape[::-1]
            tracked = odometry.track(i / 30.0, gray, K, depth)   # stamps only set velocities
            track_ms.append(tracked.tracking_ms)
            graph_ms.append(tracked.graph_ms)
    except RecordingFormatError as error:
        print(f'python -m geovr_ros.tracking.bench: {error}', file=sys.stderr)
        return 2
    if not track_ms:
        print(f'no frames with depth in {args.recording}', file=sys.stderr)
        return 2
    t, g = np.array(track_ms[1:]), np.array(graph_ms[1:])
    tracker, graph = odometry.tracker, odometry.graph
    loops = 'no pose graph' if graph is None else f'{len(graph.loops)} loop closures'
    window = 'off' if tracker.window is None else f'{tracker.window.adjustments} adjusted, {tracker.window.skipped} too little parallax'
    print(f'{args.recording.name}: {len(track_ms)} frames {size[0]}x{size[1]}, {args.features} ORB features '
          f'on {args.levels} levels (FAST {args.fast_threshold}, {args.low_texture_threshold} on bare views), '
          f'correspondences {args.correspondences}, '
          f'window {args.window_keyframes} keyframes ({window}), '
          f'one core; {tracker.keyframes_created} keyframes, {loops}, {tracker.failures} tracking failures')
    print(f'tracking      median {np.median(t):6.1f} ms   p90 {np.percentile(t, 90):6.1f} ms   mean {np.mean(t):6.1f} ms')
    print(f'graph update  mean   {np.mean(g):6.1f} ms   p90 {np.percentile(g, 90):6.1f} ms   '
          f'(only keyframes update it)')
    print(f'together      median {np.median(t + g):6.1f} ms')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
