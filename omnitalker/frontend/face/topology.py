"""MediaPipe Face Mesh's topology: its triangles, the face outline, the inner-lip and eye loops, derived from
MediaPipe's own connection lists (the tessellation's boundary loops).

    topo = mesh_topology()     # cached; needs mediapipe
    topo.mouth_loop            # (20,) inner lip contour, ordered around the loop

The warp renderer draws with it (omnitalker/render/), the face tracker keeps the openings' points to the detector
(omnitalker/frontend/face/stabilize.py).
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np

NUM_FACE_TRIANGLES = 852  # Euler: V - E + F = 2 - 4 boundary loops (oval, mouth, two eyes)


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


