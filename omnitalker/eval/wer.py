"""Word error rate with Whisper's English text normalisation: the standard way to read an ASR transcript.

    from omnitalker.eval.wer import normalize_english, word_error_rate
    word_error_rate("Twenty-five apples, please!", "25 apples please")       # 0.0
    word_error_rate(["ref one", "ref two"], ["hyp one", "hyp two"])          # corpus WER (edits / ref words)

Normalisation (``transformers``' ``EnglishTextNormalizer``, the one of the Whisper paper, offline): lower
case; punctuation and symbols removed; spoken numbers become digits ("twenty five" -> "25", so either
spelling matches); contractions and common abbreviations expanded ("I'm" -> "i am", "Mr." -> "mister").
The British -> American spelling table of the Whisper release is not bundled (it lives on the Hub), so
"colour" and "color" stay different words. WER = word edit distance (Levenshtein) / reference words,
summed over utterances: the same counting as ``jiwer.wer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .recognizer import edit_distance


@lru_cache(maxsize=1)
def _normalizer():
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})  # no spelling table offline (module docstring)


def normalize_english(text: str) -> str:
    """Whisper's English normalisation: case, punctuation, numbers, contractions (module docstring)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a transcript string, got {type(text).__name__}")
    return " ".join(_normalizer()(text).split())


def word_edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) after normalisation."""
    ref_words, hyp_words = normalize_english(reference).split(), normalize_english(hypothesis).split()
    return edit_distance(ref_words, hyp_words), len(ref_words)


def word_error_rate(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> float:
    """Corpus WER: total word edits / total reference words (normalised texts; lists are paired in order).

    An empty normalised reference is an error (a WER of nothing is undefined), not a silent 0 or inf.
    """
    references = [reference] if isinstance(reference, str) else list(reference)
    hypotheses = [hypothesis] if isinstance(hypothesis, str) else list(hypothesis)
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references for {len(hypotheses)} hypotheses: pair them one to one")
    edits = words = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        item_edits, item_words = word_edits(ref, hyp)
        edits, words = edits + item_edits, words + item_words
    if words == 0:
        raise ValueError("the reference has no words after normalisation: WER needs a reference transcript")
    return edits / words


# Intervals: a percentile bootstrap over the items (scipy.stats.bootstrap). Corpus WER is a ratio of sums, and
# with a few dozen items one sentence moves it by several hundredths: the interval says how far to trust a
# difference. The percentile method, because BCa's jackknife is unstable for ratios of sums on small samples.
CONFIDENCE_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000


def _bootstrap(statistic, samples: Sequence[Sequence[float]], seed: int) -> tuple[float, float]:
    from scipy.stats import bootstrap

    arrays = [np.asarray(sample, dtype=np.float64) for sample in samples]
    if len(arrays[0]) < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 items, got {len(arrays[0])}")
    result = bootstrap(arrays, statistic, paired=True, vectorized=True, n_resamples=BOOTSTRAP_RESAMPLES,
                       confidence_level=CONFIDENCE_LEVEL, method="percentile", random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def wer_interval(edits: Sequence[int], words: Sequence[int], seed: int = 0) -> tuple[float, float]:
    """95 % interval of the corpus WER sum(edits) / sum(words) over items (per-item edits and reference words)."""
    return _bootstrap(lambda e, w, axis=-1: e.sum(axis) / w.sum(axis), [edits, words], seed)


def wer_ratio_interval(edits: Sequence[int], baseline_edits: Sequence[int], seed: int = 0) -> tuple[float, float]:
    """95 % interval of WER / baseline WER on the same items (paired: both read the same reference words, so the
    ratio is sum(edits) / sum(baseline_edits)); inf where a resample has no baseline edit."""

    def ratio(e, b, axis=-1):
        num, den = e.sum(axis), b.sum(axis)
        return np.where(den > 0, num / np.maximum(den, 1e-12), np.inf)

    return _bootstrap(ratio, [edits, baseline_edits], seed)
