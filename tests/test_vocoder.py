"""Vocoders: Vocos against the reference golden files and the real-size key manifest; Griffin-Lim quality.

python -m pytest tests/test_vocoder.py -q
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from safetensors.torch import load_file
from scipy.signal import lfilter

from omnitalker.convert.vocos import main as convert_main
from omnitalker.eval.spectral import mel_distances
from omnitalker.frontend.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE, log_mel_spectrogram
from omnitalker.models.vocoder import (
    VOCOS_FEATURE_FILTERBANK_KEY,
    VOCOS_FEATURE_WINDOW_KEY,
    GriffinLimVocoder,
    VocosVocoder,
    load_vocos_config,
    vocos_config_to_kwargs,
)
from omnitalker.models.vocos_modules import ISTFT

GOLDEN_TOLERANCE = 1e-4
FEATURE_KEYS = {VOCOS_FEATURE_WINDOW_KEY, VOCOS_FEATURE_FILTERBANK_KEY}


def tiny_vocos_kwargs() -> dict:
    return dict(dim=32, intermediate_dim=64, num_layers=2)


def vowel_signal(seconds: float = 1.5, seed: int = 0) -> torch.Tensor:
    """Speech-like test signal: a gliding, vibrato glottal source through four vowels' formant resonators."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t) + 5 * np.sin(2 * np.pi * 5 * t)  # Hz
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    source = sum(np.where(k * f0 < SAMPLE_RATE / 2, np.cos(k * phase) / k, 0.0) for k in range(1, 60))
    formants = [(730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480)]  # a i u e
    segment = n // len(formants)
    out = np.zeros(n)
    for i, vowel in enumerate(formants):
        x = source[i * segment : (i + 1) * segment]
        for freq in vowel:  # two-pole resonator, 80 Hz bandwidth
            radius, angle = math.exp(-math.pi * 80 / SAMPLE_RATE), 2 * math.pi * freq / SAMPLE_RATE
            x = lfilter([1 - radius], [1, -2 * radius * math.cos(angle), radius**2], x)
        out[i * segment : (i + 1) * segment] = x * np.hanning(segment) ** 0.3
    out += 1e-3 * rng.standard_normal(n)
    return torch.tensor(0.3 * out / np.abs(out).max(), dtype=torch.float32)


# ------------------------------------------------------------------------------------------- Vocos


def test_tiny_vocos_matches_reference(data_dir):
    model = VocosVocoder.from_vocos_checkpoint(data_dir / "vocos_tiny")
    golden = load_file(data_dir / "vocos_tiny_io.safetensors")
    with torch.no_grad():
        wave = model.decode(golden["mel"])
    assert wave.shape == golden["wave"].shape == (1, (golden["mel"].shape[-1] - 1) * HOP_LENGTH)
    assert wave.dtype == torch.float32
    torch.testing.assert_close(wave, golden["wave"], atol=GOLDEN_TOLERANCE, rtol=0)
    assert model.sample_rate == SAMPLE_RATE and model.hop_length == HOP_LENGTH


def test_original_state_dict_loads_directly(data_dir):
    original = torch.load(data_dir / "vocos_tiny" / "pytorch_model.bin", weights_only=True)
    model = VocosVocoder(**vocos_config_to_kwargs(load_vocos_config(data_dir / "vocos_tiny" / "config.yaml")))
    model.load_state_dict(original, strict=True)
    assert set(model.state_dict()) == set(original) - FEATURE_KEYS
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key]), key


def test_real_size_manifest_maps_every_key(data_dir):
    manifest = json.loads((data_dir / "vocos_mel_24khz_keys.json").read_text())
    kwargs = vocos_config_to_kwargs(load_vocos_config(data_dir / "vocos_mel_24khz_config.yaml"))
    with torch.device("meta"):
        model = VocosVocoder(**kwargs)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()}
    assert ours == {key: shape for key, shape in manifest.items() if key not in FEATURE_KEYS}
    # Strict loading of a real-size (meta) state dict: the feature buffers are shape-checked and dropped.
    with torch.device("meta"):
        fake = {key: torch.empty(shape) for key, shape in manifest.items()}
    model.load_state_dict(fake, strict=True, assign=True)

    num_parameters = sum(p.numel() for p in model.parameters())
    buffers = {"head.istft.window"} | FEATURE_KEYS
    assert num_parameters == sum(math.prod(s) for k, s in manifest.items() if k not in buffers)
    print(f"vocos-mel-24khz parameters: {num_parameters:,}")
    assert 13.4e6 < num_parameters < 13.6e6  # "13.5M" in the Vocos README


