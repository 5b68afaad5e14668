"""The one iteration loop: residuals, per-sample convergence, best iterate and statistics.

:func:`iterate` drives any solver from :mod:`deq_core.engine.solvers` with the stopping rule of
:class:`~deq_core.config.Stop`. Each sample stops on its own: once its residual is within tolerance
(or non-finite) its iterate is frozen and its ``nstep`` stops counting, and each sample returns the
iterate with its lowest residual. The loop itself is the backend's ``Ops.while_loop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deq_core.config import Stop
from deq_core.engine.ops import Array, Ops


@dataclass
class LoopResult:
    """Raw output of :func:`iterate` (flattened ``(batch, n)`` iterate and per-sample arrays)."""

    z: Array
    nstep: Array
    abs_residual: Array
    rel_residual: Array
    converged: Array
    nonfinite: Array
    trace: Array


def iterate(
    ops: Ops,
    f: Callable[[Array], Array],
    z0: Array,
    solver: Any,
    stop: Stop,
    max_iter: int,
) -> LoopResult:
    """Iterate ``solver`` on ``f`` from ``z0`` (shape ``(batch, n)``) until every sample stops.

    A sample stops when its ``stop.kind`` residual is ``<= stop.tol``, when the residual is not finite,
    or after ``max_iter`` evaluations of ``f``.
    """
    batch = z0.shape[0]
    inf = ops.full((batch,), float("inf"), z0)
    state = {
        "k": 0,
        "z": z0,
        "solver": solver.init(ops, z0),
        "best_z": z0,
        "best_abs": inf,
        "best_rel": inf,
        "nstep": ops.zeros((batch,), z0, dtype="int"),
        "active": ~ops.zeros((batch,), z0, dtype="bool"),
        "trace": ops.full((max_iter, batch), float("nan"), z0),
    }
    tiny = ops.tiny(z0)
    best_key = "best_rel" if stop.kind == "rel" else "best_abs"

    def cond(s: dict) -> Any:
        return ops.any(s["active"]) & (s["k"] < max_iter)

    def body(s: dict) -> dict:
        z, active = s["z"], s["active"]
        fz = ops.evaluate(f, z, active)
        abs_res = ops.norm(ops.stop_gradient(fz - z), stop.norm)
        rel_res = abs_res / ops.maximum(ops.norm(ops.stop_gradient(fz), stop.norm), tiny)
        res = rel_res if stop.kind == "rel" else abs_res
        improved = active & (res < s[best_key])  # NaN never improves
        keep = active & (res > stop.tol) & (res < float("inf"))  # NaN and inf stop the sample
        z_next, solver_state = solver.step(ops, s["solver"], z, fz)
        return {
            "k": s["k"] + 1,
            "z": ops.select_rows(keep, z_next, z),
            "solver": solver_state,
            "best_z": ops.select_rows(improved, z, s["best_z"]),
            "best_abs": ops.where(improved, abs_res, s["best_abs"]),
            "best_rel": ops.where(improved, rel_res, s["best_rel"]),
            "nstep": s["nstep"] + active,
            "active": keep,
            "trace": ops.set_row(s["trace"], s["k"], res),
        }

    state = ops.while_loop(cond, body, state, max_iter)
    # A sample is active for exactly its first nstep iterations, so everything else is derived at the end:
    # it converged iff its best residual met the tolerance, and it stopped early otherwise only on a
    # non-finite residual.
    nstep = state["nstep"]
    converged = state[best_key] <= stop.tol
    return LoopResult(
        z=state["best_z"],
        nstep=nstep,
        abs_residual=state["best_abs"],
        rel_residual=state["best_rel"],
        converged=converged,
        nonfinite=~converged & (nstep < max_iter),
        trace=ops.where(ops.arange(max_iter, z0)[:, None] < nstep[None, :], state["trace"], float("nan")),
    )
