"""The OmniTalker training loop: Accelerate (single process, DDP, FSDP; bf16), flow-matching loss, EMA,
atomic checkpoints with exact resumption, CSV/TensorBoard logs, validation losses and samples.

    from omnitalker.training import load_config, train
    train(load_config("configs/train/tiny.yaml", ["data.dir=data/synth"]), resume="latest")

Output folder::

    checkpoints/checkpoint-<step>/   model, optimizer, LR scheduler, RNG states per process (Accelerate),
                                     ema.safetensors, trainer_state.json, per-process loss-noise generators,
                                     transformer/ (EMA weights, diffusers layout)
    transformer/                     the latest EMA weights (OmniTalkerTransformer.from_pretrained)
    logs/train.csv, logs/val.csv     per-step and validation metrics (+ TensorBoard events if installed)
    samples/step-<step>/             a sampled validation clip (mel + codes at the mel rate, .npy)

A checkpoint is written into a hidden temporary folder and renamed into place once every process has
written its part, so a crash leaves either a complete checkpoint or none; a resumed run continues with the
same data order, noise draws and dropout masks (bit-for-bit on CPU).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from omnitalker.frontend.phonemes import PhonemeTokenizer
from omnitalker.frontend.text import OmniTalkerTokenizer

from ..flow.loss import FlowMatchingLoss
from ..flow.sampling import sample
from ..flow.scheduler import OmniTalkerFlowMatchScheduler
from ..models.configs import load_named_config
from ..models.transformer import OmniTalkerTransformer, resolve_text_layout
from .augment import draw_warp_factors, warp_voice
from .config import TrainConfig
from .cross_prompt import cross_prompted
from .data import (
    Batch,
    DynamicBatchSampler,
    ShardDataset,
    collate,
    frame_budget_batches,
    training_clips,
    visual_code_statistics,
)
from .ema import create_ema, load_ema_state, save_ema_model, save_ema_state

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TRAINER_STATE_NAME = "trainer_state.json"  # written last: its presence marks a complete checkpoint
STREAMS = ("mel", "pose", "exp", "eye")
VAL_SEED = 1234  # fixed noise/timesteps/masks for validation, so losses are comparable across steps
SAMPLE_PROMPT_FRACTION = 1 / 3  # sampled val clip: the first third is the in-context prompt
RANK_SEED_STRIDE = 1_000_003  # separates the per-process loss-noise seeds


@dataclass
class TrainState:
    """Where training stands: optimizer updates done, data epoch and batches consumed in it (this process)."""

    step: int = 0
    epoch: int = 0
    position: int = 0


# ----------------------------------------------------------------------------------------------- building


def model_text_layout(section) -> str:
    """The text layout the model of a ``model`` config section will have (without building it)."""
    if section.init_from is not None:
        base = OmniTalkerTransformer.load_config(section.init_from)
    elif Path(section.config).is_file():
        base = OmniTalkerTransformer.load_config(section.config)
    else:
        base = load_named_config(section.config)
    merged = {**base, **section.overrides}
    return resolve_text_layout(merged.get("text_layout"), bool(merged.get("text_average_upsampling", False)))


def tokenizer_for(section) -> OmniTalkerTokenizer | PhonemeTokenizer:
    """Phonemes with frame durations for the "durations" layout; characters / pinyin for the others."""
    if model_text_layout(section) == "durations":
        return PhonemeTokenizer.default()
    return OmniTalkerTokenizer.default()


def build_model(
    config: TrainConfig, tokenizer: OmniTalkerTokenizer | PhonemeTokenizer, train_set: ShardDataset | None = None
) -> OmniTalkerTransformer:
    """The transformer to train. A new model gets the visual-code statistics of ``train_set`` (unless its
    config sets them), so it learns unit-scale codes; a fine-tuned one keeps its own."""
    section = config.model
    overrides = dict(section.overrides)
    if section.init_from is None and train_set is not None and "visual_mean" not in overrides:
        overrides["visual_mean"], overrides["visual_std"] = visual_code_statistics(train_set)
    if section.init_from is not None:
        model = OmniTalkerTransformer.from_pretrained(section.init_from)
    elif Path(section.config).is_file():
        base = OmniTalkerTransformer.load_config(section.config)
        model = OmniTalkerTransformer.from_config({**base, **overrides})
    else:
        model = OmniTalkerTransformer.from_named_config(section.config, **overrides)
    if model.config.text_num_embeds < tokenizer.vocab_size:
        raise ValueError(
            f"the model's text_num_embeds ({model.config.text_num_embeds}) is smaller than the tokenizer's vocab "
            f"({tokenizer.vocab_size}); set model.overrides.text_num_embeds >= {tokenizer.vocab_size}"
        )
    return model


def lr_lambda(config: TrainConfig):
    """Multiplier of the peak LR after ``step`` updates: linear warmup, then linear decay to 0 at max_steps, or
    constant (with ``decay_steps``: constant, then linear decay to 0 over the last decay_steps updates)."""
    warmup, total = config.optimizer.warmup_steps, config.training.max_steps
    decay_start = warmup if config.optimizer.schedule == "linear" else total - config.optimizer.decay_steps

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if step < decay_start or decay_start == total:
            return 1.0
        return max(0.0, (total - step) / max(1, total - decay_start))

    return factor


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU computes bf16 natively (oneDNN's own test: AVX-512 BF16 / AMX). Without it bf16 autocast
    is emulated: the demo_cpu recipe ran at 223 frames/s in bf16 against 1,240 in fp32 on an AVX2 EPYC."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def resolve_mixed_precision(setting: str, cpu: bool) -> str:
    """The accelerate precision for ``training.mixed_precision``: "auto" is bf16 on a GPU and on a CPU with native
    bf16, fp32 ("no") elsewhere. An explicit setting is kept, with a warning when bf16 would be emulated."""
    on_cpu = cpu or not torch.cuda.is_available()
    if setting == "auto":
        return "bf16" if not on_cpu or cpu_has_fast_bf16() else "no"
    if setting == "bf16" and on_cpu and not cpu_has_fast_bf16():
        print("warning: training.mixed_precision=bf16 on a CPU without native bf16 (AVX-512 BF16 / AMX) is emulated "
              "and several times slower than fp32: set training.mixed_precision=auto or no", flush=True)
    return setting


# ----------------------------------------------------------------------------------------------- checkpoints


def find_latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The complete checkpoint with the highest step in ``output_dir/checkpoints`` (None if there is none)."""
    folder = Path(output_dir) / "checkpoints"
    found = []
    if folder.is_dir():
        for path in folder.iterdir():
            match = CHECKPOINT_PATTERN.match(path.name)
            if match and (path / TRAINER_STATE_NAME).is_file():
                found.append((int(match.group(1)), path))
    return max(found)[1] if found else None


