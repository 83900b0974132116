"""Visual codes: layout, geometry, encode/decode round trips (synthetic and MediaPipe), time ops.

Round-trip errors on real MediaPipe landmarks (512 x 512 frames) are asserted with generous bounds
here; measured values are in the docstring of omnitalker/frontend/face/codes.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from omnitalker.frontend.face import (
    CODE_NAMES,
    EXP_SLICE,
    EYE_SLICE,
    POSE_SLICE,
    VISUAL_CODE_DIM,
    FaceAnalyzer,
    FaceIdentity,
    FaceTrack,
    decode_codes,
    encode_codes,
    euler_to_rotation,
    load_face_template,
    resample_codes,
    rotation_to_euler,
    smooth_codes,
)
from omnitalker.frontend.face.codes import EXP_NAMES, MEL_FPS, POSE_DIM, fit_similarity
from omnitalker.frontend.face.template import EXPRESSION_POINTS, LEFT_EYE, LEFT_IRIS, RIGHT_EYE, RIGHT_IRIS

ROTATION_DEGREES = (0.0, 7.0, 12.0, 7.0, 0.0, -7.0, -12.0, -7.0)
ZOOM = (1.0, 1.04, 1.08, 1.04, 1.0, 0.96, 0.92, 0.96)
JAW_DROP_PX = (0.0, 3.0, 6.0, 9.0, 12.0, 9.0, 6.0, 3.0)


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return astronaut()  # 512 x 512 RGB


@pytest.fixture(scope="module")
def photo_track(photo) -> FaceTrack:
    with FaceAnalyzer() as analyzer:
        return analyzer.analyze_image(photo)


@pytest.fixture(scope="module")
def rotated_track(photo, photo_track) -> FaceTrack:
    """The photo rotated and zoomed about the face centre, frame by frame."""
    centre = tuple(float(v) for v in photo_track.landmarks[0, 6, :2])  # nose bridge
    frames = [
        cv2.warpAffine(
            photo, cv2.getRotationMatrix2D(centre, angle, zoom), (512, 512), borderMode=cv2.BORDER_REFLECT
        )
        for angle, zoom in zip(ROTATION_DEGREES, ZOOM, strict=True)
    ]
    with FaceAnalyzer() as analyzer:
        return analyzer.analyze_video(np.stack(frames), fps=30.0)


def jaw_drop(image: np.ndarray, landmarks: np.ndarray, amount_px: float) -> np.ndarray:
    """Open the mouth by stretching the image below the upper lip downwards by `amount_px`."""
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(np.float32)
    upper, lower, chin = landmarks[13, 1], landmarks[14, 1], landmarks[152, 1]
    mouth_half_width = 0.75 * (landmarks[291, 0] - landmarks[61, 0])
    ramp = np.clip((rows - upper) / (lower - upper), 0.0, 1.0)  # 0 above the mouth, 1 below the lower lip
    fade = np.exp(-0.5 * (np.clip(rows - chin, 0.0, None) / 12.0) ** 2)  # back to 0 under the chin
    window = np.exp(-0.5 * ((cols - landmarks[13, 0]) / mouth_half_width) ** 4)
    return cv2.remap(image, cols, rows - amount_px * ramp * fade * window, cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def jaw_track(photo, photo_track) -> FaceTrack:
    frames = [jaw_drop(photo, photo_track.landmarks[0], amount) for amount in JAW_DROP_PX]
    with FaceAnalyzer() as analyzer:
        return analyzer.analyze_video(np.stack(frames), fps=30.0)


def point_errors(track: FaceTrack) -> np.ndarray:
    """(T, 478) image-plane distance between the landmarks and decode(encode(landmarks))."""
    identity = FaceIdentity.from_track(track)
    decoded = decode_codes(encode_codes(track.landmarks, identity), identity)
    return np.linalg.norm(decoded[..., :2] - track.landmarks[..., :2], axis=-1)


# ----------------------------------------------------------------------------- layout + geometry
def test_layout_names_every_dimension():
    assert VISUAL_CODE_DIM == 58 and len(CODE_NAMES) == 58 and len(set(CODE_NAMES)) == 58
    covered = np.zeros(VISUAL_CODE_DIM, int)
    for part in (POSE_SLICE, EXP_SLICE, EYE_SLICE):
        covered[part] += 1
    assert (covered == 1).all()
    assert CODE_NAMES[POSE_SLICE] == ("yaw", "pitch", "roll", "tx", "ty", "log_scale")
    assert CODE_NAMES[EXP_SLICE.start] == "exp_upper_lip_outer_x" and len(CODE_NAMES[EXP_SLICE]) == 48
    assert CODE_NAMES[EYE_SLICE] == ("eye_left_x", "eye_left_y", "eye_right_x", "eye_right_y")


def test_template_is_symmetric_and_normalised():
    template = load_face_template()
    vertices = template.vertices
    mirrored = vertices[template.mirror_index] * np.array([-1.0, 1.0, 1.0])
    assert np.abs(mirrored - vertices).max() < 1e-5
    assert np.linalg.norm(vertices[263] - vertices[33]) == pytest.approx(1.0, abs=1e-5)
    assert np.abs(vertices[template.stable_indices].mean(0)).max() < 1e-5
    assert vertices[1, 2] < vertices[10, 2]  # the nose tip is nearer the camera than the forehead
    weights = template.propagation_weights
    assert np.allclose(weights[template.semantic_indices], np.eye(16))
    assert (weights >= 0).all() and (weights.sum(1) <= 1 + 1e-5).all()
    assert np.abs(weights[template.stable_indices]).max() == 0


def test_a_brow_moves_as_one_piece_between_its_two_points():
    # Both points of the right brow lowered by the same offset: every point of the brow outline follows by most
    # of it (a narrow falloff left the middle at 0.1-0.5 and drew a lowered brow still arched).
    template = load_face_template()
    names = [name for name, _ in EXPRESSION_POINTS]
    moved = np.zeros(len(names))
    moved[[names.index("brow_inner_right"), names.index("brow_outer_right")]] = 1.0
    share = template.propagation_weights @ moved
    right_brow = [70, 63, 105, 66, 107, 46, 53, 52, 65, 55]
    assert share[right_brow].min() > 0.8
    assert share[[336, 296, 334, 293, 300]].max() < 0.05  # the other brow stays
    assert share[[159, 145]].max() == 0  # the lid points keep their own codes


def test_a_lid_carries_its_lash_band():
    # The upper lid's middle point moves the lid beside it and the skin just above it (the lash band) by most of its
    # offset: with a narrower falloff the band stretched over a closing eye instead of coming down with the lid.
    template = load_face_template()
    share = template.propagation_weights[:, [name for name, _ in EXPRESSION_POINTS].index("upper_lid_right")]
    assert share[[160, 158, 27]].min() > 0.85  # beside the middle point, and above it
    assert share[[161, 28]].min() > 0.65
    assert share[[70, 63, 105, 66, 107]].max() == 0  # the brow above is moved by its own points only


def test_euler_round_trip_and_sign_conventions():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-1.2, 1.2, size=(3, 100))
    back = np.stack(rotation_to_euler(euler_to_rotation(*angles)))
    np.testing.assert_allclose(back, angles, atol=1e-9)
    template = load_face_template().vertices.astype(np.float64)
    nose, chin, left_eye = 1, 152, 263

    def moved(yaw=0.0, pitch=0.0, roll=0.0):
        return template @ euler_to_rotation(np.array(yaw), np.array(pitch), np.array(roll)).T - template

    assert moved(yaw=0.3)[nose, 0] < 0  # positive yaw: the nose turns towards image left
    assert moved(pitch=0.3)[nose, 1] > 0 and moved(pitch=0.3)[chin, 2] > 0  # face tilts down
    assert moved(roll=0.3)[left_eye, 1] > 0  # clockwise: the image-right eye goes down


def test_similarity_fit_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(30, 3))
    rotation = euler_to_rotation(np.array(0.4), np.array(-0.2), np.array(0.1))
    target = 3.5 * points @ rotation.T + np.array([10.0, -4.0, 2.0])
    scale, fitted, translation = fit_similarity(points, target[None])
    assert scale[0] == pytest.approx(3.5)
    np.testing.assert_allclose(fitted[0], rotation, atol=1e-9)
    np.testing.assert_allclose(translation[0], [10.0, -4.0, 2.0], atol=1e-9)


# ----------------------------------------------------------------------------- synthetic identities
def _other_face() -> np.ndarray:
    """A different face: wider mouth, longer chin, higher brows (rigid points unchanged)."""
    template = load_face_template()
    face = template.vertices.astype(np.float64).copy()
    movable = np.setdiff1d(np.arange(468), template.stable_indices)
    lower = movable[face[movable, 1] > 0.45]
    face[lower, 0] *= 1.2
    face[lower, 1] += 0.1 * (face[lower, 1] - 0.45)
    brows = movable[face[movable, 1] < -0.15]
    face[brows, 1] -= 0.04
    return face


def _pose_landmarks(shape, codes, pixels_per_unit, origin_px):
    """Pixels of a canonical shape under the code's pose (independent of decode_codes)."""
    yaw, pitch, roll, tx, ty, log_scale = codes[POSE_SLICE]
    rotation = euler_to_rotation(np.array(yaw), np.array(pitch), np.array(roll))
    scale = pixels_per_unit * np.exp(log_scale)
    shift = np.array([origin_px[0] + tx * pixels_per_unit, origin_px[1] + ty * pixels_per_unit, origin_px[2]])
    return scale * shape @ rotation.T + shift


