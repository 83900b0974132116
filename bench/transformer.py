"""OmniTalkerTransformer speed: per-step forward latency, 16-step sampling with multi-condition CFG, RTF, FLOPs.

For each config (random weights: speed does not depend on them) and a sequence of ``--ref-seconds`` of
reference prompt + ``--target-seconds`` of target at the mel frame rate (93.75 fps), it measures
  - one unguided forward, batch 1 (the baseline every other row is compared with), and the same without the
    value checks that read tensors (host syncs on a GPU; the sampler runs them on its first step only),
  - the batched CFG forward (full + text/audio/visual dropped = batch 4) and the same 4 passes run one by one,
  - full sampling with omnitalker.flow.sample: Euler 16 steps without CFG, with CFG, and midpoint with the
    same number of model evaluations (8 intervals), giving the real-time factor RTF = compute s / target s,
  - FLOPs per forward, counted with torch.utils.flop_counter.FlopCounterMode at three short lengths and
    fitted exactly (the count is a quadratic polynomial in the frame count), and the achieved FLOP/s.
Plus the CPU target case of issue 2: the ``small`` config, 5 s output + 5 s reference, 16 steps with CFG,
target <= 8 s of compute on 2 cores (also with CFG limited to t < 0.5, F5-style 2-pass CFG, and without CFG;
wall min / median and process CPU time, which is less sensitive to other load on a shared machine).
Run it from the repository root with the package importable (``pip install -e .`` or ``PYTHONPATH=.``).
On a shared CPU, compare ``--threads 1`` and ``--threads 2``: oversubscribed cores make 2 threads slower.

``base`` (0.8 B parameters) is slow on a CPU: there only the batch-1 forward latency on a short sequence
(``--base-seconds``) is measured, plus the exact FLOPs of full-length CFG sampling, unless ``--full-base``. On a GPU everything runs at full length.

    python bench/transformer.py                                   # CPU, fp32; JSON in bench/results/
    python bench/transformer.py --threads 1 --configs small       # one thread, small only
    python bench/transformer.py --device cuda --dtype bf16        # GPU (writes transformer_cuda_bf16.json)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from omnitalker.flow import GuidanceConfig, OmniTalkerFlowMatchScheduler, sample
from omnitalker.frontend.audio import FRAME_RATE
from omnitalker.models.transformer import OmniTalkerTransformer

RESULTS_DIR = Path(__file__).parent / "results"
CHARS_PER_SECOND = 14  # typical read English speech, characters incl. spaces
TEXT_VOCAB_SAMPLE = 60  # token ids drawn from [0, 60): any ids cost the same
NUM_STEPS = 16  # the paper's step count
CPU_TARGET_SECONDS = 8.0  # issue 2: small config, 5 s out + 5 s ref, 16 steps with CFG, on 2 CPU cores
FLOP_FIT_FRAMES = (16, 32, 48)  # three lengths determine the quadratic FLOP polynomial exactly
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CFG = GuidanceConfig(text=2.0, audio=0.5, visual=0.5)  # three conditions -> batch 4 per step
CFG_LIMITED = GuidanceConfig(text=2.0, audio=0.5, visual=0.5, interval=(0.0, 0.5))  # 1 pass once t >= 0.5
CFG_F5 = GuidanceConfig.f5(2.0)  # F5-style joint drop: 2 passes per step instead of 4


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of fn() over `repeats` runs after `warmup` runs."""
    return timed_stats(fn, device, repeats, warmup)["median_s"]


def timed_stats(fn, device: torch.device, repeats: int, warmup: int = 1) -> dict:
    """Min / median wall seconds of fn() and the median process CPU seconds (less sensitive to other load)."""
    for _ in range(warmup):
        fn()
    sync(device)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return dict(min_s=min(wall), median_s=statistics.median(wall), cpu_median_s=statistics.median(cpu))


def make_inputs(frames: int, batch: int, device, dtype, seed: int = 0) -> dict:
    """Noisy streams, prompts (first third given) and text for a (batch, frames) forward."""
    gen = torch.Generator("cpu").manual_seed(seed)
    num_tokens = max(1, round(frames / FRAME_RATE * CHARS_PER_SECOND))
    audio = torch.randn(batch, frames, 100, generator=gen)
    visual = torch.randn(batch, frames, 58, generator=gen)
    prompt = torch.arange(frames) < frames // 3  # n
    return dict(
        audio=audio.to(device, dtype),
        audio_cond=(audio * prompt[None, :, None]).to(device, dtype),
        visual=visual.to(device, dtype),
        visual_cond=(visual * prompt[None, :, None]).to(device, dtype),
        text_ids=torch.randint(0, TEXT_VOCAB_SAMPLE, (batch, num_tokens), generator=gen).to(device),
        timestep=torch.full((batch,), 0.5, device=device),
    )


