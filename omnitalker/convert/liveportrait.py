"""Convert LivePortrait's released weights (KwaiVGI/LivePortrait, MIT licence) to a LivePortraitRenderer folder.

    python -m omnitalker.convert.liveportrait --src path/to/pretrained_weights --out weights/liveportrait
    python -m omnitalker.convert.liveportrait --src KwaiVGI/LivePortrait --out weights/liveportrait   # network

Reads (``torch.load(weights_only=True)``: no pickled code runs) the released files

    liveportrait/base_models/appearance_feature_extractor.pth, motion_extractor.pth, warping_module.pth,
                             spade_generator.pth                      (plain state dicts)
    liveportrait/retargeting_models/stitching_retargeting_module.pth  (one dict: retarget_shoulder, retarget_mouth,
                                                                       retarget_eye state dicts)

strips DDP ``module.`` prefixes, loads every state dict with strict=True into the modules of
``omnitalker.models.liveportrait`` (the keys are the released ones: no renaming), and writes a diffusers folder
(``config.json`` + ``diffusion_pytorch_model.safetensors`` + a model card ``README.md``) that
``LivePortraitRenderer.from_pretrained(out)`` loads. `--src` is a local folder (the one holding ``liveportrait/``,
or ``liveportrait/`` itself) or a Hub repo id (files fetched with ``huggingface_hub``). The folder is written to a
temporary sibling and renamed at the end, so a failed conversion leaves nothing half-written. A missing file, a
pickle that is not a state dict, or a key or shape that does not match is a ValueError naming the file.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from omnitalker.models.liveportrait import full_size_configs, module_configs
from omnitalker.render.liveportrait import LivePortraitRenderer

HUB_REPO = "KwaiVGI/LivePortrait"
BASE_FILES = {
    "appearance_feature_extractor": "liveportrait/base_models/appearance_feature_extractor.pth",
    "motion_extractor": "liveportrait/base_models/motion_extractor.pth",
    "warping_module": "liveportrait/base_models/warping_module.pth",
    "spade_generator": "liveportrait/base_models/spade_generator.pth",
}
RETARGETING_FILE = "liveportrait/retargeting_models/stitching_retargeting_module.pth"
# the retargeting file's entries -> our module names
RETARGETING_ENTRIES = {"retarget_shoulder": "stitching", "retarget_mouth": "lip", "retarget_eye": "eye"}
RELEASED_FILES = (*BASE_FILES.values(), RETARGETING_FILE)


def resolve_source(src: str | Path) -> Path:
    """A local folder holding the released files (or its ``liveportrait/`` / ``pretrained_weights/`` parent), or a
    Hub repo id (downloaded: needs network) -> the folder that holds ``liveportrait/``."""
    path = Path(src).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"--src {src}: expected a folder holding liveportrait/base_models/*.pth, got a file")
        for root in (path, path / "pretrained_weights", path.parent):
            if (root / "liveportrait").is_dir():
                return root
        if (path / "base_models").is_dir() or (path / "retargeting_models").is_dir():
            return path.parent
        return path  # check_files names what is missing
    if str(src).count("/") == 1 and not str(src).startswith((".", "/", "~")):
        from huggingface_hub import hf_hub_download

        for name in RELEASED_FILES:
            hf_hub_download(repo_id=str(src), filename=name)
        return Path(hf_hub_download(repo_id=str(src), filename=RELEASED_FILES[0])).parents[2]
    raise ValueError(f"--src {src!r} is neither a folder nor a Hub repo id like {HUB_REPO}")


def check_files(root: Path) -> dict[str, Path]:
    """Every released file under `root`, or a ValueError naming the missing ones."""
    files = {name: root / name for name in RELEASED_FILES}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise ValueError(f"missing in {root}: {', '.join(missing)} (LivePortrait's released layout; download them "
                         f"with --src {HUB_REPO}, or `huggingface-cli download {HUB_REPO} --local-dir DIR`)")
    return files


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """torch.load(weights_only=True) of a file that must hold a dict of tensors (``module.`` prefixes stripped)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle with code, a truncated or foreign file
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a PyTorch state dict that loads with weights_only=True ({reason})") from error
    return _as_state_dict(data, str(path))


