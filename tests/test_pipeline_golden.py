"""Golden outputs of every pipeline mode: a refactor of the pipeline must keep them (issue 33, item 5).

Each case runs the pipeline on the tiny seeded components (``tests/pipeline_fixtures.py``) with a fixed generator
and two steps, and compares short fingerprints of what it returns (shape, sum, absolute sum and an order-sensitive
weighted sum of every array) with ``tests/data/pipeline_golden.json``. Written before the pipeline became explicit
steps, and kept: a change of any output of any mode fails here.

    python -m pytest tests/test_pipeline_golden.py -q
    OMNITALKER_WRITE_GOLDEN=1 python -m pytest tests/test_pipeline_golden.py -q   # re-record (say why in the commit)
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.io.frames import FrameStream
from omnitalker.pipeline import OmniTalkerPipelineOutput
from tests.pipeline_fixtures import (
    REFERENCE_TEXT,
    astronaut_face,
    dummy_pipeline,
    make_voice,
    seeded,
)

GOLDEN = os.path.join(os.path.dirname(__file__), "data", "pipeline_golden.json")
WRITE = os.environ.get("OMNITALKER_WRITE_GOLDEN") == "1"
STEPS = 2
TEXT = "Hello there, nice to meet you."
LONG_TEXT = "The first sentence is here. The second one follows it. And a third one ends the text."
CHUNK_SECONDS = 2.5  # makes LONG_TEXT three chunks and a 3.2 s recording two lip-sync windows
RELATIVE_TOLERANCE = 1e-4  # other CPUs may round differently; a changed output moves far more than this
DEMO_MEL_SMOOTHING = [0.25, 0.5, 0.25]  # the demo's config (weights/omnitalker-demo/model_index.json)

ARRAYS = ("audio", "frames", "mel", "visual_codes")

_recorded: dict = {}
FACE_SCALE = 0.35  # the synthetic face's landmarks span about 0.5 of the frame
JITTER = 0.3  # pixels of seeded landmark noise per frame: the expression codes move a little


class SyntheticFaceAnalyzer:
    """A deterministic stand-in for MediaPipe: the face template placed on the frame, swaying as the test clip does.
    MediaPipe's landmarks of the same frames vary from call to call within a process (its graphs keep state), so a
    golden output cannot go through it; the pipeline only needs a ``FaceTrack``."""

    def analyze_image(self, pixels):
        return self._track(1, pixels.shape[:2], None)

    def analyze_video(self, frames, fps=None):
        return self._track(len(frames), frames[0].shape[:2], fps)

    @staticmethod
    def _track(count: int, size: tuple[int, int], fps):
        from omnitalker.frontend.face.codes import CODE_FPS, load_face_template
        from omnitalker.frontend.face.landmarks import FaceTrack
        from tests.pipeline_fixtures import HEAD_SWAY_DEGREES, HEAD_SWAY_HZ

        height, width = size
        fps = fps or CODE_FPS
        rng = np.random.default_rng(0)
        face = load_face_template().vertices * FACE_SCALE * min(height, width)  # 478 3
        landmarks = []
        for index in range(count):
            angle = np.deg2rad(HEAD_SWAY_DEGREES * np.sin(2 * np.pi * HEAD_SWAY_HZ * index / fps))
            rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
            points = face.copy()
            points[:, :2] = face[:, :2] @ rotation.T + (width / 2, height / 2.5)
            landmarks.append(points + JITTER * rng.standard_normal(points.shape))
        landmarks = np.stack(landmarks).astype(np.float32)  # t 478 3
        boxes = np.concatenate([landmarks[..., :2].min(1), landmarks[..., :2].max(1)], axis=1)  # t 4
        return FaceTrack(landmarks=landmarks, fps=float(fps), frame_size=(height, width),
                         detected=np.ones(count, bool), boxes=boxes)


class CodesPainter:
    """A stand-in for the renderer's drawing: the reference frame brightened by each frame's codes. The warp
    renderer is the renderer's own business (``tests/test_renderer.py``) and changes on its own; what the pipeline
    hands it (codes retimed to the video frames, the output size) is what this golden test pins."""

    @staticmethod
    def prepare_source(reference, max_side):
        height, width = reference.image.shape[:2]  # already at the working size
        return SimpleNamespace(image=reference.image, size=(width, height))

    @staticmethod
    def render_codes(source, codes):
        shade = 1.0 + np.tanh(np.asarray(codes, np.float64).sum(1))  # t, in (0, 2)
        return np.clip(source.image[None] * (0.5 + 0.25 * shade[:, None, None, None]), 0, 255).astype(np.uint8)


def reference_clip(path, seconds: float, size: int):
    """The talking astronaut as an mp4 whose pixels are the same on every run: MPEG-4 part 2 (x264's output varies
    from run to run in its last bits, and MediaPipe is not used here, so the frames must not)."""
    import av

    from tests.pipeline_fixtures import VIDEO_FPS, animate_face

    frames = animate_face(astronaut_face(size), round(seconds * VIDEO_FPS))  # t h w 3
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=VIDEO_FPS, options={"qscale": "2"})
        video.width, video.height, video.pix_fmt = size, size, "yuv420p"
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode())
        block = av.AudioFrame.from_ndarray(make_voice(seconds)[None], format="flt", layout="mono")
        block.sample_rate = SAMPLE_RATE
        container.mux(sound.encode(block))
        container.mux(sound.encode())
    return path


def golden_pipeline(**kwargs):
    """``dummy_pipeline`` with a deterministic reference analysis (``SyntheticFaceAnalyzer``) and drawing
    (``CodesPainter``)."""
    pipeline = dummy_pipeline(**kwargs)
    pipeline._face_analyzer = SyntheticFaceAnalyzer()
    pipeline.renderer.prepare_source = CodesPainter.prepare_source
    pipeline.renderer.render_codes = CodesPainter.render_codes
    return pipeline


def fingerprint(value) -> list | None:
    """[shape..., sum, |sum|, weighted sum] of an array (weights rise along the flattened array), or None."""
    if value is None:
        return None
    if isinstance(value, FrameStream):
        value = np.asarray(value)
    array = np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value, dtype=np.float64).ravel()
    weights = np.linspace(1.0, 2.0, len(array)) if len(array) else array
    return [*np.shape(value), float(array.sum()), float(np.abs(array).sum()), float((array * weights).sum())]


def output_fingerprint(out) -> dict:
    kinds = {name: getattr(out, name) for name in ARRAYS}
    return {"mode": out.mode, "reference_text": out.reference_text, "sample_rate": out.sample_rate, "fps": out.fps,
            **{name: None if items is None else [fingerprint(item) for item in items] for name, items in kinds.items()},
            "types": sorted({type(item).__name__ for items in kinds.values() if items for item in items})}


@pytest.fixture(scope="module")
def golden():
    if WRITE:
        yield {}
        with open(GOLDEN, "w") as file:
            json.dump(dict(sorted(_recorded.items())), file, indent=1)
        return
    with open(GOLDEN) as file:
        yield json.load(file)


def check(golden, name: str, out) -> None:
    found = output_fingerprint(out)
    if WRITE:
        _recorded[name] = found
        return
    expected = golden[name]
    assert {k: v for k, v in found.items() if k not in ARRAYS} == {k: v for k, v in expected.items()
                                                                   if k not in ARRAYS}, name
    for kind in ARRAYS:
        assert (found[kind] is None) == (expected[kind] is None), (name, kind)
        for item, (got, want) in enumerate(zip(found[kind] or [], expected[kind] or [], strict=True)):
            assert len(got) == len(want) and got[:-3] == want[:-3], (name, kind, item, got, want)  # shape
            np.testing.assert_allclose(got[-3:], want[-3:], rtol=RELATIVE_TOLERANCE, atol=1e-3,
                                       err_msg=f"{name}: {kind}[{item}]")


@pytest.fixture(scope="module")
def pipe():
    return golden_pipeline()


@pytest.fixture(scope="module")
def reference_video(tmp_path_factory):
    return reference_clip(tmp_path_factory.mktemp("golden") / "ref.mp4", seconds=1.5, size=160)


@pytest.fixture(scope="module")
def reference(pipe, reference_video):
    return pipe.prepare_reference(reference_video=reference_video, reference_text=REFERENCE_TEXT)


# ------------------------------------------------------------------------------------------------- joint


def test_joint_from_a_video_file(pipe, reference_video, golden):
    check(golden, "joint_video", pipe(TEXT, reference_video=reference_video, reference_text=REFERENCE_TEXT,
                                      num_inference_steps=STEPS, generator=seeded(0)))


def test_photo_and_voice(pipe, golden):
    check(golden, "photo_voice", pipe(TEXT, reference_image=astronaut_face(160),
                                      reference_audio=(SAMPLE_RATE, make_voice(1.5)), reference_text=REFERENCE_TEXT,
                                      num_inference_steps=STEPS, generator=seeded(1)))


def test_output_types_and_streamed_frames(pipe, reference, golden):
    for output_type in ("np", "pt", "latent"):
        check(golden, f"output_{output_type}", pipe(TEXT, reference=reference, num_inference_steps=STEPS,
                                                    generator=seeded(2), output_type=output_type))
    check(golden, "stream_frames", pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(2),
                                        stream_frames=True))
    check(golden, "no_watermark_speed_duration", pipe(TEXT, reference=reference, num_inference_steps=STEPS,
                                                      generator=seeded(3), watermark=False, speed=1.3, duration=1.1))
    fields = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(2), return_dict=False)
    check(golden, "tuple", OmniTalkerPipelineOutput(*fields))


def test_batch_with_one_generator_per_text_and_a_shared_one(pipe, reference, golden):
    texts = [TEXT, "A shorter one."]
    check(golden, "batch_generators", pipe(texts, reference=reference, num_inference_steps=STEPS,
                                           generator=[seeded(4), seeded(5)]))
    check(golden, "batch_shared_generator", pipe(texts, reference=reference, num_inference_steps=STEPS,
                                                 generator=seeded(4), output_type="latent"))


def test_long_text_in_chunks(pipe, reference, golden):
    check(golden, "chunked", pipe(LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                                  max_chunk_seconds=CHUNK_SECONDS, generator=seeded(6)))
    check(golden, "chunked_batch", pipe([LONG_TEXT, TEXT], reference=reference, num_inference_steps=STEPS,
                                        max_chunk_seconds=CHUNK_SECONDS, generator=seeded(7), output_type="latent"))


def test_guidance_options(pipe, reference, golden):
    check(golden, "guidance", pipe(TEXT, reference=reference, num_inference_steps=3, generator=seeded(8),
                                   guidance_text=2.0, guidance_audio=0.5, guidance_visual=-0.5, guidance_joint=1.0,
                                   guidance_anneal="cosine", guidance_refresh_every=1, output_type="latent"))


def test_callback_replaces_latents(pipe, reference, golden):
    def damp(pipeline, step, timestep, tensors):
        return {name: value * 0.5 for name, value in tensors.items()}

    check(golden, "callback", pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(9),
                                   callback_on_step_end=damp, output_type="latent"))


def test_demo_settings_on_a_longer_reference(tmp_path, golden):
    """The demo's config: mel smoothing, the whole reference's motion size and expression (blinks, gaze)."""
    pipe = golden_pipeline()
    pipe.register_to_config(mel_smoothing=DEMO_MEL_SMOOTHING, match_reference_motion=True,
                            match_reference_expression=True)
    video = reference_clip(tmp_path / "long.mp4", seconds=2.6, size=160)
    reference = pipe.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)
    check(golden, "demo_settings", pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(10)))
    check(golden, "demo_settings_chunked", pipe([LONG_TEXT, TEXT], reference=reference, num_inference_steps=STEPS,
                                                max_chunk_seconds=CHUNK_SECONDS, generator=seeded(11)))


def test_durations_layout(tmp_path, golden):
    pipe = golden_pipeline(text_layout="durations")
    video = reference_clip(tmp_path / "ref.mp4", seconds=2.0, size=128)
    reference = pipe.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)
    check(golden, "durations", pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded(12)))
    check(golden, "durations_chunked", pipe(LONG_TEXT, reference=reference, num_inference_steps=STEPS,
                                            max_chunk_seconds=CHUNK_SECONDS, generator=seeded(13),
                                            output_type="latent"))
    check(golden, "durations_lipsync", pipe(reference=reference, audio=(SAMPLE_RATE, make_voice(1.3)),
                                            num_inference_steps=STEPS, generator=seeded(14)))


# ------------------------------------------------------------------------------------------------- speech only


def test_audio_only_from_a_voice_sample(pipe, golden):
    check(golden, "audio_only_voice", pipe(TEXT, reference_audio=(SAMPLE_RATE, make_voice(1.5)),
                                           reference_text=REFERENCE_TEXT, mode="audio", num_inference_steps=STEPS,
                                           generator=seeded(15)))


def test_audio_only_from_a_video_reference(pipe, reference, golden):
    check(golden, "audio_only_video", pipe(TEXT, reference=reference, mode="audio", num_inference_steps=STEPS,
                                           generator=seeded(16), output_type="pt"))


# ------------------------------------------------------------------------------------------------- lip-sync


def test_lipsync_a_photo(pipe, golden):
    check(golden, "lipsync_photo", pipe(reference_image=astronaut_face(160),
                                        audio=(SAMPLE_RATE, make_voice(1.3, "Any voice will do.")),
                                        num_inference_steps=STEPS, generator=seeded(17)))


def test_lipsync_in_windows_with_a_transcript(pipe, reference, golden):
    speech = (SAMPLE_RATE, make_voice(3.2, "A longer recording that needs two windows of lip sync."))
    check(golden, "lipsync_windows", pipe(audio=speech, reference=reference, num_inference_steps=STEPS,
                                          max_chunk_seconds=CHUNK_SECONDS, generator=seeded(18)))
    short = (SAMPLE_RATE, make_voice(1.3, "Any voice will do."))
    check(golden, "lipsync_transcript", pipe("Any voice will do.", audio=short, reference=reference,
                                             num_inference_steps=STEPS, generator=seeded(19), output_type="pt"))


# ------------------------------------------------------------------------------------------------- cascade


@pytest.fixture(scope="module")
def speech_pipe(data_dir):
    from omnitalker.convert.pipeline import build_pipeline

    speech = build_pipeline(data_dir / "f5tts_v1_tiny.safetensors", data_dir / "f5tts_vocab.txt",
                            data_dir / "vocos_tiny", version="v1")
    speech.set_progress_bar_config(disable=True)
    speech._face_analyzer = SyntheticFaceAnalyzer()
    return speech


def test_cascade(speech_pipe, pipe, reference_video, reference, golden):
    check(golden, "cascade_video", speech_pipe(TEXT, reference_video=reference_video, reference_text=REFERENCE_TEXT,
                                               visual_pipeline=pipe, num_inference_steps=STEPS, generator=seeded(20)))
    check(golden, "cascade_batch_latent", speech_pipe([TEXT, "Good night."], reference=reference, visual_pipeline=pipe,
                                                      num_inference_steps=STEPS, generator=[seeded(21), seeded(22)],
                                                      output_type="latent", guidance_visual=0.5))
    check(golden, "cascade_pt", speech_pipe(TEXT, reference=reference, visual_pipeline=pipe, output_type="pt",
                                            num_inference_steps=STEPS, generator=seeded(23), stream_frames=False))
    check(golden, "cascade_lipsync", speech_pipe(reference=reference, audio=(SAMPLE_RATE, make_voice(1.0)),
                                                 visual_pipeline=pipe, num_inference_steps=STEPS,
                                                 generator=seeded(24)))
    check(golden, "speech_pipe_audio_mode", speech_pipe(TEXT, reference_audio=(SAMPLE_RATE, make_voice(1.5)),
                                                        reference_text=REFERENCE_TEXT, mode="audio", duration=1.0,
                                                        num_inference_steps=STEPS, generator=seeded(25)))
