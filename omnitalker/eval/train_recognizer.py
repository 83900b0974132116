"""Train the CTC character recognizer (``omnitalker.eval.recognizer``) on a corpus's ground-truth mels.

    OMP_NUM_THREADS=1 python -m omnitalker.eval.train_recognizer --data-dir /work/data/synth-en \
        --extra-data-dir /work/data/synth-en-asr --out weights/ctc-recognizer
    OMP_NUM_THREADS=1 python -m omnitalker.eval.train_recognizer --lang zh --data-dir data/synth-demo \
        --extra-data-dir data/synth-zh-asr --held-out-data-dir data/synth-eval --out weights/ctc-recognizer-zh

Training data: the ``train`` split of ``--data-dir`` plus every split of each ``--extra-data-dir``
(recognizer-only corpora, e.g. ``python -m omnitalker.data.synthetic --seed 1 ...``) minus any clip
whose sentence appears in the held-out splits of ``--data-dir`` or of any ``--held-out-data-dir`` (e.g.
the evaluation corpus, when it is not ``--data-dir``). Held out: ``val_texts`` (unseen sentences,
training speakers) and ``val_speakers`` (unseen speakers) of those corpora; the final CER on each is
printed and written to ``training_results.json`` (``cer_<split>`` for ``--data-dir``,
``cer_<corpus folder>_<split>`` for the others).

``--lang`` picks the clips and the transcript: ``en`` (default) trains on the English clips' letters,
``zh`` on the Mandarin clips (``lang == "zh"``) with their toned pinyin as the transcript
(``recognizer.pinyin_transcript``: "ni2 hao3 ma5"; CER then counts pinyin letters, tone digits and
spaces). The language is saved in the recognizer's config (``lang``) so the evaluation knows how to score.

Augmentation (SpecAugment style, on the log-mel): time stretch by resampling the frames (x0.85-1.15,
speaking-rate variety), two frequency masks and time masks proportional to the length, filled with
the utterance's mean level. Optimiser: AdamW with linear warm-up and a cosine decay whose progress is
the larger of step / ``--steps`` and elapsed / ``--max-minutes``, so a run fits its time budget and
still ends at a low learning rate (on a busy machine the time budget usually decides: the number of
updates then depends on the machine's speed).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from omnitalker.frontend.audio import FRAME_RATE as MEL_FPS

from .recognizer import LANGS, CTCRecognizer, character_error_rate, normalize_for_cer

HELD_OUT_SPLITS = ("val_texts", "val_speakers")
FRAMES_PER_BATCH = 6_000  # padded mel frames per batch
WARMUP_STEPS = 200
STRETCH_RANGE = (0.85, 1.15)
FREQ_MASKS, FREQ_MASK_BINS = 2, 12
TIME_MASKS_PER_SECOND, TIME_MASK_FRAMES = 0.5, 12
GRAD_CLIP = 5.0
EVAL_BATCH = 32


@dataclass
class CorpusClip:
    key: str
    text: str
    speaker: str
    mel: np.ndarray  # float16 (n, 100)
    codes: np.ndarray | None = None  # float32 (T, 58) at 30 fps, when read
    lang: str = "en"
    meta: dict = field(default_factory=dict)  # the clip's json (phoneme events, word starts, ...)


def corpus_splits(data_dir: str | Path) -> list[str]:
    """Split names of a corpus (clear error if the folder has no index.json)."""
    index_path = Path(data_dir) / "index.json"
    if not index_path.is_file():
        raise ValueError(
            f"no corpus at {data_dir} (index.json missing): generate one with "
            "python -m omnitalker.data.synthetic --out data/synth-en --hours 0.6 --speakers 24 --seed 0"
        )
    return list(json.loads(index_path.read_text())["splits"])


def read_split(data_dir: str | Path, split: str, with_codes: bool = False) -> list[CorpusClip]:
    """Every clip of one split (text, speaker, mel and optionally codes), in index order."""
    data_dir = Path(data_dir)
    if split not in corpus_splits(data_dir):
        raise ValueError(f"split {split!r} not in {data_dir / 'index.json'}")
    index = json.loads((data_dir / "index.json").read_text())
    clips = []
    for shard in index["splits"][split]["shards"]:
        members: dict[str, dict[str, bytes]] = {}
        with tarfile.open(data_dir / shard["name"], "r:") as tar:
            for info in tar:
                key, _, suffix = info.name.partition(".")
                if info.isfile() and suffix in ("json", "mel.npy", "codes.npy"):
                    members.setdefault(key, {})[suffix] = tar.extractfile(info).read()
        for entry in shard["samples"]:
            raw = members[entry["key"]]
            meta = json.loads(raw["json"])
            codes = np.load(io.BytesIO(raw["codes.npy"])) if with_codes else None
            clips.append(CorpusClip(entry["key"], meta["text"], str(meta.get("speaker", "")),
                                    np.load(io.BytesIO(raw["mel.npy"])), codes, meta.get("lang", "en"), meta))
    return clips


def augment(mel: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Time stretch + frequency and time masks on one mel (n, d)."""
    rate = rng.uniform(*STRETCH_RANGE)
    frames = max(1, int(round(len(mel) * rate)))
    mel = F.interpolate(mel.T[None], size=frames, mode="linear", align_corners=False)[0].T  # n' d
    fill = mel.mean()
    mel = mel.clone()
    for _ in range(FREQ_MASKS):
        width = int(rng.integers(0, FREQ_MASK_BINS + 1))
        start = int(rng.integers(0, mel.shape[1] - width + 1))
        mel[:, start : start + width] = fill
    for _ in range(int(TIME_MASKS_PER_SECOND * frames / MEL_FPS)):
        width = int(rng.integers(0, TIME_MASK_FRAMES + 1))
        start = int(rng.integers(0, max(1, frames - width)))
        mel[start : start + width] = fill
    return mel


