"""Face landmarks and tracking: MediaPipe Face Mesh (478 points with irises) over a video or image.

    with FaceAnalyzer() as analyzer:
        track = analyzer.analyze_video("reference.mp4")   # FaceTrack, one face through the clip
        track = analyzer.analyze_image(photo)              # FaceTrack with one frame

Up to MAX_FACES faces are found per frame; one is followed through the clip: first the largest and
most central (score = box area fraction x (1 - distance of the box centre from the frame centre /
half diagonal)), then in every frame the face whose box overlaps the previous one best (IoU above
``iou_threshold``). Frames without that face are filled by linear interpolation between the nearest
detected frames (held at the ends); gaps longer than ``max_gap_seconds`` are reported. A video's
landmarks are then steadied by the optical flow between frames (``stabilize_landmarks``). Problems a
user can fix raise ValueError with the numbers (no face, face too small, face turned away, too
few frames with a face); softer ones go to ``FaceTrack.warnings`` and are also emitted as Python
warnings. MediaPipe runs on the CPU; its C++ logs are silenced.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from omnitalker.io.image import load_image, to_rgb_uint8

from .codes import CODE_FPS, head_angles_degrees
from .stabilize import stabilize_landmarks
from .template import NUM_LANDMARKS, NUM_MESH_VERTICES

MAX_FACES = 4
MIN_IMAGE_SIDE = 64  # Face Mesh cannot find faces in smaller images
MAX_DETECT_SIDE = 1920  # larger frames are detected on a downscaled copy (landmarks mapped back)
# Every frame is detected on its own (static_image_mode), so a clip's frames can be shared out between FaceMesh
# graphs on worker threads with identical results; MediaPipe releases the GIL while it works. Two halve the
# reference analysis on two cores (BENCHMARKS.md, "Pipeline end to end"); a graph costs ~20 MB.
DETECT_WORKERS = 2
MIN_FRAMES_PER_WORKER = 8  # shorter clips are not worth a second graph
NO_FACE_HELP = (
    "Use {article} {what} where one face is clearly visible, roughly frontal and large enough "
    "(at least {min_fraction:.0%} of the {frame})."
)


def _quiet_mediapipe_env() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("MEDIAPIPE_DISABLE_GPU", "1")


class _StderrMute:
    """Mutes file descriptor 2 (MediaPipe's C++ logging bypasses Python) while any thread is inside: the first
    thread in points fd 2 at /dev/null, the last one out restores it. A per-thread dup2 would not do: a second
    thread would save the muted descriptor and "restore" it last, muting stderr for good."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None

    @contextlib.contextmanager
    def __call__(self):
        with self._lock:
            if self._depth == 0:
                try:
                    self._saved = os.dup(2)
                except OSError:  # no real stderr (e.g. some notebook kernels)
                    self._saved = None
                if self._saved is not None:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, 2)
                    os.close(devnull)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0 and self._saved is not None:
                    os.dup2(self._saved, 2)
                    os.close(self._saved)
                    self._saved = None


silence_native_logs = _StderrMute()


@dataclass
class FaceTrack:
    """One face followed through a clip.

    landmarks: (T, 478, 3) float32 pixels of the frame (z = MediaPipe z x frame width), every frame
        filled (undetected frames interpolated); detected: (T,) bool; boxes: (T, 4) float32
        x0, y0, x1, y1 pixels; fps: mean frame rate; timestamps: (T,) seconds; frame_size: (H, W).
    """

    landmarks: np.ndarray
    fps: float
    frame_size: tuple[int, int]
    detected: np.ndarray
    boxes: np.ndarray
    timestamps: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.landmarks = np.asarray(self.landmarks, np.float32)
        if self.landmarks.ndim != 3 or self.landmarks.shape[1:] != (NUM_LANDMARKS, 3):
            raise ValueError(f"landmarks must be (T, {NUM_LANDMARKS}, 3), got {self.landmarks.shape}")
        self.detected = np.asarray(self.detected, bool)
        self.boxes = np.asarray(self.boxes, np.float32)
        if self.timestamps is None:
            self.timestamps = np.arange(len(self.landmarks)) / self.fps
        self.timestamps = np.asarray(self.timestamps, np.float64)

    @property
    def num_frames(self) -> int:
        return len(self.landmarks)

    @property
    def detected_fraction(self) -> float:
        return float(self.detected.mean()) if len(self.detected) else 0.0


