"""ODE sampling scheduler for OmniTalker's flow-matching DiT, as a diffusers ``SchedulerMixin``.

Convention D1 (paper, F5-TTS): flow time ``t`` runs from 0 (noise) to 1 (data), x_t = (1 - t) x0 + t x1,
and the model predicts the velocity v = dx/dt = x1 - x0. ``step`` therefore moves *up* in t.

diffusers' ``FlowMatchEulerDiscreteScheduler`` uses the opposite convention (sigma = 1 - t is the noise
level, its model output is -v). The mapping lives in one place, the functions below:
``t_to_sigma``/``sigma_to_t``, ``velocity_to_diffusers``/``velocity_from_diffusers`` and
``diffusers_sigmas``; ``tests/test_flow.py`` checks that our Euler steps equal diffusers' steps when mapped.

    scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=16, solver="euler", sway_sampling_coef=-1.0)
    scheduler.set_timesteps(16)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t), t, x).prev_sample
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin, SchedulerOutput

SOLVERS = ("euler", "midpoint")
DEFAULT_NUM_INFERENCE_STEPS = 16  # the paper samples with 16 steps
DEFAULT_SWAY_SAMPLING_COEF = -1.0  # F5-TTS inference default; concentrates steps near t = 0 (noise)


# ----------------------------------------------------------------------------- diffusers mapping (D1)
def t_to_sigma(t: torch.Tensor | float) -> torch.Tensor | float:
    """Our flow time t (0 noise -> 1 data) to diffusers' sigma (1 noise -> 0 data)."""
    return 1 - t


def sigma_to_t(sigma: torch.Tensor | float) -> torch.Tensor | float:
    """diffusers' sigma to our flow time t."""
    return 1 - sigma


def velocity_to_diffusers(velocity: torch.Tensor) -> torch.Tensor:
    """Our velocity dx/dt to the model output diffusers' flow-match schedulers expect (dx/dsigma = -dx/dt)."""
    return -velocity


def velocity_from_diffusers(model_output: torch.Tensor) -> torch.Tensor:
    """A diffusers flow-match model output (noise - data) to our velocity (data - noise)."""
    return -model_output


def diffusers_sigmas(flow_times: torch.Tensor) -> list[float]:
    """The ``sigmas`` to pass to ``FlowMatchEulerDiscreteScheduler(shift=1.0).set_timesteps(sigmas=...)`` so it
    walks the same grid as our Euler solver (diffusers appends the terminal sigma 0 itself)."""
    return [float(s) for s in t_to_sigma(flow_times[:-1].double())]


# ----------------------------------------------------------------------------- time grids
def sway(t: torch.Tensor, coef: float | None) -> torch.Tensor:
    """F5-TTS sway sampling, t <- t + s (cos(pi/2 t) - 1 + t); keeps 0 and 1 fixed. s < 0 puts more steps
    near the noise end (s = -1 gives 1 - cos(pi t / 2)); None or 0 leaves t unchanged."""
    if not coef:
        return t
    return t + coef * (torch.cos(math.pi / 2 * t) - 1 + t)


def _check_grid(grid: torch.Tensor, name: str) -> torch.Tensor:
    if grid.ndim != 1 or grid.numel() < 2 or grid[0] != 0 or grid[-1] != 1 or not bool((grid.diff() > 0).all()):
        raise ValueError(f"{name} must increase strictly from 0.0 to 1.0 (at least 2 values)")
    return grid


def flow_time_grid(num_inference_steps: int, sway_sampling_coef: float | None) -> torch.Tensor:
    """num_inference_steps + 1 flow times from 0 to 1 (float64), uniform then swayed."""
    t = sway(torch.linspace(0, 1, num_inference_steps + 1, dtype=torch.float64), sway_sampling_coef)
    t[-1] = 1.0  # exactly: cos(pi / 2) is not 0 in floating point
    return t


