"""Camera-aware image operations: resize, crop, zoom, principal-point shift, mirroring and
colour jitter.

Each operation is expressed on K through ``geovr_ros.geometry`` (resize_intrinsics,
crop_intrinsics, zoom_intrinsics, shift_principal_point); the pixel map applied to the
images is then derived from K and K' (``u' = fx'/fx (u - cx) + cx'``, same in v), so
images and intrinsics cannot disagree. RGB is resampled bilinearly (area-averaged first
when shrinking), depth by nearest neighbour (values never change), NaN outside the source.
Pixel centres are at integer coordinates (geovr_ros.geometry's convention, shared by cv2's
warpAffine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geovr_ros.geometry import crop_intrinsics, resize_intrinsics, shift_principal_point, zoom_intrinsics


def warp_to_intrinsics(rgb: np.ndarray, depth: np.ndarray | None, K_src: np.ndarray, K_dst: np.ndarray,
                       out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Resample an image pair taken with ``K_src`` as seen by a camera ``K_dst`` of the same
    centre and orientation, at ``out_size`` (W, H). Only axis-aligned scale and offset
    (no skew) are supported. Returns rgb uint8 (H, W, 3) and depth float32 (H, W) or None;
    a depth of shape (H, W, C) moves its extra channels (e.g. labels) with it."""
    import cv2
    ax, ay = K_dst[0, 0] / K_src[0, 0], K_dst[1, 1] / K_src[1, 1]
    bx, by = K_dst[0, 2] - ax * K_src[0, 2], K_dst[1, 2] - ay * K_src[1, 2]
    w, h = out_size
    src = rgb
    if ax < 0.75 or ay < 0.75:  # shrink by area first against aliasing, then the exact affine
        sh, sw = rgb.shape[:2]
        iw, ih = max(1, int(round(sw * ax / 0.9))), max(1, int(round(sh * ay / 0.9)))
        if iw < sw and ih < sh:
            src = cv2.resize(rgb, (iw, ih), interpolation=cv2.INTER_AREA)
            K_mid = resize_intrinsics(K_src, (sw, sh), (iw, ih))
            return (warp_to_intrinsics(src, None, K_mid, K_dst, out_size)[0],
                    None if depth is None else _warp_depth(depth, ax, bx, ay, by, w, h))
    M = np.array([[ax, 0.0, bx], [0.0, ay, by]])
    out_rgb = cv2.warpAffine(src, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out_rgb, None if depth is None else _warp_depth(depth, ax, bx, ay, by, w, h)


def _warp_depth(depth, ax, bx, ay, by, w, h) -> np.ndarray:
    """Nearest-neighbour: destination pixel (i, j) takes the source pixel whose centre is
    nearest to ``((j - bx) / ax, (i - by) / ay)``; NaN outside the source. ``depth`` is
    (H, W) or (H, W, C)."""
    sh, sw = depth.shape[:2]
    u = np.floor((np.arange(w) - bx) / ax + 0.5).astype(np.int64)
    v = np.floor((np.arange(h) - by) / ay + 0.5).astype(np.int64)
    out = np.full((h, w) + depth.shape[2:], np.nan, dtype=np.float32)
    ju, iv = (u >= 0) & (u < sw), (v >= 0) & (v < sh)
    out[np.ix_(iv, ju)] = depth[np.ix_(v[iv], u[ju])]
    return out


def resize_frame(rgb, depth, K, out_size):
    """Resize to ``out_size`` (W, H) (aspect may change); returns (rgb, depth, K')."""
    h, w = rgb.shape[:2]
    K2 = resize_intrinsics(K, (w, h), tuple(out_size))
    return (*warp_to_intrinsics(rgb, depth, K, K2, tuple(out_size)), K2)


@dataclass
class CameraAugment:
    """Random camera-aware augmentation to a fixed output size.

    Per call: crop a window of the output aspect covering ``crop_scale`` (fraction of the
    largest such window's side) at a random place, resize it to ``out_size``, zoom by a
    factor in ``zoom`` about the image centre (in ``narrow_zoom`` instead for a fraction
    ``narrow_fraction`` of the draws: fields of view narrower than the data's, e.g. (1.25,
    2.2) takes a 64-degree camera to 30-45 degrees, while most draws keep the data's cameras),
    then shift the principal point by up to ``shift`` of the image size (whole pixels).
    For a fraction ``blur_fraction`` of the draws the result is then shrunk by a factor in
    ``blur_factor`` and brought back to size (a lower-resolution camera the runtime resizes;
    K unchanged), so that blur is not a cue for a long lens, which the narrow zooms of small
    renders otherwise teach (they upsample). For a fraction ``colour_fraction`` of the draws
    the colours change as another camera's would (`jitter_colours`: brightness, contrast and
    saturation by factors in ``colour_gain``, hue by up to ``hue_shift`` of the colour
    circle). ``rng`` must be supplied per call; the frames of a clip are called with
    generators of one seed, so that they share every draw.

    ``flip_fraction`` is the share of clips mirrored left to right (`mirror_clip`), drawn
    once per clip by the clip's owner (`mirrors`): a mirror is not a camera, and it turns the
    clip's poses too.
    """

    out_size: tuple[int, int] = (256, 192)
    crop_scale: tuple[float, float] = (0.7, 1.0)
    zoom: tuple[float, float] = (0.85, 1.25)
    shift: float = 0.06
    narrow_zoom: tuple[float, float] = (1.25, 2.2)
    narrow_fraction: float = 0.0
    blur_fraction: float = 0.0
    blur_factor: tuple[float, float] = (1.5, 3.0)
    colour_fraction: float = 0.0
    colour_gain: tuple[float, float] = (0.8, 1.25)
    hue_shift: float = 0.03
    flip_fraction: float = 0.0

    def intrinsics(self, K: np.ndarray, in_size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """K' (3, 3) of one random draw (the images follow from K and K')."""
        W, H = in_size
        ow, oh = self.out_size
        aspect = ow / oh
        cw, ch = (W, W / aspect) if W / H < aspect else (H * aspect, H)
        s = rng.uniform(*self.crop_scale)
        cw, ch = max(1, int(cw * s)), max(1, int(ch * s))
        x0, y0 = rng.integers(0, W - cw + 1), rng.integers(0, H - ch + 1)
        K2 = crop_intrinsics(K, float(x0), float(y0))
        K2 = resize_intrinsics(K2, (cw, ch), (ow, oh))
        zoom = self.zoom
        if self.narrow_fraction > 0 and rng.uniform() < self.narrow_fraction:  # no extra draw when off
            zoom = self.narrow_zoom
        K2 = zoom_intrinsics(K2, float(rng.uniform(*zoom)), (ow, oh))
        dx, dy = (rng.integers(-int(self.shift * n), int(self.shift * n) + 1) for n in (ow, oh))
        return shift_principal_point(K2, float(dx), float(dy))

    def __call__(self, rgb, depth, K, rng: np.random.Generator):
        """Returns (rgb uint8 (H', W', 3), depth float32 (H', W') NaN invalid, K' (3, 3))."""
        h, w = rgb.shape[:2]
        K2 = self.intrinsics(K, (w, h), rng)
        out_rgb, out_depth = warp_to_intrinsics(rgb, depth, K, K2, self.out_size)
        if self.blur_fraction > 0 and rng.uniform() < self.blur_fraction:  # no extra draw when off
            out_rgb = soften(out_rgb, float(rng.uniform(*self.blur_factor)))
        if self.colour_fraction > 0 and rng.uniform() < self.colour_fraction:
            gains = rng.uniform(*self.colour_gain, size=3)
            out_rgb = jitter_colours(out_rgb, *gains, float(rng.uniform(-self.hue_shift, self.hue_shift)))
        return out_rgb, out_depth, K2

    def mirrors(self, seed: int) -> bool:
        """Whether the clip drawn with `seed` is mirrored (no draw from the frames' stream)."""
        return self.flip_fraction > 0 and np.random.default_rng([seed, 1]).uniform() < self.flip_fraction


def jitter_colours(rgb: np.ndarray, brightness: float, contrast: float, saturation: float,
                   hue: float) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 with its brightness multiplied by ``brightness``, its contrast
    about its mean grey by ``contrast``, its saturation about each pixel's grey by
    ``saturation`` and its hue turned by ``hue`` of the colour circle (0.5: opposite colours);
    1, 1, 1, 0 leaves it as it is."""
    import cv2
    x = rgb.astype(np.float32) * brightness
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey.mean()) * contrast + grey.mean()
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - grey[..., None]) * saturation + grey[..., None]
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if hue:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV)           # 8-bit hue: 0..179 for the circle
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(round(hue * 180))) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return out


MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])  # x -> -x in a camera's optical frame (and the world's)


def mirror_clip(images: np.ndarray, values: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A clip seen in a mirror, left to right: what a camera would have recorded in the
    mirror image of the scene.

    Args:
        images: (F, H, W, 3) frames; values: (F, H, W[, C]) depth (and labels) with them.
        K: (F, 3, 3) intrinsics, pixel centres at integer coordinates.
        T_world_cam: (F, 4, 4) camera-to-world poses.
    Returns:
        The mirrored (images, values, K, T_world_cam): pixels reversed along width, cx -> W - 1
        - cx, and every pose conjugated by x -> -x (rotations stay rotations; a relative pose's
        x translation and its turns about y and z change sign).
    """
    K = np.array(K, dtype=np.float64, copy=True)
    K[:, 0, 2] = images.shape[2] - 1 - K[:, 0, 2]
    return (np.ascontiguousarray(images[:, :, ::-1]), np.ascontiguousarray(values[:, :, ::-1]), K,
            MIRROR @ np.asarray(T_world_cam, dtype=np.float64) @ MIRROR)


def soften(rgb: np.ndarray, factor: float) -> np.ndarray:
    """``rgb`` (H, W, 3) uint8 shrunk by ``factor`` (area) and resized back (bilinear): the
    detail of a camera with ``factor`` times fewer pixels per side, same size and K."""
    import cv2
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, round(w / factor)), max(1, round(h / factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
