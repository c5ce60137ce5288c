import zipfile

import numpy as np
import pytest

from geovr_training.data.errors import DataFormatError
from geovr_training.data.shards import ShardReader, read_manifest, read_shard, write_shard


def test_shard_round_trip_keeps_every_array_and_the_scene(rendered_sequence, tmp_path):
    path = write_shard(rendered_sequence, tmp_path / 'a.geovr.npz')
    back = read_shard(path)
    assert back.name == rendered_sequence.name
    np.testing.assert_array_equal(back.rgb, rendered_sequence.rgb)
    np.testing.assert_array_equal(back.depth, rendered_sequence.depth)  # NaNs compare equal here
    np.testing.assert_array_equal(back.segmentation, rendered_sequence.segmentation)
    np.testing.assert_array_equal(back.K, rendered_sequence.K)
    np.testing.assert_array_equal(back.T_world_cam, rendered_sequence.T_world_cam)
    assert back.qa == rendered_sequence.qa
    assert back.scene.to_json() == rendered_sequence.scene.to_json()
    assert back.depth.dtype == np.float32 and back.segmentation.dtype == np.int32 and back.rgb.dtype == np.uint8


def test_shard_is_a_plain_npz_and_reads_frames_by_index(rendered_sequence, tmp_path):
    path = write_shard(rendered_sequence, tmp_path / 'a.geovr.npz')
    with np.load(path) as npz:
        np.testing.assert_array_equal(npz['rgb/000003'], rendered_sequence.rgb[3])
    with ShardReader(path) as reader:
        sub = reader.read([5, 2])
    np.testing.assert_array_equal(sub.depth[0], rendered_sequence.depth[5])
    np.testing.assert_array_equal(sub.T_world_cam[1], rendered_sequence.T_world_cam[2])


def test_same_sequence_gives_identical_bytes(rendered_sequence, tmp_path):
    a = write_shard(rendered_sequence, tmp_path / 'a.geovr.npz').read_bytes()
    b = write_shard(rendered_sequence, tmp_path / 'b.geovr.npz').read_bytes()
    assert a == b
    with zipfile.ZipFile(tmp_path / 'a.geovr.npz') as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_truncated_shard_names_the_file(rendered_sequence, tmp_path):
    path = write_shard(rendered_sequence, tmp_path / 'a.geovr.npz')
    bad = tmp_path / 'truncated.geovr.npz'
    bad.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataFormatError, match='truncated.geovr.npz'):
        read_shard(bad)


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(DataFormatError, match='manifest.json'):
        read_manifest(tmp_path)
