"""Export of GeoVR models: self-describing ONNX, torch.export programs, parity, engines.

`geovr-export onnx|parity|engine` (cli.py). Graphs are a table (graphs.GRAPHS); adding the
question graph and question encoder is adding entries there. Heavy work is imported by the
sub-modules, not here.
"""
