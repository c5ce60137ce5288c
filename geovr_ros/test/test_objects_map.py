"""Object observations from cells and depth, and their fusion into the object map:
association, merging, relocation with the pose graph, saving (no ROS)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from geovr_ros.geometry import ShapeError, make_pose, matrix_from_rpy
from geovr_ros.objects import (ObjectMap, ObjectMapConfig, ObjectMapError, ObjectMapper, ObjectObservation,
                               ObservationConfig, Vocabulary, cell_grid_shape, connected_components,
                               extract_observations)

VOCAB = Vocabulary.from_names(['chair', 'table', 'lamp'], min_score=0.5)
K = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])  # 64x48 image


def obs(category='chair', centre=(0.0, 0.0, 2.0), half=0.2, keyframe=0, stamp=0.0, score=0.8, T_map_kf=None,
        floor=float('nan')):
    """An observation with a box of half sides `half` (a number or (3,)) around `centre` (map);
    floor: the coordinate of the floor its frame saw on the map's vertical axis."""
    c = np.asarray(centre, float)
    T = np.eye(4) if T_map_kf is None else T_map_kf
    return ObjectObservation(category, score, c, c - half, c + half, keyframe,
                             np.linalg.inv(T)[:3, :3] @ c + np.linalg.inv(T)[:3, 3], stamp, np.zeros(0, int), 100,
                             floor=floor)


def test_connected_components_are_four_connected_per_label():
    labels = np.array([[0, 0, 3, 1],
                       [3, 0, 3, 1],
                       [3, 3, 1, 3],
                       [0, 3, 3, 0]])
    comp, n = connected_components(labels, background=3)
    # the 0s top-left, the 1s right, the lone 1 (diagonals are not adjacent), two lone 0s below
    assert n == 5
    assert comp[0, 0] == comp[0, 1] == comp[1, 1] and comp[0, 3] == comp[1, 3]
    assert len({comp[0, 0], comp[0, 3], comp[2, 2], comp[3, 0], comp[3, 3]}) == 5
    assert (comp[labels == 3] == -1).all()
    snake = np.ones((9, 9), int)
    snake[1::2, :-1] = 0  # a long winding path of 1s
    snake[3::4, :] = 0
    snake[3::4, 0] = 1
    comp, n = connected_components(np.where(snake == 1, 1, 2), background=2)
    assert n == 1


def test_cell_grid_shape():
    assert cell_grid_shape(140, (320, 448)) == (10, 14)
    assert cell_grid_shape(48, (192, 256)) == (6, 8)
    with pytest.raises(ShapeError, match='47 cells'):
        cell_grid_shape(47, (192, 256))


def frame_with_chair(depth_value=2.0, background=6.0):
    """(probabilities (6, 8, 4), depth (48, 64)): a chair on the 2x2 cells (2..3, 2..3) whose
    pixels (16..31, 16..31) lie at `depth_value`; the rest of the image at `background`."""
    probs = np.zeros((6, 8, 4))
    probs[..., 3] = 1.0
    probs[2:4, 2:4] = [0.9, 0.0, 0.0, 0.1]
    depth = np.full((48, 64), background)
    depth[18:30, 18:30] = depth_value  # the object fills the middle of its cells
    return probs, depth


def test_observation_keeps_the_foreground_of_its_cells():
    probs, depth = frame_with_chair()
    depth[16, 16:20] = np.nan
    depth[17, 16:20] = 0.0  # invalid depth is ignored
    T = make_pose(matrix_from_rpy(0.0, 0.0, 0.3), [1.0, 2.0, 3.0])
    (o,) = extract_observations(probs, depth, K, T, keyframe_id=7, stamp=1.5, vocabulary=VOCAB,
                                config=ObservationConfig(box_percentiles=(0.0, 100.0)))
    # 12x12 pixels at 2 m (the 6 m background of the same cells is outside the depth band)
    assert o.category == 'chair' and o.n_points == 144 and o.keyframe_id == 7 and o.stamp == 1.5
    np.testing.assert_allclose(o.score, 0.9)
    u = np.arange(18, 30)
    xs = (u - K[0, 2]) / K[0, 0] * 2.0
    ys = (u - K[1, 2]) / K[1, 1] * 2.0
    corners = np.array([[x, y, 2.0] for x in (xs[0], xs[-1]) for y in (ys[0], ys[-1])])
    in_map = corners @ T[:3, :3].T + T[:3, 3]
    np.testing.assert_allclose(o.box_min, in_map.min(0), atol=1e-9)
    np.testing.assert_allclose(o.box_max, in_map.max(0), atol=1e-9)
    np.testing.assert_allclose(o.centroid, (in_map.min(0) + in_map.max(0)) / 2, atol=1e-9)
    np.testing.assert_allclose(o.centroid_keyframe, np.linalg.inv(T)[:3, :3] @ o.centroid + np.linalg.inv(T)[:3, 3])
    np.testing.assert_array_equal(o.cells, [18, 19, 26, 27])


