"""In-context infilling sampler: noise -> mel and/or visual codes with the OmniTalker DiT (paper §3.3).

The sequence is [reference prompt | placeholder to generate]; per stream, a condition mask (b n, True where
the prompt is given) says which frames are known. Each stream is present iff its condition tensor is given
(pass zeros with an all-False mask to generate a stream without any prompt). Modes:

- joint:         audio_cond + visual_cond, one mask for both (the paper's text-to-audio-visual setting);
- audio-only:    audio_cond only (F5-TTS-style TTS);   visual-only: visual_cond only;
- audio-driven:  audio_cond_mask all True (the whole speech is given) and only the visual span is infilled.

    out = sample(transformer, scheduler, text_ids=ids, num_frames=n, audio_cond=mel_prompt,
                 visual_cond=code_prompt, cond_mask=prompt_mask, guidance=GuidanceConfig(), generator=g)
    out.audio  # b n 100 (prompt frames restored)     out.visual  # b n 58

Noise is drawn per sample over its valid frames only, from its own generator when a list is given, so a
sample's result does not depend on what else is in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .guidance import GuidanceConfig, guided_velocity
from .masking import randn
from .scheduler import OmniTalkerFlowMatchScheduler

STREAMS = ("audio", "visual")


@dataclass
class FlowSampleOutput:
    """Sampled streams (None for absent ones), b n d, prompt frames restored and padded frames zeroed."""

    audio: torch.Tensor | None
    visual: torch.Tensor | None


def _pad_frames(x: torch.Tensor, num_frames: int, value=0) -> torch.Tensor:
    """Right-pad dim 1 of x (b n ...) to ``num_frames``."""
    extra = num_frames - x.shape[1]
    if x.ndim == 3:
        return F.pad(x, (0, 0, 0, extra), value=value)
    return F.pad(x, (0, extra), value=value)


def _draw_noise(
    shapes: dict[str, tuple[int, int, int]],
    valid_lengths: list[int],
    generator: torch.Generator | list[torch.Generator] | None,
    device: torch.device,
    dtype: torch.dtype,
) -> dict[str, torch.Tensor]:
    """N(0, I) per stream; sample i draws (length_i, d) per stream from generator i (or the shared one)."""
    batch = len(valid_lengths)
    if isinstance(generator, list) and len(generator) != batch:
        raise ValueError(f"got {len(generator)} generators for a batch of {batch}: pass one per sample or one")
    noise = {name: torch.zeros(shape, device=device, dtype=dtype) for name, shape in shapes.items()}
    for i, length in enumerate(valid_lengths):
        gen = generator[i] if isinstance(generator, list) else generator
        for name, (_, _, dim) in shapes.items():  # fixed stream order: audio then visual
            noise[name][i, :length] = randn((length, dim), generator=gen, device=device, dtype=dtype)
    return noise


def check_inputs(text_ids, num_frames, conds, masks, attention_mask):
    present = {name: c for name, c in conds.items() if c is not None}
    if not present:
        raise ValueError("give audio_cond and/or visual_cond (zeros with an all-False mask for no prompt)")
    batches = {c.shape[0] for c in present.values()} | {text_ids.shape[0]}
    if len(batches) != 1:
        raise ValueError(f"text_ids and the conditions must share the batch size, got {sorted(batches)}")
    for name, c in present.items():
        if c.ndim != 3:
            raise ValueError(f"{name}_cond must be (batch, frames, dims), got shape {tuple(c.shape)}")
        if c.shape[1] > num_frames:
            raise ValueError(f"{name}_cond has {c.shape[1]} frames, more than num_frames={num_frames}")
        mask = masks.get(name)
        if mask is not None and (mask.ndim != 2 or mask.shape[0] != c.shape[0] or mask.shape[1] > num_frames):
            raise ValueError(f"{name} cond mask must be (batch, <= num_frames) bool, got {tuple(mask.shape)}")
    if attention_mask is not None and tuple(attention_mask.shape) != (text_ids.shape[0], num_frames):
        raise ValueError(f"attention_mask must be (batch, num_frames)=({text_ids.shape[0]}, {num_frames})")


@torch.no_grad()
def sample(
    transformer: nn.Module,
    scheduler: OmniTalkerFlowMatchScheduler,
    *,
    text_ids: torch.Tensor,
    num_frames: int | None = None,
    audio_cond: torch.Tensor | None = None,
    visual_cond: torch.Tensor | None = None,
    cond_mask: torch.Tensor | None = None,
    audio_cond_mask: torch.Tensor | None = None,
    visual_cond_mask: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    guidance: GuidanceConfig | None = None,
    num_inference_steps: int | None = None,
    generator: torch.Generator | list[torch.Generator] | None = None,
    audio_noise: torch.Tensor | None = None,
    visual_noise: torch.Tensor | None = None,
    callback_on_step_end: Callable[[int, torch.Tensor, dict], dict | None] | None = None,
    progress: bool = False,
    text_durations: torch.Tensor | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FlowSampleOutput:
    """Integrate the flow ODE from noise (t = 0) to data (t = 1), in-filling the non-prompt frames.

    Args:
        transformer: an ``OmniTalkerTransformer`` (or anything with its forward signature).
        scheduler: the ODE solver; ``set_timesteps`` is called here.
        text_ids: b nt long, pad -1 (reference text + driving text).
        num_frames: total frames n (prompt + target); defaults to the conditions' length. Shorter conditions
            and masks are zero/False-padded to n.
        audio_cond, visual_cond: b n' d prompt features (None = stream absent).
        cond_mask: b n' bool, True where the prompt is given, shared by both streams.
        audio_cond_mask, visual_cond_mask: per-stream masks, override ``cond_mask`` (e.g. audio all True for
            audio-driven video). With no mask at all, a stream's prompt is its cond's first n' frames.
        attention_mask: b n bool, True on valid frames (for batches of different lengths).
        guidance: multi-condition CFG; None = a single conditional pass per evaluation.
        num_inference_steps: ODE intervals (scheduler default if None).
        generator: a torch.Generator or one per sample.
        audio_noise, visual_noise: initial x at t = 0 (b n d) instead of drawing it.
        callback_on_step_end: ``fn(step, timestep, {"audio": x_a, "visual": x_v}) -> dict | None``, called after
            every scheduler step; tensors it returns under those keys replace the current ones.
        progress: show a tqdm bar.
        text_durations: b nt frames per token, summing to each sample's valid frames (prompt + target);
            required by a transformer with the "durations" text layout, refused by the others.
        should_stop: asked after every step (after the callback); True ends the integration there, and the
            result is formed from the state reached exactly as at the last step (prompt restored, visual codes
            back in raw units), so an interrupted run and a finished one end through the same code.
    """
    conds = {"audio": audio_cond, "visual": visual_cond}
    masks = {"audio": audio_cond_mask if audio_cond_mask is not None else cond_mask,
             "visual": visual_cond_mask if visual_cond_mask is not None else cond_mask}
    present = [name for name in STREAMS if conds[name] is not None]
    if num_frames is None:
        num_frames = max(conds[name].shape[1] for name in present) if present else 0
    check_inputs(text_ids, num_frames, conds, masks, attention_mask)
    # The model works on normalised visual codes (OmniTalkerTransformer.normalize_visual); callbacks see that
    # space, the result is returned in raw code units.
    raw_conds = dict(conds)
    normalize = getattr(transformer, "normalize_visual", None)
    if conds["visual"] is not None and normalize is not None:
        conds["visual"] = normalize(conds["visual"])
    ref = conds[present[0]]
    batch, device, dtype = ref.shape[0], ref.device, ref.dtype

    valid = attention_mask.to(device=device, dtype=torch.bool) if attention_mask is not None else None
    prompt, step_cond = {}, {}
    for name in present:
        cond = conds[name]
        mask = masks[name]
        if mask is None:  # the given frames are the prompt
            mask = torch.ones(cond.shape[:2], dtype=torch.bool, device=device)
        mask = _pad_frames(mask.to(device=device, dtype=torch.bool), num_frames, value=False)  # b n
        if valid is not None:
            mask = mask & valid
        prompt[name] = mask
        step_cond[name] = torch.where(mask[..., None], _pad_frames(cond, num_frames), 0.0)  # b n d
    known = {name: prompt[name] if valid is None else prompt[name] | ~valid for name in present}
    if all(bool(known[name].all()) for name in present):
        raise ValueError("nothing to generate: every valid frame is prompt; pass a larger num_frames or a cond mask")

    lengths = valid.sum(-1).tolist() if valid is not None else [num_frames] * batch
    shapes = {name: (batch, num_frames, conds[name].shape[-1]) for name in present}
    given = {"audio": audio_noise, "visual": visual_noise}
    drawn = _draw_noise({n: s for n, s in shapes.items() if given[n] is None}, lengths, generator, device, dtype)
    x = {}
    for name in present:
        noise = given[name] if given[name] is not None else drawn[name]
        if tuple(noise.shape) != shapes[name]:
            raise ValueError(f"{name}_noise must have shape {shapes[name]}, got {tuple(noise.shape)}")
        x[name] = noise.to(device=device, dtype=dtype)

    scheduler.set_timesteps(num_inference_steps, device=device)
    dims = [x[name].shape[-1] for name in present]
    text_cache = {}  # text features per CFG pass layout: the text encoder runs once per run, not per step
    term = None  # the last computed guidance term, reused between refreshes (GuidanceConfig.refresh_every)
    # no bar object at all unless asked: gradio's track_tqdm shows even a disabled tqdm, and each chunk's 16-step bar
    # was read as one bar counting past its total ("sampling - 175%" on the page)
    timesteps = tqdm(scheduler.timesteps, desc="sampling") if progress else scheduler.timesteps
    for step, t in enumerate(timesteps):
        refresh = guidance is None or term is None or guidance.refreshes(step)
        velocity = guided_velocity(
            transformer,
            audio=x.get("audio"),
            audio_cond=step_cond.get("audio"),
            visual=x.get("visual"),
            visual_cond=step_cond.get("visual"),
            text_ids=text_ids,
            timestep=t,
            attention_mask=valid,
            guidance=guidance,
            text_cache=text_cache,
            text_durations=text_durations,
            reuse_term=None if refresh else term,
        )
        if velocity.term is not None:
            term = velocity.term
        # one scheduler state for all streams: step their concatenation
        joint_v = torch.cat([getattr(velocity, name) for name in present], dim=-1)  # b n (d_a + d_v)
        joint_x = torch.cat([x[name] for name in present], dim=-1)  # b n (d_a + d_v)
        joint_x = scheduler.step(joint_v, t, joint_x).prev_sample
        x = dict(zip(present, joint_x.split(dims, dim=-1), strict=True))
        if callback_on_step_end is not None:
            returned = callback_on_step_end(step, t, dict(x)) or {}
            x.update({name: returned[name] for name in present if name in returned})
        if should_stop is not None and should_stop():
            break

    out = {}
    denormalize = getattr(transformer, "denormalize_visual", None)
    if "visual" in x and denormalize is not None:
        x["visual"] = denormalize(x["visual"])
    for name in present:
        raw_prompt = _pad_frames(raw_conds[name].to(device=device, dtype=dtype), num_frames)  # b n d
        result = torch.where(prompt[name][..., None], raw_prompt, x[name])  # b n d
        out[name] = result if valid is None else result * valid[..., None]
    return FlowSampleOutput(audio=out.get("audio"), visual=out.get("visual"))
