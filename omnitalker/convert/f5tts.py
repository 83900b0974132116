"""Convert an F5-TTS checkpoint into an OmniTalkerTransformer whose audio branch *is* F5-TTS.

    python -m omnitalker.convert.f5tts --checkpoint F5TTS_v1_Base/model_1250000.safetensors \
        --vocab F5TTS_v1_Base/vocab.txt --out f5tts-v1-omnitalker --version v1

writes ``OUT/transformer/`` (``save_pretrained``: config.json + diffusion_pytorch_model.safetensors) and
``OUT/tokenizer/`` (``OmniTalkerTokenizer.save_pretrained`` of the F5 vocab: vocab.txt + tokenizer_config.json).

What the conversion does:
- reads ``.safetensors`` or ``.pt``/``.pth``/``.ckpt`` (``torch.load(weights_only=True)``), unwraps
  ``ema_model_state_dict`` / ``model_state_dict``, strips ``ema_model.`` and ``transformer.``, drops the EMA
  bookkeeping (``initted``, ``step``) and legacy ``mel_spec.*`` buffers;
- infers every audio-side size from the tensor shapes (width, depth, heads, FFN, text table, ConvNeXt depth);
- renames F5 keys (``f5tts_key_to_omnitalker``): ``transformer_blocks.i.*`` -> ``fusion_blocks.i.audio.*``,
  ``input_embed.*`` -> ``audio_embed.*``, ``norm_out``/``proj_out`` -> ``audio_norm_out``/``audio_proj_out``,
  the rest keeps its name;
- everything F5 does not have keeps the fresh adaLN-Zero initialisation: the visual stream (configured like
  the "base" config) and the extra single-modality audio blocks, whose zero modulation makes them the
  identity. With the visual stream absent the model then computes exactly what F5-TTS computes.

v0 (F5TTS_Base: RoPE on head 0 only, no text-mask padding) and v1 (F5TTS_v1_Base: RoPE on all heads, text-mask
padding) checkpoints have identical keys and shapes, so the weights cannot tell them apart. The version comes
from ``--version``, else from an F5 model config (``--config``: the Hydra yaml's ``model.arch`` or a json with
``arch``), else from the released folder names in the checkpoint path (``F5TTS_v1_*`` -> v1, ``F5TTS_Base`` /
``F5TTS_Small`` -> v0); if none of these is available the converter refuses and asks for ``--version``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from omnitalker.frontend.text import OmniTalkerTokenizer
from omnitalker.models.configs import load_named_config
from omnitalker.models.transformer import OmniTalkerTransformer

F5_VERSIONS = {
    "v0": {"pe_attn_head": 1, "text_mask_padding": False},
    "v1": {"pe_attn_head": None, "text_mask_padding": True},
}
# F5's DiT constructor defaults, used when an F5 arch config leaves a flag out
F5_ARCH_DEFAULTS = {"pe_attn_head": None, "text_mask_padding": True}
VISUAL_TEMPLATE_CONFIG = "base"  # the visual stream and single-block counts of converted models
EMA_BOOKKEEPING_KEYS = ("initted", "step")
LEGACY_PREFIXES = ("mel_spec.",)
WRAPPER_KEYS = ("ema_model_state_dict", "model_state_dict")

# F5 DiT key prefix -> OmniTalkerTransformer key prefix (after "transformer." is stripped)
PREFIX_RENAMES = (
    ("input_embed.", "audio_embed."),
    ("norm_out.", "audio_norm_out."),
    ("proj_out.", "audio_proj_out."),
    ("time_embed.", "time_embed."),
    ("text_embed.", "text_embed."),
    ("rotary_embed.", "rotary_embed."),
)
BLOCK_KEY = re.compile(r"^transformer_blocks\.(\d+)\.(.+)$")
# OmniTalker parameters with no F5 counterpart (left at their initialisation by the converter)
OMNITALKER_ONLY_KEY = re.compile(
    r"^(visual_embed|visual_blocks|visual_norm_out|visual_proj_out|audio_blocks)\."
    r"|^fusion_blocks\.\d+\.(visual|audio_cross|visual_cross|audio_fuse|visual_fuse)\."
)


# ---------------------------------------------------------------------------------------------------------
# reading checkpoints


def load_f5tts_checkpoint(path: str | Path) -> dict:
    """The raw dict stored in an F5-TTS checkpoint file (.safetensors, or .pt/.pth/.ckpt)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Checkpoint {path} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if path.suffix in (".pt", ".pth", ".ckpt", ".bin"):
        return torch.load(path, map_location="cpu", weights_only=True)
    raise ValueError(f"Unsupported checkpoint type {path.suffix!r}; expected .safetensors, .pt, .pth or .ckpt.")


