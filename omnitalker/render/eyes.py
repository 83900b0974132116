"""Eyes of the warp renderer: the eyeball slides inside the driven eye opening as the gaze moves.

The mesh warp moves the lid margins; what it cannot do is move the iris independently of the lids, or
cover an eye with lid skin (stretched, the band above the lid margin would smear its lashes over the eye).
So, each a layer over the warp (``omnitalker/render/layers.py``):

- the lid: where the upper lid has come down over what was open in the reference, the reference eye patch
  with its opening and lash margin filled in from the skin around it (Telea inpainting), faded in with the
  closure so a lid that only trembles adds nothing (no outline);
- the eyeball:  inside the driven opening, each pixel samples the reference eye through the eye-corner similarity,
shifted by how far the iris moved relative to its opening. The texture sampled is the reference eye patch
with everything outside its opening filled in from the inside (OpenCV's Telea inpainting), so a shifted
iris or a wider opening finds eyeball colours there, never lid skin or lashes. No outline, no flat blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from omnitalker.render.geometry import LipFrame, polygon_mask
from omnitalker.render.layers import Layer, opening_coverage, region_grid

EYE_PATCH_MARGIN = 0.4  # the eyeball texture extends this far beyond the eye opening (eye widths)
EYEBALL_INPAINT_RADIUS = 0.1  # Telea radius for the eyeball outside the opening (eye widths)
APERTURE_SHRINK_PX = 1  # outside the opening, the eyeball is filled in from this far inside (the rim holds lashes)
LID_MARGIN = 0.15  # the lid texture also fills this much around the opening (the lash margin, eye widths)
LID_CLOSURE_START, LID_CLOSURE_FADE = 0.2, 0.3  # the lid layer fades in from this closure over this much more
MIN_EYE_OPENING = 0.06  # opening / width below this: the warp alone draws the eye (a closed lid)
EYE_FADE = 0.06  # the eyeball layer fades in over this much more opening


@dataclass
class EyeReference:
    upper: np.ndarray  # lid chain indices, corner to corner
    lower: np.ndarray
    iris_center: int
    frame: LipFrame  # the reference eye opening (frame px)
    iris_uv: np.ndarray  # (2,) reference iris centre in `frame` (u, v px)
    offset: np.ndarray  # (2,) atlas position of reference pixel (0, 0) for the eyeball texture
    lid_offset: np.ndarray  # (2,) ... for the lid texture


def eyeball_texture(image: np.ndarray, landmarks: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                    iris_center: int) -> tuple[dict, list[np.ndarray]]:
    """The eyeball and lid textures of one eye (patches of the image) and what ``EyeReference`` needs but their
    atlas offsets.

    Returns (partial EyeReference fields + "patch_origin", [eyeball, lid] uint8)."""
    frame = LipFrame.from_points(landmarks, upper, lower)
    width_px = frame.width
    contour = np.concatenate([landmarks[upper, :2], landmarks[lower[::-1], :2]])
    lo = np.floor(contour.min(0) - EYE_PATCH_MARGIN * width_px)
    hi = np.ceil(contour.max(0) + EYE_PATCH_MARGIN * width_px)
    lo = np.clip(lo, 0, [image.shape[1] - 1, image.shape[0] - 1]).astype(int)
    hi = np.clip(hi, lo + 1, [image.shape[1], image.shape[0]]).astype(int)
    patch = np.ascontiguousarray(image[lo[1]:hi[1], lo[0]:hi[0]])
    aperture = polygon_mask(patch.shape[:2], contour - lo)
    kernel = 2 * max(1, int(round(LID_MARGIN * width_px))) + 1
    lid_hole = cv2.dilate(aperture, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel)))
    lid = cv2.inpaint(patch, lid_hole, max(2.0, EYEBALL_INPAINT_RADIUS * width_px), cv2.INPAINT_TELEA)
    inner = cv2.erode(aperture, np.ones((2 * APERTURE_SHRINK_PX + 1,) * 2, np.uint8))
    if inner.sum() < 4:
        inner = aperture
    eyeball = patch
    if inner.any():
        radius = max(2.0, EYEBALL_INPAINT_RADIUS * width_px)
        eyeball = cv2.inpaint(patch, (1 - inner).astype(np.uint8), radius, cv2.INPAINT_TELEA)
        eyeball[aperture.astype(bool)] = patch[aperture.astype(bool)]  # the opening itself stays as it is
    iris = landmarks[iris_center, :2].astype(np.float64)
    u, v, _, _ = frame.coords(iris[:1], iris[1:])
    partial = dict(upper=upper, lower=lower, iris_center=iris_center, frame=frame,
                   iris_uv=np.array([u[0], v[0]]), patch_origin=lo.astype(np.float64))
    return partial, [eyeball, lid]


def eye_layer(eye: EyeReference, driven: np.ndarray, size: int) -> Layer | None:
    """The eyeball layer of one eye for driven landmarks (478, 2+) in px of a crop `size` px wide."""
    frame = LipFrame.from_points(driven, eye.upper, eye.lower)
    opening = frame.gap() / frame.width
    fade = float(np.clip((opening - MIN_EYE_OPENING) / EYE_FADE, 0.0, 1.0))
    if fade <= 0.0:
        return None
    region = region_grid(driven[np.concatenate([eye.upper, eye.lower]), :2], size, 1.0)
    if region is None:
        return None
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    alpha = opening_coverage(u, v, v_up, v_lo, frame.width) * fade
    # The iris moved relative to its opening by (du, dv): slide the eyeball with it.
    ref = eye.frame
    to_ref = ref.width / frame.width  # reference px per driven px, along the eye
    iris = driven[eye.iris_center, :2].astype(np.float64)
    iris_u, iris_v, _, _ = frame.coords(iris[:1], iris[1:])
    du, dv = iris_u[0] - eye.iris_uv[0], iris_v[0] * to_ref - eye.iris_uv[1]
    src_x, src_y = ref.to_pixels(u - du, v * to_ref - dv)
    return Layer(window, (src_x + eye.offset[0]).astype(np.float32), (src_y + eye.offset[1]).astype(np.float32), alpha)


def lid_layer(eye: EyeReference, driven: np.ndarray, size: int) -> Layer | None:
    """The lid layer of one eye: lid skin between where the reference's upper lid was and where the driven one is."""
    frame = LipFrame.from_points(driven, eye.upper, eye.lower)
    ref = eye.frame
    to_ref = ref.width / frame.width
    closure = 1.0 - (frame.gap() / frame.width) / max(ref.gap() / ref.width, 1e-6)
    fade = float(np.clip((closure - LID_CLOSURE_START) / LID_CLOSURE_FADE, 0.0, 1.0))
    if fade <= 0.0:
        return None
    ref_upper_v = ref.upper_v / to_ref  # the reference's upper lid, in driven px along the driven eye axes
    top = np.stack(frame.to_pixels(ref.upper_u, ref_upper_v), 1)
    region = region_grid(np.concatenate([top, driven[np.concatenate([eye.upper, eye.lower]), :2]]), size, 1.0)
    if region is None:
        return None
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    v_ref_up = np.interp(u, ref.upper_u, ref_upper_v)
    v_ref_lo = np.interp(u, ref.lower_u, ref.lower_v / to_ref)
    # covered: below the reference's upper lid, above the driven upper lid (or in a closed opening), inside the socket
    bottom = np.where(frame.gap() / frame.width < MIN_EYE_OPENING, np.maximum(v_lo, v_up), v_up)
    alpha = opening_coverage(u, v, v_ref_up, np.minimum(bottom, v_ref_lo), frame.width) * fade
    src_x, src_y = ref.to_pixels(u, v * to_ref)
    return Layer(window, (src_x + eye.lid_offset[0]).astype(np.float32), (src_y + eye.lid_offset[1]).astype(np.float32),
                 alpha)
