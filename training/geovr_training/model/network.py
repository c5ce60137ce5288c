"""GeoVR-S: a compact camera-aware ViT over a 2-frame clip with four geometric heads.

Design (see docs/model.md):
- Per frame, 16x16 patches are embedded and summed with a Plücker ray embedding computed
  in-graph from K (mean camera-frame ray of each patch -> Linear) plus a 2D sine position
  embedding and a learned frame embedding. One camera token per frame and one scale token
  per clip are prepended; all tokens of both frames attend jointly.
- Depth = scale * relative depth. The DPT-style decoder predicts log relative depth
  (normalised so the clip's median depth is 1) and a confidence; the scale head (exp
  output) predicts the clip's median depth in metres. Structure (scale-free, learnable
  from pixels) and metric scale (needs the camera, seen through the rays) are split.
- Relative pose T_ref_cur = [R(q) | s * t_n]: unit quaternion (x, y, z, w), sign fixed to
  w >= 0, and translation in units of the scale; matches the notes' L1 loss on
  (t, quat) and the ROS quaternion order, and the translation inherits the metric scale.
- With `pose_from_matching` the rotation is solved, not regressed (`model/motion.py`):
  every patch of the current frame soft-matches the reference frame's patches; the
  rotation is the robust weighted least-squares rotation between matched bearing vectors
  (Horn's method in-graph). The camera tokens alone, regressing the pose from joint
  attention, did not learn rotation on this data (see the model card). The translation
  stays regressed.
- Distillation projections (training only) map evenly spaced block outputs to teacher
  feature widths; they are not used by `forward(..., with_distill=False)` nor exported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from geovr_training.model.motion import CrossFrameMotion
from geovr_training.model.rays import camera_rays, plucker_rays
from geovr_training.model.rotations import canonical_quaternion, quaternion_to_matrix


@dataclass
class ModelArgs:
    """Constructor arguments of GeoVR-S; stored in checkpoints to rebuild the model."""

    patch_size: int = 16
    dim: int = 192
    depth: int = 6
    num_heads: int = 3
    mlp_ratio: float = 3.0
    decoder_dim: int = 48
    num_frames: int = 2
    use_ray_embedding: bool = True
    depth_layers: list[int] = field(default_factory=list)  # 4 block indices; empty -> evenly spaced
    distill_layers: list[int] = field(default_factory=list)  # student block per teacher feature
    distill_dims: list[int] = field(default_factory=list)  # teacher channels per feature; empty -> none
    token_grid: list[int] = field(default_factory=lambda: [6, 8])  # (rows, cols) of output tokens
    descriptor_dim: int = 256
    pixel_offset: float = 0.0  # pixel-centre convention of the rays (0: integer centres)
    init_scale_m: float = 2.0  # scale head bias: exp(bias) metres before training
    semantic_classes: int = 0  # > 0: per-patch category head on the final tokens (training only)
    pose_from_matching: bool = False  # rotation solved from cross-frame patch matching (else regressed)

    def __post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise ValueError(f'dim {self.dim} is not divisible by num_heads {self.num_heads}')
        if self.depth < 4:
            raise ValueError(f'depth {self.depth} must be >= 4 (the decoder reads 4 blocks)')
        if not self.depth_layers:
            self.depth_layers = evenly_spaced_layers(self.depth, 4)
        if len(self.depth_layers) != 4 or not all(0 <= i < self.depth for i in self.depth_layers):
            raise ValueError(f'depth_layers {self.depth_layers} must be 4 indices in [0, {self.depth})')
        if self.distill_dims and not self.distill_layers:
            self.distill_layers = evenly_spaced_layers(self.depth, len(self.distill_dims))
        if len(self.distill_layers) != len(self.distill_dims):
            raise ValueError(f'distill_layers {self.distill_layers} and distill_dims '
                             f'{self.distill_dims} differ in length')
        if any(not 0 <= i < self.depth for i in self.distill_layers):
            raise ValueError(f'distill_layers {self.distill_layers} outside [0, {self.depth})')
        if len(self.token_grid) != 2 or min(self.token_grid) < 1:
            raise ValueError(f'token_grid {self.token_grid} must be (rows, cols) >= 1')
        if self.semantic_classes < 0:
            raise ValueError(f'semantic_classes {self.semantic_classes} must be >= 0')

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'ModelArgs':
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown model_args {sorted(unknown)}')
        return cls(**values)


def evenly_spaced_layers(depth: int, count: int) -> list[int]:
    """`count` block indices evenly spread over `depth` blocks, always ending at the last."""
    return [round((i + 1) * depth / count) - 1 for i in range(count)]


def teacher_args(**overrides) -> ModelArgs:
    """The geometry teacher: the same family, wider and deeper (a constructor option)."""
    values = dict(dim=256, depth=8, num_heads=4, mlp_ratio=4.0, decoder_dim=64)
    values.update(overrides)
    return ModelArgs(**values)


def sine_position_embedding(height: int, width: int, dim: int, like: torch.Tensor) -> torch.Tensor:
    """2D sine-cosine embedding of patch (row, col), (H*W, dim); traceable for dynamic sizes."""
    quarter = dim // 4
    omega = 1.0 / (100.0 ** (torch.arange(quarter, dtype=like.dtype, device=like.device) / quarter))
    rows = torch.arange(height, dtype=like.dtype, device=like.device)
    cols = torch.arange(width, dtype=like.dtype, device=like.device)
    rr, cc = torch.meshgrid(rows, cols, indexing='ij')
    rr = rr.reshape(-1, 1) * omega
    cc = cc.reshape(-1, 1) * omega
    emb = torch.cat([rr.sin(), rr.cos(), cc.sin(), cc.cos()], dim=1)  # (HW, 4 * quarter)
    return F.pad(emb, (0, dim - 4 * quarter))


def pose_matrix(quat: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(B, 4) xyzw quaternions and (B, 3) translations -> (B, 4, 4) rigid transforms."""
    top = torch.cat([quaternion_to_matrix(quat), translation.unsqueeze(-1)], dim=-1)
    bottom = torch.cat([torch.zeros_like(top[:, :1, :3]), torch.ones_like(top[:, :1, :1])], dim=-1)
    return torch.cat([top, bottom], dim=1)


