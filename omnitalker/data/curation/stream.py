"""Stream a video's frames one at a time: upright (display rotation applied), downscaled, with timestamps.

``omnitalker.face.video.read_video`` keeps every frame in memory, which suits a 10 s reference but
not an hour of source video; curation only needs each frame once (scene cut + face landmarks), so
it decodes, scales with FFmpeg's swscale and hands the frame on.

    notes = []
    for time, frame in iter_frames("talk.mov", max_side=512, notes=notes):   # frame: (H, W, 3) uint8
        ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ...face.video import rotate_upright
from ...io.video import RGBConverter


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most `max_side`, both even (what swscale likes)."""
    factor = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * factor / 2)) * 2), max(2, int(round(height * factor / 2)) * 2)


def iter_frames(path: str | Path, max_side: int, notes: list[str]) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (seconds from the first frame, (H, W, 3) uint8 RGB) in presentation order.

    Frames whose timestamp does not increase are skipped (duplicates); a decoding error after some
    frames ends the stream with a note; one before any frame raises ValueError.
    """
    import av

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
                    rotation = int(getattr(frame, "rotation", 0) or 0)
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
                raise ValueError(f"could not decode any frame of {path} ({error})") from error
            notes.append(f"decoding stopped after {count} frames ({error}); the frames read are used")
    if count == 0:
        raise ValueError(f"{path} contains no video frames")


def probe(path: str | Path) -> dict:
    """Container facts without decoding: {"fps": mean video rate (0 if unknown), "has_audio": bool}."""
    with _open_video(path) as (container, stream):
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return {"fps": float(rate) if rate else 0.0, "has_audio": bool(container.streams.audio)}


@contextlib.contextmanager
def _open_video(path: str | Path):
    """(container, first video stream) of ``path``, closed on exit; ValueError if it is not a video."""
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"could not open {path} as a video ({error}); the file is corrupt or not a video") from error
    with container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video stream")
        yield container, container.streams.video[0]
