"""The person's own lids: with a video reference, an eye that closes or opens wide is drawn from the clip's own.

A warp can only stretch the source frame's eye; what a closing eye shows (the lid unfolding over the eyeball, its
crease, the lashes meeting) or a widened one (the lid folded away under the brow) is not in the picture.
``omnitalker/render/eyes.py`` covers a shut eye with lid skin inpainted from around it and stretches the eyeball
under a widened lid. A reference clip usually holds the real thing: its blinks, squints and wide eyes. So, as the
mouth draws its interior from the clip's open mouths (``omnitalker/render/mouth.py``), each eye keeps a bank of the
clip's frames where it is opened differently from the source frame, and a driven eye opened differently is drawn
from the entry whose opening is most like it:

- the entry's eye region (lids, lashes, the crease above them, the skin around) is placed on the driven eye by
  its corners and lids: between the lids it is stretched so the entry's lids land on the driven ones, above and
  below them it follows the lid and then the eye's corner line;
- it is blended in with a soft-edged window around the eye, its colour matched to the warped face around it
  (another frame of the clip may be lit a little differently), and faded in with how far the driven opening is
  from the source's (an eye at the source's own opening is the source's) and out with how far the entry's is from
  the driven one (a sparse bank has no entry like it);
- it is drawn over the drawn lid and lash line and under the eyeball and iris layers (``eye_layers``): inside the
  driven opening the source's eyeball and iris still show, at the driven gaze, and the entry shows there only as
  far as its own eyeball is hidden (a shut entry's lashes meeting, not a half-open entry's eyeball looking
  elsewhere); the entry gives the lids, lashes and crease around the opening.

A photo has no bank. The pipeline keeps some of a reference video's frames for the renderer at evenly spaced eye
openings from its most closed to its widest, as well as over its mouth openings (``omnitalker/pipeline/reference.py``,
``render_frames``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from omnitalker.render.geometry import LipFrame, farthest_point_picks
from omnitalker.render.layers import Layer, opening_coverage, region_grid

BANK_STATE_U = (0.3, 0.5, 0.7)  # an eye's state: its lid gap over its width at these points along it
BANK_SIZE = 12  # entries per eye at most (farthest-point picks over the states, the most closed first)
# An entry is a frame whose eye is opened at least this share more or less than the source's; a driven eye is drawn
# from the bank from the same change, fully from BANK_FADE more.
BANK_MIN_CHANGE, BANK_FADE = 0.1, 0.15
# ... and only as far as the entry is opened like it: not at all once their mean lid gaps differ by BANK_MATCH eye
# widths. (Matched only by which was nearest, a sparse bank drew a half-shut eye from an open entry: the entry's lashes,
# which on some people lie above MediaPipe's lid contour, made an open eye's arc over the driven slit.)
BANK_MATCH = 0.05
# The drawn region around the eye, in eye widths: from each corner outwards, above the upper lid (lashes and the
# lid's crease) and below the lower lid; the blend fades over the outer BANK_FEATHER of the window's radius.
BANK_REACH_SIDES, BANK_REACH_ABOVE, BANK_REACH_BELOW = 0.25, 0.5, 0.25
BANK_FEATHER = 0.3
WINDOW_POWER = 4  # the window's superellipse exponent (2: an ellipse)
LID_FOLLOW = 0.25  # above (below) a lid the entry follows the lid's shape this far (eye widths), then the corner line
PATCH_MARGIN = 0.1  # the stored patch reaches this much beyond the drawn region (eye widths): bilinear room


@dataclass
class EyeBank:
    """One eye's bank: the source's state and each entry's state, eye opening (patch px) and atlas position."""

    source_state: np.ndarray  # (S,)
    states: np.ndarray  # (K, S)
    frames: list[LipFrame]  # each entry's opening, in its patch's px
    offsets: np.ndarray | None = None  # (K, 2) atlas (x, y) of each patch's pixel (0, 0)


def eye_state(frame: LipFrame) -> np.ndarray:
    """(S,) the lid gap over the eye's width at BANK_STATE_U."""
    u = np.asarray(BANK_STATE_U)
    return (np.interp(u, frame.lower_u, frame.lower_v) - np.interp(u, frame.upper_u, frame.upper_v)) / frame.width


def change(state: np.ndarray, source_state: np.ndarray) -> float:
    """How differently from the source an eye is opened: 0 at the source's opening, 1 shut or twice as open."""
    return float(abs(state.mean() / max(float(source_state.mean()), 1e-6) - 1.0))


def bank_entries(frames: np.ndarray, landmarks: np.ndarray, source_landmarks: np.ndarray, upper: np.ndarray,
                 lower: np.ndarray) -> tuple[EyeBank, list[np.ndarray]]:
    """One eye's bank from a reference clip's frames (K, H, W, 3) and landmarks (K, 478, 3) px, with the source
    frame's landmarks: (the bank without atlas offsets, its patches)."""
    source_state = eye_state(LipFrame.from_points(source_landmarks, upper, lower))
    frames_of = [LipFrame.from_points(points, upper, lower) for points in landmarks]
    states = np.stack([eye_state(f) for f in frames_of]) if frames_of else np.zeros((0, len(BANK_STATE_U)))
    changes = np.array([change(s, source_state) for s in states])
    candidates = np.flatnonzero(changes >= BANK_MIN_CHANGE)
    picked: list[int] = []
    if len(candidates) and BANK_SIZE > 0:  # the most closed first, then whichever is least like those picked
        picked = [int(candidates[k]) for k in
                  farthest_point_picks(states[candidates], int(np.argmin(states[candidates].mean(1))), BANK_SIZE)]
    patches, entry_frames = [], []
    for k in picked:
        frame = frames_of[k]
        corners = _region_corners(frame, PATCH_MARGIN)
        height, width = frames[k].shape[:2]
        lo = np.clip(np.floor(corners.min(0)).astype(int), 0, [width - 1, height - 1])
        hi = np.clip(np.ceil(corners.max(0)).astype(int) + 1, lo + 1, [width, height])
        patches.append(np.ascontiguousarray(frames[k][lo[1]:hi[1], lo[0]:hi[0]]))
        entry_frames.append(LipFrame.from_points(landmarks[k] - np.array([lo[0], lo[1], 0.0]), upper, lower))
    bank = EyeBank(source_state=source_state,
                   states=states[picked] if picked else np.zeros((0, len(BANK_STATE_U))), frames=entry_frames)
    return bank, patches


