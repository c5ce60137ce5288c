"""GeoVR losses: depth, pose, scale, distillation, descriptor, semantic, and their weighted sum."""

from geovr_training.losses.depth import (confidence_l1, depth_loss, filtered_l1, gradient_l1, normalized_disparity,
                                          shape_loss, silog)
from geovr_training.losses.distill import distillation_loss
from geovr_training.losses.pose import descriptor_loss, pose_loss, scale_loss
from geovr_training.losses.semantic import patch_class_fractions, semantic_loss
from geovr_training.losses.total import LossConfig, clip_scale, geovr_loss, make_targets, pointmap_l1

__all__ = ['LossConfig', 'clip_scale', 'confidence_l1', 'depth_loss', 'descriptor_loss',
           'distillation_loss', 'filtered_l1', 'geovr_loss', 'gradient_l1', 'make_targets',
           'normalized_disparity', 'patch_class_fractions', 'pointmap_l1', 'pose_loss',
           'scale_loss', 'semantic_loss', 'shape_loss', 'silog']