def memory_outputs(model: nn.Module, grid: torch.Tensor, depth: torch.Tensor, k_flat: torch.Tensor,
                   cell: int) -> dict[str, torch.Tensor]:
    """The outputs the spatial memory and relocalization keep, shared by v1 and v2.

    grid (B*F, dim, h, w) final per-cell features; depth (B, F, H, W) metres; k_flat (B*F, 3, 3);
    cell: pixels per grid cell. `model` has `args` (token_grid, dim, descriptor_dim,
    pixel_offset), `descriptor_head`, `descriptor_proj` and `gem_p`. Returns tokens
    (B, F, N, dim), token_xyz (B, F, N, 3) camera frame metres, descriptor (B, F, D) unit norm.
    """
    a = model.args
    b, nf, height, width = depth.shape
    rows, cols = a.token_grid
    tokens = F.interpolate(grid, size=(rows, cols), mode='bilinear', align_corners=False)
    points = depth.reshape(b * nf, 1, height, width) * camera_rays(k_flat, height, width, a.pixel_offset)
    points = F.avg_pool2d(points, cell)  # (BF, 3, h, w)
    points = F.interpolate(points, size=(rows, cols), mode='bilinear', align_corners=False)
    feats = F.softplus(model.descriptor_head(grid.flatten(2).transpose(1, 2))) + 1e-4  # (BF, P, D) > 0
    gem_p = model.gem_p.clamp(1.0, 8.0)
    pooled = feats.pow(gem_p).mean(dim=1).pow(1.0 / gem_p)  # GeM pooling
    return {'tokens': tokens.flatten(2).transpose(1, 2).reshape(b, nf, rows * cols, a.dim),
            'token_xyz': points.flatten(2).transpose(1, 2).reshape(b, nf, rows * cols, 3),
            'descriptor': F.normalize(model.descriptor_proj(pooled), dim=-1).reshape(b, nf, a.descriptor_dim)}


class Block(nn.Module):
    """Pre-norm transformer block with joint attention over all tokens of the clip."""

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
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(F.relu(x))


