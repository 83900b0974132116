"""Safety marks (paper appendix D): visible label, invisible frame and audio watermarks, and that the
invisible ones survive an H.264 + AAC mp4 round trip while clean content is not flagged.

    python -m pytest tests/test_watermark.py -q
"""

from __future__ import annotations

import numpy as np
import pytest

from omnitalker.io import export_to_video, read_video
from omnitalker.io.watermark import (
    AUDIO_DETECTION_THRESHOLD,
    FRAME_WATERMARK_PAYLOAD,
    VISIBLE_HEIGHT_FRACTION,
    add_visible_watermark,
    apply_watermarks,
    audio_watermark_snr_db,
    detect_audio_watermark,
    detect_frame_watermark,
    embed_audio_watermark,
    embed_frame_watermark,
)

FPS = 25
SAMPLE_RATE = 24000


def textured_frames(num_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """A slowly panning picture with smooth colour regions and edges, like a face video."""
    rng = np.random.default_rng(seed)
    canvas = size + num_frames
    y, x = np.mgrid[0:canvas, 0:canvas] / canvas
    image = np.stack([0.5 + 0.4 * np.sin(6 * x + 2 * y), 0.5 + 0.3 * np.cos(5 * y), 0.4 + 0.3 * x * y], axis=-1)
    for _ in range(12):  # some discs of random colour give edges and chroma variety
        cy, cx, radius = rng.random(3) * [1, 1, 0.2]
        image[(y - cy) ** 2 + (x - cx) ** 2 < radius**2] = rng.random(3)
    image += 0.03 * rng.standard_normal(image.shape)  # fine texture (skin, hair, sensor noise)
    image = (image * 255).clip(0, 255).astype(np.uint8)
    return np.stack([image[t : t + size, t : t + size] for t in range(num_frames)])


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced harmonics with formants and a gliding pitch, syllable envelope, fricative noise bursts."""
    rng = np.random.default_rng(seed)
    time = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 120 + 25 * np.sin(2 * np.pi * 0.7 * time)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k * (1 + 3 * np.exp(-(((k * 130 - 700) / 300) ** 2))) for k in range(1, 40))
    syllables = np.clip(np.sin(2 * np.pi * 4 * time), 0, None) ** 0.5
    hiss = np.convolve(rng.standard_normal(len(time)), [1, -1], "same") * (np.sin(2 * np.pi * 1.3 * time) > 0.8)
    wave = 0.15 * voiced * syllables + 0.05 * hiss
    return (0.5 * wave / np.abs(wave).max()).astype(np.float32)


def test_visible_mark_changes_only_the_bottom_right_corner():
    frames = textured_frames(3, 256)
    marked = add_visible_watermark(frames)
    assert marked.shape == frames.shape and marked.dtype == np.uint8
    changed = np.argwhere(np.any(marked != frames, axis=(0, 3)))
    assert len(changed) > 0
    top, left = changed.min(axis=0)
    assert top >= 256 * (1 - 2 * VISIBLE_HEIGHT_FRACTION) and left >= 256 / 2
    box_height = changed[:, 0].max() - top + 1
    assert box_height == pytest.approx(VISIBLE_HEIGHT_FRACTION * 256, abs=2)
    # scaled with the frame; single frames work too
    big = add_visible_watermark(textured_frames(1, 512)[0])
    assert big.ndim == 3
    assert not np.array_equal(frames, marked) and np.array_equal(frames, textured_frames(3, 256))  # input untouched


def test_frame_watermark_is_invisible_and_read_back():
    frames = textured_frames(4, 256)
    marked = embed_frame_watermark(frames)
    psnr = 10 * np.log10(255**2 / np.mean((marked.astype(float) - frames) ** 2))
    assert psnr > 38
    found = detect_frame_watermark(marked)
    assert found.detected and found.bit_accuracy == 1.0 and found.decoded == FRAME_WATERMARK_PAYLOAD
    assert not detect_frame_watermark(frames).detected
    assert not detect_frame_watermark(marked, payload=b"\x0f\x33\x55\xaa").detected


def test_frame_watermark_matches_the_invisible_watermark_package():
    maxdct = pytest.importorskip("imwatermark.dwtDctSvd", reason="invisible-watermark is not installed: pip install --no-deps -r requirements-nodeps.txt")
    frames = textured_frames(1, 256)  # the package's per-block Python loops are slow
    bits = np.unpackbits(np.frombuffer(FRAME_WATERMARK_PAYLOAD, np.uint8))
    ours = embed_frame_watermark(frames)
    for frame in ours:  # the package decodes our marks (it works on BGR)
        decoded = maxdct.EmbedDwtDctSvd([], wmLen=len(bits)).decode(np.ascontiguousarray(frame[..., ::-1]))
        assert np.array_equal(np.asarray(decoded, int), bits)
    theirs = np.stack([  # and we read the package's marks
        maxdct.EmbedDwtDctSvd(list(bits), wmLen=len(bits)).encode(np.ascontiguousarray(f[..., ::-1]))[..., ::-1]
        for f in frames
    ]).clip(0, 255).astype(np.uint8)
    assert detect_frame_watermark(theirs).bit_accuracy == 1.0


def test_frame_watermark_survives_h264(tmp_path):
    frames = textured_frames(25, 256)
    clean = read_video(export_to_video(frames, tmp_path / "clean.mp4")).frames
    marked = read_video(export_to_video(embed_frame_watermark(frames), tmp_path / "marked.mp4")).frames
    found = detect_frame_watermark(marked)
    assert found.detected and found.bit_accuracy >= 0.95, found
    assert not detect_frame_watermark(clean).detected


def test_audio_watermark_is_quiet_keyed_and_crop_proof():
    wave = speech_like(2.0)
    marked = embed_audio_watermark(wave, SAMPLE_RATE)
    assert marked.dtype == np.float32 and marked.shape == wave.shape
    assert audio_watermark_snr_db(wave, marked) >= 28.0
    found = detect_audio_watermark(marked, SAMPLE_RATE)
    assert found.detected and found.score > AUDIO_DETECTION_THRESHOLD + 3  # measured 11.6
    assert detect_audio_watermark(marked[1234:], SAMPLE_RATE).detected  # trimmed start
    assert not detect_audio_watermark(marked, SAMPLE_RATE, key=7).detected  # other key
    for seed in range(3):
        assert not detect_audio_watermark(speech_like(2.0, seed=seed), SAMPLE_RATE).detected
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    assert not detect_audio_watermark(noise, SAMPLE_RATE).detected
    assert not detect_audio_watermark(np.zeros(SAMPLE_RATE), SAMPLE_RATE).detected


def test_audio_watermark_survives_aac(tmp_path):
    wave = speech_like(2.0, seed=1)
    frames = np.zeros((50, 64, 64, 3), np.uint8)
    for audio, expected in [(embed_audio_watermark(wave, SAMPLE_RATE), True), (wave, False)]:
        path = export_to_video(frames, tmp_path / f"{expected}.mp4", audio=audio, audio_bitrate=64_000)
        clip = read_video(path)
        found = detect_audio_watermark(clip.audio, clip.sample_rate)
        assert found.detected == expected, found


def test_apply_watermarks_end_to_end(tmp_path):
    frames, wave = textured_frames(25, 256, seed=3), speech_like(1.0, seed=2)
    marked_frames, marked_audio = apply_watermarks(frames, wave, SAMPLE_RATE)
    assert np.any(marked_frames[:, -20:, -60:] != frames[:, -20:, -60:])  # visible label is on by default
    clip = read_video(export_to_video(marked_frames, tmp_path / "out.mp4", audio=marked_audio))
    assert detect_frame_watermark(clip.frames).detected
    assert detect_audio_watermark(clip.audio, clip.sample_rate).detected
    no_label, no_audio = apply_watermarks(frames, visible=False)
    assert no_audio is None and detect_frame_watermark(no_label).detected
    assert np.abs(no_label[:, -20:, -60:].astype(int) - frames[:, -20:, -60:]).max() < 40


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="too small"):
        embed_frame_watermark(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        add_visible_watermark(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(ValueError, match="at least"):
        embed_audio_watermark(np.zeros(100, np.float32), SAMPLE_RATE)
    with pytest.raises(ValueError, match="NaN"):
        detect_audio_watermark(np.full(SAMPLE_RATE, np.nan), SAMPLE_RATE)
    with pytest.raises(ValueError, match="too low"):
        embed_audio_watermark(np.zeros(16000, np.float32), 8000)
    with pytest.raises(ValueError, match="sample_rate is required"):
        apply_watermarks(np.zeros((1, 256, 256, 3), np.uint8), np.zeros(SAMPLE_RATE))
