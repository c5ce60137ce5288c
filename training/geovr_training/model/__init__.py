"""GeoVR-S model: architecture, checkpoints, export wrappers and FLOP counting."""

from geovr_training.model.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, load_checkpoint,
                                             read_checkpoint, save_checkpoint)
from geovr_training.model.export import (CONTRACT_OUTPUTS, IMAGE_MEAN, IMAGE_STD, PerceptionGraph,
                                         normalize_images,
                                         TeacherFeatures, export_forward, export_onnx)
from geovr_training.model.flops import count_flops, count_parameters, example_inputs
from geovr_training.model.network import GeoVRModel, ModelArgs, build_model, model_args_from_dict, teacher_args
from geovr_training.model.network_v2 import GeoVRv2Model, ModelArgsV2

__all__ = ['CHECKPOINT_FORMAT', 'CONTRACT_OUTPUTS', 'IMAGE_MEAN', 'IMAGE_STD', 'CheckpointError',
           'GeoVRModel', 'GeoVRv2Model', 'ModelArgs', 'ModelArgsV2', 'PerceptionGraph', 'TeacherFeatures', 'build_model',
           'count_flops', 'count_parameters', 'example_inputs', 'export_forward', 'export_onnx',
           'load_checkpoint', 'model_args_from_dict', 'normalize_images', 'read_checkpoint', 'save_checkpoint', 'teacher_args']
