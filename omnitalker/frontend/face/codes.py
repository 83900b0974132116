"""Visual codes: per-frame pose, expression and gaze from 478 face landmarks, and back.

Layout of one 58-dim code frame (``CODE_NAMES`` names every dimension):

  pose  [0:6]    yaw, pitch, roll (radians), tx, ty (face-size units), log_scale
  exp   [6:54]   16 expression points x (x, y, z): canonical-space offsets from the subject's
                 neutral shape, in face-size units (template.EXPRESSION_POINTS lists the points); the
                 four lid points' scaled to the eye's opening where it is larger than the
                 template's (``lid_gains``)
  eye   [54:58]  left_x, left_y, right_x, right_y: iris centre relative to the eye opening
                 (centre of the two eye corners), in eye widths; +x towards the subject's left
                 (image right), +y down

Geometry. Canonical space is the template's (template.py): x to the subject's left, y down, z away
from the camera; one unit ("face size") is the template's outer-eye-corner distance. A frame's
landmarks P (pixels; z = MediaPipe z x width) are modelled with an orthographic camera
(paper Eq. 1) as

    P = s * R @ (neutral + expression) + t,    R = Rz(roll) @ Ry(yaw) @ Rx(pitch)

where (s, R, t) is a least-squares similarity fit (Umeyama) of the subject's neutral shape onto
the frame on rigid points only (forehead, nose bridge, eye corners, temples, cheekbones). Positive
yaw turns the nose towards image left, positive pitch tilts the face down, positive roll is
clockwise in the image (``euler_to_rotation``). tx, ty
and log_scale are relative to the identity's reference framing (median over the reference video):
tx = (t_x - center_x) / ref_scale, log_scale = log(s / ref_scale). So all codes are free of image
size and face size and mean the same thing for every identity.

Decoding puts the 16 expression offsets onto all 468 mesh points with the template's fixed linear
propagation weights (the motion each eye's two lids share moving its whole eye region, ``eye_region_shift``),
places the irises from the eye codes, and applies the pose in the reference image's pixel frame.

Round trip (encode -> decode, image-plane point error over all 478 points; MediaPipe landmarks of
512 x 512 frames; asserted with margins in tests/test_face_codes.py; 2-core CPU):
  astronaut photo (the identity is that frame)                  mean 0.000  p95 0.000  max 0.000 px
  8 frames of the photo rotated +-12 deg and zoomed +-8 %         mean 0.32   p95 1.13   max 2.4 px
  8 frames with a jaw drop of 0-12 px warped into the photo       mean 0.38   p95 1.27   max 3.8 px
The error is the part of MediaPipe's per-frame shape change that 16 points cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, sosfiltfilt

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.audio import SAMPLE_RATE
from omnitalker.io.export import DEFAULT_FPS as DEFAULT_VIDEO_FPS

from .template import (
    EXPRESSION_POINTS,
    LEFT_EYE,
    LEFT_IRIS,
    LIP_CHAINS,
    NUM_LANDMARKS,
    RIGHT_EYE,
    RIGHT_IRIS,
    load_face_template,
)

# ----------------------------------------------------------------------------- layout
POSE_NAMES = ("yaw", "pitch", "roll", "tx", "ty", "log_scale")
EXP_NAMES = tuple(f"exp_{name}_{axis}" for name, _ in EXPRESSION_POINTS for axis in "xyz")
EYE_NAMES = ("eye_left_x", "eye_left_y", "eye_right_x", "eye_right_y")
CODE_NAMES: tuple[str, ...] = POSE_NAMES + EXP_NAMES + EYE_NAMES
POSE_DIM, EXP_DIM, EYE_DIM = len(POSE_NAMES), len(EXP_NAMES), len(EYE_NAMES)
VISUAL_CODE_DIM = POSE_DIM + EXP_DIM + EYE_DIM  # 58
POSE_SLICE = slice(0, POSE_DIM)
EXP_SLICE = slice(POSE_DIM, POSE_DIM + EXP_DIM)
EYE_SLICE = slice(POSE_DIM + EXP_DIM, VISUAL_CODE_DIM)
ROTATION_SLICE = slice(0, 3)  # yaw, pitch, roll inside the pose

# ----------------------------------------------------------------------------- frame rates
CODE_FPS = 30.0  # visual codes, as in the paper
MEL_FPS = MEL_FRAME_RATE  # 93.75 mel frames per second (24 kHz, hop 256): omnitalker/frontend/audio.py owns it
VIDEO_FPS = float(DEFAULT_VIDEO_FPS)  # rendered video, 25: omnitalker/io/export.py owns it

# Default low-pass cutoffs of smooth_codes (Hz): head motion is slow, lids and lips are fast.
SMOOTHING_CUTOFF_HZ = {"pose": 4.0, "exp": 8.0, "eye": 6.0}
SMOOTHING_ORDER = 2  # Butterworth order (applied forwards and backwards: zero phase)
ANTI_ALIAS_SIGMA = 0.4  # Gaussian prefilter width when downsampling, in source frames per output frame
NEUTRAL_MOUTH_PERCENTILE = 25.0  # frames at or below this mouth opening form the neutral shape
# The frame to warp from (``FaceIdentity.reference_index``, ``typical_frame``): distances from the neutral
# expression count in units of this (sum over the 16 expression points, face-size units; about the nearest-neutral
# frame's distance on nine real clips, 0.04-0.16) ...
SOURCE_EXPRESSION_UNIT = 0.1
# ... and those of the gaze (eye widths), the head angles (radians, summed) and its place (face-size units) in units
# of their median over the frames, but no less than these (tracking noise, about the least median on the nine clips;
# in a clip tracked cleanly a pixel's difference would otherwise outweigh an open mouth)
SOURCE_MIN_SPREAD = {"gaze": 0.02, "turn": float(np.radians(2.0)), "shift": 0.02}
MIN_SCALE = 1e-6
# Bounds of an eye's neutral opening over the template's in ``lid_gains``. Real people measured 0.5-1.25 (nine clips),
# a cartoon's eyes 2-3. Never below 1: scaled down too, the lid codes of the smaller-eyed real references changed what
# the demo generates for them (style benchmark: blink-rate ratio 0.78 -> 0.67), and the model learned its lid motion
# in face-size units.
LID_GAIN_RANGE = (1.0, 3.0)
# Decoding: the motion an eye's two lids share (axis by axis, the smaller of the two where both move the same way)
# moves the whole eye with them (``eye_region_shift``): weight 1 out to EYE_REGION_REACH[0] eye
# widths from the eye's centre, 0 beyond EYE_REGION_REACH[1], on an ellipse half as tall as wide (the brow and the
# cheek stay). On nine real clips the eye corners' canonical height followed the lids' common motion with
# correlation 0.61-0.95.
EYE_REGION_REACH = (0.6, 1.0)
# Decoding: each inner lip chain (``LIP_CHAINS``) bends between its two corners as sin(pi u) ** LIP_ARCH_EXPONENT of
# its middle point's bend (u: 0 to 1 from corner to corner, along the face template's x), ``lip_arch``. Fitted to
# MediaPipe's lips on nine real clips (their widest-open fifth of frames): at a chain's points 1-4 from a corner the
# lips bend 0.30, 0.56, 0.80 and 0.95 of the middle, alike on the inner edges and the outer edges (mean error of the
# fit 0.025 at 0.7). The outer two rings keep their propagated shape: arched too, the lip corners folded beside a
# wide-open mouth and showed a photo's teeth there as pale dots (d18).
LIP_ARCH_EXPONENT = 0.7

assert len(CODE_NAMES) == VISUAL_CODE_DIM == 58


# ----------------------------------------------------------------------------- geometry
def euler_to_rotation(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation R = Rz(roll) @ Ry(yaw) @ Rx(pitch) in camera axes (x right, y down, z in).

    Signs (checked in tests/test_face_codes.py): positive yaw turns the nose towards image left
    (the subject's right), positive pitch tilts the face down (nose down, chin away from the camera),
    positive roll rotates the face clockwise in the image.
    """
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    one, zero = np.ones_like(cy), np.zeros_like(cy)
    rot_x = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(*cp.shape, 3, 3)
    rot_y = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*cy.shape, 3, 3)
    rot_z = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(*cr.shape, 3, 3)
    return rot_z @ rot_y @ rot_x


