"""Real recordings: the HoloLens layout, the fixed 70/10/20 split, the constant-depth baseline."""

import json

import numpy as np
import pytest

from conftest import SHARED_HOLOLENS
from geovr_training.data.convert import convert, recording_splits
from geovr_training.data.errors import DataError, DataFormatError
from geovr_training.data.loaders import is_hololens_folder, load_hololens
from geovr_training.evaluation.metrics import constant_depth_summary


def test_recording_splits_follow_the_fixed_rule():
    splits = recording_splits(373)
    assert splits == {'train': range(0, 261), 'val': range(271, 298), 'test': range(308, 373)}
    for n in (150, 250, 1000):
        s = recording_splits(n)
        assert s['train'].start == 0 and s['test'].stop == n
        assert s['val'].start - s['train'].stop == 10 and s['test'].start - s['val'].stop == 10
        assert abs(s['train'].stop - 0.7 * n) <= 1
    with pytest.raises(DataError, match='too short'):
        recording_splits(100)  # val would hold 10 - 10 frames


def _write_hololens(folder, n=150, size=(40, 30)):
    import cv2
    (folder / 'images').mkdir(parents=True)
    (folder / 'depth').mkdir()
    rng = np.random.default_rng(0)
    poses = []
    for i in range(n):
        cv2.imwrite(str(folder / 'images' / f'{i + 3:05d}.jpg'), rng.integers(0, 255, (size[1], size[0], 3), np.uint8))
        depth = np.full((size[1], size[0]), 2000 + i, np.uint16)
        depth[0, 0] = 0
        cv2.imwrite(str(folder / 'depth' / f'{i + 3:05d}.png'), depth)
        T = np.eye(4)
        T[0, 3] = 0.01 * i
        poses.append(' '.join(f'{v:.6f}' for v in T.ravel()))
    (folder / 'poses.txt').write_text('\n'.join(poses) + '\n')
    (folder / 'K.txt').write_text('30 0 19.5\n0 30 14.5\n0 0 1\n')


def test_hololens_layout_loads_and_converts_into_three_splits(tmp_path):
    src = tmp_path / 'holo'
    _write_hololens(src)
    assert is_hololens_folder(src)
    seq = load_hololens(src)
    assert seq.rgb.shape == (150, 30, 40, 3) and np.isnan(seq.depth[:, 0, 0]).all()
    assert seq.depth[5, 1, 1] == pytest.approx(2.005)
    assert seq.T_world_cam[10, 0, 3] == pytest.approx(0.1)
    manifest = convert('hololens', src, tmp_path / 'out', split_recording=True)
    by_split = {e['split']: e for e in manifest['sequences']}
    assert {k: v['num_frames'] for k, v in by_split.items()} == {'train': 105, 'val': 5, 'test': 20}
    assert by_split['test']['recording_frames'] == [130, 150]
    stored = json.loads((tmp_path / 'out' / 'manifest.json').read_text())
    assert stored['splits']['train'] == ['holo_train']


def test_hololens_layout_errors_name_the_file(tmp_path):
    src = tmp_path / 'holo'
    _write_hololens(src, n=5)
    (src / 'poses.txt').write_text('1 0 0\n')
    with pytest.raises(DataFormatError, match='poses.txt'):
        load_hololens(src)


@pytest.mark.skipif(not SHARED_HOLOLENS.is_dir(), reason=f'{SHARED_HOLOLENS} (shared real recording) is absent')
def test_shared_hololens_recording_reads_with_its_documented_facts():
    seq = load_hololens(SHARED_HOLOLENS, stride=40)
    assert seq.image_size == (540, 360)
    assert seq.K[0, 0, 0] == pytest.approx(495.57, abs=0.01)
    assert 1.8 < np.nanmedian(seq.depth) < 3.0


def test_constant_depth_baseline_is_the_sets_median():
    depth = np.full((3, 4, 4), 2.0, np.float32)
    depth[:, :2] = 4.0
    depth[0, 0, 0] = np.nan
    row = constant_depth_summary([depth, depth[:1] * 2.0])  # valid: 24 x 2 m, 31 x 4 m, 8 x 8 m
    assert row['constant_depth_m'] == pytest.approx(4.0)
    assert row['depth_metric_delta1'] == pytest.approx(0.5, abs=0.02)  # half of each set's pixels are at 4 m
    exact = constant_depth_summary([np.full((2, 3, 3), 1.5, np.float32)])
    assert exact['depth_metric_abs_rel'] == pytest.approx(0.0) and exact['depth_metric_delta1'] == pytest.approx(1.0)
    assert exact['scale_abs_rel'] == pytest.approx(0.0)


def test_reprojection_check_tells_right_poses_from_wrong_ones(rendered_sequence):
    import dataclasses

    from geovr_training.data.verify import reprojection_disagreement
    right = reprojection_disagreement(rendered_sequence, gap=2, pairs=5)
    assert right['median_m'] < 0.01 and right['overlap'] > 0.3
    K = rendered_sequence.K.copy()
    K[:, 0, 0] *= 1.3  # a wrong focal length
    wrong_k = reprojection_disagreement(dataclasses.replace(rendered_sequence, K=K), gap=2, pairs=5)
    poses = rendered_sequence.T_world_cam[::-1].copy()  # poses of other frames
    wrong_t = reprojection_disagreement(dataclasses.replace(rendered_sequence, T_world_cam=poses), gap=2, pairs=5)
    assert wrong_k['median_m'] > 5 * right['median_m'] and wrong_t['median_m'] > 5 * right['median_m']
