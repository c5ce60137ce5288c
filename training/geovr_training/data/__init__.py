"""Spatial data engine of GeoVR-ROS: rendered indoor sequences with spatial QA, shards,
PyTorch datasets and loaders for real RGB-D recordings.

Light at import: pybullet, torch, rosbags and matplotlib are imported where used.
Modules: ``types`` (Sequence, Frame, SceneGraph, SceneObject), ``errors``, ``shards``
(write_shard, ShardReader, manifest), ``scene`` (procedural rooms), ``render`` (pybullet),
``trajectory`` (cameras), ``qa`` (questions), ``generate`` (datasets), ``dataset`` (torch),
``augment`` (camera-aware augmentation), ``loaders`` (TUM, frames, rosbag2), ``convert``,
``inspect``, ``bench``, ``cli``.
"""

from .errors import DataError, DataFormatError, GenerationError
from .shards import ShardReader, read_manifest, read_shard, write_shard
from .types import Frame, SceneGraph, SceneObject, Sequence

__all__ = ['DataError', 'DataFormatError', 'GenerationError', 'Frame', 'SceneGraph', 'SceneObject', 'Sequence',
           'ShardReader', 'read_manifest', 'read_shard', 'write_shard']
