"""End-to-end pipeline speed: real-time factor, per-stage time and peak memory for 5 s and 20 s of output.

The measured call is what the app and the CLI run: ``pipe(..., stream_frames=True)`` and ``export_to_video`` of
the streamed frames to an mp4. Stages (wall time, summed over chunks): reference analysis (audio + face tracking
+ codes), DiT sampling (all solver steps, CFG included), vocoder, and frames -> mp4 (renderer, watermarks and
H.264 + AAC encoding: streamed, they overlap). RTF = total wall time / seconds of output (< 1 is faster than
real time). CPU seconds (process time, all threads) are printed too: on a shared machine they are far less
sensitive to other load than wall time. Each configuration runs in a fresh process so its peak RSS is its own.

Baselines measured in the same run:
- "previous": the settings before issue 17's speed work: guidance on every step (``guidance_refresh_every=1``),
  one face-tracking graph (``FaceAnalyzer(workers=1)``), frames rendered whole, then watermarked, then encoded;
- "no CFG": the default call without guidance (one transformer pass per step), which shows what guidance costs.

Components: the transformer config "demo" (random weights: speed does not depend on their values), a
Vocos vocoder of the released size (random weights), the warp renderer at --render-size, 16 steps; or a saved
pipeline (``--pipeline weights/omnitalker-demo``). The reference is the synthetic talking astronaut
(tests/pipeline_fixtures.py), 4 s at 256 px.

    python bench/pipeline.py                        # 5 s and 20 s, 2 threads; table + bench/results/pipeline.json
    python bench/pipeline.py --pipeline weights/omnitalker-demo --seconds 5 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "pipeline.json"
REFERENCE_SECONDS = 4.0
REFERENCE_SIZE = 256
WARM_UP_SECONDS = 2.0
LONG_TEXT = (
    "Good morning, and welcome to the show. Today we talk about how machines learn to speak. "
    "It starts with sound, cut into small frames. Each frame becomes a picture of its frequencies. "
    "A network learns to paint such pictures from text. Then a vocoder turns them back into sound. "
    "The face follows the voice, frame by frame. That is all for today, thank you for listening."
)
STAGES = ("reference analysis", "DiT sampling", "vocoder", "frames -> mp4")
VARIANTS = ("default", "previous", "no CFG")


def timed(stages: dict, cpu: dict, name: str, function):
    """Wrap `function` to add its wall time to stages[name] and its process CPU time to cpu[name]."""

    def wrapper(*args, **kwargs):
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            stages[name] += time.perf_counter() - start
            cpu[name] += time.process_time() - start_cpu

    return wrapper


def build_pipeline(render_size: int, path: str | None = None):
    """The "demo"-config pipeline with random weights, or a saved pipeline (e.g. the bundled weights)."""
    import torch

    from omnitalker.flow.scheduler import OmniTalkerFlowMatchScheduler
    from omnitalker.frontend.text import OmniTalkerTokenizer
    from omnitalker.models.transformer import OmniTalkerTransformer
    from omnitalker.models.vocoder import VocosVocoder
    from omnitalker.pipeline import OmniTalkerPipeline
    from omnitalker.render.warp import WarpRenderer

    if path is not None:
        pipe = OmniTalkerPipeline.from_pretrained(path)
        pipe.set_progress_bar_config(disable=True)
        return pipe
    torch.manual_seed(0)
    pipe = OmniTalkerPipeline(
        transformer=OmniTalkerTransformer.from_named_config("demo").eval(),
        scheduler=OmniTalkerFlowMatchScheduler(),
        tokenizer=OmniTalkerTokenizer.default(),
        vocoder=VocosVocoder().eval(),
        renderer=WarpRenderer(output_size=render_size),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def passes(pipe, variant: str, steps: int) -> int:
    """Transformer passes over `steps` steps of a variant: 1 per step, plus one per non-zero strength on the
    steps that compute the guidance term (every step for "previous", every ``refresh_every``-th by default)."""
    from omnitalker.flow.guidance import GuidanceConfig

    if variant == "no CFG":
        return steps
    text, audio, visual, joint = pipe.guidance_strengths()
    refresh = 1 if variant == "previous" else pipe.guidance_refresh_every()
    guidance = GuidanceConfig(text=text, audio=audio, visual=visual, joint=joint, refresh_every=refresh)
    return sum(1 + (len(guidance.strengths(0.0)) if guidance.refreshes(step) else 0) for step in range(steps))


def run_once(seconds: float, steps: int, render_size: int, variant: str, workdir: Path,
             path: str | None = None) -> dict:
    """One measured generation of `seconds` of output in `variant` (VARIANTS); returns stage times, RTF, peak RSS."""
    import torch

    sys.path.insert(0, str(ROOT))
    from omnitalker.io.export import export_to_video
    from omnitalker.pipeline import decode as decode_module
    from omnitalker.pipeline.denoise import Sampler
    from tests.pipeline_fixtures import REFERENCE_TEXT, make_reference_video

    reference_video = make_reference_video(workdir / "ref.mp4", seconds=REFERENCE_SECONDS, size=REFERENCE_SIZE)
    pipe = build_pipeline(render_size, path)
    previous = variant == "previous"
    if previous:  # one face-tracking graph, through the pipeline's own config (read when the analyzer is built)
        pipe.register_to_config(face_analyzer_config={"workers": 1})
    # one-off loads (espeak-ng, pypinyin/jieba dictionaries, the face tracker) are not per-call costs: a short
    # call on another reference first (a different clip, so no per-reference cache is warmed)
    warm_video = make_reference_video(workdir / "warm.mp4", seconds=WARM_UP_SECONDS, size=REFERENCE_SIZE)
    pipe("Warm up. 你好。", reference_video=warm_video, reference_text=REFERENCE_TEXT, duration=WARM_UP_SECONDS,
         num_inference_steps=1)
    stages, cpu = defaultdict(float), defaultdict(float)
    pipe.prepare_reference = timed(stages, cpu, "reference analysis", pipe.prepare_reference)
    Sampler.denoise = timed(stages, cpu, "DiT sampling", Sampler.denoise)
    decode_module.vocode = timed(stages, cpu, "vocoder", decode_module.vocode)
    decode_module.render = timed(stages, cpu, "frames -> mp4", decode_module.render)
    decode_module.watermark = timed(stages, cpu, "frames -> mp4", decode_module.watermark)
    encode = timed(stages, cpu, "frames -> mp4", export_to_video)

    options = {"stream_frames": not previous}
    if variant == "no CFG":
        options.update(guidance_text=0.0, guidance_audio=0.0, guidance_visual=0.0, guidance_joint=0.0)
    if previous:
        options["guidance_refresh_every"] = 1
    start, start_cpu = time.perf_counter(), time.process_time()
    out = pipe(LONG_TEXT, reference_video=reference_video, reference_text=REFERENCE_TEXT, duration=seconds,
               num_inference_steps=steps, generator=torch.Generator().manual_seed(0), **options)
    encode(out.frames[0], str(workdir / "out.mp4"), fps=int(out.fps), audio=out.audio[0], sample_rate=out.sample_rate)
    total, total_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    output_seconds = len(out.audio[0]) / out.sample_rate
    return {
        "variant": variant,
        "output_seconds": round(output_seconds, 3),
        "video_frames": len(out.frames[0]),
        "frame_size": list(out.frames[0].shape[1:3]),
        "passes_per_16_steps": passes(pipe, variant, steps),
        "total_seconds": round(total, 3),
        "rtf": round(total / output_seconds, 3),
        "cpu_seconds": round(total_cpu, 3),
        "stages": {name: round(stages[name], 3) for name in STAGES},
        "stages_cpu_seconds": {name: round(cpu[name], 3) for name in STAGES},
        "other_seconds": round(total - sum(stages[name] for name in STAGES), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),  # > threads means other work shared the cores
    }


def child(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        result = run_once(args.seconds[0], args.steps, args.render_size, args.variant, Path(folder), args.pipeline)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--render-size", type=int, default=256)
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline runs (previous settings, no CFG)")
    parser.add_argument("--pipeline", default=None,
                        help="a saved pipeline folder (default: the demo config with random weights)")
    parser.add_argument("--variant", choices=VARIANTS, default="default", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    runs = []
    for seconds in args.seconds:
        for variant in VARIANTS[:1] if args.no_baseline else VARIANTS:
            command = [sys.executable, __file__, "--child", "--seconds", str(seconds), "--steps", str(args.steps),
                       "--threads", str(args.threads), "--render-size", str(args.render_size), "--variant", variant]
            if args.pipeline is not None:
                command += ["--pipeline", args.pipeline]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                sys.exit(f"benchmark run failed:\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))

    header = "| output | variant | passes | RTF | total s | CPU s | " + " | ".join(STAGES) + " | other | peak RSS MB |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for run in runs:
        stages = " | ".join(f"{run['stages'][name]:.2f}" for name in STAGES)
        print(f"| {run['output_seconds']:.1f} s | {run['variant']} | {run['passes_per_16_steps']} | {run['rtf']:.2f} | "
              f"{run['total_seconds']:.1f} | {run['cpu_seconds']:.1f} | {stages} | {run['other_seconds']:.2f} | "
              f"{run['peak_rss_mb']:.0f} |")
    by_key = {(run["output_seconds"] > 10, run["variant"]): run for run in runs}
    for long in (False, True):
        default = by_key.get((long, "default"))
        for baseline in VARIANTS[1:]:
            if default is not None and (long, baseline) in by_key:
                ratio = default["total_seconds"] / by_key[(long, baseline)]["total_seconds"]
                print(f"{'20 s' if long else '5 s'}: default / {baseline} total time = {ratio:.2f}x")
    results = RESULTS if args.pipeline is None else RESULTS.with_name("pipeline_" + Path(args.pipeline).name + ".json")
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps({
        "machine": f"{platform.processor() or platform.machine()}, {args.threads} threads",
        "python": platform.python_version(),
        "steps": args.steps,
        "render_size": args.render_size,
        "transformer": args.pipeline or "demo (random weights)",
        "vocoder": "the pipeline's" if args.pipeline else "VocosVocoder (released size, random weights)",
        "runs": runs,
    }, indent=2) + "\n")
    print(f"wrote {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