def bank_fade(bank: EyeBank | None, frame: LipFrame) -> tuple[float, int]:
    """(how far the bank's nearest entry is drawn over the driven eye (its opening `frame`), that entry): 0 while
    the eye is opened about as far as the source's, or when no entry is opened like it (BANK_MATCH) and nearer its
    state than the source."""
    if bank is None or bank.offsets is None or not len(bank.states):
        return 0.0, -1
    state = eye_state(frame)
    fade = float(np.clip((change(state, bank.source_state) - BANK_MIN_CHANGE) / BANK_FADE, 0.0, 1.0))
    distances = np.linalg.norm(bank.states - state, axis=1)
    nearest = int(np.argmin(distances))
    fade *= float(np.clip(1.0 - abs(bank.states[nearest].mean() - state.mean()) / BANK_MATCH, 0.0, 1.0))
    if fade <= 0.0 or distances[nearest] >= np.linalg.norm(bank.source_state - state):
        return 0.0, -1
    return fade, nearest


def bank_layer(bank: EyeBank, frame: LipFrame, size: int, fade: float, nearest: int, inside: float = 1.0
               ) -> Layer | None:
    """Entry `nearest` drawn over the driven eye (its opening `frame`, px of a crop `size` px wide) at `fade`
    (``bank_fade`` gives both), and inside the driven opening only by `inside` more (0: the lids and what is around
    them, not the entry's eyeball)."""
    region = region_grid(_region_corners(frame, 0.0), size, 1.0)
    if region is None:
        return None
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    entry = bank.frames[nearest]
    scale = entry.width / frame.width  # entry px per driven px
    e_up, e_lo = np.interp(u, entry.upper_u, entry.upper_v), np.interp(u, entry.lower_u, entry.lower_v)
    reach = LID_FOLLOW * frame.width
    above = v * scale + (e_up - v_up * scale) * np.clip(1.0 - (v_up - v) / reach, 0.0, 1.0)
    below = v * scale + (e_lo - v_lo * scale) * np.clip(1.0 - (v - v_lo) / reach, 0.0, 1.0)
    share = np.clip((v - v_up) / np.maximum(v_lo - v_up, 1e-6), 0.0, 1.0)
    between = e_up + share * (e_lo - e_up)
    v_entry = np.where(v <= v_up, above, np.where(v >= v_lo, below, between))
    src_x, src_y = entry.to_pixels(u, v_entry)
    alpha = _window_alpha(u, v, v_up, v_lo, frame.width) * fade
    alpha = alpha * (1.0 - opening_coverage(u, v, v_up, v_lo, frame.width) * (1.0 - inside))
    origin = bank.offsets[nearest]
    return Layer(window, (src_x + origin[0]).astype(np.float32), (src_y + origin[1]).astype(np.float32),
                 alpha.astype(np.float32), match_colour=True)


def _window_alpha(u: np.ndarray, v: np.ndarray, v_up: np.ndarray, v_lo: np.ndarray, width: float) -> np.ndarray:
    """1 inside the drawn region (a superellipse, rounded box: corners + BANK_REACH_SIDES along the eye, from
    BANK_REACH_ABOVE above the upper lid to BANK_REACH_BELOW below the lower one), falling to 0 over its outer
    BANK_FEATHER. (An ellipse left the eye's corners in its soft edge: the lid layer beneath showed there.)"""
    half_u = 0.5 + BANK_REACH_SIDES
    middle = (np.minimum(v_up, v_lo) + np.maximum(v_up, v_lo)) / 2
    half_up = (middle - np.minimum(v_up, v_lo)) / width + BANK_REACH_ABOVE
    half_lo = (np.maximum(v_up, v_lo) - middle) / width + BANK_REACH_BELOW
    dv = (v - middle) / width
    radius = (np.abs((u - 0.5) / half_u) ** WINDOW_POWER
              + np.abs(dv / np.where(dv < 0, half_up, half_lo)) ** WINDOW_POWER) ** (1.0 / WINDOW_POWER)
    return np.clip((1.0 - radius) / BANK_FEATHER, 0.0, 1.0)


def _region_corners(frame: LipFrame, margin: float) -> np.ndarray:
    """(4, 2) px: the box (in the eye's axes) around the drawn region, `margin` eye widths wider."""
    top = min(frame.upper_v.min(), frame.lower_v.min()) - (BANK_REACH_ABOVE + margin) * frame.width
    bottom = max(frame.upper_v.max(), frame.lower_v.max()) + (BANK_REACH_BELOW + margin) * frame.width
    left, right = -BANK_REACH_SIDES - margin, 1.0 + BANK_REACH_SIDES + margin
    u = np.array([left, right, right, left])
    v = np.array([top, top, bottom, bottom])
    return np.stack(frame.to_pixels(u, v), axis=1)
