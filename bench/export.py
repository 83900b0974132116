"""Benchmark the output stage: mp4 encoding (H.264 + AAC) and the safety watermarks, in frames/s.

    python bench/export.py [--frames 50] [--sizes 256 512]

Baseline in the same run: writing the raw RGB frames to a .npy file (pure I/O, no encoding), so the
ratio says what encoding costs on this machine. Prints a table and writes bench/export.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from omnitalker.io import export_to_video
from omnitalker.io.watermark import (
    add_visible_watermark,
    detect_frame_watermark,
    embed_audio_watermark,
    embed_frame_watermark,
)

FPS = 25
SAMPLE_RATE = 24000


def test_frames(num_frames: int, size: int) -> np.ndarray:
    """A panning smooth picture with mild noise: compresses like a talking-head render."""
    rng = np.random.default_rng(0)
    canvas = size + num_frames
    y, x = np.mgrid[0:canvas, 0:canvas] / canvas
    image = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.5 + 0.3 * np.cos(5 * y), 0.4 + 0.3 * x * y], -1)
    image = ((image + 0.03 * rng.standard_normal(image.shape)) * 255).clip(0, 255).astype(np.uint8)
    return np.stack([image[t : t + size, t : t + size] for t in range(num_frames)])


def timed(function, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def measure(frames: np.ndarray, folder: str) -> dict[str, float]:
    """Best-of-2 seconds per stage for these frames (and matching noise audio)."""
    audio = np.random.default_rng(1).standard_normal(len(frames) * SAMPLE_RATE // FPS).astype(np.float32) * 0.1
    return {
        "npy_baseline": timed(lambda: np.save(os.path.join(folder, "raw.npy"), frames)),
        "export_mp4": timed(lambda: export_to_video(frames, os.path.join(folder, "a.mp4"), audio=audio)),
        "visible_mark": timed(lambda: add_visible_watermark(frames)),
        "frame_mark_embed": timed(lambda: embed_frame_watermark(frames)),
        "frame_mark_detect": timed(lambda: detect_frame_watermark(frames)),
        "audio_mark_embed": timed(lambda: embed_audio_watermark(audio, SAMPLE_RATE)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            seconds = measure(test_frames(args.frames, size), folder)
            for name, value in seconds.items():
                results.append({"size": size, "stage": name, "fps": args.frames / value,
                                "ratio_vs_npy": value / seconds["npy_baseline"]})
    print(f"{'size':>5} {'stage':<18} {'frames/s':>9} {'time vs npy':>12}")
    for row in results:
        print(f"{row['size']:>5} {row['stage']:<18} {row['fps']:>9.1f} {row['ratio_vs_npy']:>11.1f}x")
    with open(os.path.join(os.path.dirname(__file__), "export.json"), "w") as handle:
        json.dump({"frames": args.frames, "results": results}, handle, indent=1)


if __name__ == "__main__":
    main()
