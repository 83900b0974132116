"""OmniTalkerPipeline end to end with tiny random components (diffusers' get_dummy_components pattern).

Random weights make noise: these tests check structure (shapes, durations, codecs, determinism,
batch == singles, callbacks, save/load, errors), never quality. Run: python -m pytest tests/test_pipeline.py -q
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from omnitalker.frontend.audio import FRAME_RATE, SAMPLE_RATE
from omnitalker.io.export import export_to_video
from omnitalker.io.video import read_video
from omnitalker.pipeline import OmniTalkerPipeline, OmniTalkerPipelineOutput
from tests.pipeline_fixtures import (
    REFERENCE_TEXT,
    astronaut_face,
    dummy_pipeline,
    get_dummy_components,
    make_reference_video,
    make_voice,
    seeded,
)

STEPS = 2
TEXT = "Hello there, nice to meet you."
VIDEO_FPS = 25


generator = seeded


@pytest.fixture(scope="module")
def pipe() -> OmniTalkerPipeline:
    return dummy_pipeline()


@pytest.fixture(scope="module")
def reference_video(tmp_path_factory):
    return make_reference_video(tmp_path_factory.mktemp("ref") / "ref.mp4", seconds=1.5, size=160)


@pytest.fixture(scope="module")
def reference(pipe, reference_video):
    return pipe.prepare_reference(reference_video=reference_video, reference_text=REFERENCE_TEXT)


def assert_media(out: OmniTalkerPipelineOutput, index: int = 0) -> None:
    wave, frames = out.audio[index], out.frames[index]
    assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    assert abs(len(wave) / out.sample_rate - len(frames) / out.fps) <= 1.0 / out.fps
    assert out.mel[index].shape[0] == 100
    assert out.visual_codes[index].shape[1] == 58
    assert abs(len(out.visual_codes[index]) / out.visual_codes_fps - len(wave) / out.sample_rate) <= 1 / 30


def assert_mp4(out, path) -> None:
    export_to_video(out.frames[0], str(path), fps=int(out.fps), audio=out.audio[0], sample_rate=out.sample_rate)
    clip = read_video(str(path))
    assert clip.audio is not None and len(clip.frames) == len(out.frames[0])
    assert abs(clip.duration - clip.audio_duration) <= 1.0 / clip.fps + 1024 / clip.sample_rate


# ------------------------------------------------------------------------------------------------- modes


def test_joint_mode_from_a_video_file_to_mp4(pipe, reference_video, tmp_path):
    out = pipe(TEXT, reference_video=reference_video, reference_text=REFERENCE_TEXT,
               num_inference_steps=STEPS, generator=generator())
    assert isinstance(out, OmniTalkerPipelineOutput)
    assert_media(out)
    assert out.frames[0].shape[1:3] == (160, 160)  # the renderer pastes back into the reference frame
    assert_mp4(out, tmp_path / "joint.mp4")


def test_photo_and_voice_sample(pipe, tmp_path):
    voice = make_voice(1.5)
    out = pipe(TEXT, reference_image=astronaut_face(160), reference_audio=(SAMPLE_RATE, voice),
               reference_text=REFERENCE_TEXT, num_inference_steps=STEPS, generator=generator())
    assert_media(out)
    assert_mp4(out, tmp_path / "photo.mp4")


def test_static_prompt_of_a_photo_repeats_one_code_frame(pipe):
    reference = pipe.prepare_reference(reference_image=astronaut_face(160),
                                       reference_audio=(SAMPLE_RATE, make_voice(1.2)), reference_text=REFERENCE_TEXT)
    assert reference.static
    assert torch.equal(reference.codes, reference.codes[:1].expand_as(reference.codes))
    assert reference.codes.shape[0] == reference.mel.shape[0]


def test_audio_driven_lipsync_keeps_the_speech(pipe, tmp_path):
    speech = make_voice(1.3, "Any voice will do.")
    out = pipe(reference_image=astronaut_face(160), audio=(SAMPLE_RATE, speech), num_inference_steps=STEPS,
               generator=generator(), watermark=False)
    np.testing.assert_allclose(out.audio[0], speech, atol=1e-6)  # the given speech is the soundtrack
    assert len(out.frames[0]) == round(len(speech) / SAMPLE_RATE * VIDEO_FPS)
    assert_media(out)
    assert_mp4(out, tmp_path / "lipsync.mp4")


def test_long_speech_is_lip_synced_in_windows(pipe, reference):
    speech = make_voice(3.2, "A longer recording that needs two windows of lip sync.")
    steps = []
    out = pipe(audio=(SAMPLE_RATE, speech), reference=reference, num_inference_steps=STEPS, max_chunk_seconds=2.5,
               generator=generator(), watermark=False, callback_on_step_end=lambda p, i, t, kw: steps.append(i) or {})
    assert len(steps) == 2 * STEPS  # two windows
    np.testing.assert_allclose(out.audio[0], speech, atol=1e-6)
    assert len(out.frames[0]) == round(len(speech) / SAMPLE_RATE * VIDEO_FPS)
    assert abs(len(out.visual_codes[0]) - round(len(speech) / SAMPLE_RATE * 30)) <= 1


def test_long_text_is_generated_in_chunks_with_reference_and_motion_frames(pipe, reference, monkeypatch):
    text = "The first sentence is here. The second one follows it. And a third one ends the text."
    from omnitalker.pipeline.denoise import Sampler

    segments = []
    denoise = Sampler.denoise

    def spy(sampler, batch, *args, **kwargs):
        segments.extend(batch)
        return denoise(sampler, batch, *args, **kwargs)

    monkeypatch.setattr(Sampler, "denoise", spy)
    steps = []
    out = pipe(text, reference=reference, num_inference_steps=STEPS, max_chunk_seconds=2.5, generator=generator(),
               callback_on_step_end=lambda p, i, t, kw: steps.append(i) or {})
    assert len(segments) >= 2
    assert steps == list(range(len(segments) * STEPS))  # the step counter runs on across chunks
    n_ref = reference.num_frames
    for index, segment in enumerate(segments):
        # every chunk is prompted with the whole original reference: voice and identity cannot drift
        assert torch.equal(segment.prompt_mel[:n_ref], reference.mel)
        assert torch.equal(segment.prompt_codes[:n_ref], reference.codes)
        assert (len(segment.prompt_mel) > n_ref) == (index > 0)  # later chunks also get motion frames
    assert_media(out)
    # the joined output is the chunks minus the regenerated seams
    overlaps = sum(seg.num_frames for seg in segments) - out.mel[0].shape[1]
    assert 0 < overlaps <= (len(segments) - 1) * round(0.15 * FRAME_RATE)


# ------------------------------------------------------------------------------------------------- diffusers contract


def test_generator_makes_it_deterministic(pipe, reference):
    first = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(1), output_type="latent")
    again = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(1), output_type="latent")
    other = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(2), output_type="latent")
    np.testing.assert_array_equal(first.mel[0], again.mel[0])
    np.testing.assert_array_equal(first.visual_codes[0], again.visual_codes[0])
    assert not np.allclose(first.mel[0], other.mel[0])


def test_batch_of_two_equals_two_singles(pipe, reference):
    texts = [TEXT, "A shorter one."]  # different lengths: the batch is padded and masked
    batch = pipe(texts, reference=reference, num_inference_steps=STEPS, generator=[generator(3), generator(4)],
                 output_type="latent")
    for index, seed in enumerate((3, 4)):
        single = pipe(texts[index], reference=reference, num_inference_steps=STEPS, generator=generator(seed),
                      output_type="latent")
        np.testing.assert_allclose(batch.mel[index], single.mel[0], atol=1e-4)
        np.testing.assert_allclose(batch.visual_codes[index], single.visual_codes[0], atol=1e-4)


def test_callback_sees_every_step_and_can_change_latents(pipe, reference):
    seen = []

    def record(pipeline, step, timestep, kwargs):
        seen.append((step, float(timestep), kwargs["audio_latents"].shape, kwargs["visual_latents"].shape))
        return {}

    pipe(TEXT, reference=reference, num_inference_steps=3, generator=generator(), output_type="latent",
         callback_on_step_end=record)
    assert [step for step, *_ in seen] == [0, 1, 2]
    assert seen[0][2][-1] == 100 and seen[0][3][-1] == 58 and seen[0][2][:2] == seen[0][3][:2]

    def zero_visual(pipeline, step, timestep, kwargs):
        return {"visual_latents": torch.zeros_like(kwargs["visual_latents"])}

    out = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(), output_type="latent",
               callback_on_step_end=zero_visual, callback_on_step_end_tensor_inputs=["visual_latents"])
    assert np.abs(out.visual_codes[0]).max() == 0  # the last step's edit is the output


def test_interrupt_stops_sampling_early(pipe, reference):
    calls = []

    def stop_after_first(pipeline, step, timestep, kwargs):
        calls.append(step)
        pipeline._interrupt = True
        return {}

    out = pipe(TEXT, reference=reference, num_inference_steps=4, generator=generator(), output_type="latent",
               callback_on_step_end=stop_after_first)
    assert calls == [0] and np.isfinite(out.mel[0]).all()
    again = pipe(TEXT, reference=reference, num_inference_steps=2, generator=generator(), output_type="latent")
    assert again.mel[0].shape == out.mel[0].shape  # the flag is reset by the next call


def test_interrupt_ends_like_a_finished_run(reference_video):
    """An interrupted run ends through the sampler's normal ending: stopping at the last step gives exactly the
    finished run's output, visual codes back in raw units (weights that carry visual statistics)."""
    from omnitalker.models.transformer import OmniTalkerTransformer

    pipe = dummy_pipeline()
    dim = pipe.transformer.config.visual_dim
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    pipe.transformer = OmniTalkerTransformer.from_named_config(
        "tiny", visual_mean=rng.normal(0, 1, dim).tolist(), visual_std=rng.uniform(0.5, 2, dim).tolist()).eval()
    reference = pipe.prepare_reference(reference_video=reference_video, reference_text=REFERENCE_TEXT)
    kwargs = dict(reference=reference, num_inference_steps=3, output_type="latent")
    finished = pipe(TEXT, generator=generator(), **kwargs)

    def stop_at_last_step(pipeline, step, timestep, tensors):
        pipeline._interrupt = step == 2
        return {}

    stopped = pipe(TEXT, generator=generator(), callback_on_step_end=stop_at_last_step, **kwargs)
    np.testing.assert_array_equal(stopped.visual_codes[0], finished.visual_codes[0])
    np.testing.assert_array_equal(stopped.mel[0], finished.mel[0])


