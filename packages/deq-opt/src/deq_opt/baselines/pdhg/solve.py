"""The restarted-PDHG solve, once for every backend: scale, start, run chunks of checks, unscale, report.

A backend (:class:`Backend`) only moves arrays to its device, multiplies by the sparse matrix and runs a chunk
of :func:`~deq_opt.baselines.pdhg.iteration.run_checks` its own way (eagerly, or compiled under ``jax.jit``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from deq_opt.baselines.pdhg.iteration import EagerLoop, State, initial_state, problem_vectors, run_checks
from deq_opt.baselines.pdhg.options import PDHGOptions
from deq_opt.baselines.pdhg.scaling import ScaledLP, prepare
from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["Backend", "EagerBackend", "solve_pdhg"]

STATUS = {0: "iteration_limit", 1: "optimal", 2: "infeasible", 3: "unbounded"}
CHECKS_PER_CHUNK = 16


class Backend(Protocol):
    """What a framework supplies to :func:`solve_pdhg`."""

    name: str

    def context(self) -> contextlib.AbstractContextManager:
        """The scope the whole solve runs in (e.g. JAX's x64 switch)."""

    def problem(self, p: ScaledLP, floats: dict[str, np.ndarray], flags: dict[str, np.ndarray]) -> dict:
        """The scaled problem on the device: ``floats`` and ``flags`` as arrays plus the sparse matrices."""

    def asarray(self, v: np.ndarray) -> Any:
        """A float64 numpy vector as a device array of the solve's dtype."""

    def matvecs(self, P: dict) -> tuple[Any, Any]:
        """``(v -> A v, v -> A^T v)`` of the problem ``P``."""

    def chunk(self, P: dict, state: State, opts: PDHGOptions, n_checks: int) -> State:
        """``run_checks`` on ``state`` for up to ``n_checks`` checks."""

    def to_numpy(self, a: Any) -> np.ndarray:
        """A device array as float64 numpy."""


class EagerBackend:
    """The part of a :class:`Backend` shared by eager frameworks (numpy, torch): no scope, a Python loop."""

    def context(self) -> contextlib.AbstractContextManager:
        """No scope."""
        return contextlib.nullcontext()

    def matvecs(self, P: dict) -> tuple[Any, Any]:
        """``(v -> P["A"] @ v, v -> P["AT"] @ v)``."""
        return (lambda v: P["A"] @ v), (lambda v: P["AT"] @ v)

    def chunk(self, P: dict, state: State, opts: PDHGOptions, n_checks: int) -> State:
        """``run_checks`` with :class:`~deq_opt.baselines.pdhg.iteration.EagerLoop`."""
        return run_checks(P, state, *self.matvecs(P), EagerLoop(), opts, n_checks)


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
        A, AT = backend.matvecs(P)
        st = initial_state(P, backend.asarray(x), backend.asarray(y), A, AT, p.step, p.primal_weight)
        desc = f"PDHG-{backend.name} {lp.name}"
        with tqdm(total=opts.max_iter, disable=not opts.progress, desc=desc) as bar:
            while True:
                st = backend.chunk(P, st, opts, CHECKS_PER_CHUNK)
                k, status = int(st["k"]), int(st["status"])
                bar.update(k - bar.n)
                if status != 0 or k >= opts.max_iter:
                    break
        x_out, y_out = backend.to_numpy(st["out_x"] * P["s"]), backend.to_numpy(st["out_y"] * P["r"])
        stats = backend.to_numpy(st["stats"])
        restarts, rejected = int(st["n_restarts"]), int(st["tries"]) - k
    kkt = {
        "rel_primal": float(stats[0]),
        "rel_dual": float(stats[1]),
        "rel_gap": float(stats[2]),
        "dual_objective": float(stats[4]),
        "restarts": float(restarts),
        "rejected_steps": float(rejected),
    }
    seconds = time.perf_counter() - start
    return LPResult(STATUS[status], float(stats[3]), x_out, y_out, k, seconds, f"pdhg-{backend.name}", kkt)


def _warm_vector(v: np.ndarray, size: int, name: str, solver: str) -> np.ndarray:
    """A finite float64 warm-start vector of the right length."""
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{solver}: {name} must be a finite vector of shape ({size},), got {v.shape}")
    return v
