"""LivePortrait's warping module (W): dense motion from two keypoint sets, then the warped feature volume.

    W = LivePortraitWarpingModule()                      # full size: 45.5 M parameters
    out = W(volume, kp_driving, kp_source)               # (b, 32, 16, 64, 64), (b, 21, 3) x2 -> dict

Returns ``out`` (b, 256, 64, 64) (the warped volume flattened to 2D, a conv block, a 1x1 conv, times the
occlusion map), ``deformation`` (b, d, h, w, 3) (grid_sample coordinates into the source volume) and
``occlusion_map`` (b, 1, h, w).

Dense motion (`DenseMotionNetwork`): the volume is compressed to a few channels; each keypoint k gives a
sparse motion (the identity grid shifted by kp_source[k] - kp_driving[k]), plus the identity itself for the
background; the compressed volume warped by each, with the difference of the keypoints' Gaussian heatmaps,
goes through a 3D hourglass that predicts a softmax mask over the K + 1 motions (their weighted sum is the
deformation) and, from the hourglass output flattened over depth, the occlusion map. Keys are those of the
released ``warping_module.pth``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from omnitalker.models.liveportrait.blocks import Hourglass, SameBlock2d, coordinate_grid, keypoint_gaussians

KEYPOINT_VARIANCE = 0.01
DEFAULT_DENSE_MOTION = {"block_expansion": 32, "max_features": 1024, "num_blocks": 5, "reshape_depth": 16,
                        "compress": 4}


class DenseMotionNetwork(nn.Module):
    def __init__(self, num_kp: int, feature_channels: int, block_expansion: int, num_blocks: int, max_features: int,
                 reshape_depth: int, compress: int, estimate_occlusion_map: bool = True):
        super().__init__()
        self.num_kp = num_kp
        self.hourglass = Hourglass(block_expansion, (num_kp + 1) * (compress + 1), num_blocks, max_features)
        self.mask = nn.Conv3d(self.hourglass.out_channels, num_kp + 1, kernel_size=7, padding=3)
        self.compress = nn.Conv3d(feature_channels, compress, kernel_size=1)
        self.norm = nn.BatchNorm3d(compress)
        self.occlusion = (nn.Conv2d(self.hourglass.out_channels * reshape_depth, 1, kernel_size=7, padding=3)
                          if estimate_occlusion_map else None)

    def sparse_motions(self, spatial: tuple[int, int, int], kp_driving: torch.Tensor,
                       kp_source: torch.Tensor) -> torch.Tensor:
        """(b, k + 1, d, h, w, 3): the identity (background) then, per keypoint, the grid moved by source - driving."""
        b = kp_driving.shape[0]
        identity = coordinate_grid(*spatial, like=kp_source)[None, None]  # 1 1 d h w 3
        moved = identity - kp_driving[:, :, None, None, None, :] + kp_source[:, :, None, None, None, :]
        return torch.cat([identity.expand(b, 1, *identity.shape[2:]), moved], dim=1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict:
        b, _, d, h, w = feature.shape
        feature = F.relu(self.norm(self.compress(feature)))  # b c d h w
        channels = feature.shape[1]
        motions = self.sparse_motions((d, h, w), kp_driving, kp_source)  # b k+1 d h w 3
        k1 = motions.shape[1]
        repeated = feature[:, None].expand(b, k1, channels, d, h, w).reshape(b * k1, channels, d, h, w)
        deformed = F.grid_sample(repeated, motions.reshape(b * k1, d, h, w, 3), align_corners=False)
        deformed = deformed.view(b, k1, channels, d, h, w)
        heatmap = (keypoint_gaussians(kp_driving, (d, h, w), KEYPOINT_VARIANCE)
                   - keypoint_gaussians(kp_source, (d, h, w), KEYPOINT_VARIANCE))  # b k d h w
        heatmap = torch.cat([heatmap.new_zeros(b, 1, d, h, w), heatmap], dim=1)[:, :, None]  # b k+1 1 d h w
        x = torch.cat([heatmap, deformed], dim=2).view(b, -1, d, h, w)  # b (k+1)(c+1) d h w

        prediction = self.hourglass(x)  # b c' d h w
        mask = F.softmax(self.mask(prediction), dim=1)  # b k+1 d h w
        deformation = (motions * mask[..., None]).sum(dim=1)  # b d h w 3
        out = {"mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            flat = prediction.reshape(b, -1, h, w)
            out["occlusion_map"] = torch.sigmoid(self.occlusion(flat))  # b 1 h w
        return out


class LivePortraitWarpingModule(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(
        self,
        num_kp: int = 21,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 2,
        reshape_channel: int = 32,
        estimate_occlusion_map: bool = True,
        dense_motion_params: dict | None = None,
    ):
        super().__init__()
        params = {**DEFAULT_DENSE_MOTION, **(dense_motion_params or {})}
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, feature_channels=reshape_channel,
                                                       estimate_occlusion_map=estimate_occlusion_map, **params)
        width = block_expansion * 2**num_down_blocks
        self.third = SameBlock2d(max_features, width, leaky=True)
        self.fourth = nn.Conv2d(width, width, kernel_size=1)

    def forward(self, feature_3d: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor) -> dict:
        motion = self.dense_motion_network(feature_3d, kp_driving, kp_source)
        deformation = motion["deformation"]  # b d h w 3
        warped = F.grid_sample(feature_3d, deformation, align_corners=False)  # b c d h w
        b, c, d, h, w = warped.shape
        out = self.fourth(self.third(warped.view(b, c * d, h, w)))  # b 256 h w
        occlusion = motion.get("occlusion_map")
        if occlusion is not None:
            out = out * occlusion
        return {"out": out, "deformation": deformation, "occlusion_map": occlusion}
