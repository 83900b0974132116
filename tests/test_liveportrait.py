"""LivePortrait's networks (omnitalker/models/liveportrait): parity with the official code's outputs on tiny random
weights (every tensor of liveportrait_tiny_io.safetensors, <= 1e-5), and the released checkpoints' keys and
shapes at full size (meta device, no weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from omnitalker.models.liveportrait import MODULE_CLASSES, camera, full_size_configs, module_configs

DATA = Path(__file__).parent / "data" / "liveportrait"
SHARED = Path(__file__).parents[2] / "shared" / "golden" / "liveportrait"
TOLERANCE = 1e-5
RAW_KEYS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")
TINY_BACKBONE = {"depths": (1, 1, 1, 1), "dims": (8, 16, 24, 32)}


def golden_file(name: str) -> Path:
    """A golden file from tests/data (bundled) or the shared folder (the warp and generator weights, too big to
    bundle); skips the test, with the reason, when neither has it."""
    for folder in (DATA, SHARED):
        if (folder / name).is_file():
            return folder / name
    pytest.skip(f"{name} is neither in {DATA} nor in {SHARED} (the shared LivePortrait golden folder)")


def tiny_configs() -> dict[str, dict]:
    configs = module_configs(json.loads(golden_file("liveportrait_tiny.json").read_text()))
    configs["motion_extractor"].update(TINY_BACKBONE)
    return configs


def tiny_module(name: str):
    model = MODULE_CLASSES[name](**tiny_configs()[name]).eval()
    model.load_state_dict(load_file(golden_file(f"liveportrait_tiny_{name}.safetensors")), strict=True)
    return model


@pytest.fixture(scope="module")
def io() -> dict[str, torch.Tensor]:
    return load_file(golden_file("liveportrait_tiny_io.safetensors"))


def assert_close(actual: torch.Tensor, expected: torch.Tensor, name: str):
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    error = (actual - expected).abs().max().item()
    assert error <= TOLERANCE, f"{name}: max abs error {error:.3g} > {TOLERANCE}"


def raw_info(io, who: str) -> dict[str, torch.Tensor]:
    return {k: io[f"{who}_{k}"] for k in RAW_KEYS}


@torch.no_grad()
@pytest.mark.parametrize("who", ["source", "driving"])
def test_motion_extractor_matches_every_raw_output(io, who):
    outputs = tiny_module("motion_extractor")(io[who])
    assert set(outputs) == set(RAW_KEYS)
    for key in RAW_KEYS:
        assert_close(outputs[key], io[f"{who}_{key}"], f"{who}_{key}")


@torch.no_grad()
def test_appearance_extractor(io):
    assert_close(tiny_module("appearance_feature_extractor")(io["source"]), io["feature_3d"], "feature_3d")


def test_pose_degrees_rotation_and_keypoint_transform(io):
    source = raw_info(io, "source")
    assert_close(camera.bins_to_degrees(source["pitch"]), io["source_pitch_deg"], "source_pitch_deg")
    angles = (camera.bins_to_degrees(source[n]) for n in ("pitch", "yaw", "roll"))
    assert_close(camera.rotation_matrix(*angles), io["source_rotation"], "source_rotation")
    assert_close(camera.transform_keypoints(source), io["x_s"], "x_s")
    assert_close(camera.transform_keypoints(raw_info(io, "driving")), io["x_d"], "x_d")
    # refined infos (degrees, (b, k, 3)) give the same keypoints, and the rotation
    refined = camera.refine_motion(source)
    assert_close(camera.transform_keypoints(refined), io["x_s"], "x_s (refined)")
    assert_close(refined["rotation"], io["source_rotation"], "rotation (refined)")


@torch.no_grad()
def test_stitching_and_retargeting(io):
    assert_close(camera.stitch(tiny_module("stitching"), io["x_s"], io["x_d"]), io["x_d_stitched"], "x_d_stitched")
    assert_close(camera.retarget(tiny_module("eye"), io["x_s"], io["eye_close_ratio"]), io["eye_delta"], "eye_delta")
    assert_close(camera.retarget(tiny_module("lip"), io["x_s"], io["lip_close_ratio"]), io["lip_delta"], "lip_delta")


@torch.no_grad()
def test_warp_and_decode(io):
    warping, generator = tiny_module("warping_module"), tiny_module("spade_generator")
    warped = warping(io["feature_3d"], io["x_d_stitched"], io["x_s"])
    assert_close(warped["occlusion_map"], io["occlusion_map"], "occlusion_map")
    assert_close(generator(warped["out"]), io["out"], "out")


@torch.no_grad()
def test_warp_and_decode_with_keypoints_far_apart(io):
    warping, generator = tiny_module("warping_module"), tiny_module("spade_generator")
    warped = warping(io["feature_3d"], io["x_d_rand"], io["x_s_rand"])
    assert_close(warped["deformation"], io["deformation_rand"], "deformation_rand")
    assert_close(warped["occlusion_map"], io["occlusion_map_rand"], "occlusion_map_rand")
    assert_close(generator(warped["out"]), io["out_rand"], "out_rand")


def test_every_golden_tensor_is_checked(io):
    """The tests above name every tensor of the golden file (a new golden tensor must get a check)."""
    checked = {f"{who}_{k}" for who in ("source", "driving") for k in RAW_KEYS} | {
        "source", "driving", "source_pitch_deg", "source_rotation", "feature_3d", "x_s", "x_d", "x_d_stitched",
        "eye_close_ratio", "eye_delta", "lip_close_ratio", "lip_delta", "occlusion_map", "out", "x_s_rand",
        "x_d_rand", "deformation_rand", "occlusion_map_rand", "out_rand"}
    assert set(io) == checked


@pytest.mark.parametrize("name", list(MODULE_CLASSES))
def test_full_size_keys_and_shapes_equal_the_released_checkpoints(name):
    released = json.loads(golden_file("liveportrait_keys.json").read_text())
    with torch.device("meta"):
        model = MODULE_CLASSES[name](**full_size_configs()[name])
    state = model.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == released[name]
    assert sum(v.numel() for v in state.values()) == released["_params"][name]


def test_module_configs_reads_the_models_yaml_layout():
    configs = module_configs(json.loads(golden_file("liveportrait_tiny.json").read_text()))
    assert configs["motion_extractor"]["dims"] == (96, 192, 384, 768)  # the named backbone, unless overridden
    with pytest.raises(ValueError, match="backbone"):
        module_configs({**json.loads(golden_file("liveportrait_tiny.json").read_text()),
                        "motion_extractor_params": {"backbone": "resnet50"}})
