"""Hugging Face Space entry point for the OmniTalker demo (Gradio SDK).

Which pipeline: the Hub repo id or folder in the OMNITALKER_PIPELINE variable (Space settings) when set,
else the bundled demo weights, weights/omnitalker-demo next to this file (or in the repository checkout).
Without either it exits with a message: the demo never runs on random weights.
A pipeline with only an audio branch (a converted F5-TTS, ``python -m omnitalker.convert.pipeline``) runs in cascade
mode: its speech, then the face lip-synced by the pipeline in OMNITALKER_VISUAL_PIPELINE (Hub id or folder; default
the pipeline's configured one, else the bundled demo). The page shows which mode runs.
On ZeroGPU the generating handlers run under spaces.GPU; the decorator is used only when `spaces` is installed.

    OMNITALKER_PIPELINE=org/omnitalker python space/app.py     # locally, from a checkout
    OMNITALKER_PIPELINE=org/f5tts-omnitalker OMNITALKER_VISUAL_PIPELINE=org/omnitalker python space/app.py  # cascade
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
GPU_SECONDS = 120  # ZeroGPU time per request: a 10 s clip with 16 steps on one GPU, with margin

try:
    import omnitalker  # noqa: F401  (installed, or copied next to this file when the Space is pushed)
except ImportError:
    sys.path.insert(0, str(HERE.parent))  # running from the repository checkout

try:
    import spaces
except ImportError:
    spaces = None


def pipeline_source() -> str:
    configured = os.environ.get("OMNITALKER_PIPELINE")
    if configured:
        return configured
    for folder in (HERE / "weights" / "omnitalker-demo", HERE.parent / "weights" / "omnitalker-demo"):
        if (folder / "model_index.json").is_file():
            return str(folder)
    sys.exit("No OmniTalker weights: set OMNITALKER_PIPELINE to a Hub repo id (Space settings -> variables), "
             "or push weights/omnitalker-demo with the Space (see README.md).")


def examples_folder() -> Path | None:
    for folder in (HERE / "examples", HERE.parent / "examples"):
        if (folder / "examples.json").is_file():
            return folder
    return None


import torch  # noqa: E402

from omnitalker.pipeline import OmniTalkerPipeline  # noqa: E402
from omnitalker.ui.app import build_demo, launch  # noqa: E402

# ZeroGPU wants the model on "cuda" at import time (the spaces package emulates the device until a call)
device = "cuda" if spaces is not None or torch.cuda.is_available() else "cpu"
pipe = OmniTalkerPipeline.from_pretrained(pipeline_source()).to(device)
visual_source = os.environ.get("OMNITALKER_VISUAL_PIPELINE") or None
visual = OmniTalkerPipeline.from_pretrained(visual_source).to(device) if visual_source else None
if visual is None and "visual" not in pipe.branches:
    visual = pipe.get_visual_pipeline()  # configured, else the bundled demo: loaded now, on the model's device
if os.environ.get("OMNITALKER_RENDERER"):  # e.g. a converted LivePortrait renderer (needs a GPU for real time)
    from omnitalker.render.choose import attach_renderer  # noqa: E402

    attach_renderer(visual or pipe, os.environ["OMNITALKER_RENDERER"], device=device)
demo = build_demo(pipe, examples_dir=examples_folder(), visual_pipeline=visual,
                  gpu=spaces.GPU(duration=GPU_SECONDS) if spaces is not None else None)

if __name__ == "__main__":
    launch(demo)
