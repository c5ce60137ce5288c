import dataclasses

import numpy as np
import pytest

from geovr_training.data.errors import GenerationError
from geovr_training.data.sensor import EFFECTS, SensorConfig, apply_sensor_effects

W, H = 64, 48
K = np.array([[60.0, 0, (W - 1) / 2], [0, 60.0, (H - 1) / 2], [0, 0, 1]])
ONLY = {f'{e}_prob': 0.0 for e in EFFECTS}


def _only(**knobs) -> SensorConfig:
    return SensorConfig(enabled=True, **{**ONLY, **knobs})


def _texture(n=3, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 215, (n, H // 4, W // 4, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 4, 1), 4, 2)  # 4x4-pixel blocks: edges everywhere


def _still(n=3) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.eye(4)[None], n, 0), np.arange(n) / 10.0


def _roll(deg_per_frame: float, n=3) -> np.ndarray:
    poses = np.repeat(np.eye(4)[None], n, 0)
    for i in range(n):
        a = np.deg2rad(deg_per_frame * i)
        poses[i, :2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]  # about the optical axis
    return poses


def _apply(rgb, config, depth=None, poses=None, seed=0, K=K):
    n = len(rgb)
    still, t = _still(n)
    depth = np.full((n, H, W), 2.0, np.float32) if depth is None else depth
    return apply_sensor_effects(rgb, depth, K, still if poses is None else poses, t, config,
                                np.random.default_rng(seed))


def _linear(rgb) -> np.ndarray:
    x = rgb / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def test_same_rng_same_frames_and_inputs_untouched():
    rgb = _texture()
    depth = np.full((3, H, W), 2.0, np.float32)
    depth[:, :5] = np.nan
    rgb0, depth0 = rgb.copy(), depth.copy()
    every = SensorConfig(enabled=True, **{k: 1.0 for k in ONLY})
    a = _apply(rgb, every, depth, _roll(3.0))
    b = _apply(rgb, every, depth, _roll(3.0))
    assert a.dtype == np.uint8 and a.shape == rgb.shape
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _apply(rgb, every, depth, _roll(3.0), seed=1))
    assert np.array_equal(rgb, rgb0) and np.array_equal(depth, depth0, equal_nan=True)


def test_no_effect_drawn_is_the_identity():
    rgb = _texture()
    assert np.array_equal(_apply(rgb, _only()), rgb)
    # the linear round trip alone (an effect at no strength) is exact too
    assert np.array_equal(_apply(rgb, _only(exposure_prob=1.0, exposure_ev=(0.0, 0.0), exposure_drift_ev=0.0)), rgb)


def test_exposure_gain_brightens_and_clips_at_white():
    rgb = _texture()
    up = _apply(rgb, _only(exposure_prob=1.0, exposure_ev=(1.0, 1.0), exposure_drift_ev=0.0))
    down = _apply(rgb, _only(exposure_prob=1.0, exposure_ev=(-1.0, -1.0), exposure_drift_ev=0.0))
    assert up.mean() > rgb.mean() + 20 > down.mean() + 40
    assert (up == 255).mean() > 0.1 and (rgb == 255).mean() == 0
    drift = _apply(rgb[[0, 0, 0]], _only(exposure_prob=1.0, exposure_ev=(0.0, 0.0), exposure_drift_ev=0.5))
    assert len({round(float(f.mean()), 1) for f in drift}) == 3  # the gain moves from frame to frame


def test_white_balance_changes_the_colour_balance():
    rgb = np.full((3, H, W, 3), 128, np.uint8)
    out = _apply(rgb, _only(white_balance_prob=1.0, white_balance_strength=0.3))
    means = out.reshape(3, -1, 3).mean(1)
    assert np.abs(means[:, 0] - means[:, 2]).min() > 3


