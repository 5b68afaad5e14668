"""Evaluation of finite-element functions at arbitrary points, e.g. on a regular grid for grid operators."""

from __future__ import annotations

import numpy as np
from matplotlib.tri import Triangulation

from deq_pde.operators.space import FunctionSpace


def grid_points(n: int) -> np.ndarray:
    """The ``n`` x ``n`` grid on [0, 1]^2 including the boundary, as (n*n, 2) in row-major (y, x) order."""
    if n < 2:
        raise ValueError(f"grid size must be at least 2, got {n}")
    xs, ys = np.meshgrid(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, n))
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


class PointEvaluator:
    """Precomputed evaluation of functions of ``space`` at fixed ``points`` (M, 2): cells and basis values."""

    def __init__(self, space: FunctionSpace, points: np.ndarray, tolerance: float = 1e-10) -> None:
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"evaluation points must have shape (M, 2), got {points.shape}")
        mesh = space.mesh
        finder = Triangulation(mesh.points[:, 0], mesh.points[:, 1], mesh.cells).get_trifinder()
        cells = np.asarray(finder(points[:, 0], points[:, 1]), dtype=np.int64)
        missing = np.flatnonzero(cells < 0)
        if missing.size:
            # points on the boundary can be missed by round-off: fall back to the nearest cell if close enough
            cells[missing] = self._nearest_cells(space, points[missing], tolerance)
        x0 = mesh.points[mesh.cells[cells, 0]]
        ref = np.einsum("mij,mj->mi", space.inverse_jacobian[cells], points - x0)
        ref = np.clip(ref, 0.0, 1.0)
        self.cells = cells
        self.dofs = space.dofmap[cells]
        self.basis = np.asarray(space.element.tabulate(0, ref)[0, :, :, 0])
        """Basis values at each point, (M, nd)."""

    @staticmethod
    def _nearest_cells(space: FunctionSpace, points: np.ndarray, tolerance: float) -> np.ndarray:
        """Cell with the least negative barycentric coordinate per point; error beyond ``tolerance``."""
        mesh = space.mesh
        x0 = mesh.points[mesh.cells[:, 0]]
        out = np.empty(points.shape[0], dtype=np.int64)
        for k, p in enumerate(points):
            ref = np.einsum("cij,cj->ci", space.inverse_jacobian, p - x0)
            bary = np.concatenate([1.0 - ref.sum(1, keepdims=True), ref], axis=1).min(axis=1)
            best = int(np.argmax(bary))
            if bary[best] < -tolerance:
                raise ValueError(f"evaluation point {p.tolist()} lies outside the mesh")
            out[k] = best
        return out

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Values of the finite-element function(s) ``u`` (..., num_dofs) at the points, (..., M)."""
        u = np.asarray(u)
        return np.einsum("...md,md->...m", u[..., self.dofs], self.basis)
