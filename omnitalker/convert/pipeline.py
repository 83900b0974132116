"""F5-TTS + Vocos checkpoints -> a complete OmniTalker pipeline folder that ``from_pretrained`` loads (issue 15).

    # released weights from the Hub (needs network; F5-TTS weights are CC-BY-NC, Vocos MIT):
    python -m omnitalker.convert.pipeline --f5tts F5TTS_v1_Base --vocos charactr/vocos-mel-24khz --out f5tts-v1
    # local files (no network):
    python -m omnitalker.convert.pipeline --f5tts F5TTS_v1_Base/model_1250000.safetensors \
        --vocab F5TTS_v1_Base/vocab.txt --vocos vocos-mel-24khz/ --out f5tts-v1

    pipe = OmniTalkerPipeline.from_pretrained("f5tts-v1")     # cascade: speech from F5, face from the demo
    out = pipe("Nice to meet you.", reference_video="ref.mp4", reference_text="...")

The folder (``save_pretrained`` layout, safetensors) holds:
- ``transformer/``: the F5-TTS DiT as an ``OmniTalkerTransformer`` with the visual stream absent
  (``visual_stream=False``, no extra audio blocks: F5's own size and arithmetic, ``omnitalker.convert.f5tts``);
  ``--with-visual-stream`` keeps an untrained "base" visual stream instead (a start for joint fine-tuning);
- ``tokenizer/``: the checkpoint's vocab (characters + tone-numbered pinyin, the "filler" text layout);
- ``vocoder/``: Vocos (``omnitalker.convert.vocos``), reloaded and compared bit for bit;
- ``scheduler/`` (Euler, sway sampling -1, as F5-TTS) and ``renderer/`` (the training-free warp renderer);
- ``model_index.json`` with ``trained_branches: ["audio"]`` (so the pipeline runs the cascade: the face comes
  from ``visual_pipeline``, default the bundled demo), F5's guidance (``joint`` 2: text and prompt dropped
  together, the only drop F5 was trained with) and ``visual_pipeline`` when ``--visual-pipeline`` is given;
- ``README.md``: a model card stating each part's licence.

Sources: a local file / folder, or a Hub reference ``hf://owner/repo/path/in/repo`` (a Vocos repo id such as
``charactr/vocos-mel-24khz`` works as it is), or a release name: ``F5TTS_v1_Base`` / ``F5TTS_Base`` (checkpoint,
vocab and version). Hub files are fetched with ``huggingface_hub.hf_hub_download`` only when named on the
command line (``--vocos`` has no default for that reason); nothing downloads at import or by default.
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from omnitalker.convert.f5tts import (
    F5_VERSIONS,
    convert_f5tts_checkpoint,
    load_f5tts_checkpoint,
    read_arch,
)
from omnitalker.flow.guidance import STRENGTHS, GuidanceConfig
from omnitalker.flow.scheduler import OmniTalkerFlowMatchScheduler
from omnitalker.frontend.text import OmniTalkerTokenizer
from omnitalker.models.vocoder import VOCOS_CONFIG_NAME, VOCOS_WEIGHTS_NAME, VocosVocoder
from omnitalker.render.warp import WarpRenderer

HUB_PREFIX = "hf://"
F5_REPO = "SWivid/F5-TTS"
DEFAULT_VOCOS = "charactr/vocos-mel-24khz"  # named in the help; never fetched unless the user passes it


@dataclass(frozen=True)
class F5Release:
    """A released F5-TTS checkpoint on the Hub: its files and version."""

    checkpoint: str
    vocab: str
    version: str


# The released vocab (2,545 tokens) is one file, in the v1 folder, shared by both releases.
F5_RELEASES = {
    "F5TTS_v1_Base": F5Release(f"{HUB_PREFIX}{F5_REPO}/F5TTS_v1_Base/model_1250000.safetensors",
                               f"{HUB_PREFIX}{F5_REPO}/F5TTS_v1_Base/vocab.txt", "v1"),
    "F5TTS_Base": F5Release(f"{HUB_PREFIX}{F5_REPO}/F5TTS_Base/model_1200000.safetensors",
                            f"{HUB_PREFIX}{F5_REPO}/F5TTS_v1_Base/vocab.txt", "v0"),
}
F5_CFG_STRENGTH = 2.0  # F5-TTS samples with cfg_strength 2 (every condition dropped at once)
# F5's own sampling: its guidance on every step (guidance reuse was measured on the demo model only)
F5_GUIDANCE = {**{key: getattr(GuidanceConfig.f5(F5_CFG_STRENGTH), key) for key in STRENGTHS}, "refresh_every": 1}
RENDER_SIZE = 512  # the paper's output size; the cascade renders with the visual pipeline's renderer
LICENCES = {
    "transformer": ("F5-TTS weights", "CC-BY-NC-4.0 (non-commercial; trained on Emilia)",
                    "https://huggingface.co/SWivid/F5-TTS"),
    "vocoder": ("Vocos weights", "MIT", "https://huggingface.co/charactr/vocos-mel-24khz"),
    "code": ("omnitalker code, scheduler, tokenizer format, renderer", "Apache-2.0", "this repository"),
    "demo": ("bundled demo (the cascade's default visual pipeline)", "Apache-2.0 (ours)", "weights/omnitalker-demo"),
}


# ---------------------------------------------------------------------------------------------------------
# sources


def fetch(source: str | Path, what: str) -> Path:
    """A local path as it is, or a ``hf://owner/repo/path`` file downloaded (lazily imported huggingface_hub)."""
    source = str(source)
    if not source.startswith(HUB_PREFIX):
        path = Path(source).expanduser()
        if not path.exists():
            raise ValueError(f"{what} {source!r} does not exist; give a local path, a Hub file as "
                             f"{HUB_PREFIX}owner/repo/path/in/repo, or a release name ({', '.join(F5_RELEASES)}).")
        return path
    parts = source[len(HUB_PREFIX):].split("/")
    if len(parts) < 3:
        raise ValueError(f"{what} {source!r}: a Hub file is {HUB_PREFIX}owner/repo/path/in/repo")
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(repo_id="/".join(parts[:2]), filename="/".join(parts[2:])))


