"""Camera sensor effects applied to rendered RGB (domain randomization, issue #21).

A render is a perfect pinhole image; a hand-held camera's frame is not. ``apply_sensor_effects``
degrades a rendered sequence in the order light meets a camera, in linear light where it
matters:

    sRGB -> linear -> defocus (thin lens, from depth) -> motion blur (the true camera motion
    during the shutter, by reprojection with depth) -> vignetting -> exposure (per-sequence
    gain, smooth auto-exposure drift) -> shot + read noise -> clipping at white -> white
    balance -> sRGB, 8-bit quantisation -> sharpening -> JPEG.

Only rgb changes: depth, poses and segmentation stay the truth. Each effect is switched on per
sequence with its own probability and draws from its own stream (seeded from ``rng`` in a fixed
order), so changing one effect's knobs never changes what another effect draws.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from .errors import GenerationError

EFFECTS = ('exposure', 'white_balance', 'motion_blur', 'defocus', 'noise', 'vignetting', 'sharpen', 'jpeg')


@dataclass(frozen=True)
class SensorConfig:
    """Exposure, white balance, motion blur, defocus, noise, vignetting, sharpening and JPEG.

    Every ``*_prob`` is the chance (0..1) that a sequence gets that effect; a pair
    ``(lo, hi)`` is a range drawn uniformly once per sequence unless said otherwise.
    """

    enabled: bool = False
    exposure_prob: float = 1.0
    exposure_ev: tuple[float, float] = (-1.0, 0.7)  # per-sequence gain in stops (x 2**ev); range -3..3
    exposure_drift_ev: float = 0.2  # std of the smooth (0.05-0.5 Hz) auto-exposure drift, stops; 0..1
    white_balance_prob: float = 0.8
    white_balance_strength: float = 0.15  # largest |log gain| warm-cool (R vs B); tint (G) 1/3 of it; 0..0.5
    white_balance_drift: float = 0.02  # std of the smooth per-frame log-gain drift per channel; 0..0.1
    motion_blur_prob: float = 0.8
    shutter_fraction: tuple[float, float] = (0.1, 0.5)  # exposure time / frame interval, centred on the frame; 0..1
    motion_blur_samples: int = 9  # most sub-poses averaged per frame: 3, or 9 (used above 6 px of motion)
    motion_blur_min_px: float = 0.5  # frames whose image motion within the shutter stays below this skip blur, px; >= 0
    defocus_prob: float = 0.5
    focus_distance: tuple[float, float] = (0.5, 4.0)  # m, drawn log-uniformly per sequence; 0.05..100
    aperture_mm: tuple[float, float] = (1.0, 5.0)  # lens aperture diameter for the render's focal length, mm; 0..20
    max_coc_px: float = 8.0  # cap of the circle-of-confusion diameter, px; 1..32
    noise_prob: float = 1.0
    shot_noise: tuple[float, float] = (0.002, 0.02)  # std at white, linear; scales with sqrt(signal); 0..0.1
    read_noise: tuple[float, float] = (0.0002, 0.002)  # std, linear, signal-independent; 0..0.02
    noise_per_channel_prob: float = 0.7  # chance the noise is independent per channel (else one value for R, G, B)
    vignetting_prob: float = 0.7
    vignetting_strength: tuple[float, float] = (0.1, 0.6)  # k of the cos(theta)**(4 k) falloff (1: natural cos^4); 0..1
    sharpen_prob: float = 0.3
    sharpen_amount: tuple[float, float] = (0.2, 0.8)  # unsharp-mask weight (sigma 1 px) after gamma; 0..2
    jpeg_prob: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)  # per-sequence quality, each frame +-5 about it; 1..100

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name.endswith('_prob'):
                _check(self, f.name, 0.0, 1.0)
        for name, lo, hi in (('exposure_ev', -3, 3), ('exposure_drift_ev', 0, 1), ('white_balance_strength', 0, 0.5),
                             ('white_balance_drift', 0, 0.1), ('shutter_fraction', 0, 1),
                             ('motion_blur_min_px', 0, np.inf),
                             ('focus_distance', 0.05, 100), ('aperture_mm', 0, 20), ('max_coc_px', 1, 32),
                             ('shot_noise', 0, 0.1), ('read_noise', 0, 0.02), ('vignetting_strength', 0, 1),
                             ('sharpen_amount', 0, 2), ('jpeg_quality', 1, 100)):
            _check(self, name, lo, hi)
        if self.motion_blur_samples not in (3, 9):
            raise GenerationError(f'sensor knob motion_blur_samples={self.motion_blur_samples!r} must be 3 or 9')


def _check(config: SensorConfig, name: str, lo: float, hi: float) -> None:
    value = getattr(config, name)
    values = value if isinstance(value, tuple) else (value,)
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi for v in values)
    if isinstance(value, tuple):
        ok = ok and len(value) == 2 and value[0] <= value[1]
    if not ok:
        kind = 'a range (lo, hi) with lo <= hi, each' if isinstance(value, tuple) else 'a number'
        raise GenerationError(f'sensor knob {name}={value!r} must be {kind} in [{lo}, {hi}]')


def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055)


_DECODE = _srgb_to_linear(np.arange(256) / 255.0).astype(np.float32)  # uint8 sRGB -> linear 0..1
_ENCODE_LEVELS = 65535
_ENCODE = np.round(_linear_to_srgb(np.arange(_ENCODE_LEVELS + 1) / _ENCODE_LEVELS) * 255).astype(np.uint8)
_GAUSS = np.array([NormalDist().inv_cdf((k + 0.5) / 256) for k in range(256)])
_GAUSS = (_GAUSS / _GAUSS.std()).astype(np.float32)  # random byte -> unit normal (256 equiprobable levels)


def _smooth_series(rng: np.random.Generator, t: np.ndarray, std: float, dims: int,
                   freq_hz: tuple[float, float]) -> np.ndarray:
    """(len(t), dims) sum of 3 random sinusoids per dim with frequencies in ``freq_hz``, std ~``std``."""
    f = rng.uniform(*freq_hz, (3, dims))
    phase = rng.uniform(0, 2 * np.pi, (3, dims))
    amp = rng.uniform(0.5, 1.0, (3, dims))
    out = (np.sin(2 * np.pi * f[None] * t[:, None, None] + phase[None]) * amp[None]).sum(1)
    return out * std / np.sqrt((amp ** 2).sum(0) / 2)


@dataclass
class _Draws:
    """Per-sequence draws of every effect; None where the sequence does without it."""

    gain: np.ndarray | None = None  # (N,) linear exposure gain
    wb: np.ndarray | None = None  # (N, 3) linear channel gains
    shutter: float | None = None  # fraction of the frame interval
    defocus: tuple[float, float] | None = None  # (1 / focus distance 1/m, aperture m)
    noise: tuple[float, float, bool] | None = None  # (shot std, read std, per channel)
    vignetting: float | None = None
    sharpen: float | None = None
    jpeg: np.ndarray | None = None  # (N,) quality per frame
    noise_rng: np.random.Generator | None = None  # the noise's stream, for the per-frame draws


def _draw(config: SensorConfig, rng: np.random.Generator, t: np.ndarray) -> _Draws:
    seeds = rng.integers(0, 2 ** 63, len(EFFECTS))
    streams = {name: np.random.default_rng(int(s)) for name, s in zip(EFFECTS, seeds)}
    on = {name: streams[name].random() < getattr(config, f'{name}_prob') for name in EFFECTS}
    d = _Draws()
    if on['exposure']:
        r = streams['exposure']
        ev = r.uniform(*config.exposure_ev) + _smooth_series(r, t, config.exposure_drift_ev, 1, (0.05, 0.5))[:, 0]
        d.gain = (2.0 ** ev).astype(np.float32)
    if on['white_balance']:
        r = streams['white_balance']
        s = config.white_balance_strength
        warm, tint = r.uniform(-s, s), r.uniform(-s / 3, s / 3)
        log_gain = np.array([warm, tint, -warm]) + _smooth_series(r, t, config.white_balance_drift, 3, (0.05, 0.5))
        log_gain -= log_gain.mean(1, keepdims=True)
        d.wb = np.exp(log_gain).astype(np.float32)
    if on['motion_blur']:
        d.shutter = float(streams['motion_blur'].uniform(*config.shutter_fraction))
    if on['defocus']:
        r = streams['defocus']
        focus = np.exp(r.uniform(*np.log(config.focus_distance)))
        d.defocus = (float(1.0 / focus), float(r.uniform(*config.aperture_mm)) / 1000.0)
    if on['noise']:
        r = streams['noise']
        d.noise = (float(r.uniform(*config.shot_noise)), float(r.uniform(*config.read_noise)),
                   bool(r.random() < config.noise_per_channel_prob))
    if on['vignetting']:
        d.vignetting = float(streams['vignetting'].uniform(*config.vignetting_strength))
    if on['sharpen']:
        d.sharpen = float(streams['sharpen'].uniform(*config.sharpen_amount))
    if on['jpeg']:
        r = streams['jpeg']
        q = r.integers(int(config.jpeg_quality[0]), int(config.jpeg_quality[1]) + 1)
        d.jpeg = np.clip(q + r.integers(-5, 6, len(t)), 1, 100)
    d.noise_rng = streams['noise']
    return d


def _neighbour_motion(T_world_cam: np.ndarray, timestamps: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame the pose of the next and of the previous frame in this camera's frame
    (N, 4, 4) each, and the time to them (N,) s each; at the ends the one neighbour's
    motion is mirrored (constant velocity)."""
    from geovr_ros.geometry import invert_pose
    n = len(T_world_cam)
    inv = invert_pose(T_world_cam)
    fwd, bwd = np.empty((n, 4, 4)), np.empty((n, 4, 4))
    dt_f, dt_b = np.empty(n), np.empty(n)
    fwd[:-1] = inv[:-1] @ T_world_cam[1:]
    bwd[1:] = inv[1:] @ T_world_cam[:-1]
    dt_f[:-1] = dt_b[1:] = np.diff(timestamps)
    fwd[-1], dt_f[-1] = invert_pose(bwd[-1]), dt_b[-1]
    bwd[0], dt_b[0] = invert_pose(fwd[0]), dt_f[0]
    return fwd, bwd, dt_f, dt_b


