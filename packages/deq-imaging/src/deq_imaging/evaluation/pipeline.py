"""The imaging pipeline, written once: train the models, then quality and Lipschitz estimates per budget.

Everything framework-specific goes through a :class:`~deq_imaging.backends.Backend` adapter (arrays,
no-grad, compilation, seeded models, training). With the Picard solver every budget comes from one pass of
the iteration (the iterate after exactly ``t`` cell applications is recorded on the way, one compiled cell
application reused), for the test images and for the perturbed inputs of the Fourier Lipschitz recipe
alike; other solvers rerun deq-core's exactly-``t``-step iteration per budget. Norms and ratios are taken
in float64 numpy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace

from deq_core.analysis.lipschitz import summarize_ratios
from deq_imaging.backends import Backend, load
from deq_imaging.datasets.problem import Problem
from deq_imaging.evaluation.metrics import mean_scores, scored
from deq_imaging.evaluation.perturbations import fourier_directions
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.training.recipe import train_explicit, train_implicit


def _picard(model: Any) -> bool:
    solver = model.deq.options.solver
    return type(solver).__name__ == "Picard" and float(solver.damping) == 1.0


def _norms(a: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(a, dtype=np.float64).reshape(len(a), -1), axis=1)


def _call(model: Any, y: Any) -> Any:
    return model(y)


def _budget(model: Any, y: Any, steps: int) -> Any:
    return model.budget(y, steps)


def restore(backend: Backend, model: Any, y: Any, steps: int | None = None) -> Any:
    """``model``'s reconstruction of ``y`` as the report scores it: with ``steps``, the implicit model's
    iterate after exactly ``steps`` cell applications from its start (Picard: one application at a time,
    as :func:`per_budget` runs them); without, one call of a one-shot (explicit or unrolled) model."""
    with backend.no_grad():
        if steps is None:
            return backend.jit(_call)(model, y)
        if not _picard(model):
            return backend.jit(_budget)(model, y, steps)
        cell = model.deq.cell
        z = backend.start(cell, y)
        for _ in range(steps):
            z = backend.step(cell, z, y)
        return z


def per_budget(
    backend: Backend, model: Any, y: Any, clean: np.ndarray, budgets: Sequence[int], keep: set[int]
) -> dict:
    """PSNR/SSIM of ``y_t`` for every budget, the outputs at ``keep`` and the final relative step
    ``||z_T - z_{T-1}|| / ||z_T||`` (largest over the images)."""
    cell = model.deq.cell
    budget = backend.jit(lambda m, a, t: m.budget(a, t))
    quality, similarity, outputs = [], [], {}
    with backend.no_grad():
        z, previous, done = backend.start(cell, y), None, 0
        for t in budgets:
            if _picard(model):
                for _ in range(t - done):
                    previous, z = z, backend.step(cell, z, y)
            else:
                previous = budget(model, y, t - 1) if t > 1 else backend.start(cell, y)
                z = budget(model, y, t)
            done = t
            out = backend.numpy(z)
            q, s = mean_scores(out, clean)
            quality.append(q)
            similarity.append(s)
            if t in keep:
                outputs[t] = out
        step = _norms(out - backend.numpy(previous)) / np.maximum(_norms(out), 1e-12)
    return {"psnr": quality, "ssim": similarity, "outputs": outputs, "residual": float(np.max(step))}


def lipschitz_per_budget(
    backend: Backend,
    model: Any,
    y: Any,
    directions: np.ndarray,
    scales: Sequence[float],
    budgets: Sequence[int],
) -> dict[str, list[float]]:
    """``max``/``mean`` finite-difference ratios ``||y_t(y + s d) - y_t(y)|| / s`` per budget, over the
    unit-normalised ``directions`` (k, C, h, w) and ``scales``, in one Picard pass over all inputs."""
    cell, n = model.deq.cell, y.shape[0]
    unit = directions / _norms(directions).reshape(-1, 1, 1, 1)
    xp = array_namespace(y)
    inputs = xp.concat([y] + [y + s * backend.array(d) for s in scales for d in unit])
    out: dict[str, list[float]] = {"max": [], "mean": []}
    with backend.no_grad():
        z = backend.start(cell, inputs)
        for t in range(1, max(budgets) + 1):
            z = backend.step(cell, z, inputs)
            if t in budgets:
                values = backend.numpy(z).astype(np.float64)
                moved = values[n:].reshape(len(scales), len(unit), *values[:n].shape)
                ratios = np.linalg.norm((moved - values[:n]).reshape(len(scales), len(unit), n, -1), axis=3)
                summary = summarize_ratios(ratios / np.asarray(scales).reshape(-1, 1, 1))
                out["max"].append(summary["max"])
                out["mean"].append(summary["mean"])
    return out


def lipschitz_estimates(
    backend: Backend,
    implicit: Any,
    explicit: Any,
    y: Any,
    directions: np.ndarray,
    cfg: ImagingConfig,
    seed: int,
) -> dict[str, Any]:
    """The Fourier Lipschitz recipe per budget for the DEQ (and its local estimate when ``power_iters``),
    and the explicit twin's summary."""
    budgets = list(cfg.budgets)
    if _picard(implicit):
        lipschitz: dict[str, Any] = lipschitz_per_budget(
            backend, implicit, y, directions, cfg.scales, budgets
        )
    else:
        lipschitz = {"max": [], "mean": []}
        for t in budgets:
            fn = backend.jit(lambda a, t=t: implicit.budget(a, t))
            summary = backend.lipschitz_summary(fn, y, backend.array(directions), cfg.scales, 0)
            lipschitz["max"].append(summary["max"])
            lipschitz["mean"].append(summary["mean"])
    if cfg.power_iters:
        local = []
        for t in budgets:
            fn = backend.jit(lambda a, t=t: implicit.budget(a, t))
            estimate = backend.local_lipschitz(fn, y, cfg.power_iters, seed)
            local.append(float(array_namespace(estimate).max(estimate)))
        lipschitz["local"] = local
    fn = backend.jit(lambda a: explicit(a))
    lipschitz["explicit"] = backend.lipschitz_summary(
        fn, y, backend.array(directions), cfg.scales, cfg.power_iters, seed
    )
    return lipschitz


