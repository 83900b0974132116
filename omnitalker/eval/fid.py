"""Fréchet distances between visual-code distributions: E-FID (expression + eye) and P-FID (pose).

    from omnitalker.eval.fid import e_fid, p_fid
    e_fid(reference_codes, generated_codes)   # codes (T, 58) or a list of such arrays

The paper (OmniTalker, Sec. 4) scores style mimicking by the Fréchet distance between the per-frame
coefficients of the reference and the generated videos: expression + eye for E-FID, head pose for
P-FID. Each side is summarised by a Gaussian (mean, covariance) and

    d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)).

tr((S1 S2)^(1/2)) is computed as the sum of square roots of the eigenvalues of the symmetric
positive semi-definite S1^(1/2) S2 S1^(1/2) (same spectrum as S1 S2). This avoids the complex
results and failures of a general matrix square root (scipy.linalg.sqrtm) on the singular
covariances that short clips give (fewer frames than dimensions).
"""

from __future__ import annotations

import numpy as np

from omnitalker.frontend.face.codes import EXP_SLICE, EYE_SLICE, POSE_SLICE, VISUAL_CODE_DIM

MIN_SAMPLES = 2  # a covariance needs at least two frames


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix (negative round-off clipped)."""
    values, vectors = np.linalg.eigh(0.5 * (matrix + matrix.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    dim = mu1.shape[0]
    if mu1.shape != (dim,) or mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(
            f"shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, sigma2 {sigma2.shape}"
        )
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN/inf")
    root1 = _psd_sqrt(sigma1)
    cross = np.linalg.eigvalsh(root1 @ sigma2 @ root1)  # spectrum of sigma1 @ sigma2
    trace_sqrt = np.sqrt(np.clip(cross, 0.0, None)).sum()
    diff = mu1 - mu2
    distance = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt
    return float(max(distance, 0.0))


def _stack(samples, name: str) -> np.ndarray:
    if isinstance(samples, (list, tuple)):
        samples = np.concatenate([np.asarray(s, np.float64).reshape(len(s), -1) for s in samples], 0)
    samples = np.asarray(samples, np.float64)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2:
        raise ValueError(f"{name} must be (N, D) samples, got shape {samples.shape}")
    if len(samples) < MIN_SAMPLES:
        raise ValueError(f"{name} has {len(samples)} samples; at least {MIN_SAMPLES} frames are needed")
    if not np.isfinite(samples).all():
        raise ValueError(f"{name} contains NaN/inf")
    return samples


def fid_from_samples(samples1, samples2) -> float:
    """Fréchet distance between the Gaussians fitted to two sample sets (N1, D) and (N2, D)."""
    a, b = _stack(samples1, "samples1"), _stack(samples2, "samples2")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"sample dimensions differ: {a.shape[1]} vs {b.shape[1]}")
    return frechet_distance(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


def _code_columns(codes, name: str, columns: np.ndarray) -> np.ndarray:
    codes = _stack(codes, name)
    if codes.shape[1] != VISUAL_CODE_DIM:
        raise ValueError(f"{name} must be visual codes (T, {VISUAL_CODE_DIM}), got {codes.shape}")
    return codes[:, columns]


EXPRESSION_EYE_COLUMNS = np.r_[EXP_SLICE, EYE_SLICE]
POSE_COLUMNS = np.r_[POSE_SLICE]


def e_fid(reference_codes, generated_codes) -> float:
    """E-FID: Fréchet distance of the expression + eye codes (lower = closer facial dynamics)."""
    return fid_from_samples(
        _code_columns(reference_codes, "reference_codes", EXPRESSION_EYE_COLUMNS),
        _code_columns(generated_codes, "generated_codes", EXPRESSION_EYE_COLUMNS),
    )


def p_fid(reference_codes, generated_codes) -> float:
    """P-FID: Fréchet distance of the head-pose codes (lower = closer head-motion style)."""
    return fid_from_samples(
        _code_columns(reference_codes, "reference_codes", POSE_COLUMNS),
        _code_columns(generated_codes, "generated_codes", POSE_COLUMNS),
    )
