"""A small CTC character recognizer over log-mel: the in-domain intelligibility judge (CER).

Whisper (``omnitalker.frontend.asr``) judges general intelligibility; on the synthetic corpus, whose espeak voices
Whisper partly misreads even as ground truth, intelligibility is also measured by a recognizer trained on the
corpus's own ground-truth mels (``python -m omnitalker.eval.train_recognizer``).
Its CER on held-out ground truth says how much a CER on generated speech can mean.

    recognizer = CTCRecognizer.from_pretrained("weights/ctc-recognizer")
    texts = recognizer.transcribe([mel])                 # mel (n, 100) at 93.75 fps, the pipeline's log-mel
    cer = character_error_rate(texts, [reference_text])

Model: per-utterance mean/variance normalisation of every mel bin (so a globally louder or quieter mel
reads the same), a strided 1-D convolution (93.75 -> 31.25 frames/s, enough for the ~19 characters/s
of espeak's fastest voices with a blank between repeated letters), ConvNeXt-style 1-D blocks (fast on
CPU: all large matrix products), one bidirectional GRU for sentence context and a linear layer over
the characters plus the CTC blank. Decoding is greedy (best path, repeats merged, blanks removed).

CER = character edit distance (Levenshtein: insertions, deletions, substitutions, each cost 1) summed
over utterances / reference characters summed, on texts normalised by :func:`normalize_for_cer`
(lower case, only letters, digits, apostrophes and single spaces) — the same counting as jiwer.cer.

Mandarin: a recognizer saved with ``lang="zh"`` (``train_recognizer --lang zh``) reads toned pinyin, not
characters: its reference transcript is :func:`pinyin_transcript` ("你好吗" -> "ni2 hao3 ma5"), so for it
CER is the character error rate over the pinyin letters, tone digits and spaces (a wrong tone is one
edit, a wrong syllable a few), not over Chinese characters. :meth:`CTCRecognizer.reference_text` picks
the transcript of a text for the recognizer's language; training and evaluation both use it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

MEL_DIM = 100
BLANK_ID = 0
DEFAULT_ALPHABET = " '" + string.ascii_lowercase + string.digits
NORMALIZE_EPS = 1e-5  # floor of the per-bin standard deviation in the mel normalisation
_DROP = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")
LANGS = ("en", "zh")  # what a recognizer reads: English letters, or Mandarin as toned pinyin


def normalize_for_cer(text: str) -> str:
    """Lower case; punctuation and other symbols become spaces; runs of spaces collapse; strip."""
    return _SPACES.sub(" ", _DROP.sub(" ", text.lower())).strip()


def pinyin_transcript(text: str) -> str:
    """Chinese text -> toned pinyin syllables separated by spaces, normalised ("你好吗" -> "ni2 hao3 ma5"): what the
    synthetic corpus's espeak voice reads (``omnitalker.frontend.phonemes.pinyin_syllables``); punctuation is dropped, so
    the transcript fits :data:`DEFAULT_ALPHABET`.
    """
    from omnitalker.frontend.phonemes import pinyin_syllables

    return normalize_for_cer(" ".join(pinyin_syllables(text)))


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance (unit-cost insert, delete, substitute) by the two-row dynamic program."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_item in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp_item in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_item != hyp_item))
        previous = current
    return previous[-1]


def character_error_rate(hypotheses: str | Sequence[str], references: str | Sequence[str]) -> float:
    """Corpus CER: total character edits / total reference characters, after :func:`normalize_for_cer`."""
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    if isinstance(references, str):
        references = [references]
    if len(hypotheses) != len(references):
        raise ValueError(f"got {len(hypotheses)} hypotheses for {len(references)} references: pass one each")
    edits = total = 0
    for hypothesis, reference in zip(hypotheses, references, strict=True):
        reference = normalize_for_cer(reference)
        edits += edit_distance(reference, normalize_for_cer(hypothesis))
        total += len(reference)
    if total == 0:
        raise ValueError("the references are empty after normalisation: CER needs reference characters")
    return edits / total


class ConvBlock(nn.Module):
    """ConvNeXt-style 1-D block: depthwise conv over time, LayerNorm, pointwise FFN, residual."""

    def __init__(self, dim: int, kernel_size: int, ff_mult: int):
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ff(self.norm(self.depthwise(x.transpose(1, 2)).transpose(1, 2)))  # b n d


class CTCRecognizer(ModelMixin, ConfigMixin):
    """Log-mel (b, n, 100) -> per-frame character log-probabilities (b, n', vocab), n' = ceil(n / stride).

    Args:
        alphabet: the characters (index 0 is the CTC blank, character k is id k + 1).
        mel_dim: mel bins of the input.
        dim: channels of the convolutional part.
        stride: time subsampling of the first (strided) convolution.
        num_conv_blocks: ConvNeXt-style blocks after the subsampling.
        kernel_size: depthwise kernel of the blocks (odd).
        hidden_dim: hidden size per direction of the bidirectional GRU on top.
        dropout: before the GRU and the output layer (training only).
        lang: the language it reads: "en" (letters of the text) or "zh" (the text's toned pinyin,
            :func:`pinyin_transcript`); the evaluation scores it against :meth:`reference_text`.
    """

    @register_to_config
    def __init__(
        self,
        alphabet: str = DEFAULT_ALPHABET,
        mel_dim: int = MEL_DIM,
        dim: int = 256,
        stride: int = 3,
        num_conv_blocks: int = 4,
        kernel_size: int = 9,
        hidden_dim: int = 128,
        dropout: float = 0.1,
        lang: str = "en",
    ):
        super().__init__()
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
        if kernel_size % 2 != 1 or stride < 1:
            raise ValueError(f"kernel_size must be odd and stride >= 1, got {kernel_size} and {stride}")
        if len(set(alphabet)) != len(alphabet) or not alphabet:
            raise ValueError("alphabet must be a non-empty string of distinct characters")
        self.char_to_id = {char: index + 1 for index, char in enumerate(alphabet)}
        subsample_kernel = 2 * stride + 1  # overlaps one frame into each neighbouring window
        self.subsample = nn.Conv1d(mel_dim, dim, subsample_kernel, stride=stride, padding=stride)
        self.blocks = nn.Sequential(*[ConvBlock(dim, kernel_size, ff_mult=2) for _ in range(num_conv_blocks)])
        self.rnn = nn.GRU(dim, hidden_dim, batch_first=True, bidirectional=True)
        self.output_dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden_dim, len(alphabet) + 1)

    @property
    def vocab_size(self) -> int:
        return len(self.config.alphabet) + 1

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the strided convolution (kernel 2s+1, padding s: ceil(n / s))."""
        stride = self.config.stride
        return torch.div(lengths + stride - 1, stride, rounding_mode="floor")

    def reference_text(self, text: str) -> str:
        """What this recognizer should transcribe for a sentence: its toned pinyin for "zh", the text otherwise."""
        return pinyin_transcript(text) if self.config.lang == "zh" else text

    def encode_text(self, text: str) -> list[int]:
        """Character ids of the normalised text (characters outside the alphabet are dropped)."""
        return [self.char_to_id[char] for char in normalize_for_cer(text) if char in self.char_to_id]

    def decode_ids(self, ids: Sequence[int]) -> str:
        """Greedy CTC collapse: merge repeats, drop blanks."""
        chars, previous = [], BLANK_ID
        for index in ids:
            if index != previous and index != BLANK_ID:
                chars.append(self.config.alphabet[index - 1])
            previous = index
        return _SPACES.sub(" ", "".join(chars)).strip()

    @staticmethod
    def normalize_mel(mel: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Per-utterance, per-bin mean/variance normalisation over the valid frames; padding stays 0."""
        valid = (torch.arange(mel.shape[1], device=mel.device)[None] < lengths[:, None])[..., None]  # b n 1
        count = lengths.clamp_min(1)[:, None, None].to(mel.dtype)  # b 1 1
        mean = (mel * valid).sum(1, keepdim=True) / count  # b 1 d
        var = (((mel - mean) * valid) ** 2).sum(1, keepdim=True) / count  # b 1 d
        return (mel - mean) / (var + NORMALIZE_EPS).sqrt() * valid  # b n d

    def forward(self, mel: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mel b n 100 (padded), lengths b -> (log-probs b n' vocab, output lengths b)."""
        if mel.ndim != 3 or mel.shape[-1] != self.config.mel_dim:
            raise ValueError(f"mel must be (batch, frames, {self.config.mel_dim}), got {tuple(mel.shape)}")
        if lengths is None:
            lengths = torch.full((mel.shape[0],), mel.shape[1], device=mel.device)
        x = self.normalize_mel(mel.float(), lengths)  # b n d
        out_lengths = self.output_lengths(lengths)
        x = self.subsample(x.transpose(1, 2)).transpose(1, 2)  # b n' c
        # zero the padded frames before every convolution so a clip's result does not depend on its batch
        valid = (torch.arange(x.shape[1], device=x.device)[None] < out_lengths[:, None])[..., None]  # b n' 1
        for block in self.blocks:
            x = block(x * valid)
        packed = nn.utils.rnn.pack_padded_sequence(self.output_dropout(x), out_lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        x, _ = self.rnn(packed)
        x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=int(out_lengths.max()))  # b n' 2h
        return self.head(self.output_dropout(x)).log_softmax(-1), out_lengths  # b n' vocab

    @torch.no_grad()
    def transcribe(self, mels: Sequence[torch.Tensor]) -> list[str]:
        """Greedy transcripts of a list of mels, each (n, 100) at 93.75 fps (batched, padded)."""
        if not len(mels):
            return []
        mels = [torch.as_tensor(mel, dtype=torch.float32) for mel in mels]
        for mel in mels:
            if mel.ndim != 2 or mel.shape[1] != self.config.mel_dim or len(mel) == 0:
                raise ValueError(f"each mel must be (frames > 0, {self.config.mel_dim}), got {tuple(mel.shape)}")
        lengths = torch.tensor([len(mel) for mel in mels])
        batch = nn.utils.rnn.pad_sequence(mels, batch_first=True).to(self.device)  # b n d
        log_probs, out_lengths = self(batch, lengths.to(self.device))
        best = log_probs.argmax(-1).cpu()  # b n'
        return [self.decode_ids(best[row, : out_lengths[row]].tolist()) for row in range(len(mels))]

