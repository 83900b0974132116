"""Stage-3 filters of the curation pipeline: named thresholds and the reason each dropped candidate got.

A candidate clip is one speech region inside a single-face shot. Filters run in the order of
``FILTER_ORDER`` and the first one that fails names the drop reason (the report counts first reasons).
Shots that yield no candidate at all are counted under NO_FACE / MULTIPLE_FACES / NO_SPEECH / TOO_SHORT.
"""

from __future__ import annotations

from enum import Enum

MIN_CLIP_SECONDS = 1.0  # paper: clips of 1-30 s
MAX_CLIP_SECONDS = 30.0
# Characters of transcript per second of audio. Conversational English runs ~12-18 chars/s; far outside
# this band the transcript does not belong to the clip (wrong cue, missed words, music).
MIN_CHARS_PER_SECOND = 3.0
MAX_CHARS_PER_SECOND = 30.0
MIN_FACE_AREA_FRACTION = 0.15  # paper: face box > 15 % of the frame area (median over the clip)
MIN_SPEAKER_CORRELATION = 0.2  # active-speaker check (active_speaker.py)
MIN_SNR_DB = 15.0  # audio quality cutoff for the SNR estimate (quality.py)


class DropReason(str, Enum):
    """Why a shot or candidate clip was not kept (values are the report's keys)."""

    NO_FACE = "no_face"  # a scene without any tracked face long enough to be a shot
    MULTIPLE_FACES = "multiple_faces"  # stretches with more than one face (not single-face shots)
    NO_SPEECH = "no_speech"  # a single-face shot without voice activity
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    FACE_TOO_SMALL = "face_too_small"
    NOT_SPEAKING = "not_speaking"  # voice present but the tracked face's mouth does not follow it
    NO_TRANSCRIPT = "no_transcript"
    TEXT_RATE = "text_rate"  # characters per second outside the bounds
    LOW_AUDIO_QUALITY = "low_audio_quality"


FILTER_ORDER = (
    DropReason.TOO_SHORT,
    DropReason.TOO_LONG,
    DropReason.FACE_TOO_SMALL,
    DropReason.NOT_SPEAKING,
    DropReason.NO_TRANSCRIPT,
    DropReason.TEXT_RATE,
    DropReason.LOW_AUDIO_QUALITY,
)


def chars_per_second(text: str, seconds: float) -> float:
    """Non-space characters per second (spaces and punctuation runs inflate nothing in Chinese text)."""
    return sum(not char.isspace() for char in text) / max(seconds, 1e-9)


def failure_before_transcript(seconds: float, face_area_fraction: float, speaker_correlation: float) -> DropReason | None:
    """The filters that come before the transcript (so ASR runs only on clips that can still be kept)."""
    if seconds < MIN_CLIP_SECONDS:
        return DropReason.TOO_SHORT
    if seconds > MAX_CLIP_SECONDS:
        return DropReason.TOO_LONG
    if face_area_fraction < MIN_FACE_AREA_FRACTION:
        return DropReason.FACE_TOO_SMALL
    if speaker_correlation < MIN_SPEAKER_CORRELATION:
        return DropReason.NOT_SPEAKING
    return None


def first_failure(
    seconds: float,
    face_area_fraction: float,
    speaker_correlation: float,
    text: str | None,
    snr_db: float,
) -> DropReason | None:
    """The first filter (in FILTER_ORDER) a candidate fails, or None when it is kept."""
    early = failure_before_transcript(seconds, face_area_fraction, speaker_correlation)
    if early is not None:
        return early
    if not text:
        return DropReason.NO_TRANSCRIPT
    if not MIN_CHARS_PER_SECOND <= chars_per_second(text, seconds) <= MAX_CHARS_PER_SECOND:
        return DropReason.TEXT_RATE
    if snr_db < MIN_SNR_DB:
        return DropReason.LOW_AUDIO_QUALITY
    return None
