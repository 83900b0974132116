"""A 2-D flow-matching toy that works exactly like OmniTalker, small enough to train in seconds on a CPU.

    from omnitalker.ui.toy_flow import get_toy_flow, sample_trajectories, plot_trajectories
    toy = get_toy_flow()                                   # trains once per process (a few seconds)
    paths = sample_trajectories(toy.model, num_steps=8, solver="euler", sway=-1.0, cfg_strength=2.0, label=0)
    plot_trajectories(paths).savefig("flow.png")

    python -m omnitalker.ui.toy_flow --steps 4 --cfg 3 --out flow.png

The data are 8 Gaussian blobs on a circle, in two classes (alternate blobs), the "condition" a class label
that is dropped with p = 0.2 during training -- the toy counterpart of OmniTalker's text / audio / visual
conditions. Everything else is the model's own machinery, imported, not re-implemented:
- the path and target of ``omnitalker.flow.loss`` (x_t = (1 - t) x0 + t x1, velocity x1 - x0, t = 0 noise),
  timesteps from ``omnitalker.flow.masking.sample_timesteps`` (logit-normal), the L1 loss of the paper;
- sampling with ``OmniTalkerFlowMatchScheduler`` (Euler or midpoint, F5-TTS sway of the time grid);
- classifier-free guidance v = v_cond + w (v_cond - v_dropped) (``omnitalker.flow.guidance``, a(t) = 1).
"""

from __future__ import annotations

import argparse
import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from omnitalker.flow.loss import interpolate, velocity_target
from omnitalker.flow.masking import sample_drop, sample_timesteps
from omnitalker.flow.scheduler import SOLVERS, OmniTalkerFlowMatchScheduler

NUM_BLOBS = 8
NUM_CLASSES = 2  # blob k belongs to class k % 2
NULL_LABEL = NUM_CLASSES  # the "condition dropped" embedding
BLOB_RADIUS = 3.0  # centres on a circle of this radius; the noise is N(0, I)
BLOB_STD = 0.25
CONDITION_DROP_PROB = 0.2  # as the paper drops each condition
HIDDEN = 64
TIME_FREQUENCIES = 8  # sinusoidal features of t
TRAIN_STEPS = 1000
BATCH = 256
LEARNING_RATE = 3e-3
DEFAULT_SAMPLES = 400
MAX_STEPS = 64  # the Learn tab's slider range; more only costs time


