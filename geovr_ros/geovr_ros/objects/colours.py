"""Colour names for objects: "the red chair", "how many blue boxes".

An instance's colour is the median colour of the pixels its observations lifted (sRGB in
[0, 1], `ObjectInstance.colour`). Colours are compared on the HSV cone: hue and saturation as
a point on the unit disc (s cos h, s sin h), which shading does not move (a surface in shadow
scales its three channels alike), and the value beside them at half weight (it tells white,
gray and black apart, and brown from orange, but shadow moves it). A colour word picks, among
a category's instances, the one nearest that word's prototype; a colour is named by its
nearest prototype. The prototypes are sRGB centres of the basic colour terms (and cyan), the
palette the data engine paints rendered objects with.
"""
from __future__ import annotations

import re

import numpy as np

__all__ = ['COLOUR_PROTOTYPES', 'colour_distance', 'colour_features', 'colour_name', 'colour_word_before',
           'nearest_colours']

COLOUR_PROTOTYPES: dict[str, tuple[float, float, float]] = {
    'red': (0.80, 0.10, 0.10), 'green': (0.10, 0.60, 0.20), 'blue': (0.10, 0.25, 0.80),
    'yellow': (0.95, 0.85, 0.10), 'orange': (1.00, 0.50, 0.05), 'purple': (0.50, 0.15, 0.60),
    'pink': (1.00, 0.50, 0.70), 'white': (0.95, 0.95, 0.95), 'black': (0.08, 0.08, 0.08),
    'gray': (0.50, 0.50, 0.50), 'brown': (0.45, 0.27, 0.10), 'cyan': (0.10, 0.80, 0.85),
}
_SYNONYMS = {'grey': 'gray', 'violet': 'purple', 'turquoise': 'cyan', 'teal': 'cyan', 'beige': 'white'}
_WORD_BEFORE = re.compile(r'\b(' + '|'.join(list(COLOUR_PROTOTYPES) + list(_SYNONYMS))
                          + r')(?:[\s-]+(?:coloured|colored))?\s+$')
_VALUE_WEIGHT = 0.5


def colour_features(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) points (s cos h, s sin h, value / 2) on the HSV cone of sRGB colours (..., 3) in [0, 1]."""
    c = np.clip(np.asarray(rgb, np.float64), 0.0, 1.0)
    value = c.max(-1)
    saturation = np.where(value > 0, (value - c.min(-1)) / np.maximum(value, 1e-12), 0.0)
    r, g, b = c[..., 0], c[..., 1], c[..., 2]
    hue = np.arctan2(np.sqrt(3.0) * (g - b), 2 * r - g - b)   # the hexagonal hue, radians
    return np.stack([saturation * np.cos(hue), saturation * np.sin(hue), _VALUE_WEIGHT * value], -1)


def colour_distance(rgb_a: np.ndarray, rgb_b: np.ndarray) -> np.ndarray:
    """Distance between sRGB colours (..., 3) on the HSV cone (module docstring): 0 to about 2."""
    return np.linalg.norm(colour_features(rgb_a) - colour_features(rgb_b), axis=-1)


_NAMES = list(COLOUR_PROTOTYPES)
_PROTOTYPES = np.array([COLOUR_PROTOTYPES[n] for n in _NAMES])
_PROTOTYPE_FEATURES = colour_features(_PROTOTYPES)


def nearest_colours(rgb: np.ndarray) -> np.ndarray:
    """Index in COLOUR_PROTOTYPES (its order) of the basic colour term nearest each finite sRGB
    colour (n, 3) -> (n,) int."""
    features = colour_features(np.asarray(rgb, np.float64).reshape(-1, 3))
    return np.argmin(np.linalg.norm(features[:, None] - _PROTOTYPE_FEATURES[None], axis=-1), axis=1)


def colour_name(rgb: np.ndarray | None) -> str:
    """The basic colour term nearest an sRGB colour (3,); '' for None or NaN."""
    if rgb is None or not np.all(np.isfinite(rgb)):
        return ''
    return _NAMES[int(nearest_colours(rgb)[0])]


def colour_word_before(text: str) -> str:
    """The colour word that ends `text` ('the big red ' -> 'red'; synonyms to their term), or ''."""
    m = _WORD_BEFORE.search(text)
    return '' if m is None else _SYNONYMS.get(m.group(1), m.group(1))
