"""Average the weights of transformers trained from a common ancestor (a "model soup") into one folder.

Two runs that share their early training stay in one basin of the loss, so their mean is a model of the same
size and speed that often generalises better than either. Measured on the demo (the mean of the then-shipped
18,000-update weights and the voice-warped 21,400-update ones): between the two, not better than the 18,000
weights overall (CHANGELOG.md, stage 8; `bench/results/voice_warp/`). The folders must have the same config (architecture and the
visual-code statistics); the output gets that config and the mean weights.

    PYTHONPATH=. python scripts/average_transformers.py --out /tmp/soup/transformer \
        weights/omnitalker-demo/transformer outputs/warp/transformer

Why by hand: it is a dozen lines over safetensors; diffusers and accelerate have no such helper.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from diffusers.utils import CONFIG_NAME  # a ModelMixin folder's files
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME as WEIGHTS_NAME
from safetensors.torch import load_file, save_file


def average_transformers(folders: list[Path], out: Path) -> None:
    """Write the element-wise mean of the folders' weights (in float32, stored in their dtype) to ``out``."""
    if len(folders) < 2:
        raise ValueError("give at least two transformer folders to average")
    configs = [json.loads((folder / CONFIG_NAME).read_text()) for folder in folders]
    for folder, config in zip(folders[1:], configs[1:], strict=True):
        if config != configs[0]:
            raise ValueError(f"{folder} has another config than {folders[0]}: only same-architecture, "
                             "same-statistics weights can be averaged")
    states = [load_file(folder / WEIGHTS_NAME) for folder in folders]
    for folder, state in zip(folders[1:], states[1:], strict=True):
        if state.keys() != states[0].keys():
            raise ValueError(f"{folder} holds other parameters than {folders[0]}")
    mean = {name: (sum(state[name].float() for state in states) / len(states)).to(states[0][name].dtype)
            for name in states[0]}
    out.mkdir(parents=True, exist_ok=True)
    save_file(mean, out / WEIGHTS_NAME, metadata={"format": "pt"})
    shutil.copyfile(folders[0] / CONFIG_NAME, out / CONFIG_NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="transformer folders (save_pretrained layout)")
    parser.add_argument("--out", type=Path, required=True, help="output transformer folder")
    args = parser.parse_args()
    try:
        average_transformers(args.folders, args.out)
    except ValueError as error:  # folders that cannot be averaged: say why, without a traceback
        parser.error(str(error))
    print(f"wrote the mean of {len(args.folders)} transformers to {args.out}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
