"""Clutter stage of domain randomization: items rest on supports, never intersect, stay out
of the scene graph and of camera paths, show in renders, and 'none' is unchanged."""

import dataclasses

import numpy as np
import pytest

from geovr_training.data.clutter import (BLOB_MESHES, HOUSEHOLD_MESHES, ClutterConfig, _overlap, add_clutter,
                                         find_supports, item_box, part_boxes)
from geovr_training.data.errors import GenerationError
from geovr_training.data.generate import GenerationConfig, render_sequence, scene_rng
from geovr_training.data.qa import generate_qa
from geovr_training.data.randomization import Randomization, randomization_rng
from geovr_training.data.scene import free_space_grid, mesh_vertex_bounds, sample_scene
from geovr_training.data.trajectory import sample_trajectory

CONFIG = ClutterConfig(enabled=True)
SCENES = range(12)


def _cluttered(index: int, config: ClutterConfig = CONFIG):
    layout = sample_scene(scene_rng(0, index))
    add_clutter(layout, config, randomization_rng(0, index, 'clutter'))
    return layout


@pytest.fixture(scope='module')
def layouts():
    return [_cluttered(i) for i in SCENES]


def test_same_seed_same_clutter():
    a, b = _cluttered(3), _cluttered(3)
    assert len(a.clutter) == len(b.clutter) > 0
    for x, y in zip(a.clutter, b.clutter):
        assert x.position_xy == y.position_xy and x.yaw == y.yaw and x.rgba == y.rgba
        assert [p.mesh for p in x.parts] == [p.mesh for p in y.parts]


def test_every_item_rests_on_a_support_within_its_face(layouts):
    on_floor = on_furniture = 0
    for layout in layouts:
        supports = find_supports(layout)
        for item in layout.clutter:
            box = item_box(item)
            if abs(box.z0) < 1e-3:
                on_floor += 1
                assert (np.abs(box.corners()) <= layout.room_size[:2] / 2).all()
                continue
            holders = [s for s in supports if abs(box.z0 - s.z) < 1e-3 and s.contains(box)]
            assert holders, f'item at {item.position_xy} z {box.z0:.4f} floats'
            assert box.z1 - box.z0 <= holders[0].headroom
            on_furniture += 1
    assert on_floor > 3 and on_furniture > 20


def test_no_box_intersects_another(layouts):
    for layout in layouts:
        parts = [b for obj in layout.objects for b in part_boxes(obj)]
        items = [item_box(c) for c in layout.clutter]
        for i, a in enumerate(items):
            assert not any(_overlap(a, p) for p in parts)
            assert not any(_overlap(a, b) for b in items[i + 1:])


def test_overlap_of_turned_boxes():
    from geovr_training.data.clutter import _Box
    a = _Box(np.zeros(2), np.array([1.0, 0.1]), 0.0, 0.0, 1.0)
    b = _Box(np.array([0.0, 0.5]), np.array([1.0, 0.1]), np.pi / 4, 0.0, 1.0)  # crosses a
    c = _Box(np.array([1.2, 0.5]), np.array([0.3, 0.1]), np.pi / 4, 0.0, 1.0)  # beyond a's end
    d = _Box(np.zeros(2), np.array([1.0, 0.1]), 0.0, 1.0, 2.0)  # stacked on a: touching is fine
    assert _overlap(a, b) and not _overlap(a, c) and not _overlap(a, d)


def test_scene_graph_and_qa_unchanged_by_clutter():
    plain, cluttered = sample_scene(scene_rng(0, 5)), _cluttered(5)
    assert len(cluttered.clutter) > 0
    g0, g1 = plain.scene_graph(), cluttered.scene_graph()
    assert [(o.instance_id, o.category, o.centre.tolist(), o.size.tolist()) for o in g0.objects] == \
           [(o.instance_id, o.category, o.centre.tolist(), o.size.tolist()) for o in g1.objects]
    assert all(c.instance_id == 0 and c.category == 'clutter' for c in cluttered.clutter)
    for graph in (g0, g1):
        for obj in graph.objects:
            obj.first_seen = 0
    poses = np.repeat(np.eye(4)[None], 4, 0)
    assert generate_qa(g0, poses, np.random.default_rng(1), 12) == generate_qa(g1, poses, np.random.default_rng(1), 12)