def test_what_lies_just_behind_the_object_in_its_cells_is_cut_at_the_depth_gap():
    """A wall 0.4 m behind the chair is inside the depth band (0.5 m) but beyond the gap."""
    probs, depth = frame_with_chair(background=2.4)
    banded = dict(box_percentiles=(0.0, 100.0))
    (o,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**banded))
    assert o.n_points == 144 and o.extent[2] == pytest.approx(0.0)
    (o,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB,
                                ObservationConfig(depth_gap=0.0, depth_gap_relative=0.0, **banded))
    assert o.n_points == 16 * 16 and o.extent[2] == pytest.approx(0.4)  # the band alone keeps the wall
    depth[18:30, 18:30] += np.linspace(0.0, 0.3, 12)[None]  # a slanted surface: no gap, all of it kept
    (o,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**banded))
    assert o.n_points == 144 and o.extent[2] == pytest.approx(0.3)
    with pytest.raises(ValueError, match='depth_gap'):
        ObservationConfig(depth_gap=-0.1)


def floor_scene(camera_height=0.5, box=((-0.15, 0.2, 3.0), (0.15, 0.5, 3.3))):
    """Depth (48, 64) of a level camera (optical frame = map, y down) `camera_height` m above
    a floor, with an axis-aligned box (min corner, max corner) standing on it; ray-cast."""
    v, u = np.mgrid[0:48, 0:64].astype(float)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    with np.errstate(divide='ignore', invalid='ignore'):
        floor = np.where(rays[..., 1] > 0, camera_height / rays[..., 1], np.inf)
        lo, hi = np.asarray(box[0]) / rays, np.asarray(box[1]) / rays  # slab entry / exit per axis
        near, far = np.minimum(lo, hi).max(-1), np.maximum(lo, hi).min(-1)
    hit = np.where((near <= far) & (near > 0), near, np.inf)
    return np.minimum(floor, hit)  # optical z = ray parameter (rays have z = 1)


def test_the_floor_around_an_object_is_left_out_of_its_footprint_when_up_is_known():
    """A 30 cm box on the floor 3 m ahead, labelled with the 8-px cells around it (which also
    hold the floor in front and beside it): with the vertical axis known its box is the box's
    front face and top down to the floor; without it, 1.2 m of floor deep."""
    depth = floor_scene()
    probs = np.zeros((6, 8, 4))
    probs[..., 3] = 1.0
    probs[3:6, 3:5] = [0.9, 0.0, 0.0, 0.1]  # rows 24..47, columns 24..39
    exact = dict(box_percentiles=(0.0, 100.0), depth_gap=0.0, depth_gap_relative=0.0)  # rows of this
    # coarse floor lie 10 cm apart in depth: the band alone keeps them
    (plain,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**exact))
    assert plain.extent[2] > 1.0 and plain.extent[0] > 0.4  # the floor from 2.1 m on
    (o,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**exact),
                                vertical_axis=1)
    np.testing.assert_allclose(o.box_min, [-0.15, 0.2, 3.0], atol=0.03)
    np.testing.assert_allclose(o.box_max[:2], [0.15, 0.5], atol=0.03)  # down to the floor
    assert 3.0 <= o.box_max[2] <= 3.3  # the front face and what the camera sees of the top
    # the same with the map's y pointing up (the camera upside down in it): the sign comes from the camera
    flip = np.diag([1.0, -1.0, -1.0, 1.0])
    (o,) = extract_observations(probs, depth, K, flip, 0, 0.0, VOCAB, ObservationConfig(**exact), vertical_axis=1)
    np.testing.assert_allclose(o.box_min[:2], [-0.15, -0.5], atol=0.03)
    np.testing.assert_allclose(o.box_max, [0.15, -0.2, -3.0], atol=0.03)
    # a camera looking straight down tells nothing about up: nothing is left out
    down = make_pose(matrix_from_rpy(np.pi / 2, 0.0, 0.0), [0.0, 0.0, 0.0])
    (o,) = extract_observations(probs, depth, K, down, 0, 0.0, VOCAB, ObservationConfig(**exact), vertical_axis=1)
    np.testing.assert_allclose(o.extent, np.abs(down[:3, :3]) @ plain.extent, atol=1e-9)
    # only floor in the cells: the frame's floor is no object ...
    probs[3:6, 3:5] = [0.0, 0.0, 0.0, 1.0]
    probs[5, 0:2] = [0.9, 0.0, 0.0, 0.1]
    assert extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**exact),
                                vertical_axis=1) == []
    # ... and without that rule the lowest layer is the object itself (a rug) and is kept
    (rug,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB,
                                  ObservationConfig(**exact, floor_band=0.0), vertical_axis=1)
    assert rug.extent[2] > 0.1 and rug.box_min[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match='support_band'):
        ObservationConfig(support_band=-0.01)


