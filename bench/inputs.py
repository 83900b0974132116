"""What any upload costs (issue 14): time and peak RSS of `omnitalker generate` on big photos, a 4K clip, long texts.

Each case runs `python -m omnitalker generate` as a new user would (the issue's measurement): wall time from
start to exit (imports and model loading included), CPU time (user + system; less sensitive to other load on
the machine) and peak RSS of that process alone. The bundled demo pipeline with the CLI's defaults: output
longer side <= 1024 px (--max-side), frames rendered, watermarked and encoded a chunk at a time.
- photo 474² (baseline), photo 12 MP (3464²), photo 48 MP (6928²): JPEGs of examples/astronaut.png upscaled,
  with examples/voice.wav as the voice and a ~4 s sentence to say;
- clip 512², 10 s (baseline of the clip cases) and clip 4K (3840x2160), 60 s: examples/astronaut_talking.mp4
  looped (video and audio) and upscaled (the 4K one letterboxed, encoded with x264 "ultrafast");
- text 500 and 5,000 characters (sentences of a fixed paragraph) with the 474² photo, at --text-steps sampling
  steps (memory does not depend on the step count; time does, linearly in the DiT part).
Every input is made from the repository's own media (no third-party files) into --workdir, once.
Ratios are against the baselines measured in the same run: photos vs the 474² photo, clips vs the 512² clip,
texts vs the 500-character text. The old unbounded path is not run (a 12 MP photo peaked at ~19 GB there).

    PYTHONPATH=. OMP_NUM_THREADS=1 python bench/inputs.py            # all cases; table + bench/results/inputs.json
    PYTHONPATH=. python bench/inputs.py --cases photo-474 photo-12mp --steps 16 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "inputs.json"
EXAMPLES = ROOT / "examples"
PIPELINE = ROOT / "weights" / "omnitalker-demo"
SAY = "A photo and a short recording are enough to make me speak."
VOICE_TEXT = "Good morning. This is my voice, recorded for the demo."
CLIP_TEXT = "Hello, I am an astronaut. I like to talk about the stars."
PARAGRAPH = (
    "Good morning, and welcome to the show. Today we talk about how machines learn to speak. "
    "It starts with sound, cut into small frames. Each frame becomes a picture of its frequencies. "
    "A network learns to paint such pictures from text. Then a vocoder turns them back into sound. "
    "The face follows the voice, frame by frame. That is all for today, thank you for listening. "
)
CLIP_FPS = 25
FOUR_K = (3840, 2160)
LETTERBOX_GREY = 96
# name -> (kind, parameters); the baseline of each group first
CASES = {
    "photo-474": ("photo", {"side": 474}),
    "photo-12mp": ("photo", {"side": 3464}),
    "photo-48mp": ("photo", {"side": 6928}),
    "clip-512-10s": ("clip", {"size": (512, 512), "seconds": 10.0}),
    "clip-4k-60s": ("clip", {"size": FOUR_K, "seconds": 60.0}),
    "text-500": ("text", {"characters": 500}),
    "text-5000": ("text", {"characters": 5000}),
}
BASELINES = {"photo": "photo-474", "clip": "clip-512-10s", "text": "text-500"}
TARGETS = {"photo-12mp": 1.5, "clip-4k-60s": 2.0}  # time and peak RSS vs the group's baseline (issue 14)
TEXT_RSS_TARGET = 1.10  # 5,000 characters vs 500: peak RSS within ~10 %


# ---------------------------------------------------------------------------------------------- inputs


def make_photo(path: Path, side: int) -> Path:
    import cv2

    if not path.is_file():
        face = cv2.imread(str(EXAMPLES / "astronaut.png"))
        cv2.imwrite(str(path), cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC),
                    [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def make_clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    """examples/astronaut_talking.mp4 looped to `seconds` and scaled to fit `size` (letterboxed), streamed."""
    import cv2
    import numpy as np

    from omnitalker.io.export import export_to_video
    from omnitalker.io.video import read_video

    if path.is_file():
        return path
    source = read_video(str(EXAMPLES / "astronaut_talking.mp4"), sample_rate=24000)
    width, height = size
    side = min(width, height)
    num_frames = round(seconds * CLIP_FPS)

    def frames():
        for index in range(num_frames):
            face = cv2.resize(source.frames[index % len(source.frames)], (side, side), interpolation=cv2.INTER_CUBIC)
            left, top = (width - side) // 2, (height - side) // 2
            yield cv2.copyMakeBorder(face, top, height - side - top, left, width - side - left, cv2.BORDER_CONSTANT,
                                     value=(LETTERBOX_GREY,) * 3)

    loop = source.frames.shape[0] / source.fps
    audio = np.tile(source.audio[: round(loop * source.sample_rate)], int(np.ceil(seconds / loop)))
    export_to_video(frames(), str(path), fps=CLIP_FPS, audio=audio[: round(seconds * source.sample_rate)],
                    sample_rate=source.sample_rate, preset="ultrafast", crf=23)
    return path


def make_text(characters: int) -> str:
    """Whole sentences of PARAGRAPH, repeated, up to `characters`."""
    sentences = [sentence.strip() + "." for sentence in PARAGRAPH.split(".") if sentence.strip()]
    text, index = "", 0
    while len(text) + len(sentences[index % len(sentences)]) + 1 <= characters:
        text += sentences[index % len(sentences)] + " "
        index += 1
    return text.strip()


def make_inputs(name: str, workdir: Path) -> dict:
    kind, parameters = CASES[name]
    if kind == "photo":
        return {"reference_image": str(make_photo(workdir / f"photo-{parameters['side']}.jpg", parameters["side"])),
                "reference_audio": str(EXAMPLES / "voice.wav"), "reference_text": VOICE_TEXT, "text": SAY}
    if kind == "clip":
        width, height = parameters["size"]
        path = make_clip(workdir / f"clip-{width}x{height}-{parameters['seconds']:g}s.mp4", parameters["size"],
                         parameters["seconds"])
        loops = 3  # the reference keeps its first ~10 s of speech: three loops of the 3.5 s clip
        return {"reference_video": str(path), "reference_text": " ".join([CLIP_TEXT] * loops), "text": SAY}
    return {"reference_image": str(make_photo(workdir / "photo-474.jpg", 474)),
            "reference_audio": str(EXAMPLES / "voice.wav"), "reference_text": VOICE_TEXT,
            "text": make_text(parameters["characters"])}


# ---------------------------------------------------------------------------------------------- one case


def run_case(name: str, workdir: Path, steps: int, threads: int, pipeline: str, max_side: int | None) -> dict:
    """`python -m omnitalker generate ...` as a user runs it: wall time from start to exit (imports included, as
    the issue measured), CPU time and peak RSS of that process alone (os.wait4)."""
    inputs = make_inputs(name, workdir)
    target = workdir / f"out-{name}.mp4"
    command = [sys.executable, "-m", "omnitalker", "generate", "--pipeline", pipeline, "--text", inputs["text"],
               "--reference-text", inputs["reference_text"], "--steps", str(steps), "--out", str(target)]
    if "reference_video" in inputs:
        command += ["--reference", inputs["reference_video"]]
    else:
        command += ["--image", inputs["reference_image"], "--voice", inputs["reference_audio"]]
    if max_side is not None:
        command += ["--max-side", str(max_side)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}
    start = time.perf_counter()
    with open(workdir / f"log-{name}.txt", "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = code = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    if code != 0:
        sys.exit(f"{name} failed (exit {code}):\n{(workdir / f'log-{name}.txt').read_text()[-3000:]}")
    import av

    with av.open(str(target)) as container:  # the header only: a long output is not decoded
        video = container.streams.video[0]
        output_size, output_seconds = f"{video.width}x{video.height}", container.duration / av.time_base
    input_file = inputs.get("reference_image") or inputs["reference_video"]
    return {
        "case": name,
        "input": f"{Path(input_file).name} ({os.path.getsize(input_file) / 1e6:.1f} MB)",
        "text_characters": len(inputs["text"]),
        "steps": steps,
        "output_seconds": round(output_seconds, 2),
        "output_size": output_size,
        "output_mb": round(target.stat().st_size / 1e6, 2),
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--steps", type=int, default=16, help="sampling steps of the photo and clip cases")
    parser.add_argument("--text-steps", type=int, default=4, help="sampling steps of the text cases")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default 1)")
    parser.add_argument("--max-side", type=int, default=None, help="--max-side of the CLI (default: its own)")
    parser.add_argument("--pipeline", default=str(PIPELINE), help="pipeline folder (default: the bundled demo)")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "omnitalker-bench-inputs"),
                        help="where the generated inputs and outputs go (kept: inputs are made once)")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    for name in args.cases:  # made before any timing
        make_inputs(name, workdir)
    runs = {}
    for name in args.cases:
        print(f"{name} ...", file=sys.stderr, flush=True)
        steps = args.text_steps if CASES[name][0] == "text" else args.steps
        runs[name] = run_case(name, workdir, steps, args.threads, args.pipeline, args.max_side)

    print("| case | input | output | steps | wall s | CPU s | peak RSS MB | × baseline wall | × baseline CPU | "
          "× baseline RSS | target |")
    print("|" + "---|" * 11)
    for name, run in runs.items():
        baseline = runs.get(BASELINES[CASES[name][0]])
        ratios, target = ("—", "—", "—"), "—"
        if baseline is not None:
            ratios = tuple(f"{run[key] / baseline[key]:.2f}" for key in ("wall_seconds", "cpu_seconds", "peak_rss_mb"))
            if name in TARGETS:
                met = max(float(ratios[0]), float(ratios[2])) <= TARGETS[name]
                target = f"time and RSS ≤ {TARGETS[name]:g}×: {'met' if met else 'missed'}"
            elif name == "text-5000":
                target = f"RSS ≤ {TEXT_RSS_TARGET:g}×: {'met' if float(ratios[2]) <= TEXT_RSS_TARGET else 'missed'}"
        print(f"| {name} | {run['input']} | {run['output_size']}, {run['output_seconds']:.1f} s, "
              f"{run['output_mb']:.1f} MB | {run['steps']} | {run['wall_seconds']:.1f} | {run['cpu_seconds']:.1f} | "
              f"{run['peak_rss_mb']:.0f} | {' | '.join(ratios)} | {target} |")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"OMP_NUM_THREADS={args.threads}",
        "python": platform.python_version(),
        "pipeline": os.path.relpath(args.pipeline, ROOT),
        "max_side": args.max_side or "CLI default",
        "runs": list(runs.values()),
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
