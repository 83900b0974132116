"""python -m omnitalker.convert.liveportrait: released-layout .pth files -> a LivePortraitRenderer folder.

Full size: random tensors with every released key and shape (liveportrait_keys.json) converted and loaded (the
folder's 130 M parameters are written twice; no frame is rendered at full size here: on 2 CPU cores a frame takes
seconds, see bench/liveportrait.py). Tiny (the golden's tiny configuration at a 32 px crop): converted through the
command line, loaded, and a 2 s clip rendered from the bundled astronaut photo. Then the refusals: a missing file,
a pickle that is not a state dict, mismatched keys or shapes; nothing half-written. And the real-weight test,
skipped unless OMNITALKER_LIVEPORTRAIT_WEIGHTS points at the released files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from omnitalker.convert.liveportrait import BASE_FILES, RETARGETING_FILE, convert_liveportrait, main
from omnitalker.models.liveportrait import MODULE_CLASSES, module_configs
from omnitalker.render.liveportrait import LivePortraitRenderer

DATA = Path(__file__).parent / "data" / "liveportrait"
EXAMPLE = Path(__file__).parents[1] / "examples" / "astronaut.png"
WEIGHTS_ENV = "OMNITALKER_LIVEPORTRAIT_WEIGHTS"
RETARGETING = {"stitching": "retarget_shoulder", "lip": "retarget_mouth", "eye": "retarget_eye"}
VIDEO_FPS = 25


def write_released(root: Path, states: dict[str, dict[str, torch.Tensor]], ddp_prefix: bool = True) -> Path:
    """The released file layout under root/liveportrait (retargeting entries with DDP `module.` prefixes)."""
    for name, rel in BASE_FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        torch.save(states[name], root / rel)
    prefix = "module." if ddp_prefix else ""
    bundle = {entry: {prefix + k: v for k, v in states[name].items()} for name, entry in RETARGETING.items()}
    (root / RETARGETING_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.save(bundle, root / RETARGETING_FILE)
    return root


def random_states_from_keys(keys: dict, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    states = {}
    for name in MODULE_CLASSES:
        state = {}
        for key, shape in keys[name].items():
            if key.endswith("num_batches_tracked"):
                state[key] = torch.tensor(0)
            elif key.endswith("running_var"):
                state[key] = torch.ones(shape)
            else:
                state[key] = torch.randn(shape, generator=generator) * 0.02
        states[name] = state
    return states


def tiny_layout() -> dict:
    layout = json.loads((DATA / "liveportrait_tiny.json").read_text())
    layout["motion_extractor_params"].update(depths=[1, 1, 1, 1], dims=[8, 16, 24, 32])
    layout["renderer"] = {"input_size": 32, "batch_size": 8}
    return layout


def tiny_states(seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    configs = module_configs(tiny_layout())
    return {name: cls(**configs[name]).state_dict() for name, cls in MODULE_CLASSES.items()}


def test_full_size_random_weights_convert_and_load(tmp_path):
    keys = json.loads((DATA / "liveportrait_keys.json").read_text())
    states = random_states_from_keys(keys)
    src = write_released(tmp_path / "released", states)
    del states
    convert_liveportrait(src / "liveportrait", tmp_path / "renderer", verify=False)
    folder = tmp_path / "renderer"
    assert {p.name for p in folder.iterdir()} == {"config.json", "diffusion_pytorch_model.safetensors", "README.md"}
    card = (folder / "README.md").read_text()
    assert "license: mit" in card and "KwaiVGI/LivePortrait" in card and "InsightFace" in card
    renderer = LivePortraitRenderer.from_pretrained(folder)
    loaded = renderer.modules_by_name()
    for name, expected in keys.items():
        if name.startswith("_"):
            continue
        state = loaded[name].state_dict()
        assert {k: list(v.shape) for k, v in state.items()} == expected, name
    original = torch.load(src / BASE_FILES["motion_extractor"], weights_only=True)
    assert torch.equal(loaded["motion_extractor"].state_dict()["detector.fc_kp.weight"], original["detector.fc_kp.weight"])
    bundle = torch.load(src / RETARGETING_FILE, weights_only=True)
    assert torch.equal(loaded["eye"].state_dict()["mlp.0.weight"], bundle["retarget_eye"]["module.mlp.0.weight"])


@pytest.fixture(scope="module")
def astronaut_reference():
    mp = pytest.importorskip("mediapipe")
    from omnitalker.frontend.face.codes import FaceIdentity
    from omnitalker.io.image import load_image

    image = load_image(EXAMPLE)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        result = mesh.process(image)
    assert result.multi_face_landmarks, "no face in the example photo"
    h, w = image.shape[:2]
    landmarks = np.array([[p.x * w, p.y * h, p.z * w] for p in result.multi_face_landmarks[0].landmark], np.float32)
    identity = FaceIdentity.from_landmarks(landmarks[None], (w, h))
    return SimpleNamespace(image=image, landmarks=landmarks, identity=identity)


def clip_codes(reference, seconds: float) -> np.ndarray:
    """Codes of a clip at the video rate: the reference's own codes, the head turning and nodding."""
    from omnitalker.frontend.face.codes import encode_codes

    num = round(seconds * VIDEO_FPS)
    codes = np.repeat(encode_codes(reference.landmarks[None], reference.identity), num, axis=0)
    phase = np.linspace(0, 2 * np.pi, num)
    codes[:, 0] += np.deg2rad(10) * np.sin(phase)
    codes[:, 1] += np.deg2rad(5) * np.sin(2 * phase)
    return codes


