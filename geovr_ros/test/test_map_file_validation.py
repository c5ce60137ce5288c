"""Map files are untrusted input: `KeyframeMap.load` refuses every inconsistent, oversized
or malicious file with a MapFileError naming the problem, before building anything."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

from geovr_ros.geometry import make_pose
from geovr_ros.localization import KeyframeMap, MapFileError

K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
IMAGE = np.zeros((48, 64, 3), np.uint8)


def good_arrays(n=3, d=8):
    rng = np.random.default_rng(0)
    return {
        'meta': np.frombuffer(json.dumps({'version': 1, 'next_id': n}).encode(), np.uint8),
        'ids': np.arange(n, dtype=np.int64),
        'stamps': np.arange(n, dtype=np.float64),
        'poses': np.stack([make_pose(np.eye(3), [i, 0, 0]) for i in range(n)]),
        'descriptors': rng.normal(size=(n, d)).astype(np.float32),
        'images': np.zeros((n, 48, 64, 3), np.uint8),
        'K': np.stack([K] * n)}


def write(path, arrays):
    np.savez_compressed(path, **arrays)
    return path


def test_a_consistent_file_loads_with_its_ids_and_next_id(tmp_path):
    loaded = KeyframeMap.load(write(tmp_path / 'm.npz', good_arrays()), 10, 8, (64, 48))
    assert [k.keyframe_id for k in loaded] == [0, 1, 2]
    assert loaded.add(5.0, np.eye(4), np.ones(8), IMAGE, K).keyframe_id == 3
    assert np.allclose([np.linalg.norm(k.descriptor) for k in loaded], 1.0)


def _meta(next_id):
    return np.frombuffer(json.dumps({'version': 1, 'next_id': next_id}).encode(), np.uint8)


def _nan_pose(a):
    a['poses'][1, 0, 3] = np.nan


def _scaled_pose(a):
    a['poses'][2, :3, :3] *= 2.0


def _mirror_pose(a):
    a['poses'][0, 0, 0] = -1.0


def _nan_descriptor(a):
    a['descriptors'][0, 0] = np.nan


def _zero_k(a):
    a['K'][1] = 0.0


BAD = {
    'next_id not above the ids': (lambda a: a.update(meta=_meta(1)), 'next_id 1'),
    'next_id a string': (lambda a: a.update(meta=_meta('x')), "next_id 'x'"),
    'unequal lengths': (lambda a: a.update(stamps=np.arange(2.0)), 'unequal length'),
    '2-D ids': (lambda a: a.update(ids=np.arange(6).reshape(3, 2)), "'ids' is int64 of shape (3, 2)"),
    'float ids': (lambda a: a.update(ids=np.arange(3.0)), "'ids' is float64"),
    'repeated ids': (lambda a: a.update(ids=np.array([0, 1, 1])), 'unique'),
    'NaN pose': (_nan_pose, 'pose 1 is not a finite rigid transform'),
    'scaled pose': (_scaled_pose, 'pose 2 is not a finite rigid transform'),
    'mirrored pose': (_mirror_pose, 'pose 0 is not a finite rigid transform'),
    'descriptor of size 7': (lambda a: a.update(descriptors=np.ones((3, 7), np.float32)),
                             "descriptors have size 7, the model's have 8"),
    'NaN descriptor': (_nan_descriptor, 'descriptors must be finite'),
    'images of another size': (lambda a: a.update(images=np.zeros((3, 10, 10, 3), np.uint8)),
                               'images are 10x10, the model input is 64x48'),
    'uint16 images': (lambda a: a.update(images=np.zeros((3, 48, 64, 3), np.uint16)),
                      'expected uint8'),
    'zero K': (_zero_k, 'K of keyframe 1 is invalid'),
    'other version': (lambda a: a.update(meta=np.frombuffer(b'{"version": 2}', np.uint8)),
                      'format version'),
    'missing array': (lambda a: a.pop('K'), "array 'K' is missing"),
    'extra member': (lambda a: a.update(payload=np.zeros(3)), 'unexpected members'),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_inconsistent_maps_are_refused_naming_the_problem(tmp_path, case):
    arrays = good_arrays()
    change, message = BAD[case]
    change(arrays)
    path = write(tmp_path / 'bad.npz', arrays)
    with pytest.raises(MapFileError, match='refused') as info:
        KeyframeMap.load(path, 10, 8, (64, 48))
    assert message in str(info.value)


def test_more_keyframes_than_max_map_keyframes_are_refused_before_reading(tmp_path):
    path = write(tmp_path / 'big.npz', good_arrays(n=40))
    with pytest.raises(MapFileError, match='holds 40 keyframes, more than max_map_keyframes=10'):
        KeyframeMap.load(path, 10)
    assert len(KeyframeMap.load(path, 40)) == 40


def test_a_zip_bomb_is_refused_from_its_headers(tmp_path):
    """An images member whose header declares 10 keyframes of 8192x8192 (2 GB) compresses to
    a few MB; load must refuse it from the header, not decompress it."""
    arrays = good_arrays(n=10)
    path = tmp_path / 'bomb.npz'
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
        for name, value in arrays.items():
            if name == 'images':
                continue
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(f'{name}.npy', buffer.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {'descr': '|u1', 'fortran_order': False,
                                                      'shape': (10, 4096, 4096, 3)})
        with archive.open('images.npy', 'w', force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(1 << 20)
            for _ in range(64):           # 64 MiB of the 503 MB declared: enough to show it
                member.write(zeros)
    assert os.path.getsize(path) < 1 << 20
    with pytest.raises(MapFileError, match='images are 4096x4096, the model input is 64x48'):
        KeyframeMap.load(path, 10, 8, (64, 48))
    # Without a model image size, the header/zip size disagreement refuses it unread.
    with pytest.raises(MapFileError, match="'images' declares"):
        KeyframeMap.load(path, 10)


def test_save_uses_a_fresh_temporary_file_and_never_follows_a_symlink(tmp_path):
    kmap = KeyframeMap(5)
    kmap.add(0.0, np.eye(4), np.ones(8), IMAGE, K)
    target = tmp_path / 'map.npz'
    victim = tmp_path / 'victim.txt'
    victim.write_text('keep me')
    os.symlink(victim, tmp_path / 'map.npz.tmp.npz')     # the old predictable name
    kmap.save(target)
    assert victim.read_text() == 'keep me'
    assert len(KeyframeMap.load(target)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['map.npz', 'map.npz.tmp.npz',
                                                          'victim.txt']


def test_a_failed_save_leaves_no_temporary_file_and_the_old_map(tmp_path):
    kmap = KeyframeMap(5)
    kmap.add(0.0, np.eye(4), np.ones(8), IMAGE, K)
    target = tmp_path / 'map.npz'
    kmap.save(target)
    before = target.read_bytes()
    kmap._keyframes.append(kmap.last.__class__(1, 1.0, np.eye(4), np.ones(3, np.float32),
                                               IMAGE, K))   # ragged: np.stack fails
    with pytest.raises(ValueError):
        kmap.save(target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['map.npz']


def _saved_map(tmp_path, **save):
    keyframe_map = KeyframeMap(10)
    for i in range(3):
        keyframe_map.add(float(i), make_pose(np.eye(3), [i, 0.0, 0.0]), np.ones(8), np.zeros((6, 8, 3), np.uint8),
                         np.array([[8.0, 0, 4], [0, 8.0, 3], [0, 0, 1]]))
    path = tmp_path / 'map.npz'
    keyframe_map.save(path, **save)
    return path


def test_attachments_and_a_document_travel_with_the_map(tmp_path):
    ids, points = np.arange(4, dtype=np.int64), np.random.default_rng(0).normal(size=(5, 3))
    path = _saved_map(tmp_path, attachments={'objects_id': ids, 'objects_points': points},
                      document={'objects': {'format': 'x', 'categories': ['chair']}})
    loaded = KeyframeMap.load(path)
    assert len(loaded) == 3
    np.testing.assert_array_equal(loaded.attachments['objects_id'], ids)
    np.testing.assert_array_equal(loaded.attachments['objects_points'], points)
    assert loaded.document == {'objects': {'format': 'x', 'categories': ['chair']}}
    assert KeyframeMap.load(_saved_map(tmp_path)).document is None   # a map without any


def test_attachments_are_checked_like_the_map(tmp_path):
    with pytest.raises(MapFileError, match='rank <= 2'):
        _saved_map(tmp_path, attachments={'cube': np.zeros((2, 2, 2))})
    path = _saved_map(tmp_path)
    arrays = dict(np.load(path))
    for name, value in (('attached.cube', np.zeros((2, 2, 2))), ('attached.names', np.array(['a', 'b']))):
        write(tmp_path / 'bad.npz', {**arrays, name: value})
        with pytest.raises(MapFileError, match="attachment 'attached."):
            KeyframeMap.load(tmp_path / 'bad.npz')
    huge = np.lib.format.header_data_from_array_1_0(np.zeros(1))  # a header that promises 1 GB
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {**huge, 'shape': (2**27,)})
    with zipfile.ZipFile(path, 'a') as archive:
        archive.writestr('attached.huge.npy', buffer.getvalue())
    with pytest.raises(MapFileError, match='more than'):
        KeyframeMap.load(path)
