"""Pluggable speech recognition for reference transcripts (paper §3: the reference text comes from ASR).

OmniTalker needs the transcript of the reference clip. Users type it, or plug in a recogniser: anything
with ``transcribe(wave, sample_rate) -> str`` satisfies the ``SpeechRecognizer`` protocol. One
implementation ships: Whisper through ``transformers``, built only from a model the user names (a local
folder, or a Hub id when the machine has network). Nothing is downloaded by default.

    from omnitalker.asr import WhisperRecognizer
    pipe.set_asr(WhisperRecognizer("openai/whisper-large-v3-turbo"))   # or a local folder
    pipe(text="...", reference_video="ref.mp4")                          # no reference_text needed now

Command line: ``python -m omnitalker.asr MODEL audio.wav`` prints the transcript.
"""

from __future__ import annotations

import sys
from typing import Protocol, runtime_checkable

import numpy as np
import torch

WHISPER_SAMPLE_RATE = 16000  # Whisper's feature extractor expects 16 kHz audio


@runtime_checkable
class SpeechRecognizer(Protocol):
    """Anything that turns a mono waveform into text."""

    def transcribe(self, wave: torch.Tensor | np.ndarray, sample_rate: int) -> str:
        """wave: (nw,) float in [-1, 1] at `sample_rate` -> transcript (may be empty for silence)."""
        ...


class WhisperRecognizer:
    """Whisper (or any ``transformers`` speech-to-text checkpoint) behind the ``SpeechRecognizer`` protocol.

    Args:
        model_name_or_path: a local folder or a Hub repo id of a transformers ASR checkpoint.
        language: force a language (e.g. "english", "chinese"); None lets Whisper detect it.
        device / dtype: where to run it (CPU float32 by default).
        local_files_only: True (default) never touches the network; set False to allow a Hub download.
    """

    def __init__(
        self,
        model_name_or_path: str,
        language: str | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        local_files_only: bool = True,
    ):
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        try:
            self.processor = AutoProcessor.from_pretrained(model_name_or_path, local_files_only=local_files_only)
            self.model = AutoModelForSpeechSeq2Seq.from_pretrained(
                model_name_or_path, local_files_only=local_files_only, dtype=dtype
            ).to(device)
        except OSError as error:
            raise ValueError(
                f"could not load the ASR model {model_name_or_path!r} ({error}). Pass a local folder with a "
                "transformers speech-to-text checkpoint, or allow downloads with local_files_only=False, "
                "or type the reference transcript yourself (reference_text=...)."
            ) from error
        self.model.eval()
        self.language = language
        self.device, self.dtype = torch.device(device), dtype

    @torch.no_grad()
    def transcribe(self, wave: torch.Tensor | np.ndarray, sample_rate: int) -> str:
        from omnitalker.audio import resample

        wave = wave.detach().cpu().float().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave, np.float32)
        if wave.ndim != 1:
            raise ValueError(f"transcribe expects a mono wave (nw,), got shape {wave.shape}")
        wave = resample(wave.astype(np.float64), int(sample_rate), WHISPER_SAMPLE_RATE).astype(np.float32)
        features = self.processor(wave, sampling_rate=WHISPER_SAMPLE_RATE, return_tensors="pt").input_features
        generate_kwargs = {"language": self.language} if self.language else {}
        ids = self.model.generate(features.to(self.device, self.dtype), **generate_kwargs)
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def main(argv: list[str] | None = None) -> None:
    from omnitalker.audio import SAMPLE_RATE, load_audio

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        sys.exit("usage: python -m omnitalker.asr MODEL_FOLDER_OR_HUB_ID AUDIO_OR_VIDEO_FILE")
    recognizer = WhisperRecognizer(args[0], local_files_only=False)
    print(recognizer.transcribe(load_audio(args[1]), SAMPLE_RATE))


if __name__ == "__main__":
    main()
