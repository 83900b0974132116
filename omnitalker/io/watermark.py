"""Watermarks for generated talking-head videos (OmniTalker paper, appendix D).

Three marks, all on by default through ``apply_watermarks`` (what the pipeline calls):

1. a visible "AI-generated" label, bottom-right, on a semi-transparent box scaled with the frame;
2. an invisible frame watermark: the DWT-DCT-SVD scheme of the ``invisible-watermark`` package
   (``imwatermark``, method ``dwtDctSvd``), re-implemented here with batched numpy so it runs in a few
   milliseconds per frame instead of ~0.5 s at 512x512. It stays bit-compatible: the package's own
   ``EmbedDwtDctSvd.decode`` reads our marks (tested). The package's default ``dwtDct`` method does not
   survive H.264 (measured: 0.5 bit accuracy after libx264 crf 18), ``dwtDctSvd`` does;
3. an invisible audio watermark: keyed spread spectrum written for this project (no maintained offline
   audio-watermark library was available): a periodic, flat-spectrum, random-phase carrier in the
   1-6 kHz band, its loudness following the speech's own 1-6 kHz envelope (so it hides under the voice),
   detected by phase-only (PHAT) circular correlation, which needs no synchronisation and survives AAC.

Each invisible mark has a ``detect_*`` function returning a dataclass with the decision and its score.
Run ``python -m omnitalker.io.watermark video.mp4`` to check a file for both invisible marks.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d

from omnitalker.io.audio import as_mono_array

# ---------------------------------------------------------------- visible mark
VISIBLE_TEXT = "AI-generated"
VISIBLE_HEIGHT_FRACTION = 0.055  # label box height relative to the frame height
VISIBLE_MIN_BOX_HEIGHT = 12  # pixels; below this the text is unreadable anyway
VISIBLE_MARGIN_FRACTION = 0.02  # gap between box and frame edge, relative to the shorter side
VISIBLE_PADDING_FRACTION = 0.22  # text padding inside the box, relative to box height
VISIBLE_BOX_OPACITY = 0.45  # dark box behind the text, so it reads on any background
VISIBLE_TEXT_OPACITY = 0.85
VISIBLE_FONT = cv2.FONT_HERSHEY_SIMPLEX

# ---------------------------------------------------------------- invisible frame mark
FRAME_WATERMARK_PAYLOAD = b"OMNI"  # 32 bits, 16 ones and 16 zeros: a flat/clean frame decodes to 50 %
FRAME_WATERMARK_SCALE = 36.0  # imwatermark's dwtDctSvd quantisation step on the U channel
FRAME_WATERMARK_BLOCK = 4  # DCT block size inside the DWT LL band (imwatermark's default)
FRAME_WATERMARK_CHANNEL = 1  # U of OpenCV's YUV, the channel imwatermark's dwtDctSvd marks
FRAME_DETECTION_THRESHOLD = 0.875  # >= 28 of 32 bits right; random bits get there with p ~ 1e-5
FRAME_MIN_REPEATS = 8  # every payload bit must land in at least this many blocks per frame
SVD_POWER_ITERATIONS = 8  # power-iteration steps for the top singular value of each block
FRAME_CHUNK_PIXELS = 16 * 512 * 512  # pixels transformed at once (16 frames at 512x512): memory flat in frame size

# ---------------------------------------------------------------- invisible audio mark
AUDIO_WATERMARK_KEY = 20250402  # default secret; any int works, detection needs the same one
AUDIO_WATERMARK_BAND_HZ = (1000.0, 6000.0)
AUDIO_WATERMARK_PERIOD = 4096  # samples per carrier period (0.17 s at 24 kHz); detection folds on it
AUDIO_WATERMARK_RELATIVE_DB = -24.0  # carrier level vs the host's own 1-6 kHz envelope: ~30 dB SNR on speech
AUDIO_ENVELOPE_SECONDS = 0.02  # envelope smoothing window
AUDIO_ENVELOPE_FLOOR = 1e-3  # -60 dBFS: very quiet passages still carry a faint (inaudible) mark
AUDIO_DETECTION_THRESHOLD = 7.0  # peak / std of the correlation; unmarked audio peaks at ~3.2-4.3
AUDIO_MIN_SECONDS = 0.5  # shorter audio cannot give a reliable decision
AUDIO_BLOCK_SECONDS = 30.0  # longer audio is marked in blocks of this length (memory flat in the length)
AUDIO_BLOCK_CONTEXT_SECONDS = 1.0  # neighbouring audio each side of a block for its band envelope
EPS = 1e-12


# ============================================================================ visible
def _stack_frames(frames: Any) -> tuple[np.ndarray, bool]:
    """(T, H, W, 3) uint8 array from an array/tensor/list; second value: input was a single frame."""
    if hasattr(frames, "detach"):
        frames = frames.detach().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise ValueError("frames is empty.")
        frames = np.stack([np.asarray(frame) for frame in frames])
    frames = np.asarray(frames)
    single = frames.ndim == 3
    if single:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames has shape {frames.shape}; expected (T, H, W, 3) or (H, W, 3) RGB.")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames has dtype {frames.dtype}; expected uint8 (use (x * 255).round().astype(np.uint8)).")
    return frames, single


def _label_layout(height: int, width: int, text: str) -> tuple[int, int, float, int, int, int]:
    """Box height/width, font scale, stroke thickness, margin and padding for the label."""
    box_height = max(VISIBLE_MIN_BOX_HEIGHT, round(VISIBLE_HEIGHT_FRACTION * height))
    padding = max(1, round(VISIBLE_PADDING_FRACTION * box_height))
    margin = round(VISIBLE_MARGIN_FRACTION * min(height, width))
    thickness = max(1, box_height // 16)
    (unit_width, unit_height), _ = cv2.getTextSize(text, VISIBLE_FONT, 1.0, thickness)
    font_scale = (box_height - 2 * padding) / unit_height
    font_scale = min(font_scale, (width - 2 * margin - 2 * padding) / unit_width)  # narrow frames: shrink
    (text_width, _), _ = cv2.getTextSize(text, VISIBLE_FONT, font_scale, thickness)
    return box_height, text_width + 2 * padding, font_scale, thickness, margin, padding


def add_visible_watermark(
    frames: Any,
    text: str = VISIBLE_TEXT,
    box_opacity: float = VISIBLE_BOX_OPACITY,
    text_opacity: float = VISIBLE_TEXT_OPACITY,
) -> np.ndarray:
    """Draw ``text`` in the bottom-right corner of every frame; returns a new uint8 array.

    frames: (T, H, W, 3) or (H, W, 3) uint8 RGB (array, tensor or list). Only a box in the bottom-right
    corner changes; its height is ``VISIBLE_HEIGHT_FRACTION`` of the frame height.
    """
    if not text:
        raise ValueError("text is empty; pass the label to draw, e.g. 'AI-generated'.")
    if not (0.0 <= box_opacity <= 1.0 and 0.0 <= text_opacity <= 1.0):
        raise ValueError(f"opacities must be in [0, 1], got box {box_opacity}, text {text_opacity}.")
    frames, single = _stack_frames(frames)
    height, width = frames.shape[1:3]
    box_height, box_width, font_scale, thickness, margin, padding = _label_layout(height, width, text)
    if font_scale <= 0 or box_height + margin > height or box_width + margin > width:
        raise ValueError(f"frames of {height}x{width} are too small for a readable {text!r} label.")
    glyphs = np.zeros((box_height, box_width), np.uint8)
    (_, text_height), _ = cv2.getTextSize(text, VISIBLE_FONT, font_scale, thickness)
    baseline = (box_height + text_height) // 2  # vertically centred
    cv2.putText(glyphs, text, (padding, baseline), VISIBLE_FONT, font_scale, 255, thickness, cv2.LINE_AA)
    text_alpha = (glyphs.astype(np.float32) / 255.0 * text_opacity)[..., None]  # h w 1
    top, left = height - margin - box_height, width - margin - box_width
    out = frames.copy()
    region = out[:, top : top + box_height, left : left + box_width].astype(np.float32)  # t h w c
    region *= 1.0 - box_opacity  # darken towards black
    region = region * (1.0 - text_alpha) + 255.0 * text_alpha  # white text
    out[:, top : top + box_height, left : left + box_width] = np.clip(region.round(), 0, 255).astype(np.uint8)
    return out[0] if single else out


# ============================================================================ invisible, frames
@dataclass
class FrameWatermarkDetection:
    """detected: bit_accuracy >= threshold. bit_accuracy: fraction of payload bits recovered by a
    vote over all frames. frame_bit_accuracy: mean per-frame accuracy. decoded: voted bytes."""

    detected: bool
    bit_accuracy: float
    frame_bit_accuracy: float
    decoded: bytes
    num_frames: int
    threshold: float


def _payload_bits(payload: bytes) -> np.ndarray:
    if not isinstance(payload, (bytes, bytearray)) or not payload:
        raise ValueError(f"payload must be non-empty bytes, got {payload!r}.")
    return np.unpackbits(np.frombuffer(bytes(payload), np.uint8)).astype(np.int64)


def _dct_matrix(size: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (what cv2.dct applies along each axis)."""
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.cos(np.pi * (2 * n + 1) * k / (2 * size)) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT = _dct_matrix(FRAME_WATERMARK_BLOCK)
_DCT2 = np.kron(_DCT, _DCT)  # D B D^T of a block B, as one matrix on its flattened 16 values (one GEMM for all)