def resolve_resume(output_dir: str | Path, resume: str) -> Path | None:
    """The checkpoint folder ``--resume`` names: "latest" = the newest in ``output_dir`` (None if none), else the path."""
    return find_latest_checkpoint(output_dir) if resume == "latest" else Path(resume)


def _replace_dir(source: Path, target: Path) -> None:
    """Move folder ``source`` to ``target``, replacing it; ``target`` is complete at every moment it exists."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(source, target)
        shutil.rmtree(old)
    else:
        os.replace(source, target)


class Trainer:
    """Owns the accelerator, model, optimizer, data and EMA; ``fit()`` runs the loop."""

    def __init__(self, config: TrainConfig):
        self.config = config
        section = config.training
        self.output_dir = Path(section.output_dir)
        ddp = DistributedDataParallelKwargs(find_unused_parameters=section.find_unused_parameters)
        self.accelerator = Accelerator(
            cpu=section.cpu,
            mixed_precision=resolve_mixed_precision(section.mixed_precision, section.cpu),
            gradient_accumulation_steps=section.grad_accumulation,
            step_scheduler_with_optimizer=False,  # we step the LR once per update ourselves
            kwargs_handlers=[ddp],
        )
        accel = self.accelerator
        set_seed(section.seed)  # the same initial weights in every process
        self.tokenizer = tokenizer_for(config.model)
        data = config.data
        self.train_set = training_clips(data, self.tokenizer)
        model = build_model(config, self.tokenizer, self.train_set)
        if data.cross_prompt_prob > 0:
            self.train_set = cross_prompted(self.train_set, data.cross_prompt_prob, section.seed, self.tokenizer)
        self.sampler = DynamicBatchSampler(
            self.train_set.lengths, data.frames_per_batch, data.max_samples_per_batch, seed=section.seed,
            num_replicas=accel.num_processes, rank=accel.process_index,
            curriculum_max_frames=data.curriculum_max_frames, curriculum_epochs=data.curriculum_epochs,
        )
        # A private generator keeps DataLoader from drawing on the global RNG (which dropout uses).
        self.loader = DataLoader(self.train_set, batch_sampler=self.sampler, collate_fn=collate,
                                 num_workers=data.num_workers, generator=torch.Generator())
        self.val_set = None
        if data.val_split is not None and accel.is_main_process:
            self.val_set = ShardDataset(data.dir, data.val_split, self.tokenizer, data.max_mismatch_frames)

        optim = config.optimizer
        optimizer = torch.optim.AdamW(model.parameters(), lr=optim.lr, betas=tuple(optim.betas),
                                      weight_decay=optim.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config))
        self.model, self.optimizer, self.scheduler = accel.prepare(model, optimizer, scheduler)
        self.ema = None
        if accel.is_main_process:
            self.ema = create_ema(self.unwrapped, config.ema.decay, config.ema.update_after_step,
                                  config.ema.use_ema_warmup)
        loss_kwargs = {**vars(config.loss), "span_fraction": tuple(config.loss.span_fraction)}
        self.loss_fn = FlowMatchingLoss(**loss_kwargs)
        # Each process draws its own timesteps/masks/noise; dropout uses the (per-process) global RNG.
        self.generator = torch.Generator().manual_seed(section.seed * RANK_SEED_STRIDE + accel.process_index)
        set_seed(section.seed + accel.process_index)
        self.state = TrainState()
        self.last_lr = float("nan")
        self.logger = MetricsLogger(self.output_dir / "logs", config.logging.tensorboard) if accel.is_main_process else None

    @property
    def unwrapped(self) -> OmniTalkerTransformer:
        return self.accelerator.unwrap_model(self.model)

    # ------------------------------------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/checkpoint-<step>`` atomically (every process must call this)."""
        accel, step = self.accelerator, self.state.step
        folder = self.output_dir / "checkpoints"
        final = folder / f"checkpoint-{step}"
        partial = folder / f".checkpoint-{step}.partial"
        if accel.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accel.wait_for_everyone()
        accel.save_state(str(partial))  # model, optimizer, scheduler, RNG states of every process
        torch.save({"loss_generator": self.generator.get_state()}, partial / f"generator_{accel.process_index}.pt")
        accel.wait_for_everyone()
        if accel.is_main_process:
            save_ema_state(self.ema, self.unwrapped, partial)
            save_ema_model(self.ema, self.unwrapped, partial / "transformer")
            state = {**vars(self.state), "num_processes": accel.num_processes, "config": self.config.to_dict()}
            (partial / TRAINER_STATE_NAME).write_text(json.dumps(state, indent=1))
            _replace_dir(partial, final)
            checkpoints = sorted(
                (int(m.group(1)), p) for p in folder.iterdir() if (m := CHECKPOINT_PATTERN.match(p.name))
            )
            for _, old in checkpoints[: -self.config.training.keep_last]:
                shutil.rmtree(old)
            # the pipeline-ready EMA transformer, replaced as a whole
            staging = self.output_dir / ".transformer.partial"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(final / "transformer", staging)
            _replace_dir(staging, self.output_dir / "transformer")
        accel.wait_for_everyone()
        return final

    def load_checkpoint(self, path: str | Path) -> None:
        path = Path(path)
        if not (path / TRAINER_STATE_NAME).is_file():
            raise ValueError(f"{path} is not a complete training checkpoint (no {TRAINER_STATE_NAME})")
        accel = self.accelerator
        accel.load_state(str(path))
        state = json.loads((path / TRAINER_STATE_NAME).read_text())
        self.state = TrainState(step=state["step"], epoch=state["epoch"], position=state["position"])
        generator_path = path / f"generator_{accel.process_index}.pt"
        if state["num_processes"] != accel.num_processes or not generator_path.is_file():
            accel.print(f"note: {path} was written by {state['num_processes']} processes, this run has "
                        f"{accel.num_processes}: data order and noise continue differently")
        else:
            self.generator.set_state(torch.load(generator_path, weights_only=True)["loss_generator"])
        if accel.is_main_process:
            load_ema_state(self.ema, self.unwrapped, path)
            self.logger.truncate_after(self.state.step)

    # ------------------------------------------------------------------------------------------- the loop

    def fit(self, resume: str | None = None) -> dict:
        accel, config = self.accelerator, self.config
        if resume is not None:
            checkpoint = resolve_resume(self.output_dir, resume)
            if checkpoint is None:
                accel.print(f"no checkpoint in {self.output_dir}/checkpoints: starting from scratch")
            elif not checkpoint.is_dir():
                raise ValueError(f"--resume {resume}: no such checkpoint folder")
            else:
                self.load_checkpoint(checkpoint)
                accel.print(f"resumed from {checkpoint} at step {self.state.step}")
        max_steps, log_every = config.training.max_steps, config.logging.log_every
        totals = torch.zeros(len(STREAMS) + 2, dtype=torch.float64)  # loss, streams, frames (since last log)
        micro_batches, last_grad_norm = 0, float("nan")
        last_log_time = time.perf_counter()
        self.model.train()
        while self.state.step < max_steps:
            self.sampler.set_epoch(self.state.epoch, self.state.position)
            for batch in self.loader:
                self.state.position += 1
                grad_norm = self.train_micro_batch(batch.to(accel.device), totals)
                micro_batches += 1
                if not accel.sync_gradients:
                    continue
                last_grad_norm = grad_norm
                self.state.step += 1
                step = self.state.step
                if step % log_every == 0 or step == max_steps:
                    totals_all = accel.reduce(totals.to(accel.device), reduction="sum").cpu()
                    elapsed = time.perf_counter() - last_log_time
                    self.log_train(totals_all, micro_batches * accel.num_processes, elapsed, last_grad_norm)
                    totals.zero_()
                    micro_batches, last_log_time = 0, time.perf_counter()
                started = time.perf_counter()
                validate_every = config.logging.validate_every
                if step == max_steps or (validate_every and step % validate_every == 0):
                    self.validate()
                sample_every = config.logging.sample_every
                if sample_every and step % sample_every == 0:
                    self.save_sample()
                if step % config.training.save_every == 0 or step == max_steps:
                    self.save_checkpoint()
                last_log_time += time.perf_counter() - started  # frames/s counts training time only
                if step >= max_steps:
                    break
            else:  # epoch finished
                self.state.epoch += 1
                self.state.position = 0
        accel.wait_for_everyone()
        if self.logger is not None:
            self.logger.close()
        accel.end_training()
        return vars(self.state)

    def train_micro_batch(self, batch: Batch, totals: torch.Tensor) -> float:
        """Forward + backward one batch; on the last batch of an accumulation, clip, step, update the EMA."""
        accel, optim = self.accelerator, self.config.optimizer
        grad_norm = float("nan")
        mel = batch.mel  # b n 100
        if self.config.data.voice_warp:
            factors = draw_warp_factors(len(mel), tuple(self.config.data.voice_warp), self.config.data.voice_warp_prob,
                                        self.generator)  # b
            mel = warp_voice(mel, factors)  # b n 100
        with accel.accumulate(self.model):
            out = self.loss_fn(self.model, mel=mel, visual=batch.codes, text_ids=batch.text_ids,
                               lengths=batch.lengths, generator=self.generator, text_durations=batch.text_durations,
                               prompt_frames=batch.prompt_frames)
            if not torch.isfinite(out.loss):
                raise FloatingPointError(
                    f"non-finite loss {out.loss.item()} at step {self.state.step} (clips {batch.keys}); lower "
                    "optimizer.lr or check these clips"
                )
            accel.backward(out.loss)
            if accel.sync_gradients:
                max_norm = optim.max_grad_norm if optim.max_grad_norm > 0 else math.inf
                grad_norm = float(accel.clip_grad_norm_(self.model.parameters(), max_norm))
            self.optimizer.step()
            if accel.sync_gradients:
                self.last_lr = self.scheduler.get_last_lr()[0]  # the LR this update used
                self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
        if accel.sync_gradients and self.ema is not None:
            self.ema.step(self.unwrapped.parameters())
        totals[0] += out.loss.item()
        for index, name in enumerate(STREAMS):
            totals[1 + index] += out.losses.get(name, 0.0)
        totals[-1] += batch.num_frames
        return grad_norm

    def log_train(self, totals: torch.Tensor, micro_batches: int, elapsed: float, grad_norm: float) -> None:
        if self.logger is None:
            return
        row = {"step": self.state.step, "epoch": self.state.epoch, "loss": totals[0].item() / micro_batches}
        row.update({name: totals[1 + i].item() / micro_batches for i, name in enumerate(STREAMS)})
        row.update({"lr": self.last_lr, "grad_norm": grad_norm,
                    "frames_per_s": totals[-1].item() / max(elapsed, 1e-9)})
        self.logger.log("train", row)

    # ------------------------------------------------------------------------------------------- validation

    def val_batches(self) -> list[Batch]:
        """The first ``val_max_samples`` val clips, batched by length with the training budget (fixed order)."""
        count = min(len(self.val_set), self.config.logging.val_max_samples)
        lengths = self.val_set.lengths[:count]
        order = np.argsort(lengths, kind="stable")
        data = self.config.data
        batches = frame_budget_batches(lengths, data.frames_per_batch, data.max_samples_per_batch, order)
        return [collate([self.val_set[i] for i in batch]) for batch in batches]

    @torch.no_grad()
    def validation_loss(self, batches: list[Batch]) -> dict[str, float]:
        """Frame-weighted mean losses over ``batches`` with fixed random draws (comparable across steps)."""
        model = self.unwrapped
        was_training = model.training
        model.eval()
        generator = torch.Generator().manual_seed(VAL_SEED)
        sums, weight = dict.fromkeys(("loss", *STREAMS), 0.0), 0
        with self.accelerator.autocast():
            for batch in batches:
                batch = batch.to(self.accelerator.device)
                out = self.loss_fn(model, mel=batch.mel, visual=batch.codes, text_ids=batch.text_ids,
                                   lengths=batch.lengths, generator=generator,
                                   text_durations=batch.text_durations)
                frames = int(out.mask.sum())
                sums["loss"] += out.loss.item() * frames
                for name in STREAMS:
                    sums[name] += out.losses.get(name, 0.0) * frames
                weight += frames
        model.train(was_training)
        return {name: value / max(weight, 1) for name, value in sums.items()}

    def validate(self) -> None:
        """Validation losses of the online and the EMA weights (main process; the others wait)."""
        if self.accelerator.is_main_process and self.val_set is not None:
            batches = self.val_batches()
            row = {"step": self.state.step}
            row.update({f"online_{k}": v for k, v in self.validation_loss(batches).items()})
            parameters = list(self.unwrapped.parameters())
            self.ema.store(parameters)
            self.ema.copy_to(parameters)
            row.update({f"ema_{k}": v for k, v in self.validation_loss(batches).items()})
            self.ema.restore(parameters)
            self.logger.log("val", row)
        self.accelerator.wait_for_everyone()

    @torch.no_grad()
    def save_sample(self) -> None:
        """Infill the last two thirds of the first val clip with the EMA weights; save mel + codes as .npy."""
        if self.accelerator.is_main_process and self.val_set is not None:
            clip = collate([self.val_set[0]]).to(self.accelerator.device)
            frames = clip.mel.shape[1]
            prompt = torch.arange(frames, device=clip.mel.device)[None] < int(frames * SAMPLE_PROMPT_FRACTION)  # 1 n
            model = self.unwrapped
            parameters = list(model.parameters())
            self.ema.store(parameters)
            self.ema.copy_to(parameters)
            model.eval()
            scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=self.config.logging.sample_steps)
            with self.accelerator.autocast():
                out = sample(model, scheduler, text_ids=clip.text_ids, audio_cond=clip.mel, visual_cond=clip.codes,
                             cond_mask=prompt, generator=torch.Generator().manual_seed(VAL_SEED),
                             text_durations=clip.text_durations)
            model.train()
            self.ema.restore(parameters)
            folder = self.output_dir / "samples" / f"step-{self.state.step:07d}"
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / "mel.npy", out.audio[0].float().cpu().numpy())  # n 100
            np.save(folder / "codes.npy", out.visual[0].float().cpu().numpy())  # n 58, at the mel rate
            (folder / "sample.json").write_text(json.dumps(
                {"key": clip.keys[0], "text": self.tokenizer.decode(clip.text_ids[0]),
                 "prompt_frames": int(prompt.sum()), "frames": frames}, ensure_ascii=False))
        self.accelerator.wait_for_everyone()


