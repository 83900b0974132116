"""Conditional flow-matching training loss for the OmniTalker audio-visual DiT (paper §3.3, Eq. 2-3).

The loss is a wrapper independent of the backbone (like F5-TTS's ``CFM``): it takes the transformer as an
argument, so the same object works with a bare model, a DDP/FSDP-wrapped one or an EMA copy.

Recipe per batch (convention D1: t = 0 noise, t = 1 data):
  1. t ~ logit-normal(0, 1) per sample (or uniform), x0 ~ N(0, I) per stream;
  2. x_t = (1 - t) x0 + t x1, target velocity x1 - x0 (optimal-transport path, sigma_min = 0);
  3. one random contiguous span per sample masks 70-100 % of its valid frames, the same span for audio and
     visual (the two streams are frame-aligned); the unmasked frames are the in-context prompt ``cond``
     (optionally the span ends at the clip's end more often: ``end_span_prob``; a sample whose first
     ``prompt_frames`` are another clip's prompt has exactly the frames after them masked);
  4. text, audio prompt and visual prompt are each dropped with p = 0.2, independently per sample (CFG);
  5. L1 between predicted and target velocity on masked & valid frames, per stream (mel, pose, exp, eye),
     total = sum of lambda_stream * loss_stream.

    loss_fn = FlowMatchingLoss()
    out = loss_fn(transformer, mel=mel, visual=visual, text_ids=text_ids, lengths=lengths)
    out.loss.backward(); print(out.losses)          # {"mel": ..., "pose": ..., "exp": ..., "eye": ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

# the visual code layout (58 dims: head pose | expression offsets | eye gaze) is owned by omnitalker/frontend/face/codes.py
from omnitalker.frontend.face.codes import EXP_SLICE, EYE_SLICE, POSE_SLICE

from .masking import (
    DEFAULT_LOGIT_MEAN,
    DEFAULT_LOGIT_STD,
    DEFAULT_SPAN_FRACTION,
    lengths_to_mask,
    randn,
    sample_drop,
    sample_timesteps,
    span_mask,
)

# Paper §4.1 gives one lambda per stream; their values are not legible in our copy, so all start at 1.
DEFAULT_STREAM_WEIGHT = 1.0
# Paper appendix: text, audio and video conditions are each dropped with probability 0.2.
DEFAULT_DROP_PROB = 0.2


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Point on the OT path: x_t = (1 - t) x0 + t x1, with ``t`` (b) broadcast over the other dims."""
    t = t.reshape(-1, *([1] * (x1.ndim - 1))).to(x1.dtype)  # b 1 1
    return (1 - t) * x0 + t * x1


