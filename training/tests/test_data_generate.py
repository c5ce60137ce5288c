import numpy as np
import pytest

from geovr_training.data.errors import GenerationError
from geovr_training.data.generate import GenerationConfig, generate_dataset, render_sequence, split_of
from geovr_training.data.shards import read_manifest, read_shard


def _files(root):
    return {p.name: p.read_bytes() for p in sorted(root.iterdir())}


def test_same_seed_gives_identical_files_whatever_the_workers(tmp_path):
    config = GenerationConfig(seed=5, frames_per_scene=4, resolution=(64, 48), qa_per_scene=8)
    generate_dataset(tmp_path / 'w1', 3, config, workers=1, progress=False)
    generate_dataset(tmp_path / 'w2', 3, config, workers=2, progress=False)
    a, b = _files(tmp_path / 'w1'), _files(tmp_path / 'w2')
    assert sorted(a) == ['manifest.json', 'scene_00000.geovr.npz', 'scene_00001.geovr.npz', 'scene_00002.geovr.npz']
    assert a == b
    other = GenerationConfig(seed=6, frames_per_scene=4, resolution=(64, 48), qa_per_scene=8)
    generate_dataset(tmp_path / 's6', 1, other, workers=1, progress=False)
    assert (tmp_path / 's6' / 'scene_00000.geovr.npz').read_bytes() != a['scene_00000.geovr.npz']


def test_manifest_splits_by_scene(tmp_path):
    config = GenerationConfig(seed=1, frames_per_scene=2, resolution=(48, 36), qa_per_scene=4)
    generate_dataset(tmp_path, 4, config, workers=1, progress=False)
    manifest = read_manifest(tmp_path)
    assert manifest['seed'] == 1
    names = [s['name'] for s in manifest['sequences']]
    splits = manifest['splits']
    assert sorted(splits['train'] + splits['val'] + splits['test']) == sorted(names)
    assert len(splits['val']) == 1 and len(splits['test']) == 1
    seq = read_shard(tmp_path / manifest['sequences'][0]['file'])
    assert len(seq) == 2 and seq.image_size == (48, 36)


def test_split_of_covers_every_scene_once():
    for n in (1, 2, 3, 10, 57):
        splits = [split_of(i, n) for i in range(n)]
        assert len(splits) == n
        if n >= 3:
            assert 'val' in splits and 'test' in splits and splits[0] == 'train'


def test_random_intrinsics_stay_in_their_ranges():
    from geovr_ros.geometry import fov_from_intrinsics
    seen_aspects = set()
    for i in range(12):
        seq = render_sequence(GenerationConfig(seed=3, frames_per_scene=1, resolution=None), i)
        w, h = seq.image_size
        assert 160 <= w <= 640 and 108 <= h <= 480
        seen_aspects.add(round(w / h, 2))
        hfov, _ = fov_from_intrinsics(seq.K[0], (w, h))
        assert np.deg2rad(40) < hfov < np.deg2rad(115)
        assert abs(seq.K[0, 0, 2] - (w / 2 - 0.5)) <= 0.1 * w + 1e-9
        assert abs(seq.K[0, 1, 2] - (h / 2 - 0.5)) <= 0.1 * h + 1e-9
    assert seen_aspects == {1.33, 1.78}


def test_bad_parameters_raise_typed_errors(tmp_path):
    with pytest.raises(GenerationError, match='frames_per_scene'):
        render_sequence(GenerationConfig(frames_per_scene=0), 0)
    with pytest.raises(GenerationError, match='workers'):
        generate_dataset(tmp_path, 1, GenerationConfig(frames_per_scene=1), workers=0)


def test_close_trajectories_look_at_one_object_from_desk_distance():
    from geovr_training.data.scene import sample_scene
    from geovr_training.data.trajectory import CLOSE_STANDOFF, sample_trajectory
    from geovr_training.data.generate import scene_rng
    for index in range(6):
        rng = scene_rng(9, index)
        layout = sample_scene(rng)
        poses, _, kind = sample_trajectory(rng, layout, 12, kind='close')
        assert kind == 'close'
        # the optical axis meets one object (its vertical axis, below its top) at desk distance
        inspected = []
        for obj in (o.scene_object() for o in layout.objects):
            cam, axis = poses[:, :3, 3], poses[:, :3, 2]
            to_centre = obj.centre[:2] - cam[:, :2]
            s = np.sum(to_centre * axis[:, :2], 1) / np.sum(axis[:, :2] ** 2, 1)  # along the axis
            hit = cam + s[:, None] * axis
            reach = np.hypot(*obj.size[:2]) / 2
            top = obj.centre[2] + obj.size[2] / 2
            if ((s > 0).all() and (np.linalg.norm(hit[:, :2] - obj.centre[:2], axis=1) < 0.15).all()
                    and (hit[:, 2] > -0.05).all() and (hit[:, 2] < top + 0.05).all()
                    and (np.linalg.norm(to_centre, axis=1) < reach + CLOSE_STANDOFF[1] + 0.05).all()):
                inspected.append(obj)
        assert inspected, f'scene {index}: no object inspected'
        w, d = layout.room_size[:2]
        assert (np.abs(poses[:, 0, 3]) < w / 2).all() and (np.abs(poses[:, 1, 3]) < d / 2).all()