def _as_state_dict(data, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(data, Mapping) or not data:
        raise ValueError(f"{where}: expected a state dict (a dict of tensors), got {type(data).__name__}")
    bad = [str(k) for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ValueError(f"{where}: not a state dict: entries {bad[:3]} are not named tensors")
    return {key.removeprefix("module."): value for key, value in data.items()}


def load_released(root: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The seven state dicts under our module names."""
    files = check_files(root)
    states = {name: load_state_dict(files[rel]) for name, rel in BASE_FILES.items()}
    path = files[RETARGETING_FILE]
    try:
        bundle = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a PyTorch file that loads with weights_only=True ({reason})") from error
    if not isinstance(bundle, Mapping) or not set(RETARGETING_ENTRIES) <= set(bundle):
        found = sorted(map(str, bundle)) if isinstance(bundle, Mapping) else type(bundle).__name__
        raise ValueError(f"{path}: expected a dict with {', '.join(RETARGETING_ENTRIES)} state dicts, found {found}")
    for entry, name in RETARGETING_ENTRIES.items():
        states[name] = _as_state_dict(bundle[entry], f"{path} [{entry}]")
    return states


def build_renderer(states: Mapping[str, Mapping[str, torch.Tensor]], configs: Mapping[str, dict] | None = None,
                   files: Mapping[str, str] | None = None, **renderer_kwargs) -> LivePortraitRenderer:
    """A renderer with the given state dicts loaded strictly; a key or shape mismatch names the file."""
    configs = dict(configs or full_size_configs())
    renderer = LivePortraitRenderer.from_module_configs(configs, **renderer_kwargs)
    for name, module in renderer.modules_by_name().items():
        where = (files or {}).get(name, name)
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        given = {k: tuple(v.shape) for k, v in states[name].items()}
        missing, unexpected = sorted(set(expected) - set(given)), sorted(set(given) - set(expected))
        wrong = [f"{k} {given[k]} (expected {expected[k]})" for k in expected if k in given and given[k] != expected[k]]
        if missing or unexpected or wrong:
            parts = [f"missing {missing[:3]}" if missing else "", f"unexpected {unexpected[:3]}" if unexpected else "",
                     f"shapes {wrong[:3]}" if wrong else ""]
            raise ValueError(f"{where}: does not match LivePortrait's {name} ("
                             + "; ".join(p for p in parts if p) + ")")
        module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in states[name].items()},
                               strict=True)
    return renderer.eval()


def model_card(renderer: LivePortraitRenderer, source: str) -> str:
    parameters = sum(p.numel() for p in renderer.parameters())
    return f"""---
license: mit
library_name: diffusers
tags: [talking-head, liveportrait, omnitalker]
---
# LivePortrait renderer for omnitalker

LivePortrait's released networks (appearance extractor, motion extractor, warping module, SPADE generator,
stitching and eye / lip retargeting MLPs; {parameters / 1e6:.1f} M parameters) as one omnitalker renderer
component (`omnitalker.render.liveportrait.LivePortraitRenderer`), loaded with
`LivePortraitRenderer.from_pretrained(folder)` and passed to a pipeline as `renderer=`.

- **Source**: `{source}` (KwaiVGI/LivePortrait, https://github.com/KwaiVGI/LivePortrait), converted with
  `python -m omnitalker.convert.liveportrait`; the weights are unchanged (float32), under their released names.
- **Licence**: MIT (LivePortrait's code and weights). No InsightFace model is used or shipped: face finding and
  cropping are MediaPipe's, in omnitalker.
- **Cost**: these networks need a GPU for real time (LivePortrait reports 12.8 ms a frame on an RTX 4090); on a
  CPU they are far slower than omnitalker's warp renderer (`python bench/liveportrait.py`).
"""


def check_saved(renderer: LivePortraitRenderer, folder: Path) -> None:
    reloaded = LivePortraitRenderer.from_pretrained(folder)
    saved, original = reloaded.state_dict(), renderer.state_dict()
    if saved.keys() != original.keys() or any(not torch.equal(saved[k], original[k]) for k in original):
        raise RuntimeError(f"the converted renderer in {folder} does not reload to the same weights")


def convert_liveportrait(src: str | Path, out: str | Path, *, config: str | Path | None = None,
                         verify: bool = True, **renderer_kwargs) -> LivePortraitRenderer:
    """Resolve `src`, load and check the released files, write the renderer folder to `out` (a temporary sibling
    renamed at the end) and return the renderer. `config`: a json of LivePortrait's models.yaml layout for other
    than the released sizes (the tests' tiny models), optionally with a "renderer" entry of
    `LivePortraitRenderer` options (e.g. input_size)."""
    root = resolve_source(src)
    configs = None
    if config is not None:
        layout = json.loads(Path(config).read_text())
        configs = module_configs(layout)
        renderer_kwargs = {**layout.get("renderer", {}), **renderer_kwargs}
    files = {**{n: str(root / rel) for n, rel in BASE_FILES.items()},
             **{n: f"{root / RETARGETING_FILE} [{e}]" for e, n in RETARGETING_ENTRIES.items()}}
    renderer = build_renderer(load_released(root), configs, files, **renderer_kwargs)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        renderer.save_pretrained(partial, safe_serialization=True)
        (partial / "README.md").write_text(model_card(renderer, str(src)))
        if verify:
            check_saved(renderer, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return renderer


def main(argv: Sequence[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="python -m omnitalker.convert.liveportrait",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", required=True,
                        help=f"folder with LivePortrait's released files (liveportrait/base_models/*.pth, "
                             f"liveportrait/retargeting_models/*.pth) or the Hub id {HUB_REPO} (needs network)")
    parser.add_argument("--out", required=True, help="output renderer folder (diffusers layout)")
    parser.add_argument("--config", help="json in LivePortrait's models.yaml layout for non-released sizes "
                                         "(+ optional \"renderer\": {LivePortraitRenderer options})")
    parser.add_argument("--no-verify", action="store_true", help="skip reloading the saved folder to compare")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        renderer = convert_liveportrait(args.src, args.out, config=args.config, verify=not args.no_verify)
    except ValueError as error:
        parser.error(str(error))
    parameters = sum(p.numel() for p in renderer.parameters())
    print(f"wrote {args.out} in {time.perf_counter() - start:.1f} s: LivePortraitRenderer, {parameters:,} parameters "
          "(MIT licence, KwaiVGI/LivePortrait)")
    return Path(args.out)


if __name__ == "__main__":
    main()
