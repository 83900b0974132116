"""F5-TTS + Vocos -> a complete pipeline folder (omnitalker.convert.pipeline) on the tiny golden checkpoints.

    OMP_NUM_THREADS=1 python -m pytest tests/test_convert_pipeline.py -q

Random weights: these tests check plumbing and exactness, not quality. With real checkpoints (paths in
OMNITALKER_F5TTS_CHECKPOINT, OMNITALKER_F5TTS_VOCAB, OMNITALKER_VOCOS) ``test_real_checkpoints`` converts them too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from omnitalker.convert.f5tts import (
    extract_f5tts_state_dict,
    f5tts_key_to_omnitalker,
    omnitalker_config_for_f5tts,
    resolve_f5tts_version,
)
from omnitalker.convert.pipeline import F5_GUIDANCE, F5_RELEASES, main
from omnitalker.flow.guidance import GuidanceConfig, guided_velocity
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.pipeline import OmniTalkerPipeline

GOLDEN_ATOL = 1e-4
REAL_VARIABLES = ("OMNITALKER_F5TTS_CHECKPOINT", "OMNITALKER_F5TTS_VOCAB", "OMNITALKER_VOCOS")


def convert(data_dir: Path, out: Path, version: str, *extra: str) -> Path:
    return main(["--f5tts", str(data_dir / f"f5tts_{version}_tiny.safetensors"), "--vocab",
                 str(data_dir / "f5tts_vocab.txt"), "--vocos", str(data_dir / "vocos_tiny"), "--version", version,
                 "--out", str(out), *extra])


@pytest.fixture(scope="module", params=["v0", "v1"])
def converted(request, data_dir, tmp_path_factory):
    version = request.param
    folder = convert(data_dir, tmp_path_factory.mktemp(f"f5-{version}") / "pipeline", version)
    return version, folder


def test_converted_folder_loads_as_an_audio_only_pipeline(converted):
    version, folder = converted
    assert {p.name for p in folder.iterdir()} >= {"model_index.json", "transformer", "tokenizer", "vocoder",
                                                  "scheduler", "renderer", "README.md"}
    assert not folder.with_name(folder.name + ".partial").exists()
    pipe = OmniTalkerPipeline.from_pretrained(folder)
    assert pipe.branches == ("audio",)
    assert pipe.config.trained_branches == ["audio"] and pipe.config.guidance == F5_GUIDANCE
    assert pipe.transformer.config.visual_stream is False and len(pipe.transformer.audio_blocks) == 0
    assert not any("visual" in key for key in pipe.transformer.state_dict())  # the visual stream is absent
    assert pipe.transformer.config.pe_attn_head == (1 if version == "v0" else None)
    assert type(pipe.vocoder).__name__ == "VocosVocoder" and pipe.renderer is not None
    card = (folder / "README.md").read_text()
    assert "CC-BY-NC-4.0" in card and "MIT" in card and "license: cc-by-nc-4.0" in card


def test_audio_branch_reproduces_f5_golden_through_the_pipeline(converted, data_dir):
    """The loaded pipeline's tokenizer gives F5's token ids, its transformer F5's outputs, and the velocity its
    sampler uses (the pipeline's F5 guidance) is F5's cfg combination of the two."""
    version, folder = converted
    pipe = OmniTalkerPipeline.from_pretrained(folder)
    io = load_file(str(data_dir / f"f5tts_{version}_tiny_io.safetensors"))
    text = json.loads((data_dir / f"f5tts_{version}_tiny.json").read_text())["texts"][0]
    text_ids = pipe.tokenizer.encode([text])
    assert torch.equal(text_ids, io["text_ids"])
    with torch.no_grad():
        out = pipe.transformer(audio=io["x"], audio_cond=io["cond"], text_ids=text_ids, timestep=io["time"]).audio
        velocity = guided_velocity(pipe.transformer, audio=io["x"], audio_cond=io["cond"], text_ids=text_ids,
                                   timestep=io["time"], guidance=GuidanceConfig(**pipe.config.guidance)).audio
    torch.testing.assert_close(out, io["out_cond"], atol=GOLDEN_ATOL, rtol=0)
    cfg = F5_GUIDANCE["joint"]
    expected = io["out_cond"] + cfg * (io["out_cond"] - io["out_uncond"])
    torch.testing.assert_close(velocity, expected, atol=(1 + 2 * cfg) * GOLDEN_ATOL, rtol=0)


def test_vocoder_reproduces_vocos_golden(converted, data_dir):
    pipe = OmniTalkerPipeline.from_pretrained(converted[1])
    golden = load_file(str(data_dir / "vocos_tiny_io.safetensors"))
    with torch.no_grad():
        wave = pipe.vocoder.decode(golden["mel"])
    torch.testing.assert_close(wave, golden["wave"], atol=GOLDEN_ATOL, rtol=0)


@pytest.mark.parametrize("manifest", ["F5TTS_Base_keys.json", "F5TTS_v1_Base_keys.json"])
def test_full_size_audio_only_transformer_is_f5_size(data_dir, manifest):
    """On the meta device at full size: the visual-stream-free model has exactly F5-TTS's parameters."""
    shapes = json.loads((data_dir / manifest).read_text())
    state = extract_f5tts_state_dict(shapes)
    config = omnitalker_config_for_f5tts(state, resolve_f5tts_version("v1"), visual_stream=False, num_audio_layers=0)
    with torch.device("meta"):
        model = OmniTalkerTransformer(**config)
    f5_parameters = sum(torch.Size(shape).numel() for key, shape in state.items() if key != "rotary_embed.inv_freq")
    assert model.num_parameters() == f5_parameters == 337_096_804
    assert set(model.state_dict()) == {f5tts_key_to_omnitalker(key) for key in state}  # every key, nothing else


def test_with_visual_stream_keeps_an_untrained_one(data_dir, tmp_path):
    folder = convert(data_dir, tmp_path / "joint-start", "v1", "--with-visual-stream")
    pipe = OmniTalkerPipeline.from_pretrained(folder)
    assert pipe.transformer.config.visual_stream is True and pipe.branches == ("audio",)  # untrained: not trusted


def test_release_names_resolve_to_hub_files(data_dir, tmp_path, monkeypatch):
    """``--f5tts F5TTS_v1_Base --vocos charactr/vocos-mel-24khz`` asks the Hub for the released files (here a fake
    hf_hub_download serving the tiny ones: nothing reaches the network)."""
    import huggingface_hub

    asked = []
    local = {"F5TTS_v1_Base/model_1250000.safetensors": data_dir / "f5tts_v1_tiny.safetensors",
             "F5TTS_v1_Base/vocab.txt": data_dir / "f5tts_vocab.txt",
             "config.yaml": data_dir / "vocos_tiny" / "config.yaml",
             "pytorch_model.bin": data_dir / "vocos_tiny" / "pytorch_model.bin"}

    def fake_download(repo_id, filename, **kwargs):
        asked.append((repo_id, filename))
        return str(local[filename])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    folder = main(["--f5tts", "F5TTS_v1_Base", "--vocos", "charactr/vocos-mel-24khz", "--out", str(tmp_path / "p")])
    assert sorted(asked) == sorted([("SWivid/F5-TTS", "F5TTS_v1_Base/model_1250000.safetensors"),
                                    ("SWivid/F5-TTS", "F5TTS_v1_Base/vocab.txt"),
                                    ("charactr/vocos-mel-24khz", "config.yaml"),
                                    ("charactr/vocos-mel-24khz", "pytorch_model.bin")])
    assert OmniTalkerPipeline.from_pretrained(folder).transformer.config.pe_attn_head is None  # v1 from the name
    assert F5_RELEASES["F5TTS_Base"].version == "v0"


def test_nothing_is_fetched_unless_named(data_dir, tmp_path, monkeypatch):
    """Local sources never touch the Hub; --vocos has no Hub default (a run without it is refused, not fetched)."""
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("hf_hub_download called for local files")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    convert(data_dir, tmp_path / "local", "v0")
    with pytest.raises(SystemExit):
        main(["--f5tts", str(data_dir / "f5tts_v0_tiny.safetensors"), "--vocab", str(data_dir / "f5tts_vocab.txt"),
              "--version", "v0", "--out", str(tmp_path / "no-vocos")])


def test_bad_sources_are_refused(data_dir, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--f5tts", str(data_dir / "f5tts_v1_tiny.safetensors"), "--vocos", str(data_dir / "vocos_tiny"),
              "--out", str(tmp_path / "x")])
    assert "--vocab is required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--f5tts", "F5TTS_v1_Base", "--version", "v0", "--vocos", "x/y", "--out", str(tmp_path / "x")])
    assert "F5TTS_v1_Base is F5-TTS v1, not v0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--f5tts", str(tmp_path / "missing.safetensors"), "--vocab", "v.txt", "--vocos", "x/y",
              "--out", str(tmp_path / "x")])
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


