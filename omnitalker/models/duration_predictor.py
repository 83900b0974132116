"""DurationPredictor: phoneme tokens + the reference's speaking rate -> frames per token.

The "durations" text layout (``OmniTalkerTransformer(text_layout="durations")``) needs, at inference, how
many mel frames each phoneme of the driving text gets. This small convolutional regressor (FastSpeech 2's
variance-predictor shape: conv -> ReLU -> LayerNorm -> dropout, twice or more, then a linear) predicts
``log(1 + frames)`` per token from the token and its neighbours, conditioned on the reference's pace:
``log`` of its mean frames per token, added to every position through a learned projection. So a slow
speaker gets longer phonemes, and per-token differences (a stressed vowel vs a stop, pauses at commas)
come from the data.

    predictor = DurationPredictor.from_pretrained("weights/omnitalker-demo", subfolder="duration_predictor")
    frames = predictor.predict_frames(ids, frames_per_token=torch.tensor([7.5]))   # b nt long

Trained with ``python -m omnitalker.train --config configs/train/duration_cpu.yaml`` (``model.kind:
duration_predictor``; ``omnitalker.training.duration``). Word boundaries (``|``) get 0 frames by rule.
"""

from __future__ import annotations

import math

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from omnitalker.frontend.text import PAD_ID

KERNEL_SIZE = 5


class DurationPredictor(ModelMixin, ConfigMixin):
    """Args:
    num_embeds: phoneme vocabulary size (``PhonemeTokenizer.vocab_size``).
    dim: channels; num_layers: conv blocks; dropout: after each block (training only).
    zero_duration_ids: token ids that always get 0 frames (the word boundary).
    """

    @register_to_config
    def __init__(self, num_embeds: int = 862, dim: int = 128, num_layers: int = 3, dropout: float = 0.1,
                 zero_duration_ids: list[int] | None = None):
        super().__init__()
        if num_embeds < 1 or dim < 1 or num_layers < 1:
            raise ValueError("num_embeds, dim and num_layers must be positive")
        self.embed = nn.Embedding(num_embeds + 1, dim)  # row 0 = padding
        self.rate_proj = nn.Linear(1, dim)
        self.convs = nn.ModuleList(nn.Conv1d(dim, dim, KERNEL_SIZE, padding=KERNEL_SIZE // 2) for _ in range(num_layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_layers))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(dim, 1)

    def forward(
        self,
        token_ids: torch.Tensor,  # b nt long, pad -1
        frames_per_token: torch.Tensor,  # b: the reference's mean frames per token (its pace)
    ) -> torch.Tensor:
        """Predicted ``log(1 + frames)`` per token (b nt); padding positions are 0."""
        if token_ids.ndim != 2 or token_ids.is_floating_point():
            raise ValueError(f"token_ids must be a (batch, tokens) integer tensor, got {tuple(token_ids.shape)}")
        if frames_per_token.shape != (token_ids.shape[0],) or not bool((frames_per_token > 0).all()):
            raise ValueError(f"frames_per_token must be ({token_ids.shape[0]},) positive values (the reference pace)")
        if bool((token_ids >= self.config.num_embeds).any()) or bool((token_ids < PAD_ID).any()):
            raise ValueError(f"token ids must lie in [0, {self.config.num_embeds - 1}] (or -1 for padding)")
        valid = (token_ids != PAD_ID)[..., None]  # b nt 1
        rate = torch.log(frames_per_token.to(self.out.weight.dtype))[:, None, None]  # b 1 1
        x = self.embed(token_ids + 1) + self.rate_proj(rate)  # b nt d
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = x * valid
            x = self.drop(norm(torch.relu(conv(x.transpose(1, 2)).transpose(1, 2))))  # b nt d
        # the pace enters again at the output: log-duration is about linear in log-rate
        log_frames = self.out(x).squeeze(-1) + rate[:, :, 0]  # b nt
        return log_frames * valid[..., 0]

    @torch.no_grad()
    def predict_frames(self, token_ids: torch.Tensor, frames_per_token: torch.Tensor,
                       speed: float = 1.0) -> torch.Tensor:
        """Integer frames per token (b nt, 0 on padding and zero-duration tokens); ``speed`` 2.0 = twice as
        fast. Rounding carries the remainder along the sequence, so totals are not biased by rounding."""
        if not (isinstance(speed, (int, float)) and math.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be a positive number, got {speed!r}")
        frames = torch.expm1(self.forward(token_ids, frames_per_token).float()).clamp_min(0) / speed  # b nt
        zero = torch.zeros_like(token_ids, dtype=torch.bool)
        for token in self.config.zero_duration_ids or ():
            zero |= token_ids == token
        frames = frames.masked_fill(zero | (token_ids == PAD_ID), 0.0)
        return round_preserving_total(frames)


def round_preserving_total(frames: torch.Tensor) -> torch.Tensor:
    """Round each row of non-negative reals (b nt) to integers whose running sums stay within 0.5 of the
    real running sums (so the total is the rounded real total)."""
    ends = torch.round(frames.cumsum(dim=1))  # b nt
    return torch.diff(ends, dim=1, prepend=torch.zeros_like(ends[:, :1])).long().clamp_min(0)
