"""Lip-sync: does the mouth open when the sound is loud? Correlation and lag between two curves.

    from omnitalker.eval.lipsync import lipsync_score
    score = lipsync_score(codes, mel)          # codes (T, 58) at 30 fps, log-mel (n, 100) at 93.75 fps
    score.correlation, score.lag_frames, score.lag_ms

Mouth opening: the inner-lip gap of the visual codes (lower-lip-inner minus upper-lip-inner vertical
offset from the neutral face, face-size units). Audio envelope: the summed mel magnitude per frame
(exp of the log-mel: an amplitude envelope), taken down to the code rate with the anti-aliased
resampler of ``omnitalker.frontend.face.codes``. Both curves are smoothed with the same Gaussian (70 ms: the
syllable scale; phoneme detail like a fricative's loud-but-narrow mouth is noise for this measure) and
cover the same time span (frame k at k / fps), so a synchronised pair peaks at lag 0.

Score: Pearson correlation of mouth[t] with envelope[t + lag] over their overlap, for every lag in
[-K, K] frames (K = ``max_lag_frames``, default 10 = 333 ms at 30 fps); the peak correlation and its
lag are reported. Positive lag = the sound follows the mouth (the mouth leads), as in speech, where
the lips often open before the vowel sounds. One clip's peak is noisy (a 3 s clip has ~12 syllables),
so :func:`pooled_lipsync` averages the correlation curves of many clips and reports the mean curve's
peak: the number to compare systems by.

Measured on the synthetic corpus's own ground truth (rule visemes driven by espeak's phoneme timing:
in sync by construction), 40 clips per split: peak 0.42 at lag -1 frame (val_texts and val_speakers
alike). That is the ceiling of this measure on this corpus, not 1: mouth opening and loudness are
related, not the same signal.

Sync expert (our SyncNet-style stand-in; no SyncNet weights ship offline): :class:`AudioToMouthRegressor`
predicts the mouth opening from the audio alone — ridge regression on +-``SYNC_CONTEXT_FRAMES`` frames
of per-clip mean-normalised log-mel at 30 fps — fitted on a corpus's ground-truth ``train`` split
(closed form, about a second). :func:`sync_expert_score` then correlates a system's mouth with what its
own audio predicts, over the same lags. On the corpus's held-out ground truth (60 val_speakers + 20
val_texts clips) it peaks at 0.60 at lag 0, against 0.02 for mismatched pairs (mouth of one clip, audio
of another): a sharper test than the envelope, and one on which the issue's 0.5 is reachable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from omnitalker.frontend.face.codes import (
    CODE_FPS,
    EXP_SLICE,
    EXPRESSION_POINTS,
    MEL_FPS,
    VISUAL_CODE_DIM,
    resample_codes,
)

DEFAULT_MAX_LAG_FRAMES = 10  # +-333 ms at 30 fps: well beyond any sync error worth measuring
SMOOTHING_SECONDS = 0.07  # Gaussian sigma applied to both curves
MIN_OVERLAP_FRAMES = 8  # fewer overlapping frames than this give no meaningful correlation
_POINT = {name: i for i, (name, _) in enumerate(EXPRESSION_POINTS)}
_Y = 1  # vertical axis of an expression offset (image down is positive)


SYNC_CONTEXT_FRAMES = 4  # +-133 ms of audio around each video frame for the sync expert
SYNC_RIDGE = 30.0  # ridge penalty on standardised features (0.57-0.60 held-out peak for 10-1000)


@dataclass
class LipSyncScore:
    """Peak normalised cross-correlation, its lag (frames at ``fps`` and ms), and the whole curve."""

    correlation: float
    lag_frames: int
    lag_ms: float
    fps: float
    curve: np.ndarray  # (2K + 1,) correlation at lags -K..K (NaN where undefined)


def mouth_opening_from_codes(codes: np.ndarray) -> np.ndarray:
    """(T,) inner-lip gap change from neutral of visual codes (T, 58), face-size units."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[1] != VISUAL_CODE_DIM:
        raise ValueError(f"codes must be (frames, {VISUAL_CODE_DIM}), got {codes.shape}")
    exp = codes[:, EXP_SLICE].reshape(len(codes), len(EXPRESSION_POINTS), 3)  # T points xyz
    return exp[:, _POINT["lower_lip_inner"], _Y] - exp[:, _POINT["upper_lip_inner"], _Y]


