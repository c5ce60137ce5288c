"""Torch datasets and camera-aware augmentation: shapes, splits and geometric consistency."""

import numpy as np
import pytest
import torch
from geovr_ros.geometry import reproject_depth

from geovr_training.data.augment import CameraAugment, jitter_colours, resize_frame, warp_to_intrinsics
from geovr_training.data.dataset import ClipDataset, QADataset, SequenceDataset
from geovr_training.data.generate import GenerationConfig, generate_dataset


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('ds')
    generate_dataset(root, 5, GenerationConfig(seed=2, frames_per_scene=8, resolution=(320, 240), qa_per_scene=10),
                     progress=False)
    return root


def _reprojection_median(depth_i, K_i, T_i, depth_j, K_j, T_j):
    uv, z = reproject_depth(depth_i, K_i, T_i, K_j, T_j)
    h, w = depth_j.shape
    u, v = uv[..., 0], uv[..., 1]
    ok = np.isfinite(u) & np.isfinite(z) & (u >= 0) & (u < w - 1) & (v >= 0) & (v < h - 1)
    u, v = u[ok], v[ok]
    j0, i0 = np.floor(u).astype(int), np.floor(v).astype(int)
    a, b = u - j0, v - i0
    target = ((1 - a) * (1 - b) * depth_j[i0, j0] + a * (1 - b) * depth_j[i0, j0 + 1]
              + (1 - a) * b * depth_j[i0 + 1, j0] + a * b * depth_j[i0 + 1, j0 + 1])
    err = np.abs(target - z[ok])
    err = err[np.isfinite(err)]
    return np.median(err), len(err)


def test_clip_sample_keys_shapes_and_types(dataset_dir):
    ds = ClipDataset(dataset_dir, 'train', num_frames=2, out_size=(96, 64))
    assert len(ds) > 0 and ds.augment
    sample = ds[0]
    assert sample['images'].shape == (2, 3, 64, 96) and sample['images'].dtype == torch.float32
    assert 0.0 <= sample['images'].min() and sample['images'].max() <= 1.0
    assert sample['K'].shape == (2, 3, 3) and sample['depth'].shape == (2, 64, 96)
    assert sample['valid'].dtype == torch.bool and torch.equal(sample['valid'], torch.isfinite(sample['depth']))
    assert sample['T_world_cam'].shape == (2, 4, 4)
    torch.testing.assert_close(sample['T_ref_cur'][0], torch.eye(4))
    assert 1 <= int(sample['frame_indices'][1] - sample['frame_indices'][0]) <= 4
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch['images'].shape == (3, 2, 3, 64, 96)
    again = ds[0]
    assert torch.equal(again['images'], sample['images']) and torch.equal(again['K'], sample['K'])


def test_splits_are_disjoint_by_scene_and_eval_is_not_augmented(dataset_dir):
    names = {s: set(SequenceDataset(dataset_dir, s).names()) for s in ('train', 'val', 'test')}
    assert names['train'] and names['val'] and names['test']
    assert not (names['train'] & names['val']) and not (names['train'] & names['test'])
    ds = ClipDataset(dataset_dir, 'val', out_size=None)
    assert not ds.augment
    sample = ds[0]
    seq = SequenceDataset(dataset_dir, 'val')[0]
    i = int(sample['frame_indices'][0])
    np.testing.assert_array_equal(sample['K'][0].numpy(), seq.K[i].astype(np.float32))
    np.testing.assert_allclose(sample['images'][0].permute(1, 2, 0).numpy() * 255, seq.rgb[i], atol=1e-3)


def test_augmented_clips_stay_geometrically_consistent(dataset_dir):
    """Depth of frame 0 reprojected into frame 1, both augmented (crop, resize, zoom, shift)
    with the returned K: median error < 1 cm. (Raw frames agree to ~0.1 mm; nearest-neighbour
    depth resampling adds up to half a source pixel of ray error, ~5 mm here at 320x240.)"""
    ds = ClipDataset(dataset_dir, 'train', num_frames=2, frame_gap=(1, 2), out_size=(224, 168),
                     augmentation=CameraAugment(out_size=(224, 168), crop_scale=(0.6, 0.9), zoom=(0.8, 1.3),
                                                shift=0.08))
    checked = 0
    for k in range(0, len(ds), 5):
        s = ds[k]
        d, K, T = s['depth'].double().numpy(), s['K'].double().numpy(), s['T_world_cam'].double().numpy()
        med, n = _reprojection_median(d[0], K[0], T[0], d[1], K[1], T[1])
        if n > 300:
            assert med < 0.01, (k, med)
            checked += 1
    assert checked >= 3


