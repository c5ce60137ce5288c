"""Rendering geometry: projection from K, z-buffer depth, optical poses, segmentation."""

import numpy as np
import pytest
from geovr_ros.geometry import depth_to_points, reproject_depth

from geovr_training.data.render import Renderer
from geovr_training.data.scene import SceneLayout
from geovr_training.data.trajectory import camera_pose


def _empty_room(size=(40.0, 40.0, 30.0)) -> SceneLayout:
    return SceneLayout(room_size=np.array(size), floor_rgba=(0.5, 0.5, 0.5, 1), wall_rgba=(0.7, 0.7, 0.7, 1),
                       floor_pattern='checker', wall_pattern='plain', tile_size=0.5, pattern_seed=1,
                       light_direction=(0.3, 0.2, 1.0),
                       light_colour=(1, 1, 1), light_coeffs=(0.6, 0.5, 0.1))


@pytest.mark.parametrize('size,K', [
    ((160, 120), [[110.0, 0, 88.3], [0, 104.0, 52.9], [0, 0, 1]]),   # 4:3, off-centre, non-square pixels
    ((192, 108), [[80.0, 0, 90.1], [0, 80.0, 60.2], [0, 0, 1]]),      # 16:9
])
def test_depth_of_a_tilted_floor_matches_the_pinhole_model(size, K):
    """Floor z = 0 seen from 1.5 m, tilted about two axes: depth at every pixel must equal the
    ray-plane intersection of K^-1 [j, i, 1] (this pins focal lengths, principal point and the
    pixel-centre convention to well under a pixel, and the z-buffer conversion)."""
    K = np.array(K)
    w, h = size
    T = camera_pose(np.array([0.2, -0.3, 1.5]), yaw=0.4, pitch=np.deg2rad(50), roll=np.deg2rad(12))
    with Renderer() as renderer:
        renderer.build(_empty_room())
        _, depth, seg = renderer.render(K, T, w, h)
    rays = depth_to_points(np.ones((h, w)), K)  # (H, W, 3), z = 1
    dirs_world = rays @ T[:3, :3].T
    expected = -T[2, 3] / dirs_world[..., 2]
    floor = np.isfinite(depth) & (expected > 0) & (expected < 10)
    assert floor.mean() > 0.3
    err = np.abs(depth[floor] - expected[floor]) / expected[floor]
    assert np.median(err) < 2e-4
    # A half-pixel error in the principal point would give a median relative error of ~1e-3 here.
    assert np.percentile(err, 95) < 2e-3


def test_depth_is_nan_where_nothing_was_drawn():
    K = np.array([[80.0, 0, 79.5], [0, 80.0, 59.5], [0, 0, 1]])
    T = camera_pose(np.array([0.0, 0.0, 1.0]), yaw=0.0, pitch=-np.pi / 2 + 0.01)  # looking up, no ceiling
    layout = _empty_room()
    with Renderer(far=5.0) as renderer:
        renderer.build(layout)
        _, depth, seg = renderer.render(K, T, 160, 120)
    assert np.isnan(depth).mean() > 0.9  # ceiling at 30 m is beyond the 5 m far plane
    assert (seg == 0).all()


def _bilinear(image, u, v):
    j0, i0 = np.floor(u).astype(int), np.floor(v).astype(int)
    a, b = u - j0, v - i0
    return ((1 - a) * (1 - b) * image[i0, j0] + a * (1 - b) * image[i0, j0 + 1]
            + (1 - a) * b * image[i0 + 1, j0] + a * b * image[i0 + 1, j0 + 1])


def test_rendered_depth_reprojects_between_frames_under_1cm(rendered_sequences):
    """Frame i's depth reprojected into frame j with the ground-truth poses agrees with frame j's
    depth: median error < 1 cm, on sequences with random intrinsics and trajectories."""
    checked = 0
    for seq in rendered_sequences:
        for i, j in [(0, 3), (5, 9), (10, 16)]:
            uv, z = reproject_depth(seq.depth[i], seq.K[i], seq.T_world_cam[i], seq.K[j], seq.T_world_cam[j])
            h, w = seq.depth[j].shape
            u, v = uv[..., 0], uv[..., 1]
            inside = np.isfinite(u) & (u >= 0) & (u < w - 1) & (v >= 0) & (v < h - 1) & np.isfinite(z)
            if inside.sum() < 200:
                continue
            target = _bilinear(seq.depth[j], u[inside], v[inside])  # pixel (i, j) centre at (u, v) = (j, i)
            err = np.abs(target - z[inside])
            err = err[np.isfinite(err)]
            assert np.median(err) < 0.01, (seq.name, i, j, np.median(err))
            checked += 1
    assert checked >= 6


def test_segmentation_ids_are_scene_objects_and_first_seen_matches(rendered_sequence):
    seq = rendered_sequence
    ids = set(np.unique(seq.segmentation).tolist())
    scene_ids = {o.instance_id for o in seq.scene.objects}
    assert ids - {0} <= scene_ids
    assert len(ids - {0}) >= 1
    min_pixels = seq.info['min_seen_pixels']
    for obj in seq.scene.objects:
        counts = (seq.segmentation == obj.instance_id).sum(axis=(1, 2))
        if obj.first_seen is None:
            assert (counts < min_pixels).all()
        else:
            assert counts[obj.first_seen] >= min_pixels and (counts[: obj.first_seen] < min_pixels).all()


def test_object_pixels_lie_inside_their_boxes(rendered_sequences):
    """Back-projected object pixels fall inside (within 3 cm of) the object's oriented box."""
    from geovr_ros.geometry import depth_to_world_points
    for seq in rendered_sequences[:2]:
        pts = depth_to_world_points(seq.depth[4], seq.K[4], seq.T_world_cam[4])
        for obj in seq.scene.objects:
            mask = (seq.segmentation[4] == obj.instance_id) & np.isfinite(seq.depth[4])
            if mask.sum() < 10:
                continue
            p = pts[mask] - obj.centre
            c, s = np.cos(obj.yaw), np.sin(obj.yaw)
            local = np.stack([c * p[:, 0] + s * p[:, 1], -s * p[:, 0] + c * p[:, 1], p[:, 2]], -1)
            outside = (np.abs(local) > obj.size / 2 + 0.03).any(-1)
            assert outside.mean() < 0.02, (obj.label, outside.mean())


def test_camera_stays_in_the_room_and_at_height(rendered_sequences):
    for seq in rendered_sequences:
        w, d, _ = seq.scene.room_size
        pos = seq.T_world_cam[:, :3, 3]
        assert (np.abs(pos[:, 0]) < w / 2 - 0.1).all() and (np.abs(pos[:, 1]) < d / 2 - 0.1).all()
        assert (pos[:, 2] > 0.7).all() and (pos[:, 2] < 1.9).all()
        R = seq.T_world_cam[:, :3, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)