def _express(neutral, codes):
    """Move the expression points and place the irises as the codes say (the layout's definitions)."""
    template = load_face_template()
    shape = neutral.copy()
    offsets = codes[EXP_SLICE].reshape(16, 3).copy()
    names = [name for name, _ in EXPRESSION_POINTS]
    for (_, _, upper, lower), side in ((RIGHT_EYE, "right"), (LEFT_EYE, "left")):  # lids: scaled with larger eyes
        opening = (neutral[lower, 1] - neutral[upper, 1]) / (template.vertices[lower, 1] - template.vertices[upper, 1])
        opening = max(opening, 1.0)
        for lid in ("upper", "lower"):
            offsets[names.index(f"{lid}_lid_{side}")] *= opening
    shape[template.semantic_indices] += offsets
    eyes = codes[EYE_SLICE].reshape(2, 2)
    for (outer, inner, _, _), iris, (gaze_x, gaze_y), sign in zip(
        (LEFT_EYE, RIGHT_EYE), (LEFT_IRIS, RIGHT_IRIS), eyes, (1.0, -1.0), strict=True
    ):
        centre = 0.5 * (shape[outer, :2] + shape[inner, :2])
        across = sign * (shape[outer, :2] - shape[inner, :2])  # towards the subject's left (+x)
        width = np.linalg.norm(across)
        e_x = across / width
        e_y = np.array([-e_x[1], e_x[0]])  # down
        target = centre + width * (gaze_x * e_x + gaze_y * e_y)
        shape[list(iris), :2] += target - shape[iris[0], :2]
    return shape


