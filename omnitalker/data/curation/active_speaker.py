"""Stage 2, active-speaker check: does the tracked face's mouth move with the speech?

The paper runs LightASD, a trained audio-visual network. We have no such weights, so this is our
documented stand-in: the Pearson correlation between the inner-lip gap (canonical landmarks, so head
pose and scale do not matter) and the speech energy envelope (dB of 40 ms RMS frames) at the video
frame times, maximised over audio-video lags of up to MAX_LAG_SECONDS. A dubbed voice-over, a
listener's face or a frozen frame gives ~0; a talking face gives clearly positive values. A mouth whose
opening varies by less than MIN_MOUTH_MOTION scores 0 outright: a correlation is blind to scale, and the
landmark jitter of a frozen frame (std 0.0002 face units on the test fixture, against 0.02-0.04 for the
rendered talking face) correlated up to 0.29 with a voice-over by chance, above MIN_SPEAKER_CORRELATION.

    score = speaker_correlation(landmarks, timestamps, wave, sample_rate)   # in [-1, 1]
"""

from __future__ import annotations

import numpy as np

from omnitalker.frontend.face.codes import fit_pose, mouth_opening

ENERGY_WINDOW_SECONDS = 0.04
ENERGY_FLOOR_DB = -60.0  # envelope floor (silence)
MAX_LAG_SECONDS = 0.2  # audio/video offsets up to this are tolerated
MIN_STD = 1e-6  # a constant series has no correlation (returns 0)
MIN_MOUTH_MOTION = 0.002  # std of the inner-lip gap (face-size units) below which the mouth does not move


def energy_envelope(wave: np.ndarray, sample_rate: int, times: np.ndarray) -> np.ndarray:
    """(T,) dB RMS of a ENERGY_WINDOW_SECONDS window centred on each time (seconds into `wave`)."""
    half = max(1, int(round(ENERGY_WINDOW_SECONDS * sample_rate / 2)))
    cumulative = np.concatenate([[0.0], np.cumsum(np.asarray(wave, np.float64) ** 2)])
    centres = np.clip(np.round(times * sample_rate).astype(int), 0, len(wave))
    lo, hi = np.clip(centres - half, 0, len(wave)), np.clip(centres + half, 0, len(wave))
    power = (cumulative[hi] - cumulative[lo]) / np.maximum(hi - lo, 1)
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-12)), ENERGY_FLOOR_DB)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() < MIN_STD or b.std() < MIN_STD:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def speaker_correlation(landmarks: np.ndarray, timestamps: np.ndarray, wave: np.ndarray, sample_rate: int) -> float:
    """Max lagged correlation of mouth opening (from (T, 478, 3) landmarks) with the speech energy.

    timestamps: (T,) seconds of each frame, measured on the same clock as `wave` (sample 0 = time 0).
    """
    _, _, _, canonical = fit_pose(landmarks)
    opening = mouth_opening(canonical)  # t
    if opening.std() < MIN_MOUTH_MOTION:
        return 0.0
    step = float(np.median(np.diff(timestamps))) if len(timestamps) > 1 else 1.0
    max_lag = int(round(MAX_LAG_SECONDS / step))
    best = 0.0
    for lag in range(-max_lag, max_lag + 1):
        energy = energy_envelope(wave, sample_rate, timestamps + lag * step)
        best = max(best, _pearson(opening, energy))
    return best
