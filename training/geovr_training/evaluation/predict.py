"""Run GeoVR-S over a whole sequence: per-frame metric depth, relative poses of consecutive
frames chained into a trajectory, and the scale of each clip."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from geovr_training.evaluation.camera import resize_frames
from geovr_training.model import GeoVRModel, normalize_images


@dataclass
class SequencePrediction:
    """depth (N, H, W) metres at the sequence's size; rel_poses (N-1, 4, 4) T_i_{i+1};
    trajectory (N, 4, 4) camera-to-world chained from identity; scales (N-1,) metres;
    descriptors (N, D); seconds: model time."""

    depth: np.ndarray
    rel_poses: np.ndarray
    trajectory: np.ndarray
    scales: np.ndarray
    descriptors: np.ndarray
    seconds: float


def model_input_size(width: int, height: int, input_size: tuple[int, int] | None, multiple: int = 16) -> tuple[int, int]:
    """(W, H) fed to the model: `input_size` when given, else the image size rounded to `multiple`."""
    if input_size is not None:
        return int(input_size[0]), int(input_size[1])
    return max(multiple, int(round(width / multiple)) * multiple), max(multiple, int(round(height / multiple)) * multiple)


@torch.no_grad()
def predict_sequence(model: GeoVRModel, rgb: np.ndarray, k: np.ndarray, input_size: tuple[int, int] | None = None,
                     batch_size: int = 4) -> SequencePrediction:
    """rgb uint8 (N, H, W, 3), K (N, 3, 3) -> SequencePrediction on clips (i, i+1).

    Frames are resized to `input_size` (W, H) (K updated) when given; predicted depth is
    resized back to (H, W) bilinearly. Frame i's depth comes from clip (i, i+1), the last
    frame's from the last clip.
    """
    import time

    n, height, width = rgb.shape[:3]
    if n < 2:
        raise ValueError(f'a sequence needs at least 2 frames, got {n}')
    in_w, in_h = model_input_size(width, height, input_size, model.args.patch_size)
    if (in_w, in_h) != (width, height):
        frames, _, k_in = resize_frames(rgb, None, k, (in_w, in_h))
    else:
        frames, k_in = rgb, k
    images = normalize_images(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0)  # (N, 3, h, w)
    k_t = torch.from_numpy(np.asarray(k_in, dtype=np.float32))
    depth = np.zeros((n, in_h, in_w), np.float32)
    rel, scales, desc = [], [], np.zeros((n, model.args.descriptor_dim), np.float32)
    model.eval()
    start = time.perf_counter()
    for first in range(0, n - 1, batch_size):
        idx = np.arange(first, min(first + batch_size, n - 1))
        clip_images = torch.stack([images[idx], images[idx + 1]], dim=1)
        clip_k = torch.stack([k_t[idx], k_t[idx + 1]], dim=1)
        out = model(clip_images, clip_k)
        d = out['depth'].numpy()
        depth[idx] = d[:, 0]
        desc[idx] = out['descriptor'][:, 0].numpy()
        if idx[-1] == n - 2:
            depth[n - 1] = d[-1, 1]
            desc[n - 1] = out['descriptor'][-1, 1].numpy()
        rel.append(out['rel_pose'].double().numpy())
        scales.append(out['scale'].numpy())
    seconds = time.perf_counter() - start
    if (in_w, in_h) != (width, height):
        depth = np.stack([cv2.resize(d, (width, height), interpolation=cv2.INTER_LINEAR) for d in depth])
    rel_poses = np.concatenate(rel)
    trajectory = np.zeros((n, 4, 4))
    trajectory[0] = np.eye(4)
    for i in range(n - 1):
        trajectory[i + 1] = trajectory[i] @ rel_poses[i]
    return SequencePrediction(depth, rel_poses, trajectory, np.concatenate(scales), desc, seconds)
