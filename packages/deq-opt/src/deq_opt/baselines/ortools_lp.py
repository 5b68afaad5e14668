"""OR-Tools baselines: GLOP (simplex, via model_builder + pywraplp) and PDLP (via ``ortools.pdlp``)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from ortools.linear_solver import linear_solver_pb2, pywraplp
from ortools.linear_solver.python import model_builder_helper
from ortools.pdlp import solve_log_pb2, solvers_pb2
from ortools.pdlp.python import pdlp

from deq_opt.baselines.result import LPResult
from deq_opt.operators.lp import LinearProgram

__all__ = ["solve_glop", "solve_pdlp"]

_GLOP_STATUS = {
    pywraplp.Solver.OPTIMAL: "optimal",
    pywraplp.Solver.INFEASIBLE: "infeasible",
    pywraplp.Solver.UNBOUNDED: "unbounded",
}


def _mp_model(lp: LinearProgram) -> linear_solver_pb2.MPModelProto:
    """The LP as an MPModelProto, built in C++ from the sparse arrays (no per-entry Python loop)."""
    helper = model_builder_helper.ModelBuilderHelper()
    helper.fill_model_from_sparse_data(lp.lo, lp.hi, lp.c, lp.row_lo, lp.row_hi, lp.A)
    helper.set_objective_offset(lp.obj_const)
    fd, tmp = tempfile.mkstemp(suffix=".pb")
    os.close(fd)
    try:
        helper.write_model_to_proto_file(tmp)
        return linear_solver_pb2.MPModelProto.FromString(Path(tmp).read_bytes())
    finally:
        Path(tmp).unlink(missing_ok=True)


def solve_glop(
    lp: LinearProgram,
    *,
    feasibility_tol: float = 1e-8,
    optimality_tol: float = 1e-8,
    time_limit: float | None = None,
) -> LPResult:
    """Solve with GLOP's primal/dual simplex (the LP relaxation; integrality marks are ignored).

    GLOP has no warm start from an arbitrary point; ``time_limit`` is in seconds.
    """
    solver = pywraplp.Solver.CreateSolver("GLOP")
    err = solver.LoadModelFromProto(_mp_model(lp))
    if err:
        raise ValueError(f"GLOP rejected the model {lp.name!r}: {err}")
    solver.SetSolverSpecificParametersAsString(
        f"primal_feasibility_tolerance: {feasibility_tol!r} dual_feasibility_tolerance: {optimality_tol!r}"
    )
    if time_limit is not None:
        solver.SetTimeLimit(max(1, int(time_limit * 1000)))
    start = time.perf_counter()
    code = solver.Solve()
    seconds = time.perf_counter() - start
    status = _GLOP_STATUS.get(code)
    if status == "infeasible" and _feasible(lp, feasibility_tol):
        status = (
            "unbounded"  # GLOP reports INFEASIBLE for "infeasible or unbounded"; a feasible LP is unbounded
        )
    if status is None:
        status = "time_limit" if time_limit is not None and seconds >= time_limit else "error"
    response = linear_solver_pb2.MPSolutionResponse()
    solver.FillSolutionResponseProto(response)
    x = np.array(response.variable_value, dtype=np.float64)
    y = np.array(response.dual_value, dtype=np.float64)
    if x.shape != (lp.num_cols,):
        x = np.full(lp.num_cols, np.nan)
    if y.shape != (lp.num_rows,):
        y = np.full(lp.num_rows, np.nan)
    objective = float(response.objective_value) if status == "optimal" else float("nan")
    return LPResult(status, objective, x, y, int(solver.iterations()), seconds, "glop")


def _feasible(lp: LinearProgram, feasibility_tol: float) -> bool:
    """Whether the constraints of ``lp`` admit a point (GLOP on the zero objective)."""
    solver = pywraplp.Solver.CreateSolver("GLOP")
    zero = LinearProgram(np.zeros(lp.num_cols), lp.A, lp.row_lo, lp.row_hi, lp.lo, lp.hi)
    solver.LoadModelFromProto(_mp_model(zero))
    solver.SetSolverSpecificParametersAsString(f"primal_feasibility_tolerance: {feasibility_tol!r}")
    return solver.Solve() == pywraplp.Solver.OPTIMAL


_PDLP_STATUS = {
    solve_log_pb2.TERMINATION_REASON_OPTIMAL: "optimal",
    solve_log_pb2.TERMINATION_REASON_PRIMAL_INFEASIBLE: "infeasible",
    solve_log_pb2.TERMINATION_REASON_DUAL_INFEASIBLE: "unbounded",
    solve_log_pb2.TERMINATION_REASON_PRIMAL_OR_DUAL_INFEASIBLE: "infeasible_or_unbounded",
    solve_log_pb2.TERMINATION_REASON_TIME_LIMIT: "time_limit",
    solve_log_pb2.TERMINATION_REASON_ITERATION_LIMIT: "iteration_limit",
}


def solve_pdlp(
    lp: LinearProgram,
    *,
    tol: float = 1e-4,
    time_limit: float | None = None,
    iteration_limit: int | None = None,
    x0: np.ndarray | None = None,
    y0: np.ndarray | None = None,
    presolve: bool = False,
    feasibility_polishing: bool = False,
    num_threads: int = 1,
) -> LPResult:
    """Solve with OR-Tools PDLP to relative tolerance ``tol``, optionally warm-started from ``(x0, y0)``."""
    qp = pdlp.QuadraticProgram()
    qp.objective_vector = lp.c
    qp.objective_offset = lp.obj_const
    qp.constraint_matrix = lp.A.tocsc()
    qp.constraint_lower_bounds = lp.row_lo
    qp.constraint_upper_bounds = lp.row_hi
    qp.variable_lower_bounds = lp.lo
    qp.variable_upper_bounds = lp.hi
    params = solvers_pb2.PrimalDualHybridGradientParams()
    crit = params.termination_criteria
    crit.simple_optimality_criteria.eps_optimal_relative = tol
    crit.simple_optimality_criteria.eps_optimal_absolute = tol
    if time_limit is not None:
        crit.time_sec_limit = time_limit
    if iteration_limit is not None:
        crit.iteration_limit = iteration_limit
    params.num_threads = num_threads
    params.presolve_options.use_glop = presolve
    params.use_feasibility_polishing = feasibility_polishing
    initial = None
    if x0 is not None or y0 is not None:
        initial = pdlp.PrimalAndDualSolution()
        initial.primal_solution = _warm(x0, lp.num_cols, "x0")
        initial.dual_solution = _warm(y0, lp.num_rows, "y0")
    start = time.perf_counter()
    result = pdlp.primal_dual_hybrid_gradient(qp, params, initial_solution=initial)
    seconds = time.perf_counter() - start
    log = result.solve_log
    status = _PDLP_STATUS.get(log.termination_reason, "error")
    x = np.asarray(result.primal_solution, dtype=np.float64)
    y = np.asarray(result.dual_solution, dtype=np.float64)
    objective = lp.objective(x) if status == "optimal" else float("nan")
    return LPResult(status, objective, x, y, int(log.iteration_count), seconds, "pdlp")


def _warm(v: np.ndarray | None, size: int, name: str) -> np.ndarray:
    """A warm-start vector (zeros when absent), shape-checked."""
    if v is None:
        return np.zeros(size)
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f"solve_pdlp: {name} must be a finite vector of shape ({size},), got {v.shape}")
    return v