def _views_of_kind(seed: int, kind: str, scenes: int = 8):
    """(scene index, layout, poses (12, 4, 4)) of the scenes of fully randomized rooms of ``seed`` where a
    ``kind`` path found room; the others must have fallen back to a walk."""
    from geovr_training.data.generate import scene_rng
    from geovr_training.data.randomization import Randomization, randomize_layout
    from geovr_training.data.scene import sample_scene
    from geovr_training.data.trajectory import sample_trajectory
    full = Randomization.load('full')
    for index in range(scenes):
        rng = scene_rng(seed, index)
        layout = randomize_layout(sample_scene(rng), full, seed, index)
        poses, _, rendered = sample_trajectory(rng, layout, 12, kind=kind)
        if rendered != kind:  # no top with room for it: a walk, as for the other kinds
            assert rendered == 'walk'
            continue
        yield index, layout, poses


def test_tabletop_views_look_down_at_a_furniture_top_from_manipulation_distance():
    from geovr_training.data.clutter import find_supports
    from geovr_training.data.trajectory import TABLETOP_RANGE
    views = 0
    for index, layout, poses in _views_of_kind(26, 'tabletop'):
        views += 1
        cam, axis = poses[:, :3, 3], poses[:, :3, 2]
        assert (axis[:, 2] < -np.sin(np.deg2rad(20))).all()  # looking down
        # the optical axis reaches the height of one top within reach, over that top
        looked_at = []
        for top in find_supports(layout):
            s = (top.z - cam[:, 2]) / axis[:, 2]
            hit = cam + s[:, None] * axis
            c, sn = np.cos(top.yaw), np.sin(top.yaw)
            local = (hit[:, :2] - np.asarray(top.xy)) @ np.array([[c, -sn], [sn, c]])
            if ((s > TABLETOP_RANGE[0] - 0.05).all() and (s < TABLETOP_RANGE[1] + 0.05).all()
                    and (np.abs(local - top.centre) <= top.half + 0.05).all()):
                looked_at.append(top)
        assert looked_at, f'scene {index}: no furniture top in view at manipulation distance'
        w, d = layout.room_size[:2]
        assert (np.abs(cam[:, 0]) < w / 2).all() and (np.abs(cam[:, 1]) < d / 2).all()
    assert views >= 6


def test_desk_views_look_across_a_top_edge_from_outside_it_and_see_the_floor_beyond_it():
    from geovr_training.data.clutter import find_supports
    from geovr_training.data.trajectory import DESK_BACK, DESK_RISE
    views = 0
    for index, layout, poses in _views_of_kind(60, 'desk'):
        views += 1
        cam, axis = poses[:, :3, 3], poses[:, :3, 2]
        assert (axis[:, 2] < -np.sin(np.deg2rad(10))).all()  # looking down
        edges = []  # the tops the camera stands just outside of, looking onto them
        for top in find_supports(layout):
            rise = cam[:, 2] - top.z
            if not ((rise > DESK_RISE[0] - 0.05) & (rise < DESK_RISE[1] + 0.05)).all():
                continue
            c, sn = np.cos(top.yaw), np.sin(top.yaw)
            to_local = np.array([[c, -sn], [sn, c]])
            outside = np.abs((cam[:, :2] - np.asarray(top.xy)) @ to_local - top.centre) - top.half
            s = (top.z - cam[:, 2]) / axis[:, 2]
            hit = (cam + s[:, None] * axis)[:, :2]
            on_top = (np.abs((hit - np.asarray(top.xy)) @ to_local - top.centre) <= top.half + 0.05).all()
            if on_top and (outside.max(axis=1) > 0).all() and (outside.max(axis=1) < DESK_BACK[1] + 0.05).all():
                edges.append(top)
        assert edges, f'scene {index}: the camera does not look onto a top from just outside its edge'
    assert views >= 5
    # rendered: below the edge the floor is farther than the top above it in some frames
    farther_below = 0
    for index in range(4):
        seq = render_sequence(GenerationConfig(seed=60, frames_per_scene=2, resolution=(64, 48), qa_per_scene=0,
                                               trajectories=('desk',)), index)
        if seq.info['trajectory'] != 'desk':
            continue
        column = seq.depth[0][:, 24:40].mean(axis=1)  # (48,) rows top to bottom, metres
        farther_below += int(column[-1] > column.min() + 0.1)
    assert farther_below >= 1


