"""Convergence study for the demo recipe: which knob makes text-speech alignment appear sooner on a CPU.

    PYTHONPATH=. python scripts/convergence_study.py --data-dir data/synth-demo --steps 300 \
        --variants filler average durations --seed 0 --out bench/results/convergence_layouts_seed0.json
    PYTHONPATH=. python scripts/convergence_study.py --data-dir data/synth-en --measure weights/omnitalker-demo/transformer

Every variant starts from the same seed and trains the same number of updates
(configs/train/demo_cpu.yaml plus the variant's changes; short warmup and a constant LR so the
variants are compared at their own peak LR). Afterwards it is measured on the val_texts split
(unseen sentences, training speakers) with fixed noise, timesteps and spans, no condition dropped:

- ``mel_l1``: the mel stream's flow loss with text and both prompts given;
- ``text_gap``: the mel loss with the text dropped minus ``mel_l1``. A model that ignores its text
  (speech-like but unaligned output, F5-TTS's state early in training) has a gap of 0; the gap grows as
  it learns which sound goes where. It is the cheapest early signal of alignment — the plain loss hides it,
  since the prompt alone already predicts the voice and most of the spectrum;
- ``text_gap_pct``: the gap relative to ``mel_l1``; ``frames_per_s``: training speed.

``--measure`` reports the same numbers for a trained transformer folder (e.g. the bundled checkpoint), to
place the short runs on the scale of a long one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from omnitalker.flow.loss import FlowMatchingLoss
from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.frontend.text import OmniTalkerTokenizer
from omnitalker.models.configs import DEFAULT_TEXT_NUM_EMBEDS
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.training.config import load_config
from omnitalker.training.data import DynamicBatchSampler, ShardDataset, collate, frame_budget_batches
from omnitalker.training.trainer import Trainer

BASE_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "train" / "demo_cpu.yaml"
MEASURE_SEEDS = (11, 12, 13)  # fixed draws of t / noise / span, averaged
MEASURE_FRAMES_PER_BATCH = 6000
STUDY_WARMUP_STEPS = 50
SHORT_CLIP_FRAMES = 280  # 3.0 s at 93.75 mel frames/s: the "short utterances" of the curriculum
SHORT_SHARE_OF_STEPS = 0.4  # the curriculum's short-only epochs cover about this share of the updates

CHARACTERS = {"text_num_embeds": DEFAULT_TEXT_NUM_EMBEDS}  # the filler / average layouts read characters
# name -> (what it tests, changes to the base config as {section: {key: value}}); the base is demo_cpu.yaml
VARIANTS = {
    "filler": ("F5-style filler-padded characters (the paper's layout)",
               {"model": {"overrides": {"text_layout": "filler", **CHARACTERS}}}),
    "average": ("characters spread evenly over the frames (ZipVoice-style)",
                {"model": {"overrides": {"text_layout": "average", **CHARACTERS}}}),
    "durations": ("the demo recipe: espeak phonemes, each repeated for its frames (Voicebox-style)", {}),
    "short_first": ("the demo recipe + clips <= 3 s first", {"data": {"curriculum_max_frames": SHORT_CLIP_FRAMES}}),
    "lr_5e-4": ("the demo recipe, peak LR 5e-4 instead of 1e-3", {"optimizer": {"lr": 5.0e-4}}),
    "width_128": ("the demo recipe, width 128 instead of 192", {"model": {"overrides": {"dim": 128}}}),
    "width_256": ("the demo recipe, width 256 instead of 192", {"model": {"overrides": {"dim": 256}}}),
}


@torch.no_grad()
def measure(model: OmniTalkerTransformer, data_dir: Path) -> dict[str, float]:
    """Frame-weighted mel L1 on val_texts with and without text (same draws), averaged over MEASURE_SEEDS."""
    model.eval()
    tokenizer = PhonemeTokenizer.default() if model.text_layout == "durations" else OmniTalkerTokenizer.default()
    val_set = ShardDataset(data_dir, "val_texts", tokenizer)
    order = np.argsort(val_set.lengths, kind="stable")
    batches = frame_budget_batches(val_set.lengths, MEASURE_FRAMES_PER_BATCH, len(val_set), order)
    batches = [collate([val_set[i] for i in batch]) for batch in batches]
    results = {}
    for name, drop_text in (("with_text", 0.0), ("without_text", 1.0)):
        loss_fn = FlowMatchingLoss(drop_text_prob=drop_text, drop_audio_cond_prob=0.0, drop_visual_cond_prob=0.0)
        total, weight = 0.0, 0
        for seed in MEASURE_SEEDS:
            generator = torch.Generator().manual_seed(seed)
            for batch in batches:
                out = loss_fn(model, mel=batch.mel, visual=batch.codes, text_ids=batch.text_ids,
                              lengths=batch.lengths, generator=generator, text_durations=batch.text_durations)
                frames = int(out.audio_mask.sum())
                total += out.losses["mel"] * frames
                weight += frames
        results[name] = total / weight
    gap = results["without_text"] - results["with_text"]
    return {"mel_l1": results["with_text"], "mel_l1_without_text": results["without_text"],
            "text_gap": gap, "text_gap_pct": 100.0 * gap / results["with_text"]}


def curriculum_epochs(config, train_set: ShardDataset, steps: int) -> int:
    """Short-only epochs that cover about SHORT_SHARE_OF_STEPS of ``steps`` updates."""
    sampler = DynamicBatchSampler(train_set.lengths, config.data.frames_per_batch, config.data.max_samples_per_batch,
                                  curriculum_max_frames=SHORT_CLIP_FRAMES, curriculum_epochs=1)
    per_epoch = len(sampler.epoch_batches(0))
    return max(1, round(SHORT_SHARE_OF_STEPS * steps / per_epoch))


def run_variant(name: str, changes: dict, args, train_set: ShardDataset) -> dict:
    config = load_config(BASE_CONFIG, [f"data.dir={args.data_dir}"])
    sections = {section: dict(values) for section, values in changes.items()}
    sections.setdefault("data", {}).update(dir=str(args.data_dir), frames_per_batch=args.frames_per_batch,
                                         val_split=None)  # measured below instead
    sections.setdefault("optimizer", {}).update(warmup_steps=STUDY_WARMUP_STEPS, schedule="constant")
    sections.setdefault("logging", {}).update(validate_every=0, tensorboard=False, log_every=args.steps)
    with tempfile.TemporaryDirectory() as output_dir:
        sections.setdefault("training", {}).update(max_steps=args.steps, save_every=args.steps, output_dir=output_dir,
                                                   seed=args.seed)
        for section, values in sections.items():
            if section == "model" and "overrides" in values:
                values["overrides"] = {**config.model.overrides, **values["overrides"]}
            setattr(config, section, replace(getattr(config, section), **values))
        if name == "short_first":
            config.data = replace(config.data, curriculum_epochs=curriculum_epochs(config, train_set, args.steps))
        trainer = Trainer(config)
        started = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - started
        result = measure(trainer.unwrapped, args.data_dir)
    params = sum(p.numel() for p in trainer.unwrapped.parameters())
    frames = args.steps * args.frames_per_batch
    return {"variant": name, "seed": args.seed, "parameters": params, "steps": args.steps, "train_seconds": round(seconds, 1),
            "frames_per_s_upper_bound": round(frames / seconds), **{k: round(v, 4) for k, v in result.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="corpus folder (omnitalker.data.synthetic)")
    parser.add_argument("--steps", type=int, default=250, help="updates per variant")
    parser.add_argument("--frames-per-batch", type=int, default=2000)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0, help="training seed (run twice to see the noise floor)")
    parser.add_argument("--measure", type=Path, help="only measure this trained transformer folder")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args()
    if not (args.data_dir / "index.json").is_file():
        raise SystemExit(f"{args.data_dir} has no index.json: python -m omnitalker.data.synthetic --out {args.data_dir}")
    rows = []
    if args.measure is not None:
        model = OmniTalkerTransformer.from_pretrained(args.measure)
        rows.append({"variant": str(args.measure), **{k: round(v, 4) for k, v in measure(model, args.data_dir).items()}})
    else:
        train_set = ShardDataset(args.data_dir, "train", OmniTalkerTokenizer.default())  # lengths only
        for name in args.variants:
            rows.append(run_variant(name, VARIANTS[name][1], args, train_set))
            print(json.dumps(rows[-1]), flush=True)
    print("\n| variant | what | mel L1 | text gap | gap % | frames/s |\n|---|---|---|---|---|---|")
    for row in rows:
        what = VARIANTS.get(row["variant"], ("trained folder", None))[0]
        print(f"| {row['variant']} | {what} | {row['mel_l1']:.4f} | {row['text_gap']:+.4f} | "
              f"{row['text_gap_pct']:+.1f} | {row.get('frames_per_s_upper_bound', '-')} |")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"steps": args.steps, "frames_per_batch": args.frames_per_batch,
                                        "seed": args.seed, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
