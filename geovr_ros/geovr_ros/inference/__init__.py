"""Inference of exported GeoVR models: backends behind one interface, metadata, pipeline.

Importing this package needs none of tensorrt, pycuda, onnxruntime or torch; each backend
imports its library when it is constructed/loaded. No rclpy here (pure core).

    from geovr_ros.inference import PerceptionPipeline
    pipeline = PerceptionPipeline('models/geovr-s', backend='auto')
    result = pipeline.step(rgb, K)          # PerceptionResult
"""
from geovr_ros.inference.backends.base import (
    Backend, BackendUnavailableError, InferenceError, InputMismatchError, ModelFileError,
    TensorSpec)
from geovr_ros.inference.decode import PERCEPTION_OUTPUTS, PerceptionResult, decode_perception
from geovr_ros.inference.metadata import (
    REQUIRED_KEYS, MetadataError, ModelMetadata, find_model_file, read_metadata)
from geovr_ros.inference.perception import PerceptionPipeline
from geovr_ros.inference.preprocess import PreparedFrame, Preprocessor, clip_inputs
from geovr_ros.inference.select import KINDS, choose_backend, create_backend

__all__ = [
    'Backend', 'BackendUnavailableError', 'InferenceError', 'InputMismatchError',
    'KINDS', 'MetadataError', 'ModelFileError', 'ModelMetadata', 'PERCEPTION_OUTPUTS',
    'PerceptionPipeline', 'PerceptionResult', 'PreparedFrame', 'Preprocessor',
    'REQUIRED_KEYS', 'TensorSpec', 'choose_backend', 'clip_inputs', 'create_backend',
    'decode_perception', 'find_model_file', 'read_metadata',
]