def velocity_target(x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
    """Velocity of the OT path, d x_t / dt = x1 - x0 (independent of t)."""
    return x1 - x0


@dataclass
class FlowMatchingLossOutput:
    """What one training step produced.

    Args:
        loss: weighted total (scalar tensor with grad).
        losses: per-stream L1 losses as detached floats ("mel", "pose", "exp", "eye"; absent streams omitted).
        mask: b n bool, True on frames the loss was computed on (masked span & valid).
        timestep: b, the flow times used.
        drop_text / drop_audio_cond / drop_visual_cond: b bool, which samples dropped which condition.
    """

    loss: torch.Tensor
    losses: dict[str, float]
    mask: torch.Tensor
    timestep: torch.Tensor
    drop_text: torch.Tensor
    drop_audio_cond: torch.Tensor
    drop_visual_cond: torch.Tensor
    audio_mask: torch.Tensor | None = field(default=None, repr=False)


class FlowMatchingLoss(nn.Module):
    """Masked-infilling conditional flow-matching loss for joint mel + visual-code generation.

    Args:
        mel_weight, pose_weight, exp_weight, eye_weight: lambda per stream (default 1.0 each).
        pose_slice, exp_slice, eye_slice: where each visual stream lives in the visual code.
        timestep_distribution: ``"logit_normal"`` (paper) or ``"uniform"`` (F5-TTS).
        logit_mean, logit_std: parameters of the logit-normal.
        span_fraction: (low, high) fraction of each utterance masked as the infilling target.
        end_span_prob: probability that the span ends at the clip's end, i.e. the inference layout
            [prompt | target] (0 = F5-TTS's uniform span start).
        drop_text_prob, drop_audio_cond_prob, drop_visual_cond_prob: per-sample CFG drop probabilities.
        audio_driven_prob: probability that a sample keeps its *whole* audio as prompt and only infills the
            visual span (teaches the "audio-driven" inference mode; 0 = the paper's recipe).
    """

    def __init__(
        self,
        *,
        mel_weight: float = DEFAULT_STREAM_WEIGHT,
        pose_weight: float = DEFAULT_STREAM_WEIGHT,
        exp_weight: float = DEFAULT_STREAM_WEIGHT,
        eye_weight: float = DEFAULT_STREAM_WEIGHT,
        pose_slice: slice = POSE_SLICE,
        exp_slice: slice = EXP_SLICE,
        eye_slice: slice = EYE_SLICE,
        timestep_distribution: str = "logit_normal",
        logit_mean: float = DEFAULT_LOGIT_MEAN,
        logit_std: float = DEFAULT_LOGIT_STD,
        span_fraction: tuple[float, float] = DEFAULT_SPAN_FRACTION,
        end_span_prob: float = 0.0,
        drop_text_prob: float = DEFAULT_DROP_PROB,
        drop_audio_cond_prob: float = DEFAULT_DROP_PROB,
        drop_visual_cond_prob: float = DEFAULT_DROP_PROB,
        audio_driven_prob: float = 0.0,
    ):
        super().__init__()
        weights = {"mel": mel_weight, "pose": pose_weight, "exp": exp_weight, "eye": eye_weight}
        for name, weight in weights.items():
            if weight < 0:
                raise ValueError(f"{name}_weight must be >= 0, got {weight}")
        for name, prob in [
            ("drop_text_prob", drop_text_prob),
            ("drop_audio_cond_prob", drop_audio_cond_prob),
            ("drop_visual_cond_prob", drop_visual_cond_prob),
            ("audio_driven_prob", audio_driven_prob),
            ("end_span_prob", end_span_prob),
        ]:
            if not 0.0 <= prob <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {prob}")
        self.weights = weights
        self.visual_slices = {"pose": pose_slice, "exp": exp_slice, "eye": eye_slice}
        self.timestep_distribution = timestep_distribution
        self.logit_mean = logit_mean
        self.logit_std = logit_std
        self.span_fraction = span_fraction
        self.end_span_prob = end_span_prob
        self.drop_text_prob = drop_text_prob
        self.drop_audio_cond_prob = drop_audio_cond_prob
        self.drop_visual_cond_prob = drop_visual_cond_prob
        self.audio_driven_prob = audio_driven_prob

    def check_inputs(self, mel, visual, text_ids, lengths, attention_mask):
        if mel is None and visual is None:
            raise ValueError("give at least one stream: mel (b n 100) and/or visual (b n 58)")
        streams = [x for x in (mel, visual) if x is not None]
        for x in streams:
            if x.ndim != 3:
                raise ValueError(f"mel/visual must be (batch, frames, dims), got shape {tuple(x.shape)}")
        if mel is not None and visual is not None and mel.shape[:2] != visual.shape[:2]:
            raise ValueError(
                f"mel {tuple(mel.shape)} and visual {tuple(visual.shape)} must share (batch, frames): "
                "upsample the visual codes to the mel frame rate first"
            )
        if text_ids.ndim != 2 or text_ids.shape[0] != streams[0].shape[0]:
            raise ValueError(f"text_ids must be (batch, tokens) with batch {streams[0].shape[0]}, got {tuple(text_ids.shape)}")
        if lengths is not None and attention_mask is not None:
            raise ValueError("pass either lengths or attention_mask, not both")
        for visual_name, visual_slice in self.visual_slices.items():
            if visual is not None and visual_slice.stop > visual.shape[-1]:
                raise ValueError(f"{visual_name}_slice {visual_slice} exceeds visual dim {visual.shape[-1]}")

    def forward(
        self,
        transformer: nn.Module,
        *,
        mel: torch.Tensor | None = None,
        visual: torch.Tensor | None = None,
        text_ids: torch.Tensor,
        lengths: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        text_durations: torch.Tensor | None = None,
        prompt_frames: torch.Tensor | None = None,
    ) -> FlowMatchingLossOutput:
        """One loss evaluation. ``mel``: b n 100, ``visual``: b n 58 (either may be None), ``text_ids``: b nt
        (pad -1), ``lengths`` (b) or ``attention_mask`` (b n, True = valid; default: all valid); ``text_durations``
        (b nt, frames per token) for a transformer with the "durations" text layout; ``prompt_frames`` (b): where
        > 0, the sample is [prompt | target] and its span is the target (omnitalker/training/cross_prompt.py)."""
        self.check_inputs(mel, visual, text_ids, lengths, attention_mask)
        # The model learns normalised visual codes (see OmniTalkerTransformer.normalize_visual); unwrap DDP /
        # torch.compile wrappers to reach the statistics.
        core = getattr(transformer, "module", transformer)
        core = getattr(core, "_orig_mod", core)
        if visual is not None and hasattr(core, "normalize_visual"):
            visual = core.normalize_visual(visual)  # b n 58
        ref = mel if mel is not None else visual
        batch, frames, device = ref.shape[0], ref.shape[1], ref.device
        if attention_mask is None:
            lengths = torch.full((batch,), frames, device=device) if lengths is None else lengths.to(device)
            attention_mask = lengths_to_mask(lengths, frames)  # b n
        else:
            attention_mask = attention_mask.to(device=device, dtype=torch.bool)
            lengths = attention_mask.sum(-1)  # b
        if int(lengths.min()) < 1:
            raise ValueError("every sample needs at least one valid frame")

        t = sample_timesteps(
            batch,
            distribution=self.timestep_distribution,
            logit_mean=self.logit_mean,
            logit_std=self.logit_std,
            generator=generator,
            device=device,
        )  # b
        mask = span_mask(
            lengths, frames, frac_range=self.span_fraction, end_prob=self.end_span_prob, prompt_frames=prompt_frames,
            generator=generator,
        ) & attention_mask  # b n
        drop_text = sample_drop(batch, self.drop_text_prob, generator=generator, device=device)  # b
        drop_audio = sample_drop(batch, self.drop_audio_cond_prob, generator=generator, device=device)  # b
        drop_visual = sample_drop(batch, self.drop_visual_cond_prob, generator=generator, device=device)  # b
        audio_driven = sample_drop(batch, self.audio_driven_prob, generator=generator, device=device)  # b
        # audio-driven samples give the model their whole audio as prompt, so nothing audio is infilled
        audio_mask = mask & ~audio_driven[:, None]  # b n

        inputs, targets = {}, {}
        for name, x1, stream_mask in (("audio", mel, audio_mask), ("visual", visual, mask)):
            if x1 is None:
                continue
            x0 = randn(tuple(x1.shape), generator=generator, device=device, dtype=x1.dtype)  # b n d
            inputs[name] = interpolate(x0, x1, t)  # b n d
            inputs[f"{name}_cond"] = torch.where(stream_mask[..., None], torch.zeros_like(x1), x1)  # b n d
            targets[name] = velocity_target(x0, x1)  # b n d

        pred = transformer(
            **inputs,
            text_ids=text_ids,
            timestep=t,
            attention_mask=attention_mask,
            drop_text=drop_text,
            drop_audio_cond=drop_audio,
            drop_visual_cond=drop_visual,
            **({} if text_durations is None else {"text_durations": text_durations}),
        )

        total = ref.new_zeros(())
        losses: dict[str, float] = {}
        if mel is not None:
            stream_loss = masked_l1(pred.audio, targets["audio"], audio_mask)
            total = total + self.weights["mel"] * stream_loss
            losses["mel"] = stream_loss.detach().item()
        if visual is not None:
            for name, visual_slice in self.visual_slices.items():
                stream_loss = masked_l1(pred.visual[..., visual_slice], targets["visual"][..., visual_slice], mask)
                total = total + self.weights[name] * stream_loss
                losses[name] = stream_loss.detach().item()
        return FlowMatchingLossOutput(
            loss=total,
            losses=losses,
            mask=mask,
            timestep=t,
            drop_text=drop_text,
            drop_audio_cond=drop_audio,
            drop_visual_cond=drop_visual,
            audio_mask=audio_mask,
        )


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over frames where ``mask`` (b n) is True and all feature dims; 0 if none."""
    weight = mask[..., None].to(pred.dtype)  # b n 1
    count = weight.sum() * pred.shape[-1]
    return ((pred - target).abs() * weight).sum() / count.clamp(min=1)
