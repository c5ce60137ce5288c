"""Shared fixtures of the data-engine tests: small rendered sequences (tiny, fast)."""

from __future__ import annotations

import pytest
import torch

from geovr_training.data.generate import GenerationConfig, render_sequence

SHARED_DATA = __import__('pathlib').Path(__file__).resolve().parents[3] / 'shared' / 'data'
SHARED_REALSENSE = SHARED_DATA / 'realsense_box'
SHARED_HOLOLENS = SHARED_DATA / 'hololens_office'

# One torch thread: on this shared 2-core machine two threads wait on each other at every one
# of the backbone's many small convolutions (a tiny GeoVR-S v2 training step: 0.1 s with one
# thread, 0.5-5 s with two while a training job runs). A file alone now runs as in the suite,
# where test_qa_model's module-level call already set it at collection.
torch.set_num_threads(1)


@pytest.fixture(scope='session')
def tiny_config() -> GenerationConfig:
    return GenerationConfig(seed=7, frames_per_scene=10, resolution=(160, 120), qa_per_scene=30)


@pytest.fixture(scope='session')
def tiny_data(tmp_path_factory):
    """A dataset folder of 3 scenes x 8 frames at 128x96 (seed 7), for training and evaluation."""
    from geovr_training.data.generate import generate_dataset
    root = tmp_path_factory.mktemp('geovr_data')
    generate_dataset(root, 3, GenerationConfig(seed=7, frames_per_scene=8, resolution=(128, 96), qa_per_scene=2),
                     progress=False)
    return root


@pytest.fixture(scope='session')
def rendered_sequence(tiny_config):
    """Scene 0 of seed 7: 10 frames at 160x120."""
    return render_sequence(tiny_config, 0)


@pytest.fixture(scope='session')
def rendered_sequences():
    """Four scenes of 24 frames at 96x72 with random intrinsics (for QA and geometry checks)."""
    config = GenerationConfig(seed=11, frames_per_scene=24, resolution=(96, 72), qa_per_scene=40)
    return [render_sequence(config, i) for i in range(4)]
