"""Gradio demo: handlers called directly, the 2-D flow toy, and gradio_client against a local launch.

    python -m pytest tests/test_app.py -q

A tiny random pipeline (tests/pipeline_fixtures.py) and 2 sampling steps keep it fast; nothing touches the
network. The real-browser test is tests/test_app_browser.py. Under load (issue 14): the per-request budget and its
messages, three sessions at once each getting their own result, and no files left behind (a failed request,
a session's older results, a closed page; 100 requests: slow).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

gr = pytest.importorskip("gradio")

from omnitalker.io.video import read_video  # noqa: E402
from omnitalker.pipeline import OmniTalkerPipeline  # noqa: E402
from omnitalker.pipeline.limits import InputLimits  # noqa: E402
from omnitalker.ui import toy_flow  # noqa: E402
from omnitalker.ui.app import DEFAULT_EXAMPLES, build_demo  # noqa: E402
from omnitalker.ui.handlers import (  # noqa: E402
    GENERIC_ERROR,
    LOCAL_SESSION,
    RESULTS_FOLDER,
    RESULTS_PER_SESSION,
    DemoHandlers,
    app_limits,
)
from omnitalker.ui.serving import ServingSettings  # noqa: E402
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

    from omnitalker.data.synthetic import espeak_text
    from omnitalker.frontend.espeak import synthesize_many

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
    assert "The reference transcript is required" in str(caught.value) and "English" in str(caught.value)


def test_talk_photo_and_voice(handlers, media):
    video, *_ = handlers.talk(**talk_args(media, reference_video=None, reference_image=media["photo"],
                                          reference_audio=media["voice"]))
    assert read_video(video).duration > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"reference_video": None, "reference_image": "photo"}, "a photo needs a voice sample"),
        ({"reference_video": "bad"}, "The reference video"),
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


def test_upload_seconds_limit_names_the_space_variable(pipe, media, tmp_path):
    handlers = DemoHandlers(pipe, output_root=tmp_path, limits=InputLimits(max_seconds=1.0, audience="space"))
    with pytest.raises(gr.Error, match="more than the limit of 1 seconds") as caught:
        handlers.talk(**talk_args(media))
    assert "OMNITALKER_MAX_SECONDS" in str(caught.value) and not any(tmp_path.iterdir())  # refused before work


def test_text_length_limit_is_refused_before_any_work(pipe, media, tmp_path, monkeypatch):
    handlers = DemoHandlers(pipe, output_root=tmp_path, limits=app_limits({"OMNITALKER_MAX_TEXT_LENGTH": "40"}))
    monkeypatch.setattr(pipe, "prepare_reference", lambda *args, **kwargs: pytest.fail("the reference was analysed"))
    with pytest.raises(gr.Error) as caught:
        handlers.talk(**talk_args(media, text="A sentence that is a good deal longer than forty characters."))
    assert "The text is 60 characters long" in str(caught.value) and "OMNITALKER_MAX_TEXT_LENGTH" in str(caught.value)


def test_photo_and_speech_limits_name_their_variables(pipe, media, tmp_path):
    handlers = DemoHandlers(pipe, output_root=tmp_path, limits=InputLimits(max_pixels=100 * 100, audience="space"))
    with pytest.raises(gr.Error, match="The photo is 192x192.*OMNITALKER_MAX_PIXELS"):
        handlers.talk(**talk_args(media, reference_video=None, reference_image=media["photo"],
                                  reference_audio=media["voice"]))
    handlers = DemoHandlers(pipe, output_root=tmp_path, limits=InputLimits(max_audio_seconds=1.0, audience="space"))
    with pytest.raises(gr.Error, match="The speech to lip-sync is 1.5 s long.*OMNITALKER_MAX_AUDIO_SECONDS"):
        handlers.lipsync(media["photo"], None, media["voice"], num_inference_steps=STEPS)


def test_app_limits_come_from_the_space_variables():
    limits = app_limits({})
    assert (limits.max_text_length, limits.max_seconds, limits.max_audio_seconds, limits.max_file_mb) == (1000, 60, 30, 25)
    limits = app_limits({"OMNITALKER_MAX_TEXT_LENGTH": "2000", "OMNITALKER_MAX_FILE_MB": "50"})
    assert (limits.max_text_length, limits.max_file_mb, limits.audience) == (2000, 50.0, "space")
    demo = build_demo(examples_dir=None, limits=limits)
    assert demo.omnitalker_limits is limits  # launch() passes max_file_size from it to gradio


def test_a_failed_request_leaves_no_files(pipe, media, tmp_path, monkeypatch):
    handlers = DemoHandlers(pipe, output_root=tmp_path)

    def broken(out, folder):
        (folder / "omnitalker.mp4").write_bytes(b"half a video")
        raise RuntimeError("disk full")

    monkeypatch.setattr(handlers, "_write_video", broken)
    with pytest.raises(gr.Error):
        handlers.lipsync(media["photo"], None, media["voice"], num_inference_steps=1)
    assert not list(tmp_path.rglob("*.mp4"))


def test_a_request_past_its_time_limit_is_stopped_with_a_message_and_no_file(pipe, media, tmp_path):
    handlers = DemoHandlers(pipe, output_root=tmp_path, max_request_seconds=1e-6)  # past it after the first step
    with pytest.raises(gr.Error, match="time limit of 1e-06 s") as error:
        handlers.talk(**talk_args(media))
    assert "OMNITALKER_MAX_REQUEST_SECONDS" in str(error.value) and "fewer sampling steps" in str(error.value)
    with pytest.raises(gr.Error, match="time limit"):
        handlers.lipsync(media["photo"], None, media["voice"], num_inference_steps=1)
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]


LONG_SPOKEN = "Hello there, it is nice to meet you and to talk about the stars tonight."  # a few seconds


def test_talk_stream_plays_a_short_first_chunk_then_offers_the_whole_mp4(handlers, media):
    said = []
    steps = list(handlers.talk_stream(**talk_args(media, text=LONG_SPOKEN),
                                      progress=lambda *args, desc=None, **kwargs: said.append(desc)))
    assert "Generating chunk 1 (about a second of speech)" in said and any("generating chunk 2" in d for d in said)
    segments, final = steps[:-1], steps[-1]
    assert len(segments) >= 2 and all(isinstance(step[0], str) and step[0].endswith(".ts") for step in segments)
    assert len(final) == 6 and isinstance(final[1], str) and final[1].endswith(".mp4")
    counts = [len(read_video(step[0]).frames) for step in segments]
    whole = read_video(final[1])
    assert counts[0] < len(whole.frames) / 2 and sum(counts) == len(whole.frames)  # short first, all of it
    assert abs(whole.audio_duration - whole.duration) <= 1 / whole.fps
    assert final[5] == REFERENCE_TEXT and final[3] is not None and final[4] is not None  # transcript, plots


def test_a_stream_stopped_or_failing_midway_leaves_no_files_and_no_threads(pipe, media, tmp_path, monkeypatch):
    import threading

    handlers = DemoHandlers(pipe, output_root=tmp_path)
    def threads():  # tqdm's monitor is one per process, started by any long bar: not the request's
        return sorted(thread.name for thread in threading.enumerate() if thread.name != "tqdm_monitor")

    before = threads()
    stream = handlers.talk_stream(**talk_args(media, text=LONG_SPOKEN))
    assert next(stream)[0].endswith(".ts")
    stream.close()  # the page went away after the first piece
    original = pipe.stream

    def failing(*args, **kwargs):
        pieces = original(*args, **kwargs)
        yield next(pieces)
        raise RuntimeError("the sampler failed")

    monkeypatch.setattr(pipe, "stream", failing)
    with pytest.raises(gr.Error, match="Something went wrong"):
        list(handlers.talk_stream(**talk_args(media, text=LONG_SPOKEN)))
    monkeypatch.setattr(pipe, "stream", original)
    late = DemoHandlers(pipe, output_root=tmp_path, max_request_seconds=1e-6)  # past it after the first step
    with pytest.raises(gr.Error, match="time limit"):
        list(late.talk_stream(**talk_args(media, text=LONG_SPOKEN)))
    assert not [path for path in tmp_path.rglob("*") if path.is_file()]
    assert threads() == before


def test_lipsync_stream_plays_pieces_then_the_whole_mp4(handlers, media, tmp_path):
    import soundfile

    speech = tmp_path / "speech.wav"
    soundfile.write(speech, make_voice(3.0, "A longer recording for two pieces of lip sync."), 24000)
    steps = list(handlers.lipsync_stream(media["photo"], None, str(speech), num_inference_steps=STEPS))
    assert len(steps) >= 3 and steps[-1][1].endswith(".mp4")
    assert abs(read_video(steps[-1][1]).duration - 3.0) <= 1 / 25


def test_an_upload_is_analysed_once_before_the_click(pipe, media, tmp_path, monkeypatch):
    handlers = DemoHandlers(pipe, output_root=tmp_path)
    calls = []
    original = pipe.prepare_reference
    monkeypatch.setattr(pipe, "prepare_reference", lambda *a, **k: calls.append(k) or original(*a, **k))
    handlers.prefetch_reference(media["video"], None, None)  # the page's upload event
    assert len(calls) == 1 and calls[0]["transcribe"] is False
    first = handlers.talk(**talk_args(media))
    again = handlers.talk(**talk_args(media))
    assert len(calls) == 1  # both clicks found the analysis done
    np.testing.assert_array_equal(read_video(first[0]).audio, read_video(again[0]).audio)
    handlers.prefetch_reference(None, None, None)  # nothing uploaded: nothing to do
    handlers.prefetch_reference(media["bad"], None, None)  # not a video: left for the click to report
    assert len(calls) == 2


def test_the_examples_are_analysed_at_launch(pipe, media, tmp_path, monkeypatch):
    """``build_demo(warm_up=True)`` (``python app.py``) analyses the examples' references in the background: the
    first visitor who picks an example finds its face track done."""
    from omnitalker.ui.app import _example_references

    examples = {"talk_video": [{"video": media["video"]}],
                "talk_photo": [{"image": media["photo"], "voice": media["voice"]}]}
    assert _example_references(examples) == [{"reference_video": media["video"]},
                                             {"reference_image": media["photo"], "reference_audio": media["voice"]}]
    handlers = DemoHandlers(pipe, output_root=tmp_path)
    calls = []
    original = pipe.prepare_reference
    monkeypatch.setattr(pipe, "prepare_reference", lambda *a, **k: calls.append(k) or original(*a, **k))
    handlers.warm_up(_example_references(examples))
    assert len(calls) == 2
    handlers.talk(**talk_args(media))  # the example clip, as a visitor picks it
    assert len(calls) == 2
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "examples.json").write_text(json.dumps({"talk_video": [
        {"video": os.path.relpath(media["video"], folder), "reference_text": REFERENCE_TEXT, "text": "Hi."}]}))
    demo = build_demo(pipe, examples_dir=folder, output_root=tmp_path / "outputs", warm_up=True)
    demo.omnitalker_warm_up.join(timeout=120)
    assert not demo.omnitalker_warm_up.is_alive() and len(calls) == 3
    assert build_demo(pipe, examples_dir=None).omnitalker_warm_up is None  # tests and embedders: no thread


def test_without_ffmpeg_the_page_shows_the_whole_video(handlers, media, monkeypatch):
    import omnitalker.ui.streaming as streaming

    monkeypatch.setattr(streaming.shutil, "which", lambda name: None)  # no ffmpeg / ffprobe programs
    assert not streaming.streaming_available()
    demo = build_demo(handlers.pipeline, examples_dir=None)
    players = [c for c in demo.config["components"] if c.get("props", {}).get("elem_id") == "output-video"]
    assert players and players[0]["props"]["streaming"] is False
    played, download, audio, _, _, transcript = handlers.talk_whole(**talk_args(media))
    assert played == download and read_video(played).duration > 0 and transcript == REFERENCE_TEXT


def test_serving_settings_come_from_the_space_variables():
    assert ServingSettings.from_env({}) == ServingSettings()
    settings = ServingSettings.from_env({"OMNITALKER_QUEUE_SIZE": "4", "OMNITALKER_CONCURRENCY": "2",
                                         "OMNITALKER_MAX_REQUEST_SECONDS": "none"})
    assert (settings.queue_size, settings.concurrency, settings.max_request_seconds) == (4, 2, None)
    with pytest.raises(ValueError, match="OMNITALKER_QUEUE_SIZE='many' is not a whole number"):
        ServingSettings.from_env({"OMNITALKER_QUEUE_SIZE": "many"})
    with pytest.raises(ValueError, match="at least 1.*OMNITALKER_CONCURRENCY"):
        ServingSettings.from_env({"OMNITALKER_CONCURRENCY": "0"})
    with pytest.raises(ValueError, match="positive.*OMNITALKER_MAX_REQUEST_SECONDS"):
        ServingSettings.from_env({"OMNITALKER_MAX_REQUEST_SECONDS": "-5"})
    demo = build_demo(None, examples_dir=None, serving=ServingSettings(queue_size=3, concurrency=1))
    assert demo._queue.max_size == 3


def test_a_session_keeps_its_newest_results_until_it_ends(pipe, media, tmp_path):
    handlers = DemoHandlers(pipe, output_root=tmp_path)
    session = SimpleNamespace(session_hash="abc-123")
    videos = [handlers.lipsync(media["photo"], None, media["voice"], num_inference_steps=1, seed=seed,
                               request=session) for seed in range(RESULTS_PER_SESSION + 2)]
    kept = sorted(str(path) for path in (tmp_path / "abc-123").rglob("*.mp4"))
    assert kept == sorted(videos[-RESULTS_PER_SESSION:])  # the newest, the older ones gone
    handlers.lipsync(media["photo"], None, media["voice"], num_inference_steps=1)  # another session (no request)
    handlers.end_session(session)  # the page was closed
    assert not (tmp_path / "abc-123").exists() and len(list((tmp_path / LOCAL_SESSION).rglob("*.mp4"))) == 1


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
def server(pipe, tmp_path_factory):
    """The demo launched locally; results go to gradio's cache (its default), served in place."""
    gradio_dir = tmp_path_factory.mktemp("gradio")
    os.environ["GRADIO_TEMP_DIR"] = str(gradio_dir)
    demo = build_demo(pipe)
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True,
                            max_file_size="5mb")
    yield SimpleNamespace(url=url, gradio_dir=gradio_dir, results=gradio_dir / RESULTS_FOLDER,
                          downloads=tmp_path_factory.mktemp("downloads"))
    demo.close()


