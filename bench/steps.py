"""Fewer sampling steps: which time grid keeps the output, measured two ways on the held-out splits.

    bash scripts/demo_corpora.sh                                      # data/synth-eval (once)
    PYTHONPATH=. python bench/steps.py trajectory                     # every candidate grid at 4-16 steps, 8 items
    PYTHONPATH=. python bench/steps.py trajectory --grids sway:6 epss:6   # some of them
    PYTHONPATH=. python bench/steps.py wer --grids sway:16 sway:8 epss:8 sway:6 epss:6 --max-samples 64

1. ``trajectory``: every candidate grid samples the same items with the same noise; its error is the distance of
   its mel (and visual codes) to a fine solution of the same ODE (FINE_STEPS swayed Euler steps): the integration
   error the grid leaves, without a recognizer's noise. Candidates per step count: F5-TTS's sway family
   (coefficients SWAY_COEFS, ours is -1) and its "EPSS" grids (time points on a 1/32 grid that F5-TTS's authors
   chose by measuring where the flow is straight; their published table, EPSS_POINTS) where they exist.
2. ``wer``: the chosen grids through ``omnitalker.eval.benchmark.evaluate`` (Whisper WER, in-domain CER, sync,
   FIDs), the same items and seed for every grid, so their differences are paired.

A grid is named ``family:steps``: ``sway:8`` (our default family), ``sway-0.6:8`` (another coefficient),
``epss:8``. Results: bench/results/steps_trajectory.json, bench/results/steps_wer.json. The measured grid the
demo ships goes into its scheduler config (``step_grids``, omnitalker/flow/scheduler.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FINE_STEPS = 64
SWAY_COEFS = (-1.0, -0.8, -0.6, -0.3, 0.0)
EPSS_POINTS = {  # F5-TTS's published EPSS time points, in 1/32 of the flow time
    5: (0, 2, 4, 8, 16, 32),
    6: (0, 2, 4, 6, 8, 16, 32),
    7: (0, 2, 4, 6, 8, 16, 24, 32),
    10: (0, 2, 4, 6, 8, 12, 16, 20, 24, 28, 32),
    12: (0, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32),
    16: (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32),
}
EPSS_UNIT = 32
STEP_COUNTS = (4, 5, 6, 7, 8, 10, 12, 16)
RESULTS = ROOT / "bench" / "results"


def grid_of(name: str) -> list[float]:
    """``family:steps`` -> its N + 1 flow times."""
    from omnitalker.flow.scheduler import DEFAULT_SWAY_SAMPLING_COEF, flow_time_grid

    family, _, steps = name.partition(":")
    steps = int(steps)
    if family == "epss":
        if steps not in EPSS_POINTS:
            raise ValueError(f"no EPSS grid for {steps} steps; there are grids for {sorted(EPSS_POINTS)}")
        return [point / EPSS_UNIT for point in EPSS_POINTS[steps]]
    if family == "sway":
        return flow_time_grid(steps, DEFAULT_SWAY_SAMPLING_COEF).tolist()
    if family.startswith("sway"):
        return flow_time_grid(steps, float(family[len("sway"):])).tolist()
    raise ValueError(f"unknown grid family {family!r} in {name!r}: use sway, sway<coef> or epss")


def with_grid(pipe, name: str):
    """The pipeline with a scheduler that walks the named grid (same solver)."""
    from omnitalker.flow.scheduler import OmniTalkerFlowMatchScheduler

    grid = grid_of(name)
    steps = len(grid) - 1
    pipe.scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=steps, solver=pipe.scheduler.config.solver,
                                                  step_grids={str(steps): grid})
    return steps


def load(pipeline: str):
    from omnitalker.pipeline import OmniTalkerPipeline

    pipe = OmniTalkerPipeline.from_pretrained(pipeline)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def trajectory(args) -> dict:
    from omnitalker.eval.benchmark import plan_items, run_model

    pipe = load(args.pipeline)
    items, _ = plan_items(args.data_dir, ["val_texts", "val_speakers"], args.items)
    solver = pipe.scheduler.config.solver
    with_grid(pipe, f"sway:{FINE_STEPS}")
    fine = run_model(pipe, items, True, FINE_STEPS, args.seed)
    names = args.grids
    if names is None:  # every candidate
        names = [f"sway{coef:+g}:{n}" if coef != -1.0 else f"sway:{n}" for n in STEP_COUNTS for coef in SWAY_COEFS]
        names += [f"epss:{n}" for n in STEP_COUNTS if n in EPSS_POINTS]
    rows = {}
    for name in names:
        steps = with_grid(pipe, name)
        start = time.perf_counter()
        outputs = run_model(pipe, items, True, steps, args.seed)
        mel = np.mean([np.abs(o.mel - f.mel).mean() for o, f in zip(outputs, fine, strict=True)])
        codes = np.mean([np.abs(o.codes - f.codes).mean() for o, f in zip(outputs, fine, strict=True)])
        rows[name] = {"steps": steps, "mel_l1": round(float(mel), 4), "codes_l1": round(float(codes), 5),
                      "seconds": round(time.perf_counter() - start, 1)}
        print(f"{name:14s} mel L1 {mel:.4f}  codes L1 {codes:.5f}  ({rows[name]['seconds']} s)", flush=True)
    best = {}
    for n in sorted({row["steps"] for row in rows.values()}):
        candidates = {name: row for name, row in rows.items() if row["steps"] == n}
        best[n] = min(candidates, key=lambda name: candidates[name]["mel_l1"])
    return {"solver": solver, "fine_steps": FINE_STEPS, "items": len(items), "grids": rows, "best_by_mel": best}


def wer(args) -> dict:
    from omnitalker.eval.benchmark import evaluate
    from omnitalker.eval.recognizer import CTCRecognizer
    from omnitalker.frontend.asr import load_recognizer

    pipe = load(args.pipeline)
    recognizer = CTCRecognizer.from_pretrained(ROOT / "weights" / "ctc-recognizer").eval()
    recognizer_zh = CTCRecognizer.from_pretrained(ROOT / "weights" / "ctc-recognizer-zh").eval()
    asr = load_recognizer("default")
    rows = {}
    for name in args.grids:
        steps = with_grid(pipe, name)
        result = evaluate(pipe, recognizer, args.data_dir, ["val_texts", "val_speakers"], args.max_samples, steps,
                          args.seed, systems=("ground_truth", "reference"), asr=asr, recognizer_zh=recognizer_zh,
                          log=lambda *a: None)
        rows[name] = {"steps": steps, "grid": grid_of(name), "results": result["results"],
                      "seconds": result["config"]["generation_seconds"]}
        summary = {split: round(result["results"][split]["reference"]["wer"], 3) for split in result["results"]}
        print(f"{name:14s} WER {summary}  ({rows[name]['seconds']})", flush=True)
    return {"max_samples": args.max_samples, "grids": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=("trajectory", "wer"))
    parser.add_argument("--pipeline", default=str(ROOT / "weights" / "omnitalker-demo"))
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "synth-eval"))
    parser.add_argument("--items", type=int, default=8, help="trajectory: items, shared by the two splits")
    parser.add_argument("--max-samples", type=int, default=64, help="wer: items, shared by the two splits")
    parser.add_argument("--grids", nargs="+", default=None,
                        help="grids to score (trajectory default: every candidate; wer default: sway:16 sway:8 sway:6)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    if args.phase == "wer" and args.grids is None:
        args.grids = ["sway:16", "sway:8", "sway:6"]
    result = trajectory(args) if args.phase == "trajectory" else wer(args)
    result["machine"] = f"{platform.machine()} {os.cpu_count()} CPU cores, {torch.get_num_threads()} threads"
    result["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    out = args.out or RESULTS / f"steps_{args.phase}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
