"""Person / background segmentation of the reference, so the background stays still while the person moves.

The warp renderer moves hair, ears and neck with the head through rings of control points; without knowing
where the person ends, those rings dragged the wall behind the head along (measured on real clips: most of
the error was outside the face outline). Here, once per reference:

- `person_mask`: MediaPipe's selfie-segmentation model (it ships inside the mediapipe wheel, nothing is
  downloaded) gives a soft person mask of the reference image;
- `background_plate`: the reference with the person painted out (filled along rows at low resolution: what a
  moving head uncovers is mostly smooth wall or backdrop, in horizontal bands).

Per frame (`keep_background`), with the warp's sampling maps: the warped person alpha a = mask(map), and

    out = warped + (1 - a) * (plate_still - plate(map))

so where the warp samples the person the warped pixel is kept, where it samples background the still plate
shows instead (exactly the reference's pixels outside the person, the painted-out plate where the head was),
and with no motion `out` is the reference itself whatever the mask.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

SEGMENT_MODEL = 0  # MediaPipe's general (square, 256 px) selfie model; 1 is the landscape one
# The person is painted out at this longer side (px), then scaled up. At 96 px (with ROW_FILL_SMOOTHING 2) a shelf's
# edge behind the person was blurred over ~20 px of a 512 px frame and showed as a kink beside the neck wherever the head
# moved up (shared clip d12); at 192 px and 1 it stays a line (self-reenactment, nine clips: face PSNR +0.02 dB, d12
# +0.12 dB).
PLATE_SIDE = 192
PLATE_THRESHOLD = 0.1  # mask above this counts as person for the plate
PLATE_GROW = 0.03  # the painted-out region is grown by this fraction of the image side (hair fringe)
INPAINT_RADIUS = 3  # px at PLATE_SIDE
ROW_FILL_SMOOTHING = 1.0  # Gaussian sigma (px at PLATE_SIDE) down the columns of a row fill: no streak per row


def person_mask(image: np.ndarray) -> np.ndarray | None:
    """(H, W) float32 in [0, 1]: how much each pixel of an RGB uint8 image is the person; None if the
    segmentation model is not available (the renderer then warps the background as before)."""
    try:
        from mediapipe.python.solutions.selfie_segmentation import SelfieSegmentation
    except ImportError as error:  # mediapipe without its solutions: keep rendering, without the mask
        warnings.warn(f"person segmentation unavailable ({error}); the background moves with the warp",
                      stacklevel=2)
        return None
    with SelfieSegmentation(model_selection=SEGMENT_MODEL) as segmenter:
        result = segmenter.process(np.ascontiguousarray(image))
    mask = result.segmentation_mask
    if mask is None:
        return None
    return np.clip(mask.astype(np.float32), 0.0, 1.0)


def background_plate(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: the image with the person (mask, grown a little) painted out from the background."""
    height, width = image.shape[:2]
    scale = PLATE_SIDE / max(height, width)
    small_size = (max(int(round(width * scale)), 8), max(int(round(height * scale)), 8))
    grow = max(int(round(PLATE_GROW * max(height, width))), 1)
    person = (mask > PLATE_THRESHOLD).astype(np.uint8)
    person = cv2.dilate(person, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    if person.all():  # nothing but the person: no background to keep still
        return image.copy()
    small = cv2.resize(image, small_size, interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(person, small_size, interpolation=cv2.INTER_NEAREST)
    small_hole = cv2.dilate(small_hole, np.ones((3, 3), np.uint8))  # INTER_AREA mixed person into its border
    filled = fill_along_rows(small, small_hole.astype(bool))
    filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    weight = cv2.GaussianBlur(person.astype(np.float32), (0, 0), grow / 2 + 0.5)
    weight = np.maximum(weight, person)[..., None]
    return (image * (1.0 - weight) + filled * weight).round().astype(np.uint8)


def fill_along_rows(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The hole (H, W bool) of an RGB uint8 image filled along each row, between the nearest known pixels on its left
    and right (by distance; from the one side where the other is the image's edge), then smoothed down the columns.

    Why rows: what stands behind a person is mostly horizontal bands (a wall over a shelf, a skyline, a table edge),
    which a fill across the hole continues. OpenCV's inpainting (Telea) diffused the bands' colours into one beige
    blur with streaks, which showed as a pale blob wherever the head moved away from where it was (shared clip d12).
    Rows with no known pixel take OpenCV's fill."""
    height, width = hole.shape
    cols = np.broadcast_to(np.arange(width), (height, width))
    known = ~hole
    left = np.maximum.accumulate(np.where(known, cols, -1), axis=1)  # nearest known column at or left of each pixel
    right = np.minimum.accumulate(np.where(known, cols, width)[:, ::-1], axis=1)[:, ::-1]
    rows = np.arange(height)[:, None]
    from_left = image[rows, np.clip(left, 0, width - 1)].astype(np.float32)  # h w 3
    from_right = image[rows, np.clip(right, 0, width - 1)].astype(np.float32)
    to_left, to_right = (cols - left).astype(np.float32), (right - cols).astype(np.float32)
    weight_right = np.where(left < 0, 1.0, np.where(right >= width, 0.0, to_left / np.maximum(to_left + to_right, 1)))
    filled = from_left + weight_right[..., None] * (from_right - from_left)
    empty_rows = known.sum(1) == 0
    if empty_rows.any():
        telea = cv2.inpaint(image, hole.astype(np.uint8), INPAINT_RADIUS, cv2.INPAINT_TELEA).astype(np.float32)
        filled[empty_rows] = telea[empty_rows]
    smooth = cv2.GaussianBlur(filled, (1, 0), sigmaX=0, sigmaY=ROW_FILL_SMOOTHING)  # kernel 1 wide: down columns only
    return np.where(hole[..., None], smooth, image).round().astype(np.uint8)


def plate_with_mask(image: np.ndarray) -> np.ndarray | None:
    """(H, W, 4) uint8: the background plate with the person mask (0-255) as a 4th channel, sampled by one
    remap per frame; None without segmentation."""
    mask = person_mask(image)
    if mask is None:
        return None
    plate = background_plate(image, mask)
    return np.dstack([plate, (mask * 255).round().astype(np.uint8)])


def keep_background(crop: np.ndarray, still: np.ndarray, plate_rgba: np.ndarray, map_x: np.ndarray,
                    map_y: np.ndarray) -> np.ndarray:
    """The warped crop (uint8) with the background put back still: `still` (h, w, 3) float32 is the plate seen
    through the unwarped crop, `plate_rgba` the full plate + mask, map_x/map_y the warp's sampling maps."""
    moved = cv2.remap(plate_rgba, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    background = 1.0 - moved[..., 3:4].astype(np.float32) * (1.0 / 255.0)
    out = crop + background * (still - moved[..., :3])
    return np.clip(out, 0, 255, out=out).round().astype(np.uint8)
