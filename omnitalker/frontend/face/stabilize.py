"""Landmarks steadied by the pixels' own motion: MediaPipe's per-frame detections fused with optical flow.

    landmarks = stabilize_landmarks(frames, track.landmarks)    # (T, H, W, 3) uint8, (T, 478, 3) px -> same shape

``FaceAnalyzer`` detects every frame on its own, so the landmarks of a face that holds still jitter by a pixel or
two from frame to frame. On the real clips of ``omnitalker.eval.reenact`` the landmarks' displacement from the
first frame disagreed with the optical flow of the same pixels by 0.9-2.9 px on average, for 3-7 px of motion: a
renderer that warps by the landmarks moved skin, glasses and the face outline that had not moved (d19, a man who
barely moves, came out 0.7 dB below the still frame). Here each point is carried from the previous frame by pyramidal
Lucas-Kanade flow (OpenCV's ``calcOpticalFlowPyrLK``), checked forward and backward, and pulled towards its own
detection by how far the two disagree: jitter (within about ``PULL_SCALE`` face sizes) follows the flow, a real
movement the flow lost follows the detection, and a share of at least ``MIN_PULL`` always does, so the track never
drifts away from what MediaPipe sees. Points the flow cannot follow (forward-backward error above
``MAX_ROUND_TRIP_PX``) take their detection.

The openings keep their detections: the eyes (lids and irises) and the inner lips. A blink moves a lid, speech a
lip, faster and less rigidly than the flow of a small window follows: stabilised lids drew d9's blinks shallower
(self-reenactment eye SSIM 0.849 -> 0.823), stabilised inner lips read the mouth's opening 21 % smaller over nine
clips (its least-squares slope on the detections' 0.79).

Why by hand: OpenCV tracks the points; what it does not have is the fusion with a detector, which is the few lines
of ``stabilize_landmarks``. A temporal filter alone (a One Euro or Kalman filter on the landmarks) smooths by
delaying, and cannot tell jitter from motion without looking at the pixels.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from .template import NUM_LANDMARKS, NUM_MESH_VERTICES
from .topology import mesh_topology

PULL_SCALE = 0.02  # detection-flow disagreement (face sizes) at which the detection takes over (Gaussian width)
MIN_PULL = 0.05  # every frame, at least this share of the way from the flow to the detection
MAX_ROUND_TRIP_PX = 0.5  # forward-then-backward flow error above this: the flow is not trusted for that point
MAX_FLOW_SIDE = 720  # frames are tracked on a grey copy at most this large (px), points scaled to match
LK_WINDOW, LK_LEVELS = 15, 3  # Lucas-Kanade window (px) and pyramid levels (21 px: the same scores, 1.5x the time)
LK_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 30, 0.01)


@lru_cache(maxsize=1)
def detector_points() -> np.ndarray:
    """The landmarks left to the detector: both eye openings, the irises and the inner lips (the mesh's holes)."""
    topo = mesh_topology()
    holes = np.concatenate([*topo.eye_loops, topo.mouth_loop, np.arange(NUM_MESH_VERTICES, NUM_LANDMARKS)])
    return np.unique(holes)


def _grey(frame: np.ndarray, scale: float) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return grey


def _track(previous: np.ndarray, current: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (N, 2) of `previous` followed into `current`: (positions (N, 2), trusted (N,) bool)."""
    start = points.astype(np.float32).reshape(-1, 1, 2)
    lk = dict(winSize=(LK_WINDOW, LK_WINDOW), maxLevel=LK_LEVELS, criteria=LK_CRITERIA)
    ahead, found, _ = cv2.calcOpticalFlowPyrLK(previous, current, start, None, **lk)
    back, found_back, _ = cv2.calcOpticalFlowPyrLK(current, previous, ahead, None, **lk)
    round_trip = np.linalg.norm((back - start)[:, 0], axis=1)
    trusted = (found[:, 0] == 1) & (found_back[:, 0] == 1) & (round_trip < MAX_ROUND_TRIP_PX)
    return ahead[:, 0], trusted


def stabilize_landmarks(frames, landmarks: np.ndarray) -> np.ndarray:
    """Landmarks (T, 478, 3) px of consecutive `frames` (T of (H, W, 3) uint8) with the detector's jitter removed:
    each point follows the optical flow from its previous position, pulled towards its detection as described
    above (the openings' points, ``detector_points``, and z keep their detections). A single frame is returned as it is."""
    landmarks = np.asarray(landmarks, np.float32)
    if len(frames) != len(landmarks):
        raise ValueError(f"{len(frames)} frames but {len(landmarks)} landmark frames: pass the frames they came from")
    out = landmarks.copy()
    if len(landmarks) < 2:
        return out
    scale = min(1.0, MAX_FLOW_SIDE / max(frames[0].shape[:2]))
    follow = np.setdiff1d(np.arange(NUM_LANDMARKS), detector_points())
    previous = _grey(frames[0], scale)
    for t in range(1, len(landmarks)):
        current = _grey(frames[t], scale)
        detected = landmarks[t, follow, :2]  # n 2
        face_size = float(np.ptp(landmarks[t, :NUM_MESH_VERTICES, :2], axis=0).max())
        flowed, trusted = _track(previous, current, out[t - 1, follow, :2] * scale)
        flowed = flowed / scale
        distance2 = ((detected - flowed) ** 2).sum(-1)
        width = max(PULL_SCALE * face_size, 1e-3)
        pull = np.maximum(MIN_PULL, 1.0 - np.exp(-distance2 / (2.0 * width * width)))
        pull = np.where(trusted, pull, 1.0)[:, None]
        out[t, follow, :2] = flowed + pull * (detected - flowed)
        previous = current
    return out
