"""Evaluation metrics against constructed inputs with known answers: CER, the CTC recognizer's plumbing,
lip-sync correlation/lag, FID and SIM-A sanity."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from omnitalker.eval.fid import e_fid, p_fid
from omnitalker.eval.lipsync import (
    SMOOTHING_SECONDS,
    AudioToMouthRegressor,
    audio_envelope_from_mel,
    lagged_correlation,
    lipsync_from_curves,
    lipsync_score,
    mouth_opening_from_codes,
    pooled_lipsync,
    sync_expert_score,
)
from omnitalker.eval.recognizer import (
    BLANK_ID,
    DEFAULT_ALPHABET,
    CTCRecognizer,
    character_error_rate,
    edit_distance,
    normalize_for_cer,
    pinyin_transcript,
)
from omnitalker.eval.speaker_similarity import cosine
from omnitalker.frontend.face.codes import CODE_FPS, EXP_SLICE, EXPRESSION_POINTS, MEL_FPS, VISUAL_CODE_DIM

# ------------------------------------------------------------------------------------------- CER


def test_edit_distance_known_pairs():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "") == 3
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance("same", "same") == 0


def test_cer_counts_edits_over_reference_characters():
    assert character_error_rate("abd", "abc") == pytest.approx(1 / 3)
    # corpus CER: (1 + 0) edits over (3 + 5) reference characters, not the mean of per-utterance rates
    assert character_error_rate(["abd", "hello"], ["abc", "hello"]) == pytest.approx(1 / 8)
    assert character_error_rate("", "abcd") == 1.0
    assert character_error_rate("abcdabcd", "abcd") == 1.0  # insertions count too


def test_cer_normalises_case_and_punctuation():
    assert normalize_for_cer("  Hello,   World! It's  ") == "hello world it's"
    assert character_error_rate("hello world", "Hello, World!") == 0.0


def test_cer_rejects_bad_input():
    with pytest.raises(ValueError, match="hypotheses"):
        character_error_rate(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="empty"):
        character_error_rate("abc", "!!!")


def test_cer_matches_jiwer_when_installed():
    jiwer = pytest.importorskip("jiwer")
    references = ["the quick brown fox", "jumps over the lazy dog"]
    hypotheses = ["the quack brown fx", "jump over a lazy dogs"]
    assert character_error_rate(hypotheses, references) == pytest.approx(jiwer.cer(references, hypotheses))


# ------------------------------------------------------------------------------------------- recognizer


def tiny_recognizer() -> CTCRecognizer:
    torch.manual_seed(0)
    return CTCRecognizer(dim=16, num_conv_blocks=1, hidden_dim=8).eval()


def test_greedy_decode_merges_repeats_and_drops_blanks():
    model = tiny_recognizer()
    h, e, ell, o = (model.char_to_id[c] for c in "helo")
    ids = [BLANK_ID, h, h, e, BLANK_ID, ell, ell, BLANK_ID, ell, o, o, BLANK_ID]
    assert model.decode_ids(ids) == "hello"
    assert model.encode_text("Hello!") == [h, e, ell, ell, o]


def test_recognizer_shapes_lengths_and_round_trip(tmp_path):
    model = tiny_recognizer()
    lengths = torch.tensor([30, 17])
    mel = torch.randn(2, 30, 100)
    log_probs, out_lengths = model(mel, lengths)
    assert log_probs.shape == (2, 10, model.vocab_size)  # stride 3: ceil(30 / 3)
    assert out_lengths.tolist() == [10, 6]
    assert torch.allclose(log_probs.exp().sum(-1)[0], torch.ones(10), atol=1e-5)
    # padding does not change a clip's result: the short clip alone gives the same log-probs
    alone, _ = model(mel[1:, :17], lengths[1:])
    assert torch.allclose(alone[0, :6], log_probs[1, :6], atol=1e-5)
    # a globally louder mel reads the same (per-utterance normalisation)
    louder, _ = model(mel + 3.0, lengths)
    assert torch.allclose(louder, log_probs, atol=1e-4)
    model.save_pretrained(tmp_path / "rec")
    loaded = CTCRecognizer.from_pretrained(tmp_path / "rec").eval()
    assert torch.allclose(loaded(mel, lengths)[0], log_probs)
    assert len(loaded.transcribe([mel[0], mel[1, :17]])) == 2


def test_pinyin_transcript_is_toned_pinyin_in_the_alphabet():
    assert pinyin_transcript("你好吗？") == "ni2 hao3 ma5"  # neutral tone 5, punctuation dropped
    assert pinyin_transcript("女儿去旅游。") == "nv3 er2 qu4 lv3 you2"  # ü spelled v
    assert pinyin_transcript("一个") == "yi2 ge4"  # tone sandhi, as espeak reads the corpus
    assert set(pinyin_transcript("我们想弹钢琴，然后看新闻。")) <= set(DEFAULT_ALPHABET)


def test_recognizer_language_scores_pinyin_and_defaults_to_english(tmp_path):
    torch.manual_seed(0)
    zh = CTCRecognizer(dim=16, num_conv_blocks=1, hidden_dim=8, lang="zh")
    assert zh.reference_text("你好吗") == "ni2 hao3 ma5"
    assert tiny_recognizer().reference_text("Hello!") == "Hello!"
    zh.save_pretrained(tmp_path / "zh")
    assert CTCRecognizer.from_pretrained(tmp_path / "zh").config.lang == "zh"
    # a recognizer saved before the language existed (no "lang" in config.json) loads as English
    config = tmp_path / "zh" / "config.json"
    config.write_text(config.read_text().replace('"lang": "zh"', '"lang_removed": 0'))
    assert CTCRecognizer.from_pretrained(tmp_path / "zh").config.lang == "en"
    with pytest.raises(ValueError, match="lang"):
        CTCRecognizer(lang="fr")


def test_recognizer_rejects_bad_mels():
    model = tiny_recognizer()
    with pytest.raises(ValueError, match="frames"):
        model.transcribe([torch.randn(20, 80)])
    with pytest.raises(ValueError, match="odd"):
        CTCRecognizer(kernel_size=4)


# ------------------------------------------------------------------------------------------- lip-sync


def _syllables(frames: int, seed: int = 0) -> np.ndarray:
    """A smooth positive curve with syllable-like bumps."""
    rng = np.random.default_rng(seed)
    return gaussian_filter1d(rng.random(frames) ** 3, 2.0) + 0.01


@pytest.mark.parametrize("shift", [0, 3, -2])
def test_lagged_correlation_finds_a_known_shift(shift):
    mouth = _syllables(200)
    envelope = np.roll(mouth, shift)  # envelope[t] = mouth[t - shift]: the sound follows by `shift`
    score = lipsync_from_curves(mouth, envelope, fps=CODE_FPS, max_lag_frames=8, smooth=False)
    assert score.lag_frames == shift
    assert score.correlation > 0.95
    assert score.lag_ms == pytest.approx(1000 * shift / CODE_FPS)


def test_lagged_correlation_of_unrelated_curves_is_low():
    score = lipsync_from_curves(_syllables(300, seed=1), _syllables(300, seed=2), max_lag_frames=5)
    assert abs(score.correlation) < 0.4


def test_lagged_correlation_known_value_and_flat_curve():
    a = np.sin(np.linspace(0, 6 * np.pi, 120))
    noise = np.random.default_rng(0).standard_normal(120)
    mixed = a + noise * a.std() / noise.std()  # equal powers: correlation ~ 1/sqrt(2)
    curve = lagged_correlation(a, mixed, 0)
    assert curve[0] == pytest.approx(np.corrcoef(a, mixed)[0, 1])
    assert np.isnan(lagged_correlation(a, np.ones(120), 2)).all()  # flat envelope: undefined, not 0
    with pytest.raises(ValueError):
        lagged_correlation(a, a, -1)


def test_lipsync_score_from_codes_and_mel():
    """Codes whose lip gap follows the audio amplitude, 2 code frames ahead of it."""
    seconds, lead = 6.0, 2
    opening = _syllables(int(seconds * CODE_FPS), seed=3)
    codes = np.zeros((len(opening), VISUAL_CODE_DIM), np.float32)
    exp = codes[:, EXP_SLICE].reshape(len(codes), len(EXPRESSION_POINTS), 3)
    points = {name: i for i, (name, _) in enumerate(EXPRESSION_POINTS)}
    exp[:, points["lower_lip_inner"], 1] = 0.7 * opening
    exp[:, points["upper_lip_inner"], 1] = -0.3 * opening
    codes[:, EXP_SLICE] = exp.reshape(len(codes), -1)
    assert np.allclose(mouth_opening_from_codes(codes), opening, atol=1e-6)
    mel_frames = int(seconds * MEL_FPS)
    delayed = np.interp((np.arange(mel_frames) / MEL_FPS) - lead / CODE_FPS, np.arange(len(opening)) / CODE_FPS, opening)
    mel = np.log(np.repeat(delayed[:, None], 100, axis=1) / 100)  # summed magnitude == delayed opening
    envelope = audio_envelope_from_mel(mel)
    assert len(envelope) == len(opening)
    score = lipsync_score(codes, mel)
    assert score.lag_frames == lead
    assert score.correlation > 0.9
    pooled = pooled_lipsync([score, lipsync_score(codes, np.log(np.repeat(opening[:, None], 100, 1) / 100),
                                                  mel_fps=CODE_FPS)])
    assert pooled.lag_frames == lead // 2  # the mean of curves peaked at 0 and at `lead` peaks half-way
    assert pooled.correlation > 0.8
    assert pooled_lipsync([score, score]).lag_frames == lead


def _talking_pair(seed: int, seconds: float = 5.0, mouth_delay_frames: int = 0):
    """Codes whose lip gap is a syllable curve and a log-mel whose spectral shape (not only level) follows
    it, so an audio-to-mouth regressor has something to learn; the mouth may lag the sound."""
    rng = np.random.default_rng(seed)
    opening = _syllables(int(seconds * CODE_FPS), seed=seed)
    codes = np.zeros((len(opening), VISUAL_CODE_DIM), np.float32)
    exp = codes[:, EXP_SLICE].reshape(len(codes), len(EXPRESSION_POINTS), 3)
    exp[:, [i for i, (name, _) in enumerate(EXPRESSION_POINTS) if name == "lower_lip_inner"][0], 1] = np.roll(
        opening, mouth_delay_frames)
    codes[:, EXP_SLICE] = exp.reshape(len(codes), -1)
    frames = int(seconds * MEL_FPS)
    at_mel = np.interp(np.arange(frames) / MEL_FPS, np.arange(len(opening)) / CODE_FPS, opening)  # n
    formant = np.exp(-0.5 * ((np.arange(100) - 20) / 6.0) ** 2)  # 100: a band that opens with the mouth
    mel = np.log(1e-3 + at_mel[:, None] * formant + 0.05 * rng.random((frames, 100)))  # n 100
    return mel, codes


def test_sync_expert_learns_audio_to_mouth_and_finds_the_lag():
    expert = AudioToMouthRegressor.fit(_talking_pair(seed) for seed in range(20))
    mel, codes = _talking_pair(100)
    synced = sync_expert_score(codes, mel, expert)
    assert synced.lag_frames == 0 and synced.correlation > 0.9
    late_mel, late_codes = _talking_pair(101, mouth_delay_frames=3)  # the mouth moves 3 frames after the sound
    assert sync_expert_score(late_codes, late_mel, expert).lag_frames == -3
    other_mel, _ = _talking_pair(102)
    assert sync_expert_score(codes, other_mel, expert).correlation < 0.5  # someone else's audio
    with pytest.raises(ValueError, match="too little"):
        AudioToMouthRegressor.fit([_talking_pair(0, seconds=1.0)])


def test_lipsync_rejects_bad_shapes():
    with pytest.raises(ValueError, match="codes"):
        mouth_opening_from_codes(np.zeros((10, 12)))
    with pytest.raises(ValueError, match="mel"):
        audio_envelope_from_mel(np.zeros(10))
    with pytest.raises(ValueError, match="pool"):
        pooled_lipsync([])
    assert SMOOTHING_SECONDS * CODE_FPS > 1  # smoothing acts on the syllable scale, not a no-op


# ------------------------------------------------------------------------------------------- FID / SIM-A


def test_fid_sanity_on_styles():
    rng = np.random.default_rng(0)
    calm = np.zeros((300, VISUAL_CODE_DIM)) + 0.01 * rng.standard_normal((300, VISUAL_CODE_DIM))
    calm_again = np.zeros((300, VISUAL_CODE_DIM)) + 0.01 * rng.standard_normal((300, VISUAL_CODE_DIM))
    lively = calm.copy()
    lively[:, :6] *= 10  # head moves 10x more
    assert p_fid(calm, calm_again) < 0.2 * p_fid(calm, lively)
    assert e_fid(calm, lively) == pytest.approx(e_fid(calm, calm), abs=1e-12)  # pose change: E-FID untouched


def test_cosine():
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 2]) == pytest.approx(0.0)
    assert cosine([1, 1], [-1, -1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cosine([0, 0], [1, 0])


def test_sim_a_same_voice_beats_other_voice():
    pytest.importorskip("resemblyzer", reason="resemblyzer is not installed: pip install --no-deps -r requirements-nodeps.txt")
    from omnitalker.eval.speaker_similarity import SpeakerSimilarity
    from omnitalker.frontend.espeak import synthesize_many
    from omnitalker.io.audio import load_audio

    texts = [("Please call the office before noon tomorrow.", "en-us+m3", 35),
             ("Seven green birds sat on the garden wall.", "en-us+m3", 35),
             ("Please call the office before noon tomorrow.", "en-gb-x-rp+f4", 75)]
    utterances = synthesize_many([dict(text=t, voice=v, pitch=p) for t, v, p in texts])
    waves = [load_audio(u.audio, sample_rate=u.sample_rate).numpy() for u in utterances]
    sim = SpeakerSimilarity()
    same_voice = sim.similarity(waves[0], waves[1], 24000)
    other_voice = sim.similarity(waves[0], waves[2], 24000)
    assert same_voice > 0.8
    assert same_voice > other_voice + 0.1
    with pytest.raises(ValueError, match="mono"):
        sim.embed(np.zeros((2, 100)), 24000)


def test_gaze_is_where_both_eyes_look_not_their_difference():
    """Both irises moving the same way is gaze; moving apart (vergence, or tracking noise on one eye) is not. With each
    eye's axis running from its outer corner inwards (mirror images), the style benchmark read only the difference."""
    from omnitalker.eval.style import gaze_position
    from omnitalker.frontend.face.template import LEFT_IRIS, RIGHT_EYE, RIGHT_IRIS, load_face_template

    face = load_face_template().vertices.astype(np.float64)
    width = np.linalg.norm(face[RIGHT_EYE[0]] - face[RIGHT_EYE[1]])
    shift = 0.1 * width * np.sin(np.linspace(0, 2 * np.pi, 50))  # (T,)
    together, apart = np.repeat(face[None], 50, 0), np.repeat(face[None], 50, 0)
    for iris, sign in ((RIGHT_IRIS, 1.0), (LEFT_IRIS, -1.0)):
        together[:, list(iris), 0] += shift[:, None]  # both look towards the person's left and back
        apart[:, list(iris), 0] += sign * shift[:, None]  # they cross and uncross
        together[:, list(iris), 1] += 0.5 * shift[:, None]  # ... and down
    looked = gaze_position(together) - gaze_position(face[None])  # from where the still face looks
    np.testing.assert_allclose(looked[:, 0], shift / width, atol=3e-3)  # the corner line tilts a little
    np.testing.assert_allclose(looked[:, 1], 0.5 * shift / width, atol=3e-3)
    assert np.abs(gaze_position(apart) - gaze_position(face[None])).max() < 0.1 * np.abs(looked).max()


def test_the_style_benchmark_needs_clips_or_photos(tmp_path, capsys):
    """`python -m omnitalker.eval.style` measures real clips (--clips) or portraits (--photos): with neither, or with
    a folder that holds none, it says what to give before loading anything."""
    from omnitalker.eval.style import main

    for argv, message in (([], "--clips"), (["--photos", str(tmp_path / "missing")], "not a folder"),
                          (["--photos", str(tmp_path)], "no matching photos")):
        with pytest.raises(SystemExit):
            main(argv)
        assert message in capsys.readouterr().err
