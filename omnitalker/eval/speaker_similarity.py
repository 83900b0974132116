"""SIM-A: speaker similarity of two recordings, the cosine of their resemblyzer voice embeddings.

    from omnitalker.eval.speaker_similarity import SpeakerSimilarity
    sim = SpeakerSimilarity()
    sim.similarity(generated_wave, reference_wave, sample_rate=24000)   # in [-1, 1], 1 = same voice

resemblyzer's ``VoiceEncoder`` (a GE2E speaker encoder: 3-layer LSTM over 40-bin mels of 16 kHz audio)
ships its weights inside the wheel, so this works offline. Each waveform goes through resemblyzer's own
``preprocess_wav`` (resample to 16 kHz, loudness normalisation, long-silence trimming with webrtcvad),
then ``embed_utterance`` (mean of L2-normalised partial embeddings over 1.6 s windows, re-normalised):
the cosine is the dot product of two unit vectors.

Install (the wheel's metadata asks for the Python-2 ``typing`` backport and for ``webrtcvad``, whose
2.0.10 release imports the removed ``pkg_resources``; the maintained ``webrtcvad-wheels`` provides the
same module):  pip install librosa webrtcvad-wheels && pip install --no-deps resemblyzer==0.1.4
"""

from __future__ import annotations

import numpy as np
import torch

RESEMBLYZER_INSTALL = "pip install -r requirements.txt && pip install --no-deps -r requirements-nodeps.txt"
MIN_SECONDS = 0.5  # shorter clips (after silence trimming) give no usable embedding


def _as_wave(wave, name: str) -> np.ndarray:
    wave = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"{name} must be a mono waveform (samples,), got shape {wave.shape}")
    if not np.isfinite(wave).all():
        raise ValueError(f"{name} contains NaN or infinite samples")
    return wave


class SpeakerSimilarity:
    """Lazily loaded resemblyzer encoder; ``embed`` one clip, ``similarity`` of two clips."""

    def __init__(self, device: str | torch.device = "cpu"):
        try:
            from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError as error:
            raise ImportError(f"SIM-A needs resemblyzer ({error}): {RESEMBLYZER_INSTALL}") from error
        self._preprocess = preprocess_wav
        self.encoder = VoiceEncoder(device=device, verbose=False)

    def embed(self, wave, sample_rate: int) -> np.ndarray:
        """(256,) unit-norm voice embedding of a mono waveform at ``sample_rate``."""
        wave = _as_wave(wave, "wave")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        processed = self._preprocess(wave, source_sr=int(sample_rate))
        if len(processed) < MIN_SECONDS * 16_000:  # resemblyzer works at 16 kHz
            raise ValueError(f"the clip has under {MIN_SECONDS} s of speech after silence trimming: too short for SIM-A")
        return np.asarray(self.encoder.embed_utterance(processed), dtype=np.float64)

    def similarity(self, wave_a, wave_b, sample_rate: int) -> float:
        """Cosine similarity of the two clips' embeddings."""
        return cosine(self.embed(wave_a, sample_rate), self.embed(wave_b, sample_rate))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (ValueError for a zero vector)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:
        raise ValueError("cosine similarity of a zero vector is undefined")
    return float(a @ b / norms)
