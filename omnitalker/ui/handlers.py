"""The Talk and Lip-sync handlers of the Gradio demo: inputs from the page -> OmniTalkerPipeline -> files.

    handlers = DemoHandlers(pipe)                       # or a folder / Hub id, loaded on first use
    video, audio, pose_plot, mel_plot, transcript = handlers.talk("ref.mp4", None, None, "", "Nice to meet you.")
    video = handlers.lipsync("face.png", None, "speech.wav")

Errors: the pipeline's ValueErrors (bad or missing input) reach the page as gr.Error with their message
intact; anything else is logged with its traceback on the server and shown as a short generic gr.Error.

Budget per request, checked before any work (``omnitalker.pipeline.limits``; each a Space variable): the text length
(OMNITALKER_MAX_TEXT_LENGTH, default 1,000 characters), the length of uploads (OMNITALKER_MAX_SECONDS, 60 s;
speech to lip-sync OMNITALKER_MAX_AUDIO_SECONDS, 30 s), file size (OMNITALKER_MAX_FILE_MB, 25 MB, also
gradio's upload limit), photo / frame pixels (OMNITALKER_MAX_PIXELS) and the output size (OMNITALKER_MAX_SIDE,
longer side 1024 px). The video is rendered, watermarked and encoded a chunk at a time (the pipeline's
``stream_frames``), so memory does not grow with the text; progress shows the sampling and the rendering.

Results: each request writes into its own folder under ``<output_root>/<session>/`` (by default inside
gradio's cache, so gradio serves the files where they are instead of copying them). A session keeps only
its newest RESULTS_PER_SESSION results; its folder is removed when the session ends (the page is closed:
``end_session``, wired to ``demo.unload``); a failed request leaves nothing behind; results of sessions that
never ended cleanly are removed after OUTPUT_MAX_AGE_SECONDS.

Modes (``omnitalker.pipeline.modes``): a pipeline with a trained visual branch generates speech and motion jointly; one
with only an audio branch (a converted F5-TTS) runs the cascade: its speech, then the face lip-synced by the
``visual_pipeline`` (OMNITALKER_VISUAL_PIPELINE in the Space; default the bundled demo). ``mode_notice`` is the
line the page shows about it; the guidance sliders start at the pipelines' own defaults (``guidance_defaults``).

The reference transcript is optional: when the box is empty the pipeline's speech recognizer (the bundled
offline Whisper tiny.en, English) transcribes the reference, and ``talk`` returns the transcript it used so
the page can show it in the box, editable for the next run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from contextlib import closing, contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from omnitalker.flow.guidance import DEFAULT_AUDIO_STRENGTH, DEFAULT_TEXT_STRENGTH, DEFAULT_VISUAL_STRENGTH
from omnitalker.flow.scheduler import DEFAULT_NUM_INFERENCE_STEPS
from omnitalker.pipeline.chunking import DEFAULT_FIRST_CHUNK_SECONDS
from omnitalker.pipeline.limits import InputLimits, check_max_side, max_side_from_env
from omnitalker.pipeline.modes import MODE_TEXT, default_mode, describe_mode, folder_default_mode
from omnitalker.pipeline.plan import check_reference_args, check_voice_text
from omnitalker.ui.serving import MAX_REQUEST_SECONDS, RequestDeadline, RequestTooLong

logger = logging.getLogger(__name__)
_FROM_ENV = object()  # DemoHandlers(max_side=...) default: read OMNITALKER_MAX_SIDE

MAX_UPLOAD_SECONDS = 60.0  # longer uploads are refused before any work (the reference uses only 1-10 s)
MAX_DRIVING_SECONDS = 30.0  # lip-sync speech; each second costs generation time on a shared demo
MAX_UPLOAD_MB = 25.0  # also gradio's own upload limit (omnitalker.ui.app.launch)
MAX_TEXT_LENGTH = 1000  # characters, about a minute of speech
RESULTS_PER_SESSION = 2  # the page shows the newest; the one before may still be downloading
REFERENCE_CACHE_SIZE = 4  # analysed references kept (a few MB each: the renderer's frames at the output size)
OUTPUT_MAX_AGE_SECONDS = 3600  # results of sessions that never ended cleanly
RESULTS_FOLDER = "omnitalker-results"  # inside gradio's cache unless an output_root is given
VIDEO_NAME, SPEECH_NAME = "omnitalker.mp4", "speech.wav"  # a result's files in its folder
LOCAL_SESSION = "local"  # calls without a gradio request (direct calls, tests)
GENERIC_ERROR = "Something went wrong while generating. Please try again; the details are in the server log."
SESSION_NAME = re.compile(r"[^A-Za-z0-9_-]")  # characters of a session hash kept in its folder name
MAX_SESSION_NAME = 64
SERVER_PATH = re.compile(r"(?:/[^/\s'\"]+)+/([^/\s'\"]+)")  # an absolute path on the server -> its file name
# Pipeline arguments as the page labels them (messages start with the argument they are about).
PAGE_LABELS = {"reference_video": "The reference video", "reference_image": "The photo",
               "reference_audio": "The voice sample", "reference_text": "The reference transcript",
               "audio": "The speech to lip-sync", "text": "The text"}
ARGUMENT_AT_START = re.compile(r"^([a-z_]+)\b(?:='([^']*)')?")
PAGE_HINTS = {"e.g. reference_audio='voice.wav'": "in the voice sample box",
              "reference_audio='voice.wav'": "a voice sample"}
NO_WEIGHTS = ("The demo weights are not available ({source}). Build or download them (see weights/README.md) "
              "or start the demo with a pipeline folder or Hub id.")


def app_limits(environ: dict | None = None) -> InputLimits:
    """The demo's budget: its defaults above, each overridden by its OMNITALKER_* variable (``omnitalker.pipeline.limits``)."""
    return InputLimits.from_env(environ, max_seconds=MAX_UPLOAD_SECONDS, max_audio_seconds=MAX_DRIVING_SECONDS,
                                max_file_mb=MAX_UPLOAD_MB, max_text_length=MAX_TEXT_LENGTH)


