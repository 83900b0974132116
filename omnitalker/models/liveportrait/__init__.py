"""LivePortrait's networks (KwaiVGI/LivePortrait, MIT licence), reimplemented as diffusers models.

One model per file; state-dict keys equal the released checkpoints' (``liveportrait/base_models/*.pth`` and the
three state dicts of ``retargeting_models/stitching_retargeting_module.pth``), so they load with strict=True
without renaming (``omnitalker/convert/liveportrait.py``).

| released name | class | file |
|---|---|---|
| appearance_feature_extractor (F) | `LivePortraitAppearanceExtractor` | appearance.py |
| motion_extractor (M) | `LivePortraitMotionExtractor` | motion.py |
| warping_module (W) | `LivePortraitWarpingModule` | warping.py |
| spade_generator (G) | `LivePortraitSPADEGenerator` | spade.py |
| stitching, lip, eye (S, R) | `LivePortraitStitchingMLP` | stitching.py |

``camera.py`` holds the glue (pose bins, rotation, keypoint transform, stitching, retargeting, relative motion);
``omnitalker/render/liveportrait.py`` the renderer that uses them.
"""

from omnitalker.models.liveportrait.appearance import LivePortraitAppearanceExtractor
from omnitalker.models.liveportrait.motion import LivePortraitMotionExtractor
from omnitalker.models.liveportrait.spade import LivePortraitSPADEGenerator
from omnitalker.models.liveportrait.stitching import (
    EYE_CONFIG,
    LIP_CONFIG,
    STITCHING_CONFIG,
    LivePortraitStitchingMLP,
)
from omnitalker.models.liveportrait.warping import LivePortraitWarpingModule

# released module name -> class (the stitching / retargeting MLPs share one class)
MODULE_CLASSES = {
    "appearance_feature_extractor": LivePortraitAppearanceExtractor,
    "motion_extractor": LivePortraitMotionExtractor,
    "warping_module": LivePortraitWarpingModule,
    "spade_generator": LivePortraitSPADEGenerator,
    "stitching": LivePortraitStitchingMLP,
    "lip": LivePortraitStitchingMLP,
    "eye": LivePortraitStitchingMLP,
}
MODULE_NAMES = tuple(MODULE_CLASSES)

# the backbones LivePortrait's models.yaml can name
BACKBONES = {"convnextv2_tiny": {"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768)}}


def module_configs(models_yaml: dict) -> dict[str, dict]:
    """LivePortrait's model configuration (``src/config/models.yaml`` ``model_params``, or the golden's json) ->
    our per-module configs. A motion extractor's ``backbone`` becomes explicit ``depths`` / ``dims`` (given
    ones win: the tiny golden narrows the same backbone)."""
    params = models_yaml.get("model_params", models_yaml)
    motion = dict(params["motion_extractor_params"])
    backbone = motion.pop("backbone", "convnextv2_tiny")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown motion-extractor backbone {backbone!r}; known: {sorted(BACKBONES)}")
    motion = {**BACKBONES[backbone], **motion}
    retarget = params.get("stitching_retargeting_module_params",
                          {"stitching": STITCHING_CONFIG, "lip": LIP_CONFIG, "eye": EYE_CONFIG})
    return {
        "appearance_feature_extractor": dict(params["appearance_feature_extractor_params"]),
        "motion_extractor": motion,
        "warping_module": dict(params["warping_module_params"]),
        "spade_generator": dict(params["spade_generator_params"]),
        **{name: dict(retarget[name]) for name in ("stitching", "lip", "eye")},
    }


def full_size_configs() -> dict[str, dict]:
    """The released models' configuration (LivePortrait's models.yaml)."""
    return {
        "appearance_feature_extractor": {"image_channel": 3, "block_expansion": 64, "num_down_blocks": 2,
                                         "max_features": 512, "reshape_channel": 32, "reshape_depth": 16,
                                         "num_resblocks": 6},
        "motion_extractor": {"num_kp": 21, "num_bins": 66, **BACKBONES["convnextv2_tiny"]},
        "warping_module": {"num_kp": 21, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2,
                           "reshape_channel": 32, "estimate_occlusion_map": True,
                           "dense_motion_params": {"block_expansion": 32, "max_features": 1024, "num_blocks": 5,
                                                   "reshape_depth": 16, "compress": 4}},
        "spade_generator": {"upscale": 2, "block_expansion": 64, "max_features": 512, "num_down_blocks": 2},
        "stitching": dict(STITCHING_CONFIG),
        "lip": dict(LIP_CONFIG),
        "eye": dict(EYE_CONFIG),
    }


__all__ = [
    "BACKBONES",
    "MODULE_CLASSES",
    "MODULE_NAMES",
    "LivePortraitAppearanceExtractor",
    "LivePortraitMotionExtractor",
    "LivePortraitSPADEGenerator",
    "LivePortraitStitchingMLP",
    "LivePortraitWarpingModule",
    "full_size_configs",
    "module_configs",
]
