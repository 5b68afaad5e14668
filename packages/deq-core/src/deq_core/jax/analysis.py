"""Scaling analysis for JAX: exactly-``t``-step iterates and two Lipschitz estimators of ``x -> y_t``.

``y_t`` is the ``t``-th iterate of a solver from a fixed start: exactly ``t`` evaluations of the cell, no
early exit and no best-iterate choice (unlike ``fixed_point(tol=0, max_iter=t)``, which spends ``t``
evaluations but returns the image ``f(z)`` of its best measured iterate, which is ``z_t`` only while the
residuals fall). The iteration is a
``lax.fori_loop`` with a static trip count, so it works under ``jit`` and in forward and reverse mode.
Functions ``fn`` analysed here map a batch to a batch and must treat samples independently; pass them
jitted (``eqx.filter_jit``) for speed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from deq_core import messages
from deq_core.analysis.budgets import check_budgets, check_count
from deq_core.analysis.lipschitz import check_scales, direction_shape_problem, summarize_ratios
from deq_core.config import ForwardSolver, solver_config
from deq_core.engine import make_solver
from deq_core.jax.ops import JaxOps

__all__ = [
    "deq_iterate_exactly",
    "finite_difference_ratios",
    "iterate_exactly",
    "lipschitz_summary",
    "local_lipschitz",
    "scaling_analysis",
]


def iterate_exactly(
    f: Callable[[jax.Array, Any], jax.Array],
    z0: jax.Array,
    args: Any,
    steps: int,
    solver: ForwardSolver | str = "picard",
) -> jax.Array:
    """``z_t``: exactly ``steps`` (a Python int) updates of ``solver`` on ``z = f(z, args)`` from ``z0``.

    No early exit and no best-iterate choice, unlike the engine's ``deq_core.engine.iterate``.
    """
    check_count("steps", steps)
    z0 = jnp.asarray(z0)
    problem = messages.bad_z0(tuple(z0.shape), z0.dtype)
    if problem:
        raise ValueError(problem)
    out = jax.eval_shape(f, z0, args)
    messages.check_output(tuple(z0.shape), out, jax.ShapeDtypeStruct, "jax.Array")
    shape, dtype, batch = z0.shape, z0.dtype, z0.shape[0]
    work = jnp.promote_types(dtype, jnp.float32)
    ops = JaxOps(differentiable=True)
    algorithm = make_solver(solver_config(solver))
    z = z0.reshape(batch, -1).astype(work)

    def body(_: Any, carry: tuple) -> tuple:
        z, state = carry
        fz = f(z.reshape(shape).astype(dtype), args).reshape(batch, -1).astype(work)
        return algorithm.step(ops, state, z, fz)

    state = jax.tree.map(jnp.asarray, algorithm.init(ops, z))
    z, _ = jax.lax.fori_loop(0, steps, body, (z, state))
    return z.reshape(shape).astype(dtype)


def deq_iterate_exactly(deq: eqx.Module, x: jax.Array, steps: int, z0: jax.Array | None = None) -> jax.Array:
    """``y_t`` of a :class:`deq_core.jax.DEQ`: ``steps`` iterations of its own solver on its cell."""
    z0 = jnp.zeros_like(x) if z0 is None else z0
    return iterate_exactly(deq.cell, z0, x, steps, deq.options.solver)


def _sample_norm(a: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.sum(jnp.square(a.reshape(a.shape[0], -1)), axis=1))


def _unit_directions(directions: Any, x: jax.Array) -> jax.Array:
    """Directions as ``(k, *x.shape)`` in ``x``'s dtype, each sample's slice of unit norm."""
    d = jnp.asarray(directions, dtype=x.dtype)
    problem = direction_shape_problem(tuple(d.shape), tuple(x.shape))
    if problem:
        raise ValueError(problem)
    if tuple(d.shape[1:]) == tuple(x.shape[1:]):
        d = jnp.broadcast_to(d[:, None], (d.shape[0], *x.shape))
    norms = jnp.sqrt(jnp.sum(jnp.square(d.reshape(d.shape[0], d.shape[1], -1)), axis=2))
    bad = np.flatnonzero(~np.all(np.asarray(norms) > 0, axis=1))
    if bad.size:
        raise ValueError(
            f"directions[{int(bad[0])}] has zero norm (for some sample); it cannot set a perturbation"
        )
    return d / norms.reshape(*norms.shape, *([1] * (d.ndim - 2)))


def finite_difference_ratios(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array, directions: Any, scales: Sequence[float]
) -> np.ndarray:
    """Per-sample ratios ``||fn(x + s d) - fn(x)|| / s`` over unit directions ``d``: ``(scales, k, batch)``.

    ``directions`` is ``(k, *sample_shape)`` (each applied to every sample) or ``(k, *x.shape)``; each is
    normalised per sample, so ``||delta|| = s`` exactly. Norms are Euclidean over a sample's entries. All
    perturbed inputs go through ``fn`` as one batch of ``scales * k * batch`` samples, in one compiled call
    (``fn`` may be an ``eqx.Module``/``eqx.Partial``, whose arrays are then traced, not embedded).
    """
    scales = check_scales(scales)
    x = jnp.asarray(x)
    unit = _unit_directions(directions, x)
    return np.asarray(_ratios(fn, x, unit, jnp.asarray(scales, dtype=x.dtype)), dtype=np.float64)


@eqx.filter_jit
def _ratios(fn: Callable, x: jax.Array, unit: jax.Array, scales: jax.Array) -> jax.Array:
    sample_axes = (1,) * (x.ndim - 1)
    perturbed = x[None, None] + scales.reshape(-1, 1, 1, *sample_axes) * unit[None]
    y = fn(x)
    out = fn(perturbed.reshape(-1, *x.shape[1:])).reshape(*perturbed.shape[:3], -1)
    diff = out - y.reshape(1, 1, y.shape[0], -1)
    return jnp.sqrt(jnp.sum(jnp.square(diff), axis=3)) / scales[:, None, None]


def local_lipschitz(
    fn: Callable[[jax.Array], jax.Array], x: jax.Array, iters: int = 20, seed: int = 0
) -> jax.Array:
    """Per-sample top singular value of the Jacobian of ``fn`` at ``x``, by power iteration on ``J^T J``.

    Each of the ``iters`` rounds costs one ``jax.jvp`` and one VJP (``fn`` is linearised for the VJP once);
    the estimate is ``||J v||`` for the final unit vector ``v``. The whole iteration is one compiled call.
    (``jax.jvp`` rather than ``jax.linearize``: the latter turns the masked ``0 * inf`` terms of the Anderson
    step into NaN.)
    """
    check_count("iters", iters)
    x = jnp.asarray(x)
    v = jax.random.normal(jax.random.key(seed), x.shape, x.dtype)
    return _power_iteration(fn, x, v, iters)


def _unit(a: jax.Array) -> jax.Array:
    tiny = jnp.finfo(a.dtype).tiny
    return a / jnp.maximum(_sample_norm(a), tiny).reshape(-1, *([1] * (a.ndim - 1)))


@eqx.filter_jit
def _power_iteration(fn: Callable, x: jax.Array, v: jax.Array, iters: int) -> jax.Array:
    _, vjp_fn = jax.vjp(fn, x)

    def jvp_fn(v: jax.Array) -> jax.Array:
        return jax.jvp(fn, (x,), (v,))[1]

    v = jax.lax.fori_loop(0, iters, lambda _, v: _unit(vjp_fn(jvp_fn(v))[0]), _unit(v))
    return _sample_norm(jvp_fn(v))


def lipschitz_summary(
    fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
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
        summary["local"] = float(jnp.max(local_lipschitz(fn, x, power_iters, seed)))
    return summary


def _at_budget(forward: Callable, steps: int, x: jax.Array) -> jax.Array:
    return forward(x, steps)


def scaling_analysis(
    forward: Callable[[jax.Array, int], jax.Array],
    x: jax.Array,
    target: Any,
    budgets: Sequence[int],
    metric: Callable[[jax.Array, Any], float],
    directions: Any,
    scales: Sequence[float],
    *,
    lipschitz_samples: int | None = None,
    power_iters: int = 20,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Quality and Lipschitz estimates of ``x -> forward(x, t)`` for every budget ``t``.

    ``forward(x, t)`` returns the model's output after exactly ``t`` iterations (see
    :func:`iterate_exactly`); it is compiled per budget with ``eqx.filter_jit`` (``t`` static), so make it an
    ``eqx.Module`` or ``eqx.Partial`` holding the model, to trace the weights as arguments rather than embed
    them as constants.
    ``metric(prediction, target)`` scores a whole batch. The Lipschitz estimators use the first
    ``lipschitz_samples`` samples (all when None). Returns ``{"iterations", "quality", "lipschitz"}``.
    """
    budgets = check_budgets(budgets)
    x = jnp.asarray(x)
    x_lip = x if lipschitz_samples is None else x[:lipschitz_samples]
    quality: list[float] = []
    lipschitz: dict[str, list[float]] = {"max": [], "mean": []} | ({"local": []} if power_iters else {})
    for t in tqdm(budgets, desc="budgets", disable=not progress, leave=False):
        at_budget = eqx.Partial(
            _at_budget, forward, t
        )  # t is static under filter_jit, forward's arrays traced
        quality.append(float(metric(eqx.filter_jit(at_budget)(x), target)))
        summary = lipschitz_summary(at_budget, x_lip, directions, scales, power_iters, seed)
        for key in lipschitz:
            lipschitz[key].append(summary[key])
    return {"iterations": budgets, "quality": quality, "lipschitz": lipschitz}
