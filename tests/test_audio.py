"""Audio front-end: golden log-mel, loading every input kind at any rate, errors, helpers.

python -m pytest tests/test_audio.py -q
"""

from __future__ import annotations

import av
import numpy as np
import pytest
import soundfile
import torch
from safetensors.torch import load_file

from omnitalker.frontend.audio import (
    FRAME_RATE,
    HOP_LENGTH,
    N_MELS,
    SAMPLE_RATE,
    MelSpectrogram,
    log_mel_spectrogram,
    mel_filterbank,
    num_mel_frames,
    rms_normalize,
    trim_silence,
)
from omnitalker.io.audio import load_audio, save_audio

TONE_HZ = 440.0


def sine(sample_rate: int, seconds: float = 1.0, freq: float = TONE_HZ, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(wave: torch.Tensor, sample_rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(wave.numpy() * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * sample_rate / len(wave))


def write_with_pyav(
    path, codec: str, sample_rate: int, channels: np.ndarray, container_format=None, video=False
):
    """Encode `channels` (c, n) float32 with PyAV; optionally add a short video stream first."""
    layout = "stereo" if channels.shape[0] == 2 else "mono"
    with av.open(str(path), "w", format=container_format) as container:
        if video:
            video_stream = container.add_stream("libx264", rate=25)
            video_stream.width, video_stream.height, video_stream.pix_fmt = 64, 64, "yuv420p"
        stream = container.add_stream(codec, rate=sample_rate, layout=layout)
        if video:
            for index in range(10):
                image = np.full((64, 64, 3), index * 20, dtype=np.uint8)
                for packet in video_stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
            for packet in video_stream.encode(None):
                container.mux(packet)
        # One planar-float frame: PyAV converts it to the encoder's sample format and frame size.
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(channels), format="fltp", layout=layout)
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


# --------------------------------------------------------------------------------------------- mel


def test_log_mel_matches_f5tts_golden(data_dir):
    golden = load_file(data_dir / "mel_frontend.safetensors")
    mel = log_mel_spectrogram(golden["wave"])
    assert mel.shape == golden["mel"].shape == (1, N_MELS, num_mel_frames(golden["wave"].shape[0]))
    torch.testing.assert_close(mel, golden["mel"], rtol=0, atol=1e-4)


def test_mel_module_matches_function_and_saves_nothing(data_dir):
    wave = load_file(data_dir / "mel_frontend.safetensors")["wave"]
    module = MelSpectrogram()
    batch = torch.stack([wave, 0.5 * wave])  # b nw
    mel = module(batch)
    torch.testing.assert_close(mel[:1], log_mel_spectrogram(wave), rtol=0, atol=1e-6)
    torch.testing.assert_close(mel[1:], log_mel_spectrogram(0.5 * wave), rtol=0, atol=1e-6)
    assert module.state_dict() == {}


def test_mel_filterbank_is_htk_triangles():
    filterbank = mel_filterbank()  # f m
    assert filterbank.shape == (513, N_MELS)
    assert float(filterbank.min()) == 0.0 and float(filterbank.max()) <= 1.0
    assert float(filterbank[-1].sum()) < 1e-6  # the 12 kHz Nyquist bin is the upper edge of the last filter
    centres = filterbank.argmax(dim=0)
    assert torch.all(centres[1:] >= centres[:-1])  # filters in increasing frequency


def test_mel_rejects_bad_shapes():
    with pytest.raises(ValueError, match="wave must be"):
        log_mel_spectrogram(torch.zeros(1, 1, 4096))
    with pytest.raises(ValueError, match="too short"):
        log_mel_spectrogram(torch.zeros(100))


def test_frame_rate_constant():
    assert FRAME_RATE == SAMPLE_RATE / HOP_LENGTH == 93.75


# --------------------------------------------------------------------------------------------- loading


def test_load_int16_wav_file_is_exact(tmp_path):
    samples = (sine(SAMPLE_RATE) * 32767).astype(np.int16)
    path = tmp_path / "tone.wav"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    wave = load_audio(path)
    assert wave.dtype == torch.float32 and wave.shape == (SAMPLE_RATE,)
    torch.testing.assert_close(wave, torch.from_numpy(samples / 32768.0).float(), rtol=0, atol=1e-7)
    torch.testing.assert_close(load_audio(samples, sample_rate=SAMPLE_RATE), wave, rtol=0, atol=1e-7)


def test_load_float32_array_and_gradio_tuple():
    samples = sine(SAMPLE_RATE)
    wave = load_audio(samples, sample_rate=SAMPLE_RATE)
    torch.testing.assert_close(wave, torch.from_numpy(samples))
    torch.testing.assert_close(load_audio((SAMPLE_RATE, samples)), wave)
    torch.testing.assert_close(load_audio(torch.from_numpy(samples).double(), sample_rate=SAMPLE_RATE), wave)


@pytest.mark.parametrize("channels_last", [False, True])
def test_load_48khz_stereo_downmixes_and_resamples(channels_last):
    left, right = sine(48000, amplitude=0.4), np.zeros(48000, dtype=np.float32)
    stereo = np.stack([left, right])  # c n
    wave = load_audio(stereo.T if channels_last else stereo, sample_rate=48000)
    assert wave.shape == (24000,)
    assert peak_frequency(wave) == pytest.approx(TONE_HZ, abs=1.5)
    middle = wave[2400:-2400]  # away from the resampling filter's edges
    assert float(middle.abs().max()) == pytest.approx(0.2, abs=0.005)  # mean of the two channels


@pytest.mark.parametrize("sample_rate", [8000, 16000, 22050, 44100, 44101])
def test_resampling_keeps_pitch_and_length(sample_rate):
    samples = sine(sample_rate, seconds=0.7)
    wave = load_audio(samples, sample_rate=sample_rate)
    assert wave.shape == (round(len(samples) * SAMPLE_RATE / sample_rate),)
    assert peak_frequency(wave) == pytest.approx(TONE_HZ, abs=2.0)
    middle = wave[1200:-1200]
    assert float(middle.abs().max()) == pytest.approx(0.5, abs=0.01)


def test_resampling_is_band_limited():
    """A 15 kHz tone is above the 12 kHz Nyquist limit of 24 kHz audio: it must be filtered out, not aliased."""
    samples = sine(48000, freq=15000.0)
    wave = load_audio(samples, sample_rate=48000)
    assert float(wave[2400:-2400].abs().max()) < 0.005  # no alias folded down to 9 kHz (> 40 dB down)


def test_load_m4a_and_mp4_audio_track(tmp_path):
    tone = sine(44100, seconds=1.0, amplitude=0.3)
    m4a = tmp_path / "voice.m4a"
    write_with_pyav(m4a, "aac", 44100, np.stack([tone, tone]), container_format="mp4")
    mp4 = tmp_path / "talk.mp4"
    write_with_pyav(mp4, "aac", 44100, tone[None], video=True)
    for path in (m4a, mp4):
        wave = load_audio(path)
        # AAC adds encoder delay/padding: allow up to ~0.1 s extra, never less than the input.
        assert SAMPLE_RATE <= wave.shape[0] <= SAMPLE_RATE + 2400
        assert peak_frequency(wave) == pytest.approx(TONE_HZ, abs=1.5)
        assert float(wave[4800:-4800].abs().max()) == pytest.approx(0.3, abs=0.03)


def test_load_mp3(tmp_path):
    try:
        av.codec.Codec("libmp3lame", "w")
    except av.codec.codec.UnknownCodecError:
        pytest.skip("this FFmpeg build has no MP3 encoder (libmp3lame), so no MP3 can be made to test")
    path = tmp_path / "voice.mp3"
    write_with_pyav(path, "libmp3lame", 22050, sine(22050, amplitude=0.3)[None])
    wave = load_audio(path)
    assert abs(wave.shape[0] - SAMPLE_RATE) < 2400
    assert peak_frequency(wave) == pytest.approx(TONE_HZ, abs=1.5)


def test_flac_and_ogg_round_trip(tmp_path):
    samples = sine(16000)
    for suffix in (".flac", ".ogg"):
        path = save_audio(tmp_path / f"clip{suffix}", samples, 16000)
        wave = load_audio(path, target_sample_rate=16000)
        assert wave.shape == samples.shape
        assert peak_frequency(wave, 16000) == pytest.approx(TONE_HZ, abs=1.5)


# --------------------------------------------------------------------------------------------- errors


def test_video_without_audio_track_says_so(tmp_path):
    path = tmp_path / "silent.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), index * 40, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(ValueError, match="this video has no audio track.*reference_audio="):
        load_audio(path)


def test_text_file_is_not_media(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n")
    with pytest.raises(ValueError, match="not an audio or video file"):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        load_audio(tmp_path / "nope.wav")


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        (np.zeros(0, np.float32), {"sample_rate": 16000}, "empty"),
        (np.zeros(100, np.float32), {}, "needs its sample_rate"),
        (np.zeros((100, 100), np.float32), {"sample_rate": 16000}, "channel axis"),
        (np.zeros((2, 3, 100), np.float32), {"sample_rate": 16000}, "1-D or 2-D"),
        (np.full(100, np.nan, np.float32), {"sample_rate": 16000}, "NaN"),
        (np.zeros(100, np.float32), {"sample_rate": -5}, "positive integer"),
        ("clip.wav", {"sample_rate": 16000}, "only for arrays"),
        ([0.0, 0.1], {"sample_rate": 16000}, "cannot load audio from a list"),
    ],
)
def test_bad_inputs_raise_clear_errors(source, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_audio(source, **kwargs)


# --------------------------------------------------------------------------------------------- helpers


def test_trim_silence_cuts_edges_only():
    silence = np.zeros(SAMPLE_RATE // 2, np.float32)
    gap = np.zeros(SAMPLE_RATE // 4, np.float32)
    tone = sine(SAMPLE_RATE, seconds=0.5)
    wave = torch.from_numpy(np.concatenate([silence, tone, gap, tone, silence]))
    trimmed = trim_silence(wave)
    speech = 2 * len(tone) + len(gap)
    assert speech <= trimmed.shape[0] <= speech + round(0.15 * SAMPLE_RATE)  # 50 ms margins + frame rounding
    assert torch.equal(trim_silence(torch.zeros(1000)), torch.zeros(1000))


def test_rms_normalize_boosts_quiet_audio_only():
    quiet = torch.from_numpy(sine(SAMPLE_RATE, amplitude=0.01))
    boosted, gain = rms_normalize(quiet)
    assert float(boosted.pow(2).mean().sqrt()) == pytest.approx(0.1, rel=1e-4)
    torch.testing.assert_close(boosted / gain, quiet)
    loud = torch.from_numpy(sine(SAMPLE_RATE, amplitude=0.9))
    same, gain = rms_normalize(loud)
    assert gain == 1.0 and torch.equal(same, loud)


def test_save_audio_is_atomic_and_round_trips(tmp_path):
    wave = torch.from_numpy(sine(SAMPLE_RATE))
    path = save_audio(tmp_path / "out" / "speech.wav", wave[None])
    assert sorted(p.name for p in path.parent.iterdir()) == ["speech.wav"]  # no temp file left behind
    torch.testing.assert_close(load_audio(path), wave, rtol=0, atol=1 / 32768 + 1e-6)
    with pytest.raises(ValueError, match="cannot write"):
        save_audio(tmp_path / "speech.xyz", wave)
    with pytest.raises(ValueError, match="mono"):
        save_audio(tmp_path / "stereo.wav", torch.zeros(2, 100))
