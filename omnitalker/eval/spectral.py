"""Spectral distances between a log-mel and the log-mel of a waveform (vocoder quality checks)."""

from __future__ import annotations

import torch

from omnitalker.frontend.audio import log_mel_spectrogram


def mel_distances(mel: torch.Tensor, wave: torch.Tensor) -> tuple[float, float]:
    """(log-mel L1, spectral convergence on the magnitude mel) of `wave` against `mel` (b 100 t)."""
    remel = log_mel_spectrogram(wave)
    frames = min(mel.shape[-1], remel.shape[-1])
    mel, remel = mel[..., :frames], remel[..., :frames]
    l1 = (remel - mel).abs().mean().item()
    convergence = (torch.linalg.norm(remel.exp() - mel.exp()) / torch.linalg.norm(mel.exp())).item()
    return l1, convergence
