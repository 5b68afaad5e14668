"""Backend-free model and training settings shared by the torch and JAX FNOs, and the grid channels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelSettings:
    """FNO shape: channel ``width``, Fourier ``modes`` kept per axis, projection width, DEQ solve options."""

    width: int = 32
    modes: int = 12
    projection: int = 128
    solver: str = "picard"
    train_iters: int = 4
    phantom_steps: int = 3
    phantom_tau: float = 0.8
    contraction: float = 0.8

    def __post_init__(self) -> None:
        for name in ("width", "modes", "projection", "train_iters", "phantom_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelSettings.{name} must be an integer >= 1, got {value!r}")
        if not 0.0 < self.phantom_tau <= 1.0:
            raise ValueError(f"ModelSettings.phantom_tau must be in (0, 1], got {self.phantom_tau}")
        if not self.contraction > 0:
            raise ValueError(f"ModelSettings.contraction must be positive, got {self.contraction}")


@dataclass(frozen=True)
class TrainSettings:
    """Adam with cosine decay for ``epochs`` passes over the data in minibatches of ``batch``."""

    epochs: int = 20
    batch: int = 20
    lr: float = 2e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainSettings.{name} must be an integer >= 1, got {value!r}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError(
                f"TrainSettings needs lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )

    def steps(self, num_samples: int) -> int:
        """Optimizer steps for ``num_samples`` training samples (``epochs`` full passes)."""
        return self.epochs * -(-num_samples // self.batch)


def grid_channels(n: int) -> np.ndarray:
    """The (2, n, n) coordinate channels ``(x, y)`` on [0, 1]^2 that FNOs append to their input."""
    if n < 2:
        raise ValueError(f"grid size must be at least 2, got {n}")
    axis = np.linspace(0.0, 1.0, n)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([x, y])
