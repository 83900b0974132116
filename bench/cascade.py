"""Converted F5-TTS pipelines (issue 15): conversion time, and the cascade's end-to-end RTF next to joint mode's.

Conversion: ``omnitalker.convert.pipeline.convert_pipeline`` on the tiny golden F5-TTS v0 / v1 + tiny Vocos
(tests/data), reload check included; with ``--full-size``, also on random checkpoints with every key and shape of
the released F5TTS_v1_Base and charactr/vocos-mel-24khz (the real ones are not reachable offline; conversion
time depends only on the shapes).

RTF (wall seconds per second of output; < 1 is faster than real time), each mode on the same reference
(examples/astronaut_talking.mp4, analysed once, its time reported apart), the same text and a fixed output
duration, 16 steps, the pipelines' own guidance, the call plus writing the file (mp4: render, watermark,
encode; wav for speech only):
- joint: the bundled demo speaks and moves (one transformer);
- audio: the converted tiny F5 speaks (visual stream absent), wav;
- cascade: the converted F5 speaks, then the bundled demo's audio-driven visual branch lip-syncs the face, mp4;
- lip-sync: the demo's audio-driven visual branch alone on that speech (the cascade's step b).
Random tiny F5 weights: the speech is noise, the timing is real for this size; ``--full-size`` adds the
cascade with a random full-size (337 M) F5 transformer and full-size Vocos.

    OMP_NUM_THREADS=1 python bench/cascade.py                 # table + bench/results/cascade.json
    OMP_NUM_THREADS=1 python bench/cascade.py --full-size          # + full size (one run each: minutes)
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "data"
RESULTS = ROOT / "bench" / "results" / "cascade.json"
DEMO = ROOT / "weights" / "omnitalker-demo"
EXAMPLES = ROOT / "examples"
TEXT = "Space is quiet, but I can still tell you a story."
OUTPUT_SECONDS = 4.0
STEPS = 16
FULL_SIZE_INIT_STD = 0.02  # random full-size weights: small, so activations stay finite


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6


def time_conversion(f5tts: Path, vocab: Path, vocos: Path, version: str, repeats: int, work: Path) -> dict:
    from omnitalker.convert.pipeline import convert_pipeline

    walls = []
    for index in range(repeats):
        out = work / f"convert-{version}-{index}"
        start = time.perf_counter()
        pipe = convert_pipeline(str(f5tts), out, vocab=str(vocab), vocos=str(vocos), version=version)
        walls.append(time.perf_counter() - start)
    return {"version": version, "wall_min_s": min(walls), "wall_median_s": statistics.median(walls),
            "repeats": repeats, "folder_mb": folder_mb(out), "transformer_parameters": pipe.transformer.num_parameters(),
            "vocoder_parameters": sum(p.numel() for p in pipe.vocoder.parameters()), "folder": str(out)}


def fake_full_size(work: Path) -> tuple[Path, Path]:
    """Random checkpoints laid out like F5TTS_v1_Base/model_1250000.safetensors and charactr/vocos-mel-24khz."""
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(0)
    shapes = json.loads((DATA / "F5TTS_v1_Base_keys.json").read_text())
    state = {key: (FULL_SIZE_INIT_STD * torch.randn(shape, generator=generator)) if shape else torch.tensor(0)
             for key, shape in shapes.items()}
    f5 = work / "F5TTS_v1_Base" / "model_1250000.safetensors"
    f5.parent.mkdir(parents=True)
    save_file(state, str(f5))
    vocos = work / "vocos-mel-24khz"
    vocos.mkdir()
    shutil.copy(DATA / "vocos_mel_24khz_config.yaml", vocos / "config.yaml")
    vocos_shapes = json.loads((DATA / "vocos_mel_24khz_keys.json").read_text())
    tiny = torch.load(DATA / "vocos_tiny" / "pytorch_model.bin", map_location="cpu", weights_only=True)
    weights = {key: FULL_SIZE_INIT_STD * torch.randn(shape, generator=generator) for key, shape in vocos_shapes.items()}
    weights.update({key: value for key, value in tiny.items() if key.startswith("feature_extractor.")})  # same mel
    torch.save(weights, vocos / "pytorch_model.bin")
    return f5, vocos


def run_mode(label: str, pipe, reference, out: Path, repeats: int, warm_up: bool = True, **kwargs) -> dict:
    """Min / median wall and CPU time of call + file write over `repeats` runs after one warm-up (if `warm_up`)."""
    from omnitalker.io.export import export_to_video

    walls, cpus, seconds = [], [], None
    for index in range(repeats + int(warm_up)):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = pipe(TEXT, reference=reference, num_inference_steps=STEPS, duration=OUTPUT_SECONDS,
                      generator=torch.Generator().manual_seed(0), stream_frames=result_is_video(kwargs), **kwargs)
        if result.frames is None:
            import soundfile

            soundfile.write(str(out.with_suffix(".wav")), result.audio[0], result.sample_rate)
        else:
            export_to_video(result.frames[0], str(out), fps=int(result.fps), audio=result.audio[0],
                            sample_rate=result.sample_rate)
        if index or not warm_up:  # the first run warms up
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)
        seconds = len(result.audio[0]) / result.sample_rate
    return {"mode": label, "output_seconds": seconds, "wall_min_s": min(walls), "wall_median_s": statistics.median(walls),
            "cpu_min_s": min(cpus), "rtf_min": min(walls) / seconds, "rtf_median": statistics.median(walls) / seconds,
            "repeats": repeats, "ran_as": result.mode}


def result_is_video(kwargs: dict) -> bool:
    return kwargs.get("mode") != "audio"


def lipsync_only(demo, speech_pipe, reference, out: Path, repeats: int) -> dict:
    """The cascade's step (b) alone: the demo lip-syncs the speech the converted F5 made."""
    from omnitalker.io.export import export_to_video

    speech = speech_pipe(TEXT, reference=reference, mode="audio", num_inference_steps=STEPS, duration=OUTPUT_SECONDS,
                         generator=torch.Generator().manual_seed(0), watermark=False)
    driving = (speech.sample_rate, speech.audio[0])
    walls = []
    for index in range(repeats + 1):
        start = time.perf_counter()
        result = demo(reference=reference, audio=driving, num_inference_steps=STEPS,
                      generator=torch.Generator().manual_seed(0), stream_frames=True)
        export_to_video(result.frames[0], str(out), fps=int(result.fps), audio=result.audio[0],
                        sample_rate=result.sample_rate)
        if index:
            walls.append(time.perf_counter() - start)
    seconds = len(speech.audio[0]) / speech.sample_rate
    return {"mode": "lip-sync (demo, step b alone)", "output_seconds": seconds, "wall_min_s": min(walls),
            "wall_median_s": statistics.median(walls), "rtf_min": min(walls) / seconds,
            "rtf_median": statistics.median(walls) / seconds, "repeats": repeats, "ran_as": result.mode}


