"""Pacing of a replay: maps recording time to wall time at a rate factor."""
from __future__ import annotations

import time


class ReplayClock:
    """Tells how long to wait before emitting a frame recorded at `stamp` seconds.

    rate: 1.0 real time, 2.0 twice as fast, 0 as fast as possible.
    """

    def __init__(self, rate: float = 1.0, monotonic=time.monotonic):
        if not rate >= 0:
            raise ValueError(f'rate must be >= 0, got {rate!r}')
        self.rate = float(rate)
        self._monotonic = monotonic
        self._origin: tuple[float, float] | None = None

    def restart(self) -> None:
        self._origin = None

    def delay(self, stamp: float) -> float:
        """Seconds to wait (>= 0) before emitting the frame recorded at `stamp`."""
        now = self._monotonic()
        if self._origin is None:
            self._origin = (stamp, now)
            return 0.0
        if self.rate == 0:
            return 0.0
        due = self._origin[1] + (stamp - self._origin[0]) / self.rate
        return max(0.0, due - now)
