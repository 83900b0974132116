"""Training-free face renderer: a reference image + driven 478-point landmarks -> video frames.

`WarpRenderer` is the pipeline's default renderer. It has no weights: it warps the
reference image so that its MediaPipe Face Mesh landmarks land on the driven ones, and fills in what
a warp alone cannot show (the inside of an opening mouth, eyelids closing over the eyeball, irises
that move inside the eye opening).

    renderer = WarpRenderer(output_size=512)
    source = renderer.prepare_source(reference, max_side=1024)     # a pipeline's OmniTalkerReference, once
    frames = renderer.render_codes(source, codes)                  # (T, 58) codes -> (T, H, W, 3) uint8
    state = renderer.prepare(image, landmarks)                     # lower level: (H, W, 3) uint8, (478, 3) px
    frames = renderer.render(state, landmarks_sequence)            # (T, 478, 3) px -> (T, H, W, 3) uint8

The pipeline hands it codes (``render_codes``); the codes are decoded to landmarks of the reference face
(``omnitalker.frontend.face.decode_codes``) here, on the renderer's side.

How one frame is made (`render_frame`):
1. A square crop around the reference face (fixed for the whole video) is rendered at
   `output_size`^2 and pasted back into the full frame with a feathered mask.
2. Backward dense warp, piecewise affine. Triangles: MediaPipe's face tessellation (852 triangles),
   its mouth and eye openings closed with triangle strips, and an outer mesh from the face oval to
   two rings around the head (hair, neck) and to fixed anchors on the crop border, so the background
   stays still. The rings follow the head's 3D similarity transform (fitted to the rigid landmarks);
   the part below the chin (neck) follows it only partly. Triangles are rasterised far-to-near
   (painter's algorithm on the landmark depth) into a triangle-index image on a coarse grid; each
   pixel's source position is its triangle's affine map, upsampled to full size and applied with one
   `cv2.remap`.
3. The mouth interior, eye openings and irises get their own source positions at full resolution,
   which point into an *atlas*: the reference image with small textures appended to its right (so one
   remap still draws everything):
   - mouth: two strips in "distance from the lip" coordinates, one hanging from the upper lip and one
     standing on the lower lip. Near each lip they hold the reference's own mouth interior (teeth) if
     its mouth is open, else procedural teeth; further in, a shaded dark cavity. So teeth move with
     their lip and the cavity grows as the lips part, instead of the lips' texture being stretched.
   - eyes: inside the driven eye opening, an eyeball (the reference eye with its iris painted over
     with sclera colour) mapped by the eye-corner similarity, plus the reference iris moved to the
     driven iris centre; where the reference opening is now covered by the driven lids, a closed-lid
     texture (skin sampled above the eye, with a lash line), so blinks read as closed eyes.

Run `python bench/renderer.py` for frames/s; `python -m omnitalker.eval.closed_loop` for the
round trip codes -> render -> landmarks -> codes.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from diffusers.configuration_utils import ConfigMixin, register_to_config
from scipy.spatial import Delaunay
from transformers import FeatureExtractionMixin

from omnitalker.frontend.face.codes import decode_codes
from omnitalker.io.image import fit_within

NUM_LANDMARKS = 478  # MediaPipe Face Mesh with refine_landmarks=True (468 mesh + 2 x 5 iris points)
NUM_MESH_VERTICES = 468
NUM_FACE_TRIANGLES = 852  # Euler: V - E + F = 2 - 4 boundary loops (oval, mouth, two eyes)

SUBPIXEL_BITS = 4  # cv2 fill functions take fixed-point vertices: 1/16 px precision
SUBPIXEL_SCALE = 1 << SUBPIXEL_BITS
NECK_START, NECK_RAMP = 0.3, 0.5  # ring points this far towards "straight down" (cosine) follow less
RING_INSET = 0.95  # rings are kept inside this fraction of the crop half-size
RING_RESIDUAL_SHARE = 0.6  # rings follow this share of the non-rigid motion of the face outline (jaw)
DEGENERATE_AREA = 1e-6  # |det| below this (grid px^2): the triangle has collapsed (closed lid or lips)
ATLAS_PAD = 2  # replicated border around each atlas texture, so bilinear sampling never bleeds

# Eyes. Lengths are in units of the eye width (corner to corner), the scale-free size of the eye.
IRIS_MARGIN = 1.1  # the iris disc drawn/erased is this much wider than the mean ring radius
EYE_PATCH_MARGIN = 0.4  # eye textures extend this far beyond the eye opening
LID_MARGIN = 0.15  # a closed lid also covers the lash margin around the opening (inpainted)
LID_INPAINT_RADIUS = 0.15
MIN_EYE_OPENING = 0.06  # narrower than this, the lids are drawn closed (the lash line shows)
LASH_THICKNESS = 0.05  # the lash line of a closed eye
LASH_DARKNESS = 0.4  # lash line colour = skin colour times this
DEFAULT_SCLERA = np.array([0.86, 0.83, 0.80])  # sclera colour relative to white if none is visible
MIN_SCLERA_PIXELS = 6
FALLBACK_IRIS_SHADE = 0.35  # iris colour = sclera colour times this when no iris pixel is visible
FALLBACK_LID_SHADE = 0.8  # closed-lid colour = sclera colour times this when no skin is around the eye
DEFAULT_SKIN = np.array([180.0, 140.0, 120.0])  # RGB, if the face oval holds no pixel
GAP_SPAN, GAP_SAMPLES = (0.25, 0.75), 9  # an opening's gap is averaged over this part of its width

# Mouth. Lengths in units of the mouth width (inner-lip corner to corner).
MOUTH_OPEN_RATIO = 0.08  # reference lip gap / width above this: use its own teeth, else draw teeth
MOUTH_STRIP_DEPTH = 0.5  # each mouth strip reaches this far from its lip
MOUTH_OVERSAMPLE = 2  # strip texels per reference pixel (procedural teeth need the resolution)
UPPER_TEETH_HEIGHT = 0.11
LOWER_TEETH_HEIGHT = 0.06
TEETH_SPAN = (0.12, 0.88)  # teeth fill this part of the width; the corners stay dark
TEETH_SPAN_FADE = 0.05  # the teeth fade out over this width at the ends of the span
CORNER_TEETH_SHORTENING = 0.4  # teeth at the ends of the span are this much shorter
TEETH_GAP_SHARPNESS = 16  # power of the cosine: thin gaps, flat teeth
TEETH_COUNT = 8  # visible teeth across the span (sets the spacing of the faint gaps between them)
TEETH_GAP_SHADE = 0.06  # brightness dip at each gap between teeth
TEETH_COLOR = np.array([0.88, 0.85, 0.78])  # relative to white, scaled by the face's illumination
TOOTH_EDGE_SHADE = 0.3  # teeth darken by this fraction towards their free edge
CAVITY_TINT = np.array([0.30, 0.16, 0.16])  # cavity colour = skin colour times this
CAVITY_DEPTH_SHADE = 0.45  # the cavity darkens by this fraction towards the strip's far end
NOMINAL_SKIN_LUMA = 170.0  # skin luminance at which TEETH_COLOR is used unscaled
ILLUMINATION_RANGE = (0.45, 1.1)

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])


# --------------------------------------------------------------------------------------------------
# Mesh topology, derived once from MediaPipe's own connection lists (no hard-coded indices).


@dataclass(frozen=True)
class MeshTopology:
    face_triangles: np.ndarray  # (852, 3) tessellation triangles
    oval_loop: np.ndarray  # (36,) face outline, ordered around the loop
    mouth_loop: np.ndarray  # (20,) inner lip contour, ordered
    eye_loops: tuple[np.ndarray, np.ndarray]  # (16,) each: subject's right eye, left eye
    iris_centers: tuple[int, int]  # 468, 473
    iris_rings: tuple[np.ndarray, np.ndarray]  # (4,) each
    expressive: np.ndarray  # (K,) lips, eyes, brows, irises: excluded from the rigid head fit


def _indices(connections) -> set[int]:
    return {i for edge in connections for i in edge}


def _triangles_from_edges(edges: set[tuple[int, int]]) -> np.ndarray:
    """Faces of a triangulated surface from its edge list: its 3-cliques minus the few that are not faces.

    A 3-clique that is not a face uses three edges that already bound two faces each (each such edge then
    appears in three cliques); removing those cliques leaves every edge in at most two faces.
    """
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    cliques = {tuple(sorted((a, b, c))) for a, b in edges for c in neighbours[a] & neighbours[b]}
    uses = Counter(e for tri in cliques for e in itertools.combinations(tri, 2))
    faces = [t for t in cliques if not all(uses[e] > 2 for e in itertools.combinations(t, 2))]
    return np.array(sorted(faces), dtype=np.int64)


def _boundary_loops(triangles: np.ndarray) -> list[np.ndarray]:
    uses = Counter(tuple(sorted(e)) for tri in triangles for e in itertools.combinations(tri, 2))
    boundary: dict[int, list[int]] = {}
    for (a, b), count in uses.items():
        if count == 1:
            boundary.setdefault(a, []).append(b)
            boundary.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in boundary:
        if start in seen:
            continue
        loop, previous, current = [start], None, start
        seen.add(start)
        while True:
            following = [n for n in boundary[current] if n != previous and n not in seen]
            if not following:
                break
            previous, current = current, following[0]
            loop.append(current)
            seen.add(current)
        loops.append(np.array(loop, dtype=np.int64))
    return loops


@functools.lru_cache(maxsize=1)
def mesh_topology() -> MeshTopology:
    from mediapipe.python.solutions import face_mesh_connections as fmc

    edges = {tuple(sorted(e)) for e in fmc.FACEMESH_TESSELATION}
    triangles = _triangles_from_edges(edges)
    if len(triangles) != NUM_FACE_TRIANGLES:
        raise RuntimeError(f"MediaPipe tessellation gave {len(triangles)} triangles, expected {NUM_FACE_TRIANGLES}")
    loops = _boundary_loops(triangles)

    def loop_within(points: set[int]) -> np.ndarray:
        (match,) = [loop for loop in loops if set(loop.tolist()) <= points]
        return match

    # MediaPipe lists only the 4 ring points of each iris; its centre is the index just before them.
    right_ring = np.array(sorted(_indices(fmc.FACEMESH_RIGHT_IRIS)))
    left_ring = np.array(sorted(_indices(fmc.FACEMESH_LEFT_IRIS)))
    expressive = (
        _indices(fmc.FACEMESH_LIPS) | _indices(fmc.FACEMESH_LEFT_EYE) | _indices(fmc.FACEMESH_RIGHT_EYE)
        | _indices(fmc.FACEMESH_LEFT_EYEBROW) | _indices(fmc.FACEMESH_RIGHT_EYEBROW)
    )
    return MeshTopology(
        face_triangles=triangles,
        oval_loop=loop_within(_indices(fmc.FACEMESH_FACE_OVAL)),
        mouth_loop=loop_within(_indices(fmc.FACEMESH_LIPS)),
        eye_loops=(loop_within(_indices(fmc.FACEMESH_RIGHT_EYE)), loop_within(_indices(fmc.FACEMESH_LEFT_EYE))),
        iris_centers=(int(right_ring.min()) - 1, int(left_ring.min()) - 1),
        iris_rings=(right_ring, left_ring),
        expressive=np.array(sorted(expressive), dtype=np.int64),
    )


def split_loop(loop: np.ndarray, points: np.ndarray, axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a closed contour at its two extremes along `axis` into (upper, lower) chains, both running
    from the first corner to the second (corners included). "Upper" = smaller coordinate along the normal."""
    along = points[loop, :2] @ axis
    first, second = int(np.argmin(along)), int(np.argmax(along))
    rolled = np.roll(loop, -first)
    cut = (second - first) % len(loop)
    chain_a = rolled[: cut + 1]
    chain_b = np.concatenate([rolled[cut:], rolled[:1]])[::-1]
    normal = np.array([-axis[1], axis[0]])
    if points[chain_a, :2].mean(0) @ normal > points[chain_b, :2].mean(0) @ normal:
        chain_a, chain_b = chain_b, chain_a
    return chain_a, chain_b


