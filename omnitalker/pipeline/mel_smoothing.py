"""Temporal smoothing of generated log-mels before the vocoder (the pipeline's ``mel_smoothing`` config).

Why: at 16 steps the small demo transformer's mels jitter from one frame to the next (mean |x[t+1] - x[t]| about
1.25x the ground truth's), and Griffin-Lim turns the jitter into a rough sound that Whisper misreads. A short
low-pass along time removes it and leaves speech alone: ``(0.25, 0.5, 0.25)`` at 93.75 frames/s has its -6 dB point
at 23 Hz and costs 0.6 dB at 8 Hz, while syllables and phonemes live at ~2-16 Hz. Measured when it was chosen
(CHANGELOG.md, 2026-11-29; `bench/results/mel_smoothing/`). Only generated frames are smoothed; prompts, given speech and ground truth are left as they are.

A hand-written weighted sum of shifted frames (not ``scipy.ndimage``) so it runs on the tensor's own device and
dtype inside the pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

DEMO_MEL_SMOOTHING = (0.25, 0.5, 0.25)  # the bundled demo's kernel (weights/omnitalker-demo/model_index.json)
MAX_KERNEL_TAPS = 15  # 160 ms at 93.75 frames/s: anything longer would smear phonemes
KERNEL_SUM_TOLERANCE = 1e-3  # the taps must keep the log-mel's level


def check_mel_smoothing(kernel: Sequence[float] | None) -> None:
    """Raise ``ValueError`` unless ``kernel`` is None or an odd number of non-negative taps summing to 1."""
    if kernel is None:
        return
    if isinstance(kernel, str) or not isinstance(kernel, Sequence):
        raise ValueError(f"mel_smoothing must be a list of taps like [0.25, 0.5, 0.25] or None, got {kernel!r}")
    taps = list(kernel)
    if not taps or len(taps) % 2 == 0 or len(taps) > MAX_KERNEL_TAPS:
        raise ValueError(f"mel_smoothing needs an odd number of taps (1 to {MAX_KERNEL_TAPS}) so it is centred, "
                         f"got {len(taps)}: {taps}")
    if any(not isinstance(tap, int | float) or tap < 0 for tap in taps):
        raise ValueError(f"mel_smoothing taps must be non-negative numbers, got {taps}")
    if abs(sum(taps) - 1.0) > KERNEL_SUM_TOLERANCE:
        raise ValueError(f"mel_smoothing taps must sum to 1 (they sum to {sum(taps):.4f}); divide them by their sum")


def parse_mel_smoothing(text: str) -> list[float] | None:
    """A command-line kernel: "0.25,0.5,0.25" -> [0.25, 0.5, 0.25], "none" -> None; checked."""
    if text.strip().lower() == "none":
        return None
    try:
        taps = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise ValueError(f"expected comma-separated numbers like 0.25,0.5,0.25 or 'none', got {text!r}") from error
    check_mel_smoothing(taps)
    return taps


def smooth_mel(mel: torch.Tensor, kernel: Sequence[float] | None) -> torch.Tensor:
    """Filter ``mel`` (n, d): frames along dim 0, with ``kernel`` (odd, centred), repeating the end frames at the
    edges so a constant stays constant. None (or a single tap) returns ``mel`` unchanged."""
    if kernel is None or len(kernel) == 1 or len(mel) == 0:
        return mel
    half = len(kernel) // 2
    num_frames = len(mel)
    padded = torch.cat([mel[:1].expand(half, -1), mel, mel[-1:].expand(half, -1)])  # (n + 2 half) d
    out = torch.zeros_like(mel)
    for offset, tap in enumerate(kernel):
        out += tap * padded[offset : offset + num_frames]  # n d
    return out
