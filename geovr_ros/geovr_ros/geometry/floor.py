"""Metric scale from the floor: a camera that knows its height above the floor can measure the
scale of a depth map whose shape is right and whose scale is not.

A ground robot's camera sits at a known height (its mount), and the floor is usually in view.
The floor in a predicted depth map is the farthest-below large horizontal surface; its
distance below the camera, against the known height, is the depth's scale error. The classic
scale recovery of monocular visual odometry on cars, here for learned depth.

- `floor_distance(depth, K, up)`: the floor's distance below the camera in one depth map: the
  pixels whose surface normal (from neighbouring points) lies within `max_tilt_deg` of `up`,
  their heights below the camera in a histogram of log-height (so the bins do not depend on the
  scale), and the lowest bin holding at least `peak_fraction` of the fullest one (a table top
  holds more pixels than the floor beside it, but lies above it). None when fewer than
  `min_fraction` of the pixels lie on that surface.
- `FloorScale`: the running median of the per-frame ratios height / floor distance over the
  last `window` frames that saw the floor (one frame's floor can be a large table; the
  median of many is not), applied to every frame.
- `up_from_depth(depth, K, prior)`: the up direction one depth map shows, the mean normal of
  its horizontal surfaces (floor, table tops, seats: every one is level) found from a rough
  prior (a camera's minus optical y), so that a camera that starts tilted need not be taken as
  level.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ._arrays import as_camera_matrix, as_float_array
from .errors import ShapeError
from .projection import depth_to_points

__all__ = ['FloorEstimate', 'FloorScale', 'floor_distance', 'up_from_depth']


@dataclass(frozen=True)
class FloorEstimate:
    """distance: metres from the camera centre down to the floor plane along `up`, in the
    depth map's own scale; fraction: share of the sampled pixels on the floor."""

    distance: float
    fraction: float


def floor_distance(depth: np.ndarray, K: np.ndarray, up: np.ndarray, *, max_tilt_deg: float = 10.0,
                   min_fraction: float = 0.05, peak_fraction: float = 0.25, bin_width: float = 0.03,
                   max_lower_fraction: float = 0.02, lower_margin: float = 0.15,
                   step: int | None = None) -> FloorEstimate | None:
    """The floor below the camera in one depth map (see the module docstring).

    Args:
        depth: (H, W) metres along optical z; NaN, inf and <= 0 are ignored.
        K: (3, 3) intrinsics of `depth`, pixels.
        up: (3,) the up direction in the camera's optical frame (any length).
        max_tilt_deg: a pixel is on a horizontal surface when its normal is this close to up.
        min_fraction: share of the sampled pixels the floor must hold.
        peak_fraction: the floor's histogram bin must hold this share of the fullest bin.
        bin_width: histogram bin of log-height (0.03: 3 % of the height).
        max_lower_fraction, lower_margin: the floor is refused when more than this share of
            the valid pixels lie more than (1 + lower_margin) times its distance below.
        step: sample every step-th pixel in each direction (the normals span 2 steps); None:
            about 128 samples across (2 at the model's 256x192), so that the normals span the
            same angle at any resolution.
    Returns:
        FloorEstimate, or None when no floor is in view.
    """
    depth = as_float_array(depth, 'depth')
    if depth.ndim != 2:
        raise ShapeError(f'depth must be (H, W), got {depth.shape}')
    K = as_camera_matrix(K)
    up = as_float_array(up, 'up', (3,), finite=True).reshape(3)
    norm = float(np.linalg.norm(up))
    if norm == 0:
        raise ShapeError('up must not be the zero vector')
    up = up / norm
    sampled = _sampled_normals(depth, K, step)
    if sampled is None:
        return None
    centres, normals = sampled
    with np.errstate(invalid='ignore', divide='ignore'):
        alignment = np.abs(normals @ up) / np.linalg.norm(normals, axis=-1)
        below = -(centres @ up)                                      # metres below the camera
    flat = (alignment > np.cos(np.radians(max_tilt_deg))) & (below > 0)   # NaN compares False
    samples = alignment.size
    log_below = np.log(below[flat])
    if len(log_below) < min_fraction * samples:
        return None
    lowest, highest = float(log_below.min()), float(log_below.max())
    bins = max(1, int(np.ceil((highest - lowest) / bin_width)))
    counts, edges = np.histogram(log_below, bins=bins, range=(lowest, lowest + bins * bin_width))
    smoothed = np.convolve(np.pad(counts, 1), [1, 2, 1], mode='valid')
    floor_bin = int(np.flatnonzero(smoothed >= peak_fraction * smoothed.max()).max())
    centre = 0.5 * (edges[floor_bin] + edges[floor_bin + 1])
    on_floor = log_below[np.abs(log_below - centre) <= 2 * bin_width]
    if len(on_floor) < min_fraction * samples:
        return None
    distance = float(np.exp(np.median(on_floor)))
    valid = np.isfinite(below)
    if np.count_nonzero(below[valid] > (1 + lower_margin) * distance) > max_lower_fraction * np.count_nonzero(valid):
        return None
    return FloorEstimate(distance, len(on_floor) / samples)