def _big_eyed_face(factor: float) -> np.ndarray:
    """The template with each eye's lids `factor` times as far apart (a cartoon's eyes)."""
    face = load_face_template().vertices.astype(np.float64).copy()
    for _, _, upper, lower in (RIGHT_EYE, LEFT_EYE):
        middle = (face[upper, 1] + face[lower, 1]) / 2
        for lid in (upper, lower):
            face[lid, 1] = middle + factor * (face[lid, 1] - middle)
    return face


def test_a_blink_closes_big_eyes():
    """Lid codes scale with eyes larger than the template's: a blink taken from one face shuts the eyes of a face whose
    eyes are twice as open (in face units, the same lid travel left them half open); smaller eyes keep face units."""
    template = load_face_template().vertices.astype(np.float64)
    blink = template.copy()
    for _, _, upper, lower in (RIGHT_EYE, LEFT_EYE):
        blink[upper, 1] = blink[lower, 1] = (template[upper, 1] + template[lower, 1]) / 2
    source = FaceIdentity.from_landmarks((100.0 * template + 256.0)[None], (512, 512))
    codes = encode_codes((100.0 * blink + 256.0)[None], source)
    for factor in (0.8, 2.0):
        target = FaceIdentity.from_landmarks((100.0 * _big_eyed_face(factor) + 256.0)[None], (512, 512))
        decoded = decode_codes(codes, target)[0]
        for _, _, upper, lower in (RIGHT_EYE, LEFT_EYE):
            open_px = 100.0 * factor * (template[lower, 1] - template[upper, 1])
            gap = decoded[lower, 1] - decoded[upper, 1]
            if factor > 1:
                assert abs(gap) < 0.05 * open_px
            else:  # the template's lid travel: past the smaller eye's closure by what it lacks
                assert gap == pytest.approx(open_px - 100.0 * (template[lower, 1] - template[upper, 1]), abs=0.05)


