"""Small FNO settings and inputs shared by the torch and JAX model tests."""

import numpy as np

from deq_pde.models import ModelSettings
from deq_pde.models.settings import deq_solve

SETTINGS = ModelSettings(width=6, modes=3, projection=10, solve=deq_solve(train_iters=3, phantom_steps=2))


def inputs(batch: int = 3, n: int = 9, seed: int = 0) -> np.ndarray:
    """A batch of two-valued (Darcy-like) coefficient grids (batch, n, n)."""
    return np.random.default_rng(seed).choice([3.0, 12.0], (batch, n, n))


def targets(a: np.ndarray) -> np.ndarray:
    """A smooth-enough function of the inputs for the loss to fall."""
    return a[:, ::-1] * 0.01 + 0.1
