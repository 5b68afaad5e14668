"""``PatchBank``: the training bank of clean patches and their fixed noisy measurements (numpy).

Every training step draws from ``default_rng((stream, step))``: first, every ``every`` steps, ``refresh``
entries are replaced by new patches (the trainer forgets their cached iterates), then the step's batch.
:meth:`PatchBank.visit` replays the refreshes of steps it has not seen, so a run resumed from a checkpoint
holds the same patches as one that never stopped.
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
        self.steps = 0

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

    def visit(
        self, step: int, stream: int, batch: int, refresh: int, every: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(batch indices, replaced indices)`` of training step ``step`` (see the module doc)."""
        if step < self.steps:
            raise ValueError(f"PatchBank.visit: step {step} is before step {self.steps}, already drawn")
        for past in range(self.steps, step):
            self._refresh_at(past, stream, refresh, every)
        rng, replaced = self._refresh_at(step, stream, refresh, every)
        return self.sample(batch, rng), replaced

    def _refresh_at(
        self, step: int, stream: int, refresh: int, every: int
    ) -> tuple[np.random.Generator, np.ndarray]:
        rng = np.random.default_rng((stream, step))
        replaced = self.refresh(refresh, rng) if step % every == 0 else np.zeros(0, dtype=np.int64)
        self.steps = step + 1
        return rng, replaced
