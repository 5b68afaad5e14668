"""Classical solvers: sparse direct, AMG-preconditioned CG, Jacobi, Gauss-Seidel, Newton and Picard."""

from deq_pde.baselines.linear import cg_amg, direct, gauss_seidel, jacobi
from deq_pde.baselines.nonlinear import NonlinearProblem, newton, picard
from deq_pde.baselines.result import SolveResult

__all__ = [
    "NonlinearProblem",
    "SolveResult",
    "cg_amg",
    "direct",
    "gauss_seidel",
    "jacobi",
    "newton",
    "picard",
]
