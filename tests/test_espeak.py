"""espeak-ng C-library wrapper: audio plus phoneme timings."""


import numpy as np
import pytest


def test_english_audio_and_phoneme_timeline():
    from omnitalker.frontend.espeak import synthesize

    utt = synthesize("Hello world.", voice="en-us+f2")
    assert utt.sample_rate == 22050
    assert 0.5 < utt.duration < 3.0
    assert np.abs(utt.audio).max() > 0.05
    names = [p.phoneme for p in utt.phonemes]
    assert "h" in names and "w" in names
    starts = [p.start for p in utt.phonemes]
    assert starts == sorted(starts)
    assert all(0 <= p.start <= p.end <= utt.duration + 1e-6 for p in utt.phonemes)
    # the speech energy lies inside the phoneme timeline
    speech = [p for p in utt.phonemes if not p.phoneme.startswith("_")]
    assert speech[0].start < 0.2 and speech[-1].end > 0.5 * utt.duration


def test_voices_differ_and_pinyin_voice_speaks():
    from omnitalker.frontend.espeak import synthesize

    a = synthesize("One two three.", voice="en-us+m3", pitch=30)
    b = synthesize("One two three.", voice="en-us+f3", pitch=80)
    assert not np.allclose(a.audio[:2000], b.audio[:2000])
    zh = synthesize("ni3 hao3", voice="cmn-latn-pinyin")
    assert zh.duration > 0.3 and len(zh.phonemes) >= 3


def test_bad_voice_and_empty_text():
    from omnitalker.frontend.espeak import synthesize

    with pytest.raises(ValueError, match="no voice"):
        synthesize("hello", voice="xx-not-a-voice")
    with pytest.raises(ValueError, match="non-empty"):
        synthesize("   ")


def test_audio_is_reproducible_across_seconds():
    """libespeak-ng 1.52 seeds its noise (breathy variants) from the clock; EspeakNG reseeds it per utterance."""
    import time

    from omnitalker.frontend.espeak import synthesize_many

    request = dict(text="Develop sound central themselves.", voice="en-gb-x-gbclan+f2", rate=181, pitch=76)
    first = synthesize_many([request])[0]
    time.sleep(1.1)  # a different clock second
    second = synthesize_many([request])[0]
    np.testing.assert_array_equal(first.audio, second.audio)
