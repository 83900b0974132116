"""export_to_video / read_video: codecs, durations, odd sizes, atomic writes, input checks.

    python -m pytest tests/test_video_io.py -q
"""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
from PIL import Image

from omnitalker.io import export_to_video, read_video

FPS = 25
SAMPLE_RATE = 24000


def gradient_frames(num_frames: int, height: int, width: int) -> np.ndarray:
    """Smooth moving colour ramps (compress well, so decoded pixels stay close to the input)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(num_frames):
        red = 255 * x / width
        green = 255 * y / height
        blue = 127 + 100 * np.sin(2 * np.pi * (x + 3 * t) / width)
        frames.append(np.stack([red, green, blue], axis=-1))
    return np.clip(np.stack(frames), 0, 255).astype(np.uint8)


def tone(seconds: float, frequency: float = 440.0) -> np.ndarray:
    time = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.4 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def test_round_trip_codecs_and_durations(tmp_path):
    frames = gradient_frames(30, 96, 128)
    path = export_to_video(frames, tmp_path / "clip.mp4", fps=FPS, audio=tone(1.37), sample_rate=SAMPLE_RATE)
    assert path == str(tmp_path / "clip.mp4")
    with av.open(path) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
        assert audio.codec_context.name == "aac"
        assert audio.codec_context.sample_rate == SAMPLE_RATE
    clip = read_video(path)
    assert clip.frames.shape == (30, 96, 128, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == FPS and clip.sample_rate == SAMPLE_RATE
    assert clip.duration == pytest.approx(30 / FPS)
    assert abs(clip.audio_duration - clip.duration) <= 1 / FPS  # the 1.37 s tone was trimmed to 1.2 s
    assert np.abs(clip.frames.astype(float) - frames).mean() < 3.0  # crf 18 on smooth content
    # the tone survives AAC: same loudness, same pitch
    assert np.sqrt(np.mean(clip.audio[2400:-2400] ** 2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.05)
    spectrum = np.abs(np.fft.rfft(clip.audio))
    assert np.fft.rfftfreq(len(clip.audio), 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(440, abs=2)


def test_short_audio_is_padded_with_silence(tmp_path):
    path = export_to_video(gradient_frames(30, 64, 64), tmp_path / "pad.mp4", audio=tone(0.5))
    clip = read_video(path)
    assert abs(clip.audio_duration - clip.duration) <= 1 / FPS
    assert np.abs(clip.audio[: SAMPLE_RATE // 4]).max() > 0.3
    assert np.abs(clip.audio[round(0.7 * SAMPLE_RATE) :]).max() < 0.01  # silence after the tone


def test_faststart_puts_index_first(tmp_path):
    path = export_to_video(gradient_frames(5, 64, 64), tmp_path / "fast.mp4", audio=tone(0.2))
    data = open(path, "rb").read()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_odd_sizes_are_padded_to_even(tmp_path):
    frames = gradient_frames(5, 45, 61)
    clip = read_video(export_to_video(frames, tmp_path / "odd.mp4"))
    assert clip.frames.shape == (5, 46, 62, 3)
    assert clip.audio is None and clip.sample_rate is None
    assert np.abs(clip.frames[:, :45, :61].astype(float) - frames).mean() < 4.0


def test_accepts_lists_of_pil_images_and_generators(tmp_path):
    frames = gradient_frames(6, 64, 80)
    from_pil = read_video(export_to_video([Image.fromarray(f) for f in frames], tmp_path / "pil.mp4"))
    from_generator = read_video(export_to_video((f for f in frames), tmp_path / "gen.mp4"))
    assert from_pil.frames.shape == from_generator.frames.shape == (6, 64, 80, 3)


def test_failure_mid_export_leaves_no_file(tmp_path):
    destination = tmp_path / "out.mp4"

    def frames_then_crash():
        yield from gradient_frames(10, 64, 64)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        export_to_video(frames_then_crash(), destination, audio=tone(1.0))
    assert os.listdir(tmp_path) == []  # neither the video nor its temporary file

    destination.write_bytes(b"previous result")
    bad = list(gradient_frames(4, 64, 64)) + [np.zeros((32, 32, 3), np.uint8)]
    with pytest.raises(ValueError, match="all frames must match"):
        export_to_video(bad, destination)
    assert destination.read_bytes() == b"previous result"  # an old file is not clobbered
    assert os.listdir(tmp_path) == ["out.mp4"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(frames=np.zeros((0, 64, 64, 3), np.uint8)), "empty"),
        (dict(frames=[]), "empty"),
        (dict(frames=np.zeros((2, 64, 64, 3), np.float32)), "uint8"),
        (dict(frames=np.zeros((2, 64, 64), np.uint8)), "expected"),
        (dict(frames=np.zeros((2, 64, 64, 4), np.uint8)), "RGB"),
        (dict(audio=np.array([0.0, np.nan] * 100, np.float32)), "NaN"),
        (dict(audio=np.zeros(100, np.float32), sample_rate=0), "sample_rate"),
        (dict(audio=np.zeros((2, 100), np.float32)), "mono"),
        (dict(path="clip.avi"), "extension"),
        (dict(fps=0), "fps"),
    ],
)
def test_bad_inputs_raise_clear_errors(tmp_path, kwargs, message):
    arguments = dict(frames=np.zeros((2, 64, 64, 3), np.uint8), path="clip.mp4")
    arguments.update(kwargs)
    arguments["path"] = tmp_path / arguments["path"]
    with pytest.raises(ValueError, match=message):
        export_to_video(**arguments)
    assert os.listdir(tmp_path) == []


def test_read_video_resamples_audio(tmp_path):
    path = export_to_video(gradient_frames(25, 64, 64), tmp_path / "a.mp4", audio=tone(1.0))
    clip = read_video(path, sample_rate=16000)
    assert clip.sample_rate == 16000
    assert abs(clip.audio_duration - 1.0) <= 1 / FPS
    with pytest.raises(ValueError, match="no such video"):
        read_video(tmp_path / "missing.mp4")


def test_video_writer_written_in_chunks_equals_one_export(tmp_path):
    """Chunks of frames with their sound (as a stream arrives) make the same video as one export_to_video."""
    from omnitalker.io.export import VideoWriter

    frames, wave = gradient_frames(40, 64, 96), tone(40 / FPS, 330.0)
    whole = read_video(export_to_video(frames, tmp_path / "whole.mp4", audio=wave))
    per_frame = SAMPLE_RATE // FPS
    with VideoWriter(tmp_path / "chunks.mp4", 96, 64, FPS, SAMPLE_RATE) as writer:
        for start, stop in ((0, 7), (7, 25), (25, 40)):  # a short first chunk, then longer ones
            writer.write(frames[start:stop], wave[start * per_frame : stop * per_frame])
        assert writer.seconds_written == pytest.approx(40 / FPS)
        assert not (tmp_path / "chunks.mp4").exists()  # it appears only when complete
    chunked = read_video(tmp_path / "chunks.mp4")
    assert chunked.frames.shape == whole.frames.shape  # (x264's threads make neither bit-exact run to run)
    assert np.abs(chunked.frames.astype(float) - frames).mean() < 3.0
    np.testing.assert_allclose(chunked.audio, whole.audio, atol=1e-4)


def test_video_writer_segments_and_failures(tmp_path):
    from omnitalker.io.export import VideoWriter

    segment = VideoWriter(tmp_path / "segment-0.ts", 64, 64, FPS, SAMPLE_RATE)
    segment.write(gradient_frames(25, 64, 64), tone(1.0))
    clip = read_video(segment.close())
    # MPEG-TS keeps the AAC priming (no edit list): up to two AAC frames more sound
    assert clip.duration == pytest.approx(1.0) and clip.audio_duration == pytest.approx(1.0, abs=2 * 1024 / SAMPLE_RATE)
    with pytest.raises(RuntimeError, match="encoder died"), VideoWriter(tmp_path / "broken.mp4", 64, 64) as writer:
        writer.write(gradient_frames(3, 64, 64), tone(0.12))
        raise RuntimeError("encoder died")
    with pytest.raises(ValueError, match="no sound track"):
        with VideoWriter(tmp_path / "silent.mp4", 64, 64, sample_rate=None) as writer:
            writer.write(gradient_frames(2, 64, 64), tone(0.08))
    with pytest.raises(ValueError, match="no frames were written"):
        VideoWriter(tmp_path / "empty.mp4", 64, 64).close()
    with pytest.raises(ValueError, match=r"frame 0 is \(32, 32\)"):
        with VideoWriter(tmp_path / "sizes.mp4", 64, 64) as writer:
            writer.write(gradient_frames(1, 32, 32))
    assert sorted(os.listdir(tmp_path)) == ["segment-0.ts"]  # nothing half-written left
