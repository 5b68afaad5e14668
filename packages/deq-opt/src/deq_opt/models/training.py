"""One training path for the LP models of both backends: deq-core's ``fit``, warm-started per LP instance.

``train`` in :mod:`deq_opt.models.torch` and :mod:`deq_opt.models.jax` builds its framework's optimizer and
batch sampler and hands ``fit`` the pieces defined here: the run's :class:`~deq_core.training.TrainConfig`,
the loss, the training batches and, for an implicit model trained with warm starts, a
:class:`~deq_core.training.WarmStartCache` of each training LP's last equilibrium (saved with every
checkpoint, so an interrupted run resumes exactly).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deq_core.training import TrainConfig, WarmStartCache
from deq_opt.models.layers import supervised_loss

__all__ = ["TrainRun", "loss_function", "train_config", "training_batch", "warm_cache"]

Arrays = tuple[dict[str, Any], Any, Any]  # (graph arrays, scaled x*, scaled y*) of the training set


def train_config(steps: int, seed: int, **options: Any) -> TrainConfig:
    """``steps`` optimizer steps seeded by ``seed``, on one device; ``options``: TrainConfig's others."""
    return TrainConfig(steps=steps, seed=seed, data_parallel=False, **options)


@dataclass(frozen=True)
class TrainRun:
    """How a model trains: ``config`` (steps, seed, checkpoints), ``batch`` instances drawn with replacement
    per step, Adam's peak learning rate ``lr`` (cosine decay), the dual error's weight in the loss, and
    whether an implicit model's solves start from each instance's last equilibrium (``warm_start``)."""

    config: TrainConfig
    batch: int
    lr: float
    dual_weight: float = 1.0
    warm_start: bool = False


def warm_cache(model: Any, size: int, implicit: bool, warm_start: bool) -> WarmStartCache | None:
    """The equilibria of the ``size`` training LPs for an ``implicit`` model with ``warm_start``, else None.

    An LP not seen yet (or whose last equilibrium was not finite) starts from the model's zero state.
    """
    if not (implicit and warm_start):
        return None
    return WarmStartCache(size, lambda data: model.zero_state(data[0]))


def training_batch(arrays: Arrays, index: Any, warm: WarmStartCache | None) -> Any:
    """The batch of the training LPs ``index``: ``(graph, x, y)``, as ``(index, batch)`` with warm starts."""
    graph, x, y = arrays
    batch = ({key: value[index] for key, value in graph.items()}, x[index], y[index])
    return batch if warm is None else (index, batch)


@functools.cache
def loss_function(dual_weight: float, warm: bool) -> Callable[..., Any]:
    """The supervised loss ``(model, batch)``, or with ``warm`` ``(model, batch, z0) -> (loss, z*)``.

    One function per setting, so repeated JAX fits with the same settings reuse one compiled step.
    """

    def loss(model: Any, batch: Arrays) -> Any:
        graph, x, y = batch
        px, py = model(graph)
        return supervised_loss(px, py, x, y, dual_weight)

    def warm_loss(model: Any, batch: Arrays, z0: Any) -> tuple[Any, Any]:
        graph, x, y = batch
        px, py, z = model.solve(graph, z0)
        return supervised_loss(px, py, x, y, dual_weight), z

    return warm_loss if warm else loss
