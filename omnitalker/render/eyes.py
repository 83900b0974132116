"""Eyes of the warp renderer: lids that close over the eye, an iris that moves inside the opening.

The mesh warp moves the lid margins; what it cannot do is move the iris independently of the lids, or
cover an eye with lid skin (stretched, the band above the lid margin would smear its lashes over the eye).
So, each a layer over the warp (``omnitalker/render/layers.py``), in drawing order:

- the lid: where the upper lid has come down over what was open in the reference, the reference eye patch
  with its opening and lash margin covered by the lid skin just above them (``lid_skin``), faded in with the
  closure so a lid that only trembles adds nothing, and out upwards over the lashes it hides (no outline);
- the lash line: the reference's lashes (the darkest line just above its tracked upper lid) drawn across the
  driven opening around the line where the lids meet, at least a few pixels thick, under the eyeball (which
  hides it as far as the eye is open), so a
  closed eye reads as lashes instead of the eyeball squeezed into a slit of dots;
- the eyeball, inside the driven opening: the reference eye through the eye-corner similarity, with its
  iris removed (filled in from the visible white of the eye only, so no lash or lid colour bleeds in) and
  extended beyond the opening the same way: looking sideways uncovers white, not a copy of the iris; stretched
  on the side where a lid opens wider than the reference's, and faded out as the lids shut (the lid skin then
  covers the slit they leave);
- the iris, a disc with an anti-aliased rim at the driven iris position, clipped by the opening: the
  reference iris with the parts its lids hid filled in from its visible part.
No outline and no flat blocks: every fill is inpainted from the person's own pixels; a flat colour is used
only when the reference shows no white of the eye at all (an iris that fills the opening).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from omnitalker.render.eye_bank import EyeBank, bank_fade, bank_layer
from omnitalker.render.geometry import LUMA_WEIGHTS, LipFrame, illumination, polygon_mask
from omnitalker.render.layers import EDGE_RAMP_PX, Layer, opening_coverage, region_grid

EYE_PATCH_MARGIN = 0.4  # the eye textures extend this far beyond the eye opening (eye widths)
EYEBALL_INPAINT_RADIUS = 0.1  # Telea radius of the fills (eye widths)
APERTURE_SHRINK_PX = 1  # the eyeball and iris are filled in from this far inside the opening (the rim holds lashes)
IRIS_MARGIN = 1.15  # the disc removed from the eyeball / drawn as the iris, over MediaPipe's mean iris radius
# The iris just under the upper lid lies in the lid's and lashes' shadow; read as iris, a heavy lid's deep shadow filled
# the arcs the lid hid dark: a heavy-lidded photo's iris, moved down 0.1 eye widths, was drawn as a black disc (shared
# portrait s2, whose band under the lid has 0.25x the luminance of the iris below it). Where the band (this deep under
# the upper lid, eye widths) is darker than HEAVY_SHADOW times the iris below it, the hidden arcs are filled from the
# iris below it; the band itself is kept as the photo shows it. The nine shared clips' bands are 0.46-1.0x their
# irises: filled from the lit iris, their drawn eyes read worse (self-reenactment eyes SSIM 0.8040 -> 0.8033,
# MediaPipe's eye-opening gain 0.775 -> 0.761), so they keep the fill from all of the visible iris.
IRIS_LID_SHADOW = 0.08
HEAVY_SHADOW = 0.35
MIN_KNOWN_PIXELS = 6  # fewer visible white (or iris) pixels than this: use a flat estimate instead
IRIS_POLAR_MIN_ANGLES = 64  # the iris fill's angular samples (at least; one per px of circumference otherwise)
IRIS_KNOWN_WEIGHT = 0.99  # a polar sample counts as seen when all of its bilinear footprint was
DEFAULT_SCLERA = np.array([0.86, 0.83, 0.80])  # white of the eye relative to white, scaled by the patch's light
LID_LASH_REACH = 0.2  # a shutting lid also covers this much above the reference's upper lid (its lashes; eye widths)
LID_MARGIN = 0.15  # the lid texture also fills this much around the opening (the lash margin, eye widths)
LID_DARK_SPREAD = 2.0  # ... and the pixels within LID_MARGIN more that are darker than the skin there by this many
# median absolute deviations (lashes, the shadow in an eye corner)
LID_SKIN_ROWS = 3  # a shut lid's colour: the median of this many rows of skin above the filled region
LID_SKIN_SMOOTH = 0.08  # ... smoothed along the lid with a Gaussian this wide (eye widths)
SLIT_COVER_PX = EDGE_RAMP_PX  # a shut eye's lid skin reaches this far below the driven lower lid
LID_CLOSURE_START, LID_CLOSURE_FADE = 0.2, 0.3  # the lid layer fades in from this closure over this much more
MIN_EYE_OPENING = 0.06  # opening / width below this: the warp alone draws the eye (a closed lid)
# The eyeball shows from this share of the reference's own opening, fully over this much more. MediaPipe's lids on a
# shut eye stay about 0.1 eye widths apart (the lash line's thickness): drawn from a fixed 0.06, the eyeball showed
# through that slit and a blink read as a half-open eye (self-reenactment: blinks drawn at 0.64x their depth).
EYE_HIDDEN_SHARE, EYE_FADE_SHARE = 0.42, 0.25
# The lash line of a closing eye (eye widths): the reference's lashes (``lash_line``: the darkest row from
# LASH_SEARCH_ABOVE above MediaPipe's upper lid down to it), a band LASH_BAND_HALF each side of
# them, drawn across the driven opening at least 2 x LASH_HALF_WIDTH thick, so a closed lid reads as a dark lash line
# instead of the collapsed warp of the eyeball (bright and dark dots along a slit). The band was first taken at a fixed
# offset above the contour (0.065 to 0.015 eye widths): where the contour runs below the lashes or above them, as on
# d0 of the real clips, a shut eye got a pale line of lid skin and white (self-reenactment, five blinking clips:
# eyes SSIM 0.8118 -> 0.8123, MediaPipe's eye-openness gain 0.808 -> 0.797: d18 up, d0 down).
# (Tried: the warp's strip closing the opening mapped onto that band too: eyes SSIM 0.760 -> 0.751 on five clips,
# the band showing dark at the open eye's anti-aliased edge.)
LASH_SEARCH_ABOVE = 0.1
LASH_BAND_HALF = 0.04  # (0.02: the same SSIM, a darker, thicker line; MediaPipe's gain on five clips 0.786 vs 0.797)
LASH_HALF_WIDTH = 0.05  # the drawn lash line is at least twice this thick at the middle of the eye


@dataclass
class EyeReference:
    upper: np.ndarray  # lid chain indices, corner to corner
    lower: np.ndarray
    iris_center: int
    frame: LipFrame  # the reference eye opening (frame px)
    iris_uv: np.ndarray  # (2,) reference iris centre in `frame` (u, v px)
    iris_radius: float  # reference iris radius (frame px)
    offset: np.ndarray  # (2,) atlas position of reference pixel (0, 0) for the eyeball texture
    iris_offset: np.ndarray  # (2,) ... for the iris texture
    lid_offset: np.ndarray  # (2,) ... for the lid texture
    lash_v: np.ndarray  # (len(frame.upper_u),) v (px, in `frame`) of the lashes along the upper lid (``lash_line``)
    bank: EyeBank | None = None  # a reference clip's eye opened otherwise (``omnitalker/render/eye_bank.py``)


def _fill(patch: np.ndarray, known: np.ndarray, radius: float, fallback: np.ndarray) -> np.ndarray:
    """`patch` with every pixel outside `known` inpainted from the known ones (a flat `fallback` if too few)."""
    if known.sum() < MIN_KNOWN_PIXELS:
        filled = patch.copy()
        filled[~known] = np.clip(fallback, 0, 255).astype(np.uint8)
        return filled
    return cv2.inpaint(patch, (~known).astype(np.uint8), radius, cv2.INPAINT_TELEA)


def fill_iris(patch: np.ndarray, known: np.ndarray, centre: np.ndarray, iris_radius: float, disc_radius: float,
              read_from: np.ndarray | None = None) -> np.ndarray:
    """`patch` with the disc (`centre` (x, y) px, `disc_radius`) filled where not `known`: each hidden pixel takes
    the colour of the known pixels at the same distance from the centre, interpolated around the circle. An iris is
    drawn in rings (pupil, iris, limbus), so what the lids hide matches what shows at the same radius. Beyond
    `iris_radius` (the disc's margin, where the sides show the white of the eye) the hidden arcs continue the iris's
    outermost ring instead: a lid hides iris there, not white. (Telea from the visible part, as the eyeball's fill
    is, carried the white beside the iris into the hidden arc under the upper lid: moved down, the drawn iris
    showed a pale notch at its top.) Outside the disc `patch` is unchanged. `read_from` (default `known`): the known
    pixels the fill reads (the iris out of the lid's shadow), a subset of `known`.

    cv2.warpPolar does the resampling both ways; the fill itself is one periodic interpolation per radius."""
    outer = disc_radius + 2.0  # a margin so the disc's own edge resamples from filled values
    angles = max(IRIS_POLAR_MIN_ANGLES, int(np.ceil(2 * np.pi * outer)))
    radii = max(2, int(np.ceil(outer)))
    centre_xy = (float(centre[0]), float(centre[1]))
    flags = cv2.INTER_LINEAR + cv2.WARP_POLAR_LINEAR
    polar = cv2.warpPolar(patch.astype(np.float32), (radii, angles), centre_xy, outer, flags)  # a r 3
    weight = cv2.warpPolar((known if read_from is None else read_from).astype(np.float32), (radii, angles),
                           centre_xy, outer, flags)  # a r
    have = weight > IRIS_KNOWN_WEIGHT
    theta = np.arange(angles, dtype=np.float64)
    step = outer / radii  # px per polar column
    columns = np.flatnonzero((have.sum(0) >= MIN_KNOWN_PIXELS) & (np.arange(radii) * step <= iris_radius))
    if not len(columns):
        return patch
    filled = polar.copy()
    for r in range(radii):
        wanted = min(r, iris_radius / step)
        source = columns[np.argmin(np.abs(columns - wanted))]  # this ring, or the nearest iris ring seen enough
        seen = have[:, source]
        for channel in range(polar.shape[2]):
            estimate = np.interp(theta, theta[seen], polar[seen, source, channel], period=angles)
            filled[:, r, channel] = np.where(have[:, r], polar[:, r, channel], estimate)
    back = cv2.warpPolar(filled, patch.shape[1::-1], centre_xy, outer, flags + cv2.WARP_INVERSE_MAP)
    disc = np.zeros(patch.shape[:2], np.uint8)
    cv2.circle(disc, tuple(int(round(c)) for c in centre), max(1, int(np.ceil(disc_radius))), 1, -1)
    out = patch.copy()
    hidden = disc.astype(bool) & ~known
    out[hidden] = np.clip(np.round(back[hidden]), 0, 255).astype(np.uint8)
    return out


def _below_lid(shape: tuple[int, int], upper: np.ndarray, lower: np.ndarray, depth_px: float) -> np.ndarray:
    """(H, W) bool: the band `depth_px` deep below the upper lid contour `upper` (k, 2) px, towards the lower lid
    (`lower`, k' 2), across the eye."""
    along = upper[-1] - upper[0]
    down = np.array([-along[1], along[0]]) / max(float(np.hypot(*along)), 1e-6)
    if (lower.mean(0) - upper.mean(0)) @ down < 0:
        down = -down
    band = np.concatenate([upper, upper[::-1] + depth_px * down])
    return polygon_mask(shape, band).astype(bool)


def lash_line(image: np.ndarray, frame: LipFrame) -> np.ndarray:
    """v (reference px, in `frame`'s axes) of the lashes along the upper lid: at each point of the lid chain, the
    darkest row from LASH_SEARCH_ABOVE above MediaPipe's upper lid down to it (the lashes are the darkest line there;
    the contour itself sometimes runs in the lid skin above them, or on the white below), a running median along the
    lid so one dark pore does not kink it."""
    steps = max(3, int(np.ceil(LASH_SEARCH_ABOVE * frame.width)) + 1)
    offsets = np.linspace(-LASH_SEARCH_ABOVE, 0.0, steps) * frame.width  # k, px
    xs, ys = frame.to_pixels(np.repeat(frame.upper_u[:, None], steps, 1), frame.upper_v[:, None] + offsets[None])  # n k
    lo = np.clip(np.floor([xs.min(), ys.min()]).astype(int) - 1, 0, None)  # only the searched window is made grey
    hi = np.minimum(np.ceil([xs.max(), ys.max()]).astype(int) + 2, image.shape[1::-1])
    grey = cv2.cvtColor(np.ascontiguousarray(image[lo[1]:hi[1], lo[0]:hi[0]]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    luma = cv2.remap(grey, (xs - lo[0]).astype(np.float32), (ys - lo[1]).astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)  # n k
    luma = cv2.GaussianBlur(luma, (1, 3), 0)  # along the search only
    darkest = offsets[np.argmin(luma, axis=1)]  # n
    padded = np.pad(darkest, 1, mode="edge")
    return frame.upper_v + np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def lid_skin(patch: np.ndarray, aperture: np.ndarray, width_px: float, radius: float) -> np.ndarray:
    """The lid texture: `patch` with the opening (`aperture`), LID_MARGIN around it (the lash margin) and the dark
    pixels within LID_MARGIN more covered by the lid skin above them, column by column (the colour of the
    LID_SKIN_ROWS rows above the covered part, smoothed along the lid).

    Why not a general inpainting: a shut upper lid is the skin above the eye come down, not a blend of what lies
    around the eye. Telea's fill (cv2.inpaint) carried the boundary's darker pixels (the lash margin, the lower lid)
    in as a grey patch with a faint ring where the fill met them; a biharmonic fill (scikit-image) continued the
    lid margin's shading into a darker blob. Columns with no skin above the covered part (the patch's top edge)
    take their neighbours' colour; a patch with none falls back to Telea."""
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * max(1, int(round(LID_MARGIN * width_px))) + 1,) * 2)
    hole = cv2.dilate(aperture.astype(np.uint8), kernel).astype(bool)
    around = cv2.dilate(hole.astype(np.uint8), kernel).astype(bool) & ~hole
    if around.sum() >= MIN_KNOWN_PIXELS:
        level = np.median(grey[around])
        spread = np.median(np.abs(grey[around] - level)) + 1.0  # + 1 grey level: a flat patch is not all outliers
        dark = (around & (grey < level - LID_DARK_SPREAD * spread)).astype(np.uint8)
        hole |= cv2.dilate(dark, np.ones((3, 3), np.uint8)).astype(bool) & around
    columns = np.flatnonzero(hole.any(0))
    top = hole[:, columns].argmax(0)  # first covered row of each column
    seen = top >= 1
    if not seen.any():
        return cv2.inpaint(patch, hole.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    image = patch.astype(np.float32)
    rows = top[seen, None] - np.arange(1, LID_SKIN_ROWS + 1)[None]  # c k
    above = image[np.clip(rows, 0, None), columns[seen, None]]  # c k 3
    colour = np.nanmedian(np.where((rows >= 0)[..., None], above, np.nan), axis=1)  # c 3 (the row above: always)
    xs = np.arange(patch.shape[1])
    line = np.stack([np.interp(xs, columns[seen], colour[:, c]) for c in range(3)], 1)  # w 3
    line = gaussian_filter1d(line, max(LID_SKIN_SMOOTH * width_px, 0.5), axis=0, mode="mirror")  # along the lid
    lid = image.copy()
    ys, xs_hole = np.nonzero(hole)
    lid[ys, xs_hole] = line[xs_hole]
    return np.clip(np.round(lid), 0, 255).astype(np.uint8)


def eye_textures(image: np.ndarray, landmarks: np.ndarray, upper: np.ndarray, lower: np.ndarray,
                 iris_center: int, iris_ring: np.ndarray) -> tuple[dict, list[np.ndarray]]:
    """The eyeball, iris and lid textures of one eye (patches of the image) and what ``EyeReference`` needs but
    their atlas offsets.

    Returns (partial EyeReference fields + "patch_origin", [eyeball, iris, lid] uint8)."""
    frame = LipFrame.from_points(landmarks, upper, lower)
    width_px = frame.width
    iris = landmarks[iris_center, :2].astype(np.float64)
    iris_radius = float(np.mean(np.hypot(*(landmarks[iris_ring, :2] - iris).T)))
    contour = np.concatenate([landmarks[upper, :2], landmarks[lower[::-1], :2]])
    lo = np.floor(np.minimum(contour.min(0), iris - iris_radius) - EYE_PATCH_MARGIN * width_px)
    hi = np.ceil(np.maximum(contour.max(0), iris + iris_radius) + EYE_PATCH_MARGIN * width_px)
    lo = np.clip(lo, 0, [image.shape[1] - 1, image.shape[0] - 1]).astype(int)
    hi = np.clip(hi, lo + 1, [image.shape[1], image.shape[0]]).astype(int)
    patch = np.ascontiguousarray(image[lo[1]:hi[1], lo[0]:hi[0]])
    radius = max(2.0, EYEBALL_INPAINT_RADIUS * width_px)

    aperture = polygon_mask(patch.shape[:2], contour - lo).astype(bool)
    inner = cv2.erode(aperture.astype(np.uint8), np.ones((2 * APERTURE_SHRINK_PX + 1,) * 2, np.uint8)).astype(bool)
    if inner.sum() < MIN_KNOWN_PIXELS:
        inner = aperture
    disc = np.zeros(patch.shape[:2], np.uint8)
    cv2.circle(disc, tuple(int(round(c)) for c in iris - lo), max(1, int(round(IRIS_MARGIN * iris_radius))), 1, -1)
    disc = disc.astype(bool)

    light = illumination(patch.reshape(-1, 3).mean(0))
    white = inner & ~disc
    sclera = patch[white].mean(0) if white.sum() >= MIN_KNOWN_PIXELS else DEFAULT_SCLERA * 255.0 * light
    eyeball = _fill(patch, white, radius, sclera)
    iris_known = inner & disc
    band = iris_known & _below_lid(patch.shape[:2], landmarks[upper, :2] - lo, landmarks[lower, :2] - lo,
                                   IRIS_LID_SHADOW * width_px)
    lit = iris_known & ~band  # the iris out of the lid's shadow
    luma = patch.astype(np.float64) @ LUMA_WEIGHTS
    heavy = (band.any() and lit.sum() >= MIN_KNOWN_PIXELS
             and np.median(luma[band]) < HEAVY_SHADOW * np.median(luma[lit]))
    if not heavy:
        lit = iris_known
    iris_texture = _fill(patch, iris_known, radius, patch[iris_known].mean(0) if iris_known.any() else sclera * 0.35)
    if lit.sum() >= MIN_KNOWN_PIXELS:  # the disc's hidden arcs from its visible, lit rings (the rest as before)
        iris_texture = fill_iris(iris_texture, iris_known, iris - lo, iris_radius, IRIS_MARGIN * iris_radius,
                                 read_from=lit)

    lid = lid_skin(patch, aperture, width_px, radius)

    u, v, _, _ = frame.coords(iris[:1], iris[1:])
    partial = dict(upper=upper, lower=lower, iris_center=iris_center, frame=frame,
                   iris_uv=np.array([u[0], v[0]]), iris_radius=iris_radius, patch_origin=lo.astype(np.float64),
                   lash_v=lash_line(image, frame))
    return partial, [eyeball, iris_texture, lid]


def eye_layers(eye: EyeReference, driven: np.ndarray, size: int) -> list[Layer]:
    """The lid, eyeball and iris layers of one eye (in drawing order) for driven landmarks (478, 2+) in px of a
    crop `size` px wide; the driven opening is measured once for all three."""
    frame = LipFrame.from_points(driven, eye.upper, eye.lower)
    fade = _eyeball_fade(frame, eye.frame)
    lid = _lid_layer(eye, frame, driven, size, fade)
    layers = [] if lid is None else [lid]
    lash = _lash_layer(eye, frame, driven, size)
    layers += [] if lash is None else [lash]
    own_fade, nearest = bank_fade(eye.bank, frame)
    if own_fade > 0.0:  # the clip's own lids (``eye_bank.py``) over the drawn ones, under the eyeball; inside the
        # opening only as far as the entry's own eyeball is hidden (an open entry's eyeball looks where it looked)
        hidden = 1.0 - _eyeball_fade(eye.bank.frames[nearest], eye.frame)
        own = bank_layer(eye.bank, frame, size, own_fade, nearest, inside=hidden)
        layers += [] if own is None else [own]
    region = region_grid(driven[np.concatenate([eye.upper, eye.lower]), :2], size, 1.0) if fade > 0.0 else None
    if region is None:
        return layers
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    coverage = opening_coverage(u, v, v_up, v_lo, frame.width) * fade
    ref = eye.frame
    to_ref = ref.width / frame.width  # reference px per driven px, along the eye
    src_x, src_y = ref.to_pixels(u, _widened(ref, u, v * to_ref, v_up * to_ref, v_lo * to_ref))
    layers.append(Layer(window, (src_x + eye.offset[0]).astype(np.float32),
                        (src_y + eye.offset[1]).astype(np.float32), coverage))
    # The iris: the reference disc moved to the driven centre (its offset within the opening, in eye axes).
    iris = driven[eye.iris_center, :2].astype(np.float64)
    iris_u, iris_v, _, _ = frame.coords(iris[:1], iris[1:])
    du, dv = iris_u[0] - eye.iris_uv[0], iris_v[0] * to_ref - eye.iris_uv[1]
    src_x, src_y = ref.to_pixels(u - du, v * to_ref - dv)
    radius = IRIS_MARGIN * eye.iris_radius / to_ref  # driven px
    rim = np.clip((radius - np.hypot(xs - iris[0], ys - iris[1])) / EDGE_RAMP_PX + 0.5, 0.0, 1.0)
    layers.append(Layer(window, (src_x + eye.iris_offset[0]).astype(np.float32),
                        (src_y + eye.iris_offset[1]).astype(np.float32), (coverage * rim).astype(np.float32)))
    return layers


def _widened(ref: LipFrame, u: np.ndarray, v: np.ndarray, v_up: np.ndarray, v_lo: np.ndarray) -> np.ndarray:
    """Reference v of the eyeball for driven v (all in reference px along the driven eye axes): where a lid has
    opened past the reference's, its side of the eyeball is stretched so the reference's lid margin lands on the
    driven lid (the white and the lid's shadow move with it; the iris is a disc of its own). Unstretched, a widened
    eye showed the reference eye's shading unmoved and read as no wider (self-reenactment)."""
    ref_up, ref_lo = np.interp(u, ref.upper_u, ref.upper_v), np.interp(u, ref.lower_u, ref.lower_v)

    def squeeze(ref_lid, lid):  # <= 1 where the driven lid is further from the corner line than the reference's
        ratio = ref_lid / np.where(np.abs(lid) < 1e-6, 1e-6, lid)
        return np.where(ratio > 0, np.minimum(ratio, 1.0), 1.0)

    on_upper = np.sign(v) == np.sign(v_up - v_lo)
    return v * np.where(on_upper, squeeze(ref_up, v_up), squeeze(ref_lo, v_lo))


def _eyeball_fade(frame: LipFrame, reference: LipFrame) -> float:
    """0 for an eye shut (or opened under EYE_HIDDEN_SHARE of the reference's opening), 1 for one open."""
    opening = frame.gap() / frame.width
    share = opening / max(reference.gap() / reference.width, MIN_EYE_OPENING)
    fade = np.clip((share - EYE_HIDDEN_SHARE) / EYE_FADE_SHARE, 0.0, 1.0)
    return float(fade) if opening >= MIN_EYE_OPENING else 0.0


def _lid_layer(eye: EyeReference, frame: LipFrame, driven: np.ndarray, size: int, eyeball_fade: float
               ) -> Layer | None:
    """Lid skin between where the reference's upper lid was and where the driven one (`frame`) is, and over the
    slit between the lids as far as the eyeball has faded out (`eyeball_fade`, ``_eyeball_fade``)."""
    ref = eye.frame
    to_ref = ref.width / frame.width
    closure = 1.0 - (frame.gap() / frame.width) / max(ref.gap() / ref.width, 1e-6)
    fade = float(np.clip((closure - LID_CLOSURE_START) / LID_CLOSURE_FADE, 0.0, 1.0))
    if fade <= 0.0:
        return None
    ref_upper_v = ref.upper_v / to_ref  # the reference's upper lid, in driven px along the driven eye axes
    reach = LID_LASH_REACH * frame.width
    # the window reaches up to where the layer starts fading in over the lashes (cut at the reference's lid, the
    # fade ended in a hard edge: a box drawn around every closed eye)
    top = np.stack(frame.to_pixels(ref.upper_u, ref_upper_v - reach), 1)
    region = region_grid(np.concatenate([top, driven[np.concatenate([eye.upper, eye.lower]), :2]]), size, 1.0)
    if region is None:
        return None
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    v_ref_up = np.interp(u, ref.upper_u, ref_upper_v)
    v_ref_lo = np.interp(u, ref.lower_u, ref.lower_v / to_ref)
    # covered: below the reference's upper lid, above the driven upper lid (or in a closed opening), inside the socket
    # as the eyeball fades out (a shutting eye), the lid comes down over the slit left between the lids
    # (a pixel past the lower lid too: a slit a pixel thin, half covered by the anti-aliased edges, let the warp's
    # squeezed eyeball show through as a bright line under the lashes)
    bottom = v_up + (1.0 - eyeball_fade) * (np.maximum(v_lo - v_up, 0.0) + SLIT_COVER_PX)
    # ... and over the reference's lashes above that lid, fading out upwards: left to the warp, they were pulled down
    # over the shut lid as a dark arc, an outline around every closed eye
    alpha = opening_coverage(u, v, v_ref_up - reach, np.minimum(bottom, v_ref_lo), frame.width) * fade
    alpha = alpha * np.clip((v - v_ref_up + reach) / max(reach, 1e-6), 0.0, 1.0)
    src_x, src_y = ref.to_pixels(u, v * to_ref)
    return Layer(window, (src_x + eye.lid_offset[0]).astype(np.float32), (src_y + eye.lid_offset[1]).astype(np.float32),
                 alpha)


def _lash_layer(eye: EyeReference, frame: LipFrame, driven: np.ndarray, size: int) -> Layer | None:
    """The reference's upper lid margin (lashes) stretched across the driven opening, around the line where the
    lids meet; the eyeball layer covers it as far as the eye is open, so it shows as the eye closes."""
    ref = eye.frame
    half_min = LASH_HALF_WIDTH * frame.width
    region = region_grid(driven[np.concatenate([eye.upper, eye.lower]), :2], size, half_min + 1.0)
    if region is None:
        return None
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    middle = (v_up + v_lo) / 2
    # Thinner towards the corners, as lashes are.
    half = half_min * np.sqrt(np.sin(np.pi * np.clip(u, 0.0, 1.0)))
    alpha = opening_coverage(u, v, middle - half, middle + half, frame.width)
    share = np.clip((v - middle + half) / np.maximum(2 * half, 1e-6), 0.0, 1.0)  # 0 at the band's top, 1 at its bottom
    ref_v = np.interp(u, ref.upper_u, eye.lash_v) + ref.width * LASH_BAND_HALF * (2 * share - 1)
    src_x, src_y = ref.to_pixels(u, ref_v)
    return Layer(window, src_x.astype(np.float32), src_y.astype(np.float32), alpha)
