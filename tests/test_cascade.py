"""Audio-only and cascade modes (omnitalker.pipeline.modes): a pipeline with only an audio branch (the tiny golden F5-TTS,
converted) speaks, and a second pipeline's audio-driven visual branch animates the face.

    OMP_NUM_THREADS=1 python -m pytest tests/test_cascade.py -q
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch

from omnitalker.convert.pipeline import build_pipeline
from omnitalker.flow.guidance import DEFAULT_AUDIO_STRENGTH, DEFAULT_TEXT_STRENGTH, DEFAULT_VISUAL_STRENGTH
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.pipeline import OmniTalkerPipeline, modes
from tests.pipeline_fixtures import REFERENCE_TEXT, dummy_pipeline, make_reference_video, make_voice, seeded

TEXT = "Hello there."
STEPS = 2


@pytest.fixture(scope="module")
def speech_pipe(data_dir):
    pipe = build_pipeline(data_dir / "f5tts_v1_tiny.safetensors", data_dir / "f5tts_vocab.txt",
                          data_dir / "vocos_tiny", version="v1")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def motion_pipe():
    return dummy_pipeline()


@pytest.fixture(scope="module")
def reference_video(tmp_path_factory):
    return str(make_reference_video(tmp_path_factory.mktemp("cascade") / "ref.mp4", seconds=1.5))


@pytest.fixture(scope="module")
def reference(speech_pipe, reference_video):
    return speech_pipe.prepare_reference(reference_video=reference_video, reference_text=REFERENCE_TEXT)


def stream_kinds(path) -> set[str]:
    with av.open(str(path)) as container:
        return {stream.type for stream in container.streams}


def test_cascade_returns_an_mp4_with_both_streams(speech_pipe, motion_pipe, reference_video, tmp_path,
                                                   monkeypatch):
    from omnitalker.io.export import export_to_video

    lipsync_calls = []
    original = motion_pipe.generate
    monkeypatch.setattr(motion_pipe, "generate", lambda plan, *a: lipsync_calls.append(plan.mode.value) or original(plan, *a))
    assert speech_pipe.branches == ("audio",) and motion_pipe.branches == ("audio", "visual")
    out = speech_pipe(TEXT, reference_video=reference_video, reference_text=REFERENCE_TEXT, visual_pipeline=motion_pipe,
                      num_inference_steps=STEPS, generator=seeded())
    assert out.mode == "cascade" and lipsync_calls == ["lipsync"]  # step (b) is the visual pipeline's own lip-sync
    frames, wave = out.frames[0], out.audio[0]
    assert frames.ndim == 4 and frames.dtype == np.uint8 and out.visual_codes[0].shape[1] == 58
    assert abs(len(frames) / out.fps - len(wave) / out.sample_rate) <= 1 / out.fps
    assert out.mel[0].shape[0] == 100 and out.reference_text == REFERENCE_TEXT
    path = tmp_path / "cascade.mp4"
    export_to_video(frames, str(path), fps=int(out.fps), audio=wave, sample_rate=out.sample_rate)
    assert stream_kinds(path) == {"video", "audio"}


def test_cascade_speaks_what_the_audio_mode_speaks(speech_pipe, motion_pipe, reference):
    """(a) -> (b) plumbing: the cascade's soundtrack is exactly this pipeline's speech (same seed)."""
    speech = speech_pipe(TEXT, reference=reference, mode="audio", num_inference_steps=STEPS, generator=seeded(),
                         watermark=False)
    assert speech.mode == "audio" and speech.frames is None and speech.visual_codes is None
    out = speech_pipe(TEXT, reference=reference, visual_pipeline=motion_pipe, num_inference_steps=STEPS,
                      generator=seeded(), watermark=False)
    np.testing.assert_allclose(out.audio[0], speech.audio[0], atol=1e-6)
    np.testing.assert_array_equal(out.mel[0], speech.mel[0])


def test_cascade_batch_latent_and_tuple_outputs(speech_pipe, motion_pipe, reference):
    out = speech_pipe([TEXT, "Good night."], reference=reference, visual_pipeline=motion_pipe,
                      num_inference_steps=STEPS, generator=[seeded(0), seeded(1)], output_type="latent")
    assert out.mode == "cascade" and out.audio is None and out.frames is None
    assert len(out.mel) == len(out.visual_codes) == 2 and out.visual_codes[1].shape[1] == 58
    audio, rate, frames, fps, mel, codes = speech_pipe(TEXT, reference=reference, visual_pipeline=motion_pipe,
                                                       num_inference_steps=STEPS, output_type="pt", return_dict=False)
    assert isinstance(frames[0], torch.Tensor) and isinstance(mel[0], torch.Tensor) and rate == 24000


def test_audio_mode_from_a_voice_sample_alone(speech_pipe, motion_pipe):
    voice = (24000, make_voice(1.5))
    out = speech_pipe(TEXT, reference_audio=voice, reference_text=REFERENCE_TEXT, mode="audio",
                      num_inference_steps=STEPS, generator=seeded(), duration=1.0)
    assert out.frames is None and abs(len(out.audio[0]) / 24000 - 1.0) < 0.05
    assert np.isfinite(out.audio[0]).all()
    joint = motion_pipe(TEXT, reference_audio=voice, reference_text=REFERENCE_TEXT, mode="audio",
                        num_inference_steps=STEPS, generator=seeded(), output_type="pt")
    assert joint.mode == "audio" and isinstance(joint.audio[0], torch.Tensor)  # a joint model speaks alone too
    with pytest.raises(ValueError, match="no reference: pass reference_video"):
        speech_pipe(TEXT, reference_audio=voice, reference_text=REFERENCE_TEXT, visual_pipeline=motion_pipe)
    voice_only = speech_pipe.prepare_reference(reference_audio=voice, reference_text=REFERENCE_TEXT)
    with pytest.raises(ValueError, match="no face .* or mode='audio'"):
        speech_pipe(TEXT, reference=voice_only, visual_pipeline=motion_pipe)


def test_lipsync_on_an_audio_only_pipeline_uses_the_visual_pipeline(speech_pipe, motion_pipe, reference):
    out = speech_pipe(reference=reference, audio=(24000, make_voice(1.0)), visual_pipeline=motion_pipe,
                      num_inference_steps=STEPS, generator=seeded())
    assert out.mode == "cascade" and len(out.frames[0]) == 25


def test_modes_need_their_branches(speech_pipe, motion_pipe, reference):
    with pytest.raises(ValueError, match="mode='joint' needs a trained visual branch.*mode='cascade'"):
        speech_pipe(TEXT, reference=reference, mode="joint")
    with pytest.raises(ValueError, match="mode must be one of"):
        speech_pipe(TEXT, reference=reference, mode="video")
    with pytest.raises(ValueError, match="drop one of them"):
        motion_pipe(TEXT, reference=reference, audio=(24000, make_voice(1.0)), mode="audio")
    with pytest.raises(ValueError, match="no trained visual branch itself"):
        speech_pipe(TEXT, reference=reference, visual_pipeline=speech_pipe)
    with pytest.raises(ValueError, match="has no visual stream"):
        speech_pipe.transformer(audio=torch.zeros(1, 8, 100), visual=torch.zeros(1, 8, 58),
                                text_ids=torch.tensor([[1]]), timestep=0.5)
    with pytest.raises(ValueError, match="trained_branches"):
        OmniTalkerPipeline(**{**dict(speech_pipe.components), "trained_branches": ["video"]})
    assert modes.resolve_mode(("audio", "visual"), None, lipsync=False) == "joint"
    assert modes.resolve_mode(("audio",), None, lipsync=True) == "cascade"


def test_default_visual_pipeline_is_the_bundled_demo(speech_pipe, motion_pipe, tmp_path, monkeypatch):
    fresh = OmniTalkerPipeline(**dict(speech_pipe.components), trained_branches=["audio"])
    monkeypatch.setattr(modes, "BUNDLED_DEMO_PIPELINE", tmp_path / "missing")
    with pytest.raises(ValueError, match="the bundled demo .* is not there: pass visual_pipeline="):
        fresh.get_visual_pipeline()
    motion_pipe.save_pretrained(tmp_path / "demo")
    monkeypatch.setattr(modes, "BUNDLED_DEMO_PIPELINE", tmp_path / "demo")
    assert fresh.get_visual_pipeline().branches == ("audio", "visual")


def test_visual_pipeline_and_guidance_are_saved(speech_pipe, motion_pipe, tmp_path):
    motion_pipe.save_pretrained(tmp_path / "motion")
    speech_pipe.save_pretrained(tmp_path / "speech")
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "speech")
    assert loaded.config.visual_pipeline is None and loaded.branches == ("audio",)
    loaded.set_visual_pipeline(str(tmp_path / "motion"))
    loaded.save_pretrained(tmp_path / "speech2")
    again = OmniTalkerPipeline.from_pretrained(tmp_path / "speech2")
    assert again.config.visual_pipeline == str(tmp_path / "motion")
    assert isinstance(again.get_visual_pipeline(), OmniTalkerPipeline)
    assert again.guidance_strengths(None, None, None, None) == (0.0, 0.0, 0.0, 2.0)  # F5's cfg 2
    assert again.guidance_strengths(1.0, None, None, 0.0) == (1.0, 0.0, 0.0, 0.0)
    assert motion_pipe.guidance_strengths(None, None, None, None) == (  # module defaults
        DEFAULT_TEXT_STRENGTH, DEFAULT_AUDIO_STRENGTH, DEFAULT_VISUAL_STRENGTH, 0.0)


def test_joint_transformer_without_visual_stream_config_key_still_has_it():
    """Configs saved before visual_stream existed load with the visual stream (the default)."""
    model = OmniTalkerTransformer.from_named_config("tiny")
    assert model.config.visual_stream is True and model.visual_embed is not None


@pytest.mark.skipif(not (modes.BUNDLED_DEMO_PIPELINE / "model_index.json").is_file(),
                    reason="the bundled demo weights (weights/omnitalker-demo) are not built")
def test_cascade_with_the_bundled_demo(speech_pipe, reference, tmp_path):
    fresh = OmniTalkerPipeline(**dict(speech_pipe.components), trained_branches=["audio"])
    fresh.set_progress_bar_config(disable=True)
    out = fresh(TEXT, reference=reference, num_inference_steps=STEPS, generator=seeded())
    assert out.mode == "cascade" and out.frames[0].shape[0] > 0 and out.audio[0].shape[0] > 0


# ------------------------------------------------------------------------------------------- CLI and app


@pytest.fixture(scope="module")
def saved(speech_pipe, motion_pipe, tmp_path_factory):
    import soundfile

    folder = tmp_path_factory.mktemp("saved")
    speech_pipe.save_pretrained(folder / "speech")
    motion_pipe.save_pretrained(folder / "motion")
    soundfile.write(folder / "voice.wav", make_voice(1.5), 24000)
    return folder


def test_cli_runs_the_cascade_and_speech_only(saved, reference_video, capsys):
    from omnitalker.ui.cli import main

    out = saved / "out.mp4"
    assert main(["generate", "--pipeline", str(saved / "speech"), "--visual-pipeline", str(saved / "motion"),
                 "--text", TEXT, "--reference", reference_video, "--reference-text", REFERENCE_TEXT,
                 "--steps", str(STEPS), "--out", str(out)]) == 0
    assert "mode: cascade (speech by this pipeline's audio branch" in capsys.readouterr().out
    assert stream_kinds(out) == {"video", "audio"}
    wav = saved / "speech.wav"
    assert main(["generate", "--pipeline", str(saved / "speech"), "--mode", "audio", "--text", TEXT, "--voice",
                 str(saved / "voice.wav"), "--reference-text", REFERENCE_TEXT, "--steps", str(STEPS),
                 "--out", str(wav)]) == 0
    assert "mode: audio" in capsys.readouterr().out and wav.stat().st_size > 1000
    assert main(["generate", "--pipeline", str(saved / "speech"), "--mode", "joint", "--text", TEXT, "--reference",
                 reference_video, "--reference-text", REFERENCE_TEXT, "--out", str(saved / "x.mp4")]) == 2
    assert "mode='joint' needs a trained visual branch" in capsys.readouterr().err


def test_app_shows_the_mode_and_talks_in_cascade(speech_pipe, motion_pipe, saved, reference_video, tmp_path):
    from omnitalker.ui.app import build_demo
    from omnitalker.ui.handlers import DemoHandlers

    lazy = DemoHandlers(str(saved / "speech"), output_root=tmp_path, visual_pipeline=str(saved / "motion"))
    assert lazy.mode_notice().startswith("**Mode: cascade**") and str(saved / "motion") in lazy.mode_notice()
    assert DemoHandlers(str(saved / "motion"), output_root=tmp_path).mode_notice().startswith("**Mode: joint**")
    handlers = DemoHandlers(speech_pipe, output_root=tmp_path, visual_pipeline=motion_pipe)
    assert "**Mode: cascade**" in handlers.mode_notice()
    # F5's own (0, 0; joint 2 from its config), motion from the visual pipeline's defaults
    assert handlers.guidance_defaults() == (0.0, 0.0, DEFAULT_VISUAL_STRENGTH)
    video, audio, *_ = handlers.talk(reference_video, None, None, REFERENCE_TEXT, TEXT,
                                     num_inference_steps=STEPS, guidance_text=0.0, guidance_audio=0.0,
                                     guidance_visual=DEFAULT_VISUAL_STRENGTH)
    assert stream_kinds(video) == {"video", "audio"} and Path(audio).is_file()
    demo = build_demo(speech_pipe, examples_dir=None, output_root=tmp_path, visual_pipeline=motion_pipe)
    notices = [block.value for block in demo.blocks.values() if getattr(block, "elem_id", None) == "mode"]
    assert notices and "cascade" in notices[0]
