"""GeoVR-S v2, the one model family: the ImageNet-pretrained EfficientNet-Lite0 as the eyes,
the GeoVR heads on top.

Design (docs/model.md, issue "GeoVR-S v2"):
- Per frame, EfficientNet-Lite0 (`model/efficientnet.py`, weights from the registry package)
  gives feature maps at strides 2, 4, 8, 16 and 32. Inputs arrive with the contract's
  ImageNet mean/std normalisation and are re-scaled in-graph to the backbone's [-1, 1].
- Joint attention at stride 32: each cell's features (320 ch) are projected to `dim` and
  summed with a Plücker ray embedding of the cell (camera awareness: the focal length and
  principal point reach every token), a 2D sine position embedding and a frame embedding;
  one camera token per frame and one scale token per clip; `depth` transformer blocks attend
  over both frames' tokens (96 + 3 tokens at 256x192).
- Depth = scale x relative depth: an FPN decoder from the transformer's grid with skip
  connections from the backbone's stride 16, 8 and 4 maps (rays added again at stride 8)
  predicts log relative depth and a confidence; the scale head (exp output) reads the scale
  token and predicts the clip's median depth in metres.
- Pose: a regressed relative pose (quaternion + translation in scale units) from the two
  camera tokens: the prior and fallback of a geometric tracker, not the odometry itself.
- Memory outputs (`memory_outputs`: tokens on a 6 x 8 grid, their camera-frame 3D points, a
  GeM descriptor): what exports, the runtime and the QA memory read.
- Training knobs: `frozen_stages` freezes the stem and the first stages; the backbone's
  BatchNorm statistics stay frozen (`freeze_backbone_bn`): batches of a few real frames
  would otherwise overwrite what a million images taught. `pretrained: false` is the same
  network from random initialisation (the ablation's from-scratch row).
- Presets (`PRESETS`): 'v2', the shipped network, and 'tiny', a small one without the
  pretrained weights for tests and smoke runs.

The v1 ViT that learned everything from scratch (`GeoVRModel`) left the tree; git commit
d49947f is the last to hold it (`model/checkpoint.py` names it when a v1 checkpoint is read).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from geovr_training.model.category_head import FEATURE_CHANNELS as CATEGORY_FEATURES
from geovr_training.model.category_head import FEATURE_STRIDE as CATEGORY_STRIDE
from geovr_training.model.category_head import FINE_CHANNELS, CellCategoryHead, FineCellCategoryHead, join_features
from geovr_training.model.efficientnet import (FEATURE_CHANNELS, INPUT_MEAN, INPUT_STD,
                                               LITE0_STAGES, EfficientNetLite0, load_pretrained)
from geovr_training.model.export import IMAGE_MEAN, IMAGE_STD
from geovr_training.model.layers import Block, ResidualConv, evenly_spaced_layers, sine_position_embedding
from geovr_training.model.rays import camera_rays, plucker_rays
from geovr_training.model.rotations import canonical_quaternion, pose_matrix

FAMILY = 'geovr-s-v2'
STRIDE = 32  # the input's height and width must be multiples of it


@dataclass
class ModelArgsV2:
    """Constructor arguments of GeoVR-S v2; stored in checkpoints to rebuild the model."""

    family: str = FAMILY
    dim: int = 192
    depth: int = 4  # transformer blocks over the stride-32 tokens of both frames
    num_heads: int = 3
    mlp_ratio: float = 3.0
    decoder_dim: int = 64
    num_frames: int = 2
    use_ray_embedding: bool = True
    pretrained: bool = True  # ImageNet weights from the registry package at construction
    frozen_stages: int = 3  # stem + this many of the 7 backbone stages get no gradient
    freeze_backbone_bn: bool = True
    distill_layers: list[int] = field(default_factory=list)
    distill_dims: list[int] = field(default_factory=list)
    token_grid: list[int] = field(default_factory=lambda: [6, 8])
    descriptor_dim: int = 256
    pixel_offset: float = 0.0
    init_scale_m: float = 2.0
    semantic_classes: int = 0
    # per-cell category head (model/category_head.py): its K category names (+ background);
    # empty: no head. It reads 's32' (the 320-d stride-32 map), 'head' (the classifier's 1280-d
    # features), 's16' (the 112-d stride-16 map), 's16+s32' (both on the stride-16 cells) or
    # 's8+s16+s32' (those as context of the stride-8 cells, with the 40-d stride-8 map),
    # hidden width (0: linear), kernel in cells (3: with the neighbours).
    cell_categories: list[str] = field(default_factory=list)
    category_features: str = 's32'
    category_hidden: int = 0
    category_kernel: int = 1
    # Metric3D's canonical camera: > 0, the scale head predicts the clip's scale as a camera of
    # focal length f_c = canonical_focal x canonical_width pixels would see it, and the model
    # multiplies it by fx / f_c (fx in the input's pixels), so that the focal length K gives
    # sets the metric scale (the same image taken with a lens twice as long shows things twice
    # as far). f_c is fixed in pixels, not a share of each input's width: a camera fed at
    # another aspect or resolution than the training's shows things at the same pixel size for
    # the same fx, and gets the same scale. canonical_width is the training's input width (the
    # trainer sets it). 0: the head predicts the metric scale itself (v2, v2.1: their depth
    # does not move with K).
    canonical_focal: float = 0.0
    canonical_width: int = 256
    # The scale is multiplied by (fx / f_c) ** canonical_exponent: 1 is Metric3D's canonical
    # camera; between 0 and 1 a partial one, for a scale head whose features already read part
    # of the lens from the image (v2.1's, frozen). learn_canonical_exponent: a trained scalar
    # parameter (`canonical_exponent`) starting at that value.
    canonical_exponent: float = 1.0
    learn_canonical_exponent: bool = False
    # From the decoder's stride 4 to the input's size: 'bilinear' (v2, v2.1) or 'convex' (each
    # pixel a learned convex combination of its cell's 3 x 3 neighbours: depth that keeps its edges)
    depth_upsampling: str = 'bilinear'
    # What the depth decoder sees of the image beside the backbone's maps: 'none' (v2-v2.7) or the
    # image and the backbone's stride-2 map folded into stride-4 cells (`image_guide`: where within
    # a 4 x 4 cell an outline runs), read by the convex upsampling's weights alone ('upsampling':
    # it picks among neighbours' depths, so it cannot draw an edge the coarse depth lacks) or also
    # by the stride-4 level ('decoder')
    depth_guidance: str = 'none'

    def __post_init__(self) -> None:
        if self.family != FAMILY:
            raise ValueError(f'family {self.family!r} is not {FAMILY!r}')
        if self.dim % self.num_heads:
            raise ValueError(f'dim {self.dim} is not divisible by num_heads {self.num_heads}')
        if self.depth < 1:
            raise ValueError(f'depth {self.depth} must be >= 1')
        if not 0 <= self.frozen_stages <= len(LITE0_STAGES):
            raise ValueError(f'frozen_stages {self.frozen_stages} must be in [0, {len(LITE0_STAGES)}]')
        if self.distill_dims and not self.distill_layers:
            self.distill_layers = evenly_spaced_layers(self.depth, len(self.distill_dims))
        if len(self.distill_layers) != len(self.distill_dims):
            raise ValueError(f'distill_layers {self.distill_layers} and distill_dims {self.distill_dims} '
                             'differ in length')
        if any(not 0 <= i < self.depth for i in self.distill_layers):
            raise ValueError(f'distill_layers {self.distill_layers} outside [0, {self.depth})')
        if len(self.token_grid) != 2 or min(self.token_grid) < 1:
            raise ValueError(f'token_grid {self.token_grid} must be (rows, cols) >= 1')
        if self.semantic_classes < 0:
            raise ValueError(f'semantic_classes {self.semantic_classes} must be >= 0')
        if self.category_features not in CATEGORY_FEATURES:
            raise ValueError(f'category_features {self.category_features!r} is not one of {sorted(CATEGORY_FEATURES)}')
        if not (self.canonical_focal >= 0 and math.isfinite(self.canonical_focal)):
            raise ValueError(f'canonical_focal {self.canonical_focal} must be >= 0 (0: off)')
        if self.canonical_width < 1:
            raise ValueError(f'canonical_width {self.canonical_width} must be >= 1 pixel')
        if not math.isfinite(self.canonical_exponent):
            raise ValueError(f'canonical_exponent {self.canonical_exponent} must be finite')
        if self.learn_canonical_exponent and not self.canonical_focal > 0:
            raise ValueError('learn_canonical_exponent needs canonical_focal > 0 (the reference focal length)')
        if self.depth_upsampling not in DEPTH_UPSAMPLING:
            raise ValueError(f'depth_upsampling {self.depth_upsampling!r} is not one of {DEPTH_UPSAMPLING}')
        if self.depth_guidance not in DEPTH_GUIDANCE:
            raise ValueError(f'depth_guidance {self.depth_guidance!r} is not one of {DEPTH_GUIDANCE}')
        if self.depth_guidance == 'upsampling' and self.depth_upsampling != 'convex':
            raise ValueError(f"depth_guidance 'upsampling' guides the convex upsampling: depth_upsampling is "
                             f'{self.depth_upsampling!r}')
        if len(set(self.cell_categories)) != len(self.cell_categories) or not all(self.cell_categories):
            raise ValueError(f'cell_categories {self.cell_categories} must be distinct non-empty names')

    @property
    def patch_size(self) -> int:  # the input granularity (pixels per token cell)
        return STRIDE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'ModelArgsV2':
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'unknown model_args {sorted(unknown)}')
        return cls(**values)


def frozen_prefixes(frozen_stages: int) -> tuple[str, ...]:
    """Parameter-name prefixes of the stem and the first `frozen_stages` backbone stages."""
    if frozen_stages == 0:
        return ()
    blocks = sum(stage[-1] for stage in LITE0_STAGES[:frozen_stages])
    return ('backbone._conv_stem.', 'backbone._bn0.', *(f'backbone._blocks.{i}.' for i in range(blocks)))


def memory_outputs(model: nn.Module, grid: torch.Tensor, depth: torch.Tensor, k_flat: torch.Tensor,
                   cell: int) -> dict[str, torch.Tensor]:
    """The outputs the spatial memory and relocalization keep.

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