def count_flops(model, frames: int, device, dtype) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(**make_inputs(frames, 1, device, dtype))
    return counter.get_total_flops()


def flop_polynomial(model, device, dtype) -> np.ndarray:
    """Coefficients (c0, c1, c2) of FLOPs(n) = c0 + c1 n + c2 n^2 for one batch-1 forward of n frames."""
    counts = [count_flops(model, n, device, dtype) for n in FLOP_FIT_FRAMES]
    return np.linalg.solve(np.vander(np.array(FLOP_FIT_FRAMES, dtype=np.float64), 3, increasing=True), counts)


def flops_at(coefficients: np.ndarray, frames: int) -> float:
    return float(coefficients @ np.array([1.0, frames, frames**2]))


def sampling_inputs(ref_seconds: float, target_seconds: float, device, dtype) -> dict:
    ref_frames, frames = round(ref_seconds * FRAME_RATE), round((ref_seconds + target_seconds) * FRAME_RATE)
    inputs = make_inputs(frames, 1, device, dtype)
    cond_mask = (torch.arange(frames, device=device) < ref_frames)[None]  # 1 n
    return dict(text_ids=inputs["text_ids"], audio_cond=inputs["audio"], visual_cond=inputs["visual"],
                cond_mask=cond_mask, num_frames=frames)