def rotation_to_euler(rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of ``euler_to_rotation``: (yaw, pitch, roll) from (..., 3, 3)."""
    yaw = np.arcsin(np.clip(-rotation[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(rotation[..., 2, 1], rotation[..., 2, 2])
    roll = np.arctan2(rotation[..., 1, 0], rotation[..., 0, 0])
    return yaw, pitch, roll


def fit_similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama) with target ~ s * R @ source + t, batched over frames.

    source: (N, 3) or (T, N, 3); target: (T, N, 3). Returns s (T,), R (T, 3, 3) proper, t (T, 3).
    """
    source = np.broadcast_to(source, target.shape).astype(np.float64)
    target = target.astype(np.float64)
    src_mean, tgt_mean = source.mean(1, keepdims=True), target.mean(1, keepdims=True)
    src, tgt = source - src_mean, target - tgt_mean  # t n 3
    cov = np.einsum("tni,tnj->tij", tgt, src) / src.shape[1]  # t 3 3
    u, sing, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u @ vt))
    fix = np.ones_like(sing)
    fix[:, 2] = sign
    rotation = u @ (fix[:, :, None] * vt)
    src_var = (src**2).sum((1, 2)) / src.shape[1]
    scale = (sing * fix).sum(1) / np.maximum(src_var, MIN_SCALE)
    translation = tgt_mean[:, 0] - scale[:, None] * np.einsum("tij,tj->ti", rotation, src_mean[:, 0])
    return scale, rotation, translation


