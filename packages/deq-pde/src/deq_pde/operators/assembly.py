"""Reference numpy/scipy assembly: stiffness with a variable coefficient, mass and load (COO -> CSR)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import scipy.sparse as sp

from deq_pde.operators.space import FunctionSpace

Where = Literal["quadrature", "nodes"]


def coefficient_at_quadrature(space: FunctionSpace, coef, at: Where = "quadrature") -> np.ndarray:
    """Coefficient at quadrature points (..., C, nq) from quadrature values, nodal values or a callable."""
    if callable(coef):
        return space.at_quadrature(coef)
    if np.isscalar(coef):
        return np.full((space.num_cells, space.num_quadrature_points), float(coef))
    if at == "quadrature":
        return space.check_quadrature(coef, "coefficient")
    if at == "nodes":
        coef = space.check_nodal(coef, "coefficient")
        return np.einsum("...ci,qi->...cq", coef[..., space.dofmap], space.phi)
    raise ValueError(f"at must be 'quadrature' or 'nodes', got {at!r}")


def check_coefficient(values: np.ndarray, name: str = "coefficient", positive: bool = True) -> np.ndarray:
    """``values`` if all finite (and > 0 when ``positive``: ``-div(a grad u)`` needs it); else raise."""
    bad = ~np.isfinite(values) | (values <= 0) if positive else ~np.isfinite(values)
    if np.any(bad):
        need = "finite and positive everywhere (the system is not SPD otherwise)" if positive else "finite"
        raise ValueError(
            f"the {name} must be {need}: {int(bad.sum())} of {values.size} values at the quadrature points "
            f"are not, e.g. {float(values[bad][0])!r}"
        )
    return values


def assemble_matrix(space: FunctionSpace, local: np.ndarray) -> sp.csr_matrix:
    """Sum local matrices (C, nd, nd) into the global CSR matrix via scipy COO -> CSR."""
    nd = space.dofs_per_cell
    rows = np.repeat(space.dofmap, nd, axis=1).ravel()
    cols = np.tile(space.dofmap, (1, nd)).ravel()
    shape = (space.num_dofs, space.num_dofs)
    mat = sp.coo_matrix((local.ravel(), (rows, cols)), shape=shape).tocsr()
    mat.sum_duplicates()
    return mat


def stiffness(space: FunctionSpace, coef=1.0, at: Where = "quadrature") -> sp.csr_matrix:
    """Stiffness matrix of ``-div(coef grad u)``; ``coef`` at quadrature points, nodes or a callable."""
    a = check_coefficient(coefficient_at_quadrature(space, coef, at))
    if a.ndim != 2:
        raise ValueError(f"the numpy path assembles one coefficient at a time, got shape {a.shape}")
    nd = space.dofs_per_cell
    local = np.einsum("cq,cqm->cm", a, space.stiffness_kernel).reshape(space.num_cells, nd, nd)
    return assemble_matrix(space, local)


def mass(space: FunctionSpace) -> sp.csr_matrix:
    """Mass matrix ``int phi_i phi_j``."""
    return assemble_matrix(space, space.mass_local)


def load(
    space: FunctionSpace, f: float | Callable | np.ndarray = 1.0, at: Where = "quadrature"
) -> np.ndarray:
    """Load vector ``int f phi_i``; ``f`` a constant, callable ``f(x, y)``, quadrature or nodal values."""
    fq = check_coefficient(coefficient_at_quadrature(space, f, at), "load f", positive=False)
    if fq.ndim != 2:
        raise ValueError(f"the numpy path assembles one load at a time, got shape {fq.shape}")
    local = np.einsum("cq,cqi->ci", fq, space.load_kernel)
    return np.bincount(space.dofmap.ravel(), weights=local.ravel(), minlength=space.num_dofs)
