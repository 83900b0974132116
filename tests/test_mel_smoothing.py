"""The low-pass on generated mels (omnitalker/pipeline/mel_smoothing.py) and the pipeline config that turns it on."""

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import convolve1d

from omnitalker.pipeline.mel_smoothing import (
    DEMO_MEL_SMOOTHING,
    check_mel_smoothing,
    parse_mel_smoothing,
    smooth_mel,
)


@pytest.mark.parametrize("kernel", [DEMO_MEL_SMOOTHING, (0.1, 0.2, 0.4, 0.2, 0.1)])
def test_smooth_mel_is_a_centred_filter_with_repeated_edges(kernel):
    mel = torch.randn(40, 100, generator=torch.Generator().manual_seed(0))
    expected = convolve1d(mel.numpy(), np.asarray(kernel[::-1]), axis=0, mode="nearest")
    np.testing.assert_allclose(smooth_mel(mel, kernel).numpy(), expected, atol=1e-6)


def test_smooth_mel_keeps_constants_and_calms_jitter():
    flat = torch.full((30, 4), -3.0)
    assert torch.equal(smooth_mel(flat, DEMO_MEL_SMOOTHING), flat)
    jitter = torch.randn(500, 100, generator=torch.Generator().manual_seed(1))
    smoothed = smooth_mel(jitter, DEMO_MEL_SMOOTHING)
    assert smoothed.diff(dim=0).abs().mean() < 0.5 * jitter.diff(dim=0).abs().mean()
    assert smooth_mel(jitter, None) is jitter and smooth_mel(jitter[:0], DEMO_MEL_SMOOTHING).shape == (0, 100)


@pytest.mark.parametrize("kernel, message", [
    ([0.5, 0.5], "odd number"),
    ([0.5, 0.6, -0.1], "non-negative"),
    ([0.2, 0.2, 0.2], "sum to 1"),
    ("0.25,0.5,0.25", "list of taps"),
    ([1.0 / 17] * 17, "odd number"),
])
def test_bad_kernels_name_the_problem(kernel, message):
    with pytest.raises(ValueError, match=message):
        check_mel_smoothing(kernel)


def test_parse_mel_smoothing():
    assert parse_mel_smoothing("none") is None
    assert parse_mel_smoothing("0.25, 0.5, 0.25") == [0.25, 0.5, 0.25]
    with pytest.raises(ValueError, match="comma-separated"):
        parse_mel_smoothing("a,b")
    with pytest.raises(ValueError, match="sum to 1"):
        parse_mel_smoothing("1,1,1")


def test_pipeline_smooths_its_generated_mel_and_saves_the_setting(tmp_path):
    from omnitalker import OmniTalkerPipeline
    from tests.pipeline_fixtures import REFERENCE_TEXT, get_dummy_components, make_reference_video

    with pytest.raises(ValueError, match="sum to 1"):
        OmniTalkerPipeline(**get_dummy_components(text_layout="durations"), mel_smoothing=[1, 1, 1])
    video = make_reference_video(tmp_path / "ref.mp4", seconds=1.5, size=128)
    kwargs = dict(reference_video=video, reference_text=REFERENCE_TEXT, num_inference_steps=2, output_type="latent")
    raw = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"))
    raw.set_progress_bar_config(disable=True)
    plain = raw("Nice to meet you.", generator=torch.Generator().manual_seed(0), **kwargs)

    smoothed = OmniTalkerPipeline(**get_dummy_components(text_layout="durations"), mel_smoothing=DEMO_MEL_SMOOTHING)
    smoothed.save_pretrained(tmp_path / "pipe")
    assert json.loads((tmp_path / "pipe" / "model_index.json").read_text())["mel_smoothing"] == [0.25, 0.5, 0.25]
    loaded = OmniTalkerPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    out = loaded("Nice to meet you.", generator=torch.Generator().manual_seed(0), **kwargs)
    expected = smooth_mel(torch.from_numpy(plain.mel[0].T), DEMO_MEL_SMOOTHING).numpy().T  # mel is (100, n)
    assert not np.allclose(out.mel[0], plain.mel[0], atol=1e-4)
    np.testing.assert_allclose(out.mel[0], expected, rtol=1e-4, atol=1e-4)