def learned_values(cell: Any) -> dict[str, float]:
    """The cell's learned noise level and its ``mu`` (HQS) or ``eta`` (PGD)."""
    xp = array_namespace(cell.log_sigma)
    learned = {"sigma": float(xp.exp(cell.log_sigma))}
    name, log = ("mu", cell.log_mu) if hasattr(cell, "log_mu") else ("eta", cell.log_eta)
    return learned | {name: float(xp.exp(log))}


def train_unrolled(
    backend: Backend, problem: Problem, cfg: ImagingConfig, seed: int
) -> tuple[dict[str, Any], Any]:
    """Build (seeded apart from the other models), train and score on the test set the unrolled network of
    ``cfg.unrolled_stages`` untied cells; return its scores and the trained network."""
    cells = backend.cells(problem.spec, cfg, seed, cfg.unrolled_stages, stream=2)
    model = backend.place(backend.models.Unrolled(cells))
    start = time.perf_counter()
    model, log = train_explicit(backend, model, problem, cfg, seed)
    seconds = time.perf_counter() - start
    model = backend.inference(model)
    output = backend.numpy(restore(backend, model, backend.array(problem.test_y)))
    fields = {
        "stages": cfg.unrolled_stages,
        "params": backend.count_parameters(model),
        "train_seconds": seconds,
    }
    return scored(output, problem.test_x, losses=log["losses"], **fields), model


def train_and_evaluate(
    problem: Problem, cfg: ImagingConfig, backend: str | Backend, device: str, seed: int
) -> dict[str, Any]:
    """Train the models (the DEQ, its explicit twin and, if asked, the unrolled network) on ``backend``
    (a name or an adapter), then measure quality and Lipschitz estimates per budget on the test set;
    ``models`` holds the trained networks by name (``implicit``, ``explicit``, ``unrolled``)."""
    adapter = load(backend, device) if isinstance(backend, str) else backend
    with adapter.scope():
        return _train_and_evaluate(adapter, problem, cfg, seed)


def _train_and_evaluate(backend: Backend, problem: Problem, cfg: ImagingConfig, seed: int) -> dict[str, Any]:
    seconds: dict[str, float] = {}
    cell_implicit, cell_explicit = backend.cells(problem.spec, cfg, seed, 2)
    implicit = backend.place(backend.models.ImplicitNet(cell_implicit, cfg.solve))
    explicit = backend.place(backend.models.Explicit(cell_explicit))

    start = time.perf_counter()
    implicit, implicit_log = train_implicit(backend, implicit, problem, cfg, seed)
    seconds["train_implicit"] = time.perf_counter() - start
    start = time.perf_counter()
    explicit, explicit_log = train_explicit(backend, explicit, problem, cfg, seed)
    seconds["train_explicit"] = time.perf_counter() - start
    unrolled, unrolled_model = (
        train_unrolled(backend, problem, cfg, seed) if cfg.unrolled_stages else (None, None)
    )
    if unrolled:
        seconds["train_unrolled"] = unrolled["train_seconds"]
    implicit, explicit = backend.inference(implicit), backend.inference(explicit)
    models = {"implicit": implicit, "explicit": explicit} | ({"unrolled": unrolled_model} if unrolled else {})

    start = time.perf_counter()
    test_y = backend.array(problem.test_y)
    budgets = list(cfg.budgets)
    keep = {*cfg.grid_budgets, cfg.max_iter, budgets[-1]}
    curve = per_budget(backend, implicit, test_y, problem.test_x, budgets, keep)
    explicit_out = backend.numpy(restore(backend, explicit, test_y))
    with backend.no_grad():
        direct = backend.numpy(implicit.deq.cell.family.direct(test_y))
    explicit_scores = scored(explicit_out, problem.test_x)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    reference = problem.spec.reference(problem.test_x.shape[2:])
    gains = reference.geometry.otf if problem.spec.kind == "blur" else None
    directions, direction_info = fourier_directions(
        reference, problem.test_x.shape[1], cfg.percentiles, gains
    )
    y_lip = test_y[: cfg.lipschitz_samples]
    lipschitz = lipschitz_estimates(backend, implicit, explicit, y_lip, directions, cfg, seed)
    seconds["lipschitz"] = time.perf_counter() - start
    with backend.no_grad():
        learned = learned_values(implicit.deq.cell)
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
        "params": {
            "implicit": backend.count_parameters(implicit),
            "explicit": backend.count_parameters(explicit),
        },
        "train": {"implicit": implicit_log, "explicit": explicit_log},
        "learned": learned,
        "seconds": seconds,
        "models": models,
    }
