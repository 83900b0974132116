"""LivePortrait's motion extractor (M): a face crop -> implicit keypoints, head pose, expression, scale, shift.

    M = LivePortraitMotionExtractor()                   # full size: ConvNeXt-V2 tiny, 28.1 M parameters
    info = M(image)                                     # (b, 3, 256, 256) in [0, 1] -> dict of (b, ...) tensors

Outputs (raw, as the released model predicts them): ``kp`` (b, 3 num_kp) canonical keypoints, ``pitch`` /
``yaw`` / ``roll`` (b, num_bins) logits over 3-degree bins (``camera.bins_to_degrees``), ``t`` (b, 3),
``exp`` (b, 3 num_kp) expression offsets, ``scale`` (b, 1).

Backbone: ConvNeXt-V2 (4x4 stem, three 2x2 downsamplers with channels-first layer norms; blocks of 7x7 depthwise
conv, layer norm, MLP x4 with GELU and global response normalisation), global average pool, layer norm, then
one linear head per output. Keys are those of the released ``motion_extractor.pth`` (``detector.*``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

MOTION_KEYS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")


class ChannelsFirstLayerNorm(nn.Module):
    """Layer norm over the channel axis of (b c h w), written out as the original does (mean, biased variance)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2 GRN on (b h w c): x + gamma * (x * N(x)) + beta, N = spatial L2 norm over its channel mean."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, channels))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.norm(x, p=2, dim=(1, 2), keepdim=True)  # b 1 1 c
        norm = norm / (norm.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * norm) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).permute(0, 2, 3, 1)  # b h w c
        h = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(h)))))
        return x + h.permute(0, 3, 1, 2)  # b c h w


class ConvNeXtV2Detector(nn.Module):
    def __init__(self, in_channels: int, depths: tuple[int, ...], dims: tuple[int, ...], num_kp: int, num_bins: int):
        super().__init__()
        self.downsample_layers = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_channels, dims[0], kernel_size=4, stride=4), ChannelsFirstLayerNorm(dims[0]))
        ])
        for i in range(len(dims) - 1):
            self.downsample_layers.append(
                nn.Sequential(ChannelsFirstLayerNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            )
        self.stages = nn.ModuleList(nn.Sequential(*[ConvNeXtV2Block(dim) for _ in range(depth)])
                                    for depth, dim in zip(depths, dims, strict=True))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        width = dims[-1]
        self.fc_kp = nn.Linear(width, 3 * num_kp)
        self.fc_scale = nn.Linear(width, 1)
        self.fc_pitch = nn.Linear(width, num_bins)
        self.fc_yaw = nn.Linear(width, num_bins)
        self.fc_roll = nn.Linear(width, num_bins)
        self.fc_t = nn.Linear(width, 3)
        self.fc_exp = nn.Linear(width, 3 * num_kp)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        for down, stage in zip(self.downsample_layers, self.stages, strict=True):
            x = stage(down(x))
        x = self.norm(x.mean(dim=(-2, -1)))  # b c
        return {"pitch": self.fc_pitch(x), "yaw": self.fc_yaw(x), "roll": self.fc_roll(x), "t": self.fc_t(x),
                "exp": self.fc_exp(x), "scale": self.fc_scale(x), "kp": self.fc_kp(x)}


class LivePortraitMotionExtractor(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        num_kp: int = 21,
        num_bins: int = 66,
        in_channels: int = 3,
        depths: tuple[int, ...] = (3, 3, 9, 3),
        dims: tuple[int, ...] = (96, 192, 384, 768),
    ):
        super().__init__()
        if len(depths) != len(dims):
            raise ValueError(f"depths {depths} and dims {dims} need one entry per stage")
        self.detector = ConvNeXtV2Detector(in_channels, tuple(depths), tuple(dims), num_kp, num_bins)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.detector(image)
