"""espeak-ng through its C library: speech audio *and* phoneme events with their timings.

The synthetic talking corpus needs, for every utterance, the waveform and the
phoneme timeline that produced it, so that mouth motion can be driven by the same phonemes.
The `espeak-ng` command line prints phonemes (`-x`) but not their times; the C library reports
`espeakEVENT_PHONEME` events with the audio position of each phoneme, so we call it with ctypes.
(No maintained Python binding exposes phoneme events: `py-espeak-ng` shells out to the CLI and
`phonemizer` returns phoneme strings without timings.)

    python -m omnitalker.frontend.espeak "Hello world." --voice en-us+f2 --out hello.wav

The library and its data (voices, en and cmn dictionaries) come from the `espeakng-loader` wheel
(libespeak-ng 1.52), so no system package is needed; a system libespeak-ng is used only when the wheel
is missing.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import threading
from dataclasses import dataclass, field

import numpy as np

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_SENTENCE = 2
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_PARAM_RATE = 1  # words per minute, 80..450
_PARAM_VOLUME = 2
_PARAM_PITCH = 3  # base pitch 0..100
_PARAM_RANGE = 4  # pitch range 0..100
_BUFFER_MS = 200  # synthesis callback granularity
NOISE_SEED = 0  # libespeak-ng 1.52 seeds its noise from the clock; we reseed it so audio is reproducible

DEFAULT_RATE_WPM = 175
DEFAULT_PITCH = 50
DEFAULT_RANGE = 50


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the utterance
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass
class PhonemeEvent:
    """One phoneme as espeak-ng spoke it: mnemonic (e.g. ``"oU"``) and its time span in seconds."""

    phoneme: str
    start: float
    end: float


@dataclass
class EspeakUtterance:
    """Audio (float32 mono in [-1, 1]) plus the phoneme and word timelines of one utterance."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[PhonemeEvent] = field(default_factory=list)
    word_starts: list[float] = field(default_factory=list)  # seconds
    sentence_starts: list[float] = field(default_factory=list)  # seconds

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class EspeakNG:
    """A process-wide handle on libespeak-ng (the library keeps global state, so calls are serialised).

    Args:
        library: path or name of the shared library; default: the one in the ``espeakng-loader`` wheel.
        data_path: its ``espeak-ng-data`` folder; default: the wheel's (None with a system library).
    """

    _lock = threading.Lock()
    _instance: EspeakNG | None = None

    def __init__(self, library: str | None = None, data_path: str | None = None):
        if library is None:
            library, data_path = _bundled_library()
        try:
            self._lib = ctypes.CDLL(library)
        except OSError as err:
            raise RuntimeError(
                f"could not load the espeak-ng library ({library}): `pip install espeakng-loader` "
                "(it ships libespeak-ng and its data)"
            ) from err
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
        ]
        self._lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, data_path.encode() if data_path else None,
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {rate})")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str]] = []  # (type, audio_position_ms, phoneme)
        self._callback = _Callback(self._on_synth)  # keep a reference: the library holds a raw pointer
        self._lib.espeak_SetSynthCallback(self._callback)

    @classmethod
    def get(cls) -> EspeakNG:
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _reseed(self) -> None:
        """Fix the noise sources (breathy / klatt variants): espeak's own seed and libc's ``rand``."""
        if hasattr(self._lib, "espeak_ng_SetRandSeed"):
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(NOISE_SEED))
        ctypes.CDLL(None).srand(ctypes.c_uint(NOISE_SEED))

    def _on_synth(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            name = ev.id.string.decode("utf-8", "replace") if ev.type == _EVENT_PHONEME else ""
            self._events.append((ev.type, ev.audio_position, name))
            i += 1
        return 0  # 0 = continue synthesis

    def synthesize(
        self,
        text: str,
        voice: str = "en-us",
        rate: int = DEFAULT_RATE_WPM,
        pitch: int = DEFAULT_PITCH,
        pitch_range: int = DEFAULT_RANGE,
    ) -> EspeakUtterance:
        """Speak ``text`` with ``voice`` (e.g. ``"en-us+f2"``, ``"cmn-latn-pinyin"``).

        Chinese must be given as tone-numbered pinyin with the ``cmn-latn-pinyin`` voice.
        """
        if not text or not text.strip():
            raise ValueError("espeak-ng needs non-empty text")
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice!r}; list them with `espeak-ng --voices`")
            for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range)):
                self._lib.espeak_SetParameter(param, int(value), 0)
            self._reseed()
            self._chunks, self._events = [], []
            data = text.encode("utf-8") + b"\0"
            err = self._lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if err != 0:
                raise RuntimeError(f"espeak_Synth failed with error {err}")
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []

        audio = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32) / 32768.0
        duration = len(audio) / self.sample_rate
        phonemes: list[PhonemeEvent] = []
        words, sentences = [], []
        for kind, pos_ms, name in events:
            t = pos_ms / 1000.0
            if kind == _EVENT_PHONEME and name:
                if phonemes:
                    phonemes[-1].end = t
                phonemes.append(PhonemeEvent(name, t, duration))
            elif kind == _EVENT_WORD:
                words.append(t)
            elif kind == _EVENT_SENTENCE:
                sentences.append(t)
            elif kind in (_EVENT_END, _EVENT_MSG_TERMINATED) and phonemes:
                phonemes[-1].end = min(phonemes[-1].end, max(t, phonemes[-1].start))
        return EspeakUtterance(audio, self.sample_rate, phonemes, words, sentences)


