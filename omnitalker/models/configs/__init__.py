"""Named OmniTalkerTransformer configs shipped with the package (the <name>.json files next to this one).

One home per kind of config: model architectures here; training runs in configs/train/*.yaml at the repo root,
whose keys and defaults are omnitalker/training/config.py (a run names a model config from here).

    from omnitalker.models.configs import load_named_config, NAMED_CONFIGS
    load_named_config("small")  # -> dict of OmniTalkerTransformer kwargs

- base:  the paper's model (22 fusion + 4 + 4 single blocks, dim 1024, 16 heads, FFN 2048, text 512 with
         4 ConvNeXt-V2 blocks); its audio side is F5-TTS Base, so converted F5 checkpoints drop in.
- demo:  <= 20 M parameters, trained on the synthetic corpus for the bundled checkpoint.
- small: ~5 M parameters, sized for real-time CPU inference (the speed target in BENCHMARKS.md).
- tiny:  < 0.5 M parameters, builds in milliseconds; for tests.
Keys starting with "_" in the JSON files are comments and are not passed to the model.
"""

from __future__ import annotations

import json
from importlib import resources

# Size of the default tokenizer vocabulary (omnitalker/frontend/assets/vocab.txt, one token per line).
DEFAULT_TEXT_NUM_EMBEDS = 2308
NAMED_CONFIGS = ("base", "demo", "small", "tiny")


def load_named_config(name: str) -> dict:
    """The OmniTalkerTransformer kwargs of a shipped config; ValueError for an unknown name."""
    if name not in NAMED_CONFIGS:
        raise ValueError(f"Unknown config {name!r}; choose one of {list(NAMED_CONFIGS)}.")
    text = resources.files(__name__).joinpath(f"{name}.json").read_text(encoding="utf-8")
    return {key: value for key, value in json.loads(text).items() if not key.startswith("_")}
