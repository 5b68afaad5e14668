"""What a backend run receives: the train/test split (numpy) and the model, training and analysis settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deq_core.errors import ConfigError
from deq_pde.models.settings import ModelSettings, TrainSettings


@dataclass(frozen=True)
class Split:
    """Training and test grids: inputs (coefficient or forcing) and FEM solutions, each (N, n, n)."""

    train_inputs: np.ndarray
    train_targets: np.ndarray
    test_inputs: np.ndarray
    test_targets: np.ndarray

    def __post_init__(self) -> None:
        for name in ("train_inputs", "train_targets", "test_inputs", "test_targets"):
            value = getattr(self, name)
            if value.ndim != 3 or value.shape[1] != value.shape[2]:
                raise ValueError(f"Split.{name} must have shape (N, n, n), got {value.shape}")
        if (
            self.train_inputs.shape != self.train_targets.shape
            or self.test_inputs.shape != self.test_targets.shape
        ):
            raise ValueError("Split inputs and targets must have matching shapes")


@dataclass(frozen=True)
class RunSettings:
    """Models, training, test-time budgets and the Lipschitz / timing / figure sample counts of a run."""

    model: ModelSettings
    train: TrainSettings
    explicit_depths: tuple[int, ...]
    budgets: tuple[int, ...]
    sine_modes: int
    scales: tuple[float, ...]
    lipschitz_samples: int
    power_iters: int
    timing_samples: int
    figure_samples: int

    def __post_init__(self) -> None:
        if 1 not in self.explicit_depths or any(d < 1 for d in self.explicit_depths):
            raise ConfigError(
                f"explicit_depths must hold depth 1 (the same-size FNO), got {self.explicit_depths}"
            )
        for name in ("sine_modes", "lipschitz_samples", "timing_samples", "figure_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"RunSettings.{name} must be >= 1, got {getattr(self, name)}")
        if self.power_iters < 0:
            raise ConfigError(f"RunSettings.power_iters must be >= 0, got {self.power_iters}")
