"""Surface textures for rendered rooms (domain randomization): procedural images and photo patches.

Filled in by the texture work of issue #21; ``TextureConfig`` is the knob set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TextureConfig:
    """Textures on walls, floors, ceilings, furniture and objects."""

    enabled: bool = False


def assign_textures(layout, config: TextureConfig, rng) -> None:
    """Give the layout's surfaces and objects textures (in place)."""
