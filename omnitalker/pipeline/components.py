"""Component loading: the modules a saved ``model_index.json`` may name, imported with the pipeline.

diffusers (0.42) loads a component only from a module that is already imported (it never imports a module
because a folder names it), so ``omnitalker.pipeline.pipeline_omnitalker`` imports this file and
``OmniTalkerPipeline.from_pretrained(folder)`` needs no import from the caller. ``omnitalker.components``
holds the class names that folders saved before the tokenizers and the renderer became loadable themselves
still name (``OmniTalkerTextProcessor``, ``OmniTalkerPhonemeProcessor``, ``WarpRendererComponent``).
"""

import importlib

COMPONENT_MODULES = (
    "omnitalker.models.transformer",
    "omnitalker.models.vocoder",
    "omnitalker.models.duration_predictor",
    "omnitalker.flow.scheduler",
    "omnitalker.frontend.text",
    "omnitalker.frontend.phonemes",
    "omnitalker.render.warp",
    "omnitalker.render.liveportrait",
    "omnitalker.components",  # the names of older saved folders
)

for _module in COMPONENT_MODULES:
    importlib.import_module(_module)
