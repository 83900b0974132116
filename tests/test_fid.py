"""Fréchet distance, E-FID and P-FID against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from omnitalker.eval.fid import e_fid, fid_from_samples, frechet_distance, p_fid
from omnitalker.frontend.face.codes import EXP_SLICE, POSE_SLICE, VISUAL_CODE_DIM


def test_identical_gaussians_have_zero_distance():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(5, 5))
    sigma = basis @ basis.T
    mu = rng.normal(size=5)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    samples = rng.normal(size=(200, 5))
    assert fid_from_samples(samples, samples) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_covariances_match_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, -1.0, 0.5])
    std1, std2 = np.array([1.0, 0.5, 2.0]), np.array([2.0, 0.5, 0.1])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((std1 - std2) ** 2)
    got = frechet_distance(mu1, np.diag(std1**2), mu2, np.diag(std2**2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_rotated_covariances_match_closed_form():
    # Same spectrum rotated by an orthogonal Q: d^2 = |dmu|^2 + sum(l1 + l2) - 2 tr((S1 S2)^1/2).
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    variances = np.array([4.0, 1.0, 0.25, 0.01])
    sigma = q @ np.diag(variances) @ q.T
    # Commuting matrices (same eigenvectors): the trace term is sum(sqrt(l1 * l2)).
    sigma_scaled = q @ np.diag(variances * 9.0) @ q.T
    expected = np.sum((np.sqrt(variances) - 3.0 * np.sqrt(variances)) ** 2)
    assert frechet_distance(np.zeros(4), sigma, np.zeros(4), sigma_scaled) == pytest.approx(
        expected, rel=1e-9
    )


def test_samples_converge_to_closed_form_and_singular_covariance_is_finite():
    rng = np.random.default_rng(2)
    a = rng.normal(0.0, 1.0, size=(20000, 2))
    b = rng.normal([1.0, 0.0], [2.0, 1.0], size=(20000, 2))
    assert fid_from_samples(a, b) == pytest.approx(1.0 + 1.0, rel=0.05)
    # Fewer frames than dimensions (a short clip): singular covariances still give a finite value.
    short = rng.normal(size=(5, 40))
    value = fid_from_samples(short, short + 0.5)
    assert np.isfinite(value) and value == pytest.approx(40 * 0.25, rel=1e-6)


def test_e_fid_and_p_fid_use_their_own_dimensions():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(300, VISUAL_CODE_DIM))
    moved_pose = reference.copy()
    moved_pose[:, POSE_SLICE] += 1.0
    assert e_fid(reference, moved_pose) == pytest.approx(0.0, abs=1e-9)
    assert p_fid(reference, moved_pose) == pytest.approx(6.0, rel=1e-9)
    moved_exp = reference.copy()
    moved_exp[:, EXP_SLICE] += 0.5
    assert p_fid(reference, moved_exp) == pytest.approx(0.0, abs=1e-9)
    assert e_fid(reference, moved_exp) == pytest.approx(48 * 0.25, rel=1e-9)
    # A list of clips counts as one distribution of frames.
    assert e_fid([reference[:150], reference[150:]], reference) == pytest.approx(0.0, abs=1e-9)


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="at least 2 frames"):
        fid_from_samples(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="dimensions differ"):
        fid_from_samples(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="visual codes"):
        e_fid(np.zeros((10, 12)), np.zeros((10, 12)))
    with pytest.raises(ValueError, match="NaN"):
        fid_from_samples(np.full((4, 2), np.nan), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="shapes do not match"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
