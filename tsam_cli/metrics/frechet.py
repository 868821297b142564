"""Fréchet distance between two Gaussians fitted to feature sets (FID / VFID).

For X1 ~ N(mu1, S1), X2 ~ N(mu2, S2) the squared Fréchet (2-Wasserstein) distance is

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

(Dowson & Landau 1982; used as FID by Heusel et al. 2017, as VFID by Wang et al. 2018
"Video-to-Video Synthesis", and written as eq. 10 of the TSAM paper, which prints
``||mu - mu'||`` without the square; the official code, pytorch-fid's
``calculate_frechet_distance``, squares it, and so do we).

Numerics (scipy is not a dependency): ``Tr((S1 S2)^(1/2))`` is computed without forming the
square root of the non-symmetric product.  With A = S1^(1/2) (symmetric PSD, from
``eigh``), S1 S2 = A (A S2 A) A^(-1) is similar to the symmetric PSD matrix A S2 A, so
both have the same eigenvalues lambda_i >= 0 and ``Tr((S1 S2)^(1/2)) = sum sqrt(lambda_i)``.
All in float64; tiny negative eigenvalues from round-off are clipped to 0.  This also works
for singular (rank-deficient) covariances, e.g. 1024-d I3D features of fewer than 1025
videos, where pytorch-fid's ``scipy.linalg.sqrtm`` may need its ``eps`` fallback.
"""

from __future__ import annotations

import numpy as np


def _sym(m: np.ndarray) -> np.ndarray:
    return (m + m.T) / 2


def sqrtm_psd(m: np.ndarray) -> np.ndarray:
    """Principal square root of a symmetric positive semi-definite matrix (float64),
    via eigen-decomposition; negative round-off eigenvalues are clipped to 0."""
    w, v = np.linalg.eigh(_sym(np.asarray(m, dtype=np.float64)))
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    """``Tr((S1 S2)^(1/2))`` for symmetric PSD S1, S2 (see module docstring)."""
    a = sqrtm_psd(s1)
    m = _sym(a @ np.asarray(s2, dtype=np.float64) @ a)
    lam = np.linalg.eigvalsh(m)
    return float(np.sqrt(np.clip(lam, 0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Args:
        mu1, mu2: mean vectors, shape (D,).
        sigma1, sigma2: covariance matrices, shape (D, D), symmetric PSD.

    Returns:
        float >= 0 (tiny negative round-off is clipped to 0).
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"inconsistent shapes: mu {mu1.shape}/{mu2.shape}, sigma {s1.shape}/{s2.shape}"
        )
    diff = mu1 - mu2
    d = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))
    return max(d, 0.0)


def fit_gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance (``np.cov(rowvar=False)``, divisor N-1, as the official
    TSAM/FFVI/E2FGVI code) of ``features`` with shape (N, D), N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    m1, s1 = fit_gaussian(real)
    m2, s2 = fit_gaussian(fake)
    return frechet_distance(m1, s1, m2, s2)