def test_mirrored_clips_are_the_mirror_image_and_stay_geometrically_consistent(dataset_dir):
    """A mirrored clip is the same draw reversed left to right (images, depth, labels), with cx
    -> W - 1 - cx and the relative pose's x translation and y, z turns negated; frame 0's depth
    still lands on frame 1's through the mirrored K and poses (a mirror world is a world)."""
    def clips(flip_fraction):
        return ClipDataset(dataset_dir, 'train', num_frames=2, frame_gap=(1, 2), out_size=(224, 168), semantics=True,
                           augmentation=CameraAugment(out_size=(224, 168), crop_scale=(0.6, 0.9), zoom=(0.8, 1.3),
                                                      shift=0.08, flip_fraction=flip_fraction))
    plain, mirrored = clips(0.0), clips(1.0)
    checked = 0
    for k in range(0, len(plain), 5):
        a, b = plain[k], mirrored[k]
        assert torch.equal(b['images'], a['images'].flip(-1)) and torch.equal(b['semantic'], a['semantic'].flip(-1))
        torch.testing.assert_close(b['depth'], a['depth'].flip(-1), equal_nan=True)
        torch.testing.assert_close(b['K'][:, 0, 2], 223 - a['K'][:, 0, 2])
        sign = torch.tensor([[1.0, -1, -1, -1], [-1, 1, 1, 1], [-1, 1, 1, 1], [1, 1, 1, 1]])
        torch.testing.assert_close(b['T_ref_cur'], a['T_ref_cur'] * sign)
        d, K, T = b['depth'].double().numpy(), b['K'].double().numpy(), b['T_world_cam'].double().numpy()
        assert np.allclose(np.linalg.det(T[:, :3, :3]), 1.0)
        med, n = _reprojection_median(d[0], K[0], T[0], d[1], K[1], T[1])
        if n > 300:
            assert med < 0.01, (k, med)
            checked += 1
    assert checked >= 3
    half = ClipDataset(dataset_dir, 'train', out_size=(96, 64),
                       augmentation=CameraAugment(out_size=(96, 64), flip_fraction=0.5))
    unflipped = ClipDataset(dataset_dir, 'train', out_size=(96, 64), augmentation=CameraAugment(out_size=(96, 64)))
    flips = [not torch.equal(half[k]['K'], unflipped[k]['K']) for k in range(len(half))]
    assert 0.2 < np.mean(flips) < 0.8


