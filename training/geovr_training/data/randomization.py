"""Domain randomization of rendered rooms: one config of every knob, and its own random stream.

``Randomization`` groups the knob sets of each stage (``textures``, ``clutter``, ``light``,
``sensor``); the preset ``none`` turns every stage off and reproduces the plain renders of
generator version 1 byte for byte, ``full`` turns all on. The randomization draws come from
``randomization_rng(seed, scene)``, a stream apart from the scene's own, so switching a stage
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
    """Per-scene light beyond the plain renders' (which vary direction and a little colour)."""

    enabled: bool = False


@dataclass(frozen=True)
class Randomization:
    """Every domain-randomization knob of the generator (recorded in the manifest)."""

    textures: TextureConfig = field(default_factory=TextureConfig)
    clutter: ClutterConfig = field(default_factory=ClutterConfig)
    light: LightConfig = field(default_factory=LightConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)

    @property
    def any_enabled(self) -> bool:
        return any(getattr(self, f.name).enabled for f in dataclasses.fields(self))

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
    """Redraw the layout's light (filled in by the light work of issue #21)."""
