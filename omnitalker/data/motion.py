"""Rule-based facial motion from a phoneme timeline: the visual half of the synthetic corpus.

Given the phonemes espeak-ng spoke (with times) and a speaker's *style*, this makes the 58-dim
visual codes of :mod:`omnitalker.frontend.face.codes` at 30 fps:

- mouth and jaw: each phoneme maps to a viseme (jaw opening, lip spread, lip rounding, bilabial
  closure, labiodental contact); coarticulation blends neighbouring visemes with exponential
  dominance functions (Cohen & Massaro), so closures still close while vowels bleed into them;
- head: slow quasi-periodic sway whose amplitude and rhythm are the speaker's, more motion while
  speaking, and nods at phrase ends (pauses);
- eyes: blinks as a Poisson process at the speaker's rate; gaze fixations with saccades around the
  speaker's habitual direction;
- brows and smile: the speaker's expression bias, plus brow raises at sentence starts.

This is also the cascade *baseline* (TTS + rule visemes) that the learned model is compared with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from omnitalker.frontend.espeak import PhonemeEvent
from omnitalker.frontend.face.codes import CODE_FPS, EXP_SLICE, EYE_SLICE, POSE_SLICE, VISUAL_CODE_DIM
from omnitalker.frontend.face.template import EXPRESSION_POINTS

_POINT = {name: i for i, (name, _) in enumerate(EXPRESSION_POINTS)}

# Viseme parameters: (jaw_open, spread, round, closure, labiodental), each in [0, 1] (spread in [-1, 1]).
VISEME_REST = np.zeros(5)
_OPEN_VOWELS = ("a", "A", "V", "aI", "aU", "Au", "ai")
_MID_VOWELS = ("E", "e", "@", "3", "O", "0", "o")
_ROUNDED = ("u", "U", "O", "o", "0", "w", "y", "Y")
_SPREAD = ("i", "I", "e", "E", "j", "eI", "ei")
_BILABIAL = ("p", "b", "m")
_LABIODENTAL = ("f", "v")
_POSTALVEOLAR = ("S", "Z", "tS", "dZ", "s.", "z.", "ts.", "tS;")

# Geometry of the mouth in canonical face-size units (1 = outer eye-corner distance, y down, z away).
JAW_DROP = 0.22  # chin travel at full opening
LIP_GAP = 0.16  # inner-lip separation at full opening
SPREAD_WIDTH = 0.035  # each mouth corner moves this far sideways at full spread
ROUND_WIDTH = 0.05  # and this far inwards at full rounding
ROUND_PROTRUSION = 0.04  # lips move towards the camera when rounded
LID_TRAVEL = 0.09  # upper-lid travel for a full blink
BROW_RAISE = 0.035
SMILE_LIFT = 0.02

BLINK_SECONDS = 0.2
DOMINANCE_TAU = 0.06  # s: how far a phoneme's viseme reaches into its neighbours
CLOSURE_DOMINANCE = 4.0  # bilabials and labiodentals dominate their neighbours (lips must meet)
SILENCE_PREFIX = "_"  # espeak marks pauses with names starting with "_"


def viseme(phoneme: str) -> np.ndarray:
    """(jaw_open, spread, round, closure, labiodental) for an espeak phoneme mnemonic.

    Classified from the mnemonic's letters (espeak's English and pinyin phoneme names share them):
    the classes are what a mouth shows, not a full phonology.
    """
    p = phoneme.strip("'`,:;!#%=")
    if not p or phoneme.startswith(SILENCE_PREFIX):
        return VISEME_REST.copy()
    if p in _BILABIAL or p[0] in _BILABIAL and len(p) == 1:
        return np.array([0.0, 0.0, 0.0, 1.0, 0.0])
    if p[0] in _LABIODENTAL:
        return np.array([0.08, 0.0, 0.0, 0.0, 1.0])
    if phoneme.rstrip(";") in _POSTALVEOLAR or p in _POSTALVEOLAR:
        return np.array([0.15, -0.2, 0.6, 0.0, 0.0])
    if p[0] == "w":
        return np.array([0.12, -0.5, 1.0, 0.0, 0.0])
    vowel_like = p[0] in "aeiouAEIOUV@03y"
    if not vowel_like:  # other consonants: tongue does the work, the jaw is nearly closed
        return np.array([0.18, 0.1 if p[0] in "jsztdn" else 0.0, 0.0, 0.0, 0.0])
    jaw = 0.9 if p.startswith(_OPEN_VOWELS) else 0.55 if p.startswith(_MID_VOWELS) else 0.3
    spread = 0.8 if p.startswith(_SPREAD) else 0.0
    rnd = 0.8 if p.startswith(_ROUNDED) else 0.0
    if rnd:
        spread = -0.5
    return np.array([jaw, spread, rnd, 0.0, 0.0])


@dataclass
class SpeakerStyle:
    """One synthetic speaker: an espeak voice plus a visual style (all amplitudes in code units)."""

    speaker_id: str
    voice: str
    pitch: int
    rate: int
    pitch_range: int
    head_amplitude: float  # rad, yaw sway
    head_frequency: float  # Hz, main sway rhythm
    nod_amplitude: float  # rad, pitch dip at phrase ends
    translation_amplitude: float  # face-size units
    blink_rate: float  # blinks per second
    gaze_bias: tuple[float, float]  # habitual iris offset (eye widths)
    gaze_spread: float  # fixation scatter around the bias
    saccade_rate: float  # per second
    articulation: float  # mouth motion scale
    brow_bias: float  # -1 (frown) .. 1 (raised)
    smile: float  # 0 .. 1
    lid_variation: float = 0.0  # slow narrowing and widening of the eyes, in full-blink travels (std)

    def to_dict(self) -> dict:
        return asdict(self)


ENGLISH_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan")  # names espeak_SetVoiceByName accepts
CHINESE_VOICES = ("cmn-latn-pinyin",)
VOICE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m7", "f1", "f2", "f3", "f4", "f5")
FEMALE_VARIANTS = tuple(v for v in VOICE_VARIANTS if v.startswith("f"))  # drawn with a higher pitch


def check_voice_variants(variants: tuple[str, ...]) -> None:
    """Raise a ValueError naming the fix unless ``variants`` is a non-empty subset of VOICE_VARIANTS."""
    unknown = [v for v in variants if v not in VOICE_VARIANTS]
    if not variants or unknown:
        raise ValueError(f"voice variants must be a non-empty subset of {', '.join(VOICE_VARIANTS)}; "
                         f"got {', '.join(variants) or 'none'}")


# The visual style's ranges, drawn uniformly (a "log" range: uniformly in its logarithm). "demo" is what the bundled
# demo's corpora were drawn with (scripts/demo_corpora.sh); each set draws the same number of values in the same order,
# so a corpus of a given seed is reproducible under its name.
STYLE_RANGES = {
    "demo": {"head_amplitude": (0.02, 0.18), "head_frequency": (0.15, 0.8), "nod_amplitude": (0.0, 0.12),
             "translation_amplitude": (0.0, 0.06), "blink_rate": (0.1, 0.6), "gaze_spread": (0.01, 0.08),
             "saccade_rate": (0.2, 1.5), "articulation": (0.7, 1.3)},
    # Widened to cover the nine shared real clips' statistics (bench/corpus_style.py against their reference codes;
    # BENCHMARKS.md, "Style on real references"): they blink 6-39 times a minute (real speakers up to 84), open their
    # mouths further (gap std 0.052-0.08 while talking, the demo's speakers 0.033-0.057), move their heads from
    # barely to five times the demo's most, and narrow and widen their eyes beyond blinking (eye-opening CV up to
    # 0.59, the demo's at most 0.20). Blinks, articulation, head sway and gaze scatter are drawn log-uniformly, so
    # the typical speaker stays near the median person.
    "people": {"head_amplitude": (0.005, 0.5, "log"), "head_frequency": (0.15, 0.8), "nod_amplitude": (0.0, 0.15),
               "translation_amplitude": (0.0, 0.1), "blink_rate": (0.1, 1.4, "log"),
               "gaze_spread": (0.01, 0.15, "log"), "saccade_rate": (0.2, 2.0), "articulation": (0.8, 3.0, "log"),
               "lid_variation": (0.02, 0.5, "log")},
}
DEFAULT_STYLE_RANGES = "demo"
LID_VARIATION_FREQUENCY = 0.25  # Hz: eyes narrow and widen over a few seconds (a smile, a frown, attention)


def _draw(rng: np.random.Generator, ranges: dict, name: str) -> float:
    low, high, *log = ranges[name]
    if log and log[0] == "log":
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return float(rng.uniform(low, high))


def random_speaker(rng: np.random.Generator, speaker_id: str, lang: str = "en",
                   variants: tuple[str, ...] = VOICE_VARIANTS, ranges: str = DEFAULT_STYLE_RANGES) -> SpeakerStyle:
    """Draw a speaker: voice + variant (one of ``variants``) + prosody, and an independent visual style drawn from
    the ``STYLE_RANGES`` named `ranges`."""
    check_voice_variants(variants)
    if ranges not in STYLE_RANGES:
        raise ValueError(f"style ranges must be one of {', '.join(STYLE_RANGES)}; got {ranges!r}")
    style = STYLE_RANGES[ranges]
    base = rng.choice(CHINESE_VOICES if lang == "zh" else ENGLISH_VOICES)
    variant = rng.choice(variants)
    female = variant in FEMALE_VARIANTS
    return SpeakerStyle(
        speaker_id=speaker_id,
        voice=f"{base}+{variant}",
        pitch=int(rng.integers(55, 80) if female else rng.integers(25, 55)),
        rate=int(rng.integers(140, 200)),
        pitch_range=int(rng.integers(30, 80)),
        head_amplitude=_draw(rng, style, "head_amplitude"),
        head_frequency=_draw(rng, style, "head_frequency"),
        nod_amplitude=_draw(rng, style, "nod_amplitude"),
        translation_amplitude=_draw(rng, style, "translation_amplitude"),
        blink_rate=_draw(rng, style, "blink_rate"),
        gaze_bias=(float(rng.uniform(-0.12, 0.12)), float(rng.uniform(-0.06, 0.06))),
        gaze_spread=_draw(rng, style, "gaze_spread"),
        saccade_rate=_draw(rng, style, "saccade_rate"),
        articulation=_draw(rng, style, "articulation"),
        brow_bias=float(rng.uniform(-0.6, 0.8)),
        smile=float(rng.uniform(0.0, 1.0)),
        # drawn last, and only by sets that have it: the "demo" sets' draws stay as they were
        lid_variation=_draw(rng, style, "lid_variation") if "lid_variation" in style else 0.0,
    )


def _mouth_params(phonemes: list[PhonemeEvent], times: np.ndarray) -> np.ndarray:
    """(F, 5) viseme parameters at ``times`` with dominance-weighted coarticulation."""
    if not phonemes:
        return np.zeros((len(times), 5))
    targets = np.stack([viseme(p.phoneme) for p in phonemes])  # p 5
    centres = np.array([(p.start + p.end) / 2 for p in phonemes])  # p
    halfwidth = np.array([max(p.end - p.start, 1e-3) / 2 for p in phonemes])
    strength = 1.0 + (CLOSURE_DOMINANCE - 1.0) * np.maximum(targets[:, 3], targets[:, 4])
    dist = np.maximum(np.abs(times[:, None] - centres[None]) - halfwidth[None], 0.0)  # f p
    dominance = strength[None] * np.exp(-dist / DOMINANCE_TAU)  # f p
    return dominance @ targets / dominance.sum(1, keepdims=True)  # f 5


def _smooth_noise(rng: np.random.Generator, n: int, fps: float, freq: float) -> np.ndarray:
    """Unit-variance quasi-periodic signal around ``freq`` Hz (three detuned sinusoids)."""
    t = np.arange(n) / fps
    out = np.zeros(n)
    for mult in (1.0, 1.7, 0.55):
        out += np.sin(2 * np.pi * freq * mult * rng.uniform(0.8, 1.2) * t + rng.uniform(0, 2 * np.pi)) / mult
    return out / np.sqrt(np.mean(out**2) + 1e-8)


def _bumps(times: np.ndarray, onsets: list[float], width: float) -> np.ndarray:
    """Sum of raised-cosine bumps of ``width`` seconds starting at ``onsets``."""
    out = np.zeros_like(times)
    for onset in onsets:
        phase = (times - onset) / width
        inside = (phase >= 0) & (phase <= 1)
        out[inside] += 0.5 - 0.5 * np.cos(2 * np.pi * phase[inside])
    return out


def synthesize_codes(
    phonemes: list[PhonemeEvent],
    duration: float,
    style: SpeakerStyle,
    rng: np.random.Generator,
    fps: float = CODE_FPS,
) -> np.ndarray:
    """Visual codes (T, 58) at ``fps`` for an utterance of ``duration`` seconds."""
    n = max(1, int(round(duration * fps)))
    times = np.arange(n) / fps
    codes = np.zeros((n, VISUAL_CODE_DIM), np.float64)
    exp = np.zeros((n, len(EXPRESSION_POINTS), 3))

    # --- mouth and jaw
    jaw, spread, rnd, closure, labio = (_mouth_params(phonemes, times) * [style.articulation, 1, 1, 1, 1]).T
    open_amount = jaw * (1.0 - closure)
    exp[:, _POINT["chin"], 1] += JAW_DROP * open_amount
    exp[:, _POINT["lower_lip_outer"], 1] += 0.9 * JAW_DROP * open_amount
    exp[:, _POINT["lower_lip_inner"], 1] += LIP_GAP * open_amount - 0.3 * LIP_GAP * labio
    exp[:, _POINT["lower_lip_inner"], 2] += 0.1 * LIP_GAP * labio  # lower lip tucked under the teeth
    exp[:, _POINT["upper_lip_inner"], 1] -= 0.15 * LIP_GAP * open_amount
    width = SPREAD_WIDTH * spread - ROUND_WIDTH * rnd + SMILE_LIFT * style.smile
    exp[:, _POINT["mouth_corner_left"], 0] += width
    exp[:, _POINT["mouth_corner_right"], 0] -= width
    for corner in ("mouth_corner_left", "mouth_corner_right"):
        exp[:, _POINT[corner], 1] += 0.3 * JAW_DROP * open_amount - SMILE_LIFT * style.smile
    for lip in ("upper_lip_outer", "upper_lip_inner", "lower_lip_inner", "lower_lip_outer"):
        exp[:, _POINT[lip], 2] -= ROUND_PROTRUSION * rnd

    # --- blinks (Poisson onsets) and lids
    n_blinks = rng.poisson(style.blink_rate * duration)
    blink = np.clip(_bumps(times, list(rng.uniform(0, duration, n_blinks)), BLINK_SECONDS), 0, 1)
    for side in ("right", "left"):
        exp[:, _POINT[f"upper_lid_{side}"], 1] += LID_TRAVEL * blink
        exp[:, _POINT[f"lower_lid_{side}"], 1] -= 0.15 * LID_TRAVEL * blink

    # --- brows: habitual bias plus a raise at each sentence start
    speech = [p for p in phonemes if not p.phoneme.startswith(SILENCE_PREFIX)]
    raises = [speech[0].start] if speech and rng.random() < 0.7 else []
    brow = BROW_RAISE * (0.5 * style.brow_bias + _bumps(times, raises, 0.8))
    for side in ("right", "left"):
        exp[:, _POINT[f"brow_inner_{side}"], 1] -= brow
        exp[:, _POINT[f"brow_outer_{side}"], 1] -= 0.7 * brow
    codes[:, EXP_SLICE] = exp.reshape(n, -1)

    # --- head: sway (stronger while speaking) + nods after phrase ends
    speaking = np.zeros(n)
    for p in speech:
        speaking[(times >= p.start) & (times < p.end)] = 1.0
    window = min(int(fps), n)  # a 1 s moving average; "same" returns the longer input, so never exceed n
    energy = 0.6 + 0.4 * np.convolve(speaking, np.ones(window) / window, mode="same")
    pauses = [p.start for p in phonemes if p.phoneme.startswith(SILENCE_PREFIX) and p.end - p.start > 0.05]
    yaw = style.head_amplitude * energy * _smooth_noise(rng, n, fps, style.head_frequency)
    pitch = 0.5 * style.head_amplitude * energy * _smooth_noise(rng, n, fps, 1.3 * style.head_frequency)
    pitch += style.nod_amplitude * _bumps(times, pauses, 0.5)
    roll = 0.3 * style.head_amplitude * _smooth_noise(rng, n, fps, 0.7 * style.head_frequency)
    tx = style.translation_amplitude * _smooth_noise(rng, n, fps, 0.5 * style.head_frequency)
    ty = 0.5 * style.translation_amplitude * _smooth_noise(rng, n, fps, 0.6 * style.head_frequency)
    codes[:, POSE_SLICE] = np.stack([yaw, pitch, roll, tx, ty, 0.2 * tx], -1)

    # --- gaze: fixations around the habitual direction, saccades as steps smoothed over ~2 frames
    gaze = np.zeros((n, 2))
    onsets = np.sort(rng.uniform(0, duration, rng.poisson(style.saccade_rate * duration)))
    target = np.array(style.gaze_bias) + rng.normal(0, style.gaze_spread, 2)
    k = 0
    for i, t in enumerate(times):
        while k < len(onsets) and onsets[k] <= t:
            target = np.array(style.gaze_bias) + rng.normal(0, style.gaze_spread, 2)
            k += 1
        gaze[i] = target if i == 0 else 0.5 * gaze[i - 1] + 0.5 * target
    codes[:, EYE_SLICE] = np.concatenate([gaze, gaze], -1)  # both eyes look the same way

    # --- the eyes narrowing and widening (after everything else: a style without it draws what it always drew)
    if style.lid_variation > 0:
        lids = style.lid_variation * LID_TRAVEL * _smooth_noise(rng, n, fps, LID_VARIATION_FREQUENCY)
        for side in ("right", "left"):
            upper = EXP_SLICE.start + 3 * _POINT[f"upper_lid_{side}"] + 1
            # narrowed during a blink, the lid stops where a blink shuts it
            codes[:, upper] = np.minimum(codes[:, upper] + lids, LID_TRAVEL)
            codes[:, EXP_SLICE.start + 3 * _POINT[f"lower_lid_{side}"] + 1] -= 0.3 * lids
    return codes.astype(np.float32)