def test_colour_jitter_changes_colours_only_and_alike_in_both_frames(dataset_dir):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    np.testing.assert_array_equal(jitter_colours(rgb, 1.0, 1.0, 1.0, 0.0), rgb)
    assert abs(jitter_colours(rgb // 2, 1.5, 1.0, 1.0, 0.0).mean() - 1.5 * (rgb // 2).mean()) < 1.0
    grey = jitter_colours(rgb, 1.0, 1.0, 0.0, 0.0).astype(int)
    assert np.abs(grey - grey[..., :1]).max() <= 1
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 200
    cyan = jitter_colours(red, 1.0, 1.0, 1.0, 0.5)
    assert cyan[0, 0, 0] < 5 and cyan[0, 0, 1] > 190 and cyan[0, 0, 2] > 190
    common = dict(out_size=(96, 64), crop_scale=(0.6, 0.9), zoom=(0.8, 1.3), shift=0.08)
    plain = ClipDataset(dataset_dir, 'train', out_size=(96, 64), augmentation=CameraAugment(**common))
    jittered = ClipDataset(dataset_dir, 'train', out_size=(96, 64),
                           augmentation=CameraAugment(**common, colour_fraction=1.0))
    a, b = plain[3], jittered[3]
    assert torch.equal(a['K'], b['K']) and torch.equal(a['T_ref_cur'], b['T_ref_cur'])
    torch.testing.assert_close(a['depth'], b['depth'], equal_nan=True)
    assert not torch.equal(a['images'], b['images'])
    ratio = [(b['images'][f].mean() / a['images'][f].mean()).item() for f in range(2)]
    assert abs(ratio[0] - ratio[1]) < 0.05 * ratio[0]      # one draw for the clip


def test_warp_matches_k_on_a_synthetic_point():
    """A bright pixel at (u, v) under K lands at K'-projected coordinates after augmentation."""
    rng = np.random.default_rng(0)
    K = np.array([[100.0, 0, 70.0], [0, 100.0, 50.0], [0, 0, 1]])
    rgb = np.zeros((100, 140, 3), np.uint8)
    depth = np.full((100, 140), 2.0, np.float32)
    rgb[40, 90] = 255
    depth[39:42, 89:92] = 5.0  # 3x3 so that nearest-neighbour shrinking keeps a sample of it
    aug = CameraAugment(out_size=(96, 72), crop_scale=(0.9, 1.0), zoom=(1.0, 1.3), shift=0.05)
    for _ in range(5):
        out_rgb, out_depth, K2 = aug(rgb, depth, K, rng)
        ray = np.linalg.solve(K, [90.0, 40.0, 1.0])
        u, v = (K2 @ ray)[:2]
        iv, iu = np.unravel_index(np.argmax(out_rgb[..., 0]), out_rgb.shape[:2])
        assert abs(iu - u) <= 1 and abs(iv - v) <= 1
        near = out_depth[int(round(v)) - 1:int(round(v)) + 2, int(round(u)) - 1:int(round(u)) + 2]
        assert 5.0 in near and set(np.unique(out_depth[np.isfinite(out_depth)])) <= {2.0, 5.0}


def test_resize_updates_k_with_the_pixel_centre_rule():
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    rgb, depth, K2 = resize_frame(np.zeros((48, 64, 3), np.uint8), np.ones((48, 64), np.float32), K, (32, 24))
    assert rgb.shape == (24, 32, 3) and depth.shape == (24, 32) and np.isfinite(depth).all()
    np.testing.assert_allclose(K2[:2, 2], [15.5, 11.5])
    np.testing.assert_allclose([K2[0, 0], K2[1, 1]], [25.0, 25.0])
    same_rgb, same_depth = warp_to_intrinsics(rgb, depth, K2, K2, (32, 24))
    np.testing.assert_array_equal(same_depth, depth)


def test_qa_dataset_filters_and_loads_frames(dataset_dir):
    qa = QADataset(dataset_dir, 'all')
    assert len(qa) > 0
    held = QADataset(dataset_dir, 'all', template_split='heldout')
    assert all(item['template_split'] == 'heldout' for item in held)
    item = next(i for i in qa if i['frames'])
    frames = qa.frames(item)
    assert len(frames) == len(item['frames'])
    assert len(qa.frames(item, 'until')) == item['until_frame'] + 1


def test_semantic_labels_follow_the_scene_graph_and_the_augmentation(dataset_dir):
    from geovr_training.data.dataset import SEMANTIC_CLASSES, semantic_lut
    from geovr_training.data.shards import ShardReader
    plain = ClipDataset(dataset_dir, 'train', out_size=(96, 64), augment=False, semantics=True)
    sample = plain[0]
    labels = sample['semantic']
    assert labels.shape == (2, 64, 96) and labels.dtype == torch.int64
    assert int(labels.min()) >= 0 and int(labels.max()) < len(SEMANTIC_CLASSES)
    entry = plain.entries[plain.clips[0][0]]
    with ShardReader(dataset_dir / entry['file']) as reader:
        scene = reader.meta['scene']
        seg = reader.read(sample['frame_indices'].tolist(), segmentation=True).segmentation
    lut = semantic_lut(scene)
    seen = {scene_obj['category'] for scene_obj in scene['objects']
            if (seg == scene_obj['instance_id']).any()}
    assert {SEMANTIC_CLASSES[i] for i in np.unique(lut[seg])} - {'room'} == seen
    # every label of the resized clip names a category visible in its frames
    assert {SEMANTIC_CLASSES[int(i)] for i in labels.unique()} <= seen | {'room'}
    assert len(labels.unique()) > 1
    augmented = ClipDataset(dataset_dir, 'train', out_size=(96, 64), augment=True, semantics=True)[0]
    unknown = augmented['semantic'] < 0
    # outside the source after the warp: no depth and no label, at the same pixels
    assert torch.equal(unknown, ~torch.isfinite(augmented['depth']) & unknown)
    assert 'semantic' not in ClipDataset(dataset_dir, 'train', out_size=(96, 64))[0]
