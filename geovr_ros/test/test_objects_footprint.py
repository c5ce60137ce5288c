"""Boxes turned to an object's footprint: the reaches an observation keeps, the box an
instance fits to them, and what reads that box (sizes, markers, saving, frames)."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import make_pose, matrix_from_rpy
from geovr_ros.objects import (ObjectMap, ObjectMapConfig, ObjectMapper, ObjectObservation, ObservationConfig,
                               Vocabulary, extract_observations)
from geovr_ros.objects.footprint import (DIRECTIONS, OrientedBox, column_quantile, column_quantiles,
                                         fit_footprint_box, footprint_reach, horizontal_axes)
from geovr_ros.objects.relations import size_of

VOCAB = Vocabulary.from_names(['table', 'chair'], min_score=0.5)
EXACT = (0.0, 100.0)


def turned_z(yaw_deg: float) -> np.ndarray:
    """Rotation about map z (up) by yaw."""
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize('shape', [(1,), (2,), (37,), (500, 3), (32, 36)])
def test_column_quantiles_are_numpys_linear_quantiles_along_the_first_axis(shape):
    values = np.random.default_rng(len(shape)).normal(size=shape)
    quantiles = (0.0, 0.01, 0.05, 0.3, 0.5, 0.95, 1.0)
    for q, got in zip(quantiles, column_quantiles(values, quantiles)):
        np.testing.assert_allclose(got, np.quantile(values, q, axis=0), rtol=0, atol=1e-12)
        np.testing.assert_allclose(column_quantile(values, q), got, rtol=0, atol=0)


def box_points(size, yaw_deg, centre, n=4000, seed=0) -> np.ndarray:
    """(n, 3) points filling a box of `size` turned by yaw about z at `centre` (z up)."""
    local = np.random.default_rng(seed).uniform(-0.5, 0.5, (n, 3)) * np.asarray(size)
    return local @ turned_z(yaw_deg).T + np.asarray(centre)


def observation(points: np.ndarray, category='table', stamp=0.0, vertical_axis: int | None = 2) -> ObjectObservation:
    lo, hi = points.min(0), points.max(0)
    centre = (lo + hi) / 2
    if vertical_axis is None:
        reach = (np.full(DIRECTIONS, np.nan),) * 2
    else:
        reach = footprint_reach(points, centre, vertical_axis, EXACT)
    return ObjectObservation(category, 0.8, centre, lo, hi, 0, centre, stamp, np.zeros(0, int), len(points),
                             reach_low=reach[0], reach_high=reach[1])


def yaw_of(box: OrientedBox) -> float:
    """The box's first axis' angle from map x in degrees, folded into [0, 90)."""
    return float(np.degrees(np.arctan2(box.axes[1, 0], box.axes[0, 0]))) % 90.0


def test_horizontal_axes_turn_right_handed_about_the_vertical():
    for vertical in range(3):
        a, b = horizontal_axes(vertical)
        assert np.cross(np.eye(3)[a], np.eye(3)[b]) @ np.eye(3)[vertical] == pytest.approx(1.0)


@pytest.mark.parametrize('yaw', [0.0, 30.0, 45.0, 70.0])
def test_one_view_of_a_turned_table_gives_its_own_size_and_yaw(yaw):
    pts = box_points((1.2, 0.6, 0.75), yaw, (2.0, 1.0, 0.375))
    obs = observation(pts)
    box = fit_footprint_box(obs.centroid[None], obs.reach_low[None], obs.reach_high[None], 2,
                            (obs.box_min[2], obs.box_max[2]), (0.0, 1.0))
    assert sorted(box.size[:2]) == pytest.approx([0.6, 1.2], abs=0.05)
    assert box.size[2] == pytest.approx(0.75, abs=0.01)
    assert min(abs(yaw_of(box) - yaw % 90), 90 - abs(yaw_of(box) - yaw % 90)) <= 2.5 + 1e-9
    np.testing.assert_allclose(box.centre, [2.0, 1.0, 0.375], atol=0.03)
    np.testing.assert_allclose(box.axes.T @ box.axes, np.eye(3), atol=1e-12)
    assert np.linalg.det(box.axes) == pytest.approx(1.0)
    # every point lies in the box (0 and 100 % percentiles: the exact hull, up to the 5-degree steps)
    local = (pts - box.centre) @ box.axes
    assert np.all(np.abs(local) <= box.size / 2 + 0.06)


def test_partial_views_of_two_faces_unite_into_the_whole_box():
    """A 1.0 x 0.4 m cabinet turned 40 degrees, seen once along its long face and once along
    its short one: each view is a thin wall of points; the instance's box is the whole cabinet."""
    m = ObjectMap(ObjectMapConfig(vertical_axis=2, box_quantiles=(0.0, 1.0)))
    R, centre = turned_z(40.0), np.array([1.0, 2.0, 0.5])
    rng = np.random.default_rng(1)
    long_face = np.c_[rng.uniform(-0.5, 0.5, 800), np.full(800, -0.2), rng.uniform(-0.5, 0.5, 800)]
    short_face = np.c_[np.full(800, 0.5), rng.uniform(-0.2, 0.2, 800), rng.uniform(-0.5, 0.5, 800)]
    for t, face in enumerate((long_face, short_face)):
        m.add([observation(face @ R.T + centre, 'cabinet', stamp=float(t))])
    (inst,) = m.instances()
    assert sorted(inst.oriented_box.size[:2]) == pytest.approx([0.4, 1.0], abs=0.06)
    assert np.prod(inst.extent[:2]) > 1.7 * np.prod(inst.oriented_box.size[:2])   # axis-aligned: 0.77 x 0.95 m
    assert size_of(inst, 'length', None) == pytest.approx(1.0, abs=0.06)
    assert size_of(inst, 'width', np.array([0.0, 0.0, 1.0])) == pytest.approx(1.0, abs=0.06)
    assert size_of(inst, 'height', np.array([0.0, 0.0, -1.0])) == pytest.approx(1.0, abs=0.01)
    assert size_of(inst, 'volume', None) == pytest.approx(0.4, abs=0.05)


