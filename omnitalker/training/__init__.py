"""Training recipe for the OmniTalker DiT: config, shard data + dynamic batching, EMA, the Accelerate loop.

CLI: ``python -m omnitalker.train --config configs/train/demo.yaml`` (also under ``accelerate launch`` and
``torchrun``).
"""

from .config import TrainConfig, config_from_dict, load_config
from .data import Batch, DynamicBatchSampler, ShardDataset, TrainingSample, collate, frame_budget_batches
from .ema import create_ema, load_ema_state, save_ema_model, save_ema_state
from .trainer import Trainer, TrainState, find_latest_checkpoint, train

__all__ = [
    "Batch",
    "DynamicBatchSampler",
    "ShardDataset",
    "TrainConfig",
    "TrainState",
    "Trainer",
    "TrainingSample",
    "collate",
    "config_from_dict",
    "create_ema",
    "find_latest_checkpoint",
    "frame_budget_batches",
    "load_config",
    "load_ema_state",
    "save_ema_model",
    "save_ema_state",
    "train",
]