def bench_config(name: str, args, device, dtype) -> list[dict]:
    rows = []
    torch.manual_seed(0)
    build_start = time.perf_counter()
    model = OmniTalkerTransformer.from_named_config(name).to(device=device, dtype=dtype).eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"[{name}] {params / 1e6:.2f} M params, built in {time.perf_counter() - build_start:.1f} s", flush=True)
    coefficients = flop_polynomial(model, device, dtype)

    latency_only = name == "base" and device.type == "cpu" and not args.full_base
    ref_s, target_s = (args.base_seconds / 3, 2 * args.base_seconds / 3) if latency_only else (
        args.ref_seconds, args.target_seconds)
    frames = round((ref_s + target_s) * FRAME_RATE)
    flops = flops_at(coefficients, frames)
    if name != "base":  # check the fit against a direct count at the benchmarked length
        direct = count_flops(model, frames, device, dtype)
        assert abs(direct - flops) <= 1e-6 * direct, f"FLOP fit off: {flops} vs {direct}"

    def row(case, seconds, batch_passes, model_evals=1, baseline=None, **extra):
        total_flops = flops * batch_passes * model_evals
        out = dict(config=name, params_m=params / 1e6, case=case, frames=frames, seconds=seconds,
                   gflop=total_flops / 1e9, gflop_per_s=total_flops / seconds / 1e9,
                   x_baseline_time=seconds / baseline if baseline else 1.0, **extra)
        rows.append(out)
        print(f"  {case:<44} {seconds * 1e3:10.1f} ms  {out['gflop']:9.1f} GFLOP  "
              f"{out['gflop_per_s']:7.1f} GFLOP/s  x{out['x_baseline_time']:.2f}", flush=True)
        return out

    with torch.no_grad():
        single = make_inputs(frames, 1, device, dtype)
        base_s = timed(lambda: model(**single), device, args.repeats)
        full_frames = round((args.ref_seconds + args.target_seconds) * FRAME_RATE)
        row("forward, batch 1 (baseline)", base_s, 1,  # exact FLOPs of the full-length CFG sampling, for scale
            sampling_tflop_full_length_cfg=flops_at(coefficients, full_frames) * 4 * NUM_STEPS / 1e12)
        # the value checks (token ids, timestep range, mask rows) read tensors: a host sync on a GPU; the sampler
        # runs them on its first step only (check_values=False afterwards)
        row("forward, batch 1, value checks off", timed(lambda: model(**single, check_values=False), device,
                                                        args.repeats), 1, baseline=base_s)
        if latency_only:  # a batch-4 forward of 0.8 B parameters is minutes on a CPU
            return rows
        cfg = make_inputs(frames, 4, device, dtype)
        drops = dict(drop_text=torch.tensor([False, True, False, False], device=device),
                     drop_audio_cond=torch.tensor([False, False, True, False], device=device),
                     drop_visual_cond=torch.tensor([False, False, False, True], device=device))
        row("forward, CFG batched (4 passes in 1 call)", timed(lambda: model(**cfg, **drops), device, args.repeats),
            4, baseline=base_s)
        separate = [dict(), dict(drop_text=True), dict(drop_audio_cond=True), dict(drop_visual_cond=True)]
        row("forward, CFG as 4 separate calls",
            timed(lambda: [model(**single, **d) for d in separate], device, args.repeats), 4, baseline=base_s)

    model_inputs = sampling_inputs(ref_s, target_s, device, dtype)
    cases = [("euler", NUM_STEPS, GuidanceConfig.none(), 1),
             ("euler", NUM_STEPS, CFG, 4),
             ("midpoint", NUM_STEPS // 2, CFG, 4)]
    for solver, steps, guidance, passes in cases:
        scheduler = OmniTalkerFlowMatchScheduler(solver=solver)
        evals = steps * scheduler.order
        seconds = timed(lambda: sample(model, scheduler, guidance=guidance, num_inference_steps=steps,  # noqa: B023
                                       generator=torch.Generator("cpu").manual_seed(0), **model_inputs),
                        device, repeats=args.sample_repeats, warmup=0)
        label = f"sample {solver} {steps} steps ({evals} evals), {'CFG x4' if passes > 1 else 'no CFG'}"
        row(label, seconds, passes, model_evals=evals, baseline=base_s, rtf=seconds / target_s,
            target_seconds=target_s, ref_seconds=ref_s)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["small", "base"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--ref-seconds", type=float, default=5.0)
    parser.add_argument("--target-seconds", type=float, default=10.0)
    parser.add_argument("--base-seconds", type=float, default=1.0, help="sequence length for base on CPU")
    parser.add_argument("--full-base", action="store_true", help="run base at full length on CPU too (slow)")
    parser.add_argument("--skip-cpu-target", action="store_true", help="skip the small 5 s + 5 s target case")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per forward (median)")
    parser.add_argument("--sample-repeats", type=int, default=1, help="timed runs per sampling case (median)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/...)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no CUDA device")

    rows = []
    for name in args.configs:
        rows += bench_config(name, args, device, dtype)

    targets = []
    if not args.skip_cpu_target:
        print("[cpu target] small, 5 s output + 5 s reference, Euler 16 steps", flush=True)
        torch.manual_seed(0)
        model = OmniTalkerTransformer.from_named_config("small").to(device=device, dtype=dtype).eval()
        inputs = sampling_inputs(5.0, 5.0, device, dtype)
        with torch.no_grad():  # warm-up at this length
            model(**make_inputs(inputs["num_frames"], 1, device, dtype))
        cases = (("CFG x4", CFG), ("CFG x4 only for t < 0.5", CFG_LIMITED), ("CFG F5-style x2 (joint drop)", CFG_F5),
                 ("no CFG", GuidanceConfig.none()))
        reference = None
        for label, guidance in cases:
            scheduler = OmniTalkerFlowMatchScheduler(solver="euler")
            stats = timed_stats(lambda: sample(model, scheduler, guidance=guidance, num_inference_steps=NUM_STEPS,  # noqa: B023
                                               generator=torch.Generator("cpu").manual_seed(0), **inputs),
                                device, repeats=args.sample_repeats, warmup=0)
            seconds = stats["median_s"]
            reference = reference or seconds  # ratios against the 4-pass CFG row of this run
            targets.append(dict(case=label, seconds=seconds, **stats, target_seconds=CPU_TARGET_SECONDS,
                                meets_target=seconds <= CPU_TARGET_SECONDS, rtf=seconds / 5.0,
                                x_cfg4=seconds / reference, load_average_1min=os.getloadavg()[0]))
            print(f"  {label:<30} {seconds:6.2f} s (min {stats['min_s']:.2f}, CPU {stats['cpu_median_s']:.2f} s)  "
                  f"x{seconds / reference:.2f}  RTF {seconds / 5.0:.2f}  (target <= {CPU_TARGET_SECONDS} s: "
                  f"{'OK' if seconds <= CPU_TARGET_SECONDS else 'missed'}; load {os.getloadavg()[0]:.1f})", flush=True)

    machine = dict(device=str(device), dtype=args.dtype, torch=torch.__version__, cpu_count=os.cpu_count(),
                   torch_threads=torch.get_num_threads(), platform=platform.platform(),
                   load_average_1min=os.getloadavg()[0])
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
        machine["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    out_path = args.out or RESULTS_DIR / f"transformer_{device.type}_{args.dtype}.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(dict(machine=machine, guidance=dataclasses.asdict(CFG), rows=rows, cpu_target=targets), indent=2))
    print(f"wrote {out_path} (load average {machine['load_average_1min']:.1f} on {machine['cpu_count']} cores)")


if __name__ == "__main__":
    main()
