"""scripts/average_transformers.py: the soup is the element-wise mean, loads as a transformer, and refuses
weights that cannot be averaged."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from omnitalker.models.transformer import OmniTalkerTransformer
from tests.pipeline_fixtures import tiny_transformer

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "average_transformers.py"


def _script():
    spec = importlib.util.spec_from_file_location("average_transformers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_average_is_the_mean_and_loads(tmp_path):
    folders = []
    for seed in (0, 1):
        model = tiny_transformer()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # two different "runs" from one initialisation
            for param in model.parameters():
                param.add_(0.1 * torch.randn(param.shape, generator=generator))
        model.save_pretrained(tmp_path / f"run{seed}")
        folders.append(tmp_path / f"run{seed}")
    _script().average_transformers(folders, tmp_path / "soup")
    soup = OmniTalkerTransformer.from_pretrained(tmp_path / "soup")
    runs = [OmniTalkerTransformer.from_pretrained(folder) for folder in folders]
    for name, param in soup.named_parameters():
        a, b = (dict(run.named_parameters())[name] for run in runs)
        assert torch.allclose(param, (a + b) / 2, atol=1e-7), name
    first, second = (dict(run.named_parameters()) for run in runs)
    assert any(not torch.equal(first[name], second[name]) for name in first)  # the two runs do differ


def test_average_refuses_other_configs(tmp_path):
    tiny_transformer().save_pretrained(tmp_path / "a")
    tiny_transformer().save_pretrained(tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    config["visual_mean"] = [1.0] * len(config["visual_mean"]) if config.get("visual_mean") else [1.0]
    (tmp_path / "b" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="another config"):
        _script().average_transformers([tmp_path / "a", tmp_path / "b"], tmp_path / "soup")
    with pytest.raises(ValueError, match="at least two"):
        _script().average_transformers([tmp_path / "a"], tmp_path / "soup")
