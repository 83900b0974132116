"""Mouth interior of the warp renderer: what shows between the driven inner lips.

The mesh warp draws the lips; the opening between them is a layer over it (``omnitalker/render/layers.py``),
anti-aliased at the lips and faded in as the mouth opens (a mouth that barely parts shows the warp's
squeezed lip line, not a bar of teeth). Two sources, best first:

- **the person's own frames** (a video reference): a bank of the reference's open-mouth frames, each
  resampled into its opening's (u, s) coordinates (u along the mouth, s from upper to lower inner lip).
  Per output frame the entry whose opening profile (gap over width at a few points along the mouth) is
  nearest the driven one is drawn, stretched to the driven opening: real teeth and tongue that move with
  the lips.
- **strips** (a photo): two strips in "distance from the lip" coordinates, one hanging from the upper lip
  and one standing on the lower lip. Near each lip they hold the photo's own interior if its mouth is open,
  else procedural teeth lit like the face; further in, a shaded cavity.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from omnitalker.render.geometry import LipFrame, illumination
from omnitalker.render.layers import Layer, opening_coverage, region_grid

# Lengths in units of the mouth width (inner-lip corner to corner).
MOUTH_OPEN_RATIO = 0.04  # reference lip gap / width above this: use its own teeth, else draw teeth (a smile parted
                         # by 7 % shows real teeth that drawn ones only replace with a grey bar)
MOUTH_CLOSED_RATIO = 0.02  # driven gap / width below this: no interior is drawn (lips pressed together)
MOUTH_FADE_RATIO = 0.04  # the interior fades in over this much more opening
TEETH_SHOW_RATIO, TEETH_FADE_RATIO = 0.06, 0.08  # drawn teeth slide out from this opening over this much more
# The lower row follows from this opening (as a speaking jaw shows the upper teeth first): both rows at once closed a
# slightly parted mouth with a pale ring of teeth around a thin dark slot.
LOWER_TEETH_SHOW_RATIO = 0.12
                                                  # (pursed or pouting lips part a little over a dark mouth)
MOUTH_STRIP_DEPTH = 0.5  # each mouth strip reaches this far from its lip
MOUTH_OVERSAMPLE = 2  # strip texels per reference pixel (procedural teeth need the resolution)
UPPER_TEETH_HEIGHT = 0.11
LOWER_TEETH_HEIGHT = 0.06
TEETH_SPAN = (0.25, 0.75)  # teeth fill this part of the width; the corners stay dark (wider: a pale ring hugging the
                           # lips of a wide-open mouth; mouth SSIM 0.803 -> 0.806 on six clips at (0.25, 0.75))
# The teeth darken into the mouth's shadow over this width beyond each end of the span (as real side teeth do); at
# 0.05 the drawn teeth ended in hard vertical edges, a pale rectangle.
TEETH_SPAN_FADE = 0.12
CORNER_TEETH_SHORTENING = 0.4  # teeth at the ends of the span are this much shorter
TEETH_GAP_SHARPNESS = 16  # power of the cosine: thin gaps, flat teeth
TEETH_COUNT = 8  # visible teeth across the span (sets the spacing of the faint gaps between them)
TEETH_GAP_SHADE = 0.06  # brightness dip at each gap between teeth
TEETH_COLOR = np.array([0.88, 0.85, 0.78])  # relative to white, scaled by the face's illumination (geometry.py)
TOOTH_EDGE_SHADE = 0.3  # teeth darken by this fraction towards their free edge
TEETH_SOFTNESS = 0.6  # Gaussian sigma (strip texels) of the procedural texture: no hard texel steps
# Cavity colour = skin colour times this. Measured on the open mouths of eight real clips (inner-lip polygon over the
# face's median skin): (0.73, 0.64, 0.70) with teeth and tongue, about (0.6, 0.45, 0.5) where neither shows; the
# former (0.30, 0.16, 0.16) drew a near-black hole. Kept darker than measured: at (0.60, 0.42, 0.46) MediaPipe no
# longer saw the opening of the test clip (mouth-opening correlation 0.67, tests/test_reenact.py).
CAVITY_TINT = np.array([0.45, 0.30, 0.33])
CAVITY_DEPTH_SHADE = 0.25  # the cavity darkens by this fraction towards the strip's far end

# The bank of the person's own mouths.
STATE_U = (0.2, 0.35, 0.5, 0.65, 0.8)  # the opening profile is sampled at these points along the mouth
BANK_MIN_OPEN_RATIO = 0.05  # frames whose gap / width is below this show too little to keep
BANK_SIZE = 24  # at most this many entries (farthest-point picks over the opening profiles)
BANK_ROWS, BANK_COLS = 40, 96  # texels of each entry across (s) and along (u) the opening


@dataclass
class MouthReference:
    upper: np.ndarray  # inner-lip chain indices, corner to corner
    lower: np.ndarray
    frame: LipFrame  # the reference frame's opening (frame px)
    upper_strip: np.ndarray  # atlas (x, y) of texel (0, 0)
    lower_strip: np.ndarray
    strip_shape: tuple[int, int]  # (rows, cols)
    drawn_teeth: bool = False  # the strips hold procedural teeth (the reference's mouth is closed)
    bank_states: np.ndarray | None = None  # (K, len(STATE_U)) opening profiles of the bank entries
    bank_offsets: np.ndarray | None = None  # (K, 2) atlas (x, y) of each entry's texel (0, 0)


def opening_state(frame: LipFrame) -> np.ndarray:
    """Gap / width at ``STATE_U``: the shape of an opening, free of its size."""
    u = np.asarray(STATE_U)
    return (np.interp(u, frame.lower_u, frame.lower_v) - np.interp(u, frame.upper_u, frame.upper_v)) / frame.width


def draws_teeth(frame: LipFrame) -> bool:
    """Whether a reference mouth is too closed to show its own interior, so the strips get drawn teeth."""
    return frame.gap() / frame.width <= MOUTH_OPEN_RATIO


def strip_textures(image: np.ndarray, frame: LipFrame, skin: np.ndarray) -> list[np.ndarray]:
    """Two strips (rows = distance from the lip, cols = u along the mouth) hanging from each lip."""
    width_px = frame.width
    cols = int(np.ceil(width_px * MOUTH_OVERSAMPLE)) + 1
    rows = int(np.ceil(MOUTH_STRIP_DEPTH * width_px * MOUTH_OVERSAMPLE)) + 1
    u = np.linspace(0.0, 1.0, cols)[None, :].repeat(rows, 0)
    depth = (np.arange(rows, dtype=np.float64) / MOUTH_OVERSAMPLE)[:, None].repeat(cols, 1)  # ref px
    v_up, v_lo = np.interp(u, frame.upper_u, frame.upper_v), np.interp(u, frame.lower_u, frame.lower_v)
    half_gap = np.maximum(v_lo - v_up, 0.0) / 2
    reference_open = not draws_teeth(frame)

    light = illumination(skin)
    cavity = skin * CAVITY_TINT
    teeth = TEETH_COLOR * 255.0 * light
    # Teeth stay inside the middle of the mouth and show faint gaps between them.
    inside = np.clip(np.minimum(u - TEETH_SPAN[0], TEETH_SPAN[1] - u) / TEETH_SPAN_FADE + 1.0, 0.0, 1.0)
    span = inside * inside * (3.0 - 2.0 * inside)  # smoothstep: no visible end
    phase = np.pi * TEETH_COUNT * (u - TEETH_SPAN[0]) / np.ptp(TEETH_SPAN)
    gaps = 1.0 - TEETH_GAP_SHADE * np.cos(phase) ** TEETH_GAP_SHARPNESS
    strips = []
    for v_lip, sign, teeth_height in ((v_up, 1.0, UPPER_TEETH_HEIGHT), (v_lo, -1.0, LOWER_TEETH_HEIGHT)):
        shade = 1.0 - CAVITY_DEPTH_SHADE * depth / (MOUTH_STRIP_DEPTH * width_px)
        texture = cavity[None, None, :] * shade[..., None]
        if not reference_open:
            tooth_edge = teeth_height * width_px * (1.0 - CORNER_TEETH_SHORTENING * (1.0 - span))
            on_tooth = np.clip((tooth_edge - depth) * MOUTH_OVERSAMPLE, 0.0, 1.0) * span
            tooth_shade = (1.0 - TOOTH_EDGE_SHADE * depth / np.maximum(tooth_edge, 1e-6)) * gaps
            texture = texture + on_tooth[..., None] * (teeth[None, None, :] * tooth_shade[..., None] - texture)
            texture = cv2.GaussianBlur(texture.astype(np.float32), (0, 0), TEETH_SOFTNESS)
        else:
            # The reference's own interior near this lip (its half of the opening), cavity further in.
            xs, ys = frame.to_pixels(u, v_lip + sign * depth)
            own = cv2.remap(image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
            weight = np.clip((half_gap - depth) * MOUTH_OVERSAMPLE, 0.0, 1.0)[..., None]
            texture = texture + weight * (own - texture)
        strips.append(np.clip(texture, 0, 255).round().astype(np.uint8))
    return strips


def bank_entries(frames: np.ndarray, landmarks: np.ndarray, upper: np.ndarray, lower: np.ndarray
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
    """The open-mouth frames of a reference clip as (u, s) textures: (states (K, S), textures [(rows, cols, 3)])."""
    frames_of = [LipFrame.from_points(points, upper, lower) for points in landmarks]
    states = np.stack([opening_state(f) for f in frames_of]) if frames_of else np.zeros((0, len(STATE_U)))
    open_ids = np.flatnonzero(states.mean(1) > BANK_MIN_OPEN_RATIO) if len(states) else np.zeros(0, int)
    if not len(open_ids):
        return np.zeros((0, len(STATE_U))), []
    # Farthest-point picks: the widest-open frame first, then whichever is least like those picked.
    picked = [int(open_ids[np.argmax(states[open_ids].mean(1))])]
    distance = np.linalg.norm(states[open_ids] - states[picked[0]], axis=1)
    while len(picked) < min(BANK_SIZE, len(open_ids)):
        best = int(np.argmax(distance))
        if distance[best] <= 0:
            break
        picked.append(int(open_ids[best]))
        distance = np.minimum(distance, np.linalg.norm(states[open_ids] - states[picked[-1]], axis=1))
    u = np.linspace(0.0, 1.0, BANK_COLS)[None, :].repeat(BANK_ROWS, 0)
    s = np.linspace(0.0, 1.0, BANK_ROWS)[:, None].repeat(BANK_COLS, 1)
    textures = []
    for k in picked:
        f = frames_of[k]
        v_up, v_lo = np.interp(u, f.upper_u, f.upper_v), np.interp(u, f.lower_u, f.lower_v)
        xs, ys = f.to_pixels(u, v_up + s * (v_lo - v_up))
        textures.append(cv2.remap(frames[k], xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE))
    return states[picked], textures


def _arc(chain_u: np.ndarray, chain_v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A lip chain's least-squares parabola v(u), evaluated at `u`."""
    return np.polyval(np.polyfit(chain_u, chain_v, 2), u)


