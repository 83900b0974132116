"""Prompts from another clip: training samples laid out as the pipeline lays them, [reference | target].

Span masking trains a model to infill part of a clip from the rest of *the same* clip, while the pipeline
puts a *different* utterance of the speaker before the text it generates (the reference, cut by
``text_layout.prompt_window``). For voices it has heard the model can bridge that; for unseen ones it has to
take the voice from another utterance, which it was never asked to do, and that is where it loses words
(CHANGELOG.md, stage 11; `bench/results/cross_prompt/`).

With probability ``prob`` a training clip gets a partner: another clip of the same speaker in the same corpus.
The partner's tail, cut by the pipeline's own rule (``prompt_window`` at its default share, at a word start),
goes before the clip, and ``prompt_frames`` tells the loss to generate exactly the clip from it. Partners and
cut budgets are drawn once from (seed, corpus), so every epoch and a resumed run see the same samples, and
the batch sampler knows each sample's length (an upper bound: a cut at a word start only shortens it)
without reading the shards.

The prompt's visual codes are shifted to end where the clip's begin: a synthetic speaker's clips start at
random phases of its head motion, and a jump at the seam would teach the model to jump after a reference.

    clips = cross_prompted(training_clips(config.data, tokenizer), prob=0.5, seed=0, tokenizer=tokenizer)
    sample = clips[0]  # TrainingSample; sample.prompt_frames > 0 when it has a partner
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.pipeline.text_layout import TextLayout, prompt_budget, prompt_window

from .data import ShardDataset, ShardDatasets, TrainingSample


def check_cross_prompt_prob(prob: float, where: str = "cross_prompt_prob") -> None:
    """The one rule for the share of clips given another clip's prompt: a probability."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"{where} must be in [0, 1] (the share of training clips prompted by another clip of "
                         f"their speaker; 0 = off), got {prob}")


class CrossPromptClips(Dataset):
    """One corpus's clips, some of them preceded by the tail of another clip of their speaker.

    Args:
        clips: the corpus (speakers are matched within it: ids need not be unique across corpora; clips without a
            speaker id get no partner).
        prob: share of clips that get a partner (only clips whose speaker has another clip can).
        seed: draws the partners (an int or a tuple of ints, as ``np.random.default_rng`` takes).
        tokenizer: the ``PhonemeTokenizer`` the clips were read with (its word starts are the cut points).
    """

    def __init__(self, clips: ShardDataset, prob: float, seed: int | tuple[int, ...], tokenizer: PhonemeTokenizer):
        check_cross_prompt_prob(prob)
        if not isinstance(tokenizer, PhonemeTokenizer):
            raise ValueError("prompts from another clip need the 'durations' text layout (a phoneme tokenizer): "
                             "they are cut at word starts of the partner's timed phonemes")
        self.clips, self.word_starts = clips, tokenizer.word_start_ids()
        speakers = [clips.speaker_of(index) for index in range(len(clips))]
        by_speaker: dict[str, list[int]] = {}
        for index, speaker in enumerate(speakers):
            by_speaker.setdefault(speaker, []).append(index)
        rng = np.random.default_rng(seed)
        self.partners: list[int | None] = []
        self.lengths: list[int] = []
        for index, speaker in enumerate(speakers):
            # a clip without a speaker id gets no partner: any other clip could be someone else
            others = [other for other in by_speaker[speaker] if other != index] if speaker else []
            wanted = rng.random() < prob  # drawn for every clip, so partners do not shift when prob changes
            pick = int(rng.integers(len(others))) if others else 0
            partner = others[pick] if wanted and others else None
            self.partners.append(partner)
            length = clips.lengths[index]
            if partner is not None:  # prompt_window keeps at most the budget, or the whole partner if shorter
                length += min(clips.lengths[partner], prompt_budget(length))
            self.lengths.append(length)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> TrainingSample:
        sample = self.clips[index]
        partner = self.partners[index]
        if partner is None:
            return sample
        if sample.text_durations is None:
            raise ValueError("prompts from another clip need clips read with a phoneme tokenizer")
        source = self.clips[partner]
        layout = TextLayout(source.text_ids.tolist(), source.text_durations.tolist())
        kept = prompt_window(layout, len(sample.mel), self.word_starts)  # the pipeline's cut of a reference
        prompt_ids, prompt_durations = layout.slice_frames(kept.start, kept.stop).tensors()  # np, np frames per token
        codes = source.codes[kept]  # p 58
        codes = codes + (sample.codes[:1] - codes[-1:])  # p 58: ends where the clip begins
        return TrainingSample(
            key=f"{source.key}>{sample.key}",
            mel=torch.cat([source.mel[kept], sample.mel]),  # (p + n) 100
            codes=torch.cat([codes, sample.codes]),  # (p + n) 58
            text_ids=torch.cat([prompt_ids, sample.text_ids]),  # np + nt
            speaker=sample.speaker,
            text_durations=torch.cat([prompt_durations, sample.text_durations]),  # np + nt
            prompt_frames=kept.stop - kept.start,
        )


def cross_prompted(clips: ShardDataset | ShardDatasets, prob: float, seed: int,
                   tokenizer: PhonemeTokenizer) -> CrossPromptClips | ShardDatasets:
    """``clips`` (one corpus or several) with prompts from other clips, each corpus drawn with its own seed."""
    corpora = clips.datasets if isinstance(clips, ShardDatasets) else [clips]
    wrapped = [CrossPromptClips(corpus, prob, (seed, k), tokenizer) for k, corpus in enumerate(corpora)]
    return wrapped[0] if len(wrapped) == 1 else ShardDatasets(wrapped)
