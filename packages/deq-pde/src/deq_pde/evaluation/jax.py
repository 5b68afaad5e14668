"""JAX side of a PDE run: train FNO-DEQ and explicit FNOs, then quality, Lipschitz and time per budget."""

from __future__ import annotations

import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from deq_core.jax.analysis import lipschitz_summary, scaling_analysis
from deq_pde.evaluation.perturbations import sine_directions
from deq_pde.evaluation.protocol import RunSettings, Split
from deq_pde.models.jax import FNO, FNODEQ, budget_fn, count_params, predict, relative_l2, train


def _mean_error(pred: jax.Array, target: jax.Array) -> float:
    return float(relative_l2(pred, target).mean())


def _seconds_per_sample(fn, inputs: jax.Array) -> float:
    """Wall time of ``fn(inputs)`` per sample, after a warm-up call that compiles it."""
    jax.block_until_ready(fn(inputs))
    start = time.perf_counter()
    jax.block_until_ready(fn(inputs))
    return (time.perf_counter() - start) / inputs.shape[0]


def run_models(split: Split, settings: RunSettings, device: str, seed: int) -> dict[str, Any]:
    """Train the implicit and explicit models on ``split`` and analyse them (see :class:`RunSettings`)."""
    platform = "gpu" if device == "cuda" else device
    with jax.default_device(jax.devices(platform)[0]):
        return _run(split, settings, seed)


def _run(split: Split, settings: RunSettings, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n = split.train_inputs.shape[-1]
    as_array = lambda a: jnp.asarray(a, dtype=jnp.float32)
    a_train, u_train = as_array(split.train_inputs), as_array(split.train_targets)
    a_test, u_test = as_array(split.test_inputs), as_array(split.test_targets)
    implicit = FNODEQ(n, settings.model, rng)
    explicit = {depth: FNO(n, settings.model, rng, depth) for depth in settings.explicit_depths}
    implicit, loss = train(implicit, a_train, u_train, settings.train, seed, "train FNO-DEQ")
    losses = {"implicit": loss}
    for depth in settings.explicit_depths:
        explicit[depth], losses[f"fno{depth}"] = train(
            explicit[depth], a_train, u_train, settings.train, seed, f"train FNO depth {depth}"
        )

    directions = as_array(sine_directions(n, settings.sine_modes))
    scaling = scaling_analysis(
        budget_fn(implicit),
        a_test,
        u_test,
        settings.budgets,
        _mean_error,
        directions,
        settings.scales,
        lipschitz_samples=settings.lipschitz_samples,
        power_iters=settings.power_iters,
        seed=seed,
    )
    timing = a_test[: settings.timing_samples]
    seconds = [
        _seconds_per_sample(lambda a, t=t: predict(implicit, a, steps=t), timing) for t in settings.budgets
    ]
    shallow = eqx.filter_jit(explicit[1])
    explicit_lipschitz = lipschitz_summary(
        shallow, a_test[: settings.lipschitz_samples], directions, settings.scales, settings.power_iters, seed
    )
    shown = a_test[: settings.figure_samples]
    return {
        "scaling": scaling,
        "seconds_per_budget": seconds,
        "explicit": {
            depth: {
                "error": _mean_error(predict(model, a_test), u_test),
                "seconds": _seconds_per_sample(lambda a, m=model: predict(m, a), timing),
                "params": count_params(model),
            }
            for depth, model in explicit.items()
        },
        "explicit_lipschitz": explicit_lipschitz,
        "params": count_params(implicit),
        "train_loss": losses,
        "figure": np.asarray(predict(implicit, shown, steps=max(settings.budgets)), dtype=np.float64),
    }
