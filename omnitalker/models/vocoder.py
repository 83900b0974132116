"""Vocoders: log-mel (b, 100, frames) -> 24 kHz waveform (b, samples), as diffusers components.

Two interchangeable models with the same interface (`decode(mel) -> wave`, `forward = decode`,
attributes `sample_rate` and `hop_length`), both saved and loaded with `save_pretrained` /
`from_pretrained`:

- `VocosVocoder`: the Vocos GAN vocoder (ConvNeXt backbone + ISTFT head), state-dict compatible with
  `charactr/vocos-mel-24khz` (13.5 M parameters). `VocosVocoder.from_vocos_checkpoint(dir)` reads the
  original `config.yaml` + `pytorch_model.bin`; `python -m omnitalker.convert.vocos` writes a
  diffusers folder from them.
- `GriffinLimVocoder`: no trained weights at all. It inverts the mel filterbank (non-negative least
  squares) and recovers a phase with fast Griffin-Lim, so a pipeline without vocoder weights still
  speaks, with the usual Griffin-Lim "phasiness".

    from omnitalker.io.audio import load_audio
    from omnitalker.frontend.audio import log_mel_spectrogram
    mel = log_mel_spectrogram(load_audio("voice.wav"))          # (1, 100, frames)
    wave = GriffinLimVocoder().decode(mel)                      # (1, (frames - 1) * 256)

Both expect the mel of `omnitalker.frontend.audio.log_mel_spectrogram` (natural log of the magnitude mel,
floored at 1e-5 as F5-TTS does). Vocos was trained with a 1e-7 floor (ln = -16.1 instead of -11.5).
A full-scale 1 kHz sine peaks at a mel magnitude of ~370, so only bins ~150 dB below full scale are
affected, i.e. digital silence, which the vocoder renders as near-silence either way: the mismatch
is harmless (F5-TTS ships with it).

`decode` does not switch off autograd (unlike `vocos.Vocos.decode`): a training loss on the waveform
can flow through it. Wrap calls in `torch.no_grad()` for inference.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import SAFETENSORS_WEIGHTS_NAME
from diffusers.utils.hub_utils import _add_variant
from safetensors.torch import save_file

from omnitalker.frontend.audio import (
    F_MAX,
    F_MIN,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    SAMPLE_RATE,
    WIN_LENGTH,
    mel_filterbank,
)
from omnitalker.models.vocos_modules import PADDING_MODES, ISTFTHead, VocosBackbone

VOCOS_CONFIG_NAME = "config.yaml"
VOCOS_WEIGHTS_NAME = "pytorch_model.bin"
# Buffers of the original feature extractor (torchaudio MelSpectrogram): omnitalker computes the mel in
# omnitalker.frontend.audio, so these are checked against our front-end when a Vocos state dict is loaded, then dropped.
VOCOS_FEATURE_WINDOW_KEY = "feature_extractor.mel_spec.spectrogram.window"
VOCOS_FEATURE_FILTERBANK_KEY = "feature_extractor.mel_spec.mel_scale.fb"
FEATURE_BUFFER_TOLERANCE = 1e-4  # torchaudio's float32 filterbank vs ours: ~7e-6 apart in practice

MIN_FRAMES = 2  # a centred ISTFT of one frame has no samples left after trimming

# Griffin-Lim defaults
GRIFFIN_LIM_ITERATIONS = 32
GRIFFIN_LIM_MOMENTUM = 0.99  # Perraudin et al. 2013 ("fast Griffin-Lim") recommend 0.99
MEL_INVERSION_ITERATIONS = 16  # multiplicative NNLS steps from the mel to the linear magnitude
MAGNITUDE_EPS = 1e-8  # keeps the NNLS and phase divisions finite on silent bins


def _check_mel(mel: torch.Tensor, num_mels: int) -> None:
    if not isinstance(mel, torch.Tensor):
        raise ValueError(
            f"mel must be a torch.Tensor of shape (batch, {num_mels}, frames), got {type(mel).__name__}"
        )
    if mel.ndim != 3 or mel.shape[1] != num_mels:
        raise ValueError(
            f"mel must have shape (batch, {num_mels}, frames), got {tuple(mel.shape)}; "
            "add a batch axis with mel[None] if you have a single (mels, frames) spectrogram"
        )
    if mel.shape[-1] < MIN_FRAMES:
        raise ValueError(f"mel needs at least {MIN_FRAMES} frames to make any audio, got {mel.shape[-1]}")
    if not mel.is_floating_point():
        raise ValueError(f"mel must be a floating-point log-mel spectrogram, got dtype {mel.dtype}")


class _MelVocoderRates:
    """``sample_rate`` and ``hop_length`` of a mel vocoder, read from its config (both vocoders share them)."""

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length


class VocosVocoder(_MelVocoderRates, ModelMixin, ConfigMixin):
    """Vocos (Siuzdak 2023): mel -> ConvNeXt backbone -> per-frame STFT magnitude and phase -> ISTFT.

    Parameter names equal those of `charactr/vocos-mel-24khz`, so its state dict loads as is; the
    original's feature-extractor buffers are validated against `omnitalker.frontend.audio` and dropped on load.
    Defaults are the real-size 24 kHz model (13.5 M parameters).
    """

    @register_to_config
    def __init__(
        self,
        num_mels: int = N_MELS,
        dim: int = 512,
        intermediate_dim: int = 1536,
        num_layers: int = 8,
        layer_scale_init_value: float | None = None,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        padding: str = "center",
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"padding must be one of {PADDING_MODES}, got {padding!r}")
        self.backbone = VocosBackbone(num_mels, dim, intermediate_dim, num_layers, layer_scale_init_value)
        self.head = ISTFTHead(dim, n_fft, hop_length, padding)
        self.register_load_state_dict_pre_hook(_drop_vocos_feature_extractor)

    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (b, num_mels, frames) natural-log magnitude mel -> wave (b, (frames - 1) * hop) float32
        ("center" padding; "same" padding gives frames * hop samples)."""
        _check_mel(mel, self.config.num_mels)
        features = self.backbone(mel.to(self.head.out.weight.dtype))  # b t d
        return self.head(features).float()  # b samples

    forward = decode

    @classmethod
    def from_vocos_checkpoint(
        cls, path: str | Path, config_path: str | Path | None = None, device: str | torch.device = "cpu"
    ) -> VocosVocoder:
        """Build from an original Vocos release: a folder with `config.yaml` + `pytorch_model.bin`
        (e.g. a download of `charactr/vocos-mel-24khz`), or the `.bin` itself with its config next to it
        or given as `config_path`. Raises ValueError if the checkpoint's features differ from our mel."""
        path = Path(path)
        weights_path = path / VOCOS_WEIGHTS_NAME if path.is_dir() else path
        if config_path is None:
            config_path = weights_path.parent / VOCOS_CONFIG_NAME
        for needed in (weights_path, Path(config_path)):
            if not needed.is_file():
                raise ValueError(
                    f"Vocos checkpoint file not found: {needed}. Pass a folder holding {VOCOS_CONFIG_NAME} and "
                    f"{VOCOS_WEIGHTS_NAME}, or the .bin together with config_path=..."
                )
        model = cls(**vocos_config_to_kwargs(load_vocos_config(config_path)))
        state_dict = torch.load(weights_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state_dict, strict=True)
        return model.to(device).eval()


