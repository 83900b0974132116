"""Phoneme front-end: espeak-ng phoneme tokens with their times, for the "durations" text layout.

    from omnitalker.frontend.phonemes import PhonemeTokenizer
    tokenizer = PhonemeTokenizer.default()
    seq = tokenizer.phonemize("Hello 你好")        # tokens ['_', 'h', '@', 'l', "'oU", '|', ...] + seconds
    ids = tokenizer.convert_tokens_to_ids(seq.tokens)

The tokens are exactly the phoneme mnemonics that espeak-ng's phoneme events report (``omnitalker.frontend.espeak``,
e.g. ``"'oU"`` — the stress mark is part of espeak's mnemonic), plus:

- ``_`` pauses: espeak's own pause events (``_``, ``_:``, ``_!``, ``_|``) and the silence before the first
  and after the last phoneme of a clip;
- ``|`` a word boundary with no frames of its own (espeak's word events): it still gives the text encoder
  the word structure;
- Mandarin tones: espeak's ``cmn`` voice speaks the tone of a pinyin syllable as pitch but reports only the
  segments, so the stressed vowel of each syllable carries the pinyin tone digit (``"'Au3"``).

Mandarin is read as tone-numbered pinyin (``omnitalker.frontend.text`` rules, pypinyin with tone sandhi) with the
``cmn-latn-pinyin`` voice; other text with ``en-us``. Mixed text is cut into Chinese / non-Chinese runs.

The same function lays out training clips (from the phoneme events stored in the corpus) and inference text
(from a fresh espeak run), so both see one vocabulary. Frame counts come from
:func:`frame_durations`: token boundaries are rounded to the mel frame grid once, so the counts sum exactly
to the clip's frames.

Why our own code: no maintained Python package exposes espeak-ng's phoneme *events with times*
(``phonemizer`` returns strings), and the layout rules (pauses, tones) are specific to this model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import FeatureExtractionMixin

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.languages import SUPPORTED_LANGUAGES, check_speakable, refuse_unsupported
from omnitalker.frontend.text import PAD_ID, Vocabulary, is_chinese, normalize_text

VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "tokenizer_config.json"
DEFAULT_VOCAB_PATH = Path(__file__).parent / "assets" / "phonemes.txt"
PAUSE = "_"  # id 0: silences, espeak's pauses
WORD_BOUNDARY = "|"  # zero-frame word boundary
SPECIAL_TOKENS = (PAUSE, WORD_BOUNDARY)  # ids 0 and 1 of every phoneme vocabulary
PAUSE_ID = 0
ENGLISH_VOICE = "en-us"
CHINESE_VOICE = "cmn-latn-pinyin"
_SYLLABLE_BREAK = "_|"  # espeak's syllable separator in the cmn voice
_TONE = re.compile(r"^[a-zü]+([1-5])$")


@dataclass
class PhonemeSequence:
    """Tokens with their time spans in seconds (``starts[k] <= ends[k]``; word boundaries have zero length)."""

    tokens: list[str]
    starts: list[float] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.ends[-1] if self.ends else 0.0

    def __len__(self) -> int:
        return len(self.tokens)


def is_pause(token: str) -> bool:
    return token.startswith(PAUSE)


def pinyin_syllables(text: str) -> list[str]:
    """Chinese text -> the pinyin syllables espeak reads: TONE3 with tone sandhi, neutral tone 5, ü as "v"
    (non-Chinese runs such as punctuation pass through as they are)."""
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, tone_sandhi=True)


def pinyin_tones(text: str) -> list[str]:
    """Chinese text -> the tone digit of each pinyin syllable espeak reads (``pinyin_syllables``)."""
    return [match.group(1) for match in map(_TONE.match, pinyin_syllables(text)) if match]


def espeak_text(text: str, lang: str) -> str:
    """The text espeak-ng reads: pinyin syllables for Chinese (``cmn-latn-pinyin`` voice), the text otherwise."""
    if lang != "zh":
        return text
    syllables = pinyin_syllables(text)
    return " ".join(s.replace("，", ",").replace("。", ".").replace("、", ",") for s in syllables)


def events_to_sequence(phonemes: Sequence[dict], word_starts: Sequence[float] = (), tones: Sequence[str] = (),
                       total_seconds: float | None = None) -> PhonemeSequence:
    """espeak phoneme events (``{"phoneme", "start", "end"}``) -> the token sequence of this module.

    Pause events become ``_``; a ``|`` is put before the first phoneme of every word in ``word_starts``
    (after the first); ``tones`` (one pinyin tone digit per syllable, Mandarin) are attached to each
    syllable's stressed vowel; silence before the first and after the last event (up to ``total_seconds``)
    becomes a leading / trailing ``_``.
    """
    events = [(str(p["phoneme"]), float(p["start"]), float(p["end"])) for p in phonemes]
    if tones:
        events = _attach_tones(events, list(tones))
    words = sorted(float(t) for t in word_starts)[1:]
    seq = PhonemeSequence([], [], [])

    def add(token: str, start: float, end: float) -> None:
        if is_pause(token) and seq.tokens and seq.tokens[-1] == PAUSE:  # merge consecutive pauses
            seq.ends[-1] = max(seq.ends[-1], end)
            return
        seq.tokens.append(token)
        seq.starts.append(start)
        seq.ends.append(max(start, end))

    if events and events[0][1] > 0:
        add(PAUSE, 0.0, events[0][1])
    for token, start, end in events:
        while words and words[0] <= start + 1e-6:
            if seq.tokens and seq.tokens[-1] not in SPECIAL_TOKENS:
                add(WORD_BOUNDARY, start, start)
            words.pop(0)
        add(PAUSE if is_pause(token) else token, start, end)
    if total_seconds is not None and (not seq.ends or total_seconds > seq.ends[-1]):
        add(PAUSE, seq.ends[-1] if seq.ends else 0.0, total_seconds)
    return seq


def _attach_tones(events: list[tuple[str, float, float]], tones: list[str]) -> list[tuple[str, float, float]]:
    """Give each syllable's stressed (else last) vowel its tone digit; syllables end at espeak's ``_|``."""
    syllables, current = [], []
    for index, (token, _, _) in enumerate(events):
        if is_pause(token):
            if current:
                syllables.append(current)
                current = []
            continue
        current.append(index)
    if current:
        syllables.append(current)
    if len(syllables) != len(tones):  # espeak split the text differently: keep it toneless, never misalign
        return events
    out = list(events)
    for members, tone in zip(syllables, tones, strict=True):
        stressed = [i for i in members if out[i][0].startswith("'")] or members[-1:]
        token, start, end = out[stressed[0]]
        out[stressed[0]] = (token + tone, start, end)
    return out


def frame_durations(seq: PhonemeSequence, num_frames: int, frame_rate: float = MEL_FRAME_RATE,
                    scale: float = 1.0) -> np.ndarray:
    """Integer frames per token, summing exactly to ``num_frames``: token boundaries (seconds x ``scale``)
    rounded to the frame grid once, the last token stretched or cut to end at ``num_frames``."""
    if num_frames < 1 or not seq.tokens:
        raise ValueError(f"need tokens and num_frames >= 1, got {len(seq.tokens)} tokens and {num_frames} frames")
    bounds = np.rint(np.asarray(seq.starts[1:], dtype=np.float64) * scale * frame_rate).astype(np.int64)
    bounds = np.clip(np.maximum.accumulate(np.concatenate([[0], bounds, [num_frames]])), 0, num_frames)
    return np.diff(bounds)


def read_vocab(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"phoneme vocab file not found: {path}")
    return [line for line in path.read_text(encoding="utf-8").split("\n") if line]


class PhonemeTokenizer(Vocabulary, FeatureExtractionMixin):
    """espeak-ng phoneme tokens <-> ids, and text -> timed phoneme sequences.

    Args:
        vocab: the tokens; token i has id i. Token 0 is the pause ``_``, token 1 the word boundary ``|``.
    """

    # FeatureExtractionMixin: what makes diffusers save and load it with a pipeline (omnitalker/components.py)

    kind = "phonemes"

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if vocab[: len(SPECIAL_TOKENS)] != list(SPECIAL_TOKENS):
            raise ValueError(f"a phoneme vocab starts with {list(SPECIAL_TOKENS)}, got {vocab[:2]}")
        super().__init__(vocab)

    @classmethod
    def default(cls) -> PhonemeTokenizer:
        """The packaged vocabulary (``scripts/make_phoneme_vocab.py``): espeak's en-us and cmn phonemes."""
        return cls(read_vocab(DEFAULT_VOCAB_PATH))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, subfolder: str | None = None, **kwargs):
        folder = Path(pretrained_model_name_or_path) / (subfolder or "")
        if not (folder / VOCAB_NAME).is_file():
            raise FileNotFoundError(f"no {VOCAB_NAME} in {folder}: is this a phoneme tokenizer folder?")
        return cls(read_vocab(folder / VOCAB_NAME))

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> None:
        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / VOCAB_NAME).write_text("".join(token + "\n" for token in self.vocab), encoding="utf-8")
        config = {"tokenizer_class": type(self).__name__, "kind": self.kind, "vocab_file": VOCAB_NAME,
                  "vocab_size": self.vocab_size, "pad_token_id": PAD_ID,
                  "voices": {"en": ENGLISH_VOICE, "zh": CHINESE_VOICE},
                  "languages": list(SUPPORTED_LANGUAGES)}  # the rule: omnitalker/frontend/languages.py
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")

    def word_start_ids(self) -> set[int]:
        """Ids a prompt may be cut before (word boundaries and pauses: ``text_layout.prompt_window``)."""
        return {i for token, i in self.token_to_id.items() if token == WORD_BOUNDARY or is_pause(token)}

    # ------------------------------------------------------------------------------------------ text

    def phonemize(self, text: str) -> PhonemeSequence:
        """Text -> timed tokens, spoken by espeak's default voice per language (times are its rule-based
        durations at the default rate; a reference's pace rescales them)."""
        from omnitalker.frontend.espeak import synthesize_many

        text = normalize_text(text) if isinstance(text, str) else text
        if not isinstance(text, str) or not text:
            raise ValueError("text is empty: pass at least one word to speak")
        refuse_unsupported(text)  # never letter names: omnitalker/frontend/languages.py
        runs = [(lang, run) for lang, run in _language_runs(text) if any(c.isalnum() for c in run)]
        if not runs:
            raise ValueError(f"text {text!r} has nothing to pronounce (no letters, digits or Chinese characters)")
        requests = [dict(text=espeak_text(run, lang), voice=CHINESE_VOICE if lang == "zh" else ENGLISH_VOICE)
                    for lang, run in runs]
        spoken = synthesize_many(requests)
        seq, offset = PhonemeSequence([], [], []), 0.0
        for (lang, run), utt in zip(runs, spoken, strict=True):
            events = [{"phoneme": p.phoneme, "start": p.start, "end": p.end} for p in utt.phonemes]
            part = events_to_sequence(events, utt.word_starts, pinyin_tones(run) if lang == "zh" else (),
                                      total_seconds=utt.duration)
            if seq.tokens and part.tokens and part.tokens[0] == PAUSE and seq.tokens[-1] == PAUSE:
                seq.ends[-1] += part.ends[0] - part.starts[0]
                part = PhonemeSequence(part.tokens[1:], part.starts[1:], part.ends[1:])
            seq.tokens += part.tokens
            seq.starts += [offset + s for s in part.starts]
            seq.ends += [offset + e for e in part.ends]
            offset = seq.ends[-1] if seq.ends else offset
        if not any(not is_pause(t) and t != WORD_BOUNDARY for t in seq.tokens):
            raise ValueError(f"text {text!r} has nothing to pronounce: espeak-ng produced no phonemes for it")
        return seq

    def check_speakable(self, text: str, what: str = "text") -> list[str]:
        """The languages rule (``omnitalker.frontend.languages.check_speakable``; cheap: no espeak run): a ValueError
        naming the problem and the fix, or the characters left out (also warned)."""
        return check_speakable(text, what)

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Tokens -> ids; a token the vocabulary lacks raises a ValueError naming it."""
        unknown = sorted({token for token in tokens if token not in self.token_to_id})
        if unknown:
            raise ValueError(f"the text needs sounds this model was not trained on (espeak-ng phonemes {unknown}); "
                             "it speaks English and Mandarin Chinese: rephrase the unusual words.")
        return [self.token_to_id[token] for token in tokens]

    def encode(self, sequences: Sequence[Sequence[str]]) -> torch.Tensor:
        """Token lists -> ids (b, nt), right-padded with -1."""
        longest = max(len(tokens) for tokens in sequences)
        ids = torch.full((len(sequences), longest), PAD_ID, dtype=torch.long)  # b nt
        for row, tokens in enumerate(sequences):
            ids[row, : len(tokens)] = torch.tensor(self.convert_tokens_to_ids(tokens), dtype=torch.long)
        return ids

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        return " ".join(self.vocab[index] for index in ids if index != PAD_ID)


def _language_runs(text: str) -> list[tuple[str, str]]:
    """Cut text into (lang, run) pieces: runs of Chinese characters (with their punctuation) and the rest."""
    runs: list[tuple[str, str]] = []
    for char in text:
        lang = "zh" if is_chinese(char) else ("en" if char.isascii() and char.isalnum() else None)
        if lang is None and runs:  # punctuation / spaces stay with the current run
            runs[-1] = (runs[-1][0], runs[-1][1] + char)
        elif runs and runs[-1][0] == (lang or runs[-1][0]):
            runs[-1] = (runs[-1][0], runs[-1][1] + char)
        else:
            runs.append((lang or "en", char))
    return runs