class OmniTalkerFlowMatchScheduler(SchedulerMixin, ConfigMixin):
    """Deterministic ODE solver from noise (t = 0) to data (t = 1) for velocity-predicting flow models.

    Args:
        num_inference_steps (`int`, defaults to 16): number of ODE intervals used when ``set_timesteps`` gets none.
        solver (`str`, defaults to `"euler"`): ``"euler"`` (1 model evaluation per interval) or ``"midpoint"``
            (2 per interval, second-order accurate).
        sway_sampling_coef (`float`, *optional*, defaults to -1.0): F5-TTS sway coefficient; None or 0 = uniform grid.
        step_grids (`dict`, *optional*): measured time grids for some step counts, ``{"8": [0.0, ..., 1.0]}`` (N + 1
            increasing flow times from 0 to 1 for N steps; keys are strings so the config stays JSON). A call with one
            of these step counts uses its grid instead of the swayed one (how they are measured: ``bench/steps.py``).

    With ``"midpoint"`` the scheduler alternates stages like diffusers' ``HeunDiscreteScheduler``: ``timesteps``
    interleaves each interval's start ``t_k`` and midpoint ``t_k + h/2``; the first ``step`` of a pair returns
    the half-step sample ``x_k + h/2 v(t_k, x_k)`` (to be evaluated at the midpoint), the second returns
    ``x_k + h v(t_k + h/2, x_mid)``. So ``len(timesteps) == order * num_inference_steps`` model evaluations.
    """

    config_name = "scheduler_config.json"
    _compatibles = []

    @register_to_config
    def __init__(
        self,
        num_inference_steps: int = DEFAULT_NUM_INFERENCE_STEPS,
        solver: str = "euler",
        sway_sampling_coef: float | None = DEFAULT_SWAY_SAMPLING_COEF,
        step_grids: dict[str, list[float]] | None = None,
    ):
        if solver not in SOLVERS:
            raise ValueError(f"unknown solver {solver!r}; use one of {SOLVERS}")
        for steps, grid in (step_grids or {}).items():
            _check_grid(torch.as_tensor(grid, dtype=torch.float64), f"step_grids[{steps!r}]")
            if len(grid) != int(steps) + 1:
                raise ValueError(f"step_grids[{steps!r}] has {len(grid)} flow times; {steps} steps need {int(steps) + 1}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        self.init_noise_sigma = 1.0  # noise is N(0, I): pipelines scale initial noise by this
        self.num_inference_steps: int | None = None
        self.flow_times: torch.Tensor | None = None  # N+1 interval boundaries, 0 ... 1
        self.timesteps: torch.Tensor | None = None  # the t of each model evaluation
        self._step_index: int | None = None
        self._stage_sample: torch.Tensor | None = None  # x_k kept between the two midpoint stages
        self.set_timesteps(num_inference_steps)

    @property
    def order(self) -> int:
        """Model evaluations per ODE interval."""
        return 2 if self.config.solver == "midpoint" else 1

    @property
    def step_index(self) -> int | None:
        return self._step_index

    @property
    def state_in_first_order(self) -> bool:
        """True when the next ``step`` starts a new interval (always True for Euler)."""
        return self._stage_sample is None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: torch.device | str | None = None,
        flow_times: Sequence[float] | torch.Tensor | None = None,
    ) -> None:
        """Build the time grid and reset the solver state.

        Args:
            num_inference_steps: ODE intervals (defaults to the config's).
            device: where ``timesteps`` live.
            flow_times: a custom increasing grid from 0 to 1 (N+1 values, e.g. F5's EPSS table); sway is not
                applied to it.
        """
        if flow_times is not None:
            grid = _check_grid(torch.as_tensor(flow_times, dtype=torch.float64).flatten(), "flow_times")
            if num_inference_steps is not None and num_inference_steps != grid.numel() - 1:
                raise ValueError(f"{grid.numel()} flow_times give {grid.numel() - 1} steps, not {num_inference_steps}")
        else:
            num_inference_steps = self.config.num_inference_steps if num_inference_steps is None else num_inference_steps
            if num_inference_steps < 1:
                raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
            measured = (self.config.get("step_grids") or {}).get(str(num_inference_steps))
            if measured is not None:
                grid = torch.tensor(measured, dtype=torch.float64)
            else:
                grid = flow_time_grid(num_inference_steps, self.config.sway_sampling_coef)
        self.num_inference_steps = grid.numel() - 1
        if self.config.solver == "midpoint":
            starts = grid[:-1]
            mids = starts + grid.diff() / 2
            evals = torch.stack([starts, mids], dim=1).flatten()  # t0, t0+h0/2, t1, t1+h1/2, ...
        else:
            evals = grid[:-1]
        self.flow_times = grid.to(device=device, dtype=torch.float32)
        self.timesteps = evals.to(device=device, dtype=torch.float32)
        self._grid64 = grid  # exact step sizes, independent of the device dtype
        self._step_index = 0
        self._stage_sample = None

    def scale_model_input(self, sample: torch.Tensor, timestep: float | torch.Tensor | None = None) -> torch.Tensor:
        """Identity: the flow model takes x_t as is (kept for the diffusers scheduler interface)."""
        return sample

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        return_dict: bool = True,
    ) -> SchedulerOutput | tuple[torch.Tensor]:
        """Advance ``sample`` by one model evaluation (``model_output`` = velocity at ``timestep``).

        ``timestep`` must be ``self.timesteps[i]`` for the i-th call since ``set_timesteps``; it is checked so
        that a skipped or repeated step raises instead of silently drifting.
        """
        if self._step_index is None or self._step_index >= len(self.timesteps):
            raise ValueError("no steps left: call set_timesteps() before (re)starting a sampling loop")
        expected = float(self.timesteps[self._step_index])
        if abs(float(timestep) - expected) > 1e-6:
            raise ValueError(
                f"step {self._step_index} expects timestep {expected:.6f}, got {float(timestep):.6f}; "
                "pass the values of scheduler.timesteps in order"
            )
        interval = self._step_index // self.order
        h = float(self._grid64[interval + 1] - self._grid64[interval])
        velocity = model_output.to(torch.float32)  # integrate in fp32 like diffusers' schedulers
        if self.config.solver == "euler":
            prev = sample.to(torch.float32) + h * velocity
        elif self.state_in_first_order:  # midpoint, stage 1: half step to the midpoint
            self._stage_sample = sample
            prev = sample.to(torch.float32) + (h / 2) * velocity
        else:  # midpoint, stage 2: full step from x_k with the midpoint velocity
            prev = self._stage_sample.to(torch.float32) + h * velocity
            self._stage_sample = None
        self._step_index += 1
        prev = prev.to(sample.dtype)
        if not return_dict:
            return (prev,)
        return SchedulerOutput(prev_sample=prev)