def markdown(results: dict) -> str:
    lines = ["| conversion | transformer params | wall min (median) | folder |", "|---|---|---|---|"]
    for row in results["conversion"]:
        lines.append(f"| {row['label']} | {row['transformer_parameters']:,} | {row['wall_min_s']:.2f} s "
                     f"({row['wall_median_s']:.2f} s) | {row['folder_mb']:.1f} MB |")
    lines += ["", "| mode | output | wall min (median) | RTF min (median) |", "|---|---|---|---|"]
    for row in results["modes"]:
        lines.append(f"| {row['mode']} | {row['output_seconds']:.2f} s | {row['wall_min_s']:.2f} s "
                     f"({row['wall_median_s']:.2f} s) | {row['rtf_min']:.2f} ({row['rtf_median']:.2f}) |")
    lines.append(f"\nreference analysis (once per reference, not in the rows): {results['reference_analysis_s']:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per case after one warm-up (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--full-size", action="store_true", help="also random full-size F5-TTS v1 + Vocos")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from omnitalker.pipeline import OmniTalkerPipeline

    results = {"threads": args.threads, "steps": STEPS, "text": TEXT, "output_seconds_asked": OUTPUT_SECONDS,
               "machine": platform.processor() or platform.machine(), "conversion": [], "modes": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for version in ("v0", "v1"):
            row = time_conversion(DATA / f"f5tts_{version}_tiny.safetensors", DATA / "f5tts_vocab.txt",
                                  DATA / "vocos_tiny", version, max(3, args.repeats), work)
            results["conversion"].append({**row, "label": f"tiny golden F5-TTS {version} + tiny Vocos"})
        full = None
        if args.full_size:
            f5, vocos = fake_full_size(work)
            row = time_conversion(f5, DATA / "f5tts_vocab.txt", vocos, "v1", 1, work)
            results["conversion"].append({**row, "label": "full-size F5TTS_v1_Base + vocos-mel-24khz (random)"})
            full = row["folder"]
            shutil.rmtree(f5.parent)

        speech = OmniTalkerPipeline.from_pretrained(results["conversion"][1]["folder"])
        demo = OmniTalkerPipeline.from_pretrained(DEMO)
        for pipe in (speech, demo):
            pipe.set_progress_bar_config(disable=True)
        speech.set_visual_pipeline(demo)
        example = json.loads((EXAMPLES / "examples.json").read_text())["talk_video"][0]
        start = time.perf_counter()
        reference = speech.prepare_reference(reference_video=str(EXAMPLES / example["video"]),
                                             reference_text=example["reference_text"])
        results["reference_analysis_s"] = time.perf_counter() - start
        results["modes"].append(run_mode("joint (demo)", demo, reference, work / "joint.mp4", args.repeats))
        results["modes"].append(run_mode("audio (tiny F5), wav", speech, reference, work / "audio.mp4", args.repeats,
                                         mode="audio"))
        results["modes"].append(run_mode("cascade (tiny F5 + demo)", speech, reference, work / "cascade.mp4",
                                         args.repeats))
        results["modes"].append(lipsync_only(demo, speech, reference, work / "lipsync.mp4", args.repeats))
        if full is not None:
            big = OmniTalkerPipeline.from_pretrained(full)
            big.set_progress_bar_config(disable=True)
            big.set_visual_pipeline(demo)
            # minutes per run on one CPU thread: one run each, no warm-up
            results["modes"].append(run_mode("audio (full-size F5, random), wav", big, reference,
                                             work / "big_audio.mp4", 1, warm_up=False, mode="audio"))
            results["modes"].append(run_mode("cascade (full-size F5, random + demo)", big, reference,
                                             work / "big_cascade.mp4", 1, warm_up=False))
    for row in results["conversion"]:
        row.pop("folder")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
