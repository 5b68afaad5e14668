"""Train and evaluate the imaging models in JAX/Equinox with deq-core's trainer and scaling analysis.

The same warm-started bank recipe as :mod:`deq_imaging.experiment.torch`. The trainer's jitted step sees
only the batch, so the warm iterations run in the sampler with the latest model, which the trainer hands
over through ``evaluate`` after every step.
"""

from __future__ import annotations

import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from deq_core.config import Implicit as ImplicitBackward
from deq_core.jax.analysis import lipschitz_summary
from deq_core.jax.train import fit
from deq_core.training import TrainConfig
from deq_imaging.evaluation import fourier_directions, psnr, ssim
from deq_imaging.experiment.bank import PatchBank
from deq_imaging.experiment.config import ImagingConfig
from deq_imaging.experiment.problem import Problem
from deq_imaging.models.jax import Explicit, Implicit, build_cell, count_parameters


def backward_option(cfg: ImagingConfig) -> Any:
    """The backward mode: implicit differentiation with at most ``adjoint_iters`` Picard adjoint steps."""
    if cfg.backward == "implicit":
        return ImplicitBackward(solver="picard", tol=cfg.tol, max_iter=cfg.adjoint_iters)
    return cfg.backward


@eqx.filter_jit
def _advance(cell: eqx.Module, z: jax.Array, y: jax.Array, steps: int) -> jax.Array:
    return jax.lax.fori_loop(0, steps, lambda _, state: cell(state, y), z)


@eqx.filter_jit
def _start(cell: eqx.Module, y: jax.Array) -> jax.Array:
    return cell.init(y)


