"""Random draws for flow-matching training: padding masks, infilling spans, timesteps, condition drops.

Every function takes an optional ``torch.Generator``; the draw happens on the generator's device and the
result is moved to ``device``, so a CPU generator gives the same numbers whatever device trains.

    mask = span_mask(lengths, max_len=n, frac_range=(0.7, 1.0), generator=g)   # b n bool
    t = sample_timesteps(b, distribution="logit_normal", generator=g)           # b, in (0, 1)
"""

from __future__ import annotations

import torch

# OmniTalker (and F5-TTS) mask 70-100 % of each utterance; the rest is the in-context prompt.
DEFAULT_SPAN_FRACTION = (0.7, 1.0)
# OmniTalker samples training timesteps from a logit-normal(0, 1) instead of U(0, 1) (SD3 recipe).
DEFAULT_LOGIT_MEAN = 0.0
DEFAULT_LOGIT_STD = 1.0
TIMESTEP_DISTRIBUTIONS = ("logit_normal", "uniform")


def _draw_device(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
    """Draw on the generator's device (a generator only feeds tensors on its own device)."""
    if generator is not None:
        return generator.device
    return torch.device(device) if device is not None else torch.device("cpu")


def rand(shape: tuple[int, ...], *, generator=None, device=None) -> torch.Tensor:
    """U[0, 1) floats drawn with ``generator`` and placed on ``device``."""
    out = torch.rand(shape, generator=generator, device=_draw_device(generator, device))
    return out.to(device) if device is not None else out


def randn(shape: tuple[int, ...], *, generator=None, device=None, dtype=None) -> torch.Tensor:
    """N(0, I) floats drawn with ``generator`` and placed on ``device``/``dtype``."""
    out = torch.randn(shape, generator=generator, device=_draw_device(generator, device))
    return out.to(device=device if device is not None else out.device, dtype=dtype or out.dtype)


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """``lengths`` (b) -> bool mask (b n), True on the first ``lengths[i]`` frames."""
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (b,), got shape {tuple(lengths.shape)}")
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # b n


def span_mask(
    lengths: torch.Tensor,
    max_len: int,
    *,
    frac_range: tuple[float, float] = DEFAULT_SPAN_FRACTION,
    end_prob: float = 0.0,
    prompt_frames: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One random contiguous span per sample covering ``frac`` of its valid frames, frac ~ U(frac_range).

    The span length is ``ceil(frac * length)`` (so the masked fraction is never below ``frac_range[0]``),
    its start is uniform over the positions that keep it inside the valid frames, except that with
    probability ``end_prob`` it ends at the last valid frame: the inference layout, [prompt | target], which a
    uniform start draws only about once per (length - span) samples. A sample whose ``prompt_frames`` (b) is > 0
    is already [prompt | target] (another clip's tail before the clip: omnitalker/training/cross_prompt.py), so its
    span is exactly the target. Returns b n bool, True = masked (to be generated); padded frames are never masked.
    """
    low, high = frac_range
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"frac_range must satisfy 0 <= low <= high <= 1, got {frac_range}")
    if not 0.0 <= end_prob <= 1.0:
        raise ValueError(f"end_prob must be in [0, 1], got {end_prob}")
    lengths = lengths.long()
    if int(lengths.max()) > max_len:
        raise ValueError(f"a length ({int(lengths.max())}) exceeds max_len ({max_len})")
    batch = lengths.shape[0]
    frac = low + (high - low) * rand((batch,), generator=generator, device=lengths.device)  # b
    span = torch.ceil(frac * lengths).long().clamp(max=lengths)  # b
    start = (rand((batch,), generator=generator, device=lengths.device) * (lengths - span + 1)).long()  # b
    start = torch.minimum(start, lengths - span)  # guards the rare rand() == 1 - eps rounding
    if end_prob > 0:  # drawn only when asked, so runs without it keep their random stream (exact resume)
        at_end = rand((batch,), generator=generator, device=lengths.device) < end_prob  # b
        start = torch.where(at_end, lengths - span, start)  # b
    if prompt_frames is not None:  # after the draws, so they (and an exact resume) are unchanged
        prompt_frames = prompt_frames.to(lengths.device).long()  # b
        if bool(((prompt_frames < 0) | (prompt_frames >= lengths)).any()):
            raise ValueError(f"prompt_frames must leave at least one target frame: got {prompt_frames.tolist()} "
                             f"for lengths {lengths.tolist()}")
        prompted = prompt_frames > 0  # b
        start = torch.where(prompted, prompt_frames, start)  # b
        span = torch.where(prompted, lengths - prompt_frames, span)  # b
    pos = torch.arange(max_len, device=lengths.device)[None, :]  # 1 n
    return (pos >= start[:, None]) & (pos < (start + span)[:, None])  # b n


def sample_timesteps(
    batch: int,
    *,
    distribution: str = "logit_normal",
    logit_mean: float = DEFAULT_LOGIT_MEAN,
    logit_std: float = DEFAULT_LOGIT_STD,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.Tensor:
    """Per-sample flow time t in (0, 1) (D1: t = 0 noise, t = 1 data).

    ``"logit_normal"``: t = sigmoid(u), u ~ N(logit_mean, logit_std^2) -- concentrates training on the
    middle of the path, where the velocity is hardest to predict. ``"uniform"``: t ~ U[0, 1) (F5-TTS).
    """
    if distribution == "logit_normal":
        u = logit_mean + logit_std * randn((batch,), generator=generator, device=device)
        return torch.sigmoid(u)
    if distribution == "uniform":
        return rand((batch,), generator=generator, device=device)
    raise ValueError(f"unknown timestep distribution {distribution!r}; use one of {TIMESTEP_DISTRIBUTIONS}")


def sample_drop(batch: int, prob: float, *, generator=None, device=None) -> torch.Tensor:
    """Per-sample Bernoulli(prob) bools (b): which samples drop a condition for classifier-free guidance."""
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"drop probability must be in [0, 1], got {prob}")
    return rand((batch,), generator=generator, device=device) < prob
