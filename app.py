"""Launch the OmniTalker demo on the bundled weights (weights/omnitalker-demo), or on a folder / Hub id.

    python app.py                                   # http://0.0.0.0:7860
    python app.py --pipeline path/or/hub-id --port 7861 --device cuda
    python app.py --pipeline f5tts-v1 --visual-pipeline weights/omnitalker-demo   # cascade: F5 voice + demo face
    OMNITALKER_PIPELINE=f5tts-v1 OMNITALKER_VISUAL_PIPELINE=... python app.py     # the same, as in the Space

A pipeline with only an audio branch (``python -m omnitalker.convert.pipeline``) runs in cascade mode; the page
says which mode runs.

The demo itself is omnitalker/ui/app.py (build_demo); this file only loads the pipeline and launches.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_PIPELINE = Path(__file__).resolve().parent / "weights" / "omnitalker-demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OmniTalker Gradio demo")
    parser.add_argument("--pipeline", default=os.environ.get("OMNITALKER_PIPELINE") or str(DEFAULT_PIPELINE),
                        help="pipeline folder or Hub repo id (default: OMNITALKER_PIPELINE, else the bundled demo)")
    parser.add_argument("--visual-pipeline", default=os.environ.get("OMNITALKER_VISUAL_PIPELINE") or None,
                        help="cascade mode: the pipeline that animates the face for an audio-only --pipeline "
                             "(default: OMNITALKER_VISUAL_PIPELINE, else its configured one, else the bundled demo)")
    parser.add_argument("--renderer", default=os.environ.get("OMNITALKER_RENDERER") or None,
                        help="what draws the face (default: OMNITALKER_RENDERER, else the pipeline's own): "
                             "'warp' or a LivePortrait renderer folder / Hub id (python -m omnitalker.convert.liveportrait)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--host", default=None, help="server name (default GRADIO_SERVER_NAME or 0.0.0.0)")
    parser.add_argument("--port", type=int, default=None, help="port (default GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)

    local = Path(args.pipeline)
    if (local.exists() or args.pipeline == str(DEFAULT_PIPELINE)) and not (local / "model_index.json").is_file():
        print(f"No OmniTalker pipeline at {local}.\n"
              "The demo never runs on random weights. Build or fetch the demo checkpoint first (see "
              "weights/README.md), or pass --pipeline with a saved OmniTalkerPipeline folder or a Hub repo id.",
              file=sys.stderr)
        return 1

    from omnitalker.pipeline import OmniTalkerPipeline
    from omnitalker.ui.app import build_demo, launch

    pipe = OmniTalkerPipeline.from_pretrained(args.pipeline).to(args.device)
    visual = args.visual_pipeline
    if args.renderer:
        from omnitalker.render.choose import attach_renderer

        drawer = attach_renderer(pipe, args.renderer, device=args.device, visual_pipeline=visual)
        visual = None if drawer is pipe else drawer
    launch(build_demo(pipe, visual_pipeline=visual, warm_up=True), server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
