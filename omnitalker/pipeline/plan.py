"""Step 1 of ``OmniTalkerPipeline.__call__``: the call's arguments checked once and resolved into one ``CallPlan``.

    plan = plan_call(pipe, text="Hi.", reference_video="ref.mp4", num_inference_steps=16, ...)
    plan.mode          # Mode.JOINT, Mode.SPEECH, Mode.LIPSYNC, Mode.CASCADE or Mode.CASCADE_LIPSYNC
    check_reference(plan, reference, tokenizer)   # the one later check: what needs the built reference

Every later step reads the plan; no step checks an argument again. Each user-facing message is written here once
(the reference arguments' messages are shared with ``prepare_reference``, which is also an entry point of its own).
The files are checked against the limits on their headers here, before anything is decoded.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

import torch

from omnitalker.flow.guidance import STRENGTHS, GuidanceConfig
from omnitalker.frontend.text import normalize_text
from omnitalker.io.watermark import AUDIO_MIN_SECONDS
from omnitalker.pipeline.chunking import DEFAULT_MOTION_SECONDS, MIN_GENERATED_SECONDS, SPEED_MESSAGE
from omnitalker.pipeline.limits import InputLimits, as_limits, check_max_side
from omnitalker.pipeline.modes import resolve_mode

OUTPUT_TYPES = ("np", "pt", "latent")
CALLBACK_TENSOR_INPUTS = ("audio_latents", "visual_latents")

TEXT_TYPE_MESSAGE = ("text must be a string or a list of strings, got {kind}: pass the words to speak, e.g. "
                     "pipe(\"Hello there.\", ...)")
NO_REFERENCE_MESSAGE = ("no reference: pass reference_video='ref.mp4', or reference_image='face.png' together with "
                        "reference_audio='voice.wav'")
EMPTY_REFERENCE_TEXT_MESSAGE = "reference_text is empty: pass the transcript of the {what}, or leave it None"


class Mode(enum.Enum):
    """What one call does; ``output_name`` is the ``mode`` the output reports (``omnitalker.pipeline.modes``)."""

    JOINT = "joint"  # text -> speech and motion by one transformer
    SPEECH = "audio"  # text -> speech only: the visual stream is absent
    LIPSYNC = "lipsync"  # given speech -> motion (audio=...)
    CASCADE = "cascade"  # text -> speech by this pipeline, then LIPSYNC by the visual pipeline
    CASCADE_LIPSYNC = "cascade-lipsync"  # given speech -> LIPSYNC by the visual pipeline

    @property
    def output_name(self) -> str:
        return {"lipsync": "joint", "cascade-lipsync": "cascade"}.get(self.value, self.value)

    @property
    def cascade(self) -> bool:
        return self in (Mode.CASCADE, Mode.CASCADE_LIPSYNC)

    @property
    def visual(self) -> bool:
        """The output has motion (frames and visual codes)."""
        return self is not Mode.SPEECH


@dataclass(frozen=True)
class ReferenceSources:
    """The four reference arguments of a call (all None when a prepared ``reference`` is given)."""

    video: object = None
    image: object = None
    audio: object = None
    text: str | None = None


@dataclass(frozen=True)
class CallPlan:
    """One pipeline call, checked and resolved (module docstring)."""

    mode: Mode
    texts: tuple[str, ...] | None  # what to say; with given speech, its optional transcript (one)
    sources: ReferenceSources
    reference: object  # a prepared OmniTalkerReference, or None: built from `sources`
    audio: object  # the speech to lip-sync, as given (None unless the mode is driven)
    limits: InputLimits
    max_side: int | None
    guidance: GuidanceConfig  # this pipeline's strengths: the call's, else its config, else the module's
    visual_guidance: float | None  # the call's guidance_visual as given: the cascade's visual pipeline resolves it
    num_inference_steps: int
    speed: float
    duration: float | None
    max_chunk_seconds: float
    generators: tuple  # one per item (the same generator repeated when one was given)
    output_type: str
    watermark: bool
    stream_frames: bool
    return_dict: bool
    callback: object
    callback_tensor_inputs: tuple[str, ...]
    visual_pipeline: object = None  # the cascade's visual pipeline for this call (None: the pipeline's)
    first_chunk_seconds: float | None = None  # a short first chunk (streaming, ``prepare.chunk_texts``); None: none

    @property
    def decode(self) -> bool:
        """Media are made (vocoder, renderer); "latent" returns mel and codes only."""
        return self.output_type != "latent"

    @property
    def items(self) -> int:
        return 1 if self.texts is None or self.mode in (Mode.LIPSYNC, Mode.CASCADE_LIPSYNC) else len(self.texts)


def plan_call(pipe, *, text, reference_video, reference_image, reference_audio, reference_text, audio, reference,
              num_inference_steps, guidance_text, guidance_audio, guidance_visual, guidance_anneal, speed, duration,
              max_chunk_seconds, generator, output_type, watermark, max_side, stream_frames, limits, return_dict,
              callback_on_step_end, callback_on_step_end_tensor_inputs, mode, visual_pipeline, guidance_joint,
              guidance_refresh_every, first_chunk_seconds=None) -> CallPlan:
    """Check every argument of ``OmniTalkerPipeline.__call__`` once (the files on their headers) -> ``CallPlan``.
    `pipe` answers what the weights can do: its branches, tokenizer, components and guidance defaults."""
    from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback

    if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
        callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
    if text is not None and not isinstance(text, (str, list, tuple)):
        raise ValueError(TEXT_TYPE_MESSAGE.format(kind=type(text).__name__))
    texts = (text,) if isinstance(text, str) else (tuple(text) if text is not None else None)
    mode = _mode(resolve_mode(pipe.branches, mode, lipsync=audio is not None), audio is not None)
    strengths = pipe.guidance_strengths(guidance_text, guidance_audio, guidance_visual, guidance_joint)
    guidance = GuidanceConfig(**dict(zip(STRENGTHS, strengths, strict=True)), anneal=guidance_anneal,
                              refresh_every=pipe.guidance_refresh_every(guidance_refresh_every))
    sources = ReferenceSources(reference_video, reference_image, reference_audio, reference_text)
    _check_reference_sources(sources, reference, mode, audio)
    limits = as_limits(limits)
    check_max_side(max_side)
    _check_texts(texts, audio, limits, pipe.tokenizer)
    if reference is not None:
        check_reference(mode, reference, pipe.tokenizer, texts, audio)
    if num_inference_steps is None:  # the weights' own default
        num_inference_steps = pipe.scheduler.config.num_inference_steps
    _check_settings(pipe, mode, audio, num_inference_steps, speed, duration, max_chunk_seconds, output_type)
    _check_first_chunk(first_chunk_seconds, max_chunk_seconds)
    items = 1 if texts is None else len(texts)
    if isinstance(generator, list) and len(generator) != items:
        raise ValueError(f"got {len(generator)} generators for {items} texts: pass one per text, or one")
    unknown = [name for name in callback_on_step_end_tensor_inputs if name not in CALLBACK_TENSOR_INPUTS]
    if unknown:
        raise ValueError(f"callback_on_step_end_tensor_inputs {unknown} are not in {list(CALLBACK_TENSOR_INPUTS)}")
    if stream_frames and output_type != "np":
        raise ValueError(f"stream_frames=True returns frames as a FrameStream of numpy chunks: use "
                         f"output_type='np', not {output_type!r}")
    # every file against the limits from its header, before anything is decoded
    limits.check_inputs(reference_video=reference_video, reference_image=reference_image,
                        reference_audio=reference_audio, audio=audio)
    if reference_text is not None:
        limits.check_text(reference_text, "reference_text")
    generators = tuple(generator) if isinstance(generator, list) else (generator,) * items
    return CallPlan(mode=mode, texts=texts, sources=sources, reference=reference, audio=audio, limits=limits,
                    max_side=max_side, guidance=guidance, visual_guidance=guidance_visual,
                    num_inference_steps=num_inference_steps, speed=speed, duration=duration,
                    max_chunk_seconds=max_chunk_seconds, generators=generators, output_type=output_type,
                    watermark=watermark, stream_frames=stream_frames, return_dict=return_dict,
                    callback=callback_on_step_end, callback_tensor_inputs=tuple(callback_on_step_end_tensor_inputs),
                    visual_pipeline=visual_pipeline, first_chunk_seconds=first_chunk_seconds)


def _mode(name: str, lipsync: bool) -> Mode:
    if name == "cascade":
        return Mode.CASCADE_LIPSYNC if lipsync else Mode.CASCADE
    if name == "audio":
        return Mode.SPEECH
    return Mode.LIPSYNC if lipsync else Mode.JOINT


def check_reference_args(video, image, audio, text) -> None:
    """The reference arguments of a face reference (``prepare_reference`` and a call without ``reference=``)."""
    if video is None and image is None:
        raise ValueError(NO_REFERENCE_MESSAGE)
    if video is not None and image is not None:
        raise ValueError("pass either reference_video or reference_image, not both")
    if text is not None and (not isinstance(text, str) or not normalize_text(text)):
        raise ValueError(EMPTY_REFERENCE_TEXT_MESSAGE.format(what="reference clip"))


def check_voice_text(text) -> None:
    """The transcript of a voice sample alone (mode="audio")."""
    if text is not None and not normalize_text(text):
        raise ValueError(EMPTY_REFERENCE_TEXT_MESSAGE.format(what="voice sample"))


def voice_only(mode: Mode, sources: ReferenceSources) -> bool:
    """Speech only from a voice sample: no face is analysed."""
    return mode is Mode.SPEECH and sources.video is None and sources.image is None


def _check_reference_sources(sources: ReferenceSources, reference, mode: Mode, audio) -> None:
    given = any(arg is not None for arg in (sources.video, sources.image, sources.audio, sources.text))
    if reference is not None:
        if given:
            raise ValueError("pass either reference= (a prepared reference) or the reference_* arguments, not both")
        return
    if voice_only(mode, sources):
        if sources.audio is None:
            raise ValueError("no reference: pass reference_audio='voice.wav' (a voice sample is enough for "
                             "mode='audio'), or reference_video='ref.mp4'")
        check_voice_text(sources.text)
        return
    check_reference_args(sources.video, sources.image, sources.audio, sources.text)
    if sources.image is not None and sources.audio is None and audio is None:
        raise ValueError("a photo needs a voice sample to speak text: pass reference_audio='voice.wav' "
                         "(or audio='speech.wav' to lip-sync the photo to a recording)")


def _check_texts(texts, audio, limits: InputLimits, tokenizer) -> None:
    if audio is not None:
        if texts is not None and len(texts) != 1:
            raise ValueError("audio-driven generation takes one recording; pass text as one string (its transcript)")
        return
    if texts is None:
        raise ValueError("text is missing: pass the words to speak, or audio=... to lip-sync a recording")
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(TEXT_TYPE_MESSAGE.format(kind=type(text).__name__))
        limits.check_text(text)
        if not normalize_text(text):
            raise ValueError("text is empty (or only whitespace): pass at least one word to speak")
        tokenizer.check_speakable(text)


def check_reference(mode: Mode, reference, tokenizer, texts, audio) -> None:
    """What needs the reference: its transcript (speakable, or why recognition failed) and its face."""
    if audio is None and reference.text is not None:
        tokenizer.check_speakable(reference.text, "reference_text")
    if audio is None and reference.text is None:
        reason = getattr(reference, "asr_error", None)
        if reason:
            raise ValueError(f"reference_text is required: speech recognition could not supply it ({reason})")
        raise ValueError("reference_text is required: pass the transcript of the reference clip "
                         "(reference_text='...'), or let the pipeline recognise it with pipe.set_asr('default')")
    if mode is not Mode.SPEECH and reference.identity is None:
        raise ValueError("this reference has no face (a voice sample only): pass reference_video or "
                         "reference_image for a talking head, or mode='audio' for speech only")


def _check_settings(pipe, mode: Mode, audio, num_inference_steps, speed, duration, max_chunk_seconds,
                    output_type) -> None:
    if audio is None and pipe.uses_durations and getattr(pipe, "duration_predictor", None) is None:
        raise ValueError("this pipeline's transformer lays phonemes out by duration but it has no "
                         "duration_predictor: load one (DurationPredictor.from_pretrained(...)) and pass it")
    if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be a positive integer, got {num_inference_steps!r}")
    if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
        raise ValueError(SPEED_MESSAGE.format(speed=speed))
    if duration is not None and not (isinstance(duration, (int, float)) and math.isfinite(duration)
                                     and duration >= MIN_GENERATED_SECONDS):
        raise ValueError(f"duration must be at least {MIN_GENERATED_SECONDS} s (the audio watermark needs "
                         f"{AUDIO_MIN_SECONDS} s), or None for the text's own length; got {duration!r}")
    if not max_chunk_seconds > 2 * DEFAULT_MOTION_SECONDS:
        raise ValueError(f"max_chunk_seconds must exceed {2 * DEFAULT_MOTION_SECONDS:g} s, got {max_chunk_seconds}")
    if output_type not in OUTPUT_TYPES:
        raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
    check_components(pipe, mode, output_type)


def _check_first_chunk(first_chunk_seconds, max_chunk_seconds) -> None:
    if first_chunk_seconds is None:
        return
    if not (isinstance(first_chunk_seconds, (int, float)) and math.isfinite(first_chunk_seconds)
            and MIN_GENERATED_SECONDS <= first_chunk_seconds <= max_chunk_seconds):
        raise ValueError(f"first_chunk_seconds must be between {MIN_GENERATED_SECONDS} s (the audio watermark needs "
                         f"{AUDIO_MIN_SECONDS} s) and max_chunk_seconds ({max_chunk_seconds:g}), or None for no "
                         f"short first chunk; got {first_chunk_seconds!r}")


def check_components(pipe, mode: Mode, output_type: str, what: str = "this pipeline") -> None:
    """The vocoder and renderer the mode and output need (the cascade: `pipe`'s vocoder; its visual pipeline's
    renderer is checked when it is loaded, ``cascade.speak``)."""
    if output_type != "latent" or mode.cascade:  # the cascade drives the face with the waveform
        needed = ("vocoder",) if mode in (Mode.SPEECH, Mode.CASCADE, Mode.CASCADE_LIPSYNC) else ("vocoder", "renderer")
        missing = [name for name in needed if getattr(pipe, name, None) is None]
        if missing:
            raise ValueError(f"{what} has no {' and no '.join(missing)}: load one (e.g. "
                             "vocoder=GriffinLimVocoder()) or ask for output_type='latent' (mel and visual codes only)")


def speech_plan(plan: CallPlan) -> CallPlan:
    """Step (a) of the cascade: speech only, unmarked numpy (the marks go on once, with the frames, in (b))."""
    return replace(plan, mode=Mode.SPEECH, output_type="np", watermark=False, stream_frames=False)


def lipsync_plan(plan: CallPlan, guidance: GuidanceConfig, text: str | None, generator: torch.Generator | None,
                 given_speech: bool) -> CallPlan:
    """Step (b) of the cascade for one item: the visual pipeline lip-syncs (its own guidance defaults, `guidance`);
    speech this pipeline made itself is not held to the lip-sync length limit (its text was checked)."""
    limits = plan.limits if given_speech else plan.limits.replace(max_audio_seconds=None)
    return replace(plan, mode=Mode.LIPSYNC, texts=None if text is None else (text,), guidance=guidance,
                   generators=(generator,), limits=limits)
