"""Reading videos with PyAV: a whole file, the used window of a reference clip, a stream of frames; header facts.

    from omnitalker.io import read_video
    clip = read_video("talk.mp4")      # frames (T, H, W, 3) uint8 RGB, fps, timestamps, audio (N,) float32
    frames, fps = read_video_window("ref.mp4", 2.0, 7.5, max_side=1024)  # only those seconds, scaled at once
    for time, frame in iter_frames("talk.mov", max_side=512, notes=notes):  # an hour of video, a frame at a time
        ...
    media_info("clip.mp4")             # (seconds, (width, height)) from the container, nothing decoded

Frames are decoded with their own timestamps (presentation times), so any rate (25, 29.97, 22.13 ...) and
variable frame rates come through as recorded. A rotation in the container's display matrix (phone videos)
is applied so faces are upright. Every reader converts through one swscale context (``RGBConverter``).

Run ``python -m omnitalker.io.video in.mp4`` to print what ``read_video`` sees in a file.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Colorspace, VideoReformatter

from omnitalker.io.audio import REENCODE_HINT
from omnitalker.io.image import fit_within

PIXEL_FORMAT = "yuv420p"  # the H.264 profile every browser and phone decodes
RIGHT_ANGLE = 90
VFR_TOLERANCE = 0.1  # frame intervals varying more than 10 % around the median: variable frame rate
RATE_TOLERANCE = 1e-6  # a measured mean rate this close to the declared one is the declared one
MAX_WINDOW_FPS = 60.0  # read_video_window thins faster clips (slow motion) to this; codes are 30 fps anyway
MIN_FRAME_INTERVAL_SHARE = 0.9  # a frame is skipped when closer than this share of 1 / MAX_WINDOW_FPS
SEEK_MARGIN_SECONDS = 1.0  # seek this far before the window (to a keyframe at or before it), then decode on


@dataclass
class VideoData:
    """What ``read_video`` returns.

    frames: (T, H, W, 3) uint8 RGB. fps: mean frame rate. timestamps: (T,) seconds from the first frame.
    audio: (N,) float32 mono in [-1, 1], or None (no audio stream, or not asked for). sample_rate: of
    ``audio``. rotation: degrees counter-clockwise applied from the display matrix. warnings: problems that
    did not stop decoding (rotation applied, variable frame rate, a corrupt tail).
    """

    frames: np.ndarray
    fps: float
    timestamps: np.ndarray
    audio: np.ndarray | None = None
    sample_rate: int | None = None
    rotation: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Video duration in seconds (T / fps)."""
        return len(self.frames) / self.fps

    @property
    def audio_duration(self) -> float | None:
        if self.audio is None or self.sample_rate is None:
            return None
        return len(self.audio) / self.sample_rate

    @property
    def variable_frame_rate(self) -> bool:
        if len(self.timestamps) < 3:
            return False
        intervals = np.diff(self.timestamps)
        return bool(np.abs(intervals - np.median(intervals)).max() > VFR_TOLERANCE * np.median(intervals))