@pytest.mark.parametrize('kind', ['walk', 'orbit', 'pan', 'close', 'rpy', 'tabletop', 'desk'])
def test_camera_paths_avoid_floor_clutter(layouts, kind):
    floor_items = 0
    for index, layout in enumerate(layouts):
        items = [c for c in layout.clutter if item_box(c).z0 < 1e-3]
        floor_items += len(items)
        poses, _, _ = sample_trajectory(np.random.default_rng(index), layout, 20, kind=kind)
        for item in items:
            box = item_box(item)
            r = float(np.hypot(*item.box_size[:2]) / 2)
            assert (np.linalg.norm(poses[:, :2, 3] - box.centre, axis=1) > r).all()
    assert floor_items > 3


def test_free_space_loses_floor_clutter_only_when_present():
    layout = _cluttered(0)
    plain = sample_scene(scene_rng(0, 0))
    free_plain, _ = free_space_grid(plain)
    free, _ = free_space_grid(layout)
    assert (free <= free_plain).all()
    floor = any(item_box(c).z0 < 1e-3 for c in layout.clutter)
    assert floor == (free.sum() < free_plain.sum())
    assert free.sum() >= (1 - CONFIG.max_floor_fraction) * free_plain.sum() - 1


def test_clutter_is_drawn_with_segmentation_zero():
    """The same camera path through the room with and without its clutter: pixels change,
    and where they change the segmentation is 0 (an item) or an object the item hides."""
    from geovr_training.data.render import Renderer
    from geovr_training.data.trajectory import sample_camera
    plain, cluttered = sample_scene(scene_rng(0, 6)), _cluttered(6)
    K, _ = sample_camera(np.random.default_rng(0), (64, 48))
    poses, _, _ = sample_trajectory(np.random.default_rng(0), cluttered, 6, kind='walk')
    frames = {}
    with Renderer() as renderer:
        for name, layout in (('plain', plain), ('cluttered', cluttered)):
            renderer.build(layout)
            frames[name] = [renderer.render(K, T, 64, 48) for T in poses]
    rgb0 = np.stack([f[0] for f in frames['plain']])
    rgb1, seg1 = np.stack([f[0] for f in frames['cluttered']]), np.stack([f[2] for f in frames['cluttered']])
    seg0 = np.stack([f[2] for f in frames['plain']])
    changed = (rgb0 != rgb1).any(-1)
    assert changed.mean() > 0.002
    assert (seg1[changed] == 0).all()
    np.testing.assert_array_equal(seg1[~changed], seg0[~changed])


def test_none_preset_has_no_clutter_and_renders_as_before():
    base = GenerationConfig(seed=0, frames_per_scene=2, resolution=(48, 36), qa_per_scene=2)
    explicit = dataclasses.replace(base, randomization=Randomization.preset('none'))
    a, b = render_sequence(base, 1), render_sequence(explicit, 1)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert Randomization.preset('none').clutter.enabled is False
    assert Randomization.preset('full').clutter.enabled is True


def test_zero_densities_add_nothing():
    config = dataclasses.replace(CONFIG, table_density=0, shelf_density=0, top_density=0, floor_density=0)
    assert _cluttered(2, config).clutter == []


@pytest.mark.parametrize('knob,value', [('table_density', -1.0), ('max_floor_fraction', 0.9),
                                        ('desk_size', (0.3, 0.1)), ('blob_fraction', 0.9)])
def test_knob_out_of_range_is_named(knob, value):
    with pytest.raises(GenerationError, match=knob):
        add_clutter(sample_scene(scene_rng(0, 0)), dataclasses.replace(CONFIG, **{knob: value}),
                    np.random.default_rng(0))


def test_vetted_meshes_have_finite_non_degenerate_bounds():
    for mesh in [k.mesh for k in HOUSEHOLD_MESHES] + list(BLOB_MESHES[::25]):
        lo, hi = mesh_vertex_bounds(mesh)
        size = hi - lo
        assert np.isfinite(size).all() and size.min() > 0.0, mesh
