"""Multi-condition classifier-free guidance (paper §3.3 Eq. 4) with optional CFG annealing (OmniHuman §3.3).

The model is conditioned on three things, each dropped with p = 0.2 during training: the text, the audio
prompt and the visual prompt. At sampling time we evaluate, in ONE batched forward,

    v_full          every condition given
    v_{-c}          condition c dropped, for each c with a non-zero strength w_c
    v_{-all}        every condition dropped (only for the F5-style ``joint`` strength)

and combine them, per stream (audio and visual velocities alike), as

    v = v_full + a(t) * [ sum_c w_c (v_full - v_{-c})  +  w_joint (v_full - v_{-all}) ]

so each w_c pushes the sample further along the direction that condition c contributes, and all strengths 0
gives exactly the conditional prediction (a single pass, no extra compute). a(t) is the annealing factor:

    "constant"  a = 1
    "linear"    a = 1 - (1 - m) t                 (from 1 at t = 0 noise to m at t = 1 data)
    "cosine"    a = m + (1 - m) (1 + cos(pi t)) / 2

with m = ``anneal_min_scale``, and a(t) = 0 outside ``interval`` (guidance in a limited interval, Kynkaanniemi
et al. 2024: the skipped steps cost one pass instead of 1 + #conditions). OmniHuman reports that strong guidance late in sampling adds artefacts
(wrinkles) while early guidance is what buys sync and expressiveness, hence the decay towards the data end.
Annealing is a function of the flow time t (not of the step index), so it means the same for any solver or
number of steps.

Cost: every non-zero strength adds one pass to the batched forward, and on a CPU the time is close to linear in
the batch, so (text, audio, visual) guidance costs 4 passes per step, and the default (text only) and ``f5(s)``
(one joint drop) 2 passes, about half the time of 4. Per-condition control is what the extra passes buy; ``interval=(0, 0.5)`` keeps it where it matters most at roughly 5/8 of the cost.

Guidance reuse (``refresh_every`` k > 1): the guidance term ``sum_c w_c (v_full - v_{-c})`` changes slowly along
the trajectory, so it is computed on every k-th step only and reused, rescaled by a(t), on the steps between,
which then cost one pass. k = 2 (the default) with text guidance is 24 passes instead of 32 over 16 steps (the
same idea as the cached CFG residual of video-diffusion accelerators; its cost in quality is in BENCHMARKS.md,
"Default guidance").

Negative strengths (down to -1) interpolate instead: w_c = -1 takes the velocity without condition c as the base
and keeps the other terms, e.g. ``audio=-1`` with text 3 is ``v_{-audio} + 3 (v_full - v_{-text})``. On the demo it
is a voice-likeness knob, not a free gain (it helped unseen voices' words on one held-out set and hurt them on
two, and lowered voice similarity on all three: CHANGELOG.md, 2026-11-29), so the default stays 0.

F5-TTS compatibility: F5's ``cfg_strength`` s computes ``v + s (v - v_null)`` with text and audio prompt
dropped together, i.e. ``GuidanceConfig.f5(s)`` = ``GuidanceConfig(text=0, audio=0, visual=0, joint=s)``.

    guidance = GuidanceConfig(text=2.0, audio=1.0, visual=1.0, anneal="cosine")
    v = guided_velocity(transformer, audio=x_a, audio_cond=c_a, visual=x_v, visual_cond=c_v,
                        text_ids=ids, timestep=t, guidance=guidance)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

CONDITIONS = ("text", "audio", "visual")
STRENGTHS = (*CONDITIONS, "joint")  # the strength fields of GuidanceConfig
ANNEAL_SCHEDULES = ("constant", "linear", "cosine")
# The paper's per-condition strengths are not legible in our copy. Defaults: text guidance only (2 passes per
# step), chosen on the demo model on held-out sentences: text alone was as intelligible and in sync as text +
# audio + visual at half the DiT time, guidance in an interval only lost words, and strength 3 understood more
# words than 2 (BENCHMARKS.md, "Default guidance"; `bench/results/guidance/`). Raise audio / visual for a
# stronger pull towards the reference's style.
DEFAULT_TEXT_STRENGTH = 3.0
DEFAULT_AUDIO_STRENGTH = 0.0
DEFAULT_VISUAL_STRENGTH = 0.0
# The guidance term on every other step (24 passes instead of 32 over 16 steps): on the demo model it scores as
# the every-step default within noise on both held-out splits (BENCHMARKS.md, "Default guidance").
DEFAULT_REFRESH_EVERY = 2
# A negative strength w in [-1, 0) interpolates: v_full + w (v_full - v_{-c}) = (1 + w) v_full - w v_{-c}, i.e. it
# weakens condition c (-1 ignores it). Below -1 would extrapolate away from the condition, which no use asks for.
MIN_STRENGTH = -1.0


@dataclass
class GuidanceConfig:
    """Per-condition CFG strengths and their annealing over the flow time t (see the module docstring).

    Args:
        text, audio, visual: strength of each condition (0 = no extra pass for it; negative, down to -1, weakens it).
        joint: F5-style strength against the all-conditions-dropped prediction.
        anneal: ``"constant"`` | ``"linear"`` | ``"cosine"``.
        anneal_min_scale: the factor a(t) reaches at t = 1 (data) for the decaying schedules.
        interval: (start, end): guidance only for start <= t < end; elsewhere a single conditional pass.
        refresh_every: compute the guidance term on every k-th sampling step and reuse it between (see the
            module docstring); 1 = every step.
    """

    text: float = DEFAULT_TEXT_STRENGTH
    audio: float = DEFAULT_AUDIO_STRENGTH
    visual: float = DEFAULT_VISUAL_STRENGTH
    joint: float = 0.0
    anneal: str = "constant"
    anneal_min_scale: float = 0.0
    interval: tuple[float, float] = (0.0, 1.0)
    refresh_every: int = DEFAULT_REFRESH_EVERY

    def __post_init__(self):
        for name in STRENGTHS:
            value = getattr(self, name)
            if not math.isfinite(value) or value < MIN_STRENGTH:
                raise ValueError(f"guidance strength {name} must be a finite number >= {MIN_STRENGTH:g} (negative: "
                                 f"towards the prediction without that condition), got {value}")
        if self.anneal not in ANNEAL_SCHEDULES:
            raise ValueError(f"unknown anneal schedule {self.anneal!r}; use one of {ANNEAL_SCHEDULES}")
        if not 0.0 <= self.anneal_min_scale <= 1.0:
            raise ValueError(f"anneal_min_scale must be in [0, 1], got {self.anneal_min_scale}")
        start, end = self.interval
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"interval must be (start, end) with 0 <= start < end <= 1, got {self.interval}")
        if isinstance(self.refresh_every, bool) or not isinstance(self.refresh_every, int) or self.refresh_every < 1:
            raise ValueError(f"refresh_every must be an integer >= 1 (1 = every step), got {self.refresh_every!r}")

    @classmethod
    def none(cls) -> GuidanceConfig:
        """No guidance: one conditional pass per step."""
        return cls(text=0.0, audio=0.0, visual=0.0, joint=0.0)

    @classmethod
    def f5(cls, cfg_strength: float) -> GuidanceConfig:
        """F5-TTS's single guidance: ``v + s (v - v_null)`` with every condition dropped in ``v_null``."""
        return cls(text=0.0, audio=0.0, visual=0.0, joint=cfg_strength)

    @classmethod
    def parse(cls, spec: str) -> GuidanceConfig:
        """From the command-line form ``"text=2,audio=0.5,interval=0:0.5,anneal=cosine"``: the named fields
        replace the defaults (an empty string gives the defaults)."""
        fields = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            try:
                if not sep:
                    raise ValueError
                if name in (*STRENGTHS, "anneal_min_scale"):
                    fields[name] = float(value)
                elif name == "anneal":
                    fields[name] = value.strip()
                elif name == "refresh_every":
                    fields[name] = int(value)
                elif name == "interval":
                    start, end = value.split(":")
                    fields[name] = (float(start), float(end))
                else:
                    raise KeyError(name)
            except KeyError:
                raise ValueError(f"unknown guidance field {name!r} in {spec!r}: use text, audio, visual, joint, "
                                 "anneal, anneal_min_scale, interval, refresh_every") from None
            except ValueError:
                raise ValueError(f"cannot read {part!r} in guidance {spec!r}: write name=value, e.g. text=2 or "
                                 "interval=0:0.5") from None
        return cls(**fields)

    def scale(self, t: float) -> float:
        """Annealing factor a(t): in [anneal_min_scale, 1] inside ``interval``, 0 outside."""
        t = min(max(float(t), 0.0), 1.0)
        start, end = self.interval
        if t < start or (t >= end and end < 1.0):  # the interval includes t = 1 when it ends there
            return 0.0
        floor = self.anneal_min_scale
        if self.anneal == "linear":
            return 1.0 - (1.0 - floor) * t
        if self.anneal == "cosine":
            return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * t)) / 2
        return 1.0

    def strengths(self, t: float, *, available: tuple[str, ...] = CONDITIONS) -> dict[str, float]:
        """Non-zero annealed strengths at time t, keyed by dropped condition ("text", "audio", "visual",
        "joint"); conditions not in ``available`` (e.g. the prompt of an absent stream) are skipped."""
        factor = self.scale(t)
        return {name: value * factor for name, value in self.base_strengths(available).items() if value * factor != 0}

    def base_strengths(self, available: tuple[str, ...] = CONDITIONS) -> dict[str, float]:
        """The non-zero strengths before annealing, keyed like ``strengths``."""
        out = {c: getattr(self, c) for c in CONDITIONS if c in available and getattr(self, c) != 0}
        if self.joint != 0:
            out["joint"] = self.joint
        return out

    def refreshes(self, step: int) -> bool:
        """Whether sampling step ``step`` (0-based) computes the guidance term afresh."""
        return step % self.refresh_every == 0


