"""Reference handling (paper §3.3 and §4.1): turn a clip, or a photo plus a voice sample, into the prompt.

    from omnitalker.frontend.face import FaceAnalyzer
    from omnitalker.pipeline.reference import build_reference
    ref = build_reference(FaceAnalyzer(), video="ref.mp4", text="Hello there.", max_side=1024)
    ref = build_reference(FaceAnalyzer(), image="face.png", audio="voice.wav", text="...")  # static prompt
    ref.mel, ref.codes                                               # (n, 100), (n, 58) at 93.75 fps
    (``OmniTalkerPipeline.prepare_reference`` calls this with the pipeline's face analyzer.)

Before anything is decoded, the files are checked against ``omnitalker.pipeline.limits.InputLimits`` (size,
pixels, seconds, from their headers).

Steps, in order:
1. audio: the video's own track, or ``audio`` (a file, or ``(sample_rate, array)``), as 24 kHz mono;
2. edge silence is trimmed (energy below ``SILENCE_THRESHOLD_DB`` under the loudest 20 ms frame, with
   50 ms kept each side, as ``omnitalker.frontend.audio.trim_silence``), the same cut is applied to the video;
3. a clip under ``min_seconds`` (1 s) of speech is refused; one over ``max_seconds`` (10 s) is cut at
   the quietest 20 ms frame of its last second before the limit, with a warning (paper: 1-10 s);
4. quiet audio is scaled up to RMS ``TARGET_RMS`` (F5-TTS); the gain is kept so the output can be
   scaled back to the reference's loudness;
5. frames: only the kept window of a video is decoded (``omnitalker.io.video.read_video_window``: seek, stop
   at its end), each frame scaled at once to the working size (longer side <= ``max_side``; a JPEG photo is
   decoded at a reduced scale by libjpeg, ``omnitalker.io.image.load_image``);
   faces: every frame of the kept window is tracked (MediaPipe, 478 points); the identity (neutral
   shape and framing) and the visual codes come from ``omnitalker.frontend.face`` (encoded, smoothed and
   resampled to 30 fps by ``track_to_codes``); a photo gives one code frame, repeated (the paper's
   static visual prompt);
6. codes are resampled from 30 fps to the mel frame count with ``omnitalker.frontend.face.codes.retime``
   (``resample_codes``: linear, anti-aliased, angle-unwrapped, the frame count fixed exactly); a video shorter
   than its separate voice sample is first played back and forth to the voice's length
   (``extend_by_reflection``), so the prompt does not end on a frozen face;
7. the renderer's source image is the reference's most typical frame (``FaceIdentity.reference_index``,
   ``typical_frame``: near the neutral face, looking ahead, the head in its usual pose); a video reference also
   keeps up to ``MAX_RENDER_FRAMES`` of its frames, spread over its ranges of mouth and eye openings
   (``render_frames``), for what one frame cannot show (the warp renderer draws the mouth interior and the lids of
   a blinking or widened eye from them: ``omnitalker/render/mouth.py``, ``omnitalker/render/eye_bank.py``).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import (
    SAMPLE_RATE,
    SILENCE_FRAME_SECONDS,
    TARGET_RMS,
    log_mel_spectrogram,
    rms_normalize,
    silence_bounds,
)
from omnitalker.io.audio import load_audio
from omnitalker.io.image import IMAGE_SUFFIXES, load_image
from omnitalker.io.video import read_video_window

MIN_REFERENCE_SECONDS = 1.0  # paper: the reference is 1-10 s
MAX_REFERENCE_SECONDS = 10.0
CUT_SEARCH_SECONDS = 1.0  # a too-long clip is cut at the quietest point of this last stretch
SILENT_RMS = 1e-4  # a clip whose loudest 20 ms frame is below this RMS is silence (-80 dBFS)
PHOTO_SILENCE_SECONDS = 1.0  # prompt length for a photo with no voice sample (lip-sync): silence
MAX_RENDER_FRAMES = 36  # frames of a video reference kept for the renderer (~64 MB at 1024 x 576)
# Of them, up to this many (and at most a third) at evenly spaced eye openings from its most closed to its widest (the
# renderer's eye bank: it draws only eyes opened otherwise than the source frame's, and from an entry opened like
# them), the rest spread over its mouth openings (the mouth bank).
EYE_RENDER_FRAMES = 12


@dataclass
class OmniTalkerReference:
    """A prepared style reference: the in-context prompt of every generation that uses it.

    wave: (nw,) float32 24 kHz, trimmed, at most max_seconds, loudness-normalised.
    mel: (n, 100) its log-mel (93.75 frames per second). codes: (n, 58) visual codes on the same frames.
    text: the transcript of `wave` (None if unknown). gain: loudness gain applied to `wave` (>= 1).
    identity: the face's ``FaceIdentity``; image (H, W, 3) uint8 and landmarks (478, 3) px: the frame
    the renderer warps. static: True for a photo reference. frames (K, H, W, 3) uint8 and frame_landmarks
    (K, 478, 3) px: more frames of a video reference for the renderer (None for a photo).
    """

    wave: torch.Tensor
    mel: torch.Tensor
    codes: torch.Tensor
    text: str | None
    identity: Any
    image: np.ndarray
    landmarks: np.ndarray
    gain: float = 1.0
    static: bool = False
    frames: np.ndarray | None = None
    frame_landmarks: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return self.mel.shape[0]

    @property
    def seconds(self) -> float:
        return self.wave.shape[0] / SAMPLE_RATE


# ------------------------------------------------------------------------------------------------ audio


def speech_bounds(wave: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> tuple[int, int] | None:
    """(start, end) samples of the speech in `wave` with the edge silence removed; None if all silent.

    The rule of ``omnitalker.frontend.audio.trim_silence``; the offsets are needed to cut the video in step.
    """
    return silence_bounds(wave, sample_rate, floor_rms=SILENT_RMS)


def _quietest_cut(wave: torch.Tensor, limit: int, sample_rate: int) -> int:
    """A cut point <= limit samples: the start of the quietest 20 ms frame in the last second before it."""
    frame = max(1, round(SILENCE_FRAME_SECONDS * sample_rate))
    first = max(0, limit - round(CUT_SEARCH_SECONDS * sample_rate))
    n_frames = (limit - first) // frame
    if n_frames < 2:
        return limit
    window = wave[first : first + n_frames * frame].float().view(n_frames, frame)
    quietest = int(window.pow(2).mean(dim=1).argmin())
    return first + (quietest + 1) * frame  # keep the quiet frame itself: it ends the prompt softly


def load_voice(
    source: Any,
    what: str = "reference_audio",
    min_seconds: float = MIN_REFERENCE_SECONDS,
    max_seconds: float | None = MAX_REFERENCE_SECONDS,
    target_rms: float = TARGET_RMS,
) -> tuple[torch.Tensor, int, float]:
    """Load, trim, check and normalise a voice: returns (wave (nw,), start sample in the source, gain).

    `what` names the argument in error messages. `max_seconds=None` keeps everything (driving speech).
    """
    wave = load_media_audio(source, what)
    bounds = speech_bounds(wave)
    if bounds is None:
        raise ValueError(f"{what} is silent: pass a clip in which the person speaks")
    start, end = bounds
    if (end - start) / SAMPLE_RATE < min_seconds:
        raise ValueError(
            f"{what} has only {(end - start) / SAMPLE_RATE:.2f} s of sound after trimming silence; "
            f"pass at least {min_seconds:g} s of speech"
        )
    if max_seconds is not None and (end - start) / SAMPLE_RATE > max_seconds:
        end = start + _quietest_cut(wave[start:end], round(max_seconds * SAMPLE_RATE), SAMPLE_RATE)
        warnings.warn(
            f"{what} is longer than {max_seconds:g} s: only its first {(end - start) / SAMPLE_RATE:.2f} s are "
            "used as the reference (the paper's 1-10 s). If you typed the transcript, it must match this part.",
            stacklevel=3,
        )
    wave, gain = rms_normalize(wave[start:end], target_rms)
    return wave.float().contiguous(), start, gain


def _check_watermark_room(shape: tuple[int, ...], what: str, kind: str) -> None:
    """The output has the reference's size (never upscaled): it must have room for the frame watermark."""
    from omnitalker.io.watermark import frame_fits_watermark, frame_min_side

    height, width = shape[:2]
    if not frame_fits_watermark(height, width):
        side = frame_min_side()
        raise ValueError(f"{what} is {width}x{height} px, too small for the invisible watermark every output "
                         f"carries: use a {kind} of at least {side}x{side} px")


