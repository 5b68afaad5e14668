"""Classical sparse linear solvers: direct LU, AMG-preconditioned CG, Jacobi and Gauss-Seidel.

Residual histories are relative: ``||b - A x_k|| / ||b||`` (``||b||`` replaced by 1 when ``b = 0``). A
result is ``converged`` only when its last residual is finite and within the ``tol`` asked for: a fixed
number of sweeps without a ``tol`` claims nothing.
"""

from __future__ import annotations

import numpy as np
import pyamg
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from deq_pde.baselines.result import SolveResult

ORDERINGS = ("COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL")


def _check_system(matrix, rhs, x0=None) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Validate a square sparse matrix, a matching right-hand side and start vector, all finite."""
    if not sp.issparse(matrix):
        raise ValueError(f"matrix must be a scipy sparse matrix, got {type(matrix).__name__}")
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    n = matrix.shape[0]
    if matrix.shape[1] != n:
        raise ValueError(f"matrix must be square, got shape {matrix.shape}")
    rhs = np.asarray(rhs, dtype=np.float64)
    if rhs.shape != (n,):
        raise ValueError(f"right-hand side must have shape ({n},) to match the matrix, got {rhs.shape}")
    x = np.zeros(n) if x0 is None else np.array(x0, dtype=np.float64)
    if x.shape != (n,):
        raise ValueError(f"initial guess must have shape ({n},), got {x.shape}")
    for name, values in (("matrix", matrix.data), ("right-hand side", rhs), ("initial guess", x)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(
                f"the {name} has {bad.size} NaN or infinite entries (e.g. {float(values[bad[0]])!r}); "
                f"check the coefficient and load it was assembled from"
            )
    return matrix, rhs, x


def _scale(rhs: np.ndarray) -> float:
    norm = float(np.linalg.norm(rhs))
    return norm if norm > 0 else 1.0


def direct(matrix, rhs, ordering: str = "COLAMD") -> SolveResult:
    """Sparse LU (SuperLU) with a fill-reducing column ordering (COLAMD or a minimum-degree variant)."""
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
    matrix, rhs, _ = _check_system(matrix, rhs)
    x = splu(matrix.tocsc(), permc_spec=ordering).solve(rhs)
    res = np.array([1.0, np.linalg.norm(rhs - matrix @ x) / _scale(rhs)])
    return SolveResult(x, 1, res, bool(np.all(np.isfinite(x))))


def cg_amg(matrix, rhs, tol: float = 1e-10, maxiter: int = 500, x0=None) -> SolveResult:
    """Conjugate gradients preconditioned by one smoothed-aggregation AMG V-cycle (pyamg)."""
    matrix, rhs, x = _check_system(matrix, rhs, x0)
    hierarchy = pyamg.smoothed_aggregation_solver(matrix, symmetry="symmetric")
    history: list[float] = []
    x, info = pyamg.krylov.cg(
        matrix,
        rhs,
        x0=x,
        tol=tol,
        maxiter=maxiter,
        M=hierarchy.aspreconditioner(cycle="V"),
        residuals=history,
    )
    res = np.asarray(history) / _scale(rhs)
    return SolveResult(np.asarray(x), len(history) - 1, res, info == 0)


def jacobi(
    matrix, rhs, iterations: int, omega: float = 1.0, tol: float | None = None, x0=None
) -> SolveResult:
    """``iterations`` sweeps of (weighted) Jacobi ``x += omega D^-1 (b - A x)``; stops early at ``tol``."""
    matrix, rhs, x = _check_system(matrix, rhs, x0)
    diag = matrix.diagonal()
    if np.any(diag == 0):
        raise ValueError("Jacobi needs a matrix with a non-zero diagonal")
    scale = _scale(rhs)
    r = rhs - matrix @ x
    history = [np.linalg.norm(r) / scale]
    for _ in range(iterations):
        if _done(history[-1], tol):
            break
        x += omega * r / diag
        r = rhs - matrix @ x
        history.append(np.linalg.norm(r) / scale)
    return SolveResult(x, len(history) - 1, np.asarray(history), _met(history[-1], tol))


def gauss_seidel(
    matrix, rhs, iterations: int, sweep: str = "forward", tol: float | None = None, x0=None
) -> SolveResult:
    """``iterations`` Gauss-Seidel sweeps (forward, backward or symmetric); stops early at ``tol``."""
    if sweep not in ("forward", "backward", "symmetric"):
        raise ValueError(f"sweep must be 'forward', 'backward' or 'symmetric', got {sweep!r}")
    matrix, rhs, x = _check_system(matrix, rhs, x0)
    if np.any(matrix.diagonal() == 0):
        raise ValueError("Gauss-Seidel needs a matrix with a non-zero diagonal")
    matrix.sort_indices()
    scale = _scale(rhs)
    history = [np.linalg.norm(rhs - matrix @ x) / scale]
    for _ in range(iterations):
        if _done(history[-1], tol):
            break
        pyamg.relaxation.relaxation.gauss_seidel(matrix, x, rhs, iterations=1, sweep=sweep)
        history.append(np.linalg.norm(rhs - matrix @ x) / scale)
    return SolveResult(x, len(history) - 1, np.asarray(history), _met(history[-1], tol))


def _met(residual: float, tol: float | None) -> bool:
    """Whether a relative residual is finite and within ``tol`` (never without a ``tol``)."""
    return tol is not None and bool(np.isfinite(residual)) and residual <= tol


def _done(residual: float, tol: float | None) -> bool:
    """Whether a stationary iteration should stop: within ``tol``, or diverged to inf/NaN."""
    return _met(residual, tol) or not np.isfinite(residual)
