"""Tests of the dual-branch OmniTalker DiT (tiny config; base only on the meta device).

    python -m pytest tests/test_transformer.py -q
"""

from __future__ import annotations

import pytest
import torch

from omnitalker.models.fusion import FUSION_BLOCKS
from omnitalker.models.modules import apply_rotary
from omnitalker.models.transformer import OmniTalkerTransformer, OmniTalkerTransformerOutput
from tests.pipeline_fixtures import tiny_transformer

MEL, VIS = 100, 58
BASE_PARAMS = 784_644_766  # exact count of the "base" config with the default 2308-token vocab
NAMED_PARAMS = {"demo": 16_752_798, "small": 4_649_374, "tiny": 161_918}


tiny = tiny_transformer


def inputs(batch=2, frames=24, seed=0, audio=True, visual=True):
    generator = torch.Generator().manual_seed(seed)
    out = {
        "text_ids": torch.tensor([[5, 9, 17, 3, -1, -1], [40, 41, 42, 43, 44, 45]])[:batch],
        "timestep": torch.tensor([0.3, 0.8])[:batch],
    }
    if audio:
        out["audio"] = torch.randn(batch, frames, MEL, generator=generator)
        out["audio_cond"] = torch.randn(batch, frames, MEL, generator=generator)
    if visual:
        out["visual"] = torch.randn(batch, frames, VIS, generator=generator)
        out["visual_cond"] = torch.randn(batch, frames, VIS, generator=generator)
    return out


def outputs(result: OmniTalkerTransformerOutput) -> list[torch.Tensor]:
    return [x for x in (result.audio, result.visual) if x is not None]


@pytest.mark.parametrize("fusion", sorted(FUSION_BLOCKS))
@pytest.mark.parametrize("streams", ["audio", "visual", "both"])
def test_output_shapes(fusion, streams):
    model = tiny(fusion=fusion)
    kwargs = inputs(audio=streams != "visual", visual=streams != "audio")
    with torch.no_grad():
        out = model(**kwargs)
    assert isinstance(out, OmniTalkerTransformerOutput)
    assert (out.audio is None) == (streams == "visual")
    assert (out.visual is None) == (streams == "audio")
    if out.audio is not None:
        assert out.audio.shape == (2, 24, MEL) and torch.isfinite(out.audio).all()
    if out.visual is not None:
        assert out.visual.shape == (2, 24, VIS) and torch.isfinite(out.visual).all()
    as_tuple = model(**kwargs, return_dict=False)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == 2


def test_fresh_model_outputs_zero():
    """adaLN-Zero: zero-initialised output projections, so an untrained model predicts zero velocity."""
    model = OmniTalkerTransformer.from_named_config("tiny")
    out = model(**inputs())
    assert torch.count_nonzero(out.audio) == 0 and torch.count_nonzero(out.visual) == 0
    for block in [*model.fusion_blocks, *model.audio_blocks]:
        for linear in ([block.audio.attn_norm.linear, block.visual.attn_norm.linear] if hasattr(block, "visual")
                       else [block.attn_norm.linear]):
            assert torch.count_nonzero(linear.weight) == 0


@pytest.mark.parametrize("fusion", sorted(FUSION_BLOCKS))
def test_streams_interact(fusion):
    """Changing the video changes the predicted audio and vice versa (the fusion blocks really fuse)."""
    model = tiny(fusion=fusion)
    base = inputs()
    other = dict(base, visual=base["visual"] + 1.0)
    with torch.no_grad():
        delta = (model(**base).audio - model(**other).audio).abs().max()
    assert delta > 1e-3


@pytest.mark.parametrize("fusion", sorted(FUSION_BLOCKS))
def test_absent_stream_block_is_single_dit_block(fusion):
    model = tiny(fusion=fusion)
    block = model.fusion_blocks[0]
    x, t = torch.randn(2, 10, 32), torch.randn(2, 32)
    rope = model.rotary_embed(10)  # (cos, sin)
    with torch.no_grad():
        audio, visual = block(x, None, t, None, rope)
        assert visual is None and torch.equal(audio, block.audio(x, t, None, rope))
        audio, visual = block(None, x, t, None, rope)
        assert audio is None and torch.equal(visual, block.visual(x, t, None, rope))


