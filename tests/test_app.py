"""Gradio demo: handlers called directly, the 2-D flow toy, and gradio_client against a local launch.

    python -m pytest tests/test_app.py -q

A tiny random pipeline (tests/pipeline_fixtures.py) and 2 sampling steps keep it fast; nothing touches the
network. The real-browser test is tests/test_app_browser.py.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

gr = pytest.importorskip("gradio")

from omnitalker import toy_flow  # noqa: E402
from omnitalker.app import DEFAULT_EXAMPLES, build_demo  # noqa: E402
from omnitalker.io.video import read_video  # noqa: E402
from omnitalker.pipeline import OmniTalkerPipeline  # noqa: E402
from omnitalker.ui.handlers import GENERIC_ERROR, DemoHandlers  # noqa: E402
from tests.pipeline_fixtures import (  # noqa: E402
    REFERENCE_TEXT,
    astronaut_face,
    get_dummy_components,
    make_reference_video,
    make_voice,
    synthetic_voice,
)

STEPS = 2
SPOKEN = "Thank you very much for coming today."  # what the espeak voice sample says
MAX_WER = 0.25


@pytest.fixture(scope="module")
def pipe():
    return OmniTalkerPipeline(**get_dummy_components())


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    import cv2
    import soundfile

    folder = tmp_path_factory.mktemp("media")
    video = make_reference_video(folder / "ref.mp4", seconds=1.5)
    photo = folder / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_face(192), cv2.COLOR_RGB2BGR))
    voice = folder / "voice.wav"
    soundfile.write(voice, make_voice(1.5), 24000)
    not_a_video = folder / "notes.mp4"
    not_a_video.write_text("these are my notes, not a video\n")
    english, chinese = espeak_voices(folder)
    return {"video": str(video), "photo": str(photo), "voice": str(voice), "bad": str(not_a_video),
            "english": str(english), "chinese": str(chinese)}


def espeak_voices(folder):
    """English and Chinese voice samples spoken by espeak-ng, for the speech recognizer (empty transcript box)."""
    import soundfile

    from omnitalker.data.espeak import synthesize_many
    from omnitalker.data.synthetic import espeak_text

    english, chinese = synthesize_many([dict(text=SPOKEN, voice="en-us"),
                                        dict(text=espeak_text("我明天要去北京开会。", "zh"), voice="cmn-latn-pinyin")])
    soundfile.write(folder / "english.wav", english.audio, english.sample_rate)
    soundfile.write(folder / "chinese.wav", chinese.audio, chinese.sample_rate)
    return folder / "english.wav", folder / "chinese.wav"


@pytest.fixture(scope="module")
def handlers(pipe, tmp_path_factory):
    return DemoHandlers(pipe, output_root=tmp_path_factory.mktemp("outputs"))


def talk_args(media, **overrides):
    args = {"reference_video": media["video"], "reference_image": None, "reference_audio": None,
            "reference_text": REFERENCE_TEXT, "text": "Hello there.", "num_inference_steps": STEPS, "seed": 0}
    args.update(overrides)
    return args


# ---------------------------------------------------------------------------------------------- handlers


def test_talk_returns_playable_video_audio_and_plots(handlers, media):
    video, audio, pose_figure, mel_figure, transcript = handlers.talk(**talk_args(media))
    clip = read_video(video)
    assert clip.frames.shape[0] > 0 and clip.duration > 0
    assert clip.audio is not None and np.abs(clip.audio).max() > 0
    import soundfile

    wave, rate = soundfile.read(audio)
    assert rate == 24000 and abs(len(wave) / rate - clip.duration) < 0.1
    assert len(pose_figure.axes) == 6 and len(mel_figure.axes) == 2  # 3 angles x (reference, generated)
    assert os.path.dirname(video) == os.path.dirname(audio)  # one folder per request
    assert transcript == REFERENCE_TEXT  # the typed transcript goes back into the box unchanged


def test_talk_with_an_empty_transcript_box_recognises_it(handlers, media):
    from omnitalker.eval.wer import word_error_rate

    video, *_, transcript = handlers.talk(**talk_args(media, reference_video=None, reference_image=media["photo"],
                                                      reference_audio=media["english"], reference_text="  ",
                                                      num_inference_steps=1))
    assert read_video(video).duration > 0
    assert word_error_rate(SPOKEN, transcript) <= MAX_WER, transcript


def test_talk_with_chinese_speech_and_no_transcript_asks_for_it(handlers, media):
    with pytest.raises(gr.Error) as caught:
        handlers.talk(**talk_args(media, reference_video=None, reference_image=media["photo"],
                                  reference_audio=media["chinese"], reference_text=""))
    assert "reference_text is required" in str(caught.value) and "English" in str(caught.value)


def test_talk_photo_and_voice(handlers, media):
    video, *_ = handlers.talk(**talk_args(media, reference_video=None, reference_image=media["photo"],
                                          reference_audio=media["voice"]))
    assert read_video(video).duration > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reference_video": None, "reference_image": "photo"}, "a photo needs a voice sample"),
        ({"reference_video": "bad"}, "reference_video"),
        ({"reference_video": None}, "no reference"),
        ({"text": "   "}, "text is empty"),
        ({"reference_image": "photo"}, "not both"),
    ],
)
def test_talk_bad_input_is_a_friendly_gr_error(handlers, media, overrides, message):
    overrides = {key: media.get(value, value) if isinstance(value, str) else value for key, value in overrides.items()}
    with pytest.raises(gr.Error) as caught:
        handlers.talk(**talk_args(media, **overrides))
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_unexpected_error_is_generic_and_logged(pipe, media, tmp_path, caplog, monkeypatch):
    handlers = DemoHandlers(pipe, output_root=tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA exploded at 0xdeadbeef")

    monkeypatch.setattr(pipe, "prepare_reference", broken)
    with caplog.at_level(logging.ERROR), pytest.raises(gr.Error) as caught:
        handlers.talk(**talk_args(media))
    assert str(caught.value.message) == GENERIC_ERROR
    assert "0xdeadbeef" in caplog.text  # the details stay on the server


def test_missing_weights_folder_is_a_clear_error(tmp_path, media):
    handlers = DemoHandlers(tmp_path / "no-such-weights")
    with pytest.raises(gr.Error, match="demo weights are not available"):
        handlers.talk(**talk_args(media))


def test_long_reference_truncation_is_shown_as_warning(handlers, media, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(gr, "Warning", lambda message, *args, **kwargs: shown.append(message))
    import soundfile

    long_voice = tmp_path / "long.wav"
    soundfile.write(long_voice, synthetic_voice(11.0), 24000)
    handlers.talk(**talk_args(media, reference_video=None, reference_image=media["photo"],
                              reference_audio=str(long_voice), num_inference_steps=1))
    assert any("longer than 10 s" in message for message in shown)


def test_upload_seconds_limit(handlers, media, monkeypatch):
    from omnitalker.ui import handlers as handlers_module

    monkeypatch.setattr(handlers_module, "MAX_UPLOAD_SECONDS", 1.0)
    with pytest.raises(gr.Error, match="upload at most 1 s"):
        handlers.talk(**talk_args(media))


def test_lipsync_photo_follows_the_audio_length(handlers, media):
    video = handlers.lipsync(media["photo"], None, media["voice"], num_inference_steps=STEPS, seed=0)
    clip = read_video(video)
    assert abs(clip.duration - 1.5) < 0.1
    with pytest.raises(gr.Error, match="speech to lip-sync"):
        handlers.lipsync(media["photo"], None, None, num_inference_steps=STEPS)


# ---------------------------------------------------------------------------------------------- flow toy


def test_toy_flow_learns_and_guidance_steers():
    toy = toy_flow.get_toy_flow()
    assert np.mean(toy.losses[-50:]) < 0.8 * np.mean(toy.losses[:50])
    one = toy_flow.sample_trajectories(toy.model, num_steps=1, label=None)
    many = toy_flow.sample_trajectories(toy.model, num_steps=16, label=None)
    assert many.points.shape == (17, toy_flow.DEFAULT_SAMPLES, 2)
    assert toy_flow.distance_to_blobs(many.samples) < 0.5 * toy_flow.distance_to_blobs(one.samples)
    free = toy_flow.sample_trajectories(toy.model, num_steps=8, label=1, cfg_strength=0.0)
    guided = toy_flow.sample_trajectories(toy.model, num_steps=8, label=1, cfg_strength=3.0)
    assert toy_flow.class_accuracy(guided.samples, 1) >= toy_flow.class_accuracy(free.samples, 1)
    assert guided.evaluations == 2 * free.evaluations  # CFG: one extra pass per step
    midpoint = toy_flow.sample_trajectories(toy.model, num_steps=8, solver="midpoint", label=1)
    assert midpoint.points.shape[0] == 9 and midpoint.evaluations == 2 * 8
    with pytest.raises(ValueError, match="solver"):
        toy_flow.sample_trajectories(toy.model, solver="rk4")


def test_toy_uses_the_models_scheduler_grid():
    from omnitalker.flow.scheduler import flow_time_grid

    paths = toy_flow.sample_trajectories(toy_flow.get_toy_flow().model, num_steps=6, sway=-1.0, label=0)
    np.testing.assert_allclose(paths.flow_times, flow_time_grid(6, -1.0).numpy(), atol=1e-6)


def test_learn_handler_returns_figure_and_summary():
    from omnitalker.ui.learn import LABEL_CHOICES, learn

    figure, summary = learn(num_steps=4, solver="midpoint", sway=0.0, cfg_strength=1.0, condition=LABEL_CHOICES[1],
                            seed=0, progress=lambda *args, **kwargs: None)
    assert len(figure.axes) == 2 and "16 network evaluations" in summary.replace("**", "")


# ---------------------------------------------------------------------------------------------- live app


@pytest.fixture(scope="module")
def client(pipe, tmp_path_factory):
    from gradio_client import Client

    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    demo = build_demo(pipe, output_root=tmp_path_factory.mktemp("served"))
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True,
                            max_file_size="5mb")
    client = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("downloads")))
    yield client
    client.close()
    demo.close()


def test_client_lists_the_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/talk", "/lipsync", "/learn"} <= set(endpoints)


def test_client_generates_and_two_queued_requests_complete(client, media):
    from gradio_client import handle_file

    args = (handle_file(media["video"]), None, None, REFERENCE_TEXT, "Hello there.", STEPS, 2.0, 0.5, 0.5, 1.0)
    jobs = [client.submit(*args, seed, api_name="/talk") for seed in (0, 1)]  # the second waits in the queue
    for job in jobs:
        video, audio, _, _, transcript = job.result(timeout=120)
        assert read_video(video["video"] if isinstance(video, dict) else video).duration > 0
        assert transcript == REFERENCE_TEXT


def test_client_with_an_empty_transcript_box_gets_the_recognised_one(client, media):
    from gradio_client import handle_file

    from omnitalker.eval.wer import word_error_rate

    video, _, _, _, transcript = client.predict(None, handle_file(media["photo"]), handle_file(media["english"]), "",
                                                "Hello.", 1, 2.0, 0.5, 0.5, 1.0, 0, api_name="/talk")
    assert read_video(video["video"] if isinstance(video, dict) else video).duration > 0
    assert word_error_rate(SPOKEN, transcript) <= MAX_WER, transcript


def test_client_sees_the_friendly_error(client, media):
    from gradio_client import handle_file

    with pytest.raises(Exception, match="a photo needs a voice sample"):
        client.predict(None, handle_file(media["photo"]), None, REFERENCE_TEXT, "Hello.", STEPS, 2.0, 0.5, 0.5, 1.0,
                       0, api_name="/talk")


def test_demo_builds_without_a_pipeline_and_ships_examples():
    demo = build_demo()  # lazy: nothing is loaded until a request comes
    assert isinstance(demo, gr.Blocks)
    assert (DEFAULT_EXAMPLES / "examples.json").is_file()
    for name in ("astronaut_talking.mp4", "astronaut.png", "voice.wav", "driving_speech.wav"):
        assert (DEFAULT_EXAMPLES / name).stat().st_size < 1_000_000
    assert torch.get_num_threads() >= 1
