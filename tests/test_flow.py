"""Tests of omnitalker.flow: OT path, training draws, loss, ODE scheduler, multi-condition CFG and sampler.

    python -m pytest tests/test_flow.py -q -x
"""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from omnitalker.flow.guidance import GuidanceConfig, guided_velocity
from omnitalker.flow.loss import (
    EXP_SLICE,
    EYE_SLICE,
    POSE_SLICE,
    FlowMatchingLoss,
    interpolate,
    velocity_target,
)
from omnitalker.flow.masking import lengths_to_mask, sample_drop, sample_timesteps, span_mask
from omnitalker.flow.sampling import sample
from omnitalker.flow.scheduler import (
    OmniTalkerFlowMatchScheduler,
    diffusers_sigmas,
    flow_time_grid,
    sigma_to_t,
    t_to_sigma,
    velocity_from_diffusers,
    velocity_to_diffusers,
)
from omnitalker.models.transformer import OmniTalkerTransformer
from tests.pipeline_fixtures import tiny_transformer

MEL_DIM, VISUAL_DIM = 100, 58


def seeded(seed: int) -> torch.Generator:
    return torch.Generator("cpu").manual_seed(seed)


def random_tiny_transformer(seed: int = 0) -> OmniTalkerTransformer:
    return tiny_transformer(seed, scale=0.2)


def batch(b: int = 2, n: int = 24, nt: int = 8, seed: int = 0):
    gen = seeded(seed)
    mel = torch.randn(b, n, MEL_DIM, generator=gen)
    visual = torch.randn(b, n, VISUAL_DIM, generator=gen)
    text_ids = torch.randint(0, 40, (b, nt), generator=gen)
    return mel, visual, text_ids


# ----------------------------------------------------------------------------- OT path and draws
def test_ot_path_and_target():
    x0, x1 = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    t = torch.tensor([0.0, 0.25, 1.0])
    xt = interpolate(x0, x1, t)
    torch.testing.assert_close(xt[0], x0[0])
    torch.testing.assert_close(xt[1], 0.75 * x0[1] + 0.25 * x1[1])
    torch.testing.assert_close(xt[2], x1[2])
    # the target is the time derivative of the path
    eps = 1e-3
    t_mid = torch.full((3,), 0.4)
    derivative = (interpolate(x0, x1, t_mid + eps) - interpolate(x0, x1, t_mid - eps)) / (2 * eps)
    torch.testing.assert_close(derivative, velocity_target(x0, x1), atol=1e-3, rtol=1e-3)


def test_logit_normal_timesteps_statistics():
    t = sample_timesteps(20000, generator=seeded(0))
    assert bool(((t > 0) & (t < 1)).all())
    logit = torch.log(t / (1 - t))
    assert abs(float(logit.mean())) < 0.03
    assert abs(float(logit.std()) - 1.0) < 0.03
    shifted = sample_timesteps(20000, logit_mean=0.5, logit_std=2.0, generator=seeded(1))
    logit = torch.log(shifted / (1 - shifted))
    assert abs(float(logit.mean()) - 0.5) < 0.06 and abs(float(logit.std()) - 2.0) < 0.06
    uniform = sample_timesteps(20000, distribution="uniform", generator=seeded(2))
    assert abs(float(uniform.mean()) - 0.5) < 0.01 and float(uniform.min()) >= 0 and float(uniform.max()) < 1
    with pytest.raises(ValueError, match="timestep distribution"):
        sample_timesteps(4, distribution="cosmic")


def test_span_mask_fraction_contiguous_and_within_lengths():
    lengths = torch.randint(1, 200, (500,), generator=seeded(0))
    mask = span_mask(lengths, 200, generator=seeded(1))
    valid = lengths_to_mask(lengths, 200)
    assert not bool((mask & ~valid).any()), "a padded frame was masked"
    frac = mask.sum(-1) / lengths
    assert float(frac.min()) >= 0.7 - 1e-6 and float(frac.max()) <= 1.0
    edges = mask.int().diff(dim=-1, prepend=torch.zeros(500, 1, dtype=torch.int))
    assert bool(((edges == 1).sum(-1) == 1).all()), "mask is not one contiguous span"
    # spans start anywhere that keeps them inside: not always at 0
    assert bool((~mask[:, 0] & (lengths > 20)).any())
    with pytest.raises(ValueError, match="frac_range"):
        span_mask(lengths, 200, frac_range=(0.9, 0.5))


