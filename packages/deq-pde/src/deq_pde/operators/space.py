"""Lagrange P1/P2 spaces on triangle meshes: basix tabulation, dof map, geometry and sparsity pattern.

Everything here is numpy and is computed once; the numpy, torch and JAX assembly paths all read it.
"""

from __future__ import annotations

from functools import cached_property

import basix
import numpy as np

from deq_pde.operators.mesh import Mesh


class FunctionSpace:
    """Continuous Lagrange space of ``degree`` 1 or 2 on ``mesh``; quadrature of ``quadrature_degree``."""

    def __init__(self, mesh: Mesh, degree: int = 1, quadrature_degree: int | None = None) -> None:
        if degree not in (1, 2):
            raise ValueError(f"only Lagrange degree 1 or 2 is supported, got degree={degree}")
        self.mesh = mesh
        self.degree = degree
        self.quadrature_degree = 2 * degree if quadrature_degree is None else int(quadrature_degree)
        if self.quadrature_degree < 1:
            raise ValueError(f"quadrature_degree must be >= 1, got {self.quadrature_degree}")
        self.element = basix.create_element(
            basix.ElementFamily.P, basix.CellType.triangle, degree, basix.LagrangeVariant.equispaced
        )
        ref_points, ref_weights = basix.make_quadrature(basix.CellType.triangle, self.quadrature_degree)
        self.quadrature_reference_points: np.ndarray = np.asarray(ref_points, dtype=np.float64)
        self.quadrature_weights: np.ndarray = np.asarray(ref_weights, dtype=np.float64)
        tab = self.element.tabulate(1, self.quadrature_reference_points)
        self.phi: np.ndarray = np.ascontiguousarray(tab[0, :, :, 0])
        """Basis values at quadrature points, (nq, nd)."""
        self.reference_gradients: np.ndarray = np.ascontiguousarray(np.moveaxis(tab[1:3, :, :, 0], 0, -1))
        """Reference basis gradients at quadrature points, (nq, nd, 2)."""
        self.dofmap, self.num_dofs, self.dof_coordinates = self._build_dofmap()
        self._build_geometry()

    # ------------------------------------------------------------------ dofs
    def _build_dofmap(self) -> tuple[np.ndarray, int, np.ndarray]:
        """Cell-to-dof map following basix's local dof order: vertices first, then one dof per edge (P2)."""
        mesh = self.mesh
        if self.degree == 1:
            return mesh.cells.copy(), mesh.num_vertices, mesh.points.copy()
        edges, cell_edges = mesh.edges
        dofmap = np.concatenate([mesh.cells, mesh.num_vertices + cell_edges], axis=1)
        midpoints = mesh.points[edges].mean(axis=1)
        return dofmap, mesh.num_vertices + edges.shape[0], np.concatenate([mesh.points, midpoints])

    @property
    def num_cells(self) -> int:
        """Number of mesh cells."""
        return self.mesh.num_cells

    @property
    def dofs_per_cell(self) -> int:
        """Local dofs per cell: 3 for P1, 6 for P2."""
        return int(self.dofmap.shape[1])

    @property
    def num_quadrature_points(self) -> int:
        """Quadrature points per cell."""
        return int(self.quadrature_weights.shape[0])

    @cached_property
    def boundary_dofs(self) -> np.ndarray:
        """Sorted dofs on the mesh boundary (vertices of boundary edges, plus their edge dofs for P2)."""
        edges, _ = self.mesh.edges
        bedges = self.mesh.boundary_edges
        dofs = [np.unique(edges[bedges].ravel())]
        if self.degree == 2:
            dofs.append(self.mesh.num_vertices + bedges)
        return np.unique(np.concatenate(dofs))

    # -------------------------------------------------------------- geometry
    def _build_geometry(self) -> None:
        """Affine maps per cell: Jacobians, physical gradients, weighted determinants, quadrature points."""
        x = self.mesh.points[self.mesh.cells]  # (C, 3, 2)
        jac = np.stack([x[:, 1] - x[:, 0], x[:, 2] - x[:, 0]], axis=2)  # (C, 2, 2): columns are edge vectors
        self.detJ: np.ndarray = jac[:, 0, 0] * jac[:, 1, 1] - jac[:, 0, 1] * jac[:, 1, 0]
        inv = np.empty_like(jac)
        inv[:, 0, 0], inv[:, 1, 1] = jac[:, 1, 1], jac[:, 0, 0]
        inv[:, 0, 1], inv[:, 1, 0] = -jac[:, 0, 1], -jac[:, 1, 0]
        inv /= self.detJ[:, None, None]
        self.inverse_jacobian: np.ndarray = inv
        """Inverse Jacobians of the affine cell maps, (C, 2, 2)."""
        # grad_x phi = J^{-T} grad_ref phi
        self.gradients: np.ndarray = np.einsum("cki,qdk->cqdi", inv, self.reference_gradients)
        """Physical basis gradients at quadrature points, (C, nq, nd, 2)."""
        self.weights: np.ndarray = np.abs(self.detJ)[:, None] * self.quadrature_weights[None, :]
        """Quadrature weights times |det J|, (C, nq)."""
        self.quadrature_points: np.ndarray = x[:, :1, :] + np.einsum(
            "cik,qk->cqi", jac, self.quadrature_reference_points
        )
        """Physical quadrature points, (C, nq, 2)."""

    @cached_property
    def stiffness_kernel(self) -> np.ndarray:
        """``w_q grad phi_i . grad phi_j`` per cell and quadrature point, (C, nq, nd*nd)."""
        k = np.einsum("cq,cqik,cqjk->cqij", self.weights, self.gradients, self.gradients)
        return k.reshape(self.num_cells, self.num_quadrature_points, -1)

    @cached_property
    def mass_local(self) -> np.ndarray:
        """Local mass matrices ``sum_q w_q phi_i phi_j``, (C, nd, nd)."""
        return np.einsum("cq,qi,qj->cij", self.weights, self.phi, self.phi)

    @cached_property
    def load_kernel(self) -> np.ndarray:
        """``w_q phi_i`` per cell, (C, nq, nd): local load = f_q @ it."""
        return self.weights[:, :, None] * self.phi[None, :, :]

    # -------------------------------------------------------------- pattern
    @cached_property
    def pattern(self) -> SparsityPattern:
        """CSR sparsity pattern of the assembled matrices and the scatter index from local entries into it."""
        return SparsityPattern.from_dofmap(self.dofmap, self.num_dofs)

    # -------------------------------------------------------------- fields
    def interpolate(self, func) -> np.ndarray:
        """Nodal interpolant of ``func(x, y)`` (vectorised over numpy arrays), shape (num_dofs,)."""
        values = np.asarray(func(self.dof_coordinates[:, 0], self.dof_coordinates[:, 1]), dtype=np.float64)
        return np.broadcast_to(values, (self.num_dofs,)).copy()

    def at_quadrature(self, func) -> np.ndarray:
        """``func(x, y)`` evaluated at the physical quadrature points, shape (C, nq)."""
        q = self.quadrature_points
        values = np.asarray(func(q[..., 0], q[..., 1]), dtype=np.float64)
        return np.broadcast_to(values, q.shape[:2]).copy()

    def check_nodal(self, values: np.ndarray, name: str = "nodal values") -> np.ndarray:
        """Validate an array of shape (..., num_dofs) and return it as an array."""
        values = np.asarray(values)
        if values.ndim < 1 or values.shape[-1] != self.num_dofs:
            raise ValueError(
                f"{name} must have shape (..., {self.num_dofs}) (one per dof), got {values.shape}"
            )
        return values

    def check_quadrature(self, values: np.ndarray, name: str = "quadrature values") -> np.ndarray:
        """Validate an array of shape (..., C, nq) and return it as an array."""
        values = np.asarray(values)
        expected = (self.num_cells, self.num_quadrature_points)
        if values.ndim < 2 or values.shape[-2:] != expected:
            raise ValueError(
                f"{name} must have shape (..., {expected[0]}, {expected[1]}) (cells, quadrature points), "
                f"got {values.shape}"
            )
        return values