def _as_sequence(landmarks: np.ndarray) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim == 2:
        landmarks = landmarks[None]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks must be (T, {NUM_LANDMARKS}, 3) MediaPipe points, got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        bad = int((~np.isfinite(landmarks).all((1, 2))).sum())
        raise ValueError(
            f"landmarks contain NaN/inf in {bad}/{len(landmarks)} frames; interpolate or drop them"
        )
    return landmarks


def fit_pose(landmarks: np.ndarray, canonical: np.ndarray | None = None):
    """Fit `canonical` (478, 3; default: the template) onto landmarks (T, 478, 3) on stable points.

    Returns (scale (T,), rotation (T, 3, 3), translation (T, 3), canonical-space landmarks (T, 478, 3)).
    """
    landmarks = _as_sequence(landmarks)
    template = load_face_template()
    canonical = template.vertices if canonical is None else canonical
    stable = template.stable_indices
    scale, rotation, translation = fit_similarity(canonical[stable], landmarks[:, stable])
    # Row vectors: q = R^T (p - t) / s  ->  (p - t) @ R / s
    in_canonical = np.einsum("tni,tij->tnj", landmarks - translation[:, None], rotation)
    in_canonical /= np.maximum(scale, MIN_SCALE)[:, None, None]
    return scale, rotation, translation, in_canonical


def head_angles_degrees(landmarks: np.ndarray) -> np.ndarray:
    """(T, 3) yaw, pitch, roll in degrees of each frame relative to the frontal template."""
    _, rotation, _, _ = fit_pose(landmarks)
    return np.degrees(np.stack(rotation_to_euler(rotation), -1))


def mouth_opening(canonical: np.ndarray) -> np.ndarray:
    """(T,) inner-lip gap of canonical-space landmarks (T, 478, 3), in face-size units."""
    upper, lower = (dict(EXPRESSION_POINTS)[name] for name in ("upper_lip_inner", "lower_lip_inner"))
    return np.linalg.norm(canonical[:, lower] - canonical[:, upper], axis=-1)


def eye_openness(landmarks: np.ndarray) -> np.ndarray:
    """(T,) lid gap over eye width of landmarks (T, 478, 2+) (image px or canonical), both eyes averaged."""
    values = []
    for outer, inner, upper, lower in (RIGHT_EYE, LEFT_EYE):
        gap = np.linalg.norm(landmarks[:, lower, :2] - landmarks[:, upper, :2], axis=-1)
        width = np.linalg.norm(landmarks[:, inner, :2] - landmarks[:, outer, :2], axis=-1)
        values.append(gap / np.maximum(width, 1e-6))
    return np.mean(values, axis=0)


def _eye_frame(canonical: np.ndarray, eye: tuple[int, int, int, int], outer_is_left: bool):
    """Centre (T, 3), width (T,), unit axes e_x, e_y (T, 2) of one eye opening in canonical xy."""
    outer, inner = canonical[:, eye[0]], canonical[:, eye[1]]
    centre = 0.5 * (outer + inner)
    across = (outer - inner)[:, :2] if outer_is_left else (inner - outer)[:, :2]  # towards +x
    width = np.maximum(np.linalg.norm(across, axis=-1), MIN_SCALE)
    e_x = across / width[:, None]
    e_y = np.stack([-e_x[:, 1], e_x[:, 0]], -1)  # +90 deg in (x, y-down): points down
    return centre, width, e_x, e_y