def test_tiny_convert_through_the_cli_then_render_two_seconds(tmp_path, astronaut_reference, capsys):
    src = write_released(tmp_path / "released", tiny_states())
    (tmp_path / "tiny.json").write_text(json.dumps(tiny_layout()))
    main(["--src", str(src), "--out", str(tmp_path / "renderer"), "--config", str(tmp_path / "tiny.json")])
    assert "wrote" in capsys.readouterr().out
    renderer = LivePortraitRenderer.from_pretrained(tmp_path / "renderer").eval()
    assert renderer.config.input_size == 32
    source = renderer.prepare_source(astronaut_reference, max_side=256)
    codes = clip_codes(astronaut_reference, 2.0)
    frames = renderer.render_codes(source, codes)
    assert frames.shape == (50, 256, 256, 3) and frames.dtype == np.uint8
    x0, y0, x1, y1 = source.window
    assert np.abs(np.diff(frames[:, y0:y1, x0:x1].astype(np.int16), axis=0)).max() > 0  # the face changes


def test_missing_file_is_named_and_nothing_is_written(tmp_path):
    src = write_released(tmp_path / "released", tiny_states())
    (src / BASE_FILES["warping_module"]).unlink()
    with pytest.raises(ValueError, match="warping_module.pth"):
        convert_liveportrait(src, tmp_path / "out", config=_tiny_json(tmp_path))
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()


def _tiny_json(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(tiny_layout()))
    return path


def test_not_a_state_dict(tmp_path):
    src = write_released(tmp_path / "released", tiny_states())
    torch.save([torch.zeros(3)], src / BASE_FILES["spade_generator"])
    with pytest.raises(ValueError, match="spade_generator.pth.*state dict"):
        convert_liveportrait(src, tmp_path / "out", config=_tiny_json(tmp_path))
    (src / BASE_FILES["spade_generator"]).write_bytes(b"not a pickle at all")
    with pytest.raises(ValueError, match="spade_generator.pth"):
        convert_liveportrait(src, tmp_path / "out", config=_tiny_json(tmp_path))
    write_released(src, tiny_states())
    torch.save({"retarget_eye": {}}, src / RETARGETING_FILE)
    with pytest.raises(ValueError, match="retarget_shoulder"):
        convert_liveportrait(src, tmp_path / "out", config=_tiny_json(tmp_path))
    assert not (tmp_path / "out").exists()


def test_mismatched_keys_or_shapes_name_the_file(tmp_path):
    states = tiny_states()
    states["appearance_feature_extractor"]["second.weight"] = torch.zeros(1, 1, 1, 1)
    src = write_released(tmp_path / "released", states)
    with pytest.raises(ValueError, match=r"appearance_feature_extractor.pth.*second.weight"):
        convert_liveportrait(src, tmp_path / "out", config=_tiny_json(tmp_path))
    states = tiny_states()
    del states["lip"]["mlp.6.bias"]
    src = write_released(tmp_path / "released2", states)
    with pytest.raises(ValueError, match=r"retarget_mouth.*missing"):
        convert_liveportrait(src, tmp_path / "out", config=_tiny_json(tmp_path))
    with pytest.raises(ValueError, match="neither a folder nor a Hub repo id"):
        convert_liveportrait(tmp_path / "no" / "such" / "folder", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not os.environ.get(WEIGHTS_ENV),
                    reason=f"{WEIGHTS_ENV} is not set: point it at a folder with LivePortrait's released files "
                           "(liveportrait/base_models/*.pth, liveportrait/retargeting_models/*.pth; "
                           "huggingface-cli download KwaiVGI/LivePortrait --local-dir DIR)")
def test_released_weights_convert_and_animate(tmp_path, astronaut_reference):
    renderer = convert_liveportrait(os.environ[WEIGHTS_ENV], tmp_path / "renderer").eval()
    source = renderer.prepare_source(astronaut_reference, max_side=512)
    codes = clip_codes(astronaut_reference, 0.2)
    frames = renderer.render_codes(source, codes)
    assert frames.shape[0] == len(codes)
    x0, y0, x1, y1 = source.window
    # the released networks reproduce the reference when nothing moves: the first frame (no turn yet) is close
    still = frames[0]
    error = np.abs(still[y0:y1, x0:x1].astype(float) - source.image[y0:y1, x0:x1].astype(float)).mean()
    assert error < 20.0


def test_the_cli_draws_with_a_converted_renderer(tmp_path, capsys):
    """``omnitalker generate --renderer FOLDER``: the bundled demo speaks, the LivePortrait renderer draws."""
    from omnitalker.ui.cli import main as cli

    src = write_released(tmp_path / "released", tiny_states())
    main(["--src", str(src), "--out", str(tmp_path / "renderer"), "--config", str(_tiny_json(tmp_path))])
    out = tmp_path / "out.mp4"
    code = cli(["generate", "--text", "Hi.", "--image", "examples/astronaut.png", "--voice", "examples/voice.wav",
                "--reference-text", "Good morning. This is my voice, recorded for the demo.", "--steps", "2",
                "--renderer", str(tmp_path / "renderer"), "--out", str(out)])
    assert code == 0 and out.is_file()
    assert cli(["generate", "--text", "Hi.", "--image", "examples/astronaut.png", "--voice", "examples/voice.wav",
                "--reference-text", "Hello.", "--renderer", str(tmp_path / "nothing"),
                "--out", str(tmp_path / "no.mp4")]) == 2
    assert "python -m omnitalker.convert.liveportrait" in capsys.readouterr().err and not (tmp_path / "no.mp4").exists()