def load_media_audio(source: Any, what: str) -> torch.Tensor:
    """``load_audio`` with errors that name the pipeline argument and the accepted forms."""
    if isinstance(source, (np.ndarray, torch.Tensor)):
        raise ValueError(
            f"{what} is an array without a sample rate: pass (sample_rate, array), e.g. (24000, wave), "
            "or a file path"
        )
    if not isinstance(source, (str, os.PathLike, tuple)):
        raise ValueError(
            f"{what} must be a file path or a (sample_rate, array) tuple, got {type(source).__name__}"
        )
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"{what}={os.fspath(source)!r} is an image, not audio: pass a voice recording")
    try:
        return load_audio(source)
    except FileNotFoundError as error:
        raise ValueError(f"{what}: file not found: {os.fspath(source)} (check the path)") from error
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error


def reference_mel(wave: torch.Tensor) -> torch.Tensor:
    """(nw,) -> (n, 100) log-mel, n = 1 + nw // 256."""
    return log_mel_spectrogram(wave)[0].transpose(0, 1).contiguous()  # n 100


# ------------------------------------------------------------------------------------------------ frames


def load_reference_video(video, start: float, end: float, max_side: int | None) -> tuple[np.ndarray, float]:
    """The frames of the kept window (``omnitalker.io.video.read_video_window``), errors naming the argument."""
    if not isinstance(video, (str, os.PathLike)):
        raise ValueError(f"reference_video must be a file path, got {type(video).__name__}")
    if Path(video).suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"reference_video={os.fspath(video)!r} is an image: pass it as reference_image=... with a "
                         "voice sample")
    return read_video_window(video, start, end, max_side=max_side, what="reference_video")


