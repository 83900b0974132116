"""Building blocks of the Vocos vocoder (ConvNeXt backbone + ISTFT head), written with plain torch ops.

The module names and parameter names mirror `charactr/vocos-mel-24khz` exactly (``backbone.embed``,
``backbone.convnext.{i}.dwconv`` ..., ``head.out``, ``head.istft.window``), so the released state dict
loads with ``load_state_dict`` and no renaming. No torchaudio, no ``vocos`` package.

    backbone: mel (b, n_mels, t) -> Conv1d(k=7) -> LayerNorm -> N x ConvNeXtBlock -> LayerNorm -> (b, t, dim)
    head:     (b, t, dim) -> Linear(dim, n_fft + 2) -> log-magnitude | phase -> complex STFT -> ISTFT -> (b, samples)

Used by omnitalker.models.vocoder.VocosVocoder; not meant to be run on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LAYER_NORM_EPS = 1e-6  # Vocos uses 1e-6 in every LayerNorm
CONV_KERNEL_SIZE = 7  # embedding conv and depthwise convs
MAX_MAGNITUDE = 1e2  # Vocos clips exp(log-magnitude) here to keep the ISTFT bounded
WINDOW_ENVELOPE_MIN = 1e-11  # "same" padding divides by the overlap-added squared window
PADDING_MODES = ("center", "same")


class ConvNeXtBlock(nn.Module):
    """1-D ConvNeXt block: depthwise conv, LayerNorm, pointwise MLP (GELU), layer scale, residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale_init_value: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, CONV_KERNEL_SIZE, padding=CONV_KERNEL_SIZE // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate_dim, dim)
        # Vocos drops the layer scale when its init value is 0; keep that so the key sets agree.
        if layer_scale_init_value > 0:
            self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init_value)))
        else:
            self.gamma = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: b d t
        residual = x
        x = self.dwconv(x).transpose(1, 2)  # b t d
        x = self.pwconv2(self.act(self.pwconv1(self.norm(x))))  # b t d
        if self.gamma is not None:
            x = self.gamma * x
        return residual + x.transpose(1, 2)  # b d t


class VocosBackbone(nn.Module):
    """Mel frames -> per-frame features: Conv1d embedding, LayerNorm, ConvNeXt stack, final LayerNorm."""

    def __init__(
        self,
        input_channels: int,
        dim: int,
        intermediate_dim: int,
        num_layers: int,
        layer_scale_init_value: float | None = None,
    ):
        super().__init__()
        if layer_scale_init_value is None:  # Vocos default: 1 / depth
            layer_scale_init_value = 1.0 / num_layers
        self.embed = nn.Conv1d(input_channels, dim, CONV_KERNEL_SIZE, padding=CONV_KERNEL_SIZE // 2)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.convnext = nn.ModuleList(
            [ConvNeXtBlock(dim, intermediate_dim, layer_scale_init_value) for _ in range(num_layers)]
        )
        self.final_layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # mel: b m t
        x = self.embed(mel)  # b d t
        x = self.norm(x.transpose(1, 2)).transpose(1, 2)  # b d t
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))  # b t d


class ISTFT(nn.Module):
    """Inverse STFT with Vocos' two padding modes.

    ``center``: ``torch.istft(center=True)``, which trims n_fft // 2 on both sides: (t - 1) * hop samples.
    ``same``: overlap-add of windowed irfft frames, trimmed by (win - hop) // 2 on both sides and divided
    by the squared-window envelope: t * hop samples, matching a "same"-padded forward STFT.
    """

    def __init__(self, n_fft: int, hop_length: int, padding: str = "center"):
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"ISTFT padding must be one of {PADDING_MODES}, got {padding!r}.")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.padding = padding
        # Persistent: the released state dict carries it as `head.istft.window`.
        self.register_buffer("window", torch.hann_window(n_fft))

    def forward(self, spec: torch.Tensor) -> torch.Tensor:  # spec: b f t (complex64)
        window = self.window.float()  # stays float32 when the model is cast to half precision
        if self.padding == "center":
            return torch.istft(
                spec, self.n_fft, self.hop_length, self.n_fft, window, center=True
            )  # b (t-1)*hop
        num_frames = spec.shape[-1]
        trim = (self.n_fft - self.hop_length) // 2
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")  # b n_fft t
        frames = frames * window[None, :, None]
        full_length = (num_frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, full_length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        audio = F.fold(frames, **fold)[:, 0, 0, trim:-trim]  # b t*hop
        window_sq = window.square()[None, :, None].expand(1, -1, num_frames)  # 1 n_fft t
        envelope = F.fold(window_sq, **fold)[0, 0, 0, trim:-trim]  # t*hop
        if not bool((envelope > WINDOW_ENVELOPE_MIN).all()):
            raise ValueError("ISTFT window envelope has zeros: hop_length is too large for this n_fft.")
        return audio / envelope


class ISTFTHead(nn.Module):
    """Per-frame features -> complex spectrum (exp log-magnitude, clipped; raw phase) -> waveform."""

    def __init__(self, dim: int, n_fft: int, hop_length: int, padding: str = "center"):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)  # (n_fft // 2 + 1) magnitudes + as many phases
        self.istft = ISTFT(n_fft, hop_length, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: b t d
        x = self.out(x).float().transpose(1, 2)  # b 2f t; the ISTFT runs in float32 even for half models
        log_magnitude, phase = x.chunk(2, dim=1)  # b f t each
        magnitude = torch.exp(log_magnitude).clip(max=MAX_MAGNITUDE)
        spec = torch.polar(magnitude, phase)  # b f t complex: mag * (cos p + i sin p)
        return self.istft(spec)  # b samples