def test_save_and_load_round_trip(pipe, reference, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["tokenizer"] == ["omnitalker.frontend.text", "OmniTalkerTokenizer"]
    assert index["renderer"] == ["omnitalker.render.warp", "WarpRenderer"]
    assert index["transformer"] == ["omnitalker.models.transformer", "OmniTalkerTransformer"]
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.tokenizer.vocab == pipe.tokenizer.vocab
    assert loaded.renderer.config.output_size == pipe.renderer.config.output_size
    assert loaded.vocoder.config.n_iter == pipe.vocoder.config.n_iter
    kwargs = dict(reference=reference, num_inference_steps=STEPS, output_type="latent")
    before = pipe(TEXT, generator=generator(), **kwargs)
    after = loaded(TEXT, generator=generator(), **kwargs)
    # equal up to float rounding: safetensors-loaded weights are not 64-byte aligned, and MKL's one-sample GEMMs
    # (the single-pass steps of guidance reuse) round differently on unaligned buffers (~1e-7)
    np.testing.assert_allclose(before.mel[0], after.mel[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(before.visual_codes[0], after.visual_codes[0], rtol=1e-5, atol=1e-5)


def test_optional_components_may_be_none_for_latents(tmp_path):
    components = get_dummy_components()
    components.update(vocoder=None, renderer=None)
    bare = OmniTalkerPipeline(**components)
    bare.save_pretrained(tmp_path / "bare")
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "bare")
    assert loaded.vocoder is None and loaded.renderer is None
    with pytest.raises(ValueError, match="no vocoder and no renderer"):
        loaded(TEXT, reference_image=astronaut_face(160), reference_audio=(SAMPLE_RATE, make_voice(1.2)),
               reference_text=REFERENCE_TEXT)


def test_pt_output_and_tuple_return(pipe, reference):
    out = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(), output_type="pt")
    assert all(isinstance(x, torch.Tensor) for x in (out.audio[0], out.frames[0], out.mel[0], out.visual_codes[0]))
    as_tuple = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(), output_type="pt",
                    return_dict=False)
    assert torch.equal(as_tuple[0][0], out.audio[0]) and as_tuple[1] == SAMPLE_RATE