def test_the_floor_is_no_object_and_what_stands_on_it_reaches_down_to_it():
    """A level camera 1.2 m above a floor, a 30 cm high box on it 6 m ahead: the namer calls the
    floor's cells "lamp" (as the head trained on renders calls real carpets "trash bin"). With the
    map's up known, the frame's floor is found (`geometry.floor_distance`: the lowest large
    horizontal surface) and left out: no lamp; the box keeps its height down to the floor. Off (floor_band 0): a lamp of floor."""
    depth = floor_scene(camera_height=1.2, box=((-0.3, 0.9, 6.0), (0.3, 1.2, 6.3)))   # the floor from 5 m on
    probs = np.zeros((6, 8, 4))
    probs[..., 2] = 0.9   # every cell "lamp" ...
    probs[..., 3] = 0.1
    probs[:3] = [0.0, 0.0, 0.0, 1.0]   # ... below the horizon
    probs[4:6, 3:5] = [0.9, 0.0, 0.0, 0.1]   # the box's cells "chair"
    exact = dict(box_percentiles=(0.0, 100.0), depth_gap=0.0, depth_gap_relative=0.0)
    seen = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**exact),
                                vertical_axis=1)
    assert [o.category for o in seen] == ['chair']
    (chair,) = seen
    np.testing.assert_allclose([chair.box_min[1], chair.box_max[1]], [0.9, 1.2], atol=0.03)   # top to floor
    assert chair.centroid[1] == pytest.approx(1.05, abs=0.03)
    assert chair.floor == pytest.approx(1.2, abs=0.03)   # the floor's coordinate on the map's y (up is -y)
    off = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB,
                               ObservationConfig(**exact, floor_band=0.0), vertical_axis=1)
    assert sorted(o.category for o in off) == ['chair', 'lamp']
    lamp = next(o for o in off if o.category == 'lamp')
    assert lamp.box_min[1] > 1.1   # a "lamp" lying on the floor
    # a frame of wall only (1.5 m ahead, filling the view) holds no floor: nothing is left out
    wall = np.full((48, 64), 1.5)
    probs[:] = [0.9, 0.0, 0.0, 0.1]
    (whole,) = extract_observations(probs, wall, K, np.eye(4), 0, 0.0, VOCAB, ObservationConfig(**exact),
                                    vertical_axis=1)
    assert whole.n_points == 48 * 64
    with pytest.raises(ValueError, match='floor_band'):
        ObservationConfig(floor_band=-0.01)


def test_the_mapper_passes_the_maps_vertical_axis_to_its_observations():
    depth = floor_scene()
    probs = np.zeros((6, 8, 4))
    probs[..., 3] = 1.0
    probs[3:6, 3:5] = [0.9, 0.0, 0.0, 0.1]
    extents = {}
    for axis in (None, 1):
        config = ObservationConfig(box_percentiles=(0.0, 100.0), depth_gap=0.0, depth_gap_relative=0.0)
        mapper = ObjectMapper(VOCAB, config, ObjectMapConfig(vertical_axis=axis))
        (o,) = mapper.observe_probabilities(probs, depth, K, np.eye(4), 0, 0.0)
        extents[axis] = o.extent
    assert extents[None][2] > 1.0 and extents[1][2] < 0.3


def test_observation_in_a_keyframe_other_than_the_frame():
    probs, depth = frame_with_chair()
    T_map_cam, T_map_kf = make_pose(np.eye(3), [0.5, 0.0, 0.0]), make_pose(np.eye(3), [0.0, 0.0, -1.0])
    (o,) = extract_observations(probs, depth, K, T_map_cam, 3, 0.0, VOCAB, T_map_keyframe=T_map_kf)
    np.testing.assert_allclose(o.centroid_keyframe, o.centroid - [0.0, 0.0, -1.0])


