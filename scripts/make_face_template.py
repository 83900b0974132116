"""Build omnitalker/frontend/face/assets/face_template.npz, the canonical face template of the visual codes.

    python scripts/make_face_template.py [--out omnitalker/frontend/face/assets/face_template.npz]

MediaPipe's canonical_face_model.obj is not part of the mediapipe 0.10.21 wheel, so the template is
measured instead, deterministically, from the public-domain astronaut photo (skimage.data.astronaut):

1. Face Mesh (478 points, iris refinement) on the photo and on its mirror image.
2. Left/right partners: the mesh of the mirrored photo, mirrored back, lands each point on its
   partner's position; a linear assignment recovers the partner of every point.
3. The two measurements are averaged, then made symmetric by averaging with their own mirror image
   (x negated, partners swapped) after a rigid alignment.
4. Frontal frame: x along the left/right symmetry direction (towards the subject's left), z along
   the normal of the face-oval ring (away from the camera), y = z cross x (down).
5. Origin at the centroid of the stable points, unit = distance between the outer eye corners.
6. Propagation weights: Gaussian of the geodesic distance on MediaPipe's triangulation from each
   expression point, normalised to sum to 1 where the Gaussians overlap (so a vertex blends its
   nearby points without overshoot), one-hot at the expression points, zero on stable and iris
   points. Geodesic distance keeps the upper and lower lips/lids apart (no mesh edges cross the
   mouth or eye openings). A brow's outline is moved by its own two points only, reaching
   further along it (BROW_ALONG_SIGMA), so the whole brow moves between them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from omnitalker.frontend.face.landmarks import silence_native_logs  # noqa: E402
from omnitalker.frontend.face.template import (
    BROW_ALONG_SIGMA,
    EXPRESSION_POINTS,
    FACE_SIZE_POINTS,
    LEFT_IRIS,
    NUM_LANDMARKS,
    NUM_MESH_VERTICES,
    PROPAGATION_SIGMA,
    RIGHT_IRIS,
    STABLE_POINTS,
    TEMPLATE_PATH,
)

NOSE_TIP = 1
MIRROR_X = np.diag([-1.0, 1.0, 1.0])


def detect_landmarks(image: np.ndarray) -> np.ndarray:
    """(478, 3) landmarks in pixels (z scaled by the image width) of the single face in `image`."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    from mediapipe.python.solutions.face_mesh import FaceMesh

    height, width = image.shape[:2]
    with FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True) as mesh:
        result = mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        raise RuntimeError("Face Mesh found no face in the template photo")
    points = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
    return points * np.array([width, height, width])


