"""Mouth interior of the warp renderer: what shows between the driven inner lips.

The mesh warp draws the lips; the opening between them is a layer over it (``omnitalker/render/layers.py``),
anti-aliased at the lips and faded in as the mouth opens (a mouth that barely parts shows the warp's
squeezed lip line, not a bar of teeth). Two sources, best first:

- **the person's own frames** (a video reference): a bank of the reference's open-mouth frames, each
  resampled into its opening's (u, s) coordinates (u along the mouth, s from upper to lower inner lip, from just
  inside each lip: ``BANK_LIP_INSET``).
  Per output frame the entry whose opening profile (gap over width at a few points along the mouth) is
  nearest the driven one is drawn, stretched to the driven opening: real teeth and tongue that move with
  the lips.
- **strips** (a photo): two strips, one for the upper half of the opening and one for the lower.
  - A photo whose parted lips show its own teeth: in "distance from the lip" coordinates, its own interior
    near each lip, a shaded cavity further in.
  - A photo whose mouth is closed, or parted over a dark slot: procedural teeth lit like the face (and
    tinted by its light), placed where teeth are. The upper row is fixed to the skull (it moves with the
    head's rigid pose), its edge a little below the photo's lip line; the lower row rides on the jaw (the
    chin's motion relative to the skull) with the tongue behind it. The lips uncover them: a grin over a
    closed jaw shows both rows meeting, a speaking jaw the upper row over a dark mouth. Rows count from each
    incisal edge, so teeth never stretch with the lips.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from omnitalker.render.geometry import (
    LUMA_WEIGHTS,
    NUM_MESH_VERTICES,
    LipFrame,
    Similarity,
    farthest_point_picks,
    illumination,
    in_photo_colours,
)
from omnitalker.render.layers import Layer, opening_coverage, region_grid

# Lengths in units of the mouth width (inner-lip corner to corner).
# A reference whose lips part by less than this (gap / width) gets drawn teeth: its own interior, a thin band by each lip,
# opened wider into a dark hole (the shared photos s1, s42 and s10, at 0.07, 0.16 and 0.17). At its own opening it
# still shows its own pixels (the drawn interior fades in from there). Above it, its own teeth are used ...
MOUTH_OPEN_RATIO = 0.2
# ... unless its interior is dark: median luminance in the middle of the opening below this share of the skin's.
# Measured on the shared photos and clips: 0.11 and 0.33 where no teeth show, 0.71-0.81 where they do.
DARK_INTERIOR_RATIO = 0.5
INTERIOR_PROBE_U, INTERIOR_PROBE_S = (0.3, 0.7), (0.25, 0.75)  # where the opening is probed (along, across)
MOUTH_CLOSED_RATIO = 0.02  # driven gap / width below this: no interior is drawn (lips pressed together)
MOUTH_FADE_RATIO = 0.04  # the interior fades in over this much more opening
MOUTH_STRIP_DEPTH = 0.5  # each mouth strip reaches this far from its lip (or incisal edge) into the cavity
MOUTH_OVERSAMPLE = 2  # strip texels per reference pixel (procedural teeth need the resolution)

# Drawn teeth, placed as teeth sit in a head.
# The upper incisal edge lies this far below the photo's closed lip line: on real clips' open mouths the upper teeth
# reached 0.05-0.13 mouth widths below where the lips had met (d0, d6, d14).
UPPER_EDGE_BELOW_LIP = 0.07
OVERBITE = 0.05  # with the jaw closed the upper row overlaps the lower one by this much
# The lower incisors move this many times MediaPipe's chin points (relative to the skull). Its chin moves less than
# the jaw does: the inner lower lip moved 1.1-3.5x as far as the chin points on nine real clips (median 2.0), and the
# incisors sit nearer the jaw's hinge than the chin (about 0.8 of its reach).
JAW_TEETH_GAIN = 1.6
LOWER_LIP_REACH = 0.05  # the lower lip, fixed to the jaw below the teeth, falls at most this far below their edge
# ... and covers them by at most this much: the jaw's estimate from the chin put the lower row up to 0.3 mouth widths
# below the lower lip of a wide-open mouth (s42), hiding the tongue behind it, so the opening was one flat dark slab.
LOWER_LIP_COVER = 0.1
CHIN = (152, 148, 377, 176, 400)  # MediaPipe points on the chin: they move with the jaw
TEETH_LINE_SAMPLES = 17  # points along the photo's lip line (the rest position of the incisal edges)
UPPER_TEETH_HEIGHT = 0.2  # visible crown heights; beyond a crown the gum shows (a wide smile)
LOWER_TEETH_HEIGHT = 0.15
TEETH_SPAN = (0.15, 0.85)  # teeth fill this part of the reference mouth's width; the corners stay dark
# The teeth darken into the mouth's shadow over this width beyond each end of the span (as real side teeth do); at
# 0.05 the drawn teeth ended in hard vertical edges, a pale rectangle.
TEETH_SPAN_FADE = 0.12
CORNER_TEETH_SHORTENING = 0.4  # towards the ends of the span the incisal edge rises by this share of the crown
# Crown widths (mm) from the midline back, central incisor to second premolar (dental anatomy's mean sizes), laid on a
# round arch of ARCH_RADIUS_MM and seen from the front: the centrals are wide, the side teeth narrow as the arch
# turns away. Equal widths drew a regular "picket fence".
UPPER_TOOTH_WIDTHS_MM = (8.5, 6.5, 7.5, 7.0, 6.5)
LOWER_TOOTH_WIDTHS_MM = (5.0, 5.5, 7.0, 7.0, 7.0)
ARCH_RADIUS_MM = 25.0
# The gaps between teeth show where two crowns part: at the incisal edge and by the gum. Between, where neighbours
# touch, a gap is CONTACT_GAP_SHARE as dark. Shaded over the whole crown (0.15, rising 0.15 of the crown at each gap),
# the teeth read as a comb of separate blocks (the shared photos s2 and s42).
TEETH_GAP_SHADE = 0.15  # brightness dip at each gap between teeth, where they part
TEETH_GAP_WIDTH = 0.1  # Gaussian sigma of a gap, as a share of the narrower of its two teeth as seen
CONTACT_GAP_SHARE = 0.3
EMBRASURE_REACH = 0.35  # share of the crown from the incisal edge (and from the gum) over which the gap opens
INCISAL_EMBRASURE = 0.06  # at each gap the incisal edge rises by this share of the crown (rounded tooth corners)
ARCH_SHADE = 0.25  # teeth darken by this fraction at the span's ends as the arch turns back into the mouth
# Teeth colour relative to white, scaled by the face's illumination (geometry.py) and tinted by the skin's hue. Fitted
# to the brightest tenth of the open mouths of five real clips (d0, d6, d10, d12, d14: their teeth against their skin);
# the former (0.88, 0.85, 0.78) drew them 5-25 % darker and yellower than the people's own teeth.
TEETH_COLOR = np.array([0.95, 0.89, 0.92])
TEETH_SKIN_TINT = 0.5  # exponent of the skin's hue (colour over luminance) in the teeth colour
TOOTH_EDGE_SHADE = 0.3  # teeth darken by this fraction towards their free edge
GUM_TINT = np.array([0.85, 0.5, 0.5])  # gum colour = skin colour times this
GUM_HEIGHT = 0.06  # strip rows of gum above each crown
TONGUE_TINT = np.array([0.75, 0.45, 0.45])  # tongue colour = skin colour times this
# Its arch above the lower incisal edge, and half its width. On the real clips' wide-open mouths the tongue fills about
# the lower half of the opening; at 0.12 a drawn one showed as a thin band under a dark hole (self-reenactment, photo
# mode, nine clips: mouth SSIM 0.8330 -> 0.8334 at 0.25, MediaPipe's mouth-opening gain 1.01 -> 1.00).
TONGUE_HEIGHT, TONGUE_HALF_WIDTH = 0.25, 0.35
# The tongue darkens by this fraction towards the back of the mouth, and the cavity by CAVITY_DEPTH_SHADE from each
# edge to the strip's far end: at 0.3 and 0.25 the tongue's back had the cavity's colour and a speaking mouth read as
# one flat dark slab (the shared photo s42).
TONGUE_TOP_SHADE = 0.1
TEETH_SOFTNESS = 0.6  # Gaussian sigma (strip texels) of the procedural texture: no hard texel steps
# Cavity colour = skin colour times this. Measured on the open mouths of eight real clips (inner-lip polygon over the
# face's median skin): (0.73, 0.64, 0.70) with teeth and tongue, about (0.6, 0.45, 0.5) where neither shows; the
# former (0.30, 0.16, 0.16) drew a near-black hole. Kept darker than measured: at (0.60, 0.42, 0.46) MediaPipe no
# longer saw the opening of the test clip (mouth-opening correlation 0.67, tests/test_reenact.py).
CAVITY_TINT = np.array([0.45, 0.30, 0.33])
CAVITY_DEPTH_SHADE = 0.45

# The bank of the person's own mouths.
STATE_U = (0.2, 0.35, 0.5, 0.65, 0.8)  # the opening profile is sampled at these points along the mouth
BANK_MIN_OPEN_RATIO = 0.05  # frames whose gap / width is below this show too little to keep
BANK_SIZE = 24  # at most this many entries (farthest-point picks over the opening profiles)
BANK_ROWS, BANK_COLS = 40, 96  # texels of each entry across (s) and along (u) the opening
# Each entry is taken from this share of its opening inside each inner lip. MediaPipe's inner-lip contour runs on the
# lips' inner edge, so the texture's first and last rows were lip: stretched to the driven opening they drew a pale
# rim inside the lips and the drawn mouths read smaller (self-reenactment, video mode, four clips: MediaPipe's mouth
# opening gain 0.77 -> 0.82 at 0.1, same SSIM; 0.87 at 0.2, which cut the upper teeth to a thin band).
BANK_LIP_INSET = 0.1


@dataclass
class MouthReference:
    upper: np.ndarray  # inner-lip chain indices, corner to corner
    lower: np.ndarray
    frame: LipFrame  # the reference frame's opening (frame px)
    upper_strip: np.ndarray  # atlas (x, y) of texel (0, 0)
    lower_strip: np.ndarray
    strip_shape: tuple[int, int]  # (rows, cols)
    drawn_teeth: bool = False  # the strips hold procedural teeth (the reference shows no teeth: ``draws_teeth``)
    teeth_line: np.ndarray | None = None  # (TEETH_LINE_SAMPLES, 3) reference px: the lip line, corner to corner
    chin: np.ndarray | None = None  # (len(CHIN), 3) reference px
    bank_states: np.ndarray | None = None  # (K, len(STATE_U)) opening profiles of the bank entries
    bank_offsets: np.ndarray | None = None  # (K, 2) atlas (x, y) of each entry's texel (0, 0)


def opening_state(frame: LipFrame) -> np.ndarray:
    """Gap / width at ``STATE_U``: the shape of an opening, free of its size."""
    u = np.asarray(STATE_U)
    return (np.interp(u, frame.lower_u, frame.lower_v) - np.interp(u, frame.upper_u, frame.upper_v)) / frame.width


def draws_teeth(image: np.ndarray, frame: LipFrame, skin: np.ndarray) -> bool:
    """Whether a reference mouth shows no teeth of its own, so that drawn ones are needed: closed, or parted over a
    dark interior (a dark slot between the lips, drawn hanging from them, stayed a dark hole as the mouth opened)."""
    if frame.gap() / frame.width <= MOUTH_OPEN_RATIO:
        return True
    u = np.linspace(*INTERIOR_PROBE_U, 9)[None, :].repeat(5, 0)
    s = np.linspace(*INTERIOR_PROBE_S, 5)[:, None].repeat(9, 1)
    v_up, v_lo = np.interp(u, frame.upper_u, frame.upper_v), np.interp(u, frame.lower_u, frame.lower_v)
    xs, ys = frame.to_pixels(u, v_up + s * (v_lo - v_up))
    inside = cv2.remap(image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE).reshape(-1, 3).astype(np.float64)
    skin_luma = max(float(np.asarray(skin, np.float64) @ LUMA_WEIGHTS), 1.0)
    return float(np.median(inside @ LUMA_WEIGHTS)) / skin_luma < DARK_INTERIOR_RATIO


def own_interior_strips(image: np.ndarray, frame: LipFrame, skin: np.ndarray) -> list[np.ndarray]:
    """The (upper, lower) strips of a photo whose parted lips show its own teeth (rows = distance from the lip,
    cols = u along the mouth): its interior near each lip, a shaded cavity further in."""
    width_px = frame.width
    cols = int(np.ceil(width_px * MOUTH_OVERSAMPLE)) + 1
    rows = int(np.ceil(MOUTH_STRIP_DEPTH * width_px * MOUTH_OVERSAMPLE)) + 1
    u = np.linspace(0.0, 1.0, cols)[None, :].repeat(rows, 0)
    depth = (np.arange(rows, dtype=np.float64) / MOUTH_OVERSAMPLE)[:, None].repeat(cols, 1)  # ref px
    v_up, v_lo = np.interp(u, frame.upper_u, frame.upper_v), np.interp(u, frame.lower_u, frame.lower_v)
    half_gap = np.maximum(v_lo - v_up, 0.0) / 2
    shade = 1.0 - CAVITY_DEPTH_SHADE * depth / (MOUTH_STRIP_DEPTH * width_px)
    cavity = in_photo_colours(skin * CAVITY_TINT, skin)[None, None, :] * shade[..., None]
    strips = []
    for v_lip, sign in ((v_up, 1.0), (v_lo, -1.0)):
        # The reference's own interior near this lip (its half of the opening), cavity further in.
        xs, ys = frame.to_pixels(u, v_lip + sign * depth)
        own = cv2.remap(image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
        weight = np.clip((half_gap - depth) * MOUTH_OVERSAMPLE, 0.0, 1.0)[..., None]
        strips.append(np.clip(cavity + weight * (own - cavity), 0, 255).round().astype(np.uint8))
    return strips


def teeth_edge_row(width_px: float) -> int:
    """The strip row of the incisal edge in ``teeth_strips`` for a reference mouth `width_px` wide."""
    return int(np.ceil((max(UPPER_TEETH_HEIGHT, LOWER_TEETH_HEIGHT) + GUM_HEIGHT) * width_px * MOUTH_OVERSAMPLE))


def teeth_strips(width_px: float, skin: np.ndarray) -> list[np.ndarray]:
    """Procedural (upper, lower) rows of teeth, lit like the face. Rows count from the gum across the incisal edge
    (at ``teeth_edge_row``) into the cavity behind it: texel row r lies (r - edge) / MOUTH_OVERSAMPLE reference px
    past the edge."""
    edge = teeth_edge_row(width_px)
    cols = int(np.ceil(width_px * MOUTH_OVERSAMPLE)) + 1
    rows = edge + int(np.ceil(MOUTH_STRIP_DEPTH * width_px * MOUTH_OVERSAMPLE)) + 1
    u = np.linspace(0.0, 1.0, cols)[None, :]
    past = ((np.arange(rows, dtype=np.float64) - edge) / MOUTH_OVERSAMPLE)[:, None]  # ref px past the edge

    light = illumination(skin)
    # Lit by the light that colours the skin: warm under warm light (neutral grey-white teeth in an orange-lit face
    # read as blue).
    hue = np.clip(np.asarray(skin, np.float64) / max(float(np.asarray(skin) @ LUMA_WEIGHTS), 1.0), 0.0, 2.0)
    teeth = in_photo_colours(TEETH_COLOR * 255.0 * light * hue**TEETH_SKIN_TINT, skin)
    gum = in_photo_colours(skin * GUM_TINT, skin)
    shade = 1.0 - CAVITY_DEPTH_SHADE * np.clip(np.abs(past) / (MOUTH_STRIP_DEPTH * width_px), 0.0, 1.0)
    cavity = in_photo_colours(skin * CAVITY_TINT, skin)[None, None, :] * shade[..., None]
    # Teeth stay inside the middle of the mouth and show gaps between them.
    inside = np.clip(np.minimum(u - TEETH_SPAN[0], TEETH_SPAN[1] - u) / TEETH_SPAN_FADE + 1.0, 0.0, 1.0)
    span = inside * inside * (3.0 - 2.0 * inside)  # smoothstep: no visible end
    arch = 1.0 - ARCH_SHADE * arch_depth(u)  # 1 cols
    strips = []
    for row, height, widths in (("upper", UPPER_TEETH_HEIGHT, UPPER_TOOTH_WIDTHS_MM),
                                ("lower", LOWER_TEETH_HEIGHT, LOWER_TOOTH_WIDTHS_MM)):
        crown = height * width_px  # ref px
        gap = tooth_gaps(u, widths)  # 1 cols: 1 at a gap between two teeth
        # the edge rises towards the corners, and a little at each gap
        rise = CORNER_TEETH_SHORTENING * crown * (1.0 - span) + INCISAL_EMBRASURE * crown * gap
        on_tooth = -past - rise  # ref px from the (risen) edge into the tooth
        along_crown = np.clip(on_tooth / np.maximum(crown - rise, 1e-6), 0.0, 1.0)  # 0 at the edge, 1 at the gum
        parting = np.clip(1.0 - np.minimum(along_crown, 1.0 - along_crown) / EMBRASURE_REACH, 0.0, 1.0)
        gaps = 1.0 - TEETH_GAP_SHADE * gap * (CONTACT_GAP_SHARE + (1.0 - CONTACT_GAP_SHARE) * parting)
        tooth_share = np.clip(on_tooth * MOUTH_OVERSAMPLE, 0.0, 1.0) * span
        on_gum = np.clip((-past - crown) * MOUTH_OVERSAMPLE, 0.0, 1.0) * span
        tooth_shade = (1.0 - TOOTH_EDGE_SHADE * (1.0 - along_crown)) * gaps * arch
        texture = cavity + tooth_share[..., None] * (teeth[None, None, :] * tooth_shade[..., None] - cavity)
        texture = texture + on_gum[..., None] * (gum[None, None, :] - texture)
        if row == "lower":  # the tongue lies behind the lower teeth, its tip a rounded arch
            arch = TONGUE_HEIGHT * width_px * np.sqrt(np.clip(1.0 - ((u - 0.5) / TONGUE_HALF_WIDTH) ** 2, 0.0, 1.0))
            on_tongue = np.clip((arch - past) * MOUTH_OVERSAMPLE, 0.0, 1.0) * (past >= 0)
            tongue_shade = 1.0 - TONGUE_TOP_SHADE * np.clip(past / np.maximum(arch, 1e-6), 0.0, 1.0)
            tongue = in_photo_colours(skin * TONGUE_TINT, skin)[None, None, :] * tongue_shade[..., None]
            texture = texture + on_tongue[..., None] * (tongue - texture)
        texture = cv2.GaussianBlur(texture.astype(np.float32), (0, 0), TEETH_SOFTNESS)
        strips.append(np.clip(texture, 0, 255).round().astype(np.uint8))
    return strips


def arch_depth(u: np.ndarray) -> np.ndarray:
    """How far the dental arch has turned back into the mouth at each position u (0..1 across the reference mouth):
    0 at the midline, 1 at the ends of ``TEETH_SPAN`` (the arch of ``ARCH_RADIUS_MM`` that the upper teeth span)."""
    reach = sum(UPPER_TOOTH_WIDTHS_MM) / ARCH_RADIUS_MM  # radians from the midline to the span's end
    seen = np.clip(np.abs(u - sum(TEETH_SPAN) / 2.0) / (np.ptp(TEETH_SPAN) / 2.0), 0.0, 1.0)
    angle = np.arcsin(seen * np.sin(reach))
    return (1.0 - np.cos(angle)) / (1.0 - np.cos(reach))


def tooth_gaps(u: np.ndarray, widths_mm: tuple[float, ...]) -> np.ndarray:
    """How much of a gap between two teeth lies at each position u (0..1 across the reference mouth): teeth of
    `widths_mm` from the midline out on each side, on a round arch seen from the front, filling ``TEETH_SPAN``."""
    reach = np.cumsum((0.0, *widths_mm)) / ARCH_RADIUS_MM  # radians of arch from the midline to each boundary
    seen = np.sin(reach) / np.sin(reach[-1])  # 0..1 of the span's half-width, as projected
    half = np.ptp(TEETH_SPAN) / 2.0
    centre = sum(TEETH_SPAN) / 2.0
    gap = np.zeros_like(u, dtype=np.float64)
    for index, at in enumerate(seen[:-1]):
        narrower = min(seen[index + 1] - at, at - seen[index - 1] if index else seen[1])  # of its two teeth
        sigma = TEETH_GAP_WIDTH * narrower * half
        for side in (-1.0, 1.0) if index else (1.0,):
            gap = np.maximum(gap, np.exp(-0.5 * ((u - centre - side * at * half) / sigma) ** 2))
    return gap


def teeth_anchors(landmarks: np.ndarray, frame: LipFrame) -> tuple[np.ndarray, np.ndarray]:
    """Where drawn teeth sit in a reference (478, 3) px whose lips `frame` describes: its lip line (the middle of the
    opening, corner to corner, (TEETH_LINE_SAMPLES, 3)) and its chin points ((len(CHIN), 3))."""
    u = np.linspace(0.0, 1.0, TEETH_LINE_SAMPLES)
    middle = (np.interp(u, frame.upper_u, frame.upper_v) + np.interp(u, frame.lower_u, frame.lower_v)) / 2
    xs, ys = frame.to_pixels(u, middle)
    # Depth along the line: the z of the nearest mesh points (the lips').
    mesh = landmarks[:NUM_MESH_VERTICES]
    nearest = np.argmin(np.hypot(mesh[:, 0, None] - xs, mesh[:, 1, None] - ys), axis=0)
    line = np.stack([xs, ys, mesh[nearest, 2]], axis=1)
    return line.astype(np.float64), landmarks[list(CHIN)].astype(np.float64)


def bank_entries(frames: np.ndarray, landmarks: np.ndarray, upper: np.ndarray, lower: np.ndarray
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The open-mouth frames of a reference clip as (u, s) textures: (states (K, S), textures [(rows, cols, 3)])."""
    frames_of = [LipFrame.from_points(points, upper, lower) for points in landmarks]
    states = np.stack([opening_state(f) for f in frames_of]) if frames_of else np.zeros((0, len(STATE_U)))
    open_ids = np.flatnonzero(states.mean(1) > BANK_MIN_OPEN_RATIO) if len(states) else np.zeros(0, int)
    if not len(open_ids):
        return np.zeros((0, len(STATE_U))), []
    # The widest-open frame first, then whichever is least like those picked.
    picked = [int(open_ids[k]) for k in
              farthest_point_picks(states[open_ids], int(np.argmax(states[open_ids].mean(1))), BANK_SIZE)]
    u = np.linspace(0.0, 1.0, BANK_COLS)[None, :].repeat(BANK_ROWS, 0)
    s = np.linspace(BANK_LIP_INSET, 1.0 - BANK_LIP_INSET, BANK_ROWS)[:, None].repeat(BANK_COLS, 1)
    textures = []
    for k in picked:
        f = frames_of[k]
        v_up, v_lo = np.interp(u, f.upper_u, f.upper_v), np.interp(u, f.lower_u, f.lower_v)
        xs, ys = f.to_pixels(u, v_up + s * (v_lo - v_up))
        textures.append(cv2.remap(frames[k], xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE))
    return states[picked], textures


