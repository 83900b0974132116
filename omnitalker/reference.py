"""Reference handling (paper §3.3 and §4.1): turn a clip, or a photo plus a voice sample, into the prompt.

    from omnitalker.face import FaceAnalyzer
    from omnitalker.reference import build_reference
    ref = build_reference(FaceAnalyzer(), video="ref.mp4", text="Hello there.", max_side=1024)
    ref = build_reference(FaceAnalyzer(), image="face.png", audio="voice.wav", text="...")  # static prompt
    ref.mel, ref.codes                                               # (n, 100), (n, 58) at 93.75 fps
    (``OmniTalkerPipeline.prepare_reference`` calls this with the pipeline's face analyzer.)

Before anything is decoded, the files are checked against ``omnitalker.limits.InputLimits`` (size,
pixels, seconds, from their headers).

Steps, in order:
1. audio: the video's own track, or ``audio`` (a file, or ``(sample_rate, array)``), as 24 kHz mono;
2. edge silence is trimmed (energy below ``SILENCE_THRESHOLD_DB`` under the loudest 20 ms frame, with
   50 ms kept each side, as ``omnitalker.audio.trim_silence``), the same cut is applied to the video;
3. a clip under ``min_seconds`` (1 s) of speech is refused; one over ``max_seconds`` (10 s) is cut at
   the quietest 20 ms frame of its last second before the limit, with a warning (paper: 1-10 s);
4. quiet audio is scaled up to RMS ``TARGET_RMS`` (F5-TTS); the gain is kept so the output can be
   scaled back to the reference's loudness;
5. frames: only the kept window of a video is decoded (seek, stop at its end), each frame scaled at once to
   the working size (longer side <= ``max_side``; a JPEG photo is decoded at a reduced scale by libjpeg);
   faces: every frame of the kept window is tracked (MediaPipe, 478 points); the identity (neutral
   shape and framing) and the visual codes come from ``omnitalker.face`` (encoded, smoothed and
   resampled to 30 fps by ``track_to_codes``); a photo gives one code frame, repeated (the paper's
   static visual prompt);
6. codes are resampled from 30 fps to the mel frame count with
   ``omnitalker.face.codes.resample_codes`` (linear, anti-aliased, angle-unwrapped). Every rate change
   of the pipeline (video fps -> 93.75 mel fps -> 30 fps codes / 25 fps output video) goes through
   ``retime`` below, which fixes the frame count exactly;
7. the renderer's source image is the reference frame nearest the neutral face
   (``FaceIdentity.reference_index``).
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

from omnitalker.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.audio import (
    SAMPLE_RATE,
    SILENCE_FRAME_SECONDS,
    TARGET_RMS,
    load_audio,
    log_mel_spectrogram,
    rms_normalize,
    silence_bounds,
)

MIN_REFERENCE_SECONDS = 1.0  # paper: the reference is 1-10 s
MAX_REFERENCE_SECONDS = 10.0
CUT_SEARCH_SECONDS = 1.0  # a too-long clip is cut at the quietest point of this last stretch
SILENT_RMS = 1e-4  # a clip whose loudest 20 ms frame is below this RMS is silence (-80 dBFS)
PHOTO_SILENCE_SECONDS = 1.0  # prompt length for a photo with no voice sample (lip-sync): silence
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
JPEG_SUFFIXES = {".jpg", ".jpeg"}
EXIF_ORIENTATION_TAG = 0x0112
MAX_REFERENCE_FPS = 60.0  # faster clips (slow motion) are thinned out to this; the codes are 30 fps anyway
MIN_FRAME_INTERVAL_SHARE = 0.9  # a frame is skipped when closer than this share of 1 / MAX_REFERENCE_FPS
SEEK_MARGIN_SECONDS = 1.0  # seek this far before the window (to a keyframe at or before it), then decode on


@dataclass
class OmniTalkerReference:
    """A prepared style reference: the in-context prompt of every generation that uses it.

    wave: (nw,) float32 24 kHz, trimmed, at most max_seconds, loudness-normalised.
    mel: (n, 100) its log-mel (93.75 frames per second). codes: (n, 58) visual codes on the same frames.
    text: the transcript of `wave` (None if unknown). gain: loudness gain applied to `wave` (>= 1).
    identity: the face's ``FaceIdentity``; image (H, W, 3) uint8 and landmarks (478, 3) px: the frame
    the renderer warps. static: True for a photo reference.
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

    @property
    def num_frames(self) -> int:
        return self.mel.shape[0]

    @property
    def seconds(self) -> float:
        return self.wave.shape[0] / SAMPLE_RATE


# ------------------------------------------------------------------------------------------------ rates


