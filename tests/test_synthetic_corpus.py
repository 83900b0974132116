"""Synthetic talking corpus: espeak-ng speech + phoneme-driven visual codes in WebDataset shards."""

import io
import json
import tarfile

import numpy as np
import pytest

from omnitalker.data.motion import FEMALE_VARIANTS, VOICE_VARIANTS, random_speaker, synthesize_codes, viseme
from omnitalker.frontend.espeak import PhonemeEvent
from omnitalker.frontend.face.codes import CODE_FPS, EXP_SLICE, EYE_SLICE, POSE_SLICE, VISUAL_CODE_DIM
from omnitalker.frontend.face.template import EXPRESSION_POINTS

_POINT = {name: i for i, (name, _) in enumerate(EXPRESSION_POINTS)}


def _lip_gap(codes):
    exp = codes[:, EXP_SLICE].reshape(len(codes), -1, 3)
    return exp[:, _POINT["lower_lip_inner"], 1] - exp[:, _POINT["upper_lip_inner"], 1]


def test_visemes_open_vowels_and_close_bilabials():
    assert viseme("a")[0] > viseme("E")[0] > viseme("i:")[0] > 0
    assert viseme("m")[3] == 1.0 and viseme("p")[0] == 0.0
    assert viseme("f")[4] == 1.0
    assert viseme("u:")[2] > 0 and viseme("i:")[1] > 0
    assert not viseme("_:").any()


def test_codes_follow_the_phoneme_timeline():
    rng = np.random.default_rng(0)
    style = random_speaker(rng, "s0")
    # "m a m a" with a pause: lips closed on m, open on a
    timeline = [PhonemeEvent("m", 0.0, 0.2), PhonemeEvent("a", 0.2, 0.5), PhonemeEvent("m", 0.5, 0.7),
                PhonemeEvent("a", 0.7, 1.0), PhonemeEvent("_:", 1.0, 1.5)]
    codes = synthesize_codes(timeline, 1.5, style, rng)
    assert codes.shape == (round(1.5 * CODE_FPS), VISUAL_CODE_DIM) and np.isfinite(codes).all()
    gap = _lip_gap(codes)
    frame = lambda t: int(t * CODE_FPS)  # noqa: E731
    assert gap[frame(0.35)] > 3 * max(gap[frame(0.6)], 1e-3)  # open on /a/, nearly closed on /m/
    assert gap[frame(0.85)] > gap[frame(0.6)]
    assert np.abs(codes[:, POSE_SLICE]).max() < 0.6  # radians / face units: plausible head motion
    assert np.abs(codes[:, EYE_SLICE]).max() < 0.5


def test_codes_for_clips_shorter_than_the_smoothing_window():
    style = random_speaker(np.random.default_rng(0), "s0")
    for seconds in (0.04, 0.4, 0.99):  # "Yes." is shorter than the 1 s head-motion smoothing window
        timeline = [PhonemeEvent("j", 0.0, seconds / 2), PhonemeEvent("E", seconds / 2, seconds)]
        codes = synthesize_codes(timeline, seconds, style, np.random.default_rng(1))
        assert codes.shape == (max(1, round(seconds * CODE_FPS)), VISUAL_CODE_DIM) and np.isfinite(codes).all()


def test_speaker_styles_differ_in_motion_amplitude():
    timeline = [PhonemeEvent("a", 0.1 * i, 0.1 * i + 0.1) for i in range(60)]
    calm = random_speaker(np.random.default_rng(1), "calm")
    lively = random_speaker(np.random.default_rng(1), "lively")
    calm.head_amplitude, lively.head_amplitude = 0.02, 0.2
    yaw_calm = synthesize_codes(timeline, 6.0, calm, np.random.default_rng(2))[:, 0]
    yaw_lively = synthesize_codes(timeline, 6.0, lively, np.random.default_rng(2))[:, 0]
    assert yaw_lively.std() > 5 * yaw_calm.std()


def test_voice_variants_limit_the_voices_and_keep_the_default_draws():
    rng = np.random.default_rng(7)
    female = [random_speaker(rng, f"s{i}", variants=FEMALE_VARIANTS) for i in range(40)]
    assert all(style.voice.split("+")[1] in FEMALE_VARIANTS and 55 <= style.pitch < 80 for style in female)
    drawn = {style.voice.split("+")[1] for style in female}
    assert len(drawn) >= 4  # all of them are used, not just the first
    # the default draws the same speakers as before the option existed (existing corpora stay reproducible)
    default = random_speaker(np.random.default_rng(0), "a")
    assert default == random_speaker(np.random.default_rng(0), "a", variants=VOICE_VARIANTS)
    assert default.voice == "en-gb-x-gbclan+f2" and default.pitch == 67  # data/synth-demo's spk000
    with pytest.raises(ValueError, match="subset of m1"):
        random_speaker(np.random.default_rng(0), "a", variants=("f9",))
    with pytest.raises(ValueError, match="got none"):
        random_speaker(np.random.default_rng(0), "a", variants=())