def landmark_box(points: np.ndarray) -> np.ndarray:
    """x0, y0, x1, y1 of the mesh points (irises excluded) of (..., 478, 3) landmarks."""
    mesh = points[..., :NUM_MESH_VERTICES, :2]
    return np.concatenate([mesh.min(-2), mesh.max(-2)], -1)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one box (4,) with boxes (N, 4), all x0, y0, x1, y1."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def pick_main_face(boxes: np.ndarray, frame_size: tuple[int, int]) -> int:
    """Index of the largest, most central box (score in the module docstring)."""
    height, width = frame_size
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) / (height * width)
    centres = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    offset = np.linalg.norm(centres - np.array([width / 2, height / 2]), axis=-1) / (
        0.5 * np.hypot(width, height)
    )
    return int(np.argmax(area * (1.0 - np.clip(offset, 0.0, 1.0))))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D bool mask."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def fill_gaps(landmarks: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Linear interpolation of undetected frames between detected ones (held at both ends)."""
    frames = np.flatnonzero(detected)
    flat = landmarks.reshape(len(landmarks), -1)
    filled = np.empty_like(flat)
    every = np.arange(len(landmarks))
    for column in range(flat.shape[1]):
        filled[:, column] = np.interp(every, frames, flat[frames, column])
    return filled.reshape(landmarks.shape)