def resolve_vocos(source: str | Path) -> Path:
    """A Vocos folder / .bin, or a Hub repo id (``owner/name``, e.g. charactr/vocos-mel-24khz) -> a local folder
    or .bin with its config.yaml next to it."""
    source = str(source)
    if Path(source).expanduser().exists() or source.startswith(HUB_PREFIX):
        return fetch(source, "--vocos")
    if source.count("/") != 1:
        raise ValueError(f"--vocos {source!r} is neither a local Vocos folder / .bin nor a Hub repo id (owner/name)")
    for name in (VOCOS_CONFIG_NAME, VOCOS_WEIGHTS_NAME):
        path = fetch(f"{HUB_PREFIX}{source}/{name}", "--vocos")
    return path.parent


def resolve_f5tts(checkpoint: str, vocab: str | None, version: str | None) -> tuple[Path, Path, str | None]:
    """(checkpoint file, vocab file, version) from a release name, Hub references or local files."""
    release = F5_RELEASES.get(checkpoint)
    if release is not None:
        if version is not None and version != release.version:
            raise ValueError(f"{checkpoint} is F5-TTS {release.version}, not {version}")
        checkpoint, vocab, version = release.checkpoint, vocab or release.vocab, release.version
    if vocab is None:
        raise ValueError("--vocab is required with a checkpoint file: the vocab.txt the checkpoint was trained with "
                         f"(released models: {F5_RELEASES['F5TTS_v1_Base'].vocab})")
    return fetch(checkpoint, "--f5tts"), fetch(vocab, "--vocab"), version


# ---------------------------------------------------------------------------------------------------------
# assembly


