"""Audio front-end: the F5-TTS / Vocos log-mel, edge-silence trimming and loudness normalisation.

Plain torch (no torchaudio: its PyPI build does not load against our torch). Reading and writing audio files
is ``omnitalker.io.audio`` (``load_audio``, ``save_audio``).

    from omnitalker.io import load_audio
    from omnitalker.frontend.audio import log_mel_spectrogram
    wave = load_audio("reference.mp4")            # (nw,) float32 at 24 kHz, the video's audio track
    mel = log_mel_spectrogram(wave)               # (1, 100, frames), 93.75 frames per second

The mel is numerically the one F5-TTS trains on (`get_vocos_mel_spectrogram`, checked against
tests/data/mel_frontend.safetensors): hann window 1024, hop 256, centred reflect padding, magnitude
spectrum, 100-bin HTK mel filterbank without normalisation over 0-12 kHz, natural log floored at 1e-5.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from omnitalker.io.audio import SAMPLE_RATE  # noqa: F401  (io owns the media rates; re-exported here)

N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 256
N_MELS = 100
F_MIN = 0.0
F_MAX = 12000.0
MEL_FLOOR = 1e-5  # F5-TTS clamps the magnitude mel here before the log (Vocos trained with 1e-7)
FRAME_RATE = SAMPLE_RATE / HOP_LENGTH  # 93.75 mel frames per second

SILENCE_THRESHOLD_DB = 40.0  # trim_silence: frames this far below the loudest frame count as silence
SILENCE_FRAME_SECONDS = 0.02  # 20 ms analysis frames
SILENCE_KEEP_SECONDS = 0.05  # keep 50 ms of context on each side of the speech
TARGET_RMS = 0.1  # F5-TTS: quiet prompts are scaled up to this RMS before inference


# --------------------------------------------------------------------------------------------- mel


def hz_to_mel(freq: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: 2595 * log10(1 + f / 700)."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(freq, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(
    n_freqs: int = N_FFT // 2 + 1,
    n_mels: int = N_MELS,
    sample_rate: int = SAMPLE_RATE,
    f_min: float = F_MIN,
    f_max: float = F_MAX,
) -> torch.Tensor:
    """Triangular filters on the HTK mel scale over the rfft bins, no area normalisation: (n_freqs, n_mels).

    Filter m rises linearly from mel point m to m+1 and falls to m+2 (n_mels + 2 points evenly spaced in
    mel between f_min and f_max), evaluated at the linear-frequency centre of every rfft bin.
    """
    bin_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)  # f
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2, dtype=torch.float64))
    widths = edges[1:] - edges[:-1]  # m+1
    offsets = edges[None, :] - bin_freqs[:, None]  # f m+2
    rising = -offsets[:, :-2] / widths[:-1]  # f m
    falling = offsets[:, 2:] / widths[1:]  # f m
    return torch.clamp(torch.minimum(rising, falling), min=0.0).float()


def log_mel_spectrogram(wave: torch.Tensor) -> torch.Tensor:
    """F5-TTS / Vocos log-mel of 24 kHz audio: wave (nw,) or (b, nw) -> (b, 100, 1 + nw // 256), float32."""
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2:
        raise ValueError(f"wave must be (nw,) or (b, nw), got shape {tuple(wave.shape)}")
    window = torch.hann_window(WIN_LENGTH, device=wave.device)
    filterbank = mel_filterbank().to(wave.device)
    return _log_mel(wave, window, filterbank)


def _log_mel(wave: torch.Tensor, window: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    if wave.shape[-1] <= N_FFT // 2:
        raise ValueError(
            f"audio too short for the mel front-end: {wave.shape[-1]} samples, need more than {N_FFT // 2}"
        )
    spec = torch.stft(
        wave.float(),
        N_FFT,
        hop_length=HOP_LENGTH,
        win_length=WIN_LENGTH,
        window=window,
        center=True,
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    ).abs()  # b f n
    mel = torch.matmul(spec.transpose(-1, -2), filterbank).transpose(-1, -2)  # b m n
    return mel.clamp(min=MEL_FLOOR).log()


class MelSpectrogram(nn.Module):
    """`log_mel_spectrogram` as a module (window and filterbank follow .to(device); not saved in state dicts)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("window", torch.hann_window(WIN_LENGTH), persistent=False)
        self.register_buffer("filterbank", mel_filterbank().clone(), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (b, nw) or (nw,) -> (b, 100, frames) log-mel, float32."""
        if wave.ndim == 1:
            wave = wave[None]
        return _log_mel(wave, self.window, self.filterbank)


def num_mel_frames(num_samples: int) -> int:
    """Frames `log_mel_spectrogram` gives for `num_samples` samples (centred STFT)."""
    return 1 + num_samples // HOP_LENGTH


# --------------------------------------------------------------------------------------------- helpers


def silence_bounds(
    wave: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    threshold_db: float = SILENCE_THRESHOLD_DB,
    keep_seconds: float = SILENCE_KEEP_SECONDS,
    floor_rms: float = 0.0,
) -> tuple[int, int] | None:
    """(start, end) samples of a mono wave (nw,) without its leading and trailing silence.

    Energy based: the RMS of 20 ms frames is compared with the loudest frame; frames more than
    `threshold_db` below it are silence. The span runs from the first to the last non-silent frame,
    with `keep_seconds` of margin each side; silence inside the clip is kept. None when the loudest
    frame is at or below `floor_rms` (all silent).
    """
    if wave.ndim != 1:
        raise ValueError(f"expected a mono wave (nw,), got shape {tuple(wave.shape)}")
    frame = max(1, round(SILENCE_FRAME_SECONDS * sample_rate))
    n_frames = math.ceil(wave.shape[0] / frame)
    padded = torch.nn.functional.pad(wave.float(), (0, n_frames * frame - wave.shape[0]))
    rms = padded.view(n_frames, frame).pow(2).mean(dim=1).sqrt()  # n_frames
    loudest = float(rms.max())
    if loudest <= floor_rms:
        return None
    voiced = torch.nonzero(rms >= loudest * 10.0 ** (-threshold_db / 20.0)).squeeze(1)
    keep = round(keep_seconds * sample_rate)
    start = max(0, int(voiced[0]) * frame - keep)
    end = min(wave.shape[0], (int(voiced[-1]) + 1) * frame + keep)
    return start, end


def trim_silence(
    wave: torch.Tensor,
    sample_rate: int = SAMPLE_RATE,
    threshold_db: float = SILENCE_THRESHOLD_DB,
    keep_seconds: float = SILENCE_KEEP_SECONDS,
) -> torch.Tensor:
    """Cut leading and trailing silence from a mono wave (nw,) (rule: :func:`silence_bounds`).

    An all-zero wave is returned unchanged.
    """
    bounds = silence_bounds(wave, sample_rate, threshold_db, keep_seconds)
    return wave if bounds is None else wave[bounds[0] : bounds[1]]


def rms_normalize(wave: torch.Tensor, target_rms: float = TARGET_RMS) -> tuple[torch.Tensor, float]:
    """Scale a quiet wave up to `target_rms` (F5-TTS prompt handling). Returns (scaled wave, gain).

    Only quiet audio is changed (gain >= 1); a silent wave gets gain 1. Divide generated audio by
    `gain` to bring it back to the loudness of the original prompt.
    """
    rms = float(wave.float().pow(2).mean().sqrt())
    if rms <= 0 or rms >= target_rms:
        return wave, 1.0
    gain = target_rms / rms
    return wave * gain, gain
