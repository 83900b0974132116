"""Reference handling and the helpers around it: rate changes, silence bounds, truncation, duration, chunking."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from omnitalker.frontend.audio import FRAME_RATE, SAMPLE_RATE, TARGET_RMS
from omnitalker.frontend.face.codes import extend_by_reflection, retime, video_frame_count
from omnitalker.frontend.text import text_length
from omnitalker.pipeline.chunking import (
    crossfade,
    estimate_num_frames,
    pack_sentences,
    split_sentences,
    tail_text,
)
from omnitalker.pipeline.reference import load_voice, speech_bounds
from tests.pipeline_fixtures import synthetic_voice

CODE_FPS, VIDEO_FPS = 30.0, 25.0
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# ------------------------------------------------------------------------------------------------ retime


@pytest.mark.parametrize(("src", "dst"), [(CODE_FPS, FRAME_RATE), (FRAME_RATE, CODE_FPS), (FRAME_RATE, VIDEO_FPS),
                                          (VIDEO_FPS, FRAME_RATE)])
def test_retime_follows_a_slow_ramp_at_every_rate_pair(src, dst):
    seconds = 2.0
    source = np.arange(round(seconds * src))[:, None] / src * np.ones((1, 58))  # value = time in seconds
    out = retime(source, src, dst, round(seconds * dst))
    assert out.shape == (round(seconds * dst), 58)
    times = np.arange(len(out)) / dst
    inside = times <= (len(source) - 1) / src  # past the last source frame the value is held
    tolerance = 0.02 if dst < src else 1e-5  # downsampling low-passes first (blurs a ramp only at the ends)
    np.testing.assert_allclose(out[inside][2:-2, 0], times[inside][2:-2], atol=tolerance)


def test_retime_keeps_the_type_and_exact_count():
    codes = torch.randn(45, 58, dtype=torch.float64)
    out = retime(codes, CODE_FPS, FRAME_RATE, 141)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64 and out.shape == (141, 58)
    one = retime(np.ones((1, 58)), CODE_FPS, FRAME_RATE, 7)  # a photo: constant
    assert one.shape == (7, 58) and np.all(one == 1)


def test_a_short_sequence_is_played_back_and_forth_without_a_jump():
    codes = np.cumsum(np.random.default_rng(0).normal(size=(20, 58)), axis=0)
    out = extend_by_reflection(codes, 71)
    assert out.shape == (71, 58)
    np.testing.assert_array_equal(out[:20], codes)  # the start as it was
    np.testing.assert_array_equal(out[20:39], codes[-2::-1])  # then backwards from the end, and so on
    assert np.abs(np.diff(out, axis=0)).max() <= np.abs(np.diff(codes, axis=0)).max()  # no jump at a turn
    np.testing.assert_array_equal(extend_by_reflection(codes, 10), codes)  # long enough already: as it is


def test_a_video_shorter_than_its_voice_sample_keeps_moving_to_the_end_of_the_prompt():
    """The example clip (3.5 s) with the longer Mandarin voice sample (4.4 s): held at its last frame, the prompt's
    last second was a frozen face, which the model sees in context and copied."""
    from omnitalker.frontend.face import FaceAnalyzer
    from omnitalker.pipeline.reference import build_reference

    with FaceAnalyzer() as analyzer:
        reference = build_reference(analyzer, video=EXAMPLES / "astronaut_talking.mp4", audio=EXAMPLES / "voice_zh.wav",
                                    text="早上好。这是我的声音，我很高兴认识你。")
    codes = reference.codes.numpy()  # n 58 at the mel rate
    clip_frames = int(3.3 * FRAME_RATE)
    assert len(codes) > clip_frames + 0.5 * FRAME_RATE  # the voice outlasts the clip
    motion = np.abs(np.diff(codes, axis=0)).sum(1)  # per mel frame
    assert motion[clip_frames:].mean() > 0.3 * motion[:clip_frames].mean()


def test_video_frame_count_matches_the_audio_duration():
    for samples in (24000, 41216, 123457):
        frames = video_frame_count(samples, VIDEO_FPS)
        assert abs(frames / VIDEO_FPS - samples / SAMPLE_RATE) <= 0.5 / VIDEO_FPS


# ------------------------------------------------------------------------------------------------ audio


def test_speech_bounds_trim_edge_silence_only():
    voice = synthetic_voice(1.0)
    gap = np.zeros(SAMPLE_RATE // 2, np.float32)
    wave = torch.from_numpy(np.concatenate([gap, voice, gap, voice, gap]))
    start, end = speech_bounds(wave)
    assert abs(start - SAMPLE_RATE // 2) <= 0.08 * SAMPLE_RATE  # 50 ms margin + one 20 ms frame
    assert abs(end - (len(wave) - SAMPLE_RATE // 2)) <= 0.08 * SAMPLE_RATE
    assert speech_bounds(torch.zeros(SAMPLE_RATE)) is None


def test_long_reference_is_cut_to_ten_seconds_with_a_warning():
    wave = synthetic_voice(12.5)
    with pytest.warns(UserWarning, match="longer than 10 s"):
        kept, start, gain = load_voice((SAMPLE_RATE, wave))
    assert 9.0 <= len(kept) / SAMPLE_RATE <= 10.0
    assert start < 0.1 * SAMPLE_RATE


def test_quiet_reference_is_normalised_and_the_gain_kept():
    wave = 0.1 * synthetic_voice(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 2 s clip raises no truncation notice
        kept, _, gain = load_voice((SAMPLE_RATE, wave))
    assert gain > 1.0
    assert abs(float(kept.pow(2).mean().sqrt()) - TARGET_RMS) < 1e-3


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ((SAMPLE_RATE, synthetic_voice(0.5)), "at least 1 s"),
        ((SAMPLE_RATE, np.zeros(2 * SAMPLE_RATE, np.float32)), "silent"),
        (synthetic_voice(1.5), "without a sample rate"),
        ((SAMPLE_RATE, np.zeros((2 * SAMPLE_RATE, 40), np.float32)), "channel"),
        ((0, synthetic_voice(1.5)), "sample_rate must be a positive integer"),
        ((SAMPLE_RATE, np.zeros((3, 3), np.float32)), "channel axis"),
        (3.5, "must be a file path"),
        ("missing.wav", "file not found"),
        ("photo.png", "is an image"),
    ],
)
def test_bad_voices_are_named(source, message):
    with pytest.raises(ValueError, match=message):
        load_voice(source)


def test_unreadable_voice_file_is_named(tmp_path):
    fake = tmp_path / "voice.wav"
    fake.write_text("not audio at all")
    with pytest.raises(ValueError, match="reference_audio: .*voice.wav"):
        load_voice(fake)


# ------------------------------------------------------------------------------------------------ text


def test_duration_follows_the_byte_ratio_and_speed():
    prompt = 300
    reference, text = "One two three four.", "Five six seven eight nine ten."
    expected = prompt * text_length(text) / text_length(reference)
    assert estimate_num_frames(prompt, reference, text) == round(expected)
    assert estimate_num_frames(prompt, reference, text, speed=2.0) == round(expected / 2)
    assert estimate_num_frames(prompt, reference, "Hi") >= round(0.6 * FRAME_RATE)  # a floor for tiny texts
    with pytest.raises(ValueError, match="speed"):
        estimate_num_frames(prompt, reference, text, speed=0)


def test_sentences_are_packed_under_the_budget():
    text = "First one. Second sentence here! Third? 第四句话。第五句。"
    sentences = split_sentences(text)
    assert sentences == ["First one.", "Second sentence here!", "Third?", "第四句话。", "第五句。"]
    chunks = pack_sentences(sentences, max_bytes=25)
    assert all(text_length(chunk) <= 25 for chunk in chunks)
    assert "".join(chunks).replace(" ", "") == "".join(sentences).replace(" ", "")
    long_word = pack_sentences(["x" * 40], max_bytes=16)
    assert [len(piece) for piece in long_word] == [16, 16, 8]


def test_tail_text_cuts_at_a_word_start():
    assert tail_text("We will meet again tomorrow.", 12) == "tomorrow."
    assert tail_text("我们明天见。", 6) == "见。"  # every CJK character starts a word
    assert tail_text("Short.", 100) == "Short."
    assert tail_text("Anything", 0) == ""


def test_crossfade_keeps_constant_signals_and_length():
    previous, following = torch.full((100,), 0.5), torch.full((80,), 0.5)
    joined = crossfade(previous, following, 20)
    assert joined.shape == (160,)
    torch.testing.assert_close(joined, torch.full((160,), 0.5))
    ramp = crossfade(torch.ones(10, 3), torch.zeros(10, 3), 4)
    assert ramp.shape == (16, 3) and torch.all(ramp[:-1, 0] >= ramp[1:, 0])  # fades monotonically
