"""Eye and mouth dynamics from the whole reference (omnitalker/pipeline/expression_style.py).

python -m pytest tests/test_expression_style.py -q
"""

from __future__ import annotations

import numpy as np
import torch

from omnitalker.frontend.audio import FRAME_RATE
from omnitalker.frontend.face.codes import EYE_SLICE, VISUAL_CODE_DIM
from omnitalker.pipeline.expression_style import (
    _LIDS,
    BLINK_CLOSING_SECONDS,
    BLINK_OPENING_SECONDS,
    MIN_FIXATION_SECONDS,
    MOUTH_GAIN,
    PHOTO_BLINKS_PER_MINUTE,
    PHOTO_GAZE_SPREAD,
    SACCADE_SECONDS,
    _columns,
    add_blinks,
    add_gaze,
    add_photo_expression,
    find_blinks,
    lid_gap,
    match_expression,
    mouth_gap,
    standard_blink,
    without_blinks,
)

NEUTRAL_GAP = 0.05  # code units: the lids' distance in the neutral face (y axis pointing down)
LIDS = _columns([name for pair in _LIDS for name in pair])


def _blinking(seconds: float, blink_every: float, seed: int = 0) -> np.ndarray:
    """Codes at the mel rate whose lids shut for ~0.15 s every `blink_every` s, with a moving mouth and gaze."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * FRAME_RATE)
    codes = rng.normal(0, 1e-4, (frames, VISUAL_CODE_DIM))
    t = np.arange(frames) / FRAME_RATE
    closure = np.zeros(frames)
    for start in np.arange(0.5, seconds - 0.5, blink_every):
        closure += np.exp(-0.5 * ((t - start) / 0.04) ** 2)
    upper, lower = _columns(["upper_lid_right", "upper_lid_left"]), _columns(["lower_lid_right", "lower_lid_left"])
    codes[:, upper[1::3]] += (0.5 * NEUTRAL_GAP * closure)[:, None]  # upper lids come down ...
    codes[:, lower[1::3]] -= (0.45 * NEUTRAL_GAP * closure)[:, None]  # ... and the lower ones up
    lower_lip = _columns(["lower_lip_inner"])[1]
    codes[:, lower_lip] += 0.03 * (1 + np.sin(2 * np.pi * 4 * t))  # speech-like opening
    codes[:, EYE_SLICE] += 0.05 * np.sin(2 * np.pi * 0.5 * t)[:, None]
    return codes.astype(np.float32)


def _still(seconds: float) -> np.ndarray:
    frames = int(seconds * FRAME_RATE)
    codes = np.zeros((frames, VISUAL_CODE_DIM), np.float32)
    t = np.arange(frames) / FRAME_RATE
    codes[:, _columns(["lower_lip_inner"])[1]] = 0.01 * (1 + np.sin(2 * np.pi * 4 * t))
    return codes


def test_the_reference_blinks_are_found_whole():
    reference = _blinking(10.0, 2.0)
    blinks = find_blinks(reference, NEUTRAL_GAP)
    assert len(blinks) == 5
    for blink in blinks:
        assert np.allclose(blink[0], 0, atol=1e-6) and np.allclose(blink[-1], 0, atol=1e-6)  # starts and ends open


def test_the_output_blinks_at_the_reference_rate_with_its_own_blinks():
    reference, generated = torch.from_numpy(_blinking(10.0, 2.0)), torch.from_numpy(_still(120.0))
    out = match_expression(generated, reference, NEUTRAL_GAP, torch.Generator().manual_seed(0))
    assert len(find_blinks(generated.numpy(), NEUTRAL_GAP)) == 0
    assert 0.85 * 60 <= len(find_blinks(out.numpy(), NEUTRAL_GAP)) <= 1.15 * 60  # 0.5 blinks/s x 120 s
    shut = np.sign(NEUTRAL_GAP) * (NEUTRAL_GAP + lid_gap(out.numpy()))
    assert shut.min() < 0.2 * NEUTRAL_GAP  # the eyes really close
    again = match_expression(generated, reference, NEUTRAL_GAP, torch.Generator().manual_seed(0))
    other = match_expression(generated, reference, NEUTRAL_GAP, torch.Generator().manual_seed(1))
    assert torch.equal(out, again) and not torch.equal(out, other)  # the generator decides when


def test_articulation_and_gaze_take_the_reference_size():
    reference, generated = torch.from_numpy(_blinking(10.0, 2.0)), torch.from_numpy(_still(8.0))
    out = match_expression(generated, reference, NEUTRAL_GAP, torch.Generator().manual_seed(0)).numpy()
    gain = mouth_gap(out).std() / mouth_gap(generated.numpy()).std()
    assert np.isclose(gain, MOUTH_GAIN[1])  # the reference moves 3x as much: capped
    # a still gaze gets the person's own eye movements, as much as the reference's spread
    assert np.isclose(out[:, EYE_SLICE].std(0).mean(), reference.numpy()[:, EYE_SLICE].std(0).mean(), rtol=0.1)


def test_both_eyes_get_the_same_gaze_movement():
    """A reference whose two tracked irises differ by noise (the eyes themselves move together): replayed per eye, the
    output's eyes wandered apart; now they move as one, by the reference's shared movement."""
    rng = np.random.default_rng(2)
    reference = _blinking(10.0, 2.0)
    reference[:, EYE_SLICE] += 0.03 * rng.standard_normal((len(reference), 4))  # per-eye tracking noise
    generated = torch.from_numpy(_still(8.0))
    out = match_expression(generated, torch.from_numpy(reference), NEUTRAL_GAP, torch.Generator().manual_seed(0))
    added = (out - generated).numpy()[:, EYE_SLICE]  # n 4: left x, y, right x, y
    np.testing.assert_allclose(added[:, :2], added[:, 2:], atol=1e-6)
    both = 0.5 * (reference[:, EYE_SLICE][:, :2] + reference[:, EYE_SLICE][:, 2:])
    shared = 0.5 * (out.numpy()[:, EYE_SLICE][:, :2] + out.numpy()[:, EYE_SLICE][:, 2:])
    assert np.isclose(shared.std(0).mean(), both.std(0).mean(), rtol=0.15)


def test_the_lids_move_between_blinks_as_the_persons_do():
    reference = _blinking(10.0, 2.0)
    t = np.arange(len(reference)) / FRAME_RATE
    upper = _columns(["upper_lid_right", "upper_lid_left"])[1::3]
    reference[:, upper] += (0.1 * NEUTRAL_GAP * np.sin(2 * np.pi * 0.3 * t))[:, None]  # a slow squint
    steady = without_blinks(reference, NEUTRAL_GAP)
    assert len(find_blinks(steady, NEUTRAL_GAP)) == 0 and len(find_blinks(reference, NEUTRAL_GAP)) == 5
    generated = torch.from_numpy(_still(8.0))
    out = match_expression(generated, torch.from_numpy(reference), NEUTRAL_GAP,
                           torch.Generator().manual_seed(0)).numpy()
    between = without_blinks(out, NEUTRAL_GAP)
    assert np.isclose(lid_gap(between).std(), lid_gap(steady).std(), rtol=0.25)  # the squint carried over
    assert lid_gap(generated.numpy()).std() < 0.1 * lid_gap(steady).std()


def test_a_short_or_still_reference_leaves_the_codes_alone():
    generated = torch.from_numpy(_blinking(4.0, 1.0, seed=1))
    short = torch.from_numpy(_blinking(1.0, 0.5))
    assert torch.equal(match_expression(generated, short, NEUTRAL_GAP), generated)
    photo = torch.zeros(500, VISUAL_CODE_DIM)
    out = match_expression(generated, photo, NEUTRAL_GAP)
    assert torch.allclose(out, generated)


def test_the_standard_blink_shuts_the_lids_and_opens_more_slowly():
    for neutral_gap in (NEUTRAL_GAP, -NEUTRAL_GAP):  # whichever way the canonical y axis points
        blink = standard_blink(neutral_gap)
        codes = np.zeros((len(blink), VISUAL_CODE_DIM))
        codes[:, LIDS] = blink
        gap = np.sign(neutral_gap) * (neutral_gap + lid_gap(codes))  # the lids' distance, > 0 while open
        assert gap[0] == gap[-1] == abs(neutral_gap) and abs(gap.min()) < 1e-9  # open, shut, open again
        deepest = np.flatnonzero(gap < 1e-9)
        assert len(gap) - 1 - deepest[-1] > deepest[0]  # the lids part more slowly than they meet
        assert deepest[0] >= round(BLINK_CLOSING_SECONDS * FRAME_RATE) - 1
        assert len(gap) - 1 - deepest[-1] >= round(BLINK_OPENING_SECONDS * FRAME_RATE) - 1


def test_a_photo_output_blinks_at_peoples_rate():
    """A photo has no blinks to copy and the model draws none: the output gets PHOTO_BLINKS_PER_MINUTE, at times the
    generator decides, neither in bursts nor in long stares; nothing but the lids changes."""
    generated = torch.from_numpy(_still(180.0))
    out = add_blinks(generated, NEUTRAL_GAP, torch.Generator().manual_seed(0))
    assert len(find_blinks(generated.numpy(), NEUTRAL_GAP)) == 0
    expected = PHOTO_BLINKS_PER_MINUTE * 3  # 3 minutes
    assert 0.85 * expected <= len(find_blinks(out.numpy(), NEUTRAL_GAP)) <= 1.15 * expected
    counts = [len(find_blinks(add_blinks(torch.from_numpy(_still(8.0)), NEUTRAL_GAP,
                                         torch.Generator().manual_seed(seed)).numpy(), NEUTRAL_GAP))
              for seed in range(40)]
    assert 1 <= min(counts) and max(counts) <= 5, counts  # 2.5 expected in 8 s
    others = np.setdiff1d(np.arange(VISUAL_CODE_DIM), LIDS)
    assert torch.equal(out[:, others], generated[:, others])
    again = add_blinks(generated, NEUTRAL_GAP, torch.Generator().manual_seed(0))
    other = add_blinks(generated, NEUTRAL_GAP, torch.Generator().manual_seed(1))
    assert torch.equal(out, again) and not torch.equal(out, other)
    blinking = torch.from_numpy(_blinking(120.0, 2.0))  # codes that already blink often get hardly any more
    own = len(find_blinks(blinking.numpy(), NEUTRAL_GAP))
    assert own <= len(find_blinks(add_blinks(blinking, NEUTRAL_GAP).numpy(), NEUTRAL_GAP)) <= 1.15 * own


def test_a_longer_output_keeps_the_blinks_and_gaze_of_its_start():
    """A stream styles its codes again as each chunk adds to them (omnitalker/pipeline/stream.py): the frames already
    played must keep their blinks and gaze. Placements are drawn in time order, so styling the first 5 s alone gives
    what styling 12 s gives them; before, each piece drew its blinks anew (blinks cut in half at the joins)."""
    reference = torch.from_numpy(_blinking(10.0, 2.0))
    still = _still(12.0)
    still[int(3.0 * FRAME_RATE): int(3.2 * FRAME_RATE), LIDS[1::3]] += 0.6 * NEUTRAL_GAP  # a blink of its own
    longer, start = torch.from_numpy(still), torch.from_numpy(still[: int(5.0 * FRAME_RATE)])
    for style in (lambda codes: add_photo_expression(codes, NEUTRAL_GAP, torch.Generator().manual_seed(3)),
                  lambda codes: match_expression(codes, reference, NEUTRAL_GAP, torch.Generator().manual_seed(3))):
        whole, first = style(longer), style(start)
        assert len(find_blinks(whole.numpy(), NEUTRAL_GAP)) >= 3
        torch.testing.assert_close(first, whole[: len(start)], rtol=0, atol=1e-6)


def test_a_photo_output_looks_about_from_where_the_photo_looks():
    """From a photo the model barely moves the eyes: the output holds fixations (at least MIN_FIXATION_SECONDS) and
    jumps between them in SACCADE_SECONDS, both eyes together, starting where the codes look; the spread is
    PHOTO_GAZE_SPREAD across and half of it up and down. Nothing but the gaze changes."""
    generated = torch.from_numpy(_still(400.0))
    out = add_gaze(generated, torch.Generator().manual_seed(0)).numpy()
    gaze = out[:, EYE_SLICE] - generated.numpy()[:, EYE_SLICE]  # t 4
    np.testing.assert_array_equal(gaze[:, :2], gaze[:, 2:])  # both eyes alike
    assert np.abs(gaze[: round(MIN_FIXATION_SECONDS * FRAME_RATE)]).max() == 0  # it starts where the photo looks
    spread = gaze[:, :2].std(0)
    assert 0.8 * PHOTO_GAZE_SPREAD < spread[0] < 1.2 * PHOTO_GAZE_SPREAD
    assert 0.4 * PHOTO_GAZE_SPREAD < spread[1] < 0.6 * PHOTO_GAZE_SPREAD
    moving = np.abs(np.diff(gaze[:, 0])) > 0
    starts = np.flatnonzero(moving[1:] & ~moving[:-1]) + 1
    assert np.diff(starts).min() >= round((MIN_FIXATION_SECONDS + SACCADE_SECONDS) * FRAME_RATE) - 1  # held
    assert moving.mean() < 0.1  # the eyes mostly hold still
    others = np.setdiff1d(np.arange(VISUAL_CODE_DIM), np.arange(VISUAL_CODE_DIM)[EYE_SLICE])
    assert np.array_equal(out[:, others], generated.numpy()[:, others])
    again = add_gaze(generated, torch.Generator().manual_seed(0))
    assert torch.equal(again, torch.from_numpy(out).float())


def test_a_photo_reference_blinks_through_the_pipeline():
    """The pipeline's style step gives a photo reference's output blinks and gaze (the setting on), at the face's own
    lid gap;
    the tiny random model's codes jitter too much to count blinks in, so still codes stand in for a model's."""
    from omnitalker import OmniTalkerPipeline
    from omnitalker.io.audio import SAMPLE_RATE
    from omnitalker.pipeline.expression_style import neutral_lid_gap
    from tests.pipeline_fixtures import REFERENCE_TEXT, astronaut_face, get_dummy_components, make_voice

    generated = torch.from_numpy(_still(12.6))
    for setting in (False, True):
        pipe = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"),
                                  match_reference_expression=setting)
        reference = pipe.prepare_reference(reference_image=astronaut_face(128),
                                           reference_audio=(SAMPLE_RATE, make_voice(seconds=3.0)),
                                           reference_text=REFERENCE_TEXT)
        assert reference.static
        out = pipe.reference_expression(generated, reference, torch.Generator().manual_seed(0))
        blinks = find_blinks(out.numpy(), neutral_lid_gap(reference.identity))
        assert (2 <= len(blinks) <= 6) if setting else not blinks  # 4 expected in 12.6 s
        assert (out[:, EYE_SLICE] != generated[:, EYE_SLICE]).any() == setting  # and the eyes look about


def test_the_pipeline_setting_changes_the_face_not_the_voice(tmp_path):
    from omnitalker import OmniTalkerPipeline
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video

    video = make_reference_video(tmp_path / "ref.mp4", seconds=3.0, size=128)
    outputs = {}
    for setting in (False, True):
        pipe = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"),
                                  match_reference_expression=setting)
        pipe.set_progress_bar_config(disable=True)
        reference = pipe.prepare_reference(reference_video=video, reference_text=REFERENCE_TEXT)
        outputs[setting] = pipe("Nice to meet you.", reference=reference, num_inference_steps=2, output_type="np",
                                generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(outputs[True].audio[0], outputs[False].audio[0])
    assert not np.array_equal(outputs[True].visual_codes[0], outputs[False].visual_codes[0])
    pipe.save_pretrained(tmp_path / "pipe")
    assert OmniTalkerPipeline.from_pretrained(tmp_path / "pipe").config.match_reference_expression is True