def test_span_mask_of_a_prompted_sample_is_its_target():
    lengths = torch.tensor([50, 40, 30])
    uniform = span_mask(lengths, 60, generator=seeded(1))
    prompted = span_mask(lengths, 60, prompt_frames=torch.tensor([0, 12, 29]), generator=seeded(1))
    frames = torch.arange(60)
    assert torch.equal(prompted[0], uniform[0])  # no prompt: the same random span
    assert torch.equal(prompted[1], (frames >= 12) & (frames < 40))
    assert torch.equal(prompted[2], frames == 29)
    with pytest.raises(ValueError, match="at least one target frame"):
        span_mask(lengths, 60, prompt_frames=torch.tensor([0, 0, 30]))


def test_span_mask_end_prob_anchors_spans_at_the_clip_end():
    lengths = torch.randint(20, 200, (400,), generator=seeded(0))
    last = lengths - 1  # index of each clip's last valid frame
    ends_at_last = lambda mask: mask.gather(1, last[:, None])[:, 0]  # noqa: E731
    uniform = span_mask(lengths, 200, generator=seeded(1))
    assert torch.equal(span_mask(lengths, 200, end_prob=0.0, generator=seeded(1)), uniform)  # same random stream
    assert float(ends_at_last(uniform).float().mean()) < 0.2  # a uniform start rarely reaches the end
    anchored = span_mask(lengths, 200, end_prob=1.0, generator=seeded(1))
    assert bool(ends_at_last(anchored).all()), "end_prob=1: every span must end on the last valid frame"
    assert torch.equal(anchored.sum(-1), uniform.sum(-1))  # same span lengths, only moved
    half = float(ends_at_last(span_mask(lengths, 200, end_prob=0.5, generator=seeded(1))).float().mean())
    assert 0.4 < half < 0.7
    with pytest.raises(ValueError, match="end_prob"):
        span_mask(lengths, 200, end_prob=1.5)


def test_drop_rates_per_sample():
    drops = sample_drop(20000, 0.2, generator=seeded(0))
    assert abs(float(drops.float().mean()) - 0.2) < 0.015
    with pytest.raises(ValueError, match="drop probability"):
        sample_drop(4, 1.5)


# ----------------------------------------------------------------------------- loss
def test_loss_drops_each_condition_independently_per_sample():
    model = OmniTalkerTransformer.from_named_config("tiny")
    mel, visual, text_ids = batch(b=1024, n=6, nt=3)
    out = FlowMatchingLoss()(model, mel=mel, visual=visual, text_ids=text_ids, generator=seeded(0))
    flags = torch.stack([out.drop_text, out.drop_audio_cond, out.drop_visual_cond]).float()  # 3 b
    assert torch.allclose(flags.mean(-1), torch.full((3,), 0.2), atol=0.04)
    both = (flags[0] * flags[1]).mean()  # independent: p^2
    assert abs(float(both) - 0.04) < 0.02
    assert 0 < int(out.drop_text.sum()) < 1024, "drops must vary within a batch (per sample, not per batch)"


class OffsetTransformer(torch.nn.Module):
    """A real transformer plus learnable offsets on its outputs, to read d loss / d prediction."""

    def __init__(self, model, shape_audio, shape_visual):
        super().__init__()
        self.model = model
        self.audio_offset = torch.nn.Parameter(torch.zeros(shape_audio))
        self.visual_offset = torch.nn.Parameter(torch.zeros(shape_visual))

    def forward(self, **kwargs):
        out = self.model(**kwargs)
        return type(out)(audio=out.audio + self.audio_offset, visual=out.visual + self.visual_offset)


