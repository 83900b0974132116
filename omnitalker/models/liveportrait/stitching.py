"""LivePortrait's stitching and retargeting MLPs (S, R_eyes, R_lip): small MLPs on flattened keypoints.

    S = LivePortraitStitchingMLP(126, (128, 128, 64), 65)          # [x_s, x_d] -> 63 keypoint offsets + tx, ty
    R_lip = LivePortraitStitchingMLP(65, (128, 128, 64), 63)       # [x_s, c_s_lip, c_d_lip] -> 63 offsets
    R_eye = LivePortraitStitchingMLP(66, (256, 256, 128, 128, 64), 63)  # [x_s, c_s_eyes (2), c_d_eye] -> 63

Linear layers with ReLU between them (``mlp.0``, ``mlp.2``, ... as in the released
``stitching_retargeting_module.pth``, whose three state dicts are ``retarget_shoulder`` -> S,
``retarget_mouth`` -> R_lip, ``retarget_eye`` -> R_eye). The glue (`stitch`, `retarget`) lives in
``camera.py``.
"""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

STITCHING_CONFIG = {"input_size": 126, "hidden_sizes": (128, 128, 64), "output_size": 65}
LIP_CONFIG = {"input_size": 65, "hidden_sizes": (128, 128, 64), "output_size": 63}
EYE_CONFIG = {"input_size": 66, "hidden_sizes": (256, 256, 128, 128, 64), "output_size": 63}


class LivePortraitStitchingMLP(ModelMixin, ConfigMixin):
    @register_to_config
    def __init__(self, input_size: int = 126, hidden_sizes: tuple[int, ...] = (128, 128, 64), output_size: int = 65):
        super().__init__()
        widths = [input_size, *hidden_sizes]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
