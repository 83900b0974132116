"""Building blocks shared by LivePortrait's networks (appearance extractor, warping module, SPADE generator).

Written from the public architecture (KwaiVGI/LivePortrait, MIT licence); attribute names follow the released
checkpoints so their state dicts load without renaming. Inference-only details are noted where they matter:
batch norms run on their stored statistics (``eval()``), spectral-normalised convolutions use their stored
power-iteration vectors without updating them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(depth: int, height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(d, h, w, 3) grid of (x, y, z) in [-1, 1]: x to the right, y down, z into the volume (grid_sample order)."""
    def axis(n: int) -> torch.Tensor:
        return 2 * (torch.arange(n, dtype=like.dtype, device=like.device) / (n - 1)) - 1

    z, y, x = torch.meshgrid(axis(depth), axis(height), axis(width), indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def keypoint_gaussians(keypoints: torch.Tensor, spatial: tuple[int, int, int], variance: float) -> torch.Tensor:
    """Keypoints (b, k, 3) -> isotropic Gaussians (b, k, d, h, w) on the volume's coordinate grid."""
    grid = coordinate_grid(*spatial, like=keypoints)  # d h w 3
    diff = grid[None, None] - keypoints[:, :, None, None, None, :]  # b k d h w 3
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


class SameBlock2d(nn.Module):
    """conv 3x3 -> batch norm -> ReLU (or leaky ReLU, slope 0.01); resolution kept."""

    def __init__(self, in_channels: int, out_channels: int, leaky: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        return F.leaky_relu(x) if self.leaky else F.relu(x)


class DownBlock2d(nn.Module):
    """conv 3x3 -> batch norm -> ReLU -> 2x2 average pool: (b c h w) -> (b c' h/2 w/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.relu(self.norm(self.conv(x))), kernel_size=2)


class DownBlock3d(nn.Module):
    """conv 3x3x3 -> batch norm -> ReLU -> pool (1, 2, 2): depth kept, (b c d h w) -> (b c' d h/2 w/2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(F.relu(self.norm(self.conv(x))), kernel_size=(1, 2, 2))


class UpBlock3d(nn.Module):
    """nearest upsample (1, 2, 2) -> conv 3x3x3 -> batch norm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=(1, 2, 2))
        return F.relu(self.norm(self.conv(x)))


class ResBlock3d(nn.Module):
    """Pre-activation residual block on a feature volume: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, kernel_size=3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels)
        self.norm2 = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _level_channels(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * 2**level)


class HourglassEncoder(nn.Module):
    def __init__(self, block_expansion: int, in_channels: int, num_blocks: int, max_features: int):
        super().__init__()
        self.down_blocks = nn.ModuleList(
            DownBlock3d(in_channels if i == 0 else _level_channels(block_expansion, max_features, i),
                        _level_channels(block_expansion, max_features, i + 1))
            for i in range(num_blocks)
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class HourglassDecoder(nn.Module):
    def __init__(self, block_expansion: int, in_channels: int, num_blocks: int, max_features: int):
        super().__init__()
        blocks = []
        for i in reversed(range(num_blocks)):
            width = _level_channels(block_expansion, max_features, i + 1)
            blocks.append(UpBlock3d(width if i == num_blocks - 1 else 2 * width,
                                    _level_channels(block_expansion, max_features, i)))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_channels = block_expansion + in_channels
        self.conv = nn.Conv3d(self.out_channels, self.out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm3d(self.out_channels)

    def forward(self, skips: list[torch.Tensor]) -> torch.Tensor:
        skips = list(skips)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.norm(self.conv(out)))


class Hourglass(nn.Module):
    """3D U-Net: ``num_blocks`` pooling levels (height and width only), skips concatenated on the way up;
    output channels = block_expansion + in_channels."""

    def __init__(self, block_expansion: int, in_channels: int, num_blocks: int, max_features: int):
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_channels, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_channels, num_blocks, max_features)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class SpectralNormConv2d(nn.Module):
    """A conv whose weight is ``weight_orig / sigma``, sigma = u . (W v) from the stored power-iteration vectors.

    Same parameters and buffers as ``torch.nn.utils.spectral_norm`` applied to a conv (``weight_orig``,
    ``weight_u``, ``weight_v``), evaluated as torch does in eval mode; the vectors are never updated (inference
    only: training this copy would need the power iteration back).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: int = 0, bias: bool = True):
        super().__init__()
        self.padding = padding
        self.weight_orig = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("weight_u", torch.empty(out_channels))
        self.register_buffer("weight_v", torch.empty(in_channels * kernel_size * kernel_size))
        if self.weight_orig.device.type != "meta":
            nn.init.kaiming_uniform_(self.weight_orig, a=5**0.5)
            self.weight_u.copy_(F.normalize(torch.randn(out_channels), dim=0))
            self.weight_v.copy_(F.normalize(torch.randn(self.weight_v.numel()), dim=0))

    @property
    def weight(self) -> torch.Tensor:
        sigma = torch.dot(self.weight_u, torch.mv(self.weight_orig.flatten(1), self.weight_v))
        return self.weight_orig / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class SPADE(nn.Module):
    """Spatially-adaptive normalisation: instance norm (no affine) modulated by gamma, beta maps predicted from
    the conditioning features, resized (nearest) to x: out = norm(x) * (1 + gamma) + beta."""

    HIDDEN = 128

    def __init__(self, channels: int, label_channels: int):
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_channels, self.HIDDEN, kernel_size=3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(self.HIDDEN, channels, kernel_size=3, padding=1)
        self.mlp_beta = nn.Conv2d(self.HIDDEN, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        segmap = F.interpolate(segmap, size=x.shape[2:], mode="nearest")
        hidden = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)


class SPADEResnetBlock(nn.Module):
    """Residual block of two spectral-normalised 3x3 convs, each after SPADE + leaky ReLU (0.2); a learned 1x1
    shortcut (SPADE, no activation) when the channel count changes."""

    def __init__(self, in_channels: int, out_channels: int, label_channels: int):
        super().__init__()
        middle = min(in_channels, out_channels)
        self.learned_shortcut = in_channels != out_channels
        self.conv_0 = SpectralNormConv2d(in_channels, middle, 3, padding=1)
        self.conv_1 = SpectralNormConv2d(middle, out_channels, 3, padding=1)
        self.norm_0 = SPADE(in_channels, label_channels)
        self.norm_1 = SPADE(middle, label_channels)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(in_channels, out_channels, 1, bias=False)
            self.norm_s = SPADE(in_channels, label_channels)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, segmap)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, segmap), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, segmap), 0.2))
        return shortcut + dx