def _strip_triangles(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Triangles closing the opening between two chains that share their end points."""
    triangles, i, j = [], 0, 0
    while i < len(upper) - 1 or j < len(lower) - 1:
        # advance along whichever chain is behind (in normalised arc position)
        if j == len(lower) - 1 or (i < len(upper) - 1 and (i + 1) / len(upper) <= (j + 1) / len(lower)):
            triangles.append((upper[i], upper[i + 1], lower[j]))
            i += 1
        else:
            triangles.append((upper[i], lower[j + 1], lower[j]))
            j += 1
    return np.array([t for t in triangles if len(set(t)) == 3], dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# Small geometry helpers


def _similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares s, R, mean_source, mean_target with target ~ s R (source - mean_source) + mean_target (Umeyama)."""
    mean_s, mean_t = source.mean(0), target.mean(0)
    cs, ct = source - mean_s, target - mean_t
    u, sing, vt = np.linalg.svd(ct.T @ cs / len(source))
    flip = np.ones(len(sing))
    flip[-1] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = (u * flip) @ vt
    scale = float((sing * flip).sum() / max((cs**2).sum() / len(source), 1e-12))
    return scale, rotation, mean_s, mean_t


@dataclass
class LipFrame:
    """A contour opening (mouth or eye) in its own frame: u in [0, 1] from corner to corner, v in px
    perpendicular to it (down for an upright face)."""

    origin: np.ndarray  # (2,)
    axis_u: np.ndarray  # (2,) unit
    axis_v: np.ndarray  # (2,) unit
    width: float
    upper_u: np.ndarray
    upper_v: np.ndarray
    lower_u: np.ndarray
    lower_v: np.ndarray

    @classmethod
    def from_points(cls, points: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> LipFrame:
        origin, end = points[upper[0], :2], points[upper[-1], :2]
        span = end - origin
        width = max(float(np.hypot(*span)), 1e-6)
        axis_u = span / width
        axis_v = np.array([-axis_u[1], axis_u[0]])

        def chain(idx):
            rel = points[idx, :2] - origin
            u, v = rel @ axis_u / width, rel @ axis_v
            order = np.argsort(u, kind="stable")
            return u[order], v[order]

        upper_u, upper_v = chain(upper)
        lower_u, lower_v = chain(lower)
        return cls(origin, axis_u, axis_v, width, upper_u, upper_v, lower_u, lower_v)

    def coords(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, ...]:
        """(u, v, v_upper(u), v_lower(u)) for pixel positions."""
        rx, ry = xs - self.origin[0], ys - self.origin[1]
        u = (rx * self.axis_u[0] + ry * self.axis_u[1]) / self.width
        v = rx * self.axis_v[0] + ry * self.axis_v[1]
        return u, v, np.interp(u, self.upper_u, self.upper_v), np.interp(u, self.lower_u, self.lower_v)

    def to_pixels(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        along = u * self.width
        return (self.origin[0] + along * self.axis_u[0] + v * self.axis_v[0],
                self.origin[1] + along * self.axis_u[1] + v * self.axis_v[1])

    def gap(self) -> float:
        """Mean lip/lid separation over the middle half of the opening, in px."""
        u = np.linspace(*GAP_SPAN, GAP_SAMPLES)
        return float(np.mean(np.interp(u, self.lower_u, self.lower_v) - np.interp(u, self.upper_u, self.upper_v)))


def _median_color(image: np.ndarray, mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    pixels = image[mask.astype(bool)]
    return np.median(pixels, axis=0).astype(np.float32) if len(pixels) else fallback.astype(np.float32)


def _polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * SUBPIXEL_SCALE).astype(np.int32)], 1, cv2.LINE_8, SUBPIXEL_BITS)
    return mask


# --------------------------------------------------------------------------------------------------
# The precomputed reference


@dataclass
class EyeReference:
    upper: np.ndarray  # chain indices, corner to corner
    lower: np.ndarray
    iris_center: int
    iris_ring: np.ndarray
    frame: LipFrame  # reference eye frame (frame px)
    iris_center_px: np.ndarray  # (2,) reference, frame px
    iris_radius: float  # reference, frame px
    clean_offset: np.ndarray  # atlas position of reference pixel (0, 0) for the eyeball texture
    lid_offset: np.ndarray  # ... for the closed-lid texture
    iris_offset: np.ndarray  # ... for the iris texture


@dataclass
class MouthReference:
    upper: np.ndarray
    lower: np.ndarray
    frame: LipFrame
    upper_strip: np.ndarray  # atlas (x, y) of texel (0, 0)
    lower_strip: np.ndarray
    strip_shape: tuple[int, int]  # (rows, cols)


@dataclass
class RenderReference:
    """Everything `WarpRenderer.render` reuses across frames of one reference image."""

    image: np.ndarray  # (H, W, 3) uint8
    atlas: np.ndarray  # (Ha, Wa, 3) uint8: the image, textures appended on the right
    landmarks: np.ndarray  # (478, 3) float32, frame px
    crop_origin: np.ndarray  # (2,) frame px of the crop's top-left corner
    crop_size: int  # S: side of the crop box in frame px
    triangles: np.ndarray  # (F, 3) vertex indices; the outer (background) ones first
    num_outer: int  # how many of `triangles` are outer ones (drawn first)
    source_vertices: np.ndarray  # (V, 2) frame px: landmarks, ring points, border anchors
    ring_points3d: np.ndarray  # (R, 3) frame px
    ring_follow: np.ndarray  # (R,) how much each ring point follows the head
    border_vertices: np.ndarray  # (B, 2) crop px (fixed)
    stable: np.ndarray  # landmark indices for the rigid head fit
    oval: np.ndarray  # face-outline landmark indices, in the order the rings were built from
    background: np.ndarray  # (6,) affine map crop-grid px -> frame px for pixels no triangle covers
    eyes: tuple[EyeReference, EyeReference] | None
    mouth: MouthReference | None
    paste_mask: np.ndarray  # (S, S) float32 feathered blending weights

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"reference_image must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(
            f"reference_image must be uint8 (0-255), got {image.dtype}; convert it first, e.g. "
            "(img / 257).astype(np.uint8) for 16-bit or (img * 255).round().astype(np.uint8) for floats in [0, 1]"
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]  # RGBA: the colour channels (alpha is not used for a photo)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"reference_image must be (H, W, 3) RGB (gray and RGBA are converted), got shape {image.shape}")
    if min(image.shape[:2]) < 16:
        raise ValueError(f"reference_image is too small ({image.shape[1]}x{image.shape[0]}); it needs a visible face")
    return np.ascontiguousarray(image)


