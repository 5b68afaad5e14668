"""The imaging pipeline in PyTorch: train both models, then quality and Lipschitz estimates per budget.

With the Picard solver every budget comes from one pass of the iteration (the iterate after exactly ``t``
cell applications is recorded on the way), for the test images and for the perturbed inputs of the Fourier
Lipschitz recipe alike; other solvers rerun deq-core's exactly-``t``-step ``iterate`` per budget.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from deq_core.analysis.lipschitz import summarize_ratios
from deq_core.torch.analysis import lipschitz_summary, local_lipschitz
from deq_imaging.datasets.problem import Problem
from deq_imaging.evaluation.metrics import mean_scores, scored
from deq_imaging.evaluation.perturbations import fourier_directions
from deq_imaging.models.config import ImagingConfig
from deq_imaging.models.torch import Explicit, ImplicitNet, Unrolled, build_cell, count_parameters
from deq_imaging.models.training.torch import backward_option, train_explicit, train_implicit


def _picard(model: ImplicitNet) -> bool:
    solver = model.deq.options.solver
    return type(solver).__name__ == "Picard" and float(solver.damping) == 1.0


def _norms(a: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(a.flatten(1), dim=1)


def per_budget(
    model: ImplicitNet, y: torch.Tensor, clean: np.ndarray, budgets: Sequence[int], keep: set[int]
) -> dict:
    """PSNR/SSIM of ``y_t`` for every budget, the outputs at ``keep`` and the final relative step
    ``||z_T - z_{T-1}|| / ||z_T||`` (largest over the images)."""
    cell = model.deq.cell
    quality, similarity, outputs = [], [], {}
    with torch.no_grad():
        z, previous, done = cell.init(y), None, 0
        for t in budgets:
            if _picard(model):
                for _ in range(t - done):
                    previous, z = z, cell(z, y)
            else:
                previous, z = (model.budget(y, t - 1) if t > 1 else cell.init(y)), model.budget(y, t)
            done = t
            out = z.cpu().numpy()
            q, s = mean_scores(out, clean)
            quality.append(q)
            similarity.append(s)
            if t in keep:
                outputs[t] = out
        residual = float((_norms(z - previous) / _norms(z).clamp_min(1e-12)).max())
    return {"psnr": quality, "ssim": similarity, "outputs": outputs, "residual": residual}


def lipschitz_per_budget(
    model: ImplicitNet,
    y: torch.Tensor,
    directions: torch.Tensor,
    scales: Sequence[float],
    budgets: Sequence[int],
) -> dict[str, list[float]]:
    """``max``/``mean`` finite-difference ratios ``||y_t(y + s d) - y_t(y)|| / s`` per budget, over the
    unit-normalised ``directions`` (k, C, h, w) and ``scales``, in one Picard pass over all inputs."""
    cell, n = model.deq.cell, y.shape[0]
    unit = directions / _norms(directions).reshape(-1, 1, 1, 1)
    inputs = torch.cat([y] + [y + s * d for s in scales for d in unit])
    out: dict[str, list[float]] = {"max": [], "mean": []}
    with torch.no_grad():
        z = cell.init(inputs)
        for t in range(1, max(budgets) + 1):
            z = cell(z, inputs)
            if t in budgets:
                base, moved = z[:n], z[n:].reshape(len(scales), len(unit), *z[:n].shape)
                step = torch.tensor(scales, dtype=z.dtype, device=z.device).reshape(-1, 1, 1)
                ratios = _norms((moved - base).flatten(0, 2)).reshape(len(scales), len(unit), n) / step
                summary = summarize_ratios(ratios.double().cpu().numpy())
                out["max"].append(summary["max"])
                out["mean"].append(summary["mean"])
    return out


def train_unrolled(problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict[str, Any]:
    """Build (seeded apart from the other models), train and score on the test set the unrolled network of
    ``cfg.unrolled_stages`` untied cells."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 2)
        model = Unrolled([build_cell(problem.spec, cfg) for _ in range(cfg.unrolled_stages)]).to(device)
    start = time.perf_counter()
    log = train_explicit(model, problem, cfg, device, seed)
    seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        output = model(torch.as_tensor(problem.test_y, device=device)).cpu().numpy()
    fields = {"stages": cfg.unrolled_stages, "params": count_parameters(model), "train_seconds": seconds}
    return scored(output, problem.test_x, losses=log["losses"], **fields)


