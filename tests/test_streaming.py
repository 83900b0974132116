"""The streamed video of the demo (omnitalker/ui/streaming.py): pieces that add up to the whole, and a clean stop."""

from __future__ import annotations

import numpy as np
import pytest

from omnitalker.io import read_video
from omnitalker.io.frames import FrameStream
from omnitalker.ui.streaming import FIRST_SEGMENT_SECONDS, SEGMENT_SECONDS, segment_bounds, write_segments

FPS, SAMPLE_RATE = 25, 24000


def test_segment_bounds_start_short_then_grow_and_cover_every_frame():
    bounds = segment_bounds(130, FPS)
    assert bounds[0] == (0, round(FIRST_SEGMENT_SECONDS * FPS))
    assert all(stop - start == round(SEGMENT_SECONDS * FPS) for start, stop in bounds[1:-1])
    assert [start for start, _ in bounds[1:]] == [stop for _, stop in bounds[:-1]] and bounds[-1][1] == 130
    assert segment_bounds(3, FPS) == [(0, 3)]


def moving_frames(count: int) -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64]
    return np.stack([np.stack([(x + 4 * t) % 256, y * 4 % 256, np.full_like(x, 128)], -1)
                     for t in range(count)]).astype(np.uint8)


def test_pieces_add_up_to_the_whole_video(tmp_path):
    frames = moving_frames(90)
    stream = FrameStream(90, 64, 64, lambda start, stop: frames[start:stop])  # rendered on demand
    wave = (0.3 * np.sin(np.arange(90 * SAMPLE_RATE // FPS) * 2 * np.pi * 220 / SAMPLE_RATE)).astype(np.float32)
    pieces = list(write_segments(stream, wave, SAMPLE_RATE, FPS, tmp_path / "out.mp4"))
    assert [path.suffix for path in pieces] == [".ts"] * len(segment_bounds(90, FPS))
    counts = [len(read_video(path).frames) for path in pieces]
    assert counts == [stop - start for start, stop in segment_bounds(90, FPS)]
    whole = read_video(tmp_path / "out.mp4")
    assert len(whole.frames) == 90 and abs(whole.audio_duration - whole.duration) <= 1 / FPS
    assert np.abs(whole.frames.astype(float) - frames).mean() < 4.0


def test_a_stop_between_pieces_leaves_no_whole_video(tmp_path):
    calls = []

    def deadline():
        calls.append(1)
        if len(calls) > 1:
            raise TimeoutError("past the limit")

    frames = moving_frames(60)
    pieces = write_segments(frames, np.zeros(60 * SAMPLE_RATE // FPS, np.float32), SAMPLE_RATE, FPS,
                            tmp_path / "out.mp4", check=deadline)
    assert next(pieces).is_file()  # the first piece was sent
    with pytest.raises(TimeoutError):
        next(pieces)
    assert not (tmp_path / "out.mp4").exists()
    assert not [path for path in tmp_path.iterdir() if path.name.endswith(".part")]


def chunk(frames, audio, start_frame, last):
    from omnitalker.pipeline.stream import OmniTalkerChunk

    return OmniTalkerChunk(audio=audio, frames=frames, start=0.0, frame_start=start_frame, is_last=last,
                           sample_rate=SAMPLE_RATE, fps=float(FPS))


def out_of_step_pieces(frames: np.ndarray, wave: np.ndarray) -> list:
    """Pieces as the pipeline's stream hands them out: the sound ahead of the frames, then behind."""
    cuts = [(0, 20, 0, 22 * SAMPLE_RATE // FPS), (20, 50, 22 * SAMPLE_RATE // FPS, 47 * SAMPLE_RATE // FPS + 7),
            (50, len(frames), 47 * SAMPLE_RATE // FPS + 7, len(wave))]
    return [chunk(frames[a:b], wave[c:d], a, index == len(cuts) - 1) for index, (a, b, c, d) in enumerate(cuts)]


def test_the_aligner_gives_whole_frames_with_exactly_their_sound():
    from omnitalker.ui.streaming import FrameAligner

    frames, wave = moving_frames(70), np.arange(70 * SAMPLE_RATE // FPS, dtype=np.float32)
    aligner = FrameAligner(FPS, SAMPLE_RATE)
    sent = [aligner.add(piece.frames, piece.audio, piece.is_last) for piece in out_of_step_pieces(frames, wave)]
    assert [len(f) for f, _ in sent] == [20, 27, 23]  # frames wait for their sound
    for f, sound in sent[:-1]:
        assert len(sound) == len(f) * SAMPLE_RATE // FPS
    np.testing.assert_array_equal(np.concatenate([f for f, _ in sent]), frames)
    np.testing.assert_array_equal(np.concatenate([s for _, s in sent]), wave)


def test_streamed_chunks_become_segments_and_the_whole_video(tmp_path):
    from omnitalker.ui.streaming import write_chunk_segments

    frames = moving_frames(70)
    wave = (0.3 * np.sin(np.arange(70 * SAMPLE_RATE // FPS) * 2 * np.pi * 220 / SAMPLE_RATE)).astype(np.float32)
    written = list(write_chunk_segments(out_of_step_pieces(frames, wave), tmp_path / "out.mp4"))
    assert [len(read_video(path).frames) for path, _ in written] == [20, 27, 23]
    whole = read_video(tmp_path / "out.mp4")
    assert len(whole.frames) == 70 and abs(whole.audio_duration - whole.duration) <= 1 / FPS


def test_a_stream_that_fails_or_stops_midway_leaves_no_whole_video(tmp_path):
    from omnitalker.ui.streaming import write_chunk_segments

    frames, wave = moving_frames(70), np.zeros(70 * SAMPLE_RATE // FPS, np.float32)

    def failing():
        yield out_of_step_pieces(frames, wave)[0]
        raise RuntimeError("the sampler failed")

    written = write_chunk_segments(failing(), tmp_path / "failed.mp4")
    assert next(written)[0].is_file()
    with pytest.raises(RuntimeError):
        next(written)
    stopped = write_chunk_segments(iter(out_of_step_pieces(frames, wave)), tmp_path / "stopped.mp4")
    next(stopped)
    stopped.close()  # the page went away
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*.part"))