def test_bad_shapes_are_refused():
    probs, depth = frame_with_chair()
    with pytest.raises(ShapeError, match='not a whole number of cells'):
        extract_observations(probs, depth[:47], K, np.eye(4), 0, 0.0, VOCAB)
    with pytest.raises(ShapeError, match=r'\(Hc, Wc, 4\)'):
        extract_observations(probs[..., :3], depth, K, np.eye(4), 0, 0.0, VOCAB)
    with pytest.raises(ValueError, match='T_map_cam'):
        extract_observations(probs, depth, K, np.full((4, 4), np.nan), 0, 0.0, VOCAB)


def test_repeated_observations_fuse_into_one_instance():
    m = ObjectMap()
    for i, x in enumerate([0.0, 0.1, 0.2]):
        assert m.add([obs(centre=(x, 0.0, 2.0), keyframe=i, stamp=float(i), score=0.9)]) == [1]
    (inst,) = m.instances()
    assert inst.n_views == 3 and inst.first_seen == 0.0 and inst.last_seen == 2.0 and inst.keyframes == (0, 1, 2)
    np.testing.assert_allclose(inst.centroid, [0.1, 0.0, 2.0])
    np.testing.assert_allclose(inst.confidence, 0.9 * 3 / (3 + 2))
    # box quantiles 0.1 / 0.9 of the corners -0.2, -0.1, 0.0 and 0.2, 0.3, 0.4 along x
    np.testing.assert_allclose(inst.box_min, [-0.18, -0.2, 1.8])
    np.testing.assert_allclose(inst.box_max, [0.38, 0.2, 2.2])
    assert m.instances()[0] is inst  # unchanged: the same (cached) instance, its arrays read-only
    with pytest.raises(ValueError):
        inst.centroid[0] = 5.0
    m.add([obs(centre=(0.4, 0.0, 2.0), keyframe=3, stamp=3.0, score=0.9)])
    np.testing.assert_allclose(m.instances()[0].centroid, [0.175, 0.0, 2.0])


def test_size_quantiles_measure_less_of_views_that_lie_apart_and_associate_as_before():
    """Views of one 0.4 m object placed 0.1 m apart each (the scatter of a learned depth): the
    union of their boxes is wider than the object, less so at size quantiles 0.25 / 0.75; the
    views join one instance either way, a map saved with them keeps them."""
    sizes = {}
    for quantiles in (None, (0.25, 0.75)):
        m = ObjectMap(ObjectMapConfig(size_quantiles=quantiles))
        for i, x in enumerate([0.0, 0.1, 0.2]):
            assert m.add([obs(centre=(x, 0.0, 2.0), keyframe=i, stamp=float(i), score=0.9)]) == [1]
        (inst,) = m.instances()
        sizes[quantiles] = inst.box_max[0] - inst.box_min[0]
        with pytest.raises(ValueError):
            inst.box_min[0] = 0.0   # read-only, as every instance's arrays
    assert sizes[None] == pytest.approx(0.56) and sizes[(0.25, 0.75)] == pytest.approx(0.50)
    arrays, meta = m.to_arrays()
    assert ObjectMap.from_arrays(arrays, json.loads(json.dumps(meta))).config.size_quantiles == (0.25, 0.75)
    with pytest.raises(ValueError, match='size_quantiles'):
        ObjectMapConfig(size_quantiles=(0.8, 0.2))


def test_the_same_frame_counts_one_view_and_tentative_instances_are_filtered():
    m = ObjectMap()
    m.add([obs(stamp=1.0), obs(centre=(0.1, 0.0, 2.0), stamp=1.0), obs('table', centre=(3.0, 0.0, 2.0), stamp=1.0)])
    assert m.instances() == []  # seen in one frame only: tentative (min_views 2)
    chair, table = m.instances(min_views=1)
    assert chair.n_views == 1 and chair.category == 'chair' and table.category == 'table'


def test_two_chairs_two_metres_apart_stay_two_and_categories_never_mix():
    m = ObjectMap()
    for t in range(4):
        ids = m.add([obs(centre=(0.0, 0.0, 2.0), stamp=t), obs(centre=(2.0, 0.0, 2.0), stamp=t),
                     obs('table', centre=(0.05, 0.0, 2.0), stamp=t)])
        assert ids == [1, 2, 3]
    assert [(i.category, i.n_views) for i in m.instances()] == [('chair', 4), ('chair', 4), ('table', 4)]


