"""FrameStream prefetch: the next chunk is made on a worker thread while the consumer uses the current one."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from omnitalker.io.frames import FrameStream


def recording_stream(num_frames: int, chunk_frames: int, prefetch: bool, events: list, fail_at: int | None = None):
    lock = threading.Lock()

    def make_chunk(start: int, stop: int) -> np.ndarray:
        with lock:
            events.append(("start", start))
        if start == fail_at:
            raise ValueError(f"no frames at {start}")
        time.sleep(0.05)  # a renderer's work
        with lock:
            events.append(("done", start))
        return np.full((stop - start, 2, 2, 3), start % 256, np.uint8)

    return FrameStream(num_frames, 2, 2, make_chunk, chunk_frames=chunk_frames, prefetch=prefetch)


@pytest.mark.parametrize("prefetch", [True, False])
def test_frames_and_order_are_the_same_with_and_without_prefetch(prefetch):
    events = []
    stream = recording_stream(10, 3, prefetch, events)
    chunks = list(stream.chunks())
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert [int(c[0, 0, 0, 0]) for c in chunks] == [0, 3, 6, 9]
    # chunks are made one at a time, in order: make_chunk needs no locking
    assert events == [(kind, start) for start in (0, 3, 6, 9) for kind in ("start", "done")]
    np.testing.assert_array_equal(np.asarray(stream), np.concatenate(chunks))


def test_the_next_chunk_is_made_while_the_consumer_works():
    events = []
    stream = recording_stream(9, 3, True, events)
    for chunk in stream.chunks():
        events.append(("consume", int(chunk[0, 0, 0, 0])))
        time.sleep(0.1)  # an encoder's work
    # chunk 3 was started before the consumer was done with chunk 0
    assert events.index(("start", 3)) < events.index(("consume", 3))
    assert events.index(("start", 3)) < events.index(("consume", 0)) + 2


def test_stopping_early_and_errors_leave_no_work_behind():
    events = []
    stream = recording_stream(30, 3, True, events)
    iterator = stream.chunks()
    next(iterator)
    iterator.close()  # the consumer stops: a chunk in progress finishes, nothing further is made
    starts = [start for kind, start in events if kind == "start"]
    assert starts in ([0], [0, 3]) and all(("done", start) in events for start in starts)
    with pytest.raises(ValueError, match="no frames at 6"):
        list(recording_stream(12, 3, True, [], fail_at=6).chunks())
    assert not [t for t in threading.enumerate() if t.name.startswith("frames")]


def test_map_functions_run_on_the_consumer_thread_and_in_every_read_path():
    makers, mappers = set(), set()

    def make_chunk(start, stop):
        makers.add(threading.current_thread().name)
        return np.full((stop - start, 2, 2, 3), start, np.uint8)

    def plus_one(chunk):
        mappers.add(threading.current_thread().name)
        return chunk + 1

    stream = FrameStream(9, 2, 2, make_chunk, chunk_frames=3).map(plus_one)
    assert [int(c[0, 0, 0, 0]) for c in stream.chunks()] == [1, 4, 7]
    assert mappers == {threading.current_thread().name} and any(name.startswith("frames") for name in makers)
    assert int(stream[4][0, 0, 0]) == 5 and int(np.asarray(stream)[8, 0, 0, 0]) == 7
    with pytest.raises(ValueError, match="a map function gave frames 0:3"):
        list(FrameStream(9, 2, 2, make_chunk, chunk_frames=3).map(lambda chunk: chunk[:1]).chunks())
