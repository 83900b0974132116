"""OmniTalkerPipeline: text + a style reference -> speech and a talking-head video, the diffusers way.

    from omnitalker import OmniTalkerPipeline
    from omnitalker.io.export import export_to_video
    pipe = OmniTalkerPipeline.from_pretrained("weights/omnitalker-demo")
    out = pipe("Nice to meet you.", reference_video="ref.mp4", reference_text="Hello, I am Ann.")
    export_to_video(out.frames[0], "out.mp4", fps=out.fps, audio=out.audio[0], sample_rate=out.sample_rate)

One flow-matching DiT in-fills [reference prompt | target] for both streams (paper §3.3), so three modes
come from the same sampler:
- joint (default): text -> mel + visual codes, in the reference's voice and motion style;
- audio-driven (``audio=speech``): the whole mel is given, only the visual codes are in-filled
  (lip-sync a photo or a clip to any voice); the output audio is the given speech;
- long input: text is split at sentence ends (speech at silences is cut in fixed windows), chunks are
  generated in turn, each prompted with the original reference (identity and voice never drift) plus
  the last ``motion_seconds`` of the previous chunk (motion frames, as in EMO / OmniHuman); the last
  ``crossfade_seconds`` of each chunk are generated again by the next one and the two versions are
  cross-faded (audio samples) and blended (visual codes).

Which weights do what (``omnitalker.modes``): ``mode="joint"`` (above, the default when the transformer has a
trained visual branch), ``mode="audio"`` (speech only, the visual stream absent; a voice sample is a reference
enough) and ``mode="cascade"`` (the default for a pipeline with only an audio branch, e.g. a converted F5-TTS
from ``python -m omnitalker.convert.pipeline``: speech from this pipeline, then the face lip-synced to it by a
second pipeline's visual branch, ``visual_pipeline``, default the bundled demo; section "cascade" below).

Reference handling (truncation to 1-10 s, silence trimming, loudness, face tracking, rate changes) is
in ``omnitalker.reference``; text chunking and the duration rule in ``omnitalker.chunking``.

Frame rates: mel and the DiT's visual stream 93.75 fps; ``visual_codes`` in the output 30 fps
(``CODE_FPS``, the paper's code rate); the rendered video ``video_fps`` (25). Durations of the output
audio and video agree within one video frame.

Safety: ``watermark=True`` (the default) stamps the visible "AI-generated" label and the invisible frame
and audio marks (``omnitalker.watermark``) on everything the pipeline returns as media.
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import BaseOutput, logging

from omnitalker.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.audio import HOP_LENGTH, SAMPLE_RATE, rms_normalize
from omnitalker.chunking import (
    crossfade,
    estimate_num_frames,
    frame_windows,
    pack_sentences,
    split_sentences,
    tail_text,
)
from omnitalker.components import as_pipeline_renderer, as_pipeline_tokenizer
from omnitalker.face.codes import CODE_FPS, VIDEO_FPS, retime, video_frame_count
from omnitalker.flow.guidance import (
    GuidanceConfig,
)
from omnitalker.flow.sampling import sample
from omnitalker.flow.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from omnitalker.io.image import fit_within
from omnitalker.limits import DEFAULT_MAX_SIDE, InputLimits, as_limits, check_max_side

# diffusers resolves saved components by importing their module by name; import the model modules here so
# `OmniTalkerPipeline.from_pretrained(...)` works in a fresh process (model_index.json names these paths).
from omnitalker.models import duration_predictor as _duration_predictor_module  # noqa: F401
from omnitalker.models import transformer as _transformer_module  # noqa: F401
from omnitalker.models import vocoder as _vocoder_module  # noqa: F401
from omnitalker.modes import (
    GUIDANCE_KEYS,
    branches_of,
    build_voice_reference,
    check_guidance_defaults,
    check_trained_branches,
    load_visual_pipeline,
    resolve_mode,
)
from omnitalker.phonemes import PAUSE_ID
from omnitalker.reference import (
    MAX_REFERENCE_SECONDS,
    MIN_REFERENCE_SECONDS,
    OmniTalkerReference,
    load_media_audio,
    reference_mel,
)
from omnitalker.text import normalize_text, prepare_reference_text, text_length
from omnitalker.text_layout import (
    ReferenceTiming,
    TextLayout,
    prompt_layout,
    speech_span,
    target_layout,
    time_reference,
)

logger = logging.get_logger(__name__)

DEFAULT_VIDEO_FPS = int(VIDEO_FPS)
DEFAULT_MAX_CHUNK_SECONDS = 12.0  # generated seconds per chunk; with a 10 s prompt F5's ~22 s budget
DEFAULT_MOTION_SECONDS = 1.0  # tail of the previous chunk given as prompt to the next
DEFAULT_CROSSFADE_SECONDS = 0.15  # F5-TTS's cross-fade between chunks
OUTPUT_TYPES = ("np", "pt", "latent")
FRAME_CHUNK_PIXELS = 50 * 512 * 512  # a streamed output (stream_frames=True) renders this many pixels at a time
SPACE_ID = 0  # the tokenizer's space token: the "no text" input when no transcript exists
_ASR_FROM_CONFIG = object()  # OmniTalkerPipeline._asr before its first use: load config.asr then

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from omnitalker import OmniTalkerPipeline
        >>> from omnitalker.io.video import export_to_video
        >>> pipe = OmniTalkerPipeline.from_pretrained("weights/omnitalker-demo")
        >>> out = pipe("Nice to meet you.", reference_video="ref.mp4", reference_text="Hello, I am Ann.")
        >>> export_to_video(out.frames[0], "out.mp4", fps=out.fps, audio=out.audio[0], sample_rate=out.sample_rate)
        >>> # lip-sync a photo to a recording
        >>> out = pipe(reference_image="face.png", audio="speech.wav")
        ```
"""


@dataclass
class OmniTalkerPipelineOutput(BaseOutput):
    """Output of ``OmniTalkerPipeline``; every list has one entry per generated item (batch order).

    audio: (samples,) float32 waveforms at ``sample_rate`` (None for output_type="latent").
    frames: (T, H, W, 3) uint8 RGB videos at ``fps`` (None for output_type="latent").
    mel: (100, n) generated log-mel at 93.75 frames/s (the vocoder's input; the prompt not included).
    visual_codes: (T30, 58) generated visual codes at ``visual_codes_fps`` (30) frames/s.
    reference_text: the reference transcript the generation used (typed, or recognised by the pipeline's ASR).
    mode: the mode that ran. With mode="audio", frames and visual_codes are None.
    Arrays are numpy for output_type "np" and "latent", torch tensors for "pt".
    """

    audio: list | None
    sample_rate: int
    frames: list | None
    fps: float
    mel: list
    visual_codes: list
    visual_codes_fps: float = CODE_FPS
    reference_text: str | None = None
    mode: str | None = None  # "joint", "audio" or "cascade" (omnitalker.modes)


