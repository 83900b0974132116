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

Which weights do what (``omnitalker.pipeline.modes``): ``mode="joint"`` (above, the default when the transformer has a
trained visual branch), ``mode="audio"`` (speech only, the visual stream absent; a voice sample is a reference
enough) and ``mode="cascade"`` (the default for a pipeline with only an audio branch, e.g. a converted F5-TTS
from ``python -m omnitalker.convert.pipeline``: speech from this pipeline, then the face lip-synced to it by a
second pipeline's visual branch, ``visual_pipeline``, default the bundled demo; section "cascade" below).

Reference handling (truncation to 1-10 s, silence trimming, loudness, face tracking, rate changes) is
in ``omnitalker.pipeline.reference``; text chunking and the duration rule in ``omnitalker.pipeline.chunking``.

Frame rates: mel and the DiT's visual stream 93.75 fps; ``visual_codes`` in the output 30 fps
(``CODE_FPS``, the paper's code rate); the rendered video ``video_fps`` (25). Durations of the output
audio and video agree within one video frame.

Safety: ``watermark=True`` (the default) stamps the visible "AI-generated" label and the invisible frame
and audio marks (``omnitalker.io.watermark``) on everything the pipeline returns as media.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator

import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import logging

from omnitalker.frontend.face.codes import VIDEO_FPS
from omnitalker.frontend.text import normalize_text
from omnitalker.pipeline import components as _components  # noqa: F401  (saved components' modules)
from omnitalker.pipeline import decode
from omnitalker.pipeline.cascade import CascadeMixin, run_cascade
from omnitalker.pipeline.chunking import DEFAULT_MAX_CHUNK_SECONDS
from omnitalker.pipeline.decode import OmniTalkerPipelineOutput, RenderSources
from omnitalker.pipeline.denoise import SampledChunk, Sampler, StepHook, join_chunks, solver_calls
from omnitalker.pipeline.expression_style import (
    add_photo_expression,
    match_expression,
    neutral_lid_gap,
    style_generator,
)
from omnitalker.pipeline.limits import DEFAULT_MAX_SIDE, InputLimits
from omnitalker.pipeline.mel_smoothing import check_mel_smoothing
from omnitalker.pipeline.modes import check_guidance_defaults, check_trained_branches
from omnitalker.pipeline.motion_spread import hold_reference_pose, match_pose_spread
from omnitalker.pipeline.plan import (
    CALLBACK_TENSOR_INPUTS,
    OUTPUT_TYPES,
    CallPlan,
    Mode,
    check_reference,
    plan_call,
)
from omnitalker.pipeline.prepare import (
    PrepareMixin,
    PromptTimings,
    lipsync_windows,
    load_driving,
    text_chunks,
)
from omnitalker.pipeline.reference import OmniTalkerReference
from omnitalker.pipeline.stream import OmniTalkerChunk, stream_cascade, stream_chunks

logger = logging.get_logger(__name__)

DEFAULT_VIDEO_FPS = int(VIDEO_FPS)
__all__ = ["OUTPUT_TYPES", "OmniTalkerPipeline", "OmniTalkerPipelineOutput"]

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from omnitalker import OmniTalkerPipeline
        >>> from omnitalker.io import export_to_video
        >>> pipe = OmniTalkerPipeline.from_pretrained("weights/omnitalker-demo")
        >>> out = pipe("Nice to meet you.", reference_video="ref.mp4", reference_text="Hello, I am Ann.")
        >>> export_to_video(out.frames[0], "out.mp4", fps=out.fps, audio=out.audio[0], sample_rate=out.sample_rate)
        >>> # lip-sync a photo to a recording
        >>> out = pipe(reference_image="face.png", audio="speech.wav")
        ```
"""


class OmniTalkerPipeline(PrepareMixin, CascadeMixin, DiffusionPipeline):
    r"""Pipeline for text-driven talking audio-video generation with in-context style (OmniTalker).

    Args:
        transformer ([`OmniTalkerTransformer`]): the dual-branch audio-visual flow-matching DiT.
        scheduler ([`OmniTalkerFlowMatchScheduler`]): the ODE solver (t = 0 noise -> t = 1 data).
        tokenizer ([`OmniTalkerTokenizer`] or [`PhonemeTokenizer`]): characters / pinyin, or phonemes -> ids.
        vocoder ([`VocosVocoder`] or [`GriffinLimVocoder`], *optional*): mel -> 24 kHz waveform.
        renderer ([`WarpRenderer`], *optional*): visual codes -> video frames.
        duration_predictor ([`DurationPredictor`], *optional*): phonemes -> frames per token; required by a
            transformer with the "durations" text layout (whose tokenizer is a `PhonemeTokenizer`).
        video_fps (`int`, defaults to 25): frame rate of the rendered video.
        face_analyzer_config (`dict`, *optional*): keyword arguments of `omnitalker.frontend.face.FaceAnalyzer`
            (stored in model_index.json; the analyzer has no weights of its own).
        asr (`str`, *optional*, defaults to "default"): the speech recognizer for references given without a
            transcript (``omnitalker.frontend.asr.load_recognizer``: "default" = the bundled offline Whisper tiny.en, a
            faster-whisper size, a folder, or "none"); stored in model_index.json, loaded on first use.
        trained_branches (`list[str]`, *optional*): which of "audio" / "visual" the weights have trained (None =
            both); a converted F5-TTS has ["audio"] and runs the cascade (``omnitalker.pipeline.modes``).
        visual_pipeline (`str`, *optional*): folder or Hub id of the cascade's visual pipeline (None = the bundled
            demo); loaded on first use, replaceable with ``set_visual_pipeline``.
        guidance (`dict`, *optional*): default CFG strengths of calls ("text", "audio", "visual", "joint"), e.g.
            F5-TTS's ``{"text": 0, "audio": 0, "visual": 0, "joint": 2}``; None = the module defaults.
        mel_smoothing (`list[float]`, *optional*): taps of a low-pass along time applied to generated mel frames
            before the vocoder (``omnitalker.pipeline.mel_smoothing``; the demo's: [0.25, 0.5, 0.25]); None = off.
        match_reference_motion (`bool`, defaults to False): give the generated head motion the size of the whole
            reference's, and from a photo hold the head at the photo's pose (``omnitalker.pipeline.motion_spread``;
            the demo: on); the transformer sees only its end.
        match_reference_expression (`bool`, defaults to False): give the output the whole reference's blinks, gaze
            range and articulation size (``omnitalker.pipeline.expression_style``; the demo: on).

    The vocoder and renderer may be None for output_type="latent". The face analyzer is built on first use.
    """

    model_cpu_offload_seq = "transformer->vocoder"
    _optional_components = ["vocoder", "renderer", "duration_predictor"]
    _callback_tensor_inputs = list(CALLBACK_TENSOR_INPUTS)

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
        mel_smoothing: list[float] | None = None,
        match_reference_motion: bool = False,
        match_reference_expression: bool = False,
    ):
        super().__init__()
        check_trained_branches(trained_branches)
        check_guidance_defaults(guidance)
        check_mel_smoothing(mel_smoothing)
        self.register_modules(
            transformer=transformer,
            scheduler=scheduler,
            tokenizer=tokenizer,
            vocoder=vocoder,
            renderer=renderer,
            duration_predictor=duration_predictor,
        )
        self.register_to_config(video_fps=video_fps, face_analyzer_config=face_analyzer_config, asr=asr,
                                trained_branches=None if trained_branches is None else list(trained_branches),
                                visual_pipeline=visual_pipeline, guidance=guidance,
                                mel_smoothing=None if mel_smoothing is None else [float(t) for t in mel_smoothing],
                                match_reference_motion=bool(match_reference_motion),
                                match_reference_expression=bool(match_reference_expression))
        self._interrupt = False
        self._num_timesteps = None  # solver steps per solve of the last call (diffusers' `num_timesteps`)
        self._render_sources = RenderSources()  # the renderer's prepared source of the last reference, per size
        self._prompt_timings = PromptTimings()  # a "durations" model's layout of the last reference's prompt

    def reference_motion(self, codes: torch.Tensor, reference_codes: torch.Tensor) -> torch.Tensor:
        """Generated codes (n, 58) with the whole reference's head-motion size (from a photo: held at its pose) when the
        `match_reference_motion` config is on (``omnitalker.pipeline.motion_spread``), else as they are: the one place
        that decides."""
        if not self.config.get("match_reference_motion"):
            return codes
        return hold_reference_pose(match_pose_spread(codes, reference_codes), reference_codes)

    def reference_expression(self, codes: torch.Tensor, reference, generator=None) -> torch.Tensor:
        """Generated codes (n, 58) with the whole reference's blinks, gaze range and articulation size (from a photo:
        blinks at people's usual rate and a gaze that moves) when the `match_reference_expression` config is on
        (``omnitalker.pipeline.expression_style``), else as they are."""
        if not self.config.get("match_reference_expression") or reference.identity is None:
            return codes
        if reference.static:
            return add_photo_expression(codes, neutral_lid_gap(reference.identity), generator)
        return match_expression(codes, reference.codes, neutral_lid_gap(reference.identity), generator)

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
        num_inference_steps: int | None = None,
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
        guidance_refresh_every: int | None = None,
        first_chunk_seconds: float | None = None,
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
            num_inference_steps (`int`, *optional*): ODE steps; None = the scheduler's configured default
                (`scheduler.config.num_inference_steps`: 16 as in the paper unless the weights chose another, e.g.
                from a measured few-step grid in `scheduler.config.step_grids`).
            guidance_text / guidance_audio / guidance_visual (`float`): multi-condition CFG strength per
                condition (0 disables a condition's extra pass; negative, down to -1, weakens the condition, e.g.
                guidance_audio=-1 for less of the reference's voice); guidance_anneal: "constant" | "linear" |
                "cosine".
                None: the pipeline's `guidance` config, else the defaults of `omnitalker.flow.guidance` (text 3,
                audio 0, visual 0: two passes per step).
            guidance_joint (`float`, *optional*): F5-style strength against every condition dropped at once (the
                guidance F5-TTS weights were trained for); None: the pipeline's `guidance` config, else 0.
            guidance_refresh_every (`int`, *optional*): compute the guidance term on every k-th step and reuse it
                between (those steps cost one pass; `omnitalker.flow.guidance`); 1 = every step. None: the
                pipeline's `guidance` config, else the module default (2).
            speed (`float`, defaults to 1.0): speaking pace relative to the reference (2.0 = twice as fast).
            duration (`float`, *optional*): seconds of generated output (prompt excluded); overrides the
                text-length estimate (`omnitalker.pipeline.chunking`).
            max_chunk_seconds (`float`, defaults to 12): longer outputs are generated in chunks of at most this.
            first_chunk_seconds (`float`, *optional*): make the first chunk about this much speech, cut at a pause or
                a word (``prepare.chunk_texts``; lip-sync: the first window), so ``stream`` hands out its first
                piece early (``chunking.DEFAULT_FIRST_CHUNK_SECONDS``); None: chunks only past `max_chunk_seconds`.
            generator (`torch.Generator` or a list, one per text): for reproducible noise.
            output_type (`str`, defaults to "np"): "np", "pt" or "latent" (mel + codes, no vocoder/renderer).
            watermark (`bool`, defaults to True): visible "AI-generated" label + invisible frame/audio marks.
            max_side (`int`, defaults to 1024): output size policy: frames are scaled so their longer side is at
                most this many pixels, never upscaled (None: the reference's own size). The reference is decoded
                at that working size, so the renderer, watermarks and encoder never see a larger frame; the face
                crop the renderer draws keeps its configured size (`omnitalker.pipeline.limits`).
            stream_frames (`bool`, defaults to False): return each video as an `omnitalker.io.frames.FrameStream`
                that renders and watermarks a few frames at a time (`FRAME_CHUNK_PIXELS`) as it is read
                (`export_to_video` streams it), so memory does not grow with the length of the text; `np.asarray`
                gives the whole array.
            limits (`InputLimits` or `dict`, *optional*): what the inputs may be (file size, pixels, seconds, text
                length), checked before any decoding; None: `omnitalker.pipeline.limits`' defaults.
            return_dict (`bool`): return an `OmniTalkerPipelineOutput` (else a tuple of its fields).
            callback_on_step_end (*optional*): `fn(pipe, step, timestep, callback_kwargs) -> dict` after every
                solver step; `callback_kwargs` holds the tensors named in `callback_on_step_end_tensor_inputs`
                ("audio_latents" b n 100, "visual_latents" b n 58, prompt frames included) and returned
                tensors replace them. With chunking the step counter runs on across chunks.
            mode (`str`, *optional*): "joint" (speech and motion by one transformer), "audio" (speech only; frames
                and visual_codes are None; a `reference_audio` voice sample alone is enough) or "cascade" (speech
                from this pipeline, the face lip-synced to it by `visual_pipeline`). None: "joint" when the weights
                have a trained visual branch, else "cascade" (``omnitalker.pipeline.modes``).
            visual_pipeline (*optional*): the cascade's visual pipeline for this call (an `OmniTalkerPipeline`, a
                folder or a Hub id); None: `set_visual_pipeline`'s, the config's, or the bundled demo.

        Examples:
        """
        # 1. check the arguments once: the call's plan (the files against the limits from their headers)
        plan = plan_call(
            self, text=text, reference_video=reference_video, reference_image=reference_image,
            reference_audio=reference_audio, reference_text=reference_text, audio=audio, reference=reference,
            num_inference_steps=num_inference_steps, guidance_text=guidance_text, guidance_audio=guidance_audio,
            guidance_visual=guidance_visual, guidance_anneal=guidance_anneal, speed=speed, duration=duration,
            max_chunk_seconds=max_chunk_seconds, generator=generator, output_type=output_type, watermark=watermark,
            max_side=max_side, stream_frames=stream_frames, limits=limits, return_dict=return_dict,
            callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs, mode=mode,
            visual_pipeline=visual_pipeline, guidance_joint=guidance_joint,
            guidance_refresh_every=guidance_refresh_every, first_chunk_seconds=first_chunk_seconds)
        if plan.mode.cascade:  # speech here, the face by the visual pipeline: the same steps, composed
            return _returned(run_cascade(self, self.get_visual_pipeline(plan.visual_pipeline), plan), return_dict)

        # 2. prepare: the speech to lip-sync first (fail fast), then the reference (analysed once, then checked)
        driving = None if plan.audio is None else load_driving(plan.audio)  # (nw, n 100)
        reference = self.call_reference(plan)

        # 3-5. plan the segments, sample mel + visual codes, vocode: per item (mel, codes, wave)
        items = self.generate(plan, reference, driving)

        # 6-7. the reference's motion style, render, watermark, and the output in the asked format
        return _returned(self.finish(plan, reference, items), return_dict)

    # ------------------------------------------------------------------------------------------------ the steps

    def call_reference(self, plan: CallPlan) -> OmniTalkerReference:
        """Step 2: the call's reference: the prepared one (checked with the plan), or built from the plan's sources
        (their headers checked by the plan) and then checked where that needs the reference."""
        if plan.reference is not None:
            return plan.reference
        reference = self.build_reference(plan.sources, max_side=plan.max_side, limits=plan.limits,
                                         headers_checked=True)
        check_reference(plan.mode, reference, self.tokenizer, plan.texts, plan.audio)
        return reference

    def generate(self, plan: CallPlan, reference: OmniTalkerReference, driving) -> list[tuple]:
        """Steps 3-5 for every item: its chunks (``chunks``) joined over their cross-fades -> (mel (g, 100), codes
        (g, 58), wave (nw,) or None). Lip-sync returns the given speech and its mel."""
        items = join_chunks(list(self.chunks(plan, reference, driving)), plan.items)
        if driving is None:
            return items
        wave, driving_mel = driving
        return [(driving_mel, codes, wave.float().clamp(-1.0, 1.0)) for _, codes, _ in items]

    def chunks(self, plan: CallPlan, reference: OmniTalkerReference, driving) -> Iterator[SampledChunk]:
        """Steps 3-5, chunk by chunk: plan the segments (text chunks or lip-sync windows), sample each, vocode it;
        yields every chunk as soon as it is decoded (``denoise.SampledChunk``, with its wave when media are made)."""
        self._interrupt = False
        durations = self.uses_durations and driving is None
        timing = self._prompt_timings.get(reference, self.layout_prompt) if durations else None
        if driving is not None:
            chunk_plans = [lipsync_windows(driving[1], plan.max_chunk_seconds, plan.first_chunk_seconds)]
        else:
            chunk_plans = [text_chunks(text, reference, plan.speed, plan.duration, plan.max_chunk_seconds, timing,
                                       self.layout_target, plan.first_chunk_seconds) for text in plan.texts]
        self.scheduler.set_timesteps(plan.num_inference_steps)
        self._num_timesteps = len(self.scheduler.timesteps)
        total = solver_calls(chunk_plans, driven=driving is not None) * self._num_timesteps
        with self.progress_bar(total=total) as progress_bar:
            sampler = Sampler(self.transformer, self.scheduler, self.tokenizer, self._execution_device,
                              self.config.get("mel_smoothing"), self.uses_durations, timing,
                              self.word_start_ids() if durations else set(), self._should_stop,
                              StepHook(self, progress_bar, plan.callback, plan.callback_tensor_inputs))
            if driving is not None:
                transcript = None if plan.texts is None else normalize_text(plan.texts[0])
                chunks = sampler.lipsync(reference, driving[1], transcript, chunk_plans[0], plan.generators[0],
                                         plan.guidance, plan.num_inference_steps)
            else:
                chunks = sampler.sample(reference, chunk_plans, plan.generators, plan.guidance,
                                        plan.num_inference_steps, audio_only=plan.mode is Mode.SPEECH)
            for chunk in chunks:
                if plan.decode and chunk.mel is not None:  # 5. vocode: the one place waves are made
                    chunk.wave = decode.vocode(self.vocoder, chunk.mel, reference.gain, self._execution_device)
                yield chunk

    def finish(self, plan: CallPlan, reference: OmniTalkerReference, items: list[tuple]) -> OmniTalkerPipelineOutput:
        """Steps 6-7: the whole reference's motion style on each item's codes, frames (renderer), watermarks, and
        the output in the plan's format."""
        mel_items, code_items, waves = (list(column) for column in zip(*items, strict=True))
        if plan.mode.visual:
            code_items = [self.reference_expression(self.reference_motion(codes, reference.codes), reference,
                                                    style_generator(gen))
                          for codes, gen in zip(code_items, plan.generators, strict=False)]
        audio_out = frames_out = None
        if plan.decode:
            audio_out, frames_out = [], []
            for wave, codes in zip(waves, code_items, strict=True):
                frames = self.render(plan, reference, codes, len(wave)) if plan.mode.visual else None
                wave = wave.numpy()
                if plan.watermark:
                    frames, wave = decode.watermark(frames, wave)
                audio_out.append(wave)
                frames_out.append(frames)
        self.maybe_free_model_hooks()
        return decode.format_output(mel_items, code_items, audio_out, frames_out, plan.output_type, plan.mode.visual,
                                    self.config.video_fps, reference.text, plan.mode.output_name)

    def render(self, plan: CallPlan, reference: OmniTalkerReference, codes: torch.Tensor, num_samples: int):
        """Step 6: codes (n, 58) at the mel rate -> frames covering num_samples of audio (``decode.render``)."""
        source = self.render_source(plan, reference)
        progress = decode.frame_progress(getattr(self, "_progress_bar_config", {})) if plan.stream_frames else None
        return decode.render(self.renderer, source, codes, num_samples, self.config.video_fps, plan.stream_frames,
                             progress)

    def render_source(self, plan: CallPlan, reference: OmniTalkerReference):
        """The renderer's source of the reference at the plan's output size (prepared once, ``RenderSources``)."""
        return self._render_sources.get(self.renderer, reference, plan.max_side)

    @torch.no_grad()
    def stream(self, *args, **kwargs) -> Iterator[OmniTalkerChunk]:
        """The output chunk by chunk as each is decoded (``omnitalker.pipeline.stream``): the same arguments as
        ``__call__`` (``output_type`` "np"; ``return_dict`` and ``stream_frames`` are not used), yielding one
        ``OmniTalkerChunk`` at a time: audio samples, frames, their start, whether it is the item's last. Concatenated
        they equal ``__call__``'s output for the same seed, up to the differences that module's docstring lists."""
        arguments = inspect.signature(OmniTalkerPipeline.__call__).bind(self, *args, **kwargs)
        arguments.apply_defaults()
        plan = plan_call(self, **{name: value for name, value in arguments.arguments.items() if name != "self"})
        if plan.mode.cascade:
            yield from stream_cascade(self, self.get_visual_pipeline(plan.visual_pipeline), plan)
            return
        driving = None if plan.audio is None else load_driving(plan.audio)  # (nw, n 100)
        yield from stream_chunks(self, plan, self.call_reference(plan), driving)


def _returned(output: OmniTalkerPipelineOutput, return_dict: bool):
    """What ``__call__`` returns: the output dataclass, or (diffusers' ``return_dict=False``) a tuple of its fields."""
    if return_dict:
        return output
    return (output.audio, output.sample_rate, output.frames, output.fps, output.mel, output.visual_codes)
