"""Torch assembly and solves: batched over coefficient fields, differentiable in them, device-agnostic.

Matrices are value arrays ``(..., nnz)`` on the space's fixed CSR pattern; assembly is a scatter-add of local
matrices into it. Constants follow the device and dtype of the input they meet.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from deq_pde.operators.boundary import DirichletBC
from deq_pde.operators.space import FunctionSpace


class TorchAssembler:
    """Batched torch assembly of stiffness, mass and load on ``space``'s sparsity pattern."""

    def __init__(self, space: FunctionSpace) -> None:
        self.space = space
        pattern = space.pattern
        self._host = {
            "stiffness_kernel": space.stiffness_kernel,
            "phi": space.phi,
            "mass_local": space.mass_local,
            "load_kernel": space.load_kernel,
        }
        self._host_index = {
            "dofmap": space.dofmap,
            "scatter": pattern.scatter,
            "rows": pattern.rows,
            "cols": pattern.cols,
            "diagonal": pattern.diagonal,
            "flat_dofmap": space.dofmap.ravel(),
        }
        self._cache: dict[tuple, torch.Tensor] = {}
        self._bc_owner: dict[int, DirichletBC] = {}

    def _const(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The named precomputed array on ``like``'s device (and dtype, for floating arrays), cached."""
        if name in self._host_index:
            key = (name, like.device)
            if key not in self._cache:
                self._cache[key] = torch.as_tensor(
                    self._host_index[name], device=like.device, dtype=torch.long
                )
        else:
            key = (name, like.device, like.dtype)
            if key not in self._cache:
                self._cache[key] = torch.as_tensor(self._host[name], device=like.device, dtype=like.dtype)
        return self._cache[key]

    def _bc_const(self, bc: DirichletBC, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Dirichlet masks (keep, unit diagonal, free mask, values) on ``like``'s device and dtype."""
        if self._bc_owner.get(id(bc)) is not bc:
            if bc.space is not self.space:
                raise ValueError("the Dirichlet condition belongs to another function space")
            self._cache = {k: v for k, v in self._cache.items() if k[:2] != ("bc", id(bc))}
            self._bc_owner[id(bc)] = bc
        key = ("bc", id(bc), like.device, like.dtype)
        if key not in self._cache:
            free = np.zeros(self.space.num_dofs)
            free[bc.free] = 1.0
            arrays = (bc.keep, bc.unit_diagonal, free, bc.full())
            self._cache[key] = tuple(torch.as_tensor(a, device=like.device, dtype=like.dtype) for a in arrays)
        return self._cache[key]

    def _check_float(self, x: torch.Tensor, name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        return x

    def coefficient_at_quadrature(self, coef: torch.Tensor, at: str = "quadrature") -> torch.Tensor:
        """Coefficient at quadrature points (..., C, nq) from quadrature or nodal (..., N) values."""
        coef = self._check_float(coef, "coefficient")
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
            cellwise = coef[..., self._const("dofmap", coef)]  # (..., C, nd)
            return torch.einsum("...ci,qi->...cq", cellwise, self._const("phi", coef))
        raise ValueError(f"at must be 'quadrature' or 'nodes', got {at!r}")

    def _scatter(self, local: torch.Tensor) -> torch.Tensor:
        """Sum local entries (..., C*nd*nd) into pattern values (..., nnz)."""
        batch = local.shape[:-1]
        flat = local.reshape(-1, local.shape[-1])
        out = torch.zeros(flat.shape[0], self.space.pattern.nnz, device=local.device, dtype=local.dtype)
        out = out.index_add(1, self._const("scatter", local), flat)
        return out.reshape(*batch, -1)

    def stiffness(self, coef: torch.Tensor, at: str = "quadrature") -> torch.Tensor:
        """Stiffness values (..., nnz) of ``-div(coef grad u)`` for a batch of coefficients."""
        a = self.coefficient_at_quadrature(coef, at)
        local = torch.einsum("...cq,cqm->...cm", a, self._const("stiffness_kernel", a))
        return self._scatter(local.reshape(*local.shape[:-2], -1))

    def mass(self, like: torch.Tensor) -> torch.Tensor:
        """Mass-matrix values (nnz,) on ``like``'s device and dtype."""
        local = self._const("mass_local", like)
        return self._scatter(local.reshape(1, -1))[0]

    def load(self, f: torch.Tensor, at: str = "quadrature") -> torch.Tensor:
        """Load vectors (..., N) of ``int f phi_i`` for ``f`` at quadrature points or nodes."""
        fq = self.coefficient_at_quadrature(f, at)
        local = torch.einsum("...cq,cqi->...ci", fq, self._const("load_kernel", fq))
        batch = local.shape[:-2]
        flat = local.reshape(-1, local.shape[-2] * local.shape[-1])
        out = torch.zeros(flat.shape[0], self.space.num_dofs, device=fq.device, dtype=fq.dtype)
        out = out.index_add(1, self._const("flat_dofmap", fq), flat)
        return out.reshape(*batch, -1)

    def matvec(self, values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Sparse product ``A x`` for pattern values (..., nnz) and vectors (..., N), broadcasting batches."""
        return _matvec(values, x, self._const("rows", x), self._const("cols", x), self.space.num_dofs)

    def dirichlet(
        self, values: torch.Tensor, rhs: torch.Tensor, bc: DirichletBC
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Impose ``bc`` symmetrically: lift ``rhs -= A g``, zero constrained rows/columns, unit diagonal."""
        keep, unit, free, g = self._bc_const(bc, rhs)
        lifted = (rhs - self.matvec(values, g)) * free + g
        return values * keep + unit, lifted

    def solve(self, values: torch.Tensor, rhs: torch.Tensor, tol: float = 1e-10, maxiter: int | None = None):
        """Solve SPD systems ``A x = rhs`` by Jacobi-preconditioned CG; differentiable in values and rhs."""
        values = self._check_float(values, "matrix values")
        rhs = self._check_float(rhs, "right-hand side")
        if values.shape[-1] != self.space.pattern.nnz:
            raise ValueError(
                f"matrix values must have shape (..., {self.space.pattern.nnz}), got {tuple(values.shape)}"
            )
        if rhs.shape[-1] != self.space.num_dofs:
            raise ValueError(
                f"right-hand side must have shape (..., {self.space.num_dofs}), got {tuple(rhs.shape)}"
            )
        batch = torch.broadcast_shapes(values.shape[:-1], rhs.shape[:-1])
        v = values.expand(*batch, -1).reshape(-1, values.shape[-1])
        b = rhs.expand(*batch, -1).reshape(-1, rhs.shape[-1])
        maxiter = 10 * self.space.num_dofs if maxiter is None else maxiter
        x = _SPDSolve.apply(
            v, b, self._const("rows", b), self._const("cols", b), self._const("diagonal", b), tol, maxiter
        )
        return x.reshape(*batch, -1)

    def to_sparse_csr(self, values: torch.Tensor) -> torch.Tensor:
        """One matrix (nnz,) as a torch sparse CSR tensor on the values' device."""
        if values.ndim != 1:
            raise ValueError(f"to_sparse_csr takes one matrix's values (nnz,), got {tuple(values.shape)}")
        p = self.space.pattern
        crow = torch.as_tensor(p.indptr, device=values.device)
        col = self._const("cols", values)
        return torch.sparse_csr_tensor(crow, col, values, (p.num_rows, p.num_rows), check_invariants=False)


def _matvec(
    values: torch.Tensor, x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, n: int
) -> torch.Tensor:
    """``y_r = sum_k values_k x_{cols_k}`` over entries with ``rows_k = r``, batched over leading dims."""
    products = values * x[..., cols]
    batch = products.shape[:-1]
    flat = products.reshape(-1, products.shape[-1])
    y = torch.zeros(flat.shape[0], n, device=x.device, dtype=products.dtype).index_add(1, rows, flat)
    return y.reshape(*batch, n)


def _pcg(values, rhs, rows, cols, diagonal, tol: float, maxiter: int, check_every: int = 8) -> torch.Tensor:
    """Batched Jacobi-preconditioned conjugate gradients for (B, nnz) values and (B, N) right-hand sides."""
    n = rhs.shape[-1]
    dinv = 1.0 / values[:, diagonal]
    x = torch.zeros_like(rhs)
    r = rhs.clone()
    z = dinv * r
    p = z.clone()
    rz = (r * z).sum(-1)
    target = tol * rhs.norm(dim=-1)
    converged = bool((rhs == 0).all())
    it = 0
    while not converged and it < maxiter:
        ap = _matvec(values, p, rows, cols, n)
        pap = (p * ap).sum(-1)
        alpha = torch.where(pap > 0, rz / torch.where(pap > 0, pap, 1.0), 0.0)
        x = x + alpha[:, None] * p
        r = r - alpha[:, None] * ap
        z = dinv * r
        rz_new = (r * z).sum(-1)
        beta = torch.where(rz > 0, rz_new / torch.where(rz > 0, rz, 1.0), 0.0)
        p = z + beta[:, None] * p
        rz = rz_new
        it += 1
        if it % check_every == 0 or it == maxiter:
            converged = bool((r.norm(dim=-1) <= target).all())
    if not converged:
        rel = (r.norm(dim=-1) / rhs.norm(dim=-1).clamp_min(torch.finfo(rhs.dtype).tiny)).max()
        warnings.warn(
            f"CG did not reach tol={tol} in {maxiter} iterations (relative residual {float(rel):.2e})"
        )
    return x


class _SPDSolve(torch.autograd.Function):
    """``x = A(values)^{-1} b`` for symmetric A, with the adjoint solve in the backward pass."""

    @staticmethod
    def forward(ctx, values, rhs, rows, cols, diagonal, tol, maxiter):
        with torch.no_grad():
            x = _pcg(values, rhs, rows, cols, diagonal, tol, maxiter)
        ctx.save_for_backward(values, x, rows, cols, diagonal)
        ctx.tol, ctx.maxiter = tol, maxiter
        return x

    @staticmethod
    def backward(ctx, grad_x):
        values, x, rows, cols, diagonal = ctx.saved_tensors
        with torch.no_grad():
            lam = _pcg(values, grad_x.contiguous(), rows, cols, diagonal, ctx.tol, ctx.maxiter)
            grad_values = -lam[:, rows] * x[:, cols]
        return grad_values, lam, None, None, None, None, None
