"""Curation throughput per core: stages 1-2 of ``python -m omnitalker.data.prepare`` at 512p, without ASR.

The clip: the astronaut face (512 x 512, 25 fps) rendered talking with espeak speech (one sentence,
mouth driven by its phonemes) and a 1 s pause, looped to ~30 s, with a timed .srt sidecar so every
clip reaches the visual codes and the mel. One process, one thread (torch, OpenCV, OMP); MediaPipe's
own threads are counted through CPU time, so the headline is video seconds per CPU second.

Baseline in the same run: decoding alone (PyAV, scaled to the analysis size), the floor any pipeline pays.

    python bench/prepare.py                  # prints a table, writes bench/results/prepare.json
    python bench/prepare.py --seconds 10
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before numpy/torch load their thread pools

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRAME_SIDE = 512
PAUSE_SECONDS = 1.0  # long enough for voice activity to separate the clips
TARGET_SECONDS = 30.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_clip(folder: Path, seconds: float) -> tuple[Path, float]:
    """Write the looped talking clip + .srt; returns (path, duration in seconds)."""
    from tests.pipeline_fixtures import astronaut_face
    from tests.prepare_fixture import FPS, SAMPLE_RATE, SENTENCE, _render, _speak, _srt_time, write_video

    face = astronaut_face(FRAME_SIDE)
    audio, codes = _speak(SENTENCE)
    talking = _render(face, [codes], output_size=FRAME_SIDE)[0]
    pause = np.repeat(face[None], int(round(PAUSE_SECONDS * FPS)), axis=0)
    unit_frames = len(talking) + len(pause)
    repeats = max(1, int(np.ceil(seconds * FPS / unit_frames)))
    unit_audio = np.zeros(int(round(unit_frames / FPS * SAMPLE_RATE)), np.float32)
    unit_audio[: len(audio)] = audio[: len(unit_audio)]
    path = folder / "bench.mp4"
    frames = (frame for _ in range(repeats) for part in (talking, pause) for frame in part)
    write_video(path, frames, np.tile(unit_audio, repeats))
    unit_seconds = unit_frames / FPS
    path.with_suffix(".srt").write_text("\n".join(
        f"{i + 1}\n{_srt_time(i * unit_seconds)} --> {_srt_time(i * unit_seconds + len(audio) / SAMPLE_RATE)}\n{SENTENCE}\n"
        for i in range(repeats)))
    return path, repeats * unit_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=TARGET_SECONDS, help="length of the generated clip")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "prepare.json"))
    args = parser.parse_args()

    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from omnitalker.data.prepare import ANALYSIS_MAX_SIDE, Curator
    from omnitalker.io.video import iter_frames

    with tempfile.TemporaryDirectory() as tmp:
        path, duration = build_clip(Path(tmp), args.seconds)

        wall, cpu = time.perf_counter(), cpu_seconds()
        count = sum(1 for _ in iter_frames(path, ANALYSIS_MAX_SIDE, []))
        decode_wall, decode_cpu = time.perf_counter() - wall, cpu_seconds() - cpu

        curator = Curator()
        curator.process(path, path.name)  # warm-up: model loading is a one-off per worker
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = curator.process(path, path.name)
        full_wall, full_cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        curator.close()
    if result.status != "ok":
        raise SystemExit(f"curation failed: {result.error}")
    kept = sum(entry["reason"] is None for entry in result.candidates)

    rows = {
        "decode only (baseline)": (decode_wall, decode_cpu),
        "stages 1-2 (prepare, no ASR)": (full_wall, full_cpu),
    }
    print(f"clip: {duration:.1f} s, {count} frames, {FRAME_SIDE}x{FRAME_SIDE} @ 25 fps; {kept} clips kept")
    print(f"{'':32s} {'wall s':>8s} {'CPU s':>8s} {'x real time (wall)':>19s} {'x real time per CPU s':>22s}")
    for name, (wall_s, cpu_s) in rows.items():
        print(f"{name:32s} {wall_s:8.2f} {cpu_s:8.2f} {duration / wall_s:19.2f} {duration / cpu_s:22.2f}")
    print(f"stages 1-2 cost {full_cpu / decode_cpu:.1f}x decoding's CPU time")
    print("per stage (wall s): " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    record = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}",
        "clip_seconds": round(duration, 2), "frames": count, "frame_side": FRAME_SIDE, "clips_kept": kept,
        "decode": {"wall_s": round(decode_wall, 3), "cpu_s": round(decode_cpu, 3)},
        "stages_1_2": {"wall_s": round(full_wall, 3), "cpu_s": round(full_cpu, 3),
                       "realtime_per_cpu": round(duration / full_cpu, 2), "realtime_wall": round(duration / full_wall, 2)},
        "stage_wall_s": {k: round(v, 3) for k, v in result.timings.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
