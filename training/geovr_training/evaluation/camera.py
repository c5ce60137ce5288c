"""Camera changes for the robustness table: each maps a sequence's frames to the images
and intrinsics another camera at the same place would have produced. K comes from
`geovr_ros.geometry`; the pixels follow from K and K' through the data engine's
`warp_to_intrinsics` (RGB bilinear, depth nearest with values unchanged, NaN outside).

Arrays: rgb uint8 (N, H, W, 3), depth float32 (N, H, W) metres NaN invalid (or None), K (N, 3, 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geovr_ros.geometry import (crop_intrinsics, fov_from_intrinsics, resize_intrinsics, shift_principal_point,
                                zoom_intrinsics)
from geovr_ros.inference.preprocess import aspect_window, input_intrinsics


@dataclass(frozen=True)
class CameraChange:
    """One condition of the robustness table."""

    name: str
    kind: str  # 'identity' | 'resize' | 'zoom' | 'shift' (re-imaged, black where unseen) | 'crop' | 'fov' | 'aspect'
    value: float = 1.0
    value_y: float = 0.0
    native_size: bool = False  # fed to the model at the changed size, not resized to its trained size


DEFAULT_CHANGES = (
    CameraChange('original', 'identity'),
    CameraChange('resize x0.5', 'resize', 0.5, native_size=True),
    CameraChange('resize x2', 'resize', 2.0, native_size=True),
    CameraChange('resize x0.5, to the trained size (runtime)', 'resize', 0.5),
    CameraChange('resize x2, to the trained size (runtime)', 'resize', 2.0),
    CameraChange('zoom x1.5', 'zoom', 1.5),
    CameraChange('principal point +24,+16 px', 'shift', 24.0, 16.0),
    CameraChange('principal point +24,+16 px, off-centre crop', 'crop', 24.0, 16.0),
    CameraChange('hfov 30 deg (training 45-110)', 'fov', 30.0),
    CameraChange('16:9 camera (cut from the original frames)', 'aspect', 16 / 9),
)


def warp_frames(rgb: np.ndarray, depth: np.ndarray | None, k: np.ndarray, k_new: np.ndarray,
                size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Every frame re-imaged with intrinsics k_new (N, 3, 3) at size (W, H)."""
    from geovr_training.data.augment import warp_to_intrinsics

    out_rgb, out_depth = [], []
    for i in range(len(rgb)):
        r, d = warp_to_intrinsics(rgb[i], None if depth is None else depth[i], k[i], k_new[i], tuple(size))
        out_rgb.append(r)
        out_depth.append(d)
    return np.stack(out_rgb), None if depth is None else np.stack(out_depth), np.asarray(k_new)


def resize_frames(rgb, depth, k, size):
    """Resize to size (W, H), K updated."""
    src = (rgb.shape[2], rgb.shape[1])
    return warp_frames(rgb, depth, k, resize_intrinsics(k, src, tuple(size)), size)


def crop_frames(rgb: np.ndarray, depth: np.ndarray | None, k: np.ndarray, window: tuple[int, int, int, int]):
    """Every frame cut to `window` (x0, y0, w, h) pixels, K's principal point shifted."""
    x0, y0, w, h = window
    return (np.ascontiguousarray(rgb[:, y0:y0 + h, x0:x0 + w]),
            None if depth is None else np.ascontiguousarray(depth[:, y0:y0 + h, x0:x0 + w]),
            crop_intrinsics(k, float(x0), float(y0)))


def cut_to_multiple(rgb: np.ndarray, depth: np.ndarray | None, k: np.ndarray, multiple: int):
    """The centre window whose sides are the largest multiples of `multiple` (at least one),
    K shifted: an image the raw network takes at its own size, with no pixel stretched."""
    height, width = rgb.shape[1:3]
    w, h = max(multiple, width // multiple * multiple), max(multiple, height // multiple * multiple)
    if (w, h) == (width, height):
        return rgb, depth, k
    if w > width or h > height:
        raise ValueError(f'a {width}x{height} image holds no {multiple}-pixel multiple')
    return crop_frames(rgb, depth, k, ((width - w) // 2, (height - h) // 2, w, h))


def fit_frames(rgb: np.ndarray, depth: np.ndarray | None, k: np.ndarray, size: tuple[int, int]):
    """Every frame cut to the aspect of `size` (W, H) and resized to it, K updated: what the
    runtime's preprocessing feeds the model (`geovr_ros.inference.preprocess.fit_to_input`)."""
    return warp_frames(rgb, depth, k, input_intrinsics(k, (rgb.shape[2], rgb.shape[1]), size), size)


def apply_camera_change(change: CameraChange, rgb: np.ndarray, depth: np.ndarray | None,
                        k: np.ndarray, multiple: int = 32):
    """Return (rgb, depth, K) as seen by the changed camera, pixels square as the original's;
    a `native_size` change's sides are cut to multiples of `multiple` (the raw network's)."""
    height, width = rgb.shape[1:3]
    size = (width, height)
    if change.kind == 'identity':
        return rgb, depth, k
    if change.kind == 'resize':  # a camera with more or fewer pixels: square pixels kept
        rgb, depth, k = resize_frames(rgb, depth, k, (max(1, int(round(width * change.value))),
                                                      max(1, int(round(height * change.value)))))
        return cut_to_multiple(rgb, depth, k, multiple) if change.native_size else (rgb, depth, k)
    if change.kind == 'zoom':
        return warp_frames(rgb, depth, k, zoom_intrinsics(k, change.value, size), size)
    if change.kind == 'shift':
        return warp_frames(rgb, depth, k, shift_principal_point(k, change.value, change.value_y), size)
    if change.kind == 'crop':  # a smaller sensor, off-centre: no unseen border
        dx, dy = int(round(change.value)), int(round(change.value_y))
        x0, y0 = abs(dx) - dx, abs(dy) - dy
        return crop_frames(rgb, depth, k, (x0, y0, width - 2 * abs(dx), height - 2 * abs(dy)))
    if change.kind == 'fov':
        hfov = fov_from_intrinsics(k[0], size)[0]
        zoom = math.tan(hfov / 2) / math.tan(math.radians(change.value) / 2)
        return warp_frames(rgb, depth, k, zoom_intrinsics(k, zoom, size), size)
    if change.kind == 'aspect':  # a camera of another aspect, e.g. 16:9: the centre window of it
        return crop_frames(rgb, depth, k, aspect_window(size, (change.value, 1.0)))
    raise ValueError(f'unknown camera change kind {change.kind!r}')