class DemoHandlers:
    """Holds the pipeline (an instance, or a folder / Hub id loaded on first use) and serves the two tabs.

    Args:
        pipeline: an ``OmniTalkerPipeline``, or a local folder / Hub repo id to load lazily.
        output_root: where the per-session result folders go (default: ``RESULTS_FOLDER`` in gradio's cache).
        limits: the inputs' budget (default: ``app_limits()``, from the environment).
        max_side: longer side of the output video (default: OMNITALKER_MAX_SIDE or 1024).
        visual_pipeline: for a pipeline with only an audio branch, the pipeline (or folder / Hub id) whose visual
            branch animates the face (cascade); None: the pipeline's configured one, else the bundled demo.
        max_request_seconds: a request still running after this long is stopped with a message, nothing written
            (``omnitalker.ui.serving``); None: no limit.
    """

    def __init__(self, pipeline, output_root: str | os.PathLike | None = None, limits: InputLimits | None = None,
                 max_side: int | None = _FROM_ENV, visual_pipeline=None,
                 max_request_seconds: float | None = MAX_REQUEST_SECONDS):
        self._pipeline = None if isinstance(pipeline, (str, os.PathLike)) else pipeline
        self._source = pipeline if isinstance(pipeline, (str, os.PathLike)) else None
        self._visual_source = visual_pipeline
        if self._pipeline is not None:
            self._attach_visual(self._pipeline)
        self._load_lock = threading.Lock()
        self._results_lock = threading.Lock()
        if output_root is None:  # gradio's cache: files there are served in place, not copied
            from gradio.utils import get_upload_folder

            output_root = Path(get_upload_folder()) / RESULTS_FOLDER
        self.output_root = Path(output_root)
        self.limits = app_limits() if limits is None else limits
        self.max_side = max_side_from_env() if max_side is _FROM_ENV else max_side
        check_max_side(self.max_side)
        self.max_request_seconds = max_request_seconds
        self._references = ReferenceCache()

    @property
    def pipeline(self):
        with self._load_lock:
            if self._pipeline is None:
                from omnitalker.pipeline import OmniTalkerPipeline

                source = Path(self._source)
                if source.is_absolute() or source.exists() or os.fspath(self._source).count("/") != 1:
                    if not (source / "model_index.json").is_file():
                        raise gr.Error(NO_WEIGHTS.format(source=self._source))
                self._pipeline = self._attach_visual(OmniTalkerPipeline.from_pretrained(os.fspath(self._source)))
            return self._pipeline

    def _attach_visual(self, pipe):
        """Give an audio-only pipeline the visual pipeline named at construction (cascade mode)."""
        if self._visual_source is not None and default_mode(pipe) == "cascade":
            pipe.set_visual_pipeline(self._visual_source)
        return pipe

    def mode_notice(self) -> str:
        """The page's line about which mode runs (read from the folder's json files while nothing is loaded)."""
        if self._pipeline is None:
            mode = folder_default_mode(self._source)
            if mode is None:
                return "**Mode:** decided when the pipeline loads (first request)."
            if mode == "joint":
                return f"**Mode: joint** ({MODE_TEXT['joint']})."
            visual = self._visual_source or "the configured visual pipeline, else the bundled demo"
            return f"**Mode: cascade** ({MODE_TEXT['cascade']} {visual})."
        mode = default_mode(self._pipeline)
        return f"**Mode: {mode}** ({describe_mode(self._pipeline, mode)})."

    def steps_default(self) -> int:
        """Start value of the steps sliders: the pipeline's scheduler default (read from the folder's
        scheduler_config.json while nothing is loaded; the module default when the folder has none)."""
        if self._pipeline is not None:
            return int(self._pipeline.scheduler.config.num_inference_steps)
        config = Path(os.fspath(self._source)) / "scheduler" / "scheduler_config.json"
        if config.is_file():
            return int(json.loads(config.read_text()).get("num_inference_steps", DEFAULT_NUM_INFERENCE_STEPS))
        return DEFAULT_NUM_INFERENCE_STEPS

    def guidance_defaults(self) -> tuple[float, float, float]:
        """Start values of the text / voice / motion sliders: the pipeline's own defaults (F5-TTS weights: 0 and
        their joint strength), motion from the visual pipeline in cascade mode; module defaults while unloaded."""
        if self._pipeline is None:
            return DEFAULT_TEXT_STRENGTH, DEFAULT_AUDIO_STRENGTH, DEFAULT_VISUAL_STRENGTH
        text, audio, visual, _ = self._pipeline.guidance_strengths()
        if default_mode(self._pipeline) == "cascade" and self._pipeline._visual_pipeline is not None:
            visual = self._pipeline._visual_pipeline.guidance_strengths()[2]
        return text, audio, visual

    # ------------------------------------------------------------------------------------------ tabs

    def talk(self, reference_video, reference_image, reference_audio, reference_text, text,
             num_inference_steps=None, guidance_text=None, guidance_audio=None,
             guidance_visual=None, speed=1.0, seed=0, progress=gr.Progress(track_tqdm=True),
             request: gr.Request = None):
        """Text + a reference (video, or photo + voice) and its transcript (empty: recognised) -> (mp4, wav,
        pose plot, mel plot, the reference transcript used). Guidance None: the pipeline's defaults."""
        deadline = RequestDeadline(self.max_request_seconds)
        with _friendly_errors():
            reference, out = self._generate_talk(
                reference_video, reference_image, reference_audio, reference_text, text, num_inference_steps,
                guidance_text, guidance_audio, guidance_visual, speed, seed, progress, deadline)
            with self._result_folder(request) as folder:
                video = self._write_video(out, folder)  # renders + watermarks chunk by chunk (progress bar)
                audio = self._write_speech(out, folder)
            return (str(video), str(audio), plot_pose(reference, out), plot_mel(reference, out),
                    out.reference_text or "")

    def talk_stream(self, reference_video, reference_image, reference_audio, reference_text, text,
                    num_inference_steps=None, guidance_text=None, guidance_audio=None,
                    guidance_visual=None, speed=1.0, seed=0, progress=gr.Progress(track_tqdm=True),
                    request: gr.Request = None):
        """``talk`` for the page, played while it generates: yields (segment, skip, ...) as each chunk of
        ``OmniTalkerPipeline.stream`` is decoded and encoded (the first is about a second of speech, so the player
        starts early), then (skip, the full mp4, the wav, plots, transcript) from the joined result."""
        deadline = RequestDeadline(self.max_request_seconds)
        with _friendly_errors():
            reference, pieces = self._stream_talk(
                reference_video, reference_image, reference_audio, reference_text, text, num_inference_steps,
                guidance_text, guidance_audio, guidance_visual, speed, seed, progress, deadline)
            with self._result_folder(request) as folder:
                video = folder / VIDEO_NAME
                collected = StreamedResult(reference)
                with closing(self._chunk_segments(pieces, video, deadline, progress, collected)) as segments:
                    for segment in segments:
                        yield str(segment), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
                out = collected.output()
                audio = self._write_speech(out, folder)
            yield (gr.skip(), str(video), str(audio), plot_pose(reference, out), plot_mel(reference, out),
                   out.reference_text or "")

    def talk_whole(self, *args, progress=gr.Progress(track_tqdm=True), request: gr.Request = None, **kwargs):
        """``talk`` with the page's outputs of ``talk_stream`` (player, download, ...), where the page cannot stream:
        the whole mp4 goes to both."""
        video, *rest = self.talk(*args, progress=progress, request=request, **kwargs)
        return (video, video, *rest)

    def lipsync_whole(self, *args, progress=gr.Progress(track_tqdm=True), request: gr.Request = None, **kwargs):
        """``lipsync`` with the page's outputs of ``lipsync_stream``, where the page cannot stream."""
        video = self.lipsync(*args, progress=progress, request=request, **kwargs)
        return video, video

    def lipsync(self, reference_image, reference_video, audio, num_inference_steps=None, seed=0,
                progress=gr.Progress(track_tqdm=True), request: gr.Request = None):
        """A photo or a clip + driving speech -> mp4 of the face speaking it (audio-driven mode)."""
        deadline = RequestDeadline(self.max_request_seconds)
        with _friendly_errors():
            out = self._generate_lipsync(reference_image, reference_video, audio, num_inference_steps, seed,
                                         progress, deadline)
            with self._result_folder(request) as folder:
                return str(self._write_video(out, folder))

    def lipsync_stream(self, reference_image, reference_video, audio, num_inference_steps=None,
                       seed=0, progress=gr.Progress(track_tqdm=True), request: gr.Request = None):
        """``lipsync`` for the page, played while it generates (``OmniTalkerPipeline.stream``, a short first window):
        yields (segment, skip) per chunk of the video, then (skip, the full mp4)."""
        deadline = RequestDeadline(self.max_request_seconds)
        with _friendly_errors():
            pieces = self._stream_lipsync(reference_image, reference_video, audio, num_inference_steps, seed,
                                          progress, deadline)
            with self._result_folder(request) as folder:
                video = folder / VIDEO_NAME
                with closing(self._chunk_segments(pieces, video, deadline, progress, None)) as segments:
                    for segment in segments:
                        yield str(segment), gr.skip()
            yield gr.skip(), str(video)

    def _generate_talk(self, reference_video, reference_image, reference_audio, reference_text, text,
                       num_inference_steps, guidance_text, guidance_audio, guidance_visual, speed, seed, progress,
                       deadline: RequestDeadline):
        """The Talk tab's checks, reference and generation -> (reference, pipeline output with streamed frames)."""
        pipe, reference = self._talk_reference(reference_video, reference_image, reference_audio, reference_text,
                                               text, progress, deadline)
        progress(0.05, desc="Generating speech and motion")
        with _warnings_to_page():
            out = pipe(text, reference=reference, stream_frames=True,
                       **self._talk_settings(num_inference_steps, guidance_text, guidance_audio, guidance_visual,
                                             speed, seed, deadline))
            deadline.check()
        return reference, out

    def _stream_talk(self, reference_video, reference_image, reference_audio, reference_text, text,
                     num_inference_steps, guidance_text, guidance_audio, guidance_visual, speed, seed, progress,
                     deadline: RequestDeadline):
        """The Talk tab's checks and reference, then (reference, ``pipe.stream``'s pieces: a short first chunk)."""
        pipe, reference = self._talk_reference(reference_video, reference_image, reference_audio, reference_text,
                                               text, progress, deadline)
        progress(0.05, desc="Generating chunk 1 (about a second of speech)")
        settings = self._talk_settings(num_inference_steps, guidance_text, guidance_audio, guidance_visual, speed,
                                       seed, deadline)
        return reference, _page_warnings_around(pipe.stream(text, reference=reference,
                                                            first_chunk_seconds=DEFAULT_FIRST_CHUNK_SECONDS,
                                                            **settings))

    def _talk_reference(self, reference_video, reference_image, reference_audio, reference_text, text, progress,
                        deadline: RequestDeadline):
        """The Talk tab's checks (before any slow work) and its reference -> (pipeline, reference)."""
        progress(0, desc="Reading the reference")
        with _warnings_to_page():
            self._check_budget(text=text, reference_text=reference_text, reference_video=reference_video,
                               reference_image=reference_image, reference_audio=reference_audio)
            pipe = self.pipeline
            # what can be spoken, before the slow reference analysis (omnitalker/frontend/languages.py)
            pipe.tokenizer.check_speakable(text if isinstance(text, str) else "", "The text")
            if isinstance(reference_text, str) and reference_text.strip():
                pipe.tokenizer.check_speakable(reference_text, "The reference transcript")
            reference = self._prepare_reference(pipe, reference_video, reference_image, reference_audio,
                                                reference_text, need_voice=True)
            deadline.check()
        return pipe, reference

    def _talk_settings(self, num_inference_steps, guidance_text, guidance_audio, guidance_visual, speed, seed,
                       deadline: RequestDeadline) -> dict:
        """The page's settings as pipeline arguments (the same for the whole and the streamed call)."""
        return dict(num_inference_steps=_steps(num_inference_steps), guidance_text=_float(guidance_text),
                    guidance_audio=_float(guidance_audio), guidance_visual=_float(guidance_visual),
                    speed=float(speed), generator=_generator(seed), max_side=self.max_side, limits=self.limits,
                    callback_on_step_end=deadline)

    def _generate_lipsync(self, reference_image, reference_video, audio, num_inference_steps, seed, progress,
                          deadline: RequestDeadline):
        """The Lip-sync tab's checks, reference and generation -> the pipeline output with streamed frames."""
        pipe, reference = self._lipsync_reference(reference_image, reference_video, audio, progress, deadline)
        progress(0.05, desc="Generating motion")
        with _warnings_to_page():
            out = pipe(reference=reference, audio=audio, num_inference_steps=_steps(num_inference_steps),
                       generator=_generator(seed), max_side=self.max_side, stream_frames=True, limits=self.limits,
                       callback_on_step_end=deadline)
            deadline.check()
        return out

    def _stream_lipsync(self, reference_image, reference_video, audio, num_inference_steps, seed, progress,
                        deadline: RequestDeadline):
        """The Lip-sync tab's checks and reference, then ``pipe.stream``'s pieces (a short first window)."""
        pipe, reference = self._lipsync_reference(reference_image, reference_video, audio, progress, deadline)
        progress(0.05, desc="Generating chunk 1 (the first second)")
        return _page_warnings_around(pipe.stream(
            reference=reference, audio=audio, num_inference_steps=_steps(num_inference_steps),
            generator=_generator(seed), max_side=self.max_side, limits=self.limits, callback_on_step_end=deadline,
            first_chunk_seconds=DEFAULT_FIRST_CHUNK_SECONDS))

    def _lipsync_reference(self, reference_image, reference_video, audio, progress, deadline: RequestDeadline):
        """The Lip-sync tab's checks (before any slow work) and its reference -> (pipeline, reference)."""
        progress(0, desc="Reading the inputs")
        if audio is None:
            raise gr.Error("Add the speech to lip-sync (upload or record it).")
        with _warnings_to_page():
            self._check_budget(reference_video=reference_video, reference_image=reference_image, audio=audio)
            pipe = self.pipeline
            reference = self._prepare_reference(pipe, reference_video, reference_image, None, None,
                                                need_voice=False)
            deadline.check()
        return pipe, reference

    def end_session(self, request: gr.Request = None) -> None:
        """Remove a session's results (``demo.unload``: the page was closed)."""
        root = self.output_root
        with self._results_lock:
            shutil.rmtree(root / _session_name(request), ignore_errors=True)
            _prune(root, OUTPUT_MAX_AGE_SECONDS)

    # ------------------------------------------------------------------------------------------ helpers

    def _check_budget(self, text=None, reference_text=None, reference_video=None, reference_image=None,
                      reference_audio=None, audio=None) -> None:
        """Every input against the demo's limits, from headers only (nothing is decoded); ValueError names the
        limit and its Space variable."""
        if isinstance(text, str):
            self.limits.check_text(text, "The text")
        if isinstance(reference_text, str):
            self.limits.check_text(reference_text, "The reference transcript")
        for source, what in ((reference_video, "The reference video"), (reference_audio, "The voice sample")):
            if source is not None:
                self.limits.check_media(source, what)
        if reference_image is not None:
            self.limits.check_image(reference_image, "The photo")
        if audio is not None:
            self.limits.check_media(audio, "The speech to lip-sync", "max_audio_seconds")

    def _prepare_reference(self, pipe, video, image, voice, transcript, need_voice: bool):
        if video is not None and image is not None:
            raise gr.Error("Use either the reference video or the photo, not both: clear one of them.")
        if image is not None and voice is None and need_voice:
            # the pipeline's own message, raised before the (slow) face analysis
            raise ValueError("a photo needs a voice sample to speak text: add a voice sample (upload or record) "
                             "next to the photo, or use the Lip-sync tab to animate it with a recording")
        transcript = transcript.strip() if isinstance(transcript, str) and transcript.strip() else None
        if video is None and image is None:  # a voice sample alone: the pipeline's own checks and messages
            check_voice_text(transcript)
        else:
            check_reference_args(video, image, voice, transcript)
        key = self._references.key(video, image, voice, self.max_side)
        analysed = self._references.analysed(key, lambda: self._analyse(pipe, video, image, voice))
        if transcript is not None:
            return dataclasses.replace(analysed, text=transcript)
        return self._references.transcribed(key, lambda: pipe.transcribe_reference(dataclasses.replace(analysed)))

    def _analyse(self, pipe, video, image, voice):
        """The slow part of a reference (audio, face track), without its transcript (``ReferenceCache``)."""
        return pipe.prepare_reference(reference_video=video, reference_image=image, reference_audio=voice,
                                      max_side=self.max_side, limits=self.limits, transcribe=False)

    def prefetch_reference(self, reference_video=None, reference_image=None, reference_audio=None) -> None:
        """Analyse an upload as soon as it arrives (the page's upload events), so a click finds it done: the face
        track is most of the time before the first chunk (issue 34). Errors are left for the click to report."""
        if (reference_video is None) == (reference_image is None) or self._pipeline is None:
            return  # nothing to analyse yet, or both (the click says which to clear); no loading from here
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the click's analysis (cached) shows them
                self._check_budget(reference_video=reference_video, reference_image=reference_image,
                                   reference_audio=reference_audio)
                key = self._references.key(reference_video, reference_image, reference_audio, self.max_side)
                self._references.analysed(key, lambda: self._analyse(self._pipeline, reference_video,
                                                                      reference_image, reference_audio))
        except Exception as error:  # noqa: BLE001 - the click reports it with the page's wording
            logger.debug(f"reference prefetch skipped: {error}")

    def warm_up(self, references: list[dict]) -> None:
        """Load the pipeline and analyse `references` (each ``prefetch_reference``'s keyword arguments, e.g. the
        page's examples) into the reference cache, in the background at launch: the first visitor who picks an
        example finds its face track done and the face tracker loaded (the first analysis of the example clip took
        1.5 s, a later one 0.5 s). Errors are left for the requests to report."""
        try:
            self.pipeline  # noqa: B018 - loads it
        except Exception as error:  # noqa: BLE001 - a request reports it with the page's wording
            logger.debug(f"warm-up skipped: {error}")
            return
        for reference in references:
            self.prefetch_reference(**reference)

    @contextmanager
    def _result_folder(self, request):
        """A fresh folder for one request's files in its session's folder; removed if writing fails, else the
        session's older results beyond RESULTS_PER_SESSION are removed."""
        root = self.output_root
        session = root / _session_name(request)
        with self._results_lock:
            session.mkdir(parents=True, exist_ok=True)
            folder = Path(tempfile.mkdtemp(prefix=f"request-{time.time_ns()}-", dir=session))
        try:
            yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._results_lock:
            results = sorted(session.glob("request-*"), key=lambda path: path.name)
            for old in results[: max(0, len(results) - RESULTS_PER_SESSION)]:
                shutil.rmtree(old, ignore_errors=True)
            _prune(root, OUTPUT_MAX_AGE_SECONDS)

    @staticmethod
    def _write_video(out, folder: Path) -> Path:
        from omnitalker.io.export import export_to_video

        path = folder / VIDEO_NAME
        export_to_video(out.frames[0], path, fps=int(out.fps), audio=out.audio[0], sample_rate=out.sample_rate)
        return path

    @staticmethod
    def _write_speech(out, folder: Path) -> Path:
        path = folder / SPEECH_NAME
        _write_wav(path, out.audio[0], out.sample_rate)
        return path

    @staticmethod
    def _chunk_segments(pieces, video: Path, deadline: RequestDeadline, progress, collected):
        """Each streamed piece encoded as it arrives (``omnitalker.ui.streaming.write_chunk_segments``), the full
        mp4 written alongside; progress names the chunk; `collected` (a ``StreamedResult``) keeps the sound."""
        from omnitalker.ui.streaming import write_chunk_segments

        for index, (segment, piece) in enumerate(write_chunk_segments(pieces, video, check=deadline.check)):
            if collected is not None:
                collected.add(piece)
            ready = piece.start + len(piece.audio) / piece.sample_rate
            desc = "Done: writing the mp4" if piece.is_last else \
                f"Chunk {index + 1} playing ({ready:.1f} s ready); generating chunk {index + 2}"
            progress((index + 1, None), desc=desc, unit="chunks")
            yield segment
        deadline.check()


