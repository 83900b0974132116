"""Eye and mouth dynamics from the whole reference (the pipeline's ``match_reference_expression`` config).

Why: a durations model sees only the last 1-2 s of its reference in context (``text_layout.prompt_window``), and
what it learnt from the synthetic corpus (6-36 blinks a minute, nearly still lids and gaze) is what it draws
whatever the person does. Measured on nine real clips as references (``python -m omnitalker.eval.style``): the
reference's codes keep its dynamics (eye-opening variation, gaze and mouth movement at 0.9-1.0x of what MediaPipe
sees on the real frames), while the generated codes have no blinks, 3 % of the eye-opening variation, 7 % of the
gaze movement and under half the mouth movement. This step carries the person's own dynamics over, from the
whole reference, the way ``motion_spread`` carries the head-motion size:

- **blinks**: the reference's blinks are found (lid gap below ``BLINK_DEPTH`` of its median) and cut out as lid
  trajectories relative to the lids around them; the output gets blinks at the reference's rate, each one a copy
  of one of the person's own blinks, at times drawn with the call's generator (at least ``MIN_BLINK_GAP_SECONDS``
  apart, and after the output's own blinks);
- **gaze**: the demo's gaze barely moves (a tenth of a person's), so there is nothing to scale: the reference's
  own eye movements are replayed (back and forth, from a start drawn with the generator), weighted so the output
  has the reference's gaze spread. Both eyes get the same movement, the mean of the reference's two (people's eyes
  move together; what differs between the two tracked irises is mostly tracking noise: replayed per eye, the two
  eyes of a d9 output wandered apart, their horizontal movements uncorrelated, and the shared gaze moved less);
- **lids between blinks**: likewise the reference's own lid movement with its blinks taken out (squints, widened
  eyes; the generated lids hold still, so the output had 60 % of the person's eye-opening variation with blinks
  alone);
- **mouth**: the lip and jaw offsets from the neutral face are scaled so the mouth opening varies as much as the
  reference's (bounded): articulation gain, the timing stays the model's (sync is the model's).

The model still decides what the mouth says and when; the person's blink habit, eye movements and articulation
size come from the reference. A reference shorter than ``MIN_REFERENCE_SECONDS`` leaves the codes as generated.

A photo shows nothing moving to copy, and the model draws almost no blinks (0 or 1 in 8 s from each of the six shared
portraits) and little gaze (a third of a person's). So ``add_blinks`` gives the output
``PHOTO_BLINKS_PER_MINUTE``, each the ``standard_blink`` (its timing and the lids' shares measured on the nine shared
clips' 56 blinks), and ``add_gaze`` fixations the eyes hold and jump between (``PHOTO_GAZE_SPREAD``), starting where the
photo looks. Lids between blinks and articulation stay as generated.

    codes = match_expression(codes, reference.codes, neutral_gap, generator)  # (n, 58) generated, (m, 58) reference
    codes = add_photo_expression(codes, neutral_gap, generator)                # a photo reference: blinks, gaze

Every random placement is drawn in time order from the start (blink after blink, fixation after fixation, a replay's
start first), so the first frames of a longer output get the same blinks and gaze: a stream styles its codes again as
each chunk adds to them (omnitalker/pipeline/stream.py) and the frames already played must not change. Before, each
piece drew its blinks anew: blinks cut in half and gaze jumps at the joins.
"""

from __future__ import annotations

import numpy as np
import torch

from omnitalker.frontend.audio import FRAME_RATE as MEL_FRAME_RATE
from omnitalker.frontend.face.codes import EXP_SLICE, EYE_SLICE, VISUAL_CODE_DIM, extend_by_reflection
from omnitalker.frontend.face.template import EXPRESSION_POINTS

