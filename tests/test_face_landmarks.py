"""Face analysis on real decoding and real MediaPipe: videos made here with PyAV from the astronaut photo.

Covers odd and variable frame rates, pixel formats, tracking one face, and every bad input the
user can meet (no face, several faces, small or turned faces, a face lost mid-clip, tiny/huge
frames, a 1-frame video, a file that is not a video).
"""

from __future__ import annotations

import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import soundfile
from skimage.color import rgb2gray
from skimage.data import astronaut

from omnitalker.frontend.face import FaceAnalyzer
from omnitalker.frontend.face.landmarks import MIN_IMAGE_SIDE, box_iou, fill_gaps, landmark_box
from omnitalker.frontend.face.stabilize import detector_points, stabilize_landmarks
from omnitalker.io.image import load_image
from omnitalker.io.video import read_video
from tests.pipeline_fixtures import astronaut_face


def write_video(path, frames, fps: float, codec: str = "libx264", timestamps=None) -> None:
    """Encode RGB frames with PyAV; `timestamps` (seconds) gives a variable frame rate."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        if timestamps is not None:  # millisecond clock so the encoder keeps the irregular times
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        for index, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            if timestamps is not None:
                frame.pts, frame.time_base = round(timestamps[index] * 1000), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return astronaut_face(256)  # the tests' one astronaut face box (tests/pipeline_fixtures.py), 256 x 256


@pytest.fixture(scope="module")
def analyzer():
    with FaceAnalyzer() as shared:
        yield shared


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    centre = (image.shape[1] / 2, image.shape[0] / 2)
    return cv2.warpAffine(
        image,
        cv2.getRotationMatrix2D(centre, degrees, 1.0),
        image.shape[1::-1],
        borderMode=cv2.BORDER_REFLECT,
    )


# ----------------------------------------------------------------------------- images
def test_image_in_every_pixel_format_gives_the_same_face(analyzer):
    photo = astronaut()
    track = analyzer.analyze_image(photo)
    assert track.landmarks.shape == (1, 478, 3) and track.landmarks.dtype == np.float32
    assert track.detected.all() and track.frame_size == (512, 512) and track.warnings == []
    x0, y0, x1, y1 = track.boxes[0]
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # the astronaut's face
    variants = {
        "gray": (rgb2gray(photo) * 255).astype(np.uint8),
        "rgba": np.concatenate([photo, np.full((512, 512, 1), 128, np.uint8)], -1),
        "16-bit": photo.astype(np.uint16) * 257,
        "float": photo / 255.0,
    }
    for name, variant in variants.items():
        other = analyzer.analyze_image(variant).landmarks[0]
        error = np.linalg.norm(other[:, :2] - track.landmarks[0, :, :2], axis=-1).mean()
        assert error < (3.0 if name == "gray" else 0.5), name


def test_image_files_and_pil(tmp_path):
    from PIL import Image

    photo = astronaut()
    cv2.imwrite(str(tmp_path / "face16.png"), cv2.cvtColor(photo.astype(np.uint16) * 257, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(load_image(tmp_path / "face16.png"), photo)
    np.testing.assert_array_equal(load_image(Image.fromarray(photo).convert("RGBA")), photo)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="could not read .* as an image"):
        load_image(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match=r"shape \(4, 4, 5\)"):
        load_image(np.zeros((4, 4, 5), np.uint8))


def test_tiny_and_huge_frames(analyzer):
    with pytest.raises(ValueError, match=f"at least {MIN_IMAGE_SIDE} px"):
        analyzer.analyze_image(np.zeros((40, 48, 3), np.uint8))
    photo = astronaut()
    small = analyzer.analyze_image(photo).landmarks[0]
    scale = 2200 / 512
    with pytest.warns(UserWarning, match="scaled to 1920"):
        huge = analyzer.analyze_image(cv2.resize(photo, (2200, 2200), interpolation=cv2.INTER_CUBIC))
    error = np.linalg.norm(huge.landmarks[0, :, :2] / scale - small[:, :2], axis=-1).mean()
    assert error < 1.0  # same face, in the big image's pixels


# ----------------------------------------------------------------------------- videos
def test_odd_frame_rate_video_is_decoded_and_tracked(tmp_path, face, analyzer):
    angles = [0.0, 4.0, 8.0, 4.0, 0.0, -4.0]
    path = tmp_path / "odd.mp4"
    write_video(path, [rotated(face, a) for a in angles], fps=22.13)
    decoded = read_video(path)
    assert decoded.frames.shape == (6, 256, 256, 3)
    assert decoded.fps == pytest.approx(22.13, rel=1e-3)
    np.testing.assert_allclose(decoded.timestamps, np.arange(6) / 22.13, atol=1e-3)
    track = analyzer.analyze_video(path)
    assert track.fps == pytest.approx(22.13, rel=1e-3) and track.detected.all() and track.warnings == []
    from omnitalker.frontend.face import FaceIdentity, encode_codes, track_to_codes

    codes = encode_codes(track.landmarks, FaceIdentity.from_track(track))
    np.testing.assert_allclose(np.degrees(codes[:, 2] - codes[0, 2]), -np.array(angles), atol=2.0)
    at_30 = track_to_codes(track, smooth=False)  # 6 frames at 22.13 fps last 0.271 s = 8 frames at 30 fps
    assert at_30.shape == (8, 58)
    np.testing.assert_allclose(at_30[0], codes[0], atol=1e-6)
    assert np.isfinite(track_to_codes(track)).all()


def test_variable_frame_rate_and_mpeg4(tmp_path, face):
    stamps = [0.0, 0.04, 0.07, 0.15, 0.19, 0.30]
    path = tmp_path / "vfr.mkv"
    write_video(path, [face] * len(stamps), fps=25.0, codec="mpeg4", timestamps=stamps)
    decoded = read_video(path)
    np.testing.assert_allclose(decoded.timestamps, stamps, atol=2e-3)
    assert decoded.variable_frame_rate
    assert any("variable frame rate" in note for note in decoded.warnings)
    assert decoded.fps == pytest.approx(5 / 0.30, rel=1e-2)


def test_single_frame_video(tmp_path, face, analyzer):
    path = tmp_path / "one.mp4"
    write_video(path, [face], fps=25.0)
    with pytest.warns(UserWarning, match="single frame"):
        track = analyzer.analyze_video(path)
    assert track.num_frames == 1 and track.detected.all()


def test_files_that_are_not_videos(tmp_path, analyzer):
    (tmp_path / "notes.mp4").write_text("this is text, not a video")
    with pytest.raises(ValueError, match="could not read .*notes.mp4 as a video"):
        analyzer.analyze_video(tmp_path / "notes.mp4")
    soundfile.write(tmp_path / "voice.wav", np.zeros(2400, np.float32), 24000)
    with pytest.raises(ValueError, match="no video stream"):
        analyzer.analyze_video(tmp_path / "voice.wav")
    with pytest.raises(ValueError, match="does not exist"):
        analyzer.analyze_video(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="fps must be a positive frame rate"):
        analyzer.analyze_video(np.zeros((2, 64, 64, 3), np.uint8))


# ----------------------------------------------------------------------------- faces
def test_no_face_is_an_error_with_the_count(face, analyzer):
    noise = np.random.default_rng(0).integers(0, 255, size=(4, 128, 128, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"no face found in the reference video \(0/4 frames\)"):
        analyzer.analyze_video(noise, fps=25.0)


def test_face_lost_mid_clip_is_interpolated_and_reported(face, analyzer):
    blank = np.full_like(face, 90)
    frames = [face, face, face, blank, blank, blank, blank, face, face, face]
    with pytest.warns(UserWarning) as record:
        track = FaceAnalyzer(max_gap_seconds=0.1).analyze_video(np.stack(frames), fps=30.0)
    assert [str(w.message) for w in record] == track.warnings
    assert any("face lost for 0.13 s (frames 3-6 of 10)" in note for note in track.warnings)
    assert track.detected.tolist() == [True] * 3 + [False] * 4 + [True] * 3
    assert np.isfinite(track.landmarks).all()
    assert any("face found in 6/10 frames" in note for note in track.warnings)
    with pytest.raises(ValueError, match=r"face found in only 2/8 frames \(25%"):
        analyzer.analyze_video(np.stack([face, face] + [blank] * 6), fps=30.0)


def test_several_faces_follow_the_largest(face, analyzer):
    canvas = np.full((256, 560, 3), 200, np.uint8)
    canvas[:, :256] = face  # large face, left
    canvas[28:228, 360:560] = cv2.resize(face, (200, 200), interpolation=cv2.INTER_AREA)  # smaller face
    with pytest.warns(UserWarning, match="2 faces visible in 1/1 frames"):
        track = analyzer.analyze_image(canvas)
    assert track.boxes[0, 2] < 280  # the big face on the left


def test_small_and_turned_faces_are_errors_with_numbers(face):
    with pytest.raises(ValueError, match=r"too small: it spans \d+\.\d% of the picture, at least 90%"):
        FaceAnalyzer(min_face_fraction=0.9).analyze_image(face)
    # The astronaut's head is pitched by ~9 deg; a 3 deg limit makes that "turned too far".
    with pytest.raises(ValueError, match=r"turned too far .*\|pitch\| \d+ deg \(limit 3 deg\)"):
        FaceAnalyzer(max_head_turn_degrees=3.0).analyze_image(face)


# ----------------------------------------------------------------------------- tracking logic
def _fake_face(x0: float, y0: float, size: float) -> np.ndarray:
    points = np.zeros((478, 3), np.float32)
    points[:, 0] = np.linspace(x0, x0 + size, 478)
    points[:, 1] = np.linspace(y0, y0 + size, 478)
    return points


def test_tracking_keeps_the_same_face_by_overlap():
    analyzer = FaceAnalyzer()
    main, other = _fake_face(100, 100, 80), _fake_face(300, 100, 60)
    moved = _fake_face(108, 104, 80)  # the main face moved a little
    grown = _fake_face(280, 80, 140)  # the other face becomes the largest
    notes: list[str] = []
    faces = [[main, other], [other, moved], [grown, moved], [grown]]
    landmarks, detected = analyzer._follow(faces, (400, 500), max_gap_frames=5, notes=notes)
    assert detected.tolist() == [True, True, True, False]  # never jumps to the other face
    np.testing.assert_array_equal(landmarks[2], moved)
    assert box_iou(landmark_box(main), landmark_box(moved)[None])[0] > 0.5
    filled = fill_gaps(landmarks, detected)
    np.testing.assert_array_equal(filled[3], moved)  # held after the last detection
    # After a gap longer than max_gap the track may restart elsewhere: that is reported.
    landmarks, detected = analyzer._follow(
        [[main], [], [], [other]], (400, 500), max_gap_frames=1, notes=notes
    )
    assert detected.tolist() == [True, False, False, True]
    assert any("may be another person" in note for note in notes)


def test_parallel_detection_gives_the_serial_track_and_keeps_stderr(face):
    """Frames shared out between two FaceMesh graphs on threads: the same track as one graph, and fd 2 (muted
    while MediaPipe runs) is the original stderr again afterwards."""
    frames = np.stack([np.roll(face, shift, axis=1) for shift in range(0, 40, 2)])  # 20 frames, a moving face
    stderr_before = os.fstat(2)
    with FaceAnalyzer(workers=1) as serial, FaceAnalyzer(workers=2) as parallel:
        one = serial.analyze_video(frames, fps=25.0)
        two = parallel.analyze_video(frames, fps=25.0)
        assert len(parallel._extra_meshes) == 1
    np.testing.assert_array_equal(one.landmarks, two.landmarks)
    np.testing.assert_array_equal(one.detected, two.detected)
    stderr_after = os.fstat(2)
    assert (stderr_after.st_dev, stderr_after.st_ino) == (stderr_before.st_dev, stderr_before.st_ino)
    with pytest.raises(ValueError, match="workers"):
        FaceAnalyzer(workers=0)


def test_stabilized_landmarks_follow_the_pixels_not_the_detector_jitter(face, analyzer):
    """A face drifting by known sub-pixel steps, its detections jittered by 1 px: the steadied points land on the true
    ones with well under the jitter's error; the eyes and lips keep their detections; and where the detections move but the
    pixels do not (a movement the flow lost), the detections win."""
    base = analyzer.analyze_image(face).landmarks[0]  # 478 3
    follow = np.setdiff1d(np.arange(base.shape[0]), detector_points())
    shifts = np.stack([0.4 * np.arange(20), 0.25 * np.arange(20)], 1)  # t 2, px
    frames = [cv2.warpAffine(face, np.float32([[1, 0, dx], [0, 1, dy]]), face.shape[1::-1], flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT) for dx, dy in shifts]
    truth = np.repeat(base[None], len(shifts), 0)
    truth[:, :, :2] += shifts[:, None]
    jittered = truth.copy()
    jittered[1:, :, :2] += np.random.default_rng(0).normal(0.0, 1.0, (len(shifts) - 1, base.shape[0], 2))
    steady = stabilize_landmarks(frames, jittered)

    def error(points):
        return np.linalg.norm(points[1:, follow, :2] - truth[1:, follow, :2], axis=-1).mean()

    assert error(steady) < 0.6 * error(jittered)  # 0.46 when written
    np.testing.assert_array_equal(steady[:, detector_points()], jittered[:, detector_points()])

    jump = 0.1 * np.ptp(base[:, 0])  # px: far beyond any jitter
    moved = np.repeat(base[None], 10, 0)
    moved[5:, :, 0] += jump
    steady = stabilize_landmarks([face] * 10, moved)
    assert np.abs(steady[9, follow, 0] - moved[9, follow, 0]).mean() < 0.05 * jump
    with pytest.raises(ValueError, match="frames"):
        stabilize_landmarks([face] * 3, moved)