def test_loss_generates_exactly_the_target_after_another_clips_prompt():
    mel, visual, text_ids = batch(b=3, n=30)
    lengths = torch.tensor([30, 21, 12])
    model = random_tiny_transformer()
    plain = FlowMatchingLoss()(model, mel=mel, visual=visual, text_ids=text_ids, lengths=lengths, generator=seeded(3))
    prompted = FlowMatchingLoss()(model, mel=mel, visual=visual, text_ids=text_ids, lengths=lengths,
                                  prompt_frames=torch.tensor([0, 7, 4]), generator=seeded(3))
    frames = torch.arange(30)
    assert torch.equal(prompted.mask[0], plain.mask[0])  # no prompt: the random span, drawn as before
    assert torch.equal(prompted.mask[1], (frames >= 7) & (frames < 21))
    assert torch.equal(prompted.mask[2], (frames >= 4) & (frames < 12))
    assert torch.equal(prompted.timestep, plain.timestep)  # same draws: a resumed run stays exact
    with pytest.raises(ValueError, match="at least one target frame"):
        FlowMatchingLoss()(model, mel=mel, visual=visual, text_ids=text_ids, lengths=lengths,
                           prompt_frames=torch.tensor([0, 21, 0]), generator=seeded(3))


def test_loss_only_on_masked_valid_frames():
    mel, visual, text_ids = batch(b=3, n=30)
    lengths = torch.tensor([30, 21, 12])
    wrapped = OffsetTransformer(random_tiny_transformer(), mel.shape, visual.shape)
    out = FlowMatchingLoss()(wrapped, mel=mel, visual=visual, text_ids=text_ids, lengths=lengths, generator=seeded(3))
    out.loss.backward()
    assert not bool((out.mask & ~lengths_to_mask(lengths, 30)).any())
    for grad in (wrapped.audio_offset.grad, wrapped.visual_offset.grad):
        per_frame = grad.abs().sum(-1)  # b n
        assert bool((per_frame[~out.mask] == 0).all()), "loss depends on prompt or padded frames"
        assert bool((per_frame[out.mask] > 0).all()), "loss ignores some masked frames"


def test_loss_per_stream_weights_and_stream_subsets():
    model = random_tiny_transformer()
    mel, visual, text_ids = batch()
    plain = FlowMatchingLoss()(model, mel=mel, visual=visual, text_ids=text_ids, generator=seeded(5))
    assert set(plain.losses) == {"mel", "pose", "exp", "eye"}
    assert math.isclose(plain.loss.item(), sum(plain.losses.values()), rel_tol=1e-5)
    weights = {"mel": 2.0, "pose": 0.0, "exp": 3.0, "eye": 0.5}
    weighted = FlowMatchingLoss(**{f"{k}_weight": v for k, v in weights.items()})(
        model, mel=mel, visual=visual, text_ids=text_ids, generator=seeded(5)
    )
    assert weighted.losses == pytest.approx(plain.losses)  # same draws, same per-stream values
    expected = sum(weights[k] * plain.losses[k] for k in weights)
    assert math.isclose(weighted.loss.item(), expected, rel_tol=1e-5)
    # audio-only (F5-style) and visual-only training
    audio_only = FlowMatchingLoss()(model, mel=mel, text_ids=text_ids, generator=seeded(5))
    assert set(audio_only.losses) == {"mel"}
    visual_only = FlowMatchingLoss()(model, visual=visual, text_ids=text_ids, generator=seeded(5))
    assert set(visual_only.losses) == {"pose", "exp", "eye"}
    assert (POSE_SLICE.stop, EXP_SLICE.stop, EYE_SLICE.stop) == (6, 54, 58)
    # audio-driven samples infill no audio
    driven = FlowMatchingLoss(audio_driven_prob=1.0)(model, mel=mel, visual=visual, text_ids=text_ids)
    assert driven.losses["mel"] == 0.0 and not bool(driven.audio_mask.any()) and driven.losses["exp"] > 0
    with pytest.raises(ValueError, match="share"):
        FlowMatchingLoss()(model, mel=mel, visual=visual[:, :5], text_ids=text_ids)
    with pytest.raises(ValueError, match="weight"):
        FlowMatchingLoss(mel_weight=-1.0)