@pytest.mark.skipif(not all(os.environ.get(name) for name in REAL_VARIABLES),
                    reason="real F5-TTS / Vocos checkpoints not given: set OMNITALKER_F5TTS_CHECKPOINT (e.g. "
                           "F5TTS_v1_Base/model_1250000.safetensors), OMNITALKER_F5TTS_VOCAB and OMNITALKER_VOCOS "
                           "(a charactr/vocos-mel-24khz folder) to run it")
def test_real_checkpoints(tmp_path):
    """The released checkpoints convert to a pipeline that speaks: finite, non-silent speech of about the asked
    length in mode='audio' from a voice sample."""
    from tests.pipeline_fixtures import REFERENCE_TEXT, make_voice, seeded

    checkpoint = os.environ["OMNITALKER_F5TTS_CHECKPOINT"]
    extra = [] if "F5TTS_" in checkpoint else ["--version", os.environ.get("OMNITALKER_F5TTS_VERSION", "v1")]
    folder = main(["--f5tts", checkpoint, "--vocab", os.environ["OMNITALKER_F5TTS_VOCAB"], "--vocos",
                   os.environ["OMNITALKER_VOCOS"], "--out", str(tmp_path / "real"), *extra])
    pipe = OmniTalkerPipeline.from_pretrained(folder)
    if Path(checkpoint).stat().st_size > 10**9:  # a released Base checkpoint (1.35 GB): exactly F5's size
        assert pipe.transformer.num_parameters() == 337_096_804
    out = pipe("Nice to meet you.", reference_audio=(24000, make_voice(3.0)), reference_text=REFERENCE_TEXT,
               mode="audio", duration=2.0, generator=seeded(), num_inference_steps=16)
    wave = torch.as_tensor(out.audio[0])
    assert torch.isfinite(wave).all() and wave.abs().max() > 0.01
    assert abs(len(wave) / 24000 - 2.0) < 0.1