_EYES = ((LEFT_EYE, LEFT_IRIS, True), (RIGHT_EYE, RIGHT_IRIS, False))  # code order: left, right


def _eye_codes(canonical: np.ndarray) -> np.ndarray:
    codes = []
    for eye, iris, outer_is_left in _EYES:
        centre, width, e_x, e_y = _eye_frame(canonical, eye, outer_is_left)
        offset = (canonical[:, iris[0]] - centre)[:, :2]
        codes += [(offset * e_x).sum(-1) / width, (offset * e_y).sum(-1) / width]
    return np.stack(codes, -1)


# ----------------------------------------------------------------------------- identity
def typical_frame(expression_distance: np.ndarray, canonical: np.ndarray, scale: np.ndarray, rotation: np.ndarray,
                  translation: np.ndarray) -> int:
    """Index of a sequence's most typical frame (``fit_pose``'s outputs and each frame's expression distance from the
    neutral face, (T,)): the least sum of four distances: from the neutral expression (in SOURCE_EXPRESSION_UNIT: a
    person who makes faces a lot does not make a grimace cheaper), and, each over its median across the frames (at
    least SOURCE_MIN_SPREAD), of the irises from where they usually sit in the eyes, of the head from its median angles
    and from its median place.

    Why: the renderer warps this frame and must guess what it does not show. The nearest-neutral frame alone was
    d14's looking sideways (an iris half hidden, no white on one side: the renderer's guess showed when the gaze
    moved) and d9's turned 9 degrees away. Self-reenactment from each clip's first 2 s (60 held-out frames, nine
    clips): face PSNR +0.10 dB, eyes SSIM +0.008 over the nearest-neutral frame, mouth and face SSIM as good."""
    eyes = _eye_codes(canonical)  # t 4: (x, y) of each iris in eye widths
    angles = np.stack(rotation_to_euler(rotation), -1)  # t 3
    spreads = {  # each t
        "gaze": np.linalg.norm((eyes - np.median(eyes, 0)).reshape(-1, 2, 2), axis=-1).mean(-1),
        "turn": np.abs(angles - np.median(angles, 0)).sum(-1),
        "shift": np.linalg.norm(translation[:, :2] - np.median(translation[:, :2], 0), axis=-1) / np.median(scale),
    }
    cost = expression_distance / SOURCE_EXPRESSION_UNIT + sum(
        value / max(float(np.median(value)), SOURCE_MIN_SPREAD[name]) for name, value in spreads.items())
    return int(np.argmin(cost))


@dataclass
class FaceIdentity:
    """A subject's neutral face and the framing of their reference video.

    neutral: (478, 3) canonical-space neutral shape (face-size units, template-aligned).
    center: (3,) pixel position of the canonical origin in the reference framing (median).
    scale: pixels per face-size unit in the reference framing (median).
    frame_size: (H, W) of the reference frames; decode_codes returns points in this pixel frame.
    reference_index: a good frame to warp from: the most typical (``typical_frame``).
    """

    neutral: np.ndarray
    center: np.ndarray
    scale: float
    frame_size: tuple[int, int]
    reference_index: int = 0
    extra: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_landmarks(
        cls, landmarks: np.ndarray, frame_size: tuple[int, int], detected: np.ndarray | None = None
    ) -> FaceIdentity:
        """Neutral = per-point median of the canonical shapes of the least-open-mouth frames."""
        landmarks = _as_sequence(landmarks)
        usable = np.ones(len(landmarks), bool) if detected is None else np.asarray(detected, bool)
        if not usable.any():
            raise ValueError("cannot build a FaceIdentity: no frame has a detected face")
        frames = np.flatnonzero(usable)
        scale, rotation, translation, canonical = fit_pose(landmarks[frames])
        opening = mouth_opening(canonical)
        calm = opening <= np.percentile(opening, NEUTRAL_MOUTH_PERCENTILE)
        neutral = np.median(canonical[calm], axis=0)
        semantic = load_face_template().semantic_indices
        distance = np.linalg.norm(canonical[:, semantic] - neutral[semantic], axis=-1).sum(-1)
        return cls(
            neutral=neutral.astype(np.float32),
            center=np.median(translation, axis=0).astype(np.float32),
            scale=float(np.median(scale)),
            frame_size=(int(frame_size[0]), int(frame_size[1])),
            reference_index=int(frames[typical_frame(distance, canonical, scale, rotation, translation)]),
        )

    @classmethod
    def from_track(cls, track) -> FaceIdentity:
        """Identity from a FaceTrack (only frames where the face was detected count)."""
        return cls.from_landmarks(track.landmarks, track.frame_size, track.detected)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {
            "neutral": np.asarray(self.neutral, np.float32),
            "center": np.asarray(self.center, np.float32),
            "scale": np.asarray(self.scale, np.float64),
            "frame_size": np.asarray(self.frame_size, np.int64),
            "reference_index": np.asarray(self.reference_index, np.int64),
        }

    @classmethod
    def from_dict(cls, data: dict) -> FaceIdentity:
        neutral = np.asarray(data["neutral"], np.float32)
        if neutral.shape != (NUM_LANDMARKS, 3):
            raise ValueError(f"identity 'neutral' must be ({NUM_LANDMARKS}, 3), got {neutral.shape}")
        return cls(
            neutral=neutral,
            center=np.asarray(data["center"], np.float32).reshape(3),
            scale=float(np.asarray(data["scale"])),
            frame_size=tuple(int(v) for v in np.asarray(data["frame_size"]).reshape(2)),
            reference_index=int(np.asarray(data.get("reference_index", 0))),
        )