def test_without_a_vertical_axis_the_box_is_the_axis_aligned_one():
    pts = box_points((1.2, 0.6, 0.75), 30.0, (0.0, 0.0, 0.4))
    for config, obs in ((ObjectMapConfig(vertical_axis=None), observation(pts)),
                        (ObjectMapConfig(vertical_axis=2), observation(pts, vertical_axis=None))):
        m = ObjectMap(config)
        m.add([obs])
        (inst,) = m.instances(min_views=1)
        assert inst.footprint_box is None
        np.testing.assert_allclose(inst.oriented_box.size, inst.extent)
        np.testing.assert_allclose(inst.oriented_box.axes, np.eye(3))
        assert size_of(inst, 'length', None) == pytest.approx(np.max(inst.extent))


def test_setting_the_vertical_axis_later_summarises_the_instances_anew():
    m = ObjectMap(ObjectMapConfig(vertical_axis=None))
    m.add([observation(box_points((1.2, 0.6, 0.75), 45.0, (0.0, 0.0, 0.4)))])
    assert m.instances(min_views=1)[0].footprint_box is None
    m.config = ObjectMapConfig(vertical_axis=2)
    assert m.instances(min_views=1)[0].footprint_box is not None


def floor_and_turned_box(yaw_deg: float, camera: np.ndarray, K: np.ndarray, size=(1.0, 0.5, 0.4),
                         centre=(0.0, 0.15, 3.0), camera_height=0.4) -> np.ndarray:
    """Depth (96, 128) of a level camera at `camera` (map = optical axes, y down) over a floor
    `camera_height` below the map origin, with a box of `size` (x, y, z) standing on it at
    `centre`, turned by `yaw_deg` about the vertical (y) axis; ray-cast."""
    v, u = np.mgrid[0:96, 0:128].astype(float)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    R = matrix_from_rpy(0.0, np.radians(yaw_deg), 0.0)   # about y
    origin = R.T @ (camera - np.asarray(centre))
    local = rays @ R   # the rays in the box's frame
    half = np.asarray(size) / 2
    with np.errstate(divide='ignore', invalid='ignore'):
        floor = np.where(rays[..., 1] > 0, (camera_height - camera[1]) / rays[..., 1], np.inf)
        lo, hi = (-half - origin) / local, (half - origin) / local
        near, far = np.minimum(lo, hi).max(-1), np.maximum(lo, hi).min(-1)
    hit = np.where((near <= far) & (near > 0), near, np.inf)
    return np.minimum(floor, hit), np.isfinite(hit)