def load_reference_image(source: Any, max_side: int | None) -> np.ndarray:
    """The photo (``omnitalker.io.image.load_image``: upright, scaled), errors naming the argument."""
    if not isinstance(source, (str, os.PathLike, np.ndarray, torch.Tensor)) and not hasattr(source, "convert"):
        raise ValueError(f"reference_image must be a path, a PIL image or an RGB array, got {type(source).__name__}")
    try:
        return load_image(source, max_side=max_side)
    except ValueError as error:
        raise ValueError(f"reference_image: {error}") from error


# ------------------------------------------------------------------------------------------------ faces


def build_reference(
    face_analyzer,
    video=None,
    image=None,
    audio=None,
    text: str | None = None,
    min_seconds: float = MIN_REFERENCE_SECONDS,
    max_seconds: float = MAX_REFERENCE_SECONDS,
    max_side: int | None = None,
    limits=None,
    headers_checked: bool = False,
) -> OmniTalkerReference:
    """The whole reference analysis (module docstring); `face_analyzer` is an ``omnitalker.frontend.face.FaceAnalyzer``.

    `video` with its own audio (or `audio` for a silent video); or `image` with `audio` (a voice sample);
    or `image` alone, whose prompt is then ``PHOTO_SILENCE_SECONDS`` of silence (for audio-driven use).
    `max_side`: the frames are decoded at a working size whose longer side is at most this (None: full
    size); the face is tracked and the renderer's source frame kept at that size. `limits`: an
    ``omnitalker.pipeline.limits.InputLimits`` checked on the file headers before anything is decoded (None: the defaults;
    `headers_checked`: the caller did, with `max_side`: a pipeline call's plan).
    """
    from omnitalker.frontend.face.codes import (
        CODE_FPS,
        FaceIdentity,
        encode_codes,
        extend_by_reflection,
        retime,
        track_to_codes,
    )
    from omnitalker.pipeline.limits import as_limits, check_max_side

    if not headers_checked:
        check_max_side(max_side)
        as_limits(limits).check_inputs(reference_video=video, reference_image=image, reference_audio=audio)
    if video is not None:
        wave, start, gain = load_voice(video if audio is None else audio,
                                       "reference_video" if audio is None else "reference_audio",
                                       min_seconds, max_seconds)
        begin = start / SAMPLE_RATE if audio is None else 0.0  # a separate voice is aligned to the video start
        frames, fps = load_reference_video(video, begin, begin + wave.shape[0] / SAMPLE_RATE, max_side)
        _check_watermark_room(frames[0].shape, "reference_video", "video")
        track = _analyze(face_analyzer.analyze_video, frames, fps=fps)
        static = False
    else:
        pixels = load_reference_image(image, max_side)
        _check_watermark_room(pixels.shape, "reference_image", "photo")
        if audio is not None:
            wave, _, gain = load_voice(audio, "reference_audio", min_seconds, max_seconds)
        else:
            wave, gain = torch.zeros(round(PHOTO_SILENCE_SECONDS * SAMPLE_RATE)), 1.0
        frames, fps = pixels[None], None
        track = _analyze(face_analyzer.analyze_image, pixels)
        static = True

    identity = FaceIdentity.from_track(track)
    mel = reference_mel(wave)  # n 100
    if static:
        codes = encode_codes(track.landmarks, identity)  # 1 58
        codes_mel = torch.from_numpy(np.repeat(codes[:1], len(mel), axis=0))  # the paper's static prompt
    else:
        codes = track_to_codes(track, identity, fps=CODE_FPS)  # T30 58: smoothed, at the paper's 30 fps
        # A video shorter than its separate voice sample is played back and forth to the voice's length, not held
        codes = extend_by_reflection(codes, math.ceil(len(mel) * CODE_FPS / MEL_FRAME_RATE) + 1)  # T30' 58
        codes_mel = torch.from_numpy(retime(codes, CODE_FPS, MEL_FRAME_RATE, len(mel)))  # n 58
    reference_index = min(identity.reference_index, len(frames) - 1)
    kept = None if static else render_frames(track.landmarks, reference_index)
    return OmniTalkerReference(
        wave=wave,
        mel=mel,
        codes=codes_mel.float(),
        text=text,
        identity=identity,
        image=np.ascontiguousarray(frames[reference_index]),
        landmarks=track.landmarks[reference_index],
        gain=gain,
        static=static,
        frames=None if kept is None else np.stack([frames[i] for i in kept]),
        frame_landmarks=None if kept is None else track.landmarks[kept],
    )


