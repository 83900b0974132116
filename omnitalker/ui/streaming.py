"""Play while it generates: a video written as short MPEG-TS segments for the page, and whole for download.

    pieces = pipe.stream(text, reference=ref, first_chunk_seconds=DEFAULT_FIRST_CHUNK_SECONDS)
    for segment, piece in write_chunk_segments(pieces, folder / "omnitalker.mp4"):
        yield segment                     # -> gr.Video(streaming=True), which plays each as it arrives

``write_chunk_segments`` encodes each piece ``OmniTalkerPipeline.stream`` hands out (issue 34: the first is about a
second of speech) as soon as it arrives, so the page plays while the rest is still being sampled;
``write_segments`` cuts a finished video (a ``FrameStream``) into pieces of FIRST_SEGMENT_SECONDS, then
SEGMENT_SECONDS.

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
from collections.abc import Callable, Iterable, Iterator
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
            yield _write_segment(full_path.parent / SEGMENT_NAME.format(index=index), piece, sound, fps, sample_rate)


def write_chunk_segments(chunks: Iterable, full_path: str | Path, check: Callable[[], None] | None = None
                         ) -> Iterator[tuple[Path, object]]:
    """Yield (segment path, the piece) for each streamed piece of one item (``OmniTalkerChunk``s, frames and
    audio), encoded as it arrives, while writing the whole video to ``full_path`` (it appears after the last piece;
    a failure or a stop leaves no partial mp4). ``check()`` runs before each piece is encoded.

    A piece's audio and frames need not end together (the stream holds back what the next chunk may change);
    each segment takes whole frames and the sound up to their end (``FrameAligner``), the rest waits for the next.
    """
    from omnitalker.io.export import VideoWriter

    full_path = Path(full_path)
    aligner = full = None
    index = 0
    try:
        for piece in chunks:
            if check is not None:
                check()
            if piece.frames is None:
                raise ValueError("write_chunk_segments needs frames: stream a talking head, not speech only")
            if full is None:
                height, width = piece.frames.shape[1:3]
                full = VideoWriter(full_path, width, height, int(piece.fps), piece.sample_rate)
                aligner = FrameAligner(int(piece.fps), piece.sample_rate)
            frames, sound = aligner.add(piece.frames, piece.audio, last=piece.is_last)  # n H W 3, ns
            if not len(frames):
                continue
            full.write(frames, sound)
            yield _write_segment(full_path.parent / SEGMENT_NAME.format(index=index), frames, sound, int(piece.fps),
                                 piece.sample_rate), piece
            index += 1
            if piece.is_last:
                full.close()
                full = None
    finally:
        if full is not None:  # stopped or failed before the last piece
            full.abort()


def _write_segment(path: Path, frames: np.ndarray, sound: np.ndarray, fps: int, sample_rate: int) -> Path:
    from omnitalker.io.export import VideoWriter

    segment = VideoWriter(path, frames.shape[2], frames.shape[1], fps, sample_rate)
    try:
        segment.write(frames, sound)
    except BaseException:
        segment.abort()
        raise
    return Path(segment.close())


class FrameAligner:
    """Pieces of frames and sound that arrive out of step -> segments of whole frames with exactly their sound
    (frame f covers samples [f * sample_rate // fps, (f + 1) * sample_rate // fps), as in ``write_segments``)."""

    def __init__(self, fps: int, sample_rate: int):
        self.fps, self.sample_rate = fps, sample_rate
        self.frames: list[np.ndarray] = []  # received, not yet sent
        self.sound = np.zeros(0, np.float32)
        self.frames_sent = self.samples_sent = 0

    def add(self, frames: np.ndarray | None, sound: np.ndarray, last: bool) -> tuple[np.ndarray, np.ndarray]:
        if frames is not None and len(frames):
            self.frames.append(np.asarray(frames))
        self.sound = np.concatenate([self.sound, np.asarray(sound, np.float32)])
        pending = np.concatenate(self.frames) if self.frames else np.zeros((0, 1, 1, 3), np.uint8)  # n H W 3
        heard = self.samples_sent + len(self.sound)  # samples received so far
        count = len(pending) if last else min(len(pending), heard * self.fps // self.sample_rate - self.frames_sent)
        end = heard if last else (self.frames_sent + count) * self.sample_rate // self.fps
        frames, sound = pending[:count], self.sound[: end - self.samples_sent]
        self.frames = [pending[count:]] if count < len(pending) else []
        self.sound = self.sound[end - self.samples_sent :]
        self.frames_sent, self.samples_sent = self.frames_sent + count, end
        return frames, sound
