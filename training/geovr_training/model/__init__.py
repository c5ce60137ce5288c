"""GeoVR-S model: architecture, checkpoints, export wrappers and FLOP counting."""

from geovr_training.model.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, load_checkpoint,
                                             read_checkpoint, save_checkpoint)
from geovr_training.model.export import (CONTRACT_OUTPUTS, IMAGE_MEAN, IMAGE_STD, PerceptionGraph,
                                         normalize_images,
                                         TeacherFeatures, export_forward, export_onnx)
from geovr_training.model.flops import count_flops, count_parameters, example_inputs
from geovr_training.model.network import GeoVRModel, ModelArgs, build_model, teacher_args

__all__ = ['CHECKPOINT_FORMAT', 'CONTRACT_OUTPUTS', 'IMAGE_MEAN', 'IMAGE_STD', 'CheckpointError',
           'GeoVRModel', 'ModelArgs', 'PerceptionGraph', 'TeacherFeatures', 'build_model',
           'count_flops', 'count_parameters', 'example_inputs', 'export_forward', 'export_onnx',
           'load_checkpoint', 'normalize_images', 'read_checkpoint', 'save_checkpoint', 'teacher_args']