class ReferenceCache:
    """Analysed references (audio and face track, no transcript) by the content of their files and the output size,
    the newest REFERENCE_CACHE_SIZE kept: a click after the upload's prefetch, a second click with the same clip, or
    an example, skips the analysis. One analysis at a time: a click waits for the prefetch of its own upload. The
    speech recogniser's transcript of each is kept too (the transcript box left empty)."""

    def __init__(self, size: int = REFERENCE_CACHE_SIZE):
        self.size = size
        self._entries: OrderedDict = OrderedDict()  # key -> {"analysed": reference, "transcribed": reference}
        self._lock = threading.Lock()

    @staticmethod
    def key(video, image, voice, max_side) -> tuple | None:
        """The files' contents and the output size; None (not cached) for inputs that are not files."""
        digests = []
        for source in (video, image, voice):
            if source is not None and not (isinstance(source, (str, os.PathLike)) and Path(source).is_file()):
                return None
            digests.append(None if source is None else _digest(Path(source)))
        return (*digests, max_side)

    def analysed(self, key, analyse):
        return self._get(key, "analysed", analyse)

    def transcribed(self, key, transcribe):
        return self._get(key, "transcribed", transcribe)

    def _get(self, key, kind: str, make):
        if key is None:
            return make()
        with self._lock:
            entry = self._entries.get(key, {})
            if kind not in entry:
                entry[kind] = make()
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return entry[kind]