def blob_centres() -> np.ndarray:
    """(NUM_BLOBS, 2) centres on the circle."""
    angles = 2 * math.pi * np.arange(NUM_BLOBS) / NUM_BLOBS
    return BLOB_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def sample_data(num: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(num, 2) points of the mixture and their (num,) class labels."""
    blobs = torch.randint(0, NUM_BLOBS, (num,), generator=generator)
    centres = torch.from_numpy(blob_centres()).float()[blobs]  # num 2
    return centres + BLOB_STD * torch.randn(num, 2, generator=generator), blobs % NUM_CLASSES


class ToyVelocityField(nn.Module):
    """v(x_t, t, label): an MLP on [x, sin/cos features of t, label embedding]; label NULL_LABEL = dropped."""

    def __init__(self, hidden: int = HIDDEN):
        super().__init__()
        self.label_embedding = nn.Embedding(NUM_CLASSES + 1, hidden)
        self.input = nn.Linear(2 + 2 * TIME_FREQUENCIES, hidden)
        self.body = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                  nn.SiLU(), nn.Linear(hidden, 2))
        self.register_buffer("frequencies", math.pi * 2.0 ** torch.arange(TIME_FREQUENCIES).float() / 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        angles = t[:, None] * self.frequencies  # b f
        features = torch.cat([x, angles.sin(), angles.cos()], dim=1)  # b (2 + 2f)
        return self.body(self.input(features) + self.label_embedding(label))  # b 2


@dataclass
class ToyFlow:
    model: ToyVelocityField
    losses: list[float]  # per training step


def train_toy_flow(steps: int = TRAIN_STEPS, seed: int = 0) -> ToyFlow:
    """Conditional flow matching on the mixture, with the label dropped for CFG like the paper's conditions."""
    threads = torch.get_num_threads()
    # a 64-wide MLP gains nothing from intra-op threads, and on a busy machine they cost 10x (spin-waits)
    torch.set_num_threads(1)
    try:
        return _train(steps, seed)
    finally:
        torch.set_num_threads(threads)


def _train(steps: int, seed: int) -> ToyFlow:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ToyVelocityField()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses = []
    for _ in range(steps):
        x1, label = sample_data(BATCH, generator)  # data
        x0 = torch.randn(BATCH, 2, generator=generator)  # noise
        t = sample_timesteps(BATCH, generator=generator)  # logit-normal, as the model is trained
        label = torch.where(sample_drop(BATCH, CONDITION_DROP_PROB, generator=generator), NULL_LABEL, label)
        loss = (model(interpolate(x0, x1, t), t, label) - velocity_target(x0, x1)).abs().mean()  # L1 (paper)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    return ToyFlow(model.eval(), losses)


@functools.lru_cache(maxsize=1)
def get_toy_flow(seed: int = 0) -> ToyFlow:
    """The trained toy, trained on first use and kept for the process (the Learn tab calls this)."""
    return train_toy_flow(seed=seed)


@dataclass
class ToyTrajectories:
    """points: (num_steps + 1, n, 2) states at the grid's flow times (0 = noise ... 1 = samples).
    flow_times: (num_steps + 1,) the (swayed) grid. evaluations: model calls per sample (CFG doubles them).
    label: the class asked for (None = unconditional)."""

    points: np.ndarray
    flow_times: np.ndarray
    evaluations: int
    label: int | None
    solver: str
    cfg_strength: float

    @property
    def samples(self) -> np.ndarray:
        return self.points[-1]


@torch.no_grad()
def sample_trajectories(
    model: ToyVelocityField,
    num_samples: int = DEFAULT_SAMPLES,
    num_steps: int = 8,
    solver: str = "euler",
    sway: float = -1.0,
    cfg_strength: float = 0.0,
    label: int | None = 0,
    seed: int = 0,
) -> ToyTrajectories:
    """Integrate noise -> data with OmniTalker's scheduler; CFG towards `label` with strength `cfg_strength`."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if not (isinstance(num_steps, int) and 1 <= num_steps <= MAX_STEPS):
        raise ValueError(f"num_steps must be an integer in [1, {MAX_STEPS}], got {num_steps!r}")
    if label is not None and label not in range(NUM_CLASSES):
        raise ValueError(f"label must be None or one of {list(range(NUM_CLASSES))}, got {label!r}")
    if not (math.isfinite(cfg_strength) and cfg_strength >= 0):
        raise ValueError(f"cfg_strength must be a finite number >= 0, got {cfg_strength!r}")
    scheduler = OmniTalkerFlowMatchScheduler(num_inference_steps=num_steps, solver=solver, sway_sampling_coef=sway)
    x = torch.randn(num_samples, 2, generator=torch.Generator().manual_seed(seed))  # n 2, t = 0
    conditional = torch.full((num_samples,), NULL_LABEL if label is None else label)
    dropped = torch.full((num_samples,), NULL_LABEL)
    guided = label is not None and cfg_strength > 0
    states, evaluations = [x.numpy().copy()], 0
    for t in scheduler.timesteps:
        time = t.expand(num_samples)
        velocity = model(x, time, conditional)  # n 2
        if guided:  # the same combination as omnitalker.flow.guidance, one condition, a(t) = 1
            velocity = velocity + cfg_strength * (velocity - model(x, time, dropped))
        evaluations += 2 if guided else 1
        x = scheduler.step(velocity, t, x).prev_sample
        if scheduler.state_in_first_order:  # an interval is complete (midpoint: after its second stage)
            states.append(x.numpy().copy())
    return ToyTrajectories(np.stack(states), scheduler.flow_times.numpy(), evaluations, label, solver, cfg_strength)


def nearest_blob(points: np.ndarray) -> np.ndarray:
    """(n,) index of the nearest blob centre."""
    return np.linalg.norm(points[:, None] - blob_centres()[None], axis=2).argmin(axis=1)


def class_accuracy(points: np.ndarray, label: int) -> float:
    """Fraction of points that landed on a blob of class `label`."""
    return float(np.mean(nearest_blob(points) % NUM_CLASSES == label))


def distance_to_blobs(points: np.ndarray) -> float:
    """Mean distance from a point to its nearest blob centre (about BLOB_STD * 1.25 for perfect samples)."""
    return float(np.linalg.norm(points - blob_centres()[nearest_blob(points)], axis=1).mean())


def describe(paths: ToyTrajectories) -> str:
    """One-paragraph Markdown summary of a sampling run (what the Learn tab prints under the plot)."""
    lines = [f"**{len(paths.flow_times) - 1} {paths.solver} steps = {paths.evaluations} network evaluations** "
             f"per sample; mean distance to the nearest blob **{distance_to_blobs(paths.samples):.2f}** "
             f"(perfect samples: about {BLOB_STD * math.sqrt(math.pi / 2):.2f})."]
    if paths.label is not None:
        lines.append(f"Samples on a class-{paths.label} blob: **{100 * class_accuracy(paths.samples, paths.label):.0f} %** "
                     f"with CFG strength {paths.cfg_strength:g}.")
    return " ".join(lines)


def plot_trajectories(paths: ToyTrajectories, max_lines: int = 150):
    """Matplotlib Figure: trajectories over the data (left) and the flow-time grid the solver walked (right)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 4.2), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=(1.6, 1))
    data, data_labels = sample_data(2000, torch.Generator().manual_seed(1))
    colours = np.array(["tab:blue", "tab:orange"])
    left.scatter(data[:, 0], data[:, 1], s=2, c=colours[data_labels.numpy()], alpha=0.12)
    for index in range(min(max_lines, paths.points.shape[1])):
        left.plot(paths.points[:, index, 0], paths.points[:, index, 1], color="0.4", linewidth=0.5, alpha=0.5)
    left.scatter(paths.points[0, :, 0], paths.points[0, :, 1], s=3, c="black", label="noise (t = 0)")
    left.scatter(paths.samples[:, 0], paths.samples[:, 1], s=5, c="tab:green", label="samples (t = 1)")
    left.set_aspect("equal")
    left.set_title("trajectories (blue blobs: class 0, orange: class 1)", fontsize=10)
    left.legend(loc="lower left", fontsize=8)
    steps = np.arange(len(paths.flow_times))
    right.plot(steps, paths.flow_times, "o-", markersize=3, label="this grid")
    right.plot(steps, steps / steps[-1], "--", color="0.6", label="uniform")
    right.set_xlabel("step")
    right.set_ylabel("flow time t (0 noise, 1 data)")
    right.set_title("time grid (sway < 0: denser near noise)", fontsize=10)
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    return figure


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the 2-D toy and plot its trajectories.")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--solver", choices=SOLVERS, default="euler")
    parser.add_argument("--sway", type=float, default=-1.0)
    parser.add_argument("--cfg", type=float, default=0.0)
    parser.add_argument("--label", type=int, default=0)
    parser.add_argument("--out", default="toy_flow.png")
    args = parser.parse_args(argv)
    paths = sample_trajectories(get_toy_flow().model, num_steps=args.steps, solver=args.solver, sway=args.sway,
                                cfg_strength=args.cfg, label=args.label)
    plot_trajectories(paths).savefig(args.out, dpi=100)
    print(describe(paths).replace("**", ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