class SparsityPattern:
    """A fixed CSR pattern (``indptr``, ``indices``), COO ``rows``/``cols`` and a local-entry ``scatter``."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, scatter: np.ndarray, num_rows: int) -> None:
        self.indptr = indptr
        self.indices = indices
        self.scatter = scatter
        """For each local entry (c, i, j) flattened, its position in the CSR value array."""
        self.num_rows = num_rows
        self.rows = np.repeat(np.arange(num_rows), np.diff(indptr))
        self.cols = indices

    @property
    def nnz(self) -> int:
        """Number of stored entries."""
        return int(self.indices.shape[0])

    @classmethod
    def from_dofmap(cls, dofmap: np.ndarray, num_dofs: int) -> SparsityPattern:
        """Pattern of all (dof_i, dof_j) couplings within cells, in sorted row-major order."""
        nd = dofmap.shape[1]
        rows = np.repeat(dofmap, nd, axis=1).ravel()
        cols = np.tile(dofmap, (1, nd)).ravel()
        keys = rows * num_dofs + cols
        unique, scatter = np.unique(keys, return_inverse=True)
        urows = unique // num_dofs
        indptr = np.zeros(num_dofs + 1, dtype=np.int64)
        np.cumsum(np.bincount(urows, minlength=num_dofs), out=indptr[1:])
        return cls(indptr, unique % num_dofs, scatter.ravel(), num_dofs)

    @cached_property
    def diagonal(self) -> np.ndarray:
        """Position of each row's diagonal entry in the value array, (num_rows,)."""
        pos = np.flatnonzero(self.rows == self.cols)
        if pos.shape[0] != self.num_rows:
            raise ValueError("sparsity pattern lacks some diagonal entries")
        return pos