@dataclass
class GuidanceTerm:
    """The guidance part ``sum_c w_c (v_full - v_{-c})`` per stream before annealing (b n d; None for an absent
    stream): what a later step reuses when ``refresh_every`` > 1."""

    audio: torch.Tensor | None
    visual: torch.Tensor | None


@dataclass
class GuidedVelocity:
    """Guided velocities (None for an absent stream) and the guidance term they used (None without guidance)."""

    audio: torch.Tensor | None
    visual: torch.Tensor | None
    term: GuidanceTerm | None = None


def _repeat(x: torch.Tensor | None, times: int) -> torch.Tensor | None:
    return None if x is None else x.repeat(times, *([1] * (x.ndim - 1)))


def guided_velocity(
    transformer: nn.Module,
    *,
    audio: torch.Tensor | None = None,
    audio_cond: torch.Tensor | None = None,
    visual: torch.Tensor | None = None,
    visual_cond: torch.Tensor | None = None,
    text_ids: torch.Tensor,
    timestep: float | torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    guidance: GuidanceConfig | None = None,
    text_cache: dict | None = None,
    text_durations: torch.Tensor | None = None,
    reuse_term: GuidanceTerm | None = None,
) -> GuidedVelocity:
    """Velocity at ``timestep`` with multi-condition CFG, all passes stacked into one transformer call.

    Shapes: audio/audio_cond b n mel_dim, visual/visual_cond b n visual_dim, text_ids b nt, attention_mask b n,
    text_durations b nt (frames per token; only for a transformer with the "durations" text layout).
    A prompt condition can only be dropped if its stream is present, so e.g. ``visual`` strength is ignored
    for audio-only sampling. ``guidance=None`` means ``GuidanceConfig.none()``.

    ``text_cache``: a dict shared by the calls of ONE sampling run (same text_ids, frames and attention_mask).
    When the transformer has ``embed_text``, the text features of each pass layout are computed once, stored
    there and passed back as ``text_embeds``, so the text encoder runs once per run instead of once per step,
    and the transformer checks the input values (host syncs) on the run's first call only.

    ``reuse_term``: a ``GuidedVelocity.term`` of an earlier step of the same run; when given, only the conditional
    pass runs and the guidance is that term scaled by this step's annealing factor.
    """
    guidance = GuidanceConfig.none() if guidance is None else guidance
    ref = audio if audio is not None else visual
    if ref is None:
        raise ValueError("give at least one stream to denoise (audio and/or visual)")
    batch = ref.shape[0]
    t_value = float(timestep.flatten()[0]) if torch.is_tensor(timestep) else float(timestep)
    available = ("text",) + (("audio",) if audio_cond is not None else ()) + (("visual",) if visual_cond is not None else ())
    strengths = guidance.base_strengths(available)
    factor = guidance.scale(t_value) if strengths else 0.0
    reuse = reuse_term is not None and factor > 0
    passes = ["full"] if reuse or factor == 0 else ["full", *strengths]  # dropped condition per pass
    num_passes = len(passes)

    def drop_flags(condition: str) -> torch.Tensor | bool:
        flags = [name in (condition, "joint") for name in passes]  # which passes drop `condition`
        if not any(flags):
            return False  # lets the transformer skip its per-sample drop path
        return torch.tensor(flags, device=ref.device).repeat_interleave(batch)  # (passes b)

    # fp32 even for a bf16/fp16 model: t near 0 needs the resolution (the time embedding casts itself)
    timestep = torch.as_tensor(timestep, device=ref.device, dtype=torch.float32)
    timestep = timestep.expand(batch) if timestep.ndim == 0 else timestep  # b
    text_drop, cached = drop_flags("text"), {}
    durations = {} if text_durations is None else {"text_durations": _repeat(text_durations, num_passes)}
    if text_cache is not None and hasattr(transformer, "embed_text"):
        key = (tuple(name in ("text", "joint") for name in passes), batch, ref.shape[1])
        first_call = not text_cache
        if key not in text_cache:
            text_cache[key] = transformer.embed_text(_repeat(text_ids, num_passes), ref.shape[1], text_drop,
                                                     _repeat(attention_mask, num_passes), **durations)
        # the value checks (token ids, timestep range, mask) need host syncs: once per run is enough, the
        # later calls of the run share its text, mask and (scheduler-made) timesteps
        text_drop, cached = False, {"text_embeds": text_cache[key], "check_values": first_call}  # (passes b) n dt
    else:
        cached = durations
    out = transformer(
        audio=_repeat(audio, num_passes),
        audio_cond=_repeat(audio_cond, num_passes),
        visual=_repeat(visual, num_passes),
        visual_cond=_repeat(visual_cond, num_passes),
        text_ids=_repeat(text_ids, num_passes),
        timestep=_repeat(timestep, num_passes),
        attention_mask=_repeat(attention_mask, num_passes),
        drop_text=text_drop,
        drop_audio_cond=drop_flags("audio"),
        drop_visual_cond=drop_flags("visual"),
        **cached,
    )

    def combine(velocity: torch.Tensor | None, reused: torch.Tensor | None) -> tuple:
        """(guided velocity, guidance term) of one stream; ``reused`` is its term from an earlier step."""
        if velocity is None:
            return None, None
        per_pass = velocity.reshape(num_passes, batch, *velocity.shape[1:])  # passes b n d
        full = per_pass[0]
        if factor == 0:
            return full, None
        if reuse:
            return full + factor * reused, reused
        guided, term = full, torch.zeros_like(full)
        for index, name in enumerate(passes[1:], start=1):
            difference = full - per_pass[index]  # b n d
            guided = guided + (strengths[name] * factor) * difference
            term = term + strengths[name] * difference
        return guided, term

    audio, audio_term = combine(out.audio, reuse_term.audio if reuse else None)
    visual, visual_term = combine(out.visual, reuse_term.visual if reuse else None)
    term = GuidanceTerm(audio=audio_term, visual=visual_term) if factor > 0 else None
    return GuidedVelocity(audio=audio, visual=visual, term=term)