def rigid_align(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotate + translate `source` (N, 3) onto `target` (N, 3) in the least-squares sense (Kabsch)."""
    src_mean, tgt_mean = source.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((target - tgt_mean).T @ (source - src_mean))
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ fix @ vt
    return (source - src_mean) @ rotation.T + tgt_mean


def find_mirror_index(points: np.ndarray, mirrored_photo_points: np.ndarray, width: int) -> np.ndarray:
    """Partner of every point: the mirrored photo's point i sits where the photo's partner(i) is."""
    mirrored_back = points * np.array([-1.0, 1.0, 1.0]) + np.array([width, 0.0, 0.0])
    cost = np.linalg.norm(mirrored_photo_points[:, None, :2] - mirrored_back[None, :, :2], axis=-1)
    _, partner = linear_sum_assignment(cost)
    # A partner map must be an involution; keep only pairs that agree both ways.
    consistent = partner[partner] == np.arange(len(partner))
    partner = np.where(consistent, partner, np.arange(len(partner)))
    if consistent.mean() < 0.95 or partner[RIGHT_IRIS[0]] != LEFT_IRIS[0]:
        raise RuntimeError(f"left/right pairing failed ({consistent.mean():.1%} consistent)")
    return partner


def frontal_frame(shape: np.ndarray, mirror_index: np.ndarray) -> np.ndarray:
    """Rows x, y, z of the frontal frame of a symmetric `shape` (see the module docstring)."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_FACE_OVAL

    paired = np.flatnonzero(mirror_index != np.arange(len(mirror_index)))
    across = shape[paired] - shape[mirror_index[paired]]
    across *= np.sign(across @ (shape[FACE_SIZE_POINTS[1]] - shape[FACE_SIZE_POINTS[0]]))[:, None]
    x_axis = np.linalg.svd(across, full_matrices=False)[2][0]
    x_axis *= np.sign(x_axis @ (shape[FACE_SIZE_POINTS[1]] - shape[FACE_SIZE_POINTS[0]]))
    oval = shape[sorted({i for edge in FACEMESH_FACE_OVAL for i in edge})]
    normal = np.linalg.svd(oval - oval.mean(0), full_matrices=False)[2][-1]
    z_axis = normal - (normal @ x_axis) * x_axis
    z_axis /= np.linalg.norm(z_axis)
    if (shape[NOSE_TIP] - oval.mean(0)) @ z_axis > 0:  # the nose points towards the camera (-z)
        z_axis = -z_axis
    y_axis = np.cross(z_axis, x_axis)
    return np.stack([x_axis, y_axis, z_axis])


def mesh_edges() -> np.ndarray:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    return np.array(sorted({tuple(sorted(edge)) for edge in FACEMESH_TESSELATION}), dtype=np.int64)


def brow_outlines() -> list[np.ndarray]:
    """The points of MediaPipe's right and left eyebrow outlines."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LEFT_EYEBROW, FACEMESH_RIGHT_EYEBROW

    return [np.unique(np.array(sorted(brow))) for brow in (FACEMESH_RIGHT_EYEBROW, FACEMESH_LEFT_EYEBROW)]


def propagation_weights(vertices: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(478, 16) weights from expression-point offsets to every vertex offset, and the widths used."""
    semantic = np.array([index for _, index in EXPRESSION_POINTS])
    sigma = np.array([PROPAGATION_SIGMA[name] for name, _ in EXPRESSION_POINTS])
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    graph = coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(NUM_MESH_VERTICES, NUM_MESH_VERTICES))
    geodesic = dijkstra(graph, directed=False, indices=semantic).T  # v s
    kernel = np.exp(-0.5 * (geodesic / sigma) ** 2)  # v s
    for outline in brow_outlines():  # a brow is moved by its own two points only, along it further than elsewhere
        own = np.isin(semantic, outline)
        kernel[np.ix_(outline, np.flatnonzero(~own))] = 0.0
        for column in np.flatnonzero(own):
            kernel[outline, column] = np.exp(-0.5 * (geodesic[outline, column] / BROW_ALONG_SIGMA) ** 2)
    weights = np.zeros((NUM_LANDMARKS, len(semantic)))
    # Where several points overlap (e.g. inner and outer lip), blend them (weights sum to 1); far
    # from every point the Gaussian falloff takes the offsets to 0. No negative lobes.
    weights[:NUM_MESH_VERTICES] = kernel / np.maximum(kernel.sum(1, keepdims=True), 1.0)
    weights[list(STABLE_POINTS)] = 0.0
    weights[semantic] = np.eye(len(semantic))
    return weights.astype(np.float32), sigma.astype(np.float32)


def build_template() -> dict[str, np.ndarray]:
    from skimage.data import astronaut

    photo = astronaut()
    width = photo.shape[1]
    points = detect_landmarks(photo)
    mirrored_photo_points = detect_landmarks(photo[:, ::-1])
    mirror_index = find_mirror_index(points, mirrored_photo_points, width)

    # Two measurements of the same face: the photo, and the mirrored photo's mesh mirrored back.
    mirrored_back = mirrored_photo_points * np.array([-1.0, 1.0, 1.0]) + np.array([width, 0.0, 0.0])
    shape = 0.5 * (points + mirrored_back[mirror_index])
    symmetric = 0.5 * (shape + rigid_align(shape[mirror_index] @ MIRROR_X, shape))

    frame = frontal_frame(symmetric, mirror_index)
    frontal = (symmetric - symmetric.mean(0)) @ frame.T
    frontal = 0.5 * (frontal + frontal[mirror_index] @ MIRROR_X)  # exactly symmetric
    stable = np.array(STABLE_POINTS)
    frontal -= frontal[stable].mean(0)
    frontal /= np.linalg.norm(frontal[FACE_SIZE_POINTS[1]] - frontal[FACE_SIZE_POINTS[0]])

    edges = mesh_edges()
    weights, sigma = propagation_weights(frontal, edges)
    return {
        "vertices": frontal.astype(np.float32),
        "mirror_index": mirror_index.astype(np.int64),
        "edges": edges,
        "stable_indices": stable.astype(np.int64),
        "semantic_indices": np.array([index for _, index in EXPRESSION_POINTS], dtype=np.int64),
        "propagation_weights": weights,
        "propagation_sigma": sigma,
        "source": np.array(
            "MediaPipe Face Mesh 0.10.21 (refine_landmarks) on skimage.data.astronaut() and its mirror "
            "image, symmetrised and frontalised by scripts/make_face_template.py"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TEMPLATE_PATH)
    args = parser.parse_args()
    with silence_native_logs():  # MediaPipe's C++ logs
        template = build_template()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **template)
    vertices = template["vertices"]
    print(f"wrote {args.out}: {len(vertices)} points, extent {np.ptp(vertices, axis=0).round(3)} face units")


if __name__ == "__main__":
    main()
