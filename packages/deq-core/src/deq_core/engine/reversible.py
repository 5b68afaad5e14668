"""Reversible DEQ (McCallum, Arora, Foster 2025): the coupled forward iteration and its exact reverse walk.

From ``y_0 = z_0`` the forward solve iterates, per sample,

    y_{n+1} = (1 - beta) y_n + beta f(z_n)
    z_{n+1} = (1 - beta) z_n + beta f(y_{n+1})

and returns the last measured ``z_N``. Both updates can be undone,
``z_n = (z_{n+1} - beta f(y_{n+1})) / (1 - beta)`` and ``y_n = (y_{n+1} - beta f(z_n)) / (1 - beta)``, so
:func:`backward` rebuilds the iterates from ``(z_N, y_N)`` while it accumulates the exact vector-Jacobian
product of ``z_N``: memory does not grow with ``N``.

Accuracy: the forward step contracts, so its inverse expands, and each undone step multiplies the rounding
error of the rebuilt iterates by ``1 / |1 - beta|`` or more. The gradient therefore loses accuracy
geometrically with the number of steps: measured on ``f(z) = A z + x`` (``||A|| = 0.9``, ``beta = 0.5``) its
relative error in ``A`` is 1e-5 after 10 steps and 1e-2 after 20 in float32, 5e-12 after 20 and 5e-3 after
50 in float64. Saturating cells fare better (``tanh``: 1e-4 after 30 steps in float32), and the gradient in
``z0`` (which itself shrinks like the contraction) is the first to go. The method is meant for the few
steps of a loose tolerance; iterating far past convergence (``tol=0`` and 1000 evaluations of ``f``)
overflows the rebuilt iterates and yields NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deq_core.config import Stop
from deq_core.engine.loop import PER_SAMPLE, LoopResult, decide
from deq_core.engine.ops import Array, Ops

Vjp = Callable[[Array, Array, Any], tuple[Array, Array, Any]]
"""``vjp(point, cotangent, acc) -> (f(point), J(point)^T cotangent, acc + theta_bar)``."""


def forward(
    ops: Ops, f: Callable[[Array], Array], z0: Array, beta: float, stop: Stop, max_iter: int
) -> tuple[LoopResult, Array]:
    """Run the coupled iteration from ``z0`` (shape ``(batch, n)``); return its result and the final ``y``.

    Each sample measures ``||f(z_n) - z_n||`` with the ``f(z_n)`` its next ``y``-update needs, and stops by
    the decisions of :func:`deq_core.engine.loop.decide` (the stopping rule with its guard against growth,
    a non-finite measurement, divergence) or when ``max_iter`` evaluations of ``f`` allow no further step:
    a step costs two and the final measurement one, so ``nstep = 1 + 2 * steps <= max_iter``. Stopped
    samples are frozen; the result's ``z`` is each sample's last measured iterate, with its residuals.
    """
    batch = z0.shape[0]
    inf = ops.full((batch,), float("inf"), z0)
    zeros_int = ops.zeros((batch,), z0, dtype="int")
    state = {
        "k": 0,  # evaluations of f so far, less one (the loop's step index of the latest measurement)
        "y": z0,
        "z": z0,
        "abs": inf,  # ||f(z) - z|| and ||f(z)|| of the latest measured z
        "scale": inf,
        "best_abs": inf,
        "half_first": inf,
        "strikes": zeros_int,
        "status": zeros_int,
        "nstep": zeros_int,
        "active": ~ops.zeros((batch,), z0, dtype="bool"),
    }
    state = _measure(ops, stop, max_iter, state, ops.evaluate(f, z0, state["active"]))

    def body(s: dict) -> dict:
        active = s["active"]
        y = (1 - beta) * s["y"] + beta * s["fz"]
        z = (1 - beta) * s["z"] + beta * ops.evaluate(f, y, active)
        fz = ops.evaluate(f, z, active)
        y, z, fz = ops.select_rows(active, (y, z, fz), (s["y"], s["z"], s["fz"]))
        return _measure(ops, stop, max_iter, {**s, "k": s["k"] + 2, "y": y, "z": z}, fz)

    state = ops.while_loop(lambda s: s["more"], body, state, (max_iter - 1) // 2)
    loop = LoopResult(
        z=state["z"],
        nstep=state["nstep"],
        abs_residual=state["abs"],
        rel_residual=state["abs"] / ops.maximum(state["scale"], ops.tiny(z0)),
        status=state["status"],
        trace=None,
    )
    return loop, state["y"]


_PER_SAMPLE = (*PER_SAMPLE, "abs", "scale")


def _measure(ops: Ops, stop: Stop, max_iter: int, s: dict, fz: Array) -> dict:
    """``s`` after measuring its ``z`` by ``fz = f(z)``: the active samples' residuals and decisions."""
    k = s["k"]
    abs_res = ops.norm(ops.stop_gradient(fz - s["z"]), stop.norm)
    scale = ops.norm(ops.stop_gradient(fz), stop.norm)
    going = k + 3 <= max_iter  # another step (two evaluations) fits the budget

    def bookkeeping(xp: Ops, abs_res: Array, scale: Array, per: dict) -> dict:
        active = per["active"]
        measured = {
            "abs": xp.where(active, abs_res, per["abs"]),
            "scale": xp.where(active, scale, per["scale"]),
        }
        return {**decide(xp, stop, going, k, abs_res, scale, per), **measured}

    d = ops.per_sample(bookkeeping, abs_res, scale, {name: s[name] for name in _PER_SAMPLE})
    return {**s, **{name: d[name] for name in _PER_SAMPLE}, "fz": fz, "more": d["more"]}


