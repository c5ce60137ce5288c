"""Metric scale from the floor (`geovr_ros.geometry.floor`) on depth maps ray-cast from a camera at
a known height, pitched down, looking at a floor, a table top and a wall."""
from __future__ import annotations

import numpy as np
import pytest

from geovr_ros.geometry import FloorScale, ShapeError, floor_distance, matrix_from_rpy, up_from_depth, vector_angle

WIDTH, HEIGHT, FOCAL = 256, 192, 200.0
K = np.array([[FOCAL, 0, (WIDTH - 1) / 2], [0, FOCAL, (HEIGHT - 1) / 2], [0, 0, 1]])


def camera(pitch_deg: float) -> np.ndarray:
    """R_world_cam (3, 3): world z up, the optical camera looking along world x, pitched down."""
    optical_in_level = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], float)   # optical axes in (x fwd, y left, z up)
    return matrix_from_rpy(0.0, np.radians(pitch_deg), 0.0) @ optical_in_level


def ray_cast(height: float, pitch_deg: float = 20.0, table: tuple[float, float, float] | None = None,
             wall_m: float = 6.0, floor: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(depth (H, W) metres, up (3,) in the optical frame) of a camera `height` m above a floor
    (world z = 0), a wall `wall_m` ahead and optionally a table top (top height, near x, far x)
    spanning y in [-1.5, 1.5] m; floor=False leaves no floor (the rays miss: NaN)."""
    R = camera(pitch_deg)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(float)
    rays = np.stack([(u - K[0, 2]) / FOCAL, (v - K[1, 2]) / FOCAL, np.ones_like(u)], -1) @ R.T   # world directions
    origin = np.array([0.0, 0.0, height])
    t = np.full(u.shape, np.inf)
    down = rays[..., 2] < 0
    if floor:
        t = np.where(down, -height / np.where(down, rays[..., 2], -1), t)
    t = np.minimum(t, np.where(rays[..., 0] > 0, wall_m / np.where(rays[..., 0] > 0, rays[..., 0], 1), np.inf))
    if table is not None:
        top, near, far = table
        t_top = np.where(down, (top - height) / np.where(down, rays[..., 2], -1), np.inf)
        hit = origin + t_top[..., None] * rays
        on_top = down & (hit[..., 0] >= near) & (hit[..., 0] <= far) & (np.abs(hit[..., 1]) <= 1.5)
        t = np.where(on_top & (t_top < t), t_top, t)
    depth = t * (rays @ R[:, 2])     # distance along the ray -> along optical z
    depth[~np.isfinite(depth)] = np.nan
    return depth.astype(np.float32), R.T @ np.array([0.0, 0.0, 1.0])


@pytest.mark.parametrize('height, pitch', [(1.2, 20.0), (0.35, 10.0), (1.6, 35.0)])
def test_floor_distance_is_the_camera_height_at_any_scale(height, pitch):
    depth, up = ray_cast(height, pitch)
    estimate = floor_distance(depth, K, up)
    assert estimate is not None and estimate.distance == pytest.approx(height, rel=0.02)
    assert 0.05 <= estimate.fraction <= 1
    wrong_scale = floor_distance(depth * 2.5, K, up)      # depth 2.5x too far: the floor too
    assert wrong_scale.distance == pytest.approx(2.5 * height, rel=0.02)


def test_a_table_top_with_more_pixels_than_the_floor_is_not_the_floor():
    depth, up = ray_cast(1.2, 30.0, table=(0.75, 0.9, 4.0))
    top = np.abs(depth - ray_cast(1.2, 30.0, table=(0.75, 0.9, 4.0), floor=False)[0]) < 1e-6
    assert top.mean() > 0.3                                      # the table fills much of the view
    assert floor_distance(depth, K, up).distance == pytest.approx(1.2, rel=0.02)


def test_no_floor_in_view_gives_none():
    depth, up = ray_cast(1.2, 20.0, floor=False)                 # the wall alone (NaN below the horizon)
    assert floor_distance(depth, K, up) is None
    assert floor_distance(np.full((HEIGHT, WIDTH), np.nan, np.float32), K, up) is None


def test_a_surface_with_much_lower_ground_around_it_is_refused():
    """A table whose floor shows in a strip (less than a quarter of the table's pixels) would
    be taken as the floor by the histogram alone; the pixels below it refuse it."""
    depth, up = ray_cast(1.2, 45.0, table=(0.75, 0.2, 6.0))
    assert floor_distance(depth, K, up, max_lower_fraction=1.0).distance == pytest.approx(0.45, rel=0.03)
    assert floor_distance(depth, K, up) is None


def test_floor_distance_rejects_bad_input():
    depth, up = ray_cast(1.2)
    with pytest.raises(ShapeError, match='depth must be'):
        floor_distance(depth[None], K, up)
    with pytest.raises(ShapeError, match='zero vector'):
        floor_distance(depth, K, np.zeros(3))
    with pytest.raises(ShapeError, match='up must'):
        floor_distance(depth, K, np.array([0.0, np.nan, 1.0]))


def test_floor_scale_is_the_running_median_of_the_frames_that_saw_the_floor():
    depth, up = ray_cast(1.2, 20.0)
    scale = FloorScale(camera_height=1.2, window=5)
    assert scale.scale == 1.0                                    # nothing seen yet
    blind, _ = ray_cast(1.2, 20.0, floor=False)
    assert scale.update(blind, K, up) == 1.0 and scale.frames_with_floor == 0
    for _ in range(3):
        factor = scale.update(depth * 0.5, K, up)                # the model's depth half the truth
    assert factor == pytest.approx(2.0, rel=0.02) and scale.frames_with_floor == 3
    assert scale.update(depth * 0.25, K, up) == pytest.approx(2.0, rel=0.02)   # one odd frame: the median holds
    scale.reset()
    assert scale.scale == 1.0 and scale.frames_with_floor == 0
    for bad in (0.0, -1.0, float('nan')):
        with pytest.raises(ValueError, match='camera_height'):
            FloorScale(bad)


def test_the_floor_is_found_alike_at_any_resolution():
    """The same view at 256x192 and resized to 1024x768: the same distance (the sampling step
    grows with the width, so the normals span the same angle)."""
    import cv2
    depth, up = ray_cast(1.2, 20.0, table=(0.75, 0.9, 4.0))
    large = cv2.resize(depth, (4 * WIDTH, 4 * HEIGHT), interpolation=cv2.INTER_NEAREST)
    K_large = K.copy()
    K_large[:2] *= 4
    K_large[:2, 2] = 4 * K[:2, 2] + 1.5
    small, big = floor_distance(depth, K, up), floor_distance(large, K_large, up)
    assert small is not None and big is not None
    assert big.distance == pytest.approx(small.distance, rel=0.01) and big.fraction == pytest.approx(small.fraction, abs=0.05)


def rolled(depth: np.ndarray, up: np.ndarray, roll_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same view through a camera rolled about its optical axis (the image turned about its
    centre, square pixels): (depth, up in the rolled optical frame, K)."""
    import cv2
    turn = cv2.getRotationMatrix2D(((WIDTH - 1) / 2, (HEIGHT - 1) / 2), roll_deg, 1.0)
    turned = cv2.warpAffine(depth, turn, (WIDTH, HEIGHT), flags=cv2.INTER_NEAREST, borderValue=float('nan'))
    a = np.radians(roll_deg)   # image content turned by +a (counter-clockwise on screen): the camera by -a
    R = np.array([[np.cos(a), np.sin(a), 0.0], [-np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    return turned, R @ up, K


@pytest.mark.parametrize('pitch, roll, table', [(20.0, 0.0, None), (25.0, 15.0, None), (10.0, -20.0, (0.75, 0.9, 4.0))])
def test_up_from_depth_is_the_up_a_tilted_camera_sees(pitch, roll, table):
    """A camera pitched and rolled up to 30 deg from level: the floor's and a table top's
    normals give up within 1.5 deg (the turned image's jagged edges), where the camera's optical
    -y is that tilt off."""
    depth, up = ray_cast(1.2, pitch, table=table)
    depth, up, K_view = rolled(depth, up, roll)
    seen = up_from_depth(depth, K_view, np.array([0.0, -1.0, 0.0]))
    assert seen is not None and np.linalg.norm(seen) == pytest.approx(1.0)
    assert np.degrees(vector_angle(seen, up)) < 1.5
    assert np.degrees(vector_angle([0.0, -1.0, 0.0], up)) > pitch - 1   # what taking it as level would cost


def test_up_from_depth_of_walls_alone_is_none_and_bad_input_is_refused():
    wall_only, _ = ray_cast(1.2, 0.0, floor=False)
    assert up_from_depth(wall_only, K, np.array([0.0, -1.0, 0.0])) is None
    assert up_from_depth(np.full((HEIGHT, WIDTH), np.nan, np.float32), K, np.array([0.0, -1.0, 0.0])) is None
    depth, _ = ray_cast(1.2)
    with pytest.raises(ShapeError, match='zero vector'):
        up_from_depth(depth, K, np.zeros(3))
    with pytest.raises(ShapeError, match='depth must be'):
        up_from_depth(depth[None], K, np.array([0.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match='angles_deg'):
        up_from_depth(depth, K, np.array([0.0, -1.0, 0.0]), angles_deg=(95.0,))
