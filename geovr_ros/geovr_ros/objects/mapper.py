"""`ObjectMapper`: what a node holds, one call per frame.

    mapper = ObjectMapper(load_vocabulary(), head_categories=pipeline.cell_categories)
    mapper.observe_logits(class_logits, depth, K, T_map_cam, keyframe_id, stamp,  # per frame
                          category_logits=category_logits)                        # (a head's, optional)
    mapper.map.relocate({kf_id: T_map_kf, ...})                                    # pose graph moved
    mapper.map.instances()                                                         # -> markers, answers
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from geovr_ros.geometry import ShapeError
from geovr_ros.objects.namers import CellNamer
from geovr_ros.objects.object_map import ObjectMap, ObjectMapConfig
from geovr_ros.objects.observations import (ObjectObservation, ObservationConfig, cell_grid_shape,
                                            extract_observations)
from geovr_ros.objects.vocabulary import Vocabulary

__all__ = ['ObjectMapper', 'map_config_of']


def map_config_of(vocabulary: Vocabulary, **settings) -> ObjectMapConfig:
    """The object map's rules a vocabulary carries (its `verifier`, `on_floor` and
    `size_quantiles`), with `settings` (other `ObjectMapConfig` fields, or these replaced)."""
    return ObjectMapConfig(**{'verifier': vocabulary.verifier, 'on_floor': vocabulary.on_floor,
                              'size_quantiles': vocabulary.size_quantiles, **settings})


class ObjectMapper:
    """Vocabulary + per-frame observation extraction + the `ObjectMap` they feed.

    `head_categories`: the names of a trained category head's columns (the cell classifier's
    `category_logits`, `PerceptionPipeline.cell_categories`); the vocabulary is extended by
    those it lacks and the two namers are combined by `rule` (`objects/namers.py`; None: the
    vocabulary's `combine`, 'head' unless its YAML says otherwise).
    `self.vocabulary` is the extended one (questions are parsed with it)."""

    def __init__(self, vocabulary: Vocabulary, observation_config: ObservationConfig = ObservationConfig(),
                 map_config: ObjectMapConfig = ObjectMapConfig(), object_map: ObjectMap | None = None,
                 head_categories: Sequence[str] = (), rule: str | None = None):
        self.namer = CellNamer(vocabulary, head_categories, rule)
        self.vocabulary = self.namer.vocabulary
        self.observation_config = observation_config
        self.map = object_map if object_map is not None else ObjectMap(map_config)

    def observe_logits(self, logits: np.ndarray | None, depth: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray,
                       keyframe_id: int, stamp: float, T_map_keyframe: np.ndarray | None = None,
                       category_logits: np.ndarray | None = None, pool: bool = True,
                       rgb: np.ndarray | None = None, depth_confidence: np.ndarray | None = None
                       ) -> list[ObjectObservation]:
        """One frame of ImageNet logits (cells, 1000) (row-major cells of a square grid
        tiling the depth image, e.g. the frame encoder's `class_logits[0]`) and / or the
        category head's logits (cells', K + 1) (row-major, on its own grid: the same cells, or
        finer ones for a stride-16 head, e.g. 192 cells at 256x192 beside the 48 ImageNet
        ones), depth (H, W) metres, K (3, 3) at (H, W), T_map_cam (4, 4); T_map_keyframe: the
        pose of keyframe `keyframe_id` when this frame is not that keyframe (its observations are
        kept relative to it; only keyframes add their depth to the room's floor). Each grid comes
        from its cell count and the depth image (`cell_grid_shape`); the coarser is upsampled
        to the finer (`CellNamer.probabilities`), whose cells the observations are made of.
        `pool` False: the ImageNet logits are windows' already (`objects/windows.py`), named
        without the vocabulary's cell pooling. `rgb`: the frame (H, W, 3) at the depth's size
        (uint8, or floats in [0, 1]) for the objects' colours (None: not known);
        `depth_confidence`: (H, W) in [0, 1], for the room's footprint (`objects/room.py`; None:
        every pixel). Returns the frame's observations (already fused into `self.map`). Raises ShapeError
        when a cell count tiles no grid of the depth image or the grids are not f:1."""
        cells = []
        for name, value in (('logits', logits), ('category_logits', category_logits)):
            if value is None:
                cells.append(None)
                continue
            value = np.asarray(value)
            if value.ndim == 3 and value.shape[0] == 1:
                value = value[0]
            if value.ndim != 2:
                raise ShapeError(f'{name} must be (cells, classes), got {value.shape}')
            cells.append(value)
        if cells[0] is None and cells[1] is None:
            raise ShapeError('observe_logits needs logits, category_logits or both')
        grids = [None if c is None else c.reshape(cell_grid_shape(c.shape[0], np.shape(depth)) + c.shape[1:])
                 for c in cells]
        probabilities = self.namer.probabilities(*grids, pool=pool)  # (Hc, Wc, V + 1), the finer grid
        return self.observe_probabilities(probabilities, depth, K, T_map_cam, keyframe_id, stamp, T_map_keyframe, rgb,
                                          depth_confidence)

    def observe_probabilities(self, probabilities: np.ndarray, depth: np.ndarray, K: np.ndarray,
                              T_map_cam: np.ndarray, keyframe_id: int, stamp: float,
                              T_map_keyframe: np.ndarray | None = None, rgb: np.ndarray | None = None,
                              depth_confidence: np.ndarray | None = None) -> list[ObjectObservation]:
        """As `observe_logits` from category probabilities (Hc, Wc, K + 1) (another namer)."""
        observations = extract_observations(probabilities, depth, K, T_map_cam, keyframe_id, stamp,
                                            self.vocabulary, self.observation_config, T_map_keyframe,
                                            self.map.config.vertical_axis, rgb)
        named = self.map.add(observations)
        self.map.note_missed(named, depth, K, T_map_cam, stamp)
        if T_map_keyframe is None:   # the floor's outline takes the keyframes' depth: enough views, a bounded cost
            self.map.room.add(keyframe_id, depth, K, T_map_cam, None, depth_confidence)
        return observations
