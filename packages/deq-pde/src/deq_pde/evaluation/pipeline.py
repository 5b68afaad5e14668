"""One PDE run on any backend: train FNO-DEQ and explicit FNOs, then quality, Lipschitz and time per budget.

The pipeline is written once; a :class:`Backend` (from ``deq_pde.evaluation.torch.backend`` or
``deq_pde.evaluation.jax.backend``) supplies what a framework does its own way: arrays on the device and
back to numpy, seeding, the models and their trainer, jitted or no-grad prediction, device synchronisation
and deq-core's analysis functions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from deq_pde.evaluation.perturbations import sine_directions
from deq_pde.evaluation.protocol import RunSettings, Split
from deq_pde.models.fourier import mean_error
from deq_pde.models.settings import ModelSettings, TrainSettings

Array = Any
Model = Any


@dataclass(frozen=True)
class Backend:
    """What :func:`run_models` asks of a framework; ``deq_pde.evaluation.{torch,jax}.backend(device)``."""

    on_device: Callable[[], contextlib.AbstractContextManager]
    """The context the run happens in (e.g. a default device)."""
    seed: Callable[[int], Any]
    """Seed the models' initialisation."""
    array: Callable[[np.ndarray], Array]
    """A numpy array as a float32 array on the device."""
    to_numpy: Callable[[Array], np.ndarray]
    """An array's values on the host."""
    models: Callable[[int, ModelSettings, tuple[int, ...]], tuple[Model, dict[int, Model]]]
    """``(n, settings, depths) ->`` a fresh FNO-DEQ and an explicit FNO per depth, in this order."""
    train: Callable[[Model, Array, Array, TrainSettings, int], tuple[Model, list[float]]]
    """``(model, inputs, targets, settings, seed) -> (trained model, mean loss per epoch)``."""
    budget: Callable[[Model], Callable[[Array, int], Array]]
    """The FNO-DEQ's ``(a, steps) -> prediction`` after exactly ``steps`` iterations, for the analysis."""
    forward: Callable[[Model], Callable[[Array], Array]]
    """An explicit FNO's ``a -> prediction``, for the analysis."""
    predict: Callable[..., Array]
    """``(model, inputs, steps=None)``: batched prediction without gradients (of the budget given steps)."""
    count_params: Callable[[Model], int]
    """Number of trained parameters."""
    warmup: Callable[[Array], Array]
    """The inputs of the call that precedes a timed one (it compiles or warms caches)."""
    wait: Callable[[Array], Any]
    """Block until an array is computed."""
    scaling_analysis: Callable[..., dict[str, Any]]
    """``deq_core.<backend>.analysis.scaling_analysis``."""
    lipschitz_summary: Callable[..., dict[str, float]]
    """``deq_core.<backend>.analysis.lipschitz_summary``."""


def seconds_per_sample(backend: Backend, fn: Callable[[Array], Array], inputs: Array) -> float:
    """Wall time of ``fn(inputs)`` per sample, after a warm-up call."""
    backend.wait(fn(backend.warmup(inputs)))
    start = time.perf_counter()
    backend.wait(fn(inputs))
    return (time.perf_counter() - start) / inputs.shape[0]


def run_models(split: Split, settings: RunSettings, backend: Backend, seed: int) -> dict[str, Any]:
    """Train the implicit and explicit models on ``split`` and analyse them (see :class:`RunSettings`).

    ``models`` maps each explicit FNO's depth, and None for the FNO-DEQ, to the trained model;
    ``normalisation`` is the (input mean, input std, output mean, output std) they fitted on the training set.
    """
    with backend.on_device():
        backend.seed(seed)
        n = split.train_inputs.shape[-1]
        a_train, u_train = backend.array(split.train_inputs), backend.array(split.train_targets)
        a_test, u_test = backend.array(split.test_inputs), backend.array(split.test_targets)
        implicit, explicit = backend.models(n, settings.model, settings.explicit_depths)
        implicit, loss = backend.train(implicit, a_train, u_train, settings.train, seed)
        losses = {"implicit": loss}
        for depth in settings.explicit_depths:
            explicit[depth], losses[f"fno{depth}"] = backend.train(
                explicit[depth], a_train, u_train, settings.train, seed
            )

        directions = backend.array(sine_directions(n, settings.sine_modes))
        scaling = backend.scaling_analysis(
            backend.budget(implicit),
            a_test,
            u_test,
            settings.budgets,
            mean_error,
            directions,
            settings.scales,
            lipschitz_samples=settings.lipschitz_samples,
            power_iters=settings.power_iters,
            seed=seed,
        )
        timing = a_test[: settings.timing_samples]
        seconds = [
            seconds_per_sample(backend, lambda a, t=t: backend.predict(implicit, a, steps=t), timing)
            for t in settings.budgets
        ]
        explicit_lipschitz = backend.lipschitz_summary(
            backend.forward(explicit[1]),
            a_test[: settings.lipschitz_samples],
            directions,
            settings.scales,
            settings.power_iters,
            seed,
        )
        figure = backend.predict(implicit, a_test[: settings.figure_samples], steps=max(settings.budgets))
        return {
            "scaling": scaling,
            "seconds_per_budget": seconds,
            "explicit": {
                depth: {
                    "error": mean_error(backend.predict(model, a_test), u_test),
                    "seconds": seconds_per_sample(backend, lambda a, m=model: backend.predict(m, a), timing),
                    "params": backend.count_params(model),
                }
                for depth, model in explicit.items()
            },
            "explicit_lipschitz": explicit_lipschitz,
            "params": backend.count_params(implicit),
            "train_loss": losses,
            "figure": backend.to_numpy(figure).astype(np.float64),
            "models": {None: implicit, **explicit},
            "normalisation": backend.to_numpy(implicit.codec.scales).tolist(),
        }
