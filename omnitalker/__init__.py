"""omnitalker: text-driven talking audio-video generation (OmniTalker), the diffusers way.

Public names are imported lazily, so ``import omnitalker`` is cheap and never loads a model:

    from omnitalker import OmniTalkerPipeline, OmniTalkerTransformer
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "OmniTalkerTransformer": "omnitalker.models.transformer",
    "OmniTalkerTransformerOutput": "omnitalker.models.transformer",
    "OmniTalkerTokenizer": "omnitalker.frontend.text",
    "OmniTalkerFlowMatchScheduler": "omnitalker.flow.scheduler",
    "FlowMatchingLoss": "omnitalker.flow.loss",
    "VocosVocoder": "omnitalker.models.vocoder",
    "GriffinLimVocoder": "omnitalker.models.vocoder",
    "WarpRenderer": "omnitalker.render.warp",
    "OmniTalkerPipeline": "omnitalker.pipeline.pipeline_omnitalker",
    "OmniTalkerPipelineOutput": "omnitalker.pipeline.decode",
    "OmniTalkerReference": "omnitalker.pipeline.reference",
    "PhonemeTokenizer": "omnitalker.frontend.phonemes",
    "FaceAnalyzer": "omnitalker.frontend.face",
    "read_video": "omnitalker.io.video",
    "load_image": "omnitalker.io.image",
    "load_audio": "omnitalker.io.audio",
    "export_to_video": "omnitalker.io.export",
    "FrameStream": "omnitalker.io.frames",
    "InputLimits": "omnitalker.pipeline.limits",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omnitalker' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
