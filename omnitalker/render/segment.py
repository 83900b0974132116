"""Person / background segmentation of the reference, so the background stays still while the person moves.

The warp renderer moves hair, ears and neck with the head through rings of control points; without knowing
where the person ends, those rings dragged the wall behind the head along (measured on real clips: most of
the error was outside the face outline). Here, once per reference:

- `person_mask`: MediaPipe's selfie-segmentation model (it ships inside the mediapipe wheel, nothing is
  downloaded) gives a soft person mask of the reference image;
- `background_plate`: the reference with the person painted out (inpainted at low resolution: what a moving
  head uncovers is mostly smooth wall or backdrop).

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
PLATE_SIDE = 96  # the person is painted out at this longer side (px), then scaled up: smooth is enough
PLATE_THRESHOLD = 0.1  # mask above this counts as person for the plate
PLATE_GROW = 0.03  # the painted-out region is grown by this fraction of the image side (hair fringe)
INPAINT_RADIUS = 3  # px at PLATE_SIDE


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
    filled = cv2.inpaint(small, small_hole, INPAINT_RADIUS, cv2.INPAINT_TELEA)
    filled = cv2.resize(filled, (width, height), interpolation=cv2.INTER_LINEAR)
    weight = cv2.GaussianBlur(person.astype(np.float32), (0, 0), grow / 2 + 0.5)
    weight = np.maximum(weight, person)[..., None]
    return (image * (1.0 - weight) + filled * weight).round().astype(np.uint8)


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