@pytest.mark.parametrize("fusion", sorted(FUSION_BLOCKS))
@pytest.mark.parametrize("mask_padding", [True, False])
def test_padded_batch_equals_items_alone(fusion, mask_padding):
    model = tiny(fusion=fusion, text_mask_padding=mask_padding)
    lengths = [17, 24]
    batch = inputs(frames=24)
    mask = torch.arange(24)[None] < torch.tensor(lengths)[:, None]  # b n
    with torch.no_grad():
        padded = model(**batch, attention_mask=mask)
        for i, length in enumerate(lengths):
            alone = model(
                audio=batch["audio"][i : i + 1, :length], audio_cond=batch["audio_cond"][i : i + 1, :length],
                visual=batch["visual"][i : i + 1, :length], visual_cond=batch["visual_cond"][i : i + 1, :length],
                text_ids=batch["text_ids"][i : i + 1], timestep=batch["timestep"][i : i + 1],
            )
            torch.testing.assert_close(padded.audio[i, :length], alone.audio[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(padded.visual[i, :length], alone.visual[0], atol=1e-5, rtol=0)
        assert torch.count_nonzero(padded.audio[0, lengths[0]:]) == 0  # padded frames predict 0


def test_padded_batch_audio_only():
    model = tiny()
    batch = inputs(frames=20, visual=False)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[1, 12:] = False
    with torch.no_grad():
        padded = model(**batch, attention_mask=mask).audio
        alone = model(audio=batch["audio"][1:, :12], audio_cond=batch["audio_cond"][1:, :12],
                      text_ids=batch["text_ids"][1:], timestep=batch["timestep"][1:]).audio
    torch.testing.assert_close(padded[1, :12], alone[0], atol=1e-5, rtol=0)


def test_per_sample_drop_flags_equal_separate_calls():
    """One batched forward with per-sample drops == separate forwards with scalar drops (CFG packing)."""
    model = tiny()
    single = inputs(batch=1)
    combos = [(False, False, False), (True, False, False), (False, True, False), (False, False, True),
              (True, True, True)]
    stacked = {key: torch.cat([value] * len(combos)) for key, value in single.items()}
    flags = [torch.tensor([c[i] for c in combos]) for i in range(3)]
    with torch.no_grad():
        batched = model(**stacked, drop_text=flags[0], drop_audio_cond=flags[1], drop_visual_cond=flags[2])
        for i, (text, audio, visual) in enumerate(combos):
            alone = model(**single, drop_text=text, drop_audio_cond=audio, drop_visual_cond=visual)
            torch.testing.assert_close(batched.audio[i], alone.audio[0], atol=1e-5, rtol=0)
            torch.testing.assert_close(batched.visual[i], alone.visual[0], atol=1e-5, rtol=0)
        # each drop really changes the prediction
        for i in range(1, len(combos)):
            assert (batched.audio[i] - batched.audio[0]).abs().max() > 1e-4


@torch.no_grad()
def test_precomputed_text_embeds_equal_the_text_branch():
    model, batch = tiny(), inputs()
    drop = torch.tensor([False, True])
    direct = model(**batch, drop_text=drop)
    text = model.embed_text(batch["text_ids"], 24, drop_text=drop)  # b n dt
    reused = model(**batch, text_embeds=text)
    for expected, got in zip(outputs(direct), outputs(reused), strict=True):
        torch.testing.assert_close(got, expected, atol=0, rtol=0)
    with pytest.raises(ValueError, match="drop_text"):
        model(**batch, text_embeds=text, drop_text=True)
    with pytest.raises(ValueError, match="text_embeds"):
        model(**batch, text_embeds=text[:, :10])
    with pytest.raises(ValueError, match="num_frames"):
        model.embed_text(batch["text_ids"], 0)


def test_drop_audio_cond_equals_zero_prompt():
    model = tiny()
    batch = inputs()
    with torch.no_grad():
        dropped = model(**batch, drop_audio_cond=True, drop_visual_cond=True)
        zeroed = model(**dict(batch, audio_cond=torch.zeros_like(batch["audio_cond"]),
                              visual_cond=torch.zeros_like(batch["visual_cond"])))
        no_cond = model(audio=batch["audio"], visual=batch["visual"], text_ids=batch["text_ids"],
                        timestep=batch["timestep"])
    for a, b in zip(outputs(dropped), outputs(zeroed), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    for a, b in zip(outputs(no_cond), outputs(zeroed), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_save_and_load_roundtrip(tmp_path):
    model = tiny(fusion="cross_attention", pe_attn_head=1)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = OmniTalkerTransformer.from_pretrained(tmp_path).eval()
    assert loaded.config.fusion == "cross_attention" and loaded.config.pe_attn_head == 1
    assert torch.equal(loaded.rotary_embed.inv_freq, model.rotary_embed.inv_freq)
    batch = inputs()
    with torch.no_grad():
        for a, b in zip(outputs(model(**batch)), outputs(loaded(**batch)), strict=True):
            assert torch.equal(a, b)


def test_deterministic():
    batch = inputs()
    with torch.no_grad():
        first, second = tiny(seed=3)(**batch), tiny(seed=3)(**batch)
    for a, b in zip(outputs(first), outputs(second), strict=True):
        assert torch.equal(a, b)
    model = tiny(dropout=0.3).train()  # dropout: same seed, same result
    torch.manual_seed(7)
    a = model(**batch).audio
    torch.manual_seed(7)
    b = model(**batch).audio
    torch.manual_seed(8)
    c = model(**batch).audio
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gradient_checkpointing_same_gradients():
    batch = inputs()
    grads = []
    for checkpointing in (False, True):
        model = tiny(seed=1, dropout=0.2).train()
        if checkpointing:
            model.enable_gradient_checkpointing()
            assert model.is_gradient_checkpointing
        torch.manual_seed(0)
        out = model(**batch, drop_text=torch.tensor([True, False]))
        (out.audio.square().mean() + out.visual.abs().mean()).backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 50
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5)


def test_base_parameter_count_on_meta_device():
    with torch.device("meta"):
        model = OmniTalkerTransformer.from_named_config("base")
        default = OmniTalkerTransformer()
    count = model.num_parameters()
    assert 700_000_000 <= count <= 900_000_000
    assert count == BASE_PARAMS == default.num_parameters()
    assert (model.config.num_fusion_layers, model.config.num_audio_layers, model.config.num_visual_layers) == (22, 4, 4)
    assert model.config.dim == 1024 and model.config.num_heads * model.config.head_dim == 1024
    assert model.fusion_blocks[0].audio.ff.ff[0][0].out_features == 2048  # FFN 2048 (paper Table 5)
    assert model.text_embed.text_blocks[0].pwconv1.out_features == 1024  # ConvNeXt FFN 1024


@pytest.mark.parametrize("name", sorted(NAMED_PARAMS))
def test_named_config_sizes(name):
    with torch.device("meta"):
        model = OmniTalkerTransformer.from_named_config(name)
    assert model.num_parameters() == NAMED_PARAMS[name]
    assert {"tiny": 500_000, "small": 6_000_000, "demo": 20_000_000}[name] >= model.num_parameters()


def test_default_vocab_matches_packaged_tokenizer():
    from omnitalker.frontend.text import OmniTalkerTokenizer

    assert OmniTalkerTransformer.from_named_config("tiny").config.text_num_embeds == OmniTalkerTokenizer.default().vocab_size


def test_named_config_errors():
    with pytest.raises(ValueError, match="Unknown config"):
        OmniTalkerTransformer.from_named_config("huge")
    with pytest.raises(ValueError, match="Unknown config keys"):
        OmniTalkerTransformer.from_named_config("tiny", depth=3)
    with pytest.raises(ValueError, match="fusion"):
        OmniTalkerTransformer.from_named_config("tiny", fusion="concat")
    with pytest.raises(ValueError, match="pe_attn_head"):
        OmniTalkerTransformer.from_named_config("tiny", pe_attn_head=5)
    with pytest.raises(ValueError, match="text_mask_padding"):
        OmniTalkerTransformer.from_named_config("tiny", text_mask_padding=False, text_average_upsampling=True)


def test_interleaved_rope_matches_complex_rotation():
    model = tiny()
    x = torch.randn(1, 2, 6, 16)  # b h n dh
    rope = model.rotary_embed(6)  # (cos, sin), n dh/2
    rotated = apply_rotary(x, rope)
    angles = torch.atan2(rope[1], rope[0])
    pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)).contiguous())  # adjacent pairs = complex numbers
    expected = torch.view_as_real(pairs * torch.polar(torch.ones_like(angles), angles)).flatten(-2)
    torch.testing.assert_close(rotated, expected, atol=1e-5, rtol=1e-5)
    # F5 / x_transformers formula: x * cos + rotate_every_two(x) * sin with the angles repeated per pair
    cos, sin = (table.repeat_interleave(2, dim=-1) for table in rope)
    rotate = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
    assert torch.equal(rotated, x * cos + rotate * sin)
    inv_freq = model.rotary_embed.inv_freq
    torch.testing.assert_close(angles[1], inv_freq, atol=1e-6, rtol=0)  # position 1 turns by inv_freq
    head_zero_only = apply_rotary(x, rope, num_heads=1)
    assert torch.equal(head_zero_only[:, 1], x[:, 1]) and torch.equal(head_zero_only[:, 0], rotated[:, 0])


