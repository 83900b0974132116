"""Frame layouts of phoneme tokens for the "durations" text layout: the prompt's and the target's.

A model with ``text_layout="durations"`` is told, for every frame of [reference prompt | target], which
phoneme it carries (``TextLayout``: token ids + frames per token, summing to the frames).

- **Target**: the driving text is phonemized with espeak-ng (``PhonemeTokenizer.phonemize``); the total
  length is espeak's reading time of the text scaled by how fast the reference speaks relative to espeak's
  reading of *its* transcript (``ReferenceTiming.espeak_ratio``), and the ``DurationPredictor`` shares
  those frames out among the tokens (at the reference's pace). Measured on held-out clips
  (``bench/durations.py``): the total from this rule is 3x more accurate than the predictor's own sum, and the
  predictor's per-token shares are as good as espeak's (BENCHMARKS.md). ``speed`` / ``duration`` rescale.
- **Prompt**: nobody hands us the timings of the reference clip. We take espeak's own timings of the
  reference transcript and stretch them onto the reference's speech span (``prompt_layout``): the span of
  espeak's phonemes is mapped linearly onto the frames where the reference has sound, and the pauses before
  and after cover the edge silence. For espeak voices this is near the truth (their timing rules scale with
  the rate); for a person it is an approximation, which only has to tell the model roughly which prompt
  frames carry which sounds. Why this and not forced alignment: it needs no extra model, runs in
  milliseconds, and measured on the held-out corpus it is as intelligible as the true timings (BENCHMARKS.md,
  "Prompt layout"). A CTC forced aligner would be the upgrade for real voices.

    layout = prompt_layout(tokenizer.phonemize(ref_text), ids_of(...), prompt_mel)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.phonemes import WORD_BOUNDARY, PhonemeSequence, PhonemeTokenizer, is_pause

# "durations" models learn to generate 70-100 % of a clip from the rest (loss.span_fraction of the demo recipe),
# so the prompt given in context should be at most ~30 % of [prompt | target]: a longer one is outside what they
# were trained on and costs words (3 s prompts cut to ~1.5 s: Whisper WER 0.455 -> 0.359 on unseen sentences,
# CHANGELOG.md, 2026-11-28; `bench/results/prompt_study/`). The reference still sets the pace and the voice's timing in full.
MAX_PROMPT_SHARE = 0.3
MIN_PROMPT_SECONDS = 1.0  # but never less of the reference than this: its voice and motion
# A mel frame is "sound" when its mean log-mel energy is within this many nats of the loudest frame
# (~35 dB); the reference's edges were already trimmed at -40 dB, so this finds the speech inside them.
SPEECH_RANGE_NATS = 4.0


@dataclass
class TextLayout:
    """Token ids and frames per token (same length); ``sum(frames)`` is the number of frames covered."""

    ids: list[int]
    frames: list[int]

    @property
    def num_frames(self) -> int:
        return int(sum(self.frames))

    def __add__(self, other: TextLayout) -> TextLayout:
        return TextLayout(self.ids + other.ids, self.frames + other.frames)

    def slice_frames(self, start: int, end: int) -> TextLayout:
        """The tokens covering frames [start, end), cut at the bounds (tokens with 0 frames inside kept)."""
        ids, frames, position = [], [], 0
        for token, count in zip(self.ids, self.frames, strict=True):
            lo, hi = max(position, start), min(position + count, end)
            if hi > lo or (count == 0 and start <= position < end):
                ids.append(token)
                frames.append(max(0, hi - lo))
            position += count
        return TextLayout(ids, frames)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(self.ids, dtype=torch.long), torch.tensor(self.frames, dtype=torch.long)


def speech_span(mel: torch.Tensor) -> tuple[int, int]:
    """(first, last + 1) frame of sound in a log-mel (n, 100); the whole clip if nothing stands out."""
    energy = mel.float().mean(dim=-1)  # n
    loud = torch.nonzero(energy >= energy.max() - SPEECH_RANGE_NATS).flatten()
    if len(loud) == 0:
        return 0, len(mel)
    return int(loud[0]), int(loud[-1]) + 1


def prompt_layout(seq: PhonemeSequence, ids: list[int], num_frames: int, span: tuple[int, int]) -> TextLayout:
    """Lay espeak's timed tokens over ``num_frames`` prompt frames: the phonemes' time span maps linearly onto
    ``span`` (the frames with sound), the leading / trailing pauses onto the edges. Sums to ``num_frames``."""
    speech = [k for k, token in enumerate(seq.tokens) if not is_pause(token) and token != WORD_BOUNDARY]
    if not speech or num_frames < 1:
        raise ValueError("the reference transcript has no phonemes to lay over the prompt")
    t0, t1 = seq.starts[speech[0]], seq.ends[speech[-1]]
    f0, f1 = span
    if f1 - f0 < 1 or t1 <= t0:
        f0, f1 = 0, num_frames

    def to_frame(t: float) -> float:
        if t <= t0:
            return f0 * (t / t0) if t0 > 0 else f0
        if t >= t1:
            tail = seq.seconds - t1
            return f1 + (num_frames - f1) * ((t - t1) / tail if tail > 0 else 1.0)
        return f0 + (t - t0) * (f1 - f0) / (t1 - t0)

    bounds = np.rint([to_frame(t) for t in seq.starts[1:]]).astype(np.int64)
    bounds = np.clip(np.maximum.accumulate(np.concatenate([[0], bounds, [num_frames]])), 0, num_frames)
    return TextLayout(list(ids), np.diff(bounds).tolist())


PROMPT_KEEPS = ("head", "tail")  # which end of the reference a cut prompt keeps
DEFAULT_PROMPT_KEEP = "tail"


def check_prompt_share(share: float) -> None:
    """Raise a ValueError naming the fix unless ``share`` (the prompt's most of [prompt | target]) is in (0, 1)."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"the prompt share must be in (0, 1), the prompt's share of [prompt | target]; got {share}")


def prompt_budget(target_frames: int, reserved_frames: int = 0, share: float = MAX_PROMPT_SHARE,
                  min_frames: int = round(MIN_PROMPT_SECONDS * MEL_FRAME_RATE)) -> int:
    """Prompt frames allowed before ``target_frames`` generated ones: at most ``share`` of [prompt | target]
    (``reserved_frames`` of it already taken, e.g. by the previous chunk's tail), never fewer than ``min_frames``."""
    return max(min_frames, round(share / (1.0 - share) * target_frames) - reserved_frames)


def prompt_window(layout: TextLayout, target_frames: int, word_start_ids: set[int], reserved_frames: int = 0,
                  keep: str = DEFAULT_PROMPT_KEEP, share: float = MAX_PROMPT_SHARE,
                  min_frames: int = round(MIN_PROMPT_SECONDS * MEL_FRAME_RATE)) -> slice:
    """The frames of the prompt ``layout`` to give in context before ``target_frames`` generated ones.

    At most ``prompt_budget`` frames (or the whole prompt), from its start (``keep="head"``) or its end
    (``"tail"``). Each cut is at a word start (a token of ``word_start_ids``: word boundaries and pauses) inside
    the budget, else at a token start, so the kept frames hold whole sounds; never fewer than ``min_frames``."""
    if keep not in PROMPT_KEEPS:
        raise ValueError(f"keep must be one of {PROMPT_KEEPS}, got {keep!r}")
    total = layout.num_frames
    budget = prompt_budget(target_frames, reserved_frames, share, min_frames)
    if total <= budget:
        return slice(0, total)
    starts = np.concatenate([[0], np.cumsum(layout.frames)[:-1]]).astype(np.int64)  # frame where each token begins
    cuts = list(zip(starts.tolist(), layout.ids, strict=True))
    if keep == "tail":
        earliest = total - budget
        inside = [(start, token) for start, token in cuts if earliest <= start <= total - min_frames]
        order = inside  # the longest kept tail first
        fallback = earliest
    else:
        inside = [(start, token) for start, token in cuts if min_frames <= start <= budget]  # total > budget here
        order = inside[::-1]  # the longest kept head first
        fallback = budget
    cut = next((start for start, token in order if token in word_start_ids), order[0][0] if order else fallback)
    return slice(cut, total) if keep == "tail" else slice(0, cut)


@dataclass
class ReferenceTiming:
    """What a prompt tells about timing: its phoneme layout, its mean frames per token (the duration
    predictor's pace input) and its speed relative to espeak (prompt frames / frames of espeak's reading)."""

    layout: TextLayout
    pace: float
    espeak_ratio: float


def time_reference(seq: PhonemeSequence, layout: TextLayout, zero_ids: set[int]) -> ReferenceTiming:
    """The timing summary of a prompt laid out as ``layout`` from espeak's reading ``seq`` of its transcript."""
    espeak_frames = max(seq.seconds * MEL_FRAME_RATE, 1.0)
    return ReferenceTiming(layout, reference_pace(layout, zero_ids), layout.num_frames / espeak_frames)


def reference_pace(layout: TextLayout, zero_ids: set[int]) -> float:
    """Mean frames per frame-bearing token of a laid-out prompt: the pace the duration predictor takes."""
    tokens = sum(1 for token in layout.ids if token not in zero_ids)
    return layout.num_frames / max(tokens, 1)


def target_layout(tokenizer: PhonemeTokenizer, predictor, seq: PhonemeSequence, timing: ReferenceTiming,
                  speed: float = 1.0, num_frames: int | None = None) -> TextLayout:
    """Frames per token of the driving text: ``num_frames`` in all (default: espeak's reading time of the text
    x the reference's ``espeak_ratio`` / ``speed``), shared out by the duration predictor at the reference's pace."""
    if num_frames is None:
        num_frames = max(1, round(seq.seconds * MEL_FRAME_RATE * timing.espeak_ratio / speed))
    pace = timing.pace
    ids = tokenizer.convert_tokens_to_ids(seq.tokens)
    id_tensor = torch.tensor([ids], dtype=torch.long)
    device = getattr(predictor, "device", torch.device("cpu"))
    raw = predictor.predict_frames(id_tensor.to(device), torch.tensor([pace], device=device))[0].cpu().double()
    if raw.sum() <= 0:
        raw = torch.ones_like(raw)
    ends = torch.round(raw.cumsum(0) * (num_frames / raw.sum()))
    frames = torch.diff(ends, prepend=torch.zeros(1, dtype=ends.dtype)).long().tolist()
    if sum(frames) < 1:  # a text too short to get a frame: give its first sound one
        frames[next(k for k, t in enumerate(seq.tokens) if t != WORD_BOUNDARY)] = 1
    return TextLayout(ids, frames)
