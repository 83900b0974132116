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
    "OmniTalkerTokenizer": "omnitalker.text",
    "OmniTalkerFlowMatchScheduler": "omnitalker.flow.scheduler",
    "FlowMatchingLoss": "omnitalker.flow.loss",
    "VocosVocoder": "omnitalker.models.vocoder",
    "GriffinLimVocoder": "omnitalker.models.vocoder",
    "WarpRenderer": "omnitalker.models.renderer",
    "OmniTalkerPipeline": "omnitalker.pipeline",
    "OmniTalkerPipelineOutput": "omnitalker.pipeline",
    "OmniTalkerReference": "omnitalker.reference",
    "OmniTalkerTextProcessor": "omnitalker.components",
    "WarpRendererComponent": "omnitalker.components",
    "FaceAnalyzer": "omnitalker.face",
    "export_to_video": "omnitalker.io.video",
    "FrameStream": "omnitalker.io.frames",
    "InputLimits": "omnitalker.limits",
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
