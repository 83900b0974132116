"""The demo in a real browser: Playwright drives Debian's headless Chromium against a local launch.

    python -m pytest tests/test_app_browser.py -q

Upload a reference clip, type the texts, press Generate, wait for a <video> whose duration is > 0 (it plays from
the first streamed piece) and then for the whole mp4 offered for download; leave the
transcript box empty (photo + an espeak voice sample) and see the recognised transcript appear in it; and a
bad request (a photo without a voice sample, a text file named .mp4, a text over the length limit) shows the
friendly error in the page.
Screenshots go to the test's tmp dir. Skipped only when playwright or /usr/bin/chromium is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 120_000  # generation on a busy 2-core machine

pytest.importorskip("gradio")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from omnitalker.pipeline import OmniTalkerPipeline  # noqa: E402
from omnitalker.ui.app import build_demo  # noqa: E402
from tests.pipeline_fixtures import REFERENCE_TEXT, astronaut_face, get_dummy_components, make_reference_video  # noqa: E402
from tests.test_app import MAX_WER, SPOKEN, espeak_voices  # noqa: E402

STEPS = 2
VIDEO_READY = """() => { const v = document.querySelector('#output-video video');
                         return v !== null && Number.isFinite(v.duration) && v.duration > 0; }"""
MP4_READY = "() => document.querySelector('#output-file a[download]') !== null"  # the stream is complete


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    import cv2

    folder = tmp_path_factory.mktemp("browser-media")
    photo = folder / "face.png"
    cv2.imwrite(str(photo), cv2.cvtColor(astronaut_face(192), cv2.COLOR_RGB2BGR))
    not_a_video = folder / "notes.mp4"
    not_a_video.write_text("these are my notes, not a video\n")
    english, _ = espeak_voices(folder)
    return {"video": make_reference_video(folder / "ref.mp4", seconds=1.5), "photo": photo, "bad": not_a_video,
            "english": english}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    demo = build_demo(OmniTalkerPipeline(**get_dummy_components()), output_root=tmp_path_factory.mktemp("served"))
    _, local_url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, max_file_size="5mb")
    yield local_url
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, url, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.locator("#generate").wait_for()
    yield page
    page.screenshot(path=str(tmp_path / "final.png"), full_page=True)
    context.close()


def fill_texts(page, reference_text: str, text: str, steps: int = STEPS) -> None:
    page.locator("#reference-text textarea").fill(reference_text)
    page.locator("#text textarea").fill(text)
    page.get_by_text("Advanced settings").first.click()
    steps_box = page.locator("#steps input[type=number]")
    steps_box.fill(str(steps))
    steps_box.press("Enter")


def test_generate_shows_a_playable_video(page, media, tmp_path):
    page.locator("#reference-video input[type=file]").set_input_files(str(media["video"]))
    page.locator("#reference-video video").wait_for()  # the upload is previewed
    fill_texts(page, REFERENCE_TEXT, "Hello from the browser.")
    page.screenshot(path=str(tmp_path / "filled.png"), full_page=True)
    page.locator("#generate").click()
    page.wait_for_function(VIDEO_READY, timeout=TIMEOUT_MS)  # plays from the first streamed piece
    duration = page.evaluate("document.querySelector('#output-video video').duration")
    page.wait_for_function(MP4_READY, timeout=TIMEOUT_MS)  # then the whole mp4 is offered for download
    page.screenshot(path=str(tmp_path / "generated.png"), full_page=True)
    assert duration > 0
    assert page.locator("#output-file a[download]").get_attribute("download") == "omnitalker.mp4"


def test_empty_transcript_box_is_filled_by_speech_recognition(page, media, tmp_path):
    from omnitalker.eval.wer import word_error_rate

    page.get_by_role("tab", name="Photo + voice").click()
    page.locator("#reference-image input[type=file]").set_input_files(str(media["photo"]))
    page.locator("#reference-image img").first.wait_for()
    page.locator("#reference-audio input[type=file]").set_input_files(str(media["english"]))
    fill_texts(page, "", "Hello from the browser.", steps=1)
    page.locator("#generate").click()
    page.wait_for_function(MP4_READY, timeout=TIMEOUT_MS)  # the transcript comes with the last update
    transcript = page.locator("#reference-text textarea").input_value()
    page.screenshot(path=str(tmp_path / "recognised.png"), full_page=True)
    assert word_error_rate(SPOKEN, transcript) <= MAX_WER, transcript


def test_photo_without_voice_shows_the_friendly_error(page, media, tmp_path):
    page.get_by_role("tab", name="Photo + voice").click()
    page.locator("#reference-image input[type=file]").set_input_files(str(media["photo"]))
    page.locator("#reference-image img").first.wait_for()
    fill_texts(page, REFERENCE_TEXT, "Hello.")
    page.locator("#generate").click()
    page.get_by_text("a photo needs a voice sample").first.wait_for()
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    assert page.locator("#output-video video").count() == 0
    assert "Traceback" not in page.content()


def test_text_file_named_mp4_shows_the_friendly_error(page, media, tmp_path):
    page.locator("#reference-video input[type=file]").set_input_files(str(media["bad"]))
    fill_texts(page, REFERENCE_TEXT, "Hello.")
    page.locator("#generate").click()
    page.get_by_text("The reference video:").first.wait_for()
    page.screenshot(path=str(tmp_path / "bad-upload.png"), full_page=True)
    assert "Traceback" not in page.content()


def test_a_too_long_text_shows_the_limit(page, media, tmp_path):
    from omnitalker.ui.handlers import MAX_TEXT_LENGTH

    page.locator("#reference-video input[type=file]").set_input_files(str(media["video"]))
    page.locator("#reference-video video").wait_for()
    fill_texts(page, REFERENCE_TEXT, "Hello there. " * (MAX_TEXT_LENGTH // 10))
    page.locator("#generate").click()
    page.get_by_text("OMNITALKER_MAX_TEXT_LENGTH").first.wait_for()  # refused before any work, with the variable
    page.screenshot(path=str(tmp_path / "too-long.png"), full_page=True)
    assert page.locator("#output-video video").count() == 0
