"""The fast part of the input fuzz harness (bench/fuzz_inputs.py): every text case's expected answer from the
text front-end, and the refusals of broken media through the pipeline and the app's handler, with messages that
name the input and a fix. The long run (every case generated through pipeline, app and CLI) is the bench script.

python -m pytest tests/test_fuzz_inputs.py -q
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from bench.fuzz_inputs import PIPELINE, Runner, media_cases, message_problems, text_cases
from omnitalker.frontend.phonemes import PhonemeTokenizer

# Broken media the pipeline must refuse before any generation (each a few milliseconds to a second).
QUICK_REFUSALS = ("video/zero-bytes", "video/random-bytes", "video/png-named-mp4", "video/wav-named-mp4",
                  "video/text-named-mp4", "video/missing-file", "video/first-kilobyte", "video/audio-only-mp4",
                  "video/video-only-no-voice", "video/russian-transcript", "voice/image-as-voice",
                  "voice/header-only-wav", "voice/silence", "voice/0.3-seconds", "image/zero-bytes",
                  "image/svg-named-png", "image/wav-named-png", "image/video-as-photo", "image/tiny-40px",
                  "lipsync/image-as-speech", "lipsync/zero-bytes")


@pytest.fixture(scope="module")
def tokenizer() -> PhonemeTokenizer:
    return PhonemeTokenizer.default()


def test_the_harness_has_over_300_distinct_cases(tmp_path):
    names = [case.name for case in text_cases() + media_cases(tmp_path / "media")]
    assert len(names) == len(set(names)) >= 300


def test_every_text_case_gets_its_expected_answer(tokenizer):
    """Unsupported text is refused (never an output), supported text is spoken; refusals name input and fix."""
    wrong, messages = [], set()
    for case in text_cases():
        if case.expect == "either" or not isinstance(case.text, str):  # other types: the bench's pipeline path
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                tokenizer.check_speakable(case.text)
                tokenizer.convert_tokens_to_ids(tokenizer.phonemize(case.text).tokens)
                answer = "output"
            except ValueError as error:
                answer = "refusal"
                messages.add(str(error))
        if answer != case.expect:
            wrong.append(case.name)
    assert wrong == []
    assert {message: message_problems(message) for message in messages if message_problems(message)} == {}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    if not (PIPELINE / "model_index.json").is_file():
        pytest.skip(f"the bundled demo weights are not at {PIPELINE}")
    return Runner(str(PIPELINE), steps=1, timeout=60, scratch=tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("path", ["pipeline", "app"])
def test_broken_media_are_refused_with_a_message_and_leave_nothing(runner, path, tmp_path_factory):
    cases = {case.name: case for case in media_cases(Path(tmp_path_factory.mktemp("media")))}
    for name in QUICK_REFUSALS:
        outcome = runner.run(cases[name], path)
        assert (outcome.outcome, outcome.leftovers) == ("refusal", []), (name, outcome.message)
        assert message_problems(outcome.message) == [], (name, outcome.message)
