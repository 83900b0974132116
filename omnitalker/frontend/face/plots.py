"""Plots of visual-code sequences (matplotlib Figures; nothing is shown or saved here).

    fig = plot_pose_traces(reference_codes, generated_codes, fps=30)   # paper Fig. 2
    fig = plot_motion_heatmap([reference_codes, generated_codes])      # paper Fig. 3
    fig = plot_gaze_traces(codes, fps=30)
    fig = plot_code_heatmap(codes, fps=30)
    fig.savefig("pose.png")

Codes are (T, 58) arrays in the layout of omnitalker/frontend/face/codes.py.
"""

from __future__ import annotations

import numpy as np

from .codes import CODE_FPS, CODE_NAMES, EYE_SLICE, VISUAL_CODE_DIM

ROTATION_LABELS = ("yaw", "pitch", "roll")
HEATMAP_BINS = 40
HEATMAP_MIN_SPAN_DEG = 10.0  # smallest half-range of the heatmap axes, so tiny motion is not blown up
HEATMAP_MIN_SPAN_FACE = 0.1  # the same for translations, in face-size units
PANEL_SIZE = (4.0, 2.2)  # inches per subplot


def _figure(rows: int, cols: int, **kwargs):
    from matplotlib.figure import Figure  # no pyplot: no global state, works headless

    fig = Figure(figsize=(PANEL_SIZE[0] * cols, PANEL_SIZE[1] * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, **kwargs)
    return fig, axes


def _codes(codes, name: str) -> np.ndarray:
    codes = np.asarray(codes, np.float64)
    if codes.ndim != 2 or codes.shape[1] != VISUAL_CODE_DIM or len(codes) == 0:
        raise ValueError(f"{name} must be visual codes (T, {VISUAL_CODE_DIM}) with T >= 1, got {codes.shape}")
    return codes


def _series(codes, labels, name: str) -> tuple[list[np.ndarray], list[str]]:
    if isinstance(codes, np.ndarray) and codes.ndim == 2:
        codes = [codes]
    codes = [_codes(c, f"{name}[{i}]") for i, c in enumerate(codes)]
    labels = list(labels) if labels is not None else [f"sequence {i + 1}" for i in range(len(codes))]
    if len(labels) != len(codes):
        raise ValueError(f"{len(labels)} labels for {len(codes)} code sequences")
    return codes, labels


def plot_pose_traces(
    reference_codes, generated_codes=None, fps: float = CODE_FPS, generated_fps: float | None = None
):
    """Yaw, pitch and roll (degrees) over time: reference beside generated (paper Fig. 2)."""
    sequences = [("reference", _codes(reference_codes, "reference_codes"), fps)]
    if generated_codes is not None:
        sequences.append(("generated", _codes(generated_codes, "generated_codes"), generated_fps or fps))
    fig, axes = _figure(3, len(sequences), sharey="row")
    for col, (title, codes, rate) in enumerate(sequences):
        time = np.arange(len(codes)) / rate
        degrees = np.degrees(codes[:, :3])
        for row, label in enumerate(ROTATION_LABELS):
            axis = axes[row, col]
            axis.plot(time, degrees[:, row], linewidth=1.0)
            axis.set_ylabel(f"{label} (deg)")
            axis.grid(alpha=0.3)
        axes[0, col].set_title(f"{title} head pose")
        axes[-1, col].set_xlabel("time (s)")
    return fig


def plot_motion_heatmap(codes, labels=None, kind: str = "rotation", bins: int = HEATMAP_BINS):
    """Cumulative head-motion heatmap per sequence (paper Fig. 3): where the head spent its frames.

    kind="rotation": yaw vs pitch in degrees; kind="translation": tx vs ty in face-size units.
    All panels share the axes so styles compare directly.
    """
    if kind not in ("rotation", "translation"):
        raise ValueError(f"kind must be 'rotation' or 'translation', got {kind!r}")
    codes, labels = _series(codes, labels, "codes")
    if kind == "rotation":
        points = [np.degrees(c[:, [0, 1]]) for c in codes]
        names, min_span = ("yaw (deg)", "pitch (deg)"), HEATMAP_MIN_SPAN_DEG
    else:
        points = [c[:, [3, 4]] for c in codes]
        names, min_span = ("tx (face units)", "ty (face units)"), HEATMAP_MIN_SPAN_FACE
    everything = np.concatenate(points)
    centre = 0.5 * (everything.min(0) + everything.max(0))
    half = np.maximum(0.5 * (everything.max(0) - everything.min(0)) * 1.1, min_span)
    edges = [np.linspace(centre[d] - half[d], centre[d] + half[d], bins + 1) for d in range(2)]
    fig, axes = _figure(1, len(codes))
    for axis, label, xy in zip(axes[0], labels, points, strict=True):
        counts, _, _ = np.histogram2d(xy[:, 0], xy[:, 1], bins=edges)
        image = axis.imshow(
            counts.T,
            origin="lower",
            extent=(edges[0][0], edges[0][-1], edges[1][0], edges[1][-1]),
            aspect="auto",
            cmap="magma",
        )
        fig.colorbar(image, ax=axis, label="frames")
        axis.set_title(f"{label} ({len(xy)} frames)")
        axis.set_xlabel(names[0])
        axis.set_ylabel(names[1])
    return fig


def plot_gaze_traces(codes, fps: float = CODE_FPS, labels=None):
    """Horizontal and vertical iris position of both eyes over time (eye widths from the eye centre)."""
    codes, labels = _series(codes, labels, "codes")
    fig, axes = _figure(2, 1, sharex=True)
    eye_names = CODE_NAMES[EYE_SLICE]
    for label, sequence in zip(labels, codes, strict=True):
        time = np.arange(len(sequence)) / fps
        eyes = sequence[:, EYE_SLICE]
        for row, direction in enumerate("xy"):
            for column, name in enumerate(eye_names):
                if name.endswith(direction):
                    axes[row, 0].plot(time, eyes[:, column], linewidth=1.0, label=f"{label}: {name}")
    axes[0, 0].set_ylabel("gaze x (eye widths)")
    axes[1, 0].set_ylabel("gaze y (eye widths)")
    axes[1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title("iris position relative to the eye opening")
    for axis in axes[:, 0]:
        axis.legend(fontsize="x-small", loc="upper right")
        axis.grid(alpha=0.3)
    return fig


def plot_code_heatmap(codes, fps: float = CODE_FPS, normalize: bool = True):
    """Every code dimension over time (rows named by CODE_NAMES); z-scored per dimension by default."""
    codes = _codes(codes, "codes")
    values = codes
    if normalize:
        spread = codes.std(0)
        values = (codes - codes.mean(0)) / np.where(spread > 0, spread, 1.0)
    fig, axes = _figure(1, 1)
    fig.set_size_inches(10.0, 9.0)
    axis = axes[0, 0]
    duration = len(codes) / fps
    image = axis.imshow(
        values.T,
        aspect="auto",
        interpolation="nearest",
        cmap="coolwarm",
        extent=(0.0, duration, VISUAL_CODE_DIM - 0.5, -0.5),
    )
    axis.set_yticks(np.arange(VISUAL_CODE_DIM))
    axis.set_yticklabels(CODE_NAMES, fontsize=5)
    axis.set_xlabel("time (s)")
    axis.set_ylabel("code dimension")
    axis.set_title("visual codes")
    fig.colorbar(image, ax=axis, label="z-score" if normalize else "value")
    return fig