MIN_REFERENCE_SECONDS = 2.0
BLINK_DEPTH = 0.6  # a blink: the lid gap below this share of its median (as omnitalker.eval.style counts them)
BLINK_MARGIN_SECONDS = 0.08  # kept each side of a blink's closed frames: the lids' run-up and return
MIN_BLINK_GAP_SECONDS = 0.6  # inserted blinks are at least this far apart (and from the start)
# The time between inserted blinks beyond that gap is gamma-distributed with this shape (coefficient of variation
# 1/sqrt(3)): exponential gaps (shape 1) put 8 blinks into one 8 s output and 2 into the next at the same rate.
BLINK_INTERVAL_SHAPE = 3
SPREAD_WINDOW_SECONDS = 0.1
MIN_SPREAD = 1e-4  # code units; below this a code does not move (a photo reference)
MOUTH_GAIN = (0.7, 2.0)  # bounds on the articulation gain
# The blinks of an output from a photo: the median rate of the nine shared clips (6-48 a minute, median 19), and one blink
# shape. On those clips a blink shut the lids to a gap of about zero (median deepest change: the whole neutral gap), spent a median 0.12 s below half its depth, and
# reopened more slowly than it closed; the upper lid made 0.6-1.1 of the closing, the lower lid rose 0-0.3.
PHOTO_BLINKS_PER_MINUTE = 19.0
BLINK_CLOSING_SECONDS, BLINK_SHUT_SECONDS, BLINK_OPENING_SECONDS = 0.07, 0.03, 0.15
UPPER_LID_SHARE = 0.85  # of a blink's closing made by the upper lid; the lower lid rises the rest
# The gaze of an output from a photo: fixations held for FIXATION_SECONDS on average (exponentially distributed, at least
# MIN_FIXATION_SECONDS), each at a place drawn around where the photo looks with this spread (eye widths; vertically
# half of it: eyes move more across than up and down), joined by saccades of SACCADE_SECONDS. The nine shared clips'
# people moved their irises by 0.010-0.085 eye widths (std, median 0.055), the demo's outputs from the six portraits by
# 0.012-0.024; at 0.05 a portrait looks about rather than stares, without darting.
PHOTO_GAZE_SPREAD = 0.05
FIXATION_SECONDS, MIN_FIXATION_SECONDS = 1.5, 0.5
SACCADE_SECONDS = 0.05
_POINT = {name: index for index, (name, _) in enumerate(EXPRESSION_POINTS)}
_LIDS = [("upper_lid_right", "lower_lid_right"), ("upper_lid_left", "lower_lid_left")]
_MOUTH = ("upper_lip_outer", "upper_lip_inner", "lower_lip_inner", "lower_lip_outer", "mouth_corner_right",
          "mouth_corner_left", "chin")
_Y = 1  # the vertical axis of a point's (x, y, z) offset


def _columns(names) -> list[int]:
    """Code columns (x, y, z) of expression points."""
    return [EXP_SLICE.start + 3 * _POINT[name] + axis for name in names for axis in range(3)]


def lid_gap(codes: np.ndarray) -> np.ndarray:
    """(T,) change of the lid gap from the neutral face (code units; negative while the eyes close), both eyes."""
    gaps = [codes[:, EXP_SLICE.start + 3 * _POINT[lower] + _Y] - codes[:, EXP_SLICE.start + 3 * _POINT[upper] + _Y]
            for upper, lower in _LIDS]
    return np.mean(gaps, axis=0)


def mouth_gap(codes: np.ndarray) -> np.ndarray:
    """(T,) change of the inner-lip gap from the neutral face (code units)."""
    start = EXP_SLICE.start
    return codes[:, start + 3 * _POINT["lower_lip_inner"] + _Y] - codes[:, start + 3 * _POINT["upper_lip_inner"] + _Y]


def neutral_lid_gap(identity) -> float:
    """The lid gap of a ``FaceIdentity``'s neutral face in code units (its sign: the canonical space's y axis)."""
    from omnitalker.frontend.face.template import LEFT_EYE, RIGHT_EYE

    neutral = np.asarray(identity.neutral, np.float64)
    return float(np.mean([neutral[eye[3], _Y] - neutral[eye[2], _Y] for eye in (RIGHT_EYE, LEFT_EYE)]))


def _closed_frames(codes: np.ndarray, neutral_gap: float) -> np.ndarray:
    """(T,) bool: the lid gap below BLINK_DEPTH of its median."""
    gap = np.sign(neutral_gap) * (neutral_gap + lid_gap(codes))  # > 0 while open, whatever the y axis
    return gap < BLINK_DEPTH * np.median(gap)


def find_blinks(codes: np.ndarray, neutral_gap: float) -> list[np.ndarray]:
    """The reference's blinks as lid-offset trajectories (k, 12) that start and end at zero."""
    closed = _closed_frames(codes, neutral_gap)
    margin = max(1, round(BLINK_MARGIN_SECONDS * MEL_FRAME_RATE))
    lids = _columns([name for pair in _LIDS for name in pair])
    blinks, index = [], 0
    while index < len(closed):
        if not closed[index]:
            index += 1
            continue
        end = index
        while end < len(closed) and closed[end]:
            end += 1
        start, stop = index - margin, end + margin
        if start >= 0 and stop < len(codes):  # a whole blink, with its run-up and return
            segment = codes[start : stop + 1, lids]  # k 12
            ramp = np.linspace(0.0, 1.0, len(segment))[:, None]
            blinks.append(segment - ((1 - ramp) * segment[:1] + ramp * segment[-1:]))  # relative to the lids around
        index = end
    return blinks