def make_batches(lengths: list[int], rng: np.random.Generator) -> list[list[int]]:
    """Length-sorted batches within the frame budget, in random order."""
    order = np.argsort(np.asarray(lengths) + rng.uniform(0, 1, len(lengths)))
    batches, batch, longest = [], [], 0
    for index in order:
        grown = max(longest, lengths[index])
        if batch and grown * (len(batch) + 1) > FRAMES_PER_BATCH:
            batches.append(batch)
            batch, grown = [], lengths[index]
        batch.append(int(index))
        longest = grown
    batches.append(batch)
    rng.shuffle(batches)
    return batches


def evaluate(model: CTCRecognizer, clips: list[CorpusClip]) -> tuple[float, list[str]]:
    """Corpus CER of the model's greedy transcripts of the clips' mels."""
    model.eval()
    hypotheses = []
    for start in range(0, len(clips), EVAL_BATCH):
        chunk = clips[start : start + EVAL_BATCH]
        hypotheses += model.transcribe([torch.from_numpy(c.mel.astype(np.float32)) for c in chunk])
    return character_error_rate(hypotheses, [model.reference_text(c.text) for c in clips]), hypotheses


def read_held_out(data_dir: str | Path, lang: str) -> dict[str, list[CorpusClip]]:
    """The ``lang`` clips of a corpus's held-out splits (those it has), by split."""
    return {split: [c for c in read_split(data_dir, split) if c.lang == lang]
            for split in HELD_OUT_SPLITS if split in corpus_splits(data_dir)}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = CTCRecognizer(lang=args.lang)
    held_out = read_held_out(args.data_dir, args.lang)  # reported as cer_<split>
    for corpus in args.held_out_data_dir:  # reported as cer_<corpus folder>_<split>
        held_out.update({f"{Path(corpus).name}_{split}": clips
                         for split, clips in read_held_out(corpus, args.lang).items()})
    held_out = {name: clips for name, clips in held_out.items() if clips}

    def sentence(text: str) -> str:
        """A sentence's identity: its transcript (pinyin for Mandarin, whose characters normalise away)."""
        return normalize_for_cer(model.reference_text(text))

    held_texts = {sentence(c.text) for clips in held_out.values() for c in clips}
    clips = read_split(args.data_dir, "train")
    for extra in args.extra_data_dir:
        for split in corpus_splits(extra):
            clips += read_split(extra, split)
    clips = [c for c in clips if c.lang == args.lang and sentence(c.text) not in held_texts]
    if not clips:
        raise ValueError(f"no {args.lang!r} training clips in {args.data_dir} (train) or --extra-data-dir: "
                         f"generate a corpus with --langs {args.lang}")
    print(f"training clips: {len(clips)} ({sum(len(c.mel) for c in clips) / MEL_FPS / 3600:.2f} h); "
          + ", ".join(f"{split}: {len(v)}" for split, v in held_out.items()))

    print(f"parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M")
    mels = [torch.from_numpy(c.mel.astype(np.float32)) for c in clips]
    targets = [torch.tensor(model.encode_text(model.reference_text(c.text))) for c in clips]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    budget_seconds = args.max_minutes * 60

    def learning_rate(step: int, elapsed: float) -> float:
        """Linear warm-up, then cosine decay over whichever budget (steps or time) runs out first."""
        progress = min(1.0, max(step / args.steps, elapsed / budget_seconds))
        return args.lr * min(1.0, (step + 1) / WARMUP_STEPS) * 0.5 * (1 + math.cos(math.pi * progress))

    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    start, step, epoch = time.time(), 0, 0
    lengths = [int(round(len(m) * STRETCH_RANGE[1])) for m in mels]
    while step < args.steps and time.time() - start < budget_seconds:
        for batch in make_batches(lengths, rng):
            model.train()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, time.time() - start)
            batch_mels = [augment(mels[i], rng) for i in batch]
            mel_lengths = torch.tensor([len(m) for m in batch_mels])
            padded = nn.utils.rnn.pad_sequence(batch_mels, batch_first=True)  # b n d
            log_probs, out_lengths = model(padded, mel_lengths)  # b n' v
            target_lengths = torch.tensor([len(targets[i]) for i in batch])
            loss = ctc(log_probs.transpose(0, 1), torch.cat([targets[i] for i in batch]), out_lengths, target_lengths)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
            optimizer.step()
            step += 1
            if step % args.log_every == 0:
                message = f"step {step} epoch {epoch} loss {loss.item():.3f} {(time.time() - start) / 60:.1f} min"
                if held_out:
                    split, held = next(iter(held_out.items()))
                    message += f" | {split} CER {evaluate(model, held)[0]:.3f}"
                print(message, flush=True)
            if step >= args.steps or time.time() - start >= budget_seconds:
                break
        epoch += 1

    results = {"lang": args.lang, "steps": step, "epochs": epoch, "minutes": round((time.time() - start) / 60, 1),
               "train_clips": len(clips), "train_hours": round(sum(len(m) for m in mels) / MEL_FPS / 3600, 2)}
    for split, held in held_out.items():
        cer, hypotheses = evaluate(model, held)
        results[f"cer_{split}"] = round(cer, 4)
        print(f"{split}: CER {cer:.3f} over {len(held)} clips; e.g. {model.reference_text(held[0].text)!r} "
              f"-> {hypotheses[0]!r}")
    out = Path(args.out)
    model.save_pretrained(out)
    (out / "training_results.json").write_text(json.dumps(results, indent=1))
    return results


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="corpus with train / val_texts / val_speakers splits")
    parser.add_argument("--extra-data-dir", action="append", default=[],
                        help="recognizer-only corpus (all its splits are used for training); repeatable")
    parser.add_argument("--held-out-data-dir", action="append", default=[],
                        help="another corpus whose val_texts / val_speakers sentences are kept out of training "
                             "and reported (e.g. the evaluation corpus); repeatable")
    parser.add_argument("--lang", default="en", choices=LANGS,
                        help="en: English clips, letters; zh: Mandarin clips, toned pinyin transcripts")
    parser.add_argument("--out", required=True, help="output folder (save_pretrained layout)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--max-minutes", type=float, default=20.0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=100)
    args = parser.parse_args(argv)
    if args.steps < 1 or args.max_minutes <= 0:
        raise ValueError("--steps must be >= 1 and --max-minutes > 0")
    return train(args)


if __name__ == "__main__":
    main()
