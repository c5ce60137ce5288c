"""Answer sentences from the structured outputs of the question graph (pure Python)."""
from __future__ import annotations

import math

import numpy as np

from geovr_ros.memory.answerer import centimetres

UNIT_WORDS = {'m': 'm', 'cm': 'cm', 'm^2': 'square metres', '': ''}


def numeric_sentence(category: str, value: float, unit: str) -> str:
    if category == 'object_count':
        n = max(0, int(round(value)))
        return f'{n}'
    if unit == 'cm':
        return f'about {value:.0f} cm'
    if unit == 'm^2':
        return f'about {value:.1f} square metres'
    return f'about {value:.2f} {UNIT_WORDS.get(unit, unit)}'.rstrip()


def choice_sentence(options: list[str], index: int) -> str:
    return f'({chr(65 + index)}) {options[index]}'


def point_sentence(point: np.ndarray, frame: str) -> str:
    x, y, z = (centimetres(v) for v in point)
    return f'at x={x} m, y={y} m, z={z} m in the {frame} frame'


def pose_sentence(position: np.ndarray, heading: float, frame: str) -> str:
    x, y, z = (centimetres(v) for v in position)
    return (f'you are at x={x} m, y={y} m, z={z} m in the {frame} frame, facing '
            f'{round(math.degrees(heading))} degrees from its x axis (counter-clockwise)')