class FaceAnalyzer:
    """Finds and follows one face with MediaPipe Face Mesh (refine_landmarks=True, 478 points).

    min_face_fraction: the face box's longer side must span at least this fraction of the frame's
        shorter side (median over detected frames), else ValueError.
    max_gap_seconds: longer stretches without the face are reported (they are still interpolated).
    min_detected_fraction: fewer frames with the face than this raises ValueError.
    max_head_turn_degrees: |yaw| or |pitch| beyond this is reported; in most frames, ValueError.
    iou_threshold: box overlap needed to continue the track from one frame to the next.
    workers: FaceMesh graphs that detect a video's frames in parallel (identical results; one per core).
    stabilize: steady a video's landmarks with the optical flow between its frames (``stabilize_landmarks``,
        omnitalker/frontend/face/stabilize.py): MediaPipe detects each frame on its own, and its points jitter.
    """

    def __init__(
        self,
        min_face_fraction: float = 0.1,
        max_gap_seconds: float = 0.5,
        min_detected_fraction: float = 0.5,
        max_head_turn_degrees: float = 60.0,
        iou_threshold: float = 0.5,
        max_faces: int = MAX_FACES,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        workers: int = DETECT_WORKERS,
        stabilize: bool = True,
    ):
        if not 0.0 <= min_face_fraction < 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1), got {min_face_fraction}")
        if max_gap_seconds < 0:
            raise ValueError(f"max_gap_seconds must be >= 0, got {max_gap_seconds}")
        if not 0.0 <= min_detected_fraction <= 1.0:
            raise ValueError(f"min_detected_fraction must be in [0, 1], got {min_detected_fraction}")
        if max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be an integer >= 1 (FaceMesh graphs run in parallel), got {workers!r}")
        self.min_face_fraction = min_face_fraction
        self.max_gap_seconds = max_gap_seconds
        self.min_detected_fraction = min_detected_fraction
        self.max_head_turn_degrees = max_head_turn_degrees
        self.iou_threshold = iou_threshold
        self.max_faces = max_faces
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self.workers = workers
        self.stabilize = stabilize
        self._mesh = None
        self._extra_meshes = []  # the worker threads' own graphs, beyond ``mesh``

    # ------------------------------------------------------------------ mediapipe
    @property
    def mesh(self):
        """The MediaPipe FaceMesh, created on first use.

        Every frame is processed independently (static_image_mode=True): MediaPipe's own tracking
        mode seeds each frame with the previous frame's box, which biased the fitted head scale by
        ~1.5 % on a test clip; per-frame detection costs about the same here, and following one
        face is done by IoU in ``_follow``.
        """
        if self._mesh is None:
            self._mesh = self._new_mesh()
        return self._mesh

    def _new_mesh(self):
        _quiet_mediapipe_env()
        with silence_native_logs():
            from mediapipe.python.solutions.face_mesh import FaceMesh

            return FaceMesh(
                static_image_mode=True,
                max_num_faces=self.max_faces,
                refine_landmarks=True,
                min_detection_confidence=self.min_detection_confidence,
                min_tracking_confidence=self.min_tracking_confidence,
            )

    def close(self) -> None:
        for mesh in [self._mesh, *self._extra_meshes]:
            if mesh is not None:
                mesh.close()
        self._mesh, self._extra_meshes = None, []

    def _detect_frames(self, frames: list[np.ndarray]) -> list[list[np.ndarray]]:
        """``_detect`` on every frame, the clip shared out in consecutive blocks between ``workers`` graphs."""
        workers = max(1, min(self.workers, len(frames) // MIN_FRAMES_PER_WORKER))
        if workers == 1:
            return [self._detect(self.mesh, frame) for frame in frames]
        while len(self._extra_meshes) < workers - 1:
            self._extra_meshes.append(self._new_mesh())
        meshes = [self.mesh, *self._extra_meshes[: workers - 1]]
        blocks = np.array_split(np.arange(len(frames)), workers)

        def detect_block(mesh, indices) -> list[list[np.ndarray]]:
            return [self._detect(mesh, frames[index]) for index in indices]

        with silence_native_logs(), ThreadPoolExecutor(workers, thread_name_prefix="face-mesh") as pool:
            parts = list(pool.map(detect_block, meshes, blocks))
        return [faces for part in parts for faces in part]

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        with contextlib.suppress(Exception):
            self.close()

    @staticmethod
    def _detect(mesh, frame: np.ndarray) -> list[np.ndarray]:
        """All faces in one RGB uint8 frame: a list of (478, 3) pixel landmarks."""
        height, width = frame.shape[:2]
        factor = min(1.0, MAX_DETECT_SIDE / max(height, width))
        if factor < 1.0:
            import cv2

            small = cv2.resize(
                frame, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_AREA
            )
        else:
            small = frame
        with silence_native_logs():
            result = mesh.process(small)
        faces = []
        for face in result.multi_face_landmarks or []:
            points = np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)
            if len(points) == NUM_LANDMARKS:
                faces.append(points * np.array([width, height, width], dtype=np.float32))
        return faces

    # ------------------------------------------------------------------ public
    def detect_faces(self, frame: np.ndarray) -> list[np.ndarray]:
        """Every face in one RGB uint8 frame, untracked: a list of (478, 3) pixel landmarks (the curation
        pipeline follows faces across shots itself)."""
        return self._detect(self.mesh, frame)

    def analyze_image(self, image) -> FaceTrack:
        """Landmarks of the main face in one image (path, PIL image or array in any pixel format)."""
        pixels = load_image(image)
        self._check_resolution(pixels.shape[:2])
        faces = self._detect(self.mesh, pixels)
        return self._build_track([faces], pixels.shape[:2], CODE_FPS, None, [], what="image")

    def analyze_video(self, video, fps: float | None = None, max_seconds: float | None = None) -> FaceTrack:
        """Follow one face through a video file, or through frames (T, H, W, 3) / a list given with `fps`."""
        notes: list[str] = []
        timestamps = None
        if isinstance(video, (str, Path)):
            from omnitalker.io.video import read_video

            decoded = read_video(video, max_seconds=max_seconds, audio=False)
            frames, timestamps, notes = decoded.frames, decoded.timestamps, list(decoded.warnings)
            fps = decoded.fps if fps is None else fps
        else:
            if fps is None or fps <= 0:
                raise ValueError(f"fps must be a positive frame rate when frames are passed, got {fps}")
            frames = [to_rgb_uint8(frame, name=f"frame {i}") for i, frame in enumerate(video)]
            if not frames:
                raise ValueError("the video has no frames")
            if len({frame.shape for frame in frames}) > 1:
                raise ValueError("all frames must have the same size")
        if len(frames) == 1:
            notes.append("the video has a single frame; it is analysed as a still image")
        frame_size = frames[0].shape[:2]
        self._check_resolution(frame_size)
        faces = self._detect_frames(frames)
        track = self._build_track(faces, frame_size, float(fps), timestamps, notes, what="video")
        if self.stabilize and track.num_frames > 1:
            track.landmarks = stabilize_landmarks(frames, track.landmarks)
            track.boxes = landmark_box(track.landmarks)
        return track

    # ------------------------------------------------------------------ checks and tracking
    @staticmethod
    def _check_resolution(frame_size: tuple[int, int]) -> None:
        height, width = frame_size
        if min(height, width) < MIN_IMAGE_SIDE:
            raise ValueError(
                f"the frames are {width}x{height} px; face analysis needs at least {MIN_IMAGE_SIDE} px "
                "on the shorter side. Use a larger image or video."
            )

    def _follow(self, faces: list[list[np.ndarray]], frame_size, max_gap_frames: int, notes: list[str]):
        """Choose one face per frame: (landmarks (T, 478, 3), detected (T,))."""
        num_frames = len(faces)
        landmarks = np.zeros((num_frames, NUM_LANDMARKS, 3), np.float32)
        detected = np.zeros(num_frames, bool)
        previous_box, last_seen = None, -1
        for index, candidates in enumerate(faces):
            if not candidates:
                continue
            boxes = landmark_box(np.stack(candidates))
            if previous_box is None or index - last_seen > max_gap_frames + 1:
                choice = pick_main_face(boxes, frame_size)
                if (
                    previous_box is not None
                    and box_iou(previous_box, boxes[choice : choice + 1])[0] < self.iou_threshold
                ):
                    notes.append(
                        f"the tracked face was lost for {index - last_seen - 1} frames and a face was "
                        f"picked up again at frame {index} elsewhere in the frame (it may be another person)"
                    )
            else:
                overlap = box_iou(previous_box, boxes)
                choice = int(np.argmax(overlap))
                if overlap[choice] < self.iou_threshold:
                    continue  # only other faces here: the tracked face is missing in this frame
            landmarks[index], detected[index] = candidates[choice], True
            previous_box, last_seen = boxes[choice], index
        return landmarks, detected

    def _build_track(self, faces, frame_size, fps, timestamps, notes, what: str) -> FaceTrack:
        num_frames = len(faces)
        height, width = frame_size
        still = num_frames == 1  # a photo: no frame counts in the messages
        help_text = NO_FACE_HELP.format(article="an" if what[:1] in "aeiou" else "a", what=what,
                                        min_fraction=self.min_face_fraction, frame="picture" if still else "frame")
        if max(height, width) > MAX_DETECT_SIDE:
            notes.append(
                f"frames are {width}x{height} px; faces were detected on a copy scaled to {MAX_DETECT_SIDE} px"
            )
        max_gap_frames = int(np.floor(self.max_gap_seconds * fps))
        landmarks, detected = self._follow(faces, frame_size, max_gap_frames, notes)
        found = int(detected.sum())
        if found == 0:
            counts = "" if still else f" (0/{num_frames} frames)"
            raise ValueError(f"no face found in the reference {what}{counts}. {help_text}")
        if found < self.min_detected_fraction * num_frames:
            raise ValueError(
                f"face found in only {found}/{num_frames} frames ({found / num_frames:.0%}; at least "
                f"{self.min_detected_fraction:.0%} needed). {help_text}"
            )
        crowded = sum(len(candidates) > 1 for candidates in faces)
        if crowded:
            most = max(len(candidates) for candidates in faces)
            notes.append(
                f"{most} faces visible in {crowded}/{num_frames} frames; following the largest, most central one"
            )

        boxes = landmark_box(landmarks)
        size = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / min(height, width)
        face_fraction = float(np.median(size[detected]))
        if face_fraction < self.min_face_fraction:
            raise ValueError(
                f"the face is too small: it spans {face_fraction:.1%} of the {'picture' if still else 'frame'}"
                f"{'' if still else f' (median over {found} frames)'}, at least {self.min_face_fraction:.0%} is "
                f"needed. Crop the {what} closer to the face or use a higher resolution."
            )

        angles = np.abs(head_angles_degrees(landmarks[detected]))[:, :2]  # |yaw|, |pitch|
        turned = (angles > self.max_head_turn_degrees).any(-1)
        if turned.mean() > 0.5:
            raise ValueError(
                f"the face is turned too far from the camera: median |yaw| {np.median(angles[:, 0]):.0f} deg, "
                f"|pitch| {np.median(angles[:, 1]):.0f} deg (limit {self.max_head_turn_degrees:.0f} deg)"
                f"{'' if still else f' in {found} frames'}. Use {'a photo' if still else 'a video'} where the face "
                "looks roughly at the camera."
            )
        if turned.any():
            notes.append(
                f"head turned beyond {self.max_head_turn_degrees:.0f} deg in {int(turned.sum())}/{found} frames "
                f"(max |yaw| {angles[:, 0].max():.0f} deg, max |pitch| {angles[:, 1].max():.0f} deg)"
            )

        if found < num_frames:
            for start, end in _runs(~detected):
                if end - start > max_gap_frames:
                    notes.append(
                        f"face lost for {(end - start) / fps:.2f} s (frames {start}-{end - 1} of {num_frames}); "
                        "landmarks interpolated across the gap"
                    )
            landmarks = fill_gaps(landmarks, detected)
            boxes = landmark_box(landmarks)
            notes.append(f"face found in {found}/{num_frames} frames; the others are interpolated")

        for note in notes:
            warnings.warn(note, stacklevel=3)
        return FaceTrack(
            landmarks=landmarks,
            fps=fps,
            frame_size=(int(height), int(width)),
            detected=detected,
            boxes=boxes,
            timestamps=timestamps,
            warnings=notes,
        )
