"""The one iteration loop: the stopping rule, per-sample outcomes, the best iterate and statistics.

:func:`iterate` drives any solver from :mod:`deq_core.engine.solvers` with the rule of
:class:`~deq_core.config.Stop`. Each sample stops on its own: when it meets the rule, when a residual or
``||f(z)||`` is not finite, when it diverges, or after ``max_iter`` evaluations of ``f``. Its iterate is
then frozen and its ``nstep`` stops counting. The loop returns, per sample, ``f(z)`` for the best measured
iterate ``z``: the one that met the rule, else the one with the lowest absolute residual (a criterion no
growth of the iterates can game). The loop itself is the backend's ``Ops.while_loop``.

Each step splits in two: the per-sample decisions on vectors of batch size (:func:`decide`, which a
backend may run on the host), and the row selections on the full iterates. While every sample is still
improving and outside the tolerance (most steps), there is nothing to decide and the step is a plain
solver step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deq_core.config import Stop
from deq_core.engine.ops import Array, Ops
from deq_core.solution import Result


@dataclass
class LoopResult:
    """Raw output of a solve: the flattened ``(batch, n)`` value and per-sample arrays."""

    z: Array
    nstep: Array
    abs_residual: Array
    rel_residual: Array
    status: Array
    trace: Array | None

    @property
    def converged(self) -> Array:
        """Which samples met the stopping rule."""
        return self.status == int(Result.SUCCESSFUL)


def within(stop: Stop, abs_res: Array, scale: Array) -> Array:
    """Whether ``||f(z) - z|| <= atol + rtol * ||f(z)||``, before the guard against growth."""
    return abs_res <= stop.atol + stop.rtol * scale


def steady(xp: Ops, stop: Stop, abs_res: Array, scale: Array, best_abs: Array) -> Array:
    """Whether every sample is improving and still outside the tolerance (a scalar boolean).

    Improving implies a finite residual, and outside ``atol + rtol * scale`` a finite, non-NaN scale.
    """
    return xp.all((abs_res < best_abs) & (abs_res > stop.atol + stop.rtol * scale))


def decide(xp: Ops, stop: Stop, going: Any, k: Any, abs_res: Array, scale: Array, s: dict) -> dict:
    """The per-sample decisions of one step, on ``(batch,)`` arrays of the array module ``xp``.

    ``s`` holds the per-sample state (``best_abs``, ``half_first``, ``strikes``, ``status``, ``nstep``,
    ``active``); ``going`` says whether the budget allows another step, ``k`` is the step's index. Returns
    the new per-sample state plus ``take`` (this iterate becomes the best) and ``more`` (any sample left).

    A sample meets the rule when it is within ``atol + rtol * ||f(z)||`` and, for the relative part to
    count, its residual is the lowest it has had and at most half its first one (or within ``atol``
    alone): a residual that never shrinks cannot pass because the iterates grow, not even by rounding.
    """
    active, best_abs = s["active"], s["best_abs"]
    finite = abs_res + scale < float("inf")  # False for NaN too
    half_first = xp.where(s["half_first"] < float("inf"), s["half_first"], 0.5 * abs_res)
    improved = abs_res < best_abs
    shrunk = improved & (abs_res <= s["half_first"])  # half_first is inf at the first step
    if stop.atol:
        shrunk = shrunk | (abs_res <= stop.atol)
    met = within(stop, abs_res, scale) & shrunk & finite
    done = met | ~finite
    strikes = s["strikes"]
    if stop.divergence is not None:
        strikes = xp.where(abs_res > stop.divergence * best_abs, strikes + 1, 0)
        diverged = strikes >= stop.patience
        done = done | diverged
    keep = active & ~done & going
    stops = active & ~keep
    code = xp.where(finite, int(Result.MAX_STEPS_REACHED), int(Result.NONFINITE))
    if stop.divergence is not None:
        code = xp.where(diverged, int(Result.DIVERGED), code)
    code = xp.where(met, int(Result.SUCCESSFUL), code)
    take = active & finite & (met | improved)
    return {
        "take": take,
        "best_abs": xp.where(take, abs_res, best_abs),
        "half_first": half_first,
        "strikes": strikes,
        "status": xp.where(stops, code, s["status"]),
        "nstep": xp.where(stops, k + 1, s["nstep"]),  # a sample's last step counts all of its steps
        "active": keep,
        "more": xp.any(keep),
        "all": xp.all(keep),
    }


PER_SAMPLE = ("best_abs", "half_first", "strikes", "status", "nstep", "active")


def iterate(
    ops: Ops,
    f: Callable[[Array], Array],
    z0: Array,
    solver: Any,
    stop: Stop,
    max_iter: int,
    trace: bool = False,
) -> LoopResult:
    """Iterate ``solver`` on ``f`` from ``z0`` (shape ``(batch, n)``) until every sample stops."""
    batch = z0.shape[0]
    inf = ops.full((batch,), float("inf"), z0)
    zeros_int = ops.zeros((batch,), z0, dtype="int")
    state = {
        "k": 0,
        "z": z0,
        "solver": solver.init(ops, z0),
        "best": (z0, inf),  # f(z) and ||f(z)|| of the best measured iterate
        "best_abs": inf,  # its residual ||f(z) - z||
        "half_first": inf,  # half the first residual
        "strikes": zeros_int,  # consecutive steps with a residual far above the lowest one
        "status": zeros_int,
        "nstep": zeros_int,
        "active": ~ops.zeros((batch,), z0, dtype="bool"),
        "more": True,  # whether any sample is still active
        "all": True,  # whether every sample is
    }
    if trace:
        state["trace"] = ops.full((max_iter, batch), float("nan"), z0)

    def cond(s: dict) -> Any:
        return s["more"] & (s["k"] < max_iter)

    def body(s: dict) -> dict:
        z, active, k = s["z"], s["active"], s["k"]
        fz = ops.evaluate(f, z, active)
        abs_res = ops.norm(ops.stop_gradient(fz - z), stop.norm)
        scale = ops.norm(ops.stop_gradient(fz), stop.norm)
        z_next, solver_state = solver.step(ops, s["solver"], z, fz)
        going = k + 1 < max_iter  # the budget allows another evaluation
        new = {**s, "k": k + 1, "solver": solver_state}
        if trace:
            new["trace"] = ops.set_row(s["trace"], k, ops.where(active, abs_res, float("nan")))

        def plain() -> dict:
            """Every sample runs on and improves: it is the best so far and nothing else changes.

            Only backends that run the loop in Python take this path, so ``k`` is an int here.
            """
            half_first = 0.5 * abs_res if k == 0 else s["half_first"]
            return {**new, "z": z_next, "best": (fz, scale), "best_abs": abs_res, "half_first": half_first}

        def general() -> dict:
            per_sample = {name: s[name] for name in PER_SAMPLE}
            d = ops.per_sample(lambda xp, *a: decide(xp, stop, going, k, *a), abs_res, scale, per_sample)
            return {
                **new,
                **{name: d[name] for name in PER_SAMPLE},
                "z": ops.select_rows(d["active"], z_next, z),
                "best": ops.select_rows(d["take"], (fz, scale), s["best"]),
                "more": d["more"],
                "all": d["all"],
            }

        check = lambda xp, *a: steady(xp, stop, *a)
        running = lambda: going and s["all"] and ops.per_sample(check, abs_res, scale, s["best_abs"])
        return ops.cond(running, plain, general)

    state = ops.while_loop(cond, body, state, max_iter)
    value, scale = state["best"]
    abs_res = state["best_abs"]
    return LoopResult(
        z=value,
        nstep=state["nstep"],
        abs_residual=abs_res,
        rel_residual=abs_res / ops.maximum(scale, ops.tiny(z0)),
        status=state["status"],
        trace=state.get("trace"),
    )
