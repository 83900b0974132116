"""Write talking-head videos: H.264 + AAC in an mp4, through PyAV (no ffmpeg binary needed).

    from omnitalker.io import export_to_video, read_video
    export_to_video(frames, "out.mp4", fps=25, audio=wave, sample_rate=24000)
    clip = read_video("out.mp4")          # clip.frames (T, H, W, 3) uint8, clip.audio (N,) float32 (video.py)

Conventions of ``export_to_video``:
- video: H.264 (libx264), yuv420p, BT.709 colours (tagged), constant frame rate, ``+faststart`` so a
  browser can start playing before the whole file has arrived. yuv420p needs even sizes, so a frame with
  an odd height or width gets one row/column of edge pixels added at the bottom/right (nothing is lost).
- audio: AAC, mono. Its length is fitted to the video: trimmed, or padded with silence, to exactly
  ``T / fps`` seconds, so the two streams end together (within one frame; AAC packets are 1024 samples).
- the file appears atomically: it is written to a hidden temporary file in the destination folder and
  renamed over ``path`` only when complete, so a failure never leaves a half-written video behind.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import av
import numpy as np

from omnitalker.io.audio import SAMPLE_RATE, as_mono_array
from omnitalker.io.video import PIXEL_FORMAT, RGBConverter

DEFAULT_FPS = 25  # the rendered video's frame rate (the pipeline's video_fps default)
DEFAULT_SAMPLE_RATE = SAMPLE_RATE
DEFAULT_CRF = 18  # libx264 constant-quality factor: 0 lossless, 18 visually lossless, 23 x264's default
# x264 speed preset: "veryfast" costs ~1/2.5 of "medium"'s CPU for ~1.4 dB less PSNR at crf 18 (40.9 -> 39.5 dB
# on a rendered 256 px clip, a smaller file); encoding was a fifth of the CPU time of a talking clip
# (BENCHMARKS.md, "Pipeline end to end")
DEFAULT_PRESET = "veryfast"
DEFAULT_AUDIO_BITRATE = 128_000  # bits/s; transparent for 24 kHz mono speech
# H.264 encoders in order of preference; mpeg4 (MPEG-4 part 2) is the last resort if FFmpeg lacks H.264
VIDEO_ENCODERS = ("libx264", "h264", "libopenh264", "mpeg4")
AUDIO_ENCODER = "aac"
# ffmpeg colour tags (AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVColorRange)
BT709 = 1
MPEG_RANGE = 1  # "tv"/limited range, what yuv420p H.264 uses
CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".ts": "mpegts"}
FASTSTART_FORMATS = ("mp4", "mov")  # the index up front, so a browser can play before the file has arrived


def _pick_video_encoder() -> str:
    """First available encoder of VIDEO_ENCODERS; warns if it is not H.264."""
    for name in VIDEO_ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises UnknownCodecError (a ValueError subclass in some versions)
            continue
        if name == "mpeg4":
            warnings.warn(
                "PyAV's FFmpeg has no H.264 encoder; writing MPEG-4 part 2 video instead, which some "
                "browsers cannot play. Install a PyAV wheel built with libx264.",
                stacklevel=3,
            )
        return name
    raise RuntimeError(f"PyAV's FFmpeg has none of the video encoders {VIDEO_ENCODERS}.")


def _as_frame(frame: Any, index: int) -> np.ndarray:
    """One frame as (H, W, 3) uint8 RGB; accepts numpy arrays, torch tensors and PIL images."""
    if hasattr(frame, "mode") and hasattr(frame, "convert"):  # PIL.Image
        frame = np.asarray(frame.convert("RGB"))
    elif hasattr(frame, "detach"):  # torch.Tensor
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(
            f"frame {index} has shape {frame.shape}; expected (H, W, 3) RGB. Convert grayscale/RGBA "
            "frames to RGB first (e.g. PIL's image.convert('RGB'))."
        )
    if frame.dtype != np.uint8:
        raise ValueError(
            f"frame {index} has dtype {frame.dtype}; expected uint8 in [0, 255]. Convert float images "
            "with (frame.clip(0, 1) * 255).round().astype(np.uint8)."
        )
    return frame


def _iter_frames(frames: Any) -> Iterator[np.ndarray]:
    if isinstance(frames, np.ndarray) or hasattr(frames, "detach"):
        if frames.ndim != 4:
            raise ValueError(f"frames has shape {tuple(frames.shape)}; expected (T, H, W, 3).")
        if frames.shape[0] == 0:
            raise ValueError("frames is empty: there is nothing to export.")
    elif not isinstance(frames, Iterable):
        raise ValueError(f"frames must be an array (T, H, W, 3) or an iterable of frames, got {type(frames)}.")
    for index, frame in enumerate(frames):
        yield _as_frame(frame, index)


def _prepare_audio(audio: Any, sample_rate: int) -> np.ndarray:
    """Mono float32 audio in [-1, 1]; values outside are clipped (AAC cannot carry them)."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
    return np.clip(as_mono_array(audio, np.float32), -1.0, 1.0)