@pytest.mark.parametrize("which", ["template", "other"])
def test_codes_mean_the_same_for_different_identities(which):
    """The same head motion and expression in face units encodes to the same codes at any size."""
    neutral = load_face_template().vertices.astype(np.float64) if which == "template" else _other_face()
    framings = {
        "template": ((512, 512), 100.0, (256.0, 240.0, 0.0)),
        "other": ((720, 1280), 260.0, (600.0, 380.0, 50.0)),
    }
    frame_size, pixels_per_unit, origin = framings[which]
    # The reference: the neutral face, frontal, in its own framing.
    reference = _pose_landmarks(neutral, np.zeros(VISUAL_CODE_DIM), pixels_per_unit, origin)
    identity = FaceIdentity.from_landmarks(reference[None], frame_size)
    np.testing.assert_allclose(identity.neutral, neutral, atol=1e-5)
    assert identity.scale == pytest.approx(pixels_per_unit, rel=1e-6)

    rng = np.random.default_rng(7)
    codes = np.zeros((5, VISUAL_CODE_DIM))
    codes[:, POSE_SLICE] = rng.uniform(-1, 1, (5, 6)) * np.array([0.5, 0.3, 0.3, 0.3, 0.3, 0.2])
    codes[:, EXP_SLICE] = rng.normal(0.0, 0.03, (5, 48))
    codes[:, EYE_SLICE] = rng.uniform(-0.15, 0.15, (5, 4))
    for side in ("right", "left"):  # lids moving apart only: their common motion moves the whole eye (tested below)
        upper, lower = ([POSE_DIM + EXP_NAMES.index(f"exp_{lid}_lid_{side}_{axis}") for axis in "xyz"]
                        for lid in ("upper", "lower"))
        codes[:, lower] = -codes[:, upper]
    landmarks = np.stack([_pose_landmarks(_express(neutral, c), c, pixels_per_unit, origin) for c in codes])
    encoded = encode_codes(landmarks, identity)
    assert encoded.dtype == np.float32 and encoded.shape == (5, VISUAL_CODE_DIM)
    np.testing.assert_allclose(encoded, codes, atol=2e-5)
    # ... and decoding them lands every point encode reads back where it was.
    decoded = decode_codes(encoded, identity)
    read = np.r_[load_face_template().stable_indices, load_face_template().semantic_indices, 468, 473]
    assert np.abs(decoded[:, read] - landmarks[:, read]).max() < 0.02  # pixels


def test_lids_moving_together_carry_the_eye():
    """An eye's two lids moving the same way (MediaPipe's eye corners follow them: the eye region's shift with head
    pitch, a cheek raise) move its corners and iris by the motion they share; the lids land on their codes, the brows
    and the other eye stay; lids moving apart or together (a blink) leave the eye where it is."""
    neutral = load_face_template().vertices.astype(np.float64)
    reference = _pose_landmarks(neutral, np.zeros(VISUAL_CODE_DIM), 100.0, (256.0, 240.0, 0.0))
    identity = FaceIdentity.from_landmarks(reference[None], (512, 512))
    codes = np.zeros((1, VISUAL_CODE_DIM))
    for lid in ("upper", "lower"):
        codes[0, POSE_DIM + EXP_NAMES.index(f"exp_{lid}_lid_right_y")] = 0.02  # both down, 2 px
    moved = decode_codes(codes, identity)[0] - decode_codes(np.zeros_like(codes), identity)[0]  # 478 3
    follow = 0.02 * 100.0  # the whole shared motion
    np.testing.assert_allclose(moved[[RIGHT_EYE[0], RIGHT_EYE[1], RIGHT_IRIS[0]], 1], follow, atol=1e-3)
    np.testing.assert_allclose(moved[[RIGHT_EYE[2], RIGHT_EYE[3]], 1], 2.0, atol=1e-3)
    np.testing.assert_allclose(moved[[107, 70, LEFT_EYE[0], LEFT_EYE[2], LEFT_IRIS[0]]], 0.0, atol=1e-6)
    codes[0, POSE_DIM + EXP_NAMES.index("exp_lower_lid_right_y")] = -0.005  # a blink: the lids meet, the eye stays
    moved = decode_codes(codes, identity)[0] - decode_codes(np.zeros_like(codes), identity)[0]
    np.testing.assert_allclose(moved[[RIGHT_EYE[0], RIGHT_EYE[1], RIGHT_IRIS[0]]], 0.0, atol=1e-6)


