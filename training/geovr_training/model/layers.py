"""Building blocks of GeoVR-S (and of the QA fusion model): a pre-norm transformer block, a
residual 3x3 convolution, the 2D sine position embedding and evenly spaced block indices."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def evenly_spaced_layers(depth: int, count: int) -> list[int]:
    """`count` block indices evenly spread over `depth` blocks, always ending at the last
    (repeated, never below 0, when `count` exceeds `depth`)."""
    return [max(0, round((i + 1) * depth / count) - 1) for i in range(count)]


def sine_position_embedding(height: int, width: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """2D sine-cosine embedding of cell (row, col), (H*W, dim); traceable for dynamic sizes."""
    quarter = dim // 4
    omega = 1.0 / (100.0 ** (torch.arange(quarter, dtype=like.dtype, device=like.device) / quarter))
    rows = torch.arange(height, dtype=like.dtype, device=like.device)
    cols = torch.arange(width, dtype=like.dtype, device=like.device)
    rr, cc = torch.meshgrid(rows, cols, indexing='ij')
    rr = rr.reshape(-1, 1) * omega
    cc = cc.reshape(-1, 1) * omega
    emb = torch.cat([rr.sin(), rr.cos(), cc.sin(), cc.cos()], dim=1)  # (HW, 4 * quarter)
    return F.pad(emb, (0, dim - 4 * quarter))


class Block(nn.Module):
    """Pre-norm transformer block with joint attention over all tokens it is given."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, nh, N, hs) each
        attn = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        y = attn.softmax(dim=-1) @ v  # (B, nh, N, hs)
        x = x + self.proj(y.transpose(1, 2).reshape(b, n, c))
        return x + self.mlp(self.norm2(x))


class ResidualConv(nn.Module):
    """x + conv3x3(relu(x)), channels kept."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.relu(x))
