"""`ObjectMapper`: what a node holds, one call per frame.

    mapper = ObjectMapper(load_vocabulary())
    mapper.observe_logits(class_logits, depth, K, T_map_cam, keyframe_id, stamp)  # per frame
    mapper.map.relocate({kf_id: T_map_kf, ...})                                    # pose graph moved
    mapper.map.instances()                                                         # -> markers, answers
"""
from __future__ import annotations

import numpy as np

from geovr_ros.geometry import ShapeError
from geovr_ros.objects.object_map import ObjectMap, ObjectMapConfig
from geovr_ros.objects.observations import (ObjectObservation, ObservationConfig, cell_grid_shape,
                                            extract_observations)
from geovr_ros.objects.vocabulary import Vocabulary

__all__ = ['ObjectMapper']


class ObjectMapper:
    """Vocabulary + per-frame observation extraction + the `ObjectMap` they feed."""

    def __init__(self, vocabulary: Vocabulary, observation_config: ObservationConfig = ObservationConfig(),
                 map_config: ObjectMapConfig = ObjectMapConfig(), object_map: ObjectMap | None = None):
        self.vocabulary = vocabulary
        self.observation_config = observation_config
        self.map = object_map if object_map is not None else ObjectMap(map_config)

    def observe_logits(self, logits: np.ndarray, depth: np.ndarray, K: np.ndarray, T_map_cam: np.ndarray,
                       keyframe_id: int, stamp: float, T_map_keyframe: np.ndarray | None = None
                       ) -> list[ObjectObservation]:
        """One frame of ImageNet logits (cells, 1000) (row-major cells of a square grid
        tiling the depth image, e.g. the frame encoder's `class_logits[0]`), depth (H, W)
        metres, K (3, 3) at (H, W), T_map_cam (4, 4). Returns the frame's observations
        (already fused into `self.map`)."""
        logits = np.asarray(logits)
        if logits.ndim == 3 and logits.shape[0] == 1:
            logits = logits[0]
        if logits.ndim != 2:
            raise ShapeError(f'logits must be (cells, 1000), got {logits.shape}')
        grid = cell_grid_shape(logits.shape[0], np.shape(depth))
        probabilities = self.vocabulary.probabilities(logits).reshape(grid + (len(self.vocabulary) + 1,))
        return self.observe_probabilities(probabilities, depth, K, T_map_cam, keyframe_id, stamp, T_map_keyframe)

    def observe_probabilities(self, probabilities: np.ndarray, depth: np.ndarray, K: np.ndarray,
                              T_map_cam: np.ndarray, keyframe_id: int, stamp: float,
                              T_map_keyframe: np.ndarray | None = None) -> list[ObjectObservation]:
        """As `observe_logits` from category probabilities (Hc, Wc, K + 1) (another namer)."""
        observations = extract_observations(probabilities, depth, K, T_map_cam, keyframe_id, stamp,
                                            self.vocabulary, self.observation_config, T_map_keyframe)
        self.map.add(observations)
        return observations
