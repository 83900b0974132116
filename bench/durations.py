"""Duration predictor vs espeak-ng's rule-based timing vs a constant rate, on held-out clips.

    PYTHONPATH=. python bench/durations.py --data-dir data/synth-demo --predictor outputs/duration_cpu/duration_predictor

For every held-out clip the "reference" is another clip of the same speaker (as at inference: the pipeline only
knows the reference's transcript and frames). Each method predicts the target's frames per phoneme from the
target text (phonemized with the pipeline's default voices) and the reference:

- ``predictor_rule_total`` (what the pipeline does): the predictor's frames per token, rescaled so the total is
  ``espeak_rule``'s total;
- ``predictor``: the DurationPredictor at the reference's pace (frames per token of the reference layout);
- ``espeak_rule``: espeak-ng's own durations of the target text at its default rate, rescaled by
  (reference frames / espeak's duration of the reference transcript) — the baseline to beat;
- ``constant_rate``: every frame-bearing token gets the reference's mean frames per token.

Reported: mean relative error of the total duration (all clips), and the per-token mean absolute error in
frames on the clips whose default-voice phonemes equal the speaker's (en-us and Mandarin voices; other English
accents phonemize differently). Ground truth: the clip's stored espeak phoneme events.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from omnitalker.eval.train_recognizer import read_split
from omnitalker.frontend.audio import FRAME_RATE
from omnitalker.frontend.phonemes import (
    WORD_BOUNDARY,
    PhonemeTokenizer,
    events_to_sequence,
    frame_durations,
    pinyin_tones,
)
from omnitalker.models.duration_predictor import DurationPredictor
from omnitalker.pipeline.text_layout import prompt_layout, reference_pace, speech_span

METHODS = ("predictor_rule_total", "predictor", "espeak_rule", "constant_rate")


def true_layout(tokenizer, clip):
    tones = pinyin_tones(clip.text) if clip.lang == "zh" else ()
    seq = events_to_sequence(clip.meta["phonemes"], clip.meta.get("word_starts", ()), tones, len(clip.mel) / FRAME_RATE)
    return seq.tokens, frame_durations(seq, len(clip.mel))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/synth-demo"))
    parser.add_argument("--predictor", type=Path, default=Path("outputs/duration_cpu/duration_predictor"))
    parser.add_argument("--splits", nargs="+", default=["val_texts", "val_speakers"])
    parser.add_argument("--max-clips", type=int, default=60, help="per split")
    parser.add_argument("--out", type=Path, default=Path("bench/results/durations.json"))
    args = parser.parse_args()
    tokenizer = PhonemeTokenizer.default()
    predictor = DurationPredictor.from_pretrained(args.predictor).eval()
    zero = {tokenizer.token_to_id[WORD_BOUNDARY]}
    started = time.perf_counter()
    results = {}
    for split in args.splits:
        clips = read_split(args.data_dir, split)[: args.max_clips]
        pool = read_split(args.data_dir, "train") if split == "val_texts" else clips
        totals = {m: [] for m in METHODS}
        tokens_err = {m: [0.0, 0] for m in METHODS}
        for clip in clips:
            reference = next(c for c in pool if c.speaker == clip.speaker and c.key != clip.key)
            ref_mel = torch.from_numpy(reference.mel.astype(np.float32))
            ref_seq = tokenizer.phonemize(reference.text)
            ref_layout = prompt_layout(ref_seq, tokenizer.convert_tokens_to_ids(ref_seq.tokens), len(ref_mel),
                                       speech_span(ref_mel))
            pace = reference_pace(ref_layout, zero)
            seq = tokenizer.phonemize(clip.text)
            ids = torch.tensor([tokenizer.convert_tokens_to_ids(seq.tokens)])
            has_frames = (ids[0] != next(iter(zero))).float()
            guesses = {
                "predictor": predictor.predict_frames(ids, torch.tensor([pace]))[0].float(),
                "espeak_rule": torch.from_numpy(frame_durations(seq, max(1, round(seq.seconds * FRAME_RATE))))
                .float() * len(ref_mel) / (ref_seq.seconds * FRAME_RATE),
                "constant_rate": has_frames * pace,
            }
            rule_total = float(guesses["espeak_rule"].sum())
            guesses["predictor_rule_total"] = guesses["predictor"] * rule_total / float(guesses["predictor"].sum())
            true_tokens, true_frames = true_layout(tokenizer, clip)
            for method, guess in guesses.items():
                totals[method].append(abs(float(guess.sum()) - len(clip.mel)) / len(clip.mel))
                if true_tokens == seq.tokens:
                    tokens_err[method][0] += float((guess - torch.from_numpy(true_frames).float()).abs().sum())
                    tokens_err[method][1] += len(true_tokens)
        results[split] = {m: {"total_duration_error": round(float(np.mean(totals[m])), 4),
                              "token_mae_frames": round(tokens_err[m][0] / max(tokens_err[m][1], 1), 3),
                              "clips": len(clips), "tokens_compared": tokens_err[m][1]} for m in METHODS}
    seconds = time.perf_counter() - started
    print("| split | method | total duration error | token MAE (frames) | tokens compared |\n|---|---|---|---|---|")
    for split, rows in results.items():
        for method, row in rows.items():
            ratio = row["total_duration_error"] / max(rows["espeak_rule"]["total_duration_error"], 1e-9)
            print(f"| {split} | {method} | {row['total_duration_error']:.3f} (x{ratio:.2f} of espeak_rule) | "
                  f"{row['token_mae_frames']:.2f} | {row['tokens_compared']} |")
    print(f"{seconds:.1f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data_dir": str(args.data_dir), "predictor": str(args.predictor),
                                    "results": results}, indent=1))


if __name__ == "__main__":
    main()
