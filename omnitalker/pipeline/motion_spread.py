"""Head-motion size from the whole reference (the pipeline's ``match_reference_motion`` config).

Why: a durations model is given only the last 1-2 s of its reference in context (``text_layout.prompt_window``:
a longer prompt costs words), and a slow head sway (0.15-0.8 Hz in the synthetic corpora) shows at most one cycle
in that window. So the transformer's sway size follows the reference's only weakly (yaw-spread correlation 0.42
across 9 unseen voices) while the whole reference, a few seconds, shows it much better (CHANGELOG.md,
2026-11-29; `bench/results/motion_spread/`). This step gives the output the reference's motion size: each generated pose code is scaled
about its own mean so its spread over the output equals the reference's spread of that code,

    x' = mean(x) + g (x - mean(x)),   g = clip(std(reference) / std(x), MIN_GAIN, MAX_GAIN)

The model still decides where the head goes and when (the timing of nods and sways, their link to the speech);
only their amplitude is taken from the reference. Codes whose reference spread is below ``MIN_SPREAD`` (a photo,
whose one frame is repeated; the constant scale of the synthetic corpora) are left as generated, and so is
everything for a reference shorter than ``MIN_REFERENCE_SECONDS``, which the model sees (almost) whole anyway.
Expression and gaze codes are not touched: the model already takes them from the prompt (E-FID is better with the
reference than without).

    codes = match_pose_spread(codes, reference.codes)      # (n, 58) generated, (m, 58) reference, mel frames

From a photo, where the head is held comes from the reference too (``hold_reference_pose``): the generated pose codes
are shifted so their first ``ANCHOR_SECONDS`` average the photo's pose, and their turns from it are bounded softly
(``MAX_TURN``). The demo transformer, trained on near-frontal synthetic faces, turns any head towards the camera
whatever its prompt: a three-quarter portrait (yaw 0.59 rad) came out at a mean yaw of -0.07, a turn the warp cannot
draw (the hidden cheek tore open); anchored only, it still drifted 0.5 rad towards the camera within two seconds. The
anchor is the output's first frames, not all of it, so a streamed output, styled on the codes known so far, gets the
same shift in every chunk once its first chunk is made. A video reference is left to the model and the spread above
(anchored and bounded too, the style benchmark's head-motion ratio fell from 0.76 to 0.71-0.73).

    codes = hold_reference_pose(codes, reference.codes)
"""

from __future__ import annotations

import torch

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.face.codes import POSE_SLICE, ROTATION_SLICE

# Bounds on what one estimate can do to the model's motion. Asymmetric: the demo transformer sways every head by
# ~0.06-0.1 rad of yaw whatever its prompt, so a still reference (a calm speaker, ~0.01) needs a deeper cut than a
# lively one (up to ~0.18) needs a boost.
MIN_GAIN = 0.25
MAX_GAIN = 2.0
MIN_SPREAD = 1e-3  # code units (rad, face sizes); below this a code does not move (a photo, a fixed scale)
MIN_REFERENCE_SECONDS = 2.0  # shorter references are in context (almost) whole: nothing more to learn from them
MIN_GENERATED_FRAMES = 2  # a spread needs two frames
ANCHOR_SECONDS = 0.25  # the output's first this much is put at the reference's mean pose (inside any first chunk)
MAX_TURN = 0.2  # rad: from a photo the head turns at most about this far (a soft bound) from the photo's pose


def match_pose_spread(codes: torch.Tensor, reference_codes: torch.Tensor, *,
                      min_reference_frames: int = round(MIN_REFERENCE_SECONDS * MEL_FRAME_RATE)) -> torch.Tensor:
    """``codes`` (n, d) generated with their pose codes' spread set to ``reference_codes``' (m, d); see the module
    docstring. Returns a new tensor (the input is not modified); unchanged when the reference is too short."""
    _check_codes(codes, reference_codes)
    if len(reference_codes) < min_reference_frames or len(codes) < MIN_GENERATED_FRAMES:
        return codes.clone()
    pose = codes[:, POSE_SLICE].double()  # n p
    reference_spread = reference_codes[:, POSE_SLICE].double().std(0)  # p
    spread = pose.std(0)  # p
    moving = (reference_spread >= MIN_SPREAD) & (spread >= MIN_SPREAD)  # p
    gain = torch.where(moving, reference_spread / spread.clamp(min=MIN_SPREAD), torch.ones_like(spread))  # p
    gain = gain.clamp(MIN_GAIN, MAX_GAIN)  # p
    centre = pose.mean(0)  # p
    out = codes.clone()
    out[:, POSE_SLICE] = (centre + gain * (pose - centre)).to(codes.dtype)  # n p
    return out


def hold_reference_pose(codes: torch.Tensor, reference_codes: torch.Tensor, *,
                        anchor_frames: int = round(ANCHOR_SECONDS * MEL_FRAME_RATE)) -> torch.Tensor:
    """For a photo reference (``reference_codes`` (m, d) whose angles do not move): ``codes`` (n, d) with their pose
    codes shifted so the mean of their first `anchor_frames` is the photo's pose, and their turns from it bounded
    softly at ``MAX_TURN``; see the module docstring. A video reference's codes come back as they are. Returns a new
    tensor; nothing else changes."""
    _check_codes(codes, reference_codes)
    out = codes.clone()
    if not len(codes) or not len(reference_codes):
        return out
    if (reference_codes[:, ROTATION_SLICE].double().std(0, unbiased=False) >= MIN_SPREAD).any():  # a video
        return out
    pose = codes[:, POSE_SLICE].double()  # n p
    centre = reference_codes[:, POSE_SLICE].double().mean(0)  # p
    pose = pose + centre - pose[: max(anchor_frames, 1)].mean(0)  # n p
    turn = pose[:, ROTATION_SLICE] - centre[ROTATION_SLICE]  # n 3
    pose[:, ROTATION_SLICE] = centre[ROTATION_SLICE] + MAX_TURN * torch.tanh(turn / MAX_TURN)
    out[:, POSE_SLICE] = pose.to(codes.dtype)
    return out


def _check_codes(codes: torch.Tensor, reference_codes: torch.Tensor) -> None:
    if codes.ndim != 2 or reference_codes.ndim != 2 or codes.shape[1] != reference_codes.shape[1]:
        raise ValueError(f"codes and reference_codes must be (frames, {codes.shape[-1]}) arrays with the same code "
                         f"size, got {tuple(codes.shape)} and {tuple(reference_codes.shape)}")