def audio_envelope_from_mel(mel: np.ndarray, mel_fps: float = MEL_FPS, fps: float = CODE_FPS) -> np.ndarray:
    """(T,) summed mel magnitude of a log-mel (n, bins), resampled from ``mel_fps`` to ``fps`` (same span)."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim != 2 or len(mel) == 0:
        raise ValueError(f"mel must be a non-empty (frames, bins) log-mel, got shape {mel.shape}")
    if not np.isfinite(mel).all():
        raise ValueError("mel contains NaN or infinite values")
    magnitude = np.exp(np.minimum(mel, np.log(np.finfo(np.float64).max) - np.log(mel.shape[1])))  # n bins
    frames = max(1, int(round(len(mel) / mel_fps * fps)))
    return resample_codes(magnitude.sum(axis=1)[:, None], mel_fps, fps, num_frames=frames)[:, 0]


def lagged_correlation(mouth: np.ndarray, envelope: np.ndarray, max_lag_frames: int) -> np.ndarray:
    """Pearson corr(mouth[t], envelope[t + lag]) for lag = -K..K; NaN where the overlap is too short or flat."""
    mouth, envelope = np.asarray(mouth, np.float64), np.asarray(envelope, np.float64)
    if mouth.ndim != 1 or envelope.ndim != 1:
        raise ValueError("mouth opening and envelope must be 1-D curves")
    if max_lag_frames < 0:
        raise ValueError(f"max_lag_frames must be >= 0, got {max_lag_frames}")
    curve = np.full(2 * max_lag_frames + 1, np.nan)
    for index, lag in enumerate(range(-max_lag_frames, max_lag_frames + 1)):
        start, end = max(0, -lag), min(len(mouth), len(envelope) - lag)  # t with both t and t + lag inside
        if end - start < MIN_OVERLAP_FRAMES:
            continue
        a, b = mouth[start:end], envelope[start + lag : end + lag]
        a, b = a - a.mean(), b - b.mean()
        norm = np.sqrt((a * a).sum() * (b * b).sum())
        if norm > 0:
            curve[index] = float((a * b).sum() / norm)
    return curve


def peak_of_curve(curve: np.ndarray, fps: float = CODE_FPS) -> LipSyncScore:
    """Peak of a correlation curve over lags -K..K (ties: the smallest |lag|); NaN if nothing is defined."""
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim != 1 or len(curve) % 2 != 1:
        raise ValueError(f"a lag curve has 2K + 1 values (lags -K..K), got shape {curve.shape}")
    max_lag_frames = len(curve) // 2
    if np.isnan(curve).all():
        return LipSyncScore(float("nan"), 0, 0.0, fps, curve)
    lags = np.arange(-max_lag_frames, max_lag_frames + 1)
    best = max(np.flatnonzero(~np.isnan(curve)), key=lambda i: (curve[i], -abs(lags[i])))
    lag = int(lags[best])
    return LipSyncScore(float(curve[best]), lag, 1000.0 * lag / fps, fps, curve)


def lipsync_from_curves(mouth: np.ndarray, envelope: np.ndarray, fps: float = CODE_FPS,
                        max_lag_frames: int = DEFAULT_MAX_LAG_FRAMES, smooth: bool = True) -> LipSyncScore:
    """Score two curves at ``fps`` (both smoothed by ``SMOOTHING_SECONDS`` unless ``smooth=False``)."""
    mouth, envelope = np.asarray(mouth, np.float64), np.asarray(envelope, np.float64)
    if smooth:
        sigma = SMOOTHING_SECONDS * fps
        mouth, envelope = gaussian_filter1d(mouth, sigma), gaussian_filter1d(envelope, sigma)
    return peak_of_curve(lagged_correlation(mouth, envelope, max_lag_frames), fps)


def lipsync_score(codes: np.ndarray, mel: np.ndarray, codes_fps: float = CODE_FPS, mel_fps: float = MEL_FPS,
                  max_lag_frames: int = DEFAULT_MAX_LAG_FRAMES) -> LipSyncScore:
    """Lip-sync of visual codes (T, 58) at ``codes_fps`` against the log-mel (n, 100) of the same clip."""
    mouth = mouth_opening_from_codes(codes)
    envelope = audio_envelope_from_mel(mel, mel_fps, codes_fps)
    frames = min(len(mouth), len(envelope))
    return lipsync_from_curves(mouth[:frames], envelope[:frames], codes_fps, max_lag_frames)


def pooled_lipsync(scores: list[LipSyncScore]) -> LipSyncScore:
    """Peak of the mean correlation curve of many clips (NaN lags ignored), at their common rate."""
    if not scores:
        raise ValueError("no clips to pool: pass at least one LipSyncScore")
    if len({(len(s.curve), s.fps) for s in scores}) != 1:
        raise ValueError("the clips were scored with different max_lag_frames or fps: score them alike")
    curves = np.stack([s.curve for s in scores])  # clips lags
    defined = (~np.isnan(curves)).sum(0)
    mean = np.where(defined > 0, np.nansum(curves, 0) / np.maximum(defined, 1), np.nan)
    return peak_of_curve(mean, scores[0].fps)


def _sync_features(mel: np.ndarray, mel_fps: float, fps: float) -> np.ndarray:
    """(T, (2C + 1) * bins): per-clip mean-normalised log-mel at ``fps`` with +-C frames of context."""
    mel = np.asarray(mel, dtype=np.float64)
    if mel.ndim != 2 or len(mel) == 0 or not np.isfinite(mel).all():
        raise ValueError(f"mel must be a finite, non-empty (frames, bins) log-mel, got shape {mel.shape}")
    frames = max(1, int(round(len(mel) / mel_fps * fps)))
    at_fps = resample_codes(mel, mel_fps, fps, num_frames=frames)  # T bins
    at_fps = at_fps - at_fps.mean(axis=0)  # the clip's average spectrum (voice, level) says nothing of timing
    context = SYNC_CONTEXT_FRAMES
    padded = np.pad(at_fps, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[i : i + frames] for i in range(2 * context + 1)], axis=1)


@dataclass
class AudioToMouthRegressor:
    """Mouth opening predicted from audio: a linear sync expert fitted on ground-truth (mel, codes) pairs."""

    weights: np.ndarray  # (features,)
    mean: np.ndarray  # (features,) feature standardisation
    scale: np.ndarray
    bias: float
    mel_fps: float = MEL_FPS
    fps: float = CODE_FPS

    @classmethod
    def fit(cls, pairs, mel_fps: float = MEL_FPS, fps: float = CODE_FPS, ridge: float = SYNC_RIDGE):
        """Fit on ``pairs`` of (log-mel (n, bins) at ``mel_fps``, visual codes (T, 58) at ``fps``)."""
        features, targets = [], []
        for mel, codes in pairs:
            x, y = _sync_features(mel, mel_fps, fps), mouth_opening_from_codes(codes)
            frames = min(len(x), len(y))
            features.append(x[:frames])
            targets.append(y[:frames])
        if not features or sum(len(y) for y in targets) < features[0].shape[1]:  # fewer frames than unknowns
            raise ValueError("too little ground truth to fit the sync expert: give at least a minute of clips")
        x, y = np.concatenate(features), np.concatenate(targets)  # N F, N
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
        x = (x - mean) / scale
        bias = float(y.mean())
        weights = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ (y - bias))  # F
        return cls(weights, mean, scale, bias, mel_fps, fps)

    def predict(self, mel: np.ndarray) -> np.ndarray:
        """(T,) mouth opening that the audio of ``mel`` implies, at ``fps``."""
        return (_sync_features(mel, self.mel_fps, self.fps) - self.mean) / self.scale @ self.weights + self.bias


def sync_expert_score(codes: np.ndarray, mel: np.ndarray, expert: AudioToMouthRegressor,
                      max_lag_frames: int = DEFAULT_MAX_LAG_FRAMES) -> LipSyncScore:
    """Lagged correlation between the mouth of ``codes`` and the mouth ``expert`` predicts from ``mel``."""
    mouth, predicted = mouth_opening_from_codes(codes), expert.predict(mel)
    frames = min(len(mouth), len(predicted))
    return lipsync_from_curves(mouth[:frames], predicted[:frames], expert.fps, max_lag_frames)
