"""Stage 2, transcripts: sidecar subtitle/text files, or any speech recogniser (Whisper via transformers).

For ``talk.mp4`` the pipeline looks for ``talk.srt`` (timed cues: each clip gets the cues it covers)
and then ``talk.txt`` (one untimed transcript: used only when the video yields a single candidate
clip, since it cannot be split). Without a sidecar, a ``SpeechRecognizer`` (omnitalker.asr; e.g.
``WhisperRecognizer`` from local weights, ``--asr MODEL``) transcribes each clip's audio.

    transcripts = Transcripts.for_video("talk.mp4", recognizer=None)
    text = transcripts.text(start, end, wave, sample_rate, num_candidates)   # None: no transcript
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...asr import SpeechRecognizer

MIN_CUE_OVERLAP = 0.5  # a cue belongs to a clip when at least half of it lies inside the clip
_TIME = re.compile(r"(\d+):(\d{2}):(\d{2})[,.](\d{1,3})")


@dataclass
class Cue:
    start: float
    end: float
    text: str


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
        if self.cues is not None:
            inside = [
                cue.text for cue in self.cues
                if min(cue.end, end) - max(cue.start, start) >= MIN_CUE_OVERLAP * max(cue.end - cue.start, 1e-3)
            ]
            return " ".join(inside) or None
        if self.whole_text is not None:
            return self.whole_text if num_candidates == 1 and self.whole_text else None
        if self.recognizer is not None:
            return self.recognizer.transcribe(wave, sample_rate).strip() or None
        return None