def mouth_layers(mouth: MouthReference, driven: np.ndarray, size: int, pose: Similarity) -> list[Layer]:
    """The interior layer for driven landmarks (478, 2+) in px of a crop `size` px wide, faded in with the opening.
    `pose` maps the reference's px to the crop's as the head moved (``WarpRenderer.crop_head_pose``): drawn teeth
    move with it."""
    frame = LipFrame.from_points(driven, mouth.upper, mouth.lower)
    state = opening_state(frame)
    # Drawn teeth in a photo whose lips are parted show only as they part further than in the photo: at its own
    # opening the photo's own mouth stays (its teeth, or its dark slot where they were in shadow).
    closed = max(MOUTH_CLOSED_RATIO, opening_state(mouth.frame).mean()) if mouth.drawn_teeth else MOUTH_CLOSED_RATIO
    fade = float(np.clip((state.mean() - closed) / MOUTH_FADE_RATIO, 0.0, 1.0))
    if fade <= 0.0:
        return []
    region = region_grid(driven[np.concatenate([mouth.upper, mouth.lower]), :2], size, 1.0)
    if region is None:
        return []
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    alpha = (opening_coverage(u, v, v_up, v_lo, frame.width) * fade).astype(np.float32)
    if mouth.bank_states is not None and len(mouth.bank_states):
        nearest = int(np.argmin(np.linalg.norm(mouth.bank_states - state, axis=1)))
        s = np.clip((v - v_up) / np.maximum(v_lo - v_up, 1e-6), 0.0, 1.0)
        origin = mouth.bank_offsets[nearest]
        map_x, map_y = origin[0] + np.clip(u, 0.0, 1.0) * (BANK_COLS - 1), origin[1] + s * (BANK_ROWS - 1)
        return [Layer(window, map_x.astype(np.float32), map_y.astype(np.float32), alpha)]
    rows, cols = mouth.strip_shape
    if mouth.drawn_teeth:
        col, row, use_upper = _teeth_texels(mouth, frame, driven, pose, xs, ys, u, v)
    else:  # the photo's own interior, in distance from the nearer lip (rows scale with the driven mouth's width)
        col = np.clip(u, 0.0, 1.0) * (cols - 1)
        d_up, d_lo = np.maximum(v - v_up, 0.0), np.maximum(v_lo - v, 0.0)
        use_upper = d_up <= d_lo
        row = np.where(use_upper, d_up, d_lo) * (mouth.frame.width / frame.width * MOUTH_OVERSAMPLE)
    origin = np.where(use_upper[..., None], mouth.upper_strip, mouth.lower_strip)  # h w 2
    return [Layer(window, (origin[..., 0] + col).astype(np.float32),
                  (origin[..., 1] + np.clip(row, 0, rows - 1)).astype(np.float32), alpha)]


