"""Head-motion size from the whole reference (the pipeline's ``match_reference_motion`` config).

Why: a durations model is given only the last 1-2 s of its reference in context (``text_layout.prompt_window``:
a longer prompt costs words), and a slow head sway (0.15-0.8 Hz in the synthetic corpora) shows at most one cycle
in that window. So the transformer's sway size follows the reference's only weakly (yaw-spread correlation 0.42
across 9 unseen voices) while the whole reference, a few seconds, shows it much better (CHANGELOG.md,
2026-11-29; `bench/results/motion_spread/`). This step gives the output the reference's motion size and shape. The
pose codes (yaw, pitch, roll, shift x, shift y, scale) are taken in groups that move together (``POSE_GROUPS``: a
head turns and nods about the neck, so a turn shifts the face sideways and a nod shifts it up or down); each group's
generated codes x are mapped about their mean by the one linear map that gives them the reference's covariance while
moving them least (the optimal-transport map between two Gaussians, a symmetric positive definite matrix),

    x' = mean(x) + (x - mean(x)) T,   T = C^-1/2 (C^1/2 R C^1/2)^1/2 C^-1/2,   C, R: covariances of x and the reference

with T's eigenvalues (its gains along its axes) clipped to [MIN_GAIN, MAX_GAIN]. A group of one code is scaled to the
reference's spread: T = clip(std(reference) / std(x)). Matched code by code, every pose code had the reference's
spread, but on real references the nose moved 15-25 % less than the person's, whose turns and shifts go together
(style benchmark, median head-motion ratio 0.70; with the groups 0.94). Not all six together: a few seconds of a
slow sway give chance correlations between unrelated codes, and imposing them put the synthetic held-out set's head
poses further from their speakers' (P-FID on val_texts / val_speakers, 32 items each: 0.0050 / 0.0022 code by
code, 0.0053 / 0.0033 all six, 0.0051 / 0.0024 in these groups: ``bench/results/motion_spread/pfid_*.json``).

The model still decides where the head goes and when (the timing of nods and sways, their link to the speech);
the size and mix of the movements come from the reference. Codes whose reference spread is below ``MIN_SPREAD`` (a
photo, whose one frame is repeated; the constant scale of the synthetic corpora) are left as generated, and so is
everything for a reference shorter than ``MIN_REFERENCE_SECONDS``, which the model sees (almost) whole anyway.
Expression and gaze codes are not touched here (``expression_style.py`` carries the person's over).

    codes = match_pose_spread(codes, reference.codes)      # (n, 58) generated, (m, 58) reference, mel frames

From a photo, where the head is held comes from the reference too (``hold_reference_pose``): the generated pose codes
are shifted so their first ``ANCHOR_SECONDS`` average the photo's pose, and their turns from it are bounded softly
(``MAX_TURN``; turns to the sides less from a face that is already turned, ``side_turn_bound``). The demo transformer, trained on near-frontal synthetic faces, turns any head towards the camera
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
# Pose codes whose covariance is matched together (indices into POSE_SLICE: yaw, pitch, roll, tx, ty, log_scale).
POSE_GROUPS = ((0, 3), (1, 4), (2,), (5,))  # yaw with the sideways shift, pitch with the vertical one
MIN_SPREAD = 1e-3  # code units (rad, face sizes); below this a code does not move (a photo, a fixed scale)
MIN_REFERENCE_SECONDS = 2.0  # shorter references are in context (almost) whole: nothing more to learn from them
MIN_GENERATED_FRAMES = 2  # a spread needs two frames
ANCHOR_SECONDS = 0.25  # the output's first this much is put at the reference's mean pose (inside any first chunk)
MAX_TURN = 0.2  # rad: from a photo the head turns at most about this far (a soft bound) from the photo's pose
# ... and less to the sides from a photo whose face is turned: a turn towards the camera uncovers a cheek the photo
# does not show, a turn away hides the far eye behind the nose, and the warp draws neither (a three-quarter portrait,
# yaw 0.6 rad, rendered cleanly at +-0.05 rad of yaw from its pose; at +-0.1 its far cheek showed a seam of the
# background's pixels, at 0.2 a doubled eye). The yaw bound falls linearly from MAX_TURN at FRONTAL_YAW to
# MIN_SIDE_TURN at THREE_QUARTER_YAW and beyond; nods and tilts keep MAX_TURN.
FRONTAL_YAW, THREE_QUARTER_YAW = 0.25, 0.6  # rad from facing the camera
MIN_SIDE_TURN = 0.05


def match_pose_spread(codes: torch.Tensor, reference_codes: torch.Tensor, *,
                      min_reference_frames: int = round(MIN_REFERENCE_SECONDS * MEL_FRAME_RATE)) -> torch.Tensor:
    """``codes`` (n, d) generated with each ``POSE_GROUPS`` group of pose codes given ``reference_codes``' (m, d)
    covariance; see the module docstring. Returns a new tensor (the input is not modified); unchanged when the
    reference is too short."""
    _check_codes(codes, reference_codes)
    out = codes.clone()
    if len(reference_codes) < min_reference_frames or len(codes) < MIN_GENERATED_FRAMES:
        return out
    pose = codes[:, POSE_SLICE].double()  # n p
    reference = reference_codes[:, POSE_SLICE].double()  # m p
    moving = (reference.std(0) >= MIN_SPREAD) & (pose.std(0) >= MIN_SPREAD)  # p
    centre = pose.mean(0)  # p
    for group in POSE_GROUPS:
        columns = [column for column in group if moving[column]]
        if not columns:
            continue
        deviation = pose[:, columns] - centre[columns]  # n k
        transport = gaussian_transport(_covariance(deviation), _covariance(reference[:, columns]))  # k k
        pose[:, columns] = centre[columns] + deviation @ transport  # n k
    out[:, POSE_SLICE] = pose.to(codes.dtype)
    return out


def gaussian_transport(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The symmetric (k, k) map T with T source T = target (covariances, positive definite) that moves samples least
    (optimal transport between zero-mean Gaussians), its eigenvalues clipped to [MIN_GAIN, MAX_GAIN]."""
    root = _matrix_power(source, 0.5)  # k k
    inverse_root = _matrix_power(source, -0.5)  # k k
    transport = inverse_root @ _matrix_power(root @ target @ root, 0.5) @ inverse_root  # k k
    return _matrix_power(transport, 1.0, bounds=(MIN_GAIN, MAX_GAIN))


