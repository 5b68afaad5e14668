"""Low-frequency sine perturbations of a grid input, the directions of the empirical Lipschitz estimate."""

from __future__ import annotations

import numpy as np


def sine_directions(n: int, modes: int) -> np.ndarray:
    """``sin(k pi x) sin(l pi y)`` for ``1 <= k, l <= modes`` on an n x n grid of [0,1]^2: (modes^2, n, n)."""
    if n < 3:
        raise ValueError(f"grid size must be at least 3 for interior sine modes, got {n}")
    if isinstance(modes, bool) or not isinstance(modes, int) or not 1 <= modes <= n - 2:
        raise ValueError(f"modes must be an integer in [1, {n - 2}] for an {n}x{n} grid, got {modes!r}")
    axis = np.linspace(0.0, 1.0, n)
    waves = np.sin(np.pi * np.arange(1, modes + 1)[:, None] * axis[None, :])
    return np.einsum("ki,lj->klij", waves, waves).reshape(modes * modes, n, n)