def _frames_per_chunk(height: int, width: int) -> int:
    return max(1, FRAME_CHUNK_PIXELS // (height * width))


def frame_fits_watermark(height: int, width: int, num_bits: int = 8 * len(FRAME_WATERMARK_PAYLOAD)) -> bool:
    """Whether frames of this size have room for every payload bit FRAME_MIN_REPEATS times (a square frame
    needs a side of at least ``frame_min_side()``)."""
    blocks = (height // (2 * FRAME_WATERMARK_BLOCK)) * (width // (2 * FRAME_WATERMARK_BLOCK))
    return blocks >= num_bits * FRAME_MIN_REPEATS


def frame_min_side(num_bits: int = 8 * len(FRAME_WATERMARK_PAYLOAD)) -> int:
    """The side of the smallest square frame that carries the watermark (128 px for the 32-bit payload)."""
    return 2 * FRAME_WATERMARK_BLOCK * math.ceil(math.sqrt(num_bits * FRAME_MIN_REPEATS))


def _check_frame_size(height: int, width: int, num_bits: int) -> None:
    blocks = (height // (2 * FRAME_WATERMARK_BLOCK)) * (width // (2 * FRAME_WATERMARK_BLOCK))
    if not frame_fits_watermark(height, width, num_bits):
        raise ValueError(
            f"frames of {height}x{width} are too small to carry a {num_bits}-bit watermark robustly "
            f"(need {num_bits * FRAME_MIN_REPEATS} blocks of 8x8 pixels, have {blocks}); use larger frames "
            "or a shorter payload."
        )


def _chroma(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 (t h w 3) -> OpenCV YUV uint8 and a view of its U plane (uint8), cropped to a whole number
    of 8x8 pixel blocks (exactly the pixels imwatermark reads)."""
    t, height, width, _ = frames.shape
    yuv = cv2.cvtColor(frames.reshape(t * height, width, 3), cv2.COLOR_RGB2YUV).reshape(frames.shape)
    step = 2 * FRAME_WATERMARK_BLOCK
    crop_h, crop_w = height // step * step, width // step * step
    return yuv, yuv[:, :crop_h, :crop_w, FRAME_WATERMARK_CHANNEL]


def _haar_low(chroma: np.ndarray) -> np.ndarray:
    """U planes (t h w) uint8 -> their Haar LL band (t h/2 w/2) float64: the orthonormal Haar LL coefficient of
    a 2x2 pixel square is half its sum (pywt.dwt2's cA); the sum is exact in integers."""
    total = chroma[:, 0::2, 0::2].astype(np.uint16)
    for row, column in _HAAR_PHASES[1:]:
        total += chroma[:, row::2, column::2]
    return total / 2.0


_HAAR_PHASES = ((0, 0), (1, 0), (0, 1), (1, 1))  # the four pixels of each 2x2 square


def _dct_blocks(low: np.ndarray) -> np.ndarray:
    """Haar LL bands (t h/2 w/2) -> DCT of their 4x4 blocks, (t, rows, cols, 4, 4)."""
    t, height, width = low.shape
    b = FRAME_WATERMARK_BLOCK
    blocks = low.reshape(t, height // b, b, width // b, b).transpose(0, 1, 3, 2, 4)  # t rows cols b b
    return (blocks.reshape(-1, b * b) @ _DCT2.T).reshape(t, height // b, width // b, b, b)


def _top_singular(coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Largest singular value and its left/right vectors of each 4x4 matrix, by power iteration.

    ~4x faster than np.linalg.svd on millions of tiny matrices; the DCT's DC term makes the top
    singular value dominant, so SVD_POWER_ITERATIONS steps match LAPACK to ~1e-12 on natural images."""
    gram = np.swapaxes(coefficients, -1, -2) @ coefficients  # ... b b
    right = gram[..., :1].copy()  # ... b 1, start from the DC column
    for _ in range(SVD_POWER_ITERATIONS):
        right = gram @ right
        right /= np.sqrt((right * right).sum(axis=-2, keepdims=True)) + EPS
    left = coefficients @ right  # ... b 1
    value = np.sqrt((left * left).sum(axis=(-2, -1)))
    return value, left / (value[..., None, None] + EPS), right


def embed_frame_watermark(
    frames: Any, payload: bytes = FRAME_WATERMARK_PAYLOAD, scale: float = FRAME_WATERMARK_SCALE
) -> np.ndarray:
    """Hide ``payload`` in every frame (imwatermark dwtDctSvd scheme); returns a new uint8 array.

    Each 4x4 block of the Haar-LL band of the U channel carries one payload bit (cycling through the
    payload in raster order) in the largest singular value of its DCT, moved onto a ``scale`` grid:
    offset 0.25 * scale for a 0 bit, 0.75 * scale for a 1 bit. Only that singular value changes.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}.")
    frames, single = _stack_frames(frames)
    bits = _payload_bits(payload)
    height, width = frames.shape[1:3]
    _check_frame_size(height, width, len(bits))
    b = FRAME_WATERMARK_BLOCK
    out = np.empty_like(frames)
    step = _frames_per_chunk(height, width)
    for start in range(0, len(frames), step):
        chunk = frames[start : start + step]
        t = len(chunk)
        yuv, chroma = _chroma(chunk)
        coefficients = _dct_blocks(_haar_low(chroma))  # t rows cols b b
        rows, cols = coefficients.shape[1:3]
        value, left, right = _top_singular(coefficients)  # t rows cols
        block_bits = bits[np.arange(rows * cols) % len(bits)].reshape(rows, cols)
        target = (np.floor(value / scale) + 0.25 + 0.5 * block_bits) * scale
        change = (target - value)[..., None, None] * (left @ np.swapaxes(right, -1, -2))  # t rows cols b b
        low_change = (change.reshape(-1, b * b) @ _DCT2).reshape(t, rows, cols, b, b)  # inverse DCT: D^T C D
        low_change = low_change.transpose(0, 1, 3, 2, 4).reshape(t, rows * b, cols * b)
        # inverse orthonormal Haar: an LL change of d moves each pixel of its 2x2 square by d / 2
        pixel_change = low_change / 2.0
        for row, column in _HAAR_PHASES:  # each pixel of the squares in turn (disjoint: chroma is a view of yuv)
            pixels = chroma[:, row::2, column::2]
            pixels[...] = np.clip(np.round(pixels + pixel_change), 0, 255).astype(np.uint8)
        out[start : start + t] = cv2.cvtColor(yuv.reshape(t * height, width, 3), cv2.COLOR_YUV2RGB).reshape(chunk.shape)
    return out[0] if single else out


def frame_watermark_bit_scores(
    frames: Any, num_bits: int = 8 * len(FRAME_WATERMARK_PAYLOAD), scale: float = FRAME_WATERMARK_SCALE
) -> np.ndarray:
    """(T, num_bits) fraction of each frame's blocks that read as a 1 bit for each payload position."""
    frames, _ = _stack_frames(frames)
    _check_frame_size(frames.shape[1], frames.shape[2], num_bits)
    scores = []
    step = _frames_per_chunk(*frames.shape[1:3])
    for start in range(0, len(frames), step):
        _, chroma = _chroma(frames[start : start + step])
        value, _, _ = _top_singular(_dct_blocks(_haar_low(chroma)))  # t rows cols
        ones = (np.mod(value, scale) > 0.5 * scale).reshape(len(chroma), -1)  # t blocks
        position = np.arange(ones.shape[1]) % num_bits
        scores.append(np.stack([ones[:, position == bit].mean(axis=1) for bit in range(num_bits)], axis=1))
    return np.concatenate(scores)


def detect_frame_watermark(
    frames: Any,
    payload: bytes = FRAME_WATERMARK_PAYLOAD,
    scale: float = FRAME_WATERMARK_SCALE,
    threshold: float = FRAME_DETECTION_THRESHOLD,
) -> FrameWatermarkDetection:
    """Read the frame watermark: each bit is voted on by all blocks carrying it in all frames.

    (Per frame this is imwatermark's decoder; pooling blocks across frames, rather than voting on
    per-frame bits, keeps bits whose blocks are split nearly 50/50 after H.264 from flipping.)"""
    bits = _payload_bits(payload)
    scores = frame_watermark_bit_scores(frames, len(bits), scale)  # t n_bits
    frame_bits = scores > 0.5
    voted = scores.mean(axis=0) > 0.5  # soft vote: every block of every frame counts once
    bit_accuracy = float((voted == bits.astype(bool)).mean())
    return FrameWatermarkDetection(
        detected=bit_accuracy >= threshold,
        bit_accuracy=bit_accuracy,
        frame_bit_accuracy=float((frame_bits == bits.astype(bool)).mean()),
        decoded=np.packbits(voted.astype(np.uint8)).tobytes(),
        num_frames=len(scores),
        threshold=threshold,
    )


# ============================================================================ invisible, audio
@dataclass
class AudioWatermarkDetection:
    """detected: score >= threshold. score: correlation peak in units of the correlation's standard
    deviation over all lags (pure noise peaks near sqrt(2 ln period) ~ 4.3). lag: where the peak is."""

    detected: bool
    score: float
    threshold: float
    lag: int


def _check_wave_length(num_samples: int, sample_rate: int) -> None:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
    if num_samples < AUDIO_MIN_SECONDS * sample_rate:
        raise ValueError(f"audio is {num_samples / sample_rate:.2f} s; the watermark needs at least {AUDIO_MIN_SECONDS} s.")


def _as_wave(wave: Any, sample_rate: int) -> np.ndarray:
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}.")
    wave = as_mono_array(wave, np.float64)
    _check_wave_length(len(wave), sample_rate)
    return wave


def _band_bins(sample_rate: int) -> np.ndarray:
    low, high = AUDIO_WATERMARK_BAND_HZ
    if high >= sample_rate / 2:
        raise ValueError(f"sample_rate {sample_rate} Hz is too low for the {low:g}-{high:g} Hz watermark band.")
    frequencies = np.fft.rfftfreq(AUDIO_WATERMARK_PERIOD, 1.0 / sample_rate)
    return np.flatnonzero((frequencies >= low) & (frequencies <= high))


def _carrier_spectrum(key: int, sample_rate: int) -> np.ndarray:
    """Unit-magnitude, keyed random-phase spectrum on the band bins (zero elsewhere)."""
    rng = np.random.default_rng([int(key) & 0xFFFFFFFF, int(sample_rate)])
    spectrum = np.zeros(AUDIO_WATERMARK_PERIOD // 2 + 1, np.complex128)
    bins = _band_bins(sample_rate)
    spectrum[bins] = np.exp(2j * np.pi * rng.random(len(bins)))
    return spectrum


def _band_envelope(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """RMS envelope of the host's watermark band, smoothed over AUDIO_ENVELOPE_SECONDS."""
    spectrum = np.fft.rfft(wave)
    frequencies = np.fft.rfftfreq(len(wave), 1.0 / sample_rate)
    low, high = AUDIO_WATERMARK_BAND_HZ
    spectrum[(frequencies < low) | (frequencies > high)] = 0.0
    band = np.fft.irfft(spectrum, n=len(wave))
    window = max(1, round(AUDIO_ENVELOPE_SECONDS * sample_rate))
    return np.sqrt(np.maximum(uniform_filter1d(band**2, window, mode="nearest"), 0.0))


def embed_audio_watermark(
    wave: Any,
    sample_rate: int,
    key: int = AUDIO_WATERMARK_KEY,
    relative_db: float = AUDIO_WATERMARK_RELATIVE_DB,
) -> np.ndarray:
    """Add the keyed spread-spectrum mark to mono ``wave``; returns float32 in [-1, 1].

    The carrier is periodic (AUDIO_WATERMARK_PERIOD samples) with a flat spectrum over
    AUDIO_WATERMARK_BAND_HZ; its amplitude follows the host's band envelope at ``relative_db``.
    Audio longer than AUDIO_BLOCK_SECONDS is marked block by block (each block's envelope computed with
    AUDIO_BLOCK_CONTEXT_SECONDS of the neighbouring audio), so memory does not grow with its length.
    """
    float_type = wave.dtype if isinstance(wave, np.ndarray) and wave.dtype in (np.float32, np.float64) else np.float64
    host = as_mono_array(wave, float_type)  # no float64 copy of a long float32 wave
    _check_wave_length(len(host), sample_rate)
    carrier = np.fft.irfft(_carrier_spectrum(key, sample_rate), n=AUDIO_WATERMARK_PERIOD)
    carrier /= np.sqrt(np.mean(carrier**2))  # unit RMS
    gain = 10.0 ** (relative_db / 20.0)
    block = max(AUDIO_WATERMARK_PERIOD, round(AUDIO_BLOCK_SECONDS * sample_rate))
    context = round(AUDIO_BLOCK_CONTEXT_SECONDS * sample_rate) if len(host) > block else 0
    out = np.empty(len(host), np.float32)
    for start in range(0, len(host), block):
        stop = min(start + block, len(host))
        low, high = max(0, start - context), min(len(host), stop + context)
        envelope = _band_envelope(host[low:high].astype(np.float64), sample_rate)[start - low : stop - low]
        envelope = np.maximum(envelope, AUDIO_ENVELOPE_FLOOR)
        periodic = carrier[np.arange(start, stop) % AUDIO_WATERMARK_PERIOD]  # tiled periods
        marked = host[start:stop].astype(np.float64) + gain * envelope * periodic
        out[start:stop] = np.clip(marked, -1.0, 1.0)
    return out


def audio_watermark_snr_db(clean: Any, marked: Any) -> float:
    """Signal-to-watermark ratio in dB (how far below the host the added mark is)."""
    clean = np.asarray(clean, np.float64)
    difference = np.asarray(marked, np.float64) - clean
    return float(10.0 * np.log10((np.sum(clean**2) + EPS) / (np.sum(difference**2) + EPS)))


def detect_audio_watermark(
    wave: Any,
    sample_rate: int,
    key: int = AUDIO_WATERMARK_KEY,
    threshold: float = AUDIO_DETECTION_THRESHOLD,
) -> AudioWatermarkDetection:
    """Look for the keyed mark at any circular lag (so trimmed or delayed audio still works).

    Cut the audio into carrier periods, keep only the phase of each period's spectrum in the band
    (PHAT weighting: loud speech bins do not drown the rest), sum over periods, correlate with the
    carrier at every lag and score the peak against the spread of all lags.
    """
    wave = _as_wave(wave, sample_rate)
    period = AUDIO_WATERMARK_PERIOD
    segments = np.resize(wave, (-(-len(wave) // period)) * period).reshape(-1, period)
    if len(wave) % period:  # np.resize wrapped the start around; drop the partial, wrapped segment
        segments = segments[:-1] if len(segments) > 1 else segments
    spectra = np.fft.rfft(segments, axis=1)  # k f
    bins = _band_bins(sample_rate)
    phases = np.zeros_like(spectra)
    phases[:, bins] = spectra[:, bins] / (np.abs(spectra[:, bins]) + EPS)
    cross = phases.sum(axis=0) * np.conj(_carrier_spectrum(key, sample_rate))
    correlation = np.fft.irfft(cross, n=period)
    spread = correlation.std()
    if spread < EPS:  # digital silence: nothing to find
        return AudioWatermarkDetection(False, 0.0, threshold, 0)
    lag = int(np.argmax(correlation))
    score = float((correlation[lag] - correlation.mean()) / spread)
    return AudioWatermarkDetection(score >= threshold, score, threshold, lag)


# ============================================================================ pipeline entry point
def apply_watermarks(
    frames: Any,
    audio: Any = None,
    sample_rate: int | None = None,
    visible: bool = True,
    visible_text: str = VISIBLE_TEXT,
) -> tuple[np.ndarray, np.ndarray | None]:
    """All safety marks at once: visible label (unless visible=False), then the invisible frame mark,
    and the audio mark if audio is given. Returns (frames uint8 (T, H, W, 3), audio float32 or None)."""
    frames, _ = _stack_frames(frames)
    if visible:
        frames = add_visible_watermark(frames, text=visible_text)
    frames = embed_frame_watermark(frames)
    if audio is None:
        return frames, None
    if sample_rate is None:
        raise ValueError("sample_rate is required with audio.")
    return frames, embed_audio_watermark(audio, sample_rate)


def main(argv: list[str] | None = None) -> None:
    from omnitalker.io.video import read_video

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m omnitalker.io.watermark VIDEO")
    clip = read_video(argv[0])
    print(detect_frame_watermark(clip.frames))
    if clip.audio is not None:
        print(detect_audio_watermark(clip.audio, clip.sample_rate))


if __name__ == "__main__":
    main()
