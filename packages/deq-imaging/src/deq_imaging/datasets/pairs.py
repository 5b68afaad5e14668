"""Degraded pairs ``y = A x + noise`` made on the fly with seeded noise, in seeded shuffled batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from deq_imaging.operators.noise import gaussian_noise, poisson_noise


class DegradedPairs:
    """Clean images x (N, C, H, W) degraded as ``y = forward(x) + noise`` (seeded by seed, epoch, index).

    ``forward`` is a numpy map such as a :mod:`deq_imaging.operators.reference` operator's ``forward``;
    ``noise`` is ``"gaussian"`` (``level`` = sigma) or ``"poisson"`` (``level`` = peak photon count);
    ``level`` may be a (low, high) range, drawn uniformly per image (blind training).
    """

    def __init__(
        self,
        clean: np.ndarray,
        forward: Callable[[np.ndarray], np.ndarray],
        noise: str = "gaussian",
        level: float | tuple[float, float] = 0.1,
        seed: int = 0,
    ) -> None:
        """Pairs over ``clean`` images (float32 (N, C, H, W))."""
        clean = np.asarray(clean)
        if clean.ndim != 4 or clean.dtype != np.float32:
            raise ValueError(
                f"clean images: expected float32 of shape (N, C, H, W), got {clean.dtype} {clean.shape}"
            )
        if noise not in ("gaussian", "poisson"):
            raise ValueError(f"noise must be 'gaussian' or 'poisson', got {noise!r}")
        self.clean, self.forward, self.noise, self.seed = clean, forward, noise, seed
        self.level = (float(level), float(level)) if np.isscalar(level) else tuple(float(v) for v in level)
        if len(self.level) != 2 or self.level[0] > self.level[1]:
            raise ValueError(f"noise level: expected a number or a (low, high) range, got {level}")

    def __len__(self) -> int:
        """Number of clean images."""
        return len(self.clean)

    def batch(self, index: np.ndarray, epoch: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) for images ``index``; the noise depends only on (seed, epoch, first index)."""
        index = np.asarray(index, dtype=np.int64)
        x = self.clean[index]
        rng = np.random.default_rng((self.seed, epoch, int(index[0]) if index.size else 0))
        lo, hi = self.level
        levels = rng.uniform(lo, hi, size=len(index)) if hi > lo else np.full(len(index), lo)
        ax = np.asarray(self.forward(x), dtype=np.float32)
        noise_seed = int(rng.integers(2**63))
        y = (
            gaussian_noise(ax, levels, noise_seed)
            if self.noise == "gaussian"
            else poisson_noise(ax, levels, noise_seed)
        )
        return x, y.astype(np.float32)

    def batches(
        self, batch_size: int, epoch: int = 0, shuffle: bool = True
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Iterate over (x, y) batches of one epoch (order shuffled by (seed, epoch))."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        order = (
            np.random.default_rng((self.seed, epoch)).permutation(len(self))
            if shuffle
            else np.arange(len(self))
        )
        for i in range(0, len(order), batch_size):
            yield self.batch(order[i : i + batch_size], epoch)
