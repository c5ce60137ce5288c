"""Domain randomization of rendered rooms: one config of every knob, and its own random stream.

``Randomization`` groups the knob sets of each stage (``textures``, ``clutter``, ``light``,
``sensor``); the preset ``none`` turns every stage off and reproduces the plain renders of
generator version 1 byte for byte, ``full`` turns all on. The randomization draws come from
``randomization_rng(seed, scene, stage)``, one stream per stage apart from the scene's own, so switching a stage
on or off never changes the room, camera or path that the scene's stream draws.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .clutter import ClutterConfig
from .errors import GenerationError
from .sensor import SensorConfig
from .textures import TextureConfig

PRESETS = ('none', 'full')


@dataclass(frozen=True)
class LightConfig:
    """Per-scene light beyond the plain renders' (elevation 23-74 deg, colour 0.85-1 per
    channel, ambient 0.5-0.7, diffuse 0.4-0.6, specular 0-0.2). Each range is drawn uniformly."""

    enabled: bool = False
    # elevation of the direction towards the light above the floor plane, degrees, within [5, 90]
    elevation_deg: tuple[float, float] = (15.0, 85.0)
    # colour temperature of the light, kelvin, within [1500, 15000] (2700 warm bulb .. 6500 daylight)
    temperature_k: tuple[float, float] = (2700.0, 6500.0)
    # TinyRenderer's Phong coefficients, each within [0, 1.5]
    ambient: tuple[float, float] = (0.3, 0.8)
    diffuse: tuple[float, float] = (0.2, 0.9)
    specular: tuple[float, float] = (0.0, 0.5)
    # chance that a scene is rendered with shadows, [0, 1]; measured at 320x240, a shadowed frame
    # takes +15 ms with textured surfaces (+50 ms with the plain tiled ones)
    shadow_probability: float = 0.1

    def validate(self) -> None:
        for name, lo_hi in (('elevation_deg', (5.0, 90.0)), ('temperature_k', (1500.0, 15000.0)),
                            ('ambient', (0.0, 1.5)), ('diffuse', (0.0, 1.5)), ('specular', (0.0, 1.5))):
            lo, hi = getattr(self, name)
            if not lo_hi[0] <= lo <= hi <= lo_hi[1]:
                raise GenerationError(f'light.{name} must be {lo_hi[0]} <= lo <= hi <= {lo_hi[1]}, got {(lo, hi)}')
        if not 0.0 <= self.shadow_probability <= 1.0:
            raise GenerationError(f'light.shadow_probability must be in [0, 1], got {self.shadow_probability}')


@dataclass(frozen=True)
class Randomization:
    """Every domain-randomization knob of the generator (recorded in the manifest)."""

    textures: TextureConfig = field(default_factory=TextureConfig)
    clutter: ClutterConfig = field(default_factory=ClutterConfig)
    light: LightConfig = field(default_factory=LightConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)

    def validate(self) -> None:
        """Every stage's knobs in range (GenerationError naming the first that is not)."""
        for f in dataclasses.fields(self):
            check = getattr(getattr(self, f.name), 'validate', None)
            if check is not None:
                check()

    @property
    def enabled_stages(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name).enabled]

    @classmethod
    def preset(cls, name: str) -> 'Randomization':
        """'none': the plain renders; 'full': every stage on at its documented defaults."""
        if name == 'none':
            return cls()
        if name == 'full':
            return cls(**{f.name: dataclasses.replace(f.default_factory(), enabled=True)
                          for f in dataclasses.fields(cls)})
        raise GenerationError(f'unknown randomization preset {name!r}; expected one of {PRESETS} or a YAML file')

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], base: 'Randomization | None' = None) -> 'Randomization':
        """``base`` (default: the 'full' preset) with the stages and knobs of ``values``
        replaced; an unknown stage or knob is an error naming it."""
        base = base or cls.preset('full')
        stages = {f.name: f for f in dataclasses.fields(cls)}
        replaced = {}
        for stage, knobs in (values or {}).items():
            if stage not in stages:
                raise GenerationError(f'unknown randomization stage {stage!r}; expected one of {sorted(stages)}')
            current = getattr(base, stage)
            names = {f.name: f for f in dataclasses.fields(current)}
            unknown = sorted(set(knobs or {}) - set(names))
            if unknown:
                raise GenerationError(f'unknown {stage} knobs {unknown}; expected some of {sorted(names)}')
            converted = {k: tuple(v) if isinstance(v, list) else v for k, v in (knobs or {}).items()}
            replaced[stage] = dataclasses.replace(current, **converted)
        return dataclasses.replace(base, **replaced)

    @classmethod
    def load(cls, spec: str) -> 'Randomization':
        """A preset name, or a YAML file of ``{stage: {knob: value}}`` over the 'full' preset."""
        if spec in PRESETS:
            return cls.preset(spec)
        path = Path(spec)
        if not path.is_file():
            raise GenerationError(f'randomization {spec!r} is neither a preset {PRESETS} nor a YAML file')
        import yaml
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise GenerationError(f'randomization file {str(path)!r} is not valid YAML: {exc}') from None
        if not isinstance(values, dict):
            raise GenerationError(f'randomization file {str(path)!r} must hold a mapping of stages')
        return cls.from_dict(values)


