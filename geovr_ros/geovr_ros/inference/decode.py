"""Decoding stage: the perception graph's raw outputs -> a `PerceptionResult`."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from geovr_ros.geometry import nearest_pose
from geovr_ros.inference.backends.base import InferenceError

PERCEPTION_OUTPUTS = ('depth', 'rel_pose', 'scale', 'tokens', 'token_xyz', 'descriptor')


@dataclass
class PerceptionResult:
    """What the perception graph says about the current frame of a (reference, current) clip.

    Attributes:
        depth: float32 (h, w) metric depth of the current frame along optical z, metres, at
            the model input resolution.
        K: float64 (3, 3) intrinsics of `depth` (the current frame's K resized to the model
            input).
        rel_pose: float64 (4, 4) T_ref_cur, current camera in the reference camera's optical
            frame, translation in metres.
        scale: the clip's metric scale factor (median depth), metres.
        tokens: float32 (N, C) memory tokens of the current frame.
        token_xyz: float32 (N, 3) token positions in the current camera's optical frame, m.
        descriptor: float32 (D,) L2-normalised global place descriptor of the current frame.
        depth_ref: float32 (h, w) depth of the reference frame, metres; None from a pair head
            (it decodes the current frame only).
        depth_confidence: float32 (h, w) in [0, 1), the depth decoder's confidence in each pixel
            of `depth` (its expected error is about 0.2 (1 - confidence) of `scale`); None from
            a model exported without it.
        timings_ms: per-stage wall time, milliseconds ('preprocess', 'infer', 'decode',
            'total').
    """

    depth: np.ndarray
    K: np.ndarray
    rel_pose: np.ndarray
    scale: float
    tokens: np.ndarray
    token_xyz: np.ndarray
    descriptor: np.ndarray
    depth_ref: np.ndarray | None
    depth_confidence: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def rescaled(self, factor: float) -> 'PerceptionResult':
        """The same result with every length multiplied by `factor` (> 0): depth, depth_ref,
        scale, token_xyz and rel_pose's translation (a metric scale correction)."""
        factor = float(factor)
        if not np.isfinite(factor) or factor <= 0:
            raise ValueError(f'a depth scale factor must be a positive number, got {factor!r}')
        rel_pose = self.rel_pose.copy()
        rel_pose[:3, 3] *= factor
        return dataclasses.replace(
            self, depth=(self.depth * factor).astype(np.float32), rel_pose=rel_pose, scale=self.scale * factor,
            token_xyz=(self.token_xyz * factor).astype(np.float32),
            depth_ref=None if self.depth_ref is None else (self.depth_ref * factor).astype(np.float32))


def _rigid(T: np.ndarray) -> np.ndarray:
    """The nearest rigid pose of a finite 4x4 (int8 or fp16 graphs bend the rotation block and
    the last row: an int8 pair head's last row read 0.985); a non-finite one as it is, float64."""
    T = np.asarray(T, dtype=np.float64)
    return nearest_pose(T) if np.all(np.isfinite(T)) else T


def decode_perception(outputs: dict[str, np.ndarray], K_cur: np.ndarray) -> PerceptionResult:
    """Take batch element 0 of the perception graph outputs.

    The per-frame outputs are (B, 2, ...) for (reference, current) from the perception graph,
    or (B, 1, ...) for the current frame alone from the pair head; the current frame is the
    last along axis 1 either way.

    Args:
        outputs: backend outputs named as in PERCEPTION_OUTPUTS (batch first).
        K_cur: (3, 3) K of the current frame at the model input resolution.
    Raises:
        InferenceError: an output is missing or has an unexpected shape.
    """
    missing = [name for name in PERCEPTION_OUTPUTS if name not in outputs]
    if missing:
        raise InferenceError(f'the graph did not produce the outputs {missing} '
                             f'(got {sorted(outputs)})')
    depth = np.asarray(outputs['depth'])
    if depth.ndim != 4 or depth.shape[1] not in (1, 2):
        raise InferenceError(f'depth must be (B, 2, H, W) or (B, 1, H, W), got {depth.shape}')
    confidence = outputs.get('depth_confidence')  # optional: models exported before it lack it
    if confidence is not None:
        confidence = np.asarray(confidence)
        if confidence.shape != depth.shape:
            raise InferenceError(f'depth_confidence must have the shape of depth {depth.shape}, '
                                 f'got {confidence.shape}')
        confidence = confidence[0, -1].astype(np.float32, copy=False)
    rel_pose = np.asarray(outputs['rel_pose'])
    if rel_pose.shape[1:] != (4, 4):
        raise InferenceError(f'rel_pose must be (B, 4, 4), got {rel_pose.shape}')
    return PerceptionResult(
        depth=depth[0, -1].astype(np.float32, copy=False),
        K=np.asarray(K_cur, dtype=np.float64),
        rel_pose=_rigid(rel_pose[0]),
        scale=float(np.asarray(outputs['scale']).reshape(-1)[0]),
        tokens=np.asarray(outputs['tokens'])[0, -1].astype(np.float32, copy=False),
        token_xyz=np.asarray(outputs['token_xyz'])[0, -1].astype(np.float32, copy=False),
        descriptor=np.asarray(outputs['descriptor'])[0, -1].astype(np.float32, copy=False),
        depth_ref=depth[0, 0].astype(np.float32, copy=False) if depth.shape[1] == 2 else None,
        depth_confidence=confidence)