def train_and_evaluate(problem: Problem, cfg: ImagingConfig, device: str, seed: int) -> dict[str, Any]:
    """Train the models (the DEQ, its explicit twin and, if asked, the unrolled network), then measure
    quality and Lipschitz estimates per budget on the test set."""
    torch.manual_seed(seed)
    seconds: dict[str, float] = {}
    solve = {"solver": cfg.solver, "backward": backward_option(cfg), "tol": cfg.tol, "max_iter": cfg.max_iter}
    implicit = ImplicitNet(build_cell(problem.spec, cfg), **solve).to(device)
    explicit = Explicit(build_cell(problem.spec, cfg)).to(device)

    start = time.perf_counter()
    train_log = {"implicit": train_implicit(implicit, problem, cfg, device, seed)}
    seconds["train_implicit"] = time.perf_counter() - start
    start = time.perf_counter()
    train_log["explicit"] = train_explicit(explicit, problem, cfg, device, seed)
    seconds["train_explicit"] = time.perf_counter() - start
    unrolled = train_unrolled(problem, cfg, device, seed) if cfg.unrolled_stages else None
    if unrolled:
        seconds["train_unrolled"] = unrolled["train_seconds"]
    implicit.eval()
    explicit.eval()

    start = time.perf_counter()
    test_y = torch.as_tensor(problem.test_y, device=device)
    budgets = list(cfg.budgets)
    curve = per_budget(
        implicit, test_y, problem.test_x, budgets, {*cfg.grid_budgets, cfg.max_iter, budgets[-1]}
    )
    with torch.no_grad():
        explicit_out = explicit(test_y).cpu().numpy()
        direct = implicit.deq.cell.family.direct(test_y).cpu().numpy()
    explicit_scores = scored(explicit_out, problem.test_x)
    seconds["evaluate"] = time.perf_counter() - start

    start = time.perf_counter()
    reference = problem.spec.reference(problem.test_x.shape[2:])
    gains = reference.geometry.otf if problem.spec.kind == "blur" else None
    directions, direction_info = fourier_directions(
        reference, problem.test_x.shape[1], cfg.percentiles, gains
    )
    directions = torch.as_tensor(directions, device=device)
    y_lip = test_y[: cfg.lipschitz_samples]
    if _picard(implicit):
        lipschitz: dict[str, Any] = lipschitz_per_budget(implicit, y_lip, directions, cfg.scales, budgets)
    else:
        lipschitz = {"max": [], "mean": []}
        for t in budgets:
            summary = lipschitz_summary(
                lambda a, t=t: implicit.budget(a, t), y_lip, directions, cfg.scales, 0
            )
            lipschitz["max"].append(summary["max"])
            lipschitz["mean"].append(summary["mean"])
    if cfg.power_iters:
        lipschitz["local"] = [
            float(local_lipschitz(lambda a, t=t: implicit.budget(a, t), y_lip, cfg.power_iters, seed).max())
            for t in budgets
        ]
    lipschitz["explicit"] = lipschitz_summary(explicit, y_lip, directions, cfg.scales, cfg.power_iters, seed)
    seconds["lipschitz"] = time.perf_counter() - start

    cell = implicit.deq.cell
    with torch.no_grad():
        learned = {"sigma": float(cell.sigma())}
        step = ("mu", cell.log_mu) if hasattr(cell, "log_mu") else ("eta", cell.log_eta)
        learned[step[0]] = float(step[1].exp())
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
        "train": train_log,
        "learned": learned,
        "seconds": seconds,
    }
