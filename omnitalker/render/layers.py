"""Layers drawn over the warped face: a window of the crop, where to sample the atlas, and a coverage alpha.

The mesh warp draws the whole crop with one remap; the mouth interior and the eyeballs are drawn as layers
on top of it (``omnitalker/render/mouth.py``, ``omnitalker/render/eyes.py``). A layer's alpha is its coverage
of each pixel, ramped over about one pixel at the opening's edge, so contours are anti-aliased instead of
stair-stepped, and can fade as a whole (a mouth that barely opens, an eye that closes).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

EDGE_RAMP_PX = 1.0  # coverage goes from 0 to 1 over this many pixels across an opening's contour
COLOUR_GAIN_RANGE = (0.85, 1.18)  # a colour-matched layer's per-channel gain is kept within this


@dataclass
class Layer:
    window: tuple[slice, slice]  # rows, cols of the crop
    map_x: np.ndarray  # (h, w) float32 atlas x of each pixel
    map_y: np.ndarray  # (h, w) float32 atlas y
    alpha: np.ndarray  # (h, w) float32 coverage in [0, 1]
    # Scale the drawn colours (per channel) to match what lies under the layer's soft edge: a patch taken from
    # another frame of a clip, which may be lit a little differently (``omnitalker/render/eye_bank.py``).
    match_colour: bool = False


def region_grid(points: np.ndarray, size: int, margin: float):
    """(window, xs, ys) of the crop pixels within `margin` px of the points' box; None if outside the crop."""
    lo = np.maximum(np.floor(points.min(0) - margin), 0).astype(int)
    hi = np.minimum(np.ceil(points.max(0) + margin) + 1, size).astype(int)
    if (hi <= lo).any():
        return None
    ys, xs = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float64)
    return (slice(lo[1], hi[1]), slice(lo[0], hi[0])), xs, ys


def opening_coverage(u: np.ndarray, v: np.ndarray, v_up: np.ndarray, v_lo: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased coverage of an opening between two contours (u in [0, 1] along it, v in px across it):
    the distance inside the nearest contour (or corner), ramped over ``EDGE_RAMP_PX``."""
    inside = np.minimum.reduce([v - v_up, v_lo - v, u * width, (1.0 - u) * width])
    return np.clip(inside / EDGE_RAMP_PX + 0.5, 0.0, 1.0).astype(np.float32)


def composite(crop: np.ndarray, atlas: np.ndarray, layer: Layer) -> None:
    """Draw `layer` over `crop` (in place)."""
    if not (layer.alpha > 0).any():
        return
    drawn = cv2.remap(atlas, layer.map_x, layer.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = layer.alpha[..., None]
    below = crop[layer.window].astype(np.float32)
    if layer.match_colour:  # weighted towards the soft edge, where the layer meets what it is drawn over
        edge = alpha * (float(layer.alpha.max()) - alpha)
        if edge.sum() > 0:
            gain = (edge * below).sum((0, 1)) / np.maximum((edge * drawn).sum((0, 1)), 1e-6)
            drawn = drawn * np.clip(gain, *COLOUR_GAIN_RANGE).astype(np.float32)
    crop[layer.window] = np.clip(below + alpha * (drawn.astype(np.float32) - below) + 0.5, 0, 255).astype(np.uint8)
