"""How far a camera has travelled, at a stated spatial resolution.

The length of a measured path depends on the resolution it is measured at: summed frame by
frame, a few centimetres of tracking jitter per frame add up to metres over a walk (the
HoloLens walk of docs/ros.md read 15 % long that way), and a camera turning in place "walks"
its own jitter. `PathOdometer` counts a position only once it is `resolution_m` from the last
counted one (hysteresis): jitter below the resolution adds nothing, noise along the path
cancels between counted points, and a curve is measured by chords of that length (a turn of
radius r loses about (resolution / r)^2 / 24 of its length).
"""
from __future__ import annotations

import numpy as np


class PathOdometer:
    """Distance along a stream of positions (metres) at `resolution_m` (0: every step counts).

    `distance` is the counted chords plus the way from the last counted position to the
    newest one, so it follows the camera without lagging by up to one resolution.
    """

    def __init__(self, resolution_m: float = 0.25):
        if not np.isfinite(resolution_m) or resolution_m < 0:
            raise ValueError(f'resolution_m must be a non-negative number of metres, got {resolution_m!r}')
        self.resolution_m = float(resolution_m)
        self.reset()

    def reset(self) -> None:
        self._counted = 0.0
        self._anchor: np.ndarray | None = None
        self._newest: np.ndarray | None = None

    def add(self, position: np.ndarray) -> None:
        """The next position (3,) metres; ignored when not finite."""
        p = np.asarray(position, dtype=np.float64).reshape(3)
        if not np.all(np.isfinite(p)):
            return
        if self._anchor is None:
            self._anchor = p
        else:
            step = float(np.linalg.norm(p - self._anchor))
            if step >= self.resolution_m:
                self._counted += step
                self._anchor = p
        self._newest = p

    @property
    def distance(self) -> float:
        """Metres travelled so far (see the class docstring)."""
        if self._anchor is None:
            return 0.0
        return self._counted + float(np.linalg.norm(self._newest - self._anchor))


def path_length(positions: np.ndarray, resolution_m: float = 0.0) -> float:
    """Length (metres) of a path of positions (N, 3) measured by `PathOdometer` at
    `resolution_m` (0: the sum of every step)."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    if resolution_m == 0:
        return float(np.linalg.norm(np.diff(positions, axis=0), axis=1).sum())
    odometer = PathOdometer(resolution_m)
    for p in positions:
        odometer.add(p)
    return odometer.distance