class DepthDecoder(nn.Module):
    """DPT-style decoder: 4 block outputs reassembled at 1/4, 1/8, 1/16, 1/32 of the input,
    fused coarse-to-fine, predicting (log relative depth, confidence logit) at input size."""

    def __init__(self, dim: int, features: int):
        super().__init__()
        self.reassemble = nn.ModuleList([
            nn.ConvTranspose2d(dim, features, 4, stride=4),
            nn.ConvTranspose2d(dim, features, 2, stride=2),
            nn.Conv2d(dim, features, 1),
            nn.Conv2d(dim, features, 3, stride=2, padding=1),
        ])
        self.fuse = nn.ModuleList([ResidualConv(features) for _ in range(4)])
        self.head = nn.Sequential(nn.Conv2d(features, features // 2, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(features // 2, 2, 1))

    def forward(self, grids: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """grids: 4 maps (M, dim, h, w) shallow -> deep. Returns (M, 2, H, W)."""
        maps = [layer(g) for layer, g in zip(self.reassemble, grids)]
        x = self.fuse[3](maps[3])
        for level in (2, 1, 0):
            skip = maps[level]
            x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
            x = self.fuse[level](x + skip)
        out = self.head(x)  # (M, 2, H/4, W/4)
        return F.interpolate(out, size=(height, width), mode='bilinear', align_corners=False)


class GeoVRModel(nn.Module):
    """GeoVR-S. `forward(images, intrinsics)` -> dict of outputs (see `forward`)."""

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        d, p = args.dim, args.patch_size
        self.patch_embed = nn.Conv2d(3, d, p, stride=p)
        self.ray_embed = nn.Linear(6, d) if args.use_ray_embedding else None
        self.frame_embed = nn.Parameter(torch.zeros(args.num_frames, d))
        self.camera_token = nn.Parameter(torch.zeros(1, d))
        self.scale_token = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList([Block(d, args.num_heads, args.mlp_ratio) for _ in range(args.depth)])
        self.norm = nn.LayerNorm(d)
        self.depth_decoder = DepthDecoder(d, args.decoder_dim)
        self.pose_head = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, 7))
        # rotation solved from cross-frame matching instead of regressed (translation stays regressed)
        self.motion = CrossFrameMotion() if args.pose_from_matching else None
        self.scale_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.descriptor_head = nn.Linear(d, args.descriptor_dim)
        self.descriptor_proj = nn.Linear(args.descriptor_dim, args.descriptor_dim)
        self.gem_p = nn.Parameter(torch.tensor(3.0))
        self.distill_heads = nn.ModuleList([
            nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, c)) for c in args.distill_dims])
        # What is where, from the renderer's labels: gives the tokens the QA memory keeps a
        # category signal that geometry alone does not (there is no VLM encoder here).
        self.semantic_head = nn.Linear(d, args.semantic_classes) if args.semantic_classes else None
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        for param in (self.frame_embed, self.camera_token, self.scale_token):
            nn.init.trunc_normal_(param, std=0.02)
        with torch.no_grad():
            self.pose_head[-1].bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0]))
            self.scale_head[-1].bias.fill_(math.log(self.args.init_scale_m))

    def forward(self, images: torch.Tensor, intrinsics: torch.Tensor,
                with_distill: bool = False,
                feature_layers: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Run the model on a clip.

        images: (B, F, 3, H, W) normalised RGB, H and W multiples of `patch_size`.
        intrinsics: (B, F, 3, 3) K of each frame in the input's pixel coordinates.
        Returns a dict with
          depth (B, F, H, W) metres; depth_rel (B, F, H, W) depth / scale;
          depth_conf (B, F, H, W) >= 1; scale (B,) metres (median depth of the clip);
          quat (B, 4) xyzw with w >= 0 and trans_norm (B, 3) = t / scale of T_ref_cur;
          rel_pose (B, 4, 4) T_ref_cur in metres; tokens (B, F, N, dim);
          token_xyz (B, F, N, 3) camera frame, metres; descriptor (B, F, D) unit norm;
          patch_grid (B, F, dim, h, w) final patch features;
          distill: list of (B, F, C_i, h, w) projections (only with `with_distill`);
          semantic_logits: (B, F, classes, h, w) per-patch category logits (only when the
            model has a semantic head; not exported);
          match_logits: (B, h, w, h*w) logits of each current-frame patch over the reference
            frame's patches, row-major (only with `pose_from_matching`; not exported);
          features: list of (B, F, dim, h, w) raw block outputs of `feature_layers`.
        """
        b, nf, _, height, width = images.shape
        a = self.args
        hp, wp = height // a.patch_size, width // a.patch_size
        frames = images.reshape(b * nf, 3, height, width)
        k_flat = intrinsics.reshape(b * nf, 3, 3)

        x = self.patch_embed(frames).flatten(2).transpose(1, 2)  # (BF, P, d)
        x = x + sine_position_embedding(hp, wp, a.dim, x)
        if self.ray_embed is not None:
            rays = plucker_rays(k_flat, height, width, offset=a.pixel_offset)  # (BF, 6, H, W)
            rays = F.avg_pool2d(rays, a.patch_size)  # (BF, 6, h, w) mean ray of each patch
            x = x + self.ray_embed(rays.flatten(2).transpose(1, 2))
        x = x.reshape(b, nf, hp * wp, a.dim)
        cam = self.camera_token.expand(b, nf, a.dim).unsqueeze(2)  # (B, F, 1, d)
        x = torch.cat([cam, x], dim=2) + self.frame_embed[None, :nf, None, :]
        per_frame = 1 + hp * wp
        x = torch.cat([self.scale_token.expand(b, 1, a.dim), x.reshape(b, nf * per_frame, a.dim)], dim=1)

        taps: dict[int, torch.Tensor] = {}
        wanted = set(a.depth_layers) | set(a.distill_layers if with_distill else []) | set(feature_layers or [])
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in wanted:
                taps[index] = x
        x = self.norm(x)

        def patch_grid(tokens: torch.Tensor) -> torch.Tensor:  # (B, 1 + F*per_frame, d) -> (BF, d, h, w)
            frame_tokens = tokens[:, 1:].reshape(b * nf, per_frame, a.dim)[:, 1:]
            return frame_tokens.transpose(1, 2).reshape(b * nf, a.dim, hp, wp)

        out: dict[str, torch.Tensor] = {}
        decoded = self.depth_decoder([patch_grid(taps[i]) for i in a.depth_layers], height, width)
        log_rel = decoded[:, 0].clamp(-6.0, 6.0)
        depth_rel = log_rel.exp().reshape(b, nf, height, width)
        scale = self.scale_head(x[:, 0]).squeeze(-1).clamp(-6.0, 6.0).exp()  # (B,)
        depth = depth_rel * scale[:, None, None, None]
        out['depth'] = depth
        out['depth_rel'] = depth_rel
        out['depth_conf'] = (1.0 + decoded[:, 1].clamp(-10.0, 10.0).exp()).reshape(b, nf, height, width)
        out['scale'] = scale

        grid = patch_grid(x)  # (BF, d, h, w)
        cams = x[:, 1:].reshape(b, nf, per_frame, a.dim)[:, :, 0]  # (B, F, d)
        pose = self.pose_head(torch.cat([cams[:, 0], cams[:, 1], cams[:, 1] - cams[:, 0]], dim=-1))
        quat, trans_norm = canonical_quaternion(pose[:, 3:]), pose[:, :3]
        if self.motion is not None:
            patch_rays = F.avg_pool2d(camera_rays(k_flat, height, width, a.pixel_offset), a.patch_size)
            quat, out['match_logits'] = self.motion(grid.reshape(b, nf, a.dim, hp, wp),
                                                    patch_rays.reshape(b, nf, 3, hp, wp))
        out['quat'] = quat
        out['trans_norm'] = trans_norm
        out['rel_pose'] = pose_matrix(quat, trans_norm * scale[:, None])
        out.update(memory_outputs(self, grid, depth, k_flat, a.patch_size))
        out['patch_grid'] = grid.reshape(b, nf, a.dim, hp, wp)
        if self.semantic_head is not None:
            logits = self.semantic_head(grid.flatten(2).transpose(1, 2))  # (BF, P, C)
            out['semantic_logits'] = logits.transpose(1, 2).reshape(b, nf, -1, hp, wp)
        if with_distill:
            out['distill'] = [
                head(taps[layer][:, 1:].reshape(b * nf, per_frame, a.dim)[:, 1:])
                .transpose(1, 2).reshape(b, nf, -1, hp, wp)
                for head, layer in zip(self.distill_heads, a.distill_layers)]
        if feature_layers:
            out['features'] = [patch_grid(taps[i]).reshape(b, nf, a.dim, hp, wp) for i in feature_layers]
        return out


def model_args_from_dict(values: dict, pretrained: bool | None = None):
    """ModelArgs (v1) or ModelArgsV2 from a checkpoint's `model_args` dict (by its `family`).

    `pretrained` overrides v2's ImageNet initialisation (False when a state dict follows)."""
    values = dict(values)
    if values.get('family') is not None:
        from geovr_training.model.network_v2 import ModelArgsV2
        if pretrained is not None:
            values['pretrained'] = pretrained
        return ModelArgsV2.from_dict(values)
    return ModelArgs.from_dict(values)


def build_model(args=None) -> nn.Module:
    """Build GeoVR-S from ModelArgs / ModelArgsV2 (or their dict form); defaults give the v1 student."""
    if args is None:
        args = ModelArgs()
    elif isinstance(args, dict):
        args = model_args_from_dict(args)
    if isinstance(args, ModelArgs):
        return GeoVRModel(args)
    from geovr_training.model.network_v2 import GeoVRv2Model
    return GeoVRv2Model(args)
