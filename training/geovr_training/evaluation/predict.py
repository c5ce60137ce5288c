"""Run GeoVR-S over a whole sequence: per-frame metric depth, relative poses of consecutive
frames chained into a trajectory, and the scale of each clip.

The network runs in PyTorch (`TorchClips`) or, exported on the fly to the ONNX contract graph,
in ONNX Runtime (`OnnxRuntimeClips`: the runtime's engine on CPU, several times faster)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from geovr_ros.inference.preprocess import aspect_window, fitted_input_size
from geovr_training.evaluation.camera import fit_frames
from geovr_training.model import GeoVRv2Model, normalize_images


@dataclass
class SequencePrediction:
    """depth (N, H, W) metres at the sequence's size; rel_poses (N-1, 4, 4) T_i_{i+1};
    trajectory (N, 4, 4) camera-to-world chained from identity; scales (N-1,) metres;
    descriptors (N, D); seconds: model time; depth_confidence (N, H, W) in [0, 1) the depth
    decoder's confidence (None from a runner without it)."""

    depth: np.ndarray
    rel_poses: np.ndarray
    trajectory: np.ndarray
    scales: np.ndarray
    descriptors: np.ndarray
    seconds: float
    depth_confidence: np.ndarray | None = None


def model_input_size(width: int, height: int, input_size: tuple[int, int] | None, multiple: int = 32) -> tuple[int, int]:
    """(W, H) fed to the model: with the trained `input_size`, the runtime's size for this
    camera (about its pixel count at the camera's aspect: `fitted_input_size`), else the image
    size rounded to `multiple`."""
    if input_size is not None:
        return fitted_input_size((width, height), input_size, multiple)
    return max(multiple, int(round(width / multiple)) * multiple), max(multiple, int(round(height / multiple)) * multiple)


class TorchClips:
    """(images (B, 2, 3, H, W) normalised, K (B, 2, 3, 3)) -> numpy contract outputs, in PyTorch."""

    name = 'torch'

    def __init__(self, model: GeoVRv2Model):
        self.model = model.eval()
        self.patch_size = model.args.patch_size
        self.descriptor_dim = model.args.descriptor_dim

    @torch.no_grad()
    def __call__(self, images: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
        out = self.model(torch.from_numpy(images), torch.from_numpy(k))
        return {name: out[name].numpy() for name in ('depth', 'rel_pose', 'scale', 'descriptor', 'depth_confidence')}


class OnnxRuntimeClips:
    """The same on ONNX Runtime (CPU): the model exported to the contract graph (dynamic
    batch and size) into a temporary file, run with the runtime's session options."""

    name = 'onnxruntime'

    def __init__(self, model: GeoVRv2Model, height: int = 192, width: int = 256, threads: int = 0):
        import tempfile

        import onnxruntime as ort

        from geovr_training.model import CONTRACT_OUTPUTS, PerceptionGraph, export_onnx
        self.patch_size = model.args.patch_size
        self.descriptor_dim = model.args.descriptor_dim
        with tempfile.TemporaryDirectory() as folder:
            path = export_onnx(PerceptionGraph(model.eval()), f'{folder}/perception.onnx', list(CONTRACT_OUTPUTS),
                               height=height, width=width)
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            self.session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])

    def __call__(self, images: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
        names = ['depth', 'rel_pose', 'scale', 'descriptor', 'depth_confidence']
        outputs = self.session.run(names, {'images': images, 'intrinsics': k})
        return dict(zip(names, outputs))


def clip_runner(model: GeoVRv2Model, backend: str = 'torch', input_size: tuple[int, int] | None = None):
    """A clip runner for `predict_sequence`: 'torch' or 'onnxruntime'."""
    if backend == 'torch':
        return TorchClips(model)
    if backend == 'onnxruntime':
        width, height = input_size or (256, 192)
        return OnnxRuntimeClips(model, height, width)
    raise ValueError(f"backend must be 'torch' or 'onnxruntime', got {backend!r}")


def predict_sequence(model, rgb: np.ndarray, k: np.ndarray, input_size: tuple[int, int] | None = None,
                     batch_size: int = 4, progress: bool = False) -> SequencePrediction:
    """rgb uint8 (N, H, W, 3), K (N, 3, 3) -> SequencePrediction on clips (i, i+1).

    `model`: a GeoVR model (run in PyTorch) or a clip runner (`clip_runner`). With the trained
    `input_size` (W, H), frames are fed as the runtime feeds them (`model_input_size`: cut to
    the input's aspect, resized, K updated); predicted depth is resized back into the frame's
    window bilinearly, NaN where the cut took the frame. Frame i's depth comes from clip (i, i+1), the last frame's from the
    last clip. `progress` shows a bar over the clips.
    """
    import time

    from tqdm import tqdm

    runner = model if isinstance(model, (TorchClips, OnnxRuntimeClips)) else TorchClips(model)
    n, height, width = rgb.shape[:3]
    if n < 2:
        raise ValueError(f'a sequence needs at least 2 frames, got {n}')
    in_w, in_h = model_input_size(width, height, input_size, runner.patch_size)
    x0, y0, win_w, win_h = aspect_window((width, height), (in_w, in_h))
    if (in_w, in_h) != (width, height):
        frames, _, k_in = fit_frames(rgb, None, k, (in_w, in_h))
    else:
        frames, k_in = rgb, k
    images = normalize_images(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0).numpy()  # (N, 3, h, w)
    k_in = np.asarray(k_in, dtype=np.float32)
    depth = np.zeros((n, in_h, in_w), np.float32)
    confidence = np.zeros((n, in_h, in_w), np.float32)
    rel, scales, desc = [], [], np.zeros((n, runner.descriptor_dim), np.float32)
    start = time.perf_counter()
    for first in tqdm(range(0, n - 1, batch_size), desc='clips', disable=not progress, leave=False):
        idx = np.arange(first, min(first + batch_size, n - 1))
        out = runner(np.ascontiguousarray(np.stack([images[idx], images[idx + 1]], axis=1)),
                     np.ascontiguousarray(np.stack([k_in[idx], k_in[idx + 1]], axis=1)))
        d, c = out['depth'], out['depth_confidence']
        depth[idx], confidence[idx] = d[:, 0], c[:, 0]
        desc[idx] = out['descriptor'][:, 0]
        if idx[-1] == n - 2:
            depth[n - 1], confidence[n - 1] = d[-1, 1], c[-1, 1]
            desc[n - 1] = out['descriptor'][-1, 1]
        rel.append(out['rel_pose'].astype(np.float64))
        scales.append(out['scale'])
    seconds = time.perf_counter() - start
    if (in_w, in_h) != (width, height):  # back into the frame's window; NaN where the cut took it
        def to_frame(maps: np.ndarray) -> np.ndarray:
            full = np.full((n, height, width), np.nan, np.float32)
            full[:, y0:y0 + win_h, x0:x0 + win_w] = [cv2.resize(d, (win_w, win_h), interpolation=cv2.INTER_LINEAR)
                                                     for d in maps]
            return full
        depth, confidence = to_frame(depth), to_frame(confidence)
    rel_poses = np.concatenate(rel)
    trajectory = np.zeros((n, 4, 4))
    trajectory[0] = np.eye(4)
    for i in range(n - 1):
        trajectory[i + 1] = trajectory[i] @ rel_poses[i]
    return SequencePrediction(depth, rel_poses, trajectory, np.concatenate(scales), desc, seconds, confidence)