def load_vocos_config(config_path: str | Path) -> dict:
    """Read an original Vocos `config.yaml` (jsonargparse `class_path` / `init_args` layout)."""
    import yaml

    with open(config_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} is not a Vocos config (expected a YAML mapping)")
    return config


def vocos_config_to_kwargs(config: dict) -> dict:
    """Map an original Vocos config (feature_extractor / backbone / head sections) to VocosVocoder kwargs,
    checking that the model was trained on the same mel features omnitalker computes."""
    sections = {}
    for name, expected_class in (
        ("feature_extractor", "MelSpectrogramFeatures"),
        ("backbone", "VocosBackbone"),
        ("head", "ISTFTHead"),
    ):
        section = config.get(name)
        if not isinstance(section, dict) or "class_path" not in section:
            raise ValueError(
                f"Vocos config has no '{name}' section with a class_path: is this a Vocos config.yaml?"
            )
        class_name = section["class_path"].rsplit(".", 1)[-1]
        if class_name != expected_class:
            raise ValueError(
                f"unsupported Vocos {name} {section['class_path']!r}: omnitalker supports the mel vocoder "
                f"({expected_class}), e.g. charactr/vocos-mel-24khz, not the EnCodec or MDCT variants"
            )
        sections[name] = section.get("init_args", {})

    features, backbone, head = sections["feature_extractor"], sections["backbone"], sections["head"]
    ours = {
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "n_mels": N_MELS,
        "padding": "center",
    }
    # A config may omit settings; MelSpectrogramFeatures' defaults (vocos 0.1.0) are exactly ours.
    theirs = {**ours, **features}
    mismatched = {key: (theirs[key], value) for key, value in ours.items() if theirs[key] != value}
    if mismatched:
        details = ", ".join(
            f"{key}={got!r} (omnitalker uses {want!r})" for key, (got, want) in mismatched.items()
        )
        raise ValueError(
            f"this Vocos was trained on different mel features: {details}. omnitalker's mel front-end "
            "(omnitalker.frontend.audio) is fixed to the F5-TTS / vocos-mel-24khz settings; use a 24 kHz, 100-mel, "
            "hop-256 Vocos such as charactr/vocos-mel-24khz"
        )
    if backbone.get("adanorm_num_embeddings") is not None:
        raise ValueError(
            "Vocos backbones with AdaLayerNorm (bandwidth conditioning, EnCodec variant) are not supported"
        )
    if backbone.get("input_channels", N_MELS) != N_MELS:
        raise ValueError(
            f"Vocos backbone input_channels={backbone['input_channels']} but the mel has {N_MELS} bins"
        )
    if head.get("dim") != backbone.get("dim"):
        raise ValueError(f"Vocos head dim {head.get('dim')} differs from backbone dim {backbone.get('dim')}")
    if head.get("hop_length", HOP_LENGTH) != HOP_LENGTH:
        raise ValueError(f"Vocos head hop_length={head['hop_length']} differs from the mel hop {HOP_LENGTH}")
    return {
        "num_mels": N_MELS,
        "dim": backbone["dim"],
        "intermediate_dim": backbone["intermediate_dim"],
        "num_layers": backbone["num_layers"],
        "layer_scale_init_value": backbone.get("layer_scale_init_value"),
        "n_fft": head.get("n_fft", N_FFT),
        "hop_length": HOP_LENGTH,
        "padding": head.get("padding", "same"),  # ISTFTHead's default
        "sample_rate": SAMPLE_RATE,
    }