def test_bfloat16_transformer(pipe, reference):
    pipe.transformer.to(torch.bfloat16)
    try:
        assert pipe.dtype == torch.bfloat16
        out = pipe(TEXT, reference=reference, num_inference_steps=STEPS, generator=generator(), output_type="latent")
        assert np.isfinite(out.mel[0]).all() and np.isfinite(out.visual_codes[0]).all()
    finally:
        pipe.transformer.to(torch.float32)


def test_speed_and_duration_set_the_length(pipe, reference):
    normal = pipe(TEXT, reference=reference, num_inference_steps=STEPS, output_type="latent")
    fast = pipe(TEXT, reference=reference, num_inference_steps=STEPS, speed=2.0, output_type="latent")
    fixed = pipe(TEXT, reference=reference, num_inference_steps=STEPS, duration=1.0, output_type="latent")
    assert abs(fast.mel[0].shape[1] - normal.mel[0].shape[1] / 2) <= 1
    assert fixed.mel[0].shape[1] == round(FRAME_RATE)


def test_asr_hook_supplies_the_missing_transcript(pipe, reference_video):
    class FixedTranscript:  # anything with transcribe(wave, sample_rate) plugs in
        def __init__(self):
            self.calls = 0

        def transcribe(self, wave, sample_rate):
            self.calls += 1
            assert sample_rate == SAMPLE_RATE and wave.ndim == 1
            return REFERENCE_TEXT

    recognizer = FixedTranscript()
    pipe.set_asr(recognizer)
    try:
        reference = pipe.prepare_reference(reference_video=reference_video)
    finally:
        pipe.set_asr(None)
    assert recognizer.calls == 1 and reference.text == REFERENCE_TEXT


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "   "}, "text is empty"),
        ({"text": "Привет, как дела?"}, "Cyrillic"),
        ({"text": 42}, "text must be a string"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"speed": -1.0}, "speed must be a positive"),
        ({"duration": 0}, "duration must be"),
        ({"output_type": "pil"}, "output_type"),
        ({"generator": [torch.Generator(), torch.Generator()]}, "2 generators for 1 texts"),
        ({"callback_on_step_end_tensor_inputs": ["latents"]}, "callback_on_step_end_tensor_inputs"),
    ],
)
def test_bad_arguments_are_named(pipe, reference, kwargs, message):
    call = {"text": TEXT, "reference": reference, "num_inference_steps": STEPS, **kwargs}
    with pytest.raises(ValueError, match=message):
        pipe(**call)


