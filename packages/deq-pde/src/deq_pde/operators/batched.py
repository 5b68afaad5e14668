"""Batched assembly on a fixed sparsity pattern, written once over an array namespace (numpy, torch, JAX).

Matrices are value arrays ``(..., nnz)`` on the space's CSR pattern; assembly is a scatter-add of local
matrices into it, batched over coefficient fields. :class:`BatchedAssembler` runs on numpy arrays;
``deq_pde.operators.torch.TorchAssembler`` and ``deq_pde.operators.jax.JaxAssembler`` run the same lines on
their framework's arrays and add a differentiable solve. The scipy assembly in
:mod:`deq_pde.operators.assembly` is the reference all three are tested against.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_jax_array, is_torch_array

from deq_pde.operators.boundary import DirichletBC
from deq_pde.operators.space import FunctionSpace

Array = Any


def scatter_add(values: Array, index: Array, size: int) -> Array:
    """``out[..., index[k]] += values[..., k]`` into zeros ``(..., size)``: each framework names it its way.

    Differentiable in ``values`` in torch and JAX; numpy sums with ``bincount`` row by row.
    """
    xp = array_namespace(values)
    batch = values.shape[:-1]
    if is_jax_array(values):
        return xp.zeros((*batch, size), dtype=values.dtype).at[..., index].add(values)
    flat = xp.reshape(values, (-1, values.shape[-1]))
    if is_torch_array(values):
        out = xp.zeros((flat.shape[0], size), dtype=values.dtype, device=device(values))
        out = out.index_add(1, index, flat)
    else:
        out = np.stack([np.bincount(index, weights=row, minlength=size) for row in flat])
        out = out.astype(values.dtype, copy=False)
    return xp.reshape(out, (*batch, size))


class BatchedAssembler:
    """Batched stiffness, mass, load, Dirichlet conditions and CG solves on ``space``'s sparsity pattern.

    Every method takes arrays of one namespace and returns arrays of it; constants are converted to the
    device (and floating dtype) of the input they meet. This class works on numpy arrays; the torch and JAX
    subclasses convert inputs with :meth:`array` and override :meth:`solve` to make it differentiable.
    """

    def __init__(self, space: FunctionSpace) -> None:
        self.space = space
        pattern = space.pattern
        self._floats = {
            "stiffness_kernel": space.stiffness_kernel,
            "phi": space.phi,
            "mass_local": space.mass_local,
            "load_kernel": space.load_kernel,
        }
        self._indices = {
            "dofmap": space.dofmap,
            "scatter": pattern.scatter,
            "rows": pattern.rows,
            "cols": pattern.cols,
            "diagonal": pattern.diagonal,
            "flat_dofmap": space.dofmap.ravel(),
        }
        self._cache: dict[tuple, Array] = {}
        self._bc_owner: dict[int, DirichletBC] = {}

    def array(self, x: Any, name: str) -> Array:
        """``x`` as a floating array of this assembler's framework (numpy here), or a ValueError naming it."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{name} must be a floating-point array, got dtype {x.dtype}")
        return x

    def constant(self, name: str, like: Array) -> Array:
        """The named precomputed array on ``like``'s device (and dtype, for floating arrays), cached."""
        xp = array_namespace(like)
        floating = name in self._floats
        key = (name, xp.__name__, str(device(like)), str(like.dtype) if floating else "index")
        if key not in self._cache:
            host = self._floats[name] if floating else self._indices[name]
            dtype = like.dtype if floating else None  # indices: the framework's default integer type
            self._cache[key] = xp.asarray(host, dtype=dtype, device=device(like))
        return self._cache[key]

    def _bc_constants(self, bc: DirichletBC, like: Array) -> tuple[Array, ...]:
        """Dirichlet masks (keep, unit diagonal, free mask, values) on ``like``'s device and dtype."""
        if self._bc_owner.get(id(bc)) is not bc:
            if bc.space is not self.space:
                raise ValueError("the Dirichlet condition belongs to another function space")
            self._cache = {k: v for k, v in self._cache.items() if k[:2] != ("bc", id(bc))}
            self._bc_owner[id(bc)] = bc
        xp = array_namespace(like)
        key = ("bc", id(bc), xp.__name__, str(device(like)), str(like.dtype))
        if key not in self._cache:
            free = np.zeros(self.space.num_dofs)
            free[bc.free] = 1.0
            arrays = (bc.keep, bc.unit_diagonal, free, bc.full())
            self._cache[key] = tuple(xp.asarray(a, dtype=like.dtype, device=device(like)) for a in arrays)
        return self._cache[key]

    def coefficient_at_quadrature(self, coef: Array, at: str = "quadrature") -> Array:
        """Coefficient at quadrature points (..., C, nq) from quadrature or nodal (..., N) values."""
        coef = self.array(coef, "coefficient")
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
            xp = array_namespace(coef)
            cellwise = coef[..., self.constant("dofmap", coef)]  # (..., C, nd)
            return xp.einsum("...ci,qi->...cq", cellwise, self.constant("phi", coef))
        raise ValueError(f"at must be 'quadrature' or 'nodes', got {at!r}")

    def stiffness(self, coef: Array, at: str = "quadrature") -> Array:
        """Stiffness values (..., nnz) of ``-div(coef grad u)`` for a batch of coefficients."""
        a = self.coefficient_at_quadrature(coef, at)
        xp = array_namespace(a)
        local = xp.einsum("...cq,cqm->...cm", a, self.constant("stiffness_kernel", a))
        local = xp.reshape(local, (*local.shape[:-2], -1))
        return scatter_add(local, self.constant("scatter", a), self.space.pattern.nnz)

    def mass(self, like: Array) -> Array:
        """Mass-matrix values (nnz,) on ``like``'s device and dtype."""
        local = self.constant("mass_local", self.array(like, "like"))
        flat = array_namespace(local).reshape(local, (-1,))
        return scatter_add(flat, self.constant("scatter", local), self.space.pattern.nnz)

    def load(self, f: Array, at: str = "quadrature") -> Array:
        """Load vectors (..., N) of ``int f phi_i`` for ``f`` at quadrature points or nodes."""
        fq = self.coefficient_at_quadrature(f, at)
        xp = array_namespace(fq)
        local = xp.einsum("...cq,cqi->...ci", fq, self.constant("load_kernel", fq))
        local = xp.reshape(local, (*local.shape[:-2], -1))
        return scatter_add(local, self.constant("flat_dofmap", fq), self.space.num_dofs)

    def matvec(self, values: Array, x: Array) -> Array:
        """Sparse product ``A x`` for pattern values (..., nnz) and vectors (..., N), broadcasting batches."""
        products = values * x[..., self.constant("cols", x)]
        return scatter_add(products, self.constant("rows", x), self.space.num_dofs)

    def dirichlet(self, values: Array, rhs: Array, bc: DirichletBC) -> tuple[Array, Array]:
        """Impose ``bc`` symmetrically: lift ``rhs -= A g``, zero constrained rows/columns, unit diagonal."""
        values, rhs = self.array(values, "matrix values"), self.array(rhs, "right-hand side")
        keep, unit, free, g = self._bc_constants(bc, rhs)
        lifted = (rhs - self.matvec(values, g)) * free + g
        return values * keep + unit, lifted

    def batch(self, values: Array, rhs: Array) -> tuple[Array, Array, tuple[int, ...]]:
        """Check a system's shapes; return values (B, nnz) and right-hand sides (B, N) and the batch shape."""
        values, rhs = self.array(values, "matrix values"), self.array(rhs, "right-hand side")
        nnz, n = self.space.pattern.nnz, self.space.num_dofs
        if values.shape[-1] != nnz:
            raise ValueError(f"matrix values must have shape (..., {nnz}), got {tuple(values.shape)}")
        if rhs.shape[-1] != n:
            raise ValueError(f"right-hand side must have shape (..., {n}), got {tuple(rhs.shape)}")
        xp = array_namespace(values, rhs)
        batch = tuple(np.broadcast_shapes(tuple(values.shape[:-1]), tuple(rhs.shape[:-1])))
        v = xp.reshape(xp.broadcast_to(values, (*batch, nnz)), (-1, nnz))
        b = xp.reshape(xp.broadcast_to(rhs, (*batch, n)), (-1, n))
        return v, b, batch

    def solve(self, values: Array, rhs: Array, tol: float = 1e-10, maxiter: int | None = None) -> Array:
        """Solve SPD systems ``A x = rhs`` by Jacobi-preconditioned conjugate gradients."""
        v, b, batch = self.batch(values, rhs)
        x = self.pcg(v, b, tol, 10 * self.space.num_dofs if maxiter is None else maxiter)
        return array_namespace(x).reshape(x, (*batch, -1))

    def pcg(self, values: Array, rhs: Array, tol: float, maxiter: int, check_every: int = 8) -> Array:
        """Batched Jacobi-preconditioned CG for (B, nnz) values and (B, N) right-hand sides (eager loop)."""
        xp = array_namespace(values, rhs)
        norm = lambda r: xp.linalg.vector_norm(r, axis=-1)  # noqa: E731
        dinv = 1.0 / values[:, self.constant("diagonal", rhs)]
        x = xp.zeros_like(rhs)
        r = rhs
        p = z = dinv * r
        rz = xp.sum(r * z, axis=-1)
        target = tol * norm(rhs)
        converged = bool(xp.all(rhs == 0))
        it = 0
        while not converged and it < maxiter:
            ap = self.matvec(values, p)
            pap = xp.sum(p * ap, axis=-1)
            alpha = xp.where(pap > 0, rz / xp.where(pap > 0, pap, 1.0), 0.0)
            x = x + alpha[:, None] * p
            r = r - alpha[:, None] * ap
            z = dinv * r
            rz_new = xp.sum(r * z, axis=-1)
            beta = xp.where(rz > 0, rz_new / xp.where(rz > 0, rz, 1.0), 0.0)
            p = z + beta[:, None] * p
            rz = rz_new
            it += 1
            if it % check_every == 0 or it == maxiter:
                converged = bool(xp.all(norm(r) <= target))
        if not converged:
            tiny = xp.finfo(rhs.dtype).smallest_normal
            rel = xp.max(norm(r) / xp.clip(norm(rhs), min=tiny))
            warnings.warn(
                f"CG did not reach tol={tol} in {maxiter} iterations (relative residual {float(rel):.2e})",
                stacklevel=3,
            )
        return x