def test_a_large_object_seen_in_parts_is_one_instance_by_overlap():
    m = ObjectMap()
    # a 2 m table seen as its left and right halves: centroids 0.8 m apart, boxes overlapping
    left = ObjectObservation('table', 0.8, np.array([-0.4, 0, 2.0]), np.array([-1.0, -0.4, 1.6]),
                             np.array([0.2, 0.4, 2.4]), 0, np.zeros(3), 0.0, np.zeros(0, int), 50)
    right = ObjectObservation('table', 0.8, np.array([0.4, 0, 2.0]), np.array([-0.2, -0.4, 1.6]),
                              np.array([1.0, 0.4, 2.4]), 1, np.zeros(3), 1.0, np.zeros(0, int), 50)
    m.add([left])
    m.add([right])
    (inst,) = m.instances()
    np.testing.assert_allclose(inst.centroid, [0.0, 0.0, 2.0])


def test_vertical_axis_joins_parts_stacked_above_each_other():
    shade, foot = obs('lamp', centre=(0.0, 0.0, 1.5), half=0.2), obs('lamp', centre=(0.05, 0.0, 0.05), half=0.1)
    plain = ObjectMap()
    plain.add([shade])
    plain.add([foot])
    assert len(plain) == 2
    upright = ObjectMap(ObjectMapConfig(vertical_axis=2))
    upright.add([shade])
    upright.add([foot])
    assert len(upright) == 1


def test_relocate_moves_instances_with_their_keyframe_and_merges_what_meets():
    m = ObjectMap()
    T1 = make_pose(np.eye(3), [0.0, 0.0, 0.0])
    m.add([obs(centre=(0.0, 0.0, 2.0), keyframe=1, stamp=1.0)])
    m.add([obs(centre=(0.0, 0.0, 2.0), keyframe=1, stamp=2.0)])
    # keyframe 5 (after drift) put the same chair 1.5 m off, and a table
    T5 = make_pose(np.eye(3), [1.5, 0.0, 0.0])
    m.add([obs(centre=(1.5, 0.0, 2.0), keyframe=5, stamp=3.0, T_map_kf=T5),
           obs('table', centre=(3.0, 0.0, 2.0), keyframe=5, stamp=3.0, T_map_kf=T5)])
    m.add([obs(centre=(1.5, 0.0, 2.0), keyframe=5, stamp=4.0, T_map_kf=T5),
           obs('table', centre=(3.0, 0.0, 2.0), keyframe=5, stamp=4.0, T_map_kf=T5)])
    assert [i.category for i in m.instances()] == ['chair', 'chair', 'table']
    # loop closure: keyframe 5 is really at the origin; keyframe 1 stays
    assert m.relocate({5: np.eye(4), 1: T1}) == 3
    chair, table = m.instances()
    assert chair.instance_id == 1 and chair.n_views == 4 and chair.first_seen == 1.0 and chair.last_seen == 4.0
    np.testing.assert_allclose(chair.centroid, [0.0, 0.0, 2.0])
    np.testing.assert_allclose(table.centroid, [1.5, 0.0, 2.0])
    assert m.relocate({99: np.eye(4)}) == 0  # a keyframe no instance uses
    with pytest.raises(ValueError, match='keyframe 5'):
        m.relocate({5: np.zeros((3, 3))})


def test_association_compares_where_an_instance_is_now_after_relocate_and_new_views():
    """Association reads each instance's cached summary: it must follow the instance when a
    loop closure moves it and when a view joins it."""
    m = ObjectMap()
    [chair] = m.add([obs(centre=(0.0, 0.0, 2.0), keyframe=1, stamp=1.0)])
    m.relocate({1: make_pose(np.eye(3), [3.0, 0.0, 0.0])})                # now at x = 3
    assert m.add([obs(centre=(3.05, 0.0, 2.0), keyframe=2, stamp=2.0)]) == [chair]
    assert m.add([obs(centre=(0.0, 0.0, 2.0), keyframe=2, stamp=3.0)]) != [chair]   # where it was: another
    near_new_view = m.add([obs(centre=(3.6, 0.0, 2.0), keyframe=2, stamp=4.0, half=0.5)])
    assert near_new_view == [chair] and len(m) == 2