def without_blinks(codes: np.ndarray, neutral_gap: float) -> np.ndarray:
    """``codes`` with the lids of each blink (and BLINK_MARGIN_SECONDS around it) replaced by the straight line
    between the lids on either side: the lid movement a person makes besides blinking."""
    closed = _closed_frames(codes, neutral_gap)
    margin = max(1, round(BLINK_MARGIN_SECONDS * MEL_FRAME_RATE))
    hidden = np.convolve(closed.astype(float), np.ones(2 * margin + 1), mode="same") > 0  # closed, widened
    if not hidden.any() or hidden.all():
        return codes
    lids = _columns([name for pair in _LIDS for name in pair])
    frames, kept = np.arange(len(codes)), np.flatnonzero(~hidden)
    out = codes.copy()
    out[:, lids] = np.stack([np.interp(frames, kept, codes[kept, column]) for column in lids], -1)
    return out


def _blink_times(num_frames: int, rate: float, generator: torch.Generator | None,
                 own: np.ndarray | None = None) -> list[int]:
    """Start frames of blinks at `rate` per frame: a renewal process from the start, each interval
    MIN_BLINK_GAP_SECONDS plus a gamma draw of shape BLINK_INTERVAL_SHAPE (the first counted from the start), so the
    first blinks of a longer sequence are the same. `own` (num_frames,) bool: frames where the codes already blink;
    each of their blinks restarts the interval (it is one of the rate's blinks), and none is placed within the gap
    of one."""
    gap = round(MIN_BLINK_GAP_SECONDS * MEL_FRAME_RATE)
    if rate <= 0 or num_frames <= gap:
        return []
    generator, spare = _cpu(generator), max(1.0 / rate - gap, 1e-6)  # mean interval beyond the gap, frames
    own_starts = [] if own is None else list(np.flatnonzero(own[1:] & ~own[:-1]) + 1) + ([0] if own[0] else [])
    busy = np.zeros(num_frames, bool) if own is None else np.convolve(own, np.ones(2 * gap + 1), "same") > 0
    starts, last = [], 0.0
    while True:
        extra = torch.empty(BLINK_INTERVAL_SHAPE, dtype=torch.float64).exponential_(1.0, generator=generator)
        drawn = last + gap + spare * float(extra.mean())  # the mean of k exponentials: a gamma draw
        own_before = [start for start in own_starts if last < start <= drawn]
        if own_before:  # the codes blink first: count it, and draw the next interval from it
            last = float(min(own_before))
            continue
        if drawn >= num_frames:
            return starts
        if not busy[int(drawn)]:
            starts.append(int(drawn))
        last = drawn


def _slow(codes: np.ndarray) -> np.ndarray:
    """Moving average over SPREAD_WINDOW_SECONDS: spreads are compared on the movement a viewer sees, not on
    frame-to-frame jitter (the output is shown at 25 fps)."""
    width = max(1, round(SPREAD_WINDOW_SECONDS * MEL_FRAME_RATE))
    if len(codes) <= width:
        return codes
    kernel = np.ones(width) / width
    return np.stack([np.convolve(column, kernel, mode="valid") for column in codes.T], -1)