def new_client(server):
    from gradio_client import Client

    return Client(server.url, verbose=False, download_files=str(server.downloads))


@pytest.fixture(scope="module")
def client(server):
    client = new_client(server)
    yield client
    client.close()


def test_client_lists_the_endpoints(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/talk", "/lipsync", "/learn"} <= set(endpoints)


def test_client_generates_and_two_queued_requests_complete(client, media):
    from gradio_client import handle_file

    args = (handle_file(media["video"]), None, None, REFERENCE_TEXT, "Hello there.", STEPS, 2.0, 0.5, 0.5, 1.0)
    jobs = [client.submit(*args, seed, api_name="/talk") for seed in (0, 1)]  # the second waits in the queue
    for job in jobs:
        _, video, audio, _, _, transcript = job.result(timeout=120)  # (the played stream, the mp4, ...)
        assert read_video(video["video"] if isinstance(video, dict) else video).duration > 0
        assert transcript == REFERENCE_TEXT


def test_client_with_an_empty_transcript_box_gets_the_recognised_one(client, media):
    from gradio_client import handle_file

    from omnitalker.eval.wer import word_error_rate

    _, video, _, _, _, transcript = client.predict(None, handle_file(media["photo"]), handle_file(media["english"]), "",
                                                "Hello.", 1, 2.0, 0.5, 0.5, 1.0, 0, api_name="/talk")
    assert read_video(video["video"] if isinstance(video, dict) else video).duration > 0
    assert word_error_rate(SPOKEN, transcript) <= MAX_WER, transcript


def test_client_sees_the_friendly_error(client, media):
    from gradio_client import handle_file

    with pytest.raises(Exception, match="a photo needs a voice sample"):
        client.predict(None, handle_file(media["photo"]), None, REFERENCE_TEXT, "Hello.", STEPS, 2.0, 0.5, 0.5, 1.0,
                       0, api_name="/talk")


def test_three_sessions_at_once_each_get_their_own_result(server, media):
    """One request running, two browsers submitting at once: the queue holds, nothing mixes."""
    from gradio_client import handle_file
    from gradio_client.utils import Status

    texts = {"first": "Hi.", "second": "Hello there, nice to see you.",
             "third": "Hello there, it is really very nice to see you all here again today."}
    clients = {name: new_client(server) for name in texts}
    try:
        def submit(name):
            return clients[name].submit(handle_file(media["video"]), None, None, f"Transcript of the {name}.",
                                        texts[name], STEPS, 2.0, 0.5, 0.5, 1.0, 0, api_name="/talk")

        jobs = {"first": submit("first")}
        deadline = time.time() + 60
        while jobs["first"].status().code not in (Status.PROCESSING, Status.FINISHED) and time.time() < deadline:
            time.sleep(0.05)
        jobs.update({name: submit(name) for name in ("second", "third")})
        durations = {}
        for name, job in jobs.items():
            _, video, _, _, _, transcript = job.result(timeout=180)
            assert transcript == f"Transcript of the {name}."  # each gets its own result back
            durations[name] = read_video(video["video"] if isinstance(video, dict) else video).duration
        assert durations["first"] < durations["second"] < durations["third"]  # the text each one typed
        for client in clients.values():  # one folder per session, with that session's result only
            assert len(list((server.results / client.session_hash).rglob("*.mp4"))) == 1
    finally:
        for client in clients.values():
            client.close()


def _files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


@pytest.mark.slow  # 100 requests through the queue (~1 s each)
def test_no_files_left_after_100_requests(server, media):
    from gradio_client import handle_file

    client = new_client(server)
    counts = []
    for index in range(100):
        client.predict(handle_file(media["photo"]), None, handle_file(media["voice"]), 1, index, api_name="/lipsync")
        if index in (9, 99):
            counts.append(len(_files(server.gradio_dir)))
    session = server.results / client.session_hash
    # files on the server do not grow with the requests (the first count may still hold files of the tests
    # before, which their sessions' unload deletes in the background)
    assert counts[1] <= counts[0]
    assert len(list(session.glob("request-*"))) == RESULTS_PER_SESSION
    assert not [path for path in _files(server.gradio_dir) if path.name.endswith(".part")]  # no half-written file
    client.close()  # the page is closed: its results go (demo.unload)
    deadline = time.time() + 30
    while time.time() < deadline and session.exists():
        time.sleep(0.2)
    assert not session.exists()


def test_demo_builds_without_a_pipeline_and_ships_examples():
    demo = build_demo()  # lazy: nothing is loaded until a request comes
    assert isinstance(demo, gr.Blocks)
    assert (DEFAULT_EXAMPLES / "examples.json").is_file()
    for name in ("astronaut_talking.mp4", "astronaut.png", "voice.wav", "driving_speech.wav"):
        assert (DEFAULT_EXAMPLES / name).stat().st_size < 1_000_000
    assert torch.get_num_threads() >= 1


def test_the_page_says_what_the_demo_does_with_a_real_voice_and_which_languages():
    import json

    from omnitalker.notices import DEMO_REAL_VOICE_NOTICE

    def texts(demo):
        return json.dumps(demo.config["components"], ensure_ascii=False)

    bundled = texts(build_demo(examples_dir=None))  # the bundled demo: synthetic voices only
    assert DEMO_REAL_VOICE_NOTICE in bundled and "English or Mandarin Chinese" in bundled
    assert DEMO_REAL_VOICE_NOTICE not in texts(build_demo("f5tts-v1", examples_dir=None))  # a real-voice pipeline


def test_the_steps_sliders_start_at_the_pipelines_own_default(pipe, tmp_path):
    original = pipe.scheduler.config.num_inference_steps
    pipe.scheduler.register_to_config(num_inference_steps=7)
    try:
        assert DemoHandlers(pipe, output_root=tmp_path).steps_default() == 7
        demo = build_demo(pipe, examples_dir=None)
        sliders = [c["props"]["value"] for c in demo.config["components"]
                   if c.get("props", {}).get("label") == "Sampling steps"]
        assert sliders == [7, 7]
    finally:
        pipe.scheduler.register_to_config(num_inference_steps=original)
    assert DemoHandlers(DEFAULT_EXAMPLES.parent / "weights" / "omnitalker-demo", output_root=tmp_path).steps_default() \
        == json.loads((DEFAULT_EXAMPLES.parent / "weights" / "omnitalker-demo" / "scheduler" /
                       "scheduler_config.json").read_text())["num_inference_steps"]
