"""The imaging pipeline in JAX/Equinox: train both models, then quality and Lipschitz estimates per budget.

As in :mod:`deq_imaging.evaluation.torch`, the Picard solver's budgets come from one pass of the iteration:
one jitted cell application (compiled once per input shape) is called ``max(budgets)`` times and the
iterates at the budgets are recorded, so no budget triggers a new compilation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from deq_core.analysis.lipschitz import summarize_ratios
from deq_core.jax.analysis import lipschitz_summary, local_lipschitz
from deq_imaging.datasets.problem import Problem
from deq_imaging.evaluation.metrics import mean_scores, scored
from deq_imaging.evaluation.perturbations import fourier_directions
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.jax import Explicit, ImplicitNet, Unrolled, build_cell, count_parameters
from deq_imaging.models.training.jax import backward_option, start_images, train_explicit, train_implicit


@eqx.filter_jit
def _apply(cell: eqx.Module, z: jax.Array, y: jax.Array) -> jax.Array:
    return cell(z, y)


def _picard(model: ImplicitNet) -> bool:
    solver = model.deq.options.solver
    return type(solver).__name__ == "Picard" and float(solver.damping) == 1.0


def _norms(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(a, dtype=np.float64).reshape(len(a), -1), axis=1)


def per_budget(
    model: ImplicitNet, y: jax.Array, clean: np.ndarray, budgets: Sequence[int], keep: set[int]
) -> dict:
    """PSNR/SSIM of ``y_t`` for every budget, the outputs at ``keep`` and the final relative step."""
    cell = model.deq.cell
    budget = eqx.filter_jit(lambda m, a, t: m.budget(a, t))
    quality, similarity, outputs = [], [], {}
    z, previous, done = start_images(cell, y), None, 0
    for t in budgets:
        if _picard(model):
            for _ in range(t - done):
                previous, z = z, _apply(cell, z, y)
        else:
            previous, z = (budget(model, y, t - 1) if t > 1 else start_images(cell, y)), budget(model, y, t)
        done = t
        out = np.asarray(z)
        q, s = mean_scores(out, clean)
        quality.append(q)
        similarity.append(s)
        if t in keep:
            outputs[t] = out
    residual = float(np.max(_norms(z - previous) / np.maximum(_norms(z), 1e-12)))
    return {"psnr": quality, "ssim": similarity, "outputs": outputs, "residual": residual}


def lipschitz_per_budget(
    model: ImplicitNet, y: jax.Array, directions: np.ndarray, scales: Sequence[float], budgets: Sequence[int]
) -> dict[str, list[float]]:
    """``max``/``mean`` finite-difference ratios ``||y_t(y + s d) - y_t(y)|| / s`` per budget, over the
    unit-normalised ``directions`` (k, C, h, w) and ``scales``, in one Picard pass over all inputs."""
    cell, n = model.deq.cell, y.shape[0]
    unit = directions / _norms(directions).reshape(-1, 1, 1, 1)
    inputs = jnp.concatenate([y] + [y + s * jnp.asarray(d, y.dtype) for s in scales for d in unit])
    out: dict[str, list[float]] = {"max": [], "mean": []}
    z = start_images(cell, inputs)
    for t in range(1, max(budgets) + 1):
        z = _apply(cell, z, inputs)
        if t in budgets:
            values = np.asarray(z, dtype=np.float64)
            moved = values[n:].reshape(len(scales), len(unit), *values[:n].shape)
            ratios = np.linalg.norm((moved - values[:n]).reshape(len(scales), len(unit), n, -1), axis=3)
            summary = summarize_ratios(ratios / np.asarray(scales).reshape(-1, 1, 1))
            out["max"].append(summary["max"])
            out["mean"].append(summary["mean"])
    return out


def train_unrolled(problem: Problem, cfg: ImagingConfig, seed: int) -> dict[str, Any]:
    """Build (seeded apart from the other models), train and score on the test set the unrolled network of
    ``cfg.unrolled_stages`` untied cells."""
    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), 2), cfg.unrolled_stages)
    model = Unrolled([build_cell(problem.spec, cfg, key) for key in keys])
    start = time.perf_counter()
    model, log = train_explicit(model, problem, cfg, seed)
    seconds = time.perf_counter() - start
    model = eqx.nn.inference_mode(model)
    output = np.asarray(eqx.filter_jit(lambda m, a: m(a))(model, jnp.asarray(problem.test_y)))
    fields = {"stages": cfg.unrolled_stages, "params": count_parameters(model), "train_seconds": seconds}
    return scored(output, problem.test_x, losses=log["losses"], **fields)


def train_and_evaluate(problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict[str, Any]:
    """Train the models (the DEQ, its explicit twin and, if asked, the unrolled network), then measure
    quality and Lipschitz estimates per budget on the test set."""
    with jax.default_device(jax.devices("gpu" if device == "cuda" else device)[0]):
        return _train_and_evaluate(problem, cfg, seed)


def _train_and_evaluate(problem: Problem, cfg: ImagingConfig, seed: int) -> dict[str, Any]:
    seconds: dict[str, float] = {}
    key_implicit, key_explicit = jax.random.split(jax.random.key(seed))
    solve = {"solver": cfg.solver, "backward": backward_option(cfg), "tol": cfg.tol, "max_iter": cfg.max_iter}
    implicit = ImplicitNet(build_cell(problem.spec, cfg, key_implicit), **solve)
    explicit = Explicit(build_cell(problem.spec, cfg, key_explicit))

    start = time.perf_counter()
    implicit, implicit_log = train_implicit(implicit, problem, cfg, seed)
    seconds["train_implicit"] = time.perf_counter() - start
    start = time.perf_counter()
    explicit, explicit_log = train_explicit(explicit, problem, cfg, seed)
    seconds["train_explicit"] = time.perf_counter() - start
    unrolled = train_unrolled(problem, cfg, seed) if cfg.unrolled_stages else None
    if unrolled:
        seconds["train_unrolled"] = unrolled["train_seconds"]
    implicit, explicit = eqx.nn.inference_mode(implicit), eqx.nn.inference_mode(explicit)

    start = time.perf_counter()
    test_y = jnp.asarray(problem.test_y)
    budgets = list(cfg.budgets)
    keep = {*cfg.grid_budgets, cfg.max_iter, budgets[-1]}
    curve = per_budget(implicit, test_y, problem.test_x, budgets, keep)
    run_explicit = eqx.filter_jit(lambda m, a: m(a))
    explicit_out = np.asarray(run_explicit(explicit, test_y))
    direct = np.asarray(implicit.deq.cell.family.direct(test_y))
    explicit_scores = scored(explicit_out, problem.test_x)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    reference = problem.spec.reference(problem.test_x.shape[2:])
    gains = reference.geometry.otf if problem.spec.kind == "blur" else None
    directions, direction_info = fourier_directions(
        reference, problem.test_x.shape[1], cfg.percentiles, gains
    )
    y_lip = test_y[: cfg.lipschitz_samples]
    if _picard(implicit):
        lipschitz: dict[str, Any] = lipschitz_per_budget(implicit, y_lip, directions, cfg.scales, budgets)
    else:
        lipschitz = {"max": [], "mean": []}
        for t in budgets:
            fn = jax.jit(lambda a, t=t: implicit.budget(a, t))
            summary = lipschitz_summary(fn, y_lip, jnp.asarray(directions), cfg.scales, 0)
            lipschitz["max"].append(summary["max"])
            lipschitz["mean"].append(summary["mean"])
    if cfg.power_iters:
        lipschitz["local"] = [
            float(
                jnp.max(
                    local_lipschitz(
                        jax.jit(lambda a, t=t: implicit.budget(a, t)), y_lip, cfg.power_iters, seed
                    )
                )
            )
            for t in budgets
        ]
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
        "direct": direct,
        "explicit": explicit_scores,
        "unrolled": unrolled,
        "lipschitz": lipschitz,
        "directions": direction_info,
        "params": {"implicit": count_parameters(implicit), "explicit": count_parameters(explicit)},
        "train": {"implicit": implicit_log, "explicit": explicit_log},
        "learned": learned,
        "seconds": seconds,
    }