def test_default_mix_is_unchanged_and_kinds_are_checked(tmp_path):
    from geovr_training.data.trajectory import DEFAULT_TRAJECTORY_MIX
    # the default mix draws exactly as before 'close' existed: a dataset of an older session regenerates identically
    assert DEFAULT_TRAJECTORY_MIX == ('walk', 'walk', 'orbit', 'pan')
    seq = render_sequence(GenerationConfig(seed=3, frames_per_scene=2, resolution=(48, 36), qa_per_scene=0,
                                           trajectories=('close',)), 0)
    assert seq.info['trajectory'] == 'close'
    with pytest.raises(GenerationError, match="'flying'"):
        render_sequence(GenerationConfig(frames_per_scene=1, trajectories=('walk', 'flying')), 0)
    with pytest.raises(GenerationError, match='trajectories'):
        generate_dataset(tmp_path, 1, GenerationConfig(frames_per_scene=1, trajectories=()))


def test_textured_workers_share_one_texture_folder_and_leave_none_behind(tmp_path, monkeypatch):
    import os
    import tempfile

    from geovr_training.data.randomization import Randomization
    from geovr_training.data.render import TEXTURE_DIR_ENV
    scratch = tmp_path / 'tmp'
    scratch.mkdir()
    monkeypatch.setenv('TMPDIR', str(scratch))          # the spawned workers' temp folder
    monkeypatch.setattr(tempfile, 'tempdir', str(scratch))   # this process's
    config = GenerationConfig(seed=5, frames_per_scene=2, resolution=(64, 48), qa_per_scene=0,
                              randomization=Randomization.preset('full'))
    generate_dataset(tmp_path / 'w2', 2, config, workers=2, progress=False)
    assert list(scratch.iterdir()) == []   # pool workers end without exit handlers: nothing of theirs may stay
    assert TEXTURE_DIR_ENV not in os.environ
    generate_dataset(tmp_path / 'w1', 2, config, workers=1, progress=False)
    assert _files(tmp_path / 'w1') == _files(tmp_path / 'w2')


def test_camera_height_sets_where_walks_and_pans_hold_the_camera():
    """A robot's low camera (0.25-0.35 m) for walks and pans; the default range draws as before
    (passing it explicitly gives the same poses), and a range outside 0.1-2.2 m is refused."""
    from geovr_training.data.generate import scene_rng
    from geovr_training.data.scene import sample_scene
    from geovr_training.data.trajectory import HEIGHT_RANGE, sample_trajectory
    for index in range(4):
        for kind in ('walk', 'pan'):
            rng = scene_rng(11, index)
            layout = sample_scene(rng)
            state = rng.bit_generator.state
            low, _, _ = sample_trajectory(rng, layout, 20, kind=kind, height_range=(0.25, 0.35))
            z = low[:, 2, 3]
            assert (z > 0.25 - 0.08).all() and (z < 0.35 + 0.08).all(), (kind, z.min(), z.max())
            rng.bit_generator.state = state
            default, _, _ = sample_trajectory(rng, layout, 20, kind=kind)
            rng.bit_generator.state = state
            explicit, _, _ = sample_trajectory(rng, layout, 20, kind=kind, height_range=HEIGHT_RANGE)
            assert np.array_equal(default, explicit) and default[:, 2, 3].min() > HEIGHT_RANGE[0] - 0.08
    seq = render_sequence(GenerationConfig(seed=3, frames_per_scene=2, resolution=(48, 36), qa_per_scene=0,
                                           trajectories=('walk',), camera_height=(0.3, 0.3)), 0)
    assert abs(seq.T_world_cam[0, 2, 3] - 0.3) < 0.08
    for bad in ((0.05, 0.3), (0.5, 0.4), (1.0, 3.0)):
        with pytest.raises(GenerationError, match='camera_height'):
            render_sequence(GenerationConfig(frames_per_scene=1, camera_height=bad), 0)


def test_a_walk_turns_at_the_same_rate_whatever_the_frame_rate():
    """The walk's turn towards its look target is a rate (WALK_TURN_RATE, rad/s): at 30 fps a
    frame turns a third of what it turns at 10 fps, so the path is the same in time. Until session
    54 it was 0.25 rad a frame at any rate: 430 deg/s at 30 fps, where the tracker lost even the
    true depth of the demo's room at every turn."""
    from geovr_ros.geometry import invert_pose, so3_log
    from geovr_training.data.generate import scene_rng
    from geovr_training.data.scene import sample_scene
    from geovr_training.data.trajectory import WALK_TURN_RATE, sample_trajectory

    def fastest_turn_deg_s(index: int, fps: float) -> float:
        rng = scene_rng(8, index)
        layout = sample_scene(rng)
        poses, t, kind = sample_trajectory(rng, layout, int(6 * fps), fps, kind='walk')
        assert kind == 'walk' and np.allclose(np.diff(t), 1 / fps)
        turns = np.linalg.norm(so3_log((invert_pose(poses[:-1]) @ poses[1:])[:, :3, :3]), axis=-1)
        return float(np.rad2deg(turns.max()) * fps)

    limit = np.rad2deg(WALK_TURN_RATE) + 60.0     # the slow pan (<= 42 deg/s) and the hand-held jitter on top
    for index in range(4):
        at_10, at_30 = fastest_turn_deg_s(index, 10.0), fastest_turn_deg_s(index, 30.0)
        assert 60 < at_10 < limit and 60 < at_30 < limit, (index, at_10, at_30)
