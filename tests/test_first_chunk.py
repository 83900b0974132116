"""The short first chunk of a streamed text (issue 34): cut at a pause or a word near a second of speech."""

from __future__ import annotations

from omnitalker.frontend.text import text_length
from omnitalker.pipeline.chunking import split_first
from omnitalker.pipeline.prepare import chunk_texts, lipsync_windows

SENTENCE = "Space is quiet, but I can still tell you a story."


def test_the_first_piece_ends_at_a_nearby_pause():
    assert split_first(SENTENCE, 12) == ("Space is quiet,", "but I can still tell you a story.")


def test_without_a_nearby_pause_the_nearest_word_boundary():
    first, rest = split_first("One two three four five six seven eight nine ten.", 13)
    assert (first, rest) == ("One two three", "four five six seven eight nine ten.")
    assert split_first("Hi", 5) is None  # one word: nothing to cut


def test_chinese_is_cut_between_characters_or_at_its_marks():
    assert split_first("我明天要去北京开会。然后回家", 30) == ("我明天要去北京开会。", "然后回家")
    first, rest = split_first("我明天要去北京开会然后回家", 9)
    assert first + rest == "我明天要去北京开会然后回家" and text_length(first) == 9


def test_chunk_texts_short_first_then_as_usual():
    frames_per_byte = 2.0
    total = round(text_length(SENTENCE) * frames_per_byte)
    assert chunk_texts(SENTENCE, total, frames_per_byte, 10_000) == [SENTENCE]  # no option: one chunk
    first, rest = chunk_texts(SENTENCE, total, frames_per_byte, 10_000, first_chunk_seconds=0.3)
    assert first == "Space is quiet," and rest == "but I can still tell you a story."
    # a text under two first chunks stays whole
    assert chunk_texts(SENTENCE, total, frames_per_byte, 10_000, first_chunk_seconds=0.6) == [SENTENCE]


def test_lipsync_windows_with_a_short_first_one():
    windows = lipsync_windows([0] * 500, max_chunk_seconds=3.0, first_chunk_seconds=1.0)
    assert windows[0] == (0, 94) and windows[-1][1] == 500
    assert [start for start, _ in windows[1:]] == [stop for _, stop in windows[:-1]]
    assert lipsync_windows([0] * 150, 3.0, 1.0) == lipsync_windows([0] * 150, 3.0)  # too short to split


def test_later_chunks_are_laid_out_when_they_are_reached():
    """A "durations" model lays out (runs espeak on) each chunk only when the sampler reaches it: the first chunk of
    a streamed text starts without waiting for the rest's phonemes."""
    from types import SimpleNamespace

    from omnitalker.pipeline.prepare import text_chunks

    laid = []

    def layout_target(chunk, timing, speed, frames):
        laid.append(chunk)
        return SimpleNamespace(num_frames=10 * len(chunk))

    reference = SimpleNamespace(num_frames=300, text="A reference transcript of some length, said slowly.")
    plan = text_chunks(SENTENCE, reference, 1.0, None, 12.0, timing=object(), layout_target=layout_target,
                       first_chunk_seconds=1.0)
    assert len(plan) == 2 and laid == []
    text, frames, layout = plan[0]
    assert text == "Space is quiet," and frames == layout.num_frames == 150 and laid == [text]
    assert [chunk for chunk, _, _ in plan] == ["Space is quiet,", "but I can still tell you a story."]
    assert laid == ["Space is quiet,", "but I can still tell you a story."]  # each laid out once