def test_an_open_mouth_decodes_round_not_as_a_diamond():
    """The lower lip's middle moved down: each lip chain bends on an arch between its corners, as MediaPipe's lips do
    (its points 1-4 from a corner at 0.30-0.95 of the middle's bend), not only near the middle (Gaussians from the few
    lip points of the codes decoded a wide-open mouth as a diamond: 0.12 at the first point); the corners stay and
    every expression point decodes to its code."""
    from omnitalker.frontend.face.template import LIP_CHAINS

    neutral = load_face_template().vertices.astype(np.float64)
    reference = _pose_landmarks(neutral, np.zeros(VISUAL_CODE_DIM), 100.0, (256.0, 240.0, 0.0))
    identity = FaceIdentity.from_landmarks(reference[None], (512, 512))
    codes = np.zeros((1, VISUAL_CODE_DIM))
    for point in ("lower_lip_inner", "lower_lip_outer"):
        codes[0, POSE_DIM + EXP_NAMES.index(f"exp_{point}_y")] = 0.3  # the jaw dropped: 30 px
    moved = decode_codes(codes, identity)[0] - decode_codes(np.zeros_like(codes), identity)[0]  # 478 3
    assert moved[LIP_CHAINS[3][5], 1] == pytest.approx(30.0, abs=1e-3)
    for chain in LIP_CHAINS[2:]:  # the lower lip's inner edge and the ring outside it
        drop = moved[list(chain), 1]
        assert drop[5] > 20.0  # the middle went down with the lip (the inner edge's is its code: 30 px)
        assert np.all(np.abs(drop[[0, -1]]) < 0.1 * drop[5])  # the corners stay
        share = drop[1:5] / drop[5]
        assert np.all(np.diff(share) > 0) and share[0] > 0.25 and share[1] > 0.45, share
        np.testing.assert_allclose(drop[1:5], drop[-2:-6:-1], atol=1e-3)  # symmetric


