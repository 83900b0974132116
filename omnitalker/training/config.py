"""Training configuration: YAML file -> typed, validated dataclasses (every key documented here).

    config = load_config("configs/train/demo.yaml", overrides=["optimizer.lr=2e-4", "data.dir=data/synth"])

A YAML file has up to seven sections; any key left out keeps the default below. Unknown sections or keys,
wrong types and missing files are ValueErrors naming the file, the key and the fix. Relative paths are
relative to the working directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..models.configs import NAMED_CONFIGS
from .augment import check_warp
from .cross_prompt import check_cross_prompt_prob


@dataclass
class ModelSection:
    kind: str = "transformer"  # "transformer" (the DiT) or "duration_predictor" (omnitalker.training.duration)
    config: str = "demo"  # a named transformer config (tiny, small, demo, base) or a path to a config.json
    overrides: dict = field(default_factory=dict)  # transformer config keys to change, e.g. {dropout: 0.0}
    init_from: str | None = None  # start from the weights of a diffusers transformer folder (e.g. converted F5)


@dataclass
class DataSection:
    dir: str = "data/synth"  # corpus folder with index.json (python -m omnitalker.data.synthetic --out DIR)
    # More corpora whose ``train_split`` joins the training clips (e.g. more speakers, drawn with another
    # --seed); validation stays on ``dir``, so its held-out speakers and sentences keep their meaning.
    extra_train_dirs: list = field(default_factory=list)
    train_split: str = "train"
    val_split: str | None = "val_texts"  # None: no validation
    frames_per_batch: int = 8000  # padded mel frames per batch and process (longest clip x clips)
    max_samples_per_batch: int = 32
    max_mismatch_frames: int = 3  # allowed |mel frames - frames the codes cover| before a clip is an error
    num_workers: int = 0  # DataLoader worker processes per training process
    # Short clips first: during the first ``curriculum_epochs`` epochs only clips of at most
    # ``curriculum_max_frames`` mel frames are used (0 / 0: off). Counted in epochs, not steps, so the
    # batches of an epoch stay a function of (seed, epoch) and a resumed run continues exactly.
    curriculum_max_frames: int = 0
    curriculum_epochs: int = 0
    # Voice warping (omnitalker/training/augment.py): with probability voice_warp_prob a training clip's mel is
    # stretched along frequency by a factor log-uniform in voice_warp = [low, high] (empty: off), so the model
    # meets a continuum of voices and must take the voice from its prompt.
    voice_warp: list = field(default_factory=list)
    voice_warp_prob: float = 0.5
    # Share of training clips generated whole from the tail of another clip of their speaker, cut as the pipeline
    # cuts a reference (omnitalker/training/cross_prompt.py; 0: off). Needs the "durations" text layout.
    cross_prompt_prob: float = 0.0


@dataclass
class OptimizerSection:
    lr: float = 1e-4  # peak AdamW learning rate
    betas: list = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    warmup_steps: int = 100  # linear warmup from lr / warmup_steps to lr
    schedule: str = "linear"  # after warmup: "linear" decay to 0 at max_steps (F5-TTS) or "constant"
    # "constant" only: decay linearly to 0 over the last decay_steps updates before max_steps (warmup-stable-decay).
    # The LR is a function of the step alone, so a run can be resumed with a new max_steps / decay_steps.
    decay_steps: int = 0
    max_grad_norm: float = 1.0  # gradient clipping; 0 disables clipping (the norm is still logged)


@dataclass
class LossSection:  # FlowMatchingLoss arguments (omnitalker.flow.loss)
    mel_weight: float = 1.0
    pose_weight: float = 1.0
    exp_weight: float = 1.0
    eye_weight: float = 1.0
    timestep_distribution: str = "logit_normal"  # or "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    span_fraction: list = field(default_factory=lambda: [0.7, 1.0])  # masked share of each clip
    end_span_prob: float = 0.0  # share of spans that end at the clip's end: the [prompt | target] of inference
    drop_text_prob: float = 0.2
    drop_audio_cond_prob: float = 0.2
    drop_visual_cond_prob: float = 0.2
    audio_driven_prob: float = 0.0


@dataclass
class EMASection:  # diffusers.training_utils.EMAModel arguments
    decay: float = 0.9999
    update_after_step: int = 0
    use_ema_warmup: bool = False


@dataclass
class TrainingSection:
    output_dir: str = "outputs/train"
    seed: int = 0
    max_steps: int = 10000  # optimizer updates (the LR schedule ends here)
    grad_accumulation: int = 1  # batches per optimizer update
    mixed_precision: str = "auto"  # "no", "bf16", "fp16" or "auto" (bf16 on GPU and on CPUs with native bf16)
    cpu: bool = False  # force CPU (also makes torchrun runs on CPU use all processes)
    find_unused_parameters: bool = False  # DDP option; needed only if some parameters get no gradient
    save_every: int = 1000  # checkpoint interval in steps (and at the end)
    keep_last: int = 3  # checkpoints kept (older ones are deleted)


@dataclass
class LoggingSection:
    log_every: int = 10  # steps between CSV/TensorBoard rows
    tensorboard: bool = True  # also write TensorBoard events if the tensorboard package is installed
    validate_every: int = 500  # steps between validation losses (0: only at the end)
    val_max_samples: int = 64  # validation clips used (the first ones of the split)
    sample_every: int = 0  # steps between sampled val clips saved as .npy (0: never)
    sample_steps: int = 8  # ODE steps of those samples


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optimizer: OptimizerSection = field(default_factory=OptimizerSection)
    loss: LossSection = field(default_factory=LossSection)
    ema: EMASection = field(default_factory=EMASection)
    training: TrainingSection = field(default_factory=TrainingSection)
    logging: LoggingSection = field(default_factory=LoggingSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _coerce(value, default, where: str):
    """Check/convert a YAML value against the type of the field's default."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        try:  # PyYAML reads "1e-4" (no dot) as a string
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    if isinstance(default, (list, dict)) and not isinstance(value, type(default)):
        raise ValueError(f"{where} must be a {type(default).__name__}, got {value!r}")
    if isinstance(default, str) and value is not None and not isinstance(value, str):
        if where.startswith("training.mixed_precision") and value is False:
            return "no"  # YAML 1.1 reads an unquoted no as false
        raise ValueError(f"{where} must be a string (quote it), got {value!r}")
    return value