def _drop_vocos_feature_extractor(
    module, state_dict, prefix, local_metadata, strict, missing, unexpected, errors
):
    """Load hook: an original Vocos state dict carries its torchaudio mel buffers; check they describe our
    mel front-end (hann window, HTK filterbank 0-12 kHz) and remove them, so strict loading works.
    Meta tensors (shape-only loading) are checked by shape alone."""
    expected = {
        VOCOS_FEATURE_WINDOW_KEY: (torch.hann_window(WIN_LENGTH), "a hann window"),
        VOCOS_FEATURE_FILTERBANK_KEY: (
            mel_filterbank(),
            "omnitalker.frontend.audio's HTK mel filterbank (no norm, 0-12 kHz)",
        ),
    }
    for key, (ours, description) in expected.items():
        theirs = state_dict.pop(prefix + key, None)
        if theirs is None:
            continue
        if theirs.shape != ours.shape:
            raise ValueError(
                f"the checkpoint's {key} has shape {tuple(theirs.shape)}, expected {tuple(ours.shape)}: "
                "this Vocos was trained on other mel features"
            )
        if theirs.is_meta:
            continue
        difference = (theirs.detach().float().cpu() - ours).abs().max().item()
        if difference > FEATURE_BUFFER_TOLERANCE:
            raise ValueError(
                f"the checkpoint's {key} differs from {description} by {difference:.2e}: this Vocos was "
                "trained on other mel features"
            )