def retime(sequence: torch.Tensor | np.ndarray, src_fps: float, dst_fps: float, num_frames: int | None = None):
    """Resample a frame sequence (T, D) from `src_fps` to `dst_fps` with exactly `num_frames` frames.

    Frame k sits at time k / fps (frame starts). Linear interpolation, low-passed first when
    downsampling, holding the last frame past the end (``omnitalker.face.codes.resample_codes``).
    Returns the input's type (tensor in -> tensor out, same device and dtype).
    """
    from omnitalker.face.codes import resample_codes

    is_tensor = isinstance(sequence, torch.Tensor)
    array = sequence.detach().cpu().double().numpy() if is_tensor else np.asarray(sequence, np.float64)
    if num_frames is None:
        num_frames = max(1, round(len(array) * dst_fps / src_fps))
    if len(array) == 1:  # one frame (a photo) is constant in time
        out = np.repeat(array.astype(np.float32), num_frames, axis=0)
    else:
        out = resample_codes(array, src_fps, dst_fps, num_frames=num_frames)
    if is_tensor:
        return torch.from_numpy(out).to(device=sequence.device, dtype=sequence.dtype)
    return out


def video_frame_count(num_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames that cover `num_samples` of audio (rounded: durations agree within half a frame)."""
    return max(1, round(num_samples / sample_rate * fps))


# ------------------------------------------------------------------------------------------------ audio


def speech_bounds(wave: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> tuple[int, int] | None:
    """(start, end) samples of the speech in `wave` with the edge silence removed; None if all silent.

    The rule of ``omnitalker.audio.trim_silence``; the offsets are needed to cut the video in step.
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
        raise ValueError(f"{what}: file not found: {os.fspath(source)}") from error
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error


def reference_mel(wave: torch.Tensor) -> torch.Tensor:
    """(nw,) -> (n, 100) log-mel, n = 1 + nw // 256."""
    return log_mel_spectrogram(wave)[0].transpose(0, 1).contiguous()  # n 100


# ------------------------------------------------------------------------------------------------ video


def read_video_window(
    path: str | os.PathLike, start: float, end: float | None, max_side: int | None = None
) -> tuple[np.ndarray, float]:
    """RGB frames (T, H, W, 3) uint8 shown between `start` and `end` seconds, and their frame rate.

    Streamed: the decoder seeks to just before `start` and stops at `end`, each frame is scaled at once so
    its longer side is at most `max_side` (None: full size; PyAV's area filter) and frames closer together
    than 1 / ``MAX_REFERENCE_FPS`` are skipped, so a long 4K clip costs what its used seconds cost at the
    working size. Times count from the video stream's first frame; a rotation in the container's display
    matrix is applied (as ``omnitalker.face.video.read_video``).
    """
    import av

    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(f"reference_video={str(path)!r} is an image: pass it as reference_image=... with a voice sample")
    if not path.is_file():
        raise ValueError(f"reference_video: video file {path} does not exist")
    try:
        frames, times, rate = _decode_window(path, start, end, max_side, seek=start > SEEK_MARGIN_SECONDS)
    except _SeekFailed:  # a container without an index: decode from the start (still streamed and scaled)
        frames, times, rate = _decode_window(path, start, end, max_side, seek=False)
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise ValueError(f"reference_video: could not read {path} as a video ({error}). Use a video file such as "
                         ".mp4, .mov, .mkv, .webm") from error
    if not frames:
        raise ValueError(f"reference_video: {path} has no frames between {start:.2f} s and {end} s")
    times = np.asarray(times, np.float64)
    order = np.argsort(times, kind="stable")  # B-frames may come out of presentation order
    keep = order[np.concatenate([[True], np.diff(times[order]) > 0])]  # drop duplicated timestamps
    stacked = np.stack([frames[i] for i in keep])
    if len(keep) > 1:
        fps = (len(keep) - 1) / float(times[keep[-1]] - times[keep[0]])
    else:
        fps = min(rate, MAX_REFERENCE_FPS)
    return stacked, fps


class _SeekFailed(Exception):
    pass


def _decode_window(path: Path, start: float, end: float | None, max_side: int | None, seek: bool):
    """Frames (list of (H, W, 3) uint8), their times in seconds from the stream's first frame, the stream's rate."""
    import av

    from omnitalker.face.video import rotate_upright
    from omnitalker.io.video import RGBConverter
    from omnitalker.limits import fit_within

    converter = RGBConverter()
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"reference_video: {path} has no video stream (audio only?); a video of the speaker "
                             "is needed")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or MAX_REFERENCE_FPS)
        half_frame = 0.5 / rate
        origin = None
        if seek:
            if stream.start_time is None or stream.time_base is None:
                raise _SeekFailed
            origin = float(stream.start_time * stream.time_base)
            target = int((origin + start - SEEK_MARGIN_SECONDS) / stream.time_base)
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError as error:
                raise _SeekFailed from error
        frames, times, last_kept = [], [], -math.inf
        size = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                time = float(frame.time) if frame.time is not None else index / rate
                if origin is None:
                    origin = time
                time -= origin
                if end is not None and time + half_frame >= end:
                    if time - half_frame > end:
                        break  # past the window: stop decoding
                    continue
                if time + half_frame < start or time - last_kept < MIN_FRAME_INTERVAL_SHARE / MAX_REFERENCE_FPS:
                    continue
                if size is None:
                    size = fit_within(frame.width, frame.height, max_side)
                pixels = converter.to_rgb(frame, size, interpolation="AREA")
                rotation = int(getattr(frame, "rotation", 0) or 0)
                frames.append(rotate_upright(pixels, rotation) if rotation % 360 else pixels)
                times.append(time)
                last_kept = time
        except av.error.FFmpegError as error:
            if not frames:
                raise ValueError(f"reference_video: could not decode any frame of {path} ({error})") from error
            warnings.warn(f"reference_video: decoding stopped with an error ({error}); using the {len(frames)} "
                          "frames read", stacklevel=4)
    if seek and not frames:
        raise _SeekFailed
    return frames, times, rate


