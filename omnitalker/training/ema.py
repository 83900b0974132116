"""Exponential moving average of the transformer weights, on top of diffusers' ``EMAModel``.

diffusers' EMAModel does the averaging (decay warmup ``(1 + s) / (10 + s)`` capped at ``decay``); this file
adds what training needs around it: saving/loading its state as safetensors (named like the model's
parameters, so a checkpoint is inspectable) and writing the averaged weights as a diffusers model folder
that ``OmniTalkerTransformer.from_pretrained`` / the pipeline load directly.

    ema = create_ema(model, decay=0.9999)
    ema.step(model.parameters())                          # after each optimizer update
    save_ema_state(ema, model, "ckpt/")  ;  load_ema_state(ema, model, "ckpt/")
    save_ema_model(ema, model, "out/transformer")         # diffusers folder with the EMA weights
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from diffusers.training_utils import EMAModel
from safetensors.torch import load_file, save_file
from torch import nn

EMA_WEIGHTS_NAME = "ema.safetensors"
EMA_STATE_NAME = "ema_state.json"


def create_ema(model: nn.Module, decay: float, update_after_step: int = 0, use_ema_warmup: bool = False) -> EMAModel:
    """EMA shadow copy (fp32, same device) of ``model``'s parameters."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"ema.decay must be in [0, 1], got {decay}")
    return EMAModel(model.parameters(), decay=decay, update_after_step=update_after_step, use_ema_warmup=use_ema_warmup)


def save_ema_state(ema: EMAModel, model: nn.Module, directory: str | Path) -> None:
    """Shadow weights -> ``ema.safetensors`` (keyed by parameter name), the rest -> ``ema_state.json``."""
    directory = Path(directory)
    state = ema.state_dict()
    shadow = state.pop("shadow_params")
    names = [name for name, _ in model.named_parameters()]
    save_file({name: tensor.detach().contiguous().cpu() for name, tensor in zip(names, shadow, strict=True)},
              str(directory / EMA_WEIGHTS_NAME))
    (directory / EMA_STATE_NAME).write_text(json.dumps(state, indent=1))


def load_ema_state(ema: EMAModel, model: nn.Module, directory: str | Path) -> None:
    directory = Path(directory)
    weights_path = directory / EMA_WEIGHTS_NAME
    if not weights_path.is_file():
        raise ValueError(f"checkpoint {directory} has no {EMA_WEIGHTS_NAME}: it is incomplete or not a training checkpoint")
    weights = load_file(str(weights_path))
    names = [name for name, _ in model.named_parameters()]
    missing = [name for name in names if name not in weights]
    if missing:
        raise ValueError(f"{weights_path} lacks {len(missing)} parameters (e.g. {missing[0]}): a different model config?")
    state = json.loads((directory / EMA_STATE_NAME).read_text())
    device = ema.shadow_params[0].device
    state["shadow_params"] = [weights[name].to(device) for name in names]
    ema.load_state_dict(state)


def save_ema_model(ema: EMAModel, model: nn.Module, path: str | Path) -> None:
    """Write the EMA weights as a diffusers folder (config.json + safetensors) of ``model``'s class."""
    averaged = copy.deepcopy(model)
    ema.copy_to(averaged.parameters())
    averaged.save_pretrained(path)
