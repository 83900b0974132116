"""Stage 2, voice activity: silero-vad's bundled TorchScript model (it ships inside the pip package).

``silero-vad`` (requirements.txt) needs only torch and packaging: torchaudio, which has no build
matching our torch, is only in its optional extras (file I/O we do not use). Nothing is downloaded.

    vad = VoiceActivity()
    regions = vad.speech_regions(wave, sample_rate=24000)    # [(start_s, end_s), ...]
"""

from __future__ import annotations

import numpy as np
import torch

from omnitalker.io.audio import resample

VAD_SAMPLE_RATE = 16000  # the model runs at 16 kHz
SPEECH_THRESHOLD = 0.5  # frame speech probability
MIN_SPEECH_MS = 250
MIN_SILENCE_MS = 400  # a pause this long separates two candidate clips
SPEECH_PAD_MS = 100  # context kept around each region


class VoiceActivity:
    """Speech regions of a mono waveform with silero-vad."""

    def __init__(self):
        try:
            from silero_vad import get_speech_timestamps, load_silero_vad
        except ImportError as error:
            raise ValueError(
                "voice activity needs the silero-vad package: pip install silero-vad==6.2.3 (see requirements.txt)"
            ) from error
        self.model = load_silero_vad()  # torch.jit model from the package data
        self._timestamps = get_speech_timestamps

    @torch.no_grad()
    def speech_regions(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> list[tuple[float, float]]:
        """wave: (nw,) float in [-1, 1] -> [(start, end)] seconds of speech, in order."""
        wave = wave.numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
        if wave.ndim != 1:
            raise ValueError(f"speech_regions expects a mono wave (nw,), got shape {wave.shape}")
        if len(wave) == 0:
            return []
        wave16 = resample(wave.astype(np.float64), int(sample_rate), VAD_SAMPLE_RATE).astype(np.float32)
        self.model.reset_states()
        found = self._timestamps(
            torch.from_numpy(wave16), self.model, threshold=SPEECH_THRESHOLD, sampling_rate=VAD_SAMPLE_RATE,
            min_speech_duration_ms=MIN_SPEECH_MS, min_silence_duration_ms=MIN_SILENCE_MS,
            speech_pad_ms=SPEECH_PAD_MS,
        )
        return [(item["start"] / VAD_SAMPLE_RATE, item["end"] / VAD_SAMPLE_RATE) for item in found]
