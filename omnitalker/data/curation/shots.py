"""Stage 1, coarse segmentation: scene cuts (PySceneDetect) and face tracks -> single-face shots.

Frames arrive one at a time (``ShotBuilder.add``): each goes through PySceneDetect's ContentDetector
(HSV + edge change between consecutive frames) and through MediaPipe Face Mesh (all faces, via
:class:`omnitalker.frontend.face.landmarks.FaceAnalyzer`). ``finish`` then cuts every scene into shots: maximal
runs where exactly one face is visible and its box overlaps the previous frame's with IoU > 0.5;
short detection gaps (<= MAX_GAP_SECONDS) are interpolated, a second face (of comparable size:
MIN_SECONDARY_FACE_RATIO) or a jump ends the run.

    builder = ShotBuilder(analyzer, fps_hint=25.0)
    for time, frame in iter_frames(path, 512, notes):
        builder.add(time, frame)
    shots, drops = builder.finish()      # [Shot], [(DropReason, seconds)]
"""

from __future__ import annotations

import time as time_module
from dataclasses import dataclass

import numpy as np

from omnitalker.frontend.face.landmarks import FaceAnalyzer, box_iou, fill_gaps, landmark_box
from omnitalker.frontend.face.template import NUM_LANDMARKS

from .filters import MIN_CLIP_SECONDS, DropReason

SCENE_THRESHOLD = 27.0  # PySceneDetect's default ContentDetector threshold
SCENE_MIN_SECONDS = 0.5  # no two cuts closer than this
SCENE_SIDE = 256  # scene detection runs on frames scaled to this longer side (cheap, same cuts)
IOU_CONTINUITY = 0.5  # paper: the face box must overlap the previous frame's by IoU > 0.5
MAX_GAP_SECONDS = 0.2  # missed detections up to this long are interpolated inside a shot
# A face below this fraction of the largest face's box area does not make a frame multi-face
# (posters, far-away audience, face-like patterns): it cannot be the speaker of a talking-head clip.
MIN_SECONDARY_FACE_RATIO = 0.25


def main_faces(faces: list[np.ndarray]) -> list[np.ndarray]:
    """The faces of one frame that count: those at least MIN_SECONDARY_FACE_RATIO of the largest's area."""
    if len(faces) < 2:
        return faces
    boxes = landmark_box(np.stack(faces))
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return [face for face, area in zip(faces, areas, strict=True) if area >= MIN_SECONDARY_FACE_RATIO * areas.max()]


@dataclass
class Shot:
    """One face followed through consecutive frames [start, end) of the video.

    timestamps: (T,) seconds; landmarks: (T, 478, 3) pixels (gaps interpolated); detected: (T,) bool;
    boxes: (T, 4) x0, y0, x1, y1; frame_size: (H, W) of the analysed frames.
    """

    start: int
    end: int
    timestamps: np.ndarray
    landmarks: np.ndarray
    detected: np.ndarray
    boxes: np.ndarray
    frame_size: tuple[int, int]

    @property
    def start_time(self) -> float:
        return float(self.timestamps[0])

    @property
    def end_time(self) -> float:
        """End of the last frame's display interval."""
        step = float(np.median(np.diff(self.timestamps))) if len(self.timestamps) > 1 else 0.0
        return float(self.timestamps[-1]) + step


