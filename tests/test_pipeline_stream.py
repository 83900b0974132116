"""``OmniTalkerPipeline.stream``: chunks as they are decoded, which concatenated equal ``__call__``'s output.

    python -m pytest tests/test_pipeline_stream.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.io.watermark import detect_audio_watermark, detect_frame_watermark
from tests.pipeline_fixtures import REFERENCE_TEXT, dummy_pipeline, make_reference_video, make_voice, seeded

STEPS = 2
TEXT = "Hello there, nice to meet you."
LONG_TEXT = "The first sentence is here. The second one follows it. And a third one ends the text."
CHUNK_SECONDS = 2.5
FIRST_SECONDS = 1.0  # chunking.DEFAULT_FIRST_CHUNK_SECONDS


@pytest.fixture(scope="module")
def pipe():
    return dummy_pipeline()


@pytest.fixture(scope="module")
def reference(pipe, tmp_path_factory):
    video = make_reference_video(tmp_path_factory.mktemp("stream") / "ref.mp4", seconds=1.5, size=160)
    return pipe.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)


def assert_stream_equals_call(pipe, *args, **kwargs) -> list:
    whole = pipe(*args, generator=seeded(7), **kwargs)
    pieces = list(pipe.stream(*args, generator=seeded(7), **kwargs))
    assert pieces[-1].is_last and not any(piece.is_last for piece in pieces[:-1])
    assert pieces[0].start == 0.0 and pieces[0].frame_start == 0
    audio = np.concatenate([piece.audio for piece in pieces])
    np.testing.assert_array_equal(audio, whole.audio[0])
    if whole.frames is not None:
        frames = np.concatenate([piece.frames for piece in pieces if piece.frames is not None])
        np.testing.assert_array_equal(frames, whole.frames[0])
    starts = np.cumsum([0] + [len(piece.audio) for piece in pieces[:-1]]) / SAMPLE_RATE
    np.testing.assert_allclose([piece.start for piece in pieces], starts)
    return pieces


def test_one_chunk_streams_as_the_call_makes_it(pipe, reference):
    (piece,) = assert_stream_equals_call(pipe, TEXT, reference=reference, num_inference_steps=STEPS)
    assert piece.frames.ndim == 4  # watermarked like the call's: one piece, the same marks


def test_long_text_streams_chunk_by_chunk_and_joins_exactly(pipe, reference):
    pieces = assert_stream_equals_call(pipe, LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                                       max_chunk_seconds=CHUNK_SECONDS, watermark=False)
    assert len(pieces) >= 2
    frames = [piece.frame_start for piece in pieces]
    assert frames == sorted(frames)


def test_lipsync_windows_stream(pipe, reference):
    speech = (SAMPLE_RATE, make_voice(3.2, "A longer recording that needs two windows of lip sync."))
    pieces = assert_stream_equals_call(pipe, audio=speech, reference=reference, num_inference_steps=STEPS,
                                       max_chunk_seconds=CHUNK_SECONDS, watermark=False)
    assert len(pieces) == 2


def test_every_streamed_chunk_is_watermarked(pipe, reference):
    pieces = list(pipe.stream(LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                              max_chunk_seconds=CHUNK_SECONDS, generator=seeded(1)))
    assert len(pieces) >= 2
    for piece in pieces:
        assert len(piece.audio) >= 0.5 * SAMPLE_RATE
        assert detect_audio_watermark(piece.audio, SAMPLE_RATE).detected
        assert detect_frame_watermark(piece.frames).detected


def test_speech_only_and_errors(pipe, reference):
    pieces = assert_stream_equals_call(pipe, TEXT, reference=reference, mode="audio", num_inference_steps=STEPS)
    assert all(piece.frames is None for piece in pieces)
    with pytest.raises(ValueError, match="output_type='np'"):
        next(pipe.stream(TEXT, reference=reference, output_type="latent"))
    with pytest.raises(ValueError, match="text is empty"):
        next(pipe.stream("  ", reference=reference))


def test_cascade_streams_the_visual_pipelines_lipsync(pipe, reference, data_dir):
    from omnitalker.convert.pipeline import build_pipeline

    speech = build_pipeline(data_dir / "f5tts_v1_tiny.safetensors", data_dir / "f5tts_vocab.txt",
                            data_dir / "vocos_tiny", version="v1")
    speech.set_progress_bar_config(disable=True)
    pieces = assert_stream_equals_call(speech, TEXT, reference=reference, visual_pipeline=pipe,
                                       num_inference_steps=STEPS, watermark=False)
    assert pieces[0].frames is not None


def test_a_short_first_chunk_streams_early_and_joins_as_the_call_with_it(pipe, reference):
    pieces = assert_stream_equals_call(pipe, LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                                       first_chunk_seconds=FIRST_SECONDS, watermark=False)
    assert len(pieces) >= 2
    first = len(pieces[0].audio) / SAMPLE_RATE
    assert 0.5 <= first <= 1.6 * FIRST_SECONDS  # about a second of speech (a word or pause away), marked
    whole = pipe(LONG_TEXT, reference=reference, num_inference_steps=STEPS, first_chunk_seconds=FIRST_SECONDS,
                 generator=seeded(7), watermark=False)
    np.testing.assert_array_equal(pieces[-1].mel, whole.mel[0])  # the last piece carries the item's mel, codes
    np.testing.assert_array_equal(pieces[-1].visual_codes, whole.visual_codes[0])


def test_the_first_chunk_option_leaves_short_texts_whole_and_is_checked(pipe, reference):
    whole = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(3))
    short = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(3),
                 first_chunk_seconds=FIRST_SECONDS)  # under two first chunks long: one chunk, as without it
    np.testing.assert_array_equal(short.audio[0], whole.audio[0])
    with pytest.raises(ValueError, match="first_chunk_seconds must be between"):
        pipe(TEXT, reference=reference, first_chunk_seconds=0.1)


def test_watermarked_stream_with_a_short_first_chunk_marks_every_piece(pipe, reference):
    pieces = list(pipe.stream(LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                              first_chunk_seconds=FIRST_SECONDS, generator=seeded(1)))
    assert len(pieces) >= 2
    for piece in pieces:
        assert detect_audio_watermark(piece.audio, SAMPLE_RATE).detected
        assert detect_frame_watermark(piece.frames).detected


def test_lipsync_with_a_short_first_window(pipe, reference):
    speech = (SAMPLE_RATE, make_voice(3.2, "A longer recording that needs two windows of lip sync."))
    pieces = assert_stream_equals_call(pipe, audio=speech, reference=reference, num_inference_steps=STEPS,
                                       first_chunk_seconds=FIRST_SECONDS, watermark=False)
    assert len(pieces) >= 2 and len(pieces[0].audio) / SAMPLE_RATE <= FIRST_SECONDS


def test_a_durations_model_streams_a_short_first_chunk_as_its_call(tmp_path):
    pipe = dummy_pipeline(text_layout="durations")
    video = make_reference_video(tmp_path / "ref.mp4", seconds=1.5, size=160)
    reference = pipe.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)
    pieces = assert_stream_equals_call(pipe, LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                                       first_chunk_seconds=FIRST_SECONDS, watermark=False)
    assert len(pieces) >= 2 and len(pieces[0].audio) / SAMPLE_RATE <= 1.6 * FIRST_SECONDS
