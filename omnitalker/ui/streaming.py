"""Play while it renders: a generated video written as short MPEG-TS segments for the page, and whole for download.

    for segment in write_segments(out.frames[0], out.audio[0], out.sample_rate, out.fps, folder / "omnitalker.mp4"):
        yield segment                     # -> gr.Video(streaming=True), which plays each as it arrives

The frames are rendered and watermarked once; each segment's frames and sound are encoded twice, into their own
``.ts`` file (a stand-alone H.264 + AAC piece that gradio's streaming video output appends to what plays) and into
the full mp4, which appears (atomically) after the last segment. Why not remux the pieces into the mp4 instead:
every piece starts its own AAC stream with its own priming samples, which a copy would leave as clicks and drift at
the joins; the price is a second x264 encode (``veryfast``) of each frame. The first segment is short so playback starts
early; later ones are longer, so fewer pieces are muxed. Streaming needs the ffmpeg and ffprobe programs
(``streaming_available``); without them the demo shows the whole video at the end. A failure or a stop removes the partial mp4; the segments
already sent stay in the request's folder, which the demo's result policy removes (omnitalker/ui/handlers.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

FIRST_SEGMENT_SECONDS = 1.0  # the first playable piece
SEGMENT_SECONDS = 2.0  # every later piece
SEGMENT_NAME = "segment-{index:03d}.ts"


def streaming_available() -> bool:
    """Whether the page can stream: gradio's streaming video output muxes the pieces with the ffmpeg and ffprobe
    programs (system packages); without them the page shows the whole video when it is done."""
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def segment_bounds(num_frames: int, fps: int) -> list[tuple[int, int]]:
    """Frame ranges of the segments: FIRST_SEGMENT_SECONDS, then SEGMENT_SECONDS each (the last may be shorter)."""
    first, rest = max(1, round(FIRST_SEGMENT_SECONDS * fps)), max(1, round(SEGMENT_SECONDS * fps))
    bounds, start = [], 0
    while start < num_frames:
        stop = min(num_frames, start + (first if not bounds else rest))
        bounds.append((start, stop))
        start = stop
    return bounds


def write_segments(frames, wave: np.ndarray, sample_rate: int, fps: int, full_path: str | Path,
                   check: Callable[[], None] | None = None) -> Iterator[Path]:
    """Yield the path of each finished segment (next to ``full_path``) while writing the full video to
    ``full_path``; ``check()`` runs before each segment (e.g. a request's deadline: raising stops the stream).

    frames: (T, H, W, 3) uint8, an array or a ``FrameStream`` (rendered a segment at a time); wave: the sound of
    those T frames at ``sample_rate``.
    """
    from omnitalker.io.export import VideoWriter

    full_path = Path(full_path)
    num_frames, height, width = frames.shape[:3]
    fps = int(fps)
    with VideoWriter(full_path, width, height, fps, sample_rate) as full:
        for index, (start, stop) in enumerate(segment_bounds(num_frames, fps)):
            if check is not None:
                check()
            piece = np.asarray(frames[start:stop])  # n H W 3
            sound = wave[start * sample_rate // fps : stop * sample_rate // fps]
            full.write(piece, sound)
            segment = VideoWriter(full_path.parent / SEGMENT_NAME.format(index=index), width, height, fps,
                                  sample_rate)
            try:
                segment.write(piece, sound)
            except BaseException:
                segment.abort()
                raise
            yield Path(segment.close())
