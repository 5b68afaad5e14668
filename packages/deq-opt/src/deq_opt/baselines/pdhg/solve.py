"""The restarted-PDHG solve, once for every backend: scale, start, run chunks of checks, unscale, report.

A backend (:class:`Backend`) only moves arrays to its device and supplies the solve's three steps
(:class:`Programs`: the start state, a chunk of
:func:`~deq_opt.baselines.pdhg.iteration.run_checks`, the unscaled solution) its own way: eager, or compiled
by ``jax.jit`` ahead of the timed solve, so that ``LPResult.seconds`` is solve time and the compilation is
reported apart as ``LPResult.compile_seconds``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from deq_opt.baselines.pdhg.iteration import (
    EagerLoop,
    State,
    initial_state,
    problem_vectors,
    run_checks,
    solution,
)
from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP, prepare
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["Backend", "EagerBackend", "Programs", "solve_pdhg"]

STATUS = {0: "iteration_limit", 1: "optimal", 2: "infeasible", 3: "unbounded"}
CHECKS_PER_CHUNK = 16


@dataclass(frozen=True)
class Programs:
    """The steps of one solve: ``start(P, x, y, step, weight)`` -> state, ``chunk(P, state)`` -> state after
    up to one chunk of checks, ``solution(P, state)`` -> ``(x, y, stats)`` of the original problem."""

    start: Callable[[dict, Any, Any, float, float], State]
    chunk: Callable[[dict, State], State]
    solution: Callable[[dict, State], tuple[Any, Any, Any]]


class Backend(Protocol):
    """What a framework supplies to :func:`solve_pdhg`."""

    name: str

    def context(self) -> contextlib.AbstractContextManager:
        """The scope the whole solve runs in (e.g. JAX's x64 switch)."""

    def problem(self, p: ScaledLP, floats: dict[str, np.ndarray], flags: dict[str, np.ndarray]) -> dict:
        """The scaled problem on the device: ``floats`` and ``flags`` as arrays plus the sparse matrices."""

    def asarray(self, v: np.ndarray) -> Any:
        """A float64 numpy vector as a device array of the solve's dtype."""

    def programs(
        self, P: dict, x: Any, y: Any, step: float, weight: float, opts: PDHGOptions, n_checks: int
    ) -> Programs:
        """The solve's steps for these arguments, chunks of up to ``n_checks`` checks; any compilation
        happens here (it is timed apart from the solve)."""

    def to_numpy(self, a: Any) -> np.ndarray:
        """A device array as float64 numpy."""


class EagerBackend:
    """The part of a :class:`Backend` shared by eager frameworks (numpy, torch): no scope, a Python loop."""

    def context(self) -> contextlib.AbstractContextManager:
        """No scope."""
        return contextlib.nullcontext()

    def programs(
        self, P: dict, x: Any, y: Any, step: float, weight: float, opts: PDHGOptions, n_checks: int
    ) -> Programs:
        """The steps run eagerly with ``P["A"] @ v``, ``P["AT"] @ v`` and
        :class:`~deq_opt.baselines.pdhg.iteration.EagerLoop` (nothing to compile)."""
        A, AT = (lambda v: P["A"] @ v), (lambda v: P["AT"] @ v)
        return Programs(
            start=lambda P, x, y, step, weight: initial_state(P, x, y, A, AT, step, weight),
            chunk=lambda P, st: run_checks(P, st, A, AT, EagerLoop(), opts, n_checks),
            solution=solution,
        )


def solve_pdhg(
    lp: LinearProgram,
    options: PDHGOptions | None,
    backend: Backend,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
) -> LPResult:
    """Solve ``lp`` with restarted PDHG on ``backend``, optionally warm-started at ``(x0, y0)``."""
    opts = options or PDHGOptions()
    start = time.perf_counter()
    p = prepare(lp, opts)
    m, n = lp.shape
    solver = f"solve_pdhg_{backend.name}"
    x = np.zeros(n) if x0 is None else np.clip(_warm_vector(x0, n, "x0", solver) / p.s, p.lo, p.hi)
    y = np.zeros(m) if y0 is None else _warm_vector(y0, m, "y0", solver) / p.r
    with backend.context():
        P = backend.problem(p, *problem_vectors(p))
        args = (P, backend.asarray(x), backend.asarray(y), p.step, p.primal_weight)
        compiling = time.perf_counter()
        steps = backend.programs(*args, opts, CHECKS_PER_CHUNK)
        compile_seconds = time.perf_counter() - compiling
        st = _iterate(steps, P, steps.start(*args), opts, backend, f"PDHG-{backend.name} {lp.name}")
        k, status = int(st["k"]), int(st["status"])
        x_out, y_out, stats = (backend.to_numpy(v) for v in steps.solution(P, st))
        restarts, rejected = int(st["n_restarts"]), int(st["tries"]) - k
    kkt = {
        "rel_primal": float(stats[0]),
        "rel_dual": float(stats[1]),
        "rel_gap": float(stats[2]),
        "dual_objective": float(stats[4]),
        "restarts": float(restarts),
        "rejected_steps": float(rejected),
    }
    seconds = time.perf_counter() - start - compile_seconds
    name = f"pdhg-{backend.name}"
    return LPResult(STATUS[status], float(stats[3]), x_out, y_out, k, seconds, name, kkt, compile_seconds)


def _iterate(steps: Programs, P: dict, st: State, opts: PDHGOptions, backend: Backend, desc: str) -> State:
    """Chunks of checks until a status or ``opts.max_iter`` steps, with an optional progress bar.

    The bar counts accepted steps with no total (the solve stops at convergence, usually long before
    ``max_iter``), shows the worst relative KKT error against ``tol``, and closes full at the last step.
    """
    with tqdm(total=None, unit="it", disable=not opts.progress, desc=desc) as bar:
        while True:
            st = steps.chunk(P, st)
            k, status = int(st["k"]), int(st["status"])
            bar.update(k - bar.n)
            if not bar.disable:
                worst = float(np.max(backend.to_numpy(st["stats"])[:3]))
                bar.set_postfix_str(f"KKT error {worst:.1e}, tol {opts.tol:g}", refresh=False)
            if status != 0 or k >= opts.max_iter:
                bar.total = bar.n
                return st


def _warm_vector(v: np.ndarray, size: int, name: str, solver: str) -> np.ndarray:
    """A finite float64 warm-start vector of the right length."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{solver}: {name} must be a finite vector of shape ({size},), got {v.shape}")
    return v
