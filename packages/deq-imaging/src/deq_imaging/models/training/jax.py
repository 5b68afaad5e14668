"""Train the imaging models in JAX/Equinox with deq-core's trainer.

The same warm-started bank recipe as :mod:`deq_imaging.models.training.torch`. The trainer's jitted step
sees only the batch, so the sampler runs the no-grad part of a visit (``warm_iters`` iterations of the
DEQ's solver from the cached iterate, compiled once) with the latest model, which the trainer hands over
through ``evaluate`` after every step; the loss then takes the differentiable step (``jfb``: one cell
application; other backward modes: the DEQ's own solve from the warm iterate).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_core.config import Implicit as ImplicitBackward
from deq_core.jax.train import fit
from deq_core.training import TrainConfig
from deq_imaging.datasets.problem import Problem
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.jax import Explicit, ImplicitNet, Unrolled
from deq_imaging.models.training.bank import PatchBank


def backward_option(cfg: ImagingConfig) -> Any:
    """The backward mode: ``jfb``/``phantom``/``unroll`` by name, or implicit differentiation whose adjoint
    runs at most ``adjoint_iters`` Picard steps."""
    if cfg.backward == "implicit":
        return ImplicitBackward(solver="picard", tol=cfg.tol, max_iter=cfg.adjoint_iters)
    return cfg.backward


def optimizer(cfg: ImagingConfig, steps: int) -> optax.GradientTransformation:
    """Adam at ``cfg.lr`` over ``steps`` steps, cosine-annealed to zero unless ``lr_schedule`` is constant."""
    if cfg.lr_schedule == "constant":
        return optax.adam(cfg.lr)
    return optax.adam(optax.cosine_decay_schedule(cfg.lr, steps))


@eqx.filter_jit
def start_images(cell: eqx.Module, y: jax.Array) -> jax.Array:
    """The iteration's starting images ``cell.init(y)`` (jitted)."""
    return cell.init(y)


def train_implicit(
    model: ImplicitNet, problem: Problem, cfg: ImagingConfig, seed: int
) -> tuple[ImplicitNet, dict]:
    """Fit the DEQ on the warm-started bank; returns the model, the loss history and the iterate ages seen."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 3)
    latest = {"model": model}
    cache = np.array(start_images(model.deq.cell, jnp.asarray(bank.y)))
    age = np.zeros(len(bank), dtype=np.int64)
    ages: list[int] = []
    warm = eqx.filter_jit(lambda net, y, z: net.deq(y, z, max_iter=cfg.warm_iters)[0])

    def reset(index: np.ndarray) -> None:
        if len(index):
            cache[index] = np.asarray(start_images(latest["model"].deq.cell, jnp.asarray(bank.y[index])))
            age[index] = 0

    def sample(step: int, key: jax.Array) -> tuple[jax.Array, ...]:
        rng = np.random.default_rng((seed, step))
        if step % cfg.refresh_every == 0:
            reset(bank.refresh(cfg.refresh, rng))
        index = bank.sample(cfg.batch, rng)
        ages.extend(int(a) for a in age[index])
        y = jnp.asarray(bank.y[index])
        z = warm(latest["model"], y, jnp.asarray(cache[index]))
        cache[index] = np.asarray(z)
        age[index] += cfg.warm_iters
        reset(index[~np.isfinite(cache[index].reshape(len(index), -1)).all(1)])
        return jnp.asarray(bank.x[index]), y, z

    def loss_fn(net: ImplicitNet, batch: tuple[jax.Array, ...]) -> jax.Array:
        x, y, z0 = batch
        z = net.deq.cell(z0, y) if cfg.backward == "jfb" else net.deq(y, z0)[0]
        return jnp.mean((z - x) ** 2)

    def keep(current: ImplicitNet, step: int) -> None:
        latest["model"] = current

    config = TrainConfig(steps=cfg.steps, seed=seed, log_every=max(1, cfg.steps // 20), eval_every=1)
    model, history = fit(model, optimizer(cfg, cfg.steps), loss_fn, sample, config, evaluate=keep)
    return model, {"losses": history.losses, "mean_age": float(np.mean(ages)), "max_age": int(np.max(ages))}


def train_explicit(
    model: Explicit | Unrolled, problem: Problem, cfg: ImagingConfig, seed: int
) -> tuple[Explicit | Unrolled, dict]:
    """Fit a model of ``y`` alone (the explicit twin, or the unrolled network) on the same kind of bank
    (fresh patches at the same rate), backpropagating through the whole model."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 5)

    def sample(step: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        rng = np.random.default_rng((seed + 1, step))
        if step % cfg.refresh_every == 0:
            bank.refresh(cfg.refresh, rng)
        index = bank.sample(cfg.batch, rng)
        return jnp.asarray(bank.x[index]), jnp.asarray(bank.y[index])

    def loss_fn(net: Explicit | Unrolled, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        return jnp.mean((net(y) - x) ** 2)

    config = TrainConfig(steps=cfg.explicit_steps, seed=seed + 1, log_every=max(1, cfg.explicit_steps // 20))
    model, history = fit(model, optimizer(cfg, cfg.explicit_steps), loss_fn, sample, config)
    return model, {"losses": history.losses}
