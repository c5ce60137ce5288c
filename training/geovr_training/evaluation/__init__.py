"""Evaluation of GeoVR-S: whole-sequence prediction, metrics, camera changes, reports, ablations."""