class ShotBuilder:
    """Collects per-frame scene scores and faces, then splits the video into single-face shots."""

    def __init__(self, analyzer: FaceAnalyzer, fps_hint: float):
        try:
            from scenedetect import ContentDetector
        except ImportError as error:
            raise ImportError(
                "scene cuts need PySceneDetect: pip install --no-deps -r requirements-nodeps.txt "
                "(it is installed without its opencv-python dependency, which would clash with mediapipe's "
                "opencv-contrib-python)"
            ) from error

        self.analyzer = analyzer
        self.fps_hint = fps_hint
        self.detector = ContentDetector(
            threshold=SCENE_THRESHOLD, min_scene_len=max(1, int(round(SCENE_MIN_SECONDS * fps_hint)))
        )
        self.times: list[float] = []
        self.faces: list[list[np.ndarray]] = []  # per frame: (478, 3) landmarks of every face
        self.cuts: list[int] = []  # frame indices where a new scene starts
        self.frame_size: tuple[int, int] | None = None
        self.seconds = {"scenes": 0.0, "faces": 0.0}  # time spent per stage (for the benchmark)

    def _timecode(self, index: int):
        from scenedetect import FrameTimecode

        return FrameTimecode(index, self.fps_hint)

    def add(self, time: float, frame: np.ndarray) -> None:
        """frame: (H, W, 3) uint8 RGB, in presentation order."""
        import cv2

        tick = time_module.perf_counter()
        index = len(self.times)
        self.frame_size = frame.shape[:2]
        height, width = frame.shape[:2]
        factor = min(1.0, SCENE_SIDE / max(height, width))
        small = cv2.resize(frame, (max(1, round(width * factor)), max(1, round(height * factor))),
                           interpolation=cv2.INTER_AREA) if factor < 1.0 else frame
        found = self.detector.process_frame(self._timecode(index), np.ascontiguousarray(small[..., ::-1]))  # BGR
        self.cuts += [cut.frame_num for cut in found]
        self.times.append(time)
        middle = time_module.perf_counter()
        self.faces.append(main_faces(self.analyzer.detect_faces(frame)))  # (478, 3) each
        self.seconds["scenes"] += middle - tick
        self.seconds["faces"] += time_module.perf_counter() - middle

    def finish(self) -> tuple[list[Shot], list[tuple[DropReason, float]]]:
        """Single-face shots of every scene, and the scenes that gave none (with their length in seconds)."""
        if not self.times:
            return [], []
        self.cuts += [cut.frame_num for cut in self.detector.post_process(self._timecode(len(self.times)))]
        times = np.asarray(self.times)
        step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / self.fps_hint
        bounds = sorted({0, len(times), *(c for c in self.cuts if 0 < c < len(times))})
        shots, drops = [], []
        for start, end in zip(bounds[:-1], bounds[1:], strict=True):
            found = self._scene_shots(start, end, step)
            shots += found
            if not found:
                crowded = sum(len(f) > 1 for f in self.faces[start:end])
                reason = DropReason.MULTIPLE_FACES if crowded > (end - start) / 2 else DropReason.NO_FACE
                drops.append((reason, (end - start) * step))
        return shots, drops

    def _scene_shots(self, start: int, end: int, step: float) -> list[Shot]:
        """Runs of one face with IoU continuity inside frames [start, end)."""
        max_gap = int(np.floor(MAX_GAP_SECONDS / step))
        runs, run, last_box, last_seen = [], [], None, -1
        for index in range(start, end):
            faces = self.faces[index]
            if len(faces) == 1:
                box = landmark_box(faces[0])
                if run and (index - last_seen > max_gap + 1 or box_iou(last_box, box[None])[0] <= IOU_CONTINUITY):
                    runs.append(run)
                    run = []
                run.append(index)
                last_box, last_seen = box, index
            elif len(faces) > 1 or (run and index - last_seen > max_gap):
                if run:
                    runs.append(run)
                run = []
        if run:
            runs.append(run)
        shots = []
        for run in runs:
            first, last = run[0], run[-1] + 1
            if (last - first) * step < MIN_CLIP_SECONDS:
                continue
            landmarks = np.zeros((last - first, NUM_LANDMARKS, 3), np.float32)
            detected = np.zeros(last - first, bool)
            for index in run:
                landmarks[index - first], detected[index - first] = self.faces[index][0], True
            landmarks = fill_gaps(landmarks, detected)
            shots.append(Shot(first, last, np.asarray(self.times[first:last]), landmarks, detected,
                              landmark_box(landmarks), self.frame_size))
        return shots