def bilinear_neighbour_weights(factor: int) -> torch.Tensor:
    """(9, factor * factor) weights of the 3 x 3 coarse neighbours (row-major, offsets -1, 0, +1)
    that bilinear upsampling by `factor` (align_corners False) gives each fine pixel of a cell
    (row-major i * factor + j)."""
    offsets = (torch.arange(factor, dtype=torch.float64) + 0.5) / factor - 0.5  # in coarse cells
    along = torch.stack([(-offsets).clamp_min(0), 1 - offsets.abs(), offsets.clamp_min(0)])  # (3, factor)
    weights = along[:, None, :, None] * along[None, :, None, :]  # (3, 3, factor, factor)
    return weights.reshape(9, factor * factor).float()


class ConvexUpsampler(nn.Module):
    """Learned edge-keeping upsampling (RAFT's convex upsampling): each fine pixel is a convex
    combination of its coarse cell's 3 x 3 neighbourhood, with weights predicted from the
    decoder's features, so a pixel beside a depth edge can take the near side's value where
    bilinear upsampling averages both sides. Initialised to bilinear upsampling. With
    `guide_channels`, the weights also read a guide map of the coarse cells (what the image
    shows within each), through a 1 x 1 conv that starts at zero."""

    def __init__(self, features: int, factor: int, guide_channels: int = 0):
        super().__init__()
        self.factor = factor
        self.mask = nn.Sequential(nn.Conv2d(features, features, 1), nn.ReLU(),
                                  nn.Conv2d(features, 9 * factor * factor, 1))
        self.guide_in = nn.Conv2d(guide_channels, features, 1, bias=False) if guide_channels else None
        with torch.no_grad():
            self.mask[-1].weight.zero_()
            self.mask[-1].bias.copy_(bilinear_neighbour_weights(factor).clamp_min(1e-4).log().reshape(-1))
            if self.guide_in is not None:
                self.guide_in.weight.zero_()

    def forward(self, coarse: torch.Tensor, features: torch.Tensor, guide: torch.Tensor | None = None) -> torch.Tensor:
        """coarse (M, C, h, w) values, features (M, features, h, w), guide (M, guide_channels, h, w)
        -> (M, C, h * factor, w * factor)."""
        m, channels, h, w = coarse.shape
        r = self.factor
        hidden = self.mask[0](features)
        if self.guide_in is not None:
            if guide is None:
                raise ValueError('this upsampler reads a guide map: give guide')
            hidden = hidden + self.guide_in(guide)
        logits = self.mask[2](self.mask[1](hidden)).reshape(m, 1, 9, r * r, h, w)
        # a softmax over the 9 neighbours, written out: ONNX Runtime's Softmax on an inner axis
        # of this 6-D tensor cost 5-7 ms a frame at 256x192 on the CPU, this form 1 ms
        weights = (logits - logits.amax(dim=2, keepdim=True)).exp()
        padded = F.pad(coarse, (1, 1, 1, 1), mode='replicate')
        neighbours = torch.stack([padded[:, :, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], dim=2)
        fine = (weights * neighbours.unsqueeze(3)).sum(dim=2) / weights.sum(dim=2)  # (M, C, r * r, h, w)
        return F.pixel_shuffle(fine.reshape(m, channels * r * r, h, w), r)


DEPTH_UPSAMPLING = ('bilinear', 'convex')
DEPTH_GUIDANCE = ('none', 'upsampling', 'decoder')
GUIDE_CHANNELS = 3 * 4 * 4 + FEATURE_CHANNELS[2] * 2 * 2  # the image's 4 x 4 pixels and the stride-2 map's 2 x 2 per cell
GUIDE_WIDTH = 32  # the guide's channels once projected


def image_guide(image: torch.Tensor, feat_s2: torch.Tensor) -> torch.Tensor:
    """The decoder's guide map: image (M, 3, H, W) and the backbone's stride-2 map feat_s2
    (M, 16, H/2, W/2) folded into stride-4 cells, (M, GUIDE_CHANNELS, H/4, W/4)."""
    return torch.cat([F.pixel_unshuffle(image, 4), F.pixel_unshuffle(feat_s2, 2)], dim=1)


class FeaturePyramidDecoder(nn.Module):
    """Coarse-to-fine decoder: the stride-32 token grid fused with the backbone's stride
    16, 8, 4 maps; predicts (log relative depth, confidence logit) at input size, from stride 4
    by bilinear or convex upsampling (`upsampling`; a stride-2 level cost 1.35 GFLOPs a frame
    at 256x192, twice the backbone). With `guide_channels` the convex upsampling's weights (and,
    with `guide_decoder`, the stride-4 level) also read a guide map (`image_guide`) projected to
    GUIDE_WIDTH channels (`project_guide`, a frame's own work: run by the frame encoder); its
    contributions start at zero, so a decoder without one loads and starts where it was."""

    def __init__(self, top_channels: int, features: int, ray_channels: int = 6, upsampling: str = 'bilinear',
                 guide_channels: int = 0, guide_decoder: bool = False):
        super().__init__()
        self.top = nn.Conv2d(top_channels, features, 1)
        self.laterals = nn.ModuleDict({str(s): nn.Conv2d(FEATURE_CHANNELS[s], features, 1) for s in (16, 8, 4)})
        self.fuse = nn.ModuleDict({str(s): ResidualConv(features) for s in (32, 16, 8, 4)})
        self.ray_lateral = nn.Conv2d(ray_channels, features, 1) if ray_channels else None
        self.head = nn.Sequential(nn.Conv2d(features, features // 2, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(features // 2, 2, 1))
        self.guide = nn.Sequential(nn.Conv2d(guide_channels, GUIDE_WIDTH, 1), nn.ReLU()) if guide_channels else None
        self.guide_lateral = nn.Conv2d(GUIDE_WIDTH, features, 1) if guide_channels and guide_decoder else None
        if self.guide_lateral is not None:
            with torch.no_grad():
                self.guide_lateral.weight.zero_()
                self.guide_lateral.bias.zero_()
        self.upsample = (ConvexUpsampler(features, 4, GUIDE_WIDTH if guide_channels else 0)
                         if upsampling == 'convex' else None)

    def project_guide(self, image: torch.Tensor, feat_s2: torch.Tensor) -> torch.Tensor:
        """image (M, 3, H, W), feat_s2 (M, 16, H/2, W/2) -> the projected guide (M, GUIDE_WIDTH,
        H/4, W/4) that `forward` reads."""
        if self.guide is None:
            raise ValueError('this decoder reads no guide')
        return self.guide(image_guide(image, feat_s2))

    def forward(self, top: torch.Tensor, skips: dict[int, torch.Tensor], rays8: torch.Tensor | None,
                height: int, width: int, guide: torch.Tensor | None = None) -> torch.Tensor:
        """top (M, C, H/32, W/32); skips {stride: (M, C_s, H/s, W/s)}; rays8 (M, 6, H/8, W/8);
        guide (M, GUIDE_WIDTH, H/4, W/4) from `project_guide`, where the decoder has one.
        Returns (M, 2, H, W)."""
        if (guide is None) != (self.guide is None):
            raise ValueError('give guide exactly when the decoder reads one '
                             f'(it {"does" if self.guide is not None else "does not"})')
        x = self.fuse['32'](self.top(top))
        for stride in (16, 8, 4):
            lateral = self.laterals[str(stride)](skips[stride])
            if stride == 8 and rays8 is not None and self.ray_lateral is not None:
                lateral = lateral + self.ray_lateral(rays8)
            if stride == 4 and self.guide_lateral is not None:
                lateral = lateral + self.guide_lateral(guide)
            x = F.interpolate(x, size=lateral.shape[-2:], mode='bilinear', align_corners=False)
            x = self.fuse[str(stride)](x + lateral)
        out = self.head(x)  # (M, 2, H/4, W/4)
        if self.upsample is not None:   # inputs are multiples of 32: stride 4 is exactly a quarter
            return self.upsample(out, x, guide)
        return F.interpolate(out, size=(height, width), mode='bilinear', align_corners=False)


class GeoVRv2Model(nn.Module):
    """GeoVR-S v2. `forward(images, intrinsics)` -> dict of outputs (see `forward`)."""

    def __init__(self, args: ModelArgsV2):
        super().__init__()
        self.args = args
        d = args.dim
        self.backbone = EfficientNetLite0(with_head=True)
        if args.pretrained:
            load_pretrained(self.backbone)
        self.token_proj = nn.Linear(FEATURE_CHANNELS[32], d)
        self.ray_embed = nn.Linear(6, d) if args.use_ray_embedding else None
        self.frame_embed = nn.Parameter(torch.zeros(args.num_frames, d))
        self.camera_token = nn.Parameter(torch.zeros(1, d))
        self.scale_token = nn.Parameter(torch.zeros(1, 1, d))
        self.blocks = nn.ModuleList([Block(d, args.num_heads, args.mlp_ratio) for _ in range(args.depth)])
        self.norm = nn.LayerNorm(d)
        self.depth_decoder = FeaturePyramidDecoder(d, args.decoder_dim, 6 if args.use_ray_embedding else 0,
                                                   args.depth_upsampling,
                                                   GUIDE_CHANNELS if args.depth_guidance != 'none' else 0,
                                                   guide_decoder=args.depth_guidance == 'decoder')
        self.pose_head = nn.Sequential(nn.Linear(3 * d, d), nn.GELU(), nn.Linear(d, 7))
        self.scale_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))
        self.canonical_exponent = (nn.Parameter(torch.tensor(float(args.canonical_exponent)))
                                   if args.learn_canonical_exponent else None)
        self.descriptor_head = nn.Linear(d, args.descriptor_dim)
        self.descriptor_proj = nn.Linear(args.descriptor_dim, args.descriptor_dim)
        self.gem_p = nn.Parameter(torch.tensor(3.0))
        self.distill_heads = nn.ModuleList([
            nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, c)) for c in args.distill_dims])
        self.semantic_head = nn.Linear(d, args.semantic_classes) if args.semantic_classes else None
        self.category_head = self._category_head(args) if args.cell_categories else None
        # contract normalisation (ImageNet mean/std) -> the backbone's [-1, 1]
        contract_mean, contract_std = torch.tensor(IMAGE_MEAN), torch.tensor(IMAGE_STD)
        scale = contract_std / torch.tensor(INPUT_STD)
        shift = (contract_mean - torch.tensor(INPUT_MEAN)) / torch.tensor(INPUT_STD)
        self.register_buffer('input_scale', scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer('input_shift', shift.view(1, 3, 1, 1), persistent=False)
        self._init_heads()
        for name, param in self.named_parameters():
            if name.startswith(frozen_prefixes(args.frozen_stages)):
                param.requires_grad_(False)

    def _init_heads(self) -> None:
        for name, module in self.named_modules():
            if name.startswith('backbone'):
                continue
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        for param in (self.frame_embed, self.camera_token, self.scale_token):
            nn.init.trunc_normal_(param, std=0.02)
        with torch.no_grad():
            self.pose_head[-1].bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0]))
            self.scale_head[-1].bias.fill_(math.log(self.args.init_scale_m))

    def train(self, mode: bool = True) -> 'GeoVRv2Model':
        super().train(mode)
        if mode and self.args.freeze_backbone_bn:
            for module in self.backbone.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def image_logits(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits per stride-32 cell, (B, F, 1000, H/32, W/32), from contract-normalised
        images (B, F, 3, H, W): what the backbone names where (class activation maps)."""
        b, nf, _, height, width = images.shape
        frames = images.reshape(b * nf, 3, height, width) * self.input_scale + self.input_shift
        logits = self.backbone.classify_cells(self.backbone.features(frames)[32])
        return logits.reshape(b, nf, *logits.shape[1:])

    @staticmethod
    def _category_head(args: ModelArgsV2) -> nn.Module:
        kind, classes = args.category_features, len(args.cell_categories) + 1
        if kind in FINE_CHANNELS:
            context = CATEGORY_FEATURES[kind] - FINE_CHANNELS[kind]
            return FineCellCategoryHead(context, FINE_CHANNELS[kind], classes, args.category_hidden,
                                        args.category_kernel)
        return CellCategoryHead(CATEGORY_FEATURES[kind], classes, args.category_hidden, args.category_kernel)

    @property
    def category_stride(self) -> int | None:
        """The category head's cell size in input pixels (32, 16 or 8); None without the head."""
        return CATEGORY_STRIDE[self.args.category_features] if self.category_head is not None else None

    def cell_category_logits(self, feat_s32: torch.Tensor, feat_s16: torch.Tensor | None = None,
                             feat_s8: torch.Tensor | None = None) -> torch.Tensor:
        """Category logits of every cell of the head's stride (`category_stride`), (B, K + 1, h, w)
        (columns: `args.cell_categories`, then background): stride 32, h, w = H/32, W/32, from the
        stride-32 backbone map feat_s32 (B, 320, H/32, W/32); stride 16 (`category_features` 's16'
        or 's16+s32'), h, w = H/16, W/16, also from the stride-16 map feat_s16 (B, 112, H/16, W/16);
        stride 8 ('s8+s16+s32'), h, w = H/8, W/8, also from the stride-8 map feat_s8 (B, 40, H/8, W/8).
        Needs the category head (RuntimeError); a finer head needs the maps it reads (ValueError)."""
        if self.category_head is None:
            raise RuntimeError('this model has no category head (model_args.cell_categories is empty)')
        kind = self.args.category_features
        if kind in ('s16', 's16+s32', 's8+s16+s32') and feat_s16 is None:
            raise ValueError(f'category_features {kind!r} reads the stride-16 map: give feat_s16')
        if kind in FINE_CHANNELS:
            if feat_s8 is None:
                raise ValueError(f'category_features {kind!r} reads the stride-8 map: give feat_s8')
            return self.category_head(join_features(feat_s16, feat_s32), feat_s8)
        if kind == 'head':
            feats = self.backbone.head_features(feat_s32)
        elif kind == 's16':
            feats = feat_s16
        elif kind == 's16+s32':
            feats = join_features(feat_s16, feat_s32)
        else:
            feats = feat_s32
        return self.category_head(feats)

    def encode_frames(self, frames: torch.Tensor, intrinsics: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything computed from one frame alone (once per camera frame at run time).

        frames (M, 3, H, W) normalised with ImageNet mean/std, H and W multiples of 32;
        intrinsics (M, 3, 3). Returns s4, s8, s16: backbone maps (M, C_s, H/s, W/s);
        s32: the stride-32 backbone map (M, 320, H/32, W/32), what the ImageNet classifier reads
        (`classify_cells`: names objects per cell); tokens (M, H/32 * W/32, dim): the stride-32
        cells projected, with position and ray embeddings; rays8 (M, 6, H/8, W/8) Plücker rays
        (zeros without the ray embedding); with a `depth_guidance` also guide4
        (M, GUIDE_WIDTH, H/4, W/4), the depth decoder's projected guide (`project_guide`).
        """
        a = self.args
        height, width = frames.shape[-2:]
        hp, wp = height // STRIDE, width // STRIDE
        skips = self.backbone.features(frames * self.input_scale + self.input_shift)
        x = self.token_proj(skips[32].flatten(2).transpose(1, 2))  # (M, P, d)
        x = x + sine_position_embedding(hp, wp, a.dim, x)
        if self.ray_embed is not None:
            rays8 = F.avg_pool2d(plucker_rays(intrinsics, height, width, offset=a.pixel_offset), 8)
            x = x + self.ray_embed(F.avg_pool2d(rays8, 4).flatten(2).transpose(1, 2))
        else:
            rays8 = torch.zeros_like(skips[8][:, :6])
        encoded = {'s4': skips[4], 's8': skips[8], 's16': skips[16], 's32': skips[32], 'tokens': x, 'rays8': rays8}
        if a.depth_guidance != 'none':
            encoded['guide4'] = self.depth_decoder.project_guide(frames, skips[2])
        return encoded

    def forward(self, images: torch.Tensor, intrinsics: torch.Tensor, with_distill: bool = False,
                feature_layers: list[int] | None = None) -> dict[str, torch.Tensor]:
        """Run the model on a clip.

        images: (B, F, 3, H, W) normalised with ImageNet mean/std, H and W multiples of 32.
        intrinsics: (B, F, 3, 3) K of each frame in the input's pixel coordinates.
        Returns a dict with
          depth (B, F, H, W) metres; depth_rel (B, F, H, W) depth / scale;
          depth_conf (B, F, H, W) >= 1, the decoder's confidence c (the weight of its L1 loss,
            which is lowest at c = alpha / |error|: alpha / c is the expected error of depth_rel);
          depth_confidence (B, F, H, W) = 1 - 1 / c in [0, 1): 0 where the decoder expects an
            error of alpha (0.2: a fifth of the scale) or more, 0.9 where a tenth of that;
          scale (B,) metres (median depth of the clip);
          quat (B, 4) xyzw with w >= 0 and trans_norm (B, 3) = t / scale of T_ref_cur;
          rel_pose (B, 4, 4) T_ref_cur in metres; tokens (B, F, N, dim);
          token_xyz (B, F, N, 3) camera frame, metres; descriptor (B, F, D) unit norm;
          patch_grid (B, F, dim, H/32, W/32) final cell features;
          distill: list of (B, F, C_i, H/32, W/32) projections (only with `with_distill`);
          semantic_logits: (B, F, classes, H/32, W/32) per-cell category logits (only when the
            model has a semantic head; not exported);
          features: list of (B, F, dim, H/32, W/32) raw block outputs of `feature_layers`.
        """
        b, nf, _, height, width = images.shape
        encoded = self.encode_frames(images.reshape(b * nf, 3, height, width), intrinsics.reshape(b * nf, 3, 3))
        return self.clip_outputs(encoded, intrinsics, with_distill, feature_layers)

    def clip_outputs(self, encoded: dict[str, torch.Tensor], intrinsics: torch.Tensor, with_distill: bool = False,
                     feature_layers: list[int] | None = None, current_only: bool = False) -> dict[str, torch.Tensor]:
        """The joint part over a clip: `encoded` (as `encode_frames` returns it, frames of the
        clips stacked as (B * F, ...)), intrinsics (B, F, 3, 3). Returns `forward`'s dict.

        `current_only`: the per-frame outputs (depth, tokens, token_xyz, descriptor) only for
        the clip's last frame, shaped (B, 1, ...): a stream already has the others from the
        previous pair, and the depth decoder is most of the pair's cost."""
        b, nf = intrinsics.shape[:2]
        a = self.args
        hp, wp = encoded['s16'].shape[-2] // 2, encoded['s16'].shape[-1] // 2
        height, width = encoded['s4'].shape[-2] * 4, encoded['s4'].shape[-1] * 4
        k_flat = intrinsics.reshape(b * nf, 3, 3)
        skips = {4: encoded['s4'], 8: encoded['s8'], 16: encoded['s16']}
        rays8 = encoded['rays8'] if self.ray_embed is not None else None
        guide = encoded.get('guide4')
        x = encoded['tokens'].reshape(b, nf, hp * wp, a.dim)
        cam = self.camera_token.expand(b, nf, a.dim).unsqueeze(2)
        x = torch.cat([cam, x], dim=2) + self.frame_embed[None, :nf, None, :]
        per_frame = 1 + hp * wp
        x = torch.cat([self.scale_token.expand(b, 1, a.dim), x.reshape(b, nf * per_frame, a.dim)], dim=1)

        taps: dict[int, torch.Tensor] = {}
        wanted = set(a.distill_layers if with_distill else []) | set(feature_layers or [])
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in wanted:
                taps[index] = x
        x = self.norm(x)

        def patch_grid(tokens: torch.Tensor) -> torch.Tensor:  # (B, 1 + F*per_frame, d) -> (BF, d, h, w)
            frame_tokens = tokens[:, 1:].reshape(b * nf, per_frame, a.dim)[:, 1:]
            return frame_tokens.transpose(1, 2).reshape(b * nf, a.dim, hp, wp)

        out: dict[str, torch.Tensor] = {}
        grid = patch_grid(x)  # (BF, d, h, w)
        if current_only:  # keep the last frame of each clip: nf -> 1
            def last(t: torch.Tensor) -> torch.Tensor:
                return t.reshape(b, nf, *t.shape[1:])[:, -1]
            grid, k_flat = last(grid), last(k_flat)
            skips = {s: last(t) for s, t in skips.items()}
            rays8 = None if rays8 is None else last(rays8)
            guide = None if guide is None else last(guide)
            nf = 1
        decoded = self.depth_decoder(grid, skips, rays8, height, width, guide)
        depth_rel = decoded[:, 0].clamp(-6.0, 6.0).exp().reshape(b, nf, height, width)
        scale = self.scale_head(x[:, 0]).squeeze(-1).clamp(-6.0, 6.0).exp()  # (B,)
        if a.canonical_focal > 0:   # from the canonical camera to this one: fx / f_c, in pixels
            ratio = intrinsics[:, :, 0, 0].mean(dim=1) / (a.canonical_focal * a.canonical_width)
            exponent = a.canonical_exponent if self.canonical_exponent is None else self.canonical_exponent
            scale = scale * ratio ** exponent
        depth = depth_rel * scale[:, None, None, None]
        out['depth'] = depth
        out['depth_rel'] = depth_rel
        out['depth_conf'] = (1.0 + decoded[:, 1].clamp(-10.0, 10.0).exp()).reshape(b, nf, height, width)
        out['depth_confidence'] = 1.0 - 1.0 / out['depth_conf']
        out['scale'] = scale

        cams = x[:, 1:].reshape(b, -1, per_frame, a.dim)[:, :, 0]  # (B, F, d)
        pose = self.pose_head(torch.cat([cams[:, 0], cams[:, -1], cams[:, -1] - cams[:, 0]], dim=-1))
        quat, trans_norm = canonical_quaternion(pose[:, 3:]), pose[:, :3]
        out['quat'] = quat
        out['trans_norm'] = trans_norm
        out['rel_pose'] = pose_matrix(quat, trans_norm * scale[:, None])
        out.update(memory_outputs(self, grid, depth, k_flat, STRIDE))
        out['patch_grid'] = grid.reshape(b, nf, a.dim, hp, wp)
        if self.semantic_head is not None:
            logits = self.semantic_head(grid.flatten(2).transpose(1, 2))
            out['semantic_logits'] = logits.transpose(1, 2).reshape(b, nf, -1, hp, wp)
        if with_distill:
            nf = intrinsics.shape[1]
            out['distill'] = [
                head(taps[layer][:, 1:].reshape(b * nf, per_frame, a.dim)[:, 1:])
                .transpose(1, 2).reshape(b, nf, -1, hp, wp)
                for head, layer in zip(self.distill_heads, a.distill_layers)]
        if feature_layers:
            out['features'] = [patch_grid(taps[i]).reshape(b, intrinsics.shape[1], a.dim, hp, wp)
                               for i in feature_layers]
        return out


# Named argument sets: 'v2' is the shipped network; 'tiny' is small and needs no pretrained
# weights (tests and smoke runs). Any ModelArgsV2 field overrides a preset's.
PRESETS: dict[str, dict] = {
    'v2': {},
    'tiny': dict(dim=32, depth=2, num_heads=2, mlp_ratio=2.0, decoder_dim=16, descriptor_dim=32, pretrained=False),
}


def preset_args(preset: str = 'v2', **overrides) -> ModelArgsV2:
    """ModelArgsV2 of a preset of PRESETS with `overrides` (any ModelArgsV2 field)."""
    if preset not in PRESETS:
        raise ValueError(f'model preset {preset!r} is not one of {sorted(PRESETS)}')
    return ModelArgsV2.from_dict({**PRESETS[preset], **overrides})


def model_args_from_dict(values: dict, pretrained: bool | None = None) -> ModelArgsV2:
    """ModelArgsV2 from a config's `model` section or a checkpoint's `model_args`: the
    optional `preset` ('v2' when absent) overridden by the other keys. `pretrained` overrides
    the ImageNet initialisation (False when a state dict follows)."""
    values = dict(values)
    if pretrained is not None:
        values['pretrained'] = pretrained
    return preset_args(values.pop('preset', 'v2'), **values)


def build_model(args: ModelArgsV2 | dict | str | None = None) -> GeoVRv2Model:
    """GeoVR-S from ModelArgsV2, their dict form (`model_args_from_dict`) or a preset name;
    None gives the 'v2' preset (ImageNet weights from the registry package)."""
    if args is None or isinstance(args, str):
        args = preset_args(args or 'v2')
    elif isinstance(args, dict):
        args = model_args_from_dict(args)
    return GeoVRv2Model(args)