def _check_landmarks(landmarks, leading: tuple[int, ...], name: str) -> np.ndarray:
    landmarks = np.asarray(landmarks, dtype=np.float32)
    if landmarks.ndim == len(leading) + 2 and landmarks.shape[-1] == 2:
        landmarks = np.concatenate([landmarks, np.zeros_like(landmarks[..., :1])], axis=-1)
    expected = "(" + ", ".join(["T"] * len(leading) + [str(NUM_LANDMARKS), "3"]) + ")"
    if landmarks.ndim != len(leading) + 2 or landmarks.shape[-2:] != (NUM_LANDMARKS, 3):
        raise ValueError(f"{name} must have shape {expected} (MediaPipe Face Mesh with iris points, pixel "
                         f"coordinates), got {landmarks.shape}")
    if not np.isfinite(landmarks).all():
        raise ValueError(f"{name} contains NaN or inf; interpolate or drop the frames where no face was found")
    return landmarks


@dataclass
class RenderSource:
    """A pipeline reference prepared for rendering at one output size (``WarpRenderer.prepare_source``)."""

    size: tuple[int, int]  # (width, height) of the output frames
    scale: tuple[float, float]  # output px per reference px, (x, y)
    identity: object  # the face's FaceIdentity: decodes codes to its landmarks
    state: RenderReference  # what ``prepare`` returned