# ----------------------------------------------------------------------------- encode / decode
def lid_gains(neutral: np.ndarray) -> np.ndarray:
    """(16,) factor per expression point between its code and its canonical offset: for the lid points, each eye's
    neutral opening over the template's where it is larger (LID_GAIN_RANGE), 1 elsewhere. So one blink shuts eyes
    larger than the template's: in face-size units, a blink copied onto a cartoon's eyes left them half open."""
    template = load_face_template().vertices
    gains = np.ones(len(EXPRESSION_POINTS))
    names = [name for name, _ in EXPRESSION_POINTS]
    for eye, side in ((RIGHT_EYE, "right"), (LEFT_EYE, "left")):
        opening = (neutral[eye[3], 1] - neutral[eye[2], 1]) / (template[eye[3], 1] - template[eye[2], 1])
        gain = float(np.clip(opening, *LID_GAIN_RANGE))
        gains[names.index(f"upper_lid_{side}")] = gains[names.index(f"lower_lid_{side}")] = gain
    return gains


def encode_codes(landmarks: np.ndarray, identity: FaceIdentity) -> np.ndarray:
    """Landmarks (T, 478, 3) pixels -> visual codes (T, 58) float32 (layout in the module docstring)."""
    landmarks = _as_sequence(landmarks)
    scale, rotation, translation, canonical = fit_pose(landmarks, identity.neutral.astype(np.float64))
    yaw, pitch, roll = rotation_to_euler(rotation)
    ref_scale = max(identity.scale, MIN_SCALE)
    pose = np.stack(
        [
            yaw,
            pitch,
            roll,
            (translation[:, 0] - identity.center[0]) / ref_scale,
            (translation[:, 1] - identity.center[1]) / ref_scale,
            np.log(np.maximum(scale, MIN_SCALE) / ref_scale),
        ],
        -1,
    )
    semantic = load_face_template().semantic_indices
    offsets = (canonical[:, semantic] - identity.neutral[semantic]) / lid_gains(identity.neutral)[:, None]
    expression = offsets.reshape(len(landmarks), EXP_DIM)
    codes = np.concatenate([pose, expression, _eye_codes(canonical)], -1).astype(np.float32)
    return np.nan_to_num(codes, nan=0.0, posinf=0.0, neginf=0.0)


