"""Textures and light of domain randomization (issue #21): images, tint, renderer, determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from geovr_training.data.errors import GenerationError
from geovr_training.data.generate import GenerationConfig, generate_dataset, render_sequence, scene_rng
from geovr_training.data.randomization import (LightConfig, Randomization, randomization_rng, randomize_light,
                                               temperature_rgb)
from geovr_training.data.scene import COLOURS, sample_scene
from geovr_training.data.textures import (KINDS, TextureConfig, TextureSpec, _materialise, _train_frames,
                                          assign_textures, materialise)

TEX_LIGHT = Randomization(textures=TextureConfig(enabled=True), light=LightConfig(enabled=True))


def _spec(kind, palette=((0.6, 0.4, 0.3),), contrast=0.0, seed=3, size=32):
    return TextureSpec(kind, seed, size, palette, contrast=contrast,
                       photo='skimage:brick' if kind == 'photo' else '')


@pytest.mark.parametrize('kind', KINDS)
def test_each_kind_is_a_non_constant_deterministic_image(kind):
    spec = _spec(kind, contrast=0.2)
    a = materialise(spec)
    _materialise.cache_clear()
    b = materialise(spec)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert a.std() > 1.0
    assert a.tobytes() == b.tobytes()
    assert materialise(dataclasses.replace(spec, seed=4)).tobytes() != a.tobytes() or kind == 'fabric'


@pytest.mark.parametrize('kind', ('wood', 'fabric', 'plaster', 'noise', 'photo'))
def test_object_tint_keeps_the_named_colour(kind):
    for name, rgb in COLOURS.items():
        img = materialise(_spec(kind, palette=(rgb,), contrast=0.22, size=64))
        mean = img.reshape(-1, 3).mean(0) / 255
        assert np.abs(mean - np.asarray(rgb)).max() < 0.06, (kind, name, mean, rgb)


def _camera_on_floor(height=1.2, pitch=0.5):
    """Optical T_world_cam at (0.3, 0.2, height) looking along +x, pitched down ``pitch`` rad."""
    f = np.array([np.cos(pitch), 0.0, -np.sin(pitch)])
    x = np.array([0.0, -1.0, 0.0])
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = x, np.cross(f, x), f, (0.3, 0.2, height)
    return T


@pytest.mark.parametrize('pitch', (0.05, 0.5, 1.2))
def test_textured_floor_is_drawn_right_where_triangles_reach_behind_the_camera(pitch):
    """The camera stands on the textured floor (one texture period = 6 m: two triangles
    reaching far behind it). Depth and segmentation equal the plain render's, and every floor
    pixel (ambient light only) shows a colour of the texture."""
    from geovr_training.data.render import Renderer
    layout = sample_scene(scene_rng(0, 0), min_objects=1, max_objects=1)
    layout.light_coeffs = (1.0, 0.0, 0.0)
    layout.light_colour = (1.0, 1.0, 1.0)
    K = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    T = _camera_on_floor(pitch=pitch)
    spec = TextureSpec('tiles', 5, 32, ((0.3, 0.6, 0.9),), period_m=6.0)
    with Renderer() as r:
        r.build(layout)
        _, depth0, seg0 = r.render(K, T, 64, 48)
        textured = dataclasses.replace(layout, floor_texture=spec, wall_texture=spec, ceiling_texture=spec)
        r.build(textured)
        rgb, depth, seg = r.render(K, T, 64, 48)
    np.testing.assert_array_equal(seg, seg0)
    np.testing.assert_allclose(depth, depth0, atol=1e-4, equal_nan=True)
    floor = (seg == 0) & (np.abs(T[2, 3] - depth * _ray_down(K, T)) < 1e-3)
    assert floor.sum() > 200
    tex = materialise(spec).reshape(-1, 3).astype(int)
    got = rgb[floor].astype(int)
    assert (got >= tex.min(0) - 3).all() and (got <= tex.max(0) + 3).all()
    assert len(np.unique(got, axis=0)) >= 2  # the texture is drawn, not one flat colour


def _ray_down(K, T):
    """(H, W) downward world-z component of each pixel's ray at unit optical depth."""
    h, w = 48, 64
    j, i = np.meshgrid(np.arange(w), np.arange(h))
    ray = np.stack([(j - K[0, 2]) / K[0, 0], (i - K[1, 2]) / K[1, 1], np.ones((h, w))], -1)
    return -(ray @ T[:3, :3].T)[..., 2]


