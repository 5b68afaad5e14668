"""Dirichlet conditions: boundary dofs, elimination with lifting, and masks for fixed-pattern paths."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from deq_pde.operators.space import FunctionSpace


class DirichletBC:
    """``u = g`` on ``dofs`` (default: whole boundary); ``g`` a constant, callable ``g(x, y)`` or array."""

    def __init__(
        self,
        space: FunctionSpace,
        values: float | Callable | np.ndarray = 0.0,
        dofs: np.ndarray | None = None,
    ) -> None:
        self.space = space
        dofs = space.boundary_dofs if dofs is None else np.unique(np.asarray(dofs, dtype=np.int64))
        if dofs.size and (dofs.min() < 0 or dofs.max() >= space.num_dofs):
            raise ValueError(
                f"Dirichlet dofs must lie in [0, {space.num_dofs}), got [{dofs.min()}, {dofs.max()}]"
            )
        self.dofs = dofs
        if callable(values):
            xy = space.dof_coordinates[dofs]
            g = np.asarray(values(xy[:, 0], xy[:, 1]), dtype=np.float64)
        else:
            g = np.asarray(values, dtype=np.float64)
        if g.ndim > 1 or (g.ndim == 1 and g.shape[0] != dofs.shape[0]):
            raise ValueError(
                f"Dirichlet values must be a scalar or have shape ({dofs.shape[0]},), got {g.shape}"
            )
        self.values = np.broadcast_to(g, dofs.shape).copy()
        mask = np.ones(space.num_dofs, dtype=bool)
        mask[dofs] = False
        self.free = np.flatnonzero(mask)

    def full(self) -> np.ndarray:
        """Vector over all dofs holding ``g`` on the constrained dofs and zero elsewhere."""
        g = np.zeros(self.space.num_dofs)
        g[self.dofs] = self.values
        return g

    def reduce(self, matrix: sp.spmatrix, rhs: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """Eliminate constrained dofs: ``(A_ff, b_f - A_fc g)`` (lifting), keeping symmetry."""
        matrix = sp.csr_matrix(matrix)
        rhs = self.space.check_nodal(rhs, "right-hand side")
        lifted = rhs - matrix @ self.full()
        return matrix[self.free][:, self.free].tocsr(), lifted[self.free]

    def expand(self, u_free: np.ndarray) -> np.ndarray:
        """Full solution vector from values on the free dofs."""
        u_free = np.asarray(u_free)
        if u_free.shape[-1] != self.free.shape[0]:
            raise ValueError(f"free-dof vector must have length {self.free.shape[0]}, got {u_free.shape}")
        u = np.broadcast_to(self.full(), (*u_free.shape[:-1], self.space.num_dofs)).copy()
        u[..., self.free] = u_free
        return u

    @cached_property
    def keep(self) -> np.ndarray:
        """Float mask over the pattern's values: 1 where both row and column are free, else 0."""
        pattern = self.space.pattern
        constrained = np.zeros(self.space.num_dofs, dtype=bool)
        constrained[self.dofs] = True
        return (~constrained[pattern.rows] & ~constrained[pattern.cols]).astype(np.float64)

    @cached_property
    def unit_diagonal(self) -> np.ndarray:
        """Float vector over the pattern's values: 1 on the diagonal of constrained rows, else 0."""
        out = np.zeros(self.space.pattern.nnz)
        out[self.space.pattern.diagonal[self.dofs]] = 1.0
        return out
