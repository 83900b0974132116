"""Stage 3, audio quality: an SNR estimate (our documented stand-in for DNSMOS P.835).

The paper filters on DNSMOS OVRL, a trained MOS predictor whose ONNX weights are not on this
machine. Instead: speech power is the mean power of the clip's 20 ms frames inside voice activity;
noise power is the mean of the quietest NOISE_PERCENTILE % of frames outside speech anywhere in the
source (a pause in the same recording), or of the clip itself when the source has no pause. Clean
studio speech scores 40+ dB, a phone in a cafe 10-20 dB, speech under music or wind < 10 dB.

    snr = estimate_snr_db(clip_wave, noise_wave, sample_rate)
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.02
NOISE_PERCENTILE = 20.0
MAX_SNR_DB = 60.0  # reported cap (digital silence would give infinity)
POWER_FLOOR = 1e-12


def frame_powers(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean power of consecutive FRAME_SECONDS frames (the tail shorter than a frame is dropped)."""
    size = max(1, int(round(FRAME_SECONDS * sample_rate)))
    count = len(wave) // size
    frames = np.asarray(wave[: count * size], np.float64).reshape(count, size)
    return (frames**2).mean(1)


def estimate_snr_db(speech: np.ndarray, noise: np.ndarray | None, sample_rate: int) -> float:
    """SNR in dB of `speech` (clip audio) against `noise` (non-speech audio of the source, may be empty)."""
    speech_power = frame_powers(speech, sample_rate)
    if len(speech_power) == 0:
        return 0.0
    noise_power = frame_powers(noise, sample_rate) if noise is not None and len(noise) else np.zeros(0)
    pool = noise_power if len(noise_power) else speech_power
    quiet = pool[pool <= np.percentile(pool, NOISE_PERCENTILE)]
    noise_level = max(float(quiet.mean()), POWER_FLOOR)
    signal = max(float(speech_power.mean()) - noise_level, POWER_FLOOR)
    return float(min(10.0 * np.log10(signal / noise_level), MAX_SNR_DB))
