"""GeoVR-S model (one family, v2): architecture, presets, checkpoints, export wrappers and FLOP counting."""

from geovr_training.model.checkpoint import (CHECKPOINT_FORMAT, V1_LAST_COMMIT, CheckpointError,
                                             checkpoint_model_args, load_checkpoint, read_checkpoint, save_checkpoint)
from geovr_training.model.export import (CONTRACT_OUTPUTS, IMAGE_MEAN, IMAGE_STD, PerceptionGraph, TeacherFeatures,
                                         export_forward, export_onnx, normalize_images)
from geovr_training.model.flops import count_flops, count_parameters, example_inputs
from geovr_training.model.network_v2 import (PRESETS, GeoVRv2Model, ModelArgsV2, build_model, model_args_from_dict,
                                             preset_args)

__all__ = ['CHECKPOINT_FORMAT', 'CONTRACT_OUTPUTS', 'IMAGE_MEAN', 'IMAGE_STD', 'PRESETS', 'V1_LAST_COMMIT',
           'CheckpointError', 'GeoVRv2Model', 'ModelArgsV2', 'PerceptionGraph', 'TeacherFeatures', 'build_model',
           'checkpoint_model_args', 'count_flops', 'count_parameters', 'example_inputs', 'export_forward',
           'export_onnx', 'load_checkpoint', 'model_args_from_dict', 'normalize_images', 'preset_args',
           'read_checkpoint', 'save_checkpoint']
