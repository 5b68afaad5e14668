"""Error metrics: relative L2 on grids and in the FEM (mass-matrix) norm, and errors against exact fields."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from deq_pde.operators.space import FunctionSpace


def _pair(pred, ref) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if pred.shape != ref.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match reference shape {ref.shape}")
    return pred, ref


def relative_l2_grid(pred, ref, grid_dims: int = 2) -> np.ndarray:
    """``||pred - ref|| / ||ref||`` over the trailing ``grid_dims`` axes, one value per leading index."""
    pred, ref = _pair(pred, ref)
    if pred.ndim < grid_dims:
        raise ValueError(f"fields need at least {grid_dims} grid axes, got shape {pred.shape}")
    axes = tuple(range(pred.ndim - grid_dims, pred.ndim))
    return np.sqrt(((pred - ref) ** 2).sum(axes) / (ref**2).sum(axes))


def relative_l2_fem(pred, ref, mass: sp.spmatrix) -> np.ndarray:
    """``sqrt(e^T M e / r^T M r)`` with the mass matrix ``M``, for nodal vectors (..., N)."""
    pred, ref = _pair(pred, ref)
    n = mass.shape[0]
    if pred.shape[-1] != n:
        raise ValueError(f"nodal vectors must have last axis {n} (the mass matrix size), got {pred.shape}")
    err = pred - ref
    num = np.einsum("...i,...i->...", err, (mass @ err.reshape(-1, n).T).T.reshape(err.shape))
    den = np.einsum("...i,...i->...", ref, (mass @ ref.reshape(-1, n).T).T.reshape(ref.shape))
    return np.sqrt(num / den)


def error_norms(
    space: FunctionSpace,
    u: np.ndarray,
    exact: Callable,
    exact_gradient: Callable | None = None,
    quadrature_degree: int = 8,
) -> tuple[float, float]:
    """L2 and H1-seminorm errors of the nodal vector ``u`` against ``exact`` and ``exact_gradient``.

    The H1 value is NaN when ``exact_gradient`` (returning a pair of arrays) is not given.
    """
    fine = FunctionSpace(space.mesh, space.degree, quadrature_degree)
    u = space.check_nodal(u, "finite-element vector")
    cellwise = u[fine.dofmap]
    x, y = fine.quadrature_points[..., 0], fine.quadrature_points[..., 1]
    uq = np.einsum("cd,qd->cq", cellwise, fine.phi)
    l2 = float(np.sqrt((fine.weights * (uq - exact(x, y)) ** 2).sum()))
    if exact_gradient is None:
        return l2, float("nan")
    gq = np.einsum("cd,cqdi->cqi", cellwise, fine.gradients)
    gx, gy = exact_gradient(x, y)
    h1 = float(np.sqrt((fine.weights * ((gq[..., 0] - gx) ** 2 + (gq[..., 1] - gy) ** 2)).sum()))
    return l2, h1
