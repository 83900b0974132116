"""Face-mesh geometry shared by the warp renderer's parts: MediaPipe's topology (``mesh_topology``, from
omnitalker/frontend/face/topology.py), contour openings in their own (u, v) frame, and small fitting helpers.

    topo = mesh_topology()                                   # cached; needs mediapipe
    upper, lower = split_loop(topo.mouth_loop, landmarks, eye_axis)
    frame = LipFrame.from_points(landmarks, upper, lower)   # u along the opening, v across it (px)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from omnitalker.frontend.face.template import NUM_LANDMARKS, NUM_MESH_VERTICES  # noqa: F401 (re-exported)
from omnitalker.frontend.face.topology import NUM_FACE_TRIANGLES, MeshTopology, mesh_topology  # noqa: F401 (re-exported)

SUBPIXEL_BITS = 4  # cv2 fill functions take fixed-point vertices: 1/16 px precision
SUBPIXEL_SCALE = 1 << SUBPIXEL_BITS
GAP_SPAN, GAP_SAMPLES = (0.25, 0.75), 9  # an opening's gap is averaged over this part of its width
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])
NOMINAL_LUMA = 170.0  # skin luminance at which drawn colours (teeth, a white of the eye) are used unscaled
ILLUMINATION_RANGE = (0.45, 1.1)
# (max - min) / luminance of a median skin colour at and above which drawn colours keep their full chroma: skin in
# the shared colour photos and clips measured 0.2-0.93, a black-and-white photo 0, a faintly tinted one 0.16.
TYPICAL_SKIN_CHROMA = 0.2


def in_photo_colours(rgb: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """A colour the renderer draws (RGB, any shape (..., 3)) with its chroma scaled to how colourful the photo's skin
    is: a red-tinted mouth interior drawn into a black-and-white photo stays grey there."""
    skin = np.asarray(skin, np.float64)
    skin_chroma = float(np.ptp(skin)) / max(float(skin @ LUMA_WEIGHTS), 1.0)
    share = min(skin_chroma / TYPICAL_SKIN_CHROMA, 1.0)
    rgb = np.asarray(rgb, np.float64)
    luma = (rgb @ LUMA_WEIGHTS)[..., None]
    return luma + share * (rgb - luma)


def illumination(rgb: np.ndarray) -> float:
    """How lit a face is, from a mean or median RGB colour: a factor for colours the renderer draws itself."""
    return float(np.clip(np.asarray(rgb, np.float64) @ LUMA_WEIGHTS / NOMINAL_LUMA, *ILLUMINATION_RANGE))


# --------------------------------------------------------------------------------------------------
# Mesh topology, derived once from MediaPipe's own connection lists (no hard-coded indices).


def split_loop(loop: np.ndarray, points: np.ndarray, axis: np.ndarray,
               canonical: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a closed contour at its two extremes along `axis` into (upper, lower) chains, both running
    from the first corner to the second (corners included). "Upper" = smaller coordinate along the normal, or,
    with `canonical` (the face template's points, y down, lips and lids apart), the chain that is upper there:
    on lips or lids pressed together the two chains lie on one line and their order in `points` is noise (a
    closed reference mouth split upside down left every opening of it undrawn)."""
    along = points[loop, :2] @ axis
    first, second = int(np.argmin(along)), int(np.argmax(along))
    rolled = np.roll(loop, -first)
    cut = (second - first) % len(loop)
    chain_a = rolled[: cut + 1]
    chain_b = np.concatenate([rolled[cut:], rolled[:1]])[::-1]
    if canonical is not None:
        swap = canonical[chain_a, 1].mean() > canonical[chain_b, 1].mean()
    else:
        normal = np.array([-axis[1], axis[0]])
        swap = points[chain_a, :2].mean(0) @ normal > points[chain_b, :2].mean(0) @ normal
    if swap:
        chain_a, chain_b = chain_b, chain_a
    return chain_a, chain_b


def strip_triangles(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
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


def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares s, R, mean_source, mean_target with target ~ s R (source - mean_source) + mean_target (Umeyama)."""
    mean_s, mean_t = source.mean(0), target.mean(0)
    cs, ct = source - mean_s, target - mean_t
    u, sing, vt = np.linalg.svd(ct.T @ cs / len(source))
    flip = np.ones(len(sing))
    flip[-1] = np.sign(np.linalg.det(u @ vt)) or 1.0
    rotation = (u * flip) @ vt
    scale = float((sing * flip).sum() / max((cs**2).sum() / len(source), 1e-12))
    return scale, rotation, mean_s, mean_t


@dataclass(frozen=True)
class Similarity:
    """A 3D similarity transform, x -> scale R (x - mean_source) + mean_target: the head's rigid motion."""

    scale: float
    rotation: np.ndarray  # (3, 3)
    mean_source: np.ndarray  # (3,)
    mean_target: np.ndarray  # (3,)

    @classmethod
    def fit(cls, source: np.ndarray, target: np.ndarray) -> Similarity:
        return cls(*similarity_fit(source, target))

    def apply(self, points: np.ndarray) -> np.ndarray:
        return self.scale * (points - self.mean_source) @ self.rotation.T + self.mean_target

    def then_scaled(self, factor: float, shift: np.ndarray) -> Similarity:
        """This transform followed by x -> factor x + shift (e.g. frame px -> crop px)."""
        return Similarity(self.scale * factor, self.rotation, self.mean_source, factor * self.mean_target + shift)


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


def farthest_point_picks(states: np.ndarray, first: int, count: int) -> list[int]:
    """Indices into `states` (N, S): `first`, then again and again the state farthest from all those picked (greedy
    farthest-point sampling, so the picks span the states' range), at most `count`; only distinct states."""
    picked = [first]
    distance = np.linalg.norm(states - states[first], axis=1)
    while len(picked) < min(count, len(states)):
        best = int(np.argmax(distance))
        if distance[best] <= 0:
            break
        picked.append(best)
        distance = np.minimum(distance, np.linalg.norm(states - states[best], axis=1))
    return picked


def median_color(image: np.ndarray, mask: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    pixels = image[mask.astype(bool)]
    return np.median(pixels, axis=0).astype(np.float32) if len(pixels) else fallback.astype(np.float32)


def polygon_mask(shape: tuple[int, int], polygon: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * SUBPIXEL_SCALE).astype(np.int32)], 1, cv2.LINE_8, SUBPIXEL_BITS)
    return mask
