"""``PatchBank``: the training bank of clean patches and their fixed noisy measurements (numpy).

The backend keeps one cached iterate per bank entry (a warm start for the next visit); :meth:`refresh`
replaces a few entries with new patches and returns their indices so the backend resets those iterates.
"""

from __future__ import annotations

import numpy as np

from deq_imaging.datasets.problem import Problem


class PatchBank:
    """``size`` clean patches ``x`` (N, C, p, p) with measurements ``y``; entries are refreshed over time."""

    def __init__(self, problem: Problem, size: int, patch: int, seed: int) -> None:
        """Draw the initial bank (seeded)."""
        self.problem, self.patch, self.seed = problem, patch, seed
        self.x = problem.patches(size, patch, 0)
        self.y = problem.measure(self.x, seed)
        self.draws = 0

    def __len__(self) -> int:
        """Number of entries."""
        return len(self.x)

    def refresh(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Replace ``count`` random entries by new patches and measurements; return their indices."""
        if count == 0:
            return np.zeros(0, dtype=np.int64)
        self.draws += 1
        index = rng.choice(len(self), size=count, replace=False)
        x = self.problem.patches(count, self.patch, self.draws)
        self.x[index] = x
        self.y[index] = self.problem.measure(x, self.seed + 7919 * self.draws)
        return index

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of a training batch (distinct entries)."""
        return rng.choice(len(self), size=count, replace=False)
