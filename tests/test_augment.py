"""Voice warping (omnitalker/training/augment.py): the warp moves sound where a real change of frequency
would, leaves what it should alone, and joins training without breaking an exact resume."""

import pytest
import torch
from safetensors.torch import load_file

from omnitalker.frontend.audio import SAMPLE_RATE, log_mel_spectrogram
from omnitalker.training.augment import draw_warp_factors, warp_voice
from omnitalker.training.config import load_config
from tests import test_training
from tests.test_training import TINY_CONFIG, tiny_config

corpus = test_training.corpus  # the tiny corpus and the Accelerate reset of the training tests
fresh_accelerate_state = test_training.fresh_accelerate_state


def _tone_mel(freq: float) -> torch.Tensor:
    t = torch.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    return log_mel_spectrogram(torch.sin(2 * torch.pi * freq * t)[None]).transpose(1, 2)  # 1 n 100


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
@pytest.mark.parametrize("factor", [0.9, 1.12])
def test_warp_moves_a_tone_where_the_scaled_tone_lies(freq, factor):
    warped = warp_voice(_tone_mel(freq), torch.tensor([factor]))
    true = _tone_mel(freq * factor)
    frame = warped.shape[1] // 2
    assert warped[0, frame].argmax() == true[0, frame].argmax() != _tone_mel(freq)[0, frame].argmax()


def test_warp_keeps_unit_factor_constant_frames_and_each_clip_apart():
    mel = torch.randn(3, 7, 100)
    out = warp_voice(mel, torch.tensor([1.0, 1.1, 0.9]))
    assert torch.allclose(out[0], mel[0], atol=1e-5)  # factor 1: unchanged
    assert not torch.allclose(out[1], mel[1]) and not torch.allclose(out[2], mel[2])
    constant = torch.full((2, 4, 100), -11.5)  # silence (and padding) stays what it was
    assert torch.allclose(warp_voice(constant, torch.tensor([0.85, 1.15])), constant)
    with pytest.raises(ValueError, match="need mel b n m and factors b"):
        warp_voice(mel, torch.tensor([1.0]))


def test_warp_factors_follow_bounds_and_probability():
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(draw_warp_factors(16, (0.9, 1.1), 0.0, generator), torch.ones(16))
    always = draw_warp_factors(4000, (0.9, 1.1), 1.0, generator)
    assert always.min() >= 0.9 and always.max() <= 1.1 and (always != 1).all()
    assert abs(float(always.log().mean())) < 0.01  # log-uniform about 1 for symmetric bounds in log
    half = draw_warp_factors(4000, (0.9, 1.1), 0.5, generator)
    assert 0.45 < float((half == 1).float().mean()) < 0.55
    with pytest.raises(ValueError, match="bounds must satisfy"):
        draw_warp_factors(2, (1.1, 1.2), 0.5, generator)


def test_config_refuses_bad_warp(corpus):
    config = load_config(TINY_CONFIG, [f"data.dir={corpus}", "data.voice_warp=[0.9, 1.1]"])
    assert config.data.voice_warp == [0.9, 1.1] and config.data.voice_warp_prob == 0.5
    for bad in (["data.voice_warp=[1.1, 1.2]"], ["data.voice_warp=[0.9]"],
                ["data.voice_warp=[0.9, 1.1]", "data.voice_warp_prob=2"]):
        with pytest.raises(ValueError, match="data.voice_warp .* must be \\[low, high\\]"):
            load_config(TINY_CONFIG, [f"data.dir={corpus}", *bad])


def test_training_with_warp_changes_the_run_and_resumes_exactly(corpus, tmp_path):
    from omnitalker.training.trainer import train

    warp = ("data.voice_warp=[0.85, 1.15]", "data.voice_warp_prob=1.0")
    straight = tmp_path / "straight"
    train(tiny_config(corpus, straight, *warp))
    resumed = tmp_path / "resumed"
    train(tiny_config(corpus, resumed, *warp), resume=str(straight / "checkpoints" / "checkpoint-2"))
    plain = tmp_path / "plain"
    train(tiny_config(corpus, plain))
    final = {run: load_file(run / "checkpoints" / "checkpoint-4" / "model.safetensors")
             for run in (straight, resumed, plain)}
    assert all(torch.equal(final[straight][key], final[resumed][key]) for key in final[straight])
    assert not all(torch.equal(final[straight][key], final[plain][key]) for key in final[straight])