def _teeth_texels(mouth: MouthReference, frame: LipFrame, driven: np.ndarray, pose: Similarity, xs: np.ndarray,
                  ys: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(col, row, use_upper) of ``teeth_strips`` texels for pixels at (xs, ys) (driven lip coordinates u, v).

    The upper incisal edge is the reference's lip line moved rigidly with the head, ``UPPER_EDGE_BELOW_LIP`` lower;
    the lower edge is that line moved with the jaw, ``OVERBITE`` higher, and at most ``LOWER_LIP_REACH`` above the
    driven lower lip in the middle and at most ``LOWER_LIP_COVER`` below it. A pixel above the upper edge is upper tooth (in front where the rows overlap),
    below the lower edge lower tooth, between them cavity (read from the nearer edge's strip). Distances and
    columns are rigid, in reference px: teeth do not stretch with the lips."""
    cols = mouth.strip_shape[1]
    to_texels = MOUTH_OVERSAMPLE / pose.scale  # driven px -> strip texels (reference px x oversampling)
    line = pose.apply(mouth.teeth_line)[:, :2]  # k 2
    jaw = JAW_TEETH_GAIN * (driven[list(CHIN), :2] - pose.apply(mouth.chin)[:, :2]).mean(0)  # 2
    reference_width = mouth.frame.width * pose.scale  # driven px
    below_lip, overbite = UPPER_EDGE_BELOW_LIP * reference_width, OVERBITE * reference_width

    def edge(points):  # v at positions `at` along the driven opening, of a line of points (k 2)
        line_u, line_v, _, _ = frame.coords(points[:, 0], points[:, 1])
        order = np.argsort(line_u)
        return lambda at: np.interp(at, line_u[order], line_v[order])

    upper_edge = edge(line)(u) + below_lip
    # The lower row: the line moved with the jaw, OVERBITE higher. The lower lip is fixed to the jaw just below the
    # teeth: where it has fallen further below their edge than it can (MediaPipe's chin moves less than the jaw), the
    # row moves down with it, keeping its rigid arch.
    jaw_edge = edge(line + jaw)
    lower_lip = np.interp(0.5, frame.lower_u, frame.lower_v)
    lowest, deepest = lower_lip - LOWER_LIP_REACH * reference_width, lower_lip + LOWER_LIP_COVER * reference_width
    lower_edge = jaw_edge(u) + min(max(below_lip - overbite, lowest - jaw_edge(0.5)), deepest - jaw_edge(0.5))
    past_upper, past_lower = v - upper_edge, lower_edge - v  # < 0 on the tooth
    use_upper = (past_upper < 0) | ((past_lower >= 0) & (past_upper <= past_lower))
    row = teeth_edge_row(mouth.frame.width) + np.where(use_upper, past_upper, past_lower) * to_texels
    # Columns along the rigidly moved lip line, corner (0) to corner (cols - 1).
    axis = line[-1] - line[0]
    along = ((xs - line[0, 0]) * axis[0] + (ys - line[0, 1]) * axis[1]) / max(float(axis @ axis), 1e-9)
    return np.clip(along, 0.0, 1.0) * (cols - 1), row, use_upper
