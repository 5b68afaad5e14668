"""Scaling analysis for PyTorch: exactly-``t``-step iterates and two Lipschitz estimators of ``x -> y_t``.

``y_t`` is the ``t``-th iterate of a solver from a fixed start: exactly ``t`` evaluations of the cell, no
early exit and no best-iterate choice (unlike ``fixed_point(tol=0, max_iter=t)``, which spends ``t``
evaluations but returns the image ``f(z)`` of its best measured iterate, which is ``z_t`` only while the
residuals fall). The iteration stays
differentiable, so the local estimator can use ``torch.func.jvp``/``vjp`` on it; analysis is never part of
a training graph. Functions ``fn`` analysed here map a batch to a batch and must treat samples independently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from deq_core import messages
from deq_core.analysis.budgets import check_budgets, check_count
from deq_core.analysis.lipschitz import check_scales, direction_shape_problem, summarize_ratios
from deq_core.config import ForwardSolver, solver_config
from deq_core.engine import make_solver
from deq_core.torch.ops import TorchOps

__all__ = [
    "deq_iterate_exactly",
    "finite_difference_ratios",
    "iterate_exactly",
    "lipschitz_summary",
    "local_lipschitz",
    "scaling_analysis",
]


def iterate_exactly(
    f: Callable[[torch.Tensor, Any], torch.Tensor],
    z0: torch.Tensor,
    args: Any,
    steps: int,
    solver: ForwardSolver | str = "picard",
) -> torch.Tensor:
    """``z_t``: exactly ``steps`` updates of ``solver`` on ``z = f(z, args)`` from ``z0``, differentiable.

    No early exit and no best-iterate choice, unlike the engine's ``deq_core.engine.iterate``.
    """
    check_count("steps", steps)
    problem = messages.bad_z0(tuple(z0.shape), z0.dtype)
    if problem:
        raise ValueError(problem)
    shape, dtype, batch = z0.shape, z0.dtype, z0.shape[0]
    work = torch.promote_types(dtype, torch.float32)
    ops = TorchOps(differentiable=True)
    algorithm = make_solver(solver_config(solver))
    z = z0.reshape(batch, -1).to(work)
    state = algorithm.init(ops, z)
    for _ in range(steps):
        fz = f(z.reshape(shape).to(dtype), args)
        messages.check_output(tuple(shape), fz, torch.Tensor, "torch.Tensor")
        z, state = algorithm.step(ops, state, z, fz.reshape(batch, -1).to(work))
    return z.reshape(shape).to(dtype)


def deq_iterate_exactly(
    deq: torch.nn.Module, x: torch.Tensor, steps: int, z0: torch.Tensor | None = None
) -> torch.Tensor:
    """``y_t`` of a :class:`deq_core.torch.DEQ`: ``steps`` iterations of its own solver on its cell."""
    z0 = torch.zeros_like(x) if z0 is None else z0
    return iterate_exactly(deq.cell, z0, x, steps, deq.options.solver)


def _sample_norm(a: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(a.reshape(a.shape[0], -1), dim=1)


def _unit_directions(directions: Any, x: torch.Tensor) -> torch.Tensor:
    """Directions as ``(k, *x.shape)`` on ``x``'s device and dtype, each sample's slice of unit norm."""
    d = torch.as_tensor(directions, dtype=x.dtype, device=x.device)
    problem = direction_shape_problem(tuple(d.shape), tuple(x.shape))
    if problem:
        raise ValueError(problem)
    if tuple(d.shape[1:]) == tuple(x.shape[1:]):
        d = d.unsqueeze(1).expand(d.shape[0], *x.shape)
    norms = torch.linalg.vector_norm(d.reshape(d.shape[0], d.shape[1], -1), dim=2)
    if not bool(torch.all(norms > 0)):
        k = int(torch.nonzero(~(norms > 0))[0, 0])
        raise ValueError(f"directions[{k}] has zero norm (for some sample); it cannot set a perturbation")
    return d / norms.reshape(*norms.shape, *([1] * (d.ndim - 2)))


def finite_difference_ratios(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, directions: Any, scales: Sequence[float]
) -> np.ndarray:
    """Per-sample ratios ``||fn(x + s d) - fn(x)|| / s`` over unit directions ``d``: ``(scales, k, batch)``.

    ``directions`` is ``(k, *sample_shape)`` (each applied to every sample) or ``(k, *x.shape)``; each is
    normalised per sample, so ``||delta|| = s`` exactly. Norms are Euclidean over a sample's entries.
    """
    scales = check_scales(scales)
    unit = _unit_directions(directions, x)
    with torch.no_grad():
        y = fn(x)
        ratios = torch.stack(
            [torch.stack([_sample_norm(fn(x + s * d) - y) / s for d in unit]) for s in scales]
        )
    return ratios.double().cpu().numpy()


def local_lipschitz(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, iters: int = 20, seed: int = 0
) -> torch.Tensor:
    """Per-sample top singular value of the Jacobian of ``fn`` at ``x``, by power iteration on ``J^T J``.

    ``fn`` is linearised once for the VJP (``torch.func.vjp``); each of the ``iters`` rounds costs one
    ``torch.func.jvp`` and one VJP. The estimate is ``||J v||`` for the final unit vector ``v``.
    """
    check_count("iters", iters)
    generator = torch.Generator(device=x.device).manual_seed(seed)
    v = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x = x.detach()
    tiny = torch.finfo(x.dtype).tiny

    def unit(a: torch.Tensor) -> torch.Tensor:
        return a / _sample_norm(a).clamp_min(tiny).reshape(-1, *([1] * (a.ndim - 1)))

    v = unit(v)
    _, vjp_fn = torch.func.vjp(fn, x)
    for _ in range(iters):
        _, u = torch.func.jvp(fn, (x,), (v,))
        (w,) = vjp_fn(u)
        v = unit(w.detach())
    _, u = torch.func.jvp(fn, (x,), (v,))
    return _sample_norm(u.detach())


def lipschitz_summary(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    directions: Any,
    scales: Sequence[float],
    power_iters: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """``max``/``mean`` of the finite-difference ratios and ``local``, the largest power-iteration estimate.

    ``power_iters=0`` skips the local estimate.
    """
    summary = summarize_ratios(finite_difference_ratios(fn, x, directions, scales))
    if power_iters:
        summary["local"] = float(local_lipschitz(fn, x, power_iters, seed).max())
    return summary


def scaling_analysis(
    forward: Callable[[torch.Tensor, int], torch.Tensor],
    x: torch.Tensor,
    target: Any,
    budgets: Sequence[int],
    metric: Callable[[torch.Tensor, Any], float],
    directions: Any,
    scales: Sequence[float],
    *,
    lipschitz_samples: int | None = None,
    power_iters: int = 20,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Quality and Lipschitz estimates of ``x -> forward(x, t)`` for every budget ``t``.

    ``forward(x, t)`` returns the model's output after exactly ``t`` iterations (see :func:`iterate_exactly`);
    ``metric(prediction, target)`` scores it on the whole batch. The Lipschitz estimators use the first
    ``lipschitz_samples`` samples (all when None). Returns ``{"iterations", "quality", "lipschitz"}`` with
    one value per budget in ``quality`` and in ``lipschitz["max"|"mean"|"local"]``.
    """
    budgets = check_budgets(budgets)
    x_lip = x if lipschitz_samples is None else x[:lipschitz_samples]
    quality: list[float] = []
    lipschitz: dict[str, list[float]] = {"max": [], "mean": []} | ({"local": []} if power_iters else {})
    for t in tqdm(budgets, desc="budgets", disable=not progress, leave=False):
        with torch.no_grad():
            quality.append(float(metric(forward(x, t), target)))
        summary = lipschitz_summary(
            lambda a, t=t: forward(a, t), x_lip, directions, scales, power_iters, seed
        )
        for key in lipschitz:
            lipschitz[key].append(summary[key])
    return {"iterations": budgets, "quality": quality, "lipschitz": lipschitz}