def _even(size: int) -> int:
    return size + (size % 2)


def _pad_to_even(frame: np.ndarray) -> np.ndarray:
    height, width = frame.shape[:2]
    if height % 2 == 0 and width % 2 == 0:
        return frame
    return np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")


def export_to_video(
    frames: Any,
    path: str | os.PathLike,
    fps: int = DEFAULT_FPS,
    audio: Any = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    crf: int = DEFAULT_CRF,
    preset: str = DEFAULT_PRESET,
    audio_bitrate: int = DEFAULT_AUDIO_BITRATE,
) -> str:
    """Encode RGB frames (and optional mono audio) to an H.264 + AAC mp4 at ``path``; returns the path.

    frames: (T, H, W, 3) uint8 array/tensor, or any iterable (list, generator) of (H, W, 3) uint8 frames,
        numpy arrays or PIL images; all frames must have the same size. Generators are streamed.
    audio: (N,) or (1, N) float waveform in [-1, 1] at ``sample_rate``; fitted to T / fps seconds.
    crf: x264 quality (lower = better, bigger); ignored by the mpeg4 fallback, which uses a bitrate.
    """
    _check_path(path)
    wave = None if audio is None else _prepare_audio(audio, sample_rate)
    frame_iter = _iter_frames(frames)
    first = next(frame_iter, None)
    if first is None:
        raise ValueError("frames is empty: there is nothing to export.")
    height, width = first.shape[:2]
    with VideoWriter(path, width, height, fps, None if wave is None else sample_rate, crf, preset,
                     audio_bitrate) as writer:
        writer.write(_chain(first, frame_iter), wave)
    return os.fspath(path)


def _check_path(path) -> str:
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in CONTAINER_FORMATS:
        raise ValueError(f"unknown video extension {extension!r} in {os.fspath(path)!r}; use one of "
                         f"{sorted(CONTAINER_FORMATS)}.")
    return CONTAINER_FORMATS[extension]


