"""Tests of the F5-TTS -> OmniTalkerTransformer converter against the reference golden vectors (tests/data).

    python -m pytest tests/test_convert_f5tts.py -q
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from omnitalker.convert.f5tts import (
    OMNITALKER_ONLY_KEY,
    check_mapping,
    convert_f5tts_checkpoint,
    extract_f5tts_state_dict,
    f5tts_key_to_omnitalker,
    infer_f5tts_config,
    load_f5tts_checkpoint,
    main,
    omnitalker_config_for_f5tts,
    read_arch,
    resolve_f5tts_version,
)
from omnitalker.models.transformer import OmniTalkerTransformer

GOLDEN_ATOL = 1e-4
F5_BASE_TENSORS = 364  # released checkpoints: 364 ema_model.transformer.* tensors + initted + step


def golden(data_dir, version):
    checkpoint = load_file(str(data_dir / f"f5tts_{version}_tiny.safetensors"))
    io = load_file(str(data_dir / f"f5tts_{version}_tiny_io.safetensors"))
    arch = json.loads((data_dir / f"f5tts_{version}_tiny.json").read_text())["arch"]
    return checkpoint, io, arch


def predict(model, io, drop=False):
    with torch.no_grad():
        return model(audio=io["x"], audio_cond=io["cond"], text_ids=io["text_ids"], timestep=io["time"],
                     drop_audio_cond=drop, drop_text=drop).audio


@pytest.mark.parametrize("version", ["v0", "v1"])
def test_golden_outputs(data_dir, version):
    checkpoint, io, arch = golden(data_dir, version)
    model = convert_f5tts_checkpoint(checkpoint, version)
    assert model.config.pe_attn_head == arch["pe_attn_head"]
    assert model.config.text_mask_padding == arch["text_mask_padding"]
    torch.testing.assert_close(predict(model, io), io["out_cond"], atol=GOLDEN_ATOL, rtol=0)
    torch.testing.assert_close(predict(model, io, drop=True), io["out_uncond"], atol=GOLDEN_ATOL, rtol=0)
    # the same with packed CFG: one batch of [cond, uncond] with per-sample drop flags
    both = torch.tensor([False, True])
    with torch.no_grad():
        packed = model(audio=io["x"].repeat(2, 1, 1), audio_cond=io["cond"].repeat(2, 1, 1),
                       text_ids=io["text_ids"].repeat(2, 1), timestep=io["time"].repeat(2),
                       drop_audio_cond=both, drop_text=both).audio
    torch.testing.assert_close(packed[0], io["out_cond"][0], atol=GOLDEN_ATOL, rtol=0)
    torch.testing.assert_close(packed[1], io["out_uncond"][0], atol=GOLDEN_ATOL, rtol=0)


def test_wrong_version_does_not_match(data_dir):
    """v0 and v1 weights look alike; the flags matter (guards against a test that cannot fail)."""
    checkpoint, io, _ = golden(data_dir, "v0")
    wrong = convert_f5tts_checkpoint(checkpoint, "v1")
    assert (predict(wrong, io) - io["out_cond"]).abs().max() > 1e-2


def test_arch_config_selects_version(data_dir, tmp_path):
    checkpoint, io, arch = golden(data_dir, "v0")
    model = convert_f5tts_checkpoint(checkpoint, arch=arch)
    torch.testing.assert_close(predict(model, io), io["out_cond"], atol=GOLDEN_ATOL, rtol=0)
    yaml_config = tmp_path / "F5TTS_custom.yaml"
    yaml_config.write_text("model:\n  backbone: DiT\n  arch:\n    dim: 64\n    pe_attn_head: 1\n"
                           "    text_mask_padding: false\n")
    assert read_arch(yaml_config)["pe_attn_head"] == 1
    assert read_arch(data_dir / "f5tts_v1_tiny.json")["text_mask_padding"] is True


def test_extra_blocks_are_identity_and_visual_branch_runs(data_dir):
    checkpoint, io, _ = golden(data_dir, "v1")
    model = convert_f5tts_checkpoint(checkpoint, "v1", num_audio_layers=2, num_visual_layers=1)
    assert len(model.audio_blocks) == 2 and len(model.fusion_blocks) == 2
    for block in model.audio_blocks:
        assert torch.count_nonzero(block.attn_norm.linear.weight) == 0
    visual = torch.randn(1, 120, model.config.visual_dim)
    with torch.no_grad():
        out = model(audio=io["x"], audio_cond=io["cond"], visual=visual, visual_cond=visual,
                    text_ids=io["text_ids"], timestep=io["time"])
    assert out.visual.shape == (1, 120, 58) and torch.count_nonzero(out.visual) == 0  # zero-init output
    assert torch.isfinite(out.audio).all()


@pytest.mark.parametrize("manifest", ["F5TTS_Base_keys.json", "F5TTS_v1_Base_keys.json"])
def test_real_size_manifest_maps_every_key(data_dir, manifest):
    """Every key of the released checkpoints maps onto the base-size model (meta device), shapes equal."""
    shapes = json.loads((data_dir / manifest).read_text())
    state = extract_f5tts_state_dict(shapes)
    assert len(state) == F5_BASE_TENSORS
    config = omnitalker_config_for_f5tts(state, resolve_f5tts_version("v1"))
    assert (config["dim"], config["num_heads"], config["head_dim"], config["num_fusion_layers"]) == (1024, 16, 64, 22)
    assert (config["ff_mult"], config["text_dim"], config["text_conv_layers"]) == (2, 512, 4)
    assert (config["text_num_embeds"], config["conv_pos_kernel"], config["conv_pos_groups"]) == (2545, 31, 16)
    with torch.device("meta"):
        model = OmniTalkerTransformer(**config)
    model_shapes = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    mapped = {f5tts_key_to_omnitalker(key): tuple(shape) for key, shape in state.items()}
    check_mapping(mapped, model_shapes)
    assert len(mapped) == F5_BASE_TENSORS and set(mapped) <= set(model_shapes)
    # the rest of the model is exactly the OmniTalker-only part
    assert all(OMNITALKER_ONLY_KEY.match(key) for key in set(model_shapes) - set(mapped))
    assert model.num_parameters() == 784_766_110


def test_checkpoint_layouts(data_dir, tmp_path):
    checkpoint, io, _ = golden(data_dir, "v0")
    inner = {k.removeprefix("ema_model."): v for k, v in checkpoint.items() if k.startswith("ema_model.")}
    noisy = {k: torch.zeros_like(v) for k, v in inner.items()}
    legacy = dict(checkpoint, **{"ema_model.mel_spec.mel_stft.mel_scale.fb": torch.zeros(3)})
    training_pt = tmp_path / "model_last.pt"
    torch.save({"ema_model_state_dict": legacy, "model_state_dict": noisy, "update": 5}, training_pt)
    loaded = load_f5tts_checkpoint(training_pt)
    for layout in (legacy, {"ema_model_state_dict": checkpoint}, loaded, inner):
        model = convert_f5tts_checkpoint(layout, "v0")
        torch.testing.assert_close(predict(model, io), io["out_cond"], atol=GOLDEN_ATOL, rtol=0)
    online = convert_f5tts_checkpoint(loaded, "v0", use_ema=False)
    assert torch.count_nonzero(online.audio_proj_out.weight) == 0
    bare_dit = {k.removeprefix("transformer."): v for k, v in inner.items()}
    assert extract_f5tts_state_dict(bare_dit).keys() == extract_f5tts_state_dict(checkpoint).keys()


def test_infer_config_from_tiny(data_dir):
    checkpoint, _, arch = golden(data_dir, "v1")
    config = infer_f5tts_config(extract_f5tts_state_dict(checkpoint))
    assert (config["dim"], config["num_fusion_layers"], config["num_heads"], config["head_dim"]) == (
        arch["dim"], arch["depth"], arch["heads"], arch["dim_head"])
    assert (config["text_dim"], config["text_conv_layers"], config["ff_mult"]) == (
        arch["text_dim"], arch["conv_layers"], arch["ff_mult"])


def test_version_resolution():
    assert resolve_f5tts_version("v0") == {"pe_attn_head": 1, "text_mask_padding": False}
    assert resolve_f5tts_version(checkpoint_path="ckpts/F5TTS_v1_Base/model_1250000.safetensors")["pe_attn_head"] is None
    assert resolve_f5tts_version(checkpoint_path="hub/F5TTS_Base/model_1200000.pt")["pe_attn_head"] == 1
    assert resolve_f5tts_version(arch={"dim": 1024}) == {"pe_attn_head": None, "text_mask_padding": True}
    with pytest.raises(ValueError, match="--version"):
        resolve_f5tts_version(checkpoint_path="my_finetune/model_last.pt")
    with pytest.raises(ValueError, match="contradicts"):
        resolve_f5tts_version("v1", arch={"pe_attn_head": 1, "text_mask_padding": False})
    with pytest.raises(ValueError, match="version must be"):
        resolve_f5tts_version("v2")


def test_bad_checkpoints(data_dir, tmp_path):
    checkpoint, _, _ = golden(data_dir, "v0")
    with pytest.raises(ValueError, match="no OmniTalker counterpart"):
        convert_f5tts_checkpoint(dict(checkpoint, **{"ema_model.transformer.long_skip_connection.weight":
                                                     torch.zeros(64, 128)}), "v0")
    with pytest.raises(ValueError, match="F5-TTS DiT checkpoint"):
        convert_f5tts_checkpoint({"encoder.weight": torch.zeros(2)}, "v0")
    with pytest.raises(ValueError, match="does not exist"):
        load_f5tts_checkpoint(tmp_path / "missing.safetensors")
    (tmp_path / "weights.onnx").write_bytes(b"")
    with pytest.raises(ValueError, match="Unsupported checkpoint"):
        load_f5tts_checkpoint(tmp_path / "weights.onnx")
    with pytest.raises(ValueError, match="Unknown config overrides"):
        convert_f5tts_checkpoint(checkpoint, "v0", depth=4)


def test_cli_writes_loadable_folders(data_dir, tmp_path, capsys):
    from omnitalker.frontend.text import OmniTalkerTokenizer

    _, io, _ = golden(data_dir, "v1")
    out = main(["--checkpoint", str(data_dir / "f5tts_v1_tiny.safetensors"), "--vocab",
                str(data_dir / "f5tts_vocab.txt"), "--out", str(tmp_path / "converted"), "--version", "v1",
                "--num-visual-layers", "2"])
    assert "2545 tokens" in capsys.readouterr().out
    model = OmniTalkerTransformer.from_pretrained(out / "transformer").eval()
    assert model.config.num_visual_layers == 2 and model.config.text_mask_padding
    torch.testing.assert_close(predict(model, io), io["out_cond"], atol=GOLDEN_ATOL, rtol=0)
    tokenizer = OmniTalkerTokenizer.from_pretrained(out / "tokenizer")
    assert tokenizer.vocab_size == model.config.text_num_embeds


def test_cli_errors(data_dir, tmp_path):
    common = ["--checkpoint", str(data_dir / "f5tts_v1_tiny.safetensors"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit):  # no version information anywhere
        main([*common, "--vocab", str(data_dir / "f5tts_vocab.txt")])
    short_vocab = tmp_path / "vocab.txt"
    short_vocab.write_text(" \na\nb\n", encoding="utf-8")
    with pytest.raises(SystemExit):  # vocab does not match the text table
        main([*common, "--vocab", str(short_vocab), "--version", "v1"])
    assert not (tmp_path / "out").exists()
