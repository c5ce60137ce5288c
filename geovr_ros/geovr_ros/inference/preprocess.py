"""Preprocessing stage: camera RGB + K -> the model's normalised input and its K."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from geovr_ros.geometry import ShapeError, resize_intrinsics, validate_intrinsics


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
    """Resizes an RGB image to the model input size and normalises it; updates K.

    Args:
        input_size: (W, H) of the model input, pixels.
        mean, std: per-channel RGB normalisation of rgb / 255 (from the model metadata).
    """

    def __init__(self, input_size: tuple[int, int], mean, std) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        mean = np.asarray(mean, dtype=np.float32).reshape(3)
        std = np.asarray(std, dtype=np.float32).reshape(3)
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)  # rgb * scale + offset
        self._offset = (-mean / std).astype(np.float32)

    def __call__(self, rgb: np.ndarray, K: np.ndarray) -> PreparedFrame:
        """Prepare one frame.

        Args:
            rgb: uint8 (H, W, 3) RGB image, any size.
            K: (3, 3) intrinsics of `rgb`, pixels.
        Returns:
            PreparedFrame at `input_size` with K from `geovr_ros.geometry.resize_intrinsics`.
        Raises:
            ShapeError: `rgb` is not uint8 (H, W, 3).
            InvalidIntrinsicsError: `K` is not a usable pinhole matrix for that image.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ShapeError(f'rgb must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}')
        height, width = rgb.shape[:2]
        validate_intrinsics(K, width, height)
        out_w, out_h = self.input_size
        if (width, height) != (out_w, out_h):
            shrinking = out_w < width or out_h < height
            rgb = cv2.resize(rgb, (out_w, out_h),
                             interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
            K_model = resize_intrinsics(K, (width, height), (out_w, out_h))
        else:
            K_model = np.array(K, dtype=np.float64)
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