def test_average_upsampling_spreads_text():
    model = tiny(text_average_upsampling=True)
    batch = inputs()
    with torch.no_grad():
        out = model(**batch)
        text = model.text_embed(batch["text_ids"], 24)
    assert out.audio.shape == (2, 24, MEL)
    # sample 0 has 4 tokens over 24 frames: 6 identical frames per token, none left as zero
    assert torch.equal(text[0, 0], text[0, 5]) and not torch.equal(text[0, 5], text[0, 6])
    assert (text[0].abs().sum(-1) > 0).all()


BAD_INPUTS = {
    "no stream": (dict(audio=None, audio_cond=None, visual=None, visual_cond=None), "Both streams are absent"),
    "cond without stream": (dict(audio=None), "audio_cond"),
    "wrong mel dim": (dict(audio=torch.randn(2, 24, 80), audio_cond=None), r"\(batch, frames, 100\)"),
    "wrong visual dim": (dict(visual_cond=torch.randn(2, 24, 10)), "visual_cond"),
    "2-d stream": (dict(audio=torch.randn(24, MEL), audio_cond=None), "shape"),
    "int stream": (dict(audio=torch.zeros(2, 24, MEL, dtype=torch.long)), "floating-point"),
    "cond shape": (dict(audio_cond=torch.randn(2, 20, MEL)), "audio_cond"),
    "length mismatch": (dict(visual=torch.randn(2, 20, VIS), visual_cond=None), "share batch size and frame count"),
    "batch mismatch": (dict(visual=torch.randn(1, 24, VIS), visual_cond=None), "share batch size"),
    "float text": (dict(text_ids=torch.ones(2, 4)), "integer"),
    "bool text": (dict(text_ids=torch.ones(2, 4, dtype=torch.bool)), "integer"),
    "text batch": (dict(text_ids=torch.ones(3, 4, dtype=torch.long)), "text_ids"),
    "empty text": (dict(text_ids=torch.zeros(2, 0, dtype=torch.long)), "Empty text"),
    "all pad text": (dict(text_ids=torch.tensor([[1, 2], [-1, -1]])), "Empty text"),
    "out of vocab": (dict(text_ids=torch.tensor([[1, 2], [3, 5000]])), "vocab"),
    "below pad": (dict(text_ids=torch.tensor([[1, -2], [3, 4]])), "vocab"),
    "timestep range": (dict(timestep=1.5), r"\[0, 1\]"),
    "timestep batch": (dict(timestep=torch.tensor([0.1, 0.2, 0.3])), "timestep"),
    "int timestep tensor": (dict(timestep=torch.tensor([0, 1])), "timestep"),
    "mask dtype": (dict(attention_mask=torch.ones(2, 24)), "bool"),
    "mask shape": (dict(attention_mask=torch.ones(2, 20, dtype=torch.bool)), "attention_mask"),
    "empty mask row": (dict(attention_mask=torch.tensor([[True] * 24, [False] * 24])), "no valid frame"),
    "drop shape": (dict(drop_text=torch.tensor([True])), "drop_text"),
    "drop dtype": (dict(drop_audio_cond=torch.tensor([1, 0])), "drop_audio_cond"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_raise_value_error(case):
    model = OmniTalkerTransformer.from_named_config("tiny")
    change, message = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=message):
        model(**{**inputs(), **change})


VALUE_CHECKS = {"all pad text", "out of vocab", "below pad", "empty mask row"}  # a float timestep is checked: no sync


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_check_values_off_keeps_shape_checks(case):
    """check_values=False (the sampler after its first step) skips exactly the checks that read values."""
    model = OmniTalkerTransformer.from_named_config("tiny")
    change, message = BAD_INPUTS[case]
    if case in ("out of vocab", "below pad"):  # not checked: the embedding lookup itself fails
        with pytest.raises(IndexError):
            model(**{**inputs(), **change}, check_values=False)
    elif case in VALUE_CHECKS:
        model(**{**inputs(), **change}, check_values=False)  # not read: no host sync
    else:
        with pytest.raises(ValueError, match=message):
            model(**{**inputs(), **change}, check_values=False)


def test_sampling_checks_values_once():
    from omnitalker.flow import OmniTalkerFlowMatchScheduler, sample

    model = OmniTalkerTransformer.from_named_config("tiny").eval()
    seen = []
    original = model.check_inputs
    model.check_inputs = lambda *args: seen.append(args[-1]) or original(*args)
    sample(model, OmniTalkerFlowMatchScheduler(num_inference_steps=3), text_ids=torch.tensor([[1, 2, 3]]),
           audio_cond=torch.randn(1, 8, MEL), cond_mask=torch.zeros(1, 8, dtype=torch.bool))
    assert seen == [True, False, False]
    with pytest.raises(ValueError, match="vocab"):  # a bad id is still caught, on the first step
        sample(model, OmniTalkerFlowMatchScheduler(num_inference_steps=3), text_ids=torch.tensor([[1, 5000]]),
               audio_cond=torch.randn(1, 8, MEL), cond_mask=torch.zeros(1, 8, dtype=torch.bool))


def test_too_many_frames_raises():
    model = OmniTalkerTransformer.from_named_config("tiny", max_text_positions=16)
    with pytest.raises(ValueError, match="max_text_positions"):
        model(**inputs(frames=24))
