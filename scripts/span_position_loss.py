"""Does a trained transformer infill the inference layout [prompt | target] as well as the spans it trained on?

    PYTHONPATH=. python scripts/span_position_loss.py --transformer weights/omnitalker-demo/transformer \
        --data-dir data/synth-demo

Training masks one span per clip with a uniform start (``flow/masking.py``), so the prompt is split around it and
the span reaches the clip's end only about once per (length - span) draws, while the pipeline always generates
to the end after its prompt. This prints the validation mel loss (all conditions given, fixed draws, two passes
over the first 32 clips of each split) with uniform spans and with the same spans moved to the clip's end
(``FlowMatchingLoss(end_span_prob=1)``). Equal losses mean the layout itself is not what the model lacks.
"""

from __future__ import annotations

import argparse

import torch

from omnitalker.flow.loss import FlowMatchingLoss
from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.models.transformer import OmniTalkerTransformer
from omnitalker.training.data import ShardDataset, collate

SPLITS = ("val_texts", "val_speakers")
CLIPS_PER_SPLIT = 32
BATCH = 8
PASSES = 2  # draws per clip (timesteps, noise, span lengths)


def span_loss(model, batches, end_span_prob: float, seed: int) -> float:
    """Frame-weighted mel L1 on the masked frames, no condition dropped, fixed draws."""
    loss_fn = FlowMatchingLoss(end_span_prob=end_span_prob, drop_text_prob=0.0, drop_audio_cond_prob=0.0,
                               drop_visual_cond_prob=0.0)
    generator = torch.Generator().manual_seed(seed)
    total, frames = 0.0, 0
    with torch.no_grad():
        for _ in range(PASSES):
            for batch in batches:
                out = loss_fn(model, mel=batch.mel, visual=batch.codes, text_ids=batch.text_ids, lengths=batch.lengths,
                              generator=generator, text_durations=batch.text_durations)
                count = int(out.mask.sum())
                total, frames = total + out.losses["mel"] * count, frames + count
    return total / frames


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transformer", required=True, help="a durations-layout transformer folder")
    parser.add_argument("--data-dir", required=True, help="a corpus with val_texts / val_speakers splits")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    model = OmniTalkerTransformer.from_pretrained(args.transformer).eval()
    tokenizer = PhonemeTokenizer.default()
    for split in SPLITS:
        dataset = ShardDataset(args.data_dir, split, tokenizer)
        clips = [dataset[i] for i in range(min(CLIPS_PER_SPLIT, len(dataset)))]
        batches = [collate(clips[i : i + BATCH]) for i in range(0, len(clips), BATCH)]
        uniform = span_loss(model, batches, 0.0, args.seed)
        at_end = span_loss(model, batches, 1.0, args.seed)
        print(f"{split}: mel L1 uniform spans {uniform:.4f}, spans at the clip end {at_end:.4f}")


if __name__ == "__main__":
    main()
