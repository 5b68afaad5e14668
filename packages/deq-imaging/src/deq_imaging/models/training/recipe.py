"""The training recipes of the imaging models, written once and run through deq-core's ``fit``.

The implicit model follows the warm-started bank recipe (see
:class:`~deq_imaging.models.config.ImagingConfig`): a :class:`~deq_core.training.WarmStartCache` keeps each
bank entry's latest iterate, so a visit continues the iteration instead of solving from scratch:
``warm_iters`` gradient-free solver iterations of the DEQ from the cached iterate, then (``jfb``, the default)
one differentiable cell application whose output is the loss's prediction, i.e. the Jacobian-free gradient
at the iterate; with the other backward modes the DEQ's own solve (at most ``max_iter`` iterations) from there
is differentiated. Entries restart from the start image only when the bank replaces their patch, so training
sees shallow and deep iterates alike and the learned map stays stable when it is iterated long after
training. The cache stores the prediction in torch and the warm iterate (before the differentiable step) in
JAX, as the two trainers always have (``Backend.stores_prediction``).

``fit`` saves the model, optimizer, schedule, RNG and the cache with every checkpoint; the bank replays its
refreshes (:meth:`~deq_imaging.models.training.bank.PatchBank.visit`), so an interrupted run resumed from its
``checkpoint_dir`` ends with the same weights as one that never stopped.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from array_api_compat import array_namespace

from deq_core.training import TrainConfig, WarmStartCache
from deq_imaging.backends import Backend, TrainingRun
from deq_imaging.datasets.problem import Problem
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.training.bank import PatchBank


def _mse(prediction: Any, x: Any) -> Any:
    return array_namespace(prediction).mean((prediction - x) ** 2)


def _config(steps: int, seed: int, checkpoint_dir: str | None, checkpoint_every: int | None) -> TrainConfig:
    """The trainer's run: ``steps`` steps, loss logged 20 times, checkpoints where asked."""
    return TrainConfig(
        steps=steps,
        seed=seed,
        log_every=max(1, steps // 20),
        checkpoint_dir=checkpoint_dir,
        checkpoint_every=checkpoint_every,
    )


def train_implicit(
    backend: Backend,
    model: Any,
    problem: Problem,
    cfg: ImagingConfig,
    seed: int,
    checkpoint_dir: str | None = None,
    checkpoint_every: int | None = None,
) -> tuple[Any, dict]:
    """Fit the DEQ on the warm-started bank; return the model and the loss history and iterate ages seen."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 3)
    cell = model.deq.cell
    warm = WarmStartCache(len(bank), lambda data: backend.start(cell, data[1]))
    per_visit = cfg.warm_iters + (1 if backend.stores_prediction else 0)
    ages: list[int] = []

    def sample(step: int, _: Any) -> tuple[np.ndarray, tuple[Any, Any]]:
        index, replaced = bank.visit(step, seed, cfg.batch, cfg.refresh, cfg.refresh_every)
        warm.reset(replaced)
        ages.extend(int(a) * per_visit for a in warm.age[index])
        return index, (backend.array(bank.x[index]), backend.array(bank.y[index]))

    def loss_fn(net: Any, data: tuple[Any, Any], z0: Any) -> tuple[Any, Any]:
        x, y = data
        z0 = backend.stop_gradient(lambda: net.deq(y, z0, max_iter=cfg.warm_iters)[0])
        z = net.deq.cell(z0, y) if cfg.backward == "jfb" else net.deq(y, z0)[0]
        return _mse(z, x), (z if backend.stores_prediction else z0)

    config = _config(cfg.steps, seed, checkpoint_dir, checkpoint_every)
    model, history = backend.fit(TrainingRun(model, cfg.lr, cfg.lr_schedule, loss_fn, sample, config, warm))
    log = {"losses": history.losses}
    if ages:
        log |= {"mean_age": float(np.mean(ages)), "max_age": int(np.max(ages))}
    return model, log


def train_explicit(
    backend: Backend,
    model: Any,
    problem: Problem,
    cfg: ImagingConfig,
    seed: int,
    checkpoint_dir: str | None = None,
    checkpoint_every: int | None = None,
) -> tuple[Any, dict]:
    """Fit a model of ``y`` alone (the explicit twin, or the unrolled network) on the same kind of bank
    (fresh patches at the same rate), backpropagating through the whole model."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 5)

    def sample(step: int, _: Any) -> tuple[Any, Any]:
        index, _ = bank.visit(step, seed + 1, cfg.batch, cfg.refresh, cfg.refresh_every)
        return backend.array(bank.x[index]), backend.array(bank.y[index])

    def loss_fn(net: Any, batch: tuple[Any, Any]) -> Any:
        x, y = batch
        return _mse(net(y), x)

    config = _config(cfg.explicit_steps, seed + 1, checkpoint_dir, checkpoint_every)
    model, history = backend.fit(TrainingRun(model, cfg.lr, cfg.lr_schedule, loss_fn, sample, config))
    return model, {"losses": history.losses}
