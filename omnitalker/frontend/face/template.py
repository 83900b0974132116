"""The canonical face template: landmark index sets and the shipped canonical mesh.

MediaPipe Face Mesh (with iris refinement) returns 478 points per face: 468 mesh vertices and
2 x 5 iris points (468-472: the subject's right iris, centre first; 473-477: the left iris).
This module names the subsets the visual codes use and loads ``assets/face_template.npz``, which
``scripts/make_face_template.py`` builds (run ``python scripts/make_face_template.py`` to rebuild).

Canonical space (shared by every identity): x to the subject's left (image right for a frontal
face), y down, z away from the camera (MediaPipe's axes, right-handed); the origin is the centroid of
the stable points and one unit is the template's distance between the outer eye corners ("face
size"). The template is exactly left/right symmetric (x -> -x with ``mirror_index``) and frontal (the
face-oval ring lies in a plane facing the camera).

``face_template.npz`` holds:
  vertices (478, 3) float32       canonical neutral face in the units above
  mirror_index (478,) int64       left/right partner of each point (midline points map to themselves)
  edges (E, 2) int64              MediaPipe's triangulation edges (468-vertex mesh, no edges across
                                  the mouth or eye openings)
  stable_indices (S,) int64       rigid points used to fit the head pose (forehead, nose bridge,
                                  eye corners, temples, cheekbones)
  semantic_indices (16,) int64    the expression points, in EXPRESSION_POINTS order
  propagation_weights (478, 16)   float32 linear map from semantic-point offsets to offsets of every
                                  mesh vertex: one-hot at the points themselves, elsewhere a Gaussian
                                  of the geodesic distance on the mesh, normalised to sum to at most 1
                                  (no overshoot); 0 on stable and iris points
  propagation_sigma (16,) float32 the Gaussian width used for each semantic point (face-size units)
  source (str)                    how the vertices were made
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 478  # MediaPipe Face Mesh with refine_landmarks=True
NUM_MESH_VERTICES = 468  # without the 10 iris points
TEMPLATE_PATH = Path(__file__).parent / "assets" / "face_template.npz"

# Iris points: centre first, then 4 points on the iris rim.
RIGHT_IRIS = (468, 469, 470, 471, 472)  # subject's right eye (image left for a frontal face)
LEFT_IRIS = (473, 474, 475, 476, 477)

# Eye openings: (outer corner, inner corner, upper-lid middle, lower-lid middle).
RIGHT_EYE = (33, 133, 159, 145)
LEFT_EYE = (263, 362, 386, 374)

# Outer eye corners: their distance in the template defines one canonical unit.
FACE_SIZE_POINTS = (33, 263)

# The 16 expression points of the visual code, each (name, MediaPipe index).
# "left"/"right" are the subject's. Every point contributes an (x, y, z) canonical offset.
EXPRESSION_POINTS: tuple[tuple[str, int], ...] = (
    ("upper_lip_outer", 0),  # top of the upper lip (vermilion border, midline)
    ("upper_lip_inner", 13),  # inner edge of the upper lip (midline)
    ("lower_lip_inner", 14),  # inner edge of the lower lip (midline)
    ("lower_lip_outer", 17),  # bottom of the lower lip (midline)
    ("mouth_corner_right", 61),
    ("mouth_corner_left", 291),
    ("chin", 152),  # bottom of the chin: follows the jaw opening
    ("nose_tip", 1),  # non-rigid nose motion (sneer, upper-lip raise) that the pose cannot explain
    ("upper_lid_right", RIGHT_EYE[2]),
    ("lower_lid_right", RIGHT_EYE[3]),
    ("upper_lid_left", LEFT_EYE[2]),
    ("lower_lid_left", LEFT_EYE[3]),
    ("brow_inner_right", 107),
    ("brow_outer_right", 70),
    ("brow_inner_left", 336),
    ("brow_outer_left", 300),
)

# The inner half of the lips as four chains from mouth corner to mouth corner through the midline (two of MediaPipe's
# lip rings on each lip: the inner edge and the ring just outside it), upper lip then lower lip.
# fmt: off
LIP_CHAINS: tuple[tuple[int, ...], ...] = (
    (62, 183, 42, 41, 38, 12, 268, 271, 272, 407, 292),
    (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308),
    (62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292),
    (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308),
)
# fmt: on

# Rigid points for the pose fit: forehead, nose bridge, eye corners, temples, upper cheekbones.
# No lips, jaw, lids or brows (they move with expressions).
# fmt: off
STABLE_POINTS: tuple[int, ...] = (
    10, 151, 9, 8, 109, 338, 67, 297, 103, 332,  # forehead
    168, 6, 197, 195, 5,  # nose bridge and dorsum
    33, 133, 263, 362, 130, 359, 243, 463,  # eye corners
    21, 251, 54, 284, 162, 389, 127, 356,  # temples
    116, 345, 117, 346, 118, 347, 227, 447, 234, 454,  # cheekbones and face sides at eye level
)
# fmt: on

# Gaussian width (face-size units) of each expression point's influence when propagating offsets.
PROPAGATION_SIGMA: dict[str, float] = {
    "upper_lip_outer": 0.16,
    "upper_lip_inner": 0.16,
    "lower_lip_inner": 0.16,
    "lower_lip_outer": 0.18,
    # (0.25 let the cheeks follow the corners (round trip on real clips: cheeks 0.019 -> 0.013 inter-ocular), but
    # MediaPipe then read the drawn mouths as opening less: mouth-opening gain 0.86 -> 0.81 over nine clips)
    "mouth_corner_right": 0.16,
    "mouth_corner_left": 0.16,
    "chin": 0.45,
    "nose_tip": 0.2,
    # the whole lid and the skin ring above and below it follow the lid's middle point (at 0.09 the lash band
    # above a closing lid stretched instead of moving down: self-reenacted blinks read at 0.83 of their depth)
    "upper_lid_right": 0.12,
    "lower_lid_right": 0.12,
    "upper_lid_left": 0.12,
    "lower_lid_left": 0.12,
    "brow_inner_right": 0.10,
    "brow_outer_right": 0.10,
    "brow_inner_left": 0.10,
    "brow_outer_left": 0.10,
}
# Along its own brow (MediaPipe's eyebrow outline), a brow point reaches this far, and no other point (the lids below)
# reaches the brow: it moves as one piece between its two tracked ends. With the narrow width above, the middle of
# the brow followed its ends by 0.1-0.5 and a lowered brow was drawn still arched (real clips: brow-to-lid distance
# varying 3x less than tracked).
BROW_ALONG_SIGMA = 0.3


@dataclass(frozen=True)
class FaceTemplate:
    """The canonical face template (see the module docstring for every field)."""

    vertices: np.ndarray  # (478, 3) float32
    mirror_index: np.ndarray  # (478,)
    edges: np.ndarray  # (E, 2)
    stable_indices: np.ndarray  # (S,)
    semantic_indices: np.ndarray  # (16,)
    propagation_weights: np.ndarray  # (478, 16) float32
    propagation_sigma: np.ndarray  # (16,) float32
    source: str

    @property
    def semantic_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in EXPRESSION_POINTS)


@functools.lru_cache(maxsize=1)
def load_face_template(path: str | Path = TEMPLATE_PATH) -> FaceTemplate:
    """Load the shipped canonical template (cached)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"face template {path} is missing; rebuild it with `python scripts/make_face_template.py`"
        )
    with np.load(path, allow_pickle=False) as data:
        template = FaceTemplate(
            vertices=data["vertices"].astype(np.float32),
            mirror_index=data["mirror_index"].astype(np.int64),
            edges=data["edges"].astype(np.int64),
            stable_indices=data["stable_indices"].astype(np.int64),
            semantic_indices=data["semantic_indices"].astype(np.int64),
            propagation_weights=data["propagation_weights"].astype(np.float32),
            propagation_sigma=data["propagation_sigma"].astype(np.float32),
            source=str(data["source"]),
        )
    expected = np.array([index for _, index in EXPRESSION_POINTS])
    if template.vertices.shape != (NUM_LANDMARKS, 3) or not np.array_equal(
        template.semantic_indices, expected
    ):
        raise ValueError(f"face template {path} does not match this version of omnitalker; rebuild it")
    return template
