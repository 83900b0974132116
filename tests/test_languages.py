"""What the model can speak (omnitalker/frontend/languages.py): other scripts refused with a message that names
them, emoji left out with a warning, invisible characters removed; property-based tests on both tokenizers.

python -m pytest tests/test_languages.py -q
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnitalker.frontend.languages import SUPPORTED_LANGUAGES, check_speakable, clean_text
from omnitalker.frontend.phonemes import PhonemeTokenizer, frame_durations
from omnitalker.frontend.text import OmniTalkerTokenizer

# One sample per writing system a person may type; each must be refused with its script named.
OTHER_SCRIPTS = {
    "Cyrillic": "Привет, как дела?",
    "Greek": "Γειά σου κόσμε",
    "Arabic": "مرحبا بالعالم",
    "Hebrew": "שלום עולם",
    "Devanagari": "नमस्ते दुनिया",
    "Thai": "สวัสดีชาวโลก",
    "Korean Hangul": "안녕하세요",
    "Japanese kana": "こんにちは",
    "Georgian": "გამარჯობა",
    "Armenian": "Բարեւ",
    "Bengali": "নমস্কার",
    "Tamil": "வணக்கம்",
    "Ethiopic": "ሰላም",
    "Latin letters outside the English alphabet": "ʃɪp",
}
# Text of the supported languages that must be spoken (no refusal) and what it must become.
CLEANED = {
    "Ｈｅｌｌｏ": "Hello",  # fullwidth Latin
    "Hi\u200b there\u202e!": "Hi there!",  # zero-width space, right-to-left override
    "Straße": "Strasse",
    "Tiếng Việt": "Tieng Viet",  # accents espeak's English voice would name
    "café": "café",  # Latin-1 accents are read inside words
    "x² ½": "x2 1⁄2",
    "٣ apples": "3 apples",
    "h\u0338\u0322ello": "hello",  # stacked combining marks
    "你好，世界。": "你好，世界。",  # Chinese punctuation kept
    "\x00\x07hello": "hello",
}
SPEAKABLE_ALPHABET = st.sampled_from(list("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789 ,.!?'-éüñ你好我们天气"))


@pytest.fixture(scope="module")
def phonemes() -> PhonemeTokenizer:
    return PhonemeTokenizer.default()


@pytest.fixture(scope="module")
def characters() -> OmniTalkerTokenizer:
    return OmniTalkerTokenizer.default()


@pytest.mark.parametrize("script", sorted(OTHER_SCRIPTS))
def test_other_scripts_are_refused_naming_the_script(script, phonemes, characters):
    text = OTHER_SCRIPTS[script]
    for check in (check_speakable, phonemes.check_speakable, characters.check_speakable, phonemes.phonemize,
                  characters.tokenize):
        with pytest.raises(ValueError, match=f"contains {script} .*{' and '.join(SUPPORTED_LANGUAGES.values())}"):
            check(text)


def test_mixed_text_is_refused_whole_and_names_every_script():
    with pytest.raises(ValueError, match=r"Cyrillic \('Привет'\) and Japanese kana \('こんにちは'\)"):
        check_speakable("Hello Привет and こんにちは, ok?")


def test_a_refusal_names_the_input():
    with pytest.raises(ValueError, match="^reference_text contains Greek"):
        check_speakable("Γειά", what="reference_text")


@pytest.mark.parametrize("text", sorted(CLEANED))
def test_supported_text_is_cleaned_not_refused(text, phonemes):
    assert " ".join(clean_text(text).split()) == CLEANED[text]
    phonemes.check_speakable(text)
    assert len(phonemes.phonemize(text).tokens) > 2


def test_emoji_are_left_out_with_a_warning(phonemes):
    with pytest.warns(UserWarning, match="emoji and symbols are not spoken, left out: 😀 ★"):
        assert phonemes.check_speakable("Hello 😀 world ★") == ["😀", "★"]
    plain = phonemes.phonemize("Hello world").tokens
    assert phonemes.phonemize("Hello 😀 world 👍🏽 ★").tokens == plain  # never "grinning face"
    with pytest.raises(ValueError, match=r"nothing to speak: it contains only emoji or symbols \(😀 🇺 🇸\)"):
        phonemes.check_speakable("😀 🇺🇸")


def test_no_letter_names_for_letters_espeak_would_spell(phonemes):
    # Before the rule these came out as "s hacek", "sharp s", "e acute", "letter 1EBF".
    for text, plain in [("Šš", "Ss"), ("ß", "ss"), ("é", "e"), ("Việt", "Viet")]:
        assert phonemes.phonemize(text).tokens == phonemes.phonemize(plain).tokens


def _check_sequence(seq) -> None:
    assert seq.tokens and len(seq.tokens) == len(seq.starts) == len(seq.ends)
    assert all(0 <= start <= end for start, end in zip(seq.starts, seq.ends, strict=True))
    assert all(a <= b + 1e-9 for a, b in zip(seq.starts, seq.starts[1:], strict=False))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40))
def test_any_string_gives_tokens_with_timings_or_a_value_error(text, phonemes):
    """Arbitrary Unicode: the check and the phonemizer agree, and nothing but a ValueError with a message escapes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            phonemes.check_speakable(text)
        except ValueError as error:
            assert str(error)
            return
    seq = phonemes.phonemize(text)  # what the check passes must be spoken
    _check_sequence(seq)
    ids = phonemes.convert_tokens_to_ids(seq.tokens)
    assert all(0 <= i < phonemes.vocab_size for i in ids)
    frames = max(1, round(seq.seconds * 94))
    assert frame_durations(seq, frames).sum() == frames


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=SPEAKABLE_ALPHABET, min_size=1, max_size=60))
def test_supported_text_is_spoken_by_both_tokenizers(text, phonemes, characters):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not any(char.isalnum() for char in text):
            with pytest.raises(ValueError, match="nothing to speak|empty"):
                check_speakable(text)
            return
        phonemes.check_speakable(text)
        characters.check_speakable(text)
    _check_sequence(phonemes.phonemize(text))
    ids = characters(text, reference_text="Some call me nature")
    assert ids.shape[0] == 1 and (ids[0] >= 0).all()


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80))
def test_character_tokenizer_gives_ids_or_a_value_error(text):
    tokenizer = OmniTalkerTokenizer.default()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tokenizer.check_speakable(text)
        except ValueError as error:
            assert str(error)
            return
        ids = tokenizer(text)
    assert ids.ndim == 2 and ids.shape[1] >= 1 and (ids >= 0).all()