def test_the_frame_to_warp_from_is_the_most_typical():
    """The renderer's source frame is near the neutral face, looking where the person usually looks, with the head
    in its usual pose: not the nearest-neutral frame when that one looks sideways or has the head turned (the renderer
    then guesses half an iris, or the other side of the face)."""
    neutral = load_face_template().vertices.astype(np.float64)
    names = [name for name, _ in EXPRESSION_POINTS]
    rng = np.random.default_rng(0)

    def frame(point: str, offset: float, gaze_x: float = 0.0, yaw: float = 0.0, mouth: float = 0.0) -> np.ndarray:
        codes = np.zeros(VISUAL_CODE_DIM)
        exp = codes[EXP_SLICE].reshape(16, 3)  # a view: writes go into `codes`
        exp[names.index(point), 1] = offset
        exp[names.index("lower_lip_inner"), 1] = mouth
        codes[EYE_SLICE] = np.array([gaze_x, 0.0, gaze_x, 0.0]) + rng.normal(0.0, 0.005, 4)  # tracking noise
        codes[POSE_SLICE] = np.array([yaw, 0, 0, 0, 0, 0]) + rng.normal(0.0, 0.005, 6)
        return _pose_landmarks(_express(neutral, codes), codes, 100.0, (256.0, 240.0, 0.0))

    speaking = [frame("brow_inner_left", 0.0, mouth=mouth) for mouth in (0.05, 0.08, 0.1, 0.12, 0.15, 0.2)]
    sideways = [frame("brow_inner_right", 0.01, gaze_x=0.15), frame("brow_inner_right", -0.01, gaze_x=0.15)]
    turned = [frame("brow_outer_right", 0.01, yaw=0.3), frame("brow_outer_right", -0.01, yaw=0.3)]
    ahead = [frame("brow_outer_left", 0.015), frame("brow_outer_left", -0.015)]  # a little further from neutral
    identity = FaceIdentity.from_landmarks(np.stack(speaking + sideways + turned + ahead), (512, 512))
    assert identity.reference_index in (10, 11)
    # ... but the expression counts most: a little off in gaze and pose, a neutral frame beats open mouths
    talking = [frame("brow_inner_left", 0.0, mouth=mouth) for mouth in (0.15, 0.2, 0.25, 0.3, 0.35, 0.4)]
    off = [frame("brow_inner_right", 0.01, gaze_x=0.01, yaw=0.01), frame("brow_inner_right", -0.01, gaze_x=0.01)]
    identity = FaceIdentity.from_landmarks(np.stack(talking + off), (512, 512))
    assert identity.reference_index in (6, 7)


def test_identity_save_load(photo_track):
    identity = FaceIdentity.from_track(photo_track)
    restored = FaceIdentity.from_dict(identity.to_dict())
    codes = encode_codes(photo_track.landmarks, identity)
    np.testing.assert_array_equal(decode_codes(codes, restored), decode_codes(codes, identity))
    assert restored.frame_size == (512, 512)


# ----------------------------------------------------------------------------- MediaPipe round trips
def test_round_trip_on_the_photo(photo_track):
    errors = point_errors(photo_track)
    assert errors.max() < 0.01  # the identity is this very frame


def test_round_trip_and_pose_on_a_rotating_video(rotated_track):
    errors = point_errors(rotated_track)
    assert errors.mean() < 1.0 and errors.max() < 6.0  # pixels at 512 x 512 (measured ~0.4 / ~2)
    codes = encode_codes(rotated_track.landmarks, FaceIdentity.from_track(rotated_track))
    roll_change = np.degrees(codes[:, 2] - codes[0, 2])
    # cv2's positive angle is counter-clockwise, the code's positive roll clockwise.
    np.testing.assert_allclose(roll_change, -np.array(ROTATION_DEGREES), atol=1.5)
    np.testing.assert_allclose(codes[:, 5] - codes[0, 5], np.log(ZOOM), atol=0.02)
    assert np.abs(codes[:, EXP_SLICE]).max() < 0.05  # no expression change in a rigid motion
    assert np.isfinite(codes).all()


def test_round_trip_with_a_mouth_opening(jaw_track):
    errors = point_errors(jaw_track)
    assert errors.mean() < 1.5 and errors.max() < 8.0  # measured ~0.7 / ~4
    codes = encode_codes(jaw_track.landmarks, FaceIdentity.from_track(jaw_track))
    lower_lip = codes[:, CODE_NAMES.index("exp_lower_lip_inner_y")]
    assert np.corrcoef(JAW_DROP_PX, lower_lip)[0, 1] > 0.9  # the lip goes down (+y) as the jaw drops
    upper_lip = codes[:, CODE_NAMES.index("exp_upper_lip_inner_y")]
    assert np.ptp(upper_lip) < 0.5 * np.ptp(lower_lip)