class GriffinLimVocoder(_MelVocoderRates, ModelMixin, ConfigMixin):
    """Training-free vocoder: log-mel -> linear magnitude (NNLS) -> phase by fast Griffin-Lim -> ISTFT.

    1. magnitude: exp of the log-mel, then non-negative least squares `mel = filterbank^T @ magnitude`
       solved with multiplicative updates (Lee & Seung), started from the filterbank's transpose;
    2. phase: fast Griffin-Lim (Perraudin, Balazs & Sondergaard 2013), alternating projections onto
       consistent spectrograms (ISTFT -> STFT) and onto the target magnitude, with momentum;
       the initial phase is drawn from a generator seeded with `seed`, so output is deterministic.
    STFT settings equal the mel front-end's (hann 1024, hop 256, centred).
    """

    @register_to_config
    def __init__(
        self,
        num_mels: int = N_MELS,
        n_fft: int = N_FFT,
        hop_length: int = HOP_LENGTH,
        sample_rate: int = SAMPLE_RATE,
        f_min: float = F_MIN,
        f_max: float = F_MAX,
        n_iter: int = GRIFFIN_LIM_ITERATIONS,
        momentum: float = GRIFFIN_LIM_MOMENTUM,
        mel_inversion_iters: int = MEL_INVERSION_ITERATIONS,
        seed: int = 0,
    ):
        super().__init__()
        if n_iter < 0 or mel_inversion_iters < 0:
            raise ValueError(
                f"n_iter and mel_inversion_iters must be >= 0, got {n_iter} and {mel_inversion_iters}"
            )
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if n_fft % hop_length != 0:
            raise ValueError(
                f"n_fft ({n_fft}) must be a multiple of hop_length ({hop_length}) for the overlap-add"
            )
        filterbank = mel_filterbank(n_fft // 2 + 1, num_mels, sample_rate, f_min, f_max)  # f m
        # Derived from the config, so not saved: the model has no state of its own.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.register_buffer("filterbank", filterbank.clone(), persistent=False)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """diffusers' save_pretrained, plus an empty weights file: diffusers writes none for a model without
        state, but its from_pretrained (and a pipeline's) requires one."""
        super().save_pretrained(save_directory, *args, **kwargs)
        weights_path = Path(save_directory) / _add_variant(SAFETENSORS_WEIGHTS_NAME, kwargs.get("variant"))
        if kwargs.get("is_main_process", True) and not weights_path.exists():
            save_file({}, weights_path, metadata={"format": "pt"})

    def mel_to_magnitude(self, mel: torch.Tensor) -> torch.Tensor:
        """log-mel (b, m, t) -> non-negative linear STFT magnitude (b, f, t) whose mel matches it."""
        target = mel.float().exp()  # b m t
        filterbank = self.filterbank.float()  # f m (float32 even if the model was cast)
        # Start where the magnitude is flat under each filter (mel / filter area), averaged over the
        # filters covering each bin: already close, so few multiplicative steps are needed.
        area = filterbank.sum(dim=0).clamp(min=MAGNITUDE_EPS)  # m
        coverage = filterbank.sum(dim=1, keepdim=True).clamp(min=MAGNITUDE_EPS)  # f 1
        magnitude = (filterbank / coverage) @ (target / area[:, None])  # b f t
        numerator = filterbank @ target  # b f t, fixed across iterations
        for _ in range(self.config.mel_inversion_iters):
            denominator = filterbank @ (filterbank.T @ magnitude)  # b f t
            magnitude = magnitude * numerator / (denominator + MAGNITUDE_EPS)
        return magnitude

    # The STFT pair below works frame-major (b, t, f) with rfft / irfft on the last axis and an overlap-add
    # by hop-sized chunks: numerically torch.stft / torch.istft (center=True, reflect), ~5x faster on CPU.

    def _stft(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (b, (t - 1) * hop) -> complex spectrum (b, t, f), like torch.stft(center=True, reflect)."""
        n_fft, hop = self.config.n_fft, self.config.hop_length
        padded = F.pad(wave[:, None], (n_fft // 2, n_fft // 2), mode="reflect")[:, 0]  # b nw+n_fft
        frames = padded.unfold(-1, n_fft, hop) * self.window.float()  # b t n_fft
        return torch.fft.rfft(frames, dim=-1)  # b t f

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (b, t, n_fft) -> their sum at hop spacing (b, (t - 1) * hop + n_fft)."""
        batch, num_frames, n_fft = frames.shape
        hop = self.config.hop_length
        chunks_per_frame = n_fft // hop
        chunks = frames.reshape(batch, num_frames, chunks_per_frame, hop)
        out = frames.new_zeros(batch, num_frames + chunks_per_frame - 1, hop)
        for k in range(chunks_per_frame):  # chunk k of frame i lands in output chunk i + k
            out[:, k : k + num_frames] += chunks[:, :, k]
        return out.reshape(batch, -1)

    def _istft(self, spec: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        """complex spectrum (b, t, f) -> least-squares wave (b, (t - 1) * hop), like torch.istft(center=True).
        `envelope` is the overlap-added squared window for t frames (see `_window_envelope`)."""
        n_fft, hop = self.config.n_fft, self.config.hop_length
        frames = torch.fft.irfft(spec, n_fft, dim=-1) * self.window.float()  # b t n_fft
        wave = self._overlap_add(frames) / envelope  # b (t-1)*hop+n_fft
        return wave[:, n_fft // 2 : n_fft // 2 + (spec.shape[1] - 1) * hop]

    def _window_envelope(self, num_frames: int) -> torch.Tensor:
        squared = self.window.float().square().expand(1, num_frames, -1)  # 1 t n_fft
        # ~0 only in the ends that _istft trims
        return self._overlap_add(squared).clamp(min=MAGNITUDE_EPS)  # 1 (t-1)*hop+n_fft

    def decode(self, mel: torch.Tensor) -> torch.Tensor:
        """mel (b, num_mels, frames) natural-log magnitude mel -> wave (b, (frames - 1) * hop) float32."""
        _check_mel(mel, self.config.num_mels)
        magnitude = self.mel_to_magnitude(mel).transpose(1, 2)  # b t f
        envelope = self._window_envelope(magnitude.shape[1])
        generator = torch.Generator(device="cpu").manual_seed(self.config.seed)
        phase = torch.rand(magnitude.shape, generator=generator).to(magnitude.device) * (2 * math.pi)
        # Iterate on real views (b t f 2): CPU complex elementwise ops are several times slower.
        estimate = torch.view_as_real(torch.polar(magnitude, phase))  # b t f 2, magnitude-correct
        accelerated = estimate
        for _ in range(self.config.n_iter):
            consistent = self._stft(self._istft(torch.view_as_complex(accelerated), envelope))  # b t f
            rebuilt = torch.view_as_real(consistent)  # b t f 2
            gain = magnitude / (torch.linalg.vector_norm(rebuilt, dim=-1) + MAGNITUDE_EPS)  # b t f
            projected = rebuilt * gain[..., None]  # its phase, our magnitude
            # fast Griffin-Lim: projected + momentum * (projected - previous projection)
            accelerated = torch.lerp(estimate, projected, 1.0 + self.config.momentum)
            estimate = projected
        return self._istft(torch.view_as_complex(estimate), envelope)  # b samples

    forward = decode