def _digest(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class StreamedResult:
    """The streamed pieces of one Talk request joined back into what ``talk`` shows: the sound for the wav, the
    last piece's mel and codes for the plots (``OmniTalkerChunk``), the reference transcript."""

    def __init__(self, reference):
        self.reference, self.audio, self.last = reference, [], None

    def add(self, piece) -> None:
        self.audio.append(piece.audio)
        if piece.is_last:
            self.last = piece

    def output(self):
        from omnitalker.pipeline.decode import OmniTalkerPipelineOutput

        if self.last is None:
            raise RuntimeError("the stream ended before its last piece")
        return OmniTalkerPipelineOutput(audio=[np.concatenate(self.audio)], sample_rate=self.last.sample_rate,
                                        frames=None, fps=self.last.fps, mel=[self.last.mel],
                                        visual_codes=[self.last.visual_codes], reference_text=self.reference.text)


def _page_warnings_around(pieces):
    """A stream's pieces with the UserWarnings raised while each is made shown on the page (``_warnings_to_page``)."""
    with _warnings_to_page():
        yield from pieces


@contextmanager
def _warnings_to_page():
    """The request's UserWarnings (e.g. "longer than 10 s: only its first 9.87 s are used", emoji left out)
    shown on the page once each, as gr.Warning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            shown = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning))
            for message in shown:
                gr.Warning(SERVER_PATH.sub(r"\1", message))


@contextmanager
def _friendly_errors():
    """ValueError and RequestTooLong -> gr.Error(message); gr.Error passes; anything else -> logged + a generic
    gr.Error."""
    try:
        yield
    except gr.Error:
        raise
    except RequestTooLong as error:
        raise gr.Error(str(error)) from None
    except ValueError as error:
        raise gr.Error(page_message(str(error))) from error
    except Exception:
        logger.exception("demo request failed")
        raise gr.Error(GENERIC_ERROR) from None


def page_message(message: str) -> str:
    """A pipeline message as the page says it: inputs by their labels on the page, no server paths."""
    message = SERVER_PATH.sub(r"\1", message)
    named = ARGUMENT_AT_START.match(message)
    if named and named.group(1) in PAGE_LABELS:
        value = f" ({named.group(2)})" if named.group(2) else ""
        message = PAGE_LABELS[named.group(1)] + value + message[named.end():]
    for argument, hint in PAGE_HINTS.items():
        message = message.replace(argument, hint)
    return message


def _int(value, name: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(float(value))


def _steps(value) -> int | None:
    """The steps box: None (an API call without it) means the pipeline's own default."""
    return None if value is None else _int(value, "steps")


def _float(value) -> float | None:
    return None if value is None else float(value)


def _generator(seed) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(_int(seed, "seed"))


def _write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    import soundfile

    partial = path.with_name("." + path.name + ".part")
    soundfile.write(partial, np.asarray(wave, np.float32), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(partial, path)


def _session_name(request) -> str:
    """A folder name for the request's gradio session (LOCAL_SESSION without one)."""
    session = getattr(request, "session_hash", None) if request is not None else None
    return SESSION_NAME.sub("_", session)[:MAX_SESSION_NAME] if session else LOCAL_SESSION


def _prune(root: Path, max_age: float) -> None:
    """Remove result folders older than `max_age` seconds, and session folders left empty."""
    cutoff = time.time() - max_age
    for folder in (*root.glob("request-*"), *root.glob("*/request-*")):
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # removed by a concurrent request
            pass
    for session in root.glob("*"):
        try:
            if session.is_dir() and not session.name.startswith("request-") and not any(session.iterdir()):
                session.rmdir()
        except OSError:  # a request is writing into it right now
            pass


def plot_pose(reference, out):
    """Reference vs generated yaw/pitch/roll traces (paper Fig. 2)."""
    from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
    from omnitalker.frontend.face.plots import plot_pose_traces

    return plot_pose_traces(reference.codes.numpy(), out.visual_codes[0], fps=MEL_FRAME_RATE,
                            generated_fps=out.visual_codes_fps)


def plot_mel(reference, out):
    """Log-mel spectrograms of the reference prompt and of the generated speech."""
    from matplotlib.figure import Figure

    from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE

    figure = Figure(figsize=(8.0, 2.6), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for axis, (title, mel) in zip(axes, (("reference", reference.mel.numpy().T), ("generated", out.mel[0])),
                                  strict=True):
        axis.imshow(mel, origin="lower", aspect="auto", cmap="magma",
                    extent=(0, mel.shape[1] / MEL_FRAME_RATE, 0, mel.shape[0]))
        axis.set_title(f"{title} log-mel")
        axis.set_xlabel("time (s)")
    axes[0].set_ylabel("mel bin")
    return figure