def _interpolate(T: np.ndarray, a: float) -> np.ndarray:
    """The rigid motion a fraction ``a`` (0..1) of the way along T (4, 4): rotation slerped
    (axis-angle scaled), translation linear."""
    import cv2
    out = np.eye(4)
    out[:3, :3] = cv2.Rodrigues(a * cv2.Rodrigues(T[:3, :3])[0])[0]
    out[:3, 3] = a * T[:3, 3]
    return out


class _Pixels:
    """Pixel grid, inverse K and vignetting of one camera (computed once per sequence)."""

    def __init__(self, K: np.ndarray, w: int, h: int):
        self.u = np.arange(w, dtype=np.float32)[None, :]  # (1, W) pixel centres
        self.v = np.arange(h, dtype=np.float32)[:, None]  # (H, 1)
        self.K = K
        self.K_inv = np.linalg.inv(K)
        x = (self.u - K[0, 2]) / K[0, 0]
        y = (self.v - K[1, 2]) / K[1, 1]
        self.cos_theta = (1.0 / np.sqrt(1.0 + x * x + y * y)).astype(np.float32)  # (H, W)

    def source(self, S: np.ndarray, inv_depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel of a camera at pose S (4, 4; in this camera's frame) finds its colour
        in this frame: (map_x, map_y) (H, W) float32 pixels; this frame's inverse depth
        (H, W) 1/m stands in for the moved camera's (the motion within a shutter is small)."""
        H = (self.K @ S[:3, :3] @ self.K_inv).astype(np.float32)
        e = (self.K @ S[:3, 3]).astype(np.float32)
        x, y, z = ((H[r, 0] * self.u + H[r, 2]) + H[r, 1] * self.v + e[r] * inv_depth for r in range(3))
        z = 1.0 / np.maximum(z, 1e-6)
        return x * z, y * z


def _motion_blur(img: np.ndarray, inv_depth: np.ndarray, px: _Pixels, fwd: np.ndarray, bwd: np.ndarray,
                 half_f: float, half_b: float, max_taps: int, min_px: float) -> tuple[np.ndarray, int]:
    """A box over the shutter: ``img`` (H, W, 3) linear averaged over sub-poses from ``half_b``
    of the way towards the previous frame's pose to ``half_f`` towards the next one's.

    The outermost sub-pose on each side (rotation slerped, translation linear) reprojects each
    pixel with its depth; the sub-poses between move it along the same image motion, scaled.
    Pixels whose source lies outside the frame keep the unwarped colour. Up to 6 px of motion
    3 sub-poses are averaged, above it 9, as two passes of 3 (offsets s and 3 s compose to 9
    evenly spaced ones); ``max_taps`` < 9 keeps to 3. Returns the image and the number of
    sub-poses (0: the motion within the shutter stayed under ``min_px``; ``img`` as is).
    """
    import cv2
    sub = inv_depth[::8, ::8]
    extent = 0.0
    for S in (_interpolate(fwd, half_f), _interpolate(bwd, half_b)):  # image motion at the shutter's ends
        H = px.K @ S[:3, :3] @ px.K_inv
        e = px.K @ S[:3, 3]
        x, y, z = ((H[r, 0] * px.u[:, ::8] + H[r, 2]) + H[r, 1] * px.v[::8] + e[r] * sub for r in range(3))
        extent += float(np.max(np.hypot(x / z - px.u[:, ::8], y / z - px.v[::8])))
    if not np.isfinite(extent) or extent < min_px:
        return img, 0
    taps = 9 if extent > 6.0 and max_taps >= 9 else 3
    offsets = (1 / 9, 3 / 9) if taps == 9 else (1 / 3,)  # of the shutter, either side of the frame
    ends = [px.source(_interpolate(T, 2 * offsets[-1] * half), inv_depth) for T, half in ((fwd, half_f), (bwd, half_b))]
    out = cv2.cvtColor(img, cv2.COLOR_RGB2RGBA)
    warped = (np.empty_like(out), np.empty_like(out))
    for offset in offsets:
        for buffer, (mx, my) in zip(warped, ends):
            if offset != offsets[-1]:  # an inner sub-pose: the same image motion, scaled
                scale = offset / offsets[-1]
                mx, my = px.u + scale * (mx - px.u), px.v + scale * (my - px.v)
            np.copyto(buffer, out)  # outside the frame: the unwarped colour
            cv2.remap(out, mx, my, cv2.INTER_LINEAR, dst=buffer, borderMode=cv2.BORDER_TRANSPARENT)
        np.add(warped[0], warped[1], out=warped[0])
        np.add(warped[0], out, out=warped[0])
        np.multiply(warped[0], 1.0 / 3.0, out=out)
    return cv2.cvtColor(out, cv2.COLOR_RGBA2RGB), taps


def _defocus(img: np.ndarray, inv_depth: np.ndarray, fx: float, inv_focus: float, aperture: float,
             max_coc: float) -> np.ndarray:
    """Thin-lens defocus of ``img`` (H, W, 3) linear: CoC diameter ``fx * aperture * |1/d - 1/d_f|``
    px (capped at ``max_coc``), rendered as a per-pixel blend of the sharp image and two
    Gaussian blurs (sigma = CoC / 4, the per-axis std of a uniform disc)."""
    import cv2
    sigma = np.minimum(fx * aperture * np.abs(inv_depth - inv_focus), max_coc) * 0.25  # (H, W) px
    top = float(sigma.max())
    if top < 0.25:
        return img
    mid = top / 2
    level = sigma * (1.0 / mid)  # 0 sharp, 1 first blur, 2 second
    lo = cv2.cvtColor(np.minimum(level, 1.0), cv2.COLOR_GRAY2RGB)
    hi = cv2.cvtColor(np.clip(level - 1.0, 0.0, 1.0), cv2.COLOR_GRAY2RGB)
    b1 = cv2.GaussianBlur(img, (0, 0), mid)
    b2 = cv2.GaussianBlur(img, (0, 0), top)
    b2 -= b1
    b2 *= hi
    b1 -= img
    b1 *= lo
    b1 += b2
    b1 += img
    return b1  # img + lo (b1 - img) + hi (b2 - b1)


def apply_sensor_effects(rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray,
                         timestamps: np.ndarray, config: SensorConfig, rng: np.random.Generator) -> np.ndarray:
    """Degrade rendered frames like a real camera; depth, poses and K are only read.

    rgb (N, H, W, 3) uint8 sRGB; depth (N, H, W) float metres along optical z, NaN invalid
    (treated as far); K (3, 3) pixels; T_world_cam (N, 4, 4) optical camera-to-world;
    timestamps (N,) s. Returns a new rgb (N, H, W, 3) uint8, the same for the same ``rng``
    state. Cost at 320x240: about 4 ms per frame at the defaults, 5.5 ms with every effect on
    (motion blur 2.5 ms of it).
    """
    import cv2
    rgb = np.asarray(rgb)
    n = len(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 4 or rgb.shape[-1] != 3:
        raise GenerationError(f'rgb must be uint8 (N, H, W, 3), got {rgb.dtype} {rgb.shape}')
    h, w = rgb.shape[1:3]
    if np.shape(depth) != (n, h, w) or np.shape(K) != (3, 3) or np.shape(T_world_cam) != (n, 4, 4) \
            or np.shape(timestamps) != (n,):
        raise GenerationError(f'depth, K, T_world_cam, timestamps must be ({n}, {h}, {w}), (3, 3), ({n}, 4, 4), '
                              f'({n},); got {np.shape(depth)}, {np.shape(K)}, {np.shape(T_world_cam)}, '
                              f'{np.shape(timestamps)}')
    timestamps = np.asarray(timestamps, np.float64)
    if n > 1 and not (np.diff(timestamps) > 0).all():
        raise GenerationError(f'timestamps must increase, got {timestamps.tolist()}')
    d = _draw(config, rng, timestamps)
    if n == 0 or all(getattr(d, name) is None for name in ('gain', 'wb', 'shutter', 'defocus', 'noise',
                                                           'vignetting', 'sharpen', 'jpeg')):
        return rgb.copy()
    px = _Pixels(np.asarray(K, np.float64), w, h)
    vignette = None
    if d.vignetting is not None:
        vignette = cv2.cvtColor(px.cos_theta ** np.float32(4.0 * d.vignetting), cv2.COLOR_GRAY2RGB)  # (H, W, 3)
    blur = d.shutter is not None and n > 1
    if blur:
        fwd, bwd, dt_f, dt_b = _neighbour_motion(np.asarray(T_world_cam, np.float64), timestamps)
        half = d.shutter * np.median(np.diff(timestamps)) / 2  # s either side of the frame time
    out = np.empty_like(rgb)
    for i in range(n):
        img = cv2.LUT(rgb[i], _DECODE)  # (H, W, 3) float32 linear
        if d.defocus is not None or blur:
            inv_depth = np.nan_to_num(1.0 / depth[i].astype(np.float32), nan=0.0, posinf=0.0)
        if d.defocus is not None:
            img = _defocus(img, inv_depth, float(K[0, 0]), d.defocus[0], d.defocus[1], config.max_coc_px)
        if blur:
            img, _ = _motion_blur(img, inv_depth, px, fwd[i], bwd[i], min(half / dt_f[i], 1.0),
                                  min(half / dt_b[i], 1.0), config.motion_blur_samples, config.motion_blur_min_px)
        if vignette is not None:
            img *= vignette
        if d.gain is not None:
            img *= d.gain[i]
        if d.noise is not None:
            shot, read, per_channel = d.noise
            signal = img if per_channel else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            std = cv2.sqrt(np.maximum(signal, 0.0) * shot ** 2 + read ** 2)
            normal = cv2.LUT(np.frombuffer(d.noise_rng.bytes(std.size), np.uint8).reshape(std.shape), _GAUSS)
            std *= normal
            img += std if per_channel else cv2.cvtColor(std, cv2.COLOR_GRAY2RGB)
        np.clip(img, 0.0, 1.0, out=img)
        if d.wb is not None:
            img = cv2.multiply(img, tuple(float(g) for g in d.wb[i]) + (0.0,))
            np.minimum(img, 1.0, out=img)
        img *= _ENCODE_LEVELS
        img += 0.5
        frame = np.take(_ENCODE, img.astype(np.uint16))
        if d.sharpen is not None:
            frame = cv2.addWeighted(frame, 1.0 + d.sharpen, cv2.GaussianBlur(frame, (0, 0), 1.0), -d.sharpen, 0)
        if d.jpeg is not None:
            ok, data = cv2.imencode('.jpg', cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                    [cv2.IMWRITE_JPEG_QUALITY, int(d.jpeg[i])])
            frame = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out[i] = frame
    return out
