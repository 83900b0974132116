"""Steps 2-3 of ``OmniTalkerPipeline.__call__``: prepare the reference (analysis, transcript by ASR) and plan
each item's text chunks with their frame counts (``chunking``, ``text_layout``)."""

from __future__ import annotations

import math

import torch
from diffusers.utils import logging

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.frontend.text import normalize_text, text_length
from omnitalker.pipeline.chunking import (
    MIN_GENERATED_SECONDS,
    estimate_num_frames,
    pack_sentences,
    split_sentences,
)
from omnitalker.pipeline.limits import DEFAULT_MAX_SIDE, InputLimits, as_limits
from omnitalker.pipeline.modes import (
    build_voice_reference,
)
from omnitalker.pipeline.reference import (
    MAX_REFERENCE_SECONDS,
    MIN_REFERENCE_SECONDS,
    OmniTalkerReference,
)
from omnitalker.pipeline.text_layout import (
    ReferenceTiming,
    TextLayout,
    prompt_layout,
    speech_span,
    target_layout,
    time_reference,
)

logger = logging.get_logger(__name__)

_ASR_FROM_CONFIG = object()  # PrepareMixin._asr before its first use: load config.asr then


class PrepareMixin:
    """Reference preparation and text planning of ``OmniTalkerPipeline``."""

    def set_asr(self, recognizer) -> None:
        """The speech recognizer for references given without a transcript: a name (``omnitalker.frontend.asr.
        load_recognizer``: "default", a size such as "small", a folder; saved in model_index.json), any object
        with ``transcribe(wave, sample_rate) -> str`` (not saved), or None / "none" to require typed transcripts."""
        import os

        from omnitalker.frontend.asr import NO_ASR, SpeechRecognizer, load_recognizer

        if recognizer is None or isinstance(recognizer, (str, os.PathLike)):
            name = NO_ASR if recognizer is None else os.fspath(recognizer)
            self._asr = load_recognizer(name)
            self.register_to_config(asr=name)
            return
        if not isinstance(recognizer, SpeechRecognizer):
            raise ValueError("the ASR must be a name ('default', 'small', a folder, 'none') or have a "
                             "transcribe(wave, sample_rate) -> str method")
        self._asr = recognizer

    @property
    def speech_recognizer(self):
        """The recognizer used for missing reference transcripts (built from ``config.asr`` on first use)."""
        if self._asr is _ASR_FROM_CONFIG:
            from omnitalker.frontend.asr import load_recognizer

            self._asr = load_recognizer(self.config.get("asr", "default"))
        return self._asr

    @property
    def face_analyzer(self):
        if self._face_analyzer is None:
            from omnitalker.frontend.face import FaceAnalyzer

            self._face_analyzer = FaceAnalyzer(**(self.config.face_analyzer_config or {}))
        return self._face_analyzer

    @property
    def uses_durations(self) -> bool:
        """True when the transformer lays phoneme tokens out by duration (Voicebox-style)."""
        return getattr(self.transformer, "text_layout", "filler") == "durations"

    def _zero_duration_ids(self) -> set[int]:
        return set(self.duration_predictor.config.zero_duration_ids or ())

    def word_start_ids(self) -> set[int]:
        """Phoneme ids a prompt may be cut before (word boundaries and pauses: ``text_layout.prompt_window``)."""
        return self.tokenizer.word_start_ids()

    def layout_prompt(self, reference_text: str, prompt_mel: torch.Tensor,
                      layout: TextLayout | None = None) -> ReferenceTiming:
        """The reference transcript's phonemes laid over the prompt frames, with the prompt's pace
        (``omnitalker.pipeline.text_layout``); ``layout`` replaces the estimated layout (e.g. true timings)."""
        seq = self.tokenizer.phonemize(reference_text)
        if layout is None:
            ids = self.tokenizer.convert_tokens_to_ids(seq.tokens)
            layout = prompt_layout(seq, ids, len(prompt_mel), speech_span(prompt_mel))
        return time_reference(seq, layout, self._zero_duration_ids())

    def layout_target(self, text: str, timing: ReferenceTiming, speed: float = 1.0,
                      num_frames: int | None = None) -> TextLayout:
        """The driving text's phonemes with their frames at the reference's timing (``omnitalker.pipeline.text_layout``)."""
        return target_layout(self.tokenizer, self.duration_predictor, self.tokenizer.phonemize(text), timing, speed,
                             num_frames)

    def prepare_reference(
        self,
        reference_video=None,
        reference_image=None,
        reference_audio=None,
        reference_text: str | None = None,
        min_seconds: float = MIN_REFERENCE_SECONDS,
        max_seconds: float = MAX_REFERENCE_SECONDS,
        max_side: int | None = DEFAULT_MAX_SIDE,
        limits: InputLimits | dict | None = None,
    ) -> OmniTalkerReference:
        """Analyse a reference once (audio, transcript, face track, renderer source) for many calls.

        Give `reference_video` (its own audio, or `reference_audio` when it has none), or
        `reference_image` with `reference_audio` (a voice sample). A photo alone is accepted for
        audio-driven generation: its prompt is then a moment of silence; a voice sample alone (`reference_audio`)
        for speech only (mode="audio").
        `max_side`: frames are decoded at a working size with the longer side at most this (the output size
        policy, ``omnitalker.pipeline.limits``; None: full size). `limits`: file size, pixels and seconds checked on the
        headers first (``InputLimits``; None: the defaults).
        """
        from omnitalker.pipeline.reference import build_reference

        if reference_video is None and reference_image is None and reference_audio is not None:
            if reference_text is not None and not normalize_text(reference_text):
                raise ValueError("reference_text is empty: pass the transcript of the voice sample, or leave it None")
            reference = build_voice_reference(reference_audio, reference_text, self.transformer.config.visual_dim,
                                              as_limits(limits))  # no face: for mode="audio" (speech only)
            return self._transcribe_reference(reference)
        self._check_reference_args(reference_video, reference_image, reference_audio, reference_text)
        reference = build_reference(
            self.face_analyzer,
            video=reference_video,
            image=reference_image,
            audio=reference_audio,
            text=reference_text,
            min_seconds=min_seconds,
            max_seconds=max_seconds,
            max_side=max_side,
            limits=as_limits(limits),
        )
        return self._transcribe_reference(reference)

    def _transcribe_reference(self, reference: OmniTalkerReference) -> OmniTalkerReference:
        """Fill in a missing transcript with the pipeline's speech recognizer (failures are kept for check_inputs)."""
        if reference.text is None and reference.wave.abs().max() > 0:
            try:
                recognizer = self.speech_recognizer
                if recognizer is not None:
                    reference.text = recognizer.transcribe(reference.wave, SAMPLE_RATE).strip() or None
                    logger.info(f"reference transcript (ASR): {reference.text!r}")
            except ValueError as error:  # no words, not English, no model: only joint generation needs the text,
                reference.asr_error = str(error)  # so check_inputs reports it there (lip-sync goes on without)
                logger.warning(f"no reference transcript from speech recognition: {error}")
        return reference

    @staticmethod
    def _check_reference_args(reference_video, reference_image, reference_audio, reference_text) -> None:
        if reference_video is None and reference_image is None:
            raise ValueError(
                "no reference: pass reference_video='ref.mp4', or reference_image='face.png' together with "
                "reference_audio='voice.wav'"
            )
        if reference_video is not None and reference_image is not None:
            raise ValueError("pass either reference_video or reference_image, not both")
        if reference_text is not None and (not isinstance(reference_text, str) or not normalize_text(reference_text)):
            raise ValueError("reference_text is empty: pass the transcript of the reference clip, or leave it None")

    def _text_chunks(self, text, reference, speed, duration, max_chunk_frames) -> list[tuple]:
        """(chunk text, frames to generate, phoneme layout or None) for one item: one chunk unless the output
        exceeds the budget. "durations" models get their frames from the duration predictor at the
        reference's pace; the others from the reference's frames per byte (``omnitalker.pipeline.chunking``)."""
        text = normalize_text(text)
        requested = None if duration is None else max(1, round(duration * MEL_FRAME_RATE))
        if self.uses_durations:
            timing = self._prompt_layout(reference)
            whole = self.layout_target(text, timing, speed, requested)
            shortest = math.ceil(MIN_GENERATED_SECONDS * MEL_FRAME_RATE)
            if whole.num_frames < shortest:  # "a", "7": long enough to carry the audio watermark
                whole = self.layout_target(text, timing, speed, shortest)
            if whole.num_frames <= max_chunk_frames:
                return [(text, whole.num_frames, whole)]
            frames_per_byte = whole.num_frames / text_length(text)
            chunks = pack_sentences(split_sentences(text), max(1, int(max_chunk_frames / frames_per_byte)))
            layouts = [self.layout_target(chunk, timing, speed, None if requested is None else
                                          max(1, round(text_length(chunk) * frames_per_byte))) for chunk in chunks]
            return [(chunk, layout.num_frames, layout) for chunk, layout in zip(chunks, layouts, strict=True)]
        total = requested or estimate_num_frames(reference.num_frames, reference.text, text, speed)
        if total <= max_chunk_frames:
            return [(text, total, None)]
        frames_per_byte = total / text_length(text)
        chunks = pack_sentences(split_sentences(text), max(1, int(max_chunk_frames / frames_per_byte)))
        return [(chunk, max(1, round(text_length(chunk) * frames_per_byte)), None) for chunk in chunks]

    def _prompt_layout(self, reference) -> ReferenceTiming:
        """The reference's prompt layout, computed once per (transcript, prompt) and cached."""
        key = (reference.text, len(reference.mel), float(reference.mel.float().sum()))
        cache = self.__dict__.setdefault("_prompt_layout_cache", {})
        if key not in cache:
            cache.clear()  # one reference at a time is the common case; keep memory flat
            cache[key] = self.layout_prompt(reference.text, reference.mel)
        return cache[key]