def _matrix_power(matrix: torch.Tensor, power: float, bounds: tuple[float, float] | None = None) -> torch.Tensor:
    """A symmetric matrix raised to `power` through its eigenvalues (floored at a tiny positive value first; clipped
    to `bounds` after, if given)."""
    values, vectors = torch.linalg.eigh(0.5 * (matrix + matrix.T))
    values = values.clamp(min=MIN_SPREAD**4) ** power
    if bounds is not None:
        values = values.clamp(*bounds)
    return (vectors * values) @ vectors.T


def _covariance(samples: torch.Tensor) -> torch.Tensor:
    """(k, k) covariance of (n, k) samples (a (1, 1) matrix for one code)."""
    return torch.atleast_2d(torch.cov(samples.T))


def hold_reference_pose(codes: torch.Tensor, reference_codes: torch.Tensor, *,
                        anchor_frames: int = round(ANCHOR_SECONDS * MEL_FRAME_RATE)) -> torch.Tensor:
    """For a photo reference (``reference_codes`` (m, d) whose angles do not move): ``codes`` (n, d) with their pose
    codes shifted so the mean of their first `anchor_frames` is the photo's pose, and their turns from it bounded
    softly at ``MAX_TURN`` (to the sides ``side_turn_bound``: less from a turned face); see the module docstring. A video reference's codes come back as they are. Returns a new
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
    bound = torch.tensor([side_turn_bound(float(centre[ROTATION_SLICE][0])), MAX_TURN, MAX_TURN],
                         dtype=pose.dtype)  # yaw, pitch, roll
    pose[:, ROTATION_SLICE] = centre[ROTATION_SLICE] + bound * torch.tanh(turn / bound)
    out[:, POSE_SLICE] = pose.to(codes.dtype)
    return out


def side_turn_bound(yaw: float) -> float:
    """The soft bound (rad) on turning to the sides from a photo whose face is turned `yaw` rad from the camera:
    MAX_TURN for a frontal face, down to MIN_SIDE_TURN for a three-quarter view (see FRONTAL_YAW)."""
    share = min(max((THREE_QUARTER_YAW - abs(yaw)) / (THREE_QUARTER_YAW - FRONTAL_YAW), 0.0), 1.0)
    return MIN_SIDE_TURN + share * (MAX_TURN - MIN_SIDE_TURN)


def _check_codes(codes: torch.Tensor, reference_codes: torch.Tensor) -> None:
    if codes.ndim != 2 or reference_codes.ndim != 2 or codes.shape[1] != reference_codes.shape[1]:
        raise ValueError(f"codes and reference_codes must be (frames, {codes.shape[-1]}) arrays with the same code "
                         f"size, got {tuple(codes.shape)} and {tuple(reference_codes.shape)}")