def test_vignetting_darkens_corners_more_than_the_centre():
    rgb = np.full((1, H, W, 3), 180, np.uint8)
    out = _apply(rgb, _only(vignetting_prob=1.0, vignetting_strength=(1.0, 1.0))).astype(float)
    centre = out[0, H // 2 - 2:H // 2 + 2, W // 2 - 2:W // 2 + 2].mean()
    corner = out[0, :3, :3].mean()
    assert centre >= 178 and corner < centre - 15


def test_motion_blur_follows_the_true_camera_motion():
    rgb = _texture(5)
    config = _only(motion_blur_prob=1.0, shutter_fraction=(0.8, 0.8))
    assert np.array_equal(_apply(rgb, config), rgb)  # a still camera: no blur
    rolled = _apply(rgb, config, poses=_roll(6.0, 5)).astype(float)
    change = np.abs(rolled - rgb).mean(axis=(0, 3))  # (H, W)
    y, x = np.mgrid[:H, :W]
    radius = np.hypot(x - K[0, 2], y - K[1, 2])
    # a roll moves pixels in proportion to their distance from the centre: so does the blur
    assert change[radius < 6].mean() < 0.5 * change[radius > 20].mean()
    assert change[radius > 20].mean() > 5


def test_motion_blur_of_a_translation_blurs_near_more_than_far():
    rgb = _texture(3)
    poses = np.repeat(np.eye(4)[None], 3, 0)
    poses[:, 0, 3] = [0.0, 0.05, 0.10]  # sideways, 5 cm per frame
    depth = np.full((3, H, W), 20.0, np.float32)
    depth[:, :, :W // 2] = 0.5
    out = _apply(rgb, _only(motion_blur_prob=1.0, shutter_fraction=(0.8, 0.8)), depth, poses).astype(float)
    change = np.abs(out - rgb)[:, 8:-8]
    assert change[:, :, 4:W // 2 - 4].mean() > 3 * change[:, :, W // 2 + 4:-4].mean()


def test_defocus_blurs_out_of_focus_depths_only():
    rgb = _texture(1)
    depth = np.full((1, H, W), 0.5, np.float32)
    depth[:, :, W // 2:] = 6.0
    narrow = K.copy()
    narrow[0, 0] = narrow[1, 1] = 240.0  # a CoC of 240 px * 0.01 m * (2 - 1/6) 1/m = 4.4 px
    out = _apply(rgb, _only(defocus_prob=1.0, focus_distance=(0.5, 0.5), aperture_mm=(10.0, 10.0)), depth, K=narrow)
    change = np.abs(out.astype(float) - rgb)[0, :, :, :]
    assert change[:, 4:W // 2 - 8].mean() < 1.0  # in focus (away from the depth edge)
    assert change[:, W // 2 + 8:].mean() > 5


def test_shot_noise_grows_with_intensity_and_read_noise_does_not():
    rgb = np.zeros((2, H, W, 3), np.uint8)
    rgb[:, :, :W // 2] = 40
    rgb[:, :, W // 2:] = 220
    for knobs, ratio in (({'shot_noise': (0.03, 0.03), 'read_noise': (0.0, 0.0)}, 2.5),
                         ({'shot_noise': (0.0, 0.0), 'read_noise': (0.01, 0.01)}, None)):
        out = _linear(_apply(rgb, _only(noise_prob=1.0, noise_per_channel_prob=1.0, **knobs)))
        dark, bright = out[:, :, :W // 2].std(), out[:, :, W // 2:].std()
        if ratio:
            assert bright > ratio * dark > 0
        else:
            assert 0.5 < bright / dark < 2.0


def test_jpeg_leaves_8x8_block_edges():
    x = np.linspace(0, 1, W)[None, :, None] * np.linspace(0.2, 1, H)[:, None, None]
    rgb = np.repeat((40 + 170 * x * np.array([1.0, 0.7, 0.4]))[None].astype(np.uint8), 1, 0)
    out = _apply(rgb, _only(jpeg_prob=1.0, jpeg_quality=(8, 8))).astype(float)
    assert not np.array_equal(out, rgb)
    step = np.abs(np.diff(out[0], axis=1)).mean(axis=(0, 2))  # (W - 1,) between columns c and c + 1
    at_edges = step[7::8].mean()
    inside = np.delete(step, np.s_[7::8]).mean()
    assert at_edges > 1.5 * inside


def test_sharpening_raises_edge_contrast():
    rgb = _texture(1)
    out = _apply(rgb, _only(sharpen_prob=1.0, sharpen_amount=(1.0, 1.0))).astype(float)
    assert np.abs(np.diff(out[0], axis=1)).mean() > 1.1 * np.abs(np.diff(rgb[0].astype(float), axis=1)).mean()


def test_bad_knobs_and_shapes_raise_typed_errors():
    with pytest.raises(GenerationError, match='jpeg_quality'):
        SensorConfig(jpeg_quality=(90, 40))
    with pytest.raises(GenerationError, match='noise_prob=1.5'):
        SensorConfig(noise_prob=1.5)
    with pytest.raises(GenerationError, match='rgb must be uint8'):
        _apply(_texture().astype(np.float32), SensorConfig(enabled=True))
    with pytest.raises(GenerationError, match='timestamps must increase'):
        apply_sensor_effects(_texture(), np.ones((3, H, W)), K, _still()[0], np.zeros(3), SensorConfig(),
                             np.random.default_rng(0))
    assert dataclasses.replace(SensorConfig(), jpeg_quality=(50, 60)).jpeg_quality == (50, 60)


def test_sensor_stage_changes_rgb_only():
    from geovr_training.data.generate import GenerationConfig, render_sequence
    from geovr_training.data.randomization import Randomization
    plain = Randomization.preset('none')
    sensor = Randomization.from_dict({'sensor': {'enabled': True}}, base=plain)
    args = dict(seed=4, frames_per_scene=3, resolution=(64, 48), qa_per_scene=4)
    a = render_sequence(GenerationConfig(**args, randomization=plain), 0)
    b = render_sequence(GenerationConfig(**args, randomization=sensor), 0)
    assert not np.array_equal(a.rgb, b.rgb)
    assert np.array_equal(a.depth, b.depth, equal_nan=True) and np.array_equal(a.segmentation, b.segmentation)
    assert np.array_equal(a.T_world_cam, b.T_world_cam) and np.array_equal(a.K, b.K)
    assert a.scene.to_json() == b.scene.to_json() and a.qa == b.qa
    assert b.info['randomized'] == ['sensor'] and a.info['randomized'] == []