def test_reference_errors_name_the_fix(pipe, tmp_path):
    silent_video = make_reference_video(tmp_path / "silent.mp4", seconds=1.2, size=128, with_audio=False)
    with pytest.raises(ValueError, match="reference_audio="):
        pipe(TEXT, reference_video=silent_video, reference_text=REFERENCE_TEXT)
    with pytest.raises(ValueError, match="no reference"):
        pipe(TEXT)
    with pytest.raises(ValueError, match="not both"):
        pipe(TEXT, reference_video=silent_video, reference_image=astronaut_face(128))
    with pytest.raises(ValueError, match="needs a voice sample"):
        pipe(TEXT, reference_image=astronaut_face(128), reference_text=REFERENCE_TEXT)
    with pytest.raises(ValueError, match="not both"):
        pipe(TEXT, reference=object(), reference_text=REFERENCE_TEXT)
    recognizer = pipe._asr
    pipe.set_asr(None)  # no recognizer: a missing transcript must be asked for (make_voice is real espeak speech)
    try:
        with pytest.raises(ValueError, match="reference_text is required"):
            pipe(TEXT, reference_image=astronaut_face(128), reference_audio=(SAMPLE_RATE, make_voice(1.2)))
    finally:
        pipe._asr = recognizer
    face = astronaut_face(128)
    with pytest.raises(ValueError, match="at least 1 s of speech"):
        pipe.prepare_reference(reference_image=face, reference_audio=(SAMPLE_RATE, make_voice(0.6)))
    with pytest.raises(ValueError, match="silent"):
        pipe.prepare_reference(reference_image=face, reference_audio=(SAMPLE_RATE, np.zeros(SAMPLE_RATE * 2, np.float32)))
    with pytest.raises(ValueError, match="without a sample rate"):
        pipe.prepare_reference(reference_image=face, reference_audio=make_voice(1.2))
    with pytest.raises(ValueError, match="reference_image"):  # no face in a flat grey picture
        pipe.prepare_reference(reference_image=np.full((128, 128, 3), 128, np.uint8),
                               reference_audio=(SAMPLE_RATE, make_voice(1.2)))
    with pytest.raises(ValueError, match="audio: file not found"):
        pipe(reference_image=face, audio=tmp_path / "missing.wav")
    broken = tmp_path / "broken.mp4"
    broken.write_text("this is not a video")
    with pytest.raises(ValueError, match="reference_video"):
        pipe.prepare_reference(reference_video=broken)
    with pytest.raises(ValueError, match="is an image"):
        pipe.prepare_reference(reference_video=tmp_path / "face.png")
    with pytest.raises(ValueError, match="reference_video must be a file path"):
        pipe.prepare_reference(reference_video=123)


def test_from_pretrained_in_a_fresh_process(tmp_path):
    """diffusers imports component modules by name: loading must not rely on the caller having imported them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.pipeline_fixtures import get_dummy_components

    OmniTalkerPipeline(**get_dummy_components()).save_pretrained(tmp_path / "pipe")
    code = (
        "from omnitalker import OmniTalkerPipeline; "
        f"p = OmniTalkerPipeline.from_pretrained({str(tmp_path / 'pipe')!r}); "
        "print(type(p.transformer).__name__, type(p.vocoder).__name__, type(p.renderer).__name__)"
    )
    root = str(Path(__file__).resolve().parents[1])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": root}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "OmniTalkerTransformer GriffinLimVocoder WarpRenderer" in result.stdout
