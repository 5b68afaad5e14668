"""Newton and Picard iterations for nonlinear problems with Dirichlet conditions (e.g. nonlinear diffusion).

Residual histories are ``||R_free(u_k)|| / ||R_free(u_0)||`` over the unconstrained dofs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from deq_pde.baselines.linear import direct
from deq_pde.baselines.result import SolveResult
from deq_pde.operators.boundary import DirichletBC

LinearSolver = Callable[[sp.csr_matrix, np.ndarray], "SolveResult"]


class NonlinearProblem(Protocol):
    """What the nonlinear solvers need: a Dirichlet condition, residual, Jacobian and Picard system."""

    bc: DirichletBC

    def residual(self, u: np.ndarray) -> np.ndarray:
        """Residual over all dofs."""

    def jacobian(self, u: np.ndarray) -> sp.csr_matrix:
        """Jacobian of the residual over all dofs."""

    def picard_system(self, u: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """Linearised system ``A(u) v = b`` whose solution is the next Picard iterate."""


def _start(problem: NonlinearProblem, u0) -> np.ndarray:
    """Initial iterate with the Dirichlet values imposed."""
    bc = problem.bc
    u = bc.full() if u0 is None else np.array(u0, dtype=np.float64)
    if u.shape != (bc.space.num_dofs,):
        raise ValueError(f"initial guess must have shape ({bc.space.num_dofs},), got {u.shape}")
    u[bc.dofs] = bc.values
    return u


def newton(
    problem: NonlinearProblem,
    u0=None,
    tol: float = 1e-10,
    maxiter: int = 30,
    linear_solver: LinearSolver = direct,
) -> SolveResult:
    """Newton: solve ``J(u_k) du = -R(u_k)`` on the free dofs until the relative residual is ``tol``."""
    u = _start(problem, u0)
    free = problem.bc.free
    r = problem.residual(u)[free]
    scale = float(np.linalg.norm(r)) or 1.0
    history = [np.linalg.norm(r) / scale]
    while history[-1] > tol and len(history) <= maxiter:
        jac = problem.jacobian(u)[free][:, free]
        u[free] -= linear_solver(jac.tocsr(), r).solution
        r = problem.residual(u)[free]
        history.append(np.linalg.norm(r) / scale)
    return SolveResult(u, len(history) - 1, np.asarray(history), history[-1] <= tol)


def picard(
    problem: NonlinearProblem,
    u0=None,
    tol: float = 1e-10,
    maxiter: int = 200,
    linear_solver: LinearSolver = direct,
) -> SolveResult:
    """Picard (frozen-coefficient) iteration ``A(u_k) u_{k+1} = b`` until the relative residual is ``tol``."""
    u = _start(problem, u0)
    bc = problem.bc
    r = problem.residual(u)[bc.free]
    scale = float(np.linalg.norm(r)) or 1.0
    history = [np.linalg.norm(r) / scale]
    while history[-1] > tol and len(history) <= maxiter:
        matrix, rhs = bc.reduce(*problem.picard_system(u))
        u = bc.expand(linear_solver(matrix, rhs).solution)
        history.append(np.linalg.norm(problem.residual(u)[bc.free]) / scale)
    return SolveResult(u, len(history) - 1, np.asarray(history), history[-1] <= tol)
