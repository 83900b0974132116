"""Guidance reuse (GuidanceConfig.refresh_every): the guidance term computed on every k-th step and reused between."""

from __future__ import annotations

import pytest
import torch

from omnitalker.flow import GuidanceConfig, OmniTalkerFlowMatchScheduler, guided_velocity, sample
from omnitalker.flow.guidance import DEFAULT_REFRESH_EVERY
from tests.pipeline_fixtures import seeded, tiny_transformer

MEL_DIM, VISUAL_DIM = 100, 58


def inputs(b: int = 2, n: int = 18, nt: int = 6, seed: int = 0) -> dict:
    gen = seeded(seed)
    mask = torch.zeros(b, n, dtype=torch.bool)
    mask[:, : n // 3] = True
    return dict(
        audio=torch.randn(b, n, MEL_DIM, generator=gen),
        audio_cond=torch.where(mask[..., None], torch.randn(b, n, MEL_DIM, generator=gen), 0.0),
        visual=torch.randn(b, n, VISUAL_DIM, generator=gen),
        visual_cond=torch.where(mask[..., None], torch.randn(b, n, VISUAL_DIM, generator=gen), 0.0),
        text_ids=torch.randint(0, 40, (b, nt), generator=gen),
    )


def count_batches(model) -> tuple[list[int], object]:
    sizes = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: sizes.append(kw["audio"].shape[0]), with_kwargs=True)
    return sizes, hook


@torch.no_grad()
def test_reused_term_is_one_pass_plus_the_rescaled_term():
    model, x = tiny_transformer(0, scale=0.2), inputs()
    guidance = GuidanceConfig(text=2.0, audio=0.5, anneal="linear")
    fresh = guided_velocity(model, **x, timestep=0.2, guidance=guidance)
    full = model(**x, timestep=0.2)
    # the term is the un-annealed sum of w_c (v_full - v_-c); the velocity adds it scaled by a(t)
    torch.testing.assert_close(fresh.audio, full.audio + guidance.scale(0.2) * fresh.term.audio, atol=1e-5, rtol=1e-5)
    sizes, hook = count_batches(model)
    reused = guided_velocity(model, **x, timestep=0.6, guidance=guidance, reuse_term=fresh.term)
    hook.remove()
    assert sizes == [2], "a reusing step is one conditional pass"
    later = model(**x, timestep=0.6)
    for stream in ("audio", "visual"):
        expected = getattr(later, stream) + guidance.scale(0.6) * getattr(fresh.term, stream)
        torch.testing.assert_close(getattr(reused, stream), expected, atol=1e-6, rtol=1e-6)


@torch.no_grad()
def test_refresh_every_sets_the_passes_of_a_sampling_run():
    model, x = tiny_transformer(1, scale=0.2), inputs()
    kwargs = dict(text_ids=x["text_ids"], audio_cond=x["audio_cond"], visual_cond=x["visual_cond"],
                  cond_mask=x["audio_cond"].abs().sum(-1) > 0, num_inference_steps=6)
    runs = {}
    for every in (1, 2, 3):
        sizes, hook = count_batches(model)
        runs[every] = sample(model, OmniTalkerFlowMatchScheduler(), guidance=GuidanceConfig(text=2.0, refresh_every=every),
                             generator=seeded(0), **kwargs)
        hook.remove()
        assert sizes == [4 if step % every == 0 else 2 for step in range(6)]
    default = sample(model, OmniTalkerFlowMatchScheduler(), guidance=GuidanceConfig(text=2.0), generator=seeded(0),
                     **kwargs)
    torch.testing.assert_close(runs[DEFAULT_REFRESH_EVERY].audio, default.audio, atol=0, rtol=0)
    plain = runs[1]
    assert not torch.allclose(runs[2].audio, runs[1].audio), "reuse changes the trajectory (slightly)"
    # ... but only slightly: the reused term is close to the fresh one on this smooth toy model
    spread = (runs[1].audio - plain.audio.mean()).abs().mean()
    assert (runs[2].audio - runs[1].audio).abs().mean() < 0.5 * spread


@torch.no_grad()
def test_a_refresh_outside_the_interval_leaves_no_term_so_the_next_step_computes_it():
    model, x = tiny_transformer(2, scale=0.2), inputs()
    guidance = GuidanceConfig(text=2.0, interval=(0.5, 1.0), refresh_every=4)
    outside = guided_velocity(model, **x, timestep=0.2, guidance=guidance)
    assert outside.term is None
    scheduler = OmniTalkerFlowMatchScheduler()
    sizes, hook = count_batches(model)
    sample(model, scheduler, guidance=guidance, generator=seeded(0), num_inference_steps=8, text_ids=x["text_ids"],
           audio_cond=x["audio_cond"], cond_mask=x["audio_cond"].abs().sum(-1) > 0)
    hook.remove()
    times = scheduler.timesteps.tolist()
    first_inside = next(k for k, t in enumerate(times) if t >= 0.5)
    assert sizes[first_inside] == 4, "the first step in the interval has no term to reuse: it computes one"
    assert all(size == 2 for size in sizes[:first_inside])


def test_refresh_every_is_checked_and_parsed():
    assert GuidanceConfig.parse("text=3,refresh_every=2").refresh_every == 2
    assert GuidanceConfig().refresh_every >= 1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="refresh_every"):
            GuidanceConfig(refresh_every=bad)
    with pytest.raises(ValueError, match="refresh_every"):
        GuidanceConfig.parse("refresh_every=two")


def test_the_pipeline_resolves_guidance_reuse_from_the_call_then_its_config_then_the_default():
    from omnitalker.convert.pipeline import F5_GUIDANCE
    from omnitalker.pipeline.modes import check_guidance_defaults

    class Config(dict):
        pass

    from omnitalker.pipeline.cascade import CascadeMixin

    class Pipe(CascadeMixin):
        def __init__(self, guidance):
            self.config = Config(guidance=guidance)

    assert Pipe(None).guidance_refresh_every() == DEFAULT_REFRESH_EVERY
    assert Pipe({"refresh_every": 3}).guidance_refresh_every() == 3
    assert Pipe({"refresh_every": 3}).guidance_refresh_every(1) == 1
    assert Pipe(F5_GUIDANCE).guidance_refresh_every() == 1, "a converted F5-TTS samples exactly as F5 does"
    assert Pipe({"text": 2.0}).guidance_strengths()[0] == 2.0
    with pytest.raises(ValueError, match="refresh_every"):
        check_guidance_defaults({"refresh_every": 0})
    with pytest.raises(ValueError, match="keys"):
        check_guidance_defaults({"refresh": 2})
