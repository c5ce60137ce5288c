"""GeoVR-S QA: a fusion transformer over a question and a spatial memory.

Inputs (all float32; B questions, L question tokens, K options, M memory tokens):
  question (B, 384)        unit-norm MiniLM embedding of the question
  question_tokens (B, L, 384)  MiniLM's last hidden state per question token
  question_token_mask (B, L)   1 for a real token, 0 for padding
  options (B, K, 384)      embeddings of the answer options given with the question
  option_mask (B, K)       1 for a real option, 0 for padding
  memory_tokens (B, M, C)  geometry-encoder tokens of the keyframes (pooled per keyframe)
  memory_xyz (B, M, 3)     each token's position in the WORLD frame (z up), metres
  memory_time (B, M)       keyframe order in [0, 1] (0 oldest, 1 newest)
  memory_mask (B, M)       1 for a real token, 0 for padding (all 0: blind / empty memory)

Memory tokens are projected to the fusion width and summed with a learned 3D position
embedding of their world position (Fourier features of the position relative to the
memory's centroid -> MLP; translation invariant, so an odom frame anywhere works) and of
their time. The sequence [answer, pose and object-slot queries; options; question tokens;
memory] goes through a pre-norm transformer. Each object slot (the objects a question
names, in the order of their roles: "standing at A facing B, where is C") points at memory
tokens; training supervises these pointers with the instance masks (grounding). The answer
heads read the answer query plus explicit relations of the grounded objects (distances,
directions in the frame "at A facing B", turns, spreads, first-seen times, the memory's
extent: `relation_features`), so a distance or a direction is computed from where the
objects are rather than guessed from the wording. Outputs:
  category_logits (B, NC); log_values (B, NN) log of the value in the canonical unit of
  each numeric category; choice_logits (B, K) (padding -1e4); object_points (B, S, 3) and
  object_weights (B, S, M): each slot's attention-weighted mean of memory positions plus a
  bounded residual; point (B, 3) world metres = object slot 0, point_weights (B, M);
  position (B, 3) world metres (a pointer of its own) and position_log_sigma (B, 3);
  heading_logits (B, 36) over the heading RELATIVE to heading_reference (B,) radians, the
  direction from the predicted position to object slot 0 (with `relative_heading`; else
  the reference is 0 and the bins are world headings: under a turned world a heading can
  only be read from geometry); heading (B,) radians, about world z from +x, = reference +
  circular soft-argmax of the bins; bev_xy (B, M, 2) floor-plane position of each memory token and
  bev_log_sigma (B, M) (Loc3R's layout head).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from geovr_training.model.layers import Block
from geovr_training.qa.vocab import CATEGORIES, HEADING_BINS, NUMERIC_CATEGORIES

NEG = -1e4


@dataclass
class QAModelArgs:
    """Constructor arguments of the QA fusion model; stored in QA checkpoints."""

    token_dim: int = 192
    question_dim: int = 384
    dim: int = 128
    depth: int = 3
    num_heads: int = 4
    mlp_ratio: float = 2.0
    fourier_bands: int = 8
    min_wavelength_m: float = 0.25
    max_wavelength_m: float = 16.0
    use_position_embedding: bool = True
    use_time_embedding: bool = True
    point_residual_m: float = 0.5
    object_slots: int = 5
    use_relation_features: bool = True
    relative_heading: bool = True
    num_categories: int = len(CATEGORIES)
    num_numeric: int = len(NUMERIC_CATEGORIES)
    heading_bins: int = HEADING_BINS

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f'dim {self.dim} is not divisible by num_heads {self.num_heads}')
        if self.fourier_bands < 1 or self.min_wavelength_m <= 0 or self.max_wavelength_m <= self.min_wavelength_m:
            raise ValueError(f'bad Fourier bands {self.fourier_bands} / wavelengths '
                             f'[{self.min_wavelength_m}, {self.max_wavelength_m}] m')

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'QAModelArgs':
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'unknown QA model_args {sorted(unknown)}')
        return cls(**values)


class FourierEmbedding(nn.Module):
    """(..., D) coordinates -> (..., dim): [x, sin(2 pi x / l_k), cos(2 pi x / l_k)] over
    wavelengths l_k log-spaced in [min, max] (metres for positions), then a 2-layer MLP."""

    def __init__(self, in_dim: int, dim: int, bands: int, min_wavelength: float, max_wavelength: float):
        super().__init__()
        wavelengths = torch.logspace(math.log10(min_wavelength), math.log10(max_wavelength), bands)
        self.register_buffer('frequencies', 2 * math.pi / wavelengths, persistent=False)
        width = in_dim * (1 + 2 * bands)
        self.mlp = nn.Sequential(nn.Linear(width, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        phase = coords.unsqueeze(-1) * self.frequencies  # (..., D, bands)
        feats = torch.cat([coords.unsqueeze(-1), phase.sin(), phase.cos()], dim=-1)
        return self.mlp(feats.flatten(-2))


class FusionBlock(Block):
    """The geometry encoder's pre-norm block, with padding: `bias` (B, 1, 1, S) is added to
    the attention logits (0 for real tokens, -1e4 for padding)."""

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, s, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, nh, S, hs)
        attn = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5) + bias
        y = attn.softmax(dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, s, c))
        return x + self.mlp(self.norm2(x))


def _mlp(dim: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, out))


class Pointer(nn.Module):
    """Points at memory tokens: softmax of query-key scores over valid tokens -> weighted
    mean of their world positions, plus a residual bounded by `residual_m` metres.
    query (B, S, d) for S pointers at once -> points (B, S, 3), weights (B, S, M)."""

    def __init__(self, dim: int, residual_m: float):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.residual = _mlp(dim, 3)
        self.residual_m = residual_m
        self.scale = dim ** -0.5

    def forward(self, query: torch.Tensor, memory: torch.Tensor, xyz: torch.Tensor,
                mask: torch.Tensor, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.einsum('bsd,bmd->bsm', self.query(query), self.key(memory)) * self.scale
        valid = (mask > 0).unsqueeze(1)
        scores = scores.masked_fill(~valid, NEG)
        weights = scores.softmax(dim=-1) * valid.to(scores.dtype)  # all 0 if no memory
        anchor = torch.einsum('bsm,bmk->bsk', weights, xyz)
        anchor = anchor + (1.0 - weights.sum(-1, keepdim=True)) * centre.unsqueeze(1)  # no memory: the centroid
        return anchor + self.residual_m * torch.tanh(self.residual(query)), weights


def _log_len(x: torch.Tensor, floor: float) -> torch.Tensor:
    return torch.log(torch.sqrt((x ** 2).sum(-1) + 1e-12) + floor)


def _planar_direction(origin: torch.Tensor, towards: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(..., 3) points -> (..., 2) unit-ish (forward, left) direction of `target` seen from
    `origin` facing `towards`, in the floor plane (0 where undefined)."""
    fwd = towards[..., :2] - origin[..., :2]
    fwd = fwd / torch.sqrt((fwd ** 2).sum(-1, keepdim=True) + 1e-6)
    left = torch.stack([-fwd[..., 1], fwd[..., 0]], dim=-1)
    v = target[..., :2] - origin[..., :2]
    v = v / torch.sqrt((v ** 2).sum(-1, keepdim=True) + 1e-6)
    return torch.stack([(v * fwd).sum(-1), (v * left).sum(-1)], dim=-1)


