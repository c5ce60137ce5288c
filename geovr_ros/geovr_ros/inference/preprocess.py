"""Preprocessing stage: camera RGB + K -> the model's normalised input and its K.

The image is never stretched: a camera whose aspect differs from the model input's is
centre-cropped to it first (`aspect_window`), then resized, and K follows both. By default the
input size follows the camera (`fitted_input_size`: about the trained pixel count at the
camera's aspect, 288x192 for a 3:2 camera, 288x160 for 16:9), so that only a sliver is cut; a
stretched image shows a K-aware model a camera that does not exist (things 12 % taller than
wide for a 3:2 camera fed at 4:3).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from geovr_ros.geometry import ShapeError, crop_intrinsics, resize_intrinsics, validate_intrinsics

# the pixel count of a fitted input stays within this factor of the trained input's
FITTED_AREA_RANGE = (0.8, 1.25)


def fitted_input_size(camera_size: tuple[int, int], trained_size: tuple[int, int],
                      multiple: int) -> tuple[int, int]:
    """The model input (W, H) for a camera of `camera_size` (W, H): sides multiples of
    `multiple`, a pixel count within FITTED_AREA_RANGE of `trained_size`'s, and of those the
    aspect nearest the camera's (then the pixel count nearest the trained one). A 4:3 camera
    gets the trained 256x192 itself; 3:2 gets 288x192, 16:9 288x160 (1.2 % cut), 1:1 224x224."""
    cw, ch = int(camera_size[0]), int(camera_size[1])
    if cw <= 0 or ch <= 0 or multiple <= 0:
        raise ValueError(f'camera_size {camera_size} and multiple {multiple} must be positive')
    aspect, area = cw / ch, trained_size[0] * trained_size[1]
    best, best_key = (int(trained_size[0]), int(trained_size[1])), None
    for h in range(multiple, int(math.sqrt(area * FITTED_AREA_RANGE[1] * 16)) + multiple, multiple):
        for w in {max(multiple, math.floor(h * aspect / multiple) * multiple),
                  math.ceil(h * aspect / multiple) * multiple}:
            share = w * h / area
            if not FITTED_AREA_RANGE[0] <= share <= FITTED_AREA_RANGE[1]:
                continue
            key = (round(abs(math.log(w / h / aspect)), 4), abs(math.log(share)))
            if best_key is None or key < best_key:
                best, best_key = (w, h), key
    return best


def aspect_window(camera_size: tuple[int, int], input_size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, w, h): the largest centred window of a `camera_size` (W, H) image with the
    aspect of `input_size` (W, H; or any (aspect, 1)), whole pixels; the whole image when the
    aspects agree to within a pixel."""
    cw, ch = int(camera_size[0]), int(camera_size[1])
    iw, ih = float(input_size[0]), float(input_size[1])
    if cw * ih > ch * iw:          # the camera is wider: cut its sides
        w = int(round(ch * iw / ih))
        return ((cw - w) // 2, 0, w, ch) if cw - w >= 2 else (0, 0, cw, ch)
    h = int(round(cw * ih / iw))   # taller: cut top and bottom
    return (0, (ch - h) // 2, cw, h) if ch - h >= 2 else (0, 0, cw, ch)


def input_intrinsics(K: np.ndarray, camera_size: tuple[int, int], input_size: tuple[int, int]) -> np.ndarray:
    """K (..., 3, 3) of a `camera_size` (W, H) image as the model is fed it at `input_size`
    (W, H): through the cut to its aspect (`aspect_window`) and the resize."""
    x0, y0, w, h = aspect_window(camera_size, input_size)
    return resize_intrinsics(crop_intrinsics(K, float(x0), float(y0)), (w, h),
                             (int(input_size[0]), int(input_size[1])))


def fit_to_input(rgb: np.ndarray, K: np.ndarray, input_size: tuple[int, int]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """`rgb` (H, W, 3) cut to `input_size`'s aspect (`aspect_window`) and resized to it (area
    when shrinking, bilinear otherwise); returns (rgb (h, w, 3), K (3, 3) of it)."""
    height, width = rgb.shape[:2]
    x0, y0, w, h = aspect_window((width, height), input_size)
    rgb = rgb[y0:y0 + h, x0:x0 + w]
    out_w, out_h = int(input_size[0]), int(input_size[1])
    if (w, h) != (out_w, out_h):
        shrinking = out_w < w or out_h < h
        rgb = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return rgb, input_intrinsics(K, (width, height), input_size)


@dataclass(frozen=True)
class PreparedFrame:
    """One frame ready for the model.

    Attributes:
        chw: float32 (3, H, W), normalised as (rgb / 255 - mean) / std.
        K: float64 (3, 3) intrinsics in the model input's pixel coordinates.
        source_size: (W, H) of the camera image it came from, pixels.
    """

    chw: np.ndarray
    K: np.ndarray
    source_size: tuple[int, int]

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of the model input, pixels."""
        return self.chw.shape[2], self.chw.shape[1]


class Preprocessor:
    """Fits an RGB image to the model input (cut to its aspect, resized) and normalises it;
    updates K.

    Args:
        input_size: (W, H) of the model input, pixels; with `multiple_of`, the trained size
            whose pixel count each camera's input keeps (`fitted_input_size`).
        mean, std: per-channel RGB normalisation of rgb / 255 (from the model metadata).
        multiple_of: None: every camera is fed at `input_size`. A number (the model's
            geovr.shapes.multiple_of): each camera at the input size fitted to its aspect.
    """

    def __init__(self, input_size: tuple[int, int], mean, std, multiple_of: int | None = None) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.multiple_of = multiple_of
        mean = np.asarray(mean, dtype=np.float32).reshape(3)
        std = np.asarray(std, dtype=np.float32).reshape(3)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)  # rgb * scale + offset
        self._offset = (-mean / std).astype(np.float32)
        self._fitted: dict[tuple[int, int], tuple[int, int]] = {}

    def size_for(self, camera_size: tuple[int, int]) -> tuple[int, int]:
        """The model input (W, H) a camera of `camera_size` (W, H) is fed at."""
        if self.multiple_of is None:
            return self.input_size
        key = (int(camera_size[0]), int(camera_size[1]))
        if key not in self._fitted:
            self._fitted[key] = fitted_input_size(key, self.input_size, self.multiple_of)
        return self._fitted[key]

    def __call__(self, rgb: np.ndarray, K: np.ndarray, size: tuple[int, int] | None = None) -> PreparedFrame:
        """Prepare one frame.

        Args:
            rgb: uint8 (H, W, 3) RGB image, any size.
            K: (3, 3) intrinsics of `rgb`, pixels.
            size: (W, H) to feed it at instead of `size_for((W, H))` (e.g. a stored keyframe
                paired with a frame of another camera).
        Returns:
            PreparedFrame at that size with K through the cut and the resize.
        Raises:
            ShapeError: `rgb` is not uint8 (H, W, 3).
            InvalidIntrinsicsError: `K` is not a usable pinhole matrix for that image.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ShapeError(f'rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}')
        height, width = rgb.shape[:2]
        validate_intrinsics(K, width, height)
        rgb, K_model = fit_to_input(rgb, K, size or self.size_for((width, height)))
        normalised = rgb.astype(np.float32) * self._scale + self._offset  # (H, W, 3)
        return PreparedFrame(np.ascontiguousarray(normalised.transpose(2, 0, 1)), K_model,
                             (width, height))


def clip_inputs(ref: PreparedFrame, cur: PreparedFrame) -> dict[str, np.ndarray]:
    """The perception graph's inputs for one clip (batch 1): images (1, 2, 3, H, W) and
    intrinsics (1, 2, 3, 3), float32, reference first."""
    if ref.size != cur.size:
        raise ShapeError(f'reference and current frames differ in size: {ref.size} vs {cur.size}')
    images = np.stack([ref.chw, cur.chw])[None]
    intrinsics = np.stack([ref.K, cur.K]).astype(np.float32)[None]
    return {'images': images, 'intrinsics': intrinsics}