def test_converter_cli(data_dir, tmp_path):
    out = tmp_path / "vocoder"
    convert_main(["--checkpoint", str(data_dir / "vocos_tiny"), "--out", str(out)])
    model = VocosVocoder.from_pretrained(out)
    golden = load_file(data_dir / "vocos_tiny_io.safetensors")
    with torch.no_grad():
        torch.testing.assert_close(model.decode(golden["mel"]), golden["wave"], atol=GOLDEN_TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    ("section", "change", "message"),
    [
        ("feature_extractor", {"n_mels": 80}, "n_mels=80"),
        ("feature_extractor", {"sample_rate": 22050}, "sample_rate=22050"),
        ("feature_extractor", {"padding": "same"}, "padding='same'"),
        ("backbone", {"adanorm_num_embeddings": 4}, "AdaLayerNorm"),
        ("head", {"dim": 128}, "head dim"),
    ],
)
def test_config_with_other_features_is_rejected(data_dir, tmp_path, section, change, message):
    config = load_vocos_config(data_dir / "vocos_tiny" / "config.yaml")
    config[section]["init_args"].update(change)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    shutil.copy(data_dir / "vocos_tiny" / "pytorch_model.bin", tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match=message):
        VocosVocoder.from_vocos_checkpoint(tmp_path)


def test_encodec_variant_and_missing_files_are_rejected(data_dir, tmp_path):
    config = load_vocos_config(data_dir / "vocos_tiny" / "config.yaml")
    config["feature_extractor"]["class_path"] = "vocos.feature_extractors.EncodecFeatures"
    with pytest.raises(ValueError, match="EnCodec"):
        vocos_config_to_kwargs(config)
    with pytest.raises(ValueError, match="not found"):
        VocosVocoder.from_vocos_checkpoint(tmp_path)


def test_checkpoint_with_other_filterbank_is_rejected(data_dir):
    state = torch.load(data_dir / "vocos_tiny" / "pytorch_model.bin", weights_only=True)
    state[VOCOS_FEATURE_FILTERBANK_KEY] = state[VOCOS_FEATURE_FILTERBANK_KEY] * 2  # e.g. another norm
    model = VocosVocoder(**vocos_config_to_kwargs(load_vocos_config(data_dir / "vocos_tiny" / "config.yaml")))
    with pytest.raises(ValueError, match="filterbank"):
        model.load_state_dict(state)


def test_same_padding_istft_inverts_same_padding_stft():
    torch.manual_seed(0)
    wave = torch.randn(2, 24 * HOP_LENGTH)  # b nw
    pad = (N_FFT - HOP_LENGTH) // 2
    padded = F.pad(wave[:, None], (pad, pad), mode="reflect")[:, 0]
    window = torch.hann_window(N_FFT)
    spec = torch.stft(padded, N_FFT, HOP_LENGTH, N_FFT, window, center=False, return_complex=True)
    rebuilt = ISTFT(N_FFT, HOP_LENGTH, padding="same")(spec)
    assert rebuilt.shape == (2, spec.shape[-1] * HOP_LENGTH)
    torch.testing.assert_close(rebuilt, wave[:, : rebuilt.shape[-1]], atol=1e-4, rtol=0)


def test_vocos_save_load_round_trip_and_gradients(tmp_path):
    torch.manual_seed(0)
    model = VocosVocoder(**tiny_vocos_kwargs(), padding="same").eval()
    mel = torch.randn(2, 100, 12) - 4
    model.save_pretrained(tmp_path)
    reloaded = VocosVocoder.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        wave = model(mel)
        assert wave.shape == (2, 12 * HOP_LENGTH)  # "same" padding: frames * hop
        assert torch.equal(reloaded(mel), wave)
    # decode keeps autograd (unlike vocos.Vocos.decode) so a waveform loss can train through it
    mel.requires_grad_(True)
    model.decode(mel).square().mean().backward()
    assert mel.grad is not None and mel.grad.abs().sum() > 0


@pytest.mark.parametrize("vocoder_class", [VocosVocoder, GriffinLimVocoder])
def test_bad_mel_is_rejected(vocoder_class):
    vocoder = (
        vocoder_class(**tiny_vocos_kwargs()) if vocoder_class is VocosVocoder else vocoder_class(n_iter=1)
    )
    for bad, message in [
        (torch.zeros(100, 10), "batch axis"),
        (torch.zeros(1, 80, 10), r"\(batch, 100, frames\)"),
        (torch.zeros(1, 100, 1), "at least 2 frames"),
        (torch.zeros(1, 100, 10, dtype=torch.long), "floating-point"),
        (np.zeros((1, 100, 10)), "torch.Tensor"),
    ]:
        with pytest.raises(ValueError, match=message):
            vocoder.decode(bad)


# ------------------------------------------------------------------------------------- Griffin-Lim