def test_tiny_model_overfits_a_fixed_batch():
    """Loss falls >= 10x when the same batch (data, noise, t, span) is fit for 120 Adam steps."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threading only adds overhead on a shared 2-core machine
    try:
        torch.manual_seed(0)
        model = OmniTalkerTransformer.from_named_config("tiny")
        frames = torch.linspace(0, 1, 16)[:, None]  # n 1
        mel = torch.sin(2 * math.pi * (frames * torch.arange(1, MEL_DIM + 1) / 20 + torch.arange(MEL_DIM) / 7))
        visual = torch.cos(2 * math.pi * frames * torch.arange(1, VISUAL_DIM + 1) / 15)
        mel, visual = mel.expand(2, -1, -1), visual.expand(2, -1, -1)  # b n d
        text_ids = torch.randint(0, 40, (2, 8), generator=seeded(0))
        loss_fn = FlowMatchingLoss(drop_text_prob=0.0, drop_audio_cond_prob=0.0, drop_visual_cond_prob=0.0)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        history = []
        for _ in range(120):
            out = loss_fn(model, mel=mel, visual=visual, text_ids=text_ids, generator=seeded(0))
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            history.append(out.loss.item())
    finally:
        torch.set_num_threads(threads)
    final = sum(history[-10:]) / 10
    assert history[0] / final >= 10, f"loss only fell from {history[0]:.3f} to {final:.3f}"


# ----------------------------------------------------------------------------- scheduler
def test_scheduler_uses_a_measured_grid_for_its_step_count_and_survives_save_load(tmp_path):
    grid = [0.0, 0.05, 0.15, 0.4, 1.0]
    scheduler = OmniTalkerFlowMatchScheduler(step_grids={"4": grid})
    scheduler.set_timesteps(4)
    torch.testing.assert_close(scheduler.flow_times, torch.tensor(grid))
    scheduler.set_timesteps(5)  # no measured grid for 5 steps: the swayed one
    torch.testing.assert_close(scheduler.flow_times, flow_time_grid(5, -1.0).float())
    scheduler.save_pretrained(tmp_path)
    loaded = OmniTalkerFlowMatchScheduler.from_pretrained(tmp_path)
    loaded.set_timesteps(4)
    torch.testing.assert_close(loaded.flow_times, torch.tensor(grid))
    with pytest.raises(ValueError, match=r"step_grids\['4'\] has 3 flow times; 4 steps need 5"):
        OmniTalkerFlowMatchScheduler(step_grids={"4": [0.0, 0.5, 1.0]})
    with pytest.raises(ValueError, match="increase strictly"):
        OmniTalkerFlowMatchScheduler(step_grids={"2": [0.0, 0.7, 0.5]})


def test_scheduler_timesteps_and_sway():
    scheduler = OmniTalkerFlowMatchScheduler()
    scheduler.set_timesteps(16)
    t = scheduler.timesteps
    assert len(t) == 16 and float(t[0]) == 0.0 and float(t.max()) < 1.0 and bool((t.diff() > 0).all())
    uniform = torch.linspace(0, 1, 17, dtype=torch.float64)
    torch.testing.assert_close(scheduler.flow_times, (1 - torch.cos(math.pi / 2 * uniform)).float())
    swayed = OmniTalkerFlowMatchScheduler(sway_sampling_coef=0.5)
    expected = uniform + 0.5 * (torch.cos(math.pi / 2 * uniform) - 1 + uniform)
    torch.testing.assert_close(swayed.flow_times, expected.float())
    for coef in (None, 0.0):
        torch.testing.assert_close(OmniTalkerFlowMatchScheduler(sway_sampling_coef=coef).flow_times, uniform.float())
    midpoint = OmniTalkerFlowMatchScheduler(solver="midpoint", sway_sampling_coef=None, num_inference_steps=4)
    assert midpoint.order == 2
    torch.testing.assert_close(midpoint.timesteps, torch.tensor([0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875]))
    with pytest.raises(ValueError, match="solver"):
        OmniTalkerFlowMatchScheduler(solver="rk4")


def integrate(scheduler: OmniTalkerFlowMatchScheduler, velocity_fn, x: torch.Tensor, steps: int) -> torch.Tensor:
    scheduler.set_timesteps(steps)
    for t in scheduler.timesteps:
        x = scheduler.step(velocity_fn(x, t), t, x).prev_sample
    return x


def test_euler_is_exact_on_linear_flows():
    x0, x1 = torch.randn(2, 7, 3, dtype=torch.float64), torch.randn(2, 7, 3, dtype=torch.float64)
    scheduler = OmniTalkerFlowMatchScheduler()
    # constant velocity field: x(1) = x0 + v
    torch.testing.assert_close(integrate(scheduler, lambda x, t: x1 - x0, x0, 5), x1)
    # the conditional OT field towards one point, v = (x1 - x) / (1 - t): straight paths, exact in any grid
    torch.testing.assert_close(integrate(scheduler, lambda x, t: (x1 - x) / (1 - t), x0, 16), x1)


def test_midpoint_beats_euler_on_a_nonlinear_ode():
    x0 = torch.ones(1, 1, 1, dtype=torch.float64)  # dx/dt = x  -> x(1) = e
    errors = {}
    for solver in ("euler", "midpoint"):
        scheduler = OmniTalkerFlowMatchScheduler(solver=solver, sway_sampling_coef=None)
        errors[solver] = abs(float(integrate(scheduler, lambda x, t: x, x0, 8)) - math.e)
    assert errors["midpoint"] < errors["euler"] / 10
    assert errors["midpoint"] < 1e-2


def test_scheduler_step_checks_order():
    scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=2)
    x = torch.zeros(1, 2, 3)
    with pytest.raises(ValueError, match="expects timestep"):
        scheduler.step(x, 0.7, x)
    for t in scheduler.timesteps:
        x = scheduler.step(torch.ones_like(x), t, x).prev_sample
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(x, 0.0, x)


def test_scheduler_save_load_round_trip(tmp_path):
    scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=10, solver="midpoint", sway_sampling_coef=-0.5)
    scheduler.save_pretrained(tmp_path)
    assert (tmp_path / "scheduler_config.json").is_file()
    loaded = OmniTalkerFlowMatchScheduler.from_pretrained(tmp_path)
    assert loaded.config.solver == "midpoint" and loaded.config.num_inference_steps == 10
    assert loaded.config.sway_sampling_coef == -0.5
    torch.testing.assert_close(loaded.timesteps, scheduler.timesteps)


def test_euler_matches_diffusers_flow_match_scheduler_when_mapped():
    assert t_to_sigma(0.25) == 0.75 and sigma_to_t(0.75) == 0.25
    ours = OmniTalkerFlowMatchScheduler(num_inference_steps=8)  # sway -1: a non-uniform grid
    ours.set_timesteps(8)
    theirs = FlowMatchEulerDiscreteScheduler(shift=1.0)
    theirs.set_timesteps(sigmas=diffusers_sigmas(ours.flow_times))
    torch.testing.assert_close(sigma_to_t(theirs.sigmas), ours.flow_times)
    target = torch.randn(2, 5, 3)
    x_ours = x_theirs = torch.randn(2, 5, 3)
    for t_ours, t_theirs in zip(ours.timesteps, theirs.timesteps, strict=True):
        v_ours = torch.tanh(target - x_ours) * (1 + t_ours)  # any nonlinear velocity field
        x_ours = ours.step(v_ours, t_ours, x_ours).prev_sample
        t_seen = sigma_to_t(t_theirs / theirs.config.num_train_timesteps)
        v_theirs = velocity_to_diffusers(torch.tanh(target - x_theirs) * (1 + t_seen))
        torch.testing.assert_close(velocity_from_diffusers(v_theirs), torch.tanh(target - x_theirs) * (1 + t_seen))
        x_theirs = theirs.step(v_theirs, t_theirs, x_theirs).prev_sample
        torch.testing.assert_close(x_ours, x_theirs, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- guidance
def stream_inputs(seed: int = 0, b: int = 2, n: int = 20):
    mel, visual, text_ids = batch(b=b, n=n, seed=seed)
    noise_a, noise_v, _ = batch(b=b, n=n, seed=seed + 1)
    cond_mask = torch.zeros(b, n, dtype=torch.bool)
    cond_mask[:, : n // 3] = True
    return dict(
        audio=noise_a,
        audio_cond=torch.where(cond_mask[..., None], mel, 0.0),
        visual=noise_v,
        visual_cond=torch.where(cond_mask[..., None], visual, 0.0),
        text_ids=text_ids,
    )


@torch.no_grad()
def test_zero_guidance_is_one_conditional_pass():
    model, inputs = random_tiny_transformer(), stream_inputs()
    batch_sizes = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: batch_sizes.append(kw["audio"].shape[0]), with_kwargs=True)
    guided = guided_velocity(model, **inputs, timestep=0.3, guidance=GuidanceConfig.none())
    hook.remove()
    direct = model(**inputs, timestep=0.3)
    torch.testing.assert_close(guided.audio, direct.audio)
    torch.testing.assert_close(guided.visual, direct.visual)
    assert batch_sizes == [2]


@torch.no_grad()
def test_batched_guidance_equals_separate_passes():
    model, inputs = random_tiny_transformer(), stream_inputs()
    guidance = GuidanceConfig(text=2.0, audio=0.7, visual=1.3, joint=0.4)
    guided = guided_velocity(model, **inputs, timestep=0.3, guidance=guidance)
    full = model(**inputs, timestep=0.3)
    dropped = {
        "text": model(**inputs, timestep=0.3, drop_text=True),
        "audio": model(**inputs, timestep=0.3, drop_audio_cond=True),
        "visual": model(**inputs, timestep=0.3, drop_visual_cond=True),
        "joint": model(**inputs, timestep=0.3, drop_text=True, drop_audio_cond=True, drop_visual_cond=True),
    }
    for stream in ("audio", "visual"):
        expected = getattr(full, stream) + sum(
            getattr(guidance, name) * (getattr(full, stream) - getattr(out, stream)) for name, out in dropped.items()
        )
        # batched and separate passes take different BLAS blockings (1e-5 held on an AVX-512 CPU, an AVX2 one
        # differs by 5e-5 after the strengths' x5.4 amplification)
        torch.testing.assert_close(getattr(guided, stream), expected, atol=2e-4, rtol=1e-4)
    # F5's single CFG: drop text and every prompt together
    f5 = guided_velocity(model, **inputs, timestep=0.3, guidance=GuidanceConfig.f5(2.0))
    torch.testing.assert_close(f5.audio, full.audio + 2.0 * (full.audio - dropped["joint"].audio), atol=2e-4, rtol=1e-4)


@torch.no_grad()
def test_text_cache_reuses_the_text_encoder_and_changes_nothing():
    model, inputs = random_tiny_transformer(), stream_inputs()
    encoder_calls = []
    hook = model.text_embed.register_forward_hook(lambda module, args, out: encoder_calls.append(out.shape[0]))
    guidance, cache = GuidanceConfig(text=2.0, audio=0.7, visual=1.3, interval=(0.0, 0.5)), {}
    for t in (0.1, 0.3, 0.6, 0.9):  # two steps with CFG (4 passes), two without (1 pass)
        cached = guided_velocity(model, **inputs, timestep=t, guidance=guidance, text_cache=cache)
        plain = guided_velocity(model, **inputs, timestep=t, guidance=guidance)
        torch.testing.assert_close(cached.audio, plain.audio, atol=0, rtol=0)
        torch.testing.assert_close(cached.visual, plain.visual, atol=0, rtol=0)
    hook.remove()
    assert len(cache) == 2, "one entry per pass layout (CFG and no-CFG)"
    # per layout: once for the cache (batch 2 x 4 passes, or x 1) + once per uncached step
    assert encoder_calls.count(8) == 1 + 2 and encoder_calls.count(2) == 1 + 2


@torch.no_grad()
def test_guidance_skips_zero_and_unavailable_conditions():
    model, inputs = random_tiny_transformer(), stream_inputs()
    audio_only = {k: v for k, v in inputs.items() if not k.startswith("visual")}
    batch_sizes = []
    hook = model.register_forward_pre_hook(lambda m, a, kw: batch_sizes.append(kw["audio"].shape[0]), with_kwargs=True)
    out = guided_velocity(model, **audio_only, timestep=0.5, guidance=GuidanceConfig(text=1.0, audio=0.0, visual=3.0))
    hook.remove()
    assert batch_sizes == [4] and out.visual is None  # full + text-dropped; no visual stream to drop


def test_guidance_annealing_schedules():
    assert GuidanceConfig(anneal="constant").scale(0.8) == 1.0
    linear = GuidanceConfig(anneal="linear")
    assert [linear.scale(t) for t in (0.0, 0.5, 1.0)] == pytest.approx([1.0, 0.5, 0.0])
    cosine = GuidanceConfig(anneal="cosine", anneal_min_scale=0.2)
    assert [cosine.scale(t) for t in (0.0, 0.5, 1.0)] == pytest.approx([1.0, 0.6, 0.2])
    strengths = GuidanceConfig(text=2.0, audio=1.0, visual=0.0, anneal="linear").strengths(0.25)
    assert strengths == pytest.approx({"text": 1.5, "audio": 0.75})
    limited = GuidanceConfig(text=2.0, audio=1.0, interval=(0.1, 0.5))
    assert limited.strengths(0.05) == {} and limited.strengths(0.5) == {} and limited.strengths(0.3)["text"] == 2.0
    with pytest.raises(ValueError, match="interval"):
        GuidanceConfig(interval=(0.6, 0.2))
    with pytest.raises(ValueError, match="anneal"):
        GuidanceConfig(anneal="exponential")
    with pytest.raises(ValueError, match="strength"):
        GuidanceConfig(text=-1.5)
    with pytest.raises(ValueError, match="strength"):
        GuidanceConfig(audio=float("nan"))


@torch.no_grad()
def test_negative_strength_interpolates_towards_the_dropped_condition():
    model, inputs = random_tiny_transformer(), stream_inputs()
    full = model(**inputs, timestep=0.3)
    no_audio = model(**inputs, timestep=0.3, drop_audio_cond=True)
    for weight in (-0.4, -1.0):
        guided = guided_velocity(model, **inputs, timestep=0.3, guidance=GuidanceConfig(text=0.0, audio=weight))
        for stream in ("audio", "visual"):
            expected = (1 + weight) * getattr(full, stream) - weight * getattr(no_audio, stream)
            torch.testing.assert_close(getattr(guided, stream), expected, atol=1e-4, rtol=1e-4)
    # -1 is the prediction without the audio prompt, and the guided one differs from the conditional one
    assert not torch.allclose(guided.audio, full.audio, atol=1e-3)
    assert GuidanceConfig(text=3.0, audio=-0.4).strengths(0.2) == pytest.approx({"text": 3.0, "audio": -0.4})


# ----------------------------------------------------------------------------- sampler
def sample_kwargs(b: int = 2, n: int = 20, prompt: int = 6, seed: int = 0):
    mel, visual, text_ids = batch(b=b, n=n, seed=seed)
    cond_mask = torch.zeros(b, n, dtype=torch.bool)
    cond_mask[:, :prompt] = True
    return dict(text_ids=text_ids, audio_cond=mel, visual_cond=visual, cond_mask=cond_mask,
                num_inference_steps=4, guidance=GuidanceConfig(text=1.0, audio=0.5, visual=0.5))


def test_sampling_deterministic_and_restores_prompt():
    model, scheduler, kwargs = random_tiny_transformer(), OmniTalkerFlowMatchScheduler(), sample_kwargs()
    first = sample(model, scheduler, generator=seeded(0), **kwargs)
    again = sample(model, scheduler, generator=seeded(0), **kwargs)
    other = sample(model, scheduler, generator=seeded(1), **kwargs)
    torch.testing.assert_close(first.audio, again.audio)
    torch.testing.assert_close(first.visual, again.visual)
    assert not torch.allclose(first.audio[:, 6:], other.audio[:, 6:])
    torch.testing.assert_close(first.audio[:, :6], kwargs["audio_cond"][:, :6])
    torch.testing.assert_close(first.visual[:, :6], kwargs["visual_cond"][:, :6])
    assert bool(torch.isfinite(first.audio).all()) and first.visual.shape == (2, 20, VISUAL_DIM)


def test_the_sampler_makes_a_progress_bar_only_when_asked(monkeypatch):
    """No tqdm object at all without ``progress``: gradio's ``track_tqdm`` shows even a disabled bar, and each chunk's
    own bar was read on the page as one bar counting past its total ("sampling - 175%")."""
    import omnitalker.flow.sampling as sampling

    made = []
    monkeypatch.setattr(sampling, "tqdm", lambda iterable, **kwargs: made.append(kwargs) or iterable)
    model, scheduler, kwargs = random_tiny_transformer(), OmniTalkerFlowMatchScheduler(), sample_kwargs()
    sample(model, scheduler, generator=seeded(0), **kwargs)
    assert made == []
    sample(model, scheduler, generator=seeded(0), progress=True, **kwargs)
    assert len(made) == 1


def test_sampling_result_independent_of_batch_composition():
    model, scheduler = random_tiny_transformer(), OmniTalkerFlowMatchScheduler()
    kwargs = sample_kwargs()
    kwargs["attention_mask"] = torch.ones(2, 20, dtype=torch.bool)
    kwargs["attention_mask"][1, 14:] = False  # the second sample is shorter
    together = sample(model, scheduler, generator=[seeded(10), seeded(11)], **kwargs)
    for i, length in ((0, 20), (1, 14)):
        alone = sample(
            model, scheduler, generator=[seeded(10 + i)], text_ids=kwargs["text_ids"][i : i + 1],
            audio_cond=kwargs["audio_cond"][i : i + 1, :length], visual_cond=kwargs["visual_cond"][i : i + 1, :length],
            cond_mask=kwargs["cond_mask"][i : i + 1, :length], num_inference_steps=4, guidance=kwargs["guidance"],
        )
        torch.testing.assert_close(together.audio[i : i + 1, :length], alone.audio, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(together.visual[i : i + 1, :length], alone.visual, atol=1e-4, rtol=1e-4)
    assert bool((together.audio[1, 14:] == 0).all())
    with pytest.raises(ValueError, match="generators"):
        sample(model, scheduler, generator=[seeded(0)], **kwargs)


def test_sampling_modes_and_callback():
    model, scheduler = random_tiny_transformer(), OmniTalkerFlowMatchScheduler(solver="midpoint")
    kwargs = sample_kwargs()
    kwargs["num_inference_steps"] = 2
    mel, visual = kwargs.pop("audio_cond"), kwargs.pop("visual_cond")
    audio_only = sample(model, scheduler, audio_cond=mel, generator=seeded(0), **kwargs)
    assert audio_only.visual is None and audio_only.audio.shape == mel.shape
    visual_only = sample(model, scheduler, visual_cond=visual, generator=seeded(0), **kwargs)
    assert visual_only.audio is None and visual_only.visual.shape == visual.shape
    # audio-driven: the whole speech is given, only the visual span is generated
    full = torch.ones(2, 20, dtype=torch.bool)
    driven = sample(model, scheduler, audio_cond=mel, visual_cond=visual, audio_cond_mask=full,
                    generator=seeded(0), **kwargs)
    torch.testing.assert_close(driven.audio, mel)
    assert not torch.allclose(driven.visual[:, 6:], visual[:, 6:])
    # callback runs after every model evaluation (midpoint: 2 per interval) and may replace the state
    steps = []

    def callback(step, t, state):
        steps.append(step)
        return {"visual": torch.zeros_like(state["visual"])}

    zeroed = sample(model, scheduler, audio_cond=mel, visual_cond=visual, callback_on_step_end=callback,
                    generator=seeded(0), **kwargs)
    assert steps == list(range(4))
    assert bool((zeroed.visual[:, 6:] == 0).all())
    # a longer total length pads the prompt: default prompt = the given frames
    longer = sample(model, scheduler, audio_cond=mel[:, :6], num_frames=20, generator=seeded(0),
                    text_ids=kwargs["text_ids"], num_inference_steps=2)
    assert longer.audio.shape == (2, 20, MEL_DIM)
    torch.testing.assert_close(longer.audio[:, :6], mel[:, :6])
    with pytest.raises(ValueError, match="nothing to generate"):
        sample(model, scheduler, audio_cond=mel, text_ids=kwargs["text_ids"], num_inference_steps=2)