def _replay(reference: np.ndarray, generated: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
    """(n, c) to add to generated columns (n, c): the reference's movement of them (m, c) (about its mean, back and
    forth so it never jumps), from a start drawn with the generator, weighted so the sum has the reference's
    spread."""
    movement = reference - reference.mean(0)  # m 4
    wanted, have = _slow(reference).std(0).mean(), _slow(generated).std(0).mean()
    if wanted < MIN_SPREAD or have >= wanted:
        return np.zeros_like(generated)
    weight = float(np.sqrt(wanted**2 - have**2) / wanted)
    start = int(torch.randint(2 * len(movement), (1,), generator=_cpu(generator)).item())  # anywhere in one round
    played = extend_by_reflection(movement, start + len(generated))[start : start + len(generated)]  # back and forth
    return weight * played


def _both_eyes(eyes: np.ndarray) -> np.ndarray:
    """(T, 2) gaze of both eyes together: the mean of the left (x, y) and right (x, y) eye codes (T, 4)."""
    return 0.5 * (eyes[:, :2] + eyes[:, 2:])


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """Draws are made on the CPU: a GPU generator is replaced by a CPU one with its seed."""
    if generator is not None and generator.device.type != "cpu":
        return torch.Generator().manual_seed(generator.initial_seed())
    return generator


def _gain(reference: float, generated: float, bounds: tuple[float, float]) -> float:
    if reference < MIN_SPREAD or generated < MIN_SPREAD:
        return 1.0
    return float(np.clip(reference / generated, *bounds))


def match_expression(codes: torch.Tensor, reference_codes: torch.Tensor, neutral_lid_gap: float,
                     generator: torch.Generator | None = None, *,
                     min_reference_frames: int = round(MIN_REFERENCE_SECONDS * MEL_FRAME_RATE)) -> torch.Tensor:
    """``codes`` (n, 58) with the reference's blinks, gaze spread and articulation size (module docstring).
    ``neutral_lid_gap``: the neutral face's lid gap in code units (``FaceIdentity``), where a gap of zero is shut.
    Returns a new tensor; unchanged when the reference is too short or does not move."""
    if codes.ndim != 2 or reference_codes.ndim != 2 or codes.shape[1] != reference_codes.shape[1]:
        raise ValueError(f"codes and reference_codes must be (frames, {codes.shape[-1]}) arrays with the same code "
                         f"size, got {tuple(codes.shape)} and {tuple(reference_codes.shape)}")
    if len(reference_codes) < min_reference_frames or len(codes) < 2:
        return codes.clone()
    out = codes.double().numpy().copy()  # n 58
    reference = reference_codes.double().numpy()  # m 58

    # gaze: the person's own eye movements, replayed to both eyes alike as much as the output lacks of their spread
    gaze = _replay(_both_eyes(reference[:, EYE_SLICE]), _both_eyes(out[:, EYE_SLICE]), generator)  # n 2
    out[:, EYE_SLICE] += np.tile(gaze, (1, 2))  # the same (x, y) movement for the left and the right eye

    # mouth: offsets from the neutral face scaled by the articulation gain
    mouth = _columns(_MOUTH)
    gain = _gain(mouth_gap(reference).std(), mouth_gap(out).std(), MOUTH_GAIN)
    out[:, mouth] *= gain

    lids = _columns([name for pair in _LIDS for name in pair])
    # lids between blinks: the person's own slow movement (squints, widened eyes), as for the gaze
    out[:, lids] += _replay(without_blinks(reference, neutral_lid_gap)[:, lids], out[:, lids], generator)
    # blinks: the person's own, at the person's rate
    blinks = find_blinks(reference, neutral_lid_gap)
    if blinks:
        _insert_blinks(out, blinks, len(blinks) / len(reference), neutral_lid_gap, generator)
    return torch.from_numpy(out).to(codes.dtype)


def standard_blink(neutral_lid_gap: float) -> np.ndarray:
    """(k, 12) lid offsets of one blink (the lids' (x, y, z) columns, as ``find_blinks`` gives a person's), for a face
    whose neutral lid gap is `neutral_lid_gap` code units: the lids meet over BLINK_CLOSING_SECONDS (the upper lid
    UPPER_LID_SHARE of the way), stay shut BLINK_SHUT_SECONDS and part over BLINK_OPENING_SECONDS, each move a
    smoothstep; it starts and ends at zero."""
    closing, shut, opening = (max(1, round(seconds * MEL_FRAME_RATE)) for seconds in
                              (BLINK_CLOSING_SECONDS, BLINK_SHUT_SECONDS, BLINK_OPENING_SECONDS))
    closes, opens = (_smoothstep(np.linspace(0.0, 1.0, frames + 1)) for frames in (closing, opening))
    depth = np.concatenate([closes[:-1], np.ones(shut), opens[::-1]])  # 0 .. 1 .. 0: share shut
    blink = np.zeros((len(depth), 12))
    for upper_y, lower_y in ((1, 4), (7, 10)):  # right eye, left eye: (x, y, z) of the upper lid, then the lower
        blink[:, upper_y] = UPPER_LID_SHARE * neutral_lid_gap * depth  # the lids move towards each other: the
        blink[:, lower_y] = -(1.0 - UPPER_LID_SHARE) * neutral_lid_gap * depth  # gap shrinks by the neutral gap
    return blink


def add_blinks(codes: torch.Tensor, neutral_lid_gap: float, generator: torch.Generator | None = None,
               per_minute: float = PHOTO_BLINKS_PER_MINUTE) -> torch.Tensor:
    """``codes`` (n, 58) at mel rate with ``standard_blink``s added at `per_minute` on average (counting the blinks
    they have), at times drawn with `generator` (``_blink_times``): the output of a photo reference, which has no
    blinks of its own to copy. Returns a new tensor."""
    out = _visual_array(codes)  # n 58
    _insert_blinks(out, [standard_blink(neutral_lid_gap)], per_minute / 60.0 / MEL_FRAME_RATE, neutral_lid_gap,
                   generator)
    return torch.from_numpy(out).to(codes.dtype)


def add_gaze(codes: torch.Tensor, generator: torch.Generator | None = None,
             spread: float = PHOTO_GAZE_SPREAD) -> torch.Tensor:
    """``codes`` (n, 58) at mel rate with both eyes' gaze moved between fixations (module constants; the first at the
    codes' own gaze, later ones drawn with `generator` around it with `spread` eye widths): the output of a photo
    reference, whose gaze the model barely moves. Returns a new tensor."""
    out = _visual_array(codes)  # n 58
    generator = _cpu(generator)
    saccade = max(1, round(SACCADE_SECONDS * MEL_FRAME_RATE))
    path, place, start = np.zeros((len(out), 2)), np.zeros(2), 0  # the first fixation: where the codes look
    while start < len(out):
        hold = MIN_FIXATION_SECONDS + float(torch.empty(1, dtype=torch.float64).exponential_(
            1.0 / (FIXATION_SECONDS - MIN_FIXATION_SECONDS), generator=generator))
        stop = min(len(out), start + max(1, round(hold * MEL_FRAME_RATE)))
        path[start:stop] = place
        following = spread * torch.randn(2, generator=generator, dtype=torch.float64).numpy() * (1.0, 0.5)  # x y
        move = _smoothstep(np.arange(1, saccade + 1) / saccade)[:, None]  # the saccade's path
        end = min(len(out), stop + saccade)
        path[stop:end] = place + move[: end - stop] * (following - place)
        place, start = following, end
    out[:, EYE_SLICE] += np.tile(path, (1, 2))  # the same (x, y) movement for the right and the left eye
    return torch.from_numpy(out).to(codes.dtype)


def add_photo_expression(codes: torch.Tensor, neutral_lid_gap: float,
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """``add_blinks`` then ``add_gaze``: the eyes of a photo reference's output. Each draws from its own seed, both
    seeds drawn from `generator` first: how many blink intervals a longer output draws moves no fixation."""
    blink_seed, gaze_seed = torch.randint(2**62, (2,), generator=_cpu(generator)).tolist()
    blinked = add_blinks(codes, neutral_lid_gap, torch.Generator().manual_seed(blink_seed))
    return add_gaze(blinked, torch.Generator().manual_seed(gaze_seed))


def style_generator(generator: torch.Generator | None) -> torch.Generator:
    """The generator the style step draws with, for an item sampled with `generator`: a CPU generator with its seed
    (0 without one). Fresh, not `generator` itself after the sampler's draws: ``__call__`` and every piece of a
    stream start the style's draws from the same state, so they place the same blinks and fixations."""
    return torch.Generator().manual_seed(generator.initial_seed() if generator is not None else 0)


def _visual_array(codes: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of visual codes (n, 58), or a ValueError naming the shape they have."""
    if codes.ndim != 2 or codes.shape[1] != VISUAL_CODE_DIM:
        raise ValueError(f"codes must be (frames, {VISUAL_CODE_DIM}) visual codes, got {tuple(codes.shape)}")
    return codes.double().numpy().copy()


def _smoothstep(x: np.ndarray) -> np.ndarray:
    """0 at x <= 0, 1 at x >= 1, an S between with zero slope at both ends: how a lid or an eye starts and stops."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _insert_blinks(out: np.ndarray, blinks: list[np.ndarray], rate: float, neutral_lid_gap: float,
                   generator: torch.Generator | None) -> None:
    """Add blinks (lid offsets (k, 12), used in turn) to codes `out` (n, 58) in place, at `rate` (per frame) counting
    those `out` has, at times from ``_blink_times`` (a blink that runs past the end is cut there: a longer `out`
    finishes it)."""
    lids = _columns([name for pair in _LIDS for name in pair])
    own = _closed_frames(out, neutral_lid_gap) if len(out) > 1 else None
    for number, start in enumerate(_blink_times(len(out), rate, generator, own)):
        blink = blinks[number % len(blinks)]
        stop = min(len(out), start + len(blink))
        out[start:stop, lids] += blink[: stop - start]
