"""JAX assembly and solves: batched over coefficient fields, differentiable in them, jit-compatible.

Matrices are value arrays ``(..., nnz)`` on the space's fixed CSR pattern; assembly is a scatter-add of local
matrices into it. Enable float64 with ``jax.config.update("jax_enable_x64", True)`` for double precision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from deq_pde.operators.boundary import DirichletBC
from deq_pde.operators.space import FunctionSpace


class JaxAssembler:
    """Batched JAX assembly of stiffness, mass and load on ``space``'s sparsity pattern."""

    def __init__(self, space: FunctionSpace, dtype=None) -> None:
        self.space = space
        self.dtype = jnp.result_type(float) if dtype is None else dtype
        pattern = space.pattern
        f = lambda a: jnp.asarray(a, dtype=self.dtype)
        self.stiffness_kernel = f(space.stiffness_kernel)
        self.phi = f(space.phi)
        self.mass_local = f(space.mass_local)
        self.load_kernel = f(space.load_kernel)
        self.dofmap = jnp.asarray(space.dofmap, dtype=jnp.int32)
        self.scatter = jnp.asarray(pattern.scatter, dtype=jnp.int32)
        self.rows = jnp.asarray(pattern.rows, dtype=jnp.int32)
        self.cols = jnp.asarray(pattern.cols, dtype=jnp.int32)
        self.diagonal = jnp.asarray(pattern.diagonal, dtype=jnp.int32)
        self._bc: dict[int, tuple] = {}

    def coefficient_at_quadrature(self, coef, at: str = "quadrature") -> jnp.ndarray:
        """Coefficient at quadrature points (..., C, nq) from quadrature or nodal (..., N) values."""
        coef = jnp.asarray(coef)
        space = self.space
        if at == "quadrature":
            if coef.ndim < 2 or tuple(coef.shape[-2:]) != (space.num_cells, space.num_quadrature_points):
                raise ValueError(
                    f"coefficient at quadrature points must have shape (..., {space.num_cells}, "
                    f"{space.num_quadrature_points}), got {tuple(coef.shape)}"
                )
            return coef
        if at == "nodes":
            if coef.ndim < 1 or coef.shape[-1] != space.num_dofs:
                raise ValueError(
                    f"nodal coefficient must have shape (..., {space.num_dofs}), got {tuple(coef.shape)}"
                )
            return jnp.einsum("...ci,qi->...cq", coef[..., self.dofmap], self.phi.astype(coef.dtype))
        raise ValueError(f"at must be 'quadrature' or 'nodes', got {at!r}")

    def _scatter(self, local: jnp.ndarray) -> jnp.ndarray:
        """Sum local entries (..., C*nd*nd) into pattern values (..., nnz)."""
        out = jnp.zeros((*local.shape[:-1], self.space.pattern.nnz), dtype=local.dtype)
        return out.at[..., self.scatter].add(local)

    def stiffness(self, coef, at: str = "quadrature") -> jnp.ndarray:
        """Stiffness values (..., nnz) of ``-div(coef grad u)`` for a batch of coefficients."""
        a = self.coefficient_at_quadrature(coef, at)
        local = jnp.einsum("...cq,cqm->...cm", a, self.stiffness_kernel.astype(a.dtype))
        return self._scatter(local.reshape(*local.shape[:-2], -1))

    def mass(self) -> jnp.ndarray:
        """Mass-matrix values (nnz,)."""
        return self._scatter(self.mass_local.reshape(-1))

    def load(self, f, at: str = "quadrature") -> jnp.ndarray:
        """Load vectors (..., N) of ``int f phi_i`` for ``f`` at quadrature points or nodes."""
        fq = self.coefficient_at_quadrature(f, at)
        local = jnp.einsum("...cq,cqi->...ci", fq, self.load_kernel.astype(fq.dtype))
        out = jnp.zeros((*local.shape[:-2], self.space.num_dofs), dtype=local.dtype)
        return out.at[..., self.dofmap].add(local)

    def matvec(self, values, x) -> jnp.ndarray:
        """Sparse product ``A x`` for pattern values (..., nnz) and vectors (..., N), broadcasting batches."""
        products = values * x[..., self.cols]
        out = jnp.zeros((*products.shape[:-1], self.space.num_dofs), dtype=products.dtype)
        return out.at[..., self.rows].add(products)

    def dirichlet(self, values, rhs, bc: DirichletBC) -> tuple[jnp.ndarray, jnp.ndarray]:
        """Impose ``bc`` symmetrically: lift ``rhs -= A g``, zero constrained rows/columns, unit diagonal."""
        if id(bc) not in self._bc or self._bc[id(bc)][0] is not bc:
            if bc.space is not self.space:
                raise ValueError("the Dirichlet condition belongs to another function space")
            free = np.zeros(self.space.num_dofs)
            free[bc.free] = 1.0
            self._bc[id(bc)] = (
                bc,
                *tuple(jnp.asarray(a, self.dtype) for a in (bc.keep, bc.unit_diagonal, free, bc.full())),
            )
        _, keep, unit, free, g = self._bc[id(bc)]
        lifted = (rhs - self.matvec(values, g)) * free + g
        return values * keep + unit, lifted

    def solve(self, values, rhs, tol: float = 1e-10, maxiter: int | None = None) -> jnp.ndarray:
        """Solve SPD systems ``A x = rhs`` by Jacobi-preconditioned CG; differentiable, jit-able."""
        values, rhs = jnp.asarray(values), jnp.asarray(rhs)
        if values.shape[-1] != self.space.pattern.nnz:
            raise ValueError(
                f"matrix values must have shape (..., {self.space.pattern.nnz}), got {values.shape}"
            )
        if rhs.shape[-1] != self.space.num_dofs:
            raise ValueError(f"right-hand side must have shape (..., {self.space.num_dofs}), got {rhs.shape}")
        batch = jnp.broadcast_shapes(values.shape[:-1], rhs.shape[:-1])
        v = jnp.broadcast_to(values, (*batch, values.shape[-1])).reshape(-1, values.shape[-1])
        b = jnp.broadcast_to(rhs, (*batch, rhs.shape[-1])).reshape(-1, rhs.shape[-1])
        maxiter = 10 * self.space.num_dofs if maxiter is None else maxiter

        def one(vals, bb):
            dinv = jax.lax.stop_gradient(1.0 / vals[self.diagonal])
            x, _ = jax.scipy.sparse.linalg.cg(
                lambda y: self.matvec(vals, y), bb, tol=tol, maxiter=maxiter, M=lambda y: dinv * y
            )
            return x

        return jax.vmap(one)(v, b).reshape(*batch, -1)
