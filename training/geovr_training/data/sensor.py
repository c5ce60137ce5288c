"""Camera sensor effects applied to rendered RGB (domain randomization).

Filled in by the sensor work of issue #21; ``SensorConfig`` is the knob set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SensorConfig:
    """Exposure, white balance, motion blur, defocus, noise, JPEG and vignetting."""

    enabled: bool = False


def apply_sensor_effects(rgb, depth, K, T_world_cam, timestamps, config: SensorConfig, rng):
    """Degrade rendered frames like a real camera; returns rgb uint8 (N, H, W, 3)."""
    return rgb
