"""Seeded noise models (numpy): additive Gaussian and Poisson (photon-count) noise."""

from __future__ import annotations

import numpy as np


def _per_image(value: float | np.ndarray, n: int, what: str) -> np.ndarray:
    """Broadcast a scalar or an (N,) array of per-image levels to shape (N, 1, 1, 1)."""
    v = np.asarray(value, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(n, float(v))
    if v.shape != (n,):
        raise ValueError(f"{what}: expected a scalar or an array of shape ({n},), got shape {v.shape}")
    return v.reshape(n, 1, 1, 1)


def gaussian_noise(x: np.ndarray, sigma: float | np.ndarray, seed: int) -> np.ndarray:
    """Return ``x + sigma * N(0, 1)`` for x of shape (N, ...); ``sigma`` scalar or per image (N,)."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"gaussian_noise: expected shape (N, C, H, W), got {x.shape}")
    s = _per_image(sigma, x.shape[0], "gaussian_noise sigma")
    if np.any(s < 0):
        raise ValueError("gaussian_noise: sigma must be >= 0")
    rng = np.random.default_rng(seed)
    return (x + s * rng.standard_normal(x.shape)).astype(x.dtype, copy=False)


def poisson_noise(x: np.ndarray, peak: float | np.ndarray, seed: int) -> np.ndarray:
    """Return ``Poisson(peak * x) / peak`` for x of shape (N, ...); ``peak`` = photons at intensity 1."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"poisson_noise: expected shape (N, C, H, W), got {x.shape}")
    p = _per_image(peak, x.shape[0], "poisson_noise peak")
    if np.any(p <= 0):
        raise ValueError("poisson_noise: peak must be > 0")
    rng = np.random.default_rng(seed)
    return (rng.poisson(p * np.clip(x, 0, None)) / p).astype(x.dtype, copy=False)