def extract_f5tts_state_dict(checkpoint: Mapping, use_ema: bool = True) -> dict:
    """DiT-level F5 weights (keys like ``time_embed.time_mlp.0.weight``) from any released layout.

    Works on any values (tensors, shapes, meta tensors). ``use_ema=False`` takes the online weights of a
    training ``.pt`` (``model_state_dict``) instead of the EMA copy.
    """
    wrappers = WRAPPER_KEYS if use_ema else tuple(reversed(WRAPPER_KEYS))
    for wrapper in wrappers:
        if wrapper in checkpoint:
            checkpoint = checkpoint[wrapper]
            break
    state = {}
    for key, value in checkpoint.items():
        if key in EMA_BOOKKEEPING_KEYS:
            continue
        key = key.removeprefix("ema_model.").removeprefix("transformer.")
        if key.startswith(LEGACY_PREFIXES):
            continue
        state[key] = value
    if "time_embed.time_mlp.0.weight" not in state:
        raise ValueError("This does not look like an F5-TTS DiT checkpoint (no time_embed.time_mlp.0.weight); "
                         f"first keys: {list(checkpoint)[:5]}.")
    return state


# ---------------------------------------------------------------------------------------------------------
# key mapping and config inference (pure functions: work on shapes / meta tensors)


def f5tts_key_to_omnitalker(key: str) -> str:
    """OmniTalkerTransformer key of an F5 DiT key; ValueError for a key with no counterpart."""
    match = BLOCK_KEY.match(key)
    if match:
        return f"fusion_blocks.{match.group(1)}.audio.{match.group(2)}"
    for old, new in PREFIX_RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    raise ValueError(f"F5-TTS key {key!r} has no OmniTalker counterpart (long skip connections and non-DiT "
                     "backbones such as UNetT/MMDiT are not supported).")


def map_f5tts_keys(keys: Iterable[str]) -> dict[str, str]:
    """{F5 key: OmniTalker key} for every DiT-level key."""
    return {key: f5tts_key_to_omnitalker(key) for key in keys}


def _shape(value) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def infer_f5tts_config(state: Mapping) -> dict:
    """OmniTalker audio-side kwargs read off the shapes of a DiT-level F5 state dict (values: tensors or shapes)."""
    shapes = {key: _shape(value) for key, value in state.items()}
    dim = shapes["time_embed.time_mlp.2.weight"][0]
    table_rows, text_dim = shapes["text_embed.text_embed.weight"]
    mel_dim = shapes["proj_out.weight"][0]
    head_dim = 2 * shapes["rotary_embed.inv_freq"][0]
    inner_dim = shapes["transformer_blocks.0.attn.to_q.weight"][0]
    conv_out, conv_in_per_group, kernel = shapes["input_embed.conv_pos_embed.conv1d.0.weight"]
    depth = len({int(m.group(1)) for m in map(BLOCK_KEY.match, shapes) if m})
    text_layers = len({key.split(".")[2] for key in shapes if key.startswith("text_embed.text_blocks.")})
    ff_inner = shapes["transformer_blocks.0.ff.ff.0.0.weight"][0]
    expected_proj_in = 2 * mel_dim + text_dim
    if shapes["input_embed.proj.weight"][1] != expected_proj_in:
        raise ValueError(f"input_embed.proj takes {shapes['input_embed.proj.weight'][1]} features, expected "
                         f"2*mel_dim+text_dim = {expected_proj_in}: not an F5-TTS DiT.")
    return {
        "mel_dim": mel_dim,
        "text_num_embeds": table_rows - 1,  # row 0 is the filler
        "text_dim": text_dim,
        "text_conv_layers": text_layers,
        "dim": dim,
        "num_heads": inner_dim // head_dim,
        "head_dim": head_dim,
        "ff_mult": ff_inner // dim if ff_inner % dim == 0 else ff_inner / dim,
        "num_fusion_layers": depth,
        "conv_pos_kernel": kernel,
        "conv_pos_groups": conv_out // conv_in_per_group,
        "qk_norm": "rms_norm" if "transformer_blocks.0.attn.q_norm.weight" in shapes else None,
    }


