"""The pipeline: text + a reference -> speech and a talking-head video (diffusers' ``DiffusionPipeline``).

    pipeline_omnitalker.py  OmniTalkerPipeline: __init__, check_inputs, __call__ (the recipe, steps 1-7)
    prepare.py              step 2-3: reference preparation, transcript (ASR), text planning per item
    denoise.py              step 4: in-filling segments with the flow sampler (batched, chunked, lip-sync)
    decode.py               steps 5-7: vocoder, renderer, watermarks, output formats
    cascade.py              mode="cascade": speech from this pipeline, the face from a second one
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

_LAZY = {"OmniTalkerPipeline": "pipeline_omnitalker", "OmniTalkerPipelineOutput": "decode",
         "OmniTalkerReference": "reference"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'omnitalker.pipeline' has no attribute {name!r}")
    return getattr(importlib.import_module(f"omnitalker.pipeline.{module}"), name)
