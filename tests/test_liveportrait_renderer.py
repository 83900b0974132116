"""LivePortraitRenderer (omnitalker/render/liveportrait.py) on the astronaut photo with tiny random-weight networks:
the renderer contract (frames of the reference's size, uint8, background kept outside the pasted face), the crop
and paste-back geometry, chunked rendering equal to one pass, save / load, and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omnitalker.frontend.face.codes import FaceIdentity, encode_codes
from omnitalker.models.liveportrait import module_configs
from omnitalker.render.liveportrait import (
    LivePortraitRenderer,
    LivePortraitSource,
    crop_transform,
    open_ratios,
)

skimage_data = pytest.importorskip("skimage.data")
mp = pytest.importorskip("mediapipe")

DATA = Path(__file__).parent / "data" / "liveportrait"
TINY_BACKBONE = {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)}
INPUT_SIZE = 64  # crop side of the tiny renderer (output 128)


def tiny_renderer(seed: int = 0, **kwargs) -> LivePortraitRenderer:
    configs = module_configs(json.loads((DATA / "liveportrait_tiny.json").read_text()))
    configs["motion_extractor"].update(TINY_BACKBONE)
    torch.manual_seed(seed)
    return LivePortraitRenderer.from_module_configs(configs, **{"input_size": INPUT_SIZE, **kwargs}).eval()


def detect(image: np.ndarray) -> np.ndarray:
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    assert result.multi_face_landmarks
    h, w = image.shape[:2]
    return np.array([[p.x * w, p.y * h, p.z * w] for p in result.multi_face_landmarks[0].landmark], np.float32)


@pytest.fixture(scope="module")
def reference():
    image = skimage_data.astronaut()
    landmarks = detect(image)
    identity = FaceIdentity.from_landmarks(landmarks[None], (image.shape[1], image.shape[0]))
    return SimpleNamespace(image=image, landmarks=landmarks, identity=identity)


@pytest.fixture(scope="module")
def renderer():
    return tiny_renderer()


@pytest.fixture(scope="module")
def source(renderer, reference):
    return renderer.prepare_source(reference, max_side=256)


def talking_codes(reference, num_frames: int) -> np.ndarray:
    codes = np.repeat(encode_codes(reference.landmarks[None], reference.identity), num_frames, axis=0)
    codes[:, 0] += np.deg2rad(8.0) * np.sin(np.linspace(0, np.pi, num_frames))  # yaw
    return codes


def test_render_codes_contract(renderer, source, reference):
    codes = talking_codes(reference, 3)
    frames = renderer.render_codes(source, codes)
    assert isinstance(source, LivePortraitSource)
    assert frames.shape == (3, 256, 256, 3) and frames.dtype == np.uint8
    x0, y0, x1, y1 = source.window
    outside = np.ones((256, 256), bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(frames[:, outside], np.broadcast_to(source.image[outside], frames[:, outside].shape))
    # rendering in chunks (the pipeline streams a second at a time) equals one pass: the anchor is fixed
    chunked = np.concatenate([renderer.render_codes(source, codes[:1]), renderer.render_codes(source, codes[1:])])
    assert np.abs(chunked.astype(int) - frames.astype(int)).max() <= 1


def test_crop_and_paste_back_round_trip(renderer, source):
    """The source crop, upsampled 2x like the generator's output, pasted back: the frame again."""
    size = renderer.config.input_size
    crop = torch.nn.functional.interpolate(
        renderer._to_tensor(__import__("cv2").warpAffine(source.image, source.to_crop, (size, size))[None]),
        scale_factor=2, mode="bilinear", align_corners=False)
    pasted = renderer.paste(source, crop)[0]
    x0, y0, x1, y1 = source.window
    inner = source.paste_mask[..., 0] > 0.99
    error = np.abs(pasted[y0:y1, x0:x1].astype(float) - source.image[y0:y1, x0:x1].astype(float))[inner]
    assert error.mean() < 8.0


def test_crop_is_centred_on_the_face_and_rotates_with_it(reference):
    to_crop = crop_transform(reference.landmarks, 256, 2.3, -0.125)
    points = reference.landmarks[:468, :2] @ to_crop[:, :2].T + to_crop[:, 2]
    assert (points > 0).all() and (points < 256).all()
    centre = (points.min(0) + points.max(0)) / 2
    assert abs(centre[0] - 127.5) < 2 and centre[1] > 127.5  # the face sits below the centre (crop_shift up)
    angle = np.deg2rad(20)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = reference.landmarks.copy()
    turned[:, :2] = (reference.landmarks[:, :2] - 256) @ rotation.T + 256
    turned_crop = crop_transform(turned, 256, 2.3, -0.125)
    points_turned = turned[:468, :2] @ turned_crop[:, :2].T + turned_crop[:, 2]
    assert np.abs(points_turned - points).max() < 0.5


