"""Multi-scale 3D feature distillation: 1 - cos to teacher features (2x2 average-pooled)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Mean over layers and positions of 1 - cos(student, teacher).

    student[i]: (B, F, C_i, h, w) projected student features; teacher[i]: (B, F, C_i, ht, wt).
    The teacher map is 2x2 average-pooled, then the student map is area-resampled to the
    pooled teacher grid (identity when the teacher has half the student's patch size).
    """
    if len(student) != len(teacher):
        raise ValueError(f'{len(student)} student projections for {len(teacher)} teacher features')
    total = student[0].sum() * 0.0
    for s, t in zip(student, teacher):
        b, nf, c = s.shape[:3]
        if t.shape[:3] != s.shape[:3]:
            raise ValueError(f'teacher feature {tuple(t.shape)} does not match student projection '
                             f'{tuple(s.shape)} in (B, F, C)')
        t = F.avg_pool2d(t.flatten(0, 1).float(), 2)  # (BF, C, ht/2, wt/2)
        s = F.adaptive_avg_pool2d(s.flatten(0, 1), t.shape[-2:])
        total = total + (1.0 - F.cosine_similarity(s, t.detach(), dim=1)).mean()
    return total / len(student)