def test_a_turned_box_on_the_floor_seen_from_two_places_through_the_mapper():
    """Ray-cast views of a 1.0 x 0.4 m box turned 35 degrees about up, labelled where the box
    covers most of a cell: the footprint box has the box's own sides, the axis-aligned one not."""
    K = np.array([[110.0, 0.0, 63.5], [0.0, 110.0, 47.5], [0.0, 0.0, 1.0]])
    mapper = ObjectMapper(VOCAB, ObservationConfig(box_percentiles=(1.0, 99.0)),
                          ObjectMapConfig(vertical_axis=1, box_quantiles=(0.0, 1.0)))
    for t, x in enumerate((-0.8, 0.8)):
        camera = np.array([x, 0.0, 0.0])
        depth, on_box = floor_and_turned_box(35.0, camera, K)
        covered = on_box.reshape(12, 8, 16, 8).mean(axis=(1, 3)) > 0.5   # 8-px cells
        probs = np.zeros((12, 16, 3))
        probs[..., 2] = 1.0
        probs[covered] = [0.9, 0.0, 0.1]
        mapper.observe_probabilities(probs, depth, K, make_pose(np.eye(3), camera), t, float(t))
    (inst,) = mapper.map.instances()
    box = inst.oriented_box
    assert box.axes[:, 2] == pytest.approx([0.0, 1.0, 0.0])   # turned about the vertical axis only
    assert sorted(box.size[[0, 1]]) == pytest.approx([0.4, 1.0], abs=0.12)
    assert box.size[2] == pytest.approx(inst.extent[1])   # the height is the axis-aligned box's
    assert np.max(inst.extent[[0, 2]]) > 1.0   # cos 35 + 0.4 sin 35 = 1.05 m along x


def test_an_oriented_box_moves_rigidly():
    box = OrientedBox(np.array([1.0, 0.0, 0.5]), turned_z(20.0), np.array([1.0, 0.5, 0.3]))
    T = make_pose(turned_z(90.0), [0.0, 2.0, 0.0])
    moved = box.moved(T)
    np.testing.assert_allclose(moved.centre, [0.0, 3.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(moved.corners(), box.corners() @ T[:3, :3].T + T[:3, 3], atol=1e-12)
    assert moved.extent_along(np.array([0.0, 0.0, 1.0])) == pytest.approx(0.3)


def test_saved_maps_keep_the_footprint_and_older_maps_load_without_one():
    m = ObjectMap(ObjectMapConfig(vertical_axis=2))
    for t in range(2):
        m.add([observation(box_points((1.2, 0.6, 0.75), 30.0, (2.0, 1.0, 0.4), seed=t), stamp=float(t))])
    arrays, meta = m.to_arrays()
    (a,), (b,) = m.instances(), ObjectMap.from_arrays(arrays, meta).instances()
    np.testing.assert_allclose(a.oriented_box.corners(), b.oriented_box.corners())
    older = {k: v for k, v in arrays.items() if not k.startswith('obs_reach')}
    (c,) = ObjectMap.from_arrays(older, meta).instances()
    assert c.footprint_box is None and c.oriented_box.size == pytest.approx(a.extent)


def test_an_observations_centre_turns_with_the_map():
    """The same view in a map turned 40 degrees about up: the centroid (its footprint box's
    centre) is the turned one; the axis-aligned box's centre is not (it moves about 3 cm here)."""
    K = np.array([[110.0, 0.0, 63.5], [0.0, 110.0, 47.5], [0.0, 0.0, 1.0]])
    depth, on_box = floor_and_turned_box(35.0, np.zeros(3), K)
    covered = on_box.reshape(12, 8, 16, 8).mean(axis=(1, 3)) > 0.5
    probs = np.zeros((12, 16, 3))
    probs[..., 2] = 1.0
    probs[covered] = [0.9, 0.0, 0.1]
    turn = make_pose(matrix_from_rpy(0.0, np.radians(40.0), 0.0), np.zeros(3))   # about the vertical (y) axis
    centres = {}
    for centre in ('footprint', 'box'):
        config = ObservationConfig(centre=centre)
        (plain,) = extract_observations(probs, depth, K, np.eye(4), 0, 0.0, VOCAB, config, vertical_axis=1)
        (turned,) = extract_observations(probs, depth, K, turn, 0, 0.0, VOCAB, config, vertical_axis=1)
        centres[centre] = float(np.linalg.norm(turned.centroid - turn[:3, :3] @ plain.centroid))
    assert centres['footprint'] < 0.005 < 0.02 < centres['box']
    with pytest.raises(ValueError, match='centre'):
        ObservationConfig(centre='middle')
