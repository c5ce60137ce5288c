"""Training of GeoVR-S: config, data adapter, ONNX teacher, loop (DDP-ready) and CLI."""
