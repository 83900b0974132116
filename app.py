"""Launch the OmniTalker demo on the bundled weights (weights/omnitalker-demo), or on a folder / Hub id.

    python app.py                                   # http://0.0.0.0:7860
    python app.py --pipeline path/or/hub-id --port 7861 --device cuda

The demo itself is omnitalker/app.py (build_demo); this file only loads the pipeline and launches.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_PIPELINE = Path(__file__).resolve().parent / "weights" / "omnitalker-demo"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="OmniTalker Gradio demo")
    parser.add_argument("--pipeline", default=str(DEFAULT_PIPELINE),
                        help="pipeline folder or Hub repo id (default: the bundled demo weights)")
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

    from omnitalker.app import build_demo, launch
    from omnitalker.pipeline import OmniTalkerPipeline

    pipe = OmniTalkerPipeline.from_pretrained(args.pipeline).to(args.device)
    launch(build_demo(pipe), server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
