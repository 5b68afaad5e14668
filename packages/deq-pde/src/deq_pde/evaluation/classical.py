"""Classical solvers against a tolerance: iterations and wall time to reach a relative L2 error on the grid.

Each solver is a function ``run(k) -> grid solution`` (``k`` iterations, assembly included); the smallest
``k`` that reaches the target error is found by doubling and bisection, then one fresh run with that ``k``
is timed. Errors are measured against the reference (converged FEM) solution on the same mesh and grid.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deq_pde.baselines.linear import cg_amg, direct, gauss_seidel, jacobi
from deq_pde.baselines.nonlinear import newton, picard
from deq_pde.datasets.darcy import DarcyConfig, darcy_setup
from deq_pde.datasets.nonlinear import NonlinearConfig, nonlinear_problem, nonlinear_setup

Runner = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Timed:
    """Mean over samples: relative error reached, seconds per sample, iterations; ``reached`` for all."""

    error: float
    seconds: float
    iterations: float
    reached: bool


def _relative(pred: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))


def iterations_to_target(
    run: Runner, reference: np.ndarray, target: float, max_iter: int
) -> tuple[int, bool]:
    """``(k, True)``: the least ``k`` reaching ``target`` by bisection, else ``(max_iter, False)``."""
    ok = lambda k: _relative(run(k), reference) <= target
    low, high = 0, 1
    while not ok(high):
        if high >= max_iter:
            return max_iter, False
        low, high = high, min(2 * high, max_iter)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(mid) else (mid, high)
    return high, True


def time_to_target(
    runners: list[Runner], references: np.ndarray, target: float, max_iter: int, iterative: bool = True
) -> Timed:
    """Mean iterations, seconds and error of the runs (one per sample) that reach ``target``."""
    errors, seconds, iterations, reached = [], [], [], True
    for run, ref in zip(runners, references, strict=True):
        k, hit = iterations_to_target(run, ref, target, max_iter) if iterative else (1, True)
        start = time.perf_counter()
        solution = run(k)
        seconds.append(time.perf_counter() - start)
        errors.append(_relative(solution, ref))
        iterations.append(k)
        reached = reached and hit and errors[-1] <= target
    return Timed(float(np.mean(errors)), float(np.mean(seconds)), float(np.mean(iterations)), reached)


def darcy_runners(
    config: DarcyConfig, field: np.ndarray | None = None, coefficient: np.ndarray | None = None
) -> dict[str, tuple[Runner, bool]]:
    """Direct, CG+AMG, Jacobi and Gauss-Seidel on the Darcy system (assembly included) of one raw grid
    ``field`` (thresholded at the quadrature points in each run) or of a ``coefficient`` already at them."""
    if (field is None) == (coefficient is None):
        raise ValueError(
            "darcy_runners takes a raw field or a coefficient at the quadrature points, not both"
        )
    problem, evaluator = darcy_setup(config)
    n = config.grid_size

    def solved(solve: Callable) -> Runner:
        def run(k: int) -> np.ndarray:
            matrix, rhs = problem.system(problem.coefficient(field) if coefficient is None else coefficient)
            return evaluator(problem.bc.expand(solve(matrix, rhs, k).solution)).reshape(n, n)

        return run

    return {
        "direct": (solved(lambda m, b, k: direct(m, b)), False),
        "cg_amg": (solved(lambda m, b, k: cg_amg(m, b, tol=0.0, maxiter=k)), True),
        "jacobi": (solved(lambda m, b, k: jacobi(m, b, k)), True),
        "gauss_seidel": (solved(lambda m, b, k: gauss_seidel(m, b, k, sweep="symmetric")), True),
    }


def nonlinear_runners(config: NonlinearConfig, forcing: np.ndarray) -> dict[str, tuple[Runner, bool]]:
    """Newton and Picard (sparse direct inner solves) on the nonlinear-diffusion problem of one forcing."""
    _, evaluator = nonlinear_setup(config)
    n = config.grid_size

    def solved(method: Callable) -> Runner:
        def run(k: int) -> np.ndarray:
            result = method(nonlinear_problem(config, forcing), tol=0.0, maxiter=k)
            return evaluator(result.solution).reshape(n, n)

        return run

    return {"newton": (solved(newton), True), "picard": (solved(picard), True)}


def classical_baselines(
    runners: list[dict[str, tuple[Runner, bool]]],
    references: np.ndarray,
    targets: dict[str, float],
    max_iter: int,
) -> dict[str, dict[str, Timed]]:
    """For each target name and solver: :class:`Timed` over the samples (``runners[i]`` for sample ``i``)."""
    if len(runners) != len(references):
        raise ValueError(f"got {len(runners)} runner sets for {len(references)} reference solutions")
    out: dict[str, dict[str, Timed]] = {}
    for name, target in targets.items():
        out[name] = {
            solver: time_to_target([r[solver][0] for r in runners], references, target, max_iter, r0[1])
            for solver, r0 in runners[0].items()
        }
    return out
