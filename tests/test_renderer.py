"""WarpRenderer on a real photo (scikit-image's public-domain astronaut) with MediaPipe landmarks, driven
by known landmark edits: rotation, jaw opening, closed lids, moved irises."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from omnitalker.render.segment import background_plate, keep_background
from omnitalker.render.warp import (
    NUM_FACE_TRIANGLES,
    RenderReference,
    WarpRenderer,
    mesh_topology,
    split_loop,
    turned_away_faces,
)

skimage_data = pytest.importorskip("skimage.data")
mp = pytest.importorskip("mediapipe")

CORNER = 24  # px: the image corners checked for a still background
LID_SKIN_ABOVE = 0.2  # eye widths above a closed eye: lid skin


def detect(image: np.ndarray) -> np.ndarray | None:
    """(478, 3) pixel landmarks of the first face, or None."""
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    if not result.multi_face_landmarks:
        return None
    h, w = image.shape[:2]
    return np.array([[p.x * w, p.y * h, p.z * w] for p in result.multi_face_landmarks[0].landmark], np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-12)))


def luma(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.fixture(scope="module")
def astronaut():
    image = skimage_data.astronaut()
    landmarks = detect(image)
    assert landmarks is not None
    return image, landmarks


@pytest.fixture(scope="module")
def renderer():
    return WarpRenderer(output_size=256)


@pytest.fixture(scope="module")
def reference(renderer, astronaut):
    return renderer.prepare(*astronaut)


def face_axis(landmarks):
    topo = mesh_topology()
    axis = landmarks[topo.iris_centers[1], :2] - landmarks[topo.iris_centers[0], :2]
    return axis / np.linalg.norm(axis)


def rotate(landmarks, yaw_deg=0.0, pitch_deg=0.0):
    yaw, pitch = np.deg2rad(yaw_deg), np.deg2rad(pitch_deg)
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    center = landmarks[:468].mean(0)
    return ((landmarks - center) @ (ry @ rx).T + center).astype(np.float32)


def open_jaw(landmarks, amount_px):
    """Move the lower lip, chin and jaw down; the upper lip stays."""
    topo = mesh_topology()
    upper, lower = split_loop(topo.mouth_loop, landmarks, face_axis(landmarks))
    corner_y = landmarks[[upper[0], upper[-1]], 1].mean()
    lip_y = landmarks[lower[len(lower) // 2], 1]
    weight = np.clip((landmarks[:, 1] - corner_y) / (lip_y - corner_y), 0, 1)
    weight[upper] = 0
    weight[468:] = 0
    moved = landmarks.copy()
    moved[:, 1] += amount_px * weight
    return moved


def close_eyes(landmarks):
    """Upper eyelid contours lowered onto the lower ones."""
    topo = mesh_topology()
    moved = landmarks.copy()
    for loop in topo.eye_loops:
        upper, lower = split_loop(loop, landmarks, face_axis(landmarks))
        for idx in upper[1:-1]:
            nearest = lower[np.argmin(np.abs(landmarks[lower, 0] - landmarks[idx, 0]))]
            moved[idx, :2] = landmarks[nearest, :2]
    return moved


def shift_irises(landmarks, dx):
    moved = landmarks.copy()
    moved[468:, 0] += dx
    return moved


def test_topology_from_mediapipe():
    topo = mesh_topology()
    assert topo.face_triangles.shape == (NUM_FACE_TRIANGLES, 3)
    assert len(topo.oval_loop) == 36 and len(topo.mouth_loop) == 20
    assert [len(loop) for loop in topo.eye_loops] == [16, 16]
    assert topo.iris_centers == (468, 473)
    # every tessellation edge is used by at most two triangles (a proper surface)
    edges = np.sort(np.concatenate([topo.face_triangles[:, [0, 1]], topo.face_triangles[:, [1, 2]],
                                    topo.face_triangles[:, [0, 2]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert counts.max() == 2


def test_identity_reproduces_reference(renderer, reference, astronaut):
    image, landmarks = astronaut
    frame = renderer.render_frame(reference, landmarks)
    assert frame.shape == image.shape and frame.dtype == np.uint8
    assert psnr(frame, image) > 34.0  # measured 40.7 dB (crop resampled to 256 and back)


def test_head_rotation_moves_face_and_keeps_background(renderer, reference, astronaut):
    image, landmarks = astronaut
    driven = rotate(landmarks, yaw_deg=15)
    frame = renderer.render_frame(reference, driven)
    for ys, xs in [(slice(0, CORNER), slice(0, CORNER)), (slice(0, CORNER), slice(-CORNER, None)),
                   (slice(-CORNER, None), slice(0, CORNER)), (slice(-CORNER, None), slice(-CORNER, None))]:
        np.testing.assert_array_equal(frame[ys, xs], image[ys, xs])
    # the crop border is anchored: the pasted crop meets the untouched frame without a seam
    x0, y0 = (int(v) for v in reference.crop_origin)
    size = reference.crop_size
    ring = np.zeros(image.shape[:2], bool)
    ring[max(y0, 0): y0 + size, max(x0, 0): x0 + size] = True
    inner = np.zeros_like(ring)
    inner[max(y0 + 4, 0): y0 + size - 4, max(x0 + 4, 0): x0 + size - 4] = True
    assert np.abs(frame.astype(float) - image)[ring & ~inner].mean() < 3.0
    # the face really turned: MediaPipe finds the landmarks nearer the driven ones than the reference's
    found = detect(frame)
    assert found is not None
    to_driven = np.abs(found[:468, :2] - driven[:468, :2]).mean()
    to_reference = np.abs(found[:468, :2] - landmarks[:468, :2]).mean()
    assert to_driven < 0.6 * to_reference, (to_driven, to_reference)  # measured 0.83 vs 1.67 px


def test_mouth_opening_darkens_the_mouth(renderer, reference, astronaut):
    image, landmarks = astronaut
    topo = mesh_topology()
    driven = open_jaw(landmarks, 10.0)
    frame = renderer.render_frame(reference, driven)
    upper, lower = split_loop(topo.mouth_loop, landmarks, face_axis(landmarks))
    mid = len(lower) // 2
    # pixels half-way between the driven lips (cavity) vs the same place in the reference (teeth)
    x = int(round(driven[lower[mid], 0]))
    top, bottom = driven[upper[mid], 1], driven[lower[mid], 1]
    y = int(round((top + bottom) / 2))
    assert luma(frame[y - 1: y + 2, x - 3: x + 4]).mean() < luma(image[y - 1: y + 2, x - 3: x + 4]).mean() - 40


def test_closed_reference_mouth_gets_teeth_and_cavity(renderer, reference, astronaut):
    _, landmarks = astronaut
    topo = mesh_topology()
    upper, lower = split_loop(topo.mouth_loop, landmarks, face_axis(landmarks))
    closed = landmarks.copy()
    middle = (landmarks[upper, 1] + landmarks[lower, 1]) / 2
    closed[upper, 1] = middle
    closed[lower, 1] = middle
    closed_image = renderer.render_frame(reference, closed)
    closed_ref = renderer.prepare(closed_image, closed)
    frame = renderer.render_frame(closed_ref, open_jaw(closed, 12.0))
    driven = open_jaw(closed, 12.0)
    x = int(round(driven[lower[len(lower) // 2], 0]))
    column = luma(frame[int(driven[upper[len(upper) // 2], 1]): int(driven[lower[len(lower) // 2], 1]), x])
    assert column.max() > 150  # teeth under the upper lip
    assert column.min() < min(100, column.max() - 80)  # a darker cavity further in (lit like real ones: not black)


def test_closed_eyes_hide_the_iris(renderer, reference, astronaut):
    image, landmarks = astronaut
    frame = renderer.render_frame(reference, close_eyes(landmarks))
    for center in mesh_topology().iris_centers:
        x, y = np.round(landmarks[center, :2]).astype(int)
        before, after = luma(image[y - 1: y + 2, x - 1: x + 2]).mean(), luma(frame[y - 1: y + 2, x - 1: x + 2]).mean()
        assert after > before + 40, (before, after)


def test_irises_follow_gaze(renderer, reference, astronaut):
    _, landmarks = astronaut
    topo = mesh_topology()
    positions = []
    for dx in (-3.0, 3.0):
        frame = renderer.render_frame(reference, shift_irises(landmarks, dx))
        darkest = []
        for loop in topo.eye_loops:
            lo = np.floor(landmarks[loop, :2].min(0)).astype(int)
            hi = np.ceil(landmarks[loop, :2].max(0)).astype(int)
            patch = luma(frame[lo[1]: hi[1], lo[0]: hi[0]])
            ys, xs = np.nonzero(patch <= np.percentile(patch, 10))
            darkest.append(lo[0] + xs.mean())
        positions.append(darkest)
    shift = np.subtract(positions[1], positions[0])
    assert (shift > 3.0).all(), shift  # irises moved 6 px to the right


def test_render_sequence_and_progress(renderer, reference, astronaut):
    image, landmarks = astronaut
    sequence = np.stack([rotate(landmarks, yaw_deg=a) for a in (-5, 0, 5)])
    calls = []
    frames = renderer.render(reference, sequence, progress=lambda done, total: calls.append((done, total)))
    assert frames.shape == (3, *image.shape) and frames.dtype == np.uint8
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert psnr(frames[1], image) > 34.0


def test_extreme_landmarks_do_not_crash(renderer, reference, astronaut):
    _, landmarks = astronaut
    rng = np.random.default_rng(0)
    wild = landmarks + rng.normal(0, 15, landmarks.shape).astype(np.float32)
    frame = renderer.render_frame(reference, wild)
    assert frame.shape == reference.image.shape


@pytest.mark.parametrize("size", [256, 512])
def test_output_sizes(size, astronaut):
    """The crop is rendered at output_size, or at its own size in the frame if smaller (never upsampled)."""
    image, landmarks = astronaut
    renderer = WarpRenderer(output_size=size)
    reference = renderer.prepare(image, landmarks)
    crop = renderer.render_crop(reference, landmarks)
    assert reference.render_size == min(size, reference.crop_size)
    assert crop.shape == (reference.render_size, reference.render_size, 3)
    assert renderer.render_frame(reference, landmarks).shape == image.shape


def test_gray_and_rgba_are_converted(renderer, astronaut):
    image, landmarks = astronaut
    gray = renderer.prepare(image[..., 0], landmarks)
    rgba = renderer.prepare(np.concatenate([image, np.full_like(image[..., :1], 255)], axis=2), landmarks)
    assert isinstance(gray, RenderReference) and gray.image.shape == image.shape
    np.testing.assert_array_equal(rgba.image, image)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda img, lm: (img.astype(np.uint16) * 257, lm), "uint8"),
        (lambda img, lm: (img / 255.0, lm), "uint8"),
        (lambda img, lm: (img[..., :2], lm), r"\(H, W, 3\)"),
        (lambda img, lm: (img.tolist(), lm), "numpy array"),
        (lambda img, lm: (img, lm[:468]), "478"),
        (lambda img, lm: (img, np.where(np.arange(478)[:, None] == 5, np.nan, lm)), "NaN"),
        (lambda img, lm: (img, lm + 5000), "outside"),
    ],
)
def test_bad_reference_inputs(renderer, astronaut, make, match):
    with pytest.raises(ValueError, match=match):
        renderer.prepare(*make(*astronaut))


def test_bad_render_inputs(renderer, reference, astronaut):
    _, landmarks = astronaut
    with pytest.raises(ValueError, match=r"\(T, 478, 3\)"):
        renderer.render(reference, landmarks)  # one frame given where a sequence is expected
    with pytest.raises(ValueError, match="prepare"):
        renderer.render_frame(object(), landmarks)


@pytest.mark.parametrize(
    "kwargs", [dict(output_size=8), dict(crop_scale=0.9), dict(ring_scales=(1.3,)), dict(map_downsample=0),
               dict(border_anchors=1), dict(feather=0.7)],
)
def test_bad_config(kwargs):
    with pytest.raises(ValueError):
        WarpRenderer(**kwargs)


def test_config_round_trip(tmp_path):
    renderer = WarpRenderer(output_size=256, crop_scale=2.6, mouth_fill=False)
    renderer.save_pretrained(tmp_path / "renderer")
    assert (tmp_path / "renderer" / WarpRenderer.config_name).exists()
    loaded = WarpRenderer.from_pretrained(tmp_path, subfolder="renderer")
    assert loaded.config.output_size == 256 and loaded.config.crop_scale == 2.6 and not loaded.config.mouth_fill
    assert list(loaded.config.ring_scales) == list(renderer.config.ring_scales)
    # a setting named when loading overrides the saved one (it was silently dropped); a misspelt one is refused
    overridden = WarpRenderer.from_pretrained(tmp_path, subfolder="renderer", eye_fill=False, crop_scale=2.2)
    assert not overridden.config.eye_fill and overridden.config.crop_scale == 2.2
    assert overridden.config.output_size == 256
    with pytest.raises(ValueError, match="no setting eye_fil"):
        WarpRenderer.from_pretrained(tmp_path, subfolder="renderer", eye_fil=False)


@pytest.mark.parametrize("mouth_fill, eye_fill", [(False, False), (True, False), (False, True)])
def test_fills_can_be_switched_off(astronaut, mouth_fill, eye_fill):
    image, landmarks = astronaut
    renderer = WarpRenderer(output_size=128, mouth_fill=mouth_fill, eye_fill=eye_fill)
    reference = renderer.prepare(image, landmarks)
    assert (reference.mouth is not None) == mouth_fill and (reference.eyes is not None) == eye_fill
    assert psnr(renderer.render_frame(reference, landmarks), image) > 30.0
    frame = renderer.render_frame(reference, open_jaw(close_eyes(landmarks), 8.0))
    assert frame.shape == image.shape


def test_face_at_the_image_edge(renderer, astronaut):
    image, landmarks = astronaut
    shift = np.array([170.0, 40.0, 0.0], np.float32)  # the face ends up ~9 px from the left edge
    edge_image, edge_landmarks = np.ascontiguousarray(image[40:, 170:]), landmarks - shift
    reference = renderer.prepare(edge_image, edge_landmarks)
    assert reference.crop_origin[0] < 0  # the crop box sticks out of the image
    assert psnr(renderer.render_frame(reference, edge_landmarks), edge_image) > 32.0
    turned = renderer.render_frame(reference, rotate(edge_landmarks, yaw_deg=-12))
    np.testing.assert_array_equal(turned[-CORNER:, -CORNER:], edge_image[-CORNER:, -CORNER:])


# ------------------------------------------------------------------------------------------------ layers


def mouth_polygon(landmarks):
    topo = mesh_topology()
    upper, lower = split_loop(topo.mouth_loop, landmarks, face_axis(landmarks))
    return np.concatenate([landmarks[upper, :2], landmarks[lower[::-1], :2]]), upper, lower


def paint_inside(image, polygon, color):
    import cv2

    painted = image.copy()
    cv2.fillPoly(painted, [np.round(polygon).astype(np.int32)], color)
    return painted


def mouth_interior_color(frame, driven):
    """Mean colour of the pixels well inside the driven mouth opening."""
    polygon, upper, lower = mouth_polygon(driven)
    mid_x = driven[[upper[len(upper) // 2], lower[len(lower) // 2]], 0].mean()
    top, bottom = driven[upper[len(upper) // 2], 1], driven[lower[len(lower) // 2], 1]
    ys = slice(int(top + 0.3 * (bottom - top)), int(bottom - 0.3 * (bottom - top)))
    return frame[ys, int(mid_x) - 4: int(mid_x) + 5].reshape(-1, 3).mean(0)


def test_video_reference_draws_the_mouth_from_its_own_frames(renderer, reference, astronaut):
    """An open-mouth frame of the reference clip (its interior painted green here) is what the driven open mouth
    shows; with the photo alone it is not."""
    image, landmarks = astronaut
    opened = open_jaw(landmarks, 12.0)
    open_frame = paint_inside(renderer.render_frame(reference, opened), mouth_polygon(opened)[0], (0, 255, 0))
    video_ref = renderer.prepare(image, landmarks, open_frame[None], opened[None])
    assert video_ref.mouth.bank_states is not None and len(video_ref.mouth.bank_states) == 1
    driven = open_jaw(landmarks, 10.0)
    r, g, b = mouth_interior_color(renderer.render_frame(video_ref, driven), driven)
    assert g > 200 and r < 60 and b < 60, (r, g, b)
    r, g, b = mouth_interior_color(renderer.render_frame(reference, driven), driven)
    assert g < 120, (r, g, b)


def test_video_reference_draws_a_blink_from_its_own_shut_eyes(renderer, reference, astronaut):
    """A frame of the reference clip whose eyes are shut (a spot of its lid skin painted green here) is what a driven
    blink shows there; the driven eye at the source's opening, and a blink from the photo alone, do not."""
    image, landmarks = astronaut
    shut = close_eyes(landmarks)
    shut_frame = renderer.render_frame(reference, shut)
    probes = []
    for loop in mesh_topology().eye_loops:
        upper, lower = split_loop(loop, landmarks, face_axis(landmarks))
        width = np.linalg.norm(landmarks[upper[-1], :2] - landmarks[upper[0], :2])
        x, y = shut[lower[len(lower) // 2], :2] - np.array([0.0, 0.15 * width])
        probes.append((int(round(x)), int(round(y))))
        yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
        shut_frame[np.hypot(xx - x, yy - y) <= 0.1 * width] = (0, 255, 0)
    video_ref = renderer.prepare(image, landmarks, shut_frame[None], shut[None])
    assert all(eye.bank is not None and len(eye.bank.states) == 1 for eye in video_ref.eyes)

    def colours(frame):
        return [frame[y, x].astype(int) for x, y in probes]

    for r, g, b in colours(renderer.render_frame(video_ref, shut)):
        assert g > 180 and r < 80 and b < 80, (r, g, b)
    for frame in (renderer.render_frame(reference, shut), renderer.render_frame(video_ref, landmarks)):
        for r, g, b in colours(frame):
            assert g < r + 40, (r, g, b)


def test_the_mouth_bank_starts_inside_the_lips(renderer, reference, astronaut):
    """The inner-lip contour of a bank frame (painted red) is lip, not interior: no row of the entry shows it."""
    import cv2

    from omnitalker.render.mouth import bank_entries

    image, landmarks = astronaut
    opened = open_jaw(landmarks, 14.0)
    polygon, upper, lower = mouth_polygon(opened)
    frame = paint_inside(renderer.render_frame(reference, opened), polygon, (0, 255, 0))
    cv2.polylines(frame, [np.round(polygon).astype(np.int32)], True, (255, 0, 0), 1)
    _, (texture,) = bank_entries(frame[None], opened[None], upper, lower)
    middle = texture[:, texture.shape[1] // 4: 3 * texture.shape[1] // 4].astype(int)  # away from the corners
    red = (middle[..., 0] > 150) & (middle[..., 1] < 120)
    assert red.mean() < 0.02, red.mean(1)


def test_bank_keeps_only_open_mouths(renderer, astronaut):
    image, landmarks = astronaut
    polygon, upper, lower = mouth_polygon(landmarks)
    closed = landmarks.copy()
    middle = (landmarks[upper, 1] + landmarks[lower, 1]) / 2
    closed[upper, 1], closed[lower, 1] = middle, middle
    state = renderer.prepare(image, landmarks, np.stack([image, image]), np.stack([closed, closed]))
    assert state.mouth.bank_states is None  # nothing open to learn from: the strips are used


def test_barely_parted_lips_get_no_interior(renderer, reference, astronaut):
    """Lips parted by a hair show the warp's lip line, not a bar of teeth (the interior layer is faded out)."""
    from omnitalker.render.mouth import MOUTH_CLOSED_RATIO

    image, landmarks = astronaut
    polygon, upper, lower = mouth_polygon(landmarks)
    closed = landmarks.copy()
    middle = (landmarks[upper, 1] + landmarks[lower, 1]) / 2
    width = np.ptp(landmarks[upper, 0])
    closed[upper, 1] = middle - 0.25 * MOUTH_CLOSED_RATIO * width
    closed[lower, 1] = middle + 0.25 * MOUTH_CLOSED_RATIO * width
    plain = WarpRenderer(output_size=256, mouth_fill=False)
    np.testing.assert_array_equal(renderer.render_crop(reference, closed),
                                  plain.render_crop(plain.prepare(image, landmarks), closed))


def test_layers_are_anti_aliased(renderer, reference, astronaut):
    """The mouth layer's coverage ramps at the lips (values strictly between 0 and 1), never a hard step only."""
    from omnitalker.render.mouth import mouth_layers

    _, landmarks = astronaut
    opened = open_jaw(landmarks, 10.0)
    driven = renderer.driven_vertices(reference, opened)[:478]
    (layer,) = mouth_layers(reference.mouth, driven, reference.render_size, renderer.crop_head_pose(reference, opened))
    partial = (layer.alpha > 0.05) & (layer.alpha < 0.95)
    assert partial.sum() > 10 and (layer.alpha >= 0.95).sum() > 50


def test_a_trembling_lid_leaves_the_eye_as_it_was(renderer, reference, astronaut):
    """A lid that moves by a fraction of a pixel changes the eye by no more than that (no layer pops in)."""
    image, landmarks = astronaut
    topo = mesh_topology()
    moved = landmarks.copy()
    for loop in topo.eye_loops:
        upper, _ = split_loop(loop, landmarks, face_axis(landmarks))
        moved[upper[1:-1], 1] += 0.4
    frame, still = renderer.render_frame(reference, moved), renderer.render_frame(reference, landmarks)
    for loop in topo.eye_loops:
        lo = np.floor(landmarks[loop, :2].min(0)).astype(int) - 4
        hi = np.ceil(landmarks[loop, :2].max(0)).astype(int) + 4
        window = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        assert psnr(frame[window], still[window]) > 31.5  # measured 32.8 and 31.9 dB (a layer popping in: far below)


@pytest.mark.parametrize(
    "frames, frame_landmarks, match",
    [
        (lambda img: img[None], lambda lm: None, "together"),
        (lambda img: img[None, :100], lambda lm: lm[None], "like the reference image"),
        (lambda img: np.stack([img, img]), lambda lm: lm[None], "2 frames but 1"),
    ],
)
def test_bad_reference_frames(renderer, astronaut, frames, frame_landmarks, match):
    image, landmarks = astronaut
    with pytest.raises(ValueError, match=match):
        renderer.prepare(image, landmarks, frames(image), frame_landmarks(landmarks))


def test_rings_follow_partly_and_never_fold(renderer, reference, astronaut):
    """Hair and shoulders follow a small head shift only partly; a large shift, which would fold the triangles
    between the face outline and the rings, makes them follow fully instead (no torn cheek)."""
    from omnitalker.render.warp import _flipped

    _, landmarks = astronaut
    face = np.ptp(landmarks[:468, 0])
    to_crop = reference.render_size / reference.crop_size
    source_rings = (reference.ring_points3d[:, :2] - reference.crop_origin + 0.5) * to_crop - 0.5
    inner_ring = slice(0, len(reference.oval))
    follows = []
    for shift in (0.05, 0.35):
        moved = landmarks + np.array([shift * face, 0.0, 0.0], np.float32)
        driven = renderer.driven_vertices(reference, moved)
        outer = slice(0, reference.num_outer)
        assert not _flipped(driven, reference.triangles[outer], reference.orientation[outer]).any()
        rings = driven[478: 478 + len(source_rings)]
        follows.append((rings - source_rings)[inner_ring, 0].mean() / (shift * face * to_crop))
    assert 0.05 < follows[0] < 0.3 and follows[1] == pytest.approx(1.0, abs=0.02), follows  # default 0.15, neck 0


def _closed_mouth_reference(renderer, reference, astronaut):
    """(landmarks with the lips pressed together, the reference prepared from them, the upper inner-lip chain)."""
    _, landmarks = astronaut
    upper, lower = split_loop(mesh_topology().mouth_loop, landmarks, face_axis(landmarks))
    closed = landmarks.copy()
    middle = (landmarks[upper, 1] + landmarks[lower, 1]) / 2
    closed[upper, 1], closed[lower, 1] = middle, middle
    return closed, renderer.prepare(renderer.render_frame(reference, closed), closed), upper


CENTRAL_INCISOR_MIDDLE = 0.05  # of the mouth's width right of the midline (render/mouth.py: tooth_gaps)


def _middle_column(renderer, closed_ref, driven_frame_px):
    """Luminance of the drawn mouth interior down the middle of the opening (top to bottom), and the crop px rows:
    down a central incisor, just off the midline, where the two central incisors meet at a gap."""
    import cv2

    from omnitalker.render.mouth import mouth_layers

    pose = renderer.crop_head_pose(closed_ref, driven_frame_px)
    driven = renderer.driven_vertices(closed_ref, driven_frame_px, pose)[:478]
    (layer,) = mouth_layers(closed_ref.mouth, driven, closed_ref.render_size, pose)
    drawn = luma(cv2.remap(closed_ref.atlas, layer.map_x, layer.map_y, cv2.INTER_LINEAR))
    left, right = driven[closed_ref.mouth.upper[0], 0], driven[closed_ref.mouth.upper[-1], 0]
    middle = (left + right) / 2 + CENTRAL_INCISOR_MIDDLE * (right - left)
    column = int(round(middle)) - layer.window[1].start
    inside = layer.alpha[:, column] > 0.9
    rows = np.arange(layer.window[0].start, layer.window[0].stop)
    return drawn[inside, column], rows[inside]


def test_drawn_teeth_sit_on_the_skull_and_the_jaw(renderer, reference, astronaut):
    """A closed-mouth photo's drawn teeth are fixed to the skull (upper row) and the jaw (lower row), not hung from
    the lips: lips drawn apart over a closed jaw (a grin) show both rows meeting across the opening; the jaw opened
    as wide shows the upper row over a dark mouth. The old teeth, hung from each lip, drew the same for both."""
    closed, closed_ref, upper = _closed_mouth_reference(renderer, reference, astronaut)
    assert closed_ref.mouth.drawn_teeth
    lower = closed_ref.mouth.lower
    gap = 0.25 * np.ptp(closed[upper, 0])
    grin = closed.copy()
    grin[upper[1:-1], 1] -= gap / 2
    grin[lower[1:-1], 1] += gap / 2
    grin_column, _ = _middle_column(renderer, closed_ref, grin)
    jaw_column, _ = _middle_column(renderer, closed_ref, open_jaw(closed, gap))
    assert len(grin_column) > 6 and len(jaw_column) > 6
    assert (grin_column > 150).mean() > 0.6, grin_column.round()  # teeth across the opening, a thin line between
    top, bottom = np.array_split(jaw_column, 2)
    assert top.max() > 150 and (bottom > 150).mean() < 0.3, jaw_column.round()  # upper row over a dark mouth


def test_drawn_teeth_do_not_stretch_with_the_lips(renderer, reference, astronaut):
    """The upper lip rising further uncovers more of the same teeth: their edge stays where it was in the image."""
    closed, closed_ref, upper = _closed_mouth_reference(renderer, reference, astronaut)
    width = np.ptp(closed[upper, 0])
    opened = open_jaw(closed, 0.25 * width)
    raised = opened.copy()
    raised[upper[1:-1], 1] -= 0.08 * width
    edges = []
    for driven in (opened, raised):
        column, rows = _middle_column(renderer, closed_ref, driven)
        assert column[0] > 150, column.round()  # teeth just below the upper lip
        edges.append(rows[np.argmax(column < 120)])  # the first dark row below them
    to_crop = closed_ref.render_size / closed_ref.crop_size
    assert abs(edges[1] - edges[0]) <= 1.5, edges  # px in the crop (the lip moved 0.08 width = more than that)
    assert 0.08 * width * to_crop > 3


def test_a_wide_open_jaw_shows_the_drawn_tongue(renderer, reference, astronaut):
    """The lower row rides on the jaw, which the chin points move further than the lower lip: opened wide, the row
    sank far below the lip and took the tongue behind it out of sight, so the opening was one flat dark slab. The
    lower lip covers the lower teeth by at most ``LOWER_LIP_COVER``: the tongue shows above it, redder and lighter
    than the cavity."""
    from omnitalker.render.mouth import CAVITY_TINT, TONGUE_TINT

    closed, closed_ref, upper = _closed_mouth_reference(renderer, reference, astronaut)
    column, _ = _middle_column(renderer, closed_ref, open_jaw(closed, 0.5 * np.ptp(closed[upper, 0])))
    assert len(column) > 12
    cavity, tongue = column[len(column) // 2 - 2: len(column) // 2 + 1], column[-4:-1]
    assert TONGUE_TINT @ (0.299, 0.587, 0.114) > CAVITY_TINT @ (0.299, 0.587, 0.114)
    assert tongue.mean() > cavity.mean() + 15, column.round()


def test_drawn_teeth_part_at_their_edges_not_down_the_whole_crown():
    """Neighbouring teeth touch in the middle of their crowns: the gap between them shows as a notch at the incisal
    edge and by the gum. Shaded as deep all the way down, the drawn teeth read as a comb of separate blocks."""
    from scipy.signal import peak_prominences

    from omnitalker.render.mouth import UPPER_TEETH_HEIGHT, teeth_edge_row, teeth_strips

    width = 120.0
    upper, _ = teeth_strips(width, np.array([200.0, 150.0, 130.0]))
    edge, crown = teeth_edge_row(width), UPPER_TEETH_HEIGHT * width * 2  # strip rows (2 texels per px)
    midline = upper.shape[1] // 2

    def gap(rows_above_edge):  # the midline gap's dip and the teeth's luminance, across a band of the crown
        band = luma(upper[edge - rows_above_edge - 2: edge - rows_above_edge + 2]).mean(0)
        return peak_prominences(-band, [midline], wlen=20)[0][0], band[midline - 8: midline + 8].max()

    (near_edge, _), (mid_crown, crown_luma) = gap(int(0.1 * crown)), gap(int(0.5 * crown))
    assert 2.0 < mid_crown < 0.08 * crown_luma, (mid_crown, crown_luma)  # a faint line where the teeth touch
    assert near_edge > 2 * mid_crown, (near_edge, mid_crown)  # a notch at the edge


def test_a_sliver_triangle_samples_no_further_than_its_own_source():
    """A nearly collapsed driven triangle (beside a nostril of a head tilting back) is drawn over grid cells whose
    centres lie off it; its affine map, extrapolated there, reached the reference's far edge and drew an orange
    square on the nose. Every cell samples inside its triangle's source box (SOURCE_BOX_MARGIN wider); the
    background cells are not bounded."""
    from omnitalker.render.warp import SOURCE_BOX_MARGIN, _affine_coefficients, sampling_maps, source_boxes

    driven = np.array([[[0.0, 2.0], [10.0, 2.0], [5.0, 2.01]]])  # a sliver along y = 2 (grid px)
    source = np.array([[[100.0, 100.0], [110.0, 100.0], [105.0, 110.0]]])  # a proper triangle in the reference
    coef = np.concatenate([_affine_coefficients(driven, source), [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]])
    ids = np.zeros((6, 12), np.int32)  # every cell drawn for the sliver, as LINE_8 rasterisation claims them
    ids[5, 11] = 1  # and one background cell
    map_x, map_y = sampling_maps(ids, coef, source_boxes(source))
    inside = ids == 0
    assert map_x[inside].min() >= 100 - SOURCE_BOX_MARGIN and map_x[inside].max() <= 110 + SOURCE_BOX_MARGIN
    assert map_y[inside].min() >= 100 - SOURCE_BOX_MARGIN and map_y[inside].max() <= 110 + SOURCE_BOX_MARGIN
    unclamped_y = coef[0, 3] * 5 + coef[0, 4] * 4 + coef[0, 5]  # 2 px off the sliver
    assert abs(unclamped_y - 100) > 500  # what the map gave there before
    assert (map_x[5, 11], map_y[5, 11]) == (11.0, 5.0)  # the background keeps its own map


def test_a_dark_parted_mouth_gets_drawn_teeth():
    """A photo whose lips part over a dark slot (teeth in shadow) gets drawn teeth; one showing its own teeth keeps
    them."""
    from omnitalker.render.geometry import LipFrame
    from omnitalker.render.mouth import draws_teeth

    image = np.full((64, 64, 3), (200, 150, 130), np.uint8)
    u = np.linspace(0, 1, 9)
    upper = np.stack([10 + 40 * u, 30 - 6 * np.sin(np.pi * u)], 1)  # parted by 0.3 of the width: wider than
    lower = np.stack([10 + 40 * u, 30 + 6 * np.sin(np.pi * u)], 1)  # MOUTH_OPEN_RATIO, so the interior decides
    points = np.concatenate([upper, lower[1:-1]])
    frame = LipFrame.from_points(points, np.arange(9), np.array([0, *range(9, 16), 8]))
    skin = np.array([200.0, 150.0, 130.0])
    image[25:36, 12:48] = (40, 20, 20)
    assert draws_teeth(image, frame, skin)
    image[25:36, 12:48] = (215, 210, 200)
    assert not draws_teeth(image, frame, skin)


def test_eyes_closed_in_the_photo_stay_closed(renderer, reference, astronaut):
    """A photo with closed eyes has no eyeball to show: driven open, its eyes stay closed (no flat blocks drawn in
    their place), and the user is told why."""
    image, landmarks = astronaut
    closed = close_eyes(landmarks)
    closed_image = renderer.render_frame(reference, closed)
    with pytest.warns(UserWarning, match="eye.*closed"):
        closed_ref = renderer.prepare(closed_image, closed)
    assert len(closed_ref.closed_eyes) == 2 and closed_ref.eyes == ()
    opened = renderer.render_frame(closed_ref, landmarks)
    for center, loop in zip(mesh_topology().iris_centers, mesh_topology().eye_loops, strict=True):
        x, y = np.round(landmarks[center, :2]).astype(int)
        # the lid still covers where the iris would be
        assert luma(opened[y - 1: y + 2, x - 1: x + 2]).mean() > luma(image[y - 1: y + 2, x - 1: x + 2]).mean() + 40
        lo = np.floor(landmarks[loop, :2].min(0)).astype(int) - 3
        hi = np.ceil(landmarks[loop, :2].max(0)).astype(int) + 3
        window = (slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        assert psnr(opened[window], closed_image[window]) > psnr(opened[window], image[window]) + 3.0


def test_a_closed_eye_shows_a_lash_line(renderer, reference, astronaut):
    """Where the lids meet, a closed eye is darker than the lid skin above it (the reference's lash margin)."""
    _, landmarks = astronaut
    closed = close_eyes(landmarks)
    frame = renderer.render_frame(reference, closed)
    topo = mesh_topology()
    for loop in topo.eye_loops:
        upper, lower = split_loop(loop, landmarks, face_axis(landmarks))
        width = np.linalg.norm(landmarks[upper[-1], :2] - landmarks[upper[0], :2])
        middle = closed[lower[len(lower) // 4: 3 * len(lower) // 4 + 1], :2]
        line = [luma(frame[int(round(y)), int(round(x))]) for x, y in middle]
        skin = [luma(frame[int(round(y - LID_SKIN_ABOVE * width)), int(round(x))]) for x, y in middle]
        assert np.mean(line) < np.mean(skin) - 20, (np.mean(line), np.mean(skin))


def test_a_closed_eye_has_no_dark_arc_above_it(renderer, reference, astronaut):
    """A shut lid is skin from its lash line up to the brow: the reference's lashes and lid shadow above the open eye
    are not pulled down over it (they drew a dark arc, an outline around every blink: a band 26-41 levels darker
    than the skin above and below it here). A lid lit more brightly than the brow above it is skin, not an arc."""
    _, landmarks = astronaut
    closed = close_eyes(landmarks)
    frame = renderer.render_frame(reference, closed)
    for loop in mesh_topology().eye_loops:
        upper, lower = split_loop(loop, landmarks, face_axis(landmarks))
        width = np.linalg.norm(landmarks[upper[-1], :2] - landmarks[upper[0], :2])
        middle = closed[lower[len(lower) // 4: 3 * len(lower) // 4 + 1], :2]
        lid = [np.mean([luma(frame[int(round(y - height * width)), int(round(x))]) for x, y in middle])
               for height in np.arange(0.12, 0.34, 0.03)]  # eye widths above the lash line
        assert min(lid[1:-1]) > min(lid[0], lid[-1]) - 8, np.round(lid)  # no band darker than both of its sides
        assert np.ptp(lid) < 25, np.round(lid)


def test_a_closing_lid_fades_in_from_above_without_an_edge(renderer, reference, astronaut):
    """The lid layer fades in upwards over the reference's lashes; its window reaches up to where the fade starts.
    Cut at the reference's lid contour, the fade ended in a hard horizontal edge: a box around every closed eye."""
    from omnitalker.render.eyes import eye_layers

    _, landmarks = astronaut
    closed = close_eyes(landmarks)
    for eye in reference.eyes:
        driven = (closed[:, :2] - reference.crop_origin) * reference.render_size / reference.crop_size  # crop px
        lid = eye_layers(eye, driven, reference.render_size)[0]
        assert lid.alpha.max() > 0.9  # a shut eye is covered
        assert lid.alpha[0].max() < 0.1, lid.alpha[0].max()  # from nothing at the window's top row


def test_a_shut_lid_is_the_skin_above_the_eye():
    """The lid texture covers the opening with the lid skin above it, not with a blend of the lashes, the white and the
    lower lid around it (Telea's fill: a grey patch with a ring where it met them)."""
    from omnitalker.render.eyes import lid_skin

    skin, lashes, under = (210, 175, 165), (60, 40, 35), (190, 150, 142)
    patch = np.zeros((60, 80, 3), np.uint8)
    patch[:] = skin
    patch[21:24, 12:68] = lashes  # just above the hole, inside the margin around it
    patch[40:] = under  # a darker lower lid below the eye
    aperture = np.zeros((60, 80), bool)
    aperture[32:34, 24:56] = True  # a slit: with the lash margin (LID_MARGIN of 50 px) rows 24-41 are covered
    lid = lid_skin(patch, aperture, width_px=50.0, radius=5.0)
    filled = lid[24:40, 20:60].reshape(-1, 3).astype(float)
    assert np.abs(filled - skin).max() <= 3, filled.mean(0)
    assert np.abs(lid[21:24, 20:60].astype(float) - skin).max() <= 3  # the lashes beside the hole are covered too
    np.testing.assert_array_equal(lid[:15], patch[:15])  # the skin above is kept


def test_lips_pressed_together_keep_upper_and_lower(renderer, astronaut):
    """On a reference whose lips touch (here: the upper lip a hair below the lower one), the mouth's chains still
    come out upper = upper lip (MediaPipe's inner-lip centres: 13 upper, 14 lower), so its opening gets drawn."""
    image, landmarks = astronaut
    topo = mesh_topology()
    upper, lower = split_loop(topo.mouth_loop, landmarks, face_axis(landmarks))
    pressed = landmarks.copy()
    middle = (landmarks[upper, 1] + landmarks[lower, 1]) / 2
    pressed[upper, 1] = middle + 0.05
    pressed[lower, 1] = middle - 0.05
    state = renderer.prepare(image, pressed)
    assert 13 in state.mouth.upper and 14 in state.mouth.lower
    driven = open_jaw(landmarks, 12.0)
    bare = WarpRenderer(output_size=256, mouth_fill=False)
    drawn, stretched = renderer.render_frame(state, driven), bare.render_frame(bare.prepare(image, pressed), driven)
    x = int(round(driven[13, 0]))
    column = slice(int(round(driven[13, 1])) + 1, int(round(driven[14, 1])))
    assert np.abs(luma(drawn[column, x]) - luma(stretched[column, x])).mean() > 20  # an interior, not stretched lips


def test_the_person_is_segmented_from_the_background(reference, astronaut):
    image, landmarks = astronaut
    assert reference.plate is not None and reference.plate.shape == (*image.shape[:2], 4)
    mask = reference.plate[..., 3]
    nose = landmarks[1, :2].astype(int)
    assert mask[nose[1], nose[0]] > 200  # the face is person
    assert mask[:CORNER, -CORNER:].mean() < 50  # the wall behind the astronaut's shoulder is not
    still = WarpRenderer(output_size=256, keep_background=False).prepare(image, landmarks)
    assert still.plate is None and still.still_plate is None


def test_background_plate_paints_the_person_out():
    image = np.full((120, 160, 3), (40, 120, 200), np.uint8)
    image[40:80, 60:100] = (250, 250, 250)
    mask = np.zeros(image.shape[:2], np.float32)
    mask[40:80, 60:100] = 1.0
    plate = background_plate(image, mask)
    np.testing.assert_array_equal(plate[:20], image[:20])  # far from the person: the image itself
    assert np.abs(plate[50:70, 70:90].astype(float) - (40, 120, 200)).max() < 12  # the person: the wall


def test_background_plate_continues_the_bands_behind_the_person():
    """A wall over a shelf over bricks behind the person: painted out, each band continues across where the person
    stood (OpenCV's diffusing fill blurred the shelf away, its colours mixed into a pale blob that showed wherever the
    head moved away: 74 levels off on the shelf here; a fill at 96 px, smoothed down the columns by 2 px, blurred the shelf's
    edges: 53 levels off within a row of them)."""
    wall, shelf, brick = np.array((200, 150, 80)), np.array((40, 30, 30)), np.array((150, 90, 70))
    image = np.zeros((160, 160, 3), np.uint8)
    image[:60], image[60:72], image[72:] = wall, shelf, brick
    image[10:160, 50:110] = (240, 200, 180)  # the person, down to the frame's bottom edge
    mask = np.zeros(image.shape[:2], np.float32)
    mask[10:160, 50:110] = 1.0
    plate = background_plate(image, mask).astype(float)
    for rows, band, tolerance in ((slice(25, 50), wall, 12), (slice(61, 71), shelf, 20), (slice(85, 150), brick, 12)):
        assert np.abs(plate[rows, 60:100] - band).max() < tolerance, (band, plate[rows, 60:100].mean((0, 1)))


def test_keep_background_leaves_a_still_frame_alone_and_stills_moved_background():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), np.uint8)  # the reference: background left, person right
    plate = np.dstack([image, np.zeros((32, 32), np.uint8)])
    plate[:, 16:, :3] = 90  # the person painted out
    plate[:, 16:, 3] = 255
    still = plate[..., :3].astype(np.float32)
    gy, gx = np.mgrid[0:32, 0:32].astype(np.float32)
    # no motion: the reference whatever the mask
    np.testing.assert_array_equal(keep_background(image, still, plate, gx, gy), image)
    # a warp that samples the background (column 3) everywhere: the still plate shows instead
    column = np.full_like(gx, 3.0)
    out = keep_background(image[gy.astype(int), column.astype(int)], still, plate, column, gy)
    np.testing.assert_array_equal(out, plate[..., :3])
    # a warp that samples the person (column 20) everywhere: the warped person is kept
    column = np.full_like(gx, 20.0)
    moved = image[gy.astype(int), column.astype(int)]
    np.testing.assert_array_equal(keep_background(moved, still, plate, column, gy), moved)


def test_a_saved_config_without_new_keys_loads(tmp_path):
    config = {k: v for k, v in WarpRenderer(output_size=256).config.items() if k != "keep_background"}
    loaded = WarpRenderer.from_config(config)
    assert loaded.config.keep_background


def test_a_black_and_white_photo_gets_a_grey_mouth():
    """What the renderer draws inside the mouth of a black-and-white photo (teeth, gum, tongue, cavity) is grey too;
    in a colour photo the cavity keeps its red."""
    from omnitalker.render.mouth import teeth_strips

    for skin, grey in ((np.array([160.0, 160.0, 160.0]), True), (np.array([200.0, 140.0, 115.0]), False)):
        strips = np.concatenate([s.reshape(-1, 3) for s in teeth_strips(40.0, skin)]).astype(np.int32)
        spread = strips.max(1) - strips.min(1)
        assert (spread.max() <= 1) if grey else (spread.max() > 20), (skin, spread.max())


def test_drawn_teeth_are_as_white_as_real_teeth_against_the_skin():
    """The brightest drawn teeth have the blue-over-green balance of real teeth (0.92-0.98 on five real clips, the
    brightest tenth of their open mouths) and are brighter than the skin (1.17-1.38 times its luminance there); the
    former colour drew them yellow (0.84-0.88)."""
    from omnitalker.render.mouth import teeth_strips

    for skin in ((171.0, 138.0, 122.0), (209.0, 149.0, 125.0), (175.0, 114.0, 96.0), (166.0, 122.0, 108.0)):
        upper, _ = teeth_strips(80.0, np.array(skin))
        texels = upper.reshape(-1, 3).astype(np.float64)
        brightest = texels[luma(texels) >= np.percentile(luma(texels), 99)].mean(0)
        assert 0.92 <= brightest[2] / brightest[1] <= 1.02, (skin, brightest.round())
        assert 1.15 <= luma(brightest) / luma(np.array(skin)) <= 1.4, (skin, brightest.round())


def test_drawn_teeth_narrow_towards_the_corners():
    """The drawn upper row reads as teeth on a curved arch: a gap at the midline, the central incisors the widest
    teeth, the side ones narrower as the arch turns away (equal teeth drew a regular picket fence)."""
    from scipy.signal import find_peaks

    from omnitalker.render.mouth import TEETH_SPAN, teeth_edge_row, teeth_strips

    width = 120.0
    upper, _ = teeth_strips(width, np.array([200.0, 150.0, 130.0]))
    crowns = luma(upper[teeth_edge_row(width) - 12 : teeth_edge_row(width) - 4]).mean(0)  # a band across the crowns
    columns = np.arange(len(crowns)) / (len(crowns) - 1)
    gaps, _ = find_peaks(-crowns, prominence=3.0)
    gaps = columns[gaps[(columns[gaps] > TEETH_SPAN[0] + 0.02) & (columns[gaps] < TEETH_SPAN[1] - 0.02)]]
    assert len(gaps) >= 7 and np.isclose(gaps, 0.5, atol=0.01).any(), gaps.round(3)
    widths = np.diff(gaps)
    assert widths[len(widths) // 2] > 1.5 * min(widths[0], widths[-1]), widths.round(3)  # central vs side teeth


def test_a_three_quarter_face_turned_to_the_camera_keeps_its_far_cheek(renderer, astronaut):
    """A reference turned 35 degrees shows its far cheek's triangles facing away; turned 20 degrees back towards the
    camera, they face it again and must be drawn (culled, they left holes that showed the background: a seam of dots
    down a three-quarter portrait's cheek). Only triangles that face away from the camera in the driven frame are
    culled."""
    from omnitalker.frontend.face.template import load_face_template
    from omnitalker.render.warp import _signed_areas

    image, landmarks = astronaut
    turned = rotate(landmarks, yaw_deg=35)
    ref = renderer.prepare(image, turned)
    driven = rotate(turned, yaw_deg=-20)
    faces = mesh_topology().face_triangles
    front = np.sign(_signed_areas(load_face_template().vertices[:, :2].astype(np.float64), faces))
    facing_in = {name: np.sign(_signed_areas(points[:, :2].astype(np.float64), faces)) == front
                 for name, points in (("reference", turned), ("driven", driven))}
    revealed = ~facing_in["reference"] & facing_in["driven"]
    assert revealed.sum() >= 10  # the far cheek comes into view
    vertices = renderer.driven_vertices(ref, driven)
    away = turned_away_faces(ref, vertices)
    assert not (away & facing_in["driven"]).any()


def test_holes_inside_the_face_take_the_nearest_triangle():
    """A pixel inside the face that no triangle covers (a culled triangle: a head turning away from a three-quarter
    view) takes its nearest drawn triangle, not the background map (which showed the reference's pixels there: a
    black tear across the far cheek of a painted portrait); outside the face, uncovered pixels stay uncovered."""
    from omnitalker.render.warp import cover_face_holes

    ids = np.full((8, 8), 99, np.int32)
    ids[:, :4], ids[:, 4:] = 1, 2
    ids[2:6, 1:7] = 99  # the hole
    ids[0, 0] = 99  # uncovered, outside the face
    face = np.zeros((8, 8), bool)
    face[1:7, 1:7] = True
    covered = ids.copy()
    cover_face_holes(covered, 99, face)
    assert (covered[2:6, 1:4] == 1).all() and (covered[2:6, 4:7] == 2).all()
    assert covered[0, 0] == 99
    # a culled triangle over part of the hole covers that part itself (it samples its own skin)
    from omnitalker.render.geometry import SUBPIXEL_SCALE

    culled = np.array([[[0, 0], [7, 0], [0, 7]]], np.int32) * SUBPIXEL_SCALE
    cover_face_holes(ids, 99, face, culled, np.array([5]))
    assert ids[2, 1] == 5 and ids[5, 6] == 2 and ids[0, 0] == 99


def test_an_iris_hidden_by_a_lid_is_filled_in_from_its_own_rings():
    """What a lid hides of the source iris is filled from the visible part at the same distance from its centre (pupil,
    iris, limbus), not smeared in from the white beside it: moved down, the drawn iris showed a pale notch at its top."""
    from omnitalker.render.eyes import _fill, fill_iris

    size, centre, radius = 48, np.array([24.0, 24.0]), 12.0
    ys, xs = np.mgrid[0:size, 0:size]
    distance = np.hypot(xs - centre[0], ys - centre[1])
    truth = np.full((size, size, 3), 225, np.uint8)  # the white of the eye
    for edge, colour in ((radius, (70, 90, 120)), (0.8 * radius, (110, 140, 170)), (0.35 * radius, (20, 20, 25))):
        truth[distance <= edge] = colour  # limbus, iris, pupil
    lid = ys < centre[1] - 0.5 * radius  # the upper lid covers the iris's top
    known = ~lid & (distance <= 1.15 * radius)  # the visible part of the disc, a ring of white beside the iris
    source = truth.copy()
    source[lid] = (200, 160, 140)  # lid skin
    hidden = lid & (distance <= 0.95 * radius)
    ours = fill_iris(source, known, centre, radius, 1.15 * radius)
    telea = _fill(source, known, 3.0, source[known].mean(0))
    error = np.abs(ours[hidden].astype(float) - truth[hidden]).mean()
    assert error < 15.0, error
    assert error < 0.5 * np.abs(telea[hidden].astype(float) - truth[hidden]).mean()
    np.testing.assert_array_equal(ours[known], source[known])  # what shows is kept
    outside = distance > 1.15 * radius + 1
    np.testing.assert_array_equal(ours[outside], source[outside])


def test_the_shadow_under_a_heavy_lid_is_not_taken_for_iris(astronaut):
    """The iris just under the upper lid lies in the lashes' shadow. Read as iris, it filled the arcs the lid hid: a
    heavy-lidded photo's iris, looking down, was drawn as a black disc. What the lid hid is the iris's own colour; the
    shadow band itself stays as the photo shows it (the iris drawn where it was is the photo)."""
    from omnitalker.render.eyes import _below_lid, eye_textures
    from omnitalker.render.geometry import polygon_mask

    image, landmarks = astronaut
    image, landmarks = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC), landmarks * 3  # a bigger eye
    topo = mesh_topology()
    upper, lower = split_loop(topo.eye_loops[0], landmarks, face_axis(landmarks))
    centre, ring = topo.iris_centers[0], topo.iris_rings[0]
    iris = landmarks[centre, :2].copy()
    radius = float(np.mean(np.hypot(*(landmarks[ring, :2] - iris).T)))
    landmarks[[centre, *ring], 1] -= 0.8 * radius  # the iris sits high: the upper lid hides its top
    iris = landmarks[centre, :2]
    painted = image.copy()
    eye = polygon_mask(image.shape[:2], np.concatenate([landmarks[upper, :2], landmarks[lower[::-1], :2]])).astype(bool)
    ys, xs = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    in_iris = np.hypot(xs - iris[0], ys - iris[1]) <= 0.9 * radius
    painted[eye] = (230, 225, 220)
    painted[eye & in_iris] = (90, 120, 150)  # a grey-blue iris
    width = float(np.hypot(*(landmarks[upper[-1], :2] - landmarks[upper[0], :2])))
    shadow = eye & _below_lid(image.shape[:2], landmarks[upper, :2], landmarks[lower, :2], 0.08 * width)
    painted[shadow] = (painted[shadow] * 0.3).astype(np.uint8)  # the lashes' shadow
    partial, (_, iris_texture, _) = eye_textures(painted, landmarks, upper, lower, centre, ring)
    origin = partial["patch_origin"].astype(int)
    window = (slice(origin[1], origin[1] + iris_texture.shape[0]), slice(origin[0], origin[0] + iris_texture.shape[1]))
    hidden = (in_iris & ~cv2.dilate(eye.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool))[window]
    assert hidden.sum() >= 10
    assert np.abs(iris_texture[hidden].astype(float) - (90, 120, 150)).mean() < 25  # the iris, not its shadow
    inside = cv2.erode(eye.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # off the lid's own edge
    kept = (shadow & in_iris & inside)[window]
    assert kept.sum() >= 10
    np.testing.assert_array_equal(iris_texture[kept], painted[window][kept])


def test_the_lash_line_is_found_by_its_darkness():
    """MediaPipe's upper lid contour can run on the white below the lashes (or in the lid skin above them): the lash
    line drawn over a shut eye is sampled where the lashes are, the darkest row just above the contour, not at a
    fixed offset from it (there d0's closed eyes got a pale line of skin and white)."""
    from omnitalker.render.eyes import lash_line
    from omnitalker.render.geometry import LipFrame

    image = np.full((80, 80, 3), (200, 160, 140), np.uint8)  # lid skin
    image[38:41, 10:71] = (40, 30, 30)  # the lashes: rows 38-40
    image[41:56, 10:71] = (225, 225, 220)  # the white of the eye below them
    xs = np.linspace(10, 70, 8)
    points = np.zeros((14, 3), np.float32)
    points[:8, 0], points[:8, 1] = xs, 44.0  # the tracked upper lid, 4 px below the lashes, corner to corner
    points[[0, 7], 1] = 45.0  # the corners
    points[8:, 0], points[8:, 1] = xs[1:-1], 55.0  # the lower lid between the corners
    upper, lower = np.arange(8), np.r_[0, 8:14, 7]
    frame = LipFrame.from_points(points, upper, lower)
    _, rows = frame.to_pixels(frame.upper_u, lash_line(image, frame))
    inner = slice(1, -1)  # the corners' search may leave the lashes' ends
    assert np.all(np.abs(rows[inner] - 39.0) <= 1.0), rows