def test_open_ratios(reference):
    eyes, lips = open_ratios(reference.landmarks[None])
    assert eyes.shape == (1, 2) and lips.shape == (1,)
    assert 0.15 < eyes.min() and eyes.max() < 0.6  # open eyes
    assert lips[0] < 0.2  # closed mouth


def test_save_and_load_round_trip(tmp_path, renderer, reference):
    renderer.save_pretrained(tmp_path / "renderer")
    assert (tmp_path / "renderer" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = LivePortraitRenderer.from_pretrained(tmp_path / "renderer").eval()
    assert loaded.config.input_size == INPUT_SIZE
    for (name, a), (_, b) in zip(renderer.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    codes = talking_codes(reference, 1)
    first = renderer.render_codes(renderer.prepare_source(reference, 128), codes)
    again = loaded.render_codes(loaded.prepare_source(reference, 128), codes)
    assert np.abs(first.astype(int) - again.astype(int)).max() <= 1, np.abs(first.astype(int) - again.astype(int)).max()


def test_refusals(renderer, reference):
    lost = SimpleNamespace(**{**vars(reference), "landmarks": np.full((478, 3), np.nan, np.float32)})
    with pytest.raises(ValueError, match="no face was found"):
        renderer.prepare_source(lost)
    tiny = SimpleNamespace(**{**vars(reference), "landmarks": reference.landmarks * np.float32(0.02)})
    with pytest.raises(ValueError, match="too small"):
        renderer.prepare_source(tiny)
    with pytest.raises(ValueError, match="prepare_source"):
        renderer.render_codes(object(), np.zeros((1, 58), np.float32))
    with pytest.raises(ValueError, match="input_size"):
        tiny_renderer(input_size=100)


def test_pipeline_renders_with_it_and_saves_it(tmp_path):
    """A tiny pipeline with the LivePortrait renderer as its `renderer=`: frames of the reference's size, and
    save_pretrained / from_pretrained keep the component (weights in safetensors)."""
    from omnitalker.pipeline import OmniTalkerPipeline
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video, seeded

    components = get_dummy_components()
    components["renderer"] = tiny_renderer(input_size=32, batch_size=8)
    pipe = OmniTalkerPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    video = make_reference_video(tmp_path / "ref.mp4", seconds=1.5, size=160)
    out = pipe("Hi there.", reference_video=video, reference_text=REFERENCE_TEXT, num_inference_steps=2,
               generator=seeded())
    frames = out.frames[0]
    assert frames.dtype == np.uint8 and frames.shape[1:] == (160, 160, 3) and len(frames) > 0
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["renderer"] == ["omnitalker.render.liveportrait", "LivePortraitRenderer"]
    assert (tmp_path / "pipe" / "renderer" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded.renderer, LivePortraitRenderer) and loaded.renderer.config.input_size == 32


def test_load_renderer_by_name(tmp_path):
    from omnitalker.render.choose import load_renderer
    from omnitalker.render.warp import WarpRenderer

    assert isinstance(load_renderer(None, output_size=256), WarpRenderer)
    assert load_renderer("warp", output_size=256).config.output_size == 256
    tiny_renderer(input_size=32).save_pretrained(tmp_path / "lp")
    loaded = load_renderer(tmp_path / "lp")
    assert isinstance(loaded, LivePortraitRenderer) and not loaded.training
    with pytest.raises(ValueError, match="convert.liveportrait"):
        load_renderer(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"_class_name": "VocosVocoder"}))
    with pytest.raises(ValueError, match="VocosVocoder"):
        load_renderer(tmp_path / "other")


def test_a_loaded_pipeline_takes_it_as_its_renderer(tmp_path):
    """`pipe.renderer = ...` (what a --renderer option does) is what save_pretrained then writes."""
    from omnitalker.pipeline import OmniTalkerPipeline
    from tests.pipeline_fixtures import get_dummy_components

    pipe = OmniTalkerPipeline(**get_dummy_components())
    pipe.renderer = tiny_renderer(input_size=32)
    pipe.save_pretrained(tmp_path / "pipe")
    index = json.loads((tmp_path / "pipe" / "model_index.json").read_text())
    assert index["renderer"] == ["omnitalker.render.liveportrait", "LivePortraitRenderer"]
