"""Pick a renderer by name: what a ``--renderer`` option or an environment variable resolves to.

    renderer = load_renderer("warp")                         # the training-free WarpRenderer (default)
    renderer = load_renderer("weights/liveportrait")         # a converted LivePortrait renderer folder
    renderer = load_renderer("someone/liveportrait-omnitalker", device="cuda")   # ... or its Hub repo id
    pipe.renderer = renderer                                 # the pipeline then renders (and saves) with it

A LivePortrait folder is made by ``python -m omnitalker.convert.liveportrait`` from the released weights.
"""

from __future__ import annotations

import json
from pathlib import Path

WARP = "warp"
RENDERER_CHOICES_HELP = (f"'{WARP}' (the training-free warp renderer, default) or a LivePortrait renderer folder / Hub "
                         "repo id made by python -m omnitalker.convert.liveportrait")


def load_renderer(spec: str | Path | None = None, *, output_size: int = 512, device: str = "cpu"):
    """`spec`: None or 'warp' -> ``WarpRenderer(output_size)``; a folder or Hub repo id holding a converted
    LivePortrait renderer -> ``LivePortraitRenderer`` on `device` in eval mode. A folder that is not one is a
    ValueError saying how to make one."""
    if spec is None or str(spec).strip().lower() == WARP:
        from omnitalker.render.warp import WarpRenderer

        return WarpRenderer(output_size=output_size)
    from omnitalker.render.liveportrait import LivePortraitRenderer

    path = Path(spec).expanduser()
    looks_local = path.exists() or str(spec).startswith((".", "/", "~")) or str(spec).count("/") != 1
    if looks_local:
        config = path / "config.json"
        if not config.is_file():
            raise ValueError(f"renderer {str(spec)!r} is neither '{WARP}' nor a renderer folder (no config.json); make "
                             f"one with: python -m omnitalker.convert.liveportrait --src KwaiVGI/LivePortrait --out {spec}")
        name = json.loads(config.read_text()).get("_class_name")
        if name != LivePortraitRenderer.__name__:
            raise ValueError(f"renderer folder {spec} holds a {name or 'unknown'} model, not a LivePortraitRenderer")
    return LivePortraitRenderer.from_pretrained(str(spec)).to(device).eval()


def attach_renderer(pipe, spec: str | Path, *, device: str = "cpu", visual_pipeline=None):
    """Load `spec` (``load_renderer``) and make it the renderer of the pipeline that draws the face: `pipe` itself
    when it has a trained visual branch, else (the cascade) its visual pipeline: `visual_pipeline` (a pipeline,
    folder or Hub id) or the configured one. Returns that pipeline, to be passed on as the visual pipeline."""
    drawer = pipe if "visual" in pipe.branches else pipe.get_visual_pipeline(visual_pipeline)
    drawer.renderer = load_renderer(spec, device=device)
    return drawer
