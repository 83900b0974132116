"""Flow matching for OmniTalker: training loss, ODE scheduler, multi-condition CFG and the infilling sampler.

Convention (one for the whole package, scheduler.py): t = 0 noise, t = 1 data, x_t = (1 - t) x0 + t x1, velocity target x1 - x0.
"""

from .guidance import GuidanceConfig, GuidanceTerm, GuidedVelocity, guided_velocity
from .loss import FlowMatchingLoss, FlowMatchingLossOutput, interpolate, velocity_target
from .masking import lengths_to_mask, sample_drop, sample_timesteps, span_mask
from .sampling import FlowSampleOutput, sample
from .scheduler import (
    OmniTalkerFlowMatchScheduler,
    diffusers_sigmas,
    sigma_to_t,
    t_to_sigma,
    velocity_from_diffusers,
    velocity_to_diffusers,
)

__all__ = [
    "FlowMatchingLoss",
    "FlowMatchingLossOutput",
    "FlowSampleOutput",
    "GuidanceConfig",
    "GuidanceTerm",
    "GuidedVelocity",
    "OmniTalkerFlowMatchScheduler",
    "diffusers_sigmas",
    "guided_velocity",
    "interpolate",
    "lengths_to_mask",
    "sample",
    "sample_drop",
    "sample_timesteps",
    "sigma_to_t",
    "span_mask",
    "t_to_sigma",
    "velocity_from_diffusers",
    "velocity_target",
    "velocity_to_diffusers",
]
