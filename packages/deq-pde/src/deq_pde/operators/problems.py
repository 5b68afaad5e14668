"""PDE problems: Darcy flow with the neural-operator benchmark coefficient, and nonlinear diffusion."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.sparse as sp
from scipy.interpolate import RegularGridInterpolator

from deq_pde.operators.assembly import (
    assemble_matrix,
    check_coefficient,
    coefficient_at_quadrature,
    load,
    stiffness,
)
from deq_pde.operators.boundary import DirichletBC
from deq_pde.operators.space import FunctionSpace


def gaussian_random_field(
    rng: np.random.Generator, n: int, alpha: float = 2.0, tau: float = 3.0
) -> np.ndarray:
    """Sample N(0, (-Laplacian + tau^2)^-alpha) with Neumann conditions on an n x n grid (FNO's ``GRF.m``).

    The field is a cosine series with coefficients ``tau^(alpha-1) (pi^2 |k|^2 + tau^2)^(-alpha/2)``, mean
    zero, synthesised by an orthonormal inverse DCT; entry ``[i, j]`` sits at ``(x_j, y_i) = (j, i)/(n - 1)``.
    """
    if n < 2:
        raise ValueError(f"grid size must be at least 2, got {n}")
    if alpha <= 0 or tau <= 0:
        raise ValueError(f"alpha and tau must be positive, got alpha={alpha}, tau={tau}")
    k1, k2 = np.meshgrid(np.arange(n), np.arange(n))
    coef = tau ** (alpha - 1.0) * (np.pi**2 * (k1**2 + k2**2) + tau**2) ** (-alpha / 2.0)
    spectrum = n * coef * rng.standard_normal((n, n))
    spectrum[0, 0] = 0.0
    return scipy.fft.idctn(spectrum, type=2, norm="ortho")


def threshold(field: np.ndarray, high: float = 12.0, low: float = 3.0) -> np.ndarray:
    """The benchmark's push-forward: ``high`` where the field is >= 0 and ``low`` elsewhere."""
    return np.where(np.asarray(field) >= 0.0, high, low)


def grid_field_at(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of an n x n grid field on [0, 1]^2 at ``points`` (..., 2)."""
    field = np.asarray(field)
    if field.ndim != 2 or field.shape[0] != field.shape[1]:
        raise ValueError(f"grid field must be square (n, n), got {field.shape}")
    axis = np.linspace(0.0, 1.0, field.shape[0])
    interp = RegularGridInterpolator(
        (axis, axis), field, method="linear", bounds_error=False, fill_value=None
    )
    pts = np.asarray(points)
    return interp(np.stack([pts[..., 1], pts[..., 0]], axis=-1))


class DarcyProblem:
    """Darcy flow ``-div(a grad u) = f`` in a Lagrange space, ``u = 0`` on the boundary (default f = 1)."""

    def __init__(
        self,
        space: FunctionSpace,
        f: float | Callable | np.ndarray = 1.0,
        high: float = 12.0,
        low: float = 3.0,
    ) -> None:
        self.space = space
        self.high, self.low = high, low
        self.rhs = load(space, f)
        self.bc = DirichletBC(space, 0.0)

    def coefficient(self, field: np.ndarray) -> np.ndarray:
        """Thresholded coefficient at quadrature points (C, nq) from a raw Gaussian field on an n x n grid."""
        return threshold(grid_field_at(field, self.space.quadrature_points), self.high, self.low)

    def system(self, coef, at: str = "quadrature") -> tuple[sp.csr_matrix, np.ndarray]:
        """The reduced SPD system on the free dofs for coefficient ``coef`` (finite and positive)."""
        a = check_coefficient(coefficient_at_quadrature(self.space, coef, at), "Darcy coefficient")
        return self.bc.reduce(stiffness(self.space, a, "quadrature"), self.rhs)


class NonlinearDiffusion:
    """Nonlinear diffusion ``-div((1 + u^2) grad u) = f`` with Dirichlet data ``g`` on the boundary."""

    def __init__(
        self, space: FunctionSpace, f: float | Callable | np.ndarray = 1.0, g: float | Callable = 0.0
    ) -> None:
        self.space = space
        self.rhs = load(space, f)
        self.bc = DirichletBC(space, g)

    def _at_quadrature(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (C, nq) and gradients (C, nq, 2) of ``u`` at the quadrature points."""
        u = self.space.check_nodal(u, "iterate")
        cellwise = u[self.space.dofmap]
        return (
            np.einsum("cd,qd->cq", cellwise, self.space.phi),
            np.einsum("cd,cqdi->cqi", cellwise, self.space.gradients),
        )

    def picard_system(self, u: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        """Frozen-coefficient system ``K(1 + u^2) v = F`` whose solution is the next Picard iterate."""
        uq, _ = self._at_quadrature(u)
        return stiffness(self.space, 1.0 + uq**2), self.rhs

    def residual(self, u: np.ndarray) -> np.ndarray:
        """Weak residual ``int (1 + u^2) grad u . grad phi_i - f phi_i`` over all dofs."""
        matrix, rhs = self.picard_system(u)
        return matrix @ u - rhs

    def jacobian(self, u: np.ndarray) -> sp.csr_matrix:
        """Jacobian of :meth:`residual`: ``K(1 + u^2) + int 2 u phi_j grad u . grad phi_i``."""
        uq, gq = self._at_quadrature(u)
        space = self.space
        dphi = np.einsum("cqk,cqik->cqi", gq, space.gradients)
        extra = np.einsum("cq,cqi,qj->cij", 2.0 * uq * space.weights, dphi, space.phi, optimize=True)
        return stiffness(space, 1.0 + uq**2) + assemble_matrix(space, extra)