def render_frames(landmarks: np.ndarray, keep: int, limit: int = MAX_RENDER_FRAMES,
                  eye_frames: int = EYE_RENDER_FRAMES) -> np.ndarray:
    """Indices (sorted) of at most `limit` frames of a track (T, 478, 3): `eye_frames` of them (at most a third)
    nearest evenly spaced eye openings from its most closed to its widest, the rest spread evenly over the order of
    its mouth openings, frame `keep` (the renderer's source frame) always among them."""
    from omnitalker.frontend.face.codes import eye_openness, fit_pose, mouth_opening

    if len(landmarks) <= limit:
        return np.arange(len(landmarks))
    eyes = eye_openness(landmarks)
    targets = np.linspace(eyes.min(), eyes.max(), min(eye_frames, limit // 3))
    picks = set(np.argmin(np.abs(eyes[None] - targets[:, None]), axis=1).tolist()) | {keep}
    order = np.argsort(mouth_opening(fit_pose(landmarks)[3]), kind="stable")  # least to most open
    count = limit - len(picks)
    picks |= set(order[np.round(np.linspace(0, len(order) - 1, count)).astype(int)].tolist()) if count > 0 else set()
    return np.array(sorted(picks))


def _analyze(method, *args, **kwargs):
    """Run the face analyzer, naming the argument to fix in its errors."""
    what = "reference_image" if "image" in method.__name__ else "reference_video"
    try:
        return method(*args, **kwargs)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error
