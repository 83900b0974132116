"""Self-reenactment benchmark (omnitalker.eval.reenact): on a talking clip the project makes itself (the astronaut
photo animated with speech-like codes), and on the real clips in ../shared/media/faces when they are there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
skimage_data = pytest.importorskip("skimage.data")

from omnitalker.eval.closed_loop import talking_sequence  # noqa: E402
from omnitalker.eval.reenact import has_blinks, main, region_boxes  # noqa: E402
from omnitalker.frontend.face import FaceAnalyzer, FaceIdentity, decode_codes, encode_codes  # noqa: E402
from omnitalker.frontend.face.codes import eye_openness  # noqa: E402
from omnitalker.io.export import export_to_video  # noqa: E402
from omnitalker.pipeline.reference import render_frames  # noqa: E402
from omnitalker.render.warp import WarpRenderer  # noqa: E402

REAL_CLIPS = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "faces" / "clips"
FPS = 25


@pytest.fixture(scope="module")
def talking_clip(tmp_path_factory):
    """A 40-frame talking clip of the astronaut (mouth opening and closing, small head motion, a blink)."""
    image = skimage_data.astronaut()
    with FaceAnalyzer() as analyzer:
        track = analyzer.analyze_image(image)
    identity = FaceIdentity.from_track(track)
    codes = talking_sequence(encode_codes(track.landmarks, identity)[0], identity, 40, FPS)
    renderer = WarpRenderer(output_size=256)
    frames = renderer.render(renderer.prepare(image, track.landmarks[0]), decode_codes(codes, identity))
    folder = tmp_path_factory.mktemp("clips")
    export_to_video(frames, folder / "astronaut_talking.mp4", fps=FPS)
    return folder


def test_reenactment_beats_the_still_frame(talking_clip, tmp_path):
    report = main(["--clips", str(talking_clip), "--frames", "30", "--reference-seconds", "0.6", "--size", "256",
                   "--json", str(tmp_path / "reenact.json")])
    (clip,) = report["clips"]
    assert clip["frames"] == 30 and clip["heldout_frames"] > 0
    photo, still = clip["photo"], clip["still"]
    assert photo["mouth_ssim"] > still["mouth_ssim"] + 0.05  # the mouth moves; a still frame cannot follow it
    assert photo["face_ssim"] > still["face_ssim"]
    assert photo["mouth_corr"] > 0.8 and photo["detected"] == 1.0
    for mode in ("still", "photo", "video"):
        assert np.isfinite(clip["heldout"][mode]["mouth_ssim"])
    saved = json.loads((tmp_path / "reenact.json").read_text())
    assert saved["clips"][0]["clip"] == "astronaut_talking" and "face_psnr_gain" in saved["summary"]


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(SystemExit):
        main(["--clips", str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        main(["--clips", str(tmp_path)])  # no clips in it
    with pytest.raises(SystemExit):
        main(["--clips", str(tmp_path), "--set", "crop_scale=big"])


def test_boxes_and_blinks():
    image = skimage_data.astronaut()
    with FaceAnalyzer() as analyzer:
        landmarks = analyzer.analyze_image(image).landmarks
    boxes = region_boxes(landmarks[0], image.shape[:2])
    (face,), (mouth,), eyes = boxes["face"], boxes["mouth"], boxes["eyes"]
    assert len(eyes) == 2 and all(box is not None for box in eyes)
    assert face[0] < mouth[0] < mouth[2] < face[2] and face[1] < eyes[0][1] < mouth[1] < face[3]
    openness = np.repeat(eye_openness(landmarks), 10)
    assert not has_blinks(openness)
    openness[4] *= 0.3
    assert has_blinks(openness)


def test_render_frames_spread_over_mouth_and_eye_openings():
    rng = np.random.default_rng(0)
    image = skimage_data.astronaut()
    with FaceAnalyzer() as analyzer:
        base = analyzer.analyze_image(image).landmarks[0]
    track = np.repeat(base[None], 100, axis=0) + rng.normal(0, 0.05, (100, 478, 3)).astype(np.float32)
    track[:, 14, 1] += np.linspace(0, 20, 100)  # the lower inner lip drops: frame t is more open than t - 1
    for upper, lower in ((159, 145), (386, 374)):  # frame 42 blinks
        track[42, upper, 1] = track[42, lower, 1]
    picked = render_frames(track, keep=7, limit=10)
    assert len(picked) <= 10 and 7 in picked and picked[0] == 0 and picked[-1] == 99 and 42 in picked
    assert list(render_frames(track[:5], keep=0, limit=10)) == [0, 1, 2, 3, 4]


@pytest.mark.skipif(not REAL_CLIPS.is_dir(), reason=f"the real clips are not here ({REAL_CLIPS})")
def test_real_clip_runs(tmp_path):
    """One real clip, a few frames: the benchmark runs end to end on real people (figures: BENCHMARKS.md)."""
    report = main(["--clips", str(REAL_CLIPS), "--only", "d18", "--frames", "20", "--size", "256"])
    (clip,) = report["clips"]
    assert clip["photo"]["detected"] > 0.9 and clip["photo"]["mouth_ssim"] > clip["still"]["mouth_ssim"]


def test_two_renderers_in_one_run(talking_clip, tmp_path):
    """``--renderer warp FOLDER`` scores a converted LivePortrait renderer (tiny random weights here) beside the warp."""
    from omnitalker.convert.liveportrait import main as convert
    from tests.test_convert_liveportrait import _tiny_json, tiny_states, write_released

    src = write_released(tmp_path / "released", tiny_states())
    convert(["--src", str(src), "--out", str(tmp_path / "lp"), "--config", str(_tiny_json(tmp_path))])
    report = main(["--clips", str(talking_clip), "--frames", "6", "--reference-seconds", "0.3", "--size", "256",
                   "--renderer", "warp", str(tmp_path / "lp")])
    assert set(report["renderers"]) == {"warp", str(tmp_path / "lp")}
    assert report["renderers"][str(tmp_path / "lp")]["renderer"]["_class_name"] == "LivePortraitRenderer"
    with pytest.raises(SystemExit):
        main(["--clips", str(talking_clip), "--renderer", str(tmp_path / "missing")])
