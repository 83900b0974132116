"""Steps 2-3 of ``OmniTalkerPipeline.__call__``: prepare the reference (analysis, transcript by ASR; ``PrepareMixin``,
the pipeline's public reference methods), read the speech to lip-sync (``load_driving``) and plan each item's
chunks with their frame counts (``text_chunks``, ``lipsync_windows``; ``chunking``, ``text_layout``)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from diffusers.utils import logging

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import SAMPLE_RATE, rms_normalize
from omnitalker.frontend.text import normalize_text, text_length
from omnitalker.io.watermark import AUDIO_MIN_SECONDS
from omnitalker.pipeline.chunking import (
    MIN_GENERATED_SECONDS,
    MIN_REST_SHARE,
    estimate_num_frames,
    frame_windows,
    pack_sentences,
    split_first,
    split_sentences,
)
from omnitalker.pipeline.limits import DEFAULT_MAX_SIDE, InputLimits, as_limits
from omnitalker.pipeline.modes import build_voice_reference
from omnitalker.pipeline.plan import ReferenceSources, check_reference_args, check_voice_text
from omnitalker.pipeline.reference import (
    MAX_REFERENCE_SECONDS,
    MIN_REFERENCE_SECONDS,
    OmniTalkerReference,
    load_media_audio,
    reference_mel,
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
    """The reference methods of ``OmniTalkerPipeline`` (public API); they read the pipeline's components and config
    and what this class defines."""

    _asr = _ASR_FROM_CONFIG  # the speech recognizer: resolved from config.asr on first use (nothing loads before)
    _face_analyzer = None  # built on first use from config.face_analyzer_config

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
        transcribe: bool = True,
    ) -> OmniTalkerReference:
        """Analyse a reference once (audio, transcript, face track, renderer source) for many calls.

        Give `reference_video` (its own audio, or `reference_audio` when it has none), or
        `reference_image` with `reference_audio` (a voice sample). A photo alone is accepted for
        audio-driven generation: its prompt is then a moment of silence; a voice sample alone (`reference_audio`)
        for speech only (mode="audio").
        `max_side`: frames are decoded at a working size with the longer side at most this (the output size
        policy, ``omnitalker.pipeline.limits``; None: full size). `limits`: file size, pixels and seconds checked on the
        headers first (``InputLimits``; None: the defaults). `transcribe` False: a missing transcript stays None
        (``transcribe_reference`` later; the demo analyses an upload before its transcript is typed).
        """
        if reference_video is None and reference_image is None and reference_audio is not None:
            check_voice_text(reference_text)
        else:
            check_reference_args(reference_video, reference_image, reference_audio, reference_text)
        return self.build_reference(ReferenceSources(reference_video, reference_image, reference_audio,
                                                     reference_text), min_seconds, max_seconds, max_side,
                                    as_limits(limits), headers_checked=False, transcribe=transcribe)

    def build_reference(self, sources: ReferenceSources, min_seconds: float = MIN_REFERENCE_SECONDS,
                        max_seconds: float = MAX_REFERENCE_SECONDS, max_side: int | None = DEFAULT_MAX_SIDE,
                        limits: InputLimits | None = None, headers_checked: bool = False,
                        transcribe: bool = True) -> OmniTalkerReference:
        """Step 2 of ``__call__``: the analysis of arguments already checked (``prepare_reference`` checks them
        first); `headers_checked`: the files were checked against `limits` already (``plan_call``)."""
        from omnitalker.pipeline.reference import build_reference

        if sources.video is None and sources.image is None:  # a voice sample alone: for mode="audio" (speech only)
            reference = build_voice_reference(sources.audio, sources.text, self.transformer.config.visual_dim,
                                              limits, headers_checked=headers_checked)
            return self.transcribe_reference(reference) if transcribe else reference
        reference = build_reference(self.face_analyzer, video=sources.video, image=sources.image, audio=sources.audio,
                                    text=sources.text, min_seconds=min_seconds, max_seconds=max_seconds,
                                    max_side=max_side, limits=limits, headers_checked=headers_checked)
        return self.transcribe_reference(reference) if transcribe else reference

    def transcribe_reference(self, reference: OmniTalkerReference) -> OmniTalkerReference:
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


class PromptTimings:
    """The reference's prompt layout for a "durations" model (``PrepareMixin.layout_prompt``), computed once per
    (transcript, prompt) and kept for the next call (one reference at a time: memory stays flat)."""

    def __init__(self):
        self.cache: dict = {}

    def get(self, reference, layout_prompt: Callable) -> ReferenceTiming:
        key = (reference.text, len(reference.mel), float(reference.mel.float().sum()))
        if key not in self.cache:
            self.cache = {key: layout_prompt(reference.text, reference.mel)}
        return self.cache[key]


def load_driving(audio) -> tuple[torch.Tensor, torch.Tensor]:
    """The speech to lip-sync: (wave (nw,) as given, mel (n, 100) loudness-normalised like a prompt)."""
    driving = load_media_audio(audio, "audio")  # nw
    if len(driving) < AUDIO_MIN_SECONDS * SAMPLE_RATE:
        raise ValueError(f"audio (the speech to lip-sync) is {len(driving) / SAMPLE_RATE:.2f} s long: use a "
                         f"recording of at least {AUDIO_MIN_SECONDS} s")
    return driving, reference_mel(rms_normalize(driving)[0])  # nw, n 100


def lipsync_windows(driving_mel: torch.Tensor, max_chunk_seconds: float,
                    first_chunk_seconds: float | None = None) -> list[tuple[int, int]]:
    """(start, end) mel frames of the lip-sync windows over the given speech; with `first_chunk_seconds`, the first
    window is that long (``chunking.MIN_REST_SHARE``: when the rest is long enough) and the rest windowed as usual."""
    first = 0
    if first_chunk_seconds is not None and len(driving_mel) >= (1 + MIN_REST_SHARE) * first_chunk_seconds * MEL_FRAME_RATE:
        first = round(first_chunk_seconds * MEL_FRAME_RATE)
    rest = frame_windows(len(driving_mel) - first, round(max_chunk_seconds * MEL_FRAME_RATE))
    return ([(0, first)] if first else []) + [(start + first, end + first) for start, end in rest]


def text_chunks(text: str, reference, speed: float, duration: float | None, max_chunk_seconds: float,
                timing: ReferenceTiming | None, layout_target: Callable,
                first_chunk_seconds: float | None = None) -> Sequence[tuple]:
    """(chunk text, frames to generate, phoneme layout or None) for one item: one chunk unless the output
    exceeds the budget, or `first_chunk_seconds` asks for a short first chunk (streaming: ``chunk_texts``).
    "durations" models (a `timing` given) get their frames from the duration predictor at the reference's pace
    (`layout_target`: ``PrepareMixin.layout_target``); the others from the reference's frames per byte
    (``omnitalker.pipeline.chunking``)."""
    max_chunk_frames = round(max_chunk_seconds * MEL_FRAME_RATE)
    text = normalize_text(text)
    requested = None if duration is None else max(1, round(duration * MEL_FRAME_RATE))
    whole = None
    if timing is not None and first_chunk_seconds is not None:
        # a short first chunk is planned on the reference's frames per byte: the whole text's layout (an espeak run
        # before the first chunk can start) is made only when the text stays whole
        rough = requested or estimate_num_frames(reference.num_frames, reference.text, text, speed)
        chunks = chunk_texts(text, rough, rough / text_length(text), max_chunk_frames, first_chunk_seconds)
        if len(chunks) > 1:
            return _laid_out(chunks, timing, speed, requested, rough / text_length(text), layout_target)
    if timing is not None:
        whole = layout_target(text, timing, speed, requested)
        shortest = math.ceil(MIN_GENERATED_SECONDS * MEL_FRAME_RATE)
        if whole.num_frames < shortest:  # "a", "7": long enough to carry the audio watermark
            whole = layout_target(text, timing, speed, shortest)
        total = whole.num_frames
    else:
        total = requested or estimate_num_frames(reference.num_frames, reference.text, text, speed)
    frames_per_byte = total / text_length(text)
    chunks = chunk_texts(text, total, frames_per_byte, max_chunk_frames, first_chunk_seconds)
    if len(chunks) == 1:
        return [(text, total, whole)]
    if timing is not None:
        return _laid_out(chunks, timing, speed, requested, frames_per_byte, layout_target)
    return [(chunk, max(1, round(text_length(chunk) * frames_per_byte)), None) for chunk in chunks]


def _laid_out(chunks: list[str], timing: ReferenceTiming, speed: float, requested: int | None,
              frames_per_byte: float, layout_target: Callable) -> LaidOutChunks:
    """Each chunk of a "durations" model with its phoneme layout (a requested duration shared by bytes)."""
    def layout(chunk: str):
        return layout_target(chunk, timing, speed,
                             None if requested is None else max(1, round(text_length(chunk) * frames_per_byte)))
    return LaidOutChunks(chunks, layout)


class LaidOutChunks(Sequence):
    """(chunk text, frames to generate, phoneme layout) of a "durations" model's chunks, each laid out (an espeak
    run: 30-70 ms on 2 cores) when first read, so the first chunk is sampled without waiting for the others' phonemes
    (a streamed call's first piece, issue 34). Read twice, a chunk is laid out once."""

    def __init__(self, chunks: list[str], layout: Callable[[str], TextLayout]):
        self._chunks, self._layout = list(chunks), layout
        self._laid: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self._chunks)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # negative indices, and an IndexError past the end
        if index not in self._laid:
            layout = self._layout(self._chunks[index])
            self._laid[index] = (self._chunks[index], layout.num_frames, layout)
        return self._laid[index]


def chunk_texts(text: str, total: int, frames_per_byte: float, max_chunk_frames: int,
                first_chunk_seconds: float | None = None) -> list[str]:
    """The texts of one item's chunks: a short first one when asked (``chunking.split_first``, cut at a pause or a
    word near `first_chunk_seconds` of speech; only when the rest is at least ``MIN_REST_SHARE`` of it), then
    sentences packed into chunks of at most `max_chunk_frames` (`total`: the whole text's frames)."""
    first = []
    if first_chunk_seconds is not None:
        first_frames = first_chunk_seconds * MEL_FRAME_RATE
        split = split_first(text, first_frames / frames_per_byte) if total >= (1 + MIN_REST_SHARE) * first_frames \
            else None
        if split is not None:
            first, text = [split[0]], split[1]
            total = text_length(text) * frames_per_byte
    if total <= max_chunk_frames:
        return first + [text]
    return first + pack_sentences(split_sentences(text), max(1, int(max_chunk_frames / frames_per_byte)))