@dataclass
class _RenderSource:
    """The renderer's prepared source at one output size (cached by the pipeline per reference and size)."""

    size: tuple[int, int]  # (width, height) of the output frames
    scale: tuple[float, float]  # output px per reference px, (x, y)
    state: object  # what renderer.prepare returned


class _StepHook:
    """Called by the sampler after every solver step of a pipeline call: counts steps across chunks, advances
    the progress bar and runs the user's ``callback_on_step_end`` with diffusers' tensor names."""

    LATENT_NAMES = {"audio_latents": "audio", "visual_latents": "visual"}

    def __init__(self, pipeline, progress_bar, callback: Callable | None, tensor_inputs: list[str]):
        self.pipeline, self.progress_bar = pipeline, progress_bar
        self.callback, self.tensor_inputs = callback, tensor_inputs
        self.steps_done = 0

    def __call__(self, step: int, timestep, latents: dict) -> dict:
        returned = {}
        if self.callback is not None:
            kwargs = {name: latents[self.LATENT_NAMES[name]] for name in self.tensor_inputs}
            outputs = self.callback(self.pipeline, self.steps_done, timestep, kwargs) or {}
            returned = {self.LATENT_NAMES[name]: value for name, value in outputs.items() if name in self.LATENT_NAMES}
        self.steps_done += 1
        self.progress_bar.update()
        return returned


@dataclass
class _Segment:
    """One in-filling problem: [prompt | num_frames to generate] with its token text."""

    prompt_mel: torch.Tensor  # p 100
    prompt_codes: torch.Tensor  # p 58
    text: str | None  # prompt transcript + target text; None = no text (audio-driven without transcript)
    num_frames: int
    known_mel: torch.Tensor | None = None  # num_frames 100: given speech (audio-driven)
    layout: TextLayout | None = None  # "durations" models: phoneme ids + frames over [prompt | target]