def test_round_trip_through_plain_arrays_and_json(tmp_path):
    m = ObjectMap(ObjectMapConfig(max_observations=3, vertical_axis=1))
    rng = np.random.default_rng(3)
    for t in range(6):
        m.add([obs(centre=(rng.normal() * 0.05, 0.0, 2.0), keyframe=t, stamp=t, score=0.5 + 0.05 * t),
               obs('table', centre=(2.0, 0.0, 1.0 + 0.01 * t), keyframe=t, stamp=t)])
    arrays, meta = m.to_arrays()
    np.savez(tmp_path / 'objects.npz', **arrays)
    (tmp_path / 'objects.json').write_text(json.dumps(meta))
    with np.load(tmp_path / 'objects.npz', allow_pickle=False) as f:
        loaded = ObjectMap.from_arrays(dict(f), json.loads((tmp_path / 'objects.json').read_text()))
    assert loaded.config == m.config and len(loaded) == 2
    for a, b in zip(m.instances(), loaded.instances()):
        assert (a.instance_id, a.category, a.n_views, a.first_seen, a.last_seen, a.keyframes) == \
               (b.instance_id, b.category, b.n_views, b.first_seen, b.last_seen, b.keyframes)
        np.testing.assert_allclose([a.confidence, *a.centroid, *a.box_min, *a.box_max],
                                   [b.confidence, *b.centroid, *b.box_min, *b.box_max])
    assert len(m.instances()[0].keyframes) == 3  # max_observations kept
    loaded.add([obs(centre=(0.0, 0.0, 2.0), keyframe=9, stamp=9.0)])  # ids continue
    assert loaded.instances()[0].n_views == 7 and len(loaded) == 2


@pytest.mark.parametrize('damage, message', [
    (lambda a, m: a.pop('obs_point_kf'), "lack 'obs_point_kf'"),
    (lambda a, m: a.__setitem__('obs_score', a['obs_score'][:-1]), "'obs_score' has shape"),
    (lambda a, m: a.__setitem__('obs_point_map', a['obs_point_map'] * np.nan), "'obs_point_map' must be finite"),
    (lambda a, m: a.__setitem__('instance_id', a['instance_id'] * 0 + 1), 'unique'),
    (lambda a, m: m.__setitem__('format', 'something else'), 'not a geovr_object_map'),
    (lambda a, m: a.__setitem__('obs_instance', a['obs_instance'] + 100), 'obs_instance names'),
    (lambda a, m: a.__setitem__('obs_reach_low', a['obs_reach_low'][:, :5]), "'obs_reach_low' has shape"),
    (lambda a, m: a.__setitem__('obs_reach_high', np.full_like(a['obs_reach_high'], np.inf)), "'obs_reach_high' must be finite"),
])
def test_damaged_arrays_are_refused_naming_what(damage, message):
    m = ObjectMap()
    m.add([obs(stamp=0.0), obs('table', centre=(2.0, 0.0, 2.0), stamp=0.0)])
    arrays, meta = m.to_arrays()
    damage(arrays, meta)
    with pytest.raises(ObjectMapError, match=message):
        ObjectMap.from_arrays(arrays, meta)


