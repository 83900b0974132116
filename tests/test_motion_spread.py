"""Head-motion size from the whole reference (omnitalker/pipeline/motion_spread.py) and the pipeline config that turns
it on."""

import json

import pytest
import torch

from omnitalker.frontend.face.codes import POSE_SLICE, ROTATION_SLICE, VISUAL_CODE_DIM
from omnitalker.pipeline.motion_spread import (
    ANCHOR_SECONDS,
    MAX_GAIN,
    MAX_TURN,
    MIN_GAIN,
    hold_reference_pose,
    match_pose_spread,
    side_turn_bound,
)

FRAMES = 400  # > MIN_REFERENCE_SECONDS at 93.75 frames/s


def sway(frames: int, amplitude: float, seed: int) -> torch.Tensor:
    """(frames, 58) codes: every pose code a sinusoid of `amplitude` around an offset, the rest noise."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(frames, VISUAL_CODE_DIM, generator=generator) * 0.1
    t = torch.arange(frames, dtype=torch.float32) / 93.75
    for column in range(POSE_SLICE.start, POSE_SLICE.stop):
        codes[:, column] = 0.3 * column + amplitude * torch.sin(2 * torch.pi * (0.4 + 0.1 * column) * t + column)
    return codes


def test_pose_spread_becomes_the_reference_s_and_nothing_else_moves():
    generated, reference = sway(FRAMES, 0.05, seed=0), sway(600, 0.08, seed=1)
    matched = match_pose_spread(generated, reference)
    pose = POSE_SLICE
    torch.testing.assert_close(matched[:, pose].std(0), reference[:, pose].std(0), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(matched[:, pose].mean(0), generated[:, pose].mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(matched[:, pose.stop:], generated[:, pose.stop:], rtol=0, atol=0)
    # the timing is the model's: the matched motion is one fixed linear map of the generated one
    source = torch.cat([generated[:, pose].double(), torch.ones(FRAMES, 1, dtype=torch.float64)], 1)  # n p+1
    fit = torch.linalg.lstsq(source, matched[:, pose].double()).solution
    torch.testing.assert_close((source @ fit).float(), matched[:, pose], rtol=0, atol=1e-5)
    assert not torch.equal(generated, matched) and generated.data_ptr() != matched.data_ptr()


def test_turns_and_shifts_go_together_as_in_the_reference():
    """A person who moves sideways as the head turns (about the neck): matched code by code, the output kept the
    model's independent turns and shifts, and the nose moved 15-25 % less than the reference's on real clips."""
    generator = torch.Generator().manual_seed(3)

    def wander(frames: int) -> torch.Tensor:  # (frames, 6) independent movements (nearly uncorrelated), std 0.05
        return 0.05 * torch.randn(frames, 6, generator=generator)

    generated, reference = sway(FRAMES, 0.05, seed=0), sway(600, 0.05, seed=1)
    generated[:, POSE_SLICE] = wander(FRAMES)  # gains well inside [MIN_GAIN, MAX_GAIN]: the covariance is met exactly
    reference[:, POSE_SLICE] = wander(600)
    reference[:, 3] = -0.9 * reference[:, 0] + 0.02 * torch.randn(600, generator=generator)  # tx follows the yaw
    matched = match_pose_spread(generated, reference)
    wanted = torch.corrcoef(reference[:, [0, 3]].T)[0, 1]
    before = torch.corrcoef(generated[:, [0, 3]].T)[0, 1]
    after = torch.corrcoef(matched[:, [0, 3]].T)[0, 1]
    assert wanted < -0.9 and abs(before) < 0.5
    torch.testing.assert_close(after, wanted, rtol=0, atol=1e-3)
    pair = [POSE_SLICE.start, POSE_SLICE.start + 3]  # yaw, tx: a group of POSE_GROUPS
    torch.testing.assert_close(torch.cov(matched[:, pair].T), torch.cov(reference[:, pair].T), rtol=1e-3, atol=1e-7)
    # codes in different groups keep the model's relation: chance correlations of a short reference are not copied
    reference[:, POSE_SLICE.start + 2] = reference[:, POSE_SLICE.start] + 0.01 * torch.randn(600, generator=generator)
    rolled = match_pose_spread(generated, reference)
    assert abs(torch.corrcoef(rolled[:, [0, 2]].T)[0, 1]) < 0.3  # yaw and roll: not made to go together


def test_gain_is_bounded_and_still_references_change_nothing():
    generated = sway(FRAMES, 0.05, seed=0)
    wild = match_pose_spread(generated, sway(600, 1.0, seed=1))  # 20x the motion: clipped at MAX_GAIN
    ratio = wild[:, POSE_SLICE].std(0) / generated[:, POSE_SLICE].std(0)
    torch.testing.assert_close(ratio, torch.full_like(ratio, MAX_GAIN), rtol=1e-4, atol=1e-4)
    still = match_pose_spread(generated, sway(600, 0.004, seed=1))  # 1/12 of the motion: clipped at MIN_GAIN
    ratio = still[:, POSE_SLICE].std(0) / generated[:, POSE_SLICE].std(0)
    torch.testing.assert_close(ratio, torch.full_like(ratio, MIN_GAIN), rtol=1e-4, atol=1e-4)
    photo = sway(1, 0.0, seed=1).repeat(600, 1)  # a photo: one code frame, repeated
    assert torch.equal(match_pose_spread(generated, photo), generated)
    short = sway(100, 0.08, seed=1)  # ~1 s: in the model's context whole
    assert torch.equal(match_pose_spread(generated, short), generated)
    with pytest.raises(ValueError, match="same code size"):
        match_pose_spread(generated, reference_codes=generated[:, :6])


def test_the_head_is_held_where_the_reference_holds_it():
    """A three-quarter photo (yaw 0.6 rad) and a model that turns every head to the camera: the output starts at the
    photo's pose and turns at most about MAX_TURN from it, to the sides less (``side_turn_bound``), keeping the
    model's timing (the warp cannot draw the hidden cheek of a 0.65 rad turn: it tore open). A video reference's codes
    are left as they are."""
    photo = torch.zeros(1, VISUAL_CODE_DIM)
    photo[0, POSE_SLICE] = torch.tensor([0.6, 0.3, 0.1, 0.02, -0.01, 0.0])
    t = torch.arange(FRAMES, dtype=torch.float32) / 93.75
    generated = torch.randn(FRAMES, VISUAL_CODE_DIM, generator=torch.Generator().manual_seed(0)) * 0.1
    generated[:, 0] = 0.6 * torch.exp(-t) + 0.1 * torch.sin(2 * torch.pi * 0.5 * t)  # drifts to frontal, sways
    held = hold_reference_pose(generated, photo)
    anchor = round(ANCHOR_SECONDS * 93.75)
    torch.testing.assert_close(held[:anchor, POSE_SLICE].mean(0), photo[0, POSE_SLICE], rtol=0, atol=0.03)
    turn = held[:, ROTATION_SLICE] - photo[0, ROTATION_SLICE]
    side = side_turn_bound(0.6)
    assert side < MAX_TURN / 2
    assert turn[:, 0].abs().max() <= side + 1e-6 and turn[:, 0].min() < -0.5 * side  # bounded, not frozen
    assert turn[:, 1:].abs().max() < MAX_TURN
    assert (held[torch.argsort(generated[:, 0]), 0].diff() >= 0).all()  # the same timing: a monotone map
    torch.testing.assert_close(held[:, POSE_SLICE.stop:], generated[:, POSE_SLICE.stop:], rtol=0, atol=0)
    video = sway(600, 0.05, seed=1)  # a video reference is left to the model and the spread
    assert torch.equal(hold_reference_pose(generated, video), generated)


def test_a_turned_face_turns_less_to_the_sides():
    """The side-turn bound is MAX_TURN for a frontal photo and falls as the photo's face is turned, the same way to
    either side; nods are bounded by MAX_TURN whatever the yaw."""
    assert side_turn_bound(0.0) == side_turn_bound(0.2) == MAX_TURN
    assert MAX_TURN > side_turn_bound(0.4) > side_turn_bound(0.6) == side_turn_bound(-0.6) == side_turn_bound(1.5) > 0
    t = torch.arange(FRAMES, dtype=torch.float32) / 93.75
    generated = torch.zeros(FRAMES, VISUAL_CODE_DIM)
    generated[:, 0] = generated[:, 1] = 0.5 * torch.sin(2 * torch.pi * 0.5 * t)  # wide yaw and pitch swings
    for yaw in (0.0, 0.6):
        photo = torch.zeros(1, VISUAL_CODE_DIM)
        photo[0, 0] = yaw
        turn = hold_reference_pose(generated, photo)[:, ROTATION_SLICE] - photo[0, ROTATION_SLICE]
        assert side_turn_bound(yaw) * 0.9 < turn[:, 0].abs().max() <= side_turn_bound(yaw) + 1e-6
        assert MAX_TURN * 0.9 < turn[:, 1].abs().max() <= MAX_TURN + 1e-6


def test_pipeline_matches_the_reference_motion_and_saves_the_setting(tmp_path):
    from omnitalker import OmniTalkerPipeline
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video

    video = make_reference_video(tmp_path / "ref.mp4", seconds=3.0, size=128)
    plain = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"))
    plain.set_progress_bar_config(disable=True)
    reference = plain.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)
    kwargs = dict(reference=reference, num_inference_steps=2, output_type="latent")
    before = plain("Nice to meet you.", generator=torch.Generator().manual_seed(0), **kwargs).visual_codes[0]

    matching = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"), match_reference_motion=True)
    matching.save_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["match_reference_motion"] is True
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    after = loaded("Nice to meet you.", generator=torch.Generator().manual_seed(0), **kwargs).visual_codes[0]

    before, after = torch.as_tensor(before), torch.as_tensor(after)  # (T30, 58)
    torch.testing.assert_close(after[:, POSE_SLICE.stop:], before[:, POSE_SLICE.stop:], rtol=1e-5, atol=1e-5)
    reference_spread = reference.codes[:, POSE_SLICE].double().std(0)
    moving = reference_spread > 1e-3
    assert moving.any(), "the test reference should move its head"
    expected = (reference_spread / before[:, POSE_SLICE].double().std(0)).clamp(MIN_GAIN, MAX_GAIN)
    gain = after[:, POSE_SLICE].double().std(0) / before[:, POSE_SLICE].double().std(0)
    # the pipeline scales at the mel rate before resampling to 30 fps, which changes a spread by a little; the
    # random transformer's angles span several radians, which the resampling unwraps, so read the translations
    linear = moving.clone()
    linear[:3] = False  # yaw, pitch, roll
    assert linear.any()
    torch.testing.assert_close(gain[linear], expected[linear], rtol=0.05, atol=0.0)
    assert not torch.allclose(after[:, :3], before[:, :3])
