"""Common interface of the classical baselines: numpy (N, C, H, W) in and out, one weight, grid tuning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from deq_imaging.evaluation.metrics import psnr


@dataclass(frozen=True)
class TuneResult:
    """Best weight of a grid search and the mean validation PSNR (dB) of every grid value."""

    best: float
    scores: dict[float, float]


class Baseline:
    """A classical restoration method with one ``weight``; subclasses implement ``_restore``."""

    grid: tuple[float, ...] = ()

    def __init__(self, weight: float) -> None:
        """Store the regularisation weight."""
        self.weight = weight

    def _restore(self, y: np.ndarray) -> np.ndarray:
        """Restore one observation (C, h, w) -> (C, H, W) float64."""
        raise NotImplementedError

    def _check(self, y: np.ndarray) -> np.ndarray:
        """Validate the observations (N, C, h, w)."""
        y = np.asarray(y)
        if y.ndim != 4 or not np.issubdtype(y.dtype, np.floating):
            raise ValueError(
                f"{type(self).__name__}: expected float observations (N, C, H, W), got {y.dtype} {y.shape}"
            )
        return y

    def __call__(self, y: np.ndarray) -> np.ndarray:
        """Estimates of shape (N, C, H, W), float32, one per observation."""
        y = self._check(y)
        out = [
            self._restore(yi.astype(np.float64))
            for yi in tqdm(y, desc=type(self).__name__, disable=None, leave=False)
        ]
        return np.stack(out).astype(np.float32)

    def tune(self, y_val: np.ndarray, x_val: np.ndarray, grid: Sequence[float] | None = None) -> TuneResult:
        """Pick the weight of ``grid`` (default: the class grid) with the best mean validation PSNR."""
        values = tuple(self.grid if grid is None else grid)
        if not values:
            raise ValueError(f"{type(self).__name__}.tune: empty grid")
        scores = {}
        for w in tqdm(values, desc=f"tune {type(self).__name__}", disable=None, leave=False):
            self.weight = w
            scores[w] = float(np.mean(psnr(self(y_val), x_val)))
        self.weight = max(scores, key=scores.__getitem__)
        return TuneResult(self.weight, scores)
