"""Text front-end: characters for Latin scripts, tone-numbered pinyin for Chinese, F5-TTS vocab format.

    from omnitalker.frontend.text import OmniTalkerTokenizer
    tokenizer = OmniTalkerTokenizer.default()
    tokenizer.tokenize("Hi 你好")           # ['H', 'i', ' ', 'ni2', ' ', 'hao3']
    ids = tokenizer("今天天气不错。", reference_text="Some call me nature")   # (1, nt) LongTensor

Tokenization follows F5-TTS (`convert_char_to_pinyin`), so a tokenizer built on F5's vocab.txt gives the
ids its released checkpoints were trained with:
  1. normalise: `;` -> `,`, curly quotes -> straight quotes, every whitespace run -> one space, trim;
  2. segment with jieba;
  3. an ASCII segment is emitted character by character; a multi-character one (a word) gets a " "
     token in front unless the previous token is a space, colon or quote;
  4. Chinese characters (those pypinyin has a reading for) become " " + their pinyin in pypinyin's
     TONE3 style with tone sandhi ("ni2", "hao3"; neutral tone without a digit, "de"; ü spelled "v",
     "lv4"), read per run of consecutive characters inside a jieba word so phrases pick the right
     reading of polyphones; every other character is emitted as itself.

Vocab format (F5-TTS): vocab.txt holds one token per line, the line index is the token id, line 0 is a
space. Id 0 is also what unknown characters map to (F5 convention); they are reported with a warning,
never dropped silently. Batches are padded with -1; the model shifts ids by +1 so padding lands on its
embedding row 0, the filler token.

Duration estimation measures text in UTF-8 bytes (`text_length`), as F5-TTS does: a Chinese character
(one syllable, 3 bytes) weighs about as much as three Latin letters, which matches speaking rates well
enough for a linear frames-per-byte estimate from the reference clip.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import FeatureExtractionMixin

from omnitalker.frontend.languages import (
    SUPPORTED_LANGUAGES,
    check_speakable,
    clean_text,
    is_chinese,
    refuse_unsupported,
)

VOCAB_NAME = "vocab.txt"
CONFIG_NAME = "tokenizer_config.json"
DEFAULT_VOCAB_PATH = Path(__file__).parent / "assets" / VOCAB_NAME

SPACE_TOKEN = " "  # id 0; also the id of unknown characters
UNKNOWN_ID = 0
PAD_ID = -1  # batch padding; becomes the filler row 0 after the model's +1 shift

# F5-TTS's normalisation: ';' is not in its vocab, curly quotes are folded to their ASCII forms.
PUNCTUATION_MAP = str.maketrans({";": ",", "\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
# After these tokens a following word needs no separating space token.
WORD_JOINERS = frozenset(" :'\"")
# Reference text must end like a finished sentence, or the end of the prompt leaks into the output.
SENTENCE_END = ". "
CHINESE_SENTENCE_END = "\u3002"  # 。

_WHITESPACE = re.compile(r"\s+")
_HUB_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


# --------------------------------------------------------------------------------------------- tokenizing


def normalize_text(text: str) -> str:
    """The text as spoken (``omnitalker.frontend.languages.clean_text``: no invisible characters or emoji,
    plain forms), punctuation the vocab lacks folded into what it has, whitespace collapsed."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    return _WHITESPACE.sub(" ", clean_text(text).translate(PUNCTUATION_MAP)).strip()


def _jieba():
    import logging

    import jieba

    if not jieba.dt.initialized:
        jieba.setLogLevel(logging.WARNING)  # silence "Building prefix dict..." on stderr
        jieba.initialize()
    return jieba


def _to_pinyin(run: str) -> list[str]:
    """TONE3 pinyin with tone sandhi for a run of Chinese characters, one syllable per character."""
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(run, style=Style.TONE3, tone_sandhi=True)
    if len(syllables) != len(run):  # never seen; keep one syllable per character regardless
        syllables = [lazy_pinyin(char, style=Style.TONE3, tone_sandhi=True)[0] for char in run]
    return syllables


def text_to_tokens(text: str) -> list[str]:
    """Normalised text -> token strings: characters, " " separators and pinyin syllables."""
    tokens: list[str] = []
    for word in _jieba().cut(normalize_text(text)):
        if word.isascii():
            if len(word) > 1 and tokens and tokens[-1] not in WORD_JOINERS:
                tokens.append(SPACE_TOKEN)
            tokens.extend(word)
            continue
        # Runs of Chinese characters are read together, so phrases pick the right polyphone reading.
        for chinese, run in itertools.groupby(word, key=is_chinese):
            if chinese:
                for syllable in _to_pinyin("".join(run)):
                    tokens.extend((SPACE_TOKEN, syllable))
            else:
                tokens.extend(run)
    return tokens


def text_length(text: str) -> int:
    """Length of the normalised text in UTF-8 bytes: the text measure used for duration estimation."""
    return len(normalize_text(text).encode("utf-8"))