def resolve_f5tts_version(
    version: str | None = None, arch: Mapping | None = None, checkpoint_path: str | Path | None = None
) -> dict:
    """``pe_attn_head`` / ``text_mask_padding`` of the checkpoint (see the module docstring for the order)."""
    if version is not None and version not in F5_VERSIONS:
        raise ValueError(f"version must be one of {sorted(F5_VERSIONS)}, got {version!r}.")
    from_arch = None
    if arch is not None:
        from_arch = {key: arch.get(key, default) for key, default in F5_ARCH_DEFAULTS.items()}
    if version is not None:
        if from_arch is not None and from_arch != F5_VERSIONS[version]:
            raise ValueError(f"--version {version} contradicts the model config {from_arch}.")
        return dict(F5_VERSIONS[version])
    if from_arch is not None:
        return from_arch
    if checkpoint_path is not None:
        names = " ".join(Path(checkpoint_path).parts)
        if re.search(r"F5TTS_v1_", names):
            return dict(F5_VERSIONS["v1"])
        if re.search(r"F5TTS_(Base|Small)", names):
            return dict(F5_VERSIONS["v0"])
    raise ValueError(
        "Cannot tell whether this is an F5-TTS v0 checkpoint (F5TTS_Base: RoPE on head 0 only, no text-mask "
        "padding) or v1 (F5TTS_v1_Base: RoPE on all heads, text-mask padding): their weights look the same. "
        "Pass version='v0'|'v1' (CLI: --version) or the model's F5 config (CLI: --config)."
    )


def omnitalker_config_for_f5tts(state: Mapping, flags: Mapping, **overrides) -> dict:
    """Full OmniTalkerTransformer kwargs: the "base" visual stream + the F5 audio side + the version flags.
    ``visual_stream=False`` (an override) leaves the visual stream out: an audio-only model, F5-TTS's size."""
    config = {**load_named_config(VISUAL_TEMPLATE_CONFIG), "visual_stream": True, **infer_f5tts_config(state),
              **flags}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"Unknown config overrides {unknown}; valid keys: {sorted(config)}.")
    config.update(overrides)
    return config


def check_mapping(mapped_shapes: Mapping[str, Sequence[int]], model_shapes: Mapping[str, Sequence[int]]) -> None:
    """ValueError unless the mapped F5 weights cover exactly the model's F5-compatible keys with equal shapes."""
    leftover = sorted(set(mapped_shapes) - set(model_shapes))
    missing = sorted(k for k in set(model_shapes) - set(mapped_shapes) if not OMNITALKER_ONLY_KEY.match(k))
    wrong = sorted(k for k in set(mapped_shapes) & set(model_shapes)
                   if tuple(mapped_shapes[k]) != tuple(model_shapes[k]))
    if leftover or missing or wrong:
        raise ValueError(f"F5-TTS weights do not fit the model: unused {leftover[:5]}, missing {missing[:5]}, "
                         f"shape mismatch {[(k, mapped_shapes[k], model_shapes[k]) for k in wrong[:5]]}.")


# ---------------------------------------------------------------------------------------------------------
# conversion