STAGES = ('textures', 'clutter', 'light', 'sensor')


def randomization_rng(seed: int, scene_index: int, stage: str) -> np.random.Generator:
    """The random stream of one ``stage`` of scene ``scene_index``: apart from ``scene_rng``'s
    and from every other stage's, so turning one stage on changes nothing another draws."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(scene_index), 21, STAGES.index(stage)]))


def randomize_layout(layout, config: Randomization, seed: int, scene_index: int):
    """Dress a sampled ``SceneLayout`` in place with the enabled stages (textures, clutter,
    light); returns it. Called before the camera path is drawn, so paths avoid clutter."""
    if config.clutter.enabled:
        from .clutter import add_clutter
        add_clutter(layout, config.clutter, randomization_rng(seed, scene_index, 'clutter'))
    if config.textures.enabled:
        from .textures import assign_textures
        assign_textures(layout, config.textures, randomization_rng(seed, scene_index, 'textures'))
    if config.light.enabled:
        randomize_light(layout, config.light, randomization_rng(seed, scene_index, 'light'))
    return layout


def randomize_light(layout, config: LightConfig, rng: np.random.Generator) -> None:
    """Redraw the layout's light in place: direction (azimuth uniform, elevation in
    ``elevation_deg``), colour from a colour temperature, Phong coefficients, shadow flag."""
    config.validate()
    azimuth, elevation = rng.uniform(0.0, 2 * np.pi), np.deg2rad(rng.uniform(*config.elevation_deg))
    layout.light_direction = (float(np.cos(azimuth) * np.cos(elevation)), float(np.sin(azimuth) * np.cos(elevation)),
                              float(np.sin(elevation)))
    layout.light_colour = temperature_rgb(float(rng.uniform(*config.temperature_k)))
    layout.light_coeffs = tuple(float(rng.uniform(*getattr(config, k))) for k in ('ambient', 'diffuse', 'specular'))
    layout.shadows = bool(rng.random() < config.shadow_probability)


def temperature_rgb(kelvin: float) -> tuple[float, float, float]:
    """RGB in [0, 1] (brightest channel 1) of a black body at ``kelvin`` (1000-40000 K),
    by a curve fit of the Planckian locus in sRGB: 2700 K is orange-white, 6500 K white."""
    t = float(np.clip(kelvin, 1000.0, 40000.0)) / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = 99.4708025861 * np.log(t) - 161.1195681661 if t <= 66 else 288.1221695283 * (t - 60) ** -0.0755148492
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    rgb = np.clip(np.array([r, g, b]) / 255.0, 0.0, 1.0)
    return tuple(float(v) for v in rgb / rgb.max())
