"""geovr_training: data, model, losses, training, evaluation and export of GeoVR-S.

Shares geometry with the runtime through `geovr_ros.geometry` (pure numpy, no ROS);
the runtime never imports this package: they meet at the exported ONNX files.
"""

__version__ = '0.1.0'