def build_pipeline(f5tts_checkpoint: str | Path, vocab: str | Path, vocos: str | Path, *, version: str | None = None,
                   arch: dict | None = None, use_ema: bool = True, with_visual_stream: bool = False,
                   visual_pipeline: str | None = None, vocos_config: str | Path | None = None):
    """The converted ``OmniTalkerPipeline`` (not saved) from local files: F5 checkpoint + vocab + Vocos."""
    from omnitalker.pipeline import OmniTalkerPipeline

    overrides = {} if with_visual_stream else {"visual_stream": False, "num_audio_layers": 0}
    transformer = convert_f5tts_checkpoint(load_f5tts_checkpoint(f5tts_checkpoint), version, arch=arch,
                                           checkpoint_path=f5tts_checkpoint, use_ema=use_ema, **overrides)
    tokenizer = OmniTalkerTokenizer.from_vocab_file(vocab)
    if tokenizer.vocab_size != transformer.config.text_num_embeds:
        raise ValueError(f"{vocab} has {tokenizer.vocab_size} tokens but the checkpoint's text table has "
                         f"{transformer.config.text_num_embeds}: pass the vocab the checkpoint was trained with.")
    vocoder = VocosVocoder.from_vocos_checkpoint(vocos, config_path=vocos_config)
    return OmniTalkerPipeline(
        transformer=transformer,
        scheduler=OmniTalkerFlowMatchScheduler(),
        tokenizer=tokenizer,
        vocoder=vocoder,
        renderer=WarpRenderer(output_size=RENDER_SIZE),
        trained_branches=["audio"],
        visual_pipeline=visual_pipeline,
        guidance=dict(F5_GUIDANCE),
    )


def check_saved(pipe, folder: Path) -> None:
    """The saved folder loads as a pipeline whose weights equal the converted ones (bit for bit)."""
    from omnitalker.pipeline import OmniTalkerPipeline

    loaded = OmniTalkerPipeline.from_pretrained(folder)
    for name in ("transformer", "vocoder"):
        saved, original = getattr(loaded, name).state_dict(), getattr(pipe, name).state_dict()
        if saved.keys() != original.keys() or any(not torch.equal(saved[k], original[k]) for k in original):
            raise RuntimeError(f"the saved {name} in {folder} does not reload to the converted weights")
    if loaded.branches != ("audio",) or loaded.tokenizer.vocab != pipe.tokenizer.vocab:
        raise RuntimeError(f"the saved pipeline in {folder} lost its config (branches {loaded.branches})")


def model_card(pipe, sources: dict[str, str]) -> str:
    """README.md of a converted pipeline: what is inside, where it came from, and each part's licence."""
    config = pipe.transformer.config
    version = "v1" if config.pe_attn_head is None else "v0"
    rows = "\n".join(f"| {what} | {licence} | {where} |" for what, licence, where in LICENCES.values())
    visual = ("absent (`visual_stream: false`): speech only, the face comes from the cascade's visual pipeline"
              if not config.visual_stream else "present but untrained (the \"base\" visual stream, for fine-tuning)")
    return f"""---
library_name: diffusers
pipeline_tag: text-to-speech
license: cc-by-nc-4.0
tags: [omnitalker, f5-tts, vocos, talking-head, text-to-speech, flow-matching]
---

# OmniTalker pipeline converted from F5-TTS {version} + Vocos

Zero-shot voice cloning in a real human voice (F5-TTS), and with a reference face a talking-head video by the
paper's cascade baseline: speech from this pipeline's audio branch, then the face lip-synced to it by the
audio-driven visual branch of a second pipeline (`visual_pipeline`, default the bundled demo).

```python
from omnitalker import OmniTalkerPipeline
pipe = OmniTalkerPipeline.from_pretrained("<this folder or repo id>")
out = pipe("Nice to meet you.", reference_video="ref.mp4", reference_text="...")          # cascade: mp4
out = pipe("Nice to meet you.", reference_audio="voice.wav", reference_text="...", mode="audio")  # speech only
```

## Licences — read before you use or share the outputs
| part | licence | source |
|---|---|---|
{rows}

The F5-TTS weights are **CC-BY-NC-4.0: non-commercial use only**, and so is this folder (its transformer is
those weights). Every output carries a visible "AI-generated" label and invisible audio and frame watermarks;
do not clone a voice or a face without the person's consent.

## What is inside
- `transformer/`: F5-TTS {version} DiT as an `OmniTalkerTransformer` ({pipe.transformer.num_parameters():,}
  parameters; RoPE heads {config.pe_attn_head or "all"}, text-mask padding {config.text_mask_padding});
  visual stream {visual}. Its audio branch computes exactly what F5-TTS computes.
- `tokenizer/`: the checkpoint's vocab ({pipe.tokenizer.vocab_size} tokens, characters + tone-numbered pinyin).
- `vocoder/`: Vocos ({sum(p.numel() for p in pipe.vocoder.parameters()):,} parameters, 24 kHz).
- `scheduler/`: Euler with sway sampling -1 (F5-TTS's); `renderer/`: the training-free warp renderer.
- `model_index.json`: `trained_branches: ["audio"]`, guidance `{F5_GUIDANCE}` (F5's cfg strength 2).

Converted with `python -m omnitalker.convert.pipeline` from: {", ".join(f"{k} `{v}`" for k, v in sources.items())}.
"""