class VideoWriter:
    """An H.264 (+ AAC) video written as its frames and sound arrive: ``export_to_video``'s encoder, kept open.

        with VideoWriter("out.mp4", width, height, fps=25, sample_rate=24000) as writer:
            for frames, wave in chunks:          # (n, H, W, 3) uint8 and the sound of those n frames
                writer.write(frames, wave)
        # the file appears complete at the end of the block; after an exception nothing is left

    Sound is muxed frame by frame: each frame takes the samples up to its end time; sound given beyond the last
    frame is dropped at ``close`` and missing sound is silence, so both streams end together (as in
    ``export_to_video``). ``.ts`` (MPEG-TS) writes stand-alone segments for streaming players.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, fps: int = DEFAULT_FPS,
                 sample_rate: int | None = DEFAULT_SAMPLE_RATE, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                 audio_bitrate: int = DEFAULT_AUDIO_BITRATE):
        container_format = _check_path(path)
        if fps <= 0 or int(fps) != fps:
            raise ValueError(f"fps must be a positive integer, got {fps}.")
        if crf < 0:
            raise ValueError(f"crf must be >= 0, got {crf}.")
        if sample_rate is not None and sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
        if sample_rate is not None and audio_bitrate <= 0:
            raise ValueError(f"audio_bitrate must be positive, got {audio_bitrate}.")
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(folder):
            raise ValueError(f"output folder {folder!r} does not exist; create it first.")
        self.width, self.height, self.fps, self.sample_rate = int(width), int(height), int(fps), sample_rate
        fd, self._tmp_path = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(self.path) + ".",
                                              suffix=".part")
        os.close(fd)
        self.frames_written = 0
        self._audio = np.zeros(0, np.float32)  # sound not yet muxed
        self._samples_written = 0
        try:
            self._open(container_format, crf, preset, audio_bitrate)
        except BaseException:
            os.remove(self._tmp_path)
            raise

    def _open(self, container_format: str, crf: int, preset: str, audio_bitrate: int) -> None:
        encoder = _pick_video_encoder()
        options = {"crf": str(crf), "preset": preset} if encoder != "mpeg4" else {}
        muxer = {"movflags": "+faststart"} if container_format in FASTSTART_FORMATS else {}
        self._container = av.open(self._tmp_path, mode="w", format=container_format, options=muxer)
        self._video = self._container.add_stream(encoder, rate=self.fps, options=options)
        self._video.width, self._video.height = _even(self.width), _even(self.height)
        self._video.pix_fmt = PIXEL_FORMAT
        if encoder == "mpeg4":
            self._video.bit_rate = 8 * self.width * self.height * self.fps // 10  # ~0.8 bits/pixel: ~x264 crf 18
        context = self._video.codec_context
        context.thread_type = "AUTO"  # the encoder's own threads (no GIL): they overlap the frames being made
        context.colorspace = context.color_primaries = context.color_trc = BT709
        context.color_range = MPEG_RANGE
        self._sound = None
        if self.sample_rate is not None:
            self._sound = self._container.add_stream(AUDIO_ENCODER, rate=self.sample_rate, layout="mono")
            self._sound.bit_rate = audio_bitrate
        self._converter = RGBConverter()

    @property
    def seconds_written(self) -> float:
        return self.frames_written / self.fps

    def write(self, frames: Any, audio: Any = None) -> None:
        """Append frames ((n, H, W, 3) uint8 or an iterable of frames) and, with a sample rate, their sound."""
        if audio is not None:
            if self._sound is None:
                raise ValueError("this VideoWriter has no sound track: open it with a sample_rate to write audio.")
            self._audio = np.concatenate([self._audio, _prepare_audio(audio, self.sample_rate)])
        consumed = 0
        for frame in _iter_frames(frames):
            if frame.shape[:2] != (self.height, self.width):
                raise ValueError(f"frame {self.frames_written} is {frame.shape[:2]} but the video is "
                                 f"{(self.height, self.width)}; all frames must match.")
            picture = self._converter.to_encoder(_pad_to_even(frame))
            picture.pts = self.frames_written
            self._container.mux(self._video.encode(picture))
            self.frames_written += 1
            if self._sound is not None:
                # interleave: sound up to the end of this frame, silence where none was given
                end = self.frames_written * self.sample_rate // self.fps
                chunk = np.zeros(end - self._samples_written, dtype=np.float32)
                available = self._audio[consumed : consumed + len(chunk)]
                chunk[: len(available)] = available
                consumed += len(available)
                sound = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
                sound.sample_rate, sound.pts = self.sample_rate, self._samples_written
                self._container.mux(self._sound.encode(sound))
                self._samples_written = end
        self._audio = self._audio[consumed:]

    def close(self) -> str:
        """Flush the encoders and put the finished file at ``path`` (atomically); returns the path."""
        try:
            if self.frames_written == 0:
                raise ValueError("no frames were written: there is nothing to export.")
            self._container.mux(self._video.encode())
            if self._sound is not None:
                self._container.mux(self._sound.encode())
            self._container.close()
            os.replace(self._tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file (nothing appears at ``path``)."""
        try:
            self._container.close()
        except Exception:  # a container that failed mid-write may not close cleanly; the file goes anyway
            pass
        if os.path.exists(self._tmp_path):
            os.remove(self._tmp_path)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