def test_what_stands_on_the_floor_reaches_down_to_it_or_to_what_holds_it():
    """A floor lamp whose views named only the shade (1.1-1.5 m over a floor at z = 0) is its
    whole height; a lamp over a table stops at the table's top; a monitor (not in on_floor)
    and a lamp whose views saw no floor stay as seen; without on_floor nothing moves."""
    shade = dict(half=(0.2, 0.2, 0.2), floor=0.0)
    config = ObjectMapConfig(vertical_axis=2, on_floor=('lamp', 'table'))
    m = ObjectMap(config)
    for t in range(3):
        m.add([obs('lamp', centre=(0.0, 0.0, 1.3), stamp=t, **shade),
               obs('lamp', centre=(3.0, 0.0, 1.3), stamp=t, **shade),
               obs('table', centre=(3.0, 0.0, 0.7), half=(0.6, 0.4, 0.05), stamp=t, floor=0.0),
               obs('monitor', centre=(6.0, 0.0, 1.0), stamp=t, floor=0.0),
               obs('lamp', centre=(9.0, 0.0, 1.3), stamp=t, half=0.2)])
    floor_lamp, desk_lamp, table, monitor, unknown = m.instances()
    np.testing.assert_allclose([floor_lamp.box_min[2], floor_lamp.box_max[2], floor_lamp.centroid[2]],
                               [0.0, 1.5, 0.75], atol=1e-9)
    assert floor_lamp.oriented_box.extent_along(np.array([0.0, 0.0, 1.0])) == pytest.approx(1.5)
    np.testing.assert_allclose(floor_lamp.centroid[:2], [0.0, 0.0], atol=1e-9)
    assert desk_lamp.box_min[2] == pytest.approx(0.75) and desk_lamp.centroid[2] == pytest.approx(1.125)
    assert table.box_min[2] == pytest.approx(0.0)   # the table's top alone: down to the floor
    assert monitor.box_min[2] == pytest.approx(0.8) and unknown.box_min[2] == pytest.approx(1.1)
    plain = ObjectMap(ObjectMapConfig(vertical_axis=2))
    plain.add([obs('lamp', centre=(0.0, 0.0, 1.3), **shade)] * 2)
    assert plain.instances(min_views=1)[0].box_min[2] == pytest.approx(1.1)
    # the same with the map's vertical axis pointing down (y down, optical-aligned): the floor at y = 1.2
    down = ObjectMap(ObjectMapConfig(vertical_axis=1, on_floor=('lamp',)))
    down.add([obs('lamp', centre=(0.0, -0.1, 3.0), half=0.2, floor=1.2)])
    (lamp,) = down.instances(min_views=1)
    np.testing.assert_allclose([lamp.box_min[1], lamp.box_max[1], lamp.centroid[1]], [-0.3, 1.2, 0.45], atol=1e-9)
    # the floor moves with the instance: a relocation that lifts its keyframe lifts its floor
    lifted = np.eye(4)
    lifted[2, 3] = 0.5
    m.relocate({0: lifted})
    assert m.instances()[0].box_min[2] == pytest.approx(0.5)
    # saved and loaded, the floors come back; a map saved before them loads with none seen
    arrays, meta = m.to_arrays()
    again = ObjectMap.from_arrays(arrays, json.loads(json.dumps(meta)))
    assert again.config == m.config and again.instances()[0].box_min[2] == pytest.approx(0.5)
    arrays.pop('obs_floor_drop')
    assert ObjectMap.from_arrays(arrays, meta).instances()[0].box_min[2] == pytest.approx(1.6)
    with pytest.raises(ValueError, match='on_floor'):
        ObjectMapConfig(on_floor='lamp')


def test_mapper_from_imagenet_logits_of_a_frame():
    from geovr_ros.objects import load_vocabulary
    vocab = load_vocabulary()
    logits = np.zeros((48, 1000))  # 6x8 cells of a 48x64 image
    for cell in (18, 19, 26, 27):
        logits[cell, 559] = 15.0  # folding chair
    _, depth = frame_with_chair()
    mapper = ObjectMapper(vocab)
    pooled = np.exp(15.0 * 4 / 9)   # each block cell's 3x3 window (pool_cells) holds the 4 chair cells of 9
    for t in range(2):
        (o,) = mapper.observe_logits(logits, depth, K, np.eye(4), t, float(t))
        assert o.category == 'chair' and sorted(o.cells.tolist()) == [18, 19, 26, 27]
        np.testing.assert_allclose(o.score, (pooled + 2) / (pooled + 999))  # 3 chair classes; alone: > 0.99
    (inst,) = mapper.map.instances()
    assert inst.n_views == 2 and inst.category == 'chair'
    with pytest.raises(ShapeError):
        mapper.observe_logits(logits[:47], depth, K, np.eye(4), 2, 2.0)


def test_import_leaves_rclpy_torch_cv2_and_the_training_package_out():
    code = ('import sys, geovr_ros.objects; '
            'bad = [m for m in ("rclpy", "torch", "cv2", "geovr_training") if m in sys.modules]; '
            'assert not bad, bad')
    subprocess.run([sys.executable, '-c', code], check=True)


def test_the_association_radius_grows_with_the_object():
    """Partial views of a sofa, boxes 1.2 m long whose centres land 1.1 m apart (boxes barely
    overlapping), are one sofa; two 0.4 m chairs 0.9 m apart stay two (radius max(0.5, the
    longest side))."""
    m = ObjectMap()
    m.add([obs('sofa', centre=(0.0, 0.0, 2.0), half=0.6, stamp=0.0)])
    m.add([obs('sofa', centre=(1.1, 0.0, 2.0), half=0.6, stamp=1.0)])
    assert [i.n_views for i in m.instances(min_views=1)] == [2]
    m.add([obs(centre=(0.0, 0.0, 4.0), stamp=2.0), obs(centre=(0.9, 0.0, 4.0), stamp=2.0)])
    assert len(m.instances(min_views=1, category='chair')) == 2
    assert len(ObjectMap(ObjectMapConfig(size_fraction=0.0)).add(
        [obs('sofa', centre=(0.0, 0.0, 2.0), half=0.6), obs('sofa', centre=(1.1, 0.0, 2.0), half=0.6)])) == 2
    with pytest.raises(ValueError, match='size_fraction'):
        ObjectMapConfig(size_fraction=-1.0)