def convert_f5tts_checkpoint(
    state_dict: Mapping,
    version: str | None = None,
    *,
    arch: Mapping | None = None,
    checkpoint_path: str | Path | None = None,
    use_ema: bool = True,
    **overrides,
) -> OmniTalkerTransformer:
    """An OmniTalkerTransformer (float32, eval mode) carrying the F5-TTS weights in its audio branch.

    ``state_dict``: the loaded checkpoint in any released layout. ``version``: "v0" | "v1" (or give ``arch``,
    the F5 model config, or ``checkpoint_path`` with a released folder name). ``overrides``: any other
    OmniTalkerTransformer kwargs (e.g. ``num_audio_layers``, ``visual_dim``, ``fusion``; ``visual_stream=False``
    for an audio-only model without the untrained visual parameters).
    """
    state = extract_f5tts_state_dict(state_dict, use_ema=use_ema)
    flags = resolve_f5tts_version(version, arch, checkpoint_path)
    model = OmniTalkerTransformer(**omnitalker_config_for_f5tts(state, flags, **overrides))
    mapped = {f5tts_key_to_omnitalker(key): value for key, value in state.items()}
    target = model.state_dict()
    check_mapping({k: _shape(v) for k, v in mapped.items()}, {k: _shape(v) for k, v in target.items()})
    model.load_state_dict(mapped, strict=False)
    # F5 has no single-modality blocks after its 22: zero modulation makes the extra ones the identity
    for block in model.audio_blocks:
        torch.nn.init.zeros_(block.attn_norm.linear.weight)
        torch.nn.init.zeros_(block.attn_norm.linear.bias)
    return model.eval()


def read_arch(path: str | Path) -> dict:
    """The ``arch`` mapping of an F5 model config: Hydra yaml (``model.arch``) or json (``arch`` / ``model.arch``)."""
    text = Path(path).read_text(encoding="utf-8")
    if Path(path).suffix in (".yaml", ".yml"):
        import yaml

        config = yaml.safe_load(text)
    else:
        config = json.loads(text)
    arch = config.get("arch") or (config.get("model") or {}).get("arch")
    if not isinstance(arch, dict):
        raise ValueError(f"{path} has no 'model.arch' (or 'arch') section.")
    return arch


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(
        prog="python -m omnitalker.convert.f5tts",
        description="Convert an F5-TTS checkpoint into an OmniTalkerTransformer (audio branch = F5-TTS).",
    )
    parser.add_argument("--checkpoint", required=True, help="F5-TTS .safetensors or .pt checkpoint")
    parser.add_argument("--vocab", required=True, help="the checkpoint's vocab.txt (one token per line)")
    parser.add_argument("--out", required=True, help="output folder (gets transformer/ and tokenizer/)")
    parser.add_argument("--version", choices=sorted(F5_VERSIONS), default=None,
                        help="v0 = F5TTS_Base (RoPE on head 0, no text-mask padding), v1 = F5TTS_v1_Base; "
                             "needed unless --config or the checkpoint's folder name tells")
    parser.add_argument("--config", default=None, help="the F5 model config (yaml with model.arch, or json)")
    parser.add_argument("--non-ema", action="store_true", help="use model_state_dict instead of the EMA weights")
    parser.add_argument("--num-audio-layers", type=int, default=None, help="extra single audio blocks (base: 4)")
    parser.add_argument("--num-visual-layers", type=int, default=None, help="single visual blocks (base: 4)")
    parser.add_argument("--visual-dim", type=int, default=None, help="visual code channels (base: 58)")
    args = parser.parse_args(argv)

    overrides = {key: value for key, value in (("num_audio_layers", args.num_audio_layers),
                                               ("num_visual_layers", args.num_visual_layers),
                                               ("visual_dim", args.visual_dim)) if value is not None}
    try:
        arch = read_arch(args.config) if args.config is not None else None
        model = convert_f5tts_checkpoint(load_f5tts_checkpoint(args.checkpoint), args.version, arch=arch,
                                         checkpoint_path=args.checkpoint, use_ema=not args.non_ema, **overrides)
        tokenizer = OmniTalkerTokenizer.from_vocab_file(args.vocab)  # validates the F5 vocab format
        if tokenizer.vocab_size != model.config.text_num_embeds:
            raise ValueError(f"{args.vocab} has {tokenizer.vocab_size} tokens but the checkpoint's text table "
                             f"has {model.config.text_num_embeds}: pass the vocab the checkpoint was trained with.")
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))

    out = Path(args.out)
    model.save_pretrained(out / "transformer", safe_serialization=True)
    tokenizer.save_pretrained(out / "tokenizer")
    print(f"wrote {out / 'transformer'} ({model.num_parameters():,} parameters, "
          f"pe_attn_head={model.config.pe_attn_head}, text_mask_padding={model.config.text_mask_padding}) "
          f"and {out / 'tokenizer'} ({tokenizer.vocab_size} tokens)")
    return out


if __name__ == "__main__":
    main()
