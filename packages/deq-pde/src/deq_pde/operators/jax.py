"""JAX assembly and solves: :class:`~deq_pde.operators.batched.BatchedAssembler` on JAX arrays, jit-able.

Assembly is the shared code; what JAX adds is making the cached constants outside any trace and the CG
solve of ``jax.scipy``, differentiable and vmapped over the batch. Enable float64 with
``jax.config.update("jax_enable_x64", True)`` for double precision.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from deq_pde.operators.batched import BatchedAssembler
from deq_pde.operators.boundary import DirichletBC
from deq_pde.operators.space import FunctionSpace


class JaxAssembler(BatchedAssembler):
    """Batched JAX assembly of stiffness, mass and load on ``space``'s sparsity pattern."""

    def __init__(self, space: FunctionSpace, dtype=None) -> None:
        super().__init__(space)
        self.dtype = jnp.result_type(float) if dtype is None else dtype

    def array(self, x, name: str) -> jax.Array:
        """``x`` as a JAX array."""
        return jnp.asarray(x)

    def constant(self, name: str, like: jax.Array) -> jax.Array:
        """The named precomputed array, made (and cached) as a concrete array even inside ``jit``."""
        with jax.ensure_compile_time_eval():
            return super().constant(name, like)

    def _bc_constants(self, bc: DirichletBC, like: jax.Array) -> tuple[jax.Array, ...]:
        with jax.ensure_compile_time_eval():
            return super()._bc_constants(bc, like)

    def mass(self, like: jax.Array | None = None) -> jax.Array:
        """Mass-matrix values (nnz,), in ``like``'s dtype (default: the assembler's)."""
        return super().mass(jnp.zeros((), self.dtype) if like is None else like)

    def solve(self, values, rhs, tol: float = 1e-10, maxiter: int | None = None) -> jax.Array:
        """Solve SPD systems ``A x = rhs`` by Jacobi-preconditioned CG; differentiable, jit-able."""
        v, b, batch = self.batch(values, rhs)
        maxiter = 10 * self.space.num_dofs if maxiter is None else maxiter
        diagonal = self.constant("diagonal", b)

        def one(vals, bb):
            dinv = jax.lax.stop_gradient(1.0 / vals[diagonal])
            x, _ = jax.scipy.sparse.linalg.cg(
                lambda y: self.matvec(vals, y), bb, tol=tol, maxiter=maxiter, M=lambda y: dinv * y
            )
            return x

        return jax.vmap(one)(v, b).reshape(*batch, -1)
