"""Train the DurationPredictor on a shard corpus's phoneme timings (minutes on a CPU).

    python -m omnitalker.train --config configs/train/duration_cpu.yaml      # model.kind: duration_predictor

Each clip gives (phoneme ids, frames per token) from its stored espeak events (``ShardDataset`` with a
``PhonemeTokenizer``). The pace a reference would give is the speaker's mean frames per token over their
*other* clips (leave-one-out, so a clip never sees its own length). Loss: MSE of ``log(1 + frames)`` over
tokens that have frames (word boundaries get 0 by rule). Validation reports, on held-out clips, the mean
absolute error per token in frames and the relative error of the total duration, next to the constant-rate
baseline (every token gets the reference's mean frames per token). The weights go to
``<output_dir>/duration_predictor`` with ``metrics.json``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from omnitalker.frontend.phonemes import WORD_BOUNDARY, PhonemeTokenizer
from omnitalker.frontend.text import PAD_ID

from ..models.duration_predictor import DurationPredictor
from .config import TrainConfig
from .data import ShardDataset, ShardDatasets, training_clips

BATCH_CLIPS = 32
VAL_SEED = 1234


@dataclass
class DurationClip:
    ids: torch.Tensor  # nt
    frames: torch.Tensor  # nt
    speaker: str
    pace: float = 0.0  # frames per token of the speaker's other clips


def load_clips(dataset: ShardDataset | ShardDatasets, zero_ids: set[int]) -> list[DurationClip]:
    """Every clip's phoneme ids and frames, with the leave-one-out pace of its speaker."""
    clips = []
    for index in range(len(dataset)):
        sample = dataset[index]
        clips.append(DurationClip(sample.text_ids, sample.text_durations, sample.speaker))
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    counts = [(int(c.frames.sum()), int(sum(int(i) not in zero_ids for i in c.ids))) for c in clips]
    for clip, (frames, tokens) in zip(clips, counts, strict=True):
        totals[clip.speaker][0] += frames
        totals[clip.speaker][1] += tokens
    for clip, (frames, tokens) in zip(clips, counts, strict=True):
        other_frames, other_tokens = totals[clip.speaker][0] - frames, totals[clip.speaker][1] - tokens
        if other_tokens <= 0:  # the speaker's only clip: its own pace is all a reference could give
            other_frames, other_tokens = frames, max(tokens, 1)
        clip.pace = other_frames / other_tokens
    return clips


def collate_clips(clips: list[DurationClip]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    longest = max(len(c.ids) for c in clips)
    ids = torch.full((len(clips), longest), PAD_ID, dtype=torch.long)  # b nt
    frames = torch.zeros(len(clips), longest)  # b nt
    for row, clip in enumerate(clips):
        ids[row, : len(clip.ids)] = clip.ids
        frames[row, : len(clip.frames)] = clip.frames.float()
    return ids, frames, torch.tensor([c.pace for c in clips], dtype=torch.float32)


def duration_metrics(predictor: DurationPredictor, clips: list[DurationClip], zero_ids: set[int]) -> dict:
    """Per-token MAE (frames) and mean |total error| / total, for the predictor and the constant-rate baseline."""
    predictor.eval()
    errors = {"model": [0.0, 0.0, []], "constant_rate": [0.0, 0.0, []]}
    for start in range(0, len(clips), BATCH_CLIPS):
        ids, frames, pace = collate_clips(clips[start : start + BATCH_CLIPS])
        has_frames = ids != PAD_ID
        for token in zero_ids:
            has_frames &= ids != token
        predicted = {"model": predictor.predict_frames(ids, pace).float(),
                     "constant_rate": pace[:, None].expand_as(frames) * has_frames}
        for name, guess in predicted.items():
            errors[name][0] += float(((guess - frames).abs() * has_frames).sum())
            errors[name][1] += float(has_frames.sum())
            totals = frames.sum(1)
            errors[name][2] += ((guess.sum(1) - totals).abs() / totals).tolist()
    return {name: {"token_mae_frames": round(err / count, 3), "total_duration_error": round(float(np.mean(rel)), 4)}
            for name, (err, count, rel) in errors.items()}


def train_duration_predictor(config: TrainConfig) -> dict:
    torch.manual_seed(config.training.seed)
    tokenizer = PhonemeTokenizer.default()
    zero_ids = {tokenizer.token_to_id[WORD_BOUNDARY]}
    data = config.data
    train_clips = load_clips(training_clips(data, tokenizer), zero_ids)
    val_clips = []
    if data.val_split is not None:
        val_clips = load_clips(ShardDataset(data.dir, data.val_split, tokenizer, data.max_mismatch_frames), zero_ids)
    overrides = {"num_embeds": tokenizer.vocab_size, "zero_duration_ids": sorted(zero_ids),
                 **config.model.overrides}
    predictor = DurationPredictor(**overrides)
    optimizer = torch.optim.AdamW(predictor.parameters(), lr=config.optimizer.lr,
                                  weight_decay=config.optimizer.weight_decay)
    rng = np.random.default_rng(config.training.seed)
    output = Path(config.training.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    history = []
    for step in range(1, config.training.max_steps + 1):
        predictor.train()
        picks = rng.choice(len(train_clips), size=min(BATCH_CLIPS, len(train_clips)), replace=False)
        ids, frames, pace = collate_clips([train_clips[i] for i in picks])
        has_frames = ids != PAD_ID
        for token in zero_ids:
            has_frames &= ids != token
        prediction = predictor(ids, pace)  # b nt
        loss = (((prediction - torch.log1p(frames)) ** 2) * has_frames).sum() / has_frames.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(predictor.parameters(), config.optimizer.max_grad_norm)
        optimizer.step()
        if step % config.logging.log_every == 0:
            print(f"[duration] step {step} loss {loss.item():.4f}", flush=True)
        if val_clips and (step % max(config.logging.validate_every, 1) == 0 or step == config.training.max_steps):
            metrics = {"step": step, **duration_metrics(predictor, val_clips, zero_ids)}
            history.append(metrics)
            print(f"[duration-val] {json.dumps(metrics)}", flush=True)
    predictor.eval()
    predictor.save_pretrained(output / "duration_predictor")
    result = {"train_clips": len(train_clips), "val_clips": len(val_clips), "history": history}
    (output / "metrics.json").write_text(json.dumps(result, indent=1))
    return result