def train_implicit(model: Implicit, problem: Problem, cfg: ImagingConfig, seed: int) -> tuple[Implicit, dict]:
    """Fit the DEQ on the warm-started bank; returns the model, the loss history and the ages seen."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 3)
    latest = {"model": model}
    cache = {"z": np.array(_start(model.deq.cell, jnp.asarray(bank.y)))}
    age = np.zeros(len(bank), dtype=np.int64)
    per_visit = cfg.warm_iters + cfg.train_iters
    ages: list[int] = []

    def reset(index: np.ndarray) -> None:
        if len(index):
            cache["z"][index] = np.asarray(_start(latest["model"].deq.cell, jnp.asarray(bank.y[index])))
            age[index] = 0

    def sample(step: int, key: jax.Array) -> tuple[jax.Array, ...]:
        rng = np.random.default_rng((seed, step))
        reset(bank.refresh(cfg.refresh, rng))
        index = bank.sample(cfg.batch, rng)
        reset(index[age[index] + per_visit > cfg.max_iter])
        ages.extend(int(a) for a in age[index])
        y = jnp.asarray(bank.y[index])
        z = _advance(latest["model"].deq.cell, jnp.asarray(cache["z"][index]), y, cfg.warm_iters)
        cache["z"][index] = np.asarray(z)
        age[index] += per_visit
        return jnp.asarray(bank.x[index]), y, z

    def loss_fn(net: Implicit, batch: tuple[jax.Array, ...]) -> jax.Array:
        x, y, z0 = batch
        z, _ = net.deq(y, z0, max_iter=cfg.train_iters)
        return jnp.mean((z - x) ** 2)

    def keep(current: Implicit, step: int) -> None:
        latest["model"] = current

    config = TrainConfig(steps=cfg.steps, seed=seed, log_every=max(1, cfg.steps // 20), eval_every=1)
    model, history = fit(model, optax.adam(cfg.lr), loss_fn, sample, config, evaluate=keep)
    return model, {"losses": history.losses, "mean_age": float(np.mean(ages)), "max_age": int(np.max(ages))}


def train_explicit(model: Explicit, problem: Problem, cfg: ImagingConfig, seed: int) -> tuple[Explicit, dict]:
    """Fit the one-shot model on the same kind of bank (fresh patches at the same rate)."""
    bank = PatchBank(problem, cfg.bank_size, cfg.patch_size, seed + 5)

    def sample(step: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        rng = np.random.default_rng((seed + 1, step))
        bank.refresh(cfg.refresh, rng)
        index = bank.sample(cfg.batch, rng)
        return jnp.asarray(bank.x[index]), jnp.asarray(bank.y[index])

    def loss_fn(net: Explicit, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        return jnp.mean((net(y) - x) ** 2)

    config = TrainConfig(steps=cfg.explicit_steps, seed=seed + 1, log_every=max(1, cfg.explicit_steps // 20))
    model, history = fit(model, optax.adam(cfg.lr), loss_fn, sample, config)
    return model, {"losses": history.losses}


def _scores(output: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    output = np.clip(output, 0.0, 1.0)
    return float(np.mean(psnr(output, clean))), float(np.mean(ssim(output, clean)))


def per_budget(model: Implicit, y: jax.Array, clean: np.ndarray, budgets: list[int], keep: set[int]) -> dict:
    """PSNR/SSIM of ``y_t`` for every budget, the outputs at ``keep`` and the final relative step."""
    cell = model.deq.cell
    picard = type(model.deq.options.solver).__name__ == "Picard"
    budget = eqx.filter_jit(lambda m, a, t: m.budget(a, t))
    quality, similarity, outputs = [], [], {}
    z, previous, done = _start(cell, y), None, 0
    for t in budgets:
        if picard:
            previous = _advance(cell, z, y, t - done - 1) if t - done > 1 else z
            z = _advance(cell, previous, y, 1)
        else:
            previous = budget(model, y, t - 1) if t > 1 else _start(cell, y)
            z = budget(model, y, t)
        done = t
        out = np.asarray(z)
        q, s = _scores(out, clean)
        quality.append(q)
        similarity.append(s)
        if t in keep:
            outputs[t] = out
    step = np.linalg.norm(np.asarray(z - previous).reshape(len(z), -1), axis=1)
    residual = float(
        np.max(step / np.maximum(np.linalg.norm(np.asarray(z).reshape(len(z), -1), axis=1), 1e-12))
    )
    return {"psnr": quality, "ssim": similarity, "outputs": outputs, "residual": residual}


def train_and_evaluate(problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict[str, Any]:
    """Train both models, then measure quality and Lipschitz estimates per budget on the test set."""
    with jax.default_device(jax.devices("gpu" if device == "cuda" else device)[0]):
        return _train_and_evaluate(problem, cfg, seed)


def _train_and_evaluate(problem: Problem, cfg: ImagingConfig, seed: int) -> dict[str, Any]:
    seconds: dict[str, float] = {}
    key_implicit, key_explicit = jax.random.split(jax.random.key(seed))
    solve = {"solver": cfg.solver, "backward": backward_option(cfg), "tol": cfg.tol, "max_iter": cfg.max_iter}
    implicit = Implicit(build_cell(problem.spec, cfg, key_implicit), **solve)
    explicit = Explicit(build_cell(problem.spec, cfg, key_explicit))

    start = time.perf_counter()
    implicit, implicit_log = train_implicit(implicit, problem, cfg, seed)
    seconds["train_implicit"] = time.perf_counter() - start
    start = time.perf_counter()
    explicit, explicit_log = train_explicit(explicit, problem, cfg, seed)
    seconds["train_explicit"] = time.perf_counter() - start
    implicit, explicit = eqx.nn.inference_mode(implicit), eqx.nn.inference_mode(explicit)

    start = time.perf_counter()
    test_y = jnp.asarray(problem.test_y)
    budgets = list(cfg.budgets)
    curve = per_budget(
        implicit, test_y, problem.test_x, budgets, {*cfg.grid_budgets, cfg.max_iter, budgets[-1]}
    )
    run_explicit = eqx.filter_jit(lambda m, a: m(a))
    explicit_out = np.asarray(run_explicit(explicit, test_y))
    start_images = np.asarray(_start(implicit.deq.cell, test_y))
    explicit_psnr, explicit_ssim = _scores(explicit_out, problem.test_x)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    reference = problem.spec.reference(problem.test_x.shape[2:])
    gains = reference.geometry.otf if problem.spec.kind == "blur" else None
    directions, direction_info = fourier_directions(
        reference, problem.test_x.shape[1], cfg.percentiles, gains
    )
    y_lip = test_y[: cfg.lipschitz_samples]
    lipschitz: dict[str, Any] = {"max": [], "mean": []} | ({"local": []} if cfg.power_iters else {})
    for t in budgets:
        fn = jax.jit(lambda a, t=t: implicit.budget(a, t))
        summary = lipschitz_summary(fn, y_lip, jnp.asarray(directions), cfg.scales, cfg.power_iters, seed)
        for key in lipschitz:
            lipschitz[key].append(summary[key])
    lipschitz["explicit"] = lipschitz_summary(
        jax.jit(lambda a: explicit(a)), y_lip, jnp.asarray(directions), cfg.scales, cfg.power_iters, seed
    )
    seconds["lipschitz"] = time.perf_counter() - start

    cell = implicit.deq.cell
    learned = {"sigma": float(jnp.exp(cell.log_sigma))}
    learned |= (
        {"mu": float(jnp.exp(cell.log_mu))}
        if hasattr(cell, "log_mu")
        else {"eta": float(jnp.exp(cell.log_eta))}
    )
    return {
        "iterations": budgets,
        "psnr": curve["psnr"],
        "ssim": curve["ssim"],
        "residual": curve["residual"],
        "outputs": curve["outputs"],
        "start_images": start_images,
        "explicit": {"psnr": explicit_psnr, "ssim": explicit_ssim, "output": explicit_out},
        "lipschitz": lipschitz,
        "directions": direction_info,
        "params": {"implicit": count_parameters(implicit), "explicit": count_parameters(explicit)},
        "train": {"implicit": implicit_log, "explicit": explicit_log},
        "learned": learned,
        "seconds": seconds,
    }