def config_from_dict(raw: dict, source: str = "config") -> TrainConfig:
    config = TrainConfig()
    if not isinstance(raw, dict):
        raise ValueError(f"{source} must be a YAML mapping of sections, got {type(raw).__name__}")
    sections = {f.name for f in dataclasses.fields(config)}
    for section_name, values in raw.items():
        if section_name not in sections:
            raise ValueError(f"unknown section {section_name!r} in {source}; valid sections: {sorted(sections)}")
        section = getattr(config, section_name)
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValueError(f"section {section_name!r} in {source} must be a mapping")
        keys = {f.name for f in dataclasses.fields(section)}
        for key, value in values.items():
            if key not in keys:
                raise ValueError(
                    f"unknown key {section_name}.{key} in {source}; valid keys of {section_name}: {sorted(keys)}"
                )
            setattr(section, key, _coerce(value, getattr(section, key), f"{section_name}.{key} in {source}"))
    check_config(config, source)
    return config


def check_config(config: TrainConfig, source: str = "config") -> None:
    """Value checks and missing files, with the fix in the message."""
    model, data, training = config.model, config.data, config.training
    if model.kind not in ("transformer", "duration_predictor"):
        raise ValueError(f"model.kind in {source} must be transformer or duration_predictor, got {model.kind!r}")
    if model.kind == "transformer" and model.config not in NAMED_CONFIGS and not Path(model.config).is_file():
        raise ValueError(
            f"model.config in {source} is {model.config!r}: neither a named config {NAMED_CONFIGS} "
            "nor an existing config.json file"
        )
    if model.init_from is not None and not Path(model.init_from, "config.json").is_file():
        raise ValueError(f"model.init_from in {source}: {model.init_from} is not a diffusers transformer folder")
    if not Path(data.dir, "index.json").is_file():
        raise ValueError(
            f"data.dir in {source}: {data.dir} has no index.json; build a corpus with "
            "python -m omnitalker.data.synthetic --out DIR or pass --data-dir"
        )
    for extra in data.extra_train_dirs:
        if not Path(extra, "index.json").is_file():
            raise ValueError(
                f"data.extra_train_dirs in {source}: {extra} has no index.json; build it with "
                "python -m omnitalker.data.synthetic --out DIR --seed N or remove it from the list"
            )
    for name in ("frames_per_batch", "max_samples_per_batch"):
        if getattr(data, name) < 1:
            raise ValueError(f"data.{name} in {source} must be >= 1")
    if data.curriculum_max_frames < 0 or data.curriculum_epochs < 0:
        raise ValueError(f"data.curriculum_max_frames and data.curriculum_epochs in {source} must be >= 0")
    if data.curriculum_epochs and not data.curriculum_max_frames:
        raise ValueError(
            f"data.curriculum_epochs in {source} is {data.curriculum_epochs} but data.curriculum_max_frames is 0: "
            "set the clip length limit of the curriculum (e.g. 300 frames = 3.2 s) or set curriculum_epochs to 0"
        )
    if data.voice_warp:
        check_warp(data.voice_warp, data.voice_warp_prob, where=f"data.voice_warp in {source}")
    check_cross_prompt_prob(data.cross_prompt_prob, where=f"data.cross_prompt_prob in {source}")
    for name in ("max_steps", "grad_accumulation", "save_every", "keep_last"):
        if getattr(training, name) < 1:
            raise ValueError(f"training.{name} in {source} must be >= 1")
    if training.mixed_precision not in ("no", "bf16", "fp16", "auto"):
        raise ValueError(f"training.mixed_precision in {source} must be no, bf16, fp16 or auto")
    if config.optimizer.schedule not in ("linear", "constant"):
        raise ValueError(f"optimizer.schedule in {source} must be linear or constant")
    if config.optimizer.decay_steps < 0 or (config.optimizer.decay_steps and config.optimizer.schedule != "constant"):
        raise ValueError(f"optimizer.decay_steps in {source} must be >= 0 and is only used with schedule: constant")
    if config.optimizer.decay_steps > training.max_steps - config.optimizer.warmup_steps:
        raise ValueError(f"optimizer.decay_steps in {source} is longer than the steps after warmup "
                         f"({training.max_steps} - {config.optimizer.warmup_steps})")
    if config.optimizer.warmup_steps < 0 or config.logging.log_every < 1:
        raise ValueError(f"optimizer.warmup_steps must be >= 0 and logging.log_every >= 1 in {source}")


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a YAML config; ``overrides`` are ``section.key=value`` strings (value parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} does not exist (see configs/train/ for examples)")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"config file {path} is not valid YAML: {error}") from error
    for override in overrides or []:
        dotted, sep, value = override.partition("=")
        section, dot, key = dotted.partition(".")
        if not sep or not dot:
            raise ValueError(f"override {override!r} must look like section.key=value")
        if raw.get(section) is None:
            raw[section] = {}
        if not isinstance(raw[section], dict):
            raise ValueError(f"section {section!r} in {path} must be a mapping")
        raw[section][key] = yaml.safe_load(value)
    return config_from_dict(raw, str(path))
