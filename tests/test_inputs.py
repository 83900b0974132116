"""Any input a person uploads (issue 14), at a small scale: the output size policy, the streamed reference video,
bounded photo decoding, memory flat in the text length, and the limit messages.

    python -m pytest tests/test_inputs.py -q

Memory is compared as ratios (tracemalloc peaks in process, ru_maxrss in a fresh interpreter), never wall clock.
bench/inputs.py measures the full-size cases (12 / 48 MP photos, a 4K 60 s clip, 5,000-character texts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import pytest

from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.io.export import export_to_video
from omnitalker.io.frames import FrameStream
from omnitalker.io.image import exif_orient, fit_within, load_image
from omnitalker.io.video import read_video, read_video_window
from omnitalker.pipeline import OmniTalkerPipeline
from omnitalker.pipeline.limits import LIMITS, InputLimits, as_limits, check_max_side, max_side_from_env
from tests.pipeline_fixtures import (
    REFERENCE_TEXT,
    animate_face,
    astronaut_face,
    dummy_pipeline,
    make_reference_video,
    make_voice,
    seeded,
)

ROOT = Path(__file__).resolve().parent.parent
STEPS = 1
SENTENCE = "We talk about the stars tonight. "
MAX_STREAMED_GROWTH = 1.10  # peak memory of a 3x longer text, streamed, relative to the short one (issue: ~10 %)
MIN_UNSTREAMED_GROWTH = 1.6  # ... and held as one array (measured 2.1x): the test can tell the two apart


generator = seeded


@pytest.fixture(scope="module")
def pipe() -> OmniTalkerPipeline:
    return dummy_pipeline()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    import soundfile

    folder = tmp_path_factory.mktemp("inputs")
    big = cv2.resize(astronaut_face(192), (960, 960), interpolation=cv2.INTER_CUBIC)  # a "phone photo"
    cv2.imwrite(str(folder / "big.jpg"), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    cv2.imwrite(str(folder / "small.png"), cv2.cvtColor(astronaut_face(192), cv2.COLOR_RGB2BGR))
    soundfile.write(folder / "voice.wav", make_voice(1.5), SAMPLE_RATE)
    return {"big": folder / "big.jpg", "small": folder / "small.png", "voice": folder / "voice.wav",
            "folder": folder}


# ---------------------------------------------------------------------------------------------- size policy


def test_fit_within_scales_the_longer_side_and_never_up():
    assert fit_within(4000, 3000, 1024) == (1024, 768)
    assert fit_within(3000, 4000, 1024) == (768, 1024)
    assert fit_within(474, 474, 1024) == (474, 474)
    assert fit_within(4000, 3000, None) == (4000, 3000)


def test_a_large_photo_is_rendered_at_max_side(pipe, media):
    reference = pipe.prepare_reference(reference_image=str(media["big"]), reference_audio=str(media["voice"]),
                                       reference_text=REFERENCE_TEXT, max_side=256)
    assert reference.image.shape[:2] == (256, 256)  # decoded at the working size
    out = pipe("Hi.", reference=reference, num_inference_steps=STEPS, max_side=256, generator=generator())
    assert out.frames[0].shape[1:3] == (256, 256)


def test_a_prepared_full_size_reference_is_scaled_at_render_time(pipe, media):
    reference = pipe.prepare_reference(reference_image=str(media["big"]), reference_audio=str(media["voice"]),
                                       reference_text=REFERENCE_TEXT, max_side=None)
    assert reference.image.shape[:2] == (960, 960)
    seen = []
    original = pipe.renderer.prepare
    pipe.renderer.prepare = lambda image, landmarks, *frames: seen.append(image.shape) or original(image, landmarks, *frames)
    try:
        out = pipe("Hi.", reference=reference, num_inference_steps=STEPS, max_side=320, generator=generator())
        pipe("Hi.", reference=reference, num_inference_steps=STEPS, max_side=320, generator=generator())
    finally:
        pipe.renderer.prepare = original
    assert out.frames[0].shape[1:3] == (320, 320)
    assert seen == [(320, 320, 3)]  # the renderer never saw 960 px, and prepared once: cached per reference and size


def test_a_small_photo_is_never_upscaled(pipe, media):
    out = pipe("Hi.", reference_image=str(media["small"]), reference_audio=str(media["voice"]),
               reference_text=REFERENCE_TEXT, num_inference_steps=STEPS, max_side=1024, generator=generator())
    assert out.frames[0].shape[1:3] == (192, 192)


def test_max_side_is_checked():
    check_max_side(None)
    check_max_side(1024)
    for bad in (100, 512.0, True, "1024"):
        with pytest.raises(ValueError, match="max_side must be a whole number of pixels >= 256"):
            check_max_side(bad)
    assert max_side_from_env(environ={"OMNITALKER_MAX_SIDE": "720"}) == 720
    assert max_side_from_env(environ={"OMNITALKER_MAX_SIDE": "none"}) is None
    assert max_side_from_env(environ={}) == 1024


# ---------------------------------------------------------------------------------------------- photos


def test_exif_orientation_matches_pil():
    from PIL import Image, ImageOps

    pixels = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    for orientation in range(1, 9):
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = orientation
        image.info["exif"] = exif.tobytes()
        expected = np.asarray(ImageOps.exif_transpose(image))
        np.testing.assert_array_equal(exif_orient(pixels, orientation), expected, err_msg=f"orientation {orientation}")


def test_a_phone_photo_is_turned_upright(tmp_path):
    from PIL import Image

    face = astronaut_face(192)
    sideways = np.ascontiguousarray(np.rot90(face, 1))  # stored turned, with EXIF 6 ("rotate 90 cw to view")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(sideways).save(tmp_path / "phone.jpg", quality=95, exif=exif.tobytes())
    upright = load_image(tmp_path / "phone.jpg")
    assert np.abs(upright.astype(int) - face.astype(int)).mean() < 4  # JPEG noise only


def test_a_large_jpeg_is_decoded_at_reduced_scale(tmp_path):
    """Peak RSS of loading a 3000^2 JPEG at max_side=512, in a fresh interpreter, vs its full RGB size."""
    side = 3000
    photo = cv2.resize(astronaut_face(192), (side, side), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(tmp_path / "big.jpg"), photo)
    script = (
        "import resource, json, sys\n"
        "from omnitalker.pipeline.reference import load_image\n"
        "load_image(sys.argv[2], max_side=512)  # warm up: imports, libjpeg\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "image = load_image(sys.argv[1], max_side=int(sys.argv[3]))\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(json.dumps({'kb': after - before, 'shape': image.shape}))\n"
    )
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), astronaut_face(192))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", script, str(tmp_path / "big.jpg"), str(small), "512"],
                         capture_output=True, text=True, env=env, check=True)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["shape"] == [512, 512, 3]
    full_kb = side * side * 3 / 1024
    assert result["kb"] < 0.2 * full_kb, result  # the full-size image never existed in memory


# ---------------------------------------------------------------------------------------------- videos


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """8 s of a 384 px talking astronaut (no audio), for the streamed window."""
    path = tmp_path_factory.mktemp("clip") / "long.mp4"
    export_to_video(animate_face(astronaut_face(384), 8 * 25), str(path), fps=25)
    return path


def _old_window(path, start, end):
    """What read_video_window did before streaming: decode everything up to `end` at full size, then cut."""
    from omnitalker.io.video import read_video as read_all

    video = read_all(path, max_seconds=end + 1.0 / 93.75)
    times = video.timestamps + 0.5 / video.fps
    return video.frames[(times >= start) & (times < end)]


def test_the_reference_window_is_streamed_at_the_working_size(long_clip):
    tracemalloc.start()
    frames, fps = read_video_window(long_clip, 5.0, 6.0, max_side=128)
    _, streamed_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    old = _old_window(long_clip, 5.0, 6.0)
    _, old_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert frames.shape == (len(old), 128, 128, 3) and abs(fps - 25) < 0.1
    assert streamed_peak < 0.05 * old_peak, (streamed_peak, old_peak)


def test_the_streamed_window_has_the_same_frames(long_clip):
    frames, _ = read_video_window(long_clip, 5.0, 6.0)  # seeks to a keyframe before 5 s
    np.testing.assert_array_equal(frames, _old_window(long_clip, 5.0, 6.0))
    start_frames, _ = read_video_window(long_clip, 0.0, 1.0)  # no seek
    np.testing.assert_array_equal(start_frames, _old_window(long_clip, 0.0, 1.0))


def test_a_fast_clip_is_thinned_to_sixty_fps(tmp_path):
    path = tmp_path / "fast.mp4"
    export_to_video(animate_face(astronaut_face(128), 120, fps=120), str(path), fps=120)
    frames, fps = read_video_window(path, 0.0, 1.0)
    assert abs(fps - 60) < 1 and abs(len(frames) - 60) <= 1


# ---------------------------------------------------------------------------------------------- long text


def _peak_bytes(pipe, reference, text: str, stream: bool, path: Path) -> int:
    """tracemalloc peak of one generation and its mp4 export (numpy frames, codes, watermarks)."""
    tracemalloc.start()
    out = pipe(text, reference=reference, num_inference_steps=STEPS, max_chunk_seconds=3.0, stream_frames=stream,
               generator=generator())
    export_to_video(out.frames[0], str(path), fps=int(out.fps), audio=out.audio[0], sample_rate=out.sample_rate)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, len(out.frames[0])


@pytest.mark.slow  # four generations of up to 11 s under tracemalloc (~30 s)
def test_memory_is_flat_in_the_text_length_when_streamed(pipe, tmp_path, monkeypatch):
    """A 3x longer text (chunked: 3 s per chunk) costs the same peak memory when the frames are streamed."""
    from omnitalker.pipeline import decode as pipeline_module

    monkeypatch.setattr(pipeline_module, "FRAME_CHUNK_PIXELS", 50 * 192 * 192)  # 50 frames a chunk at this size
    reference = pipe.prepare_reference(reference_video=make_reference_video(tmp_path / "ref.mp4", 1.5, size=192),
                                       reference_text=REFERENCE_TEXT)
    pipe("Hi.", reference=reference, num_inference_steps=STEPS, stream_frames=True)  # warm up (lazy imports)
    short_peak, short_frames = _peak_bytes(pipe, reference, SENTENCE * 2, True, tmp_path / "short.mp4")
    long_peak, long_frames = _peak_bytes(pipe, reference, SENTENCE * 6, True, tmp_path / "long.mp4")
    held_short, _ = _peak_bytes(pipe, reference, SENTENCE * 2, False, tmp_path / "held_short.mp4")
    held_long, _ = _peak_bytes(pipe, reference, SENTENCE * 6, False, tmp_path / "held_long.mp4")
    assert long_frames > 2.5 * short_frames
    assert long_peak < MAX_STREAMED_GROWTH * short_peak, (short_peak, long_peak)
    assert held_long > MIN_UNSTREAMED_GROWTH * held_short, (held_short, held_long)
    assert len(read_video(str(tmp_path / "long.mp4")).frames) == long_frames


def test_a_streamed_video_equals_the_array(pipe, tmp_path):
    reference = pipe.prepare_reference(reference_video=make_reference_video(tmp_path / "ref.mp4", 1.5, size=160),
                                       reference_text=REFERENCE_TEXT)
    text = SENTENCE * 3
    held = pipe(text, reference=reference, num_inference_steps=STEPS, max_chunk_seconds=3.0, generator=generator())
    streamed = pipe(text, reference=reference, num_inference_steps=STEPS, max_chunk_seconds=3.0,
                    stream_frames=True, generator=generator())
    frames = streamed.frames[0]
    assert isinstance(frames, FrameStream) and frames.shape == held.frames[0].shape
    np.testing.assert_array_equal(np.asarray(frames), held.frames[0])  # watermarked the same, chunk by chunk
    np.testing.assert_array_equal(frames[7], held.frames[0][7])
    np.testing.assert_array_equal(frames[60:70], held.frames[0][60:70])
    np.testing.assert_array_equal(streamed.audio[0], held.audio[0])
    with pytest.raises(ValueError, match="stream_frames=True"):
        pipe(text, reference=reference, num_inference_steps=STEPS, stream_frames=True, output_type="pt")


def test_frame_stream_reports_progress_per_chunk():
    updates = []

    class Recorder:
        def __init__(self, total, desc, unit):
            updates.append(("open", total, desc))

        def update(self, count):
            updates.append(count)

        def close(self):
            updates.append("close")

    stream = FrameStream(120, 4, 6, lambda start, stop: np.full((stop - start, 4, 6, 3), start % 256, np.uint8),
                         chunk_frames=50, progress=Recorder)
    assert sum(1 for _ in stream) == 120
    assert updates == [("open", 120, "Rendering frames"), 50, 50, 20, "close"]
    with pytest.raises(ValueError, match="expected"):
        list(FrameStream(3, 4, 6, lambda start, stop: np.zeros((1, 4, 6, 3), np.uint8)))


# ---------------------------------------------------------------------------------------------- limits


def _assert_names_the_fix(message: str, name: str) -> None:
    _, _, flag, variable = LIMITS[name]
    assert f"limits=InputLimits({name}=...)" in message and flag in message and variable in message, message


def test_limits_are_checked_before_any_work(pipe, media, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the reference was analysed before the limits were checked")

    monkeypatch.setattr(pipe, "prepare_reference", never)
    photo = dict(reference_image=str(media["big"]), reference_audio=str(media["voice"]), reference_text=REFERENCE_TEXT)
    cases = [
        ({"max_pixels": 500 * 500}, {}, "max_pixels", "960x960"),
        ({"max_text_length": 10}, {}, "max_text_length", "characters long"),
        ({"max_file_mb": 0.01}, {}, "max_file_mb", "MB"),
        ({"max_seconds": 1.0}, {}, "max_seconds", "1.5 s long"),
        ({"max_seconds": 1.0}, {"reference_audio": (SAMPLE_RATE, make_voice(1.5))}, "max_seconds", "1.5 s long"),
    ]
    for limits, change, name, amount in cases:
        with pytest.raises(ValueError) as caught:
            pipe("Hello there, how are you?", **{**photo, **change}, limits=limits, num_inference_steps=STEPS)
        _assert_names_the_fix(str(caught.value), name)
        assert amount in str(caught.value)
    with pytest.raises(ValueError) as caught:
        pipe(reference_image=str(media["small"]), audio=str(media["voice"]), limits={"max_audio_seconds": 1.0})
    _assert_names_the_fix(str(caught.value), "max_audio_seconds")
    clip = make_reference_video(tmp_path / "clip.mp4", 1.5, size=192)
    with pytest.raises(ValueError, match="reference_video \\(one frame\\) is 192x192") as caught:
        pipe("Hi.", reference_video=str(clip), limits=InputLimits(max_pixels=100 * 100))
    _assert_names_the_fix(str(caught.value), "max_pixels")


def test_prepare_reference_checks_the_limits_too(pipe, media):
    with pytest.raises(ValueError, match="more than the limit of 250,000 pixels"):
        pipe.prepare_reference(reference_image=str(media["big"]), reference_audio=str(media["voice"]),
                               limits=InputLimits(max_pixels=250_000))


def test_limits_values_and_the_environment():
    assert InputLimits().max_text_length >= 5000 and InputLimits().max_pixels >= 48_000_000  # bench cases pass
    with pytest.raises(ValueError, match="max_pixels must be a positive number or None"):
        InputLimits(max_pixels=0)
    with pytest.raises(ValueError, match="unknown limits"):
        as_limits({"max_pixel": 5})
    limits = InputLimits.from_env({"OMNITALKER_MAX_TEXT_LENGTH": "1_500", "OMNITALKER_MAX_PIXELS": "none"},
                                  max_seconds=60.0)
    assert (limits.max_text_length, limits.max_pixels, limits.max_seconds, limits.audience) == (1500, None, 60.0, "space")
    with pytest.raises(ValueError, match="OMNITALKER_MAX_SECONDS='soon' is not a number"):
        InputLimits.from_env({"OMNITALKER_MAX_SECONDS": "soon"})
    message = str(limits.error("max_text_length", "The text", "2,000 characters long"))
    assert "OMNITALKER_MAX_TEXT_LENGTH" in message and "InputLimits" not in message  # the Space names its variable


def test_cli_flags_set_the_limits_and_the_size(media, tmp_path, capsys):
    from omnitalker.ui.cli import main

    code = main(["generate", "--text", "x" * 50, "--image", str(media["small"]), "--voice", str(media["voice"]),
                 "--out", str(tmp_path / "o.mp4"), "--max-text-length", "20", "--pipeline", str(tmp_path)])
    assert code == 2 and "--max-text-length" in capsys.readouterr().err  # refused before loading the pipeline
    code = main(["generate", "--text", "Hi.", "--image", str(media["small"]), "--voice", str(media["voice"]),
                 "--out", str(tmp_path / "o.mp4"), "--max-side", "100"])
    assert code == 2 and "--max-side must be a whole number of pixels >= 256" in capsys.readouterr().err
