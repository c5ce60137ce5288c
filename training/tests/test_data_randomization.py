"""The randomization config: presets, YAML over 'full', early errors, streams apart per stage."""

import numpy as np
import pytest

from geovr_training.data.errors import GenerationError
from geovr_training.data.generate import GenerationConfig, generate_dataset, render_sequence
from geovr_training.data.randomization import STAGES, Randomization, randomization_rng
from geovr_training.data.shards import read_manifest

TINY = dict(seed=4, frames_per_scene=3, resolution=(64, 48), qa_per_scene=4)


def test_presets_and_overrides():
    assert not Randomization.preset('none').enabled_stages
    full = Randomization.preset('full')
    assert all(getattr(full, stage).enabled for stage in STAGES)
    partial = Randomization.from_dict({'sensor': {'enabled': False}, 'clutter': {'max_items': 3}})
    assert not partial.sensor.enabled and partial.clutter.max_items == 3 and partial.textures.enabled
    assert Randomization.from_dict(full.to_dict()) == full    # the manifest's record reads back


def test_shipped_randomization_files_load_over_full():
    from pathlib import Path
    files = sorted((Path(__file__).resolve().parents[1] / 'configs' / 'randomization').glob('*.yaml'))
    assert files
    full = Randomization.preset('full')
    for path in files:
        config = Randomization.load(str(path))
        GenerationConfig(**TINY, randomization=config).validate()
        assert config != full
    tabletop = Randomization.load(str(files[[p.stem for p in files].index('tabletop')]))
    assert tabletop.clutter.table_density > full.clutter.table_density and tabletop.clutter.surface_probability == 1.0
    assert (tabletop.textures, tabletop.light, tabletop.sensor) == (full.textures, full.light, full.sensor)


def test_unknown_stages_knobs_files_and_values_are_named(tmp_path):
    with pytest.raises(GenerationError, match="'weather'"):
        Randomization.from_dict({'weather': {'rain': 1}})
    with pytest.raises(GenerationError, match='fog_density'):
        Randomization.from_dict({'light': {'fog_density': 0.3}})
    with pytest.raises(GenerationError, match='neither a preset'):
        Randomization.load(str(tmp_path / 'missing.yaml'))
    bad = tmp_path / 'bad.yaml'
    bad.write_text('light: [1, 2\n')
    with pytest.raises(GenerationError, match='not valid YAML'):
        Randomization.load(str(bad))
    bad.write_text('light:\n  shadow_probability: 2.0\n')
    with pytest.raises(GenerationError, match='shadow_probability'):   # refused before any scene renders
        GenerationConfig(**TINY, randomization=Randomization.load(str(bad))).validate()


def test_none_renders_as_a_config_without_randomization():
    plain = render_sequence(GenerationConfig(**TINY), 0)
    none = render_sequence(GenerationConfig(**TINY, randomization=Randomization.preset('none')), 0)
    np.testing.assert_array_equal(plain.rgb, none.rgb)
    np.testing.assert_array_equal(plain.T_world_cam, none.T_world_cam)


def test_each_stage_draws_from_its_own_stream():
    streams = [randomization_rng(3, 7, stage).random(4) for stage in STAGES]
    assert len({tuple(s) for s in streams}) == len(STAGES)
    np.testing.assert_array_equal(randomization_rng(3, 7, 'light').random(4), streams[STAGES.index('light')])
    # the sensor stage changes pixels only: room, path, depth and segmentation stay the scene's own
    only_sensor = Randomization.from_dict({s: {'enabled': s == 'sensor'} for s in STAGES})
    a = render_sequence(GenerationConfig(**TINY), 1)
    b = render_sequence(GenerationConfig(**TINY, randomization=only_sensor), 1)
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.segmentation, b.segmentation)
    assert not np.array_equal(a.rgb, b.rgb)


def test_full_preset_is_recorded_and_deterministic(tmp_path):
    """Byte-identical shards from one process and from two worker processes (each with its own
    texture cache and pybullet client)."""
    config = GenerationConfig(**TINY, randomization=Randomization.preset('full'))
    first = generate_dataset(tmp_path / 'a', 2, config, progress=False)
    generate_dataset(tmp_path / 'b', 2, config, workers=2, progress=False)
    for seq in first['sequences']:
        assert (tmp_path / 'a' / seq['file']).read_bytes() == (tmp_path / 'b' / seq['file']).read_bytes()
    recorded = read_manifest(tmp_path / 'a')['config']['randomization']
    assert Randomization.from_dict(recorded) == config.randomization


def test_cli_prints_a_preset_as_a_file_that_loads_back(tmp_path, capsys):
    from geovr_training.data.cli import main
    assert main(['randomization', 'full']) == 0
    path = tmp_path / 'mine.yaml'
    path.write_text(capsys.readouterr().out)
    assert Randomization.load(str(path)) == Randomization.preset('full')
    assert main(['randomization', str(tmp_path / 'absent.yaml')]) == 2
    assert 'neither a preset' in capsys.readouterr().err
