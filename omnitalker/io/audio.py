"""Audio files in and out: any audio/video file as 24 kHz mono, arrays and Gradio tuples, atomic wav/flac/ogg.

Everything here is plain numpy + PyAV + soundfile + scipy (no torchaudio: its PyPI build does not load against
our torch).

    from omnitalker.io import load_audio
    wave = load_audio("reference.mp4")            # (nw,) float32 at 24 kHz, the video's audio track
    save_audio("out.wav", wave)

Files are decoded with soundfile (wav, flac, ogg: exact sample counts) or PyAV (everything else,
including the audio track of videos); neither changes the rate. Resampling then uses
scipy.signal.resample_poly with the exact reduced ratio (e.g. 44.1 kHz -> 24 kHz is up 80 / down 147):
a Kaiser-windowed sinc polyphase FIR, band-limited (a 48 kHz tone at 14 kHz comes out > 70 dB down),
deterministic, and the same for files and arrays, so a clip gives the same samples from disk or memory.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

# A 2-D array is read as (channels, n) or (n, channels): the axis no longer than this is the channel axis.
SAMPLE_RATE = 24000  # Hz: every waveform the project reads for its models and writes (F5-TTS / Vocos)
MAX_CHANNELS = 16
# resample_poly's filter length grows with max(up, down); odd rates (e.g. 44101 Hz) are approximated by
# the closest ratio with a denominator at most this (rate error below 0.01 %, inaudible).
MAX_RESAMPLE_FACTOR = 1000

_INT_SCALES = {np.dtype(np.int16): 2.0**15, np.dtype(np.int32): 2.0**31, np.dtype(np.int8): 2.0**7}
_VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".flv"}
# libsndfile reads these with exact sample counts (FFmpeg may keep Vorbis end padding); PyAV does the rest.
REENCODE_HINT = ("Use a common format (mp4, mov, webm, wav, mp3, m4a, flac, ogg), or export the file again from "
                 "the phone or editor that made it.")
_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif"}


def load_audio(
    source: str | os.PathLike | np.ndarray | torch.Tensor | tuple,
    sample_rate: int | None = None,
    target_sample_rate: int = SAMPLE_RATE,
) -> torch.Tensor:
    """Load audio as a mono float32 waveform at `target_sample_rate`, shape (nw,), values in [-1, 1].

    `source` is one of:
      - a path to an audio file (wav, flac, mp3, m4a, ogg, ...) or to a video (mp4, mov, webm, mkv, ...),
        whose first audio stream is used; the file's own rate is used (do not pass `sample_rate`);
      - a numpy array or torch tensor with an explicit `sample_rate`: int16/int32/int8/uint8 (scaled to
        [-1, 1]) or float (taken as is); 1-D mono, or 2-D as (channels, n) or (n, channels): the axis of
        length <= 16 that is shorter than the other one is the channel axis;
      - a `(sample_rate, array)` tuple, the form Gradio's Audio component returns.
    Channels are averaged to mono, then resampled with scipy.signal.resample_poly (see module docstring);
    the output has round(n * target_sample_rate / sample_rate) samples.
    """
    if isinstance(source, tuple):
        if len(source) != 2 or not isinstance(source[0], (int, np.integer)):
            raise ValueError("an audio tuple must be (sample_rate, array), as Gradio returns it")
        if sample_rate is not None:
            raise ValueError(
                "pass sample_rate either inside the (sample_rate, array) tuple or as an argument, not both"
            )
        sample_rate, source = int(source[0]), source[1]

    if isinstance(source, (str, os.PathLike)):
        if sample_rate is not None:
            raise ValueError(
                "sample_rate is only for arrays: a file carries its own rate. "
                "Use target_sample_rate to choose the output rate."
            )
        samples, sample_rate = _decode_file(Path(source))  # c nw
    elif isinstance(source, (np.ndarray, torch.Tensor)):
        if sample_rate is None:
            raise ValueError(
                "an audio array needs its sample_rate, e.g. load_audio(array, sample_rate=16000)"
            )
        samples = _array_to_channels_first(source)  # c nw
    else:
        raise ValueError(
            f"cannot load audio from a {type(source).__name__}: pass a file path, a numpy array or torch "
            "tensor together with sample_rate, or a (sample_rate, array) tuple"
        )

    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate}")
    if samples.shape[-1] == 0:
        raise ValueError("the audio is empty (0 samples): pass a clip with sound in it")
    if not np.isfinite(samples).all():
        raise ValueError("the audio contains NaN or infinite samples")

    mono = samples.mean(axis=0, dtype=np.float64)  # nw
    mono = resample(mono, int(sample_rate), target_sample_rate)
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))


def resample(wave: np.ndarray, orig_sample_rate: int, target_sample_rate: int) -> np.ndarray:
    """Band-limited resampling of a 1-D signal with a polyphase FIR; length round(n * target / orig)."""
    from scipy.signal import resample_poly

    if orig_sample_rate == target_sample_rate:
        return wave
    ratio = Fraction(target_sample_rate, orig_sample_rate)
    if max(ratio.numerator, ratio.denominator) > MAX_RESAMPLE_FACTOR:
        ratio = ratio.limit_denominator(MAX_RESAMPLE_FACTOR)
    out = resample_poly(wave, ratio.numerator, ratio.denominator)
    n_out = round(len(wave) * target_sample_rate / orig_sample_rate)
    if len(out) >= n_out:
        return out[:n_out]
    return np.pad(out, (0, n_out - len(out)))


def _array_to_channels_first(array: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu()
        if array.dtype in (torch.bfloat16, torch.float16):
            array = array.float()
        array = array.numpy()
    if array.ndim == 1:
        array = array[None]  # 1 nw
    elif array.ndim == 2:
        short_axis = int(np.argmin(array.shape))
        if array.shape[short_axis] > MAX_CHANNELS or array.shape[0] == array.shape[1]:
            raise ValueError(
                f"cannot tell the channel axis of an audio array of shape {tuple(array.shape)}: pass mono "
                f"(n,), or (channels, n) / (n, channels) with at most {MAX_CHANNELS} channels"
            )
        if short_axis == 1:
            array = array.T  # n c -> c n
    else:
        raise ValueError(f"an audio array must be 1-D or 2-D, got shape {tuple(array.shape)}")

    if array.dtype in _INT_SCALES:
        return array.astype(np.float32) / _INT_SCALES[array.dtype]
    if array.dtype == np.uint8:  # 8-bit WAV convention: unsigned, centred on 128
        return (array.astype(np.float32) - 128.0) / 128.0
    if np.issubdtype(array.dtype, np.floating):
        return array.astype(np.float32)
    raise ValueError(f"unsupported audio sample type {array.dtype}: use int16, int32 or float")


def _decode_file(path: Path) -> tuple[np.ndarray, int]:
    """Decode a media file's first audio stream -> (channels, n) float32, sample rate.

    wav/flac/ogg go through soundfile (libsndfile); anything else, and any file soundfile cannot read,
    through PyAV (FFmpeg), which also gives the error messages for files that are not media.
    """
    import av
    import soundfile

    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an audio or video file")
    if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
        try:
            samples, sample_rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # n c
            return samples.T, sample_rate
        except (soundfile.LibsndfileError, RuntimeError):
            pass  # not what the suffix says: let FFmpeg try, and explain if it cannot
    try:
        container = av.open(str(path))
    except av.FFmpegError as error:
        raise ValueError(f"{path} is not an audio or video file that can be decoded ({error}). {REENCODE_HINT}") \
            from error

    with container:
        if not container.streams.audio:
            if container.streams.video or path.suffix.lower() in _VIDEO_SUFFIXES:
                raise ValueError(
                    f"this video has no audio track: {path}. Pass the speaker's voice separately, "
                    "e.g. reference_audio='voice.wav'"
                )
            raise ValueError(f"{path} contains no audio stream: use a recording with sound in it")
        stream = container.streams.audio[0]
        # Planar float32 at the stream's own rate and layout: a pure sample-format conversion.
        converter = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=stream.rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                chunks.extend(converted.to_ndarray() for converted in converter.resample(frame))
            chunks.extend(converted.to_ndarray() for converted in converter.resample(None))
        except av.FFmpegError as error:
            if not chunks:
                raise ValueError(f"could not decode the audio of {path} ({error}). {REENCODE_HINT}") from error
            seconds = sum(chunk.shape[-1] for chunk in chunks) / stream.rate
            warnings.warn(f"the audio of {path.name} is damaged after {seconds:.2f} s (a truncated or corrupt "
                          f"file?): only the first {seconds:.2f} s are used", UserWarning, stacklevel=3)
        sample_rate = stream.rate

    if not chunks:
        raise ValueError(f"the audio track of {path} is empty (0 samples): pass a clip with sound in it")
    return np.concatenate(chunks, axis=1), sample_rate  # c nw


def as_mono_array(wave, dtype=np.float32, what: str = "audio") -> np.ndarray:
    """A mono waveform (numpy/torch, (n,) or (1, n)) as a 1-D numpy array of ``dtype``; NaN/inf rejected.

    The one place that checks waveforms handed to writers (save_audio, export_to_video, the watermarks).
    """
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().cpu().float().numpy()
    wave = np.asarray(wave, dtype=dtype)
    if wave.ndim == 2 and wave.shape[0] == 1:
        wave = wave[0]
    if wave.ndim != 1:
        raise ValueError(f"{what} has shape {wave.shape}; expected mono (n,) or (1, n). Average the channels first.")
    if not np.all(np.isfinite(wave)):
        raise ValueError(f"{what} contains NaN or inf values; check the vocoder output.")
    return wave


def save_audio(
    path: str | os.PathLike, wave: torch.Tensor | np.ndarray, sample_rate: int = SAMPLE_RATE
) -> Path:
    """Write a mono wave (nw,) or (1, nw) to wav/flac/ogg (format from the suffix), atomically.

    The file is written next to its destination under a temporary name and renamed into place, so a
    reader never sees a half-written file. Samples are clipped to [-1, 1]; wav is 16-bit PCM.
    """
    import soundfile

    path = Path(path)
    wave = as_mono_array(wave, np.float32)
    audio_format = path.suffix.lstrip(".").upper()
    if audio_format not in soundfile.available_formats():
        raise ValueError(f"cannot write {path.suffix!r} audio: use .wav, .flac or .ogg")

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        soundfile.write(tmp_name, np.clip(wave, -1.0, 1.0), int(sample_rate), format=audio_format)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
