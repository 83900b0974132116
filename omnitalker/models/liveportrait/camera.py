"""LivePortrait's keypoint glue: pose bins -> degrees, the rotation matrix, the keypoint transform, stitching
and eye / lip retargeting, and the relative-motion rule of its video pipeline.

Conventions (as the released models were trained with): row-vector keypoints, ``x @ R``; angles in degrees;
``R = (Rz(roll) Ry(yaw) Rx(pitch))^T``; a transformed keypoint is ``s * (x_c @ R + exp) + t`` with t applied
to x and y only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

BIN_DEGREES = 3.0
BIN_OFFSET_DEGREES = 97.5


def bins_to_degrees(logits: torch.Tensor) -> torch.Tensor:
    """Pose logits (b, num_bins) -> degrees (b,): the softmax expectation of the bin index, x 3, - 97.5.
    A tensor that is already in degrees ((b,) or (b, 1)) is returned as it is."""
    if logits.ndim < 2 or logits.shape[1] == 1:
        return logits
    index = torch.arange(logits.shape[1], dtype=logits.dtype, device=logits.device)
    return (F.softmax(logits, dim=1) * index).sum(dim=1) * BIN_DEGREES - BIN_OFFSET_DEGREES


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Angles in degrees, (b,) or (b, 1) -> (b, 3, 3), the transpose of Rz(roll) Ry(yaw) Rx(pitch)."""
    x, y, z = (a.reshape(-1, 1) / 180 * math.pi for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rot_x = torch.cat([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], 1).view(-1, 3, 3)
    rot_y = torch.cat([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], 1).view(-1, 3, 3)
    rot_z = torch.cat([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], 1).view(-1, 3, 3)
    return (rot_z @ rot_y @ rot_x).transpose(1, 2)


def refine_motion(info: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The motion extractor's raw outputs -> angles in degrees (b, 1), kp and exp as (b, num_kp, 3), the rotation."""
    b = info["kp"].shape[0]
    out = dict(info)
    for name in ("pitch", "yaw", "roll"):
        out[name] = bins_to_degrees(info[name]).reshape(b, 1)
    out["kp"] = info["kp"].reshape(b, -1, 3)
    out["exp"] = info["exp"].reshape(b, -1, 3)
    out["rotation"] = rotation_matrix(out["pitch"], out["yaw"], out["roll"])
    return out


def transform_keypoints(info: dict[str, torch.Tensor]) -> torch.Tensor:
    """Motion-extractor outputs (raw or refined) -> posed keypoints (b, num_kp, 3): s * (kp @ R + exp) + (tx, ty, 0)."""
    b = info["kp"].shape[0]
    kp = info["kp"].reshape(b, -1, 3)
    rotation = rotation_matrix(*(bins_to_degrees(info[n]) for n in ("pitch", "yaw", "roll")))
    posed = (kp @ rotation + info["exp"].reshape(b, -1, 3)) * info["scale"].reshape(b, 1, 1)
    shift = torch.cat([info["t"][:, None, :2], torch.zeros_like(info["t"][:, None, 2:])], dim=-1)
    return posed + shift


def stitch(stitching, x_s: torch.Tensor, x_d: torch.Tensor) -> torch.Tensor:
    """Stitching: x_d (b, k, 3) + the MLP's offsets from [x_s, x_d], and its (tx, ty) added to x and y."""
    b, k = x_s.shape[:2]
    delta = stitching(torch.cat([x_s.reshape(b, -1), x_d.reshape(b, -1)], dim=1))  # b 3k+2
    out = x_d + delta[:, : 3 * k].reshape(b, k, 3)
    shift = torch.cat([delta[:, 3 * k: 3 * k + 2], torch.zeros_like(delta[:, :1])], dim=1)
    return out + shift[:, None, :]


def retarget(mlp, x_s: torch.Tensor, ratios: torch.Tensor) -> torch.Tensor:
    """Eye or lip retargeting: the MLP on [x_s flattened, ratios] -> keypoint offsets (b, k, 3).

    Eyes: ratios (b, 3) = [source left eye, source right eye, target] open ratios; lips: (b, 2) = [source, target].
    """
    b, k = x_s.shape[:2]
    return mlp(torch.cat([x_s.reshape(b, -1), ratios], dim=1)).reshape(b, k, 3)


def relative_motion(source: dict[str, torch.Tensor], driving: dict[str, torch.Tensor],
                    anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """LivePortrait's relative-motion rule (its video pipeline with ``flag_relative``), on refined infos: the
    source keypoints moved by the driving frame's change from the anchor (first) driving frame:
    R = R_d R_a^T R_s, exp = exp_s + exp_d - exp_a, s = s_s s_d / s_a, t = t_s + t_d - t_a with tz = 0.
    Returns (b, k, 3); the batch is the driving frames' (source and anchor broadcast)."""
    rotation = driving["rotation"] @ anchor["rotation"].transpose(1, 2) @ source["rotation"]
    exp = source["exp"] + (driving["exp"] - anchor["exp"])
    scale = source["scale"] * (driving["scale"] / anchor["scale"])  # b 1
    t = source["t"] + (driving["t"] - anchor["t"])
    t = torch.cat([t[:, :2], torch.zeros_like(t[:, 2:])], dim=1)
    return scale[:, :, None] * (source["kp"] @ rotation + exp) + t[:, None, :]