def _sampled_normals(depth: np.ndarray, K: np.ndarray, step: int | None
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """(points (h, w, 3), normals (h, w, 3), unnormalised, NaN where unknown) of every step-th
    pixel of a depth map (H, W) with intrinsics K (3, 3), each normal from its 4 neighbours
    (spanning 2 steps); step None: about 128 samples across. None when too few rows or
    columns remain."""
    step = max(1, round(depth.shape[1] / 128)) if step is None else int(step)
    if step < 1:
        raise ValueError(f'step must be >= 1, got {step}')
    sampled_K = K.copy()
    sampled_K[:2] /= step                                            # pixel (i step, j step) -> (i, j)
    points = depth_to_points(depth[::step, ::step], sampled_K)       # (h, w, 3), NaN where invalid
    if points.shape[0] < 3 or points.shape[1] < 3:
        return None
    across = points[1:-1, 2:] - points[1:-1, :-2]
    down = points[2:, 1:-1] - points[:-2, 1:-1]
    return points[1:-1, 1:-1], np.cross(across, down)


def up_from_depth(depth: np.ndarray, K: np.ndarray, prior: np.ndarray, *,
                  angles_deg: tuple[float, ...] = (30.0, 15.0, 8.0), min_fraction: float = 0.03,
                  step: int | None = None) -> np.ndarray | None:
    """The up direction (3,) unit, in the depth's optical frame, that one depth map shows.

    The normals of the sampled pixels (as `floor_distance` finds them), turned to the prior's
    side, are averaged over those within `angles_deg[0]` of the prior, then again within each
    following angle of that mean: the horizontal surfaces (floor, table tops, seats) agree on
    up and walls, at 90 deg, take no part.

    Args:
        depth: (H, W) metres along optical z; NaN, inf and <= 0 are ignored.
        K: (3, 3) intrinsics of `depth`, pixels.
        prior: (3,) a rough up in the optical frame (any length), e.g. (0, -1, 0) for a camera
            held about level: the truth must lie within angles_deg[0] of it.
        min_fraction: share of the sampled pixels that must agree at every step (0.03: on
            the HoloLens walk's model depth, every 8th frame, up found in 36 of 47 frames,
            5.6 deg from the true one at the median against their 25 deg from level, nearer
            than the optical -y in 35; 0.05: 28 frames, 5.8 deg).
    Returns:
        The unit up, or None when too few pixels lie on horizontal surfaces (a view of walls).
    """
    depth = as_float_array(depth, 'depth')
    if depth.ndim != 2:
        raise ShapeError(f'depth must be (H, W), got {depth.shape}')
    K = as_camera_matrix(K)
    prior = as_float_array(prior, 'prior', (3,), finite=True).reshape(3)
    if not np.linalg.norm(prior) > 0:
        raise ShapeError('prior must not be the zero vector')
    if not angles_deg or not all(0 < a < 90 for a in angles_deg):
        raise ValueError(f'angles_deg must be angles in (0, 90) degrees, got {angles_deg!r}')
    sampled = _sampled_normals(depth, K, step)
    if sampled is None:
        return None
    normals = sampled[1].reshape(-1, 3)
    length = np.linalg.norm(normals, axis=1)
    known = np.isfinite(length) & (length > 0)
    normals = normals[known] / length[known, None]
    up = prior / np.linalg.norm(prior)
    normals *= np.where(normals @ up < 0, -1.0, 1.0)[:, None]      # a surface's two sides: the prior's
    for angle in angles_deg:
        near = normals[normals @ up > np.cos(np.radians(angle))]
        if len(near) < min_fraction * len(length):
            return None
        up = near.mean(axis=0)
        up /= np.linalg.norm(up)
    return up


class FloorScale:
    """The factor that puts depth maps at the scale of a known camera height (metres above the
    floor): the median of height / floor distance over the last `window` frames that saw the
    floor; 1 until one has. One writer (the camera stream's thread); `scale` may be read from
    any thread."""

    def __init__(self, camera_height: float, window: int = 30, **floor_options):
        if not np.isfinite(camera_height) or camera_height <= 0:
            raise ValueError(f'camera_height must be a positive number of metres, got {camera_height!r}')
        if window < 1:
            raise ValueError(f'window must be >= 1, got {window!r}')
        self.camera_height = float(camera_height)
        self.floor_options = floor_options
        self._log_ratios: deque[float] = deque(maxlen=int(window))
        self.frames_with_floor = 0
        self._scale = 1.0

    @property
    def scale(self) -> float:
        """The current factor (1.0 before any floor was seen)."""
        return self._scale

    def update(self, depth: np.ndarray, K: np.ndarray, up: np.ndarray) -> float:
        """Measures the floor in `depth` (H, W) metres with K (3, 3) and `up` (3,) in the
        optical frame, and returns the factor for this frame (see `floor_distance`)."""
        estimate = floor_distance(depth, K, up, **self.floor_options)
        if estimate is not None:
            self._log_ratios.append(float(np.log(self.camera_height / estimate.distance)))
            self.frames_with_floor += 1
            self._scale = float(np.exp(np.median(self._log_ratios)))
        return self._scale

    def reset(self) -> None:
        self._log_ratios.clear()
        self.frames_with_floor = 0
        self._scale = 1.0
