"""Train the OmniTalker audio-visual DiT on a shard corpus.

    python -m omnitalker.train --config configs/train/demo.yaml --data-dir data/synth
    accelerate launch -m omnitalker.train --config configs/train/demo.yaml          # multi-GPU (DDP/FSDP)
    torchrun --nproc_per_node 2 -m omnitalker.train --config configs/train/tiny.yaml --set training.cpu=true
    python -m omnitalker.train --config configs/train/demo.yaml --resume latest     # continue after a crash

Keys and defaults of the YAML config: omnitalker/training/config.py. The EMA weights end up in
``<output_dir>/transformer`` (diffusers layout), checkpoints in ``<output_dir>/checkpoints``.
"""

from __future__ import annotations

import argparse
import sys

from omnitalker.training import load_config, train


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="omnitalker.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="YAML training config (see configs/train/)")
    parser.add_argument("--data-dir", help="corpus folder with index.json (overrides data.dir)")
    parser.add_argument("--output-dir", help="where checkpoints, logs and weights go (overrides training.output_dir)")
    parser.add_argument("--max-steps", type=int, help="optimizer updates (overrides training.max_steps)")
    parser.add_argument("--resume", help="'latest' (newest checkpoint in the output dir, if any) or a checkpoint folder")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config key, e.g. --set optimizer.lr=2e-4 (repeatable)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = list(args.set)
    if args.data_dir is not None:
        overrides.append(f"data.dir={args.data_dir}")
    if args.output_dir is not None:
        overrides.append(f"training.output_dir={args.output_dir}")
    if args.max_steps is not None:
        overrides.append(f"training.max_steps={args.max_steps}")
    try:
        config = load_config(args.config, overrides)
    except ValueError as error:
        print(f"omnitalker.train: error: {error}", file=sys.stderr)
        return 2
    train(config, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
