"""Voice warping: new voices for training by stretching each clip's spectrum along frequency (VTLP).

The demo transformer speaks the voices it has heard clearly but words suffer in voices it has not
(CHANGELOG.md, 2026-11-29; `bench/results/eval_demo*`): it can lean on recognising a known voice instead of
copying the one in its prompt. Warping a whole clip's log-mel along frequency by a factor a (every
frequency f is read from f / a: a > 1 raises pitch and formants together, as a shorter vocal tract
does) turns each training voice into a continuum of voices, and because prompt and target of a clip are
warped alike, the model can only get the target right by following its prompt (vocal tract length
perturbation, an ASR augmentation, here on the mel the model generates). Measured on the demo model
(CHANGELOG.md, stage 8; `bench/results/voice_warp/`): better on the large unseen-voice sets, worse on seen voices, without a reference
and in lip-sync, so the demo recipes leave it off.

Why by hand: torchaudio and audiomentations warp waveforms or linear spectrograms; the training data here
is the stored log-mel, so the warp is a per-bin linear interpolation on the same HTK mel scale that
``omnitalker.frontend.audio.mel_filterbank`` uses.

    factors = draw_warp_factors(b, (0.9, 1.1), 0.5, generator)  # b: half the clips warped
    warped = warp_voice(batch.mel, factors)                     # b n 100
"""

from __future__ import annotations

import functools
import math

import torch

from omnitalker.frontend.audio import F_MAX, F_MIN, N_MELS, hz_to_mel, mel_to_hz


@functools.lru_cache(maxsize=4)
def _mel_centres_hz(n_mels: int = N_MELS, f_min: float = F_MIN, f_max: float = F_MAX) -> torch.Tensor:
    """Centre frequency of every mel filter (the peaks of ``mel_filterbank``'s triangles), float64 (m,)."""
    points = torch.linspace(float(hz_to_mel(f_min)), float(hz_to_mel(f_max)), n_mels + 2, dtype=torch.float64)
    return mel_to_hz(points[1:-1])


def warp_voice(mel: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Stretch each clip's log-mel along frequency: bin m of clip i takes the value at f_m / factors[i].

    mel: b n m log-mel frames (any padding is warped too: a constant frame stays constant); factors: b,
    1 = unchanged. Values beyond the lowest or highest bin take that edge bin's value.
    """
    if mel.ndim != 3 or factors.shape != mel.shape[:1]:
        raise ValueError(f"need mel b n m and factors b, got {tuple(mel.shape)} and {tuple(factors.shape)}")
    centres = _mel_centres_hz(mel.shape[-1]).to(mel.device)  # m
    mel_points = hz_to_mel(centres[None] / factors.to(mel.device, torch.float64)[:, None])  # b m
    first, step = float(hz_to_mel(centres[0])), float(hz_to_mel(centres[1]) - hz_to_mel(centres[0]))
    position = ((mel_points - first) / step).clamp(0, mel.shape[-1] - 1)  # b m, fractional source bin
    low = position.floor().long().clamp(max=mel.shape[-1] - 2)  # b m
    weight = (position - low).to(mel.dtype)  # b m
    index = low[:, None, :].expand(-1, mel.shape[1], -1)  # b n m
    below = mel.gather(-1, index)  # b n m
    above = mel.gather(-1, index + 1)  # b n m
    return below + weight[:, None, :] * (above - below)  # b n m


def check_warp(bounds, prob: float, where: str = "voice_warp") -> None:
    """The one rule for a warp setting: bounds [low, high] with 0 < low <= 1 <= high, a probability in [0, 1]."""
    if len(bounds) != 2 or not 0 < bounds[0] <= 1 <= bounds[1] or not 0 <= prob <= 1:
        raise ValueError(f"{where} must be [low, high] (bounds must satisfy 0 < low <= 1 <= high, e.g. [0.9, 1.1]) "
                         f"with voice_warp_prob in [0, 1]; got {list(bounds)} and {prob}")


def draw_warp_factors(batch: int, bounds: tuple[float, float], prob: float, generator: torch.Generator) -> torch.Tensor:
    """Per clip: with probability ``prob`` a factor log-uniform in ``bounds``, else 1 (the clip as recorded).

    Draws a fixed number of values per call from ``generator`` (two per clip), so a resumed run continues
    exactly whatever was drawn.
    """
    check_warp(bounds, prob)
    low, high = bounds
    uniform = torch.rand(batch, generator=generator, dtype=torch.float64)  # b
    chosen = torch.rand(batch, generator=generator, dtype=torch.float64) < prob  # b
    log_factor = math.log(low) + uniform * (math.log(high) - math.log(low))  # b
    return torch.where(chosen, log_factor.exp(), torch.ones_like(log_factor)).float()  # b
