"""LivePortrait's SPADE generator (G): the warped 2D feature map -> the animated face at twice the crop size.

    G = LivePortraitSPADEGenerator()                     # full size: 55.4 M parameters
    image = G(feature)                                   # (b, 256, 64, 64) -> (b, 3, 512, 512) in [0, 1]

A 3x3 conv doubles the channels; six SPADE residual blocks conditioned on the input feature map; two nearest
2x upsamplings, each followed by a SPADE block that halves the channels (to `out_channels` at the last); leaky
ReLU, a 3x3 conv to 3 x 4 channels and a pixel shuffle (another 2x; `upscale` 1: a plain 3-channel conv), then a
sigmoid. Convolutions in the SPADE blocks are spectral-normalised (``blocks.SpectralNormConv2d``). Keys are those
of the released ``spade_generator.pth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from omnitalker.models.liveportrait.blocks import SPADEResnetBlock

NUM_MIDDLE_BLOCKS = 6


class LivePortraitSPADEGenerator(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        upscale: int = 2,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 2,
        out_channels: int = 64,
    ):
        super().__init__()
        label = min(max_features, block_expansion * 2**num_down_blocks)  # the input feature's channels
        wide = 2 * label
        self.fc = nn.Conv2d(label, wide, kernel_size=3, padding=1)
        for i in range(NUM_MIDDLE_BLOCKS):
            setattr(self, f"G_middle_{i}", SPADEResnetBlock(wide, wide, label))
        self.up_0 = SPADEResnetBlock(wide, label, label)
        self.up_1 = SPADEResnetBlock(label, out_channels, label)
        if upscale is None or upscale <= 1:
            self.conv_img = nn.Conv2d(out_channels, 3, kernel_size=3, padding=1)
        else:
            self.conv_img = nn.Sequential(nn.Conv2d(out_channels, 3 * 4, kernel_size=3, padding=1), nn.PixelShuffle(2))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        segmap = feature  # b c h w
        x = self.fc(feature)  # b 2c h w
        for i in range(NUM_MIDDLE_BLOCKS):
            x = getattr(self, f"G_middle_{i}")(x, segmap)
        x = self.up_0(F.interpolate(x, scale_factor=2), segmap)  # b c 2h 2w
        x = self.up_1(F.interpolate(x, scale_factor=2), segmap)  # b out 4h 4w
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))  # b 3 8h 8w (upscale 2)
