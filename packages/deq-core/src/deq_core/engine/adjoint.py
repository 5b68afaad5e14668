"""The adjoint solve of implicit differentiation: ``y = g + J^T y`` from vector-Jacobian products."""

from __future__ import annotations

from collections.abc import Callable

from deq_core.config import GMRES, Stop
from deq_core.engine.gmres import gmres
from deq_core.engine.loop import LoopResult, iterate
from deq_core.engine.ops import Array, Ops
from deq_core.engine.solvers import make_solver


def solve_adjoint(
    ops: Ops,
    vjp: Callable[[Array], Array],
    g: Array,
    solver_config,
    stop: Stop,
    max_iter: int,
) -> LoopResult:
    """Solve ``(I - J^T) y = g`` for ``y`` given ``vjp(y) = J^T y``; all arrays flattened ``(batch, n)``."""
    if isinstance(solver_config, GMRES):
        return gmres(ops, lambda y: y - vjp(y), g, solver_config.restart, stop, max_iter)
    return iterate(ops, lambda y: g + vjp(y), g, make_solver(solver_config), stop, max_iter)
