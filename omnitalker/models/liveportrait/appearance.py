"""LivePortrait's appearance feature extractor (F): a 256x256 face crop -> a 3D appearance feature volume.

    F = LivePortraitAppearanceExtractor()               # full size: 0.84 M parameters
    volume = F(image)                                   # (b, 3, 256, 256) in [0, 1] -> (b, 32, 16, 64, 64)

2D encoder (conv, two pooled down blocks, 1x1 to `max_features` channels), the channels reshaped into
`reshape_channel` x `reshape_depth`, then 3D residual blocks. State-dict keys are those of the released
``appearance_feature_extractor.pth``.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from omnitalker.models.liveportrait.blocks import DownBlock2d, ResBlock3d, SameBlock2d


class LivePortraitAppearanceExtractor(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        image_channel: int = 3,
        block_expansion: int = 64,
        num_down_blocks: int = 2,
        max_features: int = 512,
        reshape_channel: int = 32,
        reshape_depth: int = 16,
        num_resblocks: int = 6,
    ):
        super().__init__()
        if reshape_channel * reshape_depth != max_features:
            raise ValueError(f"reshape_channel x reshape_depth ({reshape_channel} x {reshape_depth}) must equal "
                             f"max_features ({max_features})")
        self.first = SameBlock2d(image_channel, block_expansion)
        widths = [min(max_features, block_expansion * 2**i) for i in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1]) for i in range(num_down_blocks))
        self.second = nn.Conv2d(widths[-1], max_features, kernel_size=1)
        self.resblocks_3d = nn.Sequential()
        for i in range(num_resblocks):
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.first(image)  # b c h w
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)  # b max_features h/4 w/4
        b, _, h, w = x.shape
        volume = x.view(b, self.config.reshape_channel, self.config.reshape_depth, h, w)  # b c d h w
        return self.resblocks_3d(volume)