def eye_region_shift(offsets: np.ndarray, neutral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The eyes' share of the expression offsets (T, 16, 3) as a shift of their whole region: (shift (T, 478, 3),
    the offsets with that share taken off the lids).

    No code holds the eye corners: decoded at the neutral shape, they and the irises placed from them stayed where
    MediaPipe's moved with the lids' common motion (the eye region's shift as the head pitches, a cheek raise), up to
    1.7 % of the face width off on the real clips, and the irises' round-trip error was 0.89 % of the face width over
    nine clips, twice the lids' own. Now the motion both lids of an eye share moves the points around it, fading out
    before the brow and cheek: the irises' error 0.62 %, self-reenactment eyes SSIM on six clips 0.7685 -> 0.7754
    (d10 0.719 -> 0.748). Lids moving apart or together (a blink, a widening) share nothing, so a blink leaves the
    eye where it is: the half-sum of the two lids moved it too (eyes SSIM 0.7769, but MediaPipe read the drawn blinks
    shallower and the style benchmark's eye-opening variation fell 0.664 -> 0.635). The lids' own offsets keep the
    rest, so every expression point still decodes to its code exactly."""
    names = [name for name, _ in EXPRESSION_POINTS]
    semantic = load_face_template().semantic_indices
    offsets = offsets.copy()
    shift = np.zeros((len(offsets), len(neutral), 3))
    for eye, side in ((RIGHT_EYE, "right"), (LEFT_EYE, "left")):
        upper, lower = names.index(f"upper_lid_{side}"), names.index(f"lower_lid_{side}")
        up, down = offsets[:, upper], offsets[:, lower]  # t 3 each
        # the motion both lids share, axis by axis: none when they move apart or together (a blink, a widening)
        common = np.where(np.sign(up) == np.sign(down), np.sign(up) * np.minimum(np.abs(up), np.abs(down)), 0.0)
        centre = 0.5 * (neutral[eye[0]] + neutral[eye[1]])
        width = max(float(np.linalg.norm(neutral[eye[0], :2] - neutral[eye[1], :2])), MIN_SCALE)
        reach = np.hypot((neutral[:, 0] - centre[0]) / width, 2.0 * (neutral[:, 1] - centre[1]) / width)  # v
        inner, outer = EYE_REGION_REACH
        weight = np.clip((outer - reach) / (outer - inner), 0.0, 1.0)
        weight[np.delete(semantic, [upper, lower])] = 0.0  # every expression point decodes to its own code:
        weight[semantic[[upper, lower]]] = 1.0  # the lids get back what their offsets gave up
        shift += weight[None, :, None] * common[:, None]
        offsets[:, [upper, lower]] -= common[:, None]
    return shift, offsets


def lip_arch(canonical: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Canonical landmarks (T, 478, 3) with each lip chain's points between its corners moved onto an arch: the line
    between the two corners' offsets plus sin(pi u) ** LIP_ARCH_EXPONENT of the middle point's offset from that line.

    Propagated from the codes' few lip points by geodesic Gaussians, a wide-open mouth decoded as a diamond: the points
    near the corners hardly moved (a chain's second point bent 0.12 of its middle where MediaPipe's lips bend 0.30; an
    open mouth's gap a tenth of the way along it 0.14 of the mouth width against 0.42 tracked, d18). The corners and
    the middle points are unchanged, so every expression point still decodes to its code exactly."""
    canonical = canonical.copy()
    template = load_face_template().vertices.astype(np.float64)  # u from the template: any face, even a degenerate one
    for chain in LIP_CHAINS:
        chain = np.asarray(chain)
        x = template[chain, 0]
        u = np.clip((x - x[0]) / (x[-1] - x[0]), 0.0, 1.0)  # c
        offsets = canonical[:, chain] - neutral[chain][None]  # t c 3
        line = offsets[:, :1] + u[None, :, None] * (offsets[:, -1:] - offsets[:, :1])  # t c 3
        middle = len(chain) // 2
        bend = offsets[:, middle] - line[:, middle]  # t 3
        arch = np.sin(np.pi * u) ** LIP_ARCH_EXPONENT  # c
        canonical[:, chain[1:-1]] = (neutral[chain] + line + arch[None, :, None] * bend[:, None])[:, 1:-1]
    return canonical


def decode_codes(codes: np.ndarray, identity: FaceIdentity) -> np.ndarray:
    """Visual codes (T, 58) -> landmarks (T, 478, 3) float32 in the reference frame's pixels."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim == 1:
        codes = codes[None]
    if codes.ndim != 2 or codes.shape[1] != VISUAL_CODE_DIM:
        raise ValueError(f"codes must be (T, {VISUAL_CODE_DIM}), got {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes contain NaN/inf")
    template = load_face_template()
    num_frames = len(codes)
    neutral = identity.neutral.astype(np.float64)

    offsets = codes[:, EXP_SLICE].reshape(num_frames, len(template.semantic_indices), 3)  # t k 3
    offsets = offsets * lid_gains(neutral)[:, None]
    shift, offsets = eye_region_shift(offsets, neutral)  # t v 3, t k 3
    canonical = neutral[None] + np.einsum("vk,tkc->tvc", template.propagation_weights, offsets) + shift
    canonical = lip_arch(canonical, neutral)

    eye_codes = codes[:, EYE_SLICE].reshape(num_frames, 2, 2)
    for side, (eye, iris, outer_is_left) in enumerate(_EYES):
        centre, width, e_x, e_y = _eye_frame(canonical, eye, outer_is_left)
        neutral_centre = 0.5 * (neutral[eye[0]] + neutral[eye[1]])
        iris_xy = centre[:, :2] + width[:, None] * (
            eye_codes[:, side, :1] * e_x + eye_codes[:, side, 1:] * e_y
        )
        iris_z = centre[:, 2] + (neutral[iris[0], 2] - neutral_centre[2])
        iris_centre = np.concatenate([iris_xy, iris_z[:, None]], -1)  # t 3
        canonical[:, list(iris)] = iris_centre[:, None] + (neutral[list(iris)] - neutral[iris[0]])[None]

    pose = codes[:, POSE_SLICE]
    rotation = euler_to_rotation(pose[:, 0], pose[:, 1], pose[:, 2])  # t 3 3
    scale = identity.scale * np.exp(pose[:, 5])
    translation = np.stack(
        [
            identity.center[0] + pose[:, 3] * identity.scale,
            identity.center[1] + pose[:, 4] * identity.scale,
            np.full(num_frames, identity.center[2]),
        ],
        -1,
    )
    points = scale[:, None, None] * np.einsum("tij,tnj->tni", rotation, canonical) + translation[:, None]
    return points.astype(np.float32)


# ----------------------------------------------------------------------------- time
def _check_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) == 0:
        raise ValueError(f"codes must be a non-empty (T, D) array, got shape {codes.shape}")
    return codes


def resample_codes(
    codes: np.ndarray,
    src_fps: float,
    dst_fps: float,
    num_frames: int | None = None,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Resample a code sequence (T, D) in time by linear interpolation, float32 out.

    src_fps: source rate (ignored for the sample times when `timestamps` (T,) seconds is given, e.g. a
    variable-frame-rate video). num_frames: output length (default: the same duration at dst_fps).
    Downsampling first low-passes with a Gaussian (ANTI_ALIAS_SIGMA source frames per output frame).
    Angles are unwrapped so +-pi crossings interpolate correctly.
    """
    codes = _check_codes(codes)
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be positive, got src_fps={src_fps}, dst_fps={dst_fps}")
    if timestamps is None:
        times = np.arange(len(codes)) / src_fps
    else:
        times = np.asarray(timestamps, dtype=np.float64) - float(timestamps[0])
        if times.shape != (len(codes),) or np.any(np.diff(times) <= 0):
            raise ValueError("timestamps must be (T,) strictly increasing seconds, one per code frame")
    if num_frames is None:
        # Duration covers the last frame too: its display time is one frame interval.
        last_interval = np.median(np.diff(times)) if len(times) > 1 else 1.0 / src_fps
        duration = len(codes) / src_fps if timestamps is None else times[-1] + last_interval
        num_frames = max(1, int(round(duration * dst_fps)))
    if codes.shape[1] >= ROTATION_SLICE.stop:
        codes = codes.copy()
        codes[:, ROTATION_SLICE] = np.unwrap(codes[:, ROTATION_SLICE], axis=0)
    ratio = src_fps / dst_fps
    if ratio > 1.0 and len(codes) > 1:
        codes = gaussian_filter1d(codes, sigma=ANTI_ALIAS_SIGMA * ratio, axis=0, mode="nearest")
    out_times = np.arange(num_frames) / dst_fps
    out = np.stack([np.interp(out_times, times, codes[:, d]) for d in range(codes.shape[1])], -1)
    return out.astype(np.float32)


def retime(sequence: torch.Tensor | np.ndarray, src_fps: float, dst_fps: float, num_frames: int | None = None):
    """Resample a frame sequence (T, D) from `src_fps` to `dst_fps` with exactly `num_frames` frames.

    Frame k sits at time k / fps (frame starts). Linear interpolation, low-passed first when
    downsampling, holding the last frame past the end (``resample_codes``). Every rate change of the
    pipeline (video fps -> 93.75 mel fps -> 30 fps codes / 25 fps output video) goes through here.
    Returns the input's type (tensor in -> tensor out, same device and dtype).
    """
    is_tensor = isinstance(sequence, torch.Tensor)
    array = sequence.detach().cpu().double().numpy() if is_tensor else np.asarray(sequence, np.float64)
    if num_frames is None:
        num_frames = max(1, round(len(array) * dst_fps / src_fps))
    if len(array) == 1:  # one frame (a photo) is constant in time
        out = np.repeat(array.astype(np.float32), num_frames, axis=0)
    else:
        out = resample_codes(array, src_fps, dst_fps, num_frames=num_frames)
    if is_tensor:
        return torch.from_numpy(out).to(device=sequence.device, dtype=sequence.dtype)
    return out


def extend_by_reflection(sequence: np.ndarray, num_frames: int) -> np.ndarray:
    """A (T, D) sequence played forwards, backwards, forwards ... until it has at least `num_frames` frames (one
    that long already comes back as it is).

    Why: a reference video shorter than its separate voice sample covers only the start of the prompt. Held at its
    last frame for the rest (``resample_codes``), the prompt ended on a still face, which the model (it sees the
    prompt's end in context) and the style statistics (blink rate, motion spread) then took for the person's
    manner. Played back and forth, the motion stays continuous (no jump at a loop) and keeps its rates and ranges.
    """
    sequence = np.asarray(sequence)
    if len(sequence) >= num_frames or len(sequence) < 2:
        return sequence
    return np.pad(sequence, [(0, num_frames - len(sequence))] + [(0, 0)] * (sequence.ndim - 1), mode="reflect")


def video_frame_count(num_samples: int, fps: float, sample_rate: int = SAMPLE_RATE) -> int:
    """Video frames that cover `num_samples` of audio (rounded: durations agree within half a frame)."""
    return max(1, round(num_samples / sample_rate * fps))


def smooth_codes(
    codes: np.ndarray, fps: float = CODE_FPS, cutoff_hz: float | dict | None = None
) -> np.ndarray:
    """Zero-phase low-pass (Butterworth, forwards + backwards) of a (T, 58) code sequence.

    Removes landmark jitter without lag and without freezing motion: components below the cutoff
    (head turns, nods, speech movements) keep their amplitude. cutoff_hz: one value for every
    dimension, or {"pose": ..., "exp": ..., "eye": ...}; default SMOOTHING_CUTOFF_HZ.
    Sequences shorter than the filter's warm-up are smoothed with a shorter pad.
    """
    codes = _check_codes(codes)
    if codes.shape[1] != VISUAL_CODE_DIM:
        raise ValueError(f"codes must be (T, {VISUAL_CODE_DIM}), got {codes.shape}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    cutoffs = dict(SMOOTHING_CUTOFF_HZ)
    if isinstance(cutoff_hz, dict):
        unknown = set(cutoff_hz) - set(cutoffs)
        if unknown:
            raise ValueError(f"unknown code streams {sorted(unknown)}; use pose, exp, eye")
        cutoffs.update(cutoff_hz)
    elif cutoff_hz is not None:
        cutoffs = dict.fromkeys(cutoffs, float(cutoff_hz))
    out = codes.copy()
    out[:, ROTATION_SLICE] = np.unwrap(out[:, ROTATION_SLICE], axis=0)
    nyquist = 0.5 * fps
    for stream, part in (("pose", POSE_SLICE), ("exp", EXP_SLICE), ("eye", EYE_SLICE)):
        cutoff = cutoffs[stream]
        if cutoff <= 0:
            raise ValueError(f"cutoff for {stream} must be positive, got {cutoff}")
        if cutoff >= nyquist or len(out) < 3:
            continue  # nothing above the cutoff to remove
        sos = butter(SMOOTHING_ORDER, cutoff / nyquist, output="sos")
        padlen = min(3 * (2 * len(sos) + 1), len(out) - 1)
        out[:, part] = sosfiltfilt(sos, out[:, part], axis=0, padlen=padlen)
    return out.astype(np.float32)


def track_to_codes(track, identity: FaceIdentity | None = None, fps: float = CODE_FPS, smooth: bool = True):
    """Codes of a FaceTrack at `fps` (default 30): encode, resample on the frames' timestamps, smooth.

    identity defaults to the track's own (FaceIdentity.from_track). Smoothing (``smooth_codes``) runs
    at the track's native rate, before resampling, where the landmark jitter lives.
    """
    identity = FaceIdentity.from_track(track) if identity is None else identity
    codes = encode_codes(track.landmarks, identity)
    if smooth:
        codes = smooth_codes(codes, fps=track.fps)
    return resample_codes(codes, track.fps, fps, timestamps=track.timestamps)