def relation_features(points: torch.Tensor, weights: torch.Tensor, xyz: torch.Tensor, time: torch.Tensor,
                      valid: torch.Tensor, slots: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit relations of the grounded objects, invariant to moving or turning the world.

    points (B, S, 3) metres, weights (B, S, M), xyz (B, M, 3) metres, time (B, M), valid
    (B, M) -> (global (B, G), per-slot (B, S, S + 2)). Global: log distance of every slot
    pair; the (forward, left) direction of slots 2.. seen from slot 0 facing slot 1; the turn
    at each slot of the path 0 -> 1 -> 2 ...; each slot's log spread and mean time; log of
    the memory's floor-plane extent along its two principal axes. Per slot: its log
    distances to all slots, its log spread and its mean time (for options naming objects).
    """
    s = int(points.shape[1]) if slots is None else slots  # `slots` keeps ONNX tracing free of shape ints
    dist = _log_len(points.unsqueeze(2) - points.unsqueeze(1), 0.1)  # (B, S, S)
    pairs = torch.tensor([(i, j) for i in range(s) for j in range(i + 1, s)], dtype=torch.long).reshape(-1, 2)
    parts = [dist[:, pairs[:, 0], pairs[:, 1]]]
    if s >= 3:
        parts.append(_planar_direction(points[:, :1], points[:, 1:2], points[:, 2:]).flatten(1))
        parts.append(_planar_direction(points[:, 1:-1], 2 * points[:, 1:-1] - points[:, :-2],
                                       points[:, 2:]).flatten(1))
    spread = torch.log(torch.sqrt((weights * ((xyz.unsqueeze(1) - points.unsqueeze(2)) ** 2).sum(-1)).sum(-1)
                                  + 1e-6) + 0.05)  # (B, S)
    seen = (weights * time.unsqueeze(1)).sum(-1)  # (B, S)
    v = valid.to(xyz.dtype)
    n = v.sum(-1).clamp_min(1.0)
    mean = (xyz[..., :2] * v.unsqueeze(-1)).sum(1) / n.unsqueeze(-1)
    d = (xyz[..., :2] - mean.unsqueeze(1)) * v.unsqueeze(-1)
    cxx, cyy, cxy = (d[..., 0] ** 2).sum(-1) / n, (d[..., 1] ** 2).sum(-1) / n, (d[..., 0] * d[..., 1]).sum(-1) / n
    half = torch.sqrt(((cxx - cyy) / 2) ** 2 + cxy ** 2 + 1e-12)
    extent = torch.stack([(cxx + cyy) / 2 + half, ((cxx + cyy) / 2 - half).clamp_min(0.0)], dim=-1)
    parts += [spread, seen, torch.log(torch.sqrt(extent + 1e-6) + 0.05)]
    per_slot = torch.cat([dist, spread.unsqueeze(-1), seen.unsqueeze(-1)], dim=-1)
    return torch.cat(parts, dim=-1), per_slot


def relation_feature_sizes(slots: int) -> tuple[int, int]:
    """Widths (G, S + 2) of `relation_features` for `slots` object slots."""
    g = slots * (slots - 1) // 2 + (2 * (slots - 2) + 2 * (slots - 2) if slots >= 3 else 0) + 2 * slots + 2
    return g, slots + 2


class QAModel(nn.Module):
    """The QA fusion model; see the module docstring for inputs and outputs."""

    def __init__(self, args: QAModelArgs):
        super().__init__()
        self.args = args
        d = args.dim
        self.memory_norm = nn.LayerNorm(args.token_dim)
        self.memory_proj = nn.Linear(args.token_dim, d)
        self.position_embed = (FourierEmbedding(3, d, args.fourier_bands, args.min_wavelength_m,
                                                args.max_wavelength_m)
                               if args.use_position_embedding else None)
        self.time_embed = FourierEmbedding(1, d, 4, 0.25, 4.0) if args.use_time_embedding else None
        self.question_proj = nn.Linear(args.question_dim, d)
        self.question_token_norm = nn.LayerNorm(args.question_dim)
        self.question_token_proj = nn.Linear(args.question_dim, d)
        self.option_proj = nn.Linear(args.question_dim, d)
        self.queries = nn.Parameter(torch.zeros(2 + args.object_slots, d))  # answer, pose, object slots
        self.type_embed = nn.Parameter(torch.zeros(4, d))  # query, option, memory, question token
        self.blocks = nn.ModuleList([FusionBlock(d, args.num_heads, args.mlp_ratio) for _ in range(args.depth)])
        self.norm = nn.LayerNorm(d)
        self.category_head = _mlp(d, args.num_categories)
        self.numeric_head = _mlp(d, args.num_numeric)
        self.choice_head = _mlp(2 * d, 1)
        self.object_head = Pointer(d, args.point_residual_m)
        self.position_head = Pointer(d, args.point_residual_m)
        self.position_sigma_head = _mlp(d, 3)
        self.heading_head = _mlp(d, args.heading_bins)
        self.bev_head = _mlp(d, 3)
        if args.use_relation_features:
            if args.object_slots < 1:
                raise ValueError('relation features need at least one object slot')
            g, per_slot = relation_feature_sizes(args.object_slots)
            self.relation_mlp = nn.Sequential(nn.Linear(g, d), nn.GELU(), nn.Linear(d, d))
            self.option_relation_mlp = nn.Sequential(nn.Linear(per_slot, d), nn.GELU(), nn.Linear(d, d))
        width = 2 * math.pi / args.heading_bins
        centres = -math.pi + (torch.arange(args.heading_bins, dtype=torch.float32) + 0.5) * width
        self.register_buffer('heading_centres', centres, persistent=False)
        for param in (self.queries, self.type_embed):
            nn.init.trunc_normal_(param, std=0.02)
        with torch.no_grad():
            self.numeric_head[-1].bias.fill_(1.0)

    def forward(self, question: torch.Tensor, question_tokens: torch.Tensor, question_token_mask: torch.Tensor,
                options: torch.Tensor, option_mask: torch.Tensor, memory_tokens: torch.Tensor,
                memory_xyz: torch.Tensor, memory_time: torch.Tensor,
                memory_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        b, k = option_mask.shape
        slots = self.args.object_slots
        nq = 2 + slots
        valid = memory_mask.to(memory_xyz.dtype)
        xyz = memory_xyz * valid.unsqueeze(-1)
        centre = xyz.sum(1) / valid.sum(1, keepdim=True).clamp_min(1.0)  # (B, 3)
        mem = self.memory_proj(self.memory_norm(memory_tokens)) + self.type_embed[2]
        if self.position_embed is not None:
            mem = mem + self.position_embed((xyz - centre.unsqueeze(1)) * valid.unsqueeze(-1))
        if self.time_embed is not None:
            mem = mem + self.time_embed(memory_time.unsqueeze(-1))
        q = self.question_proj(question)  # (B, d)
        queries = q.unsqueeze(1) + self.queries.unsqueeze(0) + self.type_embed[0]  # (B, 2 + S, d)
        opts = self.option_proj(options) + self.type_embed[1]  # (B, K, d)
        words = self.question_token_proj(self.question_token_norm(question_tokens)) + self.type_embed[3]
        n_words = words.shape[1]
        x = torch.cat([queries, opts, words, mem], dim=1)
        keep = torch.cat([torch.ones_like(option_mask[:, :1]).expand(b, nq), option_mask, question_token_mask,
                          memory_mask], dim=1)
        bias = ((1.0 - keep.to(x.dtype)) * NEG)[:, None, None, :]  # (B, 1, 1, S)
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        answer, pose_q, slot_q = x[:, 0], x[:, 1], x[:, 2:nq]
        opt_out, mem_out = x[:, nq:nq + k], x[:, nq + k + n_words:]

        out: dict[str, torch.Tensor] = {}
        out['object_points'], out['object_weights'] = self.object_head(slot_q, mem_out, xyz, memory_mask, centre)
        if self.args.use_relation_features:
            relations, per_slot = relation_features(out['object_points'], out['object_weights'], xyz,
                                                    memory_time, memory_mask, slots)
            answer = answer + self.relation_mlp(relations)
            slot_features = self.option_relation_mlp(per_slot)  # (B, S, d): option i names object i
            index = (torch.ones_like(option_mask[0]).cumsum(0) - 1).long()  # (K,) without a traced int
            named = (index < slots).to(opt_out.dtype)[None, :, None]
            opt_out = opt_out + slot_features[:, index.clamp(max=slots - 1)] * named
        out['category_logits'] = self.category_head(answer)
        out['log_values'] = self.numeric_head(answer)
        pair = torch.cat([opt_out, opt_out * answer.unsqueeze(1)], dim=-1)
        out['choice_logits'] = self.choice_head(pair).squeeze(-1).masked_fill(option_mask <= 0, NEG)
        out['point'], out['point_weights'] = out['object_points'][:, 0], out['object_weights'][:, 0]
        position, _ = self.position_head(pose_q.unsqueeze(1), mem_out, xyz, memory_mask, centre)
        out['position'] = position[:, 0]
        out['position_log_sigma'] = self.position_sigma_head(pose_q).clamp(-5.0, 3.0)
        logits = self.heading_head(pose_q)
        out['heading_logits'] = logits
        probs = logits.softmax(dim=-1)
        relative = torch.atan2((probs * self.heading_centres.sin()).sum(-1),
                               (probs * self.heading_centres.cos()).sum(-1))
        if self.args.relative_heading:
            towards = out['object_points'][:, 0, :2] - out['position'][:, :2]
            reference = torch.atan2(towards[:, 1], towards[:, 0])
        else:
            reference = torch.zeros_like(relative)
        out['heading_reference'] = reference
        out['heading'] = torch.remainder(reference + relative + math.pi, 2 * math.pi) - math.pi
        bev = self.bev_head(mem_out)  # (B, M, 3)
        out['bev_xy'] = xyz[..., :2] + bev[..., :2]
        out['bev_log_sigma'] = bev[..., 2].clamp(-5.0, 3.0)
        return out


def build_qa_model(args: QAModelArgs | dict | None = None) -> QAModel:
    if args is None:
        args = QAModelArgs()
    elif isinstance(args, dict):
        args = QAModelArgs.from_dict(args)
    return QAModel(args)