def prepare_reference_text(reference_text: str) -> str:
    """Normalise a reference transcript and make it end a sentence ('. ' or '。'), as F5-TTS does."""
    text = normalize_text(reference_text)
    if not text:
        raise ValueError(
            "reference_text is empty: pass the transcript of the reference clip (or transcribe it first)"
        )
    if text.endswith(CHINESE_SENTENCE_END):
        return text
    return text + (" " if text.endswith(".") else SENTENCE_END)


# --------------------------------------------------------------------------------------------- vocab


def read_vocab(path: str | Path) -> list[str]:
    """Read an F5-TTS style vocab.txt (LF or CRLF); token i is line i, line 0 must be a space."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocab file not found: {path}")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline ending the last token
    return [line[:-1] if line.endswith("\r") else line for line in lines]


class Vocabulary:
    """Tokens <-> ids (token i has id i): what the character and the phoneme tokenizers share."""

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        duplicates = sorted(token for token, count in Counter(vocab).items() if count > 1)
        if duplicates:
            raise ValueError(f"the vocab lists these tokens more than once: {duplicates[:10]}")
        self.vocab = vocab
        self.token_to_id = {token: index for index, token in enumerate(vocab)}

    @property
    def vocab_size(self) -> int:
        """Number of tokens; the model's text embedding has vocab_size + 1 rows (row 0 = filler)."""
        return len(self.vocab)

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"