class OmniTalkerPipeline(DiffusionPipeline):
    r"""Pipeline for text-driven talking audio-video generation with in-context style (OmniTalker).

    Args:
        transformer ([`OmniTalkerTransformer`]): the dual-branch audio-visual flow-matching DiT.
        scheduler ([`OmniTalkerFlowMatchScheduler`]): the ODE solver (t = 0 noise -> t = 1 data).
        tokenizer ([`OmniTalkerTextProcessor`]): characters / pinyin -> ids (a plain `OmniTalkerTokenizer`
            is converted).
        vocoder ([`VocosVocoder`] or [`GriffinLimVocoder`], *optional*): mel -> 24 kHz waveform.
        renderer ([`WarpRendererComponent`], *optional*): visual codes -> video frames.
        duration_predictor ([`DurationPredictor`], *optional*): phonemes -> frames per token; required by a
            transformer with the "durations" text layout (whose tokenizer is an `OmniTalkerPhonemeProcessor`).
        video_fps (`int`, defaults to 25): frame rate of the rendered video.
        face_analyzer_config (`dict`, *optional*): keyword arguments of `omnitalker.face.FaceAnalyzer`
            (stored in model_index.json; the analyzer has no weights of its own).
        asr (`str`, *optional*, defaults to "default"): the speech recognizer for references given without a
            transcript (``omnitalker.asr.load_recognizer``: "default" = the bundled offline Whisper tiny.en, a
            faster-whisper size, a folder, or "none"); stored in model_index.json, loaded on first use.
        trained_branches (`list[str]`, *optional*): which of "audio" / "visual" the weights have trained (None =
            both); a converted F5-TTS has ["audio"] and runs the cascade (``omnitalker.modes``).
        visual_pipeline (`str`, *optional*): folder or Hub id of the cascade's visual pipeline (None = the bundled
            demo); loaded on first use, replaceable with ``set_visual_pipeline``.
        guidance (`dict`, *optional*): default CFG strengths of calls ("text", "audio", "visual", "joint"), e.g.
            F5-TTS's ``{"text": 0, "audio": 0, "visual": 0, "joint": 2}``; None = the module defaults.

    The vocoder and renderer may be None for output_type="latent". The face analyzer is built on first use.
    """

    model_cpu_offload_seq = "transformer->vocoder"
    _optional_components = ["vocoder", "renderer", "duration_predictor"]
    _callback_tensor_inputs = ["audio_latents", "visual_latents"]

    def __init__(
        self,
        transformer,
        scheduler,
        tokenizer,
        vocoder=None,
        renderer=None,
        duration_predictor=None,
        video_fps: int = DEFAULT_VIDEO_FPS,
        face_analyzer_config: dict | None = None,
        asr: str | None = "default",
        trained_branches: list[str] | None = None,
        visual_pipeline: str | None = None,
        guidance: dict | None = None,
    ):
        super().__init__()
        check_trained_branches(trained_branches)
        check_guidance_defaults(guidance)
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            tokenizer=as_pipeline_tokenizer(tokenizer),
            vocoder=vocoder,
            renderer=as_pipeline_renderer(renderer),
            duration_predictor=duration_predictor,
        )
        self.register_to_config(video_fps=video_fps, face_analyzer_config=face_analyzer_config, asr=asr,
                                trained_branches=None if trained_branches is None else list(trained_branches),
                                visual_pipeline=visual_pipeline, guidance=guidance)
        self._visual_pipeline = None  # the cascade's second pipeline, loaded on first use
        self._face_analyzer = None
        self._asr = _ASR_FROM_CONFIG  # resolved from config.asr on first use (nothing loads here)
        self._interrupt = False
        # the renderer's prepared source of the last reference rendered, per output size: {(id(reference),
        # size, id(renderer)): (weakref to the reference, _RenderSource)}; the caller's reference is not touched
        self._render_sources: dict = {}

    # ------------------------------------------------------------------------------------------ setup

    def set_asr(self, recognizer) -> None:
        """The speech recognizer for references given without a transcript: a name (``omnitalker.asr.
        load_recognizer``: "default", a size such as "small", a folder; saved in model_index.json), any object
        with ``transcribe(wave, sample_rate) -> str`` (not saved), or None / "none" to require typed transcripts."""
        import os

        from omnitalker.asr import NO_ASR, SpeechRecognizer, load_recognizer

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
    def uses_durations(self) -> bool:
        """True when the transformer lays phoneme tokens out by duration (Voicebox-style)."""
        return getattr(self.transformer, "text_layout", "filler") == "durations"

    def _zero_duration_ids(self) -> set[int]:
        return set(self.duration_predictor.config.zero_duration_ids or ())

    def layout_prompt(self, reference_text: str, prompt_mel: torch.Tensor,
                      layout: TextLayout | None = None) -> ReferenceTiming:
        """The reference transcript's phonemes laid over the prompt frames, with the prompt's pace
        (``omnitalker.text_layout``); ``layout`` replaces the estimated layout (e.g. true timings)."""
        seq = self.tokenizer.phonemize(reference_text)
        if layout is None:
            ids = self.tokenizer.convert_tokens_to_ids(seq.tokens)
            layout = prompt_layout(seq, ids, len(prompt_mel), speech_span(prompt_mel))
        return time_reference(seq, layout, self._zero_duration_ids())

    def layout_target(self, text: str, timing: ReferenceTiming, speed: float = 1.0,
                      num_frames: int | None = None) -> TextLayout:
        """The driving text's phonemes with their frames at the reference's timing (``omnitalker.text_layout``)."""
        return target_layout(self.tokenizer, self.duration_predictor, self.tokenizer.phonemize(text), timing, speed,
                             num_frames)

    @property
    def speech_recognizer(self):
        """The recognizer used for missing reference transcripts (built from ``config.asr`` on first use)."""
        if self._asr is _ASR_FROM_CONFIG:
            from omnitalker.asr import load_recognizer

            self._asr = load_recognizer(self.config.get("asr", "default"))
        return self._asr

    @property
    def face_analyzer(self):
        if self._face_analyzer is None:
            from omnitalker.face import FaceAnalyzer

            self._face_analyzer = FaceAnalyzer(**(self.config.face_analyzer_config or {}))
        return self._face_analyzer

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    def _should_stop(self) -> bool:
        return self._interrupt

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` (e.g. from a callback) to stop sampling early (diffusers' protocol):
        the current latents are decoded and no further chunks are generated."""
        return self._interrupt

    # ------------------------------------------------------------------------------------------ reference

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
        policy, ``omnitalker.limits``; None: full size). `limits`: file size, pixels and seconds checked on the
        headers first (``InputLimits``; None: the defaults).
        """
        from omnitalker.reference import build_reference

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

    # ------------------------------------------------------------------------------------------ checks

    def check_inputs(
        self,
        texts,
        audio,
        reference,
        num_inference_steps,
        speed,
        duration,
        max_chunk_seconds,
        output_type,
        generator,
        callback_on_step_end_tensor_inputs,
        limits: InputLimits | dict | None = None,
        max_side: int | None = DEFAULT_MAX_SIDE,
        mode: str = "joint",
    ) -> None:
        limits = as_limits(limits)
        check_max_side(max_side)
        if audio is None:
            if texts is None:
                raise ValueError("text is missing: pass the words to speak, or audio=... to lip-sync a recording")
            for text in texts:
                if not isinstance(text, str):
                    raise ValueError(f"text must be a string or a list of strings, got {type(text).__name__}")
                limits.check_text(text)
                if not normalize_text(text):
                    raise ValueError("text is empty (or only whitespace): pass at least one word to speak")
                self.tokenizer.check_speakable(text)
            if reference is not None and reference.text is None:
                reason = getattr(reference, "asr_error", None)
                if reason:
                    raise ValueError(f"reference_text is required: speech recognition could not supply it ({reason})")
                raise ValueError(
                    "reference_text is required: pass the transcript of the reference clip "
                    "(reference_text='...'), or let the pipeline recognise it with pipe.set_asr('default')"
                )
        elif texts is not None and len(texts) != 1:
            raise ValueError("audio-driven generation takes one recording; pass text as one string (its transcript)")
        if mode != "audio" and reference is not None and reference.identity is None:
            raise ValueError("this reference has no face (a voice sample only): pass reference_video or "
                             "reference_image for a talking head, or mode='audio' for speech only")
        if audio is None and self.uses_durations and getattr(self, "duration_predictor", None) is None:
            raise ValueError("this pipeline's transformer lays phonemes out by duration but it has no "
                             "duration_predictor: load one (DurationPredictor.from_pretrained(...)) and pass it")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number (1.0 = the reference's pace), got {speed!r}")
        if duration is not None and not (isinstance(duration, (int, float)) and math.isfinite(duration) and duration > 0):
            raise ValueError(f"duration must be a positive number of seconds or None, got {duration!r}")
        if not max_chunk_seconds > 2 * DEFAULT_MOTION_SECONDS:
            raise ValueError(f"max_chunk_seconds must exceed {2 * DEFAULT_MOTION_SECONDS:g} s, got {max_chunk_seconds}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if output_type != "latent" or mode == "cascade":  # the cascade drives the face with the waveform
            needed = ("vocoder",) if mode in ("audio", "cascade") else ("vocoder", "renderer")
            missing = [name for name in needed if getattr(self, name, None) is None]
            if missing:
                raise ValueError(
                    f"this pipeline has no {' and no '.join(missing)}: load one (e.g. vocoder=GriffinLimVocoder()) "
                    "or ask for output_type='latent' (mel and visual codes only)"
                )
        batch = 1 if texts is None else len(texts)
        if isinstance(generator, list) and len(generator) != batch:
            raise ValueError(f"got {len(generator)} generators for {batch} texts: pass one per text, or one")
        unknown = [name for name in callback_on_step_end_tensor_inputs if name not in self._callback_tensor_inputs]
        if unknown:
            raise ValueError(f"callback_on_step_end_tensor_inputs {unknown} are not in {self._callback_tensor_inputs}")

    # ------------------------------------------------------------------------------------------ sampling

    def _denoise(self, segments: list[_Segment], generators: list, guidance: GuidanceConfig, num_inference_steps: int,
                 on_step: Callable, audio_only: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """In-fill a batch of segments; returns per segment (mel (g, 100), codes (g, 58)) of the target
        (`audio_only`: the visual stream is absent; codes are then (g, 0))."""
        device, dtype = self._execution_device, self.transformer.dtype
        text_durations = None
        if self.uses_durations:
            text_ids, text_durations, totals = _layout_batch(segments)  # b nt, b nt
            if all(segment.layout is None for segment in segments):
                guidance = dataclasses.replace(guidance, text=0.0)  # only pauses: nothing to guide towards
        else:
            has_text = any(segment.text is not None for segment in segments)
            if has_text:
                text_ids = self.tokenizer.encode([segment.text or " " for segment in segments])  # b nt
            else:
                text_ids = torch.full((len(segments), 1), SPACE_ID, dtype=torch.long)
                guidance = dataclasses.replace(guidance, text=0.0)  # nothing to guide towards
            text_tokens = (text_ids >= 0).sum(dim=1)
            # every text token needs a frame (F5-TTS: duration >= tokens + 1)
            totals = [max(len(s.prompt_mel) + s.num_frames, int(n) + 1)
                      for s, n in zip(segments, text_tokens, strict=True)]
        targets = [total - len(segment.prompt_mel) for segment, total in zip(segments, totals, strict=True)]
        num_frames = max(totals)
        batch = len(segments)
        audio_cond = torch.zeros(batch, num_frames, self.transformer.config.mel_dim)  # b n 100
        visual_cond = torch.zeros(batch, num_frames, self.transformer.config.visual_dim)  # b n 58
        audio_mask = torch.zeros(batch, num_frames, dtype=torch.bool)
        visual_mask = torch.zeros(batch, num_frames, dtype=torch.bool)
        for row, segment in enumerate(segments):
            prompt = len(segment.prompt_mel)
            audio_cond[row, :prompt] = segment.prompt_mel
            visual_cond[row, :prompt] = segment.prompt_codes
            audio_mask[row, :prompt] = visual_mask[row, :prompt] = True
            if segment.known_mel is not None:
                known = segment.known_mel[: targets[row]]
                audio_cond[row, prompt : prompt + len(known)] = known
                audio_mask[row, prompt : prompt + len(known)] = True
        lengths = torch.tensor(totals)
        attention_mask = None
        if len(set(totals)) > 1:  # only pad-mask when lengths differ: a mask-free batch is the fast path
            attention_mask = (torch.arange(num_frames)[None] < lengths[:, None]).to(device)  # b n

        out = sample(
            self.transformer,
            self.scheduler,
            text_ids=text_ids.to(device),
            num_frames=num_frames,
            audio_cond=audio_cond.to(device, dtype),
            visual_cond=None if audio_only else visual_cond.to(device, dtype),
            audio_cond_mask=audio_mask.to(device),
            visual_cond_mask=None if audio_only else visual_mask.to(device),
            attention_mask=attention_mask,
            guidance=guidance,
            num_inference_steps=num_inference_steps,
            generator=generators if len(generators) > 1 else generators[0],
            callback_on_step_end=on_step,
            text_durations=None if text_durations is None else text_durations.to(device),
            should_stop=self._should_stop,  # diffusers' `pipe._interrupt`: keep what was reached
        )
        results = []
        for row, (segment, target) in enumerate(zip(segments, targets, strict=True)):
            span = slice(len(segment.prompt_mel), len(segment.prompt_mel) + target)
            codes = torch.zeros(target, 0) if out.visual is None else out.visual[row, span].float().cpu()
            results.append((out.audio[row, span].float().cpu(), codes))
        return results

    # ------------------------------------------------------------------------------------------ decoding

    def _vocode(self, mel: torch.Tensor, gain: float) -> torch.Tensor:
        """mel (g, 100) -> wave (samples,) float32 on CPU, back at the reference's loudness."""
        vocoder_dtype = next(self.vocoder.parameters(), mel).dtype  # Griffin-Lim has no parameters
        wave = self.vocoder.decode(mel.T[None].to(self._execution_device, vocoder_dtype))[0]  # nw
        return (wave.float().cpu() / gain).clamp(-1.0, 1.0)

    def _render(self, reference: OmniTalkerReference, codes: torch.Tensor, num_samples: int,
                max_side: int | None = DEFAULT_MAX_SIDE, stream_frames: bool = False):
        """codes (n, 58) at the mel rate -> (T, H, W, 3) uint8 frames covering num_samples of audio, at the output
        size (the call's `max_side`, ``_render_source``). With `stream_frames` a ``FrameStream`` that renders
        ``FRAME_CHUNK_PIXELS`` at a time (50 frames at 512 px) as it is read (memory flat in the length and in
        the frame size), else an array."""
        from omnitalker.face.codes import decode_codes
        from omnitalker.io.frames import FrameStream

        fps = self.config.video_fps
        codes_video = retime(codes, MEL_FRAME_RATE, fps, video_frame_count(num_samples, fps)).numpy()  # T 58
        source = self._render_source(reference, max_side)

        def render(start: int, stop: int) -> np.ndarray:
            landmarks = decode_codes(codes_video[start:stop], reference.identity)  # t 478 3, reference px
            if source.scale != (1.0, 1.0):
                landmarks = landmarks * np.array([*source.scale, source.scale[0]], np.float32)  # z scales with x
            return np.asarray(self.renderer.render(source.state, landmarks))

        if stream_frames:
            width, height = source.size
            return FrameStream(len(codes_video), height, width, render,
                               chunk_frames=max(1, FRAME_CHUNK_PIXELS // (height * width)),
                               progress=self._frame_progress())
        return render(0, len(codes_video))

    def _render_source(self, reference: OmniTalkerReference, max_side: int | None) -> _RenderSource:
        """The renderer's prepared source frame at the output size: the reference frame scaled so its longer
        side is at most `max_side` (never up; None keeps it). Cached per reference and size (the last
        reference only: one reference at a time is the common case, and memory stays flat)."""
        import cv2

        height, width = reference.image.shape[:2]
        size = fit_within(width, height, max_side)
        key = (id(reference), size, id(self.renderer))
        owner, cached = self._render_sources.get(key, (None, None))
        if owner is not None and owner() is reference:  # the same object, not a new one at a reused address
            return cached
        image, landmarks, scale = reference.image, reference.landmarks, (1.0, 1.0)
        if size != (width, height):
            image = cv2.resize(reference.image, size, interpolation=cv2.INTER_AREA)
            scale = (size[0] / width, size[1] / height)
            landmarks = reference.landmarks * np.array([*scale, scale[0]], np.float32)
        source = _RenderSource(size, scale, self.renderer.prepare(image, landmarks))
        self._render_sources = {k: v for k, v in self._render_sources.items() if v[0]() is reference}
        self._render_sources[key] = (weakref.ref(reference), source)
        return source

    def _frame_progress(self) -> Callable | None:
        """A tqdm bar class for rendering a streamed video (the pipeline's progress-bar settings), or None."""
        from functools import partial

        from tqdm.auto import tqdm

        config = {key: value for key, value in getattr(self, "_progress_bar_config", {}).items() if key != "desc"}
        return None if config.get("disable") else partial(tqdm, **config)

    # ------------------------------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(
        self,
        text: str | list[str] | None = None,
        reference_video=None,
        reference_image=None,
        reference_audio=None,
        reference_text: str | None = None,
        audio=None,
        reference: OmniTalkerReference | None = None,
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        guidance_text: float | None = None,
        guidance_audio: float | None = None,
        guidance_visual: float | None = None,
        guidance_anneal: str = "constant",
        speed: float = 1.0,
        duration: float | None = None,
        max_chunk_seconds: float = DEFAULT_MAX_CHUNK_SECONDS,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "np",
        watermark: bool = True,
        max_side: int | None = DEFAULT_MAX_SIDE,
        stream_frames: bool = False,
        limits: InputLimits | dict | None = None,
        return_dict: bool = True,
        callback_on_step_end: Callable | PipelineCallback | MultiPipelineCallbacks | None = None,
        callback_on_step_end_tensor_inputs: list[str] = ("audio_latents", "visual_latents"),
        mode: str | None = None,
        visual_pipeline=None,
        guidance_joint: float | None = None,
    ):
        r"""Generate talking audio + video.

        Args:
            text (`str` or `list[str]`): what to say; a list generates a batch with the same reference.
                In audio-driven mode, the optional transcript of `audio`.
            reference_video (`str`, *optional*): a clip of the person talking (1-10 s are used).
            reference_image (`str`, PIL image or array, *optional*): a photo, with `reference_audio` as voice.
            reference_audio (*optional*): a voice file or `(sample_rate, array)`: the voice of a photo
                reference, or the audio of a silent `reference_video`.
            reference_text (`str`, *optional*): transcript of the reference speech; when None, the pipeline's
                speech recognizer (`asr`, `set_asr`) transcribes the reference (the output's `reference_text`).
            audio (*optional*): speech to lip-sync (file or `(sample_rate, array)`); switches to audio-driven mode.
            reference (`OmniTalkerReference`, *optional*): a prepared reference (`prepare_reference`) instead of
                the four reference arguments; reuse it to skip the analysis.
            num_inference_steps (`int`, defaults to 16): ODE steps (paper: 16).
            guidance_text / guidance_audio / guidance_visual (`float`): multi-condition CFG strength per
                condition (0 disables a condition's extra pass); guidance_anneal: "constant" | "linear" | "cosine".
                None: the pipeline's `guidance` config, else the defaults of `omnitalker.flow.guidance` (text 3,
                audio 0, visual 0: two passes per step).
            guidance_joint (`float`, *optional*): F5-style strength against every condition dropped at once (the
                guidance F5-TTS weights were trained for); None: the pipeline's `guidance` config, else 0.
            speed (`float`, defaults to 1.0): speaking pace relative to the reference (2.0 = twice as fast).
            duration (`float`, *optional*): seconds of generated output (prompt excluded); overrides the
                text-length estimate (`omnitalker.chunking`).
            max_chunk_seconds (`float`, defaults to 12): longer outputs are generated in chunks of at most this.
            generator (`torch.Generator` or a list, one per text): for reproducible noise.
            output_type (`str`, defaults to "np"): "np", "pt" or "latent" (mel + codes, no vocoder/renderer).
            watermark (`bool`, defaults to True): visible "AI-generated" label + invisible frame/audio marks.
            max_side (`int`, defaults to 1024): output size policy: frames are scaled so their longer side is at
                most this many pixels, never upscaled (None: the reference's own size). The reference is decoded
                at that working size, so the renderer, watermarks and encoder never see a larger frame; the face
                crop the renderer draws keeps its configured size (`omnitalker.limits`).
            stream_frames (`bool`, defaults to False): return each video as an `omnitalker.io.frames.FrameStream`
                that renders and watermarks a few frames at a time (`FRAME_CHUNK_PIXELS`) as it is read
                (`export_to_video` streams it), so memory does not grow with the length of the text; `np.asarray`
                gives the whole array.
            limits (`InputLimits` or `dict`, *optional*): what the inputs may be (file size, pixels, seconds, text
                length), checked before any decoding; None: `omnitalker.limits`' defaults.
            return_dict (`bool`): return an `OmniTalkerPipelineOutput` (else a tuple of its fields).
            callback_on_step_end (*optional*): `fn(pipe, step, timestep, callback_kwargs) -> dict` after every
                solver step; `callback_kwargs` holds the tensors named in `callback_on_step_end_tensor_inputs`
                ("audio_latents" b n 100, "visual_latents" b n 58, prompt frames included) and returned
                tensors replace them. With chunking the step counter runs on across chunks.
            mode (`str`, *optional*): "joint" (speech and motion by one transformer), "audio" (speech only; frames
                and visual_codes are None; a `reference_audio` voice sample alone is enough) or "cascade" (speech
                from this pipeline, the face lip-synced to it by `visual_pipeline`). None: "joint" when the weights
                have a trained visual branch, else "cascade" (``omnitalker.modes``).
            visual_pipeline (*optional*): the cascade's visual pipeline for this call (an `OmniTalkerPipeline`, a
                folder or a Hub id); None: `set_visual_pipeline`'s, the config's, or the bundled demo.

        Examples:
        """
        # 1. check inputs (the files against the limits from their headers, before anything is decoded)
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        if text is not None and not isinstance(text, (str, list, tuple)):
            raise ValueError(f"text must be a string or a list of strings, got {type(text).__name__}")
        texts = [text] if isinstance(text, str) else (list(text) if text is not None else None)
        mode = resolve_mode(self.branches, mode, lipsync=audio is not None)
        visual_guidance_given = guidance_visual  # the cascade's visual pipeline keeps its own default otherwise
        guidance_text, guidance_audio, guidance_visual, guidance_joint = self.guidance_strengths(
            guidance_text, guidance_audio, guidance_visual, guidance_joint)
        voice_only = mode == "audio" and reference_video is None and reference_image is None
        if reference is None and voice_only:
            if reference_audio is None:
                raise ValueError("no reference: pass reference_audio='voice.wav' (a voice sample is enough for "
                                 "mode='audio'), or reference_video='ref.mp4'")
        elif reference is None:
            self._check_reference_args(reference_video, reference_image, reference_audio, reference_text)
            if reference_image is not None and reference_audio is None and audio is None:
                raise ValueError(
                    "a photo needs a voice sample to speak text: pass reference_audio='voice.wav' "
                    "(or audio='speech.wav' to lip-sync the photo to a recording)"
                )
        elif any(arg is not None for arg in (reference_video, reference_image, reference_audio, reference_text)):
            raise ValueError("pass either reference= (a prepared reference) or the reference_* arguments, not both")
        limits = as_limits(limits)
        self.check_inputs(texts, audio, reference, num_inference_steps, speed, duration, max_chunk_seconds,
                          output_type, generator, callback_on_step_end_tensor_inputs, limits, max_side, mode=mode)
        if stream_frames and output_type != "np":
            raise ValueError(f"stream_frames=True returns frames as a FrameStream of numpy chunks: use "
                             f"output_type='np', not {output_type!r}")
        # every file against the limits from its header, before anything is decoded
        limits.check_inputs(reference_video=reference_video, reference_image=reference_image,
                            reference_audio=reference_audio, audio=audio)
        if reference_text is not None:
            limits.check_text(reference_text, "reference_text")
        if mode == "cascade":
            return _returned(self._cascade(
                texts, audio, reference, (reference_video, reference_image, reference_audio, reference_text),
                visual_pipeline, output_type=output_type, limits=limits, max_side=max_side,
                generator=generator,
                speech=dict(num_inference_steps=num_inference_steps, guidance_text=guidance_text,
                            guidance_audio=guidance_audio, guidance_visual=guidance_visual,
                            guidance_joint=guidance_joint, guidance_anneal=guidance_anneal, speed=speed,
                            duration=duration, max_chunk_seconds=max_chunk_seconds,
                            callback_on_step_end=callback_on_step_end,
                            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs),
                motion=dict(num_inference_steps=num_inference_steps, guidance_visual=visual_guidance_given,
                            guidance_anneal=guidance_anneal, max_chunk_seconds=max_chunk_seconds,
                            watermark=watermark, stream_frames=stream_frames,
                            callback_on_step_end=callback_on_step_end,
                            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs)), return_dict)
        audio_only = mode == "audio"  # speech only: the visual stream is absent
        driving = None
        if audio is not None:  # read the speech before the (slower) reference analysis: fail fast
            driving = load_media_audio(audio, "audio")  # nw, kept as given for the output

        # 2. prepare the reference (analysed once; a prepared one is reused as it is)
        if reference is None:
            reference = self.prepare_reference(reference_video, reference_image, reference_audio, reference_text,
                                               max_side=max_side, limits=limits)
            self.check_inputs(texts, audio, reference, num_inference_steps, speed, duration, max_chunk_seconds,
                              output_type, generator, callback_on_step_end_tensor_inputs, limits, max_side, mode=mode)
        self._interrupt = False
        guidance = GuidanceConfig(text=guidance_text, audio=guidance_audio, visual=guidance_visual,
                                  joint=guidance_joint, anneal=guidance_anneal)
        generators = generator if isinstance(generator, list) else [generator] * (len(texts) if texts else 1)

        # 3. plan: every item as a list of chunks
        max_chunk_frames = round(max_chunk_seconds * MEL_FRAME_RATE)
        driving_mel = transcript = None
        if driving is not None:
            driving_mel = reference_mel(rms_normalize(driving)[0])  # n 100, loudness-normalised like a prompt
            transcript = None if texts is None else normalize_text(texts[0])
            plans = [frame_windows(len(driving_mel), max_chunk_frames)]
        else:
            plans = [self._text_chunks(t, reference, speed, duration, max_chunk_frames) for t in texts]

        # 4. sample mel + visual codes (chunked items are vocoded chunk by chunk, to cross-fade them)
        mel_items, code_items, wave_items = self._sample_items(
            reference, plans, generators, guidance, num_inference_steps, callback_on_step_end,
            callback_on_step_end_tensor_inputs, driving=driving, driving_mel=driving_mel, transcript=transcript,
            decode=output_type != "latent", audio_only=audio_only)

        # 5. decode (vocoder, renderer) and 6. watermark
        audio_out = frames_out = None
        if output_type != "latent":
            audio_out, frames_out = self._decode_items(reference, mel_items, code_items, wave_items, max_side,
                                                       stream_frames, watermark, audio_only)

        # 7. format the output
        self.maybe_free_model_hooks()
        output = self._format_output(mel_items, code_items, audio_out, frames_out, output_type, audio_only,
                                     reference.text, mode)
        return _returned(output, return_dict)

    def _sample_items(self, reference, plans, generators, guidance, num_inference_steps, callback_on_step_end,
                      tensor_inputs, *, driving, driving_mel, transcript, decode: bool, audio_only: bool):
        """Step 4 of ``__call__``: (mel items (g, 100), code items (g, 58), waves or None) for the planned items:
        one batched solve when every item fits one chunk, chunk by chunk otherwise, or lip-sync windows."""
        solver_calls = 1
        if driving is not None or any(len(plan) > 1 for plan in plans):
            solver_calls = sum(len(plan) for plan in plans)
        self.scheduler.set_timesteps(num_inference_steps)
        evaluations_per_call = len(self.scheduler.timesteps)
        self._num_timesteps = evaluations_per_call  # diffusers' `num_timesteps` property
        with self.progress_bar(total=solver_calls * evaluations_per_call) as progress_bar:
            on_step = _StepHook(self, progress_bar, callback_on_step_end, tensor_inputs)
            if driving is not None:
                return self._lipsync(reference, driving, driving_mel, transcript, plans[0], generators[0],
                                     guidance, num_inference_steps, on_step)
            if solver_calls == 1:  # every text fits in one chunk: one batched solve
                segments = [self._joint_segment(reference, plan[0], None) for plan in plans]
                results = self._denoise(segments, generators, guidance, num_inference_steps, on_step,
                                        audio_only=audio_only)
                return [mel for mel, _ in results], [codes for _, codes in results], None
            mel_items, code_items, wave_items = [], [], []
            for plan, item_generator in zip(plans, generators, strict=True):
                mel, codes, wave = self._joint_chunked(reference, plan, item_generator, guidance, num_inference_steps,
                                                       on_step, decode=decode, audio_only=audio_only)
                mel_items.append(mel)
                code_items.append(codes)
                wave_items.append(wave)
            return mel_items, code_items, wave_items

    def _decode_items(self, reference, mel_items, code_items, wave_items, max_side, stream_frames: bool,
                      watermark: bool, audio_only: bool) -> tuple[list, list]:
        """Steps 5-6 of ``__call__``: waves (vocoder, unless chunking already made them) and frames (renderer,
        none for speech only), watermarked when asked."""
        audio_out, frames_out = [], []
        for index, (mel, codes) in enumerate(zip(mel_items, code_items, strict=True)):
            wave = wave_items[index] if wave_items is not None else self._vocode(mel, reference.gain)
            frames = None
            if not audio_only:
                frames = self._render(reference, codes, len(wave), max_side=max_side, stream_frames=stream_frames)
            wave = wave.numpy()
            if watermark:
                frames, wave = _watermark(frames, wave)
            audio_out.append(wave)
            frames_out.append(frames)
        return audio_out, frames_out

    def _format_output(self, mel_items, code_items, audio_out, frames_out, output_type: str, audio_only: bool,
                       reference_text: str | None, mode: str) -> OmniTalkerPipelineOutput:
        """Step 7 of ``__call__``: codes at their own rate (30 fps) over the output's length, mels (100, g),
        numpy or torch as asked."""
        codes_out = None
        if not audio_only:  # speech only: no motion was generated
            codes_out = []
            for index, codes in enumerate(code_items):
                seconds = (len(audio_out[index]) / SAMPLE_RATE) if audio_out else len(codes) / MEL_FRAME_RATE
                codes_out.append(retime(codes, MEL_FRAME_RATE, CODE_FPS, max(1, round(seconds * CODE_FPS))).numpy())
        else:
            frames_out = None
        mel_out = [mel.T.contiguous().numpy() for mel in mel_items]  # 100 g
        if output_type == "pt":
            audio_out = [torch.from_numpy(np.ascontiguousarray(wave)) for wave in audio_out]
            if frames_out is not None:
                frames_out = [torch.from_numpy(np.ascontiguousarray(frames)) for frames in frames_out]
            mel_out = [torch.from_numpy(mel) for mel in mel_out]
            if codes_out is not None:
                codes_out = [torch.from_numpy(codes) for codes in codes_out]
        return OmniTalkerPipelineOutput(audio=audio_out, sample_rate=SAMPLE_RATE, frames=frames_out,
                                        fps=float(self.config.video_fps), mel=mel_out, visual_codes=codes_out,
                                        reference_text=reference_text, mode=mode)

    # ------------------------------------------------------------------------------------------ modes

    def _text_chunks(self, text, reference, speed, duration, max_chunk_frames) -> list[tuple]:
        """(chunk text, frames to generate, phoneme layout or None) for one item: one chunk unless the output
        exceeds the budget. "durations" models get their frames from the duration predictor at the
        reference's pace; the others from the reference's frames per byte (``omnitalker.chunking``)."""
        text = normalize_text(text)
        requested = None if duration is None else max(1, round(duration * MEL_FRAME_RATE))
        if self.uses_durations:
            timing = self._prompt_layout(reference)
            whole = self.layout_target(text, timing, speed, requested)
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

    def _joint_segment(self, reference, chunk: tuple, tail: tuple | None) -> _Segment:
        """A text chunk (text, frames, layout) as a segment; `tail` = (mel, codes, transcript, layout) motion
        frames of the previous chunk (layout None for models without the "durations" layout)."""
        text, frames, layout = chunk
        prompt_text = prepare_reference_text(reference.text)
        prompt_mel, prompt_codes = reference.mel, reference.codes
        prompt = self._prompt_layout(reference).layout if layout is not None else None
        if tail is not None:
            tail_mel, tail_codes, tail_transcript, tail_layout = tail
            prompt_mel = torch.cat([prompt_mel, tail_mel])
            prompt_codes = torch.cat([prompt_codes, tail_codes])
            prompt_text = prompt_text + (tail_transcript + " " if tail_transcript else "")
            if prompt is not None:
                prompt = prompt + tail_layout
        return _Segment(prompt_mel, prompt_codes, prompt_text + text, frames,
                        layout=None if layout is None else prompt + layout)

    def _joint_chunked(self, reference, plan, generator, guidance, num_inference_steps, on_step, decode: bool,
                       audio_only: bool = False):
        """Generate the chunks of one text in turn (module docstring); returns (mel, codes, wave | None)."""
        overlap = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)
        motion = round(DEFAULT_MOTION_SECONDS * MEL_FRAME_RATE)
        mel_total = codes_total = wave_total = None
        previous = None  # (mel, codes, text, layout) of the last chunk
        for text, frames, layout in plan:
            if self._interrupt:
                break
            tail, regenerate = None, 0
            if previous is not None:
                prev_mel, prev_codes, prev_text, prev_layout = previous
                if prev_layout is not None:  # durations: the tokens of every frame are known exactly
                    span = min(len(prev_mel), max(motion, overlap + 1))
                    transcript = None
                else:
                    transcript = tail_text(prev_text, round(motion * text_length(prev_text) / len(prev_mel)))
                    span = round(len(prev_mel) * text_length(transcript) / max(1, text_length(prev_text)))
                    span = min(len(prev_mel), max(span, overlap + 1))
                regenerate = min(overlap, span - 1)
                given = slice(len(prev_mel) - span, len(prev_mel) - regenerate)
                tail_layout = None
                if prev_layout is not None:
                    tail_layout = prev_layout.slice_frames(given.start, given.stop)
                    layout = prev_layout.slice_frames(given.stop, len(prev_mel)) + layout
                tail = (prev_mel[given], prev_codes[given], transcript, tail_layout)
            segment = self._joint_segment(reference, (text, frames + regenerate, layout), tail)
            ((mel, codes),) = self._denoise([segment], [generator], guidance, num_inference_steps, on_step,
                                            audio_only=audio_only)
            mel_total = mel if mel_total is None else crossfade(mel_total, mel, regenerate)
            codes_total = codes if codes_total is None else crossfade(codes_total, codes, regenerate)
            if decode:
                wave = self._vocode(mel, reference.gain)
                wave_total = wave if wave_total is None else crossfade(wave_total, wave, regenerate * HOP_LENGTH)
            previous = (mel, codes, text, layout)
        return mel_total, codes_total, wave_total

    def _lipsync(self, reference, driving, driving_mel, transcript, windows, generator, guidance,
                 num_inference_steps, on_step):
        """Audio-driven: in-fill the visual codes for the given speech, window by window."""
        motion = round(DEFAULT_MOTION_SECONDS * MEL_FRAME_RATE)
        overlap = round(DEFAULT_CROSSFADE_SECONDS * MEL_FRAME_RATE)
        codes_total = None
        prompt_text = prepare_reference_text(reference.text) if reference.text else ""
        for start, end in windows:
            if self._interrupt:
                break
            prompt_mel, prompt_codes, regenerate = reference.mel, reference.codes, 0
            if codes_total is not None:
                regenerate = min(overlap, start)
                tail_start = max(0, start - motion)
                given = slice(tail_start, start - regenerate)
                prompt_mel = torch.cat([prompt_mel, driving_mel[given]])
                prompt_codes = torch.cat([prompt_codes, codes_total[given]])
            text = prompt_text + transcript if (transcript and len(windows) == 1) else None
            segment = _Segment(prompt_mel, prompt_codes, text, end - start + regenerate,
                               known_mel=driving_mel[start - regenerate : end])
            ((_, codes),) = self._denoise([segment], [generator], guidance, num_inference_steps, on_step)
            codes = codes[: end - start + regenerate]
            codes_total = codes if codes_total is None else crossfade(codes_total, codes, regenerate)
        return [driving_mel], [codes_total], [driving.float().clamp(-1.0, 1.0)]

    # ------------------------------------------------------------------------------------------ cascade

    @property
    def branches(self) -> tuple[str, ...]:
        """The trained branches of these weights: ("audio", "visual"), or ("audio",) for a converted F5-TTS."""
        return branches_of(self)

    def set_visual_pipeline(self, pipeline) -> None:
        """The cascade's visual pipeline: an ``OmniTalkerPipeline`` with a trained visual branch, or a folder / Hub
        id (loaded now and saved in model_index.json)."""
        import os

        self._visual_pipeline = load_visual_pipeline(pipeline, self.device)
        if isinstance(pipeline, (str, os.PathLike)):
            self.register_to_config(visual_pipeline=os.fspath(pipeline))

    def get_visual_pipeline(self, override=None):
        """The pipeline whose visual branch animates the face in cascade mode: `override` (a pipeline, folder or
        Hub id), else the one set or configured (loaded once), else the bundled demo."""
        if override is not None:
            return load_visual_pipeline(override, self.device)
        if self._visual_pipeline is None:
            self._visual_pipeline = load_visual_pipeline(self.config.get("visual_pipeline"), self.device)
        return self._visual_pipeline

    def guidance_strengths(self, text=None, audio=None, visual=None, joint=None) -> tuple[float, float, float, float]:
        """The (text, audio, visual, joint) CFG strengths of a call: each as given, else the pipeline's `guidance`
        config, else the module default (``omnitalker.flow.guidance``)."""
        module_defaults = GuidanceConfig()
        defaults = {**{key: getattr(module_defaults, key) for key in GUIDANCE_KEYS}, **(self.config.get("guidance") or {})}
        given = dict(zip(GUIDANCE_KEYS, (text, audio, visual, joint), strict=True))
        return tuple(float(defaults[key] if given[key] is None else given[key]) for key in GUIDANCE_KEYS)

    def _cascade(self, texts, audio, reference, reference_args, visual_pipeline, *, output_type, limits, max_side,
                 generator, speech: dict, motion: dict) -> OmniTalkerPipelineOutput:
        """The paper's cascade baseline: (a) this pipeline speaks each text with its audio branch (mode="audio"),
        (b) the visual pipeline lip-syncs the reference face to that speech with its audio-driven visual branch
        (``_lipsync`` of that pipeline; it also watermarks). With `audio` given, only (b) runs on it."""
        visual = self.get_visual_pipeline(visual_pipeline)
        if getattr(self, "_progress_bar_config", None) is not None:
            visual.set_progress_bar_config(**self._progress_bar_config)
        if reference is None:
            reference = self.prepare_reference(*reference_args, max_side=max_side, limits=limits)
            self.check_inputs(texts, audio, reference, speech["num_inference_steps"], speech["speed"],
                              speech["duration"], speech["max_chunk_seconds"], output_type, generator,
                              speech["callback_on_step_end_tensor_inputs"], limits, max_side, mode="cascade")
        items = len(texts) if audio is None else 1
        generators = generator if isinstance(generator, list) else [generator] * items
        if audio is None:
            spoken = self(texts, reference=reference, mode="audio", generator=generator, output_type="np",
                          watermark=False, limits=limits, **speech)  # marked once, with the frames, in (b)
            drivings, mels = [(SAMPLE_RATE, wave) for wave in spoken.audio], spoken.mel
            limits = dataclasses.replace(limits, max_audio_seconds=None)  # our own speech: the text was checked
        else:
            drivings, mels = [audio], None
        outputs = []
        for index, driving in enumerate(drivings):
            if self._interrupt:
                break
            outputs.append(visual(None if texts is None else texts[index], audio=driving, reference=reference,
                                  mode="joint", generator=generators[index], output_type=output_type,
                                  max_side=max_side, limits=limits, **motion))
        if mels is None:
            mels = [out.mel[0] for out in outputs]
        elif output_type == "pt":
            mels = [torch.from_numpy(mel) for mel in mels]
        media = output_type != "latent"
        output = OmniTalkerPipelineOutput(
            audio=[out.audio[0] for out in outputs] if media else None, sample_rate=SAMPLE_RATE,
            frames=[out.frames[0] for out in outputs] if media else None, fps=float(visual.config.video_fps),
            mel=mels[: len(outputs)], visual_codes=[out.visual_codes[0] for out in outputs],
            reference_text=reference.text, mode="cascade")
        return output


def _returned(output: OmniTalkerPipelineOutput, return_dict: bool):
    """What ``__call__`` returns: the output dataclass, or (diffusers' ``return_dict=False``) a tuple of its fields."""
    if return_dict:
        return output
    return (output.audio, output.sample_rate, output.frames, output.fps, output.mel, output.visual_codes)


def _layout_batch(segments: list[_Segment]) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Phoneme ids and frames per token (b nt, padded -1 / 0) of segments for a "durations" model, and each
    segment's total frames. A segment without a layout (lip-sync: speech given, no aligned transcript) is
    one pause over all its frames."""
    layouts = []
    for segment in segments:
        total = len(segment.prompt_mel) + segment.num_frames
        layout = segment.layout if segment.layout is not None else TextLayout([PAUSE_ID], [total])
        if layout.num_frames != total:
            raise ValueError(f"phoneme durations cover {layout.num_frames} frames but the segment has {total}")
        layouts.append(layout)
    longest = max(len(layout.ids) for layout in layouts)
    ids = torch.full((len(layouts), longest), -1, dtype=torch.long)  # b nt
    durations = torch.zeros(len(layouts), longest, dtype=torch.long)  # b nt
    for row, layout in enumerate(layouts):
        ids[row, : len(layout.ids)], durations[row, : len(layout.ids)] = layout.tensors()
    return ids, durations, [layout.num_frames for layout in layouts]


def _watermark(frames, wave: np.ndarray) -> tuple:
    """Visible label + invisible frame and audio marks; a ``FrameStream`` is marked chunk by chunk as it is read."""
    from omnitalker.io.frames import FrameStream
    from omnitalker.watermark import apply_watermarks, embed_audio_watermark

    if frames is None:  # speech only (mode="audio")
        return None, np.asarray(embed_audio_watermark(wave, SAMPLE_RATE), dtype=np.float32)
    if isinstance(frames, FrameStream):
        marked = frames.map(lambda chunk: apply_watermarks(chunk)[0])
        return marked, np.asarray(embed_audio_watermark(wave, SAMPLE_RATE), dtype=np.float32)
    frames, wave = apply_watermarks(frames, wave, SAMPLE_RATE)
    return frames, np.asarray(wave, dtype=np.float32)

