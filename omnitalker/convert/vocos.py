"""Convert an original Vocos release (e.g. charactr/vocos-mel-24khz) to an omnitalker VocosVocoder folder.

The original is a `config.yaml` (jsonargparse class_path / init_args) plus a `pytorch_model.bin` state dict;
the result is a diffusers model folder (`config.json` + `diffusion_pytorch_model.safetensors`) that
`VocosVocoder.from_pretrained(out)` loads, e.g. as the `vocoder` subfolder of an OmniTalker pipeline.
The .bin is read with torch.load(weights_only=True): no pickled code runs.

    python -m omnitalker.convert.vocos --checkpoint path/to/vocos-mel-24khz --out weights/vocoder
    python -m omnitalker.convert.vocos --checkpoint model.bin --config config.yaml --out vocoder
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from omnitalker.models.vocoder import VocosVocoder


def convert_vocos(checkpoint: str | Path, out: str | Path, config: str | Path | None = None) -> VocosVocoder:
    """Load the original checkpoint, save it as a diffusers folder at `out`, check the saved copy reloads
    bit-exactly, and return the model."""
    model = VocosVocoder.from_vocos_checkpoint(checkpoint, config_path=config)
    model.save_pretrained(out)
    reloaded = VocosVocoder.from_pretrained(out)
    saved, original = reloaded.state_dict(), model.state_dict()
    if saved.keys() != original.keys() or any(not torch.equal(saved[k], original[k]) for k in original):
        raise RuntimeError(f"the converted vocoder in {out} does not reload to the same weights")
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, help="Vocos folder (config.yaml + pytorch_model.bin) or the .bin"
    )
    parser.add_argument("--config", default=None, help="config.yaml, if it is not next to the .bin")
    parser.add_argument("--out", required=True, help="output folder (diffusers layout)")
    args = parser.parse_args(argv)

    model = convert_vocos(args.checkpoint, args.out, args.config)
    num_parameters = sum(p.numel() for p in model.parameters())
    config = model.config
    print(
        f"wrote {args.out}: VocosVocoder dim {config.dim}, {config.num_layers} layers, "
        f"{num_parameters:,} parameters, {config.sample_rate} Hz, hop {config.hop_length}, padding {config.padding}"
    )


if __name__ == "__main__":
    main()
