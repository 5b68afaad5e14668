"""Backend-free model and training settings shared by the torch and JAX FNOs, and the grid channels.

The FNO-DEQ's solver options are one :class:`deq_core.config.SolveOptions`, validated by deq-core when it
is built (:func:`deq_solve`); every mistake in these settings is a :class:`deq_core.errors.ConfigError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deq_core.config import Phantom, SolveOptions, solve_options
from deq_core.errors import ConfigError


def deq_solve(
    solver: Any = "picard", train_iters: int = 4, phantom_steps: int = 3, phantom_tau: float = 0.8
) -> SolveOptions:
    """The FNO-DEQ's solve: ``train_iters`` iterations of ``solver`` (no early stop), phantom gradient."""
    return solve_options(
        solver=solver, backward=Phantom(phantom_steps, phantom_tau), tol=0.0, max_iter=train_iters
    )


def _positive_ints(owner: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(owner, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{type(owner).__name__}.{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class ModelSettings:
    """FNO shape: channel ``width``, Fourier ``modes`` kept per axis, projection width; the DEQ's contraction
    bound and its solve options."""

    width: int = 32
    modes: int = 12
    projection: int = 128
    contraction: float = 0.8
    solve: SolveOptions = field(default_factory=deq_solve)

    def __post_init__(self) -> None:
        _positive_ints(self, ("width", "modes", "projection"))
        if not self.contraction > 0:
            raise ConfigError(f"ModelSettings.contraction must be positive, got {self.contraction}")
        if not isinstance(self.solve, SolveOptions):
            raise ConfigError(f"ModelSettings.solve must be a SolveOptions, got {type(self.solve).__name__}")


MODEL_KEYS = (
    "width",
    "modes",
    "projection",
    "contraction",
    "solver",
    "train_iters",
    "phantom_steps",
    "phantom_tau",
)
"""The keys of a run config that :func:`model_settings` reads."""


def model_settings(config: Mapping[str, Any]) -> ModelSettings:
    """The :class:`ModelSettings` of a run config's :data:`MODEL_KEYS` (a model folder is rebuilt from it)."""
    width, modes, projection, contraction, *solve = (config[key] for key in MODEL_KEYS)
    return ModelSettings(width, modes, projection, contraction, deq_solve(*solve))


@dataclass(frozen=True)
class TrainSettings:
    """AdamW with cosine decay for ``epochs`` passes over the data in minibatches of ``batch``."""

    epochs: int = 20
    batch: int = 20
    lr: float = 2e-3
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        _positive_ints(self, ("epochs", "batch"))
        if not (self.lr > 0 and self.weight_decay >= 0):
            raise ConfigError(
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
