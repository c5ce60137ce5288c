"""geovr-data pack / unpack: a dataset carried in few bytes comes back as shards the trainer
reads, with colour, depth, K and poses as close as the codecs promise."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_training.data.cli import main as data_main
from geovr_training.data.dataset import SequenceDataset
from geovr_training.data.errors import DataFormatError
from geovr_training.data.shards import read_manifest
from geovr_training.data.transport import codes_to_depth, depth_to_codes, pack_dataset, unpack_dataset


def test_depth_codes_keep_depth_within_a_tenth_of_a_percent_and_invalid_as_nan():
    depth = np.array([[0.3, 1.0, 2.5, 9.99], [np.nan, 0.0, -1.0, 70.0]], np.float32)
    back = codes_to_depth(depth_to_codes(depth))
    assert np.all(np.abs(back[0] / depth[0] - 1) <= 0.001 + 1e-6)
    assert np.isnan(back[1, :3]).all()
    assert back[1, 3] == pytest.approx(70.0, rel=0.001)


def test_pack_and_unpack_return_the_chosen_splits_close_to_the_originals(tiny_data, tmp_path, capsys):
    packed = tmp_path / 'tiny.npz'
    assert data_main(['pack', str(tiny_data), '--out', str(packed), '--splits', 'train', 'test']) == 0
    assert data_main(['unpack', str(packed), '--out', str(tmp_path / 'back')]) == 0
    back = tmp_path / 'back' / 'tiny'
    manifest, original = read_manifest(back), read_manifest(tiny_data)
    assert set(manifest['splits']['train']) == set(original['splits']['train'])
    assert manifest['splits'].get('val', []) == []
    for split in ('train', 'test'):
        before, after = SequenceDataset(tiny_data, split), SequenceDataset(back, split)
        assert after.names() == before.names()
        for a, b in zip(before, after):
            assert b.rgb.shape == a.rgb.shape and b.depth.shape == a.depth.shape  # 128x96: never enlarged
            assert np.abs(b.rgb.astype(int) - a.rgb.astype(int)).mean() < 4  # JPEG
            both = np.isfinite(a.depth) & np.isfinite(b.depth)
            assert np.array_equal(np.isfinite(a.depth), np.isfinite(b.depth))
            assert np.abs(b.depth[both] / a.depth[both] - 1).max() <= 0.0011
            np.testing.assert_allclose(b.K, a.K)
            np.testing.assert_allclose(b.T_world_cam, a.T_world_cam)
            assert b.scene is not None and len(b.scene.objects) == len(a.scene.objects)


def test_a_packed_file_with_a_frame_cut_out_names_its_sequence(tiny_data, tmp_path):
    packed = pack_dataset(tiny_data, tmp_path / 'whole.npz', splits=('train',))
    arrays = dict(np.load(packed, allow_pickle=False))
    np.savez(tmp_path / 'cut.npz', **dict(arrays, s0_rgb=arrays['s0_rgb'][:100]))   # the JPEG bytes cut short
    with pytest.raises(DataFormatError, match='sequence .*scene'):
        unpack_dataset(tmp_path / 'cut.npz', tmp_path / 'out')
    del arrays['s0_K']
    np.savez(tmp_path / 'no_K.npz', **arrays)
    with pytest.raises(DataFormatError, match='s0_K'):
        unpack_dataset(tmp_path / 'no_K.npz', tmp_path / 'out2')


def test_pack_shrinks_frames_to_cover_the_size_and_updates_K(tiny_data, tmp_path):
    packed = pack_dataset(tiny_data, tmp_path / 'small.npz', splits=('train',), min_size=(64, 40))
    back = unpack_dataset(packed, tmp_path / 'small')
    original = next(iter(SequenceDataset(tiny_data, 'train')))
    small = next(iter(SequenceDataset(back, 'train')))
    assert small.rgb.shape[1:3] == (48, 64)  # 128x96 halved: 64 wide covers 64, 48 high covers 40
    np.testing.assert_allclose(small.K[0, 0, 0], original.K[0, 0, 0] / 2, rtol=1e-6)


def test_unpack_refuses_what_pack_did_not_write(tmp_path):
    other = tmp_path / 'other.npz'
    np.savez(other, x=np.zeros(3))
    with pytest.raises(DataFormatError, match='not a packed dataset'):
        unpack_dataset(other, tmp_path / 'out')
    garbage = tmp_path / 'garbage.npz'
    garbage.write_bytes(b'not a zip at all')
    with pytest.raises(DataFormatError, match='not a packed dataset'):
        unpack_dataset(garbage, tmp_path / 'out')
    (tmp_path / 'manifest.json').write_text('{"sequences": [], "splits": {}}')
    with pytest.raises(DataFormatError, match='no sequence in splits'):
        pack_dataset(tmp_path, tmp_path / 'x.npz')
