"""The common result of every classical solver: solution, iteration count and residual history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SolveResult:
    """A solver's ``solution``, ``iterations`` taken, relative ``residuals`` (initial first), convergence."""

    solution: np.ndarray
    iterations: int
    residuals: np.ndarray
    converged: bool
