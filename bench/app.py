"""Benchmark the demo as a user meets it: a real browser (Playwright + Debian's Chromium) on a local launch.

    python bench/app.py                                   # bundled weights if present, else a tiny random pipeline
    python bench/app.py --pipeline weights/omnitalker-demo --steps 16
    python bench/app.py --text "Space is quiet, but I can tell you a story."   # issue 34: a 10-word sentence

Measures, on the Talk tab with the example reference clip (examples/astronaut_talking.mp4):
- click -> first progress update shown in the page (target < 1 s);
- click -> the first playable piece of the streamed video (a <video> with duration > 0), and click -> the whole
  mp4 offered for download, for a ~5 s clip, against the same generation called directly (pipeline + mp4 export,
  no UI) in the same run: the ratio is the demo's overhead; and the same generation streamed directly
  (``pipe.stream`` with the short first chunk the page asks for, issue 34): seconds to its first piece and to all;
- two requests submitted back to back through gradio_client: the second waits in the queue and completes.
Results go to bench/results/app.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 600_000
# ~5 s of speech at the example reference's pace (its 14 words take 3.5 s)
TEXT = "Space is quiet, but I can still tell you a story about the stars and the long way home."
# any progress the page shows: a stage's label, or the step count that replaces it within ~0.1 s when the reference
# is already analysed (the label alone was missed by the 20 ms polling and the run waited for ever)
PROGRESS_SHOWN = """() => ['Reading the reference', 'Generating', 'Encoding']
                       .some(label => document.body.innerText.includes(label))
                       || /\\d+\\/\\d+ steps|\\d+ chunks/.test(document.body.innerText)"""
VIDEO_READY = """() => { const v = document.querySelector('#output-video video');
                         return v !== null && Number.isFinite(v.duration) && v.duration > 0; }"""
MP4_READY = "() => document.querySelector('#output-file a[download]') !== null"


def load_pipeline(name: str | None):
    from omnitalker.pipeline import OmniTalkerPipeline

    folder = Path(name) if name else ROOT / "weights" / "omnitalker-demo"
    if (folder / "model_index.json").is_file() or (name and not folder.exists()):
        return OmniTalkerPipeline.from_pretrained(str(folder) if folder.exists() else name), str(name or folder)
    from tests.pipeline_fixtures import get_dummy_components

    return OmniTalkerPipeline(**get_dummy_components()), "tiny random (tests/pipeline_fixtures.py; no weights found)"


def direct_baseline(pipe, example: dict, steps: int, text: str = TEXT) -> tuple[float, float]:
    """Seconds for the same generation without the UI (reference analysis + pipeline + mp4), output seconds."""
    import torch

    from omnitalker.io.export import export_to_video

    start = time.perf_counter()
    out = pipe(text, reference_video=example["video"], reference_text=example["reference_text"],
               num_inference_steps=steps, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as folder:
        export_to_video(out.frames[0], Path(folder) / "out.mp4", fps=int(out.fps), audio=out.audio[0],
                        sample_rate=out.sample_rate)
    return time.perf_counter() - start, len(out.audio[0]) / out.sample_rate


def direct_stream(pipe, example: dict, steps: int, text: str) -> tuple[float, float]:
    """Seconds to the first piece and to the last of the same generation streamed as the page streams it
    (reference analysis included, no encoding)."""
    import torch

    from omnitalker.pipeline.chunking import DEFAULT_FIRST_CHUNK_SECONDS

    start = time.perf_counter()
    first = None
    for _ in pipe.stream(text, reference_video=example["video"], reference_text=example["reference_text"],
                         num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                         first_chunk_seconds=DEFAULT_FIRST_CHUNK_SECONDS):
        first = first or time.perf_counter() - start
    return first, time.perf_counter() - start


def browser_run(url: str, example: dict, steps: int, screenshot: Path, text: str = TEXT) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        page.locator("#reference-video input[type=file]").set_input_files(example["video"])
        page.locator("#reference-video video").wait_for()
        page.locator("#reference-text textarea").fill(example["reference_text"])
        page.locator("#text textarea").fill(text)
        page.get_by_text("Advanced settings").first.click()
        page.locator("#steps input[type=number]").fill(str(steps))
        page.locator("#steps input[type=number]").press("Enter")
        clicked = time.perf_counter()
        page.locator("#generate").click()
        page.wait_for_function(PROGRESS_SHOWN, polling=20)
        first_progress = time.perf_counter() - clicked
        page.wait_for_function(VIDEO_READY, polling=50, timeout=TIMEOUT_MS)
        playable = time.perf_counter() - clicked
        page.wait_for_function(MP4_READY, polling=50, timeout=TIMEOUT_MS)
        total = time.perf_counter() - clicked
        page.screenshot(path=str(screenshot), full_page=True)
        browser.close()
    return {"click_to_first_progress_s": round(first_progress, 3), "click_to_first_playable_s": round(playable, 2),
            "click_to_video_s": round(total, 2)}


def queued_pair(url: str, example: dict, steps: int, text: str = TEXT) -> dict:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    args = (handle_file(example["video"]), None, None, example["reference_text"], text, steps, 2.0, 0.5, 0.5, 1.0)
    start = time.perf_counter()
    jobs = [client.submit(*args, seed, api_name="/talk") for seed in (0, 1)]
    finished: dict[int, float] = {}
    while len(finished) < len(jobs):  # poll, so each job's own completion time is recorded
        for index, job in enumerate(jobs):
            if index not in finished and job.done():
                job.result()  # raises if the request failed
                finished[index] = round(time.perf_counter() - start, 2)
        if time.perf_counter() - start > TIMEOUT_MS / 1000:
            raise TimeoutError(f"queued requests not done after {TIMEOUT_MS / 1000:.0f} s: {finished}")
        time.sleep(0.05)
    client.close()
    # seconds from submission, in submission order; the two submits race, so either may be served first
    return {"both_completed": True, "first_done_s": finished[0], "second_done_s": finished[1]}


def main(argv: list[str] | None = None) -> None:
    import torch

    from omnitalker.ui.app import _load_examples, build_demo

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", help="pipeline folder or Hub id (default: weights/omnitalker-demo)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "app.json")
    parser.add_argument("--text", default=TEXT, help="what the person says (default: ~5 s of speech)")
    parser.add_argument("--screenshot", type=Path, help="save the page after generation here (png)")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help="launch without python app.py's warm-up (the examples' references analysed at launch): "
                             "the first click on the example then waits for its analysis")
    args = parser.parse_args(argv)

    example = _load_examples(ROOT / "examples")["talk_video"][0]
    pipe, pipeline_name = load_pipeline(args.pipeline)
    direct_baseline(pipe, example, 1)  # warm-up: face analyzer, first-call allocations
    direct_s, direct_audio_s = direct_baseline(pipe, example, args.steps, args.text)
    stream_first_s, stream_s = direct_stream(pipe, example, args.steps, args.text)

    with tempfile.TemporaryDirectory() as folder:
        os.environ["GRADIO_TEMP_DIR"] = folder
        demo = build_demo(pipe, output_root=Path(folder) / "outputs", warm_up=args.warm_up)
        if demo.omnitalker_warm_up is not None:
            demo.omnitalker_warm_up.join()  # a visitor arrives after the launch
        _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
        try:
            browser = browser_run(url, example, args.steps, args.screenshot or Path(folder) / "page.png", args.text)
            queue = queued_pair(url, example, args.steps, args.text)
        finally:
            demo.close()

    result = {
        "pipeline": pipeline_name,
        "steps": args.steps,
        "text": args.text,
        "warm_up": args.warm_up,
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads",
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),  # other work on the machine skews timings
        "direct_pipeline_s": round(direct_s, 2),
        "direct_audio_seconds": round(direct_audio_s, 2),
        "direct_stream_first_piece_s": round(stream_first_s, 2),
        "direct_stream_s": round(stream_s, 2),
        **browser,
        "ui_overhead_ratio": round(browser["click_to_video_s"] / direct_s, 2),
        "first_playable_to_direct_ratio": round(browser["click_to_first_playable_s"] / direct_s, 2),
        "queue": queue,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:28s} {value}")


if __name__ == "__main__":
    main()