def load_image(source: Any, max_side: int | None = None) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB from a path, a PIL image or an array (``omnitalker.face.video``).

    `max_side`: the longer side is scaled down to at most this (never up). A JPEG file is decoded at 1/2,
    1/4 or 1/8 scale by libjpeg when that still covers `max_side` (a 48 MP photo never exists in memory at
    full size). A file's EXIF orientation (phone photos) is applied, so the face is upright.
    """
    from omnitalker.face.video import load_image as load_face_image
    from omnitalker.limits import fit_within

    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
    elif not (isinstance(source, (np.ndarray, torch.Tensor)) or hasattr(source, "convert")):
        raise ValueError(f"reference_image must be a path, a PIL image or an RGB array, got {type(source).__name__}")
    if isinstance(source, torch.Tensor):
        source = source.detach().cpu().numpy()
    try:
        pixels = _load_jpeg(source, max_side) if isinstance(source, Path) else None
        if pixels is None:
            pixels = load_face_image(source)
    except ValueError as error:
        raise ValueError(f"reference_image: {error}") from error
    if isinstance(source, Path):
        pixels = exif_orient(pixels, _exif_orientation(source))
    width, height = fit_within(pixels.shape[1], pixels.shape[0], max_side)
    if (width, height) != (pixels.shape[1], pixels.shape[0]):
        import cv2

        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(pixels)


def _load_jpeg(path: Path, max_side: int | None) -> np.ndarray | None:
    """An 8-bit JPEG decoded by PIL at the smallest libjpeg scale (1, 1/2, 1/4, 1/8) still covering `max_side`;
    None for anything else (the general loader takes it)."""
    from PIL import Image

    from omnitalker.limits import fit_within

    if path.suffix.lower() not in JPEG_SUFFIXES or not path.is_file():
        return None
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                return None
            target = fit_within(*image.size, max_side)
            if target != image.size:
                image.draft(None, target)
            return np.asarray(image.convert("RGB"))
    except (OSError, SyntaxError, Image.DecompressionBombError):
        return None


def _exif_orientation(path: Path) -> int:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(image.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 1


def exif_orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to (H, W, C) pixels: what ``PIL.ImageOps.exif_transpose`` does."""
    steps = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(steps[orientation](pixels)) if orientation in steps else pixels


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
) -> OmniTalkerReference:
    """The whole reference analysis (module docstring); `face_analyzer` is an ``omnitalker.face.FaceAnalyzer``.

    `video` with its own audio (or `audio` for a silent video); or `image` with `audio` (a voice sample);
    or `image` alone, whose prompt is then ``PHOTO_SILENCE_SECONDS`` of silence (for audio-driven use).
    `max_side`: the frames are decoded at a working size whose longer side is at most this (None: full
    size); the face is tracked and the renderer's source frame kept at that size. `limits`: an
    ``omnitalker.limits.InputLimits`` checked on the file headers before anything is decoded (None: the defaults).
    """
    from omnitalker.face.codes import CODE_FPS, FaceIdentity, encode_codes, track_to_codes
    from omnitalker.limits import as_limits, check_max_side

    check_max_side(max_side)
    as_limits(limits).check_inputs(reference_video=video, reference_image=image, reference_audio=audio)
    if video is not None:
        if not isinstance(video, (str, os.PathLike)):
            raise ValueError(f"reference_video must be a file path, got {type(video).__name__}")
        wave, start, gain = load_voice(video if audio is None else audio,
                                       "reference_video" if audio is None else "reference_audio",
                                       min_seconds, max_seconds)
        begin = start / SAMPLE_RATE if audio is None else 0.0  # a separate voice is aligned to the video start
        frames, fps = read_video_window(video, begin, begin + wave.shape[0] / SAMPLE_RATE, max_side=max_side)
        track = _analyze(face_analyzer.analyze_video, frames, fps=fps)
        static = False
    else:
        pixels = load_image(image, max_side=max_side)
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
        codes_mel = torch.from_numpy(retime(codes, CODE_FPS, MEL_FRAME_RATE, len(mel)))  # n 58
    reference_index = min(identity.reference_index, len(frames) - 1)
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
    )


def _analyze(method, *args, **kwargs):
    """Run the face analyzer, naming the argument to fix in its errors."""
    what = "reference_image" if "image" in method.__name__ else "reference_video"
    try:
        return method(*args, **kwargs)
    except ValueError as error:
        raise ValueError(f"{what}: {error}") from error