def mouth_layers(mouth: MouthReference, driven: np.ndarray, size: int) -> list[Layer]:
    """The interior layers for driven landmarks (478, 2+) in px of a crop `size` px wide: one, or for drawn teeth
    a dark interior and the teeth over it, faded in with the opening."""
    frame = LipFrame.from_points(driven, mouth.upper, mouth.lower)
    state = opening_state(frame)
    fade = float(np.clip((state.mean() - MOUTH_CLOSED_RATIO) / MOUTH_FADE_RATIO, 0.0, 1.0))
    if fade <= 0.0:
        return []
    region = region_grid(driven[np.concatenate([mouth.upper, mouth.lower]), :2], size, 1.0)
    if region is None:
        return []
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    alpha = opening_coverage(u, v, v_up, v_lo, frame.width) * fade
    col = np.clip(u, 0.0, 1.0)
    if mouth.bank_states is not None and len(mouth.bank_states):
        nearest = int(np.argmin(np.linalg.norm(mouth.bank_states - state, axis=1)))
        s = np.clip((v - v_up) / np.maximum(v_lo - v_up, 1e-6), 0.0, 1.0)
        origin = mouth.bank_offsets[nearest]
        map_x, map_y = origin[0] + col * (BANK_COLS - 1), origin[1] + s * (BANK_ROWS - 1)
        return [Layer(window, map_x.astype(np.float32), map_y.astype(np.float32), alpha)]
    rows, cols = mouth.strip_shape
    to_texels = mouth.frame.width / frame.width * MOUTH_OVERSAMPLE  # driven px -> strip rows
    if mouth.drawn_teeth:  # drawn teeth hang from smooth arcs: a dip in a lip's contour is no notch in the teeth
        # (Tried: each row at most a share of the local gap, 0.45 / 0.25, so a dark band stays between the rows: the
        # teeth of a slightly parted mouth showed less, and MediaPipe read its opening smaller, gain 0.96 -> 0.85 on d14.)
        v_up, v_lo = _arc(frame.upper_u, frame.upper_v, u), _arc(frame.lower_u, frame.lower_v, u)
    d_up, d_lo = np.maximum(v - v_up, 0.0), np.maximum(v_lo - v, 0.0)
    use_upper = d_up <= d_lo
    row = np.clip(np.where(use_upper, d_up, d_lo) * to_texels, 0, rows - 1)

    def strips_layer(upper_strip, lower_strip, layer_alpha):
        origin = np.where(use_upper[..., None], upper_strip, lower_strip)  # h w 2
        return Layer(window, (origin[..., 0] + col * (cols - 1)).astype(np.float32),
                     (origin[..., 1] + row).astype(np.float32), layer_alpha.astype(np.float32))

    if mouth.drawn_teeth:
        # Drawn teeth slide out from behind the lips as the mouth opens (never half-transparent: grey): the strip
        # is read further from the lip by the part of the teeth still hidden.
        height = np.where(use_upper, UPPER_TEETH_HEIGHT, LOWER_TEETH_HEIGHT) * mouth.frame.width * MOUTH_OVERSAMPLE
        show = np.where(use_upper, TEETH_SHOW_RATIO, LOWER_TEETH_SHOW_RATIO)
        hidden = 1.0 - np.clip((state.mean() - show) / TEETH_FADE_RATIO, 0.0, 1.0)
        row = np.clip(row + hidden * height, 0, rows - 1)
    return [strips_layer(mouth.upper_strip, mouth.lower_strip, alpha)]