def _camera_at(x=0.0, y=0.0, z=0.0):
    T = np.eye(4)
    T[:3, 3] = (x, y, z)
    return T


def test_frames_that_should_have_named_an_instance_and_did_not_lower_its_confidence():
    m = ObjectMap()
    for t in range(2):
        m.add([obs(centre=(0.0, 0.0, 2.0), keyframe=t, stamp=float(t), score=0.9)])
    assert m.instances()[0].n_missed == 0
    np.testing.assert_allclose(m.instances()[0].confidence, 0.9 * 2 / (2 + 2))
    surface = np.full((48, 64), 2.0)   # the chair's surface where it was: in view, not hidden
    assert m.note_missed([], surface, K, np.eye(4), 2.0) == 1
    assert m.note_missed([], surface, K, np.eye(4), 2.0) == 0   # a frame counts once
    assert m.note_missed([], np.full((48, 64), 6.0), K, np.eye(4), 3.0) == 1   # the wall behind where it stood
    (inst,) = m.instances()
    assert inst.n_missed == 2 and inst.n_views == 2
    np.testing.assert_allclose(inst.confidence, 0.9 * 2 / (2 + 2) * 2 / (2 + 2))   # named in 2 of 4 views
    # not counted: named in the frame; hidden by something nearer; depth unknown; outside the
    # image; behind the camera; farther than 1.5x the 2 m it was named from
    assert m.note_missed([inst.instance_id], surface, K, np.eye(4), 4.0) == 0
    assert m.note_missed([], np.full((48, 64), 1.0), K, np.eye(4), 5.0) == 0
    assert m.note_missed([], np.full((48, 64), np.nan), K, np.eye(4), 6.0) == 0
    assert m.note_missed([], surface, K, _camera_at(x=3.0), 7.0) == 0
    assert m.note_missed([], surface, K, _camera_at(z=2.5), 8.0) == 0
    assert m.note_missed([], np.full((48, 64), 5.0), K, _camera_at(z=-1.5), 9.0) == 0
    assert m.instances()[0].n_missed == 2


def test_negative_evidence_off_and_the_detection_rate_filter():
    def chair_map(config):
        m = ObjectMap(config)
        for t in range(2):
            m.add([obs(keyframe=t, stamp=float(t), score=0.9)])
        for t in range(2, 8):
            m.note_missed([], np.full((48, 64), 2.0), K, np.eye(4), float(t))
        return m
    off = chair_map(ObjectMapConfig(negative_evidence=False)).instances()[0]
    assert off.n_missed == 6   # still counted, not used
    np.testing.assert_allclose(off.confidence, 0.9 * 2 / (2 + 2))
    assert chair_map(ObjectMapConfig(min_detection_rate=0.3)).instances() == []   # named in 2 of 8 views
    assert len(chair_map(ObjectMapConfig(min_detection_rate=0.25)).instances()) == 1
    with pytest.raises(ValueError, match='min_detection_rate'):
        ObjectMapConfig(min_detection_rate=1.5)
    with pytest.raises(ValueError, match='miss_margin'):
        ObjectMapConfig(miss_margin=0.5)


def test_the_mapper_counts_the_frames_that_miss_an_instance_and_the_map_keeps_the_count(tmp_path):
    probs, depth = frame_with_chair()
    mapper = ObjectMapper(VOCAB)
    for t in range(2):
        mapper.observe_probabilities(probs, depth, K, np.eye(4), t, float(t))
    nothing = np.zeros_like(probs)
    nothing[..., 3] = 1.0   # every cell background: the chair, in view at 2 m, not named
    mapper.observe_probabilities(nothing, depth, K, np.eye(4), 2, 2.0)
    (inst,) = mapper.map.instances()
    assert (inst.n_views, inst.n_missed) == (2, 1)
    arrays, meta = mapper.map.to_arrays()
    assert ObjectMap.from_arrays(arrays, meta).instances()[0].n_missed == 1
    older = {k: v for k, v in arrays.items() if k != 'n_missed'}   # a map saved before the count
    assert ObjectMap.from_arrays(older, meta).instances()[0].n_missed == 0
    with pytest.raises(ObjectMapError, match='n_missed'):
        ObjectMap.from_arrays({**arrays, 'n_missed': np.array([-1])}, meta)
