"""Naming by windows: square crops of the image, each classified alone, then assigned to cells.

The ImageNet classifier learned from 224-pixel photographs that one object fills. Its
stride-32 cells on a 256x192 frame see a 32-pixel patch whose features also carry the
surroundings (each cell's receptive field spans most of the frame), so on a real office walk
a sofa is named well and a backpack, a coffee machine or a sink hardly at all. Cropping a
window around the object and classifying the crop alone names them (docs/objects.md,
"Naming by windows").

The layout (`window_boxes`): for each scale s (a fraction of the image height), square windows
of side s H at a stride of half a side (half overlapping), spread evenly over the image from
edge to edge. At 256x192 and scales (0.4, 0.7): 24 + 6 = 30 windows. Each window is resized to
`pixels` x `pixels` (`crop_windows`) and classified (the runtime: the `imagenet_cells` graph on
the batch, its cells averaged: the classifier's logits of the crop).

Cells (`window_cell_logits`): a cell takes, at each scale, the window whose centre is nearest
to its own (so the cell lies in that window's central half), and of those the window whose
most probable vocabulary category is most probable: a small object is named by the small
window that holds it, a large one by the large window. The result is one row of ImageNet
logits per cell, named as usual by the vocabulary (without pooling: a window already is the
pooled view).

`windowed_cell_logits` runs the three steps on one image with any classifier (the runtime's
`PerceptionPipeline.image_logits`, the evaluation's torch network).

Pure numpy + OpenCV (resizing); no rclpy, no onnxruntime.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from geovr_ros.geometry import ShapeError
from geovr_ros.objects.vocabulary import NUM_IMAGENET_CLASSES, Vocabulary, VocabularyError

__all__ = ['CELL_PIXELS', 'WINDOW_OVERLAP', 'crop_windows', 'window_boxes', 'window_cell_logits',
           'windowed_cell_logits']

WINDOW_OVERLAP = 0.5  # neighbouring windows of one scale share half their side
CELL_PIXELS = 32      # the cells windows are assigned to when the model states no patch size


def window_boxes(width: int, height: int, scales: Sequence[float],
                 overlap: float = WINDOW_OVERLAP) -> tuple[np.ndarray, np.ndarray]:
    """The windows of an image (width, height) pixels: (boxes (N, 4) float64 [x0, y0, x1, y1]
    pixels, x1 - x0 = y1 - y0 = s * height, all inside the image; scale_index (N,) int64: the
    position in `scales` of each box's scale). Per scale, row-major, top-left first.
    Raises VocabularyError for a scale outside (0, 1] or an empty image."""
    if width < 1 or height < 1:
        raise ShapeError(f'the image must have a positive size, got {width}x{height}')
    boxes, index = [], []
    for k, scale in enumerate(scales):
        if not (np.isfinite(scale) and 0 < scale <= 1):
            raise VocabularyError(f'window scales must be fractions of the image height in (0, 1], got {scale!r}')
        side = float(scale) * height
        step = side * (1 - overlap)
        nx = max(1, int(np.ceil((width - side) / step - 1e-9)) + 1)
        ny = max(1, int(np.ceil((height - side) / step - 1e-9)) + 1)
        for y in np.linspace(0, height - side, ny):
            for x in np.linspace(0, max(width - side, 0.0), nx):
                boxes.append((x, y, x + side, y + side))
                index.append(k)
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(index, dtype=np.int64)


def crop_windows(image: np.ndarray, boxes: np.ndarray, pixels: int) -> np.ndarray:
    """Each box of `image` (H, W, C) float32 (e.g. the normalised model input) resized to
    (pixels, pixels): (N, pixels, pixels, C) float32. Boxes are rounded to whole pixels
    (area averaging when shrinking, bilinear when enlarging)."""
    import cv2

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3:
        raise ShapeError(f'image must be (H, W, C), got shape {image.shape}')
    H, W = image.shape[:2]
    out = np.empty((len(boxes), pixels, pixels, image.shape[2]), dtype=np.float32)
    for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes, dtype=np.float64)):
        c0, r0 = int(round(max(x0, 0))), int(round(max(y0, 0)))
        c1, r1 = max(int(round(min(x1, W))), c0 + 1), max(int(round(min(y1, H))), r0 + 1)
        crop = image[r0:r1, c0:c1]
        shrink = crop.shape[0] >= pixels and crop.shape[1] >= pixels
        resized = cv2.resize(crop, (pixels, pixels), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        out[i] = resized.reshape(pixels, pixels, -1)
    return out


def window_cell_logits(window_logits: np.ndarray, boxes: np.ndarray, scale_index: np.ndarray,
                       grid: tuple[int, int], image_size: tuple[int, int], vocabulary: Vocabulary) -> np.ndarray:
    """ImageNet logits (h, w, 1000) of each cell of a (h, w) grid tiling the image
    (width, height), from the windows' logits (N, 1000): per scale the window whose centre is
    nearest to the cell's, then the one of those whose most probable vocabulary category is
    most probable (`Vocabulary.probabilities`, background excluded). Raises ShapeError when
    the counts disagree and VocabularyError for non-finite logits."""
    logits = np.asarray(window_logits)
    boxes = np.asarray(boxes, dtype=np.float64)
    scale_index = np.asarray(scale_index)
    if logits.ndim != 2 or logits.shape[1] != NUM_IMAGENET_CLASSES or len(logits) != len(boxes) \
            or len(scale_index) != len(boxes) or len(boxes) == 0:
        raise ShapeError(f'window logits {logits.shape}, boxes {boxes.shape} and scale indices '
                         f'{scale_index.shape} must describe the same N >= 1 windows')
    h, w = int(grid[0]), int(grid[1])
    width, height = image_size
    confidence = vocabulary.probabilities(logits)[:, :-1].max(axis=1)  # (N,)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    ys = (np.arange(h) + 0.5) * height / h
    xs = (np.arange(w) + 0.5) * width / w
    cells = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # (h w, 2) x, y
    distance = np.linalg.norm(cells[:, None] - centres[None], axis=-1)  # (h w, N)
    best = np.full(len(cells), -1)
    for k in np.unique(scale_index):
        members = np.flatnonzero(scale_index == k)
        nearest = members[distance[:, members].argmin(axis=1)]  # (h w,)
        better = (best < 0) | (confidence[nearest] > confidence[np.maximum(best, 0)])
        best = np.where(better, nearest, best)
    return logits[best].reshape(h, w, NUM_IMAGENET_CLASSES)


def windowed_cell_logits(chw: np.ndarray, vocabulary: Vocabulary, classify: Callable[[np.ndarray], np.ndarray],
                         cell: int = CELL_PIXELS) -> np.ndarray:
    """ImageNet logits (H / cell, W / cell, 1000) of the cells of one image chw (3, H, W), as
    normalised for the classifier, read from the vocabulary's windows: `window_boxes`,
    `crop_windows` at `window_pixels`, `classify` (crops (N, 3, p, p) float32 -> logits (N, 1000)),
    `window_cell_logits`."""
    height, width = chw.shape[1:]
    boxes, scale_index = window_boxes(width, height, vocabulary.windows)
    crops = crop_windows(np.asarray(chw).transpose(1, 2, 0), boxes, vocabulary.window_pixels)
    logits = classify(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)))
    return window_cell_logits(logits, boxes, scale_index, (height // cell, width // cell), (width, height), vocabulary)
