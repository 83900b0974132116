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

import math
from collections.abc import Callable

import torch
from diffusers import DiffusionPipeline
from diffusers.callbacks import MultiPipelineCallbacks, PipelineCallback
from diffusers.utils import logging

from omnitalker.flow.guidance import (
    GuidanceConfig,
)
from omnitalker.flow.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import SAMPLE_RATE, rms_normalize
from omnitalker.frontend.face.codes import VIDEO_FPS
from omnitalker.frontend.text import normalize_text
from omnitalker.io.watermark import AUDIO_MIN_SECONDS
from omnitalker.pipeline import components as _components  # noqa: F401  (saved components' modules)
from omnitalker.pipeline.cascade import CascadeMixin
from omnitalker.pipeline.chunking import (
    DEFAULT_MAX_CHUNK_SECONDS,
    DEFAULT_MOTION_SECONDS,
    MIN_GENERATED_SECONDS,
    frame_windows,
)
from omnitalker.pipeline.decode import DecodeMixin, OmniTalkerPipelineOutput
from omnitalker.pipeline.denoise import DenoiseMixin
from omnitalker.pipeline.expression_style import match_expression, neutral_lid_gap
from omnitalker.pipeline.limits import DEFAULT_MAX_SIDE, InputLimits, as_limits, check_max_side
from omnitalker.pipeline.mel_smoothing import check_mel_smoothing
from omnitalker.pipeline.modes import (
    check_guidance_defaults,
    check_trained_branches,
    resolve_mode,
)
from omnitalker.pipeline.motion_spread import match_pose_spread
from omnitalker.pipeline.prepare import _ASR_FROM_CONFIG, PrepareMixin
from omnitalker.pipeline.reference import (
    OmniTalkerReference,
    load_media_audio,
    reference_mel,
)

logger = logging.get_logger(__name__)

DEFAULT_VIDEO_FPS = int(VIDEO_FPS)
OUTPUT_TYPES = ("np", "pt", "latent")

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


class OmniTalkerPipeline(PrepareMixin, DenoiseMixin, DecodeMixin, CascadeMixin, DiffusionPipeline):
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
            reference's (``omnitalker.pipeline.motion_spread``; the demo: on); the transformer sees only its end.
        match_reference_expression (`bool`, defaults to False): give the output the whole reference's blinks, gaze
            range and articulation size (``omnitalker.pipeline.expression_style``; the demo: on).

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
        self._visual_pipeline = None  # the cascade's second pipeline, loaded on first use
        self._face_analyzer = None
        self._asr = _ASR_FROM_CONFIG  # resolved from config.asr on first use (nothing loads here)
        self._interrupt = False
        # the renderer's prepared source of the last reference rendered, per output size: {(id(reference),
        # size, id(renderer)): (weakref to the reference, RenderSource)}; the caller's reference is not touched
        self._render_sources: dict = {}

    def reference_motion(self, codes: torch.Tensor, reference_codes: torch.Tensor) -> torch.Tensor:
        """Generated codes (n, 58) with the whole reference's head-motion size when the `match_reference_motion`
        config is on (``omnitalker.pipeline.motion_spread``), else as they are: the one place that decides."""
        if not self.config.get("match_reference_motion"):
            return codes
        return match_pose_spread(codes, reference_codes)

    def reference_expression(self, codes: torch.Tensor, reference, generator=None) -> torch.Tensor:
        """Generated codes (n, 58) with the whole reference's blinks, gaze range and articulation size when the
        `match_reference_expression` config is on (``omnitalker.pipeline.expression_style``), else as they are."""
        if not self.config.get("match_reference_expression") or reference.static:
            return codes
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
                    raise ValueError(f"text must be a string or a list of strings, got {type(text).__name__}: "
                                     "pass the words to speak, e.g. pipe(\"Hello there.\", ...)")
                limits.check_text(text)
                if not normalize_text(text):
                    raise ValueError("text is empty (or only whitespace): pass at least one word to speak")
                self.tokenizer.check_speakable(text)
            if reference is not None and reference.text is not None:
                self.tokenizer.check_speakable(reference.text, "reference_text")
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
        if duration is not None and not (isinstance(duration, (int, float)) and math.isfinite(duration)
                                         and duration >= MIN_GENERATED_SECONDS):
            raise ValueError(f"duration must be at least {MIN_GENERATED_SECONDS} s (the audio watermark needs "
                             f"{AUDIO_MIN_SECONDS} s), or None for the text's own length; got {duration!r}")
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
        guidance_refresh_every: int | None = None,
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
        # 1. check inputs (the files against the limits from their headers, before anything is decoded)
        if isinstance(callback_on_step_end, (PipelineCallback, MultiPipelineCallbacks)):
            callback_on_step_end_tensor_inputs = callback_on_step_end.tensor_inputs
        if text is not None and not isinstance(text, (str, list, tuple)):
            raise ValueError(f"text must be a string or a list of strings, got {type(text).__name__}: pass the "
                             "words to speak, e.g. pipe(\"Hello there.\", ...)")
        texts = [text] if isinstance(text, str) else (list(text) if text is not None else None)
        mode = resolve_mode(self.branches, mode, lipsync=audio is not None)
        visual_guidance_given = guidance_visual  # the cascade's visual pipeline keeps its own default otherwise
        guidance_text, guidance_audio, guidance_visual, guidance_joint = self.guidance_strengths(
            guidance_text, guidance_audio, guidance_visual, guidance_joint)
        guidance_refresh_every = self.guidance_refresh_every(guidance_refresh_every)
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
                            guidance_joint=guidance_joint, guidance_anneal=guidance_anneal,
                            guidance_refresh_every=guidance_refresh_every, speed=speed, duration=duration,
                            max_chunk_seconds=max_chunk_seconds,
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
            if len(driving) < AUDIO_MIN_SECONDS * SAMPLE_RATE:
                raise ValueError(f"audio (the speech to lip-sync) is {len(driving) / SAMPLE_RATE:.2f} s long: use a "
                                 f"recording of at least {AUDIO_MIN_SECONDS} s")

        # 2. prepare the reference (analysed once; a prepared one is reused as it is)
        if reference is None:
            reference = self.prepare_reference(reference_video, reference_image, reference_audio, reference_text,
                                               max_side=max_side, limits=limits)
            self.check_inputs(texts, audio, reference, num_inference_steps, speed, duration, max_chunk_seconds,
                              output_type, generator, callback_on_step_end_tensor_inputs, limits, max_side, mode=mode)
        self._interrupt = False
        guidance = GuidanceConfig(text=guidance_text, audio=guidance_audio, visual=guidance_visual,
                                  joint=guidance_joint, anneal=guidance_anneal, refresh_every=guidance_refresh_every)
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
        if not audio_only:
            code_items = [self.reference_expression(self.reference_motion(codes, reference.codes), reference, gen)
                          for codes, gen in zip(code_items, generators, strict=False)]

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


def _returned(output: OmniTalkerPipelineOutput, return_dict: bool):
    """What ``__call__`` returns: the output dataclass, or (diffusers' ``return_dict=False``) a tuple of its fields."""
    if return_dict:
        return output
    return (output.audio, output.sample_rate, output.frames, output.fps, output.mel, output.visual_codes)