def _tiny(randomization, **kw):
    return GenerationConfig(**{'seed': 7, 'frames_per_scene': 3, 'resolution': (64, 48), 'qa_per_scene': 4,
                               'randomization': randomization, **kw})


def test_preset_none_renders_as_no_randomization_and_textures_change_only_rgb():
    plain = render_sequence(_tiny(Randomization()), 1)
    none = render_sequence(_tiny(Randomization.preset('none')), 1)
    assert plain.rgb.tobytes() == none.rgb.tobytes()
    tex = render_sequence(_tiny(Randomization(textures=TextureConfig(enabled=True))), 1)
    assert tex.rgb.tobytes() != plain.rgb.tobytes()
    np.testing.assert_array_equal(tex.segmentation, plain.segmentation)
    np.testing.assert_allclose(tex.depth, plain.depth, rtol=1e-4, atol=1e-4, equal_nan=True)  # z-buffer rounding
    np.testing.assert_array_equal(tex.T_world_cam, plain.T_world_cam)
    assert [(o.category, o.colour, o.centre.tolist(), o.first_seen) for o in tex.scene.objects] == \
        [(o.category, o.colour, o.centre.tolist(), o.first_seen) for o in plain.scene.objects]
    assert tex.qa == plain.qa


def test_generation_with_textures_and_light_is_byte_deterministic(tmp_path):
    config = _tiny(TEX_LIGHT, frames_per_scene=2)
    for run in ('a', 'b'):
        generate_dataset(tmp_path / run, 2, config, progress=False)
    files = sorted(p.name for p in (tmp_path / 'a').iterdir())
    assert len(files) == 3 and files == sorted(p.name for p in (tmp_path / 'b').iterdir())
    for name in files:
        assert (tmp_path / 'a' / name).read_bytes() == (tmp_path / 'b' / name).read_bytes(), name


def test_photo_dirs_read_only_the_train_split(tmp_path):
    generate_dataset(tmp_path / 'real', 3, _tiny(Randomization(), frames_per_scene=2), progress=False)
    _train_frames.cache_clear()
    frames = _train_frames(str(tmp_path / 'real'))
    assert [p.split('/')[-1].split('.')[0] for p, _ in frames] == ['scene_00000']
    config = TextureConfig(enabled=True, photo_images=(), photo_dirs=(str(tmp_path / 'real'),),
                           floor_kinds=('photo',), wall_kinds=('photo',), object_kinds=('photo',))
    layout = sample_scene(scene_rng(0, 2))
    assign_textures(layout, config, randomization_rng(0, 2, 'textures'))
    assert layout.floor_texture.photo.startswith(frames[0][0] + '#')
    assert materialise(layout.floor_texture).std() > 1.0


def test_a_bad_photo_dir_is_an_error_naming_it(tmp_path):
    bad = str(tmp_path / 'no_such_dataset')
    config = TextureConfig(enabled=True, photo_dirs=(bad,), floor_kinds=('photo',))
    with pytest.raises(GenerationError, match='no_such_dataset'):
        assign_textures(sample_scene(scene_rng(0, 0)), config, randomization_rng(0, 0, 'textures'))
    with pytest.raises(GenerationError, match='object_probability'):
        TextureConfig(object_probability=1.5).validate()


def test_light_draws_within_its_ranges_and_shadows_by_probability():
    assert temperature_rgb(6500)[2] > 0.95 and temperature_rgb(2700)[2] < 0.7
    config = LightConfig(enabled=True, shadow_probability=0.5)
    layouts = [sample_scene(scene_rng(0, i), min_objects=1, max_objects=1) for i in range(40)]
    for i, layout in enumerate(layouts):
        randomize_light(layout, config, randomization_rng(0, i, 'light'))
        elevation = np.rad2deg(np.arcsin(layout.light_direction[2]))
        assert 15 - 1e-6 <= elevation <= 85 + 1e-6
        assert all(lo <= v <= hi for v, (lo, hi) in zip(layout.light_coeffs, (config.ambient, config.diffuse, config.specular)))
    assert 5 < sum(layout.shadows for layout in layouts) < 35
    with pytest.raises(GenerationError, match='temperature_k'):
        LightConfig(temperature_k=(100.0, 200.0)).validate()