def test_bad_codes_and_landmarks_are_rejected(photo_track):
    identity = FaceIdentity.from_track(photo_track)
    with pytest.raises(ValueError, match=r"\(T, 478, 3\)"):
        encode_codes(np.zeros((2, 468, 3)), identity)
    bad = photo_track.landmarks.copy()
    bad[0, 5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        encode_codes(bad, identity)
    with pytest.raises(ValueError, match=r"\(T, 58\)"):
        decode_codes(np.zeros((3, 57)), identity)
    with pytest.raises(ValueError, match="no frame"):
        FaceIdentity.from_landmarks(photo_track.landmarks, (512, 512), detected=np.zeros(1, bool))


# ----------------------------------------------------------------------------- time
def test_resample_keeps_motion_and_duration():
    time = np.arange(90) / 30.0  # 3 s at 30 fps
    codes = np.zeros((90, VISUAL_CODE_DIM))
    codes[:, 0] = 0.3 * np.sin(2 * np.pi * 0.7 * time)
    up = resample_codes(codes, 30.0, MEL_FPS)
    assert up.shape == (round(3 * MEL_FPS), VISUAL_CODE_DIM) and up.dtype == np.float32
    up_time = np.arange(len(up)) / MEL_FPS
    inside = up_time <= time[-1]
    np.testing.assert_allclose(up[inside, 0], 0.3 * np.sin(2 * np.pi * 0.7 * up_time[inside]), atol=3e-3)
    down = resample_codes(up, MEL_FPS, 25.0)
    assert len(down) == 75
    np.testing.assert_allclose(down[:70, 0], 0.3 * np.sin(2 * np.pi * 0.7 * np.arange(70) / 25.0), atol=1e-2)
    assert resample_codes(codes, 30.0, 25.0, num_frames=10).shape == (10, VISUAL_CODE_DIM)


def test_resample_variable_frame_rate_uses_timestamps():
    rng = np.random.default_rng(3)
    stamps = np.cumsum(rng.uniform(0.03, 0.06, size=60))
    codes = np.zeros((60, VISUAL_CODE_DIM))
    codes[:, 3] = stamps  # tx = time: a linear signal survives linear interpolation exactly
    out = resample_codes(codes, 1 / 0.045, 30.0, timestamps=stamps)
    out_time = np.arange(len(out)) / 30.0
    valid = out_time <= stamps[-1] - stamps[0]
    np.testing.assert_allclose(out[valid, 3], stamps[0] + out_time[valid], atol=1e-5)
    with pytest.raises(ValueError, match="increasing"):
        resample_codes(codes, 30.0, 30.0, timestamps=stamps[::-1])


def test_smoothing_removes_jitter_but_keeps_motion():
    rng = np.random.default_rng(4)
    time = np.arange(150) / 30.0
    clean = np.zeros((150, VISUAL_CODE_DIM))
    clean[:, 0] = 0.25 * np.sin(2 * np.pi * 0.5 * time)  # a head turn every 2 s
    clean[:, EXP_SLICE] = 0.05 * np.sin(2 * np.pi * 3.0 * time)[:, None]  # speech-rate lip motion
    noisy = clean + rng.normal(0.0, 0.01, clean.shape)
    smoothed = smooth_codes(noisy, fps=30.0)

    def rms(error, part):
        return np.sqrt(np.mean(error[10:-10, part] ** 2))

    # White jitter loses the power above the cutoffs (pose 4 Hz, exp 8 Hz of the 15 Hz band).
    assert rms(smoothed - clean, POSE_SLICE) < 0.65 * rms(noisy - clean, POSE_SLICE)
    assert rms(smoothed - clean, EXP_SLICE) < 0.85 * rms(noisy - clean, EXP_SLICE)
    assert rms(smooth_codes(noisy, 30.0, cutoff_hz=2.0) - clean, POSE_SLICE) < 0.5 * rms(
        noisy - clean, POSE_SLICE
    )

    def amplitude(signal, hertz):  # least-squares amplitude of the sinusoid in the signal
        return 2.0 * np.mean(signal * np.sin(2 * np.pi * hertz * time))

    # Real motion keeps its size: the head turn and the lip motion are not flattened.
    assert amplitude(smoothed[:, 0], 0.5) == pytest.approx(0.25, rel=0.05)
    assert amplitude(smoothed[:, EXP_SLICE.start], 3.0) == pytest.approx(0.05, rel=0.1)
    assert np.corrcoef(smoothed[:, 0], clean[:, 0])[0, 1] > 0.99  # no lag (zero phase)
    assert smooth_codes(noisy[:2], fps=30.0).shape == (2, VISUAL_CODE_DIM)
    with pytest.raises(ValueError, match="unknown code streams"):
        smooth_codes(noisy, cutoff_hz={"mouth": 3.0})