class WarpRenderer(ConfigMixin, FeatureExtractionMixin):
    """Training-free warp renderer (parameter-free component; only its config is saved).

    Args:
        output_size: side of the face crop rendered per frame (256-512 typical); the crop is pasted back
            into a frame of the reference image's size.
        crop_scale: side of the crop box / size of the face (largest extent of the face oval).
        border_anchors: fixed anchor points per side of the crop border (background stays still there).
        ring_scales: radii of the rings of control points around the face (hair, neck), as multiples of
            the face-oval's distance from the face centre.
        ring_follow: how much each ring follows the head's motion (1 = rigidly, 0 = not at all).
        neck_follow: extra factor for ring points below the chin (the neck moves less than the head).
        map_downsample: the warp field is evaluated on a grid this many times coarser, then upsampled.
        mouth_fill: draw the mouth interior (teeth + cavity) when the lips part.
        eye_fill: draw eyeballs, moving irises and closed lids inside the eye openings.
        feather: width of the paste-back blend, as a fraction of the crop side.
    """

    # FeatureExtractionMixin: what makes diffusers save and load it with a pipeline (omnitalker/components.py)

    config_name = "renderer_config.json"

    @register_to_config
    def __init__(
        self,
        output_size: int = 512,
        crop_scale: float = 2.4,
        border_anchors: int = 5,
        ring_scales: tuple[float, ...] = (1.3, 1.7),
        ring_follow: tuple[float, ...] = (1.0, 0.5),
        neck_follow: float = 0.35,
        map_downsample: int = 2,
        mouth_fill: bool = True,
        eye_fill: bool = True,
        feather: float = 0.08,
    ):
        if not (isinstance(output_size, int) and 32 <= output_size <= 4096):
            raise ValueError(f"output_size must be an int in [32, 4096] (e.g. 256 or 512), got {output_size!r}")
        if not crop_scale > 1.0:
            raise ValueError(f"crop_scale must be > 1 (the crop must contain the face), got {crop_scale}")
        if len(ring_scales) != len(ring_follow) or not all(1.0 < s < crop_scale for s in ring_scales):
            raise ValueError(f"ring_scales {ring_scales} need one ring_follow each ({ring_follow}) and must lie "
                             f"between the face (1.0) and the crop border (crop_scale = {crop_scale})")
        if not (isinstance(border_anchors, int) and border_anchors >= 2):
            raise ValueError(f"border_anchors must be an int >= 2 (per side), got {border_anchors!r}")
        if not (isinstance(map_downsample, int) and 1 <= map_downsample <= 8):
            raise ValueError(f"map_downsample must be an int in [1, 8], got {map_downsample!r}")
        if not 0.0 <= feather < 0.5:
            raise ValueError(f"feather must be in [0, 0.5), got {feather}")

    # ---------------------------------------------------------------------------------------- config io

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        os.makedirs(save_directory, exist_ok=True)
        self.save_config(save_directory, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, subfolder: str | None = None,
                        **kwargs) -> WarpRenderer:
        config = cls.load_config(pretrained_model_name_or_path, subfolder=subfolder, **kwargs)
        return cls.from_config(config)

    # ------------------------------------------------------------------------------------ the pipeline's contract

    def prepare_source(self, reference, max_side: int | None = None) -> RenderSource:
        """The source of a pipeline reference (``OmniTalkerReference``: its frame, landmarks and face identity) at
        the output size: the frame scaled so its longer side is at most `max_side` (never up; None keeps it)."""
        height, width = reference.image.shape[:2]
        size = fit_within(width, height, max_side)
        image, landmarks, scale = reference.image, reference.landmarks, (1.0, 1.0)
        if size != (width, height):
            image = cv2.resize(reference.image, size, interpolation=cv2.INTER_AREA)
            scale = (size[0] / width, size[1] / height)
            landmarks = reference.landmarks * np.array([*scale, scale[0]], np.float32)
        return RenderSource(size, scale, reference.identity, self.prepare(image, landmarks))

    def render_codes(self, source: RenderSource, codes: np.ndarray) -> np.ndarray:
        """Visual codes (T, 58) -> frames (T, H, W, 3) uint8: the codes decoded to landmarks of the reference face
        (``decode_codes``), scaled to the output size, then warped (``render``)."""
        landmarks = decode_codes(codes, source.identity)  # T 478 3, reference px
        if source.scale != (1.0, 1.0):
            landmarks = landmarks * np.array([*source.scale, source.scale[0]], np.float32)  # z scales with x
        return self.render(source.state, landmarks)

    # ------------------------------------------------------------------------------------------ prepare

    def prepare(self, reference_image: np.ndarray, reference_landmarks: np.ndarray) -> RenderReference:
        """Precompute the crop, triangulation and textures for one reference image."""
        image = _check_image(reference_image)
        landmarks = _check_landmarks(reference_landmarks, (), "reference_landmarks")
        height, width = image.shape[:2]
        topo = mesh_topology()
        cfg = self.config

        oval = landmarks[topo.oval_loop, :2]
        center = oval.mean(0)
        if not (0 <= center[0] < width and 0 <= center[1] < height):
            raise ValueError(f"reference_landmarks put the face centre at {center.round(1).tolist()}, outside the "
                             f"{width}x{height} image: pass pixel coordinates of this image")
        face_size = float(max(np.ptp(oval[:, 0]), np.ptp(oval[:, 1])))
        if face_size < 8:
            raise ValueError(f"the face is {face_size:.1f} px wide: too small to render")
        crop_size = int(round(cfg.crop_scale * face_size))
        crop_origin = np.round(center - crop_size / 2).astype(np.float64)
        to_crop = cfg.output_size / crop_size  # crop px per frame px

        # Face axes: x along the eyes, y down the face.
        eye_axis = landmarks[topo.iris_centers[1], :2] - landmarks[topo.iris_centers[0], :2]
        eye_axis = eye_axis / max(np.hypot(*eye_axis), 1e-6)
        down_axis = np.array([-eye_axis[1], eye_axis[0]])

        # Rings around the face (hair above and beside it, neck below), as 3D points that follow the head.
        offsets = oval - center
        reach = np.hypot(offsets[:, 0], offsets[:, 1])[:, None]
        downward = offsets @ down_axis / (reach[:, 0] + 1e-6)  # cosine of the angle from straight down
        below = np.clip((downward - NECK_START) / NECK_RAMP, 0.0, 1.0)  # 1 under the chin
        half = crop_size / 2 - 1.0
        rings, follow = [], []
        for scale, base_follow in zip(cfg.ring_scales, cfg.ring_follow, strict=True):
            ring2d = center + offsets * scale
            ring2d = np.clip(ring2d, center - half * RING_INSET, center + half * RING_INSET)
            rings.append(np.concatenate([ring2d, landmarks[topo.oval_loop, 2:3]], axis=1))
            follow.append(base_follow * (1.0 - below * (1.0 - cfg.neck_follow)))
        ring_points3d = np.concatenate(rings).astype(np.float64)
        ring_follow = np.concatenate(follow)

        # Fixed anchors on the crop border (crop px).
        n = cfg.output_size - 1
        ticks = np.linspace(0, n, cfg.border_anchors + 1)[:-1]
        border = np.concatenate([
            np.stack([ticks, np.zeros_like(ticks)], 1), np.stack([np.full_like(ticks, n), ticks], 1),
            np.stack([n - ticks, np.full_like(ticks, n)], 1), np.stack([np.zeros_like(ticks), n - ticks], 1),
        ])
        border_frame = (border + 0.5) / to_crop - 0.5 + crop_origin

        num_rings = len(ring_points3d)
        # grid px -> frame px without any warp (the still background)
        grid_to_frame = cfg.map_downsample / to_crop
        offset = 0.5 * cfg.map_downsample / to_crop - 0.5
        background = np.array([grid_to_frame, 0.0, crop_origin[0] + offset, 0.0, grid_to_frame, crop_origin[1] + offset],
                              dtype=np.float32)
        source_vertices = np.concatenate([landmarks[:, :2], ring_points3d[:, :2], border_frame]).astype(np.float64)
        ring_start, border_start = NUM_LANDMARKS, NUM_LANDMARKS + num_rings

        # Outer triangles: Delaunay of oval + rings + border, minus the ones inside the face oval.
        outer_ids = np.concatenate([topo.oval_loop, np.arange(ring_start, border_start + len(border))])
        delaunay = Delaunay(source_vertices[outer_ids])
        outer = outer_ids[delaunay.simplices]
        centroids = source_vertices[outer].mean(1).astype(np.float32)
        oval_contour = oval.astype(np.float32).reshape(-1, 1, 2)
        inside = np.array([cv2.pointPolygonTest(oval_contour, tuple(map(float, c)), False) > 0 for c in centroids])
        outer = outer[~inside]

        # Face triangles + the mouth and eye openings closed with strips.
        mouth_upper, mouth_lower = split_loop(topo.mouth_loop, landmarks, eye_axis)
        eye_chains = [split_loop(loop, landmarks, eye_axis) for loop in topo.eye_loops]
        holes = [_strip_triangles(mouth_upper, mouth_lower)] + [_strip_triangles(u, lo) for u, lo in eye_chains]
        triangles = np.concatenate([outer, topo.face_triangles, *holes])

        stable_mask = np.ones(NUM_MESH_VERTICES, bool)
        stable_mask[topo.expressive[topo.expressive < NUM_MESH_VERTICES]] = False
        mouth_level = landmarks[mouth_upper[[0, -1]], :2].mean(0) @ down_axis
        stable_mask &= landmarks[:NUM_MESH_VERTICES, :2] @ down_axis < mouth_level  # the jaw moves
        stable = np.flatnonzero(stable_mask)

        # Textures, appended to the right of the image in one atlas.
        skin = _median_color(image, _polygon_mask((height, width), oval), DEFAULT_SKIN)
        textures: list[np.ndarray] = []
        eyes = mouth = None
        eye_parts = []
        if cfg.eye_fill:
            for (upper, lower), center_idx, ring in zip(eye_chains, topo.iris_centers, topo.iris_rings, strict=True):
                eye_parts.append(self._eye_textures(image, landmarks, upper, lower, center_idx, ring))
                textures += eye_parts[-1][1]
        if cfg.mouth_fill:
            mouth_frame, strips = self._mouth_textures(image, landmarks, mouth_upper, mouth_lower, skin)
            textures += strips
        atlas, offsets_xy = _pack_atlas(image, textures)
        if cfg.eye_fill:
            eye_list = []
            for k, (partial, _) in enumerate(eye_parts):
                origin = partial.pop("patch_origin")
                clean, lid, iris = (offsets_xy[3 * k + j] - origin for j in range(3))
                eye_list.append(EyeReference(**partial, clean_offset=clean, lid_offset=lid, iris_offset=iris))
            eyes = tuple(eye_list)
        if cfg.mouth_fill:
            first = 6 if cfg.eye_fill else 0
            mouth = MouthReference(upper=mouth_upper, lower=mouth_lower, frame=mouth_frame,
                                   upper_strip=offsets_xy[first], lower_strip=offsets_xy[first + 1],
                                   strip_shape=strips[0].shape[:2])

        return RenderReference(
            image=image, atlas=atlas, landmarks=landmarks, crop_origin=crop_origin, crop_size=crop_size,
            triangles=triangles.astype(np.int64), num_outer=len(outer), source_vertices=source_vertices,
            ring_points3d=ring_points3d, ring_follow=ring_follow, border_vertices=border, stable=stable,
            oval=topo.oval_loop, background=background,
            eyes=eyes, mouth=mouth, paste_mask=_feather_mask(crop_size, cfg.feather),
        )

    @staticmethod
    def _eye_textures(image, landmarks, upper, lower, center_idx, ring):
        frame = LipFrame.from_points(landmarks, upper, lower)
        width_px = frame.width
        iris_center = landmarks[center_idx, :2]
        iris_radius = float(np.mean(np.hypot(*(landmarks[ring, :2] - iris_center).T)))
        contour = np.concatenate([landmarks[upper, :2], landmarks[lower[::-1], :2]])
        lo = np.floor(np.minimum(contour.min(0), iris_center - iris_radius) - EYE_PATCH_MARGIN * width_px)
        hi = np.ceil(np.maximum(contour.max(0), iris_center + iris_radius) + EYE_PATCH_MARGIN * width_px)
        lo = np.clip(lo, 0, [image.shape[1] - 1, image.shape[0] - 1]).astype(int)
        hi = np.clip(hi, lo + 1, [image.shape[1], image.shape[0]]).astype(int)
        patch = image[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float32)
        shape = patch.shape[:2]
        aperture = _polygon_mask(shape, contour - lo)
        disc = np.zeros(shape, np.uint8)
        cv2.circle(disc, tuple(np.round((iris_center - lo) * SUBPIXEL_SCALE).astype(int)),
                   int(round(iris_radius * IRIS_MARGIN * SUBPIXEL_SCALE)), 1, -1, cv2.LINE_8, SUBPIXEL_BITS)

        # Eyeball without its iris: the visible sclera's bright half gives the colour.
        sclera_mask = aperture.astype(bool) & ~disc.astype(bool)
        sclera_pixels = patch[sclera_mask]
        if len(sclera_pixels) >= MIN_SCLERA_PIXELS:
            luma = sclera_pixels @ LUMA_WEIGHTS
            sclera = sclera_pixels[luma >= np.median(luma)].mean(0)
        else:
            sclera = DEFAULT_SCLERA * 255.0 * float(np.clip(patch.reshape(-1, 3).mean(0) @ LUMA_WEIGHTS / NOMINAL_SKIN_LUMA,
                                                             *ILLUMINATION_RANGE))
        clean = _fill_soft(patch, disc, sclera)

        # Iris texture: where the reference lids hide part of the iris, use the visible iris' colour.
        hidden = disc.astype(bool) & ~aperture.astype(bool)
        visible = disc.astype(bool) & aperture.astype(bool)
        iris_color = _median_color(patch, visible, sclera * FALLBACK_IRIS_SHADE)
        iris = patch.copy()
        iris[hidden] = iris_color

        # Closed lids: the opening (and its lash margin) inpainted from the skin around it, plus a lash
        # line where the lids meet.
        kernel = 2 * max(1, int(round(LID_MARGIN * width_px))) + 1
        opening = cv2.dilate(aperture, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel)))
        patch_u8 = np.clip(patch, 0, 255).round().astype(np.uint8)
        radius = max(2.0, LID_INPAINT_RADIUS * width_px)
        lid = cv2.inpaint(patch_u8, opening, radius, cv2.INPAINT_TELEA).astype(np.float32)
        skin = _median_color(lid, opening, sclera * FALLBACK_LID_SHADE)
        lash = np.round((landmarks[lower, :2] - lo) * SUBPIXEL_SCALE).astype(np.int32)
        thickness = max(1, int(round(LASH_THICKNESS * width_px)))
        cv2.polylines(lid, [lash], False, (skin * LASH_DARKNESS).tolist(), thickness, cv2.LINE_AA, SUBPIXEL_BITS)

        partial = dict(upper=upper, lower=lower, iris_center=center_idx, iris_ring=ring, frame=frame,
                       iris_center_px=iris_center.astype(np.float64), iris_radius=iris_radius, patch_origin=lo.astype(np.float64))
        to_uint8 = [np.clip(t, 0, 255).round().astype(np.uint8) for t in (clean, lid, iris)]
        return partial, to_uint8

    @staticmethod
    def _mouth_textures(image, landmarks, upper, lower, skin):
        """Two strips (rows = distance from the lip, cols = u along the mouth) hanging from each lip."""
        frame = LipFrame.from_points(landmarks, upper, lower)
        width_px = frame.width
        cols = int(np.ceil(width_px * MOUTH_OVERSAMPLE)) + 1
        rows = int(np.ceil(MOUTH_STRIP_DEPTH * width_px * MOUTH_OVERSAMPLE)) + 1
        u = np.linspace(0.0, 1.0, cols)[None, :].repeat(rows, 0)
        depth = (np.arange(rows, dtype=np.float64) / MOUTH_OVERSAMPLE)[:, None].repeat(cols, 1)  # ref px
        v_up, v_lo = np.interp(u, frame.upper_u, frame.upper_v), np.interp(u, frame.lower_u, frame.lower_v)
        half_gap = np.maximum(v_lo - v_up, 0.0) / 2
        reference_open = frame.gap() / width_px > MOUTH_OPEN_RATIO

        illumination = float(np.clip(skin @ LUMA_WEIGHTS / NOMINAL_SKIN_LUMA, *ILLUMINATION_RANGE))
        cavity = skin * CAVITY_TINT
        teeth = TEETH_COLOR * 255.0 * illumination
        # Teeth stay inside the middle of the mouth and show faint gaps between them.
        span = np.clip(np.minimum(u - TEETH_SPAN[0], TEETH_SPAN[1] - u) / TEETH_SPAN_FADE, 0.0, 1.0)
        phase = np.pi * TEETH_COUNT * (u - TEETH_SPAN[0]) / np.ptp(TEETH_SPAN)
        gaps = 1.0 - TEETH_GAP_SHADE * np.cos(phase) ** TEETH_GAP_SHARPNESS
        strips = []
        for v_lip, sign, teeth_height in ((v_up, 1.0, UPPER_TEETH_HEIGHT), (v_lo, -1.0, LOWER_TEETH_HEIGHT)):
            shade = 1.0 - CAVITY_DEPTH_SHADE * depth / (MOUTH_STRIP_DEPTH * width_px)
            texture = cavity[None, None, :] * shade[..., None]
            if not reference_open:
                # shorter towards the corners
                tooth_edge = teeth_height * width_px * (1.0 - CORNER_TEETH_SHORTENING * (1.0 - span))
                on_tooth = np.clip((tooth_edge - depth) * MOUTH_OVERSAMPLE, 0.0, 1.0) * span
                tooth_shade = (1.0 - TOOTH_EDGE_SHADE * depth / np.maximum(tooth_edge, 1e-6)) * gaps
                texture = texture + on_tooth[..., None] * (teeth[None, None, :] * tooth_shade[..., None] - texture)
            else:
                # The reference's own interior near this lip (its half of the opening), cavity further in.
                xs, ys = frame.to_pixels(u, v_lip + sign * depth)
                own = cv2.remap(image, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE).astype(np.float64)
                weight = np.clip((half_gap - depth) * MOUTH_OVERSAMPLE, 0.0, 1.0)[..., None]
                texture = texture + weight * (own - texture)
            strips.append(np.clip(texture, 0, 255).round().astype(np.uint8))
        return frame, strips

    # ------------------------------------------------------------------------------------------- render

    def render(self, reference: RenderReference, landmarks: np.ndarray,
               progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """Driven landmarks (T, 478, 3) in reference-image px -> frames (T, H, W, 3) uint8.

        `progress(done, total)` is called after each frame if given.
        """
        if not isinstance(reference, RenderReference):
            raise ValueError("reference must come from WarpRenderer.prepare(image, landmarks)")
        landmarks = _check_landmarks(landmarks, (0,), "landmarks")
        frames = np.empty((len(landmarks), reference.height, reference.width, 3), np.uint8)
        for t, points in enumerate(landmarks):
            frames[t] = self._render(reference, points)
            if progress is not None:
                progress(t + 1, len(landmarks))
        return frames

    def render_frame(self, reference: RenderReference, landmarks_478: np.ndarray) -> np.ndarray:
        """One frame: driven landmarks (478, 3) -> (H, W, 3) uint8."""
        if not isinstance(reference, RenderReference):
            raise ValueError("reference must come from WarpRenderer.prepare(image, landmarks)")
        return self._render(reference, _check_landmarks(landmarks_478, (), "landmarks_478"))

    def _render(self, ref: RenderReference, points: np.ndarray) -> np.ndarray:
        crop = self.render_crop(ref, points)
        return _paste(ref, crop)

    def driven_vertices(self, ref: RenderReference, points: np.ndarray) -> np.ndarray:
        """Crop-px positions (V, 2) of every warp vertex (landmarks, rings, border) for driven landmarks."""
        to_crop = self.config.output_size / ref.crop_size
        points = points.astype(np.float64)
        # Rings follow the head's 3D similarity transform (fitted on the rigid landmarks).
        scale, rotation, mean_ref, mean_drv = _similarity_fit(ref.landmarks[ref.stable].astype(np.float64),
                                                              points[ref.stable])
        moved = scale * (ref.ring_points3d - mean_ref) @ rotation.T + mean_drv
        # ... plus part of the non-rigid motion of the face outline next to them (the jaw drags the neck).
        oval_rigid = scale * (ref.landmarks[ref.oval].astype(np.float64) - mean_ref) @ rotation.T + mean_drv
        residual = np.tile(points[ref.oval, :2] - oval_rigid[:, :2], (len(ref.ring_follow) // len(ref.oval), 1))
        moved = moved[:, :2] + RING_RESIDUAL_SHARE * residual
        rings = ref.ring_points3d[:, :2] + ref.ring_follow[:, None] * (moved - ref.ring_points3d[:, :2])
        driven_frame = np.concatenate([points[:, :2], rings])
        driven = np.concatenate([(driven_frame - ref.crop_origin + 0.5) * to_crop - 0.5, ref.border_vertices])

        return driven

    def render_crop(self, ref: RenderReference, points: np.ndarray) -> np.ndarray:
        """The face crop (output_size, output_size, 3) uint8 for driven landmarks (478, 3) in frame px."""
        cfg = self.config
        size, down = cfg.output_size, cfg.map_downsample
        points = points.astype(np.float64)
        driven = self.driven_vertices(ref, points)

        # Draw order: background first, then face triangles far to near.
        tris = ref.triangles
        depth = points[tris[ref.num_outer:], 2].mean(1)
        order = np.concatenate([np.arange(ref.num_outer), ref.num_outer + np.argsort(-depth, kind="stable")])

        grid = (size + down - 1) // down
        driven_grid = (driven + 0.5) / down - 0.5
        coef = np.concatenate([_affine_coefficients(driven_grid[tris], ref.source_vertices[tris]),
                               ref.background[None]])  # f+1 6
        ids = np.full((grid, grid), len(tris), np.int32)  # uncovered pixels (folds) keep the background
        fixed = np.round(driven_grid * SUBPIXEL_SCALE).astype(np.int32)[tris]  # f 3 2
        for f in order.tolist():
            cv2.fillConvexPoly(ids, fixed[f], f, cv2.LINE_8, SUBPIXEL_BITS)
        gy, gx = np.mgrid[0:grid, 0:grid].astype(np.float32)
        c = coef[ids]  # g g 6
        map_x = c[..., 0] * gx + c[..., 1] * gy + c[..., 2]
        map_y = c[..., 3] * gx + c[..., 4] * gy + c[..., 5]
        if down > 1:
            map_x = cv2.resize(map_x, (size, size), interpolation=cv2.INTER_LINEAR)
            map_y = cv2.resize(map_y, (size, size), interpolation=cv2.INTER_LINEAR)
        np.clip(map_x, 0, ref.width - 1, out=map_x)  # never sample the textures beside the image
        np.clip(map_y, 0, ref.height - 1, out=map_y)

        driven_crop = driven[:NUM_LANDMARKS]
        if ref.mouth is not None:
            _mouth_map(ref.mouth, driven_crop, map_x, map_y)
        if ref.eyes is not None:
            for eye in ref.eyes:
                _eye_map(eye, driven_crop, map_x, map_y)
        return cv2.remap(ref.atlas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# --------------------------------------------------------------------------------------------------
# Per-frame pieces


def _affine_coefficients(driven: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Per triangle, (a, b, c, d, e, f) with source = (a x + b y + c, d x + e y + f) for driven (x, y).

    driven, source: (F, 3, 2). Collapsed triangles map everything to their source centroid.
    """
    d0, d1, d2 = driven[:, 0], driven[:, 1], driven[:, 2]
    s0, s1, s2 = source[:, 0], source[:, 1], source[:, 2]
    a, b = d1 - d0, d2 - d0  # f 2
    det = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    ok = np.abs(det) > DEGENERATE_AREA
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # inverse of the 2x2 matrix [a b] (columns)
    i00, i01 = b[:, 1] * inv_det, -b[:, 0] * inv_det
    i10, i11 = -a[:, 1] * inv_det, a[:, 0] * inv_det
    sa, sb = s1 - s0, s2 - s0
    j00 = sa[:, 0] * i00 + sb[:, 0] * i10
    j01 = sa[:, 0] * i01 + sb[:, 0] * i11
    j10 = sa[:, 1] * i00 + sb[:, 1] * i10
    j11 = sa[:, 1] * i01 + sb[:, 1] * i11
    base = np.where(ok[:, None], s0, source.mean(1))
    c0 = base[:, 0] - np.where(ok, j00 * d0[:, 0] + j01 * d0[:, 1], 0.0)
    c1 = base[:, 1] - np.where(ok, j10 * d0[:, 0] + j11 * d0[:, 1], 0.0)
    return np.stack([j00, j01, c0, j10, j11, c1], axis=1).astype(np.float32)


def _region_grid(points: np.ndarray, size: int, margin: float):
    lo = np.maximum(np.floor(points.min(0) - margin), 0).astype(int)
    hi = np.minimum(np.ceil(points.max(0) + margin) + 1, size).astype(int)
    if (hi <= lo).any():
        return None
    ys, xs = np.mgrid[lo[1]:hi[1], lo[0]:hi[0]].astype(np.float64)
    return (slice(lo[1], hi[1]), slice(lo[0], hi[0])), xs, ys


def _mouth_map(mouth: MouthReference, driven: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> None:
    """Point the driven mouth opening's pixels at the mouth strips in the atlas (in place)."""
    frame = LipFrame.from_points(driven, mouth.upper, mouth.lower)
    contour = driven[np.concatenate([mouth.upper, mouth.lower]), :2]
    region = _region_grid(contour, map_x.shape[0], 1.0)
    if region is None:
        return
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    inside = (u > 0) & (u < 1) & (v > v_up) & (v < v_lo)
    if not inside.any():
        return
    rows, cols = mouth.strip_shape
    to_texels = mouth.frame.width / frame.width * MOUTH_OVERSAMPLE  # driven px -> strip rows
    d_up, d_lo = v - v_up, v_lo - v
    use_upper = d_up <= d_lo
    row = np.clip(np.where(use_upper, d_up, d_lo) * to_texels, 0, rows - 1)
    col = np.clip(u, 0, 1) * (cols - 1)
    strip = np.where(use_upper[..., None], mouth.upper_strip, mouth.lower_strip)  # h w 2
    map_x[window] = np.where(inside, strip[..., 0] + col, map_x[window])
    map_y[window] = np.where(inside, strip[..., 1] + row, map_y[window])


def _eye_map(eye: EyeReference, driven: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> None:
    """Eyeball + iris inside the driven opening, closed lid over the rest of the reference opening (in place)."""
    frame = LipFrame.from_points(driven, eye.upper, eye.lower)
    ref = eye.frame
    to_ref = ref.width / frame.width  # driven px -> reference px
    socket_up = np.interp(np.linspace(0, 1, 9), ref.upper_u, ref.upper_v).min() / to_ref
    socket_lo = np.interp(np.linspace(0, 1, 9), ref.lower_u, ref.lower_v).max() / to_ref
    contour = driven[np.concatenate([eye.upper, eye.lower]), :2]
    extent = np.concatenate([contour, np.stack(frame.to_pixels(np.array([0.0, 1.0, 0.5, 0.5]),
                                                               np.array([0.0, 0.0, socket_up, socket_lo])), 1)])
    region = _region_grid(extent, map_x.shape[0], 1.0)
    if region is None:
        return
    window, xs, ys = region
    u, v, v_up, v_lo = frame.coords(xs, ys)
    within = (u > 0) & (u < 1)
    opening = within & (v > v_up) & (v < v_lo) & (v_lo - v_up > MIN_EYE_OPENING * frame.width)
    socket = within & (v > np.interp(u, ref.upper_u, ref.upper_v) / to_ref) & (v < np.interp(u, ref.lower_u, ref.lower_v) / to_ref)
    covered = socket & ~opening
    if not (opening.any() or covered.any()):
        return
    # Eye-corner similarity into the reference, then into the eyeball / lid textures.
    ref_x, ref_y = ref.to_pixels(u, v * to_ref)
    iris_drv = driven[eye.iris_center, :2]
    iris_radius_drv = float(np.mean(np.hypot(*(driven[eye.iris_ring, :2] - iris_drv).T)))
    dx, dy = xs - iris_drv[0], ys - iris_drv[1]
    on_iris = opening & (dx * dx + dy * dy < (iris_radius_drv * IRIS_MARGIN) ** 2)
    iris_scale = eye.iris_radius / max(iris_radius_drv, 1e-6)
    iris_x, iris_y = eye.iris_center_px[0] + dx * iris_scale, eye.iris_center_px[1] + dy * iris_scale
    src_x = np.where(on_iris, iris_x + eye.iris_offset[0],
                     np.where(opening, ref_x + eye.clean_offset[0], ref_x + eye.lid_offset[0]))
    src_y = np.where(on_iris, iris_y + eye.iris_offset[1],
                     np.where(opening, ref_y + eye.clean_offset[1], ref_y + eye.lid_offset[1]))
    paint = opening | covered
    map_x[window] = np.where(paint, src_x, map_x[window])
    map_y[window] = np.where(paint, src_y, map_y[window])


def _fill_soft(patch: np.ndarray, mask: np.ndarray, color: np.ndarray) -> np.ndarray:
    """Paint `color` over `mask` with a 1-2 px soft edge."""
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (3, 3), 0)[..., None]
    alpha = np.maximum(alpha, mask[..., None].astype(np.float32))
    return patch * (1 - alpha) + color[None, None, :] * alpha


def _pack_atlas(image: np.ndarray, textures: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Stack textures (each with a replicated border) in a column right of the image.

    Returns the atlas and each texture's (x, y) atlas position of its texel (0, 0)."""
    if not textures:
        return image, []
    padded = [cv2.copyMakeBorder(t, ATLAS_PAD, ATLAS_PAD, ATLAS_PAD, ATLAS_PAD, cv2.BORDER_REPLICATE) for t in textures]
    column_width = max(p.shape[1] for p in padded)
    height = max(image.shape[0], sum(p.shape[0] for p in padded))
    atlas = np.zeros((height, image.shape[1] + column_width, 3), np.uint8)
    atlas[: image.shape[0], : image.shape[1]] = image
    offsets, y = [], 0
    for p in padded:
        atlas[y: y + p.shape[0], image.shape[1]: image.shape[1] + p.shape[1]] = p
        offsets.append(np.array([image.shape[1] + ATLAS_PAD, y + ATLAS_PAD], dtype=np.float64))
        y += p.shape[0]
    return atlas, offsets


def _feather_mask(size: int, feather: float) -> np.ndarray:
    ramp_px = max(feather * size, 1.0)
    edge = np.minimum(np.arange(size), np.arange(size)[::-1]).astype(np.float32) + 0.5
    ramp = np.clip(edge / ramp_px, 0.0, 1.0)
    return np.minimum(ramp[:, None], ramp[None, :])


def _paste(ref: RenderReference, crop: np.ndarray) -> np.ndarray:
    """Resize the crop back to its box in the frame and blend it in with the feathered mask."""
    size = ref.crop_size
    interpolation = cv2.INTER_AREA if size < crop.shape[0] else cv2.INTER_LINEAR
    patch = cv2.resize(crop, (size, size), interpolation=interpolation)
    frame = ref.image.copy()
    x0, y0 = int(ref.crop_origin[0]), int(ref.crop_origin[1])
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + size, ref.width), min(y0 + size, ref.height)
    if fx1 <= fx0 or fy1 <= fy0:
        return frame
    window = (slice(fy0, fy1), slice(fx0, fx1))
    local = (slice(fy0 - y0, fy1 - y0), slice(fx0 - x0, fx1 - x0))
    weight = ref.paste_mask[local]
    frame[window] = cv2.blendLinear(patch[local], frame[window], weight, 1.0 - weight)
    return frame