def _bundled_library() -> tuple[str, str | None]:
    """(library, data folder) from the ``espeakng-loader`` wheel, else a system libespeak-ng."""
    try:
        import espeakng_loader
    except ImportError:
        return ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1", None
    return str(espeakng_loader.get_library_path()), str(espeakng_loader.get_data_path())


def _synthesize_request(request: dict) -> EspeakUtterance:
    return EspeakNG.get().synthesize(**request)


def synthesize_many(requests: list[dict], workers: int = 1) -> list[EspeakUtterance]:
    """Synthesize each request (keyword arguments of :meth:`EspeakNG.synthesize`) in a fresh process.

    libespeak-ng carries synthesis state (its noise generators) from one utterance to the next inside
    a process, so the same text spoken twice in one process differs slightly. Each utterance is
    therefore spoken by a process forked from this one, which never initialises the library itself:
    the audio is a pure function of the request, as with the ``espeak-ng`` command. ``workers``
    processes run in parallel.
    """
    import multiprocessing

    if EspeakNG._instance is not None:
        raise RuntimeError("espeak-ng was initialised in this process; forked workers would inherit its state")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(max(1, min(workers, len(requests))), maxtasksperchild=1) as pool:
        return pool.map(_synthesize_request, requests, chunksize=1)


def synthesize(text: str, voice: str = "en-us", **kwargs) -> EspeakUtterance:
    """Speak one utterance (in a fresh forked process, so the output is reproducible)."""
    return synthesize_many([dict(text=text, voice=voice, **kwargs)])[0]


def main() -> None:
    parser = argparse.ArgumentParser(description="Speak text with espeak-ng and print its phoneme timeline.")
    parser.add_argument("text")
    parser.add_argument("--voice", default="en-us")
    parser.add_argument("--rate", type=int, default=DEFAULT_RATE_WPM)
    parser.add_argument("--pitch", type=int, default=DEFAULT_PITCH)
    parser.add_argument("--out", help="write the audio to this wav file")
    args = parser.parse_args()
    utt = synthesize(args.text, voice=args.voice, rate=args.rate, pitch=args.pitch)
    for p in utt.phonemes:
        print(f"{p.start:7.3f} {p.end:7.3f}  {p.phoneme}")
    print(f"{utt.duration:.3f} s at {utt.sample_rate} Hz")
    if args.out:
        import soundfile

        soundfile.write(args.out, utt.audio, utt.sample_rate)


if __name__ == "__main__":
    main()
