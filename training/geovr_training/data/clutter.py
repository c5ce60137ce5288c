"""Clutter and furniture variety for rendered rooms (domain randomization).

Filled in by the clutter work of issue #21; ``ClutterConfig`` is the knob set.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClutterConfig:
    """Small meshes on floors, tables and shelves."""

    enabled: bool = False


def add_clutter(layout, config: ClutterConfig, rng) -> None:
    """Add clutter items to the layout (in place)."""