def convert_pipeline(f5tts: str, out: str | Path, *, vocos: str, vocab: str | None = None,
                     version: str | None = None, config: str | Path | None = None, use_ema: bool = True,
                     with_visual_stream: bool = False, visual_pipeline: str | None = None,
                     vocos_config: str | Path | None = None, verify: bool = True):
    """Resolve the sources, build, save to `out` (written to a temporary sibling, then renamed), verify the saved
    copy reloads to the same weights, and return the pipeline."""
    checkpoint, vocab_path, version = resolve_f5tts(f5tts, vocab, version)
    vocos_path = resolve_vocos(vocos)
    arch = read_arch(config) if config is not None else None
    pipe = build_pipeline(checkpoint, vocab_path, vocos_path, version=version, arch=arch, use_ema=use_ema,
                          with_visual_stream=with_visual_stream, visual_pipeline=visual_pipeline,
                          vocos_config=vocos_config)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    pipe.save_pretrained(partial, safe_serialization=True)
    (partial / "README.md").write_text(model_card(pipe, {"F5-TTS": str(f5tts), "vocab": str(vocab or f5tts),
                                                         "Vocos": str(vocos)}))
    if verify:
        check_saved(pipe, partial)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return pipe


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m omnitalker.convert.pipeline",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--f5tts", required=True,
                        help=f"F5-TTS checkpoint: a file, {HUB_PREFIX}owner/repo/path, or a release name "
                             f"({', '.join(F5_RELEASES)}: checkpoint, vocab and version from the Hub)")
    parser.add_argument("--vocab", help="the checkpoint's vocab.txt (file or Hub file; implied by a release name)")
    parser.add_argument("--vocos", required=True,
                        help=f"Vocos folder (config.yaml + pytorch_model.bin), .bin, or Hub repo id (the released one: "
                             f"{DEFAULT_VOCOS}; needs network)")
    parser.add_argument("--vocos-config", help="Vocos config.yaml, if not next to the .bin")
    parser.add_argument("--out", required=True, help="output pipeline folder")
    parser.add_argument("--version", choices=sorted(F5_VERSIONS),
                        help="v0 = F5TTS_Base, v1 = F5TTS_v1_Base (needed unless the name or --config tells)")
    parser.add_argument("--config", help="the F5 model config (yaml with model.arch, or json)")
    parser.add_argument("--non-ema", action="store_true", help="use model_state_dict instead of the EMA weights")
    parser.add_argument("--with-visual-stream", action="store_true",
                        help="keep an untrained 'base' visual stream (for joint fine-tuning; ~2.3x the size)")
    parser.add_argument("--visual-pipeline",
                        help="folder or Hub id of the cascade's visual pipeline, saved in model_index.json "
                             "(default: the bundled demo)")
    parser.add_argument("--no-verify", action="store_true", help="skip reloading the saved folder to compare")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        pipe = convert_pipeline(args.f5tts, args.out, vocab=args.vocab, vocos=args.vocos, version=args.version,
                                config=args.config, use_ema=not args.non_ema,
                                with_visual_stream=args.with_visual_stream, visual_pipeline=args.visual_pipeline,
                                vocos_config=args.vocos_config, verify=not args.no_verify)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s: transformer "
          f"{pipe.transformer.num_parameters():,} parameters (visual stream "
          f"{'untrained' if pipe.transformer.config.visual_stream else 'absent'}), tokenizer "
          f"{pipe.tokenizer.vocab_size} tokens, Vocos {sum(p.numel() for p in pipe.vocoder.parameters()):,} "
          "parameters; trained branches: audio (cascade with a visual pipeline for video). Licences: F5-TTS weights "
          "CC-BY-NC-4.0 (non-commercial), Vocos MIT.")
    return Path(args.out)


if __name__ == "__main__":
    main()
