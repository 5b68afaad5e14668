"""What the imaging pipeline needs from a framework, behind one small adapter per backend.

The pipeline (:mod:`deq_imaging.evaluation.pipeline`) and the training recipes
(:mod:`deq_imaging.models.training.recipe`) are written once against :class:`Backend`;
:mod:`deq_imaging.backends.torch` and :mod:`deq_imaging.backends.jax` implement it. :func:`load` imports the
one asked for on first use, so nothing here imports a framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from deq_core.training import History, TrainConfig, WarmStartCache

BACKENDS = ("torch", "jax")


@dataclass(frozen=True)
class TrainingRun:
    """One call of deq-core's ``fit`` as a recipe describes it, for :meth:`Backend.fit` to run.

    The optimizer is Adam at ``lr``, cosine-annealed to zero over ``config.steps`` unless ``schedule`` is
    ``"constant"``; ``loss_fn``, ``batches`` and ``warm`` are as ``fit`` takes them.
    """

    model: Any
    lr: float
    schedule: str
    loss_fn: Callable
    batches: Callable
    config: TrainConfig
    warm: WarmStartCache | None = None


class Backend(Protocol):
    """A framework as the pipeline sees it: arrays, gradients, compilation, seeded models, training."""

    name: str
    models: ModuleType  # deq_imaging.models.torch or deq_imaging.models.jax
    stores_prediction: bool  # the warm-start cache keeps the prediction (torch) or the warm iterate (JAX)

    def array(self, a: np.ndarray) -> Any:
        """A copy of the numpy ``a`` in the backend's dtype, on its device."""

    def numpy(self, a: Any) -> np.ndarray:
        """A numpy copy of the backend array ``a``."""

    def no_grad(self) -> AbstractContextManager:
        """A block in which nothing is recorded for gradients."""

    def stop_gradient(self, fn: Callable[[], Any]) -> Any:
        """``fn()``, with no gradient flowing through it."""

    def jit(self, fn: Callable) -> Callable:
        """``fn`` compiled where the framework compiles (JAX), else ``fn`` itself."""

    def scope(self) -> AbstractContextManager:
        """The block in which the run computes (the JAX default device)."""

    def cells(self, spec: Any, cfg: Any, seed: int, count: int, stream: int = 0) -> list[Any]:
        """``count`` freshly initialised cells, their weights drawn from ``(seed, stream)``."""

    def place(self, model: Any) -> Any:
        """``model`` on the backend's device and in its dtype."""

    def inference(self, model: Any) -> Any:
        """``model`` in inference mode."""

    def start(self, cell: Any, y: Any) -> Any:
        """The starting images ``cell.init(y)``."""

    def step(self, cell: Any, z: Any, y: Any) -> Any:
        """One cell application ``cell(z, y)``."""

    def fit(self, run: TrainingRun) -> tuple[Any, History]:
        """Train ``run.model`` with deq-core's ``fit``; return the trained model and its history."""

    def lipschitz_summary(
        self, fn: Callable, x: Any, directions: Any, scales: Any, power_iters: int = 20, seed: int = 0
    ) -> dict[str, float]:
        """deq-core's finite-difference (and power-iteration) Lipschitz summary of ``fn`` at ``x``."""

    def local_lipschitz(self, fn: Callable, x: Any, iters: int = 20, seed: int = 0) -> Any:
        """deq-core's per-sample power-iteration estimate of ``fn``'s local Lipschitz constant at ``x``."""

    def count_parameters(self, model: Any) -> int:
        """Number of trainable scalars of ``model``."""


def load(name: str, device: str = "cpu", dtype: str = "float32") -> Backend:
    """The adapter of backend ``name`` (``torch`` or ``jax``) computing on ``device`` in ``dtype``."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    module = importlib.import_module(f"deq_imaging.backends.{name}")
    return module.Adapter(device, dtype)
