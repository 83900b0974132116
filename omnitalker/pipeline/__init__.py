"""The pipeline: text + a reference -> speech and a talking-head video (diffusers' ``DiffusionPipeline``).

    pipeline_omnitalker.py  OmniTalkerPipeline: components, __call__ (the recipe, steps 1-7) and its step methods
    plan.py                 step 1: the call's arguments checked once -> CallPlan (mode, texts, guidance, ...)
    prepare.py              steps 2-3: reference preparation, transcript (ASR), speech to lip-sync, chunks per item
    denoise.py              step 4: Sampler: in-filling segments with the flow sampler, one chunk at a time
    decode.py               steps 5-7: vocode, render, watermarks, output formats
    cascade.py              mode="cascade": speech from this pipeline, the face from a second one (steps composed)
    stream.py               OmniTalkerPipeline.stream: each chunk's audio and frames as soon as it is decoded
    reference.py            the reference analysis (audio, face track, codes) -> OmniTalkerReference
    chunking.py             sentence chunks, frame estimates, cross-fades between chunks
    text_layout.py          the "durations" layout: phonemes laid over frames
    modes.py                joint / audio / cascade: which branches the weights have, what each mode needs
    limits.py               input limits checked on file headers; the output size policy
    components.py           the modules saved components load from (imported with the pipeline)

``OmniTalkerPipeline`` is imported on first use, so ``omnitalker.pipeline.limits`` stays cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"OmniTalkerPipeline": "pipeline_omnitalker", "OmniTalkerPipelineOutput": "decode", "OmniTalkerChunk": "stream",
         "OmniTalkerReference": "reference"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omnitalker.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"omnitalker.pipeline.{module}"), name)
