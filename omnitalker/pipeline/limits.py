"""Input limits and the output size policy: what one request may cost, checked before any heavy work.

    from omnitalker.pipeline.limits import InputLimits, DEFAULT_MAX_SIDE
    pipe(text, reference_image="photo.jpg", reference_audio="voice.wav",
         limits=InputLimits(max_pixels=200_000_000), max_side=720)
    limits = InputLimits.from_env()          # the app / Space: OMNITALKER_MAX_PIXELS=... etc. override

Limits (``InputLimits``; None switches one off):
- ``max_pixels``: pixels of a photo, or of one frame of a reference video (read from the file header);
- ``max_seconds``: length of a reference file (video, voice sample; 1-10 s of it are used);
- ``max_audio_seconds``: length of the speech to lip-sync (all of it is animated);
- ``max_file_mb``: size of any file given;
- ``max_text_length``: characters of the text to speak.
Every refusal is a ValueError naming the input, the limit, and how to change it: the pipeline argument,
the CLI flag and the Space variable, all three from one table (``LIMITS``).

Output size policy (``max_side``, default ``DEFAULT_MAX_SIDE`` = 1024): the reference is decoded at a working
resolution whose longer side is at most ``max_side`` (JPEGs are decoded at 1/2, 1/4 or 1/8 scale by
libjpeg directly), so the renderer, the watermarks and the encoder work on frames of that size; a smaller
reference is never upscaled. The face crop the renderer draws stays at its configured ``output_size``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_MAX_SIDE = 1024  # output frames: longer side in pixels (never upscaled)
MIN_MAX_SIDE = 256  # smaller frames cannot carry the visible label and the frame watermark robustly
DEFAULT_MAX_PIXELS = 100_000_000  # a 108 MP phone photo is refused, 48 MP (8000 x 6000) passes
DEFAULT_MAX_SECONDS = 600.0  # a reference file; 1-10 s of it are used
DEFAULT_MAX_AUDIO_SECONDS = 600.0  # speech to lip-sync: generation time grows with it
DEFAULT_MAX_FILE_MB = 1024.0
DEFAULT_MAX_TEXT_LENGTH = 20_000  # characters: about 20 minutes of speech
BYTES_PER_MB = 1024 * 1024
ENV_PREFIX = "OMNITALKER_"
MAX_SIDE_ENV = ENV_PREFIX + "MAX_SIDE"

# field -> (what it bounds, what to do, CLI flag, Space variable)
LIMITS = {
    "max_pixels": ("pixels of a photo or of a video frame", "Use a smaller photo or video",
                   "--max-pixels", ENV_PREFIX + "MAX_PIXELS"),
    "max_seconds": ("seconds of a reference file", "Trim it: only 1-10 s of speech are used",
                    "--max-seconds", ENV_PREFIX + "MAX_SECONDS"),
    "max_audio_seconds": ("seconds of speech to lip-sync", "Trim it or split it into several requests",
                          "--max-audio-seconds", ENV_PREFIX + "MAX_AUDIO_SECONDS"),
    "max_file_mb": ("megabytes of a file", "Compress or trim it", "--max-file-mb", ENV_PREFIX + "MAX_FILE_MB"),
    "max_text_length": ("characters of text", "Shorten the text or split it into several requests",
                        "--max-text-length", ENV_PREFIX + "MAX_TEXT_LENGTH"),
}


@dataclass(frozen=True)
class InputLimits:
    """What one request may bring (module docstring). ``audience`` only words the messages: "pipeline"
    names the Python argument, the CLI flag and the Space variable; "space" names only the variable."""

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_seconds: float | None = DEFAULT_MAX_SECONDS
    max_audio_seconds: float | None = DEFAULT_MAX_AUDIO_SECONDS
    max_file_mb: float | None = DEFAULT_MAX_FILE_MB
    max_text_length: int | None = DEFAULT_MAX_TEXT_LENGTH
    audience: str = "pipeline"

    def __post_init__(self):
        for name in LIMITS:
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"InputLimits.{name} must be a positive number or None (no limit), got {value!r}")
        if self.audience not in ("pipeline", "space"):
            raise ValueError(f"InputLimits.audience must be 'pipeline' or 'space', got {self.audience!r}")

    @classmethod
    def from_env(cls, environ: dict | None = None, **defaults) -> InputLimits:
        """Limits for a served app: ``defaults`` (keyword arguments), each overridden by its OMNITALKER_* variable
        when set ("none" switches a limit off)."""
        environ = os.environ if environ is None else environ
        values = {**{name: getattr(cls, name) for name in LIMITS}, **defaults}
        for name, (_, _, _, variable) in LIMITS.items():
            if variable in environ:
                values[name] = parse_env(variable, environ[variable], int if "pixels" in name or "length" in name
                                          else float)
        return cls(**values, audience="space")

    def replace(self, **changes) -> InputLimits:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------------------------------ messages

    def error(self, name: str, what: str, amount: str) -> ValueError:
        """ValueError: `what` is `amount`, over the limit `name`, and how to raise it."""
        described, fix, flag, variable = LIMITS[name]
        limit = getattr(self, name)
        shown = f"{limit:,}" if isinstance(limit, int) else f"{limit:g}"
        if self.audience == "space":
            how = f"The Space's {variable} variable sets this limit."
        else:
            how = (f"To allow more, pass limits=InputLimits({name}=...) to the pipeline, {flag} to the command line, "
                   f"or set the Space variable {variable}.")
        return ValueError(f"{what} is {amount}: more than the limit of {shown} {described}. {fix}. {how}")

    # ------------------------------------------------------------------------------------------ checks

    def check_text(self, text: str, what: str = "text") -> None:
        if self.max_text_length is not None and isinstance(text, str) and len(text) > self.max_text_length:
            raise self.error("max_text_length", what, f"{len(text):,} characters long")

    def check_file(self, source: Any, what: str) -> None:
        """File size of a path (other sources have no file)."""
        if self.max_file_mb is None or not isinstance(source, (str, os.PathLike)):
            return
        try:
            size = os.path.getsize(source)
        except OSError:
            return  # missing files are reported by the loader, with its own message
        if size > self.max_file_mb * BYTES_PER_MB:
            raise self.error("max_file_mb", what, f"{size / BYTES_PER_MB:,.1f} MB")

    def check_pixels(self, width: int, height: int, what: str) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise self.error("max_pixels", what, f"{width}x{height} = {width * height / 1e6:,.1f} MP")

    def check_seconds(self, seconds: float | None, what: str, name: str = "max_seconds") -> None:
        limit = getattr(self, name)
        if limit is not None and seconds is not None and seconds > limit:
            raise self.error(name, what, f"{seconds:,.1f} s long")

    def check_image(self, source: Any, what: str = "reference_image") -> None:
        """A photo (path, PIL image or array): file size and pixels, from the header only."""
        self.check_file(source, what)
        size = image_size(source)
        if size is not None:
            self.check_pixels(*size, what)

    def check_media(self, source: Any, what: str, seconds_limit: str = "max_seconds") -> None:
        """An audio or video file, or a (sample_rate, array) tuple: file size, duration (against
        `seconds_limit`: "max_seconds" or "max_audio_seconds") and frame pixels."""
        if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], int) and source[0] > 0:
            shape = tuple(getattr(source[1], "shape", ()))  # mono (n,), or (n, c) / (c, n) with c <= 16
            samples = max(shape) if shape else None
            self.check_seconds(None if samples is None else samples / source[0], what, seconds_limit)
            return
        self.check_file(source, what)
        if not isinstance(source, (str, os.PathLike)):
            return
        from omnitalker.io.video import media_info

        info = media_info(source)
        if info is None:
            return  # not readable as media: the loader explains
        seconds, frame_size = info
        self.check_seconds(seconds, what, seconds_limit)
        if frame_size is not None:
            self.check_pixels(*frame_size, what + " (one frame)")

    def check_inputs(self, texts=None, reference_video=None, reference_image=None, reference_audio=None,
                     audio=None) -> None:
        """Every input of a pipeline call, from headers only (nothing is decoded)."""
        for text in texts or ():
            self.check_text(text)
        if reference_video is not None:
            self.check_media(reference_video, "reference_video")
        if reference_image is not None:
            self.check_image(reference_image)
        if reference_audio is not None:
            self.check_media(reference_audio, "reference_audio")
        if audio is not None:
            self.check_media(audio, "audio", "max_audio_seconds")


def as_limits(limits: InputLimits | dict | None) -> InputLimits:
    """`limits` argument of the pipeline: an InputLimits, a dict of its fields, or None (the defaults)."""
    if limits is None:
        return InputLimits()
    if isinstance(limits, dict):
        unknown = set(limits) - set(LIMITS)
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}: use {sorted(LIMITS)}")
        return InputLimits(**limits)
    if not isinstance(limits, InputLimits):
        raise ValueError(f"limits must be an InputLimits, a dict of its fields or None, got {type(limits).__name__}")
    return limits


def check_max_side(max_side: int | None, what: str = "max_side") -> None:
    if max_side is None:
        return
    if not (isinstance(max_side, int) and not isinstance(max_side, bool) and max_side >= MIN_MAX_SIDE):
        raise ValueError(f"{what} must be a whole number of pixels >= {MIN_MAX_SIDE} (the longer side of the output "
                         f"frames; default {DEFAULT_MAX_SIDE}), or None for the reference's own size; got {max_side!r}")


def max_side_from_env(default: int | None = DEFAULT_MAX_SIDE, environ: dict | None = None) -> int | None:
    """The app's output size: OMNITALKER_MAX_SIDE when set ("none": the reference's own size)."""
    environ = os.environ if environ is None else environ
    if MAX_SIDE_ENV not in environ:
        return default
    value = parse_env(MAX_SIDE_ENV, environ[MAX_SIDE_ENV], int)
    check_max_side(value, MAX_SIDE_ENV)
    return value


# ---------------------------------------------------------------------------------------------- headers


def image_size(source: Any) -> tuple[int, int] | None:
    """(width, height) of a photo without decoding it: the file header (PIL reads it lazily), a PIL image, or
    an array's shape; None when it is not readable as an image (the loader then explains)."""
    if isinstance(source, (str, os.PathLike)):
        import warnings

        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(source) as image:
                    return image.size
        except Image.DecompressionBombError as error:  # > 2 x PIL's own bound: far above any sensible limit
            raise ValueError(f"reference_image: {Path(source).name} is a decompression bomb ({error})") from error
        except (OSError, ValueError, SyntaxError):
            return None
    if hasattr(source, "size") and hasattr(source, "mode") and isinstance(source.size, tuple):  # PIL
        return source.size
    shape = getattr(source, "shape", None)
    if shape is not None and len(shape) >= 2:
        return int(shape[1]), int(shape[0])
    return None


def parse_env(variable: str, text: str, kind: type, allow_none: bool = True) -> int | float | None:
    """A Space variable's value: a number of `kind` ("1_000" and "1,000" read as 1000), or None for "none" /
    "off" / "" when `allow_none`; ValueError naming the variable otherwise."""
    text = text.strip().replace("_", "").replace(",", "")
    wanted = "a whole number" if kind is int else "a number"
    if text.lower() in ("none", "off", ""):
        if allow_none:
            return None
        raise ValueError(f"{variable}={text!r} is not {wanted}: it cannot be switched off")
    try:
        value = kind(float(text)) if kind is int else kind(text)
    except ValueError as error:
        suffix = " (or 'none' for no limit)" if allow_none else ""
        raise ValueError(f"{variable}={text!r} is not {wanted}{suffix}") from error
    return value