def test_corpus_shards_are_complete_deterministic_and_split(tmp_path):
    from omnitalker.data.synthetic import build_corpus

    kwargs = dict(hours=0.006, speakers=3, langs=("en", "zh"), seed=3, progress=False)
    index = build_corpus(tmp_path / "a", with_audio=True, **kwargs)
    build_corpus(tmp_path / "b", **kwargs)
    assert set(index["splits"]) == {"train", "val_texts", "val_speakers"}
    assert index["splits"]["val_speakers"]["seconds"] > 0
    assert not list((tmp_path / "a").glob(".*partial"))  # no partial shard left visible
    shard = index["splits"]["train"]["shards"][0]
    with tarfile.open(tmp_path / "a" / shard["name"]) as tar, tarfile.open(tmp_path / "b" / shard["name"]) as tar_b:
        key = shard["samples"][0]["key"]
        meta = json.load(tar.extractfile(f"{key}.json"))
        mel = np.load(io.BytesIO(tar.extractfile(f"{key}.mel.npy").read()))
        codes = np.load(io.BytesIO(tar.extractfile(f"{key}.codes.npy").read()))
        mel_b = np.load(io.BytesIO(tar_b.extractfile(f"{key}.mel.npy").read()))
        assert tar.extractfile(f"{key}.wav") is not None
    assert mel.dtype == np.float16 and mel.shape == (meta["num_frames"], 100)
    assert codes.shape == (meta["num_code_frames"], VISUAL_CODE_DIM)
    assert abs(len(codes) / CODE_FPS - meta["duration"]) < 2 / CODE_FPS
    assert np.array_equal(mel, mel_b)  # same seed, same corpus
    assert meta["text"] and meta["phonemes"]
    speakers = json.loads((tmp_path / "a" / "speakers.json").read_text())
    assert len(speakers) == 3 and any(s["voice"].startswith("cmn") for s in speakers)


def test_the_demo_style_ranges_draw_what_the_demo_corpora_were_drawn_with():
    """The bundled demo's corpora must stay reproducible: under "demo", every visual style value is the draw it was
    before the ranges had names (uniform draws in this order), and no eye narrowing is added."""
    style = random_speaker(np.random.default_rng(5), "a", ranges="demo")
    rng = np.random.default_rng(5)
    from omnitalker.data.motion import ENGLISH_VOICES

    rng.choice(ENGLISH_VOICES)
    female = rng.choice(VOICE_VARIANTS) in FEMALE_VARIANTS
    rng.integers(55, 80) if female else rng.integers(25, 55), rng.integers(140, 200), rng.integers(30, 80)
    expected = [rng.uniform(0.02, 0.18), rng.uniform(0.15, 0.8), rng.uniform(0.0, 0.12), rng.uniform(0.0, 0.06),
                rng.uniform(0.1, 0.6)]
    drawn = [style.head_amplitude, style.head_frequency, style.nod_amplitude, style.translation_amplitude,
             style.blink_rate]
    assert np.allclose(drawn, expected) and style.lid_variation == 0.0
    assert style == random_speaker(np.random.default_rng(5), "a")  # the default
    with pytest.raises(ValueError, match="style ranges must be one of demo, people"):
        random_speaker(np.random.default_rng(0), "a", ranges="humans")


def test_people_style_ranges_blink_open_their_mouths_and_narrow_their_eyes_like_people():
    """Speakers drawn from the "people" ranges cover what real people do beyond the demo's: blinking up to 84 times
    a minute, opening their mouths further, narrowing and widening their eyes between blinks."""
    from omnitalker.data.motion import LID_TRAVEL, STYLE_RANGES

    people = STYLE_RANGES["people"]
    assert people["blink_rate"][1] * 60 >= 84 and people["articulation"][1] > STYLE_RANGES["demo"]["articulation"][1]
    rng = np.random.default_rng(3)
    styles = [random_speaker(rng, f"s{i}", ranges="people") for i in range(200)]
    rates = np.array([s.blink_rate for s in styles]) * 60
    assert rates.max() > 40 and 10 < np.median(rates) < 30  # drawn log-uniformly: the typical speaker blinks ~20 times
    timeline = [PhonemeEvent("a", 0.1 * i, 0.1 * i + 0.1) for i in range(80)]
    still, narrowing = random_speaker(np.random.default_rng(1), "a"), random_speaker(np.random.default_rng(1), "b")
    still.blink_rate = narrowing.blink_rate = 0.0
    narrowing.lid_variation = 0.3
    lids = [synthesize_codes(timeline, 8.0, style, np.random.default_rng(2))[:, EXP_SLICE].reshape(240, -1, 3)
            [:, _POINT["upper_lid_right"], 1] for style in (still, narrowing)]
    assert np.ptp(lids[0]) < 1e-6 and 0.15 * LID_TRAVEL < lids[1].std() < 0.5 * LID_TRAVEL
    # a style without it draws exactly the codes it drew before
    no_variation = synthesize_codes(timeline, 8.0, still, np.random.default_rng(2))
    narrowing.lid_variation = 0.0
    assert np.array_equal(no_variation, synthesize_codes(timeline, 8.0, narrowing, np.random.default_rng(2)))


def test_bad_arguments():
    from omnitalker.data.synthetic import build_corpus

    with pytest.raises(ValueError, match="at least 2 speakers"):
        build_corpus("/tmp/never", hours=0.1, speakers=1)
    with pytest.raises(ValueError, match="unsupported languages"):
        build_corpus("/tmp/never", hours=0.1, speakers=2, langs=("fr",))
    with pytest.raises(ValueError, match="voice variants"):
        build_corpus("/tmp/never", hours=0.1, speakers=2, voice_variants=("x1",))
    with pytest.raises(ValueError, match="style ranges"):
        build_corpus("/tmp/never", hours=0.1, speakers=2, style_ranges="humans")


def test_cli_refuses_bad_settings_without_a_traceback(tmp_path, monkeypatch, capsys):
    from omnitalker.data import synthetic

    monkeypatch.setattr("sys.argv", ["synthetic", "--out", str(tmp_path / "c"), "--voice-variants", "f1,x9"])
    with pytest.raises(SystemExit) as exit_info:
        synthetic.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "voice variants must be a non-empty subset" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # refused before anything was written
