"""Plots of code sequences: figures with the right panels, labels and units."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from omnitalker.frontend.face.codes import CODE_NAMES, VISUAL_CODE_DIM  # noqa: E402
from omnitalker.frontend.face.plots import (
    plot_code_heatmap,
    plot_gaze_traces,
    plot_motion_heatmap,
    plot_pose_traces,
)


def _codes(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    time = np.arange(frames) / 30.0
    codes = 0.01 * rng.normal(size=(frames, VISUAL_CODE_DIM))
    codes[:, 0] = np.radians(15.0) * np.sin(2 * np.pi * 0.5 * time)  # yaw
    codes[:, 1] = np.radians(5.0) * np.sin(2 * np.pi * 1.3 * time)  # pitch
    return codes


def test_pose_traces_reference_beside_generated():
    fig = plot_pose_traces(_codes(90, 0), _codes(60, 1), fps=30.0)
    axes = fig.get_axes()
    assert len(axes) == 6
    assert [axes[i].get_ylabel() for i in (0, 2, 4)] == ["yaw (deg)", "pitch (deg)", "roll (deg)"]
    assert axes[0].get_title() == "reference head pose" and axes[1].get_title() == "generated head pose"
    assert axes[-1].get_xlabel() == "time (s)"
    # The yaw line is in degrees and spans the 3 s of the reference.
    x, y = axes[0].get_lines()[0].get_data()
    assert x[-1] == pytest.approx(89 / 30.0) and np.abs(y).max() == pytest.approx(15.0, rel=0.02)


def test_motion_heatmap_counts_every_frame():
    fig = plot_motion_heatmap([_codes(90, 0), _codes(60, 1)], labels=["reference", "generated"])
    panels = [a for a in fig.get_axes() if a.get_xlabel()]
    assert [a.get_xlabel() for a in panels] == ["yaw (deg)", "yaw (deg)"]
    assert panels[0].get_ylabel() == "pitch (deg)"
    assert panels[0].get_images()[0].get_array().sum() == 90
    fig = plot_motion_heatmap(_codes(30, 2), kind="translation")
    assert fig.get_axes()[0].get_xlabel() == "tx (face units)"
    with pytest.raises(ValueError, match="kind"):
        plot_motion_heatmap(_codes(30, 2), kind="scale")


def test_gaze_and_code_heatmaps():
    fig = plot_gaze_traces([_codes(40, 0)], labels=["ref"])
    axes = fig.get_axes()
    assert axes[0].get_ylabel() == "gaze x (eye widths)" and axes[1].get_xlabel() == "time (s)"
    assert len(axes[0].get_lines()) == 2  # left and right eye
    fig = plot_code_heatmap(_codes(40, 0))
    axis = fig.get_axes()[0]
    assert [t.get_text() for t in axis.get_yticklabels()] == list(CODE_NAMES)
    assert axis.get_xlabel() == "time (s)"
    with pytest.raises(ValueError, match="visual codes"):
        plot_code_heatmap(np.zeros((10, 5)))