class OmniTalkerTokenizer(Vocabulary, FeatureExtractionMixin):
    """Text -> token ids for the OmniTalker text encoder, compatible with F5-TTS vocab files.

    Args:
        vocab: the tokens; token i has id i. Token 0 must be a space (it is also the unknown id).
    """

    # FeatureExtractionMixin: what makes diffusers save and load it with a pipeline (omnitalker/components.py)

    def __init__(self, vocab: Sequence[str]):
        vocab = list(vocab)
        if not vocab or vocab[0] != SPACE_TOKEN:
            raise ValueError(
                "the vocab must start with a space token (id 0, also used for unknown characters)"
            )
        if any(token == "" or "\n" in token for token in vocab):
            raise ValueError("vocab tokens must be non-empty and contain no newline")
        super().__init__(vocab)

    # ----------------------------------------------------------------------------------- construction

    @classmethod
    def from_vocab_file(cls, path: str | Path) -> OmniTalkerTokenizer:
        return cls(read_vocab(path))

    @classmethod
    def default(cls) -> OmniTalkerTokenizer:
        """The packaged vocab: ASCII, Latin-1 letters, CJK punctuation and every pinyin syllable x tone."""
        return cls.from_vocab_file(DEFAULT_VOCAB_PATH)

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | Path, subfolder: str | None = None, **kwargs
    ) -> OmniTalkerTokenizer:
        """Load from a folder written by `save_pretrained`, or from a Hub repo id (needs huggingface_hub).

        Hub keyword arguments (cache_dir, revision, token, local_files_only, force_download) are passed
        on; other keyword arguments (e.g. torch_dtype from a pipeline loader) do not apply and are ignored.
        """
        folder = Path(pretrained_model_name_or_path)
        if subfolder:
            folder = folder / subfolder
        if folder.is_dir():
            vocab_path, config_path = folder / VOCAB_NAME, folder / CONFIG_NAME
        elif Path(pretrained_model_name_or_path).exists():
            raise ValueError(
                f"{pretrained_model_name_or_path} is a file: pass the folder holding {VOCAB_NAME}"
            )
        else:
            vocab_path, config_path = _download(str(pretrained_model_name_or_path), subfolder, kwargs)
        if not vocab_path.is_file():
            raise FileNotFoundError(f"no {VOCAB_NAME} in {folder}: is this a tokenizer folder?")
        tokenizer = cls.from_vocab_file(vocab_path)
        if config_path is not None and config_path.is_file():
            config = json.loads(config_path.read_text(encoding="utf-8"))
            expected = config.get("vocab_size")
            if expected is not None and expected != tokenizer.vocab_size:
                raise ValueError(
                    f"{config_path} says vocab_size {expected} but {vocab_path} has {tokenizer.vocab_size} tokens"
                )
        return tokenizer

    def save_pretrained(self, save_directory: str | Path, **kwargs) -> None:
        """Write vocab.txt (one token per line, LF) and tokenizer_config.json into `save_directory`."""
        directory = Path(save_directory)
        if directory.is_file():
            raise ValueError(f"save_directory {directory} is a file, expected a folder")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / VOCAB_NAME).write_text("".join(token + "\n" for token in self.vocab), encoding="utf-8")
        config = {
            "tokenizer_class": type(self).__name__,
            "vocab_file": VOCAB_NAME,
            "vocab_size": self.vocab_size,
            "unknown_token_id": UNKNOWN_ID,
            "pad_token_id": PAD_ID,
            "chinese": "pypinyin TONE3 with tone sandhi",
            "languages": list(SUPPORTED_LANGUAGES),  # the rule: omnitalker/frontend/languages.py
        }
        (directory / CONFIG_NAME).write_text(
            json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    # ----------------------------------------------------------------------------------- use

    @staticmethod
    def text_length(text: str) -> int:
        """UTF-8 byte length of the normalised text, the measure for duration estimation (module docstring)."""
        return text_length(text)

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (characters and pinyin syllables). Raises ValueError on empty text."""
        if not isinstance(text, str):
            raise ValueError(f"text must be a string, got {type(text).__name__}")
        normalized = normalize_text(text)
        if not normalized:
            raise ValueError("text is empty: pass at least one word to speak")
        refuse_unsupported(normalized)  # never letter names: omnitalker/frontend/languages.py
        return text_to_tokens(normalized)

    def convert_tokens_to_ids(self, tokens: Sequence[str], warn: bool = True) -> list[int]:
        """Tokens -> ids; unknown tokens map to the space id 0 and are named in a warning."""
        ids = [self.token_to_id.get(token, UNKNOWN_ID) for token in tokens]
        if warn:
            self._warn_unknown([token for token in tokens if token not in self.token_to_id])
        return ids

    def encode(self, texts: str | Sequence[str] | Sequence[Sequence[str]]) -> torch.Tensor:
        """Texts (or already tokenized texts) -> ids (b, nt) LongTensor, right-padded with -1."""
        if isinstance(texts, str):
            texts = [texts]
        if len(texts) == 0:
            raise ValueError("encode needs at least one text")
        token_lists = [self.tokenize(text) if isinstance(text, str) else list(text) for text in texts]
        unknown = [token for tokens in token_lists for token in tokens if token not in self.token_to_id]
        self._warn_unknown(unknown)
        longest = max(len(tokens) for tokens in token_lists)
        ids = torch.full((len(token_lists), longest), PAD_ID, dtype=torch.long)  # b nt
        for row, tokens in enumerate(token_lists):
            ids[row, : len(tokens)] = torch.tensor(
                self.convert_tokens_to_ids(tokens, warn=False), dtype=torch.long
            )
        return ids

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Ids (nt,) -> the token strings joined, padding (-1) skipped. For inspection; pinyin stays pinyin."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if ids and isinstance(ids[0], list):
            raise ValueError("decode takes one sequence (nt,); loop over a batch")
        return "".join(self.vocab[index] for index in ids if index != PAD_ID)

    def check_speakable(self, text: str, what: str = "text") -> list[str]:
        """The languages rule (``omnitalker.frontend.languages.check_speakable``: a ValueError naming the problem,
        a warning naming emoji left out), then a ValueError if no letter, digit or Chinese character of `text`
        is in this vocab. Returns the characters left out."""
        dropped = check_speakable(text, what)
        if not any(token in self.token_to_id and token[0].isalnum() for token in self.tokenize(text)):
            raise ValueError(f"{what} has no letter, digit or Chinese character in this model's vocabulary: "
                             "type English or Mandarin Chinese words.")
        return dropped

    def __call__(
        self, text: str | Sequence[str], reference_text: str | Sequence[str] | None = None
    ) -> torch.Tensor:
        """Model input ids (b, nt): reference transcript + driving text, F5-TTS style.

        The reference text is made to end a sentence ('. ' or '。') so the model does not carry the
        prompt's last words into the generated speech. Driving text with nothing speakable raises.
        """
        texts = [text] if isinstance(text, str) else list(text)
        if reference_text is None:
            references = [""] * len(texts)
        else:
            references = (
                [reference_text] * len(texts) if isinstance(reference_text, str) else list(reference_text)
            )
            if len(references) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(references)} reference texts")
            references = [prepare_reference_text(reference) for reference in references]
        for driving in texts:
            self.check_speakable(driving)
        return self.encode(
            [
                reference + normalize_text(driving)
                for reference, driving in zip(references, texts, strict=True)
            ]
        )

    def _warn_unknown(self, unknown: list[str]) -> None:
        if not unknown:
            return
        names = ", ".join(repr(token) for token in dict.fromkeys(unknown))
        warnings.warn(
            f"{len(unknown)} characters are not in the vocabulary and were mapped to the space token: {names}",
            stacklevel=3,
        )


def _download(repo_id: str, subfolder: str | None, kwargs: dict) -> tuple[Path, Path | None]:
    """Fetch vocab.txt (+ tokenizer_config.json when present) of a Hub repo. Never called at import."""
    if not _HUB_REPO_ID.match(repo_id):
        raise FileNotFoundError(f"tokenizer folder not found: {repo_id} (and it is not a Hub repo id)")
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError as error:
        raise FileNotFoundError(
            f"{repo_id} is not a local folder, and huggingface_hub is not installed to fetch it from the Hub"
        ) from error
    hub_keys = ("cache_dir", "revision", "token", "local_files_only", "force_download")
    hub_kwargs = {key: kwargs[key] for key in hub_keys if key in kwargs}
    vocab_path = Path(hf_hub_download(repo_id, VOCAB_NAME, subfolder=subfolder, **hub_kwargs))
    try:
        config_path = Path(hf_hub_download(repo_id, CONFIG_NAME, subfolder=subfolder, **hub_kwargs))
    except EntryNotFoundError:
        config_path = None
    return vocab_path, config_path
