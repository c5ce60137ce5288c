"""GeoVR-S QA: a fusion transformer over a question and a spatial memory.

Inputs (all float32; B questions, K options, M memory tokens):
  question (B, 384)        unit-norm MiniLM embedding of the question
  options (B, K, 384)      embeddings of the answer options given with the question
  option_mask (B, K)       1 for a real option, 0 for padding
  memory_tokens (B, M, C)  geometry-encoder tokens of the keyframes (pooled per keyframe)
  memory_xyz (B, M, 3)     each token's position in the WORLD frame (z up), metres
  memory_time (B, M)       keyframe order in [0, 1] (0 oldest, 1 newest)
  memory_mask (B, M)       1 for a real token, 0 for padding (all 0: blind / empty memory)

Memory tokens are projected to the fusion width and summed with a learned 3D position
embedding of their world position (Fourier features of the position relative to the
memory's centroid -> MLP; translation invariant, so an odom frame anywhere works) and of
their time. The sequence [answer, point, pose query tokens; options; memory] goes through
a pre-norm transformer; the heads read the query tokens:
  category_logits (B, NC); log_values (B, NN) log of the value in the canonical unit of
  each numeric category; choice_logits (B, K) (padding -1e4); point (B, 3) world metres
  = attention-weighted mean of memory positions + bounded residual, point_weights (B, M);
  position (B, 3) world metres (same pointing) and position_log_sigma (B, 3);
  heading_logits (B, 36) and heading (B,) radians (circular soft-argmax, about world z,
  0 = +x); bev_xy (B, M, 2) floor-plane position of each memory token and
  bev_log_sigma (B, M) (Loc3R's layout head).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from geovr_training.model.network import Block
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
    mean of their world positions, plus a residual bounded by `residual_m` metres."""

    def __init__(self, dim: int, residual_m: float):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.residual = _mlp(dim, 3)
        self.residual_m = residual_m
        self.scale = dim ** -0.5

    def forward(self, query: torch.Tensor, memory: torch.Tensor, xyz: torch.Tensor,
                mask: torch.Tensor, centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = torch.einsum('bd,bmd->bm', self.query(query), self.key(memory)) * self.scale
        scores = scores.masked_fill(mask <= 0, NEG)
        weights = scores.softmax(dim=-1) * (mask > 0).to(scores.dtype)  # (B, M); all 0 if no memory
        anchor = torch.einsum('bm,bmk->bk', weights, xyz)
        anchor = anchor + (1.0 - weights.sum(-1, keepdim=True)) * centre  # no memory: the centroid
        return anchor + self.residual_m * torch.tanh(self.residual(query)), weights


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
        self.option_proj = nn.Linear(args.question_dim, d)
        self.queries = nn.Parameter(torch.zeros(3, d))  # answer, point, pose
        self.type_embed = nn.Parameter(torch.zeros(3, d))  # query, option, memory
        self.blocks = nn.ModuleList([FusionBlock(d, args.num_heads, args.mlp_ratio) for _ in range(args.depth)])
        self.norm = nn.LayerNorm(d)
        self.category_head = _mlp(d, args.num_categories)
        self.numeric_head = _mlp(d, args.num_numeric)
        self.choice_head = _mlp(2 * d, 1)
        self.point_head = Pointer(d, args.point_residual_m)
        self.position_head = Pointer(d, args.point_residual_m)
        self.position_sigma_head = _mlp(d, 3)
        self.heading_head = _mlp(d, args.heading_bins)
        self.bev_head = _mlp(d, 3)
        width = 2 * math.pi / args.heading_bins
        centres = -math.pi + (torch.arange(args.heading_bins, dtype=torch.float32) + 0.5) * width
        self.register_buffer('heading_centres', centres, persistent=False)
        for param in (self.queries, self.type_embed):
            nn.init.trunc_normal_(param, std=0.02)
        with torch.no_grad():
            self.numeric_head[-1].bias.fill_(1.0)

    def forward(self, question: torch.Tensor, options: torch.Tensor, option_mask: torch.Tensor,
                memory_tokens: torch.Tensor, memory_xyz: torch.Tensor, memory_time: torch.Tensor,
                memory_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        b, k = option_mask.shape
        valid = memory_mask.to(memory_xyz.dtype)
        xyz = memory_xyz * valid.unsqueeze(-1)
        centre = xyz.sum(1) / valid.sum(1, keepdim=True).clamp_min(1.0)  # (B, 3)
        mem = self.memory_proj(self.memory_norm(memory_tokens)) + self.type_embed[2]
        if self.position_embed is not None:
            mem = mem + self.position_embed((xyz - centre.unsqueeze(1)) * valid.unsqueeze(-1))
        if self.time_embed is not None:
            mem = mem + self.time_embed(memory_time.unsqueeze(-1))
        q = self.question_proj(question)  # (B, d)
        queries = q.unsqueeze(1) + self.queries.unsqueeze(0) + self.type_embed[0]  # (B, 3, d)
        opts = self.option_proj(options) + self.type_embed[1]  # (B, K, d)
        x = torch.cat([queries, opts, mem], dim=1)
        keep = torch.cat([torch.ones_like(option_mask[:, :1]).expand(b, 3), option_mask, memory_mask], dim=1)
        bias = ((1.0 - keep.to(x.dtype)) * NEG)[:, None, None, :]  # (B, 1, 1, S)
        for block in self.blocks:
            x = block(x, bias)
        x = self.norm(x)
        answer, point_q, pose_q = x[:, 0], x[:, 1], x[:, 2]
        opt_out, mem_out = x[:, 3:3 + k], x[:, 3 + k:]

        out: dict[str, torch.Tensor] = {}
        out['category_logits'] = self.category_head(answer)
        out['log_values'] = self.numeric_head(answer)
        pair = torch.cat([opt_out, opt_out * answer.unsqueeze(1)], dim=-1)
        out['choice_logits'] = self.choice_head(pair).squeeze(-1).masked_fill(option_mask <= 0, NEG)
        out['point'], out['point_weights'] = self.point_head(point_q, mem_out, xyz, memory_mask, centre)
        out['position'], _ = self.position_head(pose_q, mem_out, xyz, memory_mask, centre)
        out['position_log_sigma'] = self.position_sigma_head(pose_q).clamp(-5.0, 3.0)
        logits = self.heading_head(pose_q)
        out['heading_logits'] = logits
        probs = logits.softmax(dim=-1)
        out['heading'] = torch.atan2((probs * self.heading_centres.sin()).sum(-1),
                                     (probs * self.heading_centres.cos()).sum(-1))
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
