"""Visual-code normalisation: the model learns unit-scale codes, users see raw code units."""

import pytest
import torch

from omnitalker.flow.guidance import GuidanceConfig
from omnitalker.flow.loss import FlowMatchingLoss
from omnitalker.flow.sampling import sample
from omnitalker.flow.scheduler import OmniTalkerFlowMatchScheduler
from omnitalker.models.transformer import OmniTalkerTransformer

DIM = 58


def _model(with_stats: bool) -> OmniTalkerTransformer:
    torch.manual_seed(0)
    stats = dict(visual_mean=[0.1] * DIM, visual_std=[0.02] * DIM) if with_stats else {}
    return OmniTalkerTransformer.from_named_config("tiny", **stats).eval()


def test_round_trip_and_config(tmp_path):
    model = _model(True)
    codes = 0.1 + 0.02 * torch.randn(2, 7, DIM)
    normalized = model.normalize_visual(codes)
    assert normalized.std() == pytest.approx(1.0, rel=0.2)  # unit scale for the flow
    torch.testing.assert_close(model.denormalize_visual(normalized), codes)
    model.save_pretrained(tmp_path)
    loaded = OmniTalkerTransformer.from_pretrained(tmp_path)
    torch.testing.assert_close(loaded.normalize_visual(codes), normalized)
    assert "visual_mean_buffer" not in loaded.state_dict()  # statistics live in config.json
    plain = _model(False)
    assert plain.normalize_visual(codes) is codes


def test_bad_statistics():
    with pytest.raises(ValueError, match="both"):
        OmniTalkerTransformer.from_named_config("tiny", visual_mean=[0.0] * DIM)
    with pytest.raises(ValueError, match="58 values"):
        OmniTalkerTransformer.from_named_config("tiny", visual_mean=[0.0] * 3, visual_std=[1.0] * 3)
    with pytest.raises(ValueError, match="positive"):
        OmniTalkerTransformer.from_named_config("tiny", visual_mean=[0.0] * DIM, visual_std=[0.0] * DIM)


def test_sampler_returns_raw_units_with_the_prompt_restored():
    model = _model(True)
    frames = 12
    prompt_codes = 0.1 + 0.02 * torch.randn(1, frames, DIM)
    mask = torch.arange(frames)[None] < 5
    out = sample(model, OmniTalkerFlowMatchScheduler(num_inference_steps=2), text_ids=torch.tensor([[3, 4, 5]]),
                 visual_cond=prompt_codes, cond_mask=mask, guidance=GuidanceConfig(text=0, audio=0, visual=0),
                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.visual[:, :5], prompt_codes[:, :5])  # exact raw prompt, not normalised
    # generated frames are noise-scale in normalised space -> ~std 0.02 in raw units around the mean 0.1
    assert out.visual[:, 5:].std() < 0.2


def test_loss_sees_normalised_codes():
    torch.manual_seed(0)
    codes = 0.1 + 0.02 * torch.randn(2, 16, DIM)
    text = torch.tensor([[3, 4, 5], [6, 7, -1]])
    loss = FlowMatchingLoss()
    seen = {}

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def normalize_visual(self, x):
            return self.inner.normalize_visual(x)

        def forward(self, **kwargs):
            seen["visual_cond"] = kwargs["visual_cond"]
            return self.inner(**kwargs)

    loss(Spy(_model(True)), visual=codes, text_ids=text, generator=torch.Generator().manual_seed(0))
    prompt = seen["visual_cond"][seen["visual_cond"].abs().sum(-1) > 0]
    assert prompt.numel() > 0 and prompt.abs().mean() > 0.3  # (0.1 ± 0.02 - 0.1) / 0.02 ~ N(0, 1), not ~0.1