class RGBConverter:
    """Converts decoded frames to RGB arrays (optionally resized) and RGB arrays to the encoder's format, through
    ONE swscale context. ``frame.reformat`` / ``frame.to_ndarray(format=...)`` build a fresh context for every
    frame (PyAV keeps the context on the frame), which cost ~5 ms per 256² frame here, more than x264's encode;
    a shared ``VideoReformatter`` does the same conversion bit for bit ~8x faster (measured: 125 frames 0.61 s
    vs 0.08 s)."""

    def __init__(self):
        self._reformatter = VideoReformatter()

    def to_rgb(self, frame: av.VideoFrame, size: tuple[int, int] | None = None,
               interpolation: str | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB of a decoded frame, resized to ``size`` = (width, height) when given."""
        width, height = size if size is not None else (frame.width, frame.height)
        if frame.format.name == "rgb24" and (width, height) == (frame.width, frame.height):
            return frame.to_ndarray()
        return self._reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                          interpolation=interpolation).to_ndarray()

    def to_encoder(self, pixels: np.ndarray) -> av.VideoFrame:
        """A BT.709 ``PIXEL_FORMAT`` frame of an (H, W, 3) uint8 RGB array (even sides)."""
        picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        return self._reformatter.reformat(picture, format=PIXEL_FORMAT, dst_colorspace=Colorspace.ITU709)


def rotate_upright(frame: np.ndarray, degrees_ccw: int) -> np.ndarray:
    """Apply a container's display rotation (degrees counter-clockwise, nearest multiple of 90)."""
    return np.ascontiguousarray(np.rot90(frame, k=(degrees_ccw // RIGHT_ANGLE) % 4))


def _rotation(frame: av.VideoFrame) -> int:
    return int(getattr(frame, "rotation", 0) or 0)


@contextlib.contextmanager
def _open_video(path: str | os.PathLike, what: str | None = None):
    """(container, first video stream) of ``path``, closed on exit; ValueError if it is not a video.
    `what` (an argument's name) starts the error messages."""
    prefix = f"{what}: " if what else ""
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"{prefix}could not read {path} as a video ({error}). Use a video file such as .mp4, "
                         ".mov, .mkv, .webm") from error
    with container:
        if not container.streams.video:
            raise ValueError(f"{prefix}{path} has no video stream (audio only?): use a video of the speaker, or a "
                             "photo with this recording as the voice sample")
        yield container, container.streams.video[0]


# ------------------------------------------------------------------------------------------------ whole files


def read_video(path: str | os.PathLike, sample_rate: int | None = None, max_seconds: float | None = None,
               audio: bool = True) -> VideoData:
    """Decode every video frame of `path` (up to `max_seconds`) as upright RGB with its timestamp, and the first
    audio stream as mono float32 (resampled to `sample_rate`; None keeps the file's rate; `audio=False` skips it).

    ``fps`` is the mean rate of the timestamps (the declared rate when they agree). Audio is trimmed to the
    stream's declared duration (AAC decoders return the encoder's padding at the end as extra samples).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such video file: {path} (it does not exist)")
    if sample_rate is not None and sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive or None, got {sample_rate}.")
    notes: list[str] = []
    with _open_video(path) as (container, stream):
        stream.thread_type = "AUTO"
        declared = float(stream.average_rate) if stream.average_rate else 0.0
        frames, times, rotation = [], [], 0
        converter = RGBConverter()
        try:
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else len(frames) / float(stream.average_rate or 1)
                if max_seconds is not None and times and time - times[0] >= max_seconds:
                    break
                if not frames:
                    rotation = _rotation(frame)
                pixels = converter.to_rgb(frame)
                frames.append(rotate_upright(pixels, rotation) if rotation % 360 else pixels)
                times.append(float(time))
        except av.error.FFmpegError as error:
            if not frames:
                raise ValueError(f"could not decode any frame of {path} ({error}). {REENCODE_HINT}") from error
            notes.append(f"decoding stopped at frame {len(frames)} with an error ({error}); using the frames read")
    if not frames:
        raise ValueError(f"{path} contains no video frames: use a video of the speaker")
    if rotation % RIGHT_ANGLE:
        notes.append(f"display rotation {rotation} deg is not a multiple of 90; applied the nearest")
    elif rotation % 360:
        notes.append(f"applied the container's display rotation ({rotation} deg counter-clockwise)")

    timestamps = np.asarray(times, dtype=np.float64)
    order = np.argsort(timestamps, kind="stable")  # B-frames may come out of presentation order
    frames = [frames[i] for i in order]
    timestamps = timestamps[order] - timestamps[order[0]]
    if len(frames) > 1 and np.any(np.diff(timestamps) <= 0):
        keep = np.concatenate([[True], np.diff(timestamps) > 0])  # drop duplicated timestamps
        frames = [f for f, k in zip(frames, keep, strict=True) if k]
        timestamps = timestamps[keep]
    if len(frames) > 1:
        fps = (len(frames) - 1) / float(timestamps[-1])
        if declared > 0 and abs(fps - declared) <= RATE_TOLERANCE * declared:
            fps = declared
    else:
        fps = declared
        if fps <= 0:
            raise ValueError(f"{path} has a single frame and no frame rate")
    wave, rate = _read_audio(path, sample_rate) if audio else (None, None)
    result = VideoData(np.stack(frames), fps, timestamps, wave, rate, rotation, notes)
    if result.variable_frame_rate:
        result.warnings.append(f"variable frame rate (mean {fps:.2f} fps); frame timestamps are used")
    return result


def _read_audio(path: Path, sample_rate: int | None) -> tuple[np.ndarray | None, int | None]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None, None
        stream = container.streams.audio[0]
        rate = sample_rate or stream.codec_context.sample_rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(stream):
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        declared = None
        if stream.duration is not None and stream.time_base is not None:
            declared = int(round(float(stream.duration * stream.time_base) * rate))
    audio = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if declared is not None and 0 < declared < len(audio):
        audio = audio[:declared]
    return audio, rate


# ------------------------------------------------------------------------------------------------ a window


def read_video_window(
    path: str | os.PathLike, start: float, end: float | None, max_side: int | None = None, what: str = "video"
) -> tuple[np.ndarray, float]:
    """RGB frames (T, H, W, 3) uint8 shown between `start` and `end` seconds, and their frame rate.

    Streamed: the decoder seeks to just before `start` and stops at `end`, each frame is scaled at once so
    its longer side is at most `max_side` (None: full size; PyAV's area filter) and frames closer together
    than 1 / ``MAX_WINDOW_FPS`` are skipped, so a long 4K clip costs what its used seconds cost at the
    working size. Times count from the video stream's first frame; the display rotation is applied.
    `what` names the argument in error messages.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what}: video file {path} does not exist")
    try:
        frames, times, rate = _decode_window(path, start, end, max_side, what, seek=start > SEEK_MARGIN_SECONDS)
    except _SeekFailed:  # a container without an index: decode from the start (still streamed and scaled)
        frames, times, rate = _decode_window(path, start, end, max_side, what, seek=False)
    if not frames:
        raise ValueError(f"{what}: {path} has no frames between {start:.2f} s and {end} s")
    times = np.asarray(times, np.float64)
    order = np.argsort(times, kind="stable")  # B-frames may come out of presentation order
    keep = order[np.concatenate([[True], np.diff(times[order]) > 0])]  # drop duplicated timestamps
    stacked = np.stack([frames[i] for i in keep])
    if len(keep) > 1:
        fps = (len(keep) - 1) / float(times[keep[-1]] - times[keep[0]])
    else:
        fps = min(rate, MAX_WINDOW_FPS)
    return stacked, fps


class _SeekFailed(Exception):
    pass


def _decode_window(path: Path, start: float, end: float | None, max_side: int | None, what: str, seek: bool):
    """Frames (list of (H, W, 3) uint8), their times in seconds from the stream's first frame, the stream's rate."""
    converter = RGBConverter()
    with _open_video(path, what) as (container, stream):
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or MAX_WINDOW_FPS)
        half_frame = 0.5 / rate
        origin = None
        if seek:
            if stream.start_time is None or stream.time_base is None:
                raise _SeekFailed
            origin = float(stream.start_time * stream.time_base)
            target = int((origin + start - SEEK_MARGIN_SECONDS) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError as error:
                raise _SeekFailed from error
        frames, times, last_kept = [], [], -math.inf
        size = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                time = float(frame.time) if frame.time is not None else index / rate
                if origin is None:
                    origin = time
                time -= origin
                if end is not None and time + half_frame >= end:
                    if time - half_frame > end:
                        break  # past the window: stop decoding
                    continue
                if time + half_frame < start or time - last_kept < MIN_FRAME_INTERVAL_SHARE / MAX_WINDOW_FPS:
                    continue
                if size is None:
                    size = fit_within(frame.width, frame.height, max_side)
                pixels = converter.to_rgb(frame, size, interpolation="AREA")
                rotation = _rotation(frame)
                frames.append(rotate_upright(pixels, rotation) if rotation % 360 else pixels)
                times.append(time)
                last_kept = time
        except av.error.FFmpegError as error:
            if not frames:
                raise ValueError(f"{what}: could not decode any frame of {path} ({error}). {REENCODE_HINT}") \
                    from error
            warnings.warn(f"{what}: decoding stopped with an error ({error}); using the {len(frames)} "
                          "frames read", stacklevel=4)
    if seek and not frames:
        raise _SeekFailed
    return frames, times, rate


# ------------------------------------------------------------------------------------------------ a stream


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most `max_side`, both even (what swscale likes)."""
    factor = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * factor / 2)) * 2), max(2, int(round(height * factor / 2)) * 2)


def iter_frames(path: str | Path, max_side: int, notes: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds from the first frame, (H, W, 3) uint8 RGB) in presentation order, one frame in memory at a
    time (curation reads hours of video this way), scaled to ``scaled_size``.

    Frames whose timestamp does not increase are skipped (duplicates); a decoding error after some
    frames ends the stream with a note; one before any frame raises ValueError.
    """
    with _open_video(path) as (container, stream):
        stream.thread_type = "AUTO"
        size = scaled_size(stream.codec_context.width or max_side, stream.codec_context.height or max_side, max_side)
        first_time, last_time, count = None, None, 0
        converter = RGBConverter()
        try:
            for frame in container.decode(stream):
                time = frame.time if frame.time is not None else count / float(stream.average_rate or 1)
                if first_time is None:
                    first_time = time
                    rotation = _rotation(frame)
                    if rotation % 360:
                        notes.append(f"applied the display rotation ({rotation} deg counter-clockwise)")
                if last_time is not None and time <= last_time:
                    continue
                last_time = time
                pixels = converter.to_rgb(frame, size)
                if rotation % 360:
                    pixels = rotate_upright(pixels, rotation)
                count += 1
                yield float(time - first_time), pixels
        except av.error.FFmpegError as error:
            if count == 0:
                raise ValueError(f"could not decode any frame of {path} ({error}). {REENCODE_HINT}") from error
            notes.append(f"decoding stopped after {count} frames ({error}); the frames read are used")
    if count == 0:
        raise ValueError(f"{path} contains no video frames: use a video of the speaker")


# ------------------------------------------------------------------------------------------------ headers


def probe_video(path: str | Path) -> dict:
    """Container facts without decoding: {"fps": mean video rate (0 if unknown), "has_audio": bool}."""
    with _open_video(path) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return {"fps": float(rate) if rate else 0.0, "has_audio": bool(container.streams.audio)}


def media_info(path: str | os.PathLike) -> tuple[float | None, tuple[int, int] | None] | None:
    """(seconds, (width, height) of the video frames or None) from a media file's container, without
    decoding; None if the file cannot be opened as media."""
    try:
        with av.open(os.fspath(path)) as container:
            seconds = None
            if container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                for stream in (*container.streams.video, *container.streams.audio):
                    if stream.duration is not None and stream.time_base is not None:
                        seconds = max(seconds or 0.0, float(stream.duration * stream.time_base))
            frame_size = None
            if container.streams.video:
                context = container.streams.video[0].codec_context
                if context.width and context.height:
                    frame_size = (int(context.width), int(context.height))
            return seconds, frame_size
    except (av.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        return None


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m omnitalker.io.video VIDEO")
    clip = read_video(argv[0])
    print(f"{argv[0]}: {clip.frames.shape} frames at {clip.fps:g} fps ({clip.duration:.3f} s)")
    if clip.audio is not None:
        print(f"audio: {len(clip.audio)} samples at {clip.sample_rate} Hz ({clip.audio_duration:.3f} s)")


if __name__ == "__main__":
    main()
