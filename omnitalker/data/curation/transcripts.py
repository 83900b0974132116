"""Stage 2, transcripts: sidecar subtitle/text files, or a speech recogniser (by default the bundled Whisper).

For ``talk.mp4`` the pipeline looks for ``talk.srt`` (timed cues: each clip gets the cues it covers)
and then ``talk.txt`` (one untimed transcript: used only when the video yields a single candidate
clip, since it cannot be split). Without a sidecar, a ``SpeechRecognizer`` (omnitalker.frontend.asr: the bundled
offline Whisper tiny.en by default, ``--asr MODEL`` for another, ``--asr none`` to require sidecars)
transcribes each clip's audio; recognisers with word timestamps (``FasterWhisperRecognizer``) also give
each word's span in seconds from the clip start. A clip the recogniser refuses (no words, not English)
gets no transcript, and the reason is kept for the report.

    transcripts = Transcripts.for_video("talk.mp4", recognizer=None)
    clip = transcripts.clip(start, end, wave, sample_rate, num_candidates)   # ClipTranscript(text, words, error)
    text = transcripts.text(start, end, wave, sample_rate, num_candidates)   # just the text (None: none)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnitalker.frontend.asr import SpeechRecognizer

MIN_CUE_OVERLAP = 0.5  # a cue belongs to a clip when at least half of it lies inside the clip
_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})")


@dataclass
class Cue:
    start: float
    end: float
    text: str


@dataclass
class ClipTranscript:
    """A clip's transcript (None: none), its words [{"word", "start", "end"}] (seconds from the clip start;
    empty unless a recogniser with timestamps made it), and why the recogniser gave none (None: no error)."""

    text: str | None
    words: list[dict] = field(default_factory=list)
    error: str | None = None


def _seconds(match: re.Match) -> float:
    hours, minutes, seconds, millis = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis.ljust(3, "0")) / 1000


def parse_srt(content: str) -> list[Cue]:
    """SubRip cues (index line optional; tags like <i> removed); ValueError on a malformed time line."""
    cues = []
    for block in re.split(r"\n\s*\n", content.replace("\r\n", "\n").strip()):
        lines = [line for line in block.split("\n") if line.strip()]
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue
        times = list(_TIME.finditer(lines[timing]))
        if len(times) != 2:
            raise ValueError(f"malformed SRT time line {lines[timing]!r}; expected HH:MM:SS,mmm --> HH:MM:SS,mmm")
        text = re.sub(r"<[^>]+>", "", " ".join(lines[timing + 1 :])).strip()
        if text:
            cues.append(Cue(_seconds(times[0]), _seconds(times[1]), text))
    return cues


class Transcripts:
    """Where a video's clip texts come from: timed cues, one untimed text, or a recogniser."""

    def __init__(self, cues: list[Cue] | None = None, whole_text: str | None = None,
                 recognizer: SpeechRecognizer | None = None):
        self.cues, self.whole_text, self.recognizer = cues, whole_text, recognizer

    @property
    def source(self) -> str:
        if self.cues is not None:
            return "srt"
        if self.whole_text is not None:
            return "txt"
        return "asr" if self.recognizer is not None else "none"

    @classmethod
    def for_video(cls, video: str | Path, recognizer: SpeechRecognizer | None = None) -> Transcripts:
        video = Path(video)
        srt, txt = video.with_suffix(".srt"), video.with_suffix(".txt")
        if srt.is_file():
            return cls(cues=parse_srt(srt.read_text(encoding="utf-8-sig")))
        if txt.is_file():
            return cls(whole_text=" ".join(txt.read_text(encoding="utf-8-sig").split()))
        return cls(recognizer=recognizer)

    def text(self, start: float, end: float, wave: np.ndarray, sample_rate: int, num_candidates: int) -> str | None:
        """Transcript of [start, end) seconds of the video; `wave` is that span's audio (for ASR)."""
        return self.clip(start, end, wave, sample_rate, num_candidates).text

    def clip(self, start: float, end: float, wave: np.ndarray, sample_rate: int, num_candidates: int) -> ClipTranscript:
        """Transcript (and, from a recogniser, word timings) of [start, end) seconds; `wave` is that span's audio."""
        if self.cues is not None:
            inside = [
                cue.text for cue in self.cues
                if min(cue.end, end) - max(cue.start, start) >= MIN_CUE_OVERLAP * max(cue.end - cue.start, 1e-3)
            ]
            return ClipTranscript(" ".join(inside) or None)
        if self.whole_text is not None:
            return ClipTranscript(self.whole_text if num_candidates == 1 and self.whole_text else None)
        if self.recognizer is None:
            return ClipTranscript(None)
        try:
            if hasattr(self.recognizer, "recognize"):  # FasterWhisperRecognizer: text and word timings
                heard = self.recognizer.recognize(wave, sample_rate)
                words = [{"word": w.word, "start": w.start, "end": w.end} for w in heard.words]
                return ClipTranscript(heard.text.strip() or None, words)
            return ClipTranscript(self.recognizer.transcribe(wave, sample_rate).strip() or None)
        except ValueError as error:  # no words, not English, ...: this clip has no transcript
            return ClipTranscript(None, error=str(error))