class MetricsLogger:
    """CSV files per kind (train, val), plus TensorBoard scalars when the package is installed."""

    def __init__(self, folder: Path, tensorboard: bool):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(folder))
            except ImportError:
                print("tensorboard is not installed: logging to CSV only (pip install tensorboard)")

    def log(self, kind: str, row: dict) -> None:
        path = self.folder / f"{kind}.csv"
        new = not path.exists()
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for name, value in row.items():
                if name != "step":
                    self.writer.add_scalar(f"{kind}/{name}", value, row["step"])
        parts = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        print(f"[{kind}] {parts}", flush=True)

    def truncate_after(self, step: int) -> None:
        """Drop rows a crashed run logged after the checkpoint we resume from (they will be redone)."""
        for path in self.folder.glob("*.csv"):
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            if not rows:
                continue
            kept = [row for row in rows if int(row["step"]) <= step]
            with open(path, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(kept)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def train(config: TrainConfig, resume: str | None = None) -> dict:
    """Build a :class:`Trainer` for ``config`` and run it; returns the final state (step, epoch, position).
    A ``model.kind: duration_predictor`` config trains the duration predictor instead (no resume: minutes)."""
    if config.model.kind == "duration_predictor":
        from .duration import train_duration_predictor

        if resume is not None:
            raise ValueError("the duration predictor trains in minutes and has no checkpoints: drop --resume")
        return train_duration_predictor(config)
    if resume is not None:
        config = with_checkpoint_statistics(config, resolve_resume(config.training.output_dir, resume))
    return Trainer(config).fit(resume)


def with_checkpoint_statistics(config: TrainConfig, checkpoint: Path | None) -> TrainConfig:
    """``config`` with the visual-code statistics of the model in ``checkpoint``: a resumed run keeps the
    normalisation its weights learned, even when the training data changed (e.g. ``data.extra_train_dirs``)."""
    saved = None if checkpoint is None else Path(checkpoint, "transformer", "config.json")
    if saved is None or not saved.is_file() or "visual_mean" in config.model.overrides:
        return config
    model_config = json.loads(saved.read_text())
    if model_config.get("visual_mean") is None:
        return config
    overrides = {**config.model.overrides, "visual_mean": model_config["visual_mean"],
                 "visual_std": model_config["visual_std"]}
    return dataclasses.replace(config, model=dataclasses.replace(config.model, overrides=overrides))