def backward(
    ops: Ops, vjp: Vjp, z: Array, y: Array, nstep: Array, g: Array, acc: Any, beta: float, max_iter: int
) -> tuple[Array, Any]:
    """The cotangent of ``z0`` and ``acc`` plus that of ``f``'s inputs, for cotangent ``g`` of ``z_N``.

    ``z``, ``y`` and ``nstep`` are what :func:`forward` returned. Every sample undoes its own
    ``(nstep - 1) / 2`` steps, last first; a sample with none left is frozen and gets a zero cotangent, so
    it adds nothing to ``acc``. ``vjp`` is the backend's (see :data:`Vjp`); ``acc`` is opaque here.
    """
    zero = ops.zeros(z.shape, z)
    state = {"left": (nstep - 1) // 2, "y": y, "z": z, "ybar": zero, "zbar": g, "acc": acc}

    def body(s: dict) -> dict:
        active = s["left"] > 0
        y, z, ybar, zbar = s["y"], s["z"], s["ybar"], s["zbar"]
        # undo z_{n+1} = (1 - beta) z_n + beta f(y_{n+1})
        fy, gy, acc = vjp(y, ops.select_rows(active, beta * zbar, zero), s["acc"])
        z_prev = ops.select_rows(active, (z - beta * fy) / (1 - beta), z)
        ybar = ybar + gy
        # undo y_{n+1} = (1 - beta) y_n + beta f(z_n)
        fz, gz, acc = vjp(z_prev, ops.select_rows(active, beta * ybar, zero), acc)
        y_prev = (y - beta * fz) / (1 - beta)
        undone = (y_prev, z_prev, (1 - beta) * ybar, (1 - beta) * zbar + gz)
        y, z, ybar, zbar = ops.select_rows(active, undone, (y, z, s["ybar"], zbar))
        left = ops.where(active, s["left"] - 1, s["left"])
        return {"left": left, "y": y, "z": z, "ybar": ybar, "zbar": zbar, "acc": acc}

    state = ops.while_loop(lambda s: ops.any(s["left"] > 0), body, state, (max_iter - 1) // 2)
    return state["zbar"] + state["ybar"], state["acc"]
