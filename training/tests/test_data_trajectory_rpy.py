import numpy as np
from geovr_ros.geometry import invert_pose, so3_log

from geovr_training.data.generate import scene_rng
from geovr_training.data.scene import free_space_grid, sample_scene
from geovr_training.data.trajectory import (DEFAULT_TRAJECTORY_MIX, REAL_LIKE_TRAJECTORY_MIX, TRAJECTORY_KINDS,
                                            _view_distance, sample_camera, sample_trajectory)

FPS = 10.0


def _path(scene_index: int, kind: str, frames: int = 60):
    rng = scene_rng(11, scene_index)
    layout = sample_scene(rng)
    sample_camera(rng)
    poses, t, rendered = sample_trajectory(rng, layout, frames, FPS, kind=kind)
    return layout, poses, rendered


def _rates(poses):
    rel = invert_pose(poses[:-1]) @ poses[1:]
    deg_s = np.rad2deg(np.linalg.norm(so3_log(rel[:, :3, :3]), axis=-1)) * FPS
    m_s = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1) * FPS
    return deg_s, m_s


def test_rpy_is_a_real_like_kind_outside_the_default_mix():
    assert 'rpy' in TRAJECTORY_KINDS and 'rpy' in REAL_LIKE_TRAJECTORY_MIX
    assert 'rpy' not in DEFAULT_TRAJECTORY_MIX


def test_rpy_turns_fast_about_every_axis_while_standing_in_free_space():
    rpy_rates, walk_rates = [], []
    for i in range(6):
        layout, poses, kind = _path(i, 'rpy')
        assert kind == 'rpy'
        deg_s, m_s = _rates(poses)
        rpy_rates.append(deg_s)
        walk_rates.append(_rates(_path(i, 'walk')[1])[0])
        assert 30 < np.median(deg_s) and deg_s.max() < 130 and np.median(m_s) < 0.25
        assert np.ptp(poses[:, :2, 3], axis=0).max() < 0.5  # metres: standing
        forward, right = poses[:, :3, 2], poses[:, :3, 0]  # optical z, x in the world
        pitch, roll = np.rad2deg(np.arcsin(-forward[:, 2])), np.rad2deg(np.arcsin(-right[:, 2]))
        assert np.ptp(pitch) > 15 and np.ptp(roll) > 15
        grid, origin = free_space_grid(layout, clearance=0.15)
        cells = np.floor((poses[:, :2, 3] - origin) / 0.1 + 0.5).astype(int)
        assert grid[cells[:, 1], cells[:, 0]].all()  # inside the room, clear of objects
        yaw = np.arctan2(forward[:, 1], forward[:, 0])
        ahead = [_view_distance(layout, p, np.array([a]), p_z)[0]
                 for p, a, p_z in zip(poses[:, :2, 3], yaw, poses[:, 2, 3])]
        assert np.median(ahead) > 1.0  # looking into the room, not at a wall
    assert np.median(np.concatenate(rpy_rates)) > 1.3 * np.median(np.concatenate(walk_rates))