def test_griffin_lim_recovers_the_mel():
    mel = log_mel_spectrogram(vowel_signal())  # 1 100 t
    vocoder = GriffinLimVocoder()
    assert sum(p.numel() for p in vocoder.parameters()) == 0
    wave = vocoder.decode(mel)
    assert wave.shape == (1, (mel.shape[-1] - 1) * HOP_LENGTH) and wave.dtype == torch.float32
    assert torch.equal(wave, vocoder.decode(mel)), "Griffin-Lim must be deterministic"

    l1, convergence = mel_distances(mel, wave)
    l1_random_phase, convergence_random_phase = mel_distances(mel, GriffinLimVocoder(n_iter=0).decode(mel))
    print(f"Griffin-Lim 32 it: log-mel L1 {l1:.4f}, spectral convergence {convergence:.4f}")
    print(
        f"random phase:      log-mel L1 {l1_random_phase:.4f}, spectral convergence {convergence_random_phase:.4f}"
    )
    # Measured: 0.072 / 0.073 after 32 iterations vs 0.77 / 0.59 with the random initial phase.
    assert l1 < 0.15 and convergence < 0.15
    assert l1 < 0.5 * l1_random_phase and convergence < 0.5 * convergence_random_phase


def test_mel_inversion_fits_the_mel():
    mel = log_mel_spectrogram(vowel_signal(seconds=0.5))
    vocoder = GriffinLimVocoder()
    magnitude = vocoder.mel_to_magnitude(mel)  # b f t
    assert magnitude.shape == (1, N_FFT // 2 + 1, mel.shape[-1]) and bool((magnitude >= 0).all())
    refit = (magnitude.transpose(1, 2) @ vocoder.filterbank).transpose(1, 2).clamp(min=1e-5).log()
    no_refinement = GriffinLimVocoder(mel_inversion_iters=0).mel_to_magnitude(mel)
    refit_initial = (no_refinement.transpose(1, 2) @ vocoder.filterbank).transpose(1, 2).clamp(min=1e-5).log()
    assert (refit - mel).abs().mean() < 0.01 < (refit_initial - mel).abs().mean()


def test_griffin_lim_stft_pair_matches_torch():
    vocoder = GriffinLimVocoder()
    torch.manual_seed(0)
    wave = torch.randn(2, 30 * HOP_LENGTH)  # b nw
    window = torch.hann_window(N_FFT)
    reference = torch.stft(wave, N_FFT, HOP_LENGTH, N_FFT, window, center=True, return_complex=True)  # b f t
    spec = vocoder._stft(wave)  # b t f
    torch.testing.assert_close(spec, reference.transpose(1, 2), atol=1e-4, rtol=0)
    noisy = spec + 0.3 * torch.randn_like(spec)  # an inconsistent spectrogram, as Griffin-Lim sees
    expected = torch.istft(
        noisy.transpose(1, 2), N_FFT, HOP_LENGTH, N_FFT, window, center=True, length=wave.shape[-1]
    )
    rebuilt = vocoder._istft(noisy, vocoder._window_envelope(spec.shape[1]))
    torch.testing.assert_close(rebuilt, expected, atol=1e-4, rtol=0)


def test_griffin_lim_save_load_round_trip(tmp_path):
    vocoder = GriffinLimVocoder(n_iter=3, momentum=0.5, mel_inversion_iters=8, seed=7)
    vocoder.save_pretrained(tmp_path)
    reloaded = GriffinLimVocoder.from_pretrained(tmp_path)
    assert reloaded.config.n_iter == 3 and reloaded.config.seed == 7
    mel = torch.randn(2, 100, 9) - 5
    assert torch.equal(reloaded.decode(mel), vocoder.decode(mel))


def test_griffin_lim_rejects_bad_settings():
    with pytest.raises(ValueError, match="momentum"):
        GriffinLimVocoder(momentum=1.0)
    with pytest.raises(ValueError, match="n_iter"):
        GriffinLimVocoder(n_iter=-1)


@pytest.mark.parametrize("vocoder_class", [VocosVocoder, GriffinLimVocoder])
def test_half_precision_model_still_decodes(vocoder_class):
    kwargs = tiny_vocos_kwargs() if vocoder_class is VocosVocoder else {"n_iter": 2}
    vocoder = vocoder_class(**kwargs).to(torch.bfloat16)  # the ISTFT and Griffin-Lim stay in float32
    mel = torch.randn(1, 100, 6) - 4
    with torch.no_grad():
        wave = vocoder.decode(mel.bfloat16())
    assert wave.dtype == torch.float32 and wave.shape == (1, 5 * HOP_LENGTH)
    assert bool(torch.isfinite(wave).all())
