"""FrameStream: a video's frames made on demand, a chunk at a time, so a long video never sits in memory whole.

    frames = FrameStream(num_frames, height, width, make_chunk)   # make_chunk(start, stop) -> (n, H, W, 3) uint8
    export_to_video(frames, "out.mp4", fps=25)                    # streamed: one chunk in memory at a time
    frames[10], frames[:50], len(frames), frames.shape            # render what is asked for
    array = np.asarray(frames)                                    # the whole (T, H, W, 3) array, when wanted

``OmniTalkerPipeline(..., stream_frames=True)`` returns its frames this way: the renderer and the watermarks
run per chunk as the encoder pulls them, so memory does not grow with the length of the text. Each chunk is
made again when iterated again (nothing is cached). While the consumer uses one chunk, the next is made on a
worker thread (``prefetch``), and the stream's ``map`` functions (e.g. the watermarks) run on the consumer's
thread: rendering overlaps watermarking and encoding (numpy, OpenCV and x264 work without the GIL in their heavy
calls), and at most two chunks are in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

DEFAULT_CHUNK_FRAMES = 50  # 2 s at 25 fps: ~150 MB at 1024 x 1024 before watermarking copies


class FrameStream:
    """(T, H, W, 3) uint8 frames, made `chunk_frames` at a time by ``make_chunk(start, stop)``.

    Args:
        num_frames, height, width: the shape of the whole video.
        make_chunk: returns frames ``start:stop`` as an (stop - start, H, W, 3) uint8 array.
        chunk_frames: frames made per call.
        progress: a ``tqdm``-like class (e.g. ``tqdm.auto.tqdm``) for a bar while iterating, or None.
        description: the bar's label.
        prefetch: make the next chunk on a worker thread while the current one is used (chunks are still made
            one at a time and in order, so ``make_chunk`` needs no locking).
        transforms: functions applied in order to every made chunk, on the consumer's thread (``map``).
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, num_frames: int, height: int, width: int, make_chunk: Callable[[int, int], np.ndarray],
                 chunk_frames: int = DEFAULT_CHUNK_FRAMES, progress: Callable | None = None,
                 description: str = "Rendering frames", prefetch: bool = True, transforms: tuple = ()):
        if num_frames < 1 or height < 1 or width < 1:
            raise ValueError(f"a FrameStream needs at least one frame of at least 1x1 px, got {num_frames} frames "
                             f"of {width}x{height}")
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
        self.shape = (int(num_frames), int(height), int(width), 3)
        self._make_chunk = make_chunk
        self.chunk_frames = int(chunk_frames)
        self.progress = progress
        self.description = description
        self.prefetch = prefetch
        self._transforms = tuple(transforms)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"FrameStream(shape={self.shape}, chunk_frames={self.chunk_frames})"

    def _chunk(self, start: int, stop: int) -> np.ndarray:
        return self._finish(self._made(start, stop), start, stop)

    def _made(self, start: int, stop: int) -> np.ndarray:
        return self._checked(np.asarray(self._make_chunk(start, stop)), "make_chunk", start, stop)

    def _finish(self, chunk: np.ndarray, start: int, stop: int) -> np.ndarray:
        for transform in self._transforms:
            chunk = self._checked(np.asarray(transform(chunk)), "a map function", start, stop)
        return chunk

    def _checked(self, chunk: np.ndarray, what: str, start: int, stop: int) -> np.ndarray:
        if chunk.shape != (stop - start, *self.shape[1:]) or chunk.dtype != np.uint8:
            raise ValueError(f"{what} gave frames {start}:{stop} as {chunk.shape} {chunk.dtype}, expected "
                             f"{(stop - start, *self.shape[1:])} uint8")
        return chunk

    def chunks(self) -> Iterator[np.ndarray]:
        """The frames as consecutive (n, H, W, 3) arrays, n <= chunk_frames."""
        ranges = [(start, min(start + self.chunk_frames, len(self))) for start in range(0, len(self), self.chunk_frames)]
        bar = None if self.progress is None else self.progress(total=len(self), desc=self.description, unit="frame")
        worker = ThreadPoolExecutor(1, thread_name_prefix="frames") if self.prefetch and len(ranges) > 1 else None
        try:
            upcoming = None  # the future of the next chunk, made while the caller uses this one
            for index, (start, stop) in enumerate(ranges):
                if worker is None:
                    chunk = self._made(start, stop)
                else:
                    chunk = (upcoming or worker.submit(self._made, start, stop)).result()
                    upcoming = worker.submit(self._made, *ranges[index + 1]) if index + 1 < len(ranges) else None
                chunk = self._finish(chunk, start, stop)
                yield chunk
                del chunk
                if bar is not None:
                    bar.update(stop - start)
        finally:
            if worker is not None:  # a consumer that stops early: let the chunk in progress finish, drop the rest
                worker.shutdown(wait=True, cancel_futures=True)
            if bar is not None:
                bar.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        """Frame by frame; each frame is a copy, so a chunk is freed as soon as its last frame is out."""
        for chunk in self.chunks():
            for index in range(len(chunk)):
                yield chunk[index].copy()
            del chunk  # before the next chunk is made

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return np.asarray(self)[index] if stop > start else self._empty()
            return self._chunk(start, stop) if stop > start else self._empty()
        if isinstance(index, (int, np.integer)):
            position = int(index) + (len(self) if index < 0 else 0)
            if not 0 <= position < len(self):
                raise IndexError(f"frame {index} is out of range for {len(self)} frames")
            return self._chunk(position, position + 1)[0]
        return np.asarray(self)[index]

    def _empty(self) -> np.ndarray:
        return np.zeros((0, *self.shape[1:]), np.uint8)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        whole = np.empty(self.shape, np.uint8)
        start = 0
        for chunk in FrameStream(len(self), *self.shape[1:3], self._make_chunk, self.chunk_frames, prefetch=False,
                                 transforms=self._transforms).chunks():
            whole[start : start + len(chunk)] = chunk
            start += len(chunk)
        return whole if dtype is None else whole.astype(dtype)

    def map(self, function: Callable[[np.ndarray], np.ndarray], description: str | None = None) -> FrameStream:
        """A stream whose chunks are ``function(chunk)`` (same shape), e.g. watermarking; ``function`` runs on the
        consumer's thread while the next chunk is made."""
        return FrameStream(len(self), *self.shape[1:3], self._make_chunk, self.chunk_frames, self.progress,
                           description or self.description, self.prefetch, self._transforms + (function,))
