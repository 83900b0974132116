"""The Talk and Lip-sync handlers of the Gradio demo: inputs from the page -> OmniTalkerPipeline -> files.

    handlers = DemoHandlers(pipe)                       # or a folder / Hub id, loaded on first use
    video, audio, pose_plot, mel_plot, transcript = handlers.talk("ref.mp4", None, None, "", "Nice to meet you.")
    video = handlers.lipsync("face.png", None, "speech.wav")

Errors: the pipeline's ValueErrors (bad or missing input) reach the page as gr.Error with their message
intact; anything else is logged with its traceback on the server and shown as a short generic gr.Error.
Outputs go to a fresh folder per request (atomic mp4 writes by export_to_video); folders older than
OUTPUT_MAX_AGE_SECONDS are removed as new requests come in.

The reference transcript is optional: when the box is empty the pipeline's speech recognizer (the bundled
offline Whisper tiny.en, English) transcribes the reference, and ``talk`` returns the transcript it used so
the page can show it in the box, editable for the next run.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import torch

logger = logging.getLogger(__name__)

MAX_UPLOAD_SECONDS = 60.0  # longer uploads are refused before any work (the reference uses only 1-10 s)
MAX_DRIVING_SECONDS = 30.0  # lip-sync speech; each second costs generation time on a shared demo
OUTPUT_MAX_AGE_SECONDS = 3600
GENERIC_ERROR = "Something went wrong while generating. Please try again; the details are in the server log."
SERVER_PATH = re.compile(r"(?:/[^/\s'\"]+)+/([^/\s'\"]+)")  # an absolute path on the server -> its file name
NO_WEIGHTS = ("The demo weights are not available ({source}). Build or download them (see weights/README.md) "
              "or start the demo with a pipeline folder or Hub id.")


def media_seconds(path: str | os.PathLike) -> float | None:
    """Duration of an audio/video file from its container, or None if it cannot be read (the pipeline then
    reports the problem with its own message)."""
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if container.duration is not None:
                return container.duration / av.time_base
            stream = (container.streams.audio or container.streams.video or [None])[0]
            if stream is not None and stream.duration is not None:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError, ValueError):
        return None
    return None


def check_seconds(path: str | None, what: str, limit: float) -> None:
    seconds = None if path is None else media_seconds(path)
    if seconds is not None and seconds > limit:
        raise gr.Error(f"The {what} is {seconds:.0f} s long; upload at most {limit:g} s.")


class DemoHandlers:
    """Holds the pipeline (an instance, or a folder / Hub id loaded on first use) and serves the two tabs.

    Args:
        pipeline: an ``OmniTalkerPipeline``, or a local folder / Hub repo id to load lazily.
        output_root: where per-request output folders go (default: a folder in the system temp dir).
    """

    def __init__(self, pipeline, output_root: str | os.PathLike | None = None):
        self._pipeline = None if isinstance(pipeline, (str, os.PathLike)) else pipeline
        self._source = pipeline if isinstance(pipeline, (str, os.PathLike)) else None
        self._load_lock = threading.Lock()
        self.output_root = Path(output_root or Path(tempfile.gettempdir()) / "omnitalker-demo")

    @property
    def pipeline(self):
        with self._load_lock:
            if self._pipeline is None:
                from omnitalker.pipeline import OmniTalkerPipeline

                source = Path(self._source)
                if source.is_absolute() or source.exists() or os.fspath(self._source).count("/") != 1:
                    if not (source / "model_index.json").is_file():
                        raise gr.Error(NO_WEIGHTS.format(source=self._source))
                self._pipeline = OmniTalkerPipeline.from_pretrained(os.fspath(self._source))
            return self._pipeline

    # ------------------------------------------------------------------------------------------ tabs

    def talk(self, reference_video, reference_image, reference_audio, reference_text, text,
             num_inference_steps=16, guidance_text=2.0, guidance_audio=0.5, guidance_visual=0.5, speed=1.0,
             seed=0, progress=gr.Progress(track_tqdm=True)):
        """Text + a reference (video, or photo + voice) and its transcript (empty: recognised) -> (mp4, wav,
        pose plot, mel plot, the reference transcript used)."""
        progress(0, desc="Reading the reference")
        check_seconds(reference_video, "reference video", MAX_UPLOAD_SECONDS)
        check_seconds(reference_audio, "voice sample", MAX_UPLOAD_SECONDS)
        with _friendly_errors():
            pipe = self.pipeline
            reference = self._prepare_reference(pipe, reference_video, reference_image, reference_audio,
                                                reference_text, need_voice=True)
            progress(0.05, desc="Generating speech and motion")
            out = pipe(text, reference=reference, num_inference_steps=_int(num_inference_steps, "steps"),
                       guidance_text=float(guidance_text), guidance_audio=float(guidance_audio),
                       guidance_visual=float(guidance_visual), speed=float(speed), generator=_generator(seed))
            progress(0.95, desc="Encoding the video")
            folder = self._request_folder()
            video = self._write_video(out, folder)
            audio = folder / "speech.wav"
            _write_wav(audio, out.audio[0], out.sample_rate)
            return (str(video), str(audio), plot_pose(reference, out), plot_mel(reference, out),
                    out.reference_text or "")

    def lipsync(self, reference_image, reference_video, audio, num_inference_steps=16, seed=0,
                progress=gr.Progress(track_tqdm=True)):
        """A photo or a clip + driving speech -> mp4 of the face speaking it (audio-driven mode)."""
        progress(0, desc="Reading the inputs")
        check_seconds(reference_video, "reference video", MAX_UPLOAD_SECONDS)
        if audio is None:
            raise gr.Error("Add the speech to lip-sync (upload or record it).")
        check_seconds(audio, "driving speech", MAX_DRIVING_SECONDS)
        with _friendly_errors():
            pipe = self.pipeline
            reference = self._prepare_reference(pipe, reference_video, reference_image, None, None,
                                                need_voice=False)
            progress(0.05, desc="Generating motion")
            out = pipe(reference=reference, audio=audio, num_inference_steps=_int(num_inference_steps, "steps"),
                       generator=_generator(seed))
            progress(0.95, desc="Encoding the video")
            return str(self._write_video(out, self._request_folder()))

    # ------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def _prepare_reference(pipe, video, image, voice, transcript, need_voice: bool):
        if video is not None and image is not None:
            raise gr.Error("Use either the reference video or the photo, not both: clear one of them.")
        if image is not None and voice is None and need_voice:
            # the pipeline's own message, raised before the (slow) face analysis
            raise ValueError("a photo needs a voice sample to speak text: add a voice sample (upload or record) "
                             "next to the photo, or use the Lip-sync tab to animate it with a recording")
        transcript = transcript.strip() if isinstance(transcript, str) and transcript.strip() else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reference = pipe.prepare_reference(reference_video=video, reference_image=image,
                                               reference_audio=voice, reference_text=transcript)
        for warning in caught:  # e.g. "longer than 10 s: only its first 9.87 s are used"
            if issubclass(warning.category, UserWarning):
                gr.Warning(str(warning.message))
        return reference

    def _request_folder(self) -> Path:
        self.output_root.mkdir(parents=True, exist_ok=True)
        _prune(self.output_root, OUTPUT_MAX_AGE_SECONDS)
        return Path(tempfile.mkdtemp(prefix="request-", dir=self.output_root))

    @staticmethod
    def _write_video(out, folder: Path) -> Path:
        from omnitalker.io.video import export_to_video

        path = folder / "omnitalker.mp4"
        export_to_video(out.frames[0], path, fps=int(out.fps), audio=out.audio[0], sample_rate=out.sample_rate)
        return path


@contextmanager
def _friendly_errors():
    """ValueError -> gr.Error(message); gr.Error passes; anything else -> logged + a generic gr.Error."""
    try:
        yield
    except gr.Error:
        raise
    except ValueError as error:
        raise gr.Error(SERVER_PATH.sub(r"\1", str(error))) from error  # no server paths in the page
    except Exception:
        logger.exception("demo request failed")
        raise gr.Error(GENERIC_ERROR) from None


def _int(value, name: str) -> int:
    if value is None or float(value) != int(float(value)):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(float(value))


def _generator(seed) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(_int(seed, "seed"))


def _write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    import soundfile

    partial = path.with_name("." + path.name + ".part")
    soundfile.write(partial, np.asarray(wave, np.float32), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(partial, path)


def _prune(root: Path, max_age: float) -> None:
    cutoff = time.time() - max_age
    for folder in root.glob("request-*"):
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # removed by a concurrent request
            pass


def plot_pose(reference, out):
    """Reference vs generated yaw/pitch/roll traces (paper Fig. 2)."""
    from omnitalker.audio import FRAME_RATE as MEL_FRAME_RATE
    from omnitalker.face.plots import plot_pose_traces

    return plot_pose_traces(reference.codes.numpy(), out.visual_codes[0], fps=MEL_FRAME_RATE,
                            generated_fps=out.visual_codes_fps)


def plot_mel(reference, out):
    """Log-mel spectrograms of the reference prompt and of the generated speech."""
    from matplotlib.figure import Figure

    from omnitalker.audio import FRAME_RATE as MEL_FRAME_RATE

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
